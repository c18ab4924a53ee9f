#!/usr/bin/env bash
# The same ops in Rust, Python and JavaScript, side by side: component size, cold compile (the
# host's first load, before the compiled-component cache has it), and whole-process `host run`
# of a fan-out of N clones (fan_out → N × identity → sum) at --max-concurrent 1 with a warm
# cache and the run store on. Per step: (median wall at N − median wall at 0) / N, so start-up
# and the producer's fixed cost cancel out; the ratio is against Rust, measured in the same run.
# Usage: bench/languages.sh [N] [ROUNDS]      (default 1000 clones, 5 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-1000}
rounds=${2:-5}
source bench/lib.sh
build
bash guest-examples/python/build.sh fanout >/dev/null
bash guest-examples/js/build.sh fanout >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SHOAL_STORE="$work/store"

declare -A component=(
  [rust]="$testkit"
  [python]="$PWD/guest-examples/target/python/fanout.wasm"
  [js]="$PWD/guest-examples/target/js/fanout.wasm"
)

# Writes a fan-out job of COUNT clones over LANG's component; prints its path.
job() {
  local file="$work/$1-$2.toml"
  fan_out_job "$file" "$2" "${component[$1]}"
  echo "$file"
}

# Median wall time, in ms, of ROUNDS runs of JOB, after one untimed run (the first run of a
# store creates its database).
median_run() {
  "$host" run "$1" --max-concurrent 1 >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  local walls=()
  for _ in $(seq "$rounds"); do
    local start end
    start=$(date +%s%N)
    "$host" run "$1" --max-concurrent 1 >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    end=$(date +%s%N)
    walls+=("$(((end - start) / 1000))")
  done
  printf '%s\n' "${walls[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "%.1f\n", a[int((NR + 1) / 2)] / 1000 }'
}

echo "## languages: fan_out → $n × identity → sum, --max-concurrent 1, median of $rounds whole processes"
echo
echo "| language | component | cold compile | warm run, 0 clones | warm run, $n clones | per step | × Rust |"
echo "|---|---|---|---|---|---|---|"
rust_step=
for lang in rust js python; do
  size=$(stat -c %s "${component[$lang]}")
  rm -rf "$SHOAL_STORE"
  "$host" validate "$(job "$lang" 0)" 2>"$work/err" >/dev/null
  compile=$(grep -o 'in [0-9.]* ms' "$work/err" | awk '{ print $2 }')
  empty=$(median_run "$(job "$lang" 0)")
  full=$(median_run "$(job "$lang" "$n")")
  step=$(awk -v f="$full" -v e="$empty" -v n="$n" 'BEGIN { printf "%.0f", (f - e) * 1000 / n }')
  rust_step=${rust_step:-$step}
  ratio=$(awk -v s="$step" -v r="$rust_step" 'BEGIN { printf "%.1f", s / r }')
  printf '| %s | %.1f MB | %.0f ms | %s ms | %s ms | %s µs | %s |\n' \
    "$lang" "$(awk -v s="$size" 'BEGIN { print s / 1e6 }')" "$compile" "$empty" "$full" "$step" "$ratio"
done

#!/usr/bin/env bash
# Whole-process figures of `host run`, measured with /usr/bin/time -v:
#   start-up: dynamic_graph.toml in a fresh process, cold (empty store, so components are
#             compiled) and warm (compiled components loaded from the store's cache);
#   scale:    a fan-out of N (default 1,000,000) trivial clones through map and collect:
#             wall time and peak RSS.
# Usage: bench/process.sh [startup] [scale [N]]      (default: both, N = 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/lib.sh
build
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Runs `host` under /usr/bin/time -v; prints "<wall seconds> <peak RSS KiB>".
measure() {
  /usr/bin/time -v "$host" "$@" >"$work/out" 2>"$work/err" || {
    cat "$work/err" >&2
    exit 1
  }
  awk -F': ' '
    /Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; wall = s }
    /Maximum resident set size/ { rss = $2 }
    END { printf "%.3f %d\n", wall, rss }' "$work/err"
}

startup() {
  local job=guest-examples/jobs/dynamic_graph.toml runs=10
  echo "## start-up: host run $job (fresh process each time)"
  export SHOAL_STORE="$work/startup-store"
  read -r cold cold_rss < <(measure run "$job")
  grep -h "compiled" "$work/err" || true
  local walls=()
  for _ in $(seq $runs); do
    read -r wall _ < <(measure run "$job")
    walls+=("$wall")
  done
  local warm
  warm=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  awk -v cold="$cold" -v warm="$warm" -v rss="$cold_rss" -v runs="$runs" 'BEGIN {
    printf "cold (compiles): %.0f ms, peak RSS %.1f MiB\n", cold * 1000, rss / 1024
    printf "warm (cached), median of %d: %.0f ms (%.1fx faster than cold; target 50 ms)\n",
      runs, warm * 1000, cold / warm }' 
  unset SHOAL_STORE
}

scale() {
  local n=${1:-1000000}
  echo "## scale: fan-out of $n through map and collect (mc = cores, with the run store)"
  fan_out_job "$work/scale.toml" "$n"
  SHOAL_STORE="$work/scale-store" measure run "$work/scale.toml" >"$work/scale"
  read -r wall rss <"$work/scale"
  grep -h "succeeded in" "$work/err"
  awk -v wall="$wall" -v rss="$rss" -v n="$n" 'BEGIN {
    printf "wall %.1f s, %.1f µs/step, peak RSS %.0f MiB (target 1024 MiB)\n",
      wall, wall * 1e6 / (n + 2), rss / 1024 }' 
}

sections=("$@")
[ ${#sections[@]} -eq 0 ] && sections=(startup scale)
i=0
while [ $i -lt ${#sections[@]} ]; do
  case "${sections[$i]}" in
    startup) startup ;;
    scale)
      if [[ ${sections[$((i + 1))]:-} =~ ^[0-9]+$ ]]; then
        scale "${sections[$((i + 1))]}"
        i=$((i + 1))
      else
        scale
      fi
      ;;
    *) echo "unknown section ${sections[$i]} (startup, scale [N])" >&2; exit 2 ;;
  esac
  i=$((i + 1))
done

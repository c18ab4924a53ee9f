#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each; `fuzz/run.sh 300` for longer).
# CI runs it too (`fuzz/run.sh 30`, from .ci/run): a target that does not compile, crashes, times
# out on an input or fails an assertion fails the run. Installs cargo-fuzz when it is missing. The
# machine's stable toolchain is used through RUSTC_BOOTSTRAP, without a sanitizer (`-s none`):
# libFuzzer's coverage guidance works, AddressSanitizer does not (it needs a nightly toolchain,
# which cannot be installed here).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
# Pinned for CI (the newest release; it builds with rustc 1.95). An installed cargo-fuzz of
# another version is used as it is.
cargo_fuzz_version=0.13.2
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz $cargo_fuzz_version"
  cargo install --locked --quiet "cargo-fuzz@$cargo_fuzz_version"
fi
targets=(job_file guest_cbor component_load)
# Every target in fuzz/Cargo.toml must be run here: a target left out would rot unseen.
declared=$(grep -oE '^name = "[a-z_]+"' fuzz/Cargo.toml | cut -d'"' -f2 | grep -vx host-fuzz | sort)
if [ "$declared" != "$(printf '%s\n' "${targets[@]}" | sort)" ]; then
  echo "error: fuzz/run.sh runs ${targets[*]}, but fuzz/Cargo.toml declares:" $declared >&2
  exit 1
fi
mkdir -p fuzz/artifacts
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target" "fuzz/regressions/$target"
done
# Seeds: the example jobs and components.
cp guest-examples/jobs/*.toml fuzz/corpus/job_file/ 2>/dev/null || true
cp guest-examples/target/wasm32-wasip2/release/*.wasm fuzz/corpus/component_load/ 2>/dev/null || true
printf '\x82\x01\x82\x02\x03' > fuzz/corpus/guest_cbor/seed
status=0
for target in "${targets[@]}"; do
  echo "--- $target (${seconds}s)"
  # Inputs that once failed are kept in fuzz/regressions/ and replayed first.
  log="fuzz/artifacts/$target.log"
  if RUSTC_BOOTSTRAP=1 cargo fuzz run -s none --release "$target" "fuzz/corpus/$target" \
      "fuzz/regressions/$target" -- -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 \
      -max_len=262144 >"$log" 2>&1; then
    grep -E "^Done [0-9]+ runs" "$log" || tail -3 "$log"
  else
    status=1
    echo "error: fuzz target $target failed (whole log: $log):"
    # A crash or a failed assertion, or a build error; otherwise the end of the log.
    pattern="panicked|SUMMARY|Test unit written|^error"
    if grep -qE "$pattern" "$log"; then
      grep -E "$pattern" -A 12 "$log" | head -n 60 || true
    else
      tail -n 40 "$log"
    fi
  fi
done
exit "$status"

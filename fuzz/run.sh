#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each; `fuzz/run.sh 300` for longer).
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). The machine's stable toolchain is used
# through RUSTC_BOOTSTRAP, without a sanitizer (`-s none`): libFuzzer's coverage guidance works,
# AddressSanitizer does not (no nightly toolchain can be installed here).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
mkdir -p fuzz/corpus/job_file fuzz/corpus/guest_cbor fuzz/corpus/component_load
# Seeds: the example jobs and components.
cp guest-examples/jobs/*.toml fuzz/corpus/job_file/ 2>/dev/null || true
cp guest-examples/target/wasm32-wasip2/release/*.wasm fuzz/corpus/component_load/ 2>/dev/null || true
printf '\x82\x01\x82\x02\x03' > fuzz/corpus/guest_cbor/seed
for target in job_file guest_cbor component_load; do
  echo "--- $target (${seconds}s)"
  # Inputs that once failed are kept in fuzz/regressions/ and replayed first.
  mkdir -p "fuzz/regressions/$target"
  log="fuzz/artifacts/$target.log"
  mkdir -p fuzz/artifacts
  if RUSTC_BOOTSTRAP=1 cargo fuzz run -s none --release "$target" "fuzz/corpus/$target" \
      "fuzz/regressions/$target" -- -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 \
      -max_len=262144 >"$log" 2>&1; then
    grep -E "^Done [0-9]+ runs" "$log"
  else
    status=1
    grep -E "panicked|SUMMARY|Test unit written" "$log" || tail -20 "$log"
  fi
done
exit "${status:-0}"

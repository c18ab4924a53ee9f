#!/usr/bin/env bash
# What `host gc` frees once an N-clone run is no longer wanted (default 100,000): runs the
# fan-out twice into a fresh store (the runs share every value: identity's outputs are the
# producer's), deletes the older run (`gc --keep 1`: nothing is freed but its rows, the values
# stay for the kept run), then the other (`gc --keep 0`: every value goes). Prints each report
# line with the time it took. `bash bench/gc.sh [N]`; CI runs `bash bench/gc.sh 2000`.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
n=${1:-100000}
build
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fan_out_job "$work/job.toml" "$n"
export SHOAL_STORE="$work/store"
for _ in 1 2; do
  "$host" run "$work/job.toml" --quiet >/dev/null
done
echo "store after two $n-clone runs: $(du -sh "$SHOAL_STORE" | cut -f1)"
for keep in 1 0; do
  start=$(date +%s%N)
  report=$("$host" gc --keep "$keep" 2>&1)
  echo "gc --keep $keep: $report ($(( ($(date +%s%N) - start) / 1000000 )) ms)"
done
remaining=$("$host" runs --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$remaining" = 0 ] || { echo "error: $remaining runs left after gc --keep 0" >&2; exit 1; }

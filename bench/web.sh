#!/usr/bin/env bash
# How long the web view takes to answer for a large run: a fan-out of N (default 100,000)
# trivial clones is recorded with `host run`, then `host ui` serves it and curl times each page
# (the time to the last byte, as a browser would have the HTML to render).
# Usage: bench/web.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}

source bench/lib.sh
build
work=$(mktemp -d)
ui=
trap '[ -n "$ui" ] && kill "$ui" 2>/dev/null; rm -rf "$work"' EXIT
export SHOAL_STORE="$work/store"

fan_out_job "$work/fan.toml" "$n"
"$host" run "$work/fan.toml" >/dev/null 2>"$work/run.err" || { cat "$work/run.err" >&2; exit 1; }
id=$("$host" runs | awk 'NR == 1 { print $1 }')
echo "## web view of run $id: a fan-out of $n ($(du -sh "$SHOAL_STORE" | cut -f1) store)"

"$host" ui --listen 127.0.0.1:0 >"$work/ui.out" 2>"$work/ui.err" &
ui=$!
for _ in $(seq 100); do grep -q "listening on" "$work/ui.out" 2>/dev/null && break; sleep 0.1; done
base=$(sed -n 's/^listening on //p' "$work/ui.out")

# Prints "<label>: <ms> ms, <KiB> KiB" for one GET.
page() {
  local label=$1 path=$2
  curl -sf -o /dev/null -w "%{time_total} %{size_download}\n" "$base$path" \
    | awk -v label="$label" '{ printf "%-44s %7.1f ms  %6.1f KiB\n", label ":", $1 * 1000, $2 / 1024 }'
}

page "run page, first view (reads every event)" "/runs/$id"
for i in 1 2 3; do page "run page, again ($i)" "/runs/$id"; done
page "runs list" "/"
page "steps of identity, first 100" "/runs/$id/steps?op=identity"
page "steps of identity, mapping keys k5..." "/runs/$id/steps?op=identity&prefix=k5"
page "steps of identity, page 2" "/runs/$id/steps?op=identity&after=identity%5Bk10089%5D"
page "failed steps (none)" "/runs/$id/steps?status=failed"
page "succeeded steps, first 100" "/runs/$id/steps?status=succeeded"
page "running steps (none now, though all started)" "/runs/$id/steps?status=running"
page "one clone, with its input and output" "/runs/$id/step?key=identity%5Bk$((n / 2))%5D"
page "event log, first 200" "/runs/$id/log"
page "event log, STEP_FAILURE only (none)" "/runs/$id/log?kind=STEP_FAILURE"

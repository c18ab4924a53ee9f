#!/usr/bin/env bash
# Fair share between the tenants of `host serve`: how long tenant B's 10-step job takes (submit
# to its last event) on an idle server, and while tenant A's N-way fan-out (default 100,000)
# runs on the same server, both tenants allowed all of the server's slots.
# Usage: bench/fair_share.sh [N] [SLOTS]            (default: N = 100000, SLOTS = 2)
# Needs curl and python3. Prints the median of 5 runs of B's job for each case, and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
slots=${2:-2}

source bench/lib.sh
build
work=$(mktemp -d)
export SHOAL_STORE="$work/store"
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

a=$("$host" tenant add a --max-concurrent "$slots" 2>/dev/null)
b=$("$host" tenant add b --max-concurrent "$slots" 2>/dev/null)
RUST_LOG=warn "$host" serve --listen 127.0.0.1:0 --max-concurrent "$slots" >"$work/addr" &
server=$!
for _ in $(seq 100); do grep -q listening "$work/addr" 2>/dev/null && break; sleep 0.1; done
base=$(sed 's/listening on //' "$work/addr")

for token in "$a" "$b"; do
  curl -sf -X PUT -H "Authorization: Bearer $token" --data-binary @"$testkit" \
    "$base/v1/components/testkit" >/dev/null
done

# A fan-out of N identity clones, summed by a collect: N + 2 steps.
job() {
  python3 -c 'import json, sys; print(json.dumps({"job": """
[components.testkit]
[ops.nums]
component = "testkit"
op = "fan_out"
config.n = %s
[ops.same]
component = "testkit"
op = "identity"
inputs.value = { map = "nums" }
[ops.total]
component = "testkit"
op = "sum"
inputs.values = { collect = "same" }
""" % sys.argv[1]}))' "$1"
}

submit() { # token, n -> run id
  curl -sf -H "Authorization: Bearer $1" -d "$(job "$2")" "$base/v1/runs" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["run_id"])'
}

# Seconds from submitting B's 10-step job to the end of its event stream; median of 5, timed
# inside one Python process so that no process start-up is counted.
b_job() {
  python3 - "$base" "$b" "$(job 8)" <<'PY'
import json, statistics, sys, time, urllib.request
base, token, body = sys.argv[1], sys.argv[2], sys.argv[3].encode()
auth = {"Authorization": "Bearer " + token}
times = []
for _ in range(5):
    start = time.perf_counter()
    request = urllib.request.Request(base + "/v1/runs", data=body, headers=auth)
    run = json.load(urllib.request.urlopen(request))["run_id"]
    events = urllib.request.Request(base + f"/v1/runs/{run}/events?follow=true", headers=auth)
    urllib.request.urlopen(events).read()
    times.append(time.perf_counter() - start)
print(f"{statistics.median(times):.4f}")
PY
}

idle=$(b_job)
echo "tenant b, 10-step job, idle server:            ${idle} s (median of 5)"
big=$(submit "$a" "$n")
# Let A's fan-out fill the queue first.
sleep 2
busy=$(b_job)
state=$(curl -sf -H "Authorization: Bearer $a" "$base/v1/runs/$big" |
  python3 -c 'import json, sys; r = json.load(sys.stdin); print(r["status"], r["steps"].get("same", {}))')
echo "tenant b, 10-step job, beside a's ${n}-way fan-out: ${busy} s (median of 5); a's run: ${state}"
python3 -c "import sys; print(f'ratio busy / idle: {float(sys.argv[2]) / float(sys.argv[1]):.1f}')" "$idle" "$busy"

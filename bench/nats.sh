#!/usr/bin/env bash
# Steps through NATS workers against the same steps run locally, in one session on one machine:
#   trivial: wall time per step of an N-way fan-out of identity clones (default N = 10,000),
#            `host run` locally (--max-concurrent 2) and with --executor through 1 and 2 workers
#            (--max-concurrent 2 each);
#   cpu:     throughput of 1,000 CPU-bound clones of about 1 ms each, locally with 1 and 2
#            steps at once (how far the machine's cores scale), and through 1 worker and
#            through 2 workers (--max-concurrent 1 each: a core each).
# Usage: bench/nats.sh [N] [ROUNDS]            (default: N = 10000, ROUNDS = 3)
# Needs nats-server (apt-get install nats-server). Prints the median of ROUNDS runs of each case
# (whole `host run` process, warm compile cache, run store on) and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
rounds=${2:-3}

source bench/lib.sh
build
work=$(mktemp -d)
export SHOAL_STORE="$work/store"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="nats://127.0.0.1:$port"
nats-server -js -a 127.0.0.1 -p "$port" -sd "$work/js" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done

# N clones of OP (testkit) with CONFIG, counted by a collect: N + 2 steps.
job() { # name, n, op, config
  cat >"$work/$1.toml" <<EOF
[components.testkit]
path = "$testkit"
[ops.nums]
component = "testkit"
op = "fan_out"
config.n = $2
[ops.work]
component = "testkit"
op = "$3"
config = $4
inputs.value = { map = "nums" }
[ops.seen]
component = "testkit"
op = "count"
inputs.values = { collect = "work" }
EOF
  echo "$work/$1.toml"
}
trivial=$(job trivial "$n" identity '{}')
# 1,000,000 rounds of xorshift: about 1 ms of wasm on the reference VM.
cpu=$(job cpu 1000 burn '{ rounds = 1000000 }')

workers=()
start_workers() { # count, max-concurrent
  stop_workers
  for i in $(seq "$1"); do
    "$host" worker --nats "$url" --name "bench-$i" --max-concurrent "$2" 2>/dev/null &
    workers+=($!)
    pids+=($!)
  done
  for _ in $(seq 100); do
    [ "$("$host" workers --json --nats "$url" | grep -c '"name"')" -ge "$1" ] && break
    sleep 0.1
  done
}
stop_workers() {
  for pid in "${workers[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  workers=()
}

# Prints EXPRESSION (awk arithmetic) with printf FORMAT.
calc() { awk "BEGIN { printf \"$2\", $1 }"; }

# Median wall seconds of ROUNDS runs of `host run JOB ARGS...`.
median() {
  local job=$1; shift
  "$host" run "$job" "$@" >/dev/null 2>&1 # warm: compile cache, first fetch by the workers
  for _ in $(seq "$rounds"); do
    local start end
    start=$(date +%s.%N)
    "$host" run "$job" "$@" >/dev/null 2>&1
    end=$(date +%s.%N)
    calc "$end - $start" '%.6f\n'
  done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

steps=$((n + 2))
local_s=$(median "$trivial" --max-concurrent 2)
start_workers 1 2
one_s=$(median "$trivial" --executor "$url")
start_workers 2 2
two_s=$(median "$trivial" --executor "$url")
per_step() { calc "$1 * 1000000 / $steps" '%.1f'; }
echo "trivial $n-way fan-out ($steps steps), per step:"
echo "  local (mc 2)          $(per_step "$local_s") us"
echo "  NATS, 1 worker (mc 2) $(per_step "$one_s") us   $(calc "$one_s / $local_s" '%.2f')x local"
echo "  NATS, 2 workers       $(per_step "$two_s") us   $(calc "$two_s / $local_s" '%.2f')x local"

stop_workers
cpu_local_one=$(median "$cpu" --max-concurrent 1)
cpu_local_two=$(median "$cpu" --max-concurrent 2)
start_workers 1 1
cpu_one=$(median "$cpu" --executor "$url")
start_workers 2 1
cpu_two=$(median "$cpu" --executor "$url")
stop_workers
echo "1,000 CPU-bound clones (~1 ms each):"
echo "  local, mc 1       $(calc "1002 / $cpu_local_one" '%.0f') steps/s"
echo "  local, mc 2       $(calc "1002 / $cpu_local_two" '%.0f') steps/s   $(calc "$cpu_local_one / $cpu_local_two" '%.2f')x mc 1 (what this machine's two cores give)"
echo "  1 worker (mc 1)   $(calc "1002 / $cpu_one" '%.0f') steps/s"
echo "  2 workers (mc 1)  $(calc "1002 / $cpu_two" '%.0f') steps/s   $(calc "$cpu_one / $cpu_two" '%.2f')x one worker"

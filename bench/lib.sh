# What the benchmark scripts share; sourced from the repository root.

# Builds the release host and the guest components; sets `host` to the binary's absolute path
# and `testkit` to the test component's.
build() {
  # With the tests: their dev-dependencies change the features of shared dependencies, and a
  # plain build would compile wasmtime and the rest again (10 minutes of CI) for the same host.
  cargo build --release -p host --tests --quiet
  cargo build --release --target wasm32-wasip2 --manifest-path guest-examples/Cargo.toml --quiet
  host="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/host"
  testkit="$PWD/guest-examples/target/wasm32-wasip2/release/testkit.wasm"
}

# Writes to FILE a job that fans out to N trivial clones through map and collect, with the ops
# `fan_out`, `identity` and `sum` of COMPONENT (default: testkit; the Python and JavaScript
# fanout examples have the same ops).
fan_out_job() {
  local file=$1 n=$2 component=${3:-$testkit}
  cat >"$file" <<JOB
[components.fanout]
path = "$component"
[limits]
max_fanout = $n
[ops.fan_out]
component = "fanout"
config = { n = $n }
[ops.identity]
component = "fanout"
inputs.value = { map = "fan_out" }
[ops.sum]
component = "fanout"
inputs.values = { collect = "identity" }
JOB
}

# What the benchmark scripts share; sourced from the repository root.

# Builds the release host and the guest components; sets `host` to the binary's absolute path
# and `testkit` to the test component's.
build() {
  cargo build --release -p host --quiet
  cargo build --release --target wasm32-wasip2 --manifest-path guest-examples/Cargo.toml --quiet
  host="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/host"
  testkit="$PWD/guest-examples/target/wasm32-wasip2/release/testkit.wasm"
}

# Writes to FILE a job that fans out to N trivial clones through map and collect.
fan_out_job() {
  local file=$1 n=$2
  cat >"$file" <<JOB
[components.testkit]
path = "$testkit"
[limits]
max_fanout = $n
[ops.fan_out]
component = "testkit"
config = { n = $n }
[ops.identity]
component = "testkit"
inputs.value = { map = "fan_out" }
[ops.sum]
component = "testkit"
inputs.values = { collect = "identity" }
JOB
}

//! Ops written to misbehave, one attack each, for the host's adversarial test suite. Each must
//! fail its own step with a specific error and harm nothing else.

use std::hint::black_box;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use shoal_sdk::{Context, DynamicOutput, OpError, op};

// Burns CPU forever.
/// loops forever
#[op]
fn spin() -> i64 {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

// Blocks in a host call (a WASI clock poll) for an hour.
/// sleeps an hour in a host call
#[op]
fn sleep() -> i64 {
    std::thread::sleep(Duration::from_secs(3600));
    0
}

fn descend(depth: u64) -> u64 {
    // Scalars only, so that every frame lives on the wasm stack rather than on Rust's shadow
    // stack in linear memory; `black_box` stops the recursion being folded into a loop.
    if black_box(depth) == u64::MAX {
        0
    } else {
        descend(depth + 1).wrapping_add(depth)
    }
}

/// recurses without end
#[op]
fn recurse() -> u64 {
    descend(0)
}

// 1 MiB at a time, never freed.
/// allocates until stopped
#[op]
fn grow_memory() -> i64 {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(black_box(vec![1u8; 1 << 20]));
    }
}

#[derive(Deserialize, JsonSchema)]
struct SizeConfig {
    bytes: usize,
}

// One string of `config.bytes` bytes.
/// returns config.bytes bytes
#[op]
fn huge_output(config: SizeConfig) -> String {
    "x".repeat(config.bytes)
}

// Ignoring every rejection.
/// yields ten million values
#[op(dynamic)]
fn fan_out_bomb(ctx: &Context) {
    for i in 0..10_000_000u64 {
        let _ignored = ctx.yield_output(DynamicOutput::new(&i, format!("k{i}")));
    }
}

/// yields five values, then panics
#[op(dynamic)]
fn trap_midway(ctx: &Context) -> Result<(), OpError> {
    for i in 0..5u64 {
        ctx.yield_output(DynamicOutput::new(&i, format!("k{i}")))?;
    }
    panic!("trapped after five values");
}

#[derive(Deserialize, JsonSchema)]
struct PathConfig {
    path: String,
}

// Returns the file's text.
/// reads config.path
#[op]
fn read_file(config: PathConfig) -> Result<String, OpError> {
    let PathConfig { path } = config;
    std::fs::read_to_string(&path)
        .map_err(|err| OpError::failed(format!("cannot read `{path}`: {err}")))
}

/// writes config.path
#[op]
fn write_file(config: PathConfig) -> Result<String, OpError> {
    let PathConfig { path } = config;
    std::fs::write(&path, "overwritten by a guest")
        .map_err(|err| OpError::failed(format!("cannot write `{path}`: {err}")))?;
    Ok(path)
}

#[derive(Deserialize, JsonSchema)]
struct EnvConfig {
    name: String,
}

// Returns the variable's value, or null.
/// reads the env var config.name
#[op]
fn read_env(config: EnvConfig) -> Option<String> {
    std::env::var(&config.name).ok()
}

#[derive(Deserialize, JsonSchema)]
struct AddressConfig {
    address: String,
}

/// connects to config.address over TCP
#[op]
fn connect(config: AddressConfig) -> Result<String, OpError> {
    let AddressConfig { address } = config;
    std::net::TcpStream::connect(&address)
        .map(|_| "connected".to_string())
        .map_err(|err| OpError::failed(format!("cannot connect to `{address}`: {err}")))
}

// To stdout.
/// prints forever
#[op]
fn print_flood() -> i64 {
    loop {
        println!("{}", "flood ".repeat(100));
    }
}

/// logs forever
#[op]
fn log_flood() -> i64 {
    loop {
        shoal_sdk::info!("{}", "flood ".repeat(100));
    }
}

// Each must still cost something.
/// logs empty messages forever
#[op]
fn empty_log_flood() -> i64 {
    loop {
        shoal_sdk::bindings::shoal::op::log::log(
            shoal_sdk::bindings::shoal::op::log::Level::Info,
            "",
        );
    }
}

/// logs one message of config.bytes bytes
#[op]
fn huge_log(config: SizeConfig) -> i64 {
    shoal_sdk::info!("{}", "x".repeat(config.bytes));
    0
}

#[derive(Deserialize, JsonSchema)]
struct PrintConfig {
    /// Bytes to write to stdout, ignoring every write error.
    bytes: usize,
    /// Panic afterwards.
    #[serde(default)]
    panic: bool,
}

// Then returns (or panics).
/// prints config.bytes bytes ignoring write errors, then may panic
#[op]
fn print_ignoring_errors(config: PrintConfig) -> i64 {
    use std::io::Write;
    let PrintConfig { bytes, panic } = config;
    let mut stdout = std::io::stdout();
    let chunk = [b'y'; 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        let _ignored = stdout.write_all(&chunk[..n]);
        left -= n;
    }
    let _ignored = stdout.flush();
    if panic {
        panic!("panicked after printing {bytes} bytes");
    }
    0
}

#[derive(Deserialize, JsonSchema)]
struct TextConfig {
    text: String,
}

// Terminal escapes, forged summary lines, ...: to the log and to stdout, then as its error.
/// writes config.text everywhere it can
#[op]
fn forge_output(config: TextConfig) -> Result<i64, OpError> {
    let TextConfig { text } = config;
    shoal_sdk::info!("{text}");
    println!("{text}");
    Err(OpError::failed(text))
}

shoal_sdk::export!(
    spin,
    sleep,
    recurse,
    grow_memory,
    huge_output,
    fan_out_bomb,
    trap_midway,
    read_file,
    write_file,
    read_env,
    connect,
    print_flood,
    log_flood,
    empty_log_flood,
    forge_output,
    huge_log,
    print_ignoring_errors,
);

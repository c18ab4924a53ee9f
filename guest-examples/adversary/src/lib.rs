//! Ops written to misbehave, one attack each, for the host's adversarial test suite. Each must
//! fail its own step with a specific error and harm nothing else.

use std::hint::black_box;
use std::time::Duration;

use serde::Deserialize;
use shoal_sdk::{Context, DynamicOutput, Inputs, Op, OpError};

/// Burns CPU forever.
fn spin(_: &Context, _: &Inputs) -> Result<i64, OpError> {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Blocks in a host call (a WASI clock poll) for an hour.
fn sleep(_: &Context, _: &Inputs) -> Result<i64, OpError> {
    std::thread::sleep(Duration::from_secs(3600));
    Ok(0)
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

/// Recurses without end.
fn recurse(_: &Context, _: &Inputs) -> Result<u64, OpError> {
    Ok(descend(0))
}

/// Allocates memory 1 MiB at a time and never frees it.
fn grow_memory(_: &Context, _: &Inputs) -> Result<i64, OpError> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(black_box(vec![1u8; 1 << 20]));
    }
}

#[derive(Deserialize)]
struct Sized {
    bytes: usize,
}

/// Returns one string of `config.bytes` bytes.
fn huge_output(ctx: &Context, _: &Inputs) -> Result<String, OpError> {
    let Sized { bytes } = ctx.config()?;
    Ok("x".repeat(bytes))
}

/// Yields ten million values, ignoring every rejection.
fn fan_out_bomb(ctx: &Context, _: &Inputs) -> Result<(), OpError> {
    for i in 0..10_000_000u64 {
        let _ignored = ctx.yield_output(DynamicOutput::new(&i, format!("k{i}")));
    }
    Ok(())
}

/// Yields five values, then panics.
fn trap_midway(ctx: &Context, _: &Inputs) -> Result<(), OpError> {
    for i in 0..5u64 {
        ctx.yield_output(DynamicOutput::new(&i, format!("k{i}")))?;
    }
    panic!("trapped after five values");
}

#[derive(Deserialize)]
struct PathConfig {
    path: String,
}

/// Reads the file `config.path` and returns its text.
fn read_file(ctx: &Context, _: &Inputs) -> Result<String, OpError> {
    let PathConfig { path } = ctx.config()?;
    std::fs::read_to_string(&path)
        .map_err(|err| OpError::failed(format!("cannot read `{path}`: {err}")))
}

/// Writes the file `config.path`.
fn write_file(ctx: &Context, _: &Inputs) -> Result<String, OpError> {
    let PathConfig { path } = ctx.config()?;
    std::fs::write(&path, "overwritten by a guest")
        .map_err(|err| OpError::failed(format!("cannot write `{path}`: {err}")))?;
    Ok(path)
}

#[derive(Deserialize)]
struct EnvConfig {
    name: String,
}

/// Returns the environment variable `config.name`, or null.
fn read_env(ctx: &Context, _: &Inputs) -> Result<Option<String>, OpError> {
    let EnvConfig { name } = ctx.config()?;
    Ok(std::env::var(&name).ok())
}

#[derive(Deserialize)]
struct AddressConfig {
    address: String,
}

/// Opens a TCP connection to `config.address`.
fn connect(ctx: &Context, _: &Inputs) -> Result<String, OpError> {
    let AddressConfig { address } = ctx.config()?;
    std::net::TcpStream::connect(&address)
        .map(|_| "connected".to_string())
        .map_err(|err| OpError::failed(format!("cannot connect to `{address}`: {err}")))
}

/// Prints to stdout forever.
fn print_flood(_: &Context, _: &Inputs) -> Result<i64, OpError> {
    loop {
        println!("{}", "flood ".repeat(100));
    }
}

/// Logs forever.
fn log_flood(_: &Context, _: &Inputs) -> Result<i64, OpError> {
    loop {
        shoal_sdk::info!("{}", "flood ".repeat(100));
    }
}

/// Logs empty messages forever: each must still cost something.
fn empty_log_flood(_: &Context, _: &Inputs) -> Result<i64, OpError> {
    loop {
        shoal_sdk::bindings::shoal::op::log::log(
            shoal_sdk::bindings::shoal::op::log::Level::Info,
            "",
        );
    }
}

/// Logs one message of `config.bytes` bytes.
fn huge_log(ctx: &Context, _: &Inputs) -> Result<i64, OpError> {
    let Sized { bytes } = ctx.config()?;
    shoal_sdk::info!("{}", "x".repeat(bytes));
    Ok(0)
}

#[derive(Deserialize)]
struct PrintConfig {
    /// Bytes to write to stdout, ignoring every write error.
    bytes: usize,
    /// Panic afterwards.
    #[serde(default)]
    panic: bool,
}

/// Writes `config.bytes` bytes to stdout, ignoring failed writes, then returns (or panics).
fn print_ignoring_errors(ctx: &Context, _: &Inputs) -> Result<i64, OpError> {
    use std::io::Write;
    let PrintConfig { bytes, panic } = ctx.config()?;
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
    Ok(0)
}

#[derive(Deserialize)]
struct TextConfig {
    text: String,
}

/// Writes `config.text` (terminal escapes, forged summary lines) to the log and to stdout, then
/// fails with it as its error message.
fn forge_output(ctx: &Context, _: &Inputs) -> Result<i64, OpError> {
    let TextConfig { text } = ctx.config()?;
    shoal_sdk::info!("{text}");
    println!("{text}");
    Err(OpError::failed(text))
}

fn ops() -> Vec<Op> {
    vec![
        Op::new("spin", spin).describe("loops forever"),
        Op::new("sleep", sleep).describe("sleeps an hour in a host call"),
        Op::new("recurse", recurse).describe("recurses without end"),
        Op::new("grow_memory", grow_memory).describe("allocates until stopped"),
        Op::new("huge_output", huge_output).describe("returns config.bytes bytes"),
        Op::dynamic("fan_out_bomb", fan_out_bomb).describe("yields ten million values"),
        Op::dynamic("trap_midway", trap_midway).describe("yields five values, then panics"),
        Op::new("read_file", read_file).describe("reads config.path"),
        Op::new("write_file", write_file).describe("writes config.path"),
        Op::new("read_env", read_env).describe("reads the env var config.name"),
        Op::new("connect", connect).describe("connects to config.address over TCP"),
        Op::new("print_flood", print_flood).describe("prints forever"),
        Op::new("log_flood", log_flood).describe("logs forever"),
        Op::new("empty_log_flood", empty_log_flood).describe("logs empty messages forever"),
        Op::new("forge_output", forge_output).describe("writes config.text everywhere it can"),
        Op::new("huge_log", huge_log).describe("logs one message of config.bytes bytes"),
        Op::new("print_ignoring_errors", print_ignoring_errors)
            .describe("prints config.bytes bytes ignoring write errors, then may panic"),
    ]
}

shoal_sdk::export!(ops);

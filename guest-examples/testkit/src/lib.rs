//! Ops for Shoal's own tests and benchmarks: well-behaved building blocks (`fan_out`,
//! `identity`, `sum`) and ops that misbehave on purpose (bad keys, bad CBOR, traps, failures).

use serde::Deserialize;
use shoal_sdk::bindings::shoal::op::{emit, types::DynamicValue};
use shoal_sdk::{Context, DynamicOutput, Inputs, Op, OpError, Outputs, Value};

#[derive(Deserialize)]
struct FanOutConfig {
    /// How many values to yield.
    n: u64,
    /// On the first attempt, fail (asking for a retry) after yielding this many values.
    fail_first_attempt_after: Option<u64>,
    /// Add `1000 × attempt` to every value, so that a retry yields different values.
    #[serde(default)]
    vary_by_attempt: bool,
    /// Yield byte strings of this many bytes instead of integers (for benchmarks).
    bytes: Option<usize>,
    /// Keep yielding when the host rejects a value, as a careless third-party op would.
    #[serde(default)]
    ignore_rejections: bool,
}

/// Yields `0..n` keyed `k0`, `k1`, ...
fn fan_out(ctx: &Context, _: &Inputs) -> Result<(), OpError> {
    let config: FanOutConfig = ctx.config()?;
    let offset = if config.vary_by_attempt {
        1000 * u64::from(ctx.attempt())
    } else {
        0
    };
    for i in 0..config.n {
        if ctx.attempt() == 1 && config.fail_first_attempt_after == Some(i) {
            return Err(OpError::retry(format!("interrupted after {i} values")));
        }
        let key = format!("k{i}");
        let yielded = match config.bytes {
            Some(size) => {
                ctx.yield_output(DynamicOutput::new(&Value::Bytes(vec![i as u8; size]), key))
            }
            None => ctx.yield_output(DynamicOutput::new(&(i + offset), key)),
        };
        if !config.ignore_rejections {
            yielded?;
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct EmitKeysConfig {
    /// The mapping keys to yield, in order, each with its index as the value.
    keys: Vec<String>,
}

/// Yields exactly the configured mapping keys, valid or not, and ignores the host's verdict so
/// that the host alone must catch bad keys.
fn emit_keys(ctx: &Context, _: &Inputs) -> Result<(), OpError> {
    let EmitKeysConfig { keys } = ctx.config()?;
    for (idx, key) in keys.into_iter().enumerate() {
        let _ignored = ctx.yield_output(DynamicOutput::new(&idx, key));
    }
    Ok(())
}

/// Yields one value whose bytes are not CBOR, bypassing the SDK's encoder.
fn bad_cbor(_: &Context, _: &Inputs) -> Result<(), OpError> {
    let value = DynamicValue {
        output: "result".to_string(),
        mapping_key: "k0".to_string(),
        // A map header announcing 24 pairs, then nothing.
        value: vec![0xb8, 0x18],
    };
    emit::yield_output(&value).map_err(OpError::failed)
}

#[derive(Deserialize)]
struct RawEmitConfig {
    /// `[mapping key, CBOR bytes in hex]` pairs to yield as they are.
    values: Vec<(String, String)>,
}

fn unhex(text: &str) -> Result<Vec<u8>, OpError> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| OpError::bad_input(format!("`{text}` is not hex")))
        })
        .collect()
}

/// Yields raw CBOR bytes, as a component written without the SDK would.
fn raw_emit(ctx: &Context, _: &Inputs) -> Result<(), OpError> {
    let RawEmitConfig { values } = ctx.config()?;
    for (key, hex) in values {
        let value = DynamicValue {
            output: "result".to_string(),
            mapping_key: key,
            value: unhex(&hex)?,
        };
        emit::yield_output(&value).map_err(OpError::failed)?;
    }
    Ok(())
}

/// Returns its input unchanged.
fn identity(_: &Context, inputs: &Inputs) -> Result<Value, OpError> {
    inputs.get("value")
}

#[derive(Deserialize)]
struct NapConfig {
    /// How long to sleep before returning the input.
    ms: u64,
}

/// A slow clone: sleeps `config.ms`, then returns its input.
fn nap(ctx: &Context, inputs: &Inputs) -> Result<Value, OpError> {
    let NapConfig { ms } = ctx.config()?;
    std::thread::sleep(std::time::Duration::from_millis(ms));
    inputs.get("value")
}

#[derive(Deserialize)]
struct FailOnConfig {
    /// Inputs that make the op fail.
    #[serde(default)]
    fail_on: Vec<i64>,
    /// Inputs that make the op trap (a Rust panic).
    #[serde(default)]
    panic_on: Vec<i64>,
    /// Ask for a retry on every attempt before this one.
    #[serde(default)]
    succeed_on_attempt: u32,
}

/// Returns its integer input, but fails or traps on the configured values.
fn fail_on(ctx: &Context, inputs: &Inputs) -> Result<i64, OpError> {
    let config: FailOnConfig = ctx.config()?;
    let value: i64 = inputs.get("value")?;
    if ctx.attempt() < config.succeed_on_attempt {
        return Err(OpError::retry(format!(
            "attempt {} is too early",
            ctx.attempt()
        )));
    }
    if config.panic_on.contains(&value) {
        panic!("value {value} makes this op panic");
    }
    if config.fail_on.contains(&value) {
        return Err(OpError::failed(format!("value {value} is unlucky")));
    }
    Ok(value)
}

/// Sums a list of integers.
fn sum(_: &Context, inputs: &Inputs) -> Result<i64, OpError> {
    Ok(inputs.get::<Vec<i64>>("values")?.iter().sum())
}

/// Counts the values of any list.
fn count(_: &Context, inputs: &Inputs) -> Result<usize, OpError> {
    Ok(inputs.get::<Vec<Value>>("values")?.len())
}

#[derive(Deserialize)]
struct BurnConfig {
    /// Rounds of integer arithmetic to do.
    rounds: u64,
}

/// A CPU-bound clone: `config.rounds` rounds of xorshift, then returns its input.
fn burn(ctx: &Context, inputs: &Inputs) -> Result<Value, OpError> {
    let BurnConfig { rounds } = ctx.config()?;
    let mut x = std::hint::black_box(0x9e37_79b9_7f4a_7c15_u64);
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x);
    inputs.get("value")
}

/// Returns a value for an output it never declared.
fn undeclared_output(_: &Context, _: &Inputs) -> Result<Outputs, OpError> {
    Ok(Outputs::new().value("surprise", &1))
}

/// Asks to be retried on every attempt; returns the attempt number once `config.succeed_on`
/// is reached (never, by default).
fn flaky(ctx: &Context, _: &Inputs) -> Result<u32, OpError> {
    #[derive(Deserialize)]
    struct FlakyConfig {
        succeed_on: Option<u32>,
    }
    let FlakyConfig { succeed_on } = ctx.config()?;
    if succeed_on.is_some_and(|n| ctx.attempt() >= n) {
        return Ok(ctx.attempt());
    }
    Err(OpError::retry("the weather is bad"))
}

fn ops() -> Vec<Op> {
    vec![
        Op::dynamic("fan_out", fan_out).describe("yields 0..config.n keyed k0, k1, ..."),
        Op::dynamic("emit_keys", emit_keys).describe("yields the keys in config.keys"),
        Op::dynamic("bad_cbor", bad_cbor).describe("yields bytes that are not CBOR"),
        Op::dynamic("raw_emit", raw_emit).describe("yields config.values: raw CBOR by key"),
        Op::new("identity", identity)
            .describe("returns its input")
            .input("value"),
        Op::new("count", count)
            .describe("returns the length of its input list")
            .input("values"),
        Op::new("burn", burn)
            .describe("burns config.rounds rounds of CPU, then returns its input")
            .input("value"),
        Op::new("nap", nap)
            .describe("sleeps config.ms, then returns its input")
            .input("value"),
        Op::new("fail_on", fail_on)
            .describe("returns its input; fails or panics on configured values")
            .input("value"),
        Op::new("sum", sum)
            .describe("sums a list of integers")
            .input("values"),
        Op::with_outputs("undeclared_output", undeclared_output)
            .describe("returns an output it did not declare")
            .output("result"),
        Op::new("flaky", flaky).describe("requests a retry until attempt config.succeed_on"),
    ]
}

shoal_sdk::export!(ops);

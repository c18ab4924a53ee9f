//! Ops for Shoal's own tests and benchmarks: well-behaved building blocks (`fan_out`,
//! `identity`, `sum`), ops with optional outputs (`branch`, `maybe_fan`, `maybe_out`), ops that
//! read their tags (`tagged`) or record metadata and user events (`record_facts`, `bad_fact`),
//! and ops that misbehave on purpose (bad keys, bad CBOR, traps, failures).
//!
//! Every op here is `#[op(no_schemas)]`: the host's tests hand them configs and inputs of the
//! wrong shape on purpose, to check the errors the ops themselves report, which a declared
//! schema would catch before the run.

use std::collections::BTreeMap;

use serde::Deserialize;
use shoal_sdk::bindings::shoal::op::{emit, types::DynamicValue};
use shoal_sdk::{
    AssetMaterialization, AssetObservation, Context, DynamicOutput, ExpectationResult,
    MetadataValue, OpError, Outputs, Value, op,
};

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

/// yields 0..config.n keyed k0, k1, ...
#[op(dynamic, no_schemas)]
fn fan_out(ctx: &Context, config: FanOutConfig) -> Result<(), OpError> {
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

// Valid or not, and ignoring the host's verdict, so that the host alone must catch bad keys.
/// yields the keys in config.keys
#[op(dynamic, no_schemas)]
fn emit_keys(ctx: &Context, config: EmitKeysConfig) {
    for (idx, key) in config.keys.into_iter().enumerate() {
        let _ignored = ctx.yield_output(DynamicOutput::new(&idx, key));
    }
}

// One value bypassing the SDK's encoder, through the raw bindings.
/// yields bytes that are not CBOR
#[op(dynamic, no_schemas)]
fn bad_cbor() -> Result<(), OpError> {
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

// Raw CBOR bytes, as a component written without the SDK would yield them.
/// yields config.values: raw CBOR by key
#[op(dynamic, no_schemas)]
fn raw_emit(config: RawEmitConfig) -> Result<(), OpError> {
    for (key, hex) in config.values {
        let value = DynamicValue {
            output: "result".to_string(),
            mapping_key: key,
            value: unhex(&hex)?,
        };
        emit::yield_output(&value).map_err(OpError::failed)?;
    }
    Ok(())
}

/// returns its input
#[op(no_schemas)]
fn identity(value: Value) -> Value {
    value
}

/// returns the length of its input list
#[op(no_schemas)]
fn count(values: Vec<Value>) -> usize {
    values.len()
}

#[derive(Deserialize)]
struct BurnConfig {
    /// Rounds of integer arithmetic to do.
    rounds: u64,
}

// A CPU-bound clone: xorshift rounds.
/// burns config.rounds rounds of CPU, then returns its input
#[op(no_schemas)]
fn burn(config: BurnConfig, value: Value) -> Value {
    let mut x = std::hint::black_box(0x9e37_79b9_7f4a_7c15_u64);
    for _ in 0..config.rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x);
    value
}

#[derive(Deserialize)]
struct NapConfig {
    /// How long to sleep before returning the input.
    ms: u64,
}

// A slow clone.
/// sleeps config.ms, then returns its input
#[op(no_schemas)]
fn nap(config: NapConfig, value: Value) -> Value {
    std::thread::sleep(std::time::Duration::from_millis(config.ms));
    value
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

/// returns its input; fails or panics on configured values
#[op(no_schemas)]
fn fail_on(ctx: &Context, config: FailOnConfig, value: i64) -> Result<i64, OpError> {
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

/// sums a list of integers
#[op(no_schemas)]
fn sum(values: Vec<i64>) -> i64 {
    values.iter().sum()
}

/// returns an output it did not declare
#[op(out = "result", no_schemas)]
fn undeclared_output() -> Outputs {
    Outputs::new().value("surprise", &1)
}

#[derive(Deserialize)]
struct FlakyConfig {
    succeed_on: Option<u32>,
}

// Returns the attempt number once `config.succeed_on` is reached (never, by default).
/// requests a retry until attempt config.succeed_on
#[op(no_schemas)]
fn flaky(ctx: &Context, config: FlakyConfig) -> Result<u32, OpError> {
    if config.succeed_on.is_some_and(|n| ctx.attempt() >= n) {
        return Ok(ctx.attempt());
    }
    Err(OpError::retry("the weather is bad"))
}

/// returns n on `even` or on `odd`, leaving the other out
#[op(optional_out = "even", optional_out = "odd", no_schemas)]
fn branch(n: i64) -> Outputs {
    let output = if n % 2 == 0 { "even" } else { "odd" };
    Outputs::new().value(output, &n)
}

#[derive(Deserialize)]
struct MaybeFanConfig {
    /// How many values to yield on `items`; 0 yields none.
    count: u64,
}

/// yields 0..config.count keyed k0, k1, ... on the optional dynamic output `items`
#[op(optional_dynamic_out = "items", no_schemas)]
fn maybe_fan(ctx: &Context, config: MaybeFanConfig) -> Result<(), OpError> {
    for i in 0..config.count {
        ctx.yield_output(DynamicOutput::new(&i, format!("k{i}")).output_name("items"))?;
    }
    Ok(())
}

/// returns n only when it is even
#[op(optional, no_schemas)]
fn maybe_out(n: i64) -> Option<i64> {
    (n % 2 == 0).then_some(n)
}

/// returns its step's tags as a map
#[op(no_schemas)]
fn tagged(ctx: &Context) -> BTreeMap<String, String> {
    ctx.tags()
        .into_iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

#[derive(Deserialize)]
struct RecordFactsConfig {
    /// The rows the op pretends to write: metadata of its outputs and events.
    rows: i64,
}

/// writes `rows` rows to warehouse/orders: records its materialization, an observation of its
/// source, two expectations (`has_rows` fails at 0 rows), metadata on `table` and on each of
/// the two `parts` it yields
#[op(out = "table", dynamic_out = "parts", no_schemas)]
fn record_facts(ctx: &Context, config: RecordFactsConfig) -> Result<Outputs, OpError> {
    let rows = config.rows;
    ctx.log_event(AssetObservation::new(["raw", "orders"]).description("read the source"))?;
    ctx.log_event(
        AssetMaterialization::new(["warehouse", "orders"])
            .partition("2026-12-01")
            .metadata("rows", rows)
            .metadata("path", MetadataValue::path("/data/orders.parquet")),
    )?;
    ctx.log_event(ExpectationResult::new(true, "no_nulls"))?;
    ctx.log_event(
        ExpectationResult::new(rows > 0, "has_rows")
            .description("the table is not empty")
            .metadata("rows", rows),
    )?;
    for part in 0..2_i64 {
        let key = format!("p{part}");
        ctx.add_output_metadata("parts", Some(&key), [("part", part)])?;
        ctx.yield_output(DynamicOutput::new(&part, key).output_name("parts"))?;
    }
    ctx.add_output_metadata(
        "table",
        None,
        [
            ("rows", MetadataValue::from(rows)),
            (
                "schema",
                MetadataValue::json(&serde_json::json!({"id": "int"})),
            ),
        ],
    )?;
    Ok(Outputs::new().value("table", &rows))
}

#[derive(Deserialize)]
struct BadFactConfig {
    /// `empty_key`, `bad_json`, `undeclared` or `yielded`.
    kind: String,
}

/// records the bad event or metadata config.kind names, and fails with the host's refusal
#[op(out = "value", dynamic_out = "items", no_schemas)]
fn bad_fact(ctx: &Context, config: BadFactConfig) -> Result<Outputs, OpError> {
    match config.kind.as_str() {
        "empty_key" => ctx.log_event(AssetMaterialization::new(Vec::<String>::new()))?,
        "bad_json" => ctx.add_output_metadata(
            "value",
            None,
            [("j", MetadataValue::Json("{nope".to_string()))],
        )?,
        "undeclared" => ctx.add_output_metadata("nope", None, [("rows", 1)])?,
        "yielded" => {
            ctx.yield_output(DynamicOutput::new(&0, "k0").output_name("items"))?;
            ctx.add_output_metadata("items", Some("k0"), [("late", true)])?;
        }
        other => return Err(OpError::bad_input(format!("unknown kind `{other}`"))),
    }
    Ok(Outputs::new().value("value", &0))
}

shoal_sdk::export!(
    branch,
    maybe_fan,
    maybe_out,
    tagged,
    record_facts,
    bad_fact,
    fan_out,
    emit_keys,
    bad_cbor,
    raw_emit,
    identity,
    count,
    burn,
    nap,
    fail_on,
    sum,
    undeclared_output,
    flaky,
);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use shoal_sdk::testing::{RunError, build_op_context};

    use super::*;

    #[test]
    fn fan_out_fails_its_first_attempt_when_asked() {
        let config = json!({"n": 5, "fail_first_attempt_after": 2});
        let run = build_op_context().config(&config).run(fan_out::op());
        assert_eq!(
            run.op_error(),
            Some(&OpError::retry("interrupted after 2 values"))
        );
        assert_eq!(run.yielded::<u64>("result").len(), 2);
        let run = build_op_context()
            .config(&config)
            .attempt(2)
            .run(fan_out::op());
        assert_eq!(run.dynamic::<u64>("result").len(), 5);
    }

    #[test]
    fn config_errors_name_the_field() {
        let run = build_op_context().op_name("fan_out_2").run(fan_out::op());
        assert_eq!(
            run.op_error().map(OpError::message),
            Some("op `fan_out_2`: config: missing field `n`")
        );
        let run = build_op_context()
            .config(&json!({"fail_on": [1, "two"]}))
            .input("value", &1)
            .run(fail_on::op());
        assert_eq!(
            run.op_error().map(OpError::message),
            Some("op `fail_on`: config field `fail_on[1]`: invalid type: string, expected integer")
        );
    }

    #[test]
    fn fail_on_fails_panics_or_retries_as_configured() {
        let config = json!({"fail_on": [3], "panic_on": [4], "succeed_on_attempt": 2});
        let at = |attempt: u32, value: i64| {
            build_op_context()
                .config(&config)
                .attempt(attempt)
                .input("value", &value)
                .run(fail_on::op())
        };
        assert_eq!(
            at(1, 1).op_error(),
            Some(&OpError::retry("attempt 1 is too early"))
        );
        assert_eq!(at(2, 1).output::<i64>("result"), 1);
        assert_eq!(
            at(2, 3).op_error(),
            Some(&OpError::failed("value 3 is unlucky"))
        );
        assert_eq!(
            at(2, 4).error(),
            Some(&RunError::Panic("value 4 makes this op panic".to_string()))
        );
    }

    #[test]
    fn emit_keys_leaves_bad_keys_to_the_host() {
        let run = build_op_context()
            .config(&json!({"keys": ["ok", "not ok"]}))
            .run(emit_keys::op());
        assert!(matches!(run.error(), Some(RunError::Rejected(m)) if m.contains("`not ok`")));
    }

    #[test]
    fn undeclared_output_is_caught() {
        let run = build_op_context().run(undeclared_output::op());
        assert_eq!(
            run.error(),
            Some(&RunError::Rejected(
                "op produced output `surprise`, which it does not declare".to_string()
            ))
        );
    }

    #[test]
    fn optional_outputs_may_be_left_out() {
        let run = build_op_context().input("n", &3).run(branch::op());
        assert_eq!(run.output::<i64>("odd"), 3);
        assert!(!run.has_output("even"));
        let run = build_op_context()
            .config(&json!({"count": 0}))
            .run(maybe_fan::op());
        assert!(run.dynamic::<u64>("items").is_empty());
        let run = build_op_context().input("n", &3).run(maybe_out::op());
        assert!(!run.has_output("result"));
        assert!(!maybe_out::op().info().outputs[0].required);
        let run = build_op_context().input("n", &4).run(maybe_out::op());
        assert_eq!(run.output::<i64>("result"), 4);
    }

    #[test]
    fn tagged_returns_its_tags() {
        let run = build_op_context()
            .tag("team", "data")
            .tag("tier", "1")
            .run(tagged::op());
        let tags: BTreeMap<String, String> = run.output("result");
        assert_eq!(tags["team"], "data");
        assert_eq!(tags.len(), 2);
    }

    #[test]
    fn record_facts_records_events_and_metadata() {
        let run = build_op_context()
            .config(&json!({"rows": 0}))
            .run(record_facts::op());
        assert!(run.is_success(), "{:?}", run.error());
        assert_eq!(run.events().len(), 4);
        assert_eq!(
            run.output_metadata("table", None)["rows"],
            MetadataValue::Int(0)
        );
        assert_eq!(
            run.output_metadata("parts", Some("p1"))["part"],
            MetadataValue::Int(1)
        );
    }

    #[test]
    fn bad_facts_fail_with_the_hosts_words() {
        for (kind, expected) in [
            ("empty_key", "an asset key must have at least one component"),
            ("bad_json", "metadata `j`: `{nope` is not JSON"),
            ("undeclared", "op has no output `nope`"),
            ("yielded", "output `items` key `k0` was already yielded"),
        ] {
            let run = build_op_context()
                .config(&json!({ "kind": kind }))
                .run(bad_fact::op());
            let message = run.op_error().map(OpError::message).unwrap_or_default();
            assert!(message.starts_with(expected), "{kind}: {message}");
        }
    }

    #[test]
    fn no_op_declares_a_schema() {
        for op in [fan_out::op(), fail_on::op(), sum::op(), flaky::op()] {
            let info = op.info();
            assert_eq!(info.config_schema, None, "{}", info.name);
            assert!(info.inputs.iter().all(|i| i.schema.is_none()));
            assert!(info.outputs.iter().all(|o| o.schema.is_none()));
        }
    }
}

//! Ops made with `#[op]`, exported with `export!`, described and run natively through
//! `shoal_sdk::testing`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shoal_sdk::bindings::exports::shoal::op::op::Guest;
use shoal_sdk::bindings::shoal::op::types as wit;
use shoal_sdk::testing::{LogLine, RunError, build_op_context};
use shoal_sdk::{
    AssetMaterialization, AssetObservation, Context, DynamicOutput, ExpectationResult, Level,
    MetadataValue, Op, OpError, Outputs, UserEvent, Value, op,
};

#[derive(Deserialize, Serialize, JsonSchema)]
struct LoadConfig {
    /// Elements per piece.
    #[serde(default = "two")]
    chunk_size: usize,
}

fn two() -> usize {
    2
}

/// Yields `0..10` in chunks of `chunk_size`
/// (default two), keyed by chunk index.
#[op(dynamic)]
fn load_pieces(ctx: &Context, config: LoadConfig) -> Result<(), OpError> {
    if config.chunk_size == 0 {
        return Err(OpError::bad_input("config `chunk_size` must be at least 1"));
    }
    let data: Vec<i64> = (0..10).collect();
    for (idx, piece) in data.chunks(config.chunk_size).enumerate() {
        ctx.yield_output(DynamicOutput::new(piece, idx.to_string()))?;
    }
    Ok(())
}

/// Doubles every element of one piece.
#[op]
fn compute_piece(
    ctx: &Context,
    /// One chunk of the data.
    piece: Vec<i64>,
) -> Vec<i64> {
    ctx.log().info(format_args!(
        "piece {} of attempt {}",
        ctx.mapping_key().unwrap_or("-"),
        ctx.attempt()
    ));
    shoal_sdk::info!("via the macro");
    piece.iter().map(|x| x * 2).collect()
}

/// Sums all the computed pieces.
#[op]
fn merge(pieces: Vec<Vec<i64>>) -> i64 {
    pieces.iter().flatten().sum()
}

/// Adds two integers.
#[op]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Returns its input unchanged.
#[op]
fn echo(value: Value) -> Value {
    value
}

/// Fails with a message.
#[op]
fn fail(message: String) -> Result<i64, String> {
    Err(message)
}

/// Asks for a retry until the third attempt.
#[op]
fn flaky(ctx: &Context) -> Result<u32, OpError> {
    match ctx.retry_number() {
        0 | 1 => Err(OpError::retry(format!("attempt {}", ctx.attempt()))),
        _ => Ok(ctx.attempt()),
    }
}

/// Reads a file that is not there.
#[op]
fn read() -> std::io::Result<String> {
    std::fs::read_to_string("/this/file/does/not/exist")
}

/// Returns (not yields) one dynamic output per page.
#[op(dynamic)]
fn pages() -> Vec<DynamicOutput> {
    ["home", "about"]
        .iter()
        .enumerate()
        .map(|(idx, page)| DynamicOutput::new(page, idx.to_string()))
        .collect()
}

/// Yields what its config says, keys and all.
#[op(dynamic)]
fn yield_keys(ctx: &Context, config: Vec<String>) -> Result<(), OpError> {
    for key in config {
        ctx.yield_output(DynamicOutput::new(&key, key.clone()))?;
    }
    Ok(())
}

/// Two values and one dynamic output.
#[op(out = "sum", out = "count", dynamic_out = "items")]
fn stats(ctx: &Context, values: Vec<i64>) -> Result<Outputs, OpError> {
    for (idx, value) in values.iter().enumerate() {
        ctx.yield_output(DynamicOutput::new(value, format!("i{idx}")).output_name("items"))?;
    }
    Ok(Outputs::new()
        .value("sum", &values.iter().sum::<i64>())
        .value("count", &values.len()))
}

/// Declares `result` but returns something else.
#[op(out = "result")]
fn wrong_output() -> Outputs {
    Outputs::new().value("surprise", &1)
}

/// Panics.
#[op]
fn boom() -> i64 {
    panic!("kaboom")
}

#[op(name = "renamed", description = "Not the doc comment.", no_schemas)]
/// The doc comment.
fn with_args(config: LoadConfig, n: i64) -> i64 {
    n * config.chunk_size as i64
}

/// Logs at every level.
#[op]
fn chatty(ctx: &Context) {
    let log = ctx.log();
    log.trace("t");
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e");
    shoal_sdk::warn!("{} {}", "macro", 1);
}

/// An op built by hand, declaring its input twice.
fn twice(_: &Context, inputs: &shoal_sdk::Inputs) -> Result<i64, OpError> {
    inputs.get("x")
}

fn ops() -> Vec<Op> {
    vec![
        load_pieces::op(),
        compute_piece::op(),
        merge::op(),
        echo::op(),
        Op::new("twice", twice).input("x").input("x"),
    ]
}

shoal_sdk::export!(fn ops);

fn schema(text: &Option<String>) -> serde_json::Value {
    serde_json::from_str(text.as_ref().expect("a schema")).unwrap()
}

#[test]
fn describe_lists_names_descriptions_inputs_outputs_and_schemas() {
    let infos = <__ShoalComponent as Guest>::describe();
    let names: Vec<&str> = infos.iter().map(|info| info.name.as_str()).collect();
    assert_eq!(
        names,
        ["load_pieces", "compute_piece", "merge", "echo", "twice"]
    );

    let load = &infos[0];
    assert_eq!(
        load.description,
        "Yields `0..10` in chunks of `chunk_size` (default two), keyed by chunk index."
    );
    assert!(load.inputs.is_empty());
    assert_eq!(load.outputs.len(), 1);
    assert_eq!(load.outputs[0].name, "result");
    assert!(load.outputs[0].dynamic);
    assert_eq!(load.outputs[0].schema, None);
    let config = schema(&load.config_schema);
    assert_eq!(
        config["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(config["type"], "object");
    assert_eq!(config["properties"]["chunk_size"]["type"], "integer");
    assert_eq!(config["properties"]["chunk_size"]["default"], 2);
    assert!(config.get("required").is_none(), "{config}");

    let compute = &infos[1];
    assert_eq!(compute.description, "Doubles every element of one piece.");
    assert_eq!(compute.config_schema, None);
    assert_eq!(compute.inputs.len(), 1);
    assert_eq!(compute.inputs[0].name, "piece");
    assert_eq!(compute.inputs[0].description, "One chunk of the data.");
    let piece = schema(&compute.inputs[0].schema);
    assert_eq!(piece["type"], "array");
    assert_eq!(piece["items"]["type"], "integer");
    assert!(!compute.outputs[0].dynamic);
    assert_eq!(schema(&compute.outputs[0].schema)["type"], "array");

    let echo = &infos[3];
    assert_eq!(echo.inputs[0].schema, None, "ciborium::Value has no schema");
    assert_eq!(echo.outputs[0].schema, None);

    let twice = &infos[4];
    let inputs: Vec<&str> = twice.inputs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(inputs, ["x", "x"]);
}

#[test]
fn attribute_arguments_override_the_name_the_description_and_the_schemas() {
    let op = with_args::op();
    let info = op.info();
    assert_eq!(info.name, "renamed");
    assert_eq!(info.description, "Not the doc comment.");
    assert_eq!(info.config_schema, None);
    assert_eq!(info.inputs[0].schema, None);
    assert_eq!(info.outputs[0].schema, None);
    let run = build_op_context()
        .config(&json!({"chunk_size": 3}))
        .input("n", &5)
        .run(op);
    assert_eq!(run.output::<i64>("result"), 15);
}

#[test]
fn declared_outputs_are_declared_in_order() {
    let op = stats::op();
    let outputs: Vec<(&str, bool)> = op
        .info()
        .outputs
        .iter()
        .map(|o| (o.name.as_str(), o.dynamic))
        .collect();
    assert_eq!(outputs, [("sum", false), ("count", false), ("items", true)]);
    let run = build_op_context().input("values", &[4, 5]).run(op);
    assert_eq!(run.output::<i64>("sum"), 9);
    assert_eq!(run.output::<usize>("count"), 2);
    assert_eq!(
        run.dynamic::<i64>("items"),
        [("i0".to_string(), 4), ("i1".to_string(), 5)]
    );
}

#[test]
fn a_dynamic_op_yields_with_its_config_defaults() {
    let run = build_op_context().run(load_pieces::op());
    let pieces = run.dynamic::<Vec<i64>>("result");
    assert_eq!(pieces.len(), 5);
    assert_eq!(pieces[0], ("0".to_string(), vec![0, 1]));
    assert_eq!(pieces[4], ("4".to_string(), vec![8, 9]));

    let run = build_op_context()
        .config(&LoadConfig { chunk_size: 4 })
        .run(load_pieces::op());
    let sizes: Vec<usize> = run
        .dynamic::<Vec<i64>>("result")
        .iter()
        .map(|(_, piece)| piece.len())
        .collect();
    assert_eq!(sizes, [4, 4, 2]);
}

#[test]
fn config_and_input_errors_name_the_op_the_field_and_the_input() {
    let run = build_op_context()
        .config(&json!({"chunk_size": "x"}))
        .run(load_pieces::op());
    assert_eq!(
        run.op_error(),
        Some(&OpError::BadInput(
            "op `load_pieces`: config field `chunk_size`: invalid type: string, expected integer"
                .to_string()
        ))
    );
    let run = build_op_context()
        .op_name("add_2")
        .input("a", &1)
        .input("b", &"two")
        .run(add::op());
    assert_eq!(
        run.error().unwrap().to_string(),
        "op rejected its input: op `add_2`: input `b`: invalid type: string, expected integer"
    );
    let run = build_op_context()
        .input("pieces", &json!([[1], [2, "x"]]))
        .run(merge::op());
    assert_eq!(
        run.op_error().unwrap().message(),
        "op `merge`: input `pieces` at `[1][1]`: invalid type: string, expected integer"
    );
}

#[test]
fn errors_convert_into_op_errors() {
    let run = build_op_context().input("message", &"no").run(fail::op());
    assert_eq!(run.op_error(), Some(&OpError::Failed("no".to_string())));
    let run = build_op_context().run(read::op());
    assert!(matches!(run.op_error(), Some(OpError::Failed(m)) if m.contains("No such file")));
    let run = build_op_context().run(flaky::op());
    assert_eq!(
        run.op_error(),
        Some(&OpError::RetryRequested("attempt 1".to_string()))
    );
    let run = build_op_context().retry_number(2).run(flaky::op());
    assert_eq!(run.output::<u32>("result"), 3);
}

#[test]
fn a_clone_knows_its_keys_and_attempt_and_logs() {
    let run = build_op_context()
        .mapping_key("3")
        .attempt(2)
        .input("piece", &vec![1, 2])
        .run(compute_piece::op());
    assert_eq!(run.output::<Vec<i64>>("result"), [2, 4]);
    assert_eq!(
        run.logs(),
        [
            LogLine {
                level: Level::Info,
                message: "piece 3 of attempt 2".to_string()
            },
            LogLine {
                level: Level::Info,
                message: "via the macro".to_string()
            },
        ]
    );
}

#[test]
fn every_level_is_logged() {
    let run = build_op_context().run(chatty::op());
    let levels: Vec<(Level, &str)> = run
        .logs()
        .iter()
        .map(|line| (line.level, line.message.as_str()))
        .collect();
    assert_eq!(
        levels,
        [
            (Level::Trace, "t"),
            (Level::Debug, "d"),
            (Level::Info, "i"),
            (Level::Warn, "w"),
            (Level::Error, "e"),
            (Level::Warn, "macro 1"),
        ]
    );
    // An op returning nothing has the output `result`, null.
    assert_eq!(run.output::<Option<i64>>("result"), None);
}

#[test]
fn the_context_reports_where_the_step_sits() {
    let ctx = build_op_context()
        .run_id("r1")
        .op_name("inner_sum")
        .mapping_keys(["4", "2"])
        .attempt(3)
        .build();
    assert_eq!(ctx.run_id(), "r1");
    assert_eq!(ctx.step_key(), "inner_sum[4][2]");
    assert_eq!(ctx.op_name(), "inner_sum");
    assert_eq!(ctx.mapping_key(), Some("2"));
    assert_eq!(ctx.mapping_keys(), ["4", "2"]);
    assert_eq!(ctx.attempt(), 3);
    assert_eq!(ctx.retry_number(), 2);

    let plain = build_op_context().build();
    assert_eq!(plain.step_key(), "op");
    assert_eq!(plain.mapping_key(), None);
    assert_eq!(plain.retry_number(), 0);
}

#[test]
fn functions_stay_callable_with_a_test_context() {
    assert_eq!(add(2, 3), 5);
    assert_eq!(merge(vec![vec![1, 2], vec![3]]), 6);

    let ctx = build_op_context().mapping_key("7").build();
    assert_eq!(compute_piece(&ctx, vec![5]), [10]);
    assert_eq!(ctx.logs().len(), 2);
    assert_eq!(ctx.logs()[0].message, "piece 7 of attempt 1");

    let ctx = build_op_context().config(&json!({"chunk_size": 6})).build();
    let config: LoadConfig = ctx.op_config().unwrap();
    load_pieces(&ctx, config).unwrap();
    let pieces = ctx.yielded::<Vec<i64>>("result");
    assert_eq!(pieces.len(), 2);
    assert_eq!(pieces[1], ("1".to_string(), vec![6, 7, 8, 9]));
}

#[test]
fn returned_dynamic_outputs_come_after_yielded_ones() {
    let run = build_op_context().run(pages::op());
    assert_eq!(
        run.dynamic::<String>("result"),
        [
            ("0".to_string(), "home".to_string()),
            ("1".to_string(), "about".to_string())
        ]
    );
}

#[test]
fn yields_are_checked_as_the_host_checks_them() {
    let run = build_op_context()
        .config(&["a", "b c"])
        .run(yield_keys::op());
    assert_eq!(
        run.error(),
        Some(&RunError::Rejected(
            "invalid mapping key `b c` on output `result`: it contains ' '; only ASCII \
             letters, digits and `_` are allowed"
                .to_string()
        ))
    );
    assert_eq!(run.yielded::<String>("result").len(), 1);

    let run = build_op_context().config(&["a", "a"]).run(yield_keys::op());
    assert_eq!(
        run.error().unwrap().to_string(),
        "mapping key `a` was yielded twice on output `result`"
    );

    // Called directly, the context checks keys too; the op returns the rejection.
    let ctx = build_op_context().config(&["k", "k"]).build();
    let err = yield_keys(&ctx, vec!["k".to_string(), "k".to_string()]).unwrap_err();
    assert_eq!(
        err,
        OpError::Failed("mapping key `k` was yielded twice on output `result`".to_string())
    );
}

#[test]
fn outputs_are_checked_against_the_declaration() {
    let run = build_op_context().run(wrong_output::op());
    assert_eq!(
        run.error().unwrap().to_string(),
        "op produced output `surprise`, which it does not declare"
    );
}

#[test]
fn a_panic_is_a_failed_run() {
    let run = build_op_context().run(boom::op());
    assert_eq!(run.error(), Some(&RunError::Panic("kaboom".to_string())));
    assert!(!run.is_success());
}

#[test]
#[should_panic(expected = "op `add` declares input `b`, which the test does not give")]
fn a_missing_input_is_the_tests_mistake() {
    build_op_context().input("a", &1).run(add::op());
}

#[test]
fn the_export_runs_ops_by_name() {
    let ctx = wit::Context {
        run_id: "r".to_string(),
        step_key: "merge".to_string(),
        mapping_keys: Vec::new(),
        attempt: 1,
        config: shoal_sdk::to_cbor(&BTreeMap::<String, i64>::new()),
        tags: Vec::new(),
    };
    let inputs = vec![wit::NamedValue {
        name: "pieces".to_string(),
        value: shoal_sdk::to_cbor(&[[1, 2], [3, 4]]),
    }];
    let outputs =
        <__ShoalComponent as Guest>::run("merge".to_string(), ctx.clone(), inputs).unwrap();
    assert_eq!(outputs.values[0].name, "result");
    let total: i64 = shoal_sdk::from_cbor(&outputs.values[0].value, "result").unwrap();
    assert_eq!(total, 10);
    let missing = <__ShoalComponent as Guest>::run("nope".to_string(), ctx, Vec::new());
    assert_eq!(
        missing.unwrap_err(),
        OpError::Failed("this component has no op `nope`".to_string())
    );
}

/// Returns `n` when it is even.
#[op(optional)]
fn even(n: i64) -> Option<i64> {
    (n % 2 == 0).then_some(n)
}

/// Yields `0..n` on an optional dynamic `result`.
#[op(dynamic, optional)]
fn upto(ctx: &Context, n: u32) -> Result<(), OpError> {
    for i in 0..n {
        ctx.yield_output(DynamicOutput::new(&i, format!("k{i}")))?;
    }
    Ok(())
}

/// Splits by sign.
#[op(optional_out = "positive", out = "seen")]
fn sign(n: i64) -> Outputs {
    Outputs::new()
        .maybe_value("positive", (n > 0).then_some(n))
        .value("seen", &true)
}

#[test]
fn optional_outputs_are_declared_and_may_be_left_out() {
    let info = even::op();
    let result = &info.info().outputs[0];
    assert!(!result.required && !result.dynamic);
    // The schema is of the value, not of the `Option`.
    assert_eq!(
        result.schema.as_deref().map(|s| s.contains("null")),
        Some(false),
        "{:?}",
        result.schema
    );
    assert!(
        !build_op_context()
            .input("n", &3)
            .run(even::op())
            .has_output("result")
    );
    assert_eq!(
        build_op_context()
            .input("n", &4)
            .run(even::op())
            .output::<i64>("result"),
        4
    );
    let upto_info = upto::op();
    assert!(!upto_info.info().outputs[0].required && upto_info.info().outputs[0].dynamic);
    let sign_op = sign::op();
    let required: Vec<_> = sign_op
        .info()
        .outputs
        .iter()
        .map(|o| (o.name.as_str(), o.required))
        .collect();
    assert_eq!(required, [("positive", false), ("seen", true)]);
    let run = build_op_context().input("n", &-1).run(sign::op());
    assert!(run.is_success() && !run.has_output("positive"));
    // A required output still must be there.
    let op = Op::with_outputs("forgets", |_, _| Ok(Outputs::new())).output("must");
    let run = build_op_context().run(op);
    assert_eq!(
        run.error(),
        Some(&RunError::Rejected(
            "op did not produce output `must`".to_string()
        ))
    );
}

#[test]
fn tags_are_read_from_the_context() {
    let ctx = build_op_context()
        .tag("team", "data")
        .tag("env", "prod")
        .build();
    assert_eq!(ctx.get_tag("team"), Some("data"));
    assert!(ctx.has_tag("env") && !ctx.has_tag("owner"));
    assert_eq!(
        ctx.tags().into_iter().collect::<Vec<_>>(),
        [("env", "prod"), ("team", "data")]
    );
}

/// Writes a table and says so.
#[op(out = "table", dynamic_out = "parts")]
fn write_table(ctx: &Context) -> Result<Outputs, OpError> {
    ctx.log_event(
        AssetMaterialization::new(["warehouse", "orders"])
            .description("written")
            .partition("p")
            .metadata("rows", 3),
    )?;
    ctx.log_event(AssetObservation::new(["raw"]))?;
    ctx.log_event(ExpectationResult::new(false, "has_ids").metadata("missing", 2))?;
    ctx.add_output_metadata("parts", Some("a"), [("n", 1)])?;
    ctx.yield_output(DynamicOutput::new(&1, "a").output_name("parts"))?;
    ctx.add_output_metadata(
        "table",
        None,
        [
            ("rows", MetadataValue::from(2)),
            ("where", MetadataValue::url("https://x")),
        ],
    )?;
    ctx.add_output_metadata("table", None, [("rows", 3)])?;
    Ok(Outputs::new().value("table", &3))
}

#[test]
fn events_and_metadata_are_captured() {
    let run = build_op_context().run(write_table::op());
    assert!(run.is_success(), "{:?}", run.error());
    let events = run.events();
    assert_eq!(events.len(), 3);
    let UserEvent::AssetMaterialization(asset) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(asset.asset_key, ["warehouse", "orders"]);
    assert_eq!(asset.partition.as_deref(), Some("p"));
    assert!(matches!(&events[2], UserEvent::ExpectationResult(r) if !r.success));
    let table = run.output_metadata("table", None);
    assert_eq!(table["rows"], MetadataValue::Int(3), "a later label wins");
    assert_eq!(table["where"], MetadataValue::Url("https://x".into()));
    assert_eq!(
        run.output_metadata("parts", Some("a"))["n"],
        MetadataValue::Int(1)
    );
}

#[test]
fn bad_events_and_metadata_are_refused_as_the_host_would() {
    let ctx = build_op_context().build();
    let err = ctx
        .log_event(AssetMaterialization::new(Vec::<String>::new()))
        .unwrap_err();
    assert_eq!(
        err.message(),
        "an asset key must have at least one component"
    );
    let err = ctx.log_event(ExpectationResult::new(true, "")).unwrap_err();
    assert_eq!(err.message(), "an expectation result needs a label");
    let err = ctx
        .add_output_metadata("result", None, [("j", MetadataValue::Json("{".into()))])
        .unwrap_err();
    assert!(
        err.message().starts_with("metadata `j`: `{` is not JSON"),
        "{err:?}"
    );
    let err = ctx
        .add_output_metadata("result", None, [("", 1)])
        .unwrap_err();
    assert_eq!(err.message(), "a metadata entry needs a label");
    assert!(ctx.events().is_empty());

    let op = Op::with_outputs("late", |ctx, _| {
        ctx.yield_output(DynamicOutput::new(&1, "k"))?;
        ctx.add_output_metadata("result", Some("k"), [("late", true)])?;
        Ok(Outputs::new())
    })
    .dynamic_output("result");
    let run = build_op_context().run(op);
    assert_eq!(
        run.op_error().map(OpError::message),
        Some("output `result` key `k` was already yielded: add its metadata before yielding")
    );
    let op = Op::with_outputs("unknown", |ctx, _| {
        ctx.add_output_metadata("nope", None, [("n", 1)])?;
        Ok(Outputs::new())
    });
    let run = build_op_context().run(op);
    assert_eq!(
        run.op_error().map(OpError::message),
        Some("op has no output `nope`")
    );
}

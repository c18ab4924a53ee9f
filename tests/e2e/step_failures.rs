//! Steps that fail at run time: the step fails with a specific error, its siblings complete,
//! what depends on it is skipped, the run exits 1 and the summary names the step.

use serde_json::json;

use crate::support::{TempJob, failure, of_kind};

#[test]
fn one_failing_clone_of_many_fails_only_itself_and_the_collect() {
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 10 }\n\
         [ops.fail_on]\ncomponent = 'testkit'\nconfig = { fail_on = [3] }\ninputs.value = { map = 'fan_out' }\n\
         [ops.identity]\ncomponent = 'testkit'\ninputs.value = { from = 'fail_on' }\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'identity' }\n",
    );
    let ran = job.run(&["--json"]).expect_code(1);
    let events = ran.events();
    let failed = failure(&events, "fail_on[k3]");
    assert_eq!(failed["error_kind"], "op_failed");
    assert_eq!(failed["error"], "op failed: value 3 is unlucky");
    assert_eq!(
        of_kind(&events, "STEP_SUCCESS")
            .iter()
            .filter(|e| e["step_key"].as_str().unwrap().starts_with("identity["))
            .count(),
        9
    );
    let skipped: Vec<_> = of_kind(&events, "STEP_SKIPPED")
        .iter()
        .map(|e| e["step_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(skipped, ["identity[k3]", "sum"]);
    let end = events.last().unwrap();
    assert_eq!(end["event"], "RUN_FAILURE");
    assert_eq!(end["failed_steps"], json!(["fail_on[k3]"]));
    assert!(
        ran.stderr
            .contains("failed  fail_on[k3]: op failed: value 3 is unlucky"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("skipped sum: upstream step `identity[k3]` was skipped"),
        "{}",
        ran.stderr
    );

    // Without --json, the completed clones' outputs are still printed.
    let human = job.run(&[]).expect_code(1);
    let outputs = human.json();
    assert_eq!(outputs["sum"], serde_json::Value::Null);
}

fn emit_keys(keys: &str) -> TempJob {
    TempJob::new(&format!(
        "[ops.emit_keys]\ncomponent = 'testkit'\nconfig = {{ keys = {keys} }}\n\
         [ops.identity]\ncomponent = 'testkit'\ninputs.value = {{ map = 'emit_keys' }}\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = {{ collect = 'identity' }}\n"
    ))
}

#[test]
fn a_duplicate_mapping_key_fails_the_producer_naming_the_key() {
    let events = emit_keys("['a', 'b', 'a', 'c']")
        .run(&["--json"])
        .expect_code(1)
        .events();
    let failed = failure(&events, "emit_keys");
    assert_eq!(failed["error_kind"], "duplicate_mapping_key");
    assert_eq!(
        failed["error"],
        "mapping key `a` was yielded twice on output `result`"
    );
    // Values yielded before the duplicate were valid and their clones ran; nothing after it.
    let succeeded: Vec<_> = of_kind(&events, "STEP_SUCCESS")
        .iter()
        .map(|e| e["step_key"].clone())
        .collect();
    assert_eq!(succeeded.len(), 2);
    assert!(succeeded.contains(&json!("identity[a]")) && succeeded.contains(&json!("identity[b]")));
    assert!(
        of_kind(&events, "STEP_SKIPPED")
            .iter()
            .any(|e| e["step_key"] == "sum")
    );
}

#[test]
fn an_invalid_mapping_key_fails_the_producer_with_the_rule() {
    for (key, reason) in [
        (
            "'has space'",
            "invalid mapping key `has space` on output `result`: it contains ' '",
        ),
        (
            "''",
            "invalid mapping key `` on output `result`: it is empty",
        ),
        (
            "'a.b'",
            "invalid mapping key `a.b` on output `result`: it contains '.'",
        ),
        (
            &format!("'{}'", "k".repeat(129)),
            "is 129 bytes long; the limit is 128",
        ),
    ] {
        let events = emit_keys(&format!("[{key}]"))
            .run(&["--json"])
            .expect_code(1)
            .events();
        let failed = failure(&events, "emit_keys");
        assert_eq!(failed["error_kind"], "invalid_mapping_key");
        assert!(
            failed["error"].as_str().unwrap().contains(reason),
            "{failed}"
        );
    }
}

#[test]
fn invalid_cbor_from_a_guest_is_rejected() {
    let job = TempJob::new(
        "[ops.bad_cbor]\ncomponent = 'testkit'\n\
         [ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'bad_cbor' }\n",
    );
    let events = job.run(&["--json"]).expect_code(1).events();
    let failed = failure(&events, "bad_cbor");
    assert_eq!(failed["error_kind"], "invalid_cbor");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .starts_with("output `result` key `k0`: invalid CBOR"),
        "{failed}"
    );
    assert!(
        of_kind(&events, "STEP_START")
            .iter()
            .all(|e| e["step_key"] == "bad_cbor")
    );
}

#[test]
fn a_panicking_guest_traps_with_its_message() {
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 4 }\n\
         [ops.fail_on]\ncomponent = 'testkit'\nconfig = { panic_on = [2] }\ninputs.value = { map = 'fan_out' }\n",
    );
    let ran = job.run(&["--json"]).expect_code(1);
    let events = ran.events();
    let failed = failure(&events, "fail_on[k2]");
    assert_eq!(failed["error_kind"], "trap");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("value 2 makes this op panic"),
        "{failed}"
    );
    // The examples keep their symbol names: the frames name the op's function (mangled).
    assert!(
        failed["backtrace"]
            .as_str()
            .unwrap()
            .contains("testkit.wasm!_ZN7testkit18__shoal_op_fail_on"),
        "{failed}"
    );
    assert_eq!(of_kind(&events, "STEP_SUCCESS").len(), 4);
}

#[test]
fn a_runaway_guest_times_out_and_the_rest_completes() {
    let job = TempJob::new(
        "[limits]\ntimeout = '500ms'\n\
         [ops.spin]\ncomponent = 'adversary'\nlimits = { fuel = 9_000_000_000_000_000_000 }\n\
         [ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 3 }\n\
         [ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out' }\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'identity' }\n",
    );
    let ran = job.run(&["--max-concurrent", "1"]).expect_code(1);
    assert!(
        ran.stderr.contains("failed  spin: timed out after 500ms"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.json()["sum"], 3);
}

#[test]
fn op_errors_are_typed() {
    let job = TempJob::new(
        "[ops.flaky]\ncomponent = 'testkit'\n\
         [ops.undeclared_output]\ncomponent = 'testkit'\n\
         [ops.fail_on]\ncomponent = 'testkit'\ninputs.value = { value = 'not a number' }\n",
    );
    let events = job.run(&["--json"]).expect_code(1).events();
    let flaky = failure(&events, "flaky");
    assert_eq!(flaky["error_kind"], "retry_requested");
    assert_eq!(flaky["error"], "op requested a retry: the weather is bad");
    let undeclared = failure(&events, "undeclared_output");
    assert_eq!(
        undeclared["error"],
        "op produced output `surprise`, which it does not declare"
    );
    let bad_input = failure(&events, "fail_on");
    assert_eq!(bad_input["error_kind"], "bad_input");
    assert_eq!(
        bad_input["error"],
        "op rejected its input: op `fail_on`: input `value`: invalid type: string, expected integer"
    );
}

#[test]
fn config_and_inputs_of_the_wrong_type_name_the_op_the_field_and_the_type() {
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 'x' }\n\
         [ops.fan_out_2]\ncomponent = 'testkit'\nop = 'fan_out'\n\
         [ops.fail_on]\ncomponent = 'testkit'\nconfig = { fail_on = [1, 'two'] }\n\
         inputs.value = { value = 1 }\n\
         [ops.identity]\ncomponent = 'testkit'\ninputs.value = { value = 'x' }\n\
         [ops.fail_on_2]\ncomponent = 'testkit'\nop = 'fail_on'\ninputs.value = { from = 'identity' }\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = { value = [1, 2, 'three'] }\n",
    );
    let ran = job.run(&["--json"]).expect_code(1);
    let events = ran.events();
    for (step, error) in [
        (
            "fan_out",
            "op `fan_out`: config field `n`: invalid type: string, expected integer",
        ),
        ("fan_out_2", "op `fan_out_2`: config: missing field `n`"),
        (
            "fail_on",
            "op `fail_on`: config field `fail_on[1]`: invalid type: string, expected integer",
        ),
        (
            "fail_on_2",
            "op `fail_on_2`: input `value`: invalid type: string, expected integer",
        ),
        (
            "sum",
            "op `sum`: input `values` at `[2]`: invalid type: string, expected integer",
        ),
    ] {
        let failed = failure(&events, step);
        assert_eq!(failed["error_kind"], "bad_input", "{failed}");
        assert_eq!(
            failed["error"],
            format!("op rejected its input: {error}"),
            "{failed}"
        );
    }
}

//! Fan-in beyond Dagster's: a collect that runs without its failed clones (`min_success`),
//! hands them to a second input (`failures`), gathers by key (`by_key`), and ops cloned over
//! two dynamic outputs paired by key (`zip`). Real components through `host run`.

use serde_json::json;

use crate::support::{TempJob, component, of_kind};

/// `fan_out` yields 0..10 as k0..k9; `fail_on` fails on 3 and 7; `report` gets what the
/// partial collect gathered and the failures.
fn partial(min_success: &str) -> TempJob {
    TempJob::new(&format!(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = {{ n = 10 }}\n\
         [ops.fail_on]\ncomponent = 'testkit'\nconfig = {{ fail_on = [3, 7] }}\ninputs.value = {{ map = 'fan_out' }}\n\
         [ops.report]\ncomponent = 'testkit'\nop = 'fan_in_report'\n\
         inputs.values = {{ collect = 'fail_on', min_success = {min_success} }}\n\
         inputs.failures = {{ failures = 'fail_on' }}\n"
    ))
}

#[test]
fn a_partial_collect_runs_without_failed_clones_and_the_run_succeeds_reporting_them() {
    let job = partial("0.8");
    let ran = job.run(&["--json"]).expect_code(0);
    let events = ran.events();
    let report = of_kind(&events, "STEP_OUTPUT")
        .into_iter()
        .find(|e| e["step_key"] == "report")
        .expect("report ran");
    assert_eq!(
        report["value"],
        json!({
            "values": [0, 1, 2, 4, 5, 6, 8, 9],
            "failures": {
                "k3": "op failed: value 3 is unlucky",
                "k7": "op failed: value 7 is unlucky",
            },
        })
    );
    let end = events.last().unwrap();
    assert_eq!(end["event"], "RUN_SUCCESS");
    assert_eq!(
        end["tolerated_failures"],
        json!(["fail_on[k3]", "fail_on[k7]"])
    );

    let human = job.run(&[]).expect_code(0);
    assert!(
        human.stderr.contains(
            "failed  fail_on[k3] (tolerated by min_success): op failed: value 3 is unlucky"
        ),
        "{}",
        human.stderr
    );
    assert!(
        human
            .stderr
            .contains("succeeded with 2 failed step(s) tolerated by min_success"),
        "{}",
        human.stderr
    );
}

#[test]
fn a_partial_collect_below_its_bar_is_skipped_and_the_run_fails() {
    for bar in ["0.9", "9"] {
        let ran = partial(bar).run(&["--json"]).expect_code(1);
        let events = ran.events();
        let skipped = of_kind(&events, "STEP_SKIPPED");
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0]["step_key"], "report");
        let reason = skipped[0]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("8 of 10 clones of `fail_on` succeeded, fewer than min_success"),
            "{reason}"
        );
        assert_eq!(events.last().unwrap()["event"], "RUN_FAILURE");
    }
}

#[test]
fn a_collect_by_key_gives_a_map_from_mapping_key_to_value() {
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 3 }\n\
         [ops.identity]\ncomponent = 'testkit'\ninputs.value = { collect = 'fan_out', by_key = true }\n\
         [ops.doubled]\ncomponent = 'testkit'\nop = 'fail_on'\ninputs.value = { map = 'fan_out' }\n\
         [ops.by_clone]\ncomponent = 'testkit'\nop = 'identity'\ninputs.value = { collect = 'doubled', by_key = true }\n",
    );
    let outputs = job.run(&[]).expect_code(0).json();
    assert_eq!(outputs["identity"], json!({"k0": 0, "k1": 1, "k2": 2}));
    assert_eq!(outputs["by_clone"], json!({"k0": 0, "k1": 1, "k2": 2}));
}

/// `add[k]` adds the values with key k of a 3-way and a 5-way fan-out.
fn zip(unmatched: &str) -> TempJob {
    TempJob::new(&format!(
        "[components.mapping]\npath = {:?}\n\
         [ops.fan_out]\ncomponent = 'testkit'\nconfig = {{ n = 3 }}\n\
         [ops.fan_out_2]\ncomponent = 'testkit'\nop = 'fan_out'\nconfig = {{ n = 5 }}\n\
         [ops.add]\ncomponent = 'mapping'\ninputs.a = {{ map = 'fan_out' }}\n\
         inputs.b = {{ map = 'fan_out_2', zip = true{unmatched} }}\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = {{ collect = 'add' }}\n",
        component("mapping").display().to_string()
    ))
}

#[test]
fn a_zip_clones_once_per_key_and_fails_keys_only_one_side_has() {
    let ran = zip("").run(&["--json"]).expect_code(1);
    let events = ran.events();
    let outputs: Vec<_> = of_kind(&events, "STEP_OUTPUT")
        .into_iter()
        .filter(|e| e["step_key"].as_str().unwrap().starts_with("add["))
        .map(|e| {
            (
                e["step_key"].as_str().unwrap(),
                e["value"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(outputs.len(), 3, "{outputs:?}");
    for (step, value) in outputs {
        let i: i64 = step[5..6].parse().unwrap();
        assert_eq!(value, 2 * i, "{step}");
    }
    let failures = of_kind(&events, "STEP_FAILURE");
    let failed: Vec<&str> = failures
        .iter()
        .map(|e| e["step_key"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["add[k3]", "add[k4]"]);
    assert_eq!(failures[0]["error_kind"], "unmatched_key");
    assert_eq!(
        failures[0]["error"],
        "mapping key `k3` of `fan_out_2.result` has no value in `fan_out.result`, which it is zipped with"
    );
}

#[test]
fn a_zip_may_skip_keys_only_one_side_has() {
    let outputs = zip(", unmatched = 'skip'").run(&[]).expect_code(0).json();
    assert_eq!(outputs["sum"], json!(2 + 4));
}

#[test]
fn fan_in_options_in_the_wrong_place_are_refused_with_their_position() {
    let cases = [
        (
            "[ops.fan_out]\ncomponent = 'testkit'\n\
             [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'fan_out', min_success = 1.5 }\n",
            "`min_success` is a whole number of clones or a share in (0, 1], not 1.5",
        ),
        (
            "[ops.fan_out]\ncomponent = 'testkit'\n\
             [ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out', zip = true }\n",
            "op `identity`: input `value` zips `fan_out.result`, but the op maps over nothing to zip it with",
        ),
        (
            "[ops.fan_out]\ncomponent = 'testkit'\n\
             [ops.fail_on]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out' }\n\
             [ops.report]\ncomponent = 'testkit'\nop = 'fan_in_report'\n\
             inputs.values = { collect = 'fail_on' }\ninputs.failures = { failures = 'fail_on' }\n",
            "which needs another input collecting `fail_on` with `min_success`",
        ),
    ];
    for (body, says) in cases {
        let ran = TempJob::new(body).run(&[]).expect_code(2);
        assert!(ran.stderr.contains(says), "{}", ran.stderr);
        assert!(ran.stderr.contains("line "), "{}", ran.stderr);
    }
}

/// `branch[k]` returns its value on `even` or `odd`; `maybe_out[k]` only even values.
const BRANCHES: &str = "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 4 }\n\
     [ops.branch]\ncomponent = 'testkit'\ninputs.n = { map = 'fan_out' }\n\
     [ops.evens]\ncomponent = 'testkit'\nop = 'identity'\ninputs.value = { from = 'branch', output = 'even' }\n\
     [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'evens' }\n\
     [ops.odds]\ncomponent = 'testkit'\nop = 'sum'\ninputs.values = { collect = 'branch', output = 'odd' }\n\
     [ops.maybe_out]\ncomponent = 'testkit'\ninputs.n = { map = 'fan_out' }\n\
     [ops.kept]\ncomponent = 'testkit'\nop = 'count'\ninputs.values = { collect = 'maybe_out' }\n";

#[test]
fn optional_outputs_skip_their_readers_and_collects_leave_them_out() {
    let job = TempJob::new(BRANCHES);
    let ran = job.run(&["--json"]).expect_code(0);
    let events = ran.events();
    // In key order: the two branches run at once and may finish in either order.
    let mut skipped: Vec<(&str, &str)> = of_kind(&events, "STEP_SKIPPED")
        .iter()
        .map(|e| {
            (
                e["step_key"].as_str().unwrap(),
                e["reason"].as_str().unwrap(),
            )
        })
        .collect();
    skipped.sort_unstable();
    assert_eq!(
        skipped,
        [
            (
                "evens[k1]",
                "upstream step `branch[k1]` did not produce optional output `even`"
            ),
            (
                "evens[k3]",
                "upstream step `branch[k3]` did not produce optional output `even`"
            ),
        ]
    );
    assert_eq!(events.last().unwrap()["event"], "RUN_SUCCESS");
    let outputs = job.run(&[]).expect_code(0).json();
    assert_eq!(outputs["sum"], json!(2));
    assert_eq!(outputs["odds"], json!(1 + 3));
    assert_eq!(outputs["kept"], json!(2));
}

#[test]
fn an_optional_dynamic_output_without_values_skips_what_collects_it() {
    let job = |count: u32| {
        TempJob::new(&format!(
            "[ops.maybe_fan]\ncomponent = 'testkit'\nconfig = {{ count = {count} }}\n\
             [ops.identity]\ncomponent = 'testkit'\ninputs.value = {{ map = 'maybe_fan' }}\n\
             [ops.sum]\ncomponent = 'testkit'\ninputs.values = {{ collect = 'identity' }}\n"
        ))
    };
    let ran = job(0).run(&["--json"]).expect_code(0);
    let events = ran.events();
    let skipped = of_kind(&events, "STEP_SKIPPED");
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["step_key"], "sum");
    assert_eq!(
        skipped[0]["reason"],
        "optional dynamic output `maybe_fan.items` yielded no values"
    );
    assert_eq!(job(3).run(&[]).expect_code(0).json()["sum"], json!(3));
}

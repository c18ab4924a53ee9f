//! Retry policies: per-op and job-wide, per clone, with the attempt number reaching the guest,
//! and retried producers whose values must match earlier attempts.

use serde_json::json;

use crate::support::{TempJob, failure, of_kind};

fn events_of<'a>(
    events: &'a [serde_json::Value],
    kind: &str,
    step: &str,
) -> Vec<&'a serde_json::Value> {
    of_kind(events, kind)
        .into_iter()
        .filter(|e| e["step_key"] == step)
        .collect()
}

#[test]
fn a_flaky_op_succeeds_on_its_third_attempt_and_sees_the_attempt_number() {
    let job = TempJob::new(
        "[ops.flaky]\ncomponent = 'testkit'\nconfig = { succeed_on = 3 }\n\
         retry = { max_retries = 2, delay = '10ms', backoff = 'exponential' }\n",
    );
    let events = job.run(&["--json"]).expect_code(0).events();
    let retries = events_of(&events, "STEP_UP_FOR_RETRY", "flaky");
    assert_eq!(retries.len(), 2);
    assert_eq!(retries[0]["attempt"], 1);
    assert_eq!(retries[0]["error_kind"], "retry_requested");
    assert_eq!(retries[0]["delay_ms"], 10.0);
    assert_eq!(retries[1]["delay_ms"], 30.0);
    let restarted: Vec<_> = events_of(&events, "STEP_RESTARTED", "flaky")
        .iter()
        .map(|e| e["attempt"].clone())
        .collect();
    assert_eq!(restarted, [json!(2), json!(3)]);
    assert_eq!(events_of(&events, "STEP_START", "flaky").len(), 1);
    assert_eq!(events_of(&events, "STEP_OUTPUT", "flaky")[0]["value"], 3);
}

#[test]
fn retries_run_out() {
    let job = TempJob::new("[retry]\nmax_retries = 1\n[ops.flaky]\ncomponent = 'testkit'\n");
    let ran = job.run(&["--json"]).expect_code(1);
    let events = ran.events();
    assert_eq!(events_of(&events, "STEP_UP_FOR_RETRY", "flaky").len(), 1);
    assert_eq!(
        failure(&events, "flaky")["error"],
        "op requested a retry: the weather is bad"
    );
}

#[test]
fn without_a_policy_a_retry_request_fails_the_step() {
    let events = TempJob::new("[ops.flaky]\ncomponent = 'testkit'\nconfig = { succeed_on = 2 }\n")
        .run(&["--json"])
        .expect_code(1)
        .events();
    assert!(of_kind(&events, "STEP_UP_FOR_RETRY").is_empty());
    assert_eq!(failure(&events, "flaky")["error_kind"], "retry_requested");
}

#[test]
fn each_clone_is_retried_on_its_own() {
    let job = TempJob::new(
        "[retry]\nmax_retries = 1\n\
         [ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 5 }\n\
         [ops.fail_on]\ncomponent = 'testkit'\nconfig = { succeed_on_attempt = 2 }\ninputs.value = { map = 'fan_out' }\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'fail_on' }\n",
    );
    let events = job.run(&["--json"]).expect_code(0).events();
    for k in 0..5 {
        let step = format!("fail_on[k{k}]");
        assert_eq!(
            events_of(&events, "STEP_UP_FOR_RETRY", &step).len(),
            1,
            "{step}"
        );
        assert_eq!(
            events_of(&events, "STEP_RESTARTED", &step).len(),
            1,
            "{step}"
        );
    }
    assert_eq!(events_of(&events, "STEP_OUTPUT", "sum")[0]["value"], 10);
}

#[test]
fn deterministic_failures_are_not_retried() {
    let job = TempJob::new(
        "[retry]\nmax_retries = 3\n\
         [ops.grow_memory]\ncomponent = 'adversary'\nlimits = { memory = '16MiB' }\n",
    );
    let events = job.run(&["--json"]).expect_code(1).events();
    assert!(of_kind(&events, "STEP_UP_FOR_RETRY").is_empty());
    assert_eq!(
        failure(&events, "grow_memory")["error_kind"],
        "memory_limit"
    );
}

#[test]
fn a_retried_producer_replays_its_values_and_clones_run_once() {
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 6, fail_first_attempt_after = 3 }\n\
         retry = { max_retries = 1 }\n\
         [ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out' }\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'identity' }\n",
    );
    let events = job.run(&["--json"]).expect_code(0).events();
    // Three values before the failure, three more after the retry: each yielded once.
    let yielded: Vec<_> = events_of(&events, "STEP_OUTPUT", "fan_out")
        .iter()
        .map(|e| e["mapping_key"].clone())
        .collect();
    assert_eq!(
        yielded,
        ["k0", "k1", "k2", "k3", "k4", "k5"].map(|k| json!(k))
    );
    for k in 0..6 {
        assert_eq!(
            events_of(&events, "STEP_START", &format!("identity[k{k}]")).len(),
            1
        );
    }
    assert_eq!(events_of(&events, "STEP_OUTPUT", "sum")[0]["value"], 15);
}

#[test]
fn a_retry_that_yields_different_values_fails() {
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 4, fail_first_attempt_after = 2, vary_by_attempt = true }\n\
         retry = { max_retries = 1 }\n\
         [ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out' }\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'identity' }\n",
    );
    let events = job.run(&["--json"]).expect_code(1).events();
    let failed = failure(&events, "fan_out");
    assert_eq!(failed["error_kind"], "nondeterministic_retry");
    assert!(
        of_kind(&events, "STEP_SKIPPED")
            .iter()
            .any(|e| e["step_key"] == "sum")
    );
}

#[test]
fn a_divergent_retry_records_nothing_more_and_starts_no_clone() {
    // The retry yields k0 with another value, ignores the refusal and yields k1..k4: none of
    // that may be recorded or cloned.
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\n\
         config = { n = 5, fail_first_attempt_after = 2, vary_by_attempt = true, ignore_rejections = true }\n\
         retry = { max_retries = 1 }\n\
         [ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out' }\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'identity' }\n",
    );
    let events = job.run(&["--json"]).expect_code(1).events();
    let failed = failure(&events, "fan_out");
    assert_eq!(failed["error_kind"], "nondeterministic_retry");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("key `k0` of output `result` was recorded with value 1000 and is now yielded with value 2000"),
        "{error}"
    );
    let yielded: Vec<&str> = of_kind(&events, "STEP_OUTPUT")
        .iter()
        .filter(|e| e["step_key"] == "fan_out")
        .map(|e| e["mapping_key"].as_str().unwrap())
        .collect();
    assert_eq!(yielded, ["k0", "k1"]);
    let started: Vec<&str> = of_kind(&events, "STEP_START")
        .iter()
        .filter_map(|e| e["step_key"].as_str())
        .filter(|key| key.starts_with("identity"))
        .collect();
    assert_eq!(started, ["identity[k0]", "identity[k1]"]);
}

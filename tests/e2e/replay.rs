//! `host replay`: one step of a recorded run run again from what the run recorded, with its
//! logs, outputs and exit status, and nothing written to the run.

use serde_json::{Value, json};

use crate::support::{TempJob, component, host_in, only_run, root};

/// Ten clones of `fail_on`, two of them failing, and a `sum` that is then skipped.
const FAILING: &str = "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 10 }\n\
    [ops.fail_on]\ncomponent = 'testkit'\nconfig = { fail_on = [3, 7] }\n\
    inputs.value = { map = 'fan_out' }\n\
    [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'fail_on' }\n";

/// Everything the store holds about the run `id`: its events and its record.
fn recorded(store: &std::path::Path, id: &str) -> (String, String) {
    let events = host_in(store, &["events", id, "--json"])
        .expect_code(0)
        .stdout;
    let runs = host_in(store, &["runs", "--json"]).expect_code(0).stdout;
    (events, runs)
}

#[test]
fn a_failed_clone_fails_again_and_a_good_one_succeeds_without_touching_the_run() {
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    let job = TempJob::new(FAILING);
    host_in(store, &["run", job.path().to_str().unwrap()]).expect_code(1);
    let id = only_run(store);
    let before = recorded(store, &id);

    let failed = host_in(store, &["replay", "latest", "fail_on[k3]"]).expect_code(1);
    assert!(
        failed
            .stderr
            .contains("step `fail_on[k3]` failed: op failed: value 3 is unlucky\n"),
        "{}",
        failed.stderr
    );
    assert!(
        failed
            .stderr
            .contains(&format!("step `fail_on[k3]` of run {id} failed again in ")),
        "{}",
        failed.stderr
    );
    assert_eq!(failed.stdout, "");

    let good = host_in(store, &["replay", &id, "fail_on[k4]"]).expect_code(0);
    assert_eq!(good.json(), json!(4));
    // A producer prints what it yielded, by mapping key.
    let producer = host_in(store, &["replay", &id, "fan_out"]).expect_code(0);
    let yielded: serde_json::Map<String, Value> =
        (0..10).map(|i| (format!("k{i}"), json!(i))).collect();
    assert_eq!(producer.json(), Value::Object(yielded));

    // `--json`: the step's events, as `host run --json` prints them.
    let events = host_in(store, &["replay", &id, "fail_on[k3]", "--json"])
        .expect_code(1)
        .events();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["STEP_START", "STEP_FAILURE"]);
    assert!(events.iter().all(|e| e["step_key"] == "fail_on[k3]"));
    assert_eq!(events[1]["error"], "op failed: value 3 is unlucky");
    assert_eq!(events[1]["error_kind"], "op_failed");

    // A run config that fixes it.
    let fixed = job.dir.path().join("fixed.toml");
    std::fs::write(&fixed, "[ops.fail_on.config]\nfail_on = []\n").unwrap();
    let tried = host_in(
        store,
        &[
            "replay",
            &id,
            "fail_on[k3]",
            "--config",
            fixed.to_str().unwrap(),
        ],
    )
    .expect_code(0);
    assert_eq!(tried.json(), json!(3));

    assert_eq!(recorded(store, &id), before, "the run is left as it was");
}

#[test]
fn logs_stream_and_a_collect_reads_every_clone() {
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    component("dynamic_graph");
    let job = root().join("guest-examples/jobs/dynamic_graph.toml");
    host_in(store, &["run", job.to_str().unwrap()]).expect_code(0);
    let id = only_run(store);

    let clone = host_in(store, &["replay", &id, "compute_piece[7]"]).expect_code(0);
    assert!(
        clone
            .stderr
            .starts_with("[compute_piece[7]] info: computing piece: [14, 15]\n"),
        "{}",
        clone.stderr
    );
    assert_eq!(clone.json(), json!([28, 30]));
    let collect = host_in(store, &["replay", &id, "merge_and_analyze", "-q"]).expect_code(0);
    assert_eq!(collect.json(), json!(9900));
    assert_eq!(collect.stderr, "");
}

#[test]
fn steps_that_cannot_run_again_are_errors_saying_why() {
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    let job = TempJob::new(FAILING);
    host_in(store, &["run", job.path().to_str().unwrap()]).expect_code(1);
    let id = only_run(store);
    let before = recorded(store, &id);

    let error = |step: &str| host_in(store, &["replay", &id, step]).expect_code(2).stderr;
    let skipped = error("sum");
    assert!(
        skipped.contains(&format!(
            "cannot replay step `sum` of run `{id}`: its input `values` was never produced: \
             step `fail_on[k3]` did not succeed"
        )),
        "{skipped}"
    );
    let mapped = error("fail_on");
    assert!(
        mapped.contains("op `fail_on` is mapped: name one of its steps, e.g. `fail_on[k0]`, "),
        "{mapped}"
    );
    let unknown_clone = error("fail_on[k99]");
    assert!(
        unknown_clone.contains(&format!(
            "run `{id}` has no step `fail_on[k99]` nor clones of it (its steps include \
             `fail_on[k0]`, "
        )),
        "{unknown_clone}"
    );
    for unknown in ["nope", "fan_out[k1]", "fail_on[k1][k2]", "fail_on[k1"] {
        let err = error(unknown);
        assert!(err.contains(&format!("has no step `{unknown}`")), "{err}");
    }
    let missing = host_in(
        store,
        &[
            "replay",
            &id,
            "fail_on[k3]",
            "--config",
            "/nonexistent/run.toml",
        ],
    )
    .expect_code(2);
    assert!(
        missing.stderr.contains("/nonexistent/run.toml"),
        "{}",
        missing.stderr
    );
    assert_eq!(recorded(store, &id), before);
}

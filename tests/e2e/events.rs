//! `host events`: a recorded run's events chosen by step and type, as lines or as the JSON
//! Lines of `host run --json`, read from the store a page at a time.

use serde_json::Value;

use crate::support::{Ran, TempJob, host_in, only_run};

/// Ten clones of `fail_on`, two of them failing, and a `sum` that is then skipped.
const FAILING: &str = "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 10 }\n\
    [ops.fail_on]\ncomponent = 'testkit'\nconfig = { fail_on = [3, 7] }\n\
    inputs.value = { map = 'fan_out' }\n\
    [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'fail_on' }\n";

/// `events` without the times, which JSON does not always carry to the last bit.
fn timeless(events: Vec<Value>) -> Vec<Value> {
    events
        .into_iter()
        .map(|mut event| {
            event.as_object_mut().unwrap().remove("timestamp");
            event
        })
        .collect()
}

/// Runs `job` with `--json` on `store`, expecting exit `code`: its id and its events.
fn run_json(store: &std::path::Path, job: &TempJob, code: i32) -> (String, Vec<Value>) {
    let ran = host_in(store, &["run", job.path().to_str().unwrap(), "--json"]).expect_code(code);
    (only_run(store), ran.events())
}

fn events(store: &std::path::Path, args: &[&str]) -> Ran {
    let mut command = vec!["events"];
    command.extend(args);
    host_in(store, &command)
}

#[test]
fn events_print_what_run_json_printed_filtered_by_step_and_type() {
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    let job = TempJob::new(FAILING);
    let (id, streamed) = run_json(store, &job, 1);

    let all = events(store, &[&id, "--json"]).expect_code(0).events();
    assert_eq!(timeless(all), timeless(streamed.clone()));

    let only = |args: &[&str]| events(store, args).expect_code(0).events();
    let pick = |keep: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        timeless(streamed.iter().filter(|e| keep(e)).cloned().collect())
    };
    let failures = only(&["latest", "--json", "--type", "step_failure,STEP_SKIPPED"]);
    assert_eq!(
        timeless(failures),
        pick(&|e| e["event"] == "STEP_FAILURE" || e["event"] == "STEP_SKIPPED")
    );
    let clone = only(&["latest", "--json", "--step", "fail_on[k3]"]);
    assert_eq!(timeless(clone), pick(&|e| e["step_key"] == "fail_on[k3]"));
    // Two steps, merged in order; a step under another is read once.
    let starts = only(&[
        "latest",
        "--json",
        "--type",
        "STEP_START",
        "--step",
        "fail_on",
        "--step",
        "fan_out",
        "--step",
        "fail_on[k1]",
    ]);
    assert_eq!(timeless(starts), pick(&|e| e["event"] == "STEP_START"));
    assert_eq!(
        only(&["latest", "--json", "--step", "sum", "--type", "STEP_OUTPUT"]),
        Vec::<Value>::new()
    );

    // A line each: time, type, step, gist.
    let text = events(
        store,
        &[&id, "--type", "STEP_FAILURE", "--step", "fail_on[k3]"],
    )
    .expect_code(0)
    .stdout;
    let (time, rest) = text.split_once("  ").unwrap();
    humantime::parse_rfc3339(time).unwrap();
    assert!(
        rest.starts_with("STEP_FAILURE ")
            && rest.contains("  fail_on[k3]  op failed: value 3 is unlucky (after "),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
    let lines = events(store, &[&id]).expect_code(0).stdout;
    assert_eq!(lines.lines().count(), streamed.len(), "{lines}");
    // The event names are padded to the longest one there is.
    let padded = |name: &str| {
        format!(
            "  {name:<width$}  ",
            width = "STEP_EXPECTATION_RESULT".len()
        )
    };
    assert!(lines.contains(&padded("RUN_START")), "{lines}");
    assert!(
        lines.contains(&format!(
            "{}fan_out  result[k4] = 4\n",
            padded("STEP_OUTPUT")
        )),
        "{lines}"
    );
    assert!(
        lines.contains(&format!(
            "{}sum  upstream step `fail_on[k3]` failed\n",
            padded("STEP_SKIPPED")
        )),
        "{lines}"
    );
}

#[test]
fn unknown_types_and_steps_are_errors_that_say_what_there_is() {
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    let job = TempJob::new(FAILING);
    run_json(store, &job, 1);

    let bad_type = events(store, &["latest", "--type", "STEP_OUTPUT,STEP_EXPLODED"]).expect_code(2);
    assert!(
        bad_type.stderr.contains(
            "unknown event type `STEP_EXPLODED` (known: RUN_START, STEP_START, STEP_OUTPUT, "
        ),
        "{}",
        bad_type.stderr
    );
    let clone = events(store, &["latest", "--step", "fail_on[k99]"]).expect_code(2);
    assert!(
        clone.stderr.contains(
            "has no step `fail_on[k99]` nor clones of it (its steps include `fail_on[k0]`, "
        ),
        "{}",
        clone.stderr
    );
    let op = events(store, &["latest", "--step", "nope", "--json"]).expect_code(2);
    assert!(
        op.stderr
            .contains("has no step `nope` nor clones of it (its steps include `fan_out`, "),
        "{}",
        op.stderr
    );
    // `--json` errors are JSON too.
    let error: Value = serde_json::from_str(op.stdout.trim()).unwrap();
    assert!(error["error"].as_str().is_some(), "{}", op.stdout);
    events(store, &["zzz"]).expect_code(2);
}

#[test]
fn an_op_of_many_clones_is_read_in_pages_in_order() {
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    // More events per step filter than a page holds (256).
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 700 }\n\
         [ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out' }\n",
    );
    let (id, streamed) = run_json(store, &job, 0);
    let outputs = events(
        store,
        &[
            &id,
            "--json",
            "--type",
            "STEP_OUTPUT",
            "--step",
            "identity",
            "--step",
            "fan_out",
        ],
    )
    .expect_code(0)
    .events();
    let expected: Vec<Value> = streamed
        .iter()
        .filter(|e| e["event"] == "STEP_OUTPUT")
        .cloned()
        .collect();
    assert_eq!(expected.len(), 1400);
    assert_eq!(timeless(outputs), timeless(expected));
    let identity = events(store, &[&id, "--step", "identity"]).expect_code(0);
    let in_order: Vec<&str> = identity.stdout.lines().collect();
    // Start, output and success of each of 700 clones.
    assert_eq!(in_order.len(), 2100);
    let mut sorted = in_order.clone();
    sorted.sort_by_key(|line| line.split_once("  ").unwrap().0);
    assert_eq!(in_order, sorted, "in the order they happened");
}

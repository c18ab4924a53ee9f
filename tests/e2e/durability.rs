//! The run store: runs are recorded and can be inspected, and a run killed at any moment
//! resumes to the same outputs without re-running a step whose success was committed.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::support::{TempJob, host_in, one_at_a_time, only_run, root, run_example, wait_for_run};
use host::store::{RunStatus, RunStore, SqliteStore};

#[test]
fn runs_are_recorded_and_can_be_inspected() {
    let store = tempfile::tempdir().unwrap();
    let job = root().join("guest-examples/jobs/dynamic_graph.toml");
    run_example("dynamic_graph", &[]).expect_code(0);
    host_in(store.path(), &["run", job.to_str().unwrap()]).expect_code(0);
    let id = only_run(store.path());

    let runs = host_in(store.path(), &["runs"]).expect_code(0);
    assert!(
        runs.stdout.starts_with(&format!("{id}  SUCCESS")),
        "{}",
        runs.stdout
    );
    assert!(runs.stdout.trim_end().ends_with("dynamic_graph"));

    let show = host_in(store.path(), &["show", &id, "--steps"]).expect_code(0);
    assert!(
        show.stdout.starts_with(&format!("run {id}  SUCCESS\n")),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout
            .contains("  compute_piece[7]   SUCCESS  attempts 1"),
        "{}",
        show.stdout
    );

    let total = host_in(store.path(), &["output", &id, "merge_and_analyze"]).expect_code(0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&total.stdout).unwrap(),
        json!(9900)
    );
    let one = host_in(store.path(), &["output", &id, "compute_piece[7]"]).expect_code(0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&one.stdout).unwrap(),
        json!([28, 30])
    );
    let clones = host_in(store.path(), &["output", &id, "compute_piece"]).expect_code(0);
    let clones: serde_json::Value = serde_json::from_str(&clones.stdout).unwrap();
    assert_eq!(clones.as_object().unwrap().len(), 50);
    assert_eq!(clones["49"], json!([196, 198]));
    let pieces = host_in(store.path(), &["output", &id, "load_pieces"]).expect_code(0);
    let pieces: serde_json::Value = serde_json::from_str(&pieces.stdout).unwrap();
    assert_eq!(pieces.as_object().unwrap().keys().next().unwrap(), "0");
    assert_eq!(pieces["3"], json!([6, 7]));

    let logs = host_in(store.path(), &["logs", &id, "--step", "compute_piece[7]"]).expect_code(0);
    assert_eq!(
        logs.stdout,
        "[compute_piece[7]] info: computing piece: [14, 15]\n"
    );
    // A mapped op's name gives every clone's lines; a step the run lacks is an error.
    let all = host_in(store.path(), &["logs", &id, "--step", "compute_piece"]).expect_code(0);
    assert_eq!(all.stdout.lines().count(), 50, "{}", all.stdout);
    assert!(
        all.stdout
            .contains("[compute_piece[49]] info: computing piece: [98, 99]")
    );
    // The steps shown are those of the same op.
    let none = host_in(store.path(), &["logs", &id, "--step", "compute_piece[99]"]).expect_code(2);
    assert!(
        none.stderr.contains(
            "has no step `compute_piece[99]` nor clones of it (its steps include \
             `compute_piece[0]`, `compute_piece[1]`, "
        ),
        "{}",
        none.stderr
    );

    let missing = host_in(store.path(), &["show", "nope"]).expect_code(2);
    assert!(
        missing.stderr.contains("no run matches `nope`"),
        "{}",
        missing.stderr
    );
    let bad_output = host_in(
        store.path(),
        &["output", &id, "merge_and_analyze", "--output", "total"],
    )
    .expect_code(2);
    assert!(
        bad_output
            .stderr
            .contains("has no output `total` (it has: result)"),
        "{}",
        bad_output.stderr
    );
}

/// A fan-out, then a one-second nap on its sum, so that every kill below lands mid-run however
/// fast the machine (resuming a finished run is refused).
pub const CRASH_JOB: &str = "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 3000 }\n\
    [ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out' }\n\
    [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'identity' }\n\
    [ops.nap]\ncomponent = 'testkit'\nconfig = { ms = 1000 }\ninputs.value = { from = 'sum' }\n";

/// Starts `host run`, waits until the run is in the store plus `delay`, and kills it (SIGKILL).
pub fn run_and_kill(job: &Path, store: &Path, delay: Duration) {
    let mut child = one_at_a_time(job, store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_run(store);
    std::thread::sleep(delay);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_killed_run_resumes_to_identical_outputs_without_redoing_committed_steps() {
    let job = TempJob::new(CRASH_JOB);
    let reference = tempfile::tempdir().unwrap();
    let expected = host_in(reference.path(), &["run", job.path().to_str().unwrap()]).expect_code(0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&expected.stdout).unwrap(),
        json!({"nap": 4498500})
    );

    for delay_ms in [0, 40, 120, 250, 600] {
        let store = tempfile::tempdir().unwrap();
        run_and_kill(&job.path(), store.path(), Duration::from_millis(delay_ms));
        let id = only_run(store.path());
        let committed_before = SqliteStore::open(store.path())
            .unwrap()
            .succeeded_steps(&id)
            .unwrap()
            .len();

        eprintln!("killed after {delay_ms} ms: {committed_before} steps committed");
        // Not `RUNNING`: its process is gone.
        let runs = host_in(store.path(), &["runs"]).expect_code(0);
        assert!(
            runs.stdout.starts_with(&format!("{id}  INTERRUPTED")),
            "killed after {delay_ms} ms: {}",
            runs.stdout
        );
        let show = host_in(store.path(), &["show", &id]).expect_code(0);
        assert!(
            show.stdout
                .starts_with(&format!("run {id}  INTERRUPTED (process ")),
            "{}",
            show.stdout
        );
        let resumed = host_in(store.path(), &["resume", &id]).expect_code(0);
        assert_eq!(
            resumed.stdout, expected.stdout,
            "killed after {delay_ms} ms"
        );

        // No step succeeded twice: nothing committed was run again, and collect ran once.
        let events = SqliteStore::open(store.path())
            .unwrap()
            .events(&id, None)
            .unwrap();
        let mut successes: HashMap<String, usize> = HashMap::new();
        for event in events.iter().filter(|e| e.kind.name() == "STEP_SUCCESS") {
            *successes
                .entry(event.step_key.clone().unwrap().into_owned())
                .or_default() += 1;
        }
        assert_eq!(
            successes.len(),
            3003,
            "killed after {delay_ms} ms ({committed_before} committed)"
        );
        assert!(
            successes.values().all(|&n| n == 1),
            "killed after {delay_ms} ms"
        );
        let sum_starts = events
            .iter()
            .filter(|e| e.kind.name() == "STEP_START" && e.step_key.as_deref() == Some("sum"))
            .count();
        assert_eq!(sum_starts, 1);
        assert_eq!(
            SqliteStore::open(store.path())
                .unwrap()
                .run(&id)
                .unwrap()
                .status,
            RunStatus::Success
        );
    }
}

#[test]
fn a_corrupt_store_gives_a_clear_error() {
    let store = tempfile::tempdir().unwrap();
    std::fs::write(
        store.path().join("shoal.db"),
        b"this is not a database, just bytes",
    )
    .unwrap();
    let ran = host_in(store.path(), &["runs"]).expect_code(2);
    assert!(ran.stderr.contains("run store"), "{}", ran.stderr);
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
}

/// The step keys that started in run `id`.
fn started(store: &Path, id: &str) -> Vec<String> {
    let mut steps: Vec<String> = SqliteStore::open(store)
        .unwrap()
        .events(id, None)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind.name() == "STEP_START")
        .map(|e| e.step_key.unwrap().into_owned())
        .collect();
    steps.sort();
    steps
}

fn newest_run(store: &Path) -> host::store::RunRecord {
    SqliteStore::open(store).unwrap().runs().unwrap().remove(0)
}

#[test]
fn reexecution_from_failure_runs_only_failed_and_unrun_steps() {
    let store = tempfile::tempdir().unwrap();
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 10 }\n\
         [ops.fail_on]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out' }\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'fail_on' }\n",
    );
    let run_config = job.dir.path().join("run.toml");
    std::fs::write(&run_config, "[ops.fail_on.config]\nfail_on = [3]\n").unwrap();
    let config = run_config.to_str().unwrap();
    host_in(
        store.path(),
        &["run", job.path().to_str().unwrap(), "--config", config],
    )
    .expect_code(1);
    let parent = only_run(store.path());

    // The "fix": a run config that no longer fails value 3, given to the re-execution (which
    // otherwise runs with the config its parent recorded).
    let fixed = job.dir.path().join("fixed.toml");
    std::fs::write(&fixed, "[ops.fail_on.config]\nfail_on = []\n").unwrap();
    let fixed = fixed.to_str().unwrap();
    let ran = host_in(
        store.path(),
        &["reexecute", &parent, "--from-failure", "--config", fixed],
    )
    .expect_code(0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ran.stdout).unwrap(),
        json!({"sum": 45})
    );
    let child = newest_run(store.path());
    assert_eq!(child.parent.as_deref(), Some(parent.as_str()));
    assert_eq!(started(store.path(), &child.id), ["fail_on[k3]", "sum"]);
    // The child holds the reused outputs too.
    let reused = host_in(store.path(), &["output", &child.id, "fail_on[k7]"]).expect_code(0);
    assert_eq!(reused.stdout.trim(), "7");
    let listed = host_in(store.path(), &["runs"]).expect_code(0);
    assert!(
        listed.stdout.contains(&format!("(re-executes {parent})")),
        "{}",
        listed.stdout
    );
}

#[test]
fn reexecution_of_a_selection_reruns_it_and_what_is_downstream() {
    let store = tempfile::tempdir().unwrap();
    let job = root().join("guest-examples/jobs/chained.toml");
    run_example("chained", &[]).expect_code(0);
    host_in(store.path(), &["run", job.to_str().unwrap()]).expect_code(0);
    let parent = only_run(store.path());

    let ran = host_in(
        store.path(),
        &["reexecute", &parent, "--select", "echo_2[3]"],
    )
    .expect_code(0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&ran.stdout).unwrap(),
        json!({"process": 55})
    );
    assert_eq!(
        started(store.path(), &newest_run(store.path()).id),
        ["echo_2[3]", "echo_3[3]", "process"]
    );

    host_in(store.path(), &["reexecute", &parent, "--select", "echo_3"]).expect_code(0);
    assert_eq!(
        started(store.path(), &newest_run(store.path()).id).len(),
        11
    );

    host_in(store.path(), &["reexecute", &parent, "--select", "*echo"]).expect_code(0);
    assert_eq!(
        started(store.path(), &newest_run(store.path()).id).len(),
        32
    );

    let bad = host_in(store.path(), &["reexecute", &parent, "--select", "ghost"]).expect_code(2);
    assert!(
        bad.stderr
            .contains("selection `ghost` names no op of the job"),
        "{}",
        bad.stderr
    );
    let neither = host_in(store.path(), &["reexecute", &parent]).expect_code(2);
    assert!(
        neither.stderr.contains("--from-failure"),
        "{}",
        neither.stderr
    );
}

#[test]
fn reexecution_of_a_step_the_parent_did_not_have_is_an_error_showing_those_it_had() {
    let store = tempfile::tempdir().unwrap();
    let job = root().join("guest-examples/jobs/chained.toml");
    run_example("chained", &[]).expect_code(0);
    host_in(store.path(), &["run", job.to_str().unwrap()]).expect_code(0);
    let parent = only_run(store.path());

    let clones = "10 steps of op `echo_2`: `echo_2[1]`, `echo_2[2]`, `echo_2[3]`, ...";
    for (selector, had) in [
        ("echo_2[99]", clones),
        ("+echo_2[99]", clones),
        ("echo_2[3][1]", clones),
        ("process[3]", "1 step of op `process`: `process`"),
    ] {
        let bad =
            host_in(store.path(), &["reexecute", &parent, "--select", selector]).expect_code(2);
        let expected =
            format!("selection `{selector}` names no step of the parent run, which had {had}");
        assert!(bad.stderr.contains(&expected), "{}", bad.stderr);
    }
    only_run(store.path());

    // `+` on a clone adds the clone it read from.
    host_in(
        store.path(),
        &["reexecute", &parent, "--select", "+echo_2[3]"],
    )
    .expect_code(0);
    assert_eq!(
        started(store.path(), &newest_run(store.path()).id),
        ["echo[3]", "echo_2[3]", "echo_3[3]", "process"]
    );
}

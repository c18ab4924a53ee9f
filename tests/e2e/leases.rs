//! A run is executed by one live process: `resume` and `reexecute` of a run that still runs are
//! refused, naming its process, and so is resuming a run that succeeded.

use std::process::Stdio;

use serde_json::json;

use crate::support::{Ran, TempJob, host_in, one_at_a_time, wait_for_run};
use host::store::{RunStatus, RunStore, SqliteStore};

/// Four clones that nap `ms` each, then their sum: 0 + 1 + 2 + 3.
fn naps(ms: u64) -> TempJob {
    TempJob::new(&format!(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = {{ n = 4 }}\n\
         [ops.nap]\ncomponent = 'testkit'\nconfig = {{ ms = {ms} }}\n\
         inputs.value = {{ map = 'fan_out' }}\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = {{ collect = 'nap' }}\n"
    ))
}

#[test]
fn resuming_or_reexecuting_a_run_that_still_runs_is_refused_with_its_process() {
    let job = naps(700);
    let store = tempfile::tempdir().unwrap();
    let original = one_at_a_time(&job.path(), store.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = original.id();
    let id = wait_for_run(store.path());

    let resume = host_in(store.path(), &["resume", &id]).expect_code(2);
    assert!(
        resume.stderr.contains(&format!(
            "cannot resume run `{id}`\n  caused by: run `{id}` is still running, in process {pid} on host `"
        )),
        "{}",
        resume.stderr
    );
    let reexecute = host_in(store.path(), &["reexecute", &id, "--from-failure"]).expect_code(2);
    assert!(
        reexecute
            .stderr
            .contains(&format!("cannot re-execute run `{id}` while it runs")),
        "{}",
        reexecute.stderr
    );
    assert!(
        reexecute
            .stderr
            .contains(&format!("in process {pid} on host `"))
    );
    let show = host_in(store.path(), &["show", &id]).expect_code(0);
    assert!(
        show.stdout
            .starts_with(&format!("run {id}  RUNNING (process {pid} on host `")),
        "{}",
        show.stdout
    );

    // The original was not disturbed: it finishes with the right output, each step once.
    let finished = Ran::from(original.wait_with_output().unwrap()).expect_code(0);
    assert_eq!(finished.json(), json!({"sum": 6}));
    let store = SqliteStore::open(store.path()).unwrap();
    assert_eq!(store.run(&id).unwrap().status, RunStatus::Success);
    assert_eq!(store.succeeded_steps(&id).unwrap().len(), 6);
    assert_eq!(
        store.runs().unwrap().len(),
        1,
        "no re-execution was recorded"
    );
}

#[test]
fn resuming_a_run_that_succeeded_is_refused_and_changes_nothing() {
    let job = naps(1);
    let store = tempfile::tempdir().unwrap();
    host_in(store.path(), &["run", job.path().to_str().unwrap()]).expect_code(0);
    let id = wait_for_run(store.path());
    let before = SqliteStore::open(store.path()).unwrap();
    let (record, events) = (before.run(&id).unwrap(), before.events(&id, None).unwrap());

    let resume = host_in(store.path(), &["resume", &id]).expect_code(2);
    assert!(
        resume.stderr.contains(&format!(
            "run `{id}` already succeeded: there is nothing to resume"
        )),
        "{}",
        resume.stderr
    );
    let after = SqliteStore::open(store.path()).unwrap();
    assert_eq!(
        after.run(&id).unwrap(),
        record,
        "finish time and status kept"
    );
    assert_eq!(after.events(&id, None).unwrap().len(), events.len());
}

#[test]
fn a_run_that_loses_its_lease_stops_and_says_its_events_could_not_be_recorded() {
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 40 }\n\
         [ops.nap]\ncomponent = 'testkit'\nconfig = { ms = 100 }\n\
         inputs.value = { map = 'fan_out' }\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'nap' }\n",
    );
    let store = tempfile::tempdir().unwrap();
    let child = one_at_a_time(&job.path(), store.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = wait_for_run(store.path());
    std::thread::sleep(std::time::Duration::from_millis(300));
    // As another process taking the run over would.
    rusqlite::Connection::open(store.path().join("shoal.db"))
        .unwrap()
        .execute(
            "UPDATE leases SET pid = pid + 1, token = 'theirs' WHERE run_id = ?1",
            [&id],
        )
        .unwrap();
    let ran = Ran::from(child.wait_with_output().unwrap()).expect_code(2);
    assert!(
        ran.stderr
            .contains("stopped: its events could not be recorded"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains(&format!(
            "error: cannot record the run in the run store\n  caused by: another process took \
             over run `{id}`"
        )),
        "{}",
        ran.stderr
    );
    // It stopped early: the sum never ran.
    let sum = ran
        .stderr
        .lines()
        .find(|line| line.trim_start().starts_with("sum "));
    assert!(
        sum.is_some_and(|line| line.contains(" 0 succeeded")),
        "{}",
        ran.stderr
    );
}

//! Every run records its job text, run config and component bytes: resume and re-execute run
//! that record, not whatever the files hold now, unless asked to reload them.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::durability::{CRASH_JOB, run_and_kill};
use crate::support::{component, host_in, only_run, with_sections};

/// A job in its own folder whose component `testkit` is a copy in that folder.
fn job_with_own_component(dir: &Path, body: &str) -> std::path::PathBuf {
    std::fs::copy(component("testkit"), dir.join("ops.wasm")).unwrap();
    let job = dir.join("job.toml");
    write_job(&job, body);
    job
}

/// (Re)writes `job`: `body` after the table of its own component.
fn write_job(job: &Path, body: &str) {
    std::fs::write(
        job,
        format!("[components.testkit]\npath = 'ops.wasm'\n\n{body}"),
    )
    .unwrap();
}

#[test]
fn a_resumed_run_runs_the_job_and_component_it_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let job = job_with_own_component(dir.path(), CRASH_JOB);
    run_and_kill(&job, store.path(), Duration::from_millis(100));
    let id = only_run(store.path());

    // Both change on disk: another component (without these ops) and a smaller fan-out.
    std::fs::copy(component("adversary"), dir.path().join("ops.wasm")).unwrap();
    let edited = std::fs::read_to_string(&job)
        .unwrap()
        .replace("n = 3000", "n = 5");
    std::fs::write(&job, edited).unwrap();

    let resumed = host_in(store.path(), &["resume", &id]).expect_code(0);
    assert_eq!(
        resumed.json(),
        json!({"nap": 4498500}),
        "{}",
        resumed.stderr
    );
    assert!(
        resumed.stderr.contains(&format!(
            "note: component `testkit` (`{}`) changed since run `{id}` started; running the \
             version the run recorded",
            dir.path().join("ops.wasm").display()
        )),
        "{}",
        resumed.stderr
    );
}

/// A fan-out whose clone for value 3 fails, as the job file says.
const FAILS_ON_3: &str = "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 10 }\n\
    [ops.fail_on]\ncomponent = 'testkit'\nconfig = { fail_on = [3] }\n\
    inputs.value = { map = 'fan_out' }\n\
    [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'fail_on' }\n";

#[test]
fn reexecution_runs_the_recorded_job_unless_told_to_reload_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let job = job_with_own_component(dir.path(), FAILS_ON_3);
    host_in(store.path(), &["run", job.to_str().unwrap()]).expect_code(1);
    let parent = only_run(store.path());

    // The fix is in the job file: a re-execution ignores it until told to reload.
    write_job(&job, &FAILS_ON_3.replace("fail_on = [3]", "fail_on = []"));
    host_in(store.path(), &["reexecute", &parent, "--from-failure"]).expect_code(1);
    let ran = host_in(
        store.path(),
        &["reexecute", &parent, "--from-failure", "--reload"],
    )
    .expect_code(0);
    assert_eq!(ran.json(), json!({"sum": 45}), "{}", ran.stderr);

    // A rebuilt component (the same ops, other bytes) is named when reloaded.
    let mut custom = wasm_encoder::Component::new();
    custom.section(&wasm_encoder::CustomSection {
        name: "rebuilt".into(),
        data: b"1".into(),
    });
    let testkit = std::fs::read(component("testkit")).unwrap();
    std::fs::write(
        dir.path().join("ops.wasm"),
        with_sections(&testkit, &custom),
    )
    .unwrap();
    let reloaded = host_in(
        store.path(),
        &["reexecute", &parent, "--from-failure", "--reload"],
    )
    .expect_code(0);
    assert!(
        reloaded.stderr.contains(&format!(
            "note: component `testkit` changed since run `{parent}`: "
        )),
        "{}",
        reloaded.stderr
    );
}

#[test]
fn a_run_recorded_without_a_snapshot_cannot_be_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let job = job_with_own_component(dir.path(), FAILS_ON_3);
    host_in(store.path(), &["run", job.to_str().unwrap()]).expect_code(1);
    let id = only_run(store.path());
    // As a store written before snapshots existed holds it.
    rusqlite::Connection::open(store.path().join("shoal.db"))
        .unwrap()
        .execute("DELETE FROM snapshots", [])
        .unwrap();

    for command in [&["resume", &id][..], &["reexecute", &id, "--from-failure"]] {
        let refused = host_in(store.path(), command).expect_code(2);
        assert!(
            refused.stderr.contains(&format!(
                "run `{id}` was recorded by an earlier version of Shoal, without a snapshot"
            )),
            "{}",
            refused.stderr
        );
    }
}

#[test]
fn a_run_started_with_relative_paths_is_rerun_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let job = job_with_own_component(dir.path(), FAILS_ON_3);
    let in_dir = |cwd: &Path, args: &[&str]| -> crate::support::Ran {
        crate::support::host_command()
            .env("SHOAL_STORE", store.path())
            .current_dir(cwd)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    in_dir(dir.path(), &["run", "job.toml"]).expect_code(1);
    let parent = only_run(store.path());
    write_job(&job, &FAILS_ON_3.replace("fail_on = [3]", "fail_on = []"));
    let ran = in_dir(
        elsewhere.path(),
        &["reexecute", &parent, "--from-failure", "--reload"],
    )
    .expect_code(0);
    assert_eq!(ran.json(), json!({"sum": 45}), "{}", ran.stderr);
}

//! SIGINT and SIGTERM during a run: the first stops it gracefully (`CANCELED`, resumable, the
//! resume command printed, exit 130 or 143); a second exits at once.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::support::{Ran, TempJob, host_command, host_in, wait_for_run};
use host::store::{RunStatus, RunStore, SqliteStore};

/// `n` clones that nap `ms` each, then their sum.
fn naps(n: u64, ms: u64) -> TempJob {
    TempJob::new(&format!(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = {{ n = {n} }}\n\
         [ops.nap]\ncomponent = 'testkit'\nconfig = {{ ms = {ms} }}\n\
         inputs.value = {{ map = 'fan_out' }}\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = {{ collect = 'nap' }}\n"
    ))
}

/// Starts `host run` of `job` on `store` at `max_concurrent`; returns it and its run's id.
fn start(job: &TempJob, store: &Path, max_concurrent: &str) -> (Child, String) {
    let child = host_command()
        .env("SHOAL_STORE", store)
        .args(["run", job.path().to_str().unwrap()])
        .args(["--max-concurrent", max_concurrent])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = wait_for_run(store);
    (child, id)
}

/// Waits until run `id` has recorded `count` events named `event` of `nap` steps.
fn wait_for_naps(store: &Path, id: &str, event: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = SqliteStore::open(store).unwrap().events(id, None).unwrap();
        let naps = events
            .iter()
            .filter(|e| {
                e.kind.name() == event && e.step_key.as_deref().unwrap_or("").starts_with("nap[")
            })
            .count();
        if naps >= count {
            return;
        }
        assert!(Instant::now() < deadline, "{count} × {event} never came");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn send(child: &Child, signal: Signal) {
    kill_process(Pid::from_child(child), signal).unwrap();
}

/// The command `host` printed to resume the run, run as printed.
fn run_resume_command(stderr: &str) -> Ran {
    let line = stderr
        .lines()
        .find_map(|line| {
            line.split_once("resume it with: ")
                .map(|(_, command)| command)
        })
        .unwrap_or_else(|| panic!("no resume command in:\n{stderr}"));
    let words: Vec<&str> = line.split(' ').collect();
    std::process::Command::new(words[0])
        .args(&words[1..])
        .output()
        .unwrap()
        .into()
}

fn names(store: &Path, id: &str, event: &str) -> Vec<String> {
    let events = SqliteStore::open(store).unwrap().events(id, None).unwrap();
    events
        .into_iter()
        .filter(|e| e.kind.name() == event)
        .map(|e| e.step_key.unwrap_or_default().into_owned())
        .collect()
}

#[test]
fn the_first_sigint_or_sigterm_cancels_the_run_and_resume_completes_it() {
    let job = naps(8, 300);
    let reference = tempfile::tempdir().unwrap();
    let expected = host_in(reference.path(), &["run", job.path().to_str().unwrap()]).expect_code(0);

    for (signal, code) in [(Signal::INT, 130), (Signal::TERM, 143)] {
        let store = tempfile::tempdir().unwrap();
        let (child, id) = start(&job, store.path(), "2");
        wait_for_naps(store.path(), &id, "STEP_SUCCESS", 2);
        send(&child, signal);
        let stopped = Ran::from(child.wait_with_output().unwrap()).expect_code(code);
        assert!(
            stopped.stderr.contains(&format!("stopping run {id}")),
            "{}",
            stopped.stderr
        );
        assert!(
            stopped.stderr.contains(&format!("run {id} canceled in ")),
            "{}",
            stopped.stderr
        );
        assert!(
            stopped.stderr.contains(&format!(
                "resume it with: {} resume {id} --store {}",
                env!("CARGO_BIN_EXE_host"),
                store.path().display()
            )),
            "{}",
            stopped.stderr
        );

        let runs = host_in(store.path(), &["runs"]).expect_code(0);
        assert!(
            runs.stdout.starts_with(&format!("{id}  CANCELED")),
            "{}",
            runs.stdout
        );
        let show = host_in(store.path(), &["show", &id]).expect_code(0);
        assert!(
            show.stdout.starts_with(&format!("run {id}  CANCELED\n")),
            "{}",
            show.stdout
        );
        // Running steps were let finish; steps that did not run are not failures.
        let mut started = names(store.path(), &id, "STEP_START");
        let mut succeeded = names(store.path(), &id, "STEP_SUCCESS");
        started.sort();
        succeeded.sort();
        assert_eq!(started, succeeded, "{signal:?}");
        assert!(succeeded.len() < 10, "the run was stopped: {succeeded:?}");
        assert!(names(store.path(), &id, "STEP_FAILURE").is_empty());
        assert_eq!(names(store.path(), &id, "RUN_CANCELED").len(), 1);

        let resumed = run_resume_command(&stopped.stderr).expect_code(0);
        assert_eq!(resumed.stdout, expected.stdout, "{signal:?}");
        let store = SqliteStore::open(store.path()).unwrap();
        assert_eq!(store.run(&id).unwrap().status, RunStatus::Success);
        assert_eq!(
            store.succeeded_steps(&id).unwrap().len(),
            10,
            "each step once"
        );
    }
}

#[test]
fn steps_still_running_after_the_grace_period_are_canceled_not_failed() {
    let job = naps(1, 60_000);
    let store = tempfile::tempdir().unwrap();
    let (child, id) = start(&job, store.path(), "1");
    wait_for_naps(store.path(), &id, "STEP_START", 1);
    let signaled = Instant::now();
    send(&child, Signal::TERM);
    let stopped = Ran::from(child.wait_with_output().unwrap()).expect_code(143);
    let took = signaled.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(20),
        "stopped {took:?} after SIGTERM, the grace period is 5 s"
    );
    assert!(
        stopped.stderr.contains("1 not finished"),
        "{}",
        stopped.stderr
    );
    let show = host_in(store.path(), &["show", &id, "--steps"]).expect_code(0);
    assert!(
        show.stdout.starts_with(&format!("run {id}  CANCELED\n")),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains("  nap[k0]  CANCELED attempts 1"),
        "{}",
        show.stdout
    );
    assert!(names(store.path(), &id, "STEP_FAILURE").is_empty());
}

#[test]
fn a_second_signal_exits_at_once_leaving_the_run_resumable() {
    let job = naps(2, 3000);
    let store = tempfile::tempdir().unwrap();
    let (mut child, id) = start(&job, store.path(), "2");
    wait_for_naps(store.path(), &id, "STEP_START", 2);
    // The second signal goes once the first was handled (two at once may merge into one).
    let (lines, stderr) = std::sync::mpsc::channel();
    let reader = BufReader::new(child.stderr.take().unwrap());
    let stderr_reader = std::thread::spawn(move || {
        for line in reader.lines() {
            let _ignored = lines.send(line.unwrap());
        }
    });
    send(&child, Signal::INT);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|line: &String| line.contains("stopping run"))
    {
        seen.push(stderr.recv_timeout(Duration::from_secs(30)).unwrap());
    }
    send(&child, Signal::INT);
    let mut stopped = Ran::from(child.wait_with_output().unwrap());
    stderr_reader.join().unwrap();
    seen.extend(stderr.try_iter());
    stopped.stderr = seen.join("\n");
    let stopped = stopped.expect_code(130);
    assert!(
        stopped.stderr.contains("exiting at once"),
        "{}",
        stopped.stderr
    );
    // It did not wait for the naps.
    assert!(
        names(store.path(), &id, "STEP_SUCCESS").len() == 1,
        "only fan_out finished"
    );
    let runs = host_in(store.path(), &["runs"]).expect_code(0);
    assert!(
        runs.stdout.starts_with(&format!("{id}  INTERRUPTED")),
        "{}",
        runs.stdout
    );

    let resumed = run_resume_command(&stopped.stderr).expect_code(0);
    assert_eq!(resumed.json(), serde_json::json!({"sum": 1}));
    let store = SqliteStore::open(store.path()).unwrap();
    assert_eq!(store.run(&id).unwrap().status, RunStatus::Success);
}

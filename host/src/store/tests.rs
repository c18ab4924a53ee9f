use super::*;

fn run(id: &str) -> RunRecord {
    RunRecord {
        id: id.into(),
        job_name: "job".into(),
        job_path: "/jobs/job.toml".into(),
        config_path: None,
        status: "RUNNING".into(),
        started: 1.0,
        finished: None,
        parent: None,
    }
}

fn cbor(value: i64) -> Vec<u8> {
    crate::value::encode(&value.into())
}

fn record_run(store: &Store, id: &str) {
    store.begin_run(&run(id)).unwrap();
    let mut sink = store.sink(id).unwrap();
    let value = cbor(7);
    let emit = |sink: &mut StoreSink, step, kind| sink.event(&Event::now(id, step, kind));
    emit(&mut sink, None, EventKind::RunStart { job: "job" });
    emit(&mut sink, Some("emit"), EventKind::StepStart { attempt: 1 });
    emit(
        &mut sink,
        Some("emit"),
        EventKind::StepOutput {
            output: "result",
            mapping_key: Some("k0"),
            value: &value,
        },
    );
    emit(
        &mut sink,
        Some("emit"),
        EventKind::StepSuccess { duration_ms: 1.0 },
    );
    emit(
        &mut sink,
        Some("echo[k0]"),
        EventKind::StepOutput {
            output: "result",
            mapping_key: None,
            value: &value,
        },
    );
    emit(
        &mut sink,
        None,
        EventKind::RunSuccess {
            duration_ms: 2.0,
            peak_rss_bytes: None,
        },
    );
    sink.finish().unwrap();
}

#[test]
fn records_runs_events_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    record_run(&store, "r1");
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "SUCCESS");
    assert!(runs[0].finished.is_some());
    let events = store.events("r1", None).unwrap();
    let names: Vec<_> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "RUN_START",
            "STEP_START",
            "STEP_OUTPUT",
            "STEP_SUCCESS",
            "STEP_OUTPUT",
            "RUN_SUCCESS"
        ]
    );
    assert_eq!(store.events("r1", Some("emit")).unwrap().len(), 3);
    // A stored STEP_OUTPUT names the output; its value is kept once, as a blob.
    let output: serde_json::Value = serde_json::from_str(&events[2].json).unwrap();
    assert_eq!(output["output"], "result");
    assert_eq!(output["mapping_key"], "k0");
    assert_eq!(output["step_key"], "emit");
    assert!(output.get("value").is_none(), "{output}");
    assert_eq!(store.succeeded_steps("r1").unwrap(), ["emit"]);
    let outputs = store.outputs("r1", Some("echo")).unwrap();
    assert_eq!(
        outputs,
        [OutputRecord {
            step_key: "echo[k0]".into(),
            output: "result".into(),
            mapping_key: None,
            value: cbor(7),
        }]
    );
    assert!(matches!(store.run("nope"), Err(StoreError::NoSuchRun(_))));
}

#[test]
fn appends_to_a_reopened_run_after_its_last_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    record_run(&store, "r1");
    store.reopen_run("r1").unwrap();
    assert_eq!(store.run("r1").unwrap().status, "RUNNING");
    let mut sink = store.sink("r1").unwrap();
    sink.event(&Event::now(
        "r1",
        None,
        EventKind::RunFailure {
            duration_ms: 1.0,
            failed_steps: vec![],
            unresolved_steps: vec![],
            peak_rss_bytes: None,
        },
    ));
    sink.finish().unwrap();
    assert_eq!(store.events("r1", None).unwrap().len(), 7);
    assert_eq!(store.run("r1").unwrap().status, "FAILURE");
}

#[test]
fn detects_corrupt_and_missing_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    record_run(&store, "r1");
    store
        .conn
        .execute("UPDATE blobs SET bytes = x'00'", [])
        .unwrap();
    let err = store.outputs("r1", None).unwrap_err();
    assert!(
        err.to_string().contains("does not match its content"),
        "{err}"
    );
    store
        .conn
        .execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM blobs;")
        .unwrap();
    let err = store.outputs("r1", None).unwrap_err();
    assert!(err.to_string().contains("is missing"), "{err}");
}

#[test]
fn migrates_a_store_without_the_parent_column() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("shoal.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE runs (id TEXT PRIMARY KEY, job_name TEXT NOT NULL, job_path TEXT NOT NULL,
         config_path TEXT, status TEXT NOT NULL, started REAL NOT NULL, finished REAL);",
    )
    .unwrap();
    drop(conn);
    let store = Store::open(dir.path()).unwrap();
    record_run(&store, "r1");
    assert_eq!(store.run("r1").unwrap().parent, None);
}

#[test]
fn many_processes_can_open_a_new_store_at_once() {
    // Threads stand in for concurrent `host` processes: each opens its own connection.
    let dir = tempfile::tempdir().unwrap();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let store = Store::open(&path).unwrap();
                record_run(&store, &format!("r{i}"));
            })
        })
        .collect();
    for handle in handles {
        handle
            .join()
            .expect("open and write without `database is locked`");
    }
    assert_eq!(Store::open(dir.path()).unwrap().runs().unwrap().len(), 8);
}

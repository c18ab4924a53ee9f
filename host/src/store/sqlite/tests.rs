use std::time::Duration;

use super::schema::INLINE_VALUE_LIMIT;
use super::*;
use crate::events::{EventKind, SinkError};
use crate::step_error::ErrorKind;
use crate::store::{RunStatus, lease};

fn run(id: &str) -> RunRecord {
    RunRecord {
        id: id.into(),
        job_name: "job".into(),
        job_path: "/jobs/job.toml".into(),
        config_path: None,
        status: RunStatus::Running,
        started: 1.0,
        finished: None,
        parent: None,
        owner: None,
        tenant: None,
        tags: Default::default(),
    }
}

/// Records run `id` with an empty snapshot.
fn begin(store: &SqliteStore, id: &str) {
    store.begin_run(&run(id), &snapshot(), &[]).unwrap();
}

fn snapshot() -> RunSnapshot {
    RunSnapshot {
        job_path: "/jobs/job.toml".into(),
        job_text: "[components]\n[ops]\n".into(),
        config_path: None,
        config_text: None,
        components: indexmap::IndexMap::new(),
        tags: Default::default(),
        launch: Default::default(),
    }
}

fn cbor(value: i64) -> Vec<u8> {
    crate::value::encode(&value.into())
}

/// A value above the inline limit, which the store keeps in `blobs`.
fn large() -> Vec<u8> {
    crate::value::encode(&"x".repeat(INLINE_VALUE_LIMIT).into())
}

fn record_run(store: &SqliteStore, id: &str) {
    record_run_of(store, id, &cbor(7));
}

/// Records a run whose `emit` yields `value` and whose `echo[k0]` outputs it.
fn record_run_of(store: &SqliteStore, id: &str, value: &[u8]) {
    begin(store, id);
    let mut sink = store.sink(id).unwrap();
    let emit = |sink: &mut Box<dyn RecordingSink>, step, kind| {
        sink.event(&Event::now(id, step, kind)).unwrap();
    };
    emit(&mut sink, None, EventKind::RunStart { job: "job".into() });
    emit(&mut sink, Some("emit"), EventKind::StepStart { attempt: 1 });
    emit(
        &mut sink,
        Some("emit"),
        EventKind::StepOutput {
            output: "result".into(),
            mapping_key: Some("k0".into()),
            value: value.into(),
            metadata: Default::default(),
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
            output: "result".into(),
            mapping_key: None,
            value: value.into(),
            metadata: Default::default(),
        },
    );
    emit(
        &mut sink,
        None,
        EventKind::RunSuccess {
            duration_ms: 2.0,
            tolerated_failures: Vec::new(),
            peak_rss_bytes: None,
        },
    );
    sink.finish().unwrap();
}

#[test]
fn records_runs_events_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    record_run(&store, "r1");
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Success);
    assert!(runs[0].finished.is_some());
    let events = store.events("r1", None).unwrap();
    let names: Vec<_> = events.iter().map(|e| e.kind.name()).collect();
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
    // A STEP_OUTPUT reads back as emitted; its value is kept once, as a blob, not in the event.
    assert_eq!(
        events[2].kind,
        EventKind::StepOutput {
            output: "result".into(),
            mapping_key: Some("k0".into()),
            value: cbor(7).into(),
            metadata: Default::default(),
        }
    );
    assert_eq!(events[2].step_key.as_deref(), Some("emit"));
    let row: String = store
        .lock()
        .query_row("SELECT json FROM events WHERE seq = 2", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert!(!row.contains("value"), "{row}");
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

/// Records the start of run `id` and its first step, as a process killed then would have.
fn record_killed_run(store: &SqliteStore, id: &str) {
    begin(store, id);
    let mut sink = store.sink(id).unwrap();
    sink.event(&Event::now(
        id,
        None,
        EventKind::RunStart { job: "job".into() },
    ))
    .unwrap();
    sink.event(&Event::now(
        id,
        Some("emit"),
        EventKind::StepStart { attempt: 1 },
    ))
    .unwrap();
    sink.finish().unwrap();
    set_lease(store, id, dead_pid(), this_host(), unix_now());
}

/// The pid of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    child.id()
}

fn set_lease(store: &SqliteStore, id: &str, pid: u32, host: &str, heartbeat: f64) {
    let changed = store
        .lock()
        .execute(
            "UPDATE leases SET pid = ?2, host = ?3, heartbeat = ?4 WHERE run_id = ?1",
            params![id, pid, host, heartbeat],
        )
        .unwrap();
    assert_eq!(changed, 1, "run `{id}` has a lease");
}

fn this_host() -> &'static str {
    lease::this_host()
}

fn unix_now() -> f64 {
    crate::events::unix_now()
}

#[test]
fn appends_to_a_claimed_run_after_its_last_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    record_killed_run(&store, "r1");
    store.claim("r1").unwrap();
    assert_eq!(store.run("r1").unwrap().status, RunStatus::Running);
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
    ))
    .unwrap();
    sink.finish().unwrap();
    assert_eq!(store.events("r1", None).unwrap().len(), 3);
    assert_eq!(store.run("r1").unwrap().status, RunStatus::Failure);
}

#[test]
fn a_run_is_leased_to_its_process_until_its_last_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    begin(&store, "r1");
    let record = store.run("r1").unwrap();
    assert_eq!(record.status, RunStatus::Running);
    let owner = record.owner.clone().unwrap();
    assert_eq!(
        (owner.pid, owner.host.as_str()),
        (std::process::id(), this_host())
    );
    let refused = store.claim("r1").unwrap_err();
    assert!(
        matches!(&refused, StoreError::StillRunning { pid, host, .. }
            if pid == &std::process::id() && host == this_host()),
        "{refused}"
    );
    assert!(
        refused
            .to_string()
            .contains(&format!("in process {} on host `", std::process::id())),
        "{refused}"
    );
    assert!(record.ensure_not_running().is_err());

    let mut sink = store.sink("r1").unwrap();
    sink.event(&Event::now(
        "r1",
        None,
        EventKind::RunCanceled {
            duration_ms: 1.0,
            peak_rss_bytes: None,
        },
    ))
    .unwrap();
    sink.finish().unwrap();
    let record = store.run("r1").unwrap();
    assert_eq!(record.status, RunStatus::Canceled);
    assert_eq!(record.owner, None, "the last event releases the lease");
    record.ensure_resumable().unwrap();
}

#[test]
fn a_succeeded_run_cannot_be_claimed_and_is_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    record_run(&store, "r1");
    let before = store.run("r1").unwrap();
    let err = store.claim("r1").unwrap_err();
    assert!(matches!(err, StoreError::AlreadySucceeded(_)), "{err}");
    assert!(
        err.to_string().contains("run `r1` already succeeded"),
        "{err}"
    );
    assert_eq!(store.run("r1").unwrap(), before);
}

#[test]
fn a_run_whose_process_died_is_interrupted_and_can_be_claimed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    record_killed_run(&store, "r1");
    let record = store.run("r1").unwrap();
    assert_eq!(record.status, RunStatus::Interrupted);
    assert_eq!(store.runs().unwrap()[0].status, RunStatus::Interrupted);
    record.ensure_resumable().unwrap();
    store.claim("r1").unwrap();
    let record = store.run("r1").unwrap();
    assert_eq!(record.status, RunStatus::Running);
    assert_eq!(record.owner.unwrap().pid, std::process::id());
}

#[test]
fn an_owner_is_alive_while_its_heartbeat_is_fresh_and_on_this_host_its_pid_exists() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    begin(&store, "r1");
    let now = unix_now();
    let stale = now - lease::STALE_AFTER - 1.0;
    let cases = [
        // Another host's pid cannot be checked: its heartbeat decides.
        (1, "elsewhere", now, RunStatus::Running),
        (1, "elsewhere", stale, RunStatus::Interrupted),
        // A process of this host that no longer refreshes its lease (hung, or a reused pid).
        (
            std::process::id(),
            this_host(),
            stale,
            RunStatus::Interrupted,
        ),
        (dead_pid(), this_host(), now, RunStatus::Interrupted),
        (std::process::id(), this_host(), now, RunStatus::Running),
    ];
    for (pid, host, heartbeat, status) in cases {
        set_lease(&store, "r1", pid, host, heartbeat);
        let record = store.run("r1").unwrap();
        assert_eq!(
            record.status, status,
            "pid {pid} on `{host}`, at {heartbeat}"
        );
        assert_eq!(
            record.ensure_resumable().is_ok(),
            status == RunStatus::Interrupted
        );
    }
    set_lease(&store, "r1", 1, "elsewhere", now);
    let err = store.claim("r1").unwrap_err();
    assert!(
        err.to_string()
            .contains("run `r1` is still running, in process 1 on host `elsewhere`"),
        "{err}"
    );
}

#[test]
fn the_writer_refreshes_its_lease_and_stops_once_another_process_took_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    begin(&store, "r1");
    let heartbeat = |store: &SqliteStore| store.run("r1").unwrap().owner.unwrap().heartbeat;
    let old = unix_now() - 20.0;
    set_lease(&store, "r1", std::process::id(), this_host(), old);
    let mut sink = store.sink("r1").unwrap();
    sink.event(&Event::now(
        "r1",
        None,
        EventKind::RunStart { job: "job".into() },
    ))
    .unwrap();
    // Refreshed with every batch, and by an idle writer.
    let refreshed_after = |since: f64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while heartbeat(&store) <= since {
            assert!(std::time::Instant::now() < deadline, "not refreshed");
            std::thread::sleep(Duration::from_millis(10));
        }
        heartbeat(&store)
    };
    let written = refreshed_after(old);
    assert_eq!(store.events("r1", None).unwrap().len(), 1);
    refreshed_after(written);

    // Another process takes the run over (this one looked dead to it): the writer stops at its
    // next transaction, and the event after that fails.
    set_lease(&store, "r1", 1, "elsewhere", unix_now());
    store
        .lock()
        .execute("UPDATE leases SET token = 'theirs' WHERE run_id = 'r1'", [])
        .unwrap();
    let err = fail_eventually(&mut sink);
    assert!(
        matches!(
            err.cause().downcast_ref::<StoreError>(),
            Some(StoreError::LeaseLost(_))
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("another process took over run `r1`"),
        "{err}"
    );
    let err = sink.finish().unwrap_err();
    assert!(
        matches!(
            err.cause().downcast_ref::<StoreError>(),
            Some(StoreError::LeaseLost(_))
        ),
        "{err}"
    );
    assert_eq!(
        store.events("r1", None).unwrap().len(),
        1,
        "nothing more written"
    );
}

#[test]
fn a_run_claimed_again_by_the_same_process_stops_its_earlier_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    begin(&store, "r1");
    // The first writer's first heartbeat is two seconds away: meanwhile its lease looks stale
    // and this same process claims the run again (as a service resuming a stalled run would).
    let mut first = store.sink("r1").unwrap();
    set_lease(
        &store,
        "r1",
        std::process::id(),
        this_host(),
        unix_now() - 60.0,
    );
    store.claim("r1").unwrap();
    let mut second = store.sink("r1").unwrap();

    let err = fail_eventually(&mut first);
    assert!(
        matches!(
            err.cause().downcast_ref::<StoreError>(),
            Some(StoreError::LeaseLost(_))
        ),
        "{err}"
    );
    second
        .event(&Event::now(
            "r1",
            None,
            EventKind::RunStart { job: "job".into() },
        ))
        .unwrap();
    second.finish().unwrap();
    assert_eq!(store.events("r1", None).unwrap().len(), 1);
    // A sink needs a lease this store took.
    assert!(matches!(store.sink("r1"), Err(StoreError::NotLeased(_))));
}

/// Sends events to `sink` until one fails, which must be within ten seconds.
fn fail_eventually(sink: &mut Box<dyn RecordingSink>) -> SinkError {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let sent = sink.event(&Event::now(
            "r1",
            Some("emit"),
            EventKind::StepStart { attempt: 1 },
        ));
        if let Err(err) = sent {
            return err;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never stopped"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn an_event_after_an_sqlite_error_of_the_writer_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    begin(&store, "r1");
    let mut sink = store.sink("r1").unwrap();
    store
        .lock()
        .execute_batch("PRAGMA foreign_keys = OFF; DROP TABLE events;")
        .unwrap();
    let err = fail_eventually(&mut sink);
    assert!(
        matches!(
            err.cause().downcast_ref::<StoreError>(),
            Some(StoreError::Sqlite { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("no such table: events"), "{err}");
    // It stays stopped, and says why once more when finished.
    assert!(
        fail_eventually(&mut sink)
            .to_string()
            .contains("no such table")
    );
    assert!(sink.finish().is_err());
}

#[test]
fn small_values_stay_in_their_events_and_a_large_one_is_kept_once_in_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    record_run(&store, "small");
    assert_eq!(blob_count(&store), 0);
    record_run_of(&store, "large", &large());
    assert_eq!(
        blob_count(&store),
        1,
        "the yielded value and the output are one blob"
    );
    for (run, value) in [("small", cbor(7)), ("large", large())] {
        let outputs = store.outputs(run, None).unwrap();
        let values: Vec<_> = outputs
            .iter()
            .map(|o| (o.step_key.as_str(), &o.value))
            .collect();
        assert_eq!(values, [("emit", &value), ("echo[k0]", &value)]);
        assert_eq!(
            store
                .output_value(run, "emit", None, Some("k0"))
                .unwrap()
                .as_ref(),
            Some(&value)
        );
        let events = store.events(run, None).unwrap();
        assert!(events.iter().any(|event| matches!(
            &event.kind,
            EventKind::StepOutput { value: v, .. } if **v == *value
        )));
    }
}

#[test]
fn detects_corrupt_and_missing_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    record_run_of(&store, "r1", &large());
    store
        .lock()
        .execute("UPDATE blobs SET bytes = x'00'", [])
        .unwrap();
    let err = store.outputs("r1", None).unwrap_err();
    assert!(
        err.to_string().contains("does not match its content"),
        "{err}"
    );
    store
        .lock()
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
    let store = SqliteStore::open(dir.path()).unwrap();
    record_run(&store, "r1");
    assert_eq!(store.run("r1").unwrap().parent, None);
}

#[test]
fn a_run_keeps_its_tags_and_its_launch_tags() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let tags: crate::job::tags::Tags = [("team", "data"), ("env", "prod")]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into_iter()
        .collect();
    let launched = RunSnapshot {
        tags: tags.clone(),
        ..snapshot()
    };
    store
        .begin_run(
            &RunRecord {
                tags: tags.clone(),
                ..run("tagged")
            },
            &launched,
            &[],
        )
        .unwrap();
    begin(&store, "plain");
    assert_eq!(store.run("tagged").unwrap().tags, tags);
    assert_eq!(store.snapshot("tagged").unwrap(), Some(launched));
    assert!(store.run("plain").unwrap().tags.is_empty());
    // A run with no tags stores none, and its snapshot reads as before tags existed.
    let stored: Option<String> = store
        .lock()
        .query_row("SELECT tags FROM runs WHERE id = 'plain'", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(stored, None);
    let text: String = store
        .lock()
        .query_row(
            "SELECT snapshot FROM snapshots WHERE run_id = 'plain'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(!text.contains("tags"), "{text}");
}

#[test]
fn migrates_a_store_without_leases_whose_running_runs_were_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("shoal.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE runs (id TEXT PRIMARY KEY, job_name TEXT NOT NULL, job_path TEXT NOT NULL,
         config_path TEXT, status TEXT NOT NULL, started REAL NOT NULL, finished REAL,
         parent TEXT REFERENCES runs(id));
         INSERT INTO runs VALUES ('old', 'job', '/job.toml', NULL, 'RUNNING', 1.0, NULL, NULL);
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.run("old").unwrap().status, RunStatus::Interrupted);
    store.claim("old").unwrap();
    assert_eq!(store.run("old").unwrap().status, RunStatus::Running);
}

#[test]
fn many_processes_can_open_a_new_store_at_once() {
    // Threads stand in for concurrent `host` processes: each opens its own connection.
    let dir = tempfile::tempdir().unwrap();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let store = SqliteStore::open(&path).unwrap();
                record_run(&store, &format!("r{i}"));
            })
        })
        .collect();
    for handle in handles {
        handle
            .join()
            .expect("open and write without `database is locked`");
    }
    assert_eq!(
        SqliteStore::open(dir.path()).unwrap().runs().unwrap().len(),
        8
    );
}

#[test]
fn a_run_keeps_its_snapshot_and_the_bytes_of_its_components() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let component = b"\0asm component bytes".as_slice();
    let digest = Digest::of(component);
    let mut recorded = snapshot();
    recorded.components.insert("ops".into(), digest);
    recorded.launch.select = vec!["*add".into()];
    let values = [
        ("a".to_string(), toml::Value::from(1.5)),
        ("b".into(), "x".into()),
    ];
    recorded
        .launch
        .inputs
        .insert("add".into(), values.into_iter().collect());
    store
        .begin_run(&run("r1"), &recorded, &[component])
        .unwrap();
    // A second run of the same component stores its bytes once.
    store
        .begin_run(&run("r2"), &recorded, &[component])
        .unwrap();
    assert_eq!(store.snapshot("r1").unwrap(), Some(recorded));
    assert_eq!(
        store.component(&digest).unwrap().as_deref(),
        Some(component)
    );
    assert_eq!(store.component(&Digest::of(b"other")).unwrap(), None);
    assert!(matches!(
        store.snapshot("nope"),
        Err(StoreError::NoSuchRun(_))
    ));

    store
        .lock()
        .execute("UPDATE components SET bytes = x'00'", [])
        .unwrap();
    assert!(matches!(
        store.component(&digest),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn a_run_recorded_before_snapshots_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    begin(&store, "r1");
    store.lock().execute("DELETE FROM snapshots", []).unwrap();
    assert_eq!(store.snapshot("r1").unwrap(), None);
}

#[test]
fn events_written_by_schema_2_read_back_typed() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("shoal.db")).unwrap();
    let value = cbor(7);
    let hash = blake3::hash(&value).to_hex().to_string();
    conn.execute_batch(
        "CREATE TABLE runs (id TEXT PRIMARY KEY, job_name TEXT NOT NULL, job_path TEXT NOT NULL,
         config_path TEXT, status TEXT NOT NULL, started REAL NOT NULL, finished REAL,
         parent TEXT REFERENCES runs(id));
         CREATE TABLE events (run_id TEXT NOT NULL REFERENCES runs(id), seq INTEGER NOT NULL,
         timestamp REAL NOT NULL, step_key TEXT, event TEXT NOT NULL, json TEXT NOT NULL,
         PRIMARY KEY (run_id, seq));
         CREATE TABLE blobs (hash TEXT PRIMARY KEY, bytes BLOB NOT NULL);
         CREATE TABLE outputs (run_id TEXT NOT NULL REFERENCES runs(id), seq INTEGER NOT NULL,
         step_key TEXT NOT NULL, output TEXT NOT NULL, mapping_key TEXT,
         hash TEXT NOT NULL REFERENCES blobs(hash), PRIMARY KEY (run_id, seq));
         CREATE TABLE leases (run_id TEXT PRIMARY KEY REFERENCES runs(id), pid INTEGER NOT NULL,
         host TEXT NOT NULL, heartbeat REAL NOT NULL);
         INSERT INTO runs VALUES ('old', 'job', '/job.toml', NULL, 'FAILURE', 1.0, 4.0, NULL);
         PRAGMA user_version = 2;",
    )
    .unwrap();
    // As schema 2 wrote them: a STEP_OUTPUT built by hand, with a null mapping key and no value.
    let rows = [
        (
            None,
            "RUN_START",
            r#"{"event":"RUN_START","job":"job","run_id":"old","timestamp":1.0}"#,
        ),
        (
            Some("emit"),
            "STEP_OUTPUT",
            r#"{"event":"STEP_OUTPUT","output":"result","mapping_key":null,"run_id":"old","timestamp":2.0,"step_key":"emit"}"#,
        ),
        (
            Some("boom"),
            "STEP_FAILURE",
            r#"{"event":"STEP_FAILURE","error_kind":"trap","error":"wasm trap: unreachable","duration_ms":3.0,"run_id":"old","timestamp":3.0,"step_key":"boom"}"#,
        ),
        (
            None,
            "RUN_FAILURE",
            r#"{"event":"RUN_FAILURE","duration_ms":4.0,"failed_steps":["boom"],"run_id":"old","timestamp":4.0}"#,
        ),
    ];
    for (seq, (step, name, json)) in (0_i64..).zip(rows) {
        conn.execute(
            "INSERT INTO events VALUES ('old', ?1, ?1, ?2, ?3, ?4)",
            params![seq, step, name, json],
        )
        .unwrap();
    }
    conn.execute("INSERT INTO blobs VALUES (?1, ?2)", params![hash, value])
        .unwrap();
    conn.execute(
        "INSERT INTO outputs VALUES ('old', 1, 'emit', 'result', NULL, ?1)",
        [&hash],
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(dir.path()).unwrap();
    let kinds: Vec<_> = store
        .events("old", None)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::RunStart { job: "job".into() },
            EventKind::StepOutput {
                output: "result".into(),
                mapping_key: None,
                value: value.clone().into(),
                metadata: Default::default(),
            },
            EventKind::StepFailure {
                error_kind: ErrorKind::Trap,
                error: "wasm trap: unreachable".into(),
                backtrace: None,
                duration_ms: 3.0,
            },
            EventKind::RunFailure {
                duration_ms: 4.0,
                failed_steps: vec!["boom".into()],
                unresolved_steps: vec![],
                peak_rss_bytes: None,
            },
        ]
    );
    // The output row moved into its event (schema 8), its value left in `blobs`.
    let outputs = store.outputs("old", Some("emit")).unwrap();
    assert_eq!(
        (outputs[0].output.as_str(), &outputs[0].value),
        ("result", &value)
    );
    assert_eq!(
        store.output_value("old", "emit", None, None).unwrap(),
        Some(value)
    );
    let tables: i64 = store
        .lock()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'outputs'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
    // A re-execution reuses the old event as it reuses a new one: its own run's, from the old.
    begin(&store, "child");
    let steps = std::collections::HashSet::from(["emit".to_string()]);
    store.adopt("old", "child", &steps).unwrap();
    let reused = store.events("child", Some("emit")).unwrap();
    assert_eq!(reused.len(), 1);
    assert_eq!(
        (reused[0].run_id.as_ref(), reused[0].reused_from.as_deref()),
        ("child", Some("old"))
    );
    assert_eq!(store.outputs("child", None).unwrap(), outputs);
}

#[test]
fn an_event_of_an_unknown_format_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    record_run(&store, "r1");
    store
        .lock()
        .execute("UPDATE events SET format = 99 WHERE seq = 3", [])
        .unwrap();
    let err = store.events("r1", None).unwrap_err();
    assert!(
        err.to_string()
            .contains("event 3 of run `r1` has format 99, which this build does not read"),
        "{err}"
    );
}

#[test]
fn a_tenant_scoped_store_sees_only_its_runs_and_answers_others_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let admin = SqliteStore::open(dir.path()).unwrap();
    let a = admin.scoped("a");
    let b = admin.scoped("b");
    record_run(&a, "run-a");
    record_run(&admin, "run-local");
    assert_eq!(a.run("run-a").unwrap().tenant.as_deref(), Some("a"));
    assert_eq!(admin.run("run-local").unwrap().tenant, None);
    let ids = |store: &SqliteStore| -> Vec<String> {
        store.runs().unwrap().into_iter().map(|r| r.id).collect()
    };
    assert_eq!(ids(&a), ["run-a"]);
    assert!(ids(&b).is_empty());
    assert_eq!(ids(&admin).len(), 2, "the administrator sees every run");
    let missing = |err: StoreError| matches!(err, StoreError::NoSuchRun(ref id) if id == "run-a");
    assert!(missing(b.run("run-a").unwrap_err()));
    assert!(missing(b.events("run-a", None).unwrap_err()));
    assert!(missing(b.events_after("run-a", -1, 10).unwrap_err()));
    assert!(missing(b.outputs("run-a", None).unwrap_err()));
    assert!(missing(b.snapshot("run-a").unwrap_err()));
    assert!(missing(b.claim("run-a").unwrap_err()));
    assert!(missing(b.delete_run("run-a").unwrap_err()));
    assert!(missing(b.release("run-a").unwrap_err()));
    assert!(missing(
        b.adopt("run-a", "run-a", &HashSet::new()).unwrap_err()
    ));
    // A tenant does not see the local user's runs either.
    assert!(matches!(
        a.run("run-local").unwrap_err(),
        StoreError::NoSuchRun(_)
    ));
}

#[test]
fn events_are_paged_by_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    record_run(&store, "r");
    let all = store.events("r", None).unwrap();
    let mut paged = Vec::new();
    let mut after = -1;
    loop {
        let page = store.events_after("r", after, 2).unwrap();
        let Some((last, _)) = page.last() else { break };
        assert!(page.len() <= 2);
        after = *last;
        paged.extend(page.into_iter().map(|(_, e)| e));
    }
    assert_eq!(paged, all);
}

#[test]
fn a_tenant_with_a_run_executing_cannot_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store
        .add_tenant("a", "hash", &crate::tenant::Quotas::default())
        .unwrap();
    begin(&store.scoped("a"), "live");
    assert!(matches!(
        store.remove_tenant("a").unwrap_err(),
        StoreError::TenantBusy(_)
    ));
}

#[test]
fn a_deleted_run_is_gone_and_a_running_one_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    record_run(&store, "done");
    begin(&store, "live");
    assert!(matches!(
        store.delete_run("live").unwrap_err(),
        StoreError::StillRunning { .. }
    ));
    store.delete_run("done").unwrap();
    assert!(matches!(
        store.run("done").unwrap_err(),
        StoreError::NoSuchRun(_)
    ));
    assert_eq!(store.runs().unwrap().len(), 1);
}

#[test]
fn a_released_run_reads_as_interrupted_for_the_next_process() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    record_run(&store, "r");
    assert_eq!(store.run("r").unwrap().status, RunStatus::Success);
    store.release("r").unwrap();
    let run = store.run("r").unwrap();
    assert_eq!(
        (run.status, run.finished, run.owner),
        (RunStatus::Interrupted, None, None)
    );
    store.claim("r").unwrap();
}

#[test]
fn tenants_keep_a_token_hash_quotas_and_their_own_components() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let quotas = crate::tenant::Quotas::default();
    store.add_tenant("a", "hash-a", &quotas).unwrap();
    store.add_tenant("b", "hash-b", &quotas).unwrap();
    assert!(matches!(
        store.add_tenant("a", "x", &quotas).unwrap_err(),
        StoreError::TenantExists(_)
    ));
    let (tenant, hash) = store.tenant_with_hash("a").unwrap().unwrap();
    assert_eq!((tenant.quotas, hash.as_str()), (quotas.clone(), "hash-a"));
    store.set_token_hash("a", "hash-a2").unwrap();
    assert_eq!(store.tenant_with_hash("a").unwrap().unwrap().1, "hash-a2");
    assert!(store.tenant_with_hash("nobody").unwrap().is_none());

    let ops = serde_json::json!([{"name": "op"}]);
    let entry = store
        .put_component("a", "comp", b"bytes of a", &ops)
        .unwrap();
    assert_eq!(
        store.tenant_component("a", "comp").unwrap(),
        Some(entry.clone())
    );
    assert_eq!(store.tenant_component("b", "comp").unwrap(), None);
    assert_eq!(
        store.component(&entry.digest).unwrap().unwrap(),
        b"bytes of a"
    );
    assert_eq!(store.storage_used("a").unwrap(), 10);
    assert_eq!(store.storage_used("b").unwrap(), 0);
    // Outputs of the tenant's runs count: a small value in each event that holds it, a
    // large one once.
    record_run(&store.scoped("a"), "run");
    let small = 2 * cbor(7).len() as u64;
    assert_eq!(store.storage_used("a").unwrap(), 10 + small);
    record_run_of(&store.scoped("a"), "large", &large());
    assert_eq!(
        store.storage_used("a").unwrap(),
        10 + small + large().len() as u64
    );
    store.add_tenant("c", "hash-c", &quotas).unwrap();
    store
        .put_component("c", "comp", b"bytes of a", &ops)
        .unwrap();
    assert!(store.delete_component("c", "comp").unwrap());
    assert!(
        store.component(&entry.digest).unwrap().is_some(),
        "still a's"
    );
    assert!(!store.delete_component("b", "comp").unwrap());
    // A new version replaces the old, whose bytes nothing uses any more.
    let newer = store
        .put_component("a", "comp", b"bytes of a, v2", &ops)
        .unwrap();
    assert_eq!(store.component(&entry.digest).unwrap(), None);
    assert!(store.delete_component("a", "comp").unwrap());
    assert_eq!(
        store.component(&newer.digest).unwrap(),
        None,
        "deleted, so not charged"
    );
    store.remove_tenant("a").unwrap();
    assert_eq!(
        store
            .tenants()
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect::<Vec<_>>(),
        ["b", "c"]
    );
    // Its runs stay, but a tenant added again under its name does not get them.
    let run = store.run("run").unwrap();
    assert!(run.tenant.unwrap().starts_with("a/removed-"));
    store.add_tenant("a", "hash-new", &quotas).unwrap();
    assert!(store.scoped("a").runs().unwrap().is_empty());
    assert!(matches!(
        store.remove_tenant("nobody").unwrap_err(),
        StoreError::NoSuchTenant(_)
    ));
}

/// Run `id` with steps `op`, `op2`, `op[a]`, `op[ab]`, `op[b]` and `op[b][x]`, each started
/// then succeeded, plus a log line of `op[a]`.
fn record_steps(store: &SqliteStore, id: &str) {
    begin(store, id);
    let mut sink = store.sink(id).unwrap();
    for step in ["op", "op2", "op[a]", "op[ab]", "op[b]", "op[b][x]"] {
        sink.event(&Event::now(
            id,
            Some(step),
            EventKind::StepStart { attempt: 1 },
        ))
        .unwrap();
        sink.event(&Event::now(
            id,
            Some(step),
            EventKind::Logs {
                level: "info".into(),
                message: "hello".into(),
            },
        ))
        .unwrap();
        sink.event(&Event::now(
            id,
            Some(step),
            EventKind::StepSuccess { duration_ms: 1.0 },
        ))
        .unwrap();
    }
    sink.finish().unwrap();
}

#[test]
fn an_ops_steps_are_read_in_key_order_by_prefix_and_from_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    record_steps(&store, "r");
    let keys = |steps: OpSteps<'_>, limit| {
        let rows = store.step_rows("r", &steps, limit).unwrap();
        assert!(rows.iter().all(|row| row.event.starts_with("STEP_")));
        rows.into_iter().map(|row| row.step_key).collect::<Vec<_>>()
    };
    let all = OpSteps {
        op: "op",
        prefix: None,
        after: None,
    };
    // `op2` is another op; the log lines are not lifecycle events.
    assert_eq!(
        keys(all, 100),
        [
            "op", "op", "op[a]", "op[a]", "op[ab]", "op[ab]", "op[b]", "op[b]", "op[b][x]",
            "op[b][x]"
        ]
    );
    assert_eq!(keys(all, 3), ["op", "op", "op[a]"]);
    let after = OpSteps {
        after: Some("op[ab]"),
        ..all
    };
    assert_eq!(keys(after, 100), ["op[b]", "op[b]", "op[b][x]", "op[b][x]"]);
    let prefixed = OpSteps {
        prefix: Some("a"),
        ..all
    };
    assert_eq!(keys(prefixed, 100), ["op[a]", "op[a]", "op[ab]", "op[ab]"]);
}

#[test]
fn lifecycle_events_and_filtered_pages_skip_what_was_not_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    record_steps(&store, "r");
    let lifecycle = store.step_events("r", -1, 1000).unwrap();
    assert_eq!(lifecycle.len(), 12);
    let later = store.step_events("r", lifecycle[9].seq, 1000).unwrap();
    assert_eq!(later, lifecycle[10..]);
    assert_eq!(store.last_seq("r").unwrap(), 17);
    let logs = store
        .event_page(
            "r",
            &EventFilter {
                step: Some("op"),
                kinds: &["LOGS"],
                ..EventFilter::default()
            },
        )
        .unwrap();
    let steps: Vec<_> = logs
        .iter()
        .map(|(_, e)| e.step_key.as_deref().unwrap())
        .collect();
    assert_eq!(steps, ["op", "op[a]", "op[ab]", "op[b]", "op[b][x]"]);
    let with = |op, prefix, after, limit| {
        let steps = OpSteps { op, prefix, after };
        store
            .steps_now("r", &steps, &["STEP_SUCCESS", "STEP_FAILURE"], limit)
            .unwrap()
    };
    // Every step started, but none is running now.
    let all = OpSteps {
        op: "",
        prefix: None,
        after: None,
    };
    assert!(
        store
            .steps_now("r", &all, &["STEP_START"], 100)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        with("", None, None, 100),
        ["op", "op2", "op[a]", "op[ab]", "op[b]", "op[b][x]"]
    );
    assert_eq!(with("", None, Some("op[a]"), 2), ["op[ab]", "op[b]"]);
    assert_eq!(with("op", Some("a"), None, 100), ["op[a]", "op[ab]"]);
    assert_eq!(with("op2", None, None, 100), ["op2"]);
    let rows = store.step_rows_of("r", "op[b]").unwrap();
    let events: Vec<_> = rows.iter().map(|row| row.event.as_str()).collect();
    assert_eq!(events, ["STEP_START", "STEP_SUCCESS"]);
    assert!(matches!(
        store.step_events("elsewhere", -1, 10),
        Err(StoreError::NoSuchRun(_))
    ));
}

fn blob_count(store: &SqliteStore) -> i64 {
    store
        .lock()
        .query_row("SELECT COUNT(*) FROM blobs", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn deleting_runs_forgets_the_values_only_they_referred_to() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    // Both record the same large value: one blob, referred to four times.
    record_run_of(&store, "old", &large());
    record_run_of(&store, "new", &large());
    assert_eq!(blob_count(&store), 1);

    let collected = store.delete_runs(&["old".to_string()]).unwrap();
    assert_eq!((collected.runs, collected.blobs), (1, 0));
    assert_eq!(store.outputs("new", None).unwrap()[0].value, large());

    let collected = store.delete_runs(&["new".to_string()]).unwrap();
    assert_eq!((collected.runs, collected.blobs), (1, 1));
    assert_eq!(collected.not_compacted_for, None);
    assert_eq!(blob_count(&store), 0);
    assert!(store.runs().unwrap().is_empty());
}

#[test]
fn deleting_runs_is_all_or_none_and_a_running_one_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    record_run_of(&store, "done", &large());
    begin(&store, "live");
    let ids = ["done".to_string(), "live".to_string()];
    assert!(matches!(
        store.delete_runs(&ids).unwrap_err(),
        StoreError::StillRunning { .. }
    ));
    assert_eq!(store.runs().unwrap().len(), 2);
    assert_eq!(blob_count(&store), 1);

    // What a running run refers to stays; the database is not compacted under its writer.
    let collected = store.delete_runs(&ids[..1]).unwrap();
    assert_eq!((collected.runs, collected.blobs), (1, 1));
    assert_eq!(collected.not_compacted_for.as_deref(), Some("live"));
}

#[test]
fn runs_are_found_by_the_start_of_their_id_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    for id in ["ab1", "ab2", "b"] {
        record_run(&store, id);
    }
    let ids = |prefix, limit| -> Vec<String> {
        let runs = store.runs_starting_with(prefix, limit).unwrap();
        runs.into_iter().map(|run| run.id).collect()
    };
    assert_eq!(ids("ab", None), ["ab2", "ab1"]);
    assert_eq!(ids("", Some(1)), ["b"]);
    assert!(ids("c", None).is_empty());
    assert!(
        store
            .scoped("t")
            .runs_starting_with("", None)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_step_read_in_sequence_gives_what_the_step_index_gives() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    record_steps(&store, "r");
    for step in ["op", "op[a]", "op[b]"] {
        for kinds in [&[][..], &["LOGS"][..]] {
            let page = |in_sequence, after, limit| {
                let filter = EventFilter {
                    step: Some(step),
                    kinds,
                    after,
                    limit,
                    in_sequence,
                };
                store.event_page("r", &filter).unwrap()
            };
            let indexed = page(false, -1, None);
            assert!(!indexed.is_empty(), "{step}");
            assert_eq!(page(true, -1, None), indexed, "{step} {kinds:?}");
            // Page by page from the first row on.
            let (first, _) = indexed[0];
            assert_eq!(
                page(true, first, Some(2)),
                indexed[1..].iter().take(2).cloned().collect::<Vec<_>>()
            );
        }
    }
}

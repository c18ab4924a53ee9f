//! The run store: an embedded SQLite database holding every run, its event log, and its step
//! outputs as content-addressed CBOR blobs, so that runs can be inspected and resumed.
//!
//! Events are written by one writer thread in batched transactions, in event order. A step's
//! `STEP_OUTPUT` events come before its `STEP_SUCCESS`, so a committed success always has its
//! outputs committed with it or before it; a crash loses at most the last, uncommitted batch,
//! and with it only work that resume will redo.
//!
//! A run being executed is leased to its process ([`lease`]): the writer refreshes the lease in
//! every transaction and gives up if another process took it over, and `resume` refuses a run
//! whose owner is alive.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::digest::Digest;
use crate::events::{Event, EventKind, EventSink};
use crate::snapshot::RunSnapshot;
pub use lease::Owner;

/// The environment variable naming the store directory.
pub const STORE_ENV: &str = "SHOAL_STORE";

/// Most events written in one transaction.
const BATCH: usize = 4096;

/// Most events waiting for the writer. When SQLite falls behind, the run waits for it rather
/// than queueing without bound: a 1M-step run queued 700 MiB of events before this bound.
const QUEUE: usize = 4 * BATCH;

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the run store directory `{path}`")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("run store `{path}`: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("no run `{0}` in the store")]
    NoSuchRun(String),
    #[error("run `{run}` has no step `{step}`")]
    NoSuchStep { run: String, step: String },
    #[error("run `{run}`, step `{step}` has no output `{output}`")]
    NoSuchOutput {
        run: String,
        step: String,
        output: String,
    },
    #[error("the store is corrupt: the snapshot of run `{run}` cannot be read: {problem}")]
    BadSnapshot { run: String, problem: String },
    #[error("the store is corrupt: blob `{hash}` {problem}")]
    Corrupt { hash: String, problem: &'static str },
    #[error("run `{run}` is still running, in process {pid} on host `{host}`")]
    StillRunning { run: String, pid: u32, host: String },
    #[error(
        "run `{0}` already succeeded: there is nothing to resume \
         (`host reexecute {0} --select OP` runs steps again)"
    )]
    AlreadySucceeded(String),
    #[error(
        "another process took over run `{0}` after this one stopped refreshing its lease; \
         this process's later events were not recorded"
    )]
    LeaseLost(String),
    #[error("the run store's writer thread panicked")]
    WriterPanicked,
}

/// A run's status. Only the first four are stored: `Interrupted` is a `RUNNING` run whose
/// process died (its lease is dead), so that a killed run does not look like it still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Success,
    Failure,
    /// Stopped by SIGINT or SIGTERM, with what completed committed.
    Canceled,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Success => "SUCCESS",
            RunStatus::Failure => "FAILURE",
            RunStatus::Canceled => "CANCELED",
            RunStatus::Interrupted => "INTERRUPTED",
        }
    }

    /// The status stored as `text`.
    fn stored(text: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Success,
            RunStatus::Failure,
            RunStatus::Canceled,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown run status `{0}`")]
struct UnknownStatus(String);

/// A run as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: String,
    pub job_name: String,
    /// The job file, absolute.
    pub job_path: PathBuf,
    /// The run config file, if one was given.
    pub config_path: Option<PathBuf>,
    pub status: RunStatus,
    pub started: f64,
    pub finished: Option<f64>,
    /// The run this one re-executes, if any.
    pub parent: Option<String>,
    /// The process executing the run, or the one that died executing it.
    pub owner: Option<Owner>,
}

impl RunRecord {
    /// Refuses a run that a live process executes: a second writer would corrupt it.
    pub fn ensure_not_running(&self) -> Result<(), StoreError> {
        match (self.status, &self.owner) {
            (RunStatus::Running, Some(owner)) => Err(StoreError::StillRunning {
                run: self.id.clone(),
                pid: owner.pid,
                host: owner.host.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Refuses to resume a run that a live process executes or that succeeded.
    pub fn ensure_resumable(&self) -> Result<(), StoreError> {
        self.ensure_not_running()?;
        if self.status == RunStatus::Success {
            return Err(StoreError::AlreadySucceeded(self.id.clone()));
        }
        Ok(())
    }
}

/// One recorded event.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub step_key: Option<String>,
    pub event: String,
    /// The whole event as JSON.
    pub json: String,
}

/// One recorded output value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRecord {
    pub step_key: String,
    pub output: String,
    /// Set for values of dynamic outputs.
    pub mapping_key: Option<String>,
    pub value: Vec<u8>,
}

/// An open store.
pub struct Store {
    path: PathBuf,
    conn: Connection,
}

/// The store directory: `--store`, else `$SHOAL_STORE`, else `~/.shoal`.
pub fn default_dir() -> PathBuf {
    std::env::var_os("HOME").map_or_else(
        || PathBuf::from(".shoal"),
        |home| Path::new(&home).join(".shoal"),
    )
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // First, so that every statement below waits for other processes' locks (several `host`
    // processes may open a new store at once) instead of failing with "database is locked".
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // WAL keeps every committed transaction across a crash of this process (SIGKILL included);
    // NORMAL sync trades durability on power loss for commit speed. Switching a new database
    // to WAL can report "busy" without waiting while another process does the same, so retry.
    // A 16 MiB page cache per connection: 64 MiB made up a tenth of a 1M-step run's peak RSS.
    retry_busy(|| conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())))?;
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA cache_size = -16384;
         PRAGMA foreign_keys = ON;",
    )?;
    // One immediate transaction, which waits for the write lock, creates or upgrades the schema.
    retry_busy(|| conn.execute_batch("BEGIN IMMEDIATE"))?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS runs (
             id TEXT PRIMARY KEY,
             job_name TEXT NOT NULL,
             job_path TEXT NOT NULL,
             config_path TEXT,
             status TEXT NOT NULL,
             started REAL NOT NULL,
             finished REAL,
             parent TEXT REFERENCES runs(id)
         );
         CREATE TABLE IF NOT EXISTS events (
             run_id TEXT NOT NULL REFERENCES runs(id),
             seq INTEGER NOT NULL,
             timestamp REAL NOT NULL,
             step_key TEXT,
             event TEXT NOT NULL,
             json TEXT NOT NULL,
             PRIMARY KEY (run_id, seq)
         );
         CREATE INDEX IF NOT EXISTS events_by_step ON events(run_id, step_key);
         CREATE TABLE IF NOT EXISTS blobs (
             hash TEXT PRIMARY KEY,
             bytes BLOB NOT NULL
         );
         CREATE TABLE IF NOT EXISTS outputs (
             run_id TEXT NOT NULL REFERENCES runs(id),
             seq INTEGER NOT NULL,
             step_key TEXT NOT NULL,
             output TEXT NOT NULL,
             mapping_key TEXT,
             hash TEXT NOT NULL REFERENCES blobs(hash),
             PRIMARY KEY (run_id, seq)
         );
         CREATE INDEX IF NOT EXISTS outputs_by_step ON outputs(run_id, step_key);",
    )?;
    migrate(&conn)?;
    conn.execute_batch("COMMIT")?;
    Ok(conn)
}

/// Runs `attempt` again while SQLite reports the database busy, for up to about ten seconds.
fn retry_busy<T>(mut attempt: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match attempt() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            result => return result,
        }
    }
}

/// The schema version this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 3;

/// Brings a store written by an older build up to [`SCHEMA_VERSION`].
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version < 1 {
        // Version 0 stores predate re-execution and have no `parent` column.
        let has_parent = conn
            .prepare("SELECT 1 FROM pragma_table_info('runs') WHERE name = 'parent'")?
            .exists([])?;
        if !has_parent {
            conn.execute_batch("ALTER TABLE runs ADD COLUMN parent TEXT REFERENCES runs(id)")?;
        }
    }
    if version < 2 {
        // Version 1 stores predate leases: their `RUNNING` runs have no owner, so they show
        // as interrupted and can be resumed.
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS leases (
                 run_id TEXT PRIMARY KEY REFERENCES runs(id),
                 pid INTEGER NOT NULL,
                 host TEXT NOT NULL,
                 heartbeat REAL NOT NULL
             )",
        )?;
    }
    if version < 3 {
        // Version 2 stores predate snapshots: their runs cannot be resumed or re-executed.
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS snapshots (
                 run_id TEXT PRIMARY KEY REFERENCES runs(id),
                 snapshot TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS components (
                 digest TEXT PRIMARY KEY,
                 bytes BLOB NOT NULL
             );",
        )?;
    }
    if version != SCHEMA_VERSION {
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Create {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("shoal.db");
        let conn = open_connection(&path).map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        Ok(Store { path, conn })
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        sqlite_error(&self.path)(source)
    }

    /// Records a new run as `RUNNING`, leased to this process, with the snapshot of what it
    /// executes and the bytes of its components (kept once per digest).
    pub fn begin_run(
        &mut self,
        run: &RunRecord,
        snapshot: &RunSnapshot,
        components: &[&[u8]],
    ) -> Result<(), StoreError> {
        let sqlite = sqlite_error(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        tx.execute(
            "INSERT INTO runs (id, job_name, job_path, config_path, status, started, parent)
             VALUES (?1, ?2, ?3, ?4, 'RUNNING', ?5, ?6)",
            params![
                run.id,
                run.job_name,
                run.job_path.to_string_lossy(),
                run.config_path
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned()),
                run.started,
                run.parent
            ],
        )
        .map_err(sqlite)?;
        let snapshot = serde_json::to_string(snapshot).expect("a snapshot serializes");
        tx.execute(
            "INSERT INTO snapshots (run_id, snapshot) VALUES (?1, ?2)",
            params![run.id, snapshot],
        )
        .map_err(sqlite)?;
        for bytes in components {
            let digest = Digest::of(bytes).to_string();
            tx.execute(
                "INSERT OR IGNORE INTO components (digest, bytes) VALUES (?1, ?2)",
                params![digest, bytes],
            )
            .map_err(sqlite)?;
        }
        take_lease(&tx, &run.id).map_err(sqlite)?;
        tx.commit().map_err(sqlite)
    }

    /// What run `id` executes; `None` for a run recorded before snapshots existed.
    pub fn snapshot(&self, id: &str) -> Result<Option<RunSnapshot>, StoreError> {
        self.run(id)?;
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT snapshot FROM snapshots WHERE run_id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        text.map(|text| {
            serde_json::from_str(&text).map_err(|err| StoreError::BadSnapshot {
                run: id.to_string(),
                problem: err.to_string(),
            })
        })
        .transpose()
    }

    /// The bytes of the component with `digest`, checked against it.
    pub fn component(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let bytes: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT bytes FROM components WHERE digest = ?1",
                [digest.to_string()],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        match bytes {
            Some(bytes) if Digest::of(&bytes) != *digest => Err(StoreError::Corrupt {
                hash: digest.to_string(),
                problem: "does not match its content",
            }),
            bytes => Ok(bytes),
        }
    }

    /// Takes run `id` over for `host resume`: checks that it is resumable and leases it to this
    /// process in one transaction, so that of two processes resuming it only one can.
    pub fn claim(&mut self, id: &str) -> Result<(), StoreError> {
        let sqlite = sqlite_error(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        query_run(&tx, id)
            .map_err(sqlite)?
            .ok_or_else(|| StoreError::NoSuchRun(id.to_string()))?
            .ensure_resumable()?;
        take_lease(&tx, id).map_err(sqlite)?;
        tx.execute(
            "UPDATE runs SET status = 'RUNNING', finished = NULL WHERE id = ?1",
            [id],
        )
        .map_err(sqlite)?;
        tx.commit().map_err(sqlite)
    }

    /// All runs, newest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut statement = self
            .conn
            .prepare(&format!("{SELECT_RUNS} ORDER BY r.started DESC, r.id DESC"))
            .map_err(|e| self.sqlite(e))?;
        let now = crate::events::unix_now();
        let rows = statement
            .query_map([], |row| run_record(row, now))
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))
    }

    /// The run `id`.
    pub fn run(&self, id: &str) -> Result<RunRecord, StoreError> {
        query_run(&self.conn, id)
            .map_err(|e| self.sqlite(e))?
            .ok_or_else(|| StoreError::NoSuchRun(id.to_string()))
    }

    /// The events of run `id` in order; when `step` is given, only those of that step and of the
    /// clones under it (`op` gives `op[a]`, `op[b]`, ...).
    pub fn events(&self, id: &str, step: Option<&str>) -> Result<Vec<EventRecord>, StoreError> {
        self.run(id)?;
        let mut statement = self
            .conn
            .prepare(
                // `op[` .. `op\` holds exactly the keys that start with `op[` ('\' follows
                // '['), as a range the index serves.
                "SELECT step_key, event, json FROM events
                 WHERE run_id = ?1
                   AND (?2 IS NULL OR step_key = ?2
                        OR (step_key >= ?2 || '[' AND step_key < ?2 || '\\'))
                 ORDER BY seq",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = statement
            .query_map(params![id, step], |row| {
                Ok(EventRecord {
                    step_key: row.get(0)?,
                    event: row.get(1)?,
                    json: row.get(2)?,
                })
            })
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))
    }

    /// The outputs of run `id`, in the order they were produced; those of steps whose key is
    /// `step` or starts with `step[` when given (every clone of a mapped op).
    pub fn outputs(&self, id: &str, step: Option<&str>) -> Result<Vec<OutputRecord>, StoreError> {
        self.run(id)?;
        let mut statement = self
            .conn
            .prepare(
                "SELECT o.step_key, o.output, o.mapping_key, o.hash, b.bytes
                 FROM outputs o LEFT JOIN blobs b ON b.hash = o.hash
                 WHERE o.run_id = ?1 AND (?2 IS NULL OR o.step_key = ?2 OR substr(o.step_key, 1, length(?2) + 1) = ?2 || '[')
                 ORDER BY o.seq",
            )
            .map_err(|e| self.sqlite(e))?;
        let rows = statement
            .query_map(params![id, step], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<Vec<u8>>>(4)?,
                ))
            })
            .map_err(|e| self.sqlite(e))?;
        let mut outputs = Vec::new();
        for row in rows {
            let (step_key, output, mapping_key, hash, bytes) = row.map_err(|e| self.sqlite(e))?;
            let value = bytes.ok_or_else(|| StoreError::Corrupt {
                hash: hash.clone(),
                problem: "is missing",
            })?;
            if blake3::hash(&value).to_hex().as_str() != hash {
                return Err(StoreError::Corrupt {
                    hash,
                    problem: "does not match its content",
                });
            }
            outputs.push(OutputRecord {
                step_key,
                output,
                mapping_key,
                value,
            });
        }
        Ok(outputs)
    }

    /// Copies into run `child` what run `parent` recorded for `steps` (their outputs and
    /// successes), so that a re-execution holds every output it reused. Copied events carry
    /// `reused_from`.
    pub fn adopt(
        &mut self,
        parent: &str,
        child: &str,
        steps: &HashSet<String>,
    ) -> Result<(), StoreError> {
        let steps = serde_json::to_string(steps).expect("a set of strings serializes");
        let sqlite = sqlite_error(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        tx.execute(
            "INSERT INTO events (run_id, seq, timestamp, step_key, event, json)
             SELECT ?2, seq, timestamp, step_key, event,
                    json_set(json, '$.run_id', ?2, '$.reused_from', ?1)
             FROM events
             WHERE run_id = ?1 AND event IN ('STEP_OUTPUT', 'STEP_SUCCESS')
               AND step_key IN (SELECT value FROM json_each(?3))",
            params![parent, child, steps],
        )
        .map_err(sqlite)?;
        tx.execute(
            "INSERT INTO outputs (run_id, seq, step_key, output, mapping_key, hash)
             SELECT ?2, seq, step_key, output, mapping_key, hash FROM outputs
             WHERE run_id = ?1 AND step_key IN (SELECT value FROM json_each(?3))",
            params![parent, child, steps],
        )
        .map_err(sqlite)?;
        tx.commit().map_err(sqlite)
    }

    /// Step keys with a committed `STEP_SUCCESS` in run `id`.
    pub fn succeeded_steps(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT step_key FROM events WHERE run_id = ?1 AND event = 'STEP_SUCCESS' ORDER BY seq")
            .map_err(|e| self.sqlite(e))?;
        let rows = statement
            .query_map([id], |row| row.get(0))
            .map_err(|e| self.sqlite(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sqlite(e))
    }

    /// The next event sequence number of run `id`.
    fn next_seq(&self, id: &str) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM events WHERE run_id = ?1",
                [id],
                |row| row.get(0),
            )
            .map_err(|e| self.sqlite(e))
    }

    /// A sink that appends the events of run `id`, which this process must hold the lease of,
    /// to the store from a writer thread.
    pub fn sink(&self, id: &str) -> Result<StoreSink, StoreError> {
        let seq = self.next_seq(id)?;
        let conn = open_connection(&self.path).map_err(|e| self.sqlite(e))?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let run_id = id.to_string();
        let writer = std::thread::spawn(move || write_events(conn, &run_id, seq, &rx));
        Ok(StoreSink {
            path: self.path.clone(),
            run_id: id.to_string(),
            tx: Some(tx),
            writer: Some(writer),
        })
    }
}

/// Every run with its lease, if any.
const SELECT_RUNS: &str = "SELECT r.id, r.job_name, r.job_path, r.config_path, r.status,
        r.started, r.finished, r.parent, l.pid, l.host, l.heartbeat
    FROM runs r LEFT JOIN leases l ON l.run_id = r.id";

/// Names the store at `path` in a SQLite error; it borrows only the path, so that it can be
/// used while a transaction borrows the connection.
fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

fn query_run(conn: &Connection, id: &str) -> rusqlite::Result<Option<RunRecord>> {
    let now = crate::events::unix_now();
    conn.query_row(&format!("{SELECT_RUNS} WHERE r.id = ?1"), [id], |row| {
        run_record(row, now)
    })
    .optional()
}

/// A row of [`SELECT_RUNS`]; a `RUNNING` run whose owner is dead at `now` is `INTERRUPTED`.
fn run_record(row: &rusqlite::Row<'_>, now: f64) -> rusqlite::Result<RunRecord> {
    let stored: String = row.get(4)?;
    let status = RunStatus::stored(&stored).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            4,
            rusqlite::types::Type::Text,
            Box::new(UnknownStatus(stored.clone())),
        )
    })?;
    let owner = match (row.get(8)?, row.get(9)?, row.get(10)?) {
        (Some(pid), Some(host), Some(heartbeat)) => Some(Owner {
            pid,
            host,
            heartbeat,
        }),
        _ => None,
    };
    let alive = owner.as_ref().is_some_and(|o| o.is_alive(now));
    Ok(RunRecord {
        id: row.get(0)?,
        job_name: row.get(1)?,
        job_path: PathBuf::from(row.get::<_, String>(2)?),
        config_path: row.get::<_, Option<String>>(3)?.map(PathBuf::from),
        status: match status {
            RunStatus::Running if !alive => RunStatus::Interrupted,
            status => status,
        },
        started: row.get(5)?,
        finished: row.get(6)?,
        parent: row.get(7)?,
        owner,
    })
}

/// Leases run `id` to this process, replacing a dead owner's lease.
fn take_lease(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    let me = Owner::this_process();
    conn.execute(
        "INSERT OR REPLACE INTO leases (run_id, pid, host, heartbeat) VALUES (?1, ?2, ?3, ?4)",
        params![id, me.pid, me.host, me.heartbeat],
    )?;
    Ok(())
}

/// What the writer thread stores for one event.
struct Pending {
    timestamp: f64,
    step_key: Option<String>,
    event: &'static str,
    json: String,
    /// For `STEP_OUTPUT`: output name, mapping key, value.
    output: Option<(String, Option<String>, Vec<u8>)>,
    /// For `RUN_SUCCESS` / `RUN_FAILURE` / `RUN_CANCELED`: the run's final status.
    finished: Option<RunStatus>,
}

/// Why the writer stopped.
enum WriteFailure {
    Sqlite(rusqlite::Error),
    LeaseLost,
}

impl From<rusqlite::Error> for WriteFailure {
    fn from(err: rusqlite::Error) -> Self {
        WriteFailure::Sqlite(err)
    }
}

/// Streams a run's events into the store. Dropping it flushes and waits for the writer.
pub struct StoreSink {
    path: PathBuf,
    run_id: String,
    tx: Option<mpsc::SyncSender<Pending>>,
    writer: Option<JoinHandle<Result<(), WriteFailure>>>,
}

impl StoreSink {
    /// Flushes everything and reports a write failure, if any.
    pub fn finish(mut self) -> Result<(), StoreError> {
        self.close()
    }

    fn close(&mut self) -> Result<(), StoreError> {
        drop(self.tx.take());
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Ok(()))) | None => Ok(()),
            Some(Ok(Err(WriteFailure::Sqlite(source)))) => Err(StoreError::Sqlite {
                path: self.path.clone(),
                source,
            }),
            Some(Ok(Err(WriteFailure::LeaseLost))) => {
                Err(StoreError::LeaseLost(self.run_id.clone()))
            }
            Some(Err(_panic)) => Err(StoreError::WriterPanicked),
        }
    }
}

impl Drop for StoreSink {
    fn drop(&mut self) {
        let _ignored = self.close();
    }
}

impl EventSink for StoreSink {
    fn event(&mut self, event: &Event<'_>) {
        let json = match &event.kind {
            // The value itself goes to `blobs` (linked through `outputs`); rendering it as JSON
            // too cost more than the rest of the step for a 4 KiB value.
            EventKind::StepOutput {
                output,
                mapping_key,
                ..
            } => serde_json::json!({
                "event": event.kind.name(),
                "output": output,
                "mapping_key": mapping_key,
                "run_id": event.run_id,
                "timestamp": event.timestamp,
                "step_key": event.step_key,
            })
            .to_string(),
            _ => serde_json::to_string(event).expect("events serialize"),
        };
        let (output, finished) = match &event.kind {
            EventKind::StepOutput {
                output,
                mapping_key,
                value,
            } => (
                Some((
                    output.to_string(),
                    mapping_key.map(str::to_string),
                    value.to_vec(),
                )),
                None,
            ),
            EventKind::RunSuccess { .. } => (None, Some(RunStatus::Success)),
            EventKind::RunFailure { .. } => (None, Some(RunStatus::Failure)),
            EventKind::RunCanceled { .. } => (None, Some(RunStatus::Canceled)),
            _ => (None, None),
        };
        let pending = Pending {
            timestamp: event.timestamp,
            step_key: event.step_key.map(str::to_string),
            event: event.kind.name(),
            json,
            output,
            finished,
        };
        if let Some(tx) = &self.tx {
            let _ignored = tx.send(pending);
        }
    }
}

/// Writes the events of run `run_id` in batches. Every transaction first refreshes this
/// process's lease on the run, until the run's final event releases it; with nothing to write,
/// a transaction every [`lease::HEARTBEAT_EVERY`] does only that.
fn write_events(
    mut conn: Connection,
    run_id: &str,
    mut seq: i64,
    rx: &mpsc::Receiver<Pending>,
) -> Result<(), WriteFailure> {
    let me = Owner::this_process();
    let mut leased = true;
    loop {
        let first = match rx.recv_timeout(lease::HEARTBEAT_EVERY) {
            Ok(first) => Some(first),
            Err(mpsc::RecvTimeoutError::Timeout) if leased => None,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if leased {
            let refreshed = tx
                .prepare_cached(
                    "UPDATE leases SET heartbeat = ?4 WHERE run_id = ?1 AND pid = ?2 AND host = ?3",
                )?
                .execute(params![run_id, me.pid, me.host, crate::events::unix_now()])?;
            if refreshed == 0 {
                return Err(WriteFailure::LeaseLost);
            }
        }
        if let Some(first) = first {
            let mut insert_event = tx.prepare_cached(
                "INSERT INTO events (run_id, seq, timestamp, step_key, event, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut insert_blob =
                tx.prepare_cached("INSERT OR IGNORE INTO blobs (hash, bytes) VALUES (?1, ?2)")?;
            let mut insert_output = tx.prepare_cached(
                "INSERT INTO outputs (run_id, seq, step_key, output, mapping_key, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut finish =
                tx.prepare_cached("UPDATE runs SET status = ?2, finished = ?3 WHERE id = ?1")?;
            let mut release = tx.prepare_cached("DELETE FROM leases WHERE run_id = ?1")?;
            // Take what has queued up, so that a busy run commits in large batches.
            let batch = std::iter::once(first).chain(rx.try_iter().take(BATCH - 1));
            for pending in batch {
                insert_event.execute(params![
                    run_id,
                    seq,
                    pending.timestamp,
                    pending.step_key,
                    pending.event,
                    pending.json
                ])?;
                if let (Some((output, mapping_key, value)), Some(step)) =
                    (&pending.output, &pending.step_key)
                {
                    let hash = blake3::hash(value).to_hex();
                    insert_blob.execute(params![hash.as_str(), value])?;
                    insert_output.execute(params![
                        run_id,
                        seq,
                        step,
                        output,
                        mapping_key,
                        hash.as_str()
                    ])?;
                }
                if let Some(status) = pending.finished {
                    finish.execute(params![run_id, status.as_str(), pending.timestamp])?;
                    release.execute([run_id])?;
                    leased = false;
                }
                seq += 1;
            }
        }
        tx.commit()?;
    }
}

mod lease;
#[cfg(test)]
mod tests;

//! The SQLite store's tables, and the migrations that bring a store written by an older build
//! up to date.

use std::path::Path;

use rusqlite::Connection;

/// The schema version this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 8;

/// Output values up to this size are stored in their event's row. Larger ones are stored once
/// by hash in `blobs`, where a clone's output equal to its input, and the copies re-executions
/// make, share one copy; below it, a row of its own costs more than the bytes it would save.
pub const INLINE_VALUE_LIMIT: usize = 1024;

/// Opens the database at `path`, creating or upgrading its schema.
pub fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
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
    // A `STEP_OUTPUT` event's row holds its output's name, mapping key and value (`value`, or
    // `hash` in `blobs` above [`INLINE_VALUE_LIMIT`]): one row per output, not three. Events
    // are clustered by run and sequence (`WITHOUT ROWID`): a rowid table would keep that key in
    // an index of its own, a third B-tree insert per event. See `event_row` for `json`.
    retry_busy(|| conn.execute_batch("BEGIN IMMEDIATE"))?;
    conn.execute_batch(&format!(
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
         {EVENTS}
         CREATE INDEX IF NOT EXISTS events_by_step ON events(run_id, step_key);
         CREATE TABLE IF NOT EXISTS blobs (
             hash TEXT PRIMARY KEY,
             bytes BLOB NOT NULL
         );"
    ))?;
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

/// Brings a store written by an older build up to [`SCHEMA_VERSION`].
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version < 1 {
        // Version 0 stores predate re-execution and have no `parent` column.
        if !has_column(conn, "runs", "parent")? {
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
    if version < 4 {
        // Version 3 stores predate event formats: their events have the first one.
        if !has_column(conn, "events", "format")? {
            conn.execute_batch("ALTER TABLE events ADD COLUMN format INTEGER NOT NULL DEFAULT 1")?;
        }
    }
    if version < 5 {
        // Version 4 leases name their holder by process only; one process may execute a run
        // twice (a stalled writer, then a resume), so a lease now carries a token of its own.
        if !has_column(conn, "leases", "token")? {
            conn.execute_batch("ALTER TABLE leases ADD COLUMN token TEXT")?;
        }
    }
    if version < 6 {
        // Version 5 stores predate tenants: their runs are the local user's (`tenant` NULL).
        if !has_column(conn, "runs", "tenant")? {
            conn.execute_batch("ALTER TABLE runs ADD COLUMN tenant TEXT")?;
        }
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS runs_by_tenant ON runs(tenant, started);
             CREATE TABLE IF NOT EXISTS tenants (
                 name TEXT PRIMARY KEY,
                 token_hash TEXT NOT NULL,
                 quotas TEXT NOT NULL,
                 created REAL NOT NULL
             );
             CREATE TABLE IF NOT EXISTS tenant_components (
                 tenant TEXT NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,
                 name TEXT NOT NULL,
                 digest TEXT NOT NULL REFERENCES components(digest),
                 size INTEGER NOT NULL,
                 ops TEXT NOT NULL,
                 uploaded REAL NOT NULL,
                 PRIMARY KEY (tenant, name)
             );",
        )?;
    }
    if version < 7 {
        // Version 6 stores predate tags: their runs have none (`tags` NULL).
        if !has_column(conn, "runs", "tags")? {
            conn.execute_batch("ALTER TABLE runs ADD COLUMN tags TEXT")?;
        }
    }
    if version < 8 {
        // Version 7 stores keep outputs in a table of their own, each value in `blobs`, and
        // events in a rowid table: the events are copied into the clustered table with their
        // output rows (the values stay in `blobs`).
        if has_table(conn, "outputs")? {
            conn.execute_batch(&format!(
                "ALTER TABLE events RENAME TO events_v7;
                 DROP INDEX IF EXISTS events_by_step;
                 {EVENTS}
                 INSERT INTO events (run_id, seq, timestamp, step_key, event, json, format,
                                     output, mapping_key, hash)
                 SELECT e.run_id, e.seq, e.timestamp, e.step_key, e.event, e.json, e.format,
                        o.output, o.mapping_key, o.hash
                 FROM events_v7 e LEFT JOIN outputs o ON o.run_id = e.run_id AND o.seq = e.seq;
                 DROP TABLE outputs;
                 DROP TABLE events_v7;
                 CREATE INDEX events_by_step ON events(run_id, step_key);"
            ))?;
        }
        // What still refers to a blob, for the collection of those nothing does.
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS events_by_blob ON events(hash) WHERE hash IS NOT NULL",
        )?;
    }
    if version != SCHEMA_VERSION {
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    }
    Ok(())
}

/// The table of events, as this build creates it.
const EVENTS: &str = "CREATE TABLE IF NOT EXISTS events (
        run_id TEXT NOT NULL REFERENCES runs(id),
        seq INTEGER NOT NULL,
        timestamp REAL NOT NULL,
        step_key TEXT,
        event TEXT NOT NULL,
        json TEXT NOT NULL,
        format INTEGER NOT NULL DEFAULT 1,
        output TEXT,
        mapping_key TEXT,
        value BLOB,
        hash TEXT,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;";

/// Whether the store has `table`.
fn has_table(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1")?
        .exists([table])
}

/// Whether `table` has `column` (an older store may lack one that a new one was created with).
fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
        .exists([table, column])
}

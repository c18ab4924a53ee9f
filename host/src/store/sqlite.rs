//! The run store in an embedded SQLite database (`shoal.db` in the store directory): no server
//! to install, and every committed transaction survives a crash of the process.
//!
//! Reads are in [`queries`], the schema and its migrations in [`schema`], the writer thread
//! that records a running run in [`writer`]; the transactions of the other writes are here.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, TransactionBehavior, params};

use super::{Collected, RecordingSink, RunRecord, RunStore, StoreError};
use crate::digest::Digest;
use crate::events::Event;
use crate::snapshot::RunSnapshot;
use crate::store::{OutputRecord, Owner};
pub use queries::EventFilter;
use queries::{Db, sqlite_error};
use writer::StoreSink;

/// An open SQLite store, seeing every run or one tenant's ([`SqliteStore::scoped`]). Its one
/// connection serves the process's reads and short write transactions, for every scope; each
/// running run's writer thread has its own.
pub struct SqliteStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    /// The lease tokens of the runs this store began or claimed, until their sink takes them.
    leases: Arc<Mutex<HashMap<String, String>>>,
    /// `Some`: only this tenant's runs exist; the runs it begins are its. `None`: every run,
    /// and new runs are the local user's.
    tenant: Option<String>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Create {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(crate::store::DATABASE_FILE);
        let conn = schema::open_connection(&path).map_err(sqlite_error(&path))?;
        Ok(SqliteStore {
            path,
            conn: Arc::new(Mutex::new(conn)),
            leases: Arc::default(),
            tenant: None,
        })
    }

    /// The same store, seeing only `tenant`'s runs: another tenant's run answers
    /// [`StoreError::NoSuchRun`], exactly as a run that does not exist.
    pub fn scoped(&self, tenant: &str) -> SqliteStore {
        SqliteStore {
            path: self.path.clone(),
            conn: self.conn.clone(),
            leases: self.leases.clone(),
            tenant: Some(tenant.to_string()),
        }
    }

    /// The tenant this store is scoped to, if any.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The connection. A panic while it was held cannot leave it inconsistent: an unfinished
    /// transaction rolls back when dropped.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The run `id`, if it is in this store's scope: every query by run id starts here (see
    /// the module doc of [`crate::store`]).
    fn in_scope(&self, db: Db<'_>, id: &str) -> Result<RunRecord, StoreError> {
        db.run(id)?
            .filter(|run| self.tenant.is_none() || run.tenant == self.tenant)
            .ok_or_else(|| StoreError::NoSuchRun(id.to_string()))
    }

    /// Runs `read` on run `id`, once it is known to be in scope.
    fn read<T>(
        &self,
        id: &str,
        read: impl FnOnce(Db<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.db(|db| {
            self.in_scope(db, id)?;
            read(db)
        })
    }

    /// Runs `read` on the shared connection.
    fn db<T>(&self, read: impl FnOnce(Db<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let conn = self.lock();
        read(Db {
            conn: &conn,
            path: &self.path,
        })
    }

    /// Runs `write` in one immediate transaction, which waits for the write lock.
    fn transaction<T>(
        &self,
        write: impl FnOnce(Db<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let sqlite = sqlite_error(&self.path);
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let written = write(Db {
            conn: &tx,
            path: &self.path,
        })?;
        tx.commit().map_err(sqlite)?;
        Ok(written)
    }
}

impl RunStore for SqliteStore {
    fn begin_run(
        &self,
        run: &RunRecord,
        snapshot: &RunSnapshot,
        components: &[&[u8]],
    ) -> Result<(), StoreError> {
        let sqlite = sqlite_error(&self.path);
        self.transaction(|db| {
            db.conn
                .execute(
                    "INSERT INTO runs (id, job_name, job_path, config_path, status, started, parent,
                                       tenant, tags)
                     VALUES (?1, ?2, ?3, ?4, 'RUNNING', ?5, ?6, ?7, ?8)",
                    params![
                        run.id,
                        run.job_name,
                        run.job_path.to_string_lossy(),
                        run.config_path
                            .as_ref()
                            .map(|p| p.to_string_lossy().into_owned()),
                        run.started,
                        run.parent,
                        self.tenant,
                        (!run.tags.is_empty()).then(|| {
                            serde_json::to_string(&run.tags).expect("tags serialize")
                        })
                    ],
                )
                .map_err(sqlite)?;
            let snapshot = serde_json::to_string(snapshot).expect("a snapshot serializes");
            db.conn
                .execute(
                    "INSERT INTO snapshots (run_id, snapshot) VALUES (?1, ?2)",
                    params![run.id, snapshot],
                )
                .map_err(sqlite)?;
            for bytes in components {
                let digest = Digest::of(bytes).to_string();
                db.conn
                    .execute(
                        "INSERT OR IGNORE INTO components (digest, bytes) VALUES (?1, ?2)",
                        params![digest, bytes],
                    )
                    .map_err(sqlite)?;
            }
            take_lease(db.conn, &run.id).map_err(sqlite)
        })
        .map(|token| self.leased(&run.id, token))
    }

    fn snapshot(&self, id: &str) -> Result<Option<RunSnapshot>, StoreError> {
        self.read(id, |db| db.snapshot(id))
    }

    fn component(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        // Components are content-addressed and shared by every run, whatever its scope.
        self.db(|db| db.component(digest))
    }

    fn claim(&self, id: &str) -> Result<(), StoreError> {
        let sqlite = sqlite_error(&self.path);
        self.transaction(|db| {
            self.in_scope(db, id)?.ensure_resumable()?;
            let token = take_lease(db.conn, id).map_err(sqlite)?;
            db.conn
                .execute(
                    "UPDATE runs SET status = 'RUNNING', finished = NULL WHERE id = ?1",
                    [id],
                )
                .map_err(sqlite)?;
            Ok(token)
        })
        .map(|token| self.leased(id, token))
    }

    fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.runs_starting_with("", None)
    }

    fn runs_starting_with(
        &self,
        prefix: &str,
        limit: Option<usize>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        self.db(|db| db.runs(self.tenant.as_deref(), prefix, limit))
    }

    fn run(&self, id: &str) -> Result<RunRecord, StoreError> {
        self.db(|db| self.in_scope(db, id))
    }

    fn events(&self, id: &str, step: Option<&str>) -> Result<Vec<Event<'static>>, StoreError> {
        let filter = EventFilter {
            step,
            ..EventFilter::default()
        };
        let events = self.read(id, |db| db.events(id, &filter))?;
        Ok(events.into_iter().map(|(_, event)| event).collect())
    }

    fn events_after(
        &self,
        id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Event<'static>)>, StoreError> {
        let filter = EventFilter {
            after,
            limit: Some(limit),
            ..EventFilter::default()
        };
        self.read(id, |db| db.events(id, &filter))
    }

    fn event_page(
        &self,
        id: &str,
        filter: &EventFilter<'_>,
    ) -> Result<Vec<(i64, Event<'static>)>, StoreError> {
        self.read(id, |db| db.events(id, filter))
    }

    fn outputs(&self, id: &str, step: Option<&str>) -> Result<Vec<OutputRecord>, StoreError> {
        self.read(id, |db| db.outputs(id, step))
    }

    fn succeeded_steps(&self, id: &str) -> Result<Vec<String>, StoreError> {
        self.read(id, |db| db.succeeded_steps(id))
    }

    fn adopt(&self, parent: &str, child: &str, steps: &HashSet<String>) -> Result<(), StoreError> {
        let steps = serde_json::to_string(steps).expect("a set of strings serializes");
        let sqlite = sqlite_error(&self.path);
        self.transaction(|db| {
            self.in_scope(db, parent)?;
            self.in_scope(db, child)?;
            db.conn
                .execute(
                    "INSERT INTO events (run_id, seq, timestamp, step_key, event, json, format,
                                         output, mapping_key, value, hash)
                     SELECT ?2, seq, timestamp, step_key, event,
                            CASE format WHEN 1 THEN json_set(json, '$.run_id', ?2, '$.reused_from', ?1)
                                        ELSE json_set(json, '$.reused_from', ?1) END,
                            format,
                            output, mapping_key, value, hash
                     FROM events
                     WHERE run_id = ?1 AND event IN ('STEP_OUTPUT', 'STEP_SUCCESS')
                       AND step_key IN (SELECT value FROM json_each(?3))",
                    params![parent, child, steps],
                )
                .map_err(sqlite)?;
            Ok(())
        })
    }

    fn release(&self, id: &str) -> Result<(), StoreError> {
        let sqlite = sqlite_error(&self.path);
        self.transaction(|db| {
            self.in_scope(db, id)?;
            db.conn
                .execute(
                    "UPDATE runs SET status = 'RUNNING', finished = NULL WHERE id = ?1",
                    [id],
                )
                .map_err(sqlite)?;
            db.conn
                .execute("DELETE FROM leases WHERE run_id = ?1", [id])
                .map_err(sqlite)?;
            Ok(())
        })
    }

    fn delete_run(&self, id: &str) -> Result<(), StoreError> {
        self.transaction(|db| {
            self.in_scope(db, id)?.ensure_not_running()?;
            gc::delete_rows(db, id)?;
            tenants::forget_unused_components(db)
        })
    }

    fn delete_runs(&self, ids: &[String]) -> Result<Collected, StoreError> {
        gc::delete_runs(self, ids)
    }

    fn sink(&self, id: &str) -> Result<Box<dyn RecordingSink>, StoreError> {
        let seq = self.read(id, |db| db.next_seq(id))?;
        let token = lock_leases(&self.leases)
            .remove(id)
            .ok_or_else(|| StoreError::NotLeased(id.to_string()))?;
        let conn = schema::open_connection(&self.path).map_err(sqlite_error(&self.path))?;
        Ok(Box::new(StoreSink::start(
            conn,
            self.path.clone(),
            id,
            seq,
            token,
        )))
    }
}

impl SqliteStore {
    /// Keeps the token of the lease just taken on run `id`, for its sink.
    fn leased(&self, id: &str, token: String) {
        lock_leases(&self.leases).insert(id.to_string(), token);
    }
}

fn lock_leases(leases: &Mutex<HashMap<String, String>>) -> MutexGuard<'_, HashMap<String, String>> {
    leases.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Leases run `id` to this process, replacing a dead owner's lease, and returns the lease's
/// token: the writer refreshes the lease only while the token is still there.
fn take_lease(conn: &Connection, id: &str) -> rusqlite::Result<String> {
    let me = Owner::this_process();
    let token = format!("{:016x}", fastrand::u64(..));
    conn.execute(
        "INSERT OR REPLACE INTO leases (run_id, pid, host, heartbeat, token)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, me.pid, me.host, me.heartbeat, token],
    )?;
    Ok(token)
}

mod event_row;
mod gc;
mod queries;
mod schema;
mod tenants;
#[cfg(test)]
mod tests;
mod views;
mod writer;

pub use tenants::ComponentEntry;
pub use views::{OpSteps, StepEvent, StepRow};

//! Deleting runs and what only they kept: their rows, the output values no other run refers to,
//! and the free pages that leaves in the database file.

use std::path::Path;

use super::SqliteStore;
use super::queries::{Db, sqlite_error};
use super::tenants::forget_unused_components;
use crate::store::{Collected, RunStatus, StoreError};

/// Deletes every row run `id` recorded and unlinks the runs that re-executed it (they hold
/// copies of what they reused). Its output values stay: another run may have recorded them too.
pub(super) fn delete_rows(db: Db<'_>, id: &str) -> Result<(), StoreError> {
    let sqlite = sqlite_error(db.path);
    for statement in [
        "UPDATE runs SET parent = NULL WHERE parent = ?1",
        "DELETE FROM events WHERE run_id = ?1",
        "DELETE FROM snapshots WHERE run_id = ?1",
        "DELETE FROM leases WHERE run_id = ?1",
        "DELETE FROM runs WHERE id = ?1",
    ] {
        db.conn.execute(statement, [id]).map_err(sqlite)?;
    }
    Ok(())
}

/// See [`crate::store::RunStore::delete_runs`].
pub(super) fn delete_runs(store: &SqliteStore, ids: &[String]) -> Result<Collected, StoreError> {
    let size_before = size(&store.path);
    // All refused when one runs; then each run in a transaction of its own, and the values
    // last: one long transaction over runs of a million events would hold the write lock past
    // the wait of a running run's writer, which would then fail to record its events.
    store.transaction(|db| {
        for id in ids {
            store.in_scope(db, id)?.ensure_not_running()?;
        }
        Ok(())
    })?;
    for id in ids {
        store.transaction(|db| {
            store.in_scope(db, id)?.ensure_not_running()?;
            delete_rows(db, id)
        })?;
    }
    let blobs = store.transaction(|db| {
        forget_unused_components(db)?;
        forget_unreferenced_blobs(db)
    })?;
    // Also when this call freed nothing itself: an earlier one may have left free pages
    // behind because a run was executing then.
    let not_compacted_for = store.db(executing)?;
    if not_compacted_for.is_none() && store.db(free_pages)? > 0 {
        store.db(compact)?;
    }
    let runs = ids.len();
    Ok(Collected {
        runs,
        blobs,
        size_before,
        size_after: size(&store.path),
        not_compacted_for,
    })
}

/// Deletes the output values no run's events refer to, and says how many. A running run
/// inserts a value and the event referring to it in one transaction, so none is caught
/// between the two.
fn forget_unreferenced_blobs(db: Db<'_>) -> Result<usize, StoreError> {
    db.conn
        .execute(
            "DELETE FROM blobs
             WHERE hash NOT IN (SELECT hash FROM events WHERE hash IS NOT NULL)",
            [],
        )
        .map_err(sqlite_error(db.path))
}

/// A run that a live process executes, in any tenant's scope, if there is one.
fn executing(db: Db<'_>) -> Result<Option<String>, StoreError> {
    Ok(db
        .runs(None, "", None)?
        .into_iter()
        .find(|run| run.status == RunStatus::Running)
        .map(|run| run.id))
}

/// How many pages of the database file hold nothing.
fn free_pages(db: Db<'_>) -> Result<i64, StoreError> {
    db.conn
        .query_row("PRAGMA freelist_count", [], |row| row.get(0))
        .map_err(sqlite_error(db.path))
}

/// Rewrites the database without its free pages, then empties the write-ahead log into it, so
/// that the file shrinks.
fn compact(db: Db<'_>) -> Result<(), StoreError> {
    let sqlite = sqlite_error(db.path);
    db.conn.execute_batch("VACUUM").map_err(sqlite)?;
    // A row saying how it went: a reader of another process may keep part of the log.
    db.conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(sqlite)
}

/// The bytes the database at `path` takes, with its write-ahead log.
fn size(path: &Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    [path, Path::new(&wal)]
        .iter()
        .filter_map(|file| std::fs::metadata(file).ok())
        .map(|meta| meta.len())
        .sum()
}

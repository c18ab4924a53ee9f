//! The run store: every run, its event log, and its step outputs as content-addressed CBOR
//! blobs, so that runs can be inspected, resumed and re-executed. [`RunStore`] is what the CLI
//! and resume use; [`SqliteStore`] implements it in an embedded SQLite database.
//!
//! Events are written by one writer thread in batched transactions, in event order. A step's
//! `STEP_OUTPUT` events come before its `STEP_SUCCESS`, so a committed success always has its
//! outputs committed with it or before it; a crash loses at most the last, uncommitted batch,
//! and with it only work that resume will redo.
//!
//! A run being executed is leased to its process ([`lease`]): the writer refreshes the lease in
//! every transaction and gives up if another process took it over, and `resume` refuses a run
//! whose owner is alive.
//!
//! A store is scoped: it sees the runs that [`RunStore::runs`] lists and no others. The local
//! user's store sees every run; `host serve` gives each tenant a store scoped to its runs
//! (`SqliteStore::scoped`). Every query by run id first looks the run up through the one place
//! that defines the scope (`SqliteStore::in_scope`), so that another tenant's run answers "no
//! such run", exactly as one that does not exist.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::events::{Event, EventSink, SinkError};
use crate::snapshot::RunSnapshot;
pub use lease::{Owner, this_host};
pub use record::{OutputRecord, RunRecord, RunStatus};
pub use sqlite::{ComponentEntry, EventFilter, OpSteps, SqliteStore, StepEvent, StepRow};

/// The environment variable naming the store directory.
pub const STORE_ENV: &str = "SHOAL_STORE";

/// The run store's SQLite database, inside the store directory.
pub const DATABASE_FILE: &str = "shoal.db";

/// The store directory: `--store`, else `$SHOAL_STORE`, else `~/.shoal`.
pub fn default_dir() -> PathBuf {
    std::env::var_os("HOME").map_or_else(
        || PathBuf::from(".shoal"),
        |home| Path::new(&home).join(".shoal"),
    )
}

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
    #[error("the store is corrupt: the snapshot of run `{run}` cannot be read: {problem}")]
    BadSnapshot { run: String, problem: String },
    #[error("the store is corrupt: event {seq} of run `{run}` {problem}")]
    BadEvent {
        run: String,
        seq: i64,
        problem: String,
    },
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
    #[error("run `{0}` is not leased to this store: begin or claim it before recording it")]
    NotLeased(String),
    #[error("the run store's writer thread panicked")]
    WriterPanicked,
    #[error("tenant `{0}` already exists (`host tenant rotate {0}` gives it a new token)")]
    TenantExists(String),
    #[error("tenant `{0}` has runs executing; cancel them or stop the server before removing it")]
    TenantBusy(String),
    #[error("no tenant `{0}` in the store (see `host tenant list`)")]
    NoSuchTenant(String),
    #[error("the store is corrupt: the quotas of tenant `{name}` cannot be read: {problem}")]
    BadTenant { name: String, problem: String },
}

/// A run store, shared by the threads of a process (`Arc<dyn RunStore>`).
pub trait RunStore: Send + Sync {
    /// Records a new run as `RUNNING`, leased to this process, with the snapshot of what it
    /// executes and the bytes of its components (kept once per digest).
    fn begin_run(
        &self,
        run: &RunRecord,
        snapshot: &RunSnapshot,
        components: &[&[u8]],
    ) -> Result<(), StoreError>;

    /// What run `id` executes; `None` for a run recorded before snapshots existed.
    fn snapshot(&self, id: &str) -> Result<Option<RunSnapshot>, StoreError>;

    /// The bytes of the component with `digest`, checked against it.
    fn component(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError>;

    /// Takes run `id` over for `host resume`: checks that it is resumable and leases it to this
    /// process at once, so that of two processes resuming it only one can.
    fn claim(&self, id: &str) -> Result<(), StoreError>;

    /// All runs, newest first.
    fn runs(&self) -> Result<Vec<RunRecord>, StoreError>;

    /// The runs whose id starts with `prefix`, newest first, at most `limit`: what a run named
    /// on the command line by a prefix of its id may be.
    fn runs_starting_with(
        &self,
        prefix: &str,
        limit: Option<usize>,
    ) -> Result<Vec<RunRecord>, StoreError>;

    /// The run `id`.
    fn run(&self, id: &str) -> Result<RunRecord, StoreError>;

    /// The events of run `id` in order, each as it was emitted (a `STEP_OUTPUT` with its
    /// value); when `step` is given, only those of that step and of the clones under it (`op`
    /// gives `op[a]`, `op[b]`, ...).
    fn events(&self, id: &str, step: Option<&str>) -> Result<Vec<Event<'static>>, StoreError>;

    /// At most `limit` events of run `id` after sequence number `after` (-1 for the first),
    /// each with its sequence number: a page of the log, for reading it while it grows.
    fn events_after(
        &self,
        id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Event<'static>)>, StoreError>;

    /// The events of run `id` that `filter` selects, each with its sequence number: a page of
    /// one step's or one kind's events, read without the others.
    fn event_page(
        &self,
        id: &str,
        filter: &EventFilter<'_>,
    ) -> Result<Vec<(i64, Event<'static>)>, StoreError>;

    /// The outputs of run `id`, in the order they were produced; those of steps whose key is
    /// `step` or starts with `step[` when given (every clone of a mapped op).
    fn outputs(&self, id: &str, step: Option<&str>) -> Result<Vec<OutputRecord>, StoreError>;

    /// Step keys with a committed `STEP_SUCCESS` in run `id`.
    fn succeeded_steps(&self, id: &str) -> Result<Vec<String>, StoreError>;

    /// Copies into run `child` what run `parent` recorded for `steps` (their outputs and
    /// successes), so that a re-execution holds every output it reused. Copied events carry
    /// `reused_from`.
    fn adopt(&self, parent: &str, child: &str, steps: &HashSet<String>) -> Result<(), StoreError>;

    /// A sink that appends the events of run `id`, which this process must hold the lease of.
    fn sink(&self, id: &str) -> Result<Box<dyn RecordingSink>, StoreError>;

    /// Leaves run `id`, which this process stopped, interrupted (`RUNNING` without a live
    /// owner) rather than canceled, so that the next process to start resumes it.
    fn release(&self, id: &str) -> Result<(), StoreError>;

    /// Deletes run `id` and all it recorded; refused while a live process executes it. Runs
    /// that re-executed it keep the outputs they reused (they hold copies) and lose their
    /// parent link. Output values no run refers to any more stay until collected.
    fn delete_run(&self, id: &str) -> Result<(), StoreError>;

    /// Deletes runs `ids` as [`RunStore::delete_run`] does, all or none (a live process
    /// executing one refuses them all), and with them the output values no remaining run refers
    /// to; then compacts the database if that deleted anything.
    fn delete_runs(&self, ids: &[String]) -> Result<Collected, StoreError>;
}

/// What [`RunStore::delete_runs`] deleted, and the size of the store's database (with its
/// write-ahead log) before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    pub runs: usize,
    /// Output values, each kept once however many runs recorded it.
    pub blobs: usize,
    pub size_before: u64,
    pub size_after: u64,
    /// A run executing while something was deleted, which kept the database from being
    /// compacted: compacting holds the write lock longer than its writer waits for it.
    pub not_compacted_for: Option<String>,
}

/// A sink recording one run's events into a store.
pub trait RecordingSink: EventSink {
    /// Writes everything sent and reports why recording stopped, if it did.
    fn finish(self: Box<Self>) -> Result<(), SinkError>;
}

mod lease;
mod record;
mod sqlite;

//! The application layer: the run lifecycle (load a job, record a run, execute it, resume it,
//! re-execute it, cancel it) behind one API that the CLI, the benchmarks and the tests call, and
//! that a service can call. The CLI only parses arguments and renders what this returns.
//!
//! Every run records a [`RunSnapshot`] when it starts (the job text, the run config text, the
//! digest and bytes of every component), and resume and re-execute rebuild the run from it, so
//! that an edited job file or a rebuilt component cannot silently change a recorded computation.

mod engine;
mod error;
mod event_query;
mod handle;
mod housekeeping;
mod launch;
mod load;
mod op_summary;
mod prior;
mod queries;
mod replay;
mod resolve;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::cancel::Cancel;
use crate::exec::TenantShare;
use crate::nats::{Coordinator, NatsRunner};
use crate::policy::Policy;
use crate::runtime::ComponentFile;
use crate::snapshot::RunSnapshot;
use crate::store::{RunRecord, RunStatus, RunStore, SqliteStore};
pub use engine::SharedEngine;
pub use error::AppError;
pub use event_query::{EventQuery, Events};
pub use handle::RunHandle;
pub use housekeeping::Retention;
pub use launch::executed_job;
pub use load::{JobSource, Prepared, Settings, Uploaded, cache_dir, cores, describe, prepare};
pub use op_summary::{Durations, Failure, OpSummary, per_op};
pub use queries::{LogLine, LogPage, RunFilter, StepStatus, StepSummary, UserEventCounts};
pub use replay::{Replay, Replayed, StepReplay};

/// What `host reexecute` changes about the parent run besides what it runs again.
#[derive(Debug, Clone, Default)]
pub struct Reexecution {
    /// Steps to run again (Dagster's selection syntax); with none, only the failed and unrun
    /// steps run.
    pub select: Vec<String>,
    /// A run config to use instead of the parent's.
    pub config: Option<PathBuf>,
    /// Read the job file and the components from disk again instead of the parent's snapshot,
    /// so that a fixed op can be re-executed.
    pub reload: bool,
}

/// How to stop each run this process executes, by run id.
type Running = Arc<Mutex<HashMap<String, Live>>>;

/// A run this process executes: how to ask it to stop, and whether its final event is out
/// (then it stays registered only until its writer has stored that event).
#[derive(Clone)]
struct Live {
    cancel: Cancel,
    ended: bool,
}

/// One run store and the runs this process executes from it.
pub struct App {
    /// Holds the compiled-component cache, which no op may be granted.
    store_dir: PathBuf,
    store: Arc<dyn RunStore>,
    running: Running,
    engine: Arc<SharedEngine>,
    /// The rules of a tenant's runs on a shared server; none for the local user.
    policy: Option<Arc<Policy>>,
    /// This application's share of a server's step slots; none for the local user.
    share: Option<TenantShare>,
    /// Runs steps on the workers of a NATS cluster instead of in this process.
    coordinator: Option<Coordinator>,
}

impl App {
    /// Opens (creating if needed) the SQLite run store in `store_dir`.
    pub fn open(store_dir: &Path) -> Result<App, AppError> {
        let store = Arc::new(SqliteStore::open(store_dir)?);
        Ok(App::with_store(store, store_dir))
    }

    /// An application over `store`, caching compiled components in `store_dir`.
    pub fn with_store(store: Arc<dyn RunStore>, store_dir: &Path) -> App {
        App {
            store_dir: store_dir.to_path_buf(),
            store,
            running: Running::default(),
            engine: Arc::default(),
            policy: None,
            share: None,
            coordinator: None,
        }
    }

    /// An application for one tenant of a server: `store` is scoped to the tenant, `engine` is
    /// shared with every other tenant, and every job is held to `policy`.
    pub fn for_tenant(
        store: Arc<dyn RunStore>,
        store_dir: &Path,
        engine: Arc<SharedEngine>,
        policy: Policy,
    ) -> App {
        App {
            engine,
            policy: Some(Arc::new(policy)),
            ..App::with_store(store, store_dir)
        }
    }

    /// Runs this application's steps within `share` of a server's step slots.
    pub fn with_share(self, share: TenantShare) -> App {
        App {
            share: Some(share),
            ..self
        }
    }

    /// Runs this application's steps on the workers of `coordinator`'s cluster.
    pub fn with_coordinator(self, coordinator: Coordinator) -> App {
        App {
            coordinator: Some(coordinator),
            ..self
        }
    }

    /// How many runs this application executes now.
    /// Runs this application executes whose final event is not out yet: a client that saw a
    /// run end (its final event stored) never finds it counted.
    pub fn running_count(&self) -> usize {
        lock(&self.running)
            .values()
            .filter(|live| !live.ended)
            .count()
    }

    /// Asks every run this application executes to stop (see [`App::cancel`]).
    pub fn cancel_all(&self) {
        for live in lock(&self.running).values() {
            live.cancel.request();
        }
    }

    /// The ops of component `bytes` (called `name` in messages), compiled on this
    /// application's engine and cached in its store: what an upload checks.
    pub async fn describe_bytes(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<Vec<crate::op_info::OpInfo>, AppError> {
        let file = ComponentFile {
            path: PathBuf::from(name),
            bytes: bytes.to_vec(),
        };
        let size = crate::runtime::EngineSize::for_run(1, None, std::slice::from_ref(&file));
        let runtime = self
            .engine
            .for_run(size, Some(&cache_dir(&self.store_dir)))?;
        Ok(runtime.load_bytes(&file.path, bytes).await?.ops.clone())
    }

    /// The final outputs of run `run_id` (its leaf ops'), as `host run` prints them.
    pub fn final_outputs(&self, run_id: &str) -> Result<serde_json::Value, AppError> {
        let record = self.store.run(run_id)?;
        let snapshot = self.snapshot(&record)?;
        queries::final_outputs(self.store(), run_id, &snapshot)
    }

    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    /// The run store, for queries.
    pub fn store(&self) -> &dyn RunStore {
        &*self.store
    }

    /// Every recorded run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, AppError> {
        Ok(self.store.runs()?)
    }

    /// The recorded runs `filter` selects, newest first.
    pub fn runs_where(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, AppError> {
        Ok(filter.select(self.runs()?))
    }

    /// The id of the run `name` names: its id, a prefix of it no other run's has, or
    /// `latest` for the newest run.
    pub fn resolve_run(&self, name: &str) -> Result<String, AppError> {
        resolve::run_id(self.store(), name)
    }

    /// What run `run_id` was launched with: its selection and input values (none for a run
    /// recorded without a snapshot).
    pub fn launch_of(&self, run_id: &str) -> Result<crate::snapshot::Launch, AppError> {
        let snapshot = self.store.snapshot(run_id)?;
        Ok(snapshot.map(|s| s.launch).unwrap_or_default())
    }

    /// Run `run_id` and the history of each of its steps.
    pub fn run(&self, run_id: &str) -> Result<(RunRecord, Vec<StepSummary>), AppError> {
        let run = self.store.run(run_id)?;
        let steps = queries::steps(self.store(), &run)?;
        Ok((run, steps))
    }

    /// Run `run_id`'s log lines after sequence number `after` (-1 for the first), a page at a
    /// time; with `step`, only that step's and its clones'.
    pub fn log_page(
        &self,
        run_id: &str,
        step: Option<&str>,
        after: i64,
    ) -> Result<LogPage, AppError> {
        queries::log_page(self.store(), run_id, step, after)
    }

    /// Refuses a `step` run `run_id` has not run, neither itself nor a clone of it.
    pub fn ensure_step(&self, run_id: &str, step: &str) -> Result<(), AppError> {
        queries::ensure_step(self.store(), run_id, step)
    }

    /// The events of run `run_id` that `query` selects (Dagster's `events_for_node` and
    /// `filter_events`), in order, read a page at a time; an error for a step of the query
    /// that the run has no event of.
    pub fn events(&self, run_id: &str, query: &EventQuery) -> Result<Events<'_>, AppError> {
        for step in &query.steps {
            self.ensure_step(run_id, step)?;
        }
        Ok(Events::new(self.store(), run_id, query))
    }

    /// Step `step` of run `run_id` loaded to run again, alone, in this process: the job, config
    /// (unless `request` gives another) and components the run recorded, and the outputs the
    /// run recorded of the steps it reads from. Running it records nothing.
    pub async fn replay(
        &self,
        run_id: &str,
        step: &str,
        request: &Replay,
    ) -> Result<StepReplay, AppError> {
        let record = self.store().run(run_id)?;
        let snapshot = self.snapshot(&record)?;
        let source = load::Recorded {
            run_id,
            snapshot: &snapshot,
            config: request.config.as_deref(),
            reload: false,
        };
        let settings = Settings {
            max_concurrent: Some(1),
            ..Settings::default()
        };
        let (prepared, _files) = self
            .prepare(source.load(self.store(), self.roots())?, &settings)
            .await?;
        let key = replay::target(self.store(), run_id, &prepared.plan, step)?;
        let prior = replay::inputs(self.store(), run_id, &prepared.plan, &key)?;
        Ok(StepReplay {
            run_id: run_id.to_string(),
            step: key.display(&prepared.plan.nodes[key.node].name).to_string(),
            key,
            prepared,
            prior,
        })
    }

    /// A step's output as JSON (Dagster's `output_for_node`); for a mapped op's name, every
    /// clone's value keyed by mapping key.
    pub fn output(
        &self,
        run_id: &str,
        step: &str,
        output: Option<&str>,
    ) -> Result<serde_json::Value, AppError> {
        queries::output(self.store(), run_id, step, output)
    }

    /// Records a new run of `source` and returns it ready to execute.
    pub async fn submit(
        &self,
        source: &JobSource,
        settings: &Settings,
    ) -> Result<RunHandle, AppError> {
        let (prepared, files) = self.prepare(source.read()?, settings).await?;
        let id = self.begin(&prepared, &files, None)?;
        self.handle(id, None, prepared, crate::exec::Prior::default())
            .await
    }

    /// Records a new run of a job submitted as text, whose components the tenant uploaded, and
    /// returns it ready to execute. Only for a tenant's application ([`App::for_tenant`]).
    pub async fn submit_uploaded(
        &self,
        job: &Uploaded<'_>,
        settings: &Settings,
    ) -> Result<RunHandle, AppError> {
        let roots = self.policy.as_ref().map_or(&[][..], |p| p.roots());
        let (prepared, files) = self
            .prepare(job.load(roots, self.store())?, settings)
            .await?;
        let id = self.begin(&prepared, &files, None)?;
        self.handle(id, None, prepared, crate::exec::Prior::default())
            .await
    }

    /// Continues run `run_id` where it stopped: only steps without a committed success run
    /// again, with the job, config and components the run recorded.
    pub async fn resume(&self, run_id: &str, settings: &Settings) -> Result<RunHandle, AppError> {
        let record = self.store().run(run_id)?;
        // Checked before loading anything, so that a refusal is quick; again when taking the
        // run over, in one transaction with it.
        record.ensure_resumable()?;
        let snapshot = self.snapshot(&record)?;
        let source = load::Recorded {
            run_id,
            snapshot: &snapshot,
            config: None,
            reload: false,
        };
        // The run recorded its components already.
        let (prepared, _files) = self
            .prepare(source.load(self.store(), self.roots())?, settings)
            .await?;
        self.store.claim(run_id)?;
        // Read once this process owns the run, so that no other can add to it meanwhile.
        let prior = prior::committed(self.store(), run_id, &prepared.plan)?;
        self.handle(run_id.to_string(), None, prepared, prior).await
    }

    /// Starts a new run of run `parent`'s job that reuses its committed outputs except those of
    /// the selected steps and of everything downstream of them.
    pub async fn reexecute(
        &self,
        parent: &str,
        request: &Reexecution,
        settings: &Settings,
    ) -> Result<RunHandle, AppError> {
        let record = self.store().run(parent)?;
        // Its committed outputs would still change, and the steps it runs would run twice.
        record.ensure_not_running()?;
        let snapshot = self.snapshot(&record)?;
        let source = load::Recorded {
            run_id: parent,
            snapshot: &snapshot,
            config: request.config.as_deref(),
            reload: request.reload,
        };
        let (prepared, files) = self
            .prepare(source.load(self.store(), self.roots())?, settings)
            .await?;
        let mut prior = prior::committed(self.store(), parent, &prepared.plan)?;
        let selection =
            crate::selection::Selection::parse(&prepared.plan, &request.select, &prior)?;
        prior.succeeded.retain(|(key, _)| !selection.covers(key));
        prior.emitted.retain(|(key, _, _)| !selection.covers(key));
        let id = self.begin(&prepared, &files, Some(parent))?;
        let reused = prior::step_names(&prior, &prepared.plan);
        self.store().adopt(parent, &id, &reused)?;
        self.handle(id, Some(parent.to_string()), prepared, prior)
            .await
    }

    /// Asks run `run_id`, which this process executes, to stop: no new step starts, running
    /// ones get a grace period, and the run ends `RUN_CANCELED`, resumable.
    pub fn cancel(&self, run_id: &str) -> Result<(), AppError> {
        if let Some(live) = lock(&self.running).get(run_id) {
            live.cancel.request();
            return Ok(());
        }
        let record = self.store().run(run_id)?;
        match (record.status, record.owner) {
            (RunStatus::Running, Some(owner)) => Err(AppError::RunsElsewhere {
                run: run_id.to_string(),
                pid: owner.pid,
                host: owner.host,
            }),
            (status, _) => Err(AppError::NotRunning {
                run: run_id.to_string(),
                status,
            }),
        }
    }

    /// Where a tenant's jobs may grant directories; `None` (anywhere) for the local user.
    fn roots(&self) -> Option<&[PathBuf]> {
        self.policy.as_deref().map(Policy::roots)
    }

    fn snapshot(&self, record: &RunRecord) -> Result<RunSnapshot, AppError> {
        self.store()
            .snapshot(&record.id)?
            .ok_or_else(|| AppError::NoSnapshot(record.id.clone()))
    }

    /// Prepares `loaded` on this application's engine, caching compiled code in its store.
    async fn prepare(
        &self,
        loaded: load::Loaded,
        settings: &Settings,
    ) -> Result<(Prepared, Vec<ComponentFile>), AppError> {
        load::prepare_loaded(
            loaded,
            settings,
            Some(&self.store_dir),
            &self.engine,
            self.policy.as_deref(),
        )
        .await
    }

    /// Records a new run of `prepared`, whose component files are `files`, leased to this
    /// process, and returns its id.
    fn begin(
        &self,
        prepared: &Prepared,
        files: &[ComponentFile],
        parent: Option<&str>,
    ) -> Result<String, AppError> {
        let snapshot = &prepared.snapshot;
        let record = RunRecord {
            id: new_run_id(),
            job_name: prepared.plan.job_name.clone(),
            job_path: snapshot.job_path.clone(),
            config_path: snapshot.config_path.clone(),
            status: RunStatus::Running,
            started: crate::events::unix_now(),
            finished: None,
            parent: parent.map(str::to_string),
            owner: None,
            tenant: None,
            tags: prepared.tags.clone(),
        };
        let bytes: Vec<&[u8]> = files.iter().map(|f| f.bytes.as_slice()).collect();
        self.store().begin_run(&record, snapshot, &bytes)?;
        Ok(record.id)
    }

    async fn handle(
        &self,
        run_id: String,
        parent: Option<String>,
        prepared: Prepared,
        prior: crate::exec::Prior,
    ) -> Result<RunHandle, AppError> {
        let remote = match &self.coordinator {
            Some(coordinator) => Some(self.remote(coordinator, &run_id, &prepared).await?),
            None => None,
        };
        let recorded = self.store().sink(&run_id)?;
        let cancel = Cancel::default();
        let live = Live {
            cancel: cancel.clone(),
            ended: false,
        };
        lock(&self.running).insert(run_id.clone(), live);
        Ok(RunHandle {
            run_id: run_id.clone(),
            parent,
            prepared,
            prior,
            share: self.share.clone(),
            remote,
            recorded,
            registered: handle::Registered {
                running: self.running.clone(),
                run_id: run_id.clone(),
                cancel: cancel.clone(),
            },
            cancel,
        })
    }
}

impl App {
    /// A runner that sends run `run_id`'s steps to the workers, once the cluster has every
    /// component of the run (from this store).
    async fn remote(
        &self,
        coordinator: &Coordinator,
        run_id: &str,
        prepared: &Prepared,
    ) -> Result<NatsRunner, AppError> {
        for component in &prepared.components {
            let digest = component.digest;
            coordinator
                .ensure_component(&digest, || self.store().component(&digest).ok().flatten())
                .await?;
        }
        let wasm_stack = prepared.runtime.size().wasm_stack;
        Ok(coordinator.runner(run_id, wasm_stack).await?)
    }
}

fn lock(running: &Running) -> MutexGuard<'_, HashMap<String, Live>> {
    running
        .lock()
        .expect("no thread panics holding the registry")
}

/// A run id that sorts by start time: milliseconds since the epoch, the process id, and a
/// random part for runs started in the same millisecond.
pub fn new_run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!(
        "{millis:012x}-{:05x}-{:04x}",
        std::process::id(),
        fastrand::u16(..)
    )
}

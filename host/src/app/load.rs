//! From a job file, or a run's snapshot, to a prepared run: the job parsed with its run config,
//! its components read and compiled, its plan built.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use super::AppError;
use super::engine::SharedEngine;
use super::launch;
use crate::cancel::Cancel;
use crate::digest::Digest;
use crate::events::EventSink;
use crate::exec::{self, Prior, RunOptions, TenantShare};
use crate::inputs::{self, Given, InputValues};
use crate::job::tags::Tags;
use crate::job::{self, LoadedJob};
use crate::nats::NatsRunner;
use crate::op_info::OpInfo;
use crate::plan::{self, Plan};
use crate::policy::Policy;
use crate::runtime::{
    self, ComponentFile, EngineSize, LoadError, LoadedComponent, Runtime, WasmRunner,
};
use crate::snapshot::{Launch, RunSnapshot};
use crate::step_key::StepKey;
use crate::store::RunStore;

/// A job to run: a job file and an optional run config layered over it, read when the run is
/// prepared.
#[derive(Debug, Clone)]
pub struct JobSource {
    pub job: PathBuf,
    pub config: Option<PathBuf>,
    /// Tags given at launch, over the job's and the run config's.
    pub tags: Tags,
    /// The ops to run and values for inputs, chosen at launch.
    pub launch: Launch,
}

impl JobSource {
    pub fn file(job: &Path) -> JobSource {
        JobSource {
            job: job.to_path_buf(),
            config: None,
            tags: Tags::default(),
            launch: Launch::default(),
        }
    }
}

/// Settings given at launch that override the job's.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Most steps running at once; else the job's `[execution] max_concurrent`, else
    /// `fallback_max_concurrent`, else the number of cores.
    pub max_concurrent: Option<usize>,
    /// What `max_concurrent` falls back to when neither the launch nor the job sets it.
    pub fallback_max_concurrent: Option<usize>,
}

/// A checked plan with its components loaded and the settings to run it.
pub struct Prepared {
    pub plan: Plan,
    /// The engine, with the plan's components loaded.
    pub runtime: Arc<Runtime>,
    /// The plan's components, in job order.
    pub components: Vec<Arc<LoadedComponent>>,
    pub max_concurrent: usize,
    /// The run's tags: the job's, the run config's and those given at launch.
    pub tags: Tags,
    /// What a run of this records.
    pub snapshot: RunSnapshot,
    /// Things the user should know about how the job was loaded, e.g. that a component file
    /// changed since the run being resumed recorded it.
    pub notices: Vec<String>,
}

impl Prepared {
    /// Runs the plan without recording it, sending events to `sink`.
    pub async fn run(self, sink: &mut dyn EventSink) -> exec::Run {
        self.run_as(
            super::new_run_id(),
            Prior::default(),
            Cancel::default(),
            sink,
        )
        .await
    }

    /// Runs the plan as run `run_id`, starting from what an earlier execution committed, until
    /// it ends or `cancel` stops it.
    pub async fn run_as(
        self,
        run_id: String,
        prior: Prior,
        cancel: Cancel,
        sink: &mut dyn EventSink,
    ) -> exec::Run {
        self.run_shared(run_id, prior, cancel, None, sink).await
    }

    /// [`Prepared::run_as`], every step first taking a slot of `share` when given.
    pub async fn run_shared(
        self,
        run_id: String,
        prior: Prior,
        cancel: Cancel,
        share: Option<TenantShare>,
        sink: &mut dyn EventSink,
    ) -> exec::Run {
        self.run_placed(run_id, prior, cancel, share, None, sink)
            .await
    }

    /// [`Prepared::run_shared`], the steps run by `remote`'s workers when given.
    pub async fn run_placed(
        self,
        run_id: String,
        prior: Prior,
        cancel: Cancel,
        share: Option<TenantShare>,
        remote: Option<NatsRunner>,
        sink: &mut dyn EventSink,
    ) -> exec::Run {
        let options = self.options(run_id, prior, cancel, share);
        let plan = Arc::new(self.plan);
        let Some(remote) = remote else {
            let runner = Arc::new(WasmRunner::new(self.runtime));
            return exec::execute(plan, runner, options, sink).await;
        };
        let remote = Arc::new(remote);
        let run = exec::execute(plan, remote.clone(), options, sink).await;
        // A run stopped early keeps its step messages: resumed, it takes over what the workers
        // finished meanwhile.
        let ended = !run.canceled() && run.sink_error.is_none();
        remote.finish(ended).await;
        run
    }

    /// Runs step `step` alone, in this process, as run `run_id`, from what `prior` holds of
    /// the steps it reads from (see [`exec::execute_one`]).
    pub async fn run_one(
        self,
        run_id: String,
        prior: Prior,
        step: StepKey,
        sink: &mut dyn EventSink,
    ) -> exec::Run {
        let options = self.options(run_id, prior, Cancel::default(), None);
        let runner = Arc::new(WasmRunner::new(self.runtime));
        exec::execute_one(Arc::new(self.plan), runner, options, step, sink).await
    }

    fn options(
        &self,
        run_id: String,
        prior: Prior,
        cancel: Cancel,
        share: Option<TenantShare>,
    ) -> RunOptions {
        RunOptions {
            run_id,
            max_concurrent: self.max_concurrent,
            emit_window: exec::DEFAULT_EMIT_WINDOW,
            prior,
            cancel,
            share,
        }
    }
}

/// `path` made absolute against the current directory, so that a snapshot's relative paths
/// resolve the same from wherever the run is resumed.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A job's text and component bytes, read once: what a run records and what it executes.
pub(super) struct Loaded {
    snapshot: RunSnapshot,
    job: LoadedJob,
    files: Vec<ComponentFile>,
    notices: Vec<String>,
    /// The values run config and launch give inputs, to explain plan errors about them.
    given: Given,
}

impl Loaded {
    /// Parses the job and config texts of `snapshot`, adds its launch tags and applies its
    /// launch (selection, input values), granting
    /// directories only under `roots` when given; its component digests are filled in as the
    /// components are read.
    fn parse(snapshot: RunSnapshot, roots: Option<&[PathBuf]>) -> Result<Loaded, AppError> {
        let mut job = LoadedJob::parse_confined(&snapshot.job_text, &snapshot.job_path, roots)?;
        let mut run_inputs = InputValues::new();
        if let (Some(path), Some(text)) = (&snapshot.config_path, &snapshot.config_text) {
            let run = job::parse_run_config(text, path)?;
            run_inputs = inputs::of_run_config(&run);
            job.apply(run)?;
        }
        job.tag(&snapshot.tags);
        let given = launch::apply(&mut job.job, &run_inputs, &snapshot.launch)?;
        Ok(Loaded {
            snapshot,
            job,
            files: Vec::new(),
            notices: Vec::new(),
            given,
        })
    }

    /// Reads every component the job names from its file and records its digest.
    fn read_components(mut self) -> Result<Loaded, AppError> {
        for (name, spec) in &self.job.job.components {
            let path = spec.file(name)?;
            let file = ComponentFile::read(path).map_err(|err| match err {
                LoadError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                    AppError::NotBuilt {
                        component: name.clone(),
                        path: path.to_path_buf(),
                        job: self.snapshot.job_path.clone(),
                        build: spec.build.clone(),
                    }
                }
                err => err.into(),
            })?;
            if let Some(changed) = crate::build::newer_source(spec) {
                self.notices.push(format!(
                    "component `{name}` (`{}`) is older than `{}`; rebuild it with `host build {}`",
                    path.display(),
                    changed.display(),
                    self.snapshot.job_path.display()
                ));
            }
            self.snapshot
                .components
                .insert(name.clone(), Digest::of(&file.bytes));
            self.files.push(file);
        }
        Ok(self)
    }
}

impl JobSource {
    /// Reads the job, the run config and the components now.
    pub(super) fn read(&self) -> Result<Loaded, AppError> {
        let snapshot = RunSnapshot {
            job_path: absolute(&self.job),
            job_text: job::read(&self.job)?,
            config_text: self.config.as_deref().map(job::read).transpose()?,
            config_path: self.config.as_deref().map(absolute),
            components: IndexMap::new(),
            tags: self.tags.clone(),
            launch: self.launch.clone(),
        };
        Loaded::parse(snapshot, None)?.read_components()
    }
}

/// A job submitted as text to a server: its components are ones the tenant uploaded, by name.
pub struct Uploaded<'a> {
    pub job_text: String,
    pub config_text: Option<String>,
    /// Tags given with the submission, over the job's and the run config's.
    pub tags: Tags,
    pub launch: Launch,
    /// The uploaded component of a name: its digest, if the tenant has one.
    pub resolve: &'a (dyn Fn(&str) -> Result<Option<Digest>, crate::store::StoreError> + Sync),
}

impl Uploaded<'_> {
    /// Parses the job (directories only under `roots`, which relative ones resolve against)
    /// and takes each component's bytes from `store`.
    pub(super) fn load(&self, roots: &[PathBuf], store: &dyn RunStore) -> Result<Loaded, AppError> {
        let base = roots
            .first()
            .map_or_else(|| PathBuf::from("/"), Clone::clone);
        let snapshot = RunSnapshot {
            job_path: base.join("job.toml"),
            job_text: self.job_text.clone(),
            config_path: self.config_text.as_ref().map(|_| base.join("run.toml")),
            config_text: self.config_text.clone(),
            components: IndexMap::new(),
            tags: self.tags.clone(),
            launch: self.launch.clone(),
        };
        let mut loaded = Loaded::parse(snapshot, Some(roots))?;
        for (key, spec) in &loaded.job.job.components {
            if spec.path.is_some() {
                return Err(job::JobError::ComponentPathOnServer(key.clone()).into());
            }
            let name = spec.uploaded_name(key);
            let missing = || AppError::NotUploaded {
                component: key.clone(),
                name: name.to_string(),
            };
            let digest = (self.resolve)(name)?.ok_or_else(missing)?;
            let bytes = store.component(&digest)?.ok_or_else(missing)?;
            loaded.snapshot.components.insert(key.clone(), digest);
            loaded.files.push(ComponentFile {
                path: spec.origin(key),
                bytes,
            });
        }
        Ok(loaded)
    }
}

/// A recorded run's job, to run again (resume) or to re-execute.
pub(super) struct Recorded<'a> {
    pub run_id: &'a str,
    pub snapshot: &'a RunSnapshot,
    /// A run config file replacing the recorded one.
    pub config: Option<&'a Path>,
    /// Read the job file and components from disk instead of the snapshot.
    pub reload: bool,
}

impl Recorded<'_> {
    /// The recorded job, with its components' bytes from the store; with `reload`, the job file
    /// and components as they are now. Notices name the components that changed since. With
    /// `roots`, directories are granted only under them.
    pub fn load(
        &self,
        store: &dyn RunStore,
        roots: Option<&[PathBuf]>,
    ) -> Result<Loaded, AppError> {
        let recorded = self.snapshot;
        let (config_path, config_text) = match self.config {
            Some(path) => (Some(absolute(path)), Some(job::read(path)?)),
            None => (recorded.config_path.clone(), recorded.config_text.clone()),
        };
        let job_text = if self.reload {
            job::read(&recorded.job_path)?
        } else {
            recorded.job_text.clone()
        };
        let loaded = Loaded::parse(
            RunSnapshot {
                job_path: recorded.job_path.clone(),
                job_text,
                config_path,
                config_text,
                components: IndexMap::new(),
                tags: recorded.tags.clone(),
                launch: recorded.launch.clone(),
            },
            roots,
        )?;
        if self.reload {
            self.reloaded(loaded.read_components()?)
        } else {
            self.recorded_components(loaded, store)
        }
    }

    /// Names the components read again that differ from the recorded ones.
    fn reloaded(&self, mut loaded: Loaded) -> Result<Loaded, AppError> {
        for (name, now) in &loaded.snapshot.components {
            if let Some(before) = self.snapshot.components.get(name)
                && before != now
            {
                loaded.notices.push(format!(
                    "component `{name}` changed since run `{}`: {} is now {}",
                    self.run_id,
                    before.short(),
                    now.short()
                ));
            }
        }
        Ok(loaded)
    }

    /// Takes every component's recorded bytes from the store, noting a file that changed since.
    fn recorded_components(
        &self,
        mut loaded: Loaded,
        store: &dyn RunStore,
    ) -> Result<Loaded, AppError> {
        let run = self.run_id;
        for (name, spec) in &loaded.job.job.components {
            let digest = *self.snapshot.components.get(name).ok_or_else(|| {
                AppError::UnrecordedComponent {
                    run: run.to_string(),
                    name: name.clone(),
                }
            })?;
            let bytes = store
                .component(&digest)?
                .ok_or_else(|| AppError::MissingComponent {
                    run: run.to_string(),
                    name: name.clone(),
                    digest,
                })?;
            if let Some(path) = &spec.path
                && let Ok(on_disk) = std::fs::read(path).map(|bytes| Digest::of(&bytes))
                && on_disk != digest
            {
                loaded.notices.push(format!(
                    "component `{name}` (`{}`) changed since run `{run}` started; running the \
                     version the run recorded ({}; the file is now {})",
                    path.display(),
                    digest.short(),
                    on_disk.short()
                ));
            }
            loaded.snapshot.components.insert(name.clone(), digest);
            loaded.files.push(ComponentFile {
                path: spec.origin(name),
                bytes,
            });
        }
        Ok(loaded)
    }
}

/// Loads `source` and prepares it: everything `host run` does before the first step starts.
/// With `store_dir`, compiled components are cached in it, and no op may be granted it.
pub async fn prepare(
    source: &JobSource,
    settings: &Settings,
    store_dir: Option<&Path>,
) -> Result<Prepared, AppError> {
    let engine = SharedEngine::default();
    let (prepared, _files) =
        prepare_loaded(source.read()?, settings, store_dir, &engine, None).await?;
    Ok(prepared)
}

/// Compiles `loaded`'s components into an engine of `engine` that has room for them, and builds
/// its plan, holding the job to `policy` when given. Also returns the component files, in job
/// order, for the run record to keep: they are not needed once it does, and a run should not
/// hold them while it executes.
pub(super) async fn prepare_loaded(
    loaded: Loaded,
    settings: &Settings,
    store_dir: Option<&Path>,
    engine: &SharedEngine,
    policy: Option<&Policy>,
) -> Result<(Prepared, Vec<ComponentFile>), AppError> {
    let Loaded {
        snapshot,
        mut job,
        files,
        notices,
        given,
    } = loaded;
    let mut max_concurrent = settings
        .max_concurrent
        .or(job.job.execution.max_concurrent)
        .or(settings.fallback_max_concurrent)
        .unwrap_or_else(cores);
    if let Some(policy) = policy {
        policy.apply(&mut job)?;
        max_concurrent = max_concurrent.min(policy.quotas.max_concurrent);
    }
    let wasm_stack = job.job.execution.wasm_stack.map(|b| b.as_u64());
    let cache = store_dir.map(cache_dir);
    let size = EngineSize::for_run(max_concurrent, wasm_stack, &files);
    // After the cache directory exists, so that the check sees the store's real path.
    let runtime = engine.for_run(size, cache.as_deref())?;
    if let Some(store_dir) = store_dir {
        job.check_grants_avoid(store_dir)?;
    }
    let components = runtime::load_all(&runtime, &files).await?;
    let described: IndexMap<String, plan::Described> = job
        .job
        .components
        .keys()
        .cloned()
        .zip(components.iter().map(|c| plan::Described {
            digest: c.digest,
            ops: c.ops.clone(),
        }))
        .collect();
    let plan = plan::build(&job, &described).map_err(|source| match given.explain(&source) {
        Some(about_given) => AppError::Input(about_given),
        None => AppError::Plan {
            path: snapshot.job_path.clone(),
            at: source
                .place()
                .and_then(|(op, input)| crate::job::locate(&snapshot.job_text, op, input)),
            source: Box::new(source),
        },
    })?;
    inputs::check_values(&plan)?;
    let prepared = Prepared {
        plan,
        runtime,
        components,
        max_concurrent,
        tags: job.job.tags(),
        snapshot,
        notices,
    };
    Ok((prepared, files))
}

/// The ops the component at `path` describes (`host inspect`); with `store_dir`, its compiled
/// code is cached there.
pub async fn describe(path: &Path, store_dir: Option<&Path>) -> Result<Vec<OpInfo>, AppError> {
    let file = ComponentFile::read(path)?;
    let size = EngineSize::for_run(1, None, std::slice::from_ref(&file));
    let cache = store_dir.map(cache_dir);
    let runtime = Runtime::new(size, cache.as_deref())?;
    Ok(runtime.load_bytes(path, &file.bytes).await?.ops.clone())
}

/// The number of cores: how many steps run at once unless told otherwise.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Where compiled components are cached: inside the run store.
pub fn cache_dir(store_dir: &Path) -> PathBuf {
    store_dir.join("cache")
}

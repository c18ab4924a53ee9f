use std::path::PathBuf;

use crate::digest::Digest;
use crate::job::JobError;
use crate::plan::PlanError;
use crate::policy::PolicyError;
use crate::runtime::LoadError;
use crate::selection::SelectError;
use crate::store::{RunStatus, StoreError};

/// Why a job could not be prepared, a run found, started, resumed, re-executed or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(
        "component `{component}` is not built: there is no `{}`{}",
        path.display(),
        build_hint(job, build)
    )]
    NotBuilt {
        component: String,
        path: PathBuf,
        job: PathBuf,
        /// The job file's `build` command for it, if any.
        build: Option<String>,
    },
    #[error(transparent)]
    Nats(#[from] crate::nats::NatsError),
    #[error("invalid job `{path}`{}", at.map(|(line, column)| format!(" at line {line}, column {column}")).unwrap_or_default())]
    Plan {
        path: PathBuf,
        /// Where the error points in the job file: its op, or the op's input.
        at: Option<(usize, usize)>,
        // Boxed: plan errors are large, and this one travels up every `?`.
        #[source]
        source: Box<PlanError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error(transparent)]
    Input(#[from] crate::inputs::InputError),
    #[error(
        "run `{0}` was recorded by an earlier version of Shoal, without a snapshot of its job \
         and components; run its job again instead"
    )]
    NoSnapshot(String),
    #[error("the run store lacks component `{name}` (digest {digest}), which run `{run}` ran")]
    MissingComponent {
        run: String,
        name: String,
        digest: Digest,
    },
    #[error("the snapshot of run `{run}` names no digest for component `{name}`")]
    UnrecordedComponent { run: String, name: String },
    #[error("no run matches `{0}`")]
    NoRunMatches(String),
    #[error("`{prefix}` is ambiguous: matches {count} runs ({shown})")]
    AmbiguousRun {
        prefix: String,
        count: usize,
        /// The first few ids.
        shown: String,
    },
    #[error("no runs recorded yet")]
    NoRuns,
    #[error("run `{run}` has step `{step}`, which its job no longer has")]
    UnknownStep { run: String, step: String },
    #[error("run `{run}` has no step `{step}` nor clones of it (its steps include {some})")]
    NoSuchStep {
        run: String,
        step: String,
        some: String,
    },
    #[error("op `{op}` is mapped: name one of its steps, e.g. {some}")]
    MappedOp {
        op: String,
        /// A few of its steps in the run.
        some: String,
    },
    #[error("cannot replay step `{step}` of run `{run}`: {why}")]
    NotReplayable {
        run: String,
        step: String,
        why: String,
    },
    #[error("run `{run}` recorded no output for step `{step}`")]
    NoOutput { run: String, step: String },
    #[error("step `{step}` has no output `{output}` (it has: {has})")]
    NoSuchOutput {
        step: String,
        output: String,
        has: String,
    },
    #[error("step `{step}` has several outputs ({has}); pick one with --output")]
    SeveralOutputs { step: String, has: String },
    #[error(
        "run `{run}` executes in process {pid} on host `{host}`; stop it there (SIGINT or SIGTERM)"
    )]
    RunsElsewhere { run: String, pid: u32, host: String },
    #[error("run `{run}` is not running (it is {status})")]
    NotRunning { run: String, status: RunStatus },
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(
        "component `{component}` of the job names uploaded component `{name}`, which this \
         tenant has not uploaded (`PUT /v1/components/{name}`)"
    )]
    NotUploaded { component: String, name: String },
}

/// How to build a component the job names but nobody built.
fn build_hint(job: &std::path::Path, build: &Option<String>) -> String {
    match build {
        Some(command) => format!(
            "; build it with `host build {}` (which runs `{command}`)",
            job.display()
        ),
        None => format!(
            "; build it first (its `[components.NAME]` table in `{}` can declare the command, \
             `build = \"...\"`, for `host build`)",
            job.display()
        ),
    }
}

//! The `host` command line: argument definitions and the subcommands. This is the only place
//! that turns typed errors into `anyhow` errors with context.

mod history;
mod interrupt;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use indexmap::IndexMap;

use crate::cancel::Cancel;
use crate::events::{Both, EventSink, JsonLines};
use crate::exec::{self, Prior, RunOptions};
use crate::graph::{self, Format};
use crate::job::{self, LoadedJob};
use crate::plan::{self, Plan};
use crate::report;
use crate::runtime::{self, ComponentFile, LoadedComponent, Runtime, WasmRunner};
use crate::selection::Selection;
use crate::store::{self, RunRecord, RunStatus, RunStore, SqliteStore};
use interrupt::Interrupts;

/// Shoal: run WebAssembly component ops as jobs with dynamic map/collect.
#[derive(Debug, Parser)]
#[command(name = "host", version)]
pub struct Cli {
    /// The run store directory [default: ~/.shoal].
    #[arg(long, global = true, env = store::STORE_ENV, value_name = "DIR")]
    pub store: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// How the commands that execute steps run and report them.
#[derive(Debug, clap::Args)]
pub struct ExecutionArgs {
    /// Most steps running at once [default: number of cores].
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_concurrent: Option<usize>,
    /// Write events to stdout as JSON Lines instead of the final outputs.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a job.
    Run {
        /// The job file.
        job: PathBuf,
        /// A run config layered over the job (op config, execution settings).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Run one step at a time on one thread, in a deterministic order (for debugging).
        #[arg(long, conflicts_with = "max_concurrent")]
        sequential: bool,
        #[command(flatten)]
        execution: ExecutionArgs,
    },
    /// Continue an interrupted, canceled or failed run: only steps without a committed success
    /// run again. Refused while another process executes the run, and for a run that succeeded.
    Resume {
        /// The run's id (see `host runs`).
        run_id: String,
        #[command(flatten)]
        execution: ExecutionArgs,
    },
    /// Start a new run of a recorded run's job that reuses its committed outputs: run again the
    /// failed and unrun steps (`--from-failure`) and the selected ones (`--select`), with
    /// everything downstream of them. Refused while another process executes the parent.
    Reexecute {
        /// The parent run's id.
        run_id: String,
        /// Run the steps that failed, were skipped or never ran.
        #[arg(long, required_unless_present = "select")]
        from_failure: bool,
        /// Steps to run again, in Dagster's syntax: `op`, `op[key]`, `*op`, `+op`, `op+`; repeat
        /// the flag for several.
        #[arg(long, value_name = "SELECTION")]
        select: Vec<String>,
        #[command(flatten)]
        execution: ExecutionArgs,
    },
    /// List recorded runs, newest first.
    Runs,
    /// Show a run: status, and each step's status, attempts and duration.
    Show {
        /// The run's id (see `host runs`).
        run_id: String,
    },
    /// Print a run's log lines.
    Logs {
        /// The run's id (see `host runs`).
        run_id: String,
        /// Only this step's, and its clones' for a mapped op's name (`op` or `op[a]`).
        #[arg(long, value_name = "KEY")]
        step: Option<String>,
    },
    /// Print a step's output as JSON (Dagster's `output_for_node`). For a mapped op's name,
    /// prints every clone's value keyed by mapping key.
    Output {
        /// The run's id (see `host runs`).
        run_id: String,
        /// A step key (`op`, `op[key]`), or a mapped op's name for all its clones.
        step_key: String,
        /// The output name, when the op has several.
        #[arg(long, value_name = "NAME")]
        output: Option<String>,
    },
    /// Check a job without running it.
    Validate {
        /// The job file.
        job: PathBuf,
    },
    /// Draw a job's plan.
    Graph {
        /// The job file.
        job: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Dot)]
        format: Format,
    },
    /// List the ops a component exports.
    Inspect {
        /// The component (`.wasm`).
        component: PathBuf,
    },
}

/// Runs the command; the exit code says whether a run succeeded (0), failed (1) or was stopped
/// by a signal (130 for SIGINT, 143 for SIGTERM). Errors in the job or the components are
/// returned (the caller exits with 2).
pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    let sequential = matches!(
        cli.command,
        Command::Run {
            sequential: true,
            ..
        }
    );
    let store_dir = cli.store.unwrap_or_else(store::default_dir);
    let mut builder = if sequential {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    // I/O for the signal listener.
    let tokio = builder
        .enable_time()
        .enable_io()
        .build()
        .context("cannot start the async runtime")?;
    // On a worker thread rather than this one: the scheduler then wakes on the thread where a
    // step just finished (tokio runs a task it woke next), instead of waiting for this thread
    // to be unparked after every step.
    tokio.block_on(async move {
        tokio::spawn(async move { dispatch(cli.command, &store_dir).await })
            .await
            .context("the command panicked")?
    })
}

async fn dispatch(command: Command, store_dir: &Path) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run {
            job,
            config,
            sequential,
            mut execution,
        } => {
            if sequential {
                execution.max_concurrent = Some(1);
            }
            run(&job, config.as_deref(), &execution, store_dir).await
        }
        Command::Resume { run_id, execution } => resume(&run_id, &execution, store_dir).await,
        Command::Reexecute {
            run_id,
            from_failure: _,
            select,
            execution,
        } => reexecute(&run_id, &select, &execution, store_dir).await,
        Command::Runs => history::runs(&SqliteStore::open(store_dir)?),
        Command::Show { run_id } => history::show(&SqliteStore::open(store_dir)?, &run_id),
        Command::Logs { run_id, step } => {
            history::logs(&SqliteStore::open(store_dir)?, &run_id, step.as_deref())
        }
        Command::Output {
            run_id,
            step_key,
            output,
        } => history::output(
            &SqliteStore::open(store_dir)?,
            &run_id,
            &step_key,
            output.as_deref(),
        ),
        Command::Validate { job } => {
            let prepared = prepare(&job, None, None, Some(store_dir)).await?;
            let plan = &prepared.plan;
            let mapped = plan.nodes.iter().filter(|n| n.depth() > 0).count();
            eprintln!(
                "job `{}` is valid: {} ops ({mapped} mapped), {} components",
                plan.job_name,
                plan.nodes.len(),
                plan.components.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Graph { job, format } => {
            let prepared = prepare(&job, None, None, Some(store_dir)).await?;
            print_stdout(&graph::render(&prepared.plan, format))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { component } => inspect(&component, store_dir).await,
    }
}

/// A checked plan with its components loaded and the settings to run it.
pub struct Prepared {
    pub plan: Plan,
    pub runtime: Runtime,
    pub components: Vec<LoadedComponent>,
    pub max_concurrent: usize,
}

impl Prepared {
    /// Runs the plan as a new run, sending events to `sink`.
    pub async fn run(self, sink: &mut dyn EventSink) -> exec::Run {
        self.run_as(new_run_id(), Prior::default(), Cancel::default(), sink)
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
        let plan = Arc::new(self.plan);
        let options = RunOptions {
            run_id,
            max_concurrent: self.max_concurrent,
            emit_window: exec::DEFAULT_EMIT_WINDOW,
            prior,
            cancel,
        };
        let runner = Arc::new(WasmRunner::new(self.runtime, plan.clone(), self.components));
        exec::execute(plan, runner, options, sink).await
    }
}

/// Loads a job (with an optional run config layered on), loads its components and builds its
/// plan: everything `host run` does before the first step starts. With `store_dir`, compiled
/// components are cached in it, and no op may be granted it.
pub async fn prepare(
    job_path: &Path,
    run_config: Option<&Path>,
    max_concurrent: Option<usize>,
    store_dir: Option<&Path>,
) -> anyhow::Result<Prepared> {
    let mut job = LoadedJob::load(job_path)?;
    if let Some(path) = run_config {
        job.apply(job::load_run_config(path)?)?;
    }

    let max_concurrent = max_concurrent
        .or(job.job.execution.max_concurrent)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let wasm_stack = job.job.execution.wasm_stack.map(|b| b.as_u64());
    let cache = store_dir.map(cache_dir);
    let files = job
        .job
        .components
        .values()
        .map(|c| ComponentFile::read(&c.path))
        .collect::<Result<Vec<_>, _>>()?;
    let footprint = runtime::footprint(&files);
    // After the cache directory exists, so that the check sees the store's real path.
    let runtime = Runtime::new(max_concurrent, wasm_stack, cache.as_deref(), footprint)?;
    if let Some(store_dir) = store_dir {
        job.check_grants_avoid(store_dir)?;
    }
    let components = runtime::load_all(&runtime, &files).await?;
    report_compilation(&components, cache.as_deref());
    let described: IndexMap<String, Vec<_>> = job
        .job
        .components
        .keys()
        .cloned()
        .zip(components.iter().map(|c| c.ops.clone()))
        .collect();
    let plan = plan::build(&job, &described)
        .with_context(|| format!("invalid job `{}`", job_path.display()))?;
    Ok(Prepared {
        plan,
        runtime,
        components,
        max_concurrent,
    })
}

/// Where compiled components are cached: inside the run store.
fn cache_dir(store_dir: &Path) -> PathBuf {
    store_dir.join("cache")
}

/// Says on stderr how long compiling took when any component was not in the cache.
fn report_compilation(components: &[LoadedComponent], cache: Option<&Path>) {
    let compiled: Vec<_> = components.iter().filter(|c| c.compile.compiled).collect();
    if compiled.is_empty() {
        return;
    }
    let elapsed: std::time::Duration = compiled.iter().map(|c| c.compile.elapsed).sum();
    let cached = cache.map_or(String::new(), |dir| {
        format!(", cached in `{}`", dir.display())
    });
    eprintln!(
        "compiled {} component(s) in {:.1} ms{cached}",
        compiled.len(),
        elapsed.as_secs_f64() * 1e3
    );
}

async fn run(
    job_path: &Path,
    run_config: Option<&Path>,
    execution: &ExecutionArgs,
    store_dir: &Path,
) -> anyhow::Result<ExitCode> {
    let prepared = prepare(
        job_path,
        run_config,
        execution.max_concurrent,
        Some(store_dir),
    )
    .await?;
    let store = SqliteStore::open(store_dir)?;
    let id = begin(&store, &prepared, job_path, run_config, None)?;
    let recorded = store.sink(&id)?;
    execute(
        prepared,
        recorded,
        id,
        Prior::default(),
        execution.json,
        store_dir,
    )
    .await
}

/// Records a new run of `prepared`, leased to this process, and returns its id.
fn begin(
    store: &dyn RunStore,
    prepared: &Prepared,
    job_path: &Path,
    run_config: Option<&Path>,
    parent: Option<&str>,
) -> anyhow::Result<String> {
    let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let record = RunRecord {
        id: new_run_id(),
        job_name: prepared.plan.job_name.clone(),
        job_path: absolute(job_path),
        config_path: run_config.map(absolute),
        status: RunStatus::Running,
        started: crate::events::unix_now(),
        finished: None,
        parent: parent.map(str::to_string),
        owner: None,
    };
    // Interim: the application layer records what was loaded rather than reading it again.
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    let files: Vec<Vec<u8>> = prepared
        .plan
        .components
        .iter()
        .map(|path| std::fs::read(path).unwrap_or_default())
        .collect();
    let snapshot = crate::snapshot::RunSnapshot {
        job_path: record.job_path.clone(),
        job_text: read(job_path),
        config_path: record.config_path.clone(),
        config_text: run_config.map(read),
        components: prepared
            .plan
            .components
            .iter()
            .zip(&files)
            .map(|(path, bytes)| (path.display().to_string(), crate::digest::Digest::of(bytes)))
            .collect(),
    };
    let bytes: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
    store.begin_run(&record, &snapshot, &bytes)?;
    Ok(record.id)
}

async fn reexecute(
    parent: &str,
    select: &[String],
    execution: &ExecutionArgs,
    store_dir: &Path,
) -> anyhow::Result<ExitCode> {
    let store = SqliteStore::open(store_dir)?;
    let record = store.run(parent)?;
    // Its committed outputs would still change, and the steps it runs would run twice.
    record
        .ensure_not_running()
        .with_context(|| format!("cannot re-execute run `{parent}` while it runs"))?;
    let prepared = rebuild(&record, execution.max_concurrent, store_dir).await?;
    let mut prior = history::prior(&store, parent, &prepared.plan)?;
    let selection = Selection::parse(&prepared.plan, select, &prior)?;
    prior.succeeded.retain(|(key, _)| !selection.covers(key));
    prior.emitted.retain(|(key, _, _)| !selection.covers(key));
    let id = begin(
        &store,
        &prepared,
        &record.job_path,
        record.config_path.as_deref(),
        Some(parent),
    )?;
    let plan = &prepared.plan;
    let name = |key: &crate::step_key::StepKey| key.display(&plan.nodes[key.node].name).to_string();
    let reused: std::collections::HashSet<String> = prior
        .succeeded
        .iter()
        .map(|(key, _)| name(key))
        .chain(prior.emitted.iter().map(|(key, _, _)| name(key)))
        .collect();
    store.adopt(parent, &id, &reused)?;
    eprintln!("run {id} re-executes run {parent}");
    let recorded = store.sink(&id)?;
    execute(prepared, recorded, id, prior, execution.json, store_dir).await
}

/// The recorded run `record`'s job, prepared again from the job file and run config.
async fn rebuild(
    record: &RunRecord,
    max_concurrent: Option<usize>,
    store_dir: &Path,
) -> anyhow::Result<Prepared> {
    let run_id = &record.id;
    prepare(
        &record.job_path,
        record.config_path.as_deref(),
        max_concurrent,
        Some(store_dir),
    )
    .await
    .with_context(|| format!("cannot rebuild run `{run_id}` from its job file"))
}

async fn resume(
    run_id: &str,
    execution: &ExecutionArgs,
    store_dir: &Path,
) -> anyhow::Result<ExitCode> {
    let store = SqliteStore::open(store_dir)?;
    let record = store.run(run_id)?;
    let cannot = || format!("cannot resume run `{run_id}`");
    // Checked before loading anything, so that a refusal is quick; again when taking the run
    // over, in one transaction with it.
    record.ensure_resumable().with_context(cannot)?;
    let prepared = rebuild(&record, execution.max_concurrent, store_dir).await?;
    store.claim(run_id).with_context(cannot)?;
    // Read once this process owns the run, so that no other can add to it meanwhile.
    let prior = history::prior(&store, run_id, &prepared.plan)?;
    let recorded = store.sink(run_id)?;
    execute(
        prepared,
        recorded,
        run_id.to_string(),
        prior,
        execution.json,
        store_dir,
    )
    .await
}

/// Runs `prepared` as run `run_id`, recording it with `recorded` and reporting it; SIGINT or
/// SIGTERM stops it (see [`interrupt`]).
async fn execute(
    prepared: Prepared,
    recorded: Box<dyn store::RecordingSink>,
    run_id: String,
    prior: Prior,
    json: bool,
    store_dir: &Path,
) -> anyhow::Result<ExitCode> {
    let shown: Box<dyn EventSink> = if json {
        Box::new(JsonLines(std::io::BufWriter::new(std::io::stdout())))
    } else {
        Box::new(report::Live(std::io::stderr()))
    };
    let mut sink = Both(shown, recorded);
    let resume = resume_command(&run_id, store_dir);
    let interrupts = Interrupts::listen(&run_id, resume.clone())
        .context("cannot listen for SIGINT and SIGTERM")?;
    let run = prepared
        .run_as(run_id, prior, interrupts.cancel(), &mut sink)
        .await;
    let Both(shown, recorded) = sink;
    drop(shown);
    recorded
        .finish()
        .context("cannot record the run in the run store")?;
    eprint!("{}", report::summary(&run));
    if !json {
        let outputs = serde_json::to_string_pretty(&report::final_outputs(&run))?;
        print_stdout(&format!("{outputs}\n"))?;
    }
    Ok(match interrupts.received() {
        Some(signal) if run.canceled() => {
            eprintln!("resume it with: {resume}");
            ExitCode::from(signal.exit_code())
        }
        _ if run.succeeded() => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

/// The command that resumes run `run_id`: this program, and the store unless it is the default.
fn resume_command(run_id: &str, store_dir: &Path) -> String {
    let program = std::env::args_os()
        .next()
        .map_or_else(|| "host".into(), |arg0| arg0.to_string_lossy().into_owned());
    let mut words = vec![program, "resume".into(), run_id.into()];
    if store_dir != store::default_dir() {
        words.push("--store".into());
        words.push(store_dir.to_string_lossy().into_owned());
    }
    words
        .iter()
        .map(|word| shell_quoted(word))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `word` as a POSIX shell reads it back: as is when it is plain, else in single quotes.
fn shell_quoted(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

async fn inspect(path: &Path, store_dir: &Path) -> anyhow::Result<ExitCode> {
    let file = ComponentFile::read(path)?;
    let footprint = runtime::footprint(std::slice::from_ref(&file));
    let runtime = Runtime::new(1, None, Some(&cache_dir(store_dir)), footprint)?;
    let component = runtime.load_bytes(path, &file.bytes).await?;
    let mut out = String::new();
    for op in &component.ops {
        out.push_str(&format!("{}\n", op.name));
        if !op.description.is_empty() {
            out.push_str(&format!("  {}\n", op.description));
        }
        out.push_str(&format!(
            "  inputs: {}\n",
            crate::op_info::join(op.inputs.iter().map(String::as_str))
        ));
        for output in &op.outputs {
            let kind = if output.dynamic {
                "dynamic output"
            } else {
                "output"
            };
            out.push_str(&format!("  {kind}: `{}`\n", output.name));
        }
    }
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes to stdout; a closed pipe (`host graph job.toml | head`) is not an error.
pub(crate) fn print_stdout(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("cannot write to stdout"),
    }
}

/// A run id that sorts by start time: milliseconds since the epoch, the process id, and a
/// random part for runs started in the same millisecond.
fn new_run_id() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!(
        "{millis:012x}-{:05x}-{:04x}",
        std::process::id(),
        fastrand::u16(..)
    )
}

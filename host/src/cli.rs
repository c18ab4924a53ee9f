//! The `host` command line: argument definitions and the subcommands. This is the only place
//! that turns typed errors into `anyhow` errors with context.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use indexmap::IndexMap;

use crate::events::{EventSink, JsonLines};
use crate::exec::{self, RunOptions};
use crate::graph::{self, Format};
use crate::job::{self, LoadedJob};
use crate::plan::{self, Plan};
use crate::report;
use crate::runtime::{self, LoadedComponent, Runtime, WasmRunner};

/// Shoal: run WebAssembly component ops as jobs with dynamic map/collect.
#[derive(Debug, Parser)]
#[command(name = "host", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
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
        /// Most steps running at once [default: number of cores].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        max_concurrent: Option<u32>,
        /// Run one step at a time on one thread, in a deterministic order (for debugging).
        #[arg(long, conflicts_with = "max_concurrent")]
        sequential: bool,
        /// Write events to stdout as JSON Lines instead of the final outputs.
        #[arg(long)]
        json: bool,
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

/// Runs the command; the exit code says whether a run succeeded (0) or failed (1). Errors in
/// the job or the components are returned (the caller exits with 2).
pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    let sequential = matches!(
        cli.command,
        Command::Run {
            sequential: true,
            ..
        }
    );
    let mut builder = if sequential {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let tokio = builder
        .enable_time()
        .build()
        .context("cannot start the async runtime")?;
    tokio.block_on(dispatch(cli.command))
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run {
            job,
            config,
            max_concurrent,
            sequential,
            json,
        } => {
            let max_concurrent = if sequential {
                Some(1)
            } else {
                max_concurrent.map(|n| n as usize)
            };
            run(&job, config.as_deref(), max_concurrent, json).await
        }
        Command::Validate { job } => {
            let prepared = prepare(&job, None, None).await?;
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
            let prepared = prepare(&job, None, None).await?;
            print_stdout(&graph::render(&prepared.plan, format))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { component } => inspect(&component).await,
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
    /// Runs the plan, sending events to `sink`.
    pub async fn run(self, sink: &mut dyn EventSink) -> exec::Run {
        let plan = Arc::new(self.plan);
        let options = RunOptions {
            run_id: new_run_id(),
            max_concurrent: self.max_concurrent,
        };
        let runner = Arc::new(WasmRunner::new(self.runtime, plan.clone(), self.components));
        exec::execute(plan, runner, options, sink).await
    }
}

/// Loads a job (with an optional run config layered on), loads its components and builds its
/// plan: everything `host run` does before the first step starts.
pub async fn prepare(
    job_path: &Path,
    run_config: Option<&Path>,
    max_concurrent: Option<usize>,
) -> anyhow::Result<Prepared> {
    let mut job = LoadedJob::load(job_path)?;
    if let Some(path) = run_config {
        job.apply(job::load_run_config(path)?)?;
    }
    let max_concurrent = max_concurrent
        .or(job.job.execution.max_concurrent)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let wasm_stack = job.job.execution.wasm_stack.map(|b| b.as_u64());
    let runtime = Runtime::new(max_concurrent, wasm_stack)?;
    let paths: Vec<PathBuf> = job
        .job
        .components
        .values()
        .map(|c| c.path.clone())
        .collect();
    let components = runtime::load_all(&runtime, &paths).await?;
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

async fn run(
    job_path: &Path,
    run_config: Option<&Path>,
    max_concurrent: Option<usize>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let prepared = prepare(job_path, run_config, max_concurrent).await?;
    let mut sink: Box<dyn EventSink> = if json {
        Box::new(JsonLines(std::io::BufWriter::new(std::io::stdout())))
    } else {
        Box::new(report::Live(std::io::stderr()))
    };
    let run = prepared.run(sink.as_mut()).await;
    drop(sink);
    eprint!("{}", report::summary(&run));
    if !json {
        let outputs = serde_json::to_string_pretty(&report::final_outputs(&run))?;
        print_stdout(&format!("{outputs}\n"))?;
    }
    Ok(if run.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn inspect(path: &Path) -> anyhow::Result<ExitCode> {
    let runtime = Runtime::new(1, None)?;
    let component = runtime.load(path).await?;
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
fn print_stdout(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("cannot write to stdout"),
    }
}

/// A run id that sorts by start time: milliseconds since the epoch, then the process id.
fn new_run_id() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{millis:012x}-{:05x}", std::process::id())
}

//! The `host` command line: argument definitions and the subcommands. This is the only place
//! that turns typed errors into `anyhow` errors with context.

mod cluster;
mod doctor;
mod history;
mod housekeeping;
mod interrupt;
#[cfg(test)]
mod reference;
mod tenants;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::app::{self, App, AppError, JobSource, Prepared, Reexecution, RunHandle, Settings};
use crate::events::{EventSink, JsonLines};
use crate::graph::{self, Format};
use crate::report;
use crate::store::{self, StoreError};
use interrupt::Interrupts;

/// Shoal: run WebAssembly component ops as jobs with dynamic map/collect.
#[derive(Debug, Parser)]
#[command(name = "host", version)]
pub struct Cli {
    /// The run store directory [default: ~/.shoal].
    #[arg(long, global = true, env = store::STORE_ENV, value_name = "DIR")]
    pub store: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Whether the command was asked for JSON: its errors are JSON too.
    pub fn json(&self) -> bool {
        match &self.command {
            Command::Run { execution, .. }
            | Command::Resume { execution, .. }
            | Command::Reexecute { execution, .. } => execution.json,
            Command::Workers { json, .. } => *json,
            Command::Runs { args } => args.json,
            Command::Show { args } => args.json,
            Command::Logs { args } => args.json,
            _ => false,
        }
    }
}

/// How much the commands say on stderr, and in what colours.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct OutputArgs {
    /// Say less: no progress, no guest logs, and a run's summary only when it did not succeed.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say more: the host's own log (`-v` info, `-vv` debug; `RUST_LOG` filters finer).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Colour on stderr: `auto` when it is a terminal and `NO_COLOR` is not set.
    #[arg(long, global = true, value_name = "WHEN", value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

/// When to colour stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl OutputArgs {
    /// Applies the colour choice to everything that writes to stderr, and the log level.
    fn apply(&self) {
        let colour = match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::IsTerminal::is_terminal(&std::io::stderr())
            }
        };
        console::set_colors_enabled_stderr(colour);
        match self.verbose {
            0 => {}
            1 => log_to_stderr("info"),
            _ => log_to_stderr("debug"),
        }
    }
}

/// A count flag's value: a whole number of at least 1, said in those words rather than as the
/// range of a Rust integer type.
pub(crate) fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

/// The process's [`OutputArgs`], set once from the command line: how much to say is a property
/// of the process, like the colour choice `console` keeps.
static OUTPUT: std::sync::OnceLock<OutputArgs> = std::sync::OnceLock::new();

fn quiet() -> bool {
    OUTPUT.get().is_some_and(|output| output.quiet)
}

/// How the commands that execute steps run and report them.
#[derive(Debug, clap::Args)]
pub struct ExecutionArgs {
    /// Most steps running at once [default: number of cores].
    #[arg(long, value_name = "N", value_parser = crate::cli::at_least_one)]
    pub max_concurrent: Option<usize>,
    /// Write events to stdout as JSON Lines instead of the final outputs.
    #[arg(long)]
    pub json: bool,
    /// Where steps run: `local` (this process), or `nats://HOST:PORT` to send them to the
    /// workers of that NATS server (see `host worker`); then `--max-concurrent` is how many
    /// steps are in flight across all workers, 64 unless set.
    #[arg(long, value_name = "URL", default_value = "local")]
    pub executor: String,
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
        /// The run: its id, a prefix of it no other run's id has, or `latest`.
        run_id: String,
        #[command(flatten)]
        execution: ExecutionArgs,
    },
    /// Start a new run of a recorded run's job that reuses its committed outputs: run again the
    /// failed and unrun steps (`--from-failure`) and the selected ones (`--select`), with
    /// everything downstream of them. It runs the job, config and components the parent
    /// recorded unless `--config` or `--reload` says otherwise. Refused while another process
    /// executes the parent.
    Reexecute {
        /// The parent run: its id, a prefix of it no other run's id has, or `latest`.
        run_id: String,
        /// Run the steps that failed, were skipped or never ran.
        #[arg(long, required_unless_present = "select")]
        from_failure: bool,
        /// Steps to run again, in Dagster's syntax: `op`, `op[key]`, `*op`, `+op`, `op+`; repeat
        /// the flag for several.
        #[arg(long, value_name = "SELECTION")]
        select: Vec<String>,
        /// A run config to use instead of the parent's (e.g. one that fixes what failed).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Read the job file and the components from disk again instead of using the parent's
        /// recorded versions (to re-execute ops that were fixed and rebuilt).
        #[arg(long)]
        reload: bool,
        #[command(flatten)]
        execution: ExecutionArgs,
    },
    /// List recorded runs, newest first.
    Runs {
        #[command(flatten)]
        args: history::RunsArgs,
    },
    /// Show a run: its status, and per op its steps by status, their durations and failures.
    Show {
        #[command(flatten)]
        args: history::ShowArgs,
    },
    /// Print a run's log lines.
    Logs {
        #[command(flatten)]
        args: history::LogsArgs,
    },
    /// Print a step's output as JSON (Dagster's `output_for_node`). For a mapped op's name,
    /// prints every clone's value keyed by mapping key.
    Output {
        #[command(flatten)]
        args: history::OutputArgs,
    },
    /// Delete runs and the output values only they kept; refused while one runs.
    Rm {
        #[command(flatten)]
        args: housekeeping::RmArgs,
    },
    /// Delete finished runs beyond `--keep` and older than `--older-than`, and the output
    /// values no remaining run refers to, then compact the store.
    Gc {
        #[command(flatten)]
        args: housekeeping::GcArgs,
    },
    /// Check a job without running it: its wiring, and each op's config (with the run config
    /// layered on) against the schema the op declares.
    Validate {
        /// The job file.
        job: PathBuf,
        /// A run config layered over the job, as `host run --config` would.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Create a ready-to-build op project in a new directory NAME, with a job file that runs
    /// it: `host new NAME && cd NAME && host build && host run job.toml`.
    New {
        /// The project's name and directory (lowercase letters, digits, `-`, `_`).
        name: String,
        /// The language the ops are written in.
        #[arg(long, value_enum, default_value_t = crate::scaffold::Lang::Rust)]
        lang: crate::scaffold::Lang,
    },
    /// Build a job's components: run the `build` command of each `[components.NAME]` table
    /// that has one, in the job file's directory.
    Build {
        /// The job file.
        #[arg(default_value = "job.toml")]
        job: PathBuf,
        /// Build only this component (repeatable).
        #[arg(long, value_name = "NAME")]
        component: Vec<String>,
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
    /// Serve the HTTP API to tenants (see `host tenant`), resuming runs a previous server
    /// left interrupted; SIGTERM or SIGINT stops it gracefully.
    Serve {
        /// Address to listen on; port 0 lets the system choose (the address is printed).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070")]
        listen: std::net::SocketAddr,
        /// Steps running at once, all tenants together [default: number of cores; 64 with a
        /// NATS executor].
        #[arg(long, value_name = "N", value_parser = crate::cli::at_least_one)]
        max_concurrent: Option<usize>,
        /// An environment variable ops may be granted (repeatable); none by default.
        #[arg(long, value_name = "NAME")]
        allow_env: Vec<String>,
        /// The largest component upload.
        #[arg(long, value_name = "SIZE", default_value = "64MiB")]
        max_component_size: bytesize::ByteSize,
        /// The largest job submission or other request body.
        #[arg(long, value_name = "SIZE", default_value = "1MiB")]
        max_request_size: bytesize::ByteSize,
        /// Where steps run: `local`, or `nats://HOST:PORT` for the workers of that NATS server.
        #[arg(long, value_name = "URL", default_value = "local")]
        executor: String,
    },
    /// Serve the web view of this machine's runs (those of `host run`), without a login, on
    /// a loopback address; SIGTERM or SIGINT stops it.
    Ui {
        /// Address to listen on, loopback only; port 0 lets the system choose (the address is
        /// printed).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070")]
        listen: std::net::SocketAddr,
        /// Steps running at once for runs resumed or re-executed from the view [default:
        /// number of cores].
        #[arg(long, value_name = "N", value_parser = crate::cli::at_least_one)]
        max_concurrent: Option<usize>,
    },
    /// Run steps for coordinators (`--executor nats://...`): pull step calls from a NATS
    /// JetStream work queue until SIGINT or SIGTERM.
    Worker {
        #[command(flatten)]
        args: cluster::WorkerArgs,
    },
    /// List the live workers of a NATS cluster with their load.
    Workers {
        /// The NATS server, e.g. nats://127.0.0.1:4222.
        #[arg(long, value_name = "URL")]
        nats: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Manage the tenants of `host serve`.
    Tenant {
        #[command(subcommand)]
        command: tenants::TenantCommand,
    },
    /// Check this machine and a job: the run store, the compile cache, the tools that build
    /// ops, and each of the job's components (built, up to date, loadable).
    Doctor {
        /// A job file whose components to check.
        job: Option<PathBuf>,
    },
    /// Print a shell completion script: `host completions bash > /etc/bash_completion.d/host`.
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff): `host man | man -l -`.
    Man,
}

/// Runs the command; the exit code says whether a run succeeded (0), failed (1) or was stopped
/// by a signal (130 for SIGINT, 143 for SIGTERM). Errors in the job or the components are
/// returned (the caller exits with 2).
pub fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    cli.output.apply();
    let _first = OUTPUT.set(cli.output);
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
            run(JobSource { job, config }, &execution, store_dir).await
        }
        Command::Resume { run_id, execution } => resume(&run_id, &execution, store_dir).await,
        Command::Reexecute {
            run_id,
            from_failure: _,
            select,
            config,
            reload,
            execution,
        } => {
            let request = Reexecution {
                select,
                config,
                reload,
            };
            reexecute(&run_id, &request, &execution, store_dir).await
        }
        Command::Runs { args } => history::runs(&App::open(store_dir)?, args),
        Command::Show { args } => history::show(&App::open(store_dir)?, &args),
        Command::Logs { args } => history::logs(&App::open(store_dir)?, &args).await,
        Command::Output { args } => history::output(&App::open(store_dir)?, &args),
        Command::Rm { args } => housekeeping::rm(&App::open(store_dir)?, &args),
        Command::Gc { args } => housekeeping::gc(&App::open(store_dir)?, &args),
        Command::Validate { job, config } => {
            let prepared = prepare_only(JobSource { job, config }, store_dir).await?;
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
        Command::Build { job, component } => build(&job, &component),
        Command::New { name, lang } => {
            let dir = crate::scaffold::create(Path::new("."), &name, lang)?;
            eprintln!(
                "created `{}`; build and run it with: cd {name} && host build && host run job.toml",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Graph { job, format } => {
            let prepared = prepare_only(JobSource::file(&job), store_dir).await?;
            print_stdout(&graph::render(&prepared.plan, format))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { component } => inspect(&component, store_dir).await,
        Command::Serve {
            listen,
            max_concurrent,
            allow_env,
            max_component_size,
            max_request_size,
            executor,
        } => {
            let config = crate::serve::Config {
                listen,
                store_dir: store_dir.to_path_buf(),
                allow_env,
                max_concurrent: max_concurrent.unwrap_or_else(|| {
                    if executor == "local" {
                        app::cores()
                    } else {
                        REMOTE_MAX_CONCURRENT
                    }
                }),
                max_component_size: size(max_component_size),
                max_request_size: size(max_request_size),
                coordinator: coordinator(&executor).await?,
                access: crate::serve::Access::Tenants,
            };
            serve(config).await
        }
        Command::Ui {
            listen,
            max_concurrent,
        } => {
            let config = crate::serve::Config {
                listen,
                store_dir: store_dir.to_path_buf(),
                allow_env: Vec::new(),
                max_concurrent: max_concurrent.unwrap_or_else(app::cores),
                max_component_size: 0,
                max_request_size: 64 << 10,
                coordinator: None,
                access: crate::serve::Access::Local,
            };
            serve(config).await
        }
        Command::Tenant { command } => tenants::run(command, store_dir),
        Command::Worker { args } => cluster::worker(args, app::cache_dir(store_dir)).await,
        Command::Workers { nats, json } => cluster::workers(&nats, json).await,
        Command::Doctor { job } => doctor::check(job.as_deref(), store_dir).await,
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "host", &mut script);
            print_stdout(&String::from_utf8_lossy(&script))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut page)
                .context("cannot render the manual page")?;
            print_stdout(&String::from_utf8_lossy(&page))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn size(size: bytesize::ByteSize) -> usize {
    usize::try_from(size.as_u64()).unwrap_or(usize::MAX)
}

/// Runs the server, logging to stderr (`RUST_LOG` filters, `info` by default) and printing the
/// address it listens on to stdout once it does.
async fn serve(config: crate::serve::Config) -> anyhow::Result<ExitCode> {
    log_to_stderr("info");
    crate::serve::serve(config, |addr| {
        let _ignored = print_stdout(&format!("listening on http://{addr}\n"));
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Sends the `tracing` logs to stderr, filtered by `RUST_LOG`, else at `level` and above.
pub(crate) fn log_to_stderr(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ignored = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(console::colors_enabled_stderr())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Says on stderr how long compiling took when any component was not in the cache, and what
/// the user should know about how the job was loaded.
fn report_prepared(prepared: &Prepared, store_dir: Option<&Path>, quiet: bool) {
    // Even when quiet: a stale component is worth a line.
    for notice in &prepared.notices {
        eprintln!("note: {notice}");
    }
    if quiet {
        return;
    }
    let compiled: Vec<_> = prepared
        .components
        .iter()
        .filter(|c| c.compile.compiled)
        .collect();
    if compiled.is_empty() {
        return;
    }
    let elapsed: std::time::Duration = compiled.iter().map(|c| c.compile.elapsed).sum();
    let cached = store_dir.map_or(String::new(), |dir| {
        format!(", cached in `{}`", app::cache_dir(dir).display())
    });
    eprintln!(
        "compiled {} component(s) in {:.1} ms{cached}",
        compiled.len(),
        elapsed.as_secs_f64() * 1e3
    );
}

/// Prepares a job without recording a run (`validate`, `graph`).
async fn prepare_only(job: JobSource, store_dir: &Path) -> anyhow::Result<Prepared> {
    let prepared = app::prepare(&job, &Settings::default(), Some(store_dir)).await?;
    report_prepared(&prepared, Some(store_dir), quiet());
    Ok(prepared)
}

fn settings(execution: &ExecutionArgs) -> Settings {
    let remote = execution.executor != "local";
    Settings {
        max_concurrent: execution.max_concurrent,
        fallback_max_concurrent: remote.then_some(REMOTE_MAX_CONCURRENT),
    }
}

/// Steps in flight across the workers unless the job or `--max-concurrent` says otherwise.
const REMOTE_MAX_CONCURRENT: usize = 64;

/// The coordinator `--executor` names: none for `local`.
async fn coordinator(executor: &str) -> anyhow::Result<Option<crate::nats::Coordinator>> {
    if executor == "local" {
        return Ok(None);
    }
    if !executor.starts_with("nats://") {
        anyhow::bail!("unknown executor `{executor}`: use `local` or `nats://HOST:PORT`");
    }
    // Trouble with the cluster (a publish retried while the server restarts) is worth a line.
    log_to_stderr("warn");
    Ok(Some(crate::nats::Coordinator::connect(executor).await?))
}

/// The application over `store_dir`, sending steps where `execution` says.
async fn open_app(execution: &ExecutionArgs, store_dir: &Path) -> anyhow::Result<App> {
    let app = App::open(store_dir)?;
    Ok(match coordinator(&execution.executor).await? {
        Some(coordinator) => app.with_coordinator(coordinator),
        None => app,
    })
}

async fn run(
    source: JobSource,
    execution: &ExecutionArgs,
    store_dir: &Path,
) -> anyhow::Result<ExitCode> {
    let app = open_app(execution, store_dir).await?;
    let handle = app.submit(&source, &settings(execution)).await?;
    execute(handle, execution.json, store_dir).await
}

async fn reexecute(
    parent: &str,
    request: &Reexecution,
    execution: &ExecutionArgs,
    store_dir: &Path,
) -> anyhow::Result<ExitCode> {
    let app = open_app(execution, store_dir).await?;
    let parent = &app.resolve_run(parent)?;
    let handle = app
        .reexecute(parent, request, &settings(execution))
        .await
        .map_err(|err| {
            let running = matches!(err, AppError::Store(StoreError::StillRunning { .. }));
            let context = if running {
                format!("cannot re-execute run `{parent}` while it runs")
            } else {
                format!("cannot re-execute run `{parent}`")
            };
            anyhow::Error::new(err).context(context)
        })?;
    eprintln!("run {} re-executes run {parent}", handle.run_id());
    execute(handle, execution.json, store_dir).await
}

async fn resume(
    run_id: &str,
    execution: &ExecutionArgs,
    store_dir: &Path,
) -> anyhow::Result<ExitCode> {
    let app = open_app(execution, store_dir).await?;
    let run_id = &app.resolve_run(run_id)?;
    let handle = app
        .resume(run_id, &settings(execution))
        .await
        .with_context(|| format!("cannot resume run `{run_id}`"))?;
    execute(handle, execution.json, store_dir).await
}

/// Executes the run of `handle`, reporting it; SIGINT or SIGTERM stops it (see
/// [`interrupt`]).
async fn execute(handle: RunHandle, json: bool, store_dir: &Path) -> anyhow::Result<ExitCode> {
    let quiet = quiet();
    report_prepared(handle.prepared(), Some(store_dir), quiet);
    let run_id = handle.run_id().to_string();
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut say: Box<dyn Fn(&str) + Send> = Box::new(|line| eprintln!("{line}"));
    let mut shown: Box<dyn EventSink> = if json {
        Box::new(JsonLines(std::io::BufWriter::new(std::io::stdout())))
    } else if quiet {
        Box::new(crate::events::NoEvents)
    } else if terminal {
        let progress = report::Progress::new(&run_id, &handle.prepared().plan);
        say = Box::new(progress.printer());
        Box::new(progress)
    } else {
        eprintln!("run {run_id} started");
        Box::new(report::Live(std::io::stderr()))
    };
    let resume = resume_command(&run_id, store_dir);
    let interrupts = Interrupts::listen(&run_id, resume.clone(), handle.cancel(), say)
        .context("cannot listen for SIGINT and SIGTERM")?;
    let run = handle.execute(&mut shown).await;
    drop(shown);
    if !quiet || !run.succeeded() {
        eprint!("{}", report::summary(&run));
    }
    if let Some(err) = run.sink_error.clone() {
        return Err(anyhow::Error::new(err).context("cannot record the run in the run store"));
    }
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
    let ops = app::describe(path, Some(store_dir)).await?;
    let mut out = String::new();
    for op in &ops {
        out.push_str(&format!("{}\n", op.name));
        if !op.description.is_empty() {
            out.push_str(&format!("  {}\n", op.description));
        }
        out.push_str(&format!("  inputs: {}\n", op.input_names()));
        for input in &op.inputs {
            describe_part(
                &mut out,
                "input",
                &input.name,
                &input.description,
                &input.schema,
            );
        }
        for output in &op.outputs {
            let kind = match (output.dynamic, output.required) {
                (true, true) => "dynamic output",
                (false, true) => "output",
                (true, false) => "optional dynamic output",
                (false, false) => "optional output",
            };
            describe_part(
                &mut out,
                kind,
                &output.name,
                &output.description,
                &output.schema,
            );
        }
        if let Some(schema) = &op.config_schema {
            out.push_str(&format!("  config: {}\n", compact(schema)));
        }
    }
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// `host build`: runs the job's build commands, saying each before it starts.
fn build(job: &Path, only: &[String]) -> anyhow::Result<ExitCode> {
    let text = crate::job::read(job)?;
    let parsed = crate::job::LoadedJob::parse_text_only(&text, job)?;
    let dir = job.parent().filter(|dir| !dir.as_os_str().is_empty());
    let built = crate::build::build(
        &parsed,
        dir.unwrap_or(Path::new(".")),
        only,
        |name, command| {
            eprintln!("building `{name}`: {command}");
        },
    )?;
    eprintln!("built {} component(s)", built.len());
    Ok(ExitCode::SUCCESS)
}

/// One input or output in `host inspect`: `  output `result`: what it holds, {schema}`. Inputs
/// without a description or schema are listed on the `inputs:` line alone.
fn describe_part(
    out: &mut String,
    kind: &str,
    name: &str,
    description: &str,
    schema: &Option<String>,
) {
    let details: Vec<String> = [
        (!description.is_empty()).then(|| description.to_string()),
        schema.as_deref().map(compact),
    ]
    .into_iter()
    .flatten()
    .collect();
    if kind == "input" && details.is_empty() {
        return;
    }
    out.push_str(&format!("  {kind}: `{name}`"));
    if !details.is_empty() {
        out.push_str(&format!(": {}", details.join(", ")));
    }
    out.push('\n');
}

/// A schema on one line (it was checked to be JSON when the component was loaded).
/// Without the `$schema` keyword, which names the draft and says nothing about the value.
fn compact(schema: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(schema) {
        Ok(mut value) => {
            if let Some(object) = value.as_object_mut() {
                object.shift_remove("$schema");
            }
            value.to_string()
        }
        Err(_) => schema.to_string(),
    }
}

/// Writes to stdout; a closed pipe (`host graph job.toml | head`) is not an error.
pub(crate) fn print_stdout(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("cannot write to stdout"),
    }
}

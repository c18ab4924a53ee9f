//! `host worker` and `host workers`: the machines that run steps for coordinators over NATS.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use super::interrupt::Signals;
use crate::nats::{self, Cluster, WorkerConfig};

/// `host worker`'s arguments.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The NATS server (with JetStream) to pull step calls from, e.g. nats://127.0.0.1:4222.
    #[arg(long, value_name = "URL")]
    pub nats: String,
    /// Steps this worker runs at once [default: number of cores].
    #[arg(long, value_name = "N", value_parser = crate::cli::at_least_one)]
    pub max_concurrent: Option<usize>,
    /// The name `host workers` lists [default: HOST-PID].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// A host directory this worker may grant to ops (repeatable); a step granted a directory
    /// outside them fails with an error that says so.
    #[arg(long, value_name = "DIR")]
    pub allow_dir: Vec<PathBuf>,
    /// How long the server waits without a sign of life from a worker before it gives its
    /// calls to another one; the first worker of a NATS server sets it for all.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub ack_wait: humantime::Duration,
}

/// Runs a worker until SIGINT or SIGTERM; the first lets running steps finish, the second
/// exits at once (the server gives the unfinished calls to other workers).
pub async fn worker(args: WorkerArgs, cache_dir: PathBuf) -> anyhow::Result<ExitCode> {
    let name = args
        .name
        .unwrap_or_else(|| format!("{}-{}", crate::store::this_host(), std::process::id()));
    let allow_dirs = args
        .allow_dir
        .iter()
        .map(|dir| {
            dir.canonicalize()
                .with_context(|| format!("cannot serve directory `{}`", dir.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ack_wait: Duration = args.ack_wait.into();
    anyhow::ensure!(
        ack_wait >= Duration::from_secs(1),
        "`--ack-wait` must be at least 1s, not `{}`",
        args.ack_wait
    );
    let config = WorkerConfig {
        nats: args.nats,
        name: name.clone(),
        max_concurrent: args.max_concurrent.unwrap_or_else(crate::app::cores),
        allow_dirs,
        cache_dir: Some(cache_dir),
        ack_wait,
    };
    super::log_to_stderr("info");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut signals = Signals::new().context("cannot listen for SIGINT and SIGTERM")?;
    tokio::spawn(async move {
        let signal = signals.next().await;
        eprintln!(
            "{}: worker {name} takes no new steps and stops once its running steps finish; a \
             second signal exits at once",
            signal.name()
        );
        stop.send_replace(true);
        let signal = signals.next().await;
        std::process::exit(signal.exit_code().into());
    });
    eprintln!(
        "worker {} pulls steps from {} ({} at once)",
        config.name,
        nats::redacted(&config.nats),
        config.max_concurrent
    );
    nats::run_worker(config, stopped).await?;
    Ok(ExitCode::SUCCESS)
}

/// Lists the live workers of the cluster at `url`.
pub async fn workers(url: &str, json: bool) -> anyhow::Result<ExitCode> {
    let cluster = Cluster::connect(url).await?;
    let workers = nats::live_workers(&cluster).await?;
    if json {
        super::print_stdout(&format!("{}\n", serde_json::to_string_pretty(&workers)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    if workers.is_empty() {
        eprintln!("no live workers on {}", cluster.url());
        return Ok(ExitCode::SUCCESS);
    }
    let now = crate::events::unix_now();
    let mut text = format!(
        "{:<24} {:<20} {:>8} {:>9} {:>10} {:>8}  DIRS\n",
        "NAME", "HOST", "PID", "RUNNING", "FINISHED", "UP"
    );
    for w in &workers {
        let dirs: Vec<String> = w
            .allow_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        let up = humantime::format_duration(Duration::from_secs((now - w.started).max(0.0) as u64));
        text.push_str(&format!(
            "{:<24} {:<20} {:>8} {:>9} {:>10} {:>8}  {}\n",
            w.name,
            w.host,
            w.pid,
            format!("{}/{}", w.running, w.max_concurrent),
            w.finished,
            up.to_string(),
            if dirs.is_empty() {
                "-".to_string()
            } else {
                dirs.join(",")
            }
        ));
    }
    super::print_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

//! The commands that delete recorded runs: `rm` and `gc`.

use std::process::ExitCode;

use bytesize::ByteSize;

use super::print_stdout;
use crate::app::{App, Retention};
use crate::store::Collected;

/// `host rm`.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// The runs: ids, prefixes no other run's id has, or `latest`.
    #[arg(value_name = "RUN", required = true)]
    pub runs: Vec<String>,
}

/// `host gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Keep the newest N finished runs (succeeded, failed or canceled); running and
    /// interrupted runs are never deleted by `gc`.
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// Delete only the finished runs that ended longer ago than this (`7d`, `12h`).
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<humantime::Duration>,
}

/// `host rm RUN...`.
pub fn rm(app: &App, args: &RmArgs) -> anyhow::Result<ExitCode> {
    report(&app.remove_runs(&args.runs)?)
}

/// `host gc [--keep N] [--older-than DURATION]`.
pub fn gc(app: &App, args: &GcArgs) -> anyhow::Result<ExitCode> {
    let retention = Retention {
        keep: args.keep,
        older_than: args.older_than.map(Into::into),
    };
    report(&app.collect_garbage(&retention)?)
}

/// `deleted 2 runs, 5 blobs; freed 1.2 MiB (store 3.4 MiB -> 2.2 MiB)`.
fn report(collected: &Collected) -> anyhow::Result<ExitCode> {
    let Collected {
        runs,
        blobs,
        size_before,
        size_after,
        not_compacted_for,
    } = collected;
    let mut line = format!(
        "deleted {runs} run{}, {blobs} blob{}; freed {} (store {} -> {})",
        plural(*runs),
        plural(*blobs),
        ByteSize(size_before.saturating_sub(*size_after)),
        ByteSize(*size_before),
        ByteSize(*size_after)
    );
    if let Some(run) = not_compacted_for {
        line.push_str(&format!(
            "; not compacted while run {run} runs (its free space is reused)"
        ));
    }
    print_stdout(&format!("{line}\n"))?;
    Ok(ExitCode::SUCCESS)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

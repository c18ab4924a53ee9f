//! `host replay`: one step of a recorded run run again, here, from what the run recorded.

use std::path::PathBuf;
use std::process::ExitCode;

use super::history::RUN_HELP;
use crate::app::{App, Replay};
use crate::events::{EventSink, JsonLines, NoEvents};
use crate::report::{Live, escape};

/// `host replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[arg(help = RUN_HELP)]
    pub run: String,
    /// The step: `op`, or a clone `op[key]` (`op[a][b]` for a clone of a clone).
    pub step_key: String,
    /// A run config to use instead of the run's (e.g. one that fixes what failed).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the step's events as JSON Lines (as `host run --json` does) instead of its
    /// outputs.
    #[arg(long)]
    pub json: bool,
}

/// `host replay RUN STEP_KEY [--config FILE] [--json]`: exits 0 when the step succeeds, 1 when
/// it fails.
pub async fn replay(app: &App, args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let id = app.resolve_run(&args.run)?;
    let request = Replay {
        config: args.config.clone(),
    };
    let replay = app.replay(&id, &args.step_key, &request).await?;
    for notice in replay.notices() {
        eprintln!("note: {notice}");
    }
    let step = replay.step().to_string();
    let quiet = super::quiet();
    let mut shown: Box<dyn EventSink> = if args.json {
        Box::new(JsonLines(std::io::BufWriter::new(std::io::stdout())))
    } else if quiet {
        Box::new(NoEvents)
    } else {
        Box::new(Live(std::io::stderr()))
    };
    let replayed = replay.execute(&mut shown).await?;
    drop(shown);
    let took = format!("{:.1} ms", replayed.duration.as_secs_f64() * 1e3);
    match replayed.result {
        Ok(outputs) => {
            if !quiet {
                eprintln!("step `{step}` of run {id} succeeded again in {took} (nothing recorded)");
            }
            if !args.json {
                super::print_stdout(&format!("{}\n", serde_json::to_string_pretty(&outputs)?))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            if quiet || args.json {
                // Live, which says so, was not listening.
                eprintln!("step `{step}` failed: {}", escape(&err.to_string()));
            }
            eprintln!("step `{step}` of run {id} failed again in {took} (nothing recorded)");
            Ok(ExitCode::from(1))
        }
    }
}

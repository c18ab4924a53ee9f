//! `host events`: a run's events, chosen by step and kind, a line each or as JSON Lines.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;

use super::history::RUN_HELP;
use crate::app::{App, EventQuery};
use crate::events::{Event, EventKind};
use crate::report::escape;

/// `host events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    #[arg(help = RUN_HELP)]
    pub run: String,
    /// Only this step's events, and its clones' (`op` gives every step of the op, `op[a]` the
    /// clone and the clones under it); repeat the flag for several.
    #[arg(long, value_name = "KEY")]
    pub step: Vec<String>,
    /// Only events of these types, as the `event` field of `--json` names them (e.g.
    /// `STEP_OUTPUT,STEP_FAILURE`); a comma list, or the flag repeated.
    #[arg(long = "type", value_name = "TYPES", value_delimiter = ',', value_parser = event_type)]
    pub types: Vec<&'static str>,
    /// Print JSON Lines, each event as `host run --json` prints it.
    #[arg(long)]
    pub json: bool,
}

fn event_type(text: &str) -> Result<&'static str, crate::events::UnknownEventType> {
    crate::events::parse_name(text)
}

/// `host events RUN [--step KEY]... [--type TYPES] [--json]`.
pub fn events(app: &App, args: EventsArgs) -> anyhow::Result<ExitCode> {
    let id = app.resolve_run(&args.run)?;
    let query = EventQuery {
        steps: args.step,
        kinds: args.types,
    };
    let width = crate::events::names()
        .iter()
        .map(|n| n.len())
        .max()
        .unwrap_or(0);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for event in app.events(&id, &query)? {
        let event = event?;
        let line = if args.json {
            serde_json::to_string(&event)?
        } else {
            text(&event, width)
        };
        let written = writeln!(out, "{line}");
        if stopped_reading(written)? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    stopped_reading(out.flush())?;
    Ok(ExitCode::SUCCESS)
}

/// Whether a write failed because the reader went away (`host events ... | head`), which ends
/// the output without an error; any other failure is one.
fn stopped_reading(written: std::io::Result<()>) -> anyhow::Result<bool> {
    match written {
        Ok(()) => Ok(false),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
        Err(err) => Err(err).context("cannot write to stdout"),
    }
}

/// The longest value shown in full on a line.
const VALUE_CHARS: usize = 120;

/// One event on one line: its time, type, step and gist, guest text escaped.
fn text(event: &Event<'_>, width: usize) -> String {
    let time = humantime::format_rfc3339_millis(crate::events::unix_time(event.timestamp));
    let step = event
        .step_key
        .as_deref()
        .map(|step| format!("{}  ", escape(step)))
        .unwrap_or_default();
    let reused = event
        .reused_from
        .as_deref()
        .map(|run| format!(" (reused from run {run})"))
        .unwrap_or_default();
    format!(
        "{time}  {:<width$}  {step}{}{reused}",
        event.kind.name(),
        gist(&event.kind)
    )
}

/// What an event says, in a few words.
fn gist(kind: &EventKind<'_>) -> String {
    let ms = |ms: &f64| format!("{ms:.1} ms");
    match kind {
        EventKind::RunStart { job } => format!("job `{}`", escape(job)),
        EventKind::StepStart { attempt } | EventKind::StepRestarted { attempt } => {
            format!("attempt {attempt}")
        }
        EventKind::StepOutput {
            output,
            mapping_key,
            value,
            ..
        } => {
            let key = mapping_key
                .as_deref()
                .map(|key| format!("[{}]", escape(key)))
                .unwrap_or_default();
            let shown = crate::value::preview_within(value, VALUE_CHARS);
            format!("{}{key} = {}", escape(output), escape(&shown))
        }
        EventKind::StepSuccess { duration_ms } => format!("in {}", ms(duration_ms)),
        EventKind::StepFailure {
            error, duration_ms, ..
        } => format!("{} (after {})", escape(error), ms(duration_ms)),
        EventKind::StepUpForRetry {
            error,
            attempt,
            delay_ms,
            ..
        } => format!(
            "attempt {attempt}: {}; retrying in {}",
            escape(error),
            ms(delay_ms)
        ),
        EventKind::StepSkipped { reason } => escape(reason).into_owned(),
        EventKind::Logs { level, message } => {
            format!("{}: {}", escape(level), escape(message.trim_end()))
        }
        EventKind::RunSuccess { duration_ms, .. } => format!("in {}", ms(duration_ms)),
        EventKind::RunFailure {
            duration_ms,
            failed_steps,
            unresolved_steps,
            ..
        } => {
            let mut gist = format!(
                "after {}; failed: {}",
                ms(duration_ms),
                escape(&failed_steps.join(", "))
            );
            if !unresolved_steps.is_empty() {
                gist.push_str(&format!(
                    "; never finished: {}",
                    escape(&unresolved_steps.join(", "))
                ));
            }
            gist
        }
        EventKind::RunCanceled { duration_ms, .. } => format!("after {}", ms(duration_ms)),
        EventKind::AssetMaterialization(_)
        | EventKind::AssetObservation(_)
        | EventKind::StepExpectationResult(_) => {
            let (_, text) = kind.user_event_line().expect("a user event");
            escape(&text).into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(step: Option<&str>, kind: EventKind<'static>) -> String {
        let event = Event {
            timestamp: 1.5,
            ..Event::now("r", step, kind)
        };
        text(&event, 17)
    }

    #[test]
    fn an_event_is_one_line_of_time_type_step_and_gist() {
        assert_eq!(
            line(
                Some("op[k3]"),
                EventKind::StepFailure {
                    error_kind: crate::step_error::ErrorKind::OpFailed,
                    error: "op failed: no\nway".into(),
                    backtrace: None,
                    duration_ms: 2.25,
                }
            ),
            "1970-01-01T00:00:01.500Z  STEP_FAILURE       op[k3]  op failed: no\\u{a}way (after 2.2 ms)"
        );
        assert_eq!(
            line(None, EventKind::RunStart { job: "j".into() }),
            "1970-01-01T00:00:01.500Z  RUN_START          job `j`"
        );
    }

    #[test]
    fn a_long_value_is_cut() {
        let mut bytes = Vec::new();
        ciborium::into_writer(&"x".repeat(500), &mut bytes).unwrap();
        let shown = line(
            Some("op"),
            EventKind::StepOutput {
                output: "result".into(),
                mapping_key: Some("k".into()),
                value: bytes.into(),
                metadata: Default::default(),
            },
        );
        let gist = shown.split_once("  op  ").unwrap().1;
        assert_eq!(gist, format!("result[k] = \"{}...", "x".repeat(119)));
    }

    #[test]
    fn types_are_a_comma_list_of_known_names() {
        use clap::Parser;
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: EventsArgs,
        }
        let parsed = Cli::try_parse_from([
            "events",
            "latest",
            "--type",
            "step_output,STEP_FAILURE",
            "--type",
            "LOGS",
        ])
        .unwrap();
        assert_eq!(parsed.args.types, ["STEP_OUTPUT", "STEP_FAILURE", "LOGS"]);
        let err = Cli::try_parse_from(["events", "latest", "--type", "STEP_OUTPUT,NOPE"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown event type `NOPE` (known: RUN_START, "),
            "{err}"
        );
    }
}

//! The commands that read the run store: `runs`, `show`, `logs`, `output`.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value as Json, json};

use super::print_stdout;
use crate::app::{App, LogLine, OpSummary, RunFilter, StepSummary};
use crate::store::{RunRecord, RunStatus};

/// The help of every RUN argument.
const RUN_HELP: &str = "The run: its id, a prefix of it no other run's id has, or `latest`";

/// `host runs`.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Only runs with this status.
    #[arg(long, value_name = "STATUS", ignore_case = true)]
    pub status: Option<RunStatus>,
    /// Only runs of the job with this name.
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// At most N runs, the newest.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `host show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[arg(help = RUN_HELP)]
    pub run: String,
    /// List every step instead of a summary per op.
    #[arg(long)]
    pub steps: bool,
    /// Print JSON: the run and its summary per op (and its steps with `--steps`).
    #[arg(long)]
    pub json: bool,
}

/// `host logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    #[arg(help = RUN_HELP)]
    pub run: String,
    /// Only this step's, and its clones' for a mapped op's name (`op` or `op[a]`).
    #[arg(long, value_name = "KEY")]
    pub step: Option<String>,
    /// Keep printing new lines while the run runs; exit once it no longer does.
    #[arg(long)]
    pub follow: bool,
    /// Print JSON Lines: `step`, `level`, `message`, `timestamp`.
    #[arg(long)]
    pub json: bool,
}

/// `host output`.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    #[arg(help = RUN_HELP)]
    pub run: String,
    /// A step key (`op`, `op[key]`), or a mapped op's name for all its clones.
    pub step_key: String,
    /// The output name, when the op has several.
    #[arg(long, value_name = "NAME")]
    pub output: Option<String>,
}

/// `--status` takes the statuses as `host runs` prints them.
impl clap::ValueEnum for RunStatus {
    fn value_variants<'a>() -> &'a [Self] {
        &RunStatus::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// How often `logs --follow` looks for new lines.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

fn time(seconds: f64) -> String {
    humantime::format_rfc3339_seconds(crate::events::unix_time(seconds)).to_string()
}

/// A time as JSON: RFC 3339, to the millisecond.
fn json_time(seconds: f64) -> String {
    humantime::format_rfc3339_millis(crate::events::unix_time(seconds)).to_string()
}

/// `host runs`.
pub fn runs(app: &App, args: RunsArgs) -> anyhow::Result<ExitCode> {
    let filter = RunFilter {
        status: args.status,
        job: args.job,
        limit: args.limit,
    };
    let runs = app.runs_where(&filter)?;
    if args.json {
        let runs: Vec<Json> = runs.iter().map(run_json).collect();
        print_stdout(&format!("{}\n", serde_json::to_string_pretty(&runs)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    for run in runs {
        let took = run
            .finished
            .map_or_else(String::new, |end| format!("{:.1}s", end - run.started));
        let parent = run
            .parent
            .map(|p| format!(" (re-executes {p})"))
            .unwrap_or_default();
        let tenant = run
            .tenant
            .map(|t| format!(" [tenant {t}]"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{}  {:<11} {}  {:>8}  {}{parent}{tenant}\n",
            run.id,
            run.status.as_str(),
            time(run.started),
            took,
            run.job_name
        ));
    }
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// A run as `runs --json` and `show --json` print it.
fn run_json(run: &RunRecord) -> Json {
    json!({
        "id": run.id,
        "status": run.status,
        "job": run.job_name,
        "job_path": run.job_path,
        "started": json_time(run.started),
        "finished": run.finished.map(json_time),
        "duration_s": run.finished.map(|end| end - run.started),
        "parent": run.parent,
        "tenant": run.tenant,
    })
}

/// `host show RUN`.
pub fn show(app: &App, args: &ShowArgs) -> anyhow::Result<ExitCode> {
    let id = app.resolve_run(&args.run)?;
    let (run, steps) = app.run(&id)?;
    let ops = crate::app::per_op(&steps);
    if args.json {
        let mut shown = json!({"run": run_json(&run), "ops": ops});
        if args.steps {
            shown["steps"] = steps.iter().map(step_json).collect();
        }
        print_stdout(&format!("{}\n", serde_json::to_string_pretty(&shown)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = format!(
        "run {}  {}{}\njob {} ({})\nstarted {}{}\n",
        run.id,
        run.status,
        ownership(&run),
        run.job_name,
        run.job_path.display(),
        time(run.started),
        run.finished
            .map(|f| format!(", finished {}", time(f)))
            .unwrap_or_default()
    );
    if args.steps {
        step_lines(&mut out, &steps);
    } else {
        op_lines(&mut out, &ops);
    }
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Each step's status, attempts, duration and error, a line each.
fn step_lines(out: &mut String, steps: &[StepSummary]) {
    let width = steps.iter().map(|s| s.step_key.len()).max().unwrap_or(0);
    for s in steps {
        let duration = s.duration_ms.map(ms).unwrap_or_default();
        out.push_str(&format!(
            "  {:<width$}  {:<8} attempts {}  {duration:>10}  {}\n",
            s.step_key,
            s.status.to_string(),
            s.attempts,
            crate::report::escape(&s.detail)
        ));
    }
}

/// Each op's steps by status and their durations, then its first failures.
fn op_lines(out: &mut String, ops: &[OpSummary]) {
    let counts: Vec<String> = ops
        .iter()
        .map(|op| {
            op.statuses
                .iter()
                .map(|(status, n)| format!("{n} {status}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    let width = ops.iter().map(|op| op.op.len()).max().unwrap_or(0);
    let counts_width = counts.iter().map(String::len).max().unwrap_or(0);
    for (op, counts) in ops.iter().zip(counts) {
        let durations = op
            .duration_ms
            .map(|d| format!("  p50 {}  p95 {}  max {}", ms(d.p50), ms(d.p95), ms(d.max)))
            .unwrap_or_default();
        let line = format!("  {:<width$}  {counts:<counts_width$}{durations}", op.op);
        out.push_str(line.trim_end());
        out.push('\n');
        if !op.events.is_empty() {
            out.push_str(&format!("    {}\n", op.events.text()));
        }
        for failure in &op.failures {
            out.push_str(&format!(
                "    failed {}: {}\n",
                failure.step,
                crate::report::escape(&failure.error)
            ));
        }
        if op.more_failures > 0 {
            out.push_str(&format!("    and {} more failed\n", op.more_failures));
        }
    }
}

fn ms(ms: f64) -> String {
    format!("{ms:.1} ms")
}

fn step_json(step: &StepSummary) -> Json {
    json!({
        "step": step.step_key,
        "status": step.status.to_string(),
        "attempts": step.attempts,
        "duration_ms": step.duration_ms,
        "detail": step.detail,
    })
}

/// Who runs `run`, or who died running it.
fn ownership(run: &RunRecord) -> String {
    match (run.status, &run.owner) {
        (RunStatus::Running, Some(owner)) => {
            format!(" (process {} on host `{}`)", owner.pid, owner.host)
        }
        (RunStatus::Interrupted, Some(owner)) => format!(
            " (process {} on host `{}` no longer runs it)",
            owner.pid, owner.host
        ),
        _ => String::new(),
    }
}

/// `host logs RUN [--step KEY] [--follow] [--json]`.
pub async fn logs(app: &App, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let id = app.resolve_run(&args.run)?;
    let step = args.step.as_deref();
    let mut after = -1;
    let mut printed = false;
    loop {
        // Read before the lines: once the run is seen ended, all its lines are committed.
        let ended = !args.follow || app.store().run(&id)?.status != RunStatus::Running;
        loop {
            let page = app.log_page(&id, step, after)?;
            let Some(last) = page.last_seq else { break };
            after = last;
            printed |= !page.lines.is_empty();
            let text: String = page
                .lines
                .iter()
                .map(|line| log_text(line, args.json))
                .collect();
            print_stdout(&text)?;
        }
        if ended {
            break;
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
    if let (Some(step), false) = (step, printed) {
        app.ensure_step(&id, step)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One log line as `logs` prints it: prefixed and escaped text, or a JSON line.
fn log_text(line: &LogLine, json: bool) -> String {
    if !json {
        return crate::report::log_lines(&line.step_key, &line.level, &line.message);
    }
    let step = (!line.step_key.is_empty()).then_some(line.step_key.as_str());
    let shown = json!({
        "step": step,
        "level": line.level,
        "message": line.message,
        "timestamp": json_time(line.timestamp),
    });
    format!("{shown}\n")
}

/// `host output RUN STEP_KEY [--output NAME]`.
pub fn output(app: &App, args: &OutputArgs) -> anyhow::Result<ExitCode> {
    let id = app.resolve_run(&args.run)?;
    let json = app.output(&id, &args.step_key, args.output.as_deref())?;
    print_stdout(&format!("{}\n", serde_json::to_string_pretty(&json)?))?;
    Ok(ExitCode::SUCCESS)
}

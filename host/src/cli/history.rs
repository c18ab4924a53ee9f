//! Rendering of the commands that read the run store: `runs`, `show`, `logs`, `output`.

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use super::print_stdout;
use crate::app::App;
use crate::store::{RunRecord, RunStatus};

fn time(seconds: f64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs_f64(seconds.max(0.0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// `host runs`.
pub fn runs(app: &App) -> anyhow::Result<ExitCode> {
    let mut out = String::new();
    for run in app.runs()? {
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

/// `host show RUN_ID`.
pub fn show(app: &App, run_id: &str) -> anyhow::Result<ExitCode> {
    let (run, steps) = app.run(run_id)?;
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
    let width = steps.iter().map(|s| s.step_key.len()).max().unwrap_or(0);
    for s in &steps {
        let duration = s
            .duration_ms
            .map(|ms| format!("{ms:.1} ms"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {:<width$}  {:<8} attempts {}  {duration:>10}  {}\n",
            s.step_key,
            s.status.to_string(),
            s.attempts,
            crate::report::escape(&s.detail)
        ));
    }
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
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

/// `host logs RUN_ID [--step KEY]`.
pub fn logs(app: &App, run_id: &str, step: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut out = String::new();
    for line in app.logs(run_id, step)? {
        out.push_str(&crate::report::log_lines(
            &line.step_key,
            &line.level,
            &line.message,
        ));
    }
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// `host output RUN_ID STEP_KEY [--output NAME]`.
pub fn output(
    app: &App,
    run_id: &str,
    step: &str,
    output: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let json = app.output(run_id, step, output)?;
    print_stdout(&format!("{}\n", serde_json::to_string_pretty(&json)?))?;
    Ok(ExitCode::SUCCESS)
}

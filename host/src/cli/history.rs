//! The commands that read the run store: `runs`, `show`, `logs`, `output`, and what `resume`
//! needs from an earlier execution.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::bail;
use indexmap::IndexMap;
use serde_json::Value as Json;

use super::print_stdout;
use crate::events::EventKind;
use crate::store::{OutputRecord, RunRecord, RunStatus, RunStore};
use crate::value;

fn time(seconds: f64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs_f64(seconds.max(0.0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// `host runs`.
pub fn runs(store: &dyn RunStore) -> anyhow::Result<ExitCode> {
    let mut out = String::new();
    for run in store.runs()? {
        let took = run
            .finished
            .map_or_else(String::new, |end| format!("{:.1}s", end - run.started));
        let parent = run
            .parent
            .map(|p| format!(" (re-executes {p})"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{}  {:<11} {}  {:>8}  {}{parent}\n",
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

/// One step's history, gathered from its events.
#[derive(Default)]
struct StepSummary {
    status: String,
    attempts: u64,
    duration_ms: Option<f64>,
    detail: String,
}

/// `host show RUN_ID`.
pub fn show(store: &dyn RunStore, run_id: &str) -> anyhow::Result<ExitCode> {
    let run = store.run(run_id)?;
    let mut steps: IndexMap<String, StepSummary> = IndexMap::new();
    for event in store.events(run_id, None)? {
        let Some(step) = event.step_key else { continue };
        let summary = steps.entry(step.into_owned()).or_default();
        match event.kind {
            EventKind::StepStart { .. } | EventKind::StepRestarted { .. } => {
                summary.attempts += 1;
                summary.status = "RUNNING".into();
            }
            EventKind::StepSuccess { duration_ms } => {
                summary.status = "SUCCESS".into();
                summary.duration_ms = Some(duration_ms);
                // A resumed or retried step that succeeded keeps no earlier error.
                summary.detail.clear();
            }
            EventKind::StepFailure {
                error, duration_ms, ..
            } => {
                summary.status = "FAILURE".into();
                summary.duration_ms = Some(duration_ms);
                summary.detail = error.into_owned();
            }
            EventKind::StepUpForRetry { .. } => summary.status = "RETRYING".into(),
            EventKind::StepSkipped { reason } => {
                summary.status = "SKIPPED".into();
                summary.detail = reason.into_owned();
            }
            EventKind::StepOutput { .. }
            | EventKind::Logs { .. }
            | EventKind::RunStart { .. }
            | EventKind::RunSuccess { .. }
            | EventKind::RunFailure { .. }
            | EventKind::RunCanceled { .. } => {}
        }
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
    let width = steps.keys().map(String::len).max().unwrap_or(0);
    for s in steps.values_mut() {
        // No process runs these steps any more: they were aborted, or waited for a retry.
        if run.status != RunStatus::Running && matches!(s.status.as_str(), "RUNNING" | "RETRYING") {
            s.status = run.status.to_string();
        }
    }
    for (step, s) in &steps {
        let duration = s
            .duration_ms
            .map(|ms| format!("{ms:.1} ms"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {step:<width$}  {:<8} attempts {}  {duration:>10}  {}\n",
            s.status,
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
pub fn logs(store: &dyn RunStore, run_id: &str, step: Option<&str>) -> anyhow::Result<ExitCode> {
    let events = store.events(run_id, step)?;
    if let (Some(step), true) = (step, events.is_empty()) {
        bail!(
            "run `{run_id}` has no step `{step}` nor clones of it (its steps include {})",
            some_steps(store, run_id)?
        );
    }
    let mut out = String::new();
    for event in &events {
        match &event.kind {
            EventKind::Logs { level, message } => out.push_str(&crate::report::log_lines(
                event.step_key.as_deref().unwrap_or_default(),
                level,
                message,
            )),
            EventKind::RunStart { .. }
            | EventKind::StepStart { .. }
            | EventKind::StepOutput { .. }
            | EventKind::StepSuccess { .. }
            | EventKind::StepFailure { .. }
            | EventKind::StepUpForRetry { .. }
            | EventKind::StepRestarted { .. }
            | EventKind::StepSkipped { .. }
            | EventKind::RunSuccess { .. }
            | EventKind::RunFailure { .. }
            | EventKind::RunCanceled { .. } => {}
        }
    }
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// A few of run `run_id`'s step keys, for an error about one it does not have.
fn some_steps(store: &dyn RunStore, run_id: &str) -> anyhow::Result<String> {
    const SHOWN: usize = 5;
    let mut keys: Vec<String> = Vec::new();
    for event in store.events(run_id, None)? {
        if let Some(key) = event.step_key
            && !keys.iter().any(|k| *k == key)
        {
            keys.push(key.into_owned());
            if keys.len() == SHOWN {
                break;
            }
        }
    }
    Ok(crate::op_info::join(keys.iter().map(String::as_str)))
}

/// `host output RUN_ID STEP_KEY [--output NAME]`: a step's value; for an op name whose steps
/// are clones, or for a dynamic output, an object from mapping key to value.
pub fn output(
    store: &dyn RunStore,
    run_id: &str,
    step: &str,
    output: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let records = store.outputs(run_id, Some(step))?;
    if records.is_empty() {
        bail!("run `{run_id}` recorded no output for step `{step}`");
    }
    let names: Vec<&str> = {
        let mut seen = HashSet::new();
        records
            .iter()
            .map(|r| r.output.as_str())
            .filter(|n| seen.insert(*n))
            .collect()
    };
    let name = match (output, names.as_slice()) {
        (Some(name), _) if names.contains(&name) => name,
        (Some(name), _) => bail!(
            "step `{step}` has no output `{name}` (it has: {})",
            names.join(", ")
        ),
        (None, [only]) => only,
        (None, _) => bail!(
            "step `{step}` has several outputs ({}); pick one with --output",
            names.join(", ")
        ),
    };
    let selected: Vec<&OutputRecord> = records.iter().filter(|r| r.output == name).collect();
    let json = match selected.as_slice() {
        [single] if single.step_key == step && single.mapping_key.is_none() => {
            value::to_json(&single.value)
        }
        many => {
            let mut object = Json::Object(serde_json::Map::new());
            for record in many {
                // A dynamic value is keyed by its mapping key; a clone's value by its own
                // mapping keys, one level of nesting per key.
                let keys: Vec<&str> = match &record.mapping_key {
                    Some(key) if record.step_key == step => vec![key.as_str()],
                    _ => record.step_key[step.len()..]
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .split("][")
                        .collect(),
                };
                let (last, outer) = keys.split_last().expect("split yields at least one key");
                let mut slot = &mut object;
                for key in outer {
                    slot = slot
                        .as_object_mut()
                        .expect("only objects are nested")
                        .entry(key.to_string())
                        .or_insert_with(|| Json::Object(serde_json::Map::new()));
                }
                if let Some(map) = slot.as_object_mut() {
                    map.insert(last.to_string(), value::to_json(&record.value));
                }
            }
            object
        }
    };
    print_stdout(&format!("{}\n", serde_json::to_string_pretty(&json)?))?;
    Ok(ExitCode::SUCCESS)
}

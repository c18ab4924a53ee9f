//! What the store says about recorded runs, gathered for display: each step's history, a run's
//! log lines, a step's output as JSON (Dagster's `output_for_node`).

use std::collections::HashSet;

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::AppError;
use crate::events::EventKind;
use crate::store::{EventFilter, OutputRecord, RunRecord, RunStatus, RunStore};
use crate::{keyed, step_key, value};

/// Where a step ended up, from its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Running,
    Success,
    Failure,
    Retrying,
    Skipped,
    /// Running or waiting for a retry when its run stopped (canceled, interrupted, ...).
    Stopped(RunStatus),
}

impl std::fmt::Display for StepStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StepStatus::Running => "RUNNING",
            StepStatus::Success => "SUCCESS",
            StepStatus::Failure => "FAILURE",
            StepStatus::Retrying => "RETRYING",
            StepStatus::Skipped => "SKIPPED",
            StepStatus::Stopped(status) => status.as_str(),
        })
    }
}

/// One step's history.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSummary {
    pub step_key: String,
    pub status: StepStatus,
    pub attempts: u32,
    pub duration_ms: Option<f64>,
    /// Why it failed or was skipped.
    pub detail: String,
    /// The user events its attempts logged.
    pub events: UserEventCounts,
}

/// User events counted by kind, for `host show`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct UserEventCounts {
    pub materializations: usize,
    pub observations: usize,
    pub expectations_passed: usize,
    pub expectations_failed: usize,
}

impl UserEventCounts {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn add(&mut self, other: &Self) {
        self.materializations += other.materializations;
        self.observations += other.observations;
        self.expectations_passed += other.expectations_passed;
        self.expectations_failed += other.expectations_failed;
    }

    /// In words, leaving out the kinds that did not happen: `2 materializations, 1 failed
    /// expectation`.
    pub fn text(&self) -> String {
        [
            (self.materializations, "materialization"),
            (self.observations, "observation"),
            (self.expectations_passed, "passed expectation"),
            (self.expectations_failed, "failed expectation"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}{}", if *n == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// One log line a step sent.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub step_key: String,
    pub level: String,
    pub message: String,
    /// When it was sent, in seconds since the Unix epoch.
    pub timestamp: f64,
}

/// Log lines of a run read after a sequence number.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogPage {
    pub lines: Vec<LogLine>,
    /// The sequence number of the last line, to read on from; `None` when there was none.
    pub last_seq: Option<i64>,
}

/// Events read per query: a page bounds what a million-step run holds in memory at once.
const PAGE: usize = 10_000;

/// The events that change a step's state, and the user events it logs: what its history is
/// made of, without the outputs' values and the logs.
const LIFECYCLE: &[&str] = &[
    "STEP_START",
    "STEP_RESTARTED",
    "STEP_SUCCESS",
    "STEP_FAILURE",
    "STEP_UP_FOR_RETRY",
    "STEP_SKIPPED",
    "ASSET_MATERIALIZATION",
    "ASSET_OBSERVATION",
    "STEP_EXPECTATION_RESULT",
];

/// What `host logs` shows: log lines and user events.
const LOG_KINDS: &[&str] = &[
    "LOGS",
    "ASSET_MATERIALIZATION",
    "ASSET_OBSERVATION",
    "STEP_EXPECTATION_RESULT",
];

/// Which recorded runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    /// The job's name.
    pub job: Option<String>,
    /// At most this many, the newest.
    pub limit: Option<usize>,
}

impl RunFilter {
    /// The runs of `runs` (newest first) this filter selects.
    pub fn select(&self, runs: Vec<RunRecord>) -> Vec<RunRecord> {
        runs.into_iter()
            .filter(|run| self.status.is_none_or(|status| run.status == status))
            .filter(|run| self.job.as_ref().is_none_or(|job| run.job_name == *job))
            .take(self.limit.unwrap_or(usize::MAX))
            .collect()
    }
}

/// The steps of `run`, in the order they first appear in its events.
pub fn steps(store: &dyn RunStore, run: &RunRecord) -> Result<Vec<StepSummary>, AppError> {
    let mut steps: IndexMap<String, StepSummary> = IndexMap::new();
    let mut filter = EventFilter {
        kinds: LIFECYCLE,
        limit: Some(PAGE),
        ..EventFilter::default()
    };
    loop {
        let page = store.event_page(&run.id, &filter)?;
        let Some((last, _)) = page.last() else { break };
        filter.after = *last;
        fold_steps(&mut steps, page.into_iter().map(|(_, event)| event));
    }
    let mut steps: Vec<StepSummary> = steps.into_values().collect();
    for step in &mut steps {
        // No process runs these steps any more: they were aborted, or waited for a retry.
        if run.status != RunStatus::Running
            && matches!(step.status, StepStatus::Running | StepStatus::Retrying)
        {
            step.status = StepStatus::Stopped(run.status);
        }
    }
    Ok(steps)
}

/// Adds what `events` say to the history of each of their steps.
fn fold_steps(
    steps: &mut IndexMap<String, StepSummary>,
    events: impl Iterator<Item = crate::events::Event<'static>>,
) {
    for event in events {
        let Some(step) = event.step_key else { continue };
        let summary = steps
            .entry(step.into_owned())
            .or_insert_with_key(|key| StepSummary {
                step_key: key.clone(),
                status: StepStatus::Running,
                attempts: 0,
                duration_ms: None,
                detail: String::new(),
                events: UserEventCounts::default(),
            });
        match event.kind {
            EventKind::StepStart { .. } | EventKind::StepRestarted { .. } => {
                summary.attempts += 1;
                summary.status = StepStatus::Running;
            }
            EventKind::StepSuccess { duration_ms } => {
                summary.status = StepStatus::Success;
                summary.duration_ms = Some(duration_ms);
                // A resumed or retried step that succeeded keeps no earlier error.
                summary.detail.clear();
            }
            EventKind::StepFailure {
                error, duration_ms, ..
            } => {
                summary.status = StepStatus::Failure;
                summary.duration_ms = Some(duration_ms);
                summary.detail = error.into_owned();
            }
            EventKind::StepUpForRetry { .. } => summary.status = StepStatus::Retrying,
            EventKind::StepSkipped { reason } => {
                summary.status = StepStatus::Skipped;
                summary.detail = reason.into_owned();
            }
            EventKind::AssetMaterialization(_) => summary.events.materializations += 1,
            EventKind::AssetObservation(_) => summary.events.observations += 1,
            EventKind::StepExpectationResult(result) if result.success => {
                summary.events.expectations_passed += 1;
            }
            EventKind::StepExpectationResult(_) => summary.events.expectations_failed += 1,
            EventKind::StepOutput { .. }
            | EventKind::Logs { .. }
            | EventKind::RunStart { .. }
            | EventKind::RunSuccess { .. }
            | EventKind::RunFailure { .. }
            | EventKind::RunCanceled { .. } => {}
        }
    }
}

/// Run `run_id`'s log lines after sequence number `after` (-1 for the first), at most a page;
/// with `step`, only that step's and its clones'.
pub fn log_page(
    store: &dyn RunStore,
    run_id: &str,
    step: Option<&str>,
    after: i64,
) -> Result<LogPage, AppError> {
    let filter = EventFilter {
        step,
        kinds: LOG_KINDS,
        after,
        limit: Some(PAGE),
    };
    let mut page = LogPage::default();
    for (seq, event) in store.event_page(run_id, &filter)? {
        page.last_seq = Some(seq);
        match event.kind {
            EventKind::Logs { level, message } => page.lines.push(LogLine {
                step_key: event.step_key.unwrap_or_default().into_owned(),
                level: level.into_owned(),
                message: message.into_owned(),
                timestamp: event.timestamp,
            }),
            EventKind::AssetMaterialization(_)
            | EventKind::AssetObservation(_)
            | EventKind::StepExpectationResult(_) => {
                if let Some((level, message)) = event.kind.user_event_line() {
                    page.lines.push(LogLine {
                        step_key: event.step_key.unwrap_or_default().into_owned(),
                        level: level.to_string(),
                        message,
                        timestamp: event.timestamp,
                    });
                }
            }
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
    Ok(page)
}

/// Refuses a `step` run `run_id` has no event of, neither of it nor of a clone of it.
pub fn ensure_step(store: &dyn RunStore, run_id: &str, step: &str) -> Result<(), AppError> {
    let filter = EventFilter {
        step: Some(step),
        limit: Some(1),
        ..EventFilter::default()
    };
    if store.event_page(run_id, &filter)?.is_empty() {
        return Err(AppError::NoSuchStep {
            run: run_id.to_string(),
            step: step.to_string(),
            some: some_steps(store, run_id)?,
        });
    }
    Ok(())
}

/// A few of run `run_id`'s step keys, for an error about one it does not have.
fn some_steps(store: &dyn RunStore, run_id: &str) -> Result<String, AppError> {
    const SHOWN: usize = 5;
    let mut keys: Vec<String> = Vec::new();
    // Each step starts once, unless resumed after it started.
    let filter = EventFilter {
        kinds: &["STEP_START"],
        limit: Some(4 * SHOWN),
        ..EventFilter::default()
    };
    for (_, event) in store.event_page(run_id, &filter)? {
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

/// The value of output `output` (or the only one) of step `step` of run `run_id`; for an op
/// name whose steps are clones, or for a dynamic output, an object from mapping key to value
/// (one level of nesting per key).
pub fn output(
    store: &dyn RunStore,
    run_id: &str,
    step: &str,
    output: Option<&str>,
) -> Result<Json, AppError> {
    let records = store.outputs(run_id, Some(step))?;
    output_in(&records, run_id, step, output)
}

/// [`output`], from `records`, the outputs of `step` and its clones, read already.
fn output_in(
    records: &[OutputRecord],
    run_id: &str,
    step: &str,
    output: Option<&str>,
) -> Result<Json, AppError> {
    let no_output = || AppError::NoOutput {
        run: run_id.to_string(),
        step: step.to_string(),
    };
    let selector = step_key::parse(step).ok_or_else(no_output)?.1.len();
    if records.is_empty() {
        return Err(no_output());
    }
    let names: Vec<&str> = {
        let mut seen = HashSet::new();
        records
            .iter()
            .map(|r| r.output.as_str())
            .filter(|n| seen.insert(*n))
            .collect()
    };
    let listed = || names.join(", ");
    let name = match (output, names.as_slice()) {
        (Some(name), _) if names.contains(&name) => name,
        (Some(name), _) => {
            return Err(AppError::NoSuchOutput {
                step: step.to_string(),
                output: name.to_string(),
                has: listed(),
            });
        }
        (None, [only]) => only,
        (None, _) => {
            return Err(AppError::SeveralOutputs {
                step: step.to_string(),
                has: listed(),
            });
        }
    };
    let selected: Vec<&OutputRecord> = records.iter().filter(|r| r.output == name).collect();
    if let [single] = selected.as_slice()
        && single.step_key == step
        && single.mapping_key.is_none()
    {
        return Ok(value::to_json(&single.value));
    }
    // A clone's value sits under its mapping keys below the selected step, then a dynamic
    // value under its own mapping key.
    let entries = selected.into_iter().filter_map(|record| {
        let (_, keys) = step_key::parse(&record.step_key)?;
        let mut path: Vec<&str> = keys.get(selector..)?.to_vec();
        path.extend(record.mapping_key.as_deref());
        Some((path, value::to_json(&record.value)))
    });
    Ok(keyed::nest(entries))
}

/// The outputs of run `run_id`'s leaf ops (those no op reads from), as `host run` prints them:
/// an op with one recorded output maps to its value, one with several to an object by output
/// name, one with none to `null`. `snapshot` is the run's.
pub fn final_outputs(
    store: &dyn RunStore,
    run_id: &str,
    snapshot: &crate::snapshot::RunSnapshot,
) -> Result<Json, AppError> {
    let job = crate::job::LoadedJob::parse_text_only(&snapshot.job_text, &snapshot.job_path)?;
    let read: HashSet<&str> = job
        .ops
        .values()
        .flat_map(|op| op.inputs.values())
        .filter_map(|input| match input {
            crate::job::InputSpec::From(r)
            | crate::job::InputSpec::Map(r)
            | crate::job::InputSpec::Collect(r) => Some(r.op.as_str()),
            crate::job::InputSpec::Value(_) => None,
        })
        .collect();
    let mut outputs = serde_json::Map::new();
    for leaf in job.ops.keys().filter(|op| !read.contains(op.as_str())) {
        // Read once, whatever the number of clones and outputs.
        let records = store.outputs(run_id, Some(leaf))?;
        let mut names: Vec<&str> = Vec::new();
        for record in &records {
            if !names.contains(&record.output.as_str()) {
                names.push(&record.output);
            }
        }
        let value = match names.as_slice() {
            [] => Json::Null,
            [only] => output_in(&records, run_id, leaf, Some(only))?,
            several => several
                .iter()
                .map(|&name| {
                    let value = output_in(&records, run_id, leaf, Some(name))?;
                    Ok((name.to_string(), value))
                })
                .collect::<Result<serde_json::Map<_, _>, AppError>>()?
                .into(),
        };
        outputs.insert(leaf.clone(), value);
    }
    Ok(Json::Object(outputs))
}

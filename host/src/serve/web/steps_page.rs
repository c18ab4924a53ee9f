//! A run's steps one op at a time, paged by step key so that a million clones are never read at
//! once; one step's attempts, inputs, outputs, logs and error; the run's event log.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value as Json;

use super::format::{VALUE_LIMIT, choose, href, json, took, when};
use super::run_page::job_of;
use super::tally::State as StepState;
use super::{Server, Viewer, WebError, framed};
use crate::events::{Event, EventKind};
use crate::job::{InputSpec, Job};
use crate::store::{EventFilter, OpSteps, RunRecord, RunStore, StepRow};
use crate::{step_key, user_event, value};

/// Steps a page shows.
const PAGE: usize = 100;

/// Rows read per query while paging steps.
const CHUNK: usize = 4096;

/// Events the event log shows per page.
const LOG_PAGE: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub struct StepsQuery {
    #[serde(default)]
    op: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    after: String,
}

/// One step in the table.
struct Line {
    key: String,
    state: StepState,
    attempts: u32,
    duration_ms: Option<f64>,
    error: String,
}

impl Line {
    /// Folds a step's lifecycle rows, in order.
    fn of(rows: &[StepRow]) -> Option<Line> {
        let mut line = Line {
            key: rows.first()?.step_key.clone(),
            state: StepState::Running,
            attempts: 0,
            duration_ms: None,
            error: String::new(),
        };
        for row in rows {
            let Some(state) = StepState::after(&row.event) else {
                continue;
            };
            line.state = state;
            let detail: Json = serde_json::from_str(&row.json).unwrap_or_default();
            match state {
                StepState::Running => line.attempts += 1,
                StepState::Succeeded => line.error.clear(),
                StepState::Failed | StepState::Retrying | StepState::Skipped => {
                    let text = detail["error"].as_str().or(detail["reason"].as_str());
                    line.error = text.unwrap_or_default().to_string();
                }
            }
            if let Some(ms) = detail["duration_ms"].as_f64() {
                line.duration_ms = Some(ms);
            }
        }
        Some(line)
    }
}

/// A page of steps that pass `query`, and where the next page starts, if there is one.
fn find_steps(
    viewer: &Viewer,
    run: &RunRecord,
    ops: &[String],
    query: &StepsQuery,
) -> Result<(Vec<Line>, Option<String>), WebError> {
    if !query.op.is_empty() && !ops.contains(&query.op) {
        return Err(WebError::new(
            StatusCode::NOT_FOUND,
            format!("this run has no op `{}`", query.op),
        ));
    }
    match query.status.as_str() {
        "" => steps_in_order(viewer, run, ops, query),
        name => {
            let wanted = StepState::parse(name).ok_or_else(|| {
                WebError::new(
                    StatusCode::BAD_REQUEST,
                    format!("unknown step status `{name}`"),
                )
            })?;
            steps_in_state(viewer, run, query, wanted)
        }
    }
}

/// The steps of `query.op` (of every op, in the job's order, without one) in key order.
fn steps_in_order(
    viewer: &Viewer,
    run: &RunRecord,
    ops: &[String],
    query: &StepsQuery,
) -> Result<(Vec<Line>, Option<String>), WebError> {
    let after_op = step_key::parse(&query.after).map(|(op, _)| op);
    let chosen: Vec<&String> = match (query.op.as_str(), after_op) {
        ("", Some(op)) => ops.iter().skip_while(|o| *o != op).collect(),
        ("", None) => ops.iter().collect(),
        (op, _) => ops.iter().filter(|o| *o == op).collect(),
    };
    let mut lines = Vec::new();
    for op in chosen {
        let mut cursor = (after_op == Some(op.as_str())).then(|| query.after.clone());
        loop {
            let steps = OpSteps {
                op,
                prefix: (!query.prefix.is_empty()).then_some(query.prefix.as_str()),
                after: cursor.as_deref(),
            };
            let rows = viewer.app.store.step_rows(&run.id, &steps, CHUNK)?;
            let full = rows.len() == CHUNK;
            let mut groups: Vec<&[StepRow]> =
                rows.chunk_by(|a, b| a.step_key == b.step_key).collect();
            // The last step of a full chunk may go on in the next one.
            if full && groups.len() > 1 {
                groups.pop();
            }
            for line in groups.into_iter().filter_map(Line::of) {
                cursor = Some(line.key.clone());
                lines.push(line);
                if lines.len() == PAGE {
                    return Ok((lines, cursor));
                }
            }
            if !full {
                break;
            }
        }
    }
    Ok((lines, None))
}

/// The steps now in state `wanted`, in key order.
fn steps_in_state(
    viewer: &Viewer,
    run: &RunRecord,
    query: &StepsQuery,
    wanted: StepState,
) -> Result<(Vec<Line>, Option<String>), WebError> {
    if query.op.is_empty() && !query.prefix.is_empty() {
        return Err(WebError::new(
            StatusCode::BAD_REQUEST,
            "choose an op to filter its steps by mapping key",
        ));
    }
    let store = &viewer.app.store;
    let steps = OpSteps {
        op: &query.op,
        prefix: (!query.prefix.is_empty()).then_some(query.prefix.as_str()),
        after: (!query.after.is_empty()).then_some(query.after.as_str()),
    };
    let keys = store.steps_now(&run.id, &steps, wanted.events(), PAGE)?;
    let mut lines = Vec::new();
    for key in &keys {
        lines.extend(Line::of(&store.step_rows_of(&run.id, key)?));
    }
    let next = (keys.len() == PAGE).then(|| keys.last().cloned()).flatten();
    Ok((lines, next))
}

/// Failed steps a run page lists before linking to the rest.
const FAILURES_SHOWN: usize = 10;

/// The first failed steps of `run` with their errors, for its page.
pub fn failures(viewer: &Viewer, run: &RunRecord, failed: u64) -> Result<Markup, WebError> {
    let query = StepsQuery {
        status: StepState::Failed.name().to_string(),
        ..StepsQuery::default()
    };
    let (lines, _) = steps_in_state(viewer, run, &query, StepState::Failed)?;
    let step_base = format!("/runs/{}/step", run.id);
    Ok(html! {
        section aria-labelledby="failures-heading" {
            h2 #failures-heading { "Failures" }
            table.failures {
                thead { tr { th scope="col" { "Step" } th scope="col" { "Error" } } }
                tbody {
                    @for line in lines.iter().take(FAILURES_SHOWN) {
                        tr {
                            td { a.mono href=(href(&step_base, &[("key", &line.key)])) { (line.key) } }
                            td.error-cell { (first_line(&line.error)) }
                        }
                    }
                }
            }
            @if failed > FAILURES_SHOWN as u64 {
                p { a href=(href(&format!("/runs/{}/steps", run.id), &[("status", "failed")])) { "All " (failed) " failed steps" } }
            }
        }
    })
}

/// The op names of run `run`: its job's, else those its steps show.
fn op_names(
    server: &Server,
    viewer: &Viewer,
    run: &RunRecord,
    job: Option<&Job>,
) -> Result<Vec<String>, WebError> {
    Ok(match job {
        Some(job) => job.ops.keys().cloned().collect(),
        None => server
            .tallies
            .of(&viewer.app.store, run)?
            .ops
            .keys()
            .cloned()
            .collect(),
    })
}

pub async fn steps(
    State(server): State<Arc<Server>>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(query): Query<StepsQuery>,
) -> Result<Markup, WebError> {
    let run = viewer.app.app.store().run(&id)?;
    let job = job_of(&viewer, &run)?;
    let ops = op_names(&server, &viewer, &run, job.as_ref())?;
    let (lines, next) = find_steps(&viewer, &run, &ops, &query)?;
    let base = format!("/runs/{id}/steps");
    let step_base = format!("/runs/{id}/step");
    let body = html! {
        h1 { "Steps of run " a.mono href={"/runs/" (id)} { (id) } }
        form.filters method="get" action=(base) {
            (choose("op", "Op", ops.iter().map(String::as_str), &query.op))
            (choose("status", "Status", StepState::ALL.map(StepState::name), &query.status))
            label for="prefix" { "Op's mapping key starts with" }
            input #prefix name="prefix" type="search" value=(query.prefix);
            button type="submit" { "Filter" }
        }
        table.steps {
            caption.visually-hidden { "Steps in key order" }
            thead { tr {
                th scope="col" { "Step" } th scope="col" { "Status" } th scope="col" { "Attempts" }
                th scope="col" { "Duration" } th scope="col" { "Error" }
            } }
            tbody {
                @if lines.is_empty() { tr { td colspan="5" { "No steps here." } } }
                @for line in &lines {
                    tr {
                        td { a.mono href=(href(&step_base, &[("key", &line.key)])) { (line.key) } }
                        td { span class={"count " (line.state.label(run.status))} { (line.state.label(run.status)) } }
                        td { (line.attempts) }
                        td { @if let Some(ms) = line.duration_ms { (took(ms / 1e3)) } }
                        td.error-cell { (first_line(&line.error)) }
                    }
                }
            }
        }
        @if let Some(next) = next {
            p { a rel="next" href=(href(&base, &[("op", &query.op), ("status", &query.status), ("prefix", &query.prefix), ("after", &next)])) {
                "Next steps after " (next)
            } }
        }
    };
    Ok(framed(&viewer, &format!("Steps of {id}"), body))
}

fn first_line(text: &str) -> &str {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(160) {
        Some((cut, _)) => &line[..cut],
        None => line,
    }
}

#[derive(Debug, Deserialize)]
pub struct StepQuery {
    key: String,
}

pub async fn step(
    viewer: Viewer,
    Path(id): Path<String>,
    Query(StepQuery { key }): Query<StepQuery>,
) -> Result<Markup, WebError> {
    let run = viewer.app.app.store().run(&id)?;
    let filter = EventFilter {
        step: Some(&key),
        ..EventFilter::default()
    };
    let events: Vec<Event<'static>> = viewer
        .app
        .store
        .event_page(&id, &filter)?
        .into_iter()
        .map(|(_, event)| event)
        .filter(|event| event.step_key.as_deref() == Some(key.as_str()))
        .collect();
    if events.is_empty() {
        return Err(WebError::new(
            StatusCode::NOT_FOUND,
            format!("run `{id}` has no step `{key}`"),
        ));
    }
    let job = job_of(&viewer, &run)?;
    let inputs = match &job {
        Some(job) => inputs(&viewer, &id, job, &key)?,
        None => Vec::new(),
    };
    let body = html! {
        h1 { "Step " span.mono { (key) } }
        p { "Of run " a.mono href={"/runs/" (id)} { (id) } }
        section aria-labelledby="attempts-heading" {
            h2 #attempts-heading { "Attempts" }
            table.attempts {
                thead { tr { th scope="col" { "Time" } th scope="col" { "Event" } th scope="col" { "Detail" } } }
                tbody {
                    @for event in events.iter().filter(|e| !matches!(e.kind, EventKind::Logs { .. } | EventKind::StepOutput { .. })) {
                        tr { td { (when(event.timestamp)) } td { (event.kind.name()) } td { (detail(&event.kind)) } }
                    }
                }
            }
        }
        @for event in &events {
            @if let EventKind::StepFailure { error, backtrace, .. } = &event.kind {
                section aria-labelledby="error-heading" {
                    h2 #error-heading { "Error" }
                    pre.error #step-error { (error) }
                    @if let Some(backtrace) = backtrace {
                        h3 { "Wasm backtrace" }
                        pre #backtrace { (backtrace) }
                    }
                }
            }
        }
        section aria-labelledby="inputs-heading" {
            h2 #inputs-heading { "Inputs" }
            @if inputs.is_empty() { p { "None." } }
            dl.values { @for (name, shown) in &inputs { dt { (name) } dd { (shown) } } }
        }
        section aria-labelledby="outputs-heading" {
            h2 #outputs-heading { "Outputs" }
            dl.values #outputs {
                @for event in &events {
                    @if let EventKind::StepOutput { output, mapping_key, value, metadata } = &event.kind {
                        dt { (output) @if let Some(k) = mapping_key { " [" (k) "]" } }
                        dd {
                            pre { (json(&value::to_json(value), VALUE_LIMIT)) }
                            @if !metadata.is_empty() { p.metadata { (user_event::metadata_text(metadata)) } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="logs-heading" {
            h2 #logs-heading { "Logs" }
            pre #logs {
                @for event in &events {
                    @if let EventKind::Logs { level, message } = &event.kind {
                        (level) ": " (message) "\n"
                    }
                }
            }
        }
    };
    Ok(framed(&viewer, &format!("Step {key}"), body))
}

/// What each input of step `key` was given, as far as the store recorded it.
fn inputs(
    viewer: &Viewer,
    run_id: &str,
    job: &Job,
    key: &str,
) -> Result<Vec<(String, Markup)>, WebError> {
    let Some((op, keys)) = step_key::parse(key) else {
        return Ok(Vec::new());
    };
    let Some(spec) = job.ops.get(op) else {
        return Ok(Vec::new());
    };
    let step_link = |producer: &str| href(&format!("/runs/{run_id}/step"), &[("key", producer)]);
    let store = &viewer.app.store;
    let mut shown = Vec::new();
    for (name, input) in &spec.inputs {
        let markup = match input {
            InputSpec::Value(literal) => html! { pre { (literal.to_string()) } },
            InputSpec::Map(source) | InputSpec::Zip(source, _) => {
                let (Some((last, outer)), producer) = (keys.split_last(), &source.op) else {
                    continue;
                };
                let step = format!("{producer}{}", brackets(outer));
                let value =
                    store.output_value(run_id, &step, source.output.as_deref(), Some(last))?;
                html! {
                    p { "Mapped from " a.mono href=(step_link(&step)) { (step) } " under key " code { (last) } }
                    (shown_value(value))
                }
            }
            InputSpec::From(source) => {
                // The producer is cloned as deep as this step, or less (a plain input beside
                // mapped ones).
                let mut found = None;
                for depth in (0..=keys.len()).rev() {
                    let step = format!("{}{}", source.op, brackets(&keys[..depth]));
                    if let Some(value) =
                        store.output_value(run_id, &step, source.output.as_deref(), None)?
                    {
                        found = Some((step, value));
                        break;
                    }
                }
                match found {
                    Some((step, value)) => html! {
                        p { "From " a.mono href=(step_link(&step)) { (step) } }
                        (shown_value(Some(value)))
                    },
                    None => html! { p { "From " (source.op) ": not recorded" } },
                }
            }
            InputSpec::Collect(source, _) => html! {
                p { "Collected from every value of "
                    a href=(href(&format!("/runs/{run_id}/steps"), &[("op", &source.op)])) { (source.op) } }
            },
            InputSpec::Failures(source) => html! {
                p { "The failed clones of "
                    a href=(href(&format!("/runs/{run_id}/steps"), &[("op", &source.op)])) { (source.op) } }
            },
        };
        shown.push((name.clone(), markup));
    }
    Ok(shown)
}

fn brackets(keys: &[&str]) -> String {
    keys.iter().map(|k| format!("[{k}]")).collect()
}

fn shown_value(value: Option<Vec<u8>>) -> Markup {
    match value {
        Some(bytes) => html! { pre { (json(&value::to_json(&bytes), VALUE_LIMIT)) } },
        None => html! { p { "not recorded" } },
    }
}

/// One line about an event.
fn detail(kind: &EventKind<'_>) -> String {
    match kind {
        EventKind::RunStart { job } => format!("job {job}"),
        EventKind::StepStart { attempt } | EventKind::StepRestarted { attempt } => {
            format!("attempt {attempt}")
        }
        EventKind::StepOutput {
            output,
            mapping_key,
            value,
            ..
        } => match mapping_key {
            Some(key) => format!("{output}[{key}] = {}", value::preview(value)),
            None => format!("{output} = {}", value::preview(value)),
        },
        EventKind::StepSuccess { duration_ms } => format!("in {}", took(duration_ms / 1e3)),
        EventKind::StepFailure {
            error_kind, error, ..
        } => {
            let kind = serde_json::to_value(error_kind).unwrap_or_default();
            format!(
                "{}: {}",
                kind.as_str().unwrap_or_default(),
                first_line(error)
            )
        }
        EventKind::StepUpForRetry {
            error,
            attempt,
            delay_ms,
            ..
        } => format!(
            "attempt {attempt} failed ({}); again in {}",
            first_line(error),
            took(delay_ms / 1e3)
        ),
        EventKind::StepSkipped { reason } => reason.to_string(),
        EventKind::Logs { level, message } => format!("{level}: {message}"),
        EventKind::AssetMaterialization(_)
        | EventKind::AssetObservation(_)
        | EventKind::StepExpectationResult(_) => kind
            .user_event_line()
            .map(|(what, text)| format!("{what}: {text}"))
            .unwrap_or_default(),
        EventKind::RunSuccess { duration_ms, .. } | EventKind::RunCanceled { duration_ms, .. } => {
            format!("after {}", took(duration_ms / 1e3))
        }
        EventKind::RunFailure { failed_steps, .. } => {
            format!("failed steps: {}", failed_steps.join(", "))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    step: String,
    after: Option<i64>,
}

pub async fn log(
    viewer: Viewer,
    Path(id): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Markup, WebError> {
    viewer.app.app.store().run(&id)?;
    if !query.kind.is_empty() && !crate::events::names().contains(&query.kind.as_str()) {
        return Err(WebError::new(
            StatusCode::BAD_REQUEST,
            format!("unknown event `{}`", query.kind),
        ));
    }
    let kinds = [query.kind.as_str()];
    let filter = EventFilter {
        step: (!query.step.is_empty()).then_some(query.step.as_str()),
        kinds: if query.kind.is_empty() { &[] } else { &kinds },
        after: query.after.unwrap_or(-1),
        limit: Some(LOG_PAGE),
        ..EventFilter::default()
    };
    let events = viewer.app.store.event_page(&id, &filter)?;
    let base = format!("/runs/{id}/log");
    let step_base = format!("/runs/{id}/step");
    let body = html! {
        h1 { "Event log of run " a.mono href={"/runs/" (id)} { (id) } }
        form.filters method="get" action=(base) {
            (choose("kind", "Event", crate::events::names().iter().copied(), &query.kind))
            label for="step" { "Step (and its clones)" }
            input #step name="step" type="search" value=(query.step);
            button type="submit" { "Filter" }
        }
        table.log {
            thead { tr { th scope="col" { "#" } th scope="col" { "Time" } th scope="col" { "Event" } th scope="col" { "Step" } th scope="col" { "Detail" } } }
            tbody {
                @if events.is_empty() { tr { td colspan="5" { "No events here." } } }
                @for (seq, event) in &events {
                    tr {
                        td { (seq) }
                        td { (when(event.timestamp)) }
                        td { (event.kind.name()) }
                        td { @if let Some(step) = &event.step_key { a.mono href=(href(&step_base, &[("key", step)])) { (step) } } }
                        td { (detail(&event.kind)) }
                    }
                }
            }
        }
        @if events.len() == LOG_PAGE {
            @if let Some((last, _)) = events.last() {
                p { a rel="next" href=(href(&base, &[("kind", &query.kind), ("step", &query.step), ("after", &last.to_string())])) { "Later events" } }
            }
        }
    };
    Ok(framed(&viewer, &format!("Events of {id}"), body))
}

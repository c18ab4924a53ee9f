//! A run: its graph and per-op counts (live while it runs), its final output, and the buttons
//! that cancel, resume or re-execute it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::Stream;
use maud::{Markup, html};
use serde::Deserialize;

use super::format::{VALUE_LIMIT, href, json, status, took, when};
use super::tally::{State as StepState, Tally};
use super::{Frame, SameOrigin, Server, Viewer, WebError, framed, graph_svg, live_events};
use crate::job::Job;
use crate::store::{RunRecord, RunStatus, RunStore};

/// How often a live run page looks for new events.
const LIVE_EVERY: Duration = Duration::from_millis(400);

/// The job run `id` executes (the ops it selected), from its snapshot.
pub fn job_of(viewer: &Viewer, run: &RunRecord) -> Result<Option<Job>, WebError> {
    let Some(snapshot) = viewer.app.store.snapshot(&run.id)? else {
        return Ok(None);
    };
    Ok(Some(crate::app::executed_job(&snapshot)?))
}

pub async fn page(
    State(server): State<Arc<Server>>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Markup, WebError> {
    let run = viewer.app.app.store().run(&id)?;
    let job = job_of(&viewer, &run)?;
    let tally = server.tallies.of(&viewer.app.store, &run)?;
    let live = live_fragment(job.as_ref(), &tally, &run);
    let failed = tally.total().get(StepState::Failed);
    // Read only for a run with failures: finding them is one pass over its events.
    let failures = match failed {
        0 => None,
        n => Some(super::steps_page::failures(&viewer, &run, n)?),
    };
    let outputs = match run.status {
        RunStatus::Running => None,
        _ => Some(
            viewer
                .app
                .app
                .final_outputs(&id)
                .map(|value| json(&value, VALUE_LIMIT))
                .unwrap_or_else(|err| format!("cannot read the outputs: {err}")),
        ),
    };
    let running = run.status == RunStatus::Running;
    let body = html! {
        h1 { "Run " span.mono { (run.id) } }
        dl.facts {
            dt { "Job" } dd { (run.job_name) }
            dt { "Started" } dd { (when(run.started)) }
            dt { "Duration" } dd { @if let Some(end) = run.finished { (took(end - run.started)) } @else { "running" } }
            @if let Some(parent) = &run.parent {
                dt { "Re-executes" } dd { a.mono href={"/runs/" (parent)} { (parent) } }
            }
        }
        (actions(&run))
        section aria-labelledby="graph-heading" {
            h2 #graph-heading { "Steps by op" }
            div #live data-live={"/runs/" (run.id) "/live"} data-reload-on-end[running] { (live) }
            p {
                a href={"/runs/" (run.id) "/steps"} { "All steps" } " · "
                a href={"/runs/" (run.id) "/steps?status=failed"} { "Failed steps" } " · "
                a href={"/runs/" (run.id) "/log"} { "Event log" }
            }
        }
        @if let Some(failures) = failures { (failures) }
        @if let Some(outputs) = outputs {
            section aria-labelledby="output-heading" {
                h2 #output-heading { "Output" }
                pre #output { (outputs) }
            }
        }
    };
    Ok(framed(&viewer, &format!("Run {}", run.id), body))
}

fn actions(run: &RunRecord) -> Markup {
    let base = format!("/runs/{}", run.id);
    html! {
        section.actions aria-label="Actions" {
            @if run.status == RunStatus::Running {
                form.inline method="post" action={(base) "/cancel"} {
                    button #cancel type="submit" { "Cancel" }
                }
            } @else {
                @if run.status != RunStatus::Success {
                    form.inline method="post" action={(base) "/resume"} {
                        button #resume type="submit" { "Resume" }
                    }
                    form.inline method="post" action={(base) "/reexecute"} {
                        input type="hidden" name="from_failure" value="true";
                        button #reexecute-from-failure type="submit" { "Re-execute from failure" }
                    }
                }
                form.inline method="post" action={(base) "/reexecute"} {
                    label for="select" { "Re-execute selection" }
                    input #select name="select" type="text" required placeholder="op, op+, *op" ;
                    button type="submit" { "Re-execute" }
                }
            }
        }
    }
}

/// The part of the page that live updates replace: status, graph (of `job`, the run's),
/// counts per op.
fn live_fragment(job: Option<&Job>, tally: &Tally, run: &RunRecord) -> Markup {
    html! {
        p { "Status: " span #run-status { (status(run.status)) } }
        @if let Some(job) = job {
            div.graph-frame { (graph_svg::render(job, tally, &run.id, run.status)) }
        }
        table.ops {
            caption.visually-hidden { "Steps per op and state" }
            thead { tr {
                th scope="col" { "Op" }
                @for state in StepState::ALL { th scope="col" { (state.name()) } }
                th scope="col" { "total" }
            } }
            tbody {
                @for (name, op) in &tally.ops {
                    tr data-op=(name) {
                        th scope="row" { a href=(href(&format!("/runs/{}/steps", run.id), &[("op", name)])) { (name) } }
                        @for state in StepState::ALL {
                            td data-state=(state.name()) { (op.counts.get(state)) }
                        }
                        td data-state="total" { (op.counts.total()) }
                    }
                }
            }
        }
    }
}

/// The live part of the page again whenever it changes, until the run is over.
pub async fn live(
    State(server): State<Arc<Server>>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    let run = viewer.app.app.store().run(&id)?;
    // What a run executes never changes: read once per stream.
    let job = job_of(&viewer, &run)?;
    Ok(live_events(
        server,
        viewer,
        LIVE_EVERY,
        move |server, viewer| {
            match viewer.app.app.store().run(&id) {
                Ok(run) => Frame {
                    html: match server.tallies.of(&viewer.app.store, &run) {
                        Ok(tally) => live_fragment(job.as_ref(), &tally, &run).into_string(),
                        Err(err) => WebError::from(err).0.message,
                    },
                    last: run.status != RunStatus::Running,
                },
                // Deleted meanwhile.
                Err(_) => Frame {
                    html: String::new(),
                    last: true,
                },
            }
        },
    ))
}

pub async fn cancel(
    viewer: Viewer,
    _: SameOrigin,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    viewer.app.cancel(&id)?;
    Ok(Redirect::to(&format!("/runs/{id}")).into_response())
}

pub async fn resume(
    State(server): State<Arc<Server>>,
    viewer: Viewer,
    _: SameOrigin,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let run_id = server.resume(&viewer.app, &id).await?;
    Ok(Redirect::to(&format!("/runs/{run_id}")).into_response())
}

#[derive(Deserialize)]
pub struct ReexecuteForm {
    #[serde(default)]
    from_failure: bool,
    #[serde(default)]
    select: String,
}

pub async fn reexecute(
    State(server): State<Arc<Server>>,
    viewer: Viewer,
    _: SameOrigin,
    Path(id): Path<String>,
    Form(form): Form<ReexecuteForm>,
) -> Result<Response, WebError> {
    let select: Vec<String> = form
        .select
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if !form.from_failure && select.is_empty() {
        return Err(WebError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "name the steps to re-execute (e.g. `op`, `op+`, `*op`)",
        ));
    }
    let run_id = server.reexecute(&viewer.app, &id, select).await?;
    Ok(Redirect::to(&format!("/runs/{run_id}")).into_response())
}

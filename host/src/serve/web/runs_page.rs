//! The list of runs: status, job, start, duration and step counts, filtered by status and job,
//! kept current by server-sent events while the page is open.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, Sse};
use futures_util::Stream;
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::format::{choose, status, took, when};
use super::tally::State as StepState;
use super::{Frame, Server, Viewer, WebError, framed, live_events};
use crate::store::RunStatus;

/// Runs a page lists unless asked for more.
const SHOWN: usize = 50;

/// Runs a page lists at most.
const MOST: usize = 1000;

/// How often a live list looks for changes.
const LIVE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Filter {
    #[serde(default)]
    status: String,
    #[serde(default)]
    job: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<usize>,
}

impl Filter {
    fn status(&self) -> Result<Option<RunStatus>, WebError> {
        if self.status.is_empty() {
            return Ok(None);
        }
        RunStatus::named(&self.status.to_uppercase())
            .map(Some)
            .ok_or_else(|| {
                WebError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    format!("unknown run status `{}`", self.status),
                )
            })
    }

    fn query(&self) -> String {
        serde_urlencoded::to_string(self).expect("a filter is a flat query")
    }
}

pub async fn page(
    State(server): State<Arc<Server>>,
    viewer: Viewer,
    Query(filter): Query<Filter>,
) -> Result<Markup, WebError> {
    let rows = rows(&server, &viewer, &filter)?;
    let selected = filter.status.to_uppercase();
    let body = html! {
        h1 { "Runs" }
        form.filters method="get" action="/" {
            (choose("status", "Status", RunStatus::ALL.map(RunStatus::as_str), &selected))
            label for="job" { "Job" }
            input #job name="job" type="search" value=(filter.job);
            button type="submit" { "Filter" }
        }
        table.runs {
            caption.visually-hidden { "Runs, newest first" }
            thead { tr {
                th scope="col" { "Run" } th scope="col" { "Job" } th scope="col" { "Status" }
                th scope="col" { "Started" } th scope="col" { "Duration" } th scope="col" { "Steps" }
            } }
            tbody #runs data-live={"/live/runs?" (filter.query())} { (rows) }
        }
        p { a href={"/?" (Filter { limit: Some(filter.limit.unwrap_or(SHOWN).min(MOST) * 2), ..filter.clone() }.query())} { "Show more" } }
    };
    Ok(framed(&viewer, "Runs", body))
}

/// The table's rows.
fn rows(server: &Server, viewer: &Viewer, filter: &Filter) -> Result<Markup, WebError> {
    let wanted = filter.status()?;
    let runs = viewer.app.app.runs()?;
    let shown = runs
        .iter()
        .filter(|run| wanted.is_none_or(|status| run.status == status))
        .filter(|run| filter.job.is_empty() || run.job_name.contains(filter.job.as_str()))
        .take(filter.limit.unwrap_or(SHOWN).min(MOST));
    let mut rows = Vec::new();
    for run in shown {
        let total = server.tallies.of(&viewer.app.store, run)?.total();
        rows.push((run, total));
    }
    Ok(html! {
        @if rows.is_empty() {
            tr { td colspan="6" { "No runs yet. Submit one with `host run` (or the API)." } }
        }
        @for (run, total) in rows {
            tr data-run=(run.id) {
                td { a.mono href={"/runs/" (run.id)} { (run.id) } }
                td { (run.job_name) }
                td { (status(run.status)) }
                td { (when(run.started)) }
                td { @if let Some(end) = run.finished { (took(end - run.started)) } @else { "…" } }
                td.counts {
                    @for state in StepState::ALL {
                        @let n = total.get(state);
                        @if n > 0 {
                            span class={"count " (state.label(run.status))} title=(state.label(run.status)) {
                                (n) " " (state.label(run.status))
                            }
                            " "
                        }
                    }
                }
            }
        }
    })
}

/// The rows again whenever they change.
pub async fn live(
    State(server): State<Arc<Server>>,
    viewer: Viewer,
    Query(filter): Query<Filter>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    filter.status()?;
    Ok(live_events(
        server,
        viewer,
        LIVE_EVERY,
        move |server, viewer| {
            let html = rows(server, viewer, &filter)
                .map(Markup::into_string)
                .unwrap_or_else(|err| err.0.message);
            Frame { html, last: false }
        },
    ))
}

//! `/v1/runs`: submit a job, follow its events, read its outputs, cancel, re-execute, delete.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api_error::{ApiError, too_large};
use super::auth::Caller;
use super::{Config, Server};
use crate::app::{Settings, StepSummary, Uploaded};
use crate::inputs::InputValues;
use crate::job::tags::Tags;
use crate::snapshot::Launch;
use crate::store::{RunRecord, RunStatus};

/// Events read from the store per page of `/events`.
const EVENTS_PAGE: usize = 1000;

/// How often `/events?follow=true` looks for new events while its run goes on (it also looks
/// as soon as any run ends).
const FOLLOW_POLL: Duration = Duration::from_millis(200);

pub fn routes(config: &Config) -> Router<Arc<Server>> {
    Router::new()
        .route("/v1/runs", get(list).post(submit))
        .route("/v1/runs/{id}", get(show).delete(remove))
        .route("/v1/runs/{id}/events", get(events))
        .route("/v1/runs/{id}/outputs", get(outputs))
        .route("/v1/runs/{id}/outputs/{step_key}", get(output))
        .route("/v1/runs/{id}/cancel", post(cancel))
        .route("/v1/runs/{id}/reexecute", post(reexecute))
        .layer(DefaultBodyLimit::max(config.max_request_size))
}

/// `POST /v1/runs`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Submission {
    job: String,
    config: Option<String>,
    /// Tags of the run, over the job's and the run config's.
    #[serde(default)]
    tags: Tags,
    /// The ops to run, in selection syntax (`host run --select`); all when empty.
    #[serde(default)]
    select: Vec<String>,
    /// Values for op inputs by op and input, as `host run --input` gives them.
    #[serde(default)]
    inputs: IndexMap<String, IndexMap<String, Value>>,
}

impl Submission {
    /// The launch the submission asks for; a value TOML cannot hold is a bad request.
    fn launch(&self) -> Result<Launch, ApiError> {
        let mut inputs = InputValues::new();
        for (op, values) in &self.inputs {
            for (input, value) in values {
                let value = crate::inputs::from_json(value).map_err(|problem| {
                    ApiError::bad_request(format!("input `{input}` of op `{op}`: {problem}"))
                })?;
                inputs
                    .entry(op.clone())
                    .or_default()
                    .insert(input.clone(), value);
            }
        }
        Ok(Launch {
            select: self.select.clone(),
            inputs,
        })
    }
}

/// `POST /v1/runs/{id}/reexecute`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReexecuteRequest {
    #[serde(default)]
    from_failure: bool,
    #[serde(default)]
    select: Vec<String>,
}

/// Reads a JSON request body, refusing what is too large or malformed with an API error.
fn json_body<T: serde::de::DeserializeOwned>(
    server: &Server,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|r| too_large(r, "request", server.config.max_request_size))?;
    serde_json::from_slice(&bytes)
        .map_err(|err| ApiError::bad_request(format!("invalid request body: {err}")))
}

async fn submit(
    State(server): State<Arc<Server>>,
    Caller(tenant): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let submission: Submission = json_body(&server, body)?;
    let resolve = |name: &str| {
        Ok(tenant
            .store
            .tenant_component(&tenant.tenant.name, name)?
            .map(|entry| entry.digest))
    };
    let job = Uploaded {
        launch: submission.launch()?,
        job_text: submission.job,
        config_text: submission.config,
        tags: submission.tags,
        resolve: &resolve,
    };
    let settings = Settings::default();
    let run_id = server
        .start(&tenant, tenant.app.submit_uploaded(&job, &settings))
        .await?;
    Ok(created(&run_id))
}

/// `201 {"run_id": ...}` for a run just launched.
fn created(run_id: &str) -> Response {
    (StatusCode::CREATED, Json(json!({ "run_id": run_id }))).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<RunStatus>,
    limit: Option<usize>,
}

async fn list(
    Caller(tenant): Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|err| ApiError::bad_request(err.body_text()))?;
    let runs: Vec<Value> = tenant
        .app
        .runs()?
        .iter()
        .filter(|run| query.status.is_none_or(|status| run.status == status))
        .take(query.limit.unwrap_or(usize::MAX))
        .map(run_json)
        .collect();
    Ok(Json(json!({ "runs": runs })))
}

fn run_json(run: &RunRecord) -> Value {
    json!({
        "run_id": run.id,
        "job": run.job_name,
        "status": run.status,
        "parent": run.parent,
        "started": run.started,
        "finished": run.finished,
        "duration_s": run.finished.map(|end| end - run.started),
        "tags": run.tags,
    })
}

async fn show(
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let (run, steps) = tenant.app.run(&id)?;
    let mut body = run_json(&run);
    body["select"] = json!(tenant.app.launch_of(&id)?.select);
    body["steps"] = step_counts(&steps);
    Ok(Json(body))
}

/// Steps per op and status: `{"op": {"SUCCESS": 3, "FAILURE": 1}}`, clones counted under their
/// op, with each op's total duration.
fn step_counts(steps: &[StepSummary]) -> Value {
    let mut ops: IndexMap<&str, IndexMap<String, u64>> = IndexMap::new();
    for step in steps {
        let op = step.step_key.split('[').next().unwrap_or(&step.step_key);
        *ops.entry(op)
            .or_default()
            .entry(step.status.to_string())
            .or_default() += 1;
    }
    serde_json::to_value(ops).expect("counts serialize")
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    #[serde(default)]
    follow: bool,
}

/// The run's events as JSON Lines, as `host run --json` writes them; with `follow`, the
/// response stays open and carries new events until the run ends.
async fn events(
    State(server): State<Arc<Server>>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|err| ApiError::bad_request(err.body_text()))?;
    // Answers 404 before the stream starts.
    tenant.app.store().run(&id)?;
    let follow = query.follow;
    let stream = futures_util::stream::unfold(Some(-1_i64), move |after| {
        let (server, tenant, id) = (server.clone(), tenant.clone(), id.clone());
        async move {
            let mut after = after?;
            loop {
                // Read before the page: a run seen ended has all its events committed.
                let ended = !follow
                    || server.is_stopping()
                    || tenant
                        .app
                        .store()
                        .run(&id)
                        .map_or(true, |run| run.status != RunStatus::Running);
                let page = match tenant.app.store().events_after(&id, after, EVENTS_PAGE) {
                    Ok(page) => page,
                    Err(err) => {
                        let line =
                            json!({"error": {"kind": "internal", "message": err.to_string()}});
                        return Some((Ok::<_, Infallible>(Bytes::from(format!("{line}\n"))), None));
                    }
                };
                if let Some((last, _)) = page.last() {
                    after = *last;
                    let mut lines = String::new();
                    for (_, event) in &page {
                        lines.push_str(&serde_json::to_string(event).expect("events serialize"));
                        lines.push('\n');
                    }
                    return Some((Ok(Bytes::from(lines)), Some(after)));
                }
                if ended {
                    return None;
                }
                tokio::select! {
                    () = tokio::time::sleep(FOLLOW_POLL) => {}
                    () = server.some_run_ended() => {}
                }
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The run's final outputs, as `host run` prints them.
async fn outputs(
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(tenant.app.final_outputs(&id)?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OutputQuery {
    output: Option<String>,
}

/// One step's output, as `host output` prints it.
async fn output(
    Caller(tenant): Caller,
    Path((id, step_key)): Path<(String, String)>,
    query: Result<Query<OutputQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|err| ApiError::bad_request(err.body_text()))?;
    Ok(Json(tenant.app.output(
        &id,
        &step_key,
        query.output.as_deref(),
    )?))
}

async fn cancel(
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    tenant.cancel(&id)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "run_id": id, "canceling": true })),
    ))
}

async fn reexecute(
    State(server): State<Arc<Server>>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: ReexecuteRequest = json_body(&server, body)?;
    if !request.from_failure && request.select.is_empty() {
        return Err(ApiError::bad_request(
            "give `\"from_failure\": true`, a non-empty `select`, or both",
        ));
    }
    let run_id = server.reexecute(&tenant, &id, request.select).await?;
    Ok(created(&run_id))
}

async fn remove(
    Caller(tenant): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    tenant.app.store().delete_run(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

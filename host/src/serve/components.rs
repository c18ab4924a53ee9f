//! `/v1/components`: a tenant's uploaded components, by the names its jobs use.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

use super::api_error::{ApiError, too_large};
use super::auth::Caller;
use super::{Config, Server};

pub fn routes(config: &Config) -> Router<Arc<Server>> {
    Router::new().route("/v1/components", get(list)).route(
        "/v1/components/{name}",
        get(show)
            .put(upload)
            .delete(remove)
            .layer(DefaultBodyLimit::max(config.max_component_size)),
    )
}

/// A component name: what a job's `[components.x] name` may say, never a path.
fn checked(name: &str) -> Result<(), ApiError> {
    crate::name::check(name)
        .map_err(|err| ApiError::bad_request(format!("invalid component name `{name}`: {err}")))
}

async fn upload(
    State(server): State<Arc<Server>>,
    Caller(tenant): Caller,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    checked(&name)?;
    let bytes = body
        .map_err(|rejection| too_large(rejection, "component", server.config.max_component_size))?;
    // A new version of a name replaces the old one's bytes.
    let replaced = tenant
        .store
        .tenant_component(&tenant.tenant.name, &name)?
        .map_or(0, |old| old.size);
    tenant.check_storage((bytes.len() as u64).saturating_sub(replaced))?;
    let ops = tenant.app.describe_bytes(&name, &bytes).await?;
    let ops = serde_json::to_value(&ops).expect("op descriptions serialize");
    let entry = tenant
        .store
        .put_component(&tenant.tenant.name, &name, &bytes, &ops)?;
    tracing::info!(component = %name, digest = %entry.digest, "component uploaded");
    Ok((StatusCode::CREATED, Json(entry)))
}

async fn list(Caller(tenant): Caller) -> Result<impl IntoResponse, ApiError> {
    let entries = tenant.store.tenant_components(&tenant.tenant.name)?;
    Ok(Json(serde_json::json!({ "components": entries })))
}

async fn show(
    Caller(tenant): Caller,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    checked(&name)?;
    match tenant.store.tenant_component(&tenant.tenant.name, &name)? {
        Some(entry) => Ok(Json(entry)),
        None => Err(no_such(&name)),
    }
}

async fn remove(
    Caller(tenant): Caller,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    checked(&name)?;
    if tenant.store.delete_component(&tenant.tenant.name, &name)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_such(&name))
    }
}

fn no_such(name: &str) -> ApiError {
    ApiError::not_found(format!("no component `{name}`"))
}

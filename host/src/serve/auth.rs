//! Who is calling: the tenant named by the request's bearer token, and a request id that the
//! server's logs and the response carry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

use super::api_error::ApiError;
use super::{Server, TenantApp};
use crate::tenant;

/// The calling tenant, authenticated.
pub struct Caller(pub Arc<TenantApp>);

impl FromRequestParts<Arc<Server>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        server: &Arc<Server>,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            // The scheme is case-insensitive (RFC 9110).
            .and_then(|(scheme, token)| {
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then_some(token.trim())
            })
            .ok_or_else(ApiError::unauthorized)?;
        tenant_of(server, token)?
            .map(Caller)
            .ok_or_else(ApiError::unauthorized)
    }
}

/// The tenant whose token is `token`, if any.
pub fn tenant_of(server: &Server, token: &str) -> Result<Option<Arc<TenantApp>>, ApiError> {
    let Some(name) = tenant::token_tenant(token) else {
        return Ok(None);
    };
    let found = server.store.tenant_with_hash(name)?;
    // An unknown tenant costs a hash comparison too, so that timing does not tell which
    // tenant names exist.
    let hash = found.as_ref().map_or(UNKNOWN, |(_, hash)| hash.as_str());
    let matches = tenant::token_matches(token, hash);
    Ok(match found {
        Some((tenant, _)) if matches => {
            tracing::Span::current().record("tenant", tenant.name.as_str());
            Some(server.tenant_app(tenant))
        }
        _ => None,
    })
}

/// A hash no token has: BLAKE3 of nothing, which no `shoal.` token hashes to.
const UNKNOWN: &str = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

/// Gives every request an id (`x-request-id`), logs it with its outcome.
pub async fn request_id(request: Request, next: Next) -> Response {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = format!(
        "{:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        tenant = tracing::field::Empty,
    );
    async move {
        let started = std::time::Instant::now();
        let mut response = next.run(request).await;
        tracing::info!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "request"
        );
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert("x-request-id", value);
        }
        response
    }
    .instrument(span)
    .await
}

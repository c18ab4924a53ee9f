//! Errors as the API answers them: `{"error": {"kind": ..., "message": ...}}` with the status
//! code that says whose fault it is.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppError;
use crate::store::StoreError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    /// Seconds, for `429`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid `Authorization: Bearer TOKEN` header is required (`host tenant add`)",
        )
    }
}

/// `error` and its causes, as the CLI prints them on one line each, joined.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> ApiError {
        let message = chain(&err);
        let (status, kind) = match &err {
            AppError::Store(store) => return store_error(store, message),
            AppError::NoSuchStep { .. } | AppError::NoOutput { .. } => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            // Names the process and host: not for tenants.
            AppError::RunsElsewhere { run, .. } => {
                return ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("run `{run}` is running"),
                );
            }
            AppError::NotRunning { .. } => (StatusCode::CONFLICT, "conflict"),
            AppError::Policy(_) => (StatusCode::BAD_REQUEST, "above_quota"),
            AppError::Load(_) => (StatusCode::BAD_REQUEST, "invalid_component"),
            AppError::MissingComponent { .. }
            | AppError::UnrecordedComponent { .. }
            | AppError::NoSnapshot(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            _ => (StatusCode::BAD_REQUEST, "invalid_job"),
        };
        ApiError::new(status, kind, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        let message = chain(&err);
        store_error(&err, message)
    }
}

fn store_error(err: &StoreError, message: String) -> ApiError {
    let (status, kind) = match err {
        StoreError::NoSuchRun(_) => (StatusCode::NOT_FOUND, "not_found"),
        // Names the process and host: not for tenants.
        StoreError::StillRunning { run, .. } => {
            return ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("run `{run}` is still running"),
            );
        }
        StoreError::AlreadySucceeded(_) => (StatusCode::CONFLICT, "conflict"),
        _ => {
            tracing::error!(error = %message, "run store error");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    };
    ApiError::new(status, kind, message)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"kind": self.kind, "message": self.message}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Turns an error answer that is not JSON (axum's own, e.g. for a path that is not UTF-8) into
/// the API's error shape, keeping its status.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    // JSON errors are the API's own; the web view's pages carry their errors in HTML.
    let formatted = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| {
            t.as_bytes().starts_with(b"application/json") || t.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || formatted {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 << 10)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_lowercase())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let kind = if status.is_server_error() {
        "internal"
    } else {
        "bad_request"
    };
    ApiError::new(status, kind, message).into_response()
}

/// A body axum refused (too large, unreadable), as an API error.
impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
        let status = rejection.status();
        let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "bad_request"
        };
        ApiError::new(status, kind, rejection.body_text().to_lowercase())
    }
}

/// A body refused for its size names the limit; other refusals say what axum said.
pub fn too_large(
    rejection: axum::extract::rejection::BytesRejection,
    what: &str,
    limit: usize,
) -> ApiError {
    let err = ApiError::from(rejection);
    if err.status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            err.status,
            err.kind,
            format!(
                "the {what} is larger than this server accepts ({})",
                bytesize::ByteSize(limit as u64)
            ),
        )
    } else {
        err
    }
}

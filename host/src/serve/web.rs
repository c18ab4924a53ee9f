//! The web view: server-rendered HTML pages (maud) over the same application layer and store
//! as the API, with a few lines of JavaScript for live updates by server-sent events. Every
//! asset is compiled into the binary.
//!
//! With tenants (`host serve`), a tenant logs in with its API token, which the browser keeps
//! in a `Secure`, `HttpOnly`, `SameSite=Strict` cookie; every page is scoped to that tenant
//! exactly as the API is. Locally (`host ui`), there is no login: the server listens on
//! loopback only and answers only requests addressed to a loopback name, so that a web page
//! cannot reach it through DNS rebinding. Forms that change anything are also refused unless
//! the browser says they come from the view itself (`Origin`).

mod components_page;
mod format;
mod graph_svg;
mod login;
mod run_page;
mod runs_page;
mod steps_page;
mod tally;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use maud::{DOCTYPE, Markup, html};

use super::api_error::ApiError;
use super::{Config, Server, TenantApp};
pub use tally::Tallies;

/// The cookie that carries a tenant's token.
const COOKIE: &str = "shoal_token";

pub fn routes(config: &Config) -> Router<Arc<Server>> {
    Router::new()
        .route("/", get(runs_page::page))
        .route("/live/runs", get(runs_page::live))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/runs/{id}", get(run_page::page))
        .route("/runs/{id}/live", get(run_page::live))
        .route("/runs/{id}/cancel", post(run_page::cancel))
        .route("/runs/{id}/resume", post(run_page::resume))
        .route("/runs/{id}/reexecute", post(run_page::reexecute))
        .route("/runs/{id}/steps", get(steps_page::steps))
        .route("/runs/{id}/step", get(steps_page::step))
        .route("/runs/{id}/log", get(steps_page::log))
        .route("/components", get(components_page::page))
        .route("/assets/shoal.css", get(stylesheet))
        .route("/assets/shoal.js", get(script))
        .layer(axum::extract::DefaultBodyLimit::max(
            config.max_request_size,
        ))
        .layer(axum::middleware::map_response(page_headers))
}

async fn stylesheet() -> impl IntoResponse {
    asset("text/css", include_str!("web/assets/shoal.css"))
}

async fn script() -> impl IntoResponse {
    asset("text/javascript", include_str!("web/assets/shoal.js"))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
}

/// Who looks: a tenant logged in, or the local user of `host ui`.
#[derive(Clone)]
pub struct Viewer {
    pub app: Arc<TenantApp>,
    /// The token the tenant logged in with; none for the local user.
    token: Option<String>,
}

impl Viewer {
    /// The tenant's name, or `None` for the local user.
    fn tenant(&self) -> Option<&str> {
        self.token.as_ref().map(|_| self.app.tenant.name.as_str())
    }

    /// Whether the login still holds: the token was not rotated, nor its tenant removed or
    /// added again. Live streams ask before each update.
    fn still_allowed(&self, server: &Server) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        matches!(super::auth::tenant_of(server, token), Ok(Some(app)) if Arc::ptr_eq(&app, &self.app))
    }
}

/// A live region's content now, and whether it is final.
pub struct Frame {
    pub html: String,
    pub last: bool,
}

/// Server-sent events for a live region: `html` whenever what `render` gives changes (looked
/// at every `every`, and at once when a run ends), then `end` once it is final, the login
/// lapses or the server stops (`end` carries data: browsers drop an event without any).
fn live_events<F>(
    server: Arc<Server>,
    viewer: Viewer,
    every: Duration,
    render: F,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    F: Fn(&Server, &Viewer) -> Frame + Send + Sync + 'static,
{
    let render = Arc::new(render);
    let stream = futures_util::stream::unfold(Some((String::new(), true)), move |state| {
        let (server, viewer, render) = (server.clone(), viewer.clone(), render.clone());
        async move {
            let (sent, mut first) = state?;
            let end = || Event::default().event("end").data("end");
            loop {
                if !first {
                    tokio::select! {
                        () = tokio::time::sleep(every) => {}
                        () = server.some_run_ended() => {}
                    }
                }
                first = false;
                if server.is_stopping() || !viewer.still_allowed(&server) {
                    return Some((Ok(end()), None));
                }
                let frame = render(&server, &viewer);
                if frame.html != sent {
                    let event = Event::default().event("html").data(&frame.html);
                    return Some((Ok(event), Some((frame.html, false))));
                }
                if frame.last {
                    return Some((Ok(end()), None));
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

impl FromRequestParts<Arc<Server>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        server: &Arc<Server>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(local) = &server.local {
            return Ok(Viewer {
                app: local.clone(),
                token: None,
            });
        }
        let token = cookie(&parts.headers, COOKIE);
        let tenant = match token {
            Some(token) => super::auth::tenant_of(server, token)
                .map_err(|err| WebError(err).into_response())?,
            None => None,
        };
        match tenant {
            Some(app) => Ok(Viewer {
                app,
                token: token.map(str::to_string),
            }),
            // Live updates are fetched by script, which cannot follow a login.
            None if parts.uri.path().contains("/live") => {
                Err(WebError::new(StatusCode::UNAUTHORIZED, "log in first").into_response())
            }
            None => Err(Redirect::to("/login").into_response()),
        }
    }
}

/// For `host ui`: refuses every request not addressed to a loopback name (`421`), so that a
/// page elsewhere cannot reach the view through DNS rebinding.
pub async fn loopback_only(request: Request, next: Next) -> Response {
    if addressed_to_loopback(request.headers()) {
        return next.run(request).await;
    }
    WebError::new(
        StatusCode::MISDIRECTED_REQUEST,
        "`host ui` answers only requests addressed to localhost or a loopback address",
    )
    .into_response()
}

/// Keeps pages out of other sites' frames (a click there would post our own forms) and lets
/// them load only this server's script and stylesheet.
pub async fn page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Whether the request's `Host` names a loopback address or `localhost`.
fn addressed_to_loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Refuses a form that does not come from a page of this server: its `Origin` must be the
/// address the request was sent to (browsers send it with every form they post).
pub struct SameOrigin;

impl<S: Send + Sync> FromRequestParts<S> for SameOrigin {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let same = match (header(header::ORIGIN), header(header::HOST)) {
            (Some(origin), Some(host)) => origin
                .split_once("://")
                .is_some_and(|(_, address)| address == host),
            _ => false,
        };
        if same {
            Ok(SameOrigin)
        } else {
            Err(WebError::new(
                StatusCode::FORBIDDEN,
                "this form must be sent from the web view's own pages",
            ))
        }
    }
}

/// An error, as a page.
pub struct WebError(ApiError);

impl WebError {
    fn new(status: StatusCode, message: impl Into<String>) -> WebError {
        WebError(ApiError::new(status, "web", message))
    }
}

impl<E: Into<ApiError>> From<E> for WebError {
    fn from(err: E) -> WebError {
        WebError(err.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let WebError(err) = self;
        let title = err.status.canonical_reason().unwrap_or("Error").to_string();
        let body = html! {
            h1 { (title) }
            p.error role="alert" { (err.message) }
            p { a href="/" { "Back to the runs" } }
        };
        (err.status, layout(&title, None, body)).into_response()
    }
}

/// A page: the navigation (with the tenant's name and a logout button when there is one) and
/// `body`.
fn layout(title: &str, tenant: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Shoal" }
                link rel="stylesheet" href="/assets/shoal.css";
                script src="/assets/shoal.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    nav aria-label="Main" {
                        a.brand href="/" { "Shoal" }
                        a href="/" { "Runs" }
                        a href="/components" { "Components" }
                        @if let Some(tenant) = tenant {
                            span.tenant { "Tenant " strong { (tenant) } }
                            form.inline method="post" action="/logout" {
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// A page for `viewer`.
fn framed(viewer: &Viewer, title: &str, body: Markup) -> Markup {
    layout(title, viewer.tenant(), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_loopback_names_reach_the_local_view() {
        for host in [
            "localhost:7070",
            "127.0.0.1:7070",
            "[::1]:7070",
            "127.0.0.2",
            "LOCALHOST",
        ] {
            assert!(addressed_to_loopback(&headers(&[("host", host)])), "{host}");
        }
        for host in [
            "evil.example:7070",
            "10.0.0.1:7070",
            "localhost.evil.example",
            "",
        ] {
            assert!(
                !addressed_to_loopback(&headers(&[("host", host)])),
                "{host}"
            );
        }
        assert!(!addressed_to_loopback(&HeaderMap::new()));
    }

    #[test]
    fn cookies_are_found_by_exact_name_across_headers() {
        let map = headers(&[
            ("cookie", "other=1; shoal_token_old=x"),
            ("cookie", "theme=dark;shoal_token=shoal.a.b"),
        ]);
        assert_eq!(cookie(&map, COOKIE), Some("shoal.a.b"));
        assert_eq!(cookie(&map, "missing"), None);
    }
}

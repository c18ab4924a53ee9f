//! Logging in with a tenant's API token, and out.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::{COOKIE, SameOrigin, Server, WebError, layout};

/// The login form; `host ui` has none to show.
pub async fn form(State(server): State<Arc<Server>>) -> Response {
    if server.local.is_some() {
        return Redirect::to("/").into_response();
    }
    login_page(None).into_response()
}

fn login_page(problem: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Log in" }
        p { "Log in with your tenant's API token (`host tenant add` printed it)." }
        @if let Some(problem) = problem {
            p.error role="alert" #login-error { (problem) }
        }
        form.login method="post" action="/login" {
            label for="token" { "API token" }
            input #token name="token" type="password" autocomplete="current-password" required;
            button type="submit" { "Log in" }
        }
    };
    layout("Log in", None, body)
}

#[derive(Deserialize)]
pub struct Login {
    token: String,
}

/// Checks the token and keeps it in a cookie scripts cannot read, sent back only over HTTPS
/// (or to localhost) and only by pages of this site.
pub async fn submit(
    State(server): State<Arc<Server>>,
    _: SameOrigin,
    Form(login): Form<Login>,
) -> Result<Response, WebError> {
    let token = login.token.trim();
    // A cookie value cannot hold these; no token does.
    let plain = token
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"' | b'\\'));
    let tenant = match plain {
        true => super::super::auth::tenant_of(&server, token)?,
        false => None,
    };
    if tenant.is_none() {
        let page = login_page(Some(
            "that token is not valid for any tenant of this server",
        ));
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    }
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict");
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response())
}

pub async fn logout(_: SameOrigin) -> Response {
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

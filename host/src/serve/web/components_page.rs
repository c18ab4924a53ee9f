//! The components a viewer can run, with their ops: a tenant's uploads, or, locally, the
//! components the store's runs recorded (described from the compile cache).

use std::collections::HashSet;

use maud::{Markup, html};
use serde_json::Value as Json;

use super::{Viewer, WebError, framed};
use crate::digest::Digest;

/// How many of the newest runs `host ui` looks through for components.
const RUNS_LOOKED_AT: usize = 200;

/// A component as the page lists it.
struct Listed {
    name: String,
    digest: String,
    size: u64,
    ops: Json,
}

pub async fn page(viewer: Viewer) -> Result<Markup, WebError> {
    let listed = match viewer.tenant() {
        Some(tenant) => viewer
            .app
            .store
            .tenant_components(tenant)?
            .into_iter()
            .map(|entry| Listed {
                name: entry.name,
                digest: entry.digest.to_string(),
                size: entry.size,
                ops: entry.ops,
            })
            .collect(),
        None => recorded(&viewer).await?,
    };
    let body = html! {
        h1 { "Components" }
        @if listed.is_empty() {
            p { "No components yet." }
        }
        @for component in &listed {
            section.component aria-labelledby={"component-" (component.name)} {
                h2 id={"component-" (component.name)} { (component.name) }
                p.mono { (component.digest) " · " (bytesize::ByteSize(component.size)) }
                (ops(&component.ops))
            }
        }
    };
    Ok(framed(&viewer, "Components", body))
}

/// The components the newest local runs recorded, by the name their jobs gave them.
async fn recorded(viewer: &Viewer) -> Result<Vec<Listed>, WebError> {
    let app = &viewer.app.app;
    let mut seen = HashSet::new();
    let mut listed = Vec::new();
    for run in app.runs()?.iter().take(RUNS_LOOKED_AT) {
        let Some(snapshot) = app.store().snapshot(&run.id)? else {
            continue;
        };
        for (name, digest) in snapshot.components {
            if !seen.insert(digest) {
                continue;
            }
            let Some(bytes) = app.store().component(&digest)? else {
                continue;
            };
            let ops = match app.describe_bytes(&name, &bytes).await {
                Ok(ops) => serde_json::to_value(ops).expect("op descriptions serialize"),
                Err(err) => Json::String(format!("cannot describe it: {err}")),
            };
            listed.push(Listed {
                name,
                digest: Digest::to_string(&digest),
                size: bytes.len() as u64,
                ops,
            });
        }
    }
    Ok(listed)
}

/// The ops of a component, as `describe` gave them.
fn ops(ops: &Json) -> Markup {
    let Some(list) = ops.as_array() else {
        return html! { p.error { (ops.as_str().unwrap_or("no ops recorded")) } };
    };
    let text = |value: &Json| value.as_str().unwrap_or_default().to_string();
    html! {
        table.component-ops {
            thead { tr { th scope="col" { "Op" } th scope="col" { "Inputs" } th scope="col" { "Outputs" } th scope="col" { "Description" } } }
            tbody {
                @for op in list {
                    tr {
                        th scope="row" { (text(&op["name"])) }
                        td { @for input in op["inputs"].as_array().into_iter().flatten() { code { (text(input)) } " " } }
                        td {
                            @for output in op["outputs"].as_array().into_iter().flatten() {
                                code { (text(&output["name"])) }
                                @if output["dynamic"].as_bool() == Some(true) { " (dynamic)" }
                                " "
                            }
                        }
                        td { (text(&op["description"])) }
                    }
                }
            }
        }
    }
}

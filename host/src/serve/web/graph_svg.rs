//! A run's op graph as SVG: one box per op in columns by distance from the sources, each with
//! its steps counted by state and a bar of their shares; a mapped op sits inside one dashed
//! frame per level of mapping, so nested maps show as nesting. `map` edges are dashed,
//! `collect` edges bold, as in `host graph`.

use std::fmt::Write as _;

use maud::{Markup, PreEscaped, html};

use super::tally::{OpTally, State, Tally};
use crate::job::{InputSpec, Job};
use crate::store::RunStatus;

const WIDTH: i64 = 210;
const HEIGHT: i64 = 74;
/// The margin of each mapping frame around a box.
const FRAME: i64 = 9;
const GAP_X: i64 = 80;
const GAP_Y: i64 = 26;
const BAR_WIDTH: i64 = WIDTH - 20;

/// An edge: producer, consumer, input name, kind.
struct Edge<'a> {
    from: usize,
    to: usize,
    input: &'a str,
    kind: &'static str,
}

fn edges(job: &Job) -> Vec<Edge<'_>> {
    let index = |name: &str| job.ops.get_index_of(name);
    let mut edges = Vec::new();
    for (to, op) in job.ops.values().enumerate() {
        for (input, spec) in &op.inputs {
            let (reference, kind) = match spec {
                InputSpec::From(r) => (r, "from"),
                InputSpec::Map(r) => (r, "map"),
                InputSpec::Zip(r, _) => (r, "zip"),
                InputSpec::Collect(r, _) => (r, "collect"),
                InputSpec::Failures(r) => (r, "failures"),
                InputSpec::Value(_) => continue,
            };
            if let Some(from) = index(&reference.op) {
                edges.push(Edge {
                    from,
                    to,
                    input,
                    kind,
                });
            }
        }
    }
    edges
}

/// Each op's column (longest path from a source) and mapping depth: what the run's steps
/// showed, else what the wiring implies.
fn layout(job: &Job, edges: &[Edge<'_>], tally: &Tally) -> (Vec<usize>, Vec<usize>) {
    let n = job.ops.len();
    let seen: Vec<Option<usize>> = job
        .ops
        .keys()
        .map(|name| tally.ops.get(name).map(|op| op.depth))
        .collect();
    let mut column = vec![0; n];
    let mut depth: Vec<usize> = seen.iter().map(|d| d.unwrap_or(0)).collect();
    // A job is acyclic: n passes settle every longest path.
    for _ in 0..n {
        for edge in edges {
            column[edge.to] = column[edge.to].max(column[edge.from] + 1);
            if seen[edge.to].is_none() {
                let implied = match edge.kind {
                    "map" => depth[edge.from] + 1,
                    "collect" => depth[edge.from].saturating_sub(1),
                    _ => depth[edge.from],
                };
                depth[edge.to] = depth[edge.to].max(implied);
            }
        }
    }
    (column, depth)
}

/// The state that colours an op's box: failures first, then work going on, then done.
fn shade(op: Option<&OpTally>) -> &'static str {
    let Some(op) = op else { return "pending" };
    let counts = &op.counts;
    if counts.get(State::Failed) > 0 {
        "failed"
    } else if counts.get(State::Running) + counts.get(State::Retrying) > 0 {
        "running"
    } else if counts.total() > 0 && counts.get(State::Skipped) == counts.total() {
        "skipped"
    } else if counts.total() > 0 {
        "succeeded"
    } else {
        "pending"
    }
}

/// The graph of `job` with `tally`'s counts, each op linking to its steps in run `run_id`.
pub fn render(job: &Job, tally: &Tally, run_id: &str, status: RunStatus) -> Markup {
    let edges = edges(job);
    let (column, depth) = layout(job, &edges, tally);
    let deepest = depth.iter().copied().max().unwrap_or(0) as i64;
    let cell_w = WIDTH + 2 * FRAME * deepest + GAP_X;
    let cell_h = HEIGHT + 2 * FRAME * deepest + GAP_Y;
    let mut row_of = vec![0i64; job.ops.len()];
    let mut rows_in_column: Vec<i64> = Vec::new();
    for (op, &col) in column.iter().enumerate() {
        if rows_in_column.len() <= col {
            rows_in_column.resize(col + 1, 0);
        }
        row_of[op] = rows_in_column[col];
        rows_in_column[col] += 1;
    }
    let margin = FRAME * deepest + 12;
    // The top-left corner of op `i`'s box.
    let at = |i: usize| {
        (
            margin + column[i] as i64 * cell_w,
            margin + row_of[i] * cell_h,
        )
    };
    let width = margin * 2 + rows_in_column.len() as i64 * cell_w - GAP_X;
    let height = margin * 2 + rows_in_column.iter().copied().max().unwrap_or(1) * cell_h - GAP_Y;
    let summary = job
        .ops
        .keys()
        .map(|name| {
            let total = tally.ops.get(name).map_or(0, |op| op.counts.total());
            format!("{name}: {total} steps")
        })
        .collect::<Vec<_>>()
        .join("; ");
    html! {
        svg.graph xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (width) " " (height)}
            width=(width) height=(height) role="img" aria-labelledby="graph-title" {
            title #graph-title { "Op graph: " (summary) }
            defs {
                marker #arrow viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" {}
                }
            }
            @for edge in &edges {
                @let (fx, fy) = at(edge.from);
                @let (tx, ty) = at(edge.to);
                @let x1 = fx + WIDTH + FRAME * depth[edge.from] as i64;
                @let y1 = fy + HEIGHT / 2;
                @let x2 = tx - FRAME * depth[edge.to] as i64;
                @let y2 = ty + HEIGHT / 2;
                @let mid = (x1 + x2) / 2;
                path class={"edge " (edge.kind)} marker-end="url(#arrow)"
                    d={"M " (x1) " " (y1) " C " (mid) " " (y1) ", " (mid) " " (y2) ", " (x2) " " (y2)} {}
                text.edge-label x=(mid) y=((y1 + y2) / 2 - 6) text-anchor="middle" {
                    (edge.input) " (" (edge.kind) ")"
                }
            }
            @for (i, name) in job.ops.keys().enumerate() {
                @let (x, y) = at(i);
                @let op = tally.ops.get(name);
                (node(name, op, depth[i], x, y, run_id, status))
            }
        }
    }
}

fn node(
    name: &str,
    op: Option<&OpTally>,
    depth: usize,
    x: i64,
    y: i64,
    run_id: &str,
    status: RunStatus,
) -> Markup {
    let counts = op.map(|op| op.counts).unwrap_or_default();
    let total = counts.total();
    let mut described = format!("{name}: {total} steps");
    for state in State::ALL {
        let n = counts.get(state);
        if n > 0 {
            let _ = write!(described, ", {n} {}", state.label(status));
        }
    }
    let href = super::format::href(&format!("/runs/{run_id}/steps"), &[("op", name)]);
    let mut bar = String::new();
    let mut offset = 0;
    for state in State::ALL {
        let n = counts.get(state);
        if n == 0 || total == 0 {
            continue;
        }
        let share = (BAR_WIDTH as u64 * n).div_ceil(total) as i64;
        let share = share.min(BAR_WIDTH - offset);
        let _ = write!(
            bar,
            r#"<rect class="bar {}" x="{}" y="{}" width="{share}" height="8"></rect>"#,
            state.label(status),
            x + 10 + offset,
            y + HEIGHT - 16,
        );
        offset += share;
    }
    html! {
        a href=(href) aria-label=(described) {
            g.node data-op=(name) data-total=(total) {
                title { (described) }
                @for level in (1..=depth as i64).rev() {
                    rect.frame x=(x - FRAME * level) y=(y - FRAME * level)
                        width=(WIDTH + 2 * FRAME * level) height=(HEIGHT + 2 * FRAME * level) rx="8" {}
                }
                rect class={"box " (shade(op))} x=(x) y=(y) width=(WIDTH) height=(HEIGHT) rx="6" {}
                text.op-name x=(x + 10) y=(y + 20) { (name) ("[?]".repeat(depth)) }
                text.counts x=(x + 10) y=(y + 40) {
                    @for state in State::ALL {
                        @let n = counts.get(state);
                        @if n > 0 {
                            tspan class={"count " (state.label(status))} data-state=(state.name()) { (n) " " (state.label(status)) }
                            "  "
                        }
                    }
                    @if total == 0 { tspan.count.pending { "not started" } }
                }
                rect.bar-track x=(x + 10) y=(y + HEIGHT - 16) width=(BAR_WIDTH) height="8" {}
                (PreEscaped(bar))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &str) -> Job {
        crate::job::LoadedJob::parse_text_only(text, std::path::Path::new("job.toml")).unwrap()
    }

    const NESTED: &str = r#"
        [components.c]
        path = "c.wasm"
        [ops.outer]
        component = "c"
        [ops.inner]
        component = "c"
        inputs.x = { map = "outer" }
        [ops.leaf]
        component = "c"
        inputs.x = { map = "inner" }
        [ops.sum]
        component = "c"
        inputs.xs = { collect = "leaf" }
    "#;

    #[test]
    fn columns_follow_the_wiring_and_maps_nest() {
        let job = job(NESTED);
        let edges = edges(&job);
        let (column, depth) = layout(&job, &edges, &Tally::default());
        assert_eq!(column, [0, 1, 2, 3]);
        assert_eq!(depth, [0, 1, 2, 1]);
    }

    #[test]
    fn the_drawing_names_every_op_with_its_nesting_and_links_its_steps() {
        let svg = render(&job(NESTED), &Tally::default(), "r1", RunStatus::Running).into_string();
        assert!(svg.contains("leaf[?][?]"), "{svg}");
        assert!(svg.contains(r#"href="/runs/r1/steps?op=inner""#), "{svg}");
        assert_eq!(svg.matches("class=\"frame\"").count(), 1 + 2 + 1);
        assert!(svg.contains("class=\"edge collect\""), "{svg}");
    }

    #[test]
    fn names_are_escaped() {
        let text = NESTED.replace("inputs.xs =", "inputs.\"<b>\" =");
        let svg = render(&job(&text), &Tally::default(), "r1", RunStatus::Running).into_string();
        assert!(svg.contains("&lt;b&gt; (collect)"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
    }
}

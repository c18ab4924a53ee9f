//! The plan drawn as Graphviz DOT or Mermaid: mapped ops shown as `op[?]`, `map` edges dashed,
//! `collect` edges bold.

use crate::plan::{InputSource, Plan};

/// Output formats of `host graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Dot,
    Mermaid,
}

fn label(plan: &Plan, node: usize) -> String {
    let node = &plan.nodes[node];
    format!("{}{}", node.name, "[?]".repeat(node.depth()))
}

/// Each edge: (from, to, input name, kind).
fn edges(plan: &Plan) -> Vec<(usize, usize, &str, &'static str)> {
    let mut edges = Vec::new();
    for (to, node) in plan.nodes.iter().enumerate() {
        for input in &node.inputs {
            let (from, kind) = match &input.source {
                InputSource::From(s) => (s.node, "from"),
                InputSource::Map(s) => (s.node, "map"),
                InputSource::Collect(s) => (s.node, "collect"),
                InputSource::Value(_) => continue,
            };
            edges.push((from, to, input.name.as_str(), kind));
        }
    }
    edges
}

/// Renders `plan` in `format`.
pub fn render(plan: &Plan, format: Format) -> String {
    let mut out = String::new();
    match format {
        Format::Dot => {
            out.push_str(&format!(
                "digraph {:?} {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n",
                plan.job_name
            ));
            for node in 0..plan.nodes.len() {
                out.push_str(&format!("  {:?};\n", label(plan, node)));
            }
            for (from, to, input, kind) in edges(plan) {
                let style = match kind {
                    "map" => "dashed",
                    "collect" => "bold",
                    _ => "solid",
                };
                out.push_str(&format!(
                    "  {:?} -> {:?} [style={style}, label={:?}];\n",
                    label(plan, from),
                    label(plan, to),
                    format!("{kind} {input}")
                ));
            }
            out.push_str("}\n");
        }
        Format::Mermaid => {
            out.push_str("flowchart LR\n");
            for (i, node) in plan.nodes.iter().enumerate() {
                out.push_str(&format!("  {}[\"{}\"]\n", node.name, label(plan, i)));
            }
            for (from, to, input, kind) in edges(plan) {
                let (from, to) = (&plan.nodes[from].name, &plan.nodes[to].name);
                let arrow = match kind {
                    "map" => format!("-. \"map {input}\" .->"),
                    "collect" => format!("== \"collect {input}\" ==>"),
                    _ => format!("-- \"{input}\" -->"),
                };
                out.push_str(&format!("  {from} {arrow} {to}\n"));
            }
        }
    }
    out
}

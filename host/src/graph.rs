//! The plan drawn as Graphviz DOT or Mermaid: mapped ops shown as `op[?]`, `map` edges dashed,
//! `collect` edges bold.
//!
//! Names reach the drawing only inside quoted strings escaped for its language: op names such
//! as `end` or `graph` are keywords of these languages, and the job name and input names may
//! hold any character.

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
                InputSource::Zip(s, _) => (s.node, "zip"),
                InputSource::Collect(s) => (s.node, "collect"),
                InputSource::Failures(s) => (s.node, "failures"),
                InputSource::Value(_) => continue,
            };
            edges.push((from, to, input.name.as_str(), kind));
        }
    }
    edges
}

/// `text` as a DOT quoted string. DOT unescapes only `\"` and `\\` there (Rust's `{:?}` would
/// add escapes such as `\u{7}` that DOT shows verbatim).
fn dot_quoted(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// `text` as a Mermaid quoted string: characters that would end the string or start an entity,
/// HTML or Markdown are written as Mermaid entity codes.
fn mermaid_quoted(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("#quot;"),
            '#' => quoted.push_str("#35;"),
            '<' => quoted.push_str("#lt;"),
            '>' => quoted.push_str("#gt;"),
            '`' => quoted.push_str("#96;"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Renders `plan` in `format`.
pub fn render(plan: &Plan, format: Format) -> String {
    let mut out = String::new();
    match format {
        Format::Dot => {
            out.push_str(&format!(
                "digraph {} {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n",
                dot_quoted(&plan.job_name)
            ));
            for node in 0..plan.nodes.len() {
                out.push_str(&format!("  {};\n", dot_quoted(&label(plan, node))));
            }
            for (from, to, input, kind) in edges(plan) {
                let style = match kind {
                    "map" => "dashed",
                    "collect" => "bold",
                    _ => "solid",
                };
                out.push_str(&format!(
                    "  {} -> {} [style={style}, label={}];\n",
                    dot_quoted(&label(plan, from)),
                    dot_quoted(&label(plan, to)),
                    dot_quoted(&format!("{kind} {input}"))
                ));
            }
            out.push_str("}\n");
        }
        Format::Mermaid => {
            // Node ids are `n0`, `n1`, ...: an op name may be a Mermaid keyword (`end`).
            out.push_str("flowchart LR\n");
            for node in 0..plan.nodes.len() {
                out.push_str(&format!(
                    "  n{node}[{}]\n",
                    mermaid_quoted(&label(plan, node))
                ));
            }
            for (from, to, input, kind) in edges(plan) {
                let arrow = match kind {
                    "map" => format!("-. {} .->", mermaid_quoted(&format!("map {input}"))),
                    "collect" => format!("== {} ==>", mermaid_quoted(&format!("collect {input}"))),
                    _ => format!("-- {} -->", mermaid_quoted(input)),
                };
                out.push_str(&format!("  n{from} {arrow} n{to}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::plan;

    /// Ops named after keywords of both languages, wired with `map`, `from` and `collect`.
    const KEYWORDS: &str = "[ops.graph]\ncomponent = 'c'\nop = 'emit'\n\
        [ops.end]\ncomponent = 'c'\nop = 'echo'\ninputs.x = { map = 'graph' }\n\
        [ops.subgraph]\ncomponent = 'c'\nop = 'echo'\ninputs.x = { from = 'end' }\n\
        [ops.style]\ncomponent = 'c'\nop = 'sum'\ninputs.xs = { collect = 'subgraph' }\n";

    #[test]
    fn mermaid_ids_are_not_op_names_which_may_be_keywords() {
        let plan = plan(KEYWORDS).unwrap();
        assert_eq!(
            render(&plan, Format::Mermaid),
            "flowchart LR\n  n0[\"graph\"]\n  n1[\"end[?]\"]\n  n2[\"subgraph[?]\"]\n  \
             n3[\"style\"]\n  n0 -. \"map x\" .-> n1\n  n1 -- \"x\" --> n2\n  \
             n2 == \"collect xs\" ==> n3\n"
        );
    }

    #[test]
    fn dot_quotes_every_name() {
        let mut plan = plan(KEYWORDS).unwrap();
        plan.job_name = r#"a "job" \ named"#.to_string();
        let dot = render(&plan, Format::Dot);
        assert!(
            dot.starts_with("digraph \"a \\\"job\\\" \\\\ named\" {\n"),
            "{dot}"
        );
        assert!(dot.contains("  \"end[?]\";\n"), "{dot}");
        assert!(
            dot.contains("  \"graph\" -> \"end[?]\" [style=dashed, label=\"map x\"];\n"),
            "{dot}"
        );
    }

    #[test]
    fn labels_escape_what_would_end_or_change_them() {
        assert_eq!(dot_quoted("a\"b\\c\u{7}"), "\"a\\\"b\\\\c\u{7}\"");
        assert_eq!(
            mermaid_quoted("a\"b#c<d>`e"),
            "\"a#quot;b#35;c#lt;d#gt;#96;e\""
        );
    }
}

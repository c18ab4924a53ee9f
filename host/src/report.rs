//! Human output of `host run`: live logs and failures on stderr, then a summary per op, and the
//! final outputs as JSON.

use std::io::Write;

use indexmap::IndexMap;

use crate::events::{Event, EventKind, EventSink};
use crate::exec::{Run, Status};

/// Prints guest logs and step failures to stderr as they happen.
pub struct Live<W: Write + Send>(pub W);

impl<W: Write + Send> EventSink for Live<W> {
    fn event(&mut self, event: &Event<'_>) {
        let step = event.step_key.unwrap_or("");
        let line = match &event.kind {
            EventKind::Logs { level, message } => {
                let message = message.trim_end();
                format!("[{step}] {level}: {message}")
            }
            EventKind::StepFailure { error, .. } => format!("step `{step}` failed: {error}"),
            _ => return,
        };
        let _ignored = writeln!(self.0, "{line}");
    }
}

/// Per-op counts and the failures of a finished run, for stderr.
pub fn summary(run: &Run) -> String {
    // Succeeded, failed, skipped, and left unfinished by a cancel.
    let mut counts: IndexMap<&str, [usize; 4]> = run
        .plan
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), [0; 4]))
        .collect();
    let mut problems = Vec::new();
    for step in &run.steps {
        let count = counts
            .get_mut(run.plan.nodes[step.key.node].name.as_str())
            .expect("plan op");
        match &step.status {
            Status::Succeeded => count[0] += 1,
            Status::Failed(err) => {
                count[1] += 1;
                problems.push(format!("  failed  {}: {err}", step.name));
            }
            Status::Skipped(reason) => {
                count[2] += 1;
                problems.push(format!("  skipped {}: {reason}", step.name));
            }
            Status::Queued | Status::Running => count[3] += 1,
        }
    }
    let width = counts.keys().map(|k| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (op, [ok, failed, skipped, unfinished]) in &counts {
        let mut line = format!("  {op:<width$}  {ok} succeeded");
        if *failed > 0 {
            line.push_str(&format!(", {failed} failed"));
        }
        if *skipped > 0 {
            line.push_str(&format!(", {skipped} skipped"));
        }
        if *unfinished > 0 {
            line.push_str(&format!(", {unfinished} not finished"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    for problem in problems {
        out.push_str(&problem);
        out.push('\n');
    }
    let verdict = if run.canceled() {
        "canceled"
    } else if run.succeeded() {
        "succeeded"
    } else {
        "failed"
    };
    let peak = run
        .peak_rss_bytes
        .map(|b| format!(", host peak memory {}", bytesize::ByteSize(b)))
        .unwrap_or_default();
    out.push_str(&format!(
        "run {} {verdict} in {:.1} ms ({} steps{peak})\n",
        run.run_id,
        run.duration.as_secs_f64() * 1e3,
        run.steps.len()
    ));
    out
}

/// The outputs of the ops nothing else reads from, as one JSON object keyed by op name. An op
/// with one output maps to its value; with several, to an object keyed by output name.
pub fn final_outputs(run: &Run) -> serde_json::Value {
    let mut outputs = serde_json::Map::new();
    for leaf in run.plan.leaves() {
        let node = &run.plan.nodes[leaf];
        let value = match node.op.outputs.as_slice() {
            [only] => run.output_for_node(leaf, &only.name),
            several => several
                .iter()
                .map(|o| (o.name.clone(), run.output_for_node(leaf, &o.name)))
                .collect(),
        };
        outputs.insert(node.name.clone(), value);
    }
    serde_json::Value::Object(outputs)
}

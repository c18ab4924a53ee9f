//! Human output of `host run`: live logs and failures on stderr, then a summary per op, and the
//! final outputs as JSON.

use std::borrow::Cow;
use std::io::Write;

use indexmap::IndexMap;

use crate::events::{Event, EventKind, EventSink, SinkError};
use crate::exec::{Run, Status};

mod progress;
pub use progress::Progress;

/// Prints guest logs and step failures to stderr as they happen. Guest text is escaped (see
/// [`escape`]) and every line of a log message carries the step's prefix, so a guest cannot
/// forge the host's own lines; `--json` and the run store keep the raw text.
pub struct Live<W: Write + Send>(pub W);

impl<W: Write + Send> EventSink for Live<W> {
    fn event(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        if let Some(text) = live_text(event) {
            // Like `JsonLines`: a closed stderr must not fail the run.
            let _ignored = self.0.write_all(text.as_bytes());
        }
        Ok(())
    }
}

/// What [`Live`] prints for `event`, if anything: guest logs, user events (as log lines) and
/// step failures.
fn live_text(event: &Event<'_>) -> Option<String> {
    let step = escape(event.step_key.as_deref().unwrap_or(""));
    match &event.kind {
        EventKind::Logs { level, message } => Some(log_lines(&step, level, message)),
        EventKind::StepFailure { error, .. } => {
            Some(format!("step `{step}` failed: {}\n", escape(error)))
        }
        kind => kind
            .user_event_line()
            .map(|(what, text)| log_lines(&step, what, &text)),
    }
}

/// A log message as lines prefixed `[step] level: `, each escaped.
pub fn log_lines(step: &str, level: &str, message: &str) -> String {
    let mut out = String::new();
    for line in message.trim_end().split('\n') {
        out.push_str(&format!("[{step}] {}: {}\n", escape(level), escape(line)));
    }
    out
}

/// Guest text made safe for a terminal: control characters (escape sequences, carriage
/// returns, newlines, ...) and Unicode bidirectional controls are written as `\u{..}`, so that
/// a guest can neither move the cursor nor make its text look like the host's.
pub fn escape(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\t')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
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
                problems.push(format!(
                    "  failed  {}: {}",
                    step.name,
                    escape(&err.to_string())
                ));
            }
            Status::Skipped(reason) => {
                count[2] += 1;
                problems.push(format!("  skipped {}: {}", step.name, escape(reason)));
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
    problems.extend(run.unresolved.iter().map(|step| {
        format!("  never finished {step}: the run ended before it ran (internal error)")
    }));
    problems.extend(
        run.sink_error
            .iter()
            .map(|err| format!("  stopped: its events could not be recorded: {err}")),
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_text_cannot_steer_the_terminal_or_forge_lines() {
        assert_eq!(escape("plain text\tand a tab"), "plain text\tand a tab");
        assert_eq!(
            escape("\u{1b}[31mred\r\nrun x succeeded\u{202e}"),
            "\\u{1b}[31mred\\u{d}\\u{a}run x succeeded\\u{202e}"
        );
        assert_eq!(
            log_lines("op[k]", "info", "one\nrun x succeeded in 1 ms\n"),
            "[op[k]] info: one\n[op[k]] info: run x succeeded in 1 ms\n"
        );
    }
}

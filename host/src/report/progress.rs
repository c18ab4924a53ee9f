//! The live view of a run on a terminal: a line for the run (id, elapsed, steps per second)
//! and a bar per op with its clones done, running, failed and waiting to retry, out of a total
//! that grows while the op's producer yields. Drawn on stderr, ten times a second at most, so
//! that a million-step run spends its time on steps, not on drawing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::live_text;
use crate::events::{Event, EventKind, EventSink, SinkError};
use crate::plan::{Plan, Source};

/// How often the bars are brought up to date with the counts and the lines waiting.
const REDRAW: Duration = Duration::from_millis(100);

/// What is known of one op's steps.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Counts {
    succeeded: u64,
    failed: u64,
    skipped: u64,
    running: u64,
    /// Failed attempts waiting for their retry's backoff to pass.
    retrying: u64,
}

impl Counts {
    fn seen(&self) -> u64 {
        self.succeeded + self.failed + self.skipped + self.running + self.retrying
    }

    fn finished(&self) -> u64 {
        self.succeeded + self.failed + self.skipped
    }

    /// What the bar says beside its count.
    fn message(&self) -> String {
        let mut parts = Vec::new();
        for (n, what) in [
            (self.running, "running"),
            (self.failed, "failed"),
            (self.skipped, "skipped"),
            (self.retrying, "waiting to retry"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        parts.join(", ")
    }
}

/// Per-op counts of a run, kept from its events; the bars show them.
#[derive(Debug)]
struct Tally {
    /// Op name to index in `ops`.
    index: HashMap<String, usize>,
    ops: Vec<Counts>,
    /// The innermost dynamic output each op is mapped over: its clones are that output's
    /// values (`None` for an op that runs once).
    scope: Vec<Option<Source>>,
    /// How many values each producer's dynamic outputs yielded so far.
    yielded: HashMap<Source, u64>,
}

impl Tally {
    fn new(plan: &Plan) -> Tally {
        Tally {
            index: plan
                .nodes
                .iter()
                .enumerate()
                .map(|(i, node)| (node.name.clone(), i))
                .collect(),
            ops: vec![Counts::default(); plan.nodes.len()],
            scope: plan.nodes.iter().map(|n| n.scope.last().cloned()).collect(),
            yielded: HashMap::new(),
        }
    }

    fn record(&mut self, event: &Event<'_>) {
        let Some(op) = event
            .step_key
            .as_deref()
            .and_then(|key| crate::step_key::parse(key))
            .and_then(|(name, _)| self.index.get(name).copied())
        else {
            return;
        };
        let counts = &mut self.ops[op];
        match &event.kind {
            EventKind::StepStart { .. } => counts.running += 1,
            EventKind::StepRestarted { .. } => {
                counts.retrying = counts.retrying.saturating_sub(1);
                counts.running += 1;
            }
            EventKind::StepUpForRetry { .. } => {
                counts.running = counts.running.saturating_sub(1);
                counts.retrying += 1;
            }
            EventKind::StepSuccess { .. } => {
                counts.running = counts.running.saturating_sub(1);
                counts.succeeded += 1;
            }
            EventKind::StepFailure { .. } => {
                counts.running = counts.running.saturating_sub(1);
                counts.failed += 1;
            }
            EventKind::StepSkipped { .. } => counts.skipped += 1,
            EventKind::StepOutput {
                output,
                mapping_key: Some(_),
                ..
            } => {
                let source = Source {
                    node: op,
                    output: output.to_string(),
                };
                *self.yielded.entry(source).or_insert(0) += 1;
            }
            _ => {}
        }
    }

    /// How many steps op `op` will have, as far as is known now.
    fn total(&self, op: usize) -> u64 {
        let planned = match &self.scope[op] {
            None => 1,
            Some(source) => self.yielded.get(source).copied().unwrap_or(0),
        };
        planned.max(self.ops[op].seen())
    }

    fn finished(&self) -> u64 {
        self.ops.iter().map(Counts::finished).sum()
    }
}

/// What the screen shows, shared by the run's events and the thread that draws.
struct View {
    tally: Tally,
    header: ProgressBar,
    bars: Vec<ProgressBar>,
    /// Lines to print above the bars at the next draw: printing each as it comes would redraw
    /// every bar once per guest log line.
    pending: Vec<String>,
    started: Instant,
    /// The bars are gone: lines go straight to stderr.
    closed: bool,
}

impl View {
    fn redraw(&mut self, multi: &MultiProgress) {
        if !self.pending.is_empty() {
            // A closed stderr must not fail the run.
            let _ignored = multi.println(self.pending.join("\n"));
            self.pending.clear();
        }
        for (op, bar) in self.bars.iter().enumerate() {
            let counts = &self.tally.ops[op];
            bar.set_length(self.tally.total(op));
            bar.set_position(counts.finished());
            bar.set_message(counts.message());
        }
        let finished = self.tally.finished();
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = if seconds > 0.0 {
            finished as f64 / seconds
        } else {
            0.0
        };
        self.header
            .set_message(format!("{finished} steps done · {rate:.0} steps/s"));
    }
}

fn lock(view: &Mutex<View>) -> std::sync::MutexGuard<'_, View> {
    view.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An [`EventSink`] drawing the run's progress on stderr, with the lines [`super::Live`] would
/// print (guest logs, failures) above the bars. Events only count; a thread of its own draws,
/// so the bars stay current while no event comes (a long step) and cost the scheduler nothing.
pub struct Progress {
    view: Arc<Mutex<View>>,
    multi: MultiProgress,
    /// Dropped to stop the drawing thread.
    stop: Option<mpsc::Sender<()>>,
    drawer: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Bars for the ops of `plan`, for run `run_id`, on stderr.
    pub fn new(run_id: &str, plan: &Plan) -> Progress {
        Progress::drawn_to(run_id, plan, ProgressDrawTarget::stderr_with_hz(10))
    }

    fn drawn_to(run_id: &str, plan: &Plan, target: ProgressDrawTarget) -> Progress {
        let multi = MultiProgress::with_draw_target(target);
        let header = multi.add(ProgressBar::new_spinner());
        header.set_style(
            ProgressStyle::with_template("{spinner} run {prefix} · {elapsed} · {msg}")
                .expect("a valid template"),
        );
        header.set_prefix(run_id.to_string());
        let width = plan.nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
        let style = ProgressStyle::with_template(&format!(
            "  {{prefix:<{width}}} {{bar:24.cyan/blue}} {{pos:>7}}/{{len:<7}} {{msg}}"
        ))
        .expect("a valid template")
        .progress_chars("█▉▊▋▌▍▎▏ ");
        let bars = plan
            .nodes
            .iter()
            .map(|node| {
                let bar = multi.add(ProgressBar::new(0).with_style(style.clone()));
                bar.set_prefix(node.name.clone());
                bar
            })
            .collect();
        let view = Arc::new(Mutex::new(View {
            tally: Tally::new(plan),
            header,
            bars,
            pending: Vec::new(),
            started: Instant::now(),
            closed: false,
        }));
        lock(&view).redraw(&multi);
        let (stop, stopped) = mpsc::channel::<()>();
        let drawer = {
            let (view, multi) = (view.clone(), multi.clone());
            std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || {
                    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(REDRAW) {
                        let mut view = lock(&view);
                        view.header.tick();
                        view.redraw(&multi);
                    }
                })
                .ok()
        };
        Progress {
            view,
            multi,
            stop: Some(stop),
            drawer,
        }
    }

    /// Prints a line above the bars, from anywhere (a signal handler, say): written straight to
    /// stderr it would leave a copy of the bars behind. Once the bars are gone, to stderr.
    pub fn printer(&self) -> impl Fn(&str) + Send + Sync + 'static {
        let view = self.view.clone();
        move |line| {
            let mut view = lock(&view);
            if view.closed {
                eprintln!("{line}");
            } else {
                view.pending.push(line.to_string());
            }
        }
    }
}

impl EventSink for Progress {
    fn event(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        let mut view = lock(&self.view);
        view.tally.record(event);
        if let Some(text) = live_text(event) {
            view.pending.push(text.trim_end_matches('\n').to_string());
        }
        Ok(())
    }
}

impl Drop for Progress {
    /// Prints what is pending, then takes the bars off the screen: the summary printed next
    /// says what they said.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(drawer) = self.drawer.take() {
            let _ignored = drawer.join();
        }
        let mut view = lock(&self.view);
        view.redraw(&self.multi);
        view.header.finish_and_clear();
        for bar in &view.bars {
            bar.finish_and_clear();
        }
        view.closed = true;
        let _ignored = self.multi.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::plan;

    fn plan_of(ops: &str) -> Plan {
        plan(ops).expect("test plan")
    }

    fn event(step: &str, kind: EventKind<'static>) -> Event<'static> {
        Event {
            kind,
            run_id: "r".into(),
            timestamp: 0.0,
            step_key: Some(step.to_string().into()),
            reused_from: None,
        }
    }

    fn output(step: &str, key: &str) -> Event<'static> {
        event(
            step,
            EventKind::StepOutput {
                output: "result".into(),
                mapping_key: Some(key.to_string().into()),
                value: vec![1].into(),
                metadata: Default::default(),
            },
        )
    }

    #[test]
    fn totals_grow_as_the_producer_yields_and_retries_are_counted_apart() {
        let plan = plan_of(
            "[ops.nums]\ncomponent = 'c'\nop = 'emit'\n\
             [ops.work]\ncomponent = 'c'\nop = 'echo'\ninputs.x = { map = 'nums' }\n\
             [ops.total]\ncomponent = 'c'\nop = 'sum'\ninputs.xs = { collect = 'work' }\n",
        );
        let mut tally = Tally::new(&plan);
        let (nums, work, total) = (0, 1, 2);
        assert_eq!(
            (tally.total(nums), tally.total(work), tally.total(total)),
            (1, 0, 1)
        );
        tally.record(&event("nums", EventKind::StepStart { attempt: 1 }));
        for key in ["a", "b", "c"] {
            tally.record(&output("nums", key));
        }
        assert_eq!(tally.total(work), 3);
        tally.record(&event("work[a]", EventKind::StepStart { attempt: 1 }));
        tally.record(&event("work[b]", EventKind::StepStart { attempt: 1 }));
        tally.record(&event(
            "work[a]",
            EventKind::StepUpForRetry {
                error_kind: crate::step_error::ErrorKind::RetryRequested,
                error: "later".into(),
                attempt: 1,
                delay_ms: 10.0,
            },
        ));
        tally.record(&event(
            "work[b]",
            EventKind::StepSuccess { duration_ms: 1.0 },
        ));
        let counts = &tally.ops[work];
        assert_eq!(
            (counts.running, counts.retrying, counts.succeeded),
            (0, 1, 1)
        );
        assert_eq!(counts.message(), "1 waiting to retry");
        tally.record(&event("work[a]", EventKind::StepRestarted { attempt: 2 }));
        assert_eq!(tally.ops[work].message(), "1 running");
        assert_eq!(tally.finished(), 1);
    }

    #[test]
    fn the_bars_follow_the_events() {
        let plan = plan_of(
            "[ops.nums]\ncomponent = 'c'\nop = 'emit'\n\
             [ops.work]\ncomponent = 'c'\nop = 'echo'\ninputs.x = { map = 'nums' }\n",
        );
        let mut progress = Progress::drawn_to("r", &plan, ProgressDrawTarget::hidden());
        progress
            .event(&event("nums", EventKind::StepStart { attempt: 1 }))
            .unwrap();
        progress.event(&output("nums", "a")).unwrap();
        progress.event(&output("nums", "b")).unwrap();
        progress
            .event(&event("nums", EventKind::StepSuccess { duration_ms: 1.0 }))
            .unwrap();
        let mut view = lock(&progress.view);
        view.redraw(&progress.multi);
        assert_eq!(view.bars[1].length(), Some(2));
        assert_eq!(view.bars[0].position(), 1);
    }
}

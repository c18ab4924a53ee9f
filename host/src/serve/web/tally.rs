//! Where each step of a run stands, per op: folded from the run's step-lifecycle events as they
//! are committed, so that a live view of a running run reads only its new events, and kept
//! between requests (compact once the run is over) so that the run page of a 100,000-clone run
//! does not read its events again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indexmap::IndexMap;

use crate::store::{RunRecord, RunStatus, SqliteStore, StepEvent, StoreError};

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Running,
    Retrying,
    Succeeded,
    Failed,
    Skipped,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Succeeded,
        State::Running,
        State::Retrying,
        State::Failed,
        State::Skipped,
    ];

    /// The lifecycle events that leave a step in this state.
    pub fn events(self) -> &'static [&'static str] {
        match self {
            State::Running => &["STEP_START", "STEP_RESTARTED"],
            State::Retrying => &["STEP_UP_FOR_RETRY"],
            State::Succeeded => &["STEP_SUCCESS"],
            State::Failed => &["STEP_FAILURE"],
            State::Skipped => &["STEP_SKIPPED"],
        }
    }

    /// The state a lifecycle event leaves its step in.
    pub fn after(event: &str) -> Option<State> {
        State::ALL
            .into_iter()
            .find(|state| state.events().contains(&event))
    }

    /// Its name in URLs and CSS classes.
    pub fn name(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Retrying => "retrying",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Skipped => "skipped",
        }
    }

    pub fn parse(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|state| state.name() == name)
    }

    /// How it reads once its run is over: a step still running or waiting for a retry was
    /// stopped with the run.
    pub fn label(self, run: RunStatus) -> &'static str {
        match self {
            State::Running | State::Retrying if run != RunStatus::Running => "stopped",
            state => state.name(),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Steps per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts([u64; 5]);

impl Counts {
    pub fn get(&self, state: State) -> u64 {
        self.0[state.index()]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    fn add(&mut self, state: State) {
        self.0[state.index()] += 1;
    }

    fn remove(&mut self, state: State) {
        self.0[state.index()] = self.0[state.index()].saturating_sub(1);
    }

    fn sum(&mut self, other: &Counts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }
}

/// One op's steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpTally {
    pub counts: Counts,
    /// How many mapping keys its steps carry: 0 for a plain op, 2 for a clone of a clone.
    pub depth: usize,
}

/// A run's steps per op, as of event `after`.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// The last event folded in.
    pub after: i64,
    pub ops: IndexMap<String, OpTally>,
    /// Each step's state, while more events may come; dropped once the run is over.
    steps: Option<HashMap<String, State>>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            after: -1,
            ops: IndexMap::new(),
            steps: Some(HashMap::new()),
        }
    }

    /// Folds in `events`, which follow those folded already.
    fn fold(&mut self, events: &[StepEvent]) {
        let steps = self.steps.get_or_insert_with(HashMap::new);
        for event in events {
            self.after = self.after.max(event.seq);
            let Some(state) = State::after(&event.event) else {
                continue;
            };
            let (op, keys) = crate::step_key::parse(&event.step_key)
                .unwrap_or((event.step_key.as_str(), Vec::new()));
            let tally = self.ops.entry(op.to_string()).or_default();
            tally.depth = tally.depth.max(keys.len());
            let before = match steps.get_mut(&event.step_key) {
                Some(old) => Some(std::mem::replace(old, state)),
                None => {
                    steps.insert(event.step_key.clone(), state);
                    None
                }
            };
            if let Some(before) = before {
                tally.counts.remove(before);
            }
            tally.counts.add(state);
        }
    }

    /// Every op's steps together.
    pub fn total(&self) -> Counts {
        let mut total = Counts::default();
        for op in self.ops.values() {
            total.sum(&op.counts);
        }
        total
    }

    /// The counts alone, for a caller to keep.
    fn summary(&self) -> Tally {
        Tally {
            after: self.after,
            ops: self.ops.clone(),
            steps: None,
        }
    }
}

/// Events read per query while folding.
const CHUNK: usize = 50_000;

/// A tally nobody looked at for this long is dropped (a running run's too: its step states are
/// read again if someone looks later).
const IDLE: Duration = Duration::from_secs(300);

/// A run's tally, and when it was last looked at.
struct Kept {
    tally: Arc<Mutex<Tally>>,
    used: Instant,
}

/// The tallies of the runs the web view has shown.
#[derive(Default)]
pub struct Tallies(Mutex<HashMap<String, Kept>>);

impl Tallies {
    /// Run `run`'s tally as of now, read from `store`: only events it has not folded yet.
    pub fn of(&self, store: &SqliteStore, run: &RunRecord) -> Result<Tally, StoreError> {
        let entry = {
            let mut all = super::super::lock(&self.0);
            let now = Instant::now();
            all.retain(|_, kept| now.duration_since(kept.used) < IDLE);
            let kept = all.entry(run.id.clone()).or_insert_with(|| Kept {
                tally: Arc::new(Mutex::new(Tally::new())),
                used: now,
            });
            kept.used = now;
            kept.tally.clone()
        };
        let mut tally = super::super::lock(&entry);
        let last = store.last_seq(&run.id)?;
        if tally.after < last {
            if tally.steps.is_none() {
                // Resumed since it was compacted: its steps' states are needed again.
                *tally = Tally::new();
            }
            loop {
                let events = store.step_events(&run.id, tally.after, CHUNK)?;
                tally.fold(&events);
                if events.len() < CHUNK {
                    break;
                }
            }
            tally.after = tally.after.max(last);
        }
        if run.status != RunStatus::Running {
            tally.steps = None;
        }
        Ok(tally.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64, step_key: &str, event: &str) -> StepEvent {
        StepEvent {
            seq,
            step_key: step_key.to_string(),
            event: event.to_string(),
        }
    }

    #[test]
    fn a_step_counts_once_in_its_latest_state() {
        let mut tally = Tally::new();
        tally.fold(&[
            event(0, "load", "STEP_START"),
            event(1, "load", "STEP_SUCCESS"),
            event(2, "piece[a]", "STEP_START"),
            event(3, "piece[b]", "STEP_START"),
            event(4, "piece[a]", "STEP_UP_FOR_RETRY"),
        ]);
        let piece = &tally.ops["piece"];
        assert_eq!(piece.counts.get(State::Running), 1);
        assert_eq!(piece.counts.get(State::Retrying), 1);
        assert_eq!(piece.depth, 1);
        tally.fold(&[
            event(5, "piece[a]", "STEP_RESTARTED"),
            event(6, "piece[a]", "STEP_FAILURE"),
            event(7, "piece[b]", "STEP_SUCCESS"),
            event(8, "sum", "STEP_SKIPPED"),
        ]);
        let piece = &tally.ops["piece"];
        assert_eq!(piece.counts.get(State::Failed), 1);
        assert_eq!(piece.counts.get(State::Succeeded), 1);
        assert_eq!(piece.counts.total(), 2);
        assert_eq!(tally.total().total(), 4);
        assert_eq!(tally.total().get(State::Skipped), 1);
        assert_eq!(tally.after, 8);
        assert_eq!(
            tally.ops.keys().collect::<Vec<_>>(),
            ["load", "piece", "sum"]
        );
    }

    #[test]
    fn nested_clones_give_their_op_its_depth() {
        let mut tally = Tally::new();
        tally.fold(&[event(0, "inner[x][y]", "STEP_START")]);
        assert_eq!(tally.ops["inner"].depth, 2);
    }

    #[test]
    fn a_stopped_run_shows_unfinished_steps_as_stopped() {
        assert_eq!(State::Running.label(RunStatus::Canceled), "stopped");
        assert_eq!(State::Retrying.label(RunStatus::Running), "retrying");
        assert_eq!(State::Failed.label(RunStatus::Failure), "failed");
        assert_eq!(State::parse("succeeded"), Some(State::Succeeded));
        assert_eq!(State::parse("bogus"), None);
    }
}

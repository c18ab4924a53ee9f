//! A run's events chosen by step and kind (Dagster's `events_for_node` and `filter_events`),
//! read a page at a time in the order they happened, so that a query on a huge run holds a few
//! pages at once, whatever it selects.

use std::collections::VecDeque;

use super::AppError;
use crate::events::Event;
use crate::store::{EventFilter, RunStore};

/// Which events of a run to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only these steps' and their clones' (`op` gives `op[a]`, `op[b]`, ...); every event
    /// when empty.
    pub steps: Vec<String>,
    /// Only events of these kinds, named as [`crate::events::names`] names them; every kind
    /// when empty.
    pub kinds: Vec<&'static str>,
}

impl EventQuery {
    /// The step filters to read, each once: a step that another filter covers (`op[a]` beside
    /// `op`) would have its events read twice.
    fn distinct_steps(&self) -> Vec<String> {
        let covers = |outer: &str, inner: &str| {
            inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('['))
        };
        let mut steps: Vec<String> = Vec::new();
        for step in &self.steps {
            if steps.iter().any(|kept| covers(kept, step)) {
                continue;
            }
            steps.retain(|kept| !covers(step, kept));
            steps.push(step.clone());
        }
        steps
    }
}

/// Events read per query: a `STEP_OUTPUT` carries its value, so a page is kept small.
const PAGE: usize = 256;

/// The events of a run that an [`EventQuery`] selects, in order: one cursor per step filter,
/// merged by sequence number.
pub struct Events<'a> {
    store: &'a dyn RunStore,
    run_id: String,
    kinds: Vec<&'static str>,
    cursors: Vec<Cursor>,
}

/// The events of one step filter (or of the whole run), read a page ahead.
struct Cursor {
    step: Option<String>,
    read: VecDeque<(i64, Event<'static>)>,
    after: i64,
    /// Set after the first page: a step with more events than a page holds (an op of many
    /// clones) is cheaper to read on in sequence than through the step index (see
    /// [`EventFilter::in_sequence`]).
    in_sequence: bool,
    done: bool,
}

impl<'a> Events<'a> {
    /// The events of run `run_id` that `query` selects; its steps are not checked.
    pub fn new(store: &'a dyn RunStore, run_id: &str, query: &EventQuery) -> Events<'a> {
        let steps = query.distinct_steps();
        let filters: Vec<Option<String>> = if steps.is_empty() {
            vec![None]
        } else {
            steps.into_iter().map(Some).collect()
        };
        Events {
            store,
            run_id: run_id.to_string(),
            kinds: query.kinds.clone(),
            cursors: filters
                .into_iter()
                .map(|step| Cursor {
                    step,
                    read: VecDeque::new(),
                    after: -1,
                    in_sequence: false,
                    done: false,
                })
                .collect(),
        }
    }

    /// The next event, reading a page when a cursor has run dry.
    fn next_event(&mut self) -> Result<Option<Event<'static>>, AppError> {
        for cursor in &mut self.cursors {
            if cursor.read.is_empty() && !cursor.done {
                cursor.read_page(self.store, &self.run_id, &self.kinds)?;
            }
        }
        let earliest = self
            .cursors
            .iter_mut()
            .filter_map(|cursor| Some((cursor.read.front()?.0, cursor)))
            .min_by_key(|(seq, _)| *seq);
        Ok(earliest.and_then(|(_, cursor)| cursor.read.pop_front().map(|(_, event)| event)))
    }
}

impl Cursor {
    fn read_page(
        &mut self,
        store: &dyn RunStore,
        run_id: &str,
        kinds: &[&str],
    ) -> Result<(), AppError> {
        let filter = EventFilter {
            step: self.step.as_deref(),
            kinds,
            after: self.after,
            limit: Some(PAGE),
            in_sequence: self.in_sequence,
        };
        let page = store.event_page(run_id, &filter)?;
        self.done = page.len() < PAGE;
        self.in_sequence = true;
        if let Some((last, _)) = page.last() {
            self.after = *last;
        }
        self.read.extend(page);
        Ok(())
    }
}

impl Iterator for Events<'_> {
    type Item = Result<Event<'static>, AppError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.next_event();
        if next.is_err() {
            // Nothing more after an error.
            self.cursors.clear();
        }
        next.transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(steps: &[&str]) -> Vec<String> {
        let query = EventQuery {
            steps: steps.iter().map(|s| s.to_string()).collect(),
            kinds: Vec::new(),
        };
        query.distinct_steps()
    }

    #[test]
    fn a_step_covered_by_another_filter_is_read_once() {
        assert_eq!(steps(&["op[a]", "op", "op[b][c]"]), ["op"]);
        assert_eq!(steps(&["op[a]", "op[a]", "op[a][b]"]), ["op[a]"]);
        // `op_2` and `op[ab]` are not under `op` and `op[a]`.
        assert_eq!(
            steps(&["op", "op_2", "x[a]", "x[ab]"]),
            ["op", "op_2", "x[a]", "x[ab]"]
        );
        assert!(steps(&[]).is_empty());
    }
}

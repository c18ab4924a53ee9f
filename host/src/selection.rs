//! Step selection for re-execution, in Dagster's syntax: `op` (every step of the op), `op[key]`
//! (one clone), `*op` (the op and all its ancestors), `+op` (and its direct parents), `op+` and
//! `op*` (accepted: downstream steps are always included).
//!
//! A selected step is run again, and so is everything downstream of it: outputs computed from
//! a value that changed must not be reused.

use std::collections::HashSet;

use crate::plan::{InputSource, Plan};
use crate::step_key::StepKey;

/// A selection that names nothing in the plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("selection `{0}` names no op of the job")]
    UnknownOp(String),
    #[error("selection `{0}` is not a step key of the job (mapped ops take one `[key]` per level)")]
    BadStepKey(String),
}

/// What `--select` arguments cover.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Ops selected whole, with everything downstream.
    nodes: HashSet<usize>,
    /// Single steps selected, each with its own downstream steps.
    steps: Vec<StepKey>,
}

impl Selection {
    /// Parses `selectors` against `plan`.
    pub fn parse(plan: &Plan, selectors: &[String]) -> Result<Selection, SelectError> {
        let mut selection = Selection::default();
        for selector in selectors {
            let text = selector.trim_end_matches(['+', '*']);
            let (ancestors, name) = match text.strip_prefix('*') {
                Some(name) => (usize::MAX, name),
                None => {
                    let name = text.trim_start_matches('+');
                    (text.len() - name.len(), name)
                }
            };
            if name.contains('[') {
                let key = plan
                    .step_key(name)
                    .ok_or_else(|| SelectError::BadStepKey(selector.clone()))?;
                selection.steps.push(key);
                continue;
            }
            let node = plan
                .node(name)
                .ok_or_else(|| SelectError::UnknownOp(selector.clone()))?;
            selection.nodes.insert(node);
            selection.nodes.extend(ancestors_of(plan, node, ancestors));
        }
        let downstream = downstream_of(plan, selection.nodes.iter().copied());
        selection.nodes = downstream;
        Ok(selection)
    }

    /// Whether step `key` is selected or downstream of a selected step.
    pub fn covers(&self, plan: &Plan, key: &StepKey) -> bool {
        if self.nodes.contains(&key.node) {
            return true;
        }
        self.steps.iter().any(|step| {
            let shared = step.keys.len().min(key.keys.len());
            downstream_of(plan, [step.node]).contains(&key.node)
                && step.keys[..shared] == key.keys[..shared]
        })
    }
}

fn upstream(plan: &Plan, node: usize) -> impl Iterator<Item = usize> + '_ {
    plan.nodes[node]
        .inputs
        .iter()
        .filter_map(|input| match &input.source {
            InputSource::From(s) | InputSource::Map(s) | InputSource::Collect(s) => Some(s.node),
            InputSource::Value(_) => None,
        })
}

/// Ops up to `levels` levels upstream of `node`.
fn ancestors_of(plan: &Plan, node: usize, levels: usize) -> HashSet<usize> {
    let mut found = HashSet::new();
    let mut frontier = vec![node];
    for _ in 0..levels.min(plan.nodes.len()) {
        frontier = frontier
            .into_iter()
            .flat_map(|n| upstream(plan, n))
            .filter(|n| found.insert(*n))
            .collect();
        if frontier.is_empty() {
            break;
        }
    }
    found
}

/// The given ops and every op downstream of them.
fn downstream_of(plan: &Plan, nodes: impl IntoIterator<Item = usize>) -> HashSet<usize> {
    let mut found: HashSet<usize> = HashSet::new();
    let mut todo: Vec<usize> = nodes.into_iter().collect();
    while let Some(node) = todo.pop() {
        if found.insert(node) {
            todo.extend(plan.nodes[node].dependents.iter().copied());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::plan;

    const CHAIN: &str = "[ops.emit]\ncomponent = 'c'\n\
        [ops.one]\ncomponent = 'c'\n\
        [ops.add]\ncomponent = 'c'\ninputs.a = { map = 'emit' }\ninputs.b = { from = 'one' }\n\
        [ops.echo]\ncomponent = 'c'\ninputs.x = { from = 'add' }\n\
        [ops.sum]\ncomponent = 'c'\ninputs.xs = { collect = 'echo' }\n";

    fn covered(selectors: &[&str], steps: &[&str]) -> Vec<bool> {
        let plan = plan(CHAIN).unwrap();
        let selectors: Vec<String> = selectors.iter().map(|s| s.to_string()).collect();
        let selection = Selection::parse(&plan, &selectors).unwrap();
        steps
            .iter()
            .map(|s| selection.covers(&plan, &plan.step_key(s).unwrap()))
            .collect()
    }

    #[test]
    fn an_op_covers_its_clones_and_everything_downstream() {
        let steps = ["emit", "one", "add[a]", "echo[a]", "echo[b]", "sum"];
        assert_eq!(
            covered(&["echo"], &steps),
            [false, false, false, true, true, true]
        );
        assert_eq!(
            covered(&["echo+"], &steps),
            [false, false, false, true, true, true]
        );
        assert_eq!(
            covered(&["+echo"], &steps),
            [false, false, true, true, true, true]
        );
        assert_eq!(
            covered(&["*echo"], &steps),
            [true, true, true, true, true, true]
        );
    }

    #[test]
    fn a_clone_covers_only_its_own_downstream() {
        let steps = ["emit", "add[a]", "add[b]", "echo[a]", "echo[b]", "sum"];
        assert_eq!(
            covered(&["add[a]"], &steps),
            [false, true, false, true, false, true]
        );
    }

    #[test]
    fn unknown_names_are_errors() {
        let plan = plan(CHAIN).unwrap();
        let err = Selection::parse(&plan, &["nope".into()]).unwrap_err();
        assert_eq!(err.to_string(), "selection `nope` names no op of the job");
        let err = Selection::parse(&plan, &["sum[a]".into()]).unwrap_err();
        assert!(matches!(err, SelectError::BadStepKey(_)));
    }
}

//! Selections in Dagster's syntax. A selector is an op (or, for re-execution, a step) with
//! `*` or `+`s on either side: `*op` (the op and all its ancestors), `+op` (and its direct
//! parents, `++op` two levels up), `op+` / `op++` (and its children that many levels down),
//! `op*` (and all its descendants). A `--select` value may list several, separated by commas:
//! `a,*b+`. [`ops`] selects the ops a launch runs (Dagster's `op_selection`); [`Selection`] the
//! steps a re-execution runs again.
//!
//! Re-execution: `op` selects every step of the op, `op[key]` one clone; `+` and `*` before it
//! also apply to a clone (`+op[key]` adds the steps it read from, all clones under the key when
//! it collects them), and those after it are accepted but change nothing, since a selected step
//! is run again with everything downstream of it: outputs computed from a value that changed
//! must not be reused. A clone must be one the parent run had, so that a mistyped key is an
//! error rather than a re-execution of nothing; a whole op is always valid, even when the parent
//! ran none of its steps (its steps run anyway, as nothing of them was committed).

pub mod ops;

use std::collections::{HashMap, HashSet};

use crate::exec::Prior;
use crate::plan::{Plan, Source};
use crate::step_key::StepKey;
use crate::value::KeyedValues;

/// How many of the parent's steps an error shows.
const SHOWN: usize = 3;

/// A selection that names nothing in the plan or in the parent run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("selection `{0}` names no op of the job")]
    UnknownOp(String),
    #[error(
        "selection `{0}` is not an op name with `*` or `+`s around it (`op`, `*op`, `+op`, \
         `op+`, `op*`; commas between several)"
    )]
    Syntax(String),
    #[error(
        "op `{op}` is selected but its input `{input}` reads from op `{upstream}`, which is not: \
         select it too (e.g. `*{op}`) or give the input a value (`--input {op}.{input}=JSON`)"
    )]
    UnselectedUpstream {
        op: String,
        input: String,
        upstream: String,
    },
    #[error(
        "selection `{selector}` names no step of the parent run, which had {}",
        steps_of(op, *.count, examples, *.depth)
    )]
    UnknownStep {
        selector: String,
        op: String,
        /// The op's mapping depth: how many `[key]`s its steps take.
        depth: usize,
        /// How many steps of the op the parent had, and the first few.
        count: usize,
        examples: Vec<String>,
    },
}

/// "50 steps of op `op`: `op[0]`, `op[1]`, `op[2]`, ...", or with none, their shape.
fn steps_of(op: &str, count: usize, examples: &[String], depth: usize) -> String {
    let listed: Vec<String> = examples.iter().map(|e| format!("`{e}`")).collect();
    let more = if count > examples.len() { ", ..." } else { "" };
    match count {
        0 => format!(
            "no steps of op `{op}` (they would be named like `{op}{}`)",
            "[key]".repeat(depth)
        ),
        1 => format!("1 step of op `{op}`: {}", listed.join(", ")),
        _ => format!("{count} steps of op `{op}`: {}{more}", listed.join(", ")),
    }
}

/// One selector: a name with how many levels of ancestors (`up`) and descendants (`down`) it
/// adds; `usize::MAX` for `*`, all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selector<'a> {
    pub up: usize,
    pub name: &'a str,
    pub down: usize,
}

impl<'a> Selector<'a> {
    /// Reads one selector: `*name`, `+name`, `name+`, `name*`... (`*` alone, or `+`s, on each
    /// side).
    pub fn parse(text: &'a str) -> Result<Selector<'a>, SelectError> {
        let syntax = || SelectError::Syntax(text.to_string());
        let name = text.trim_start_matches(['+', '*']);
        let up = levels(&text[..text.len() - name.len()]).ok_or_else(syntax)?;
        let bare = name.trim_end_matches(['+', '*']);
        let down = levels(&name[bare.len()..]).ok_or_else(syntax)?;
        if bare.is_empty() {
            return Err(syntax());
        }
        Ok(Selector {
            up,
            name: bare,
            down,
        })
    }
}

/// The levels `marks` (the `*` or `+`s on one side of a name) stand for; `None` when they mix
/// the two or repeat `*`.
fn levels(marks: &str) -> Option<usize> {
    match marks {
        "*" => Some(usize::MAX),
        _ if marks.bytes().all(|b| b == b'+') => Some(marks.len()),
        _ => None,
    }
}

/// Every selector of `values`, each of which may list several separated by commas.
pub fn each_selector(values: &[String]) -> impl Iterator<Item = &str> {
    values
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
}

/// What `--select` arguments cover.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Ops selected whole, with everything downstream.
    nodes: HashSet<usize>,
    /// Steps selected alone (or all clones under a key prefix), each with the ops downstream
    /// of its op.
    steps: Vec<(StepKey, HashSet<usize>)>,
}

impl Selection {
    /// Parses `selectors` against `plan` and the parent run's committed state.
    pub fn parse(
        plan: &Plan,
        selectors: &[String],
        parent: &Prior,
    ) -> Result<Selection, SelectError> {
        let yielded = Yielded::new(parent);
        let mut selected: HashSet<StepKey> = HashSet::new();
        for selector in each_selector(selectors) {
            let Selector { up, name, .. } = Selector::parse(selector)?;
            let op = name.split_once('[').map_or(name, |(op, _)| op);
            let node = plan
                .node(op)
                .ok_or_else(|| SelectError::UnknownOp(selector.to_string()))?;
            let step = if name.contains('[') {
                plan.step_key(name)
                    .filter(|key| yielded.has(plan, key))
                    .ok_or_else(|| yielded.unknown_step(plan, selector, node))?
            } else {
                StepKey::new(node, Vec::new())
            };
            selected.extend(with_ancestors(plan, step, up));
        }
        let mut selection = Selection::default();
        for step in selected {
            let downstream = downstream_of(plan, [step.node]);
            if step.keys.is_empty() {
                selection.nodes.extend(downstream);
            } else {
                selection.steps.push((step, downstream));
            }
        }
        Ok(selection)
    }

    /// Whether step `key` is selected or downstream of a selected step.
    pub fn covers(&self, key: &StepKey) -> bool {
        self.nodes.contains(&key.node)
            || self.steps.iter().any(|(step, downstream)| {
                let shared = step.keys.len().min(key.keys.len());
                downstream.contains(&key.node) && step.keys[..shared] == key.keys[..shared]
            })
    }
}

/// The mapping keys the parent run yielded, by producing step and output.
struct Yielded<'a>(HashMap<(&'a StepKey, &'a str), &'a KeyedValues>);

impl<'a> Yielded<'a> {
    fn new(parent: &'a Prior) -> Self {
        let by_step = parent
            .emitted
            .iter()
            .map(|(step, output, values)| ((step, output.as_str()), values));
        Yielded(by_step.collect())
    }

    /// The values, with their keys, yielded on dynamic output `source` by its step with outer
    /// keys `outer`.
    fn values(&self, plan: &Plan, source: &Source, outer: &[String]) -> &'a [(String, Vec<u8>)] {
        let producer = StepKey::new(
            source.node,
            outer[..plan.nodes[source.node].depth()].to_vec(),
        );
        self.0
            .get(&(&producer, source.output.as_str()))
            .map_or(&[], |values| values.as_slice())
    }

    /// Whether the parent had step `key`: every key of it was yielded by the step it maps over.
    fn has(&self, plan: &Plan, key: &StepKey) -> bool {
        let scope = &plan.nodes[key.node].scope;
        scope
            .iter()
            .zip(&key.keys)
            .enumerate()
            .all(|(level, (source, own))| {
                let values = self.values(plan, source, &key.keys[..level]);
                values.iter().any(|(k, _)| k == own)
            })
    }

    /// The error for `selector`, which names no step of `node` the parent had.
    fn unknown_step(&self, plan: &Plan, selector: &str, node: usize) -> SelectError {
        let op = &plan.nodes[node];
        let mut count = 0;
        let mut examples = Vec::new();
        self.each_step(plan, &op.scope, &mut Vec::new(), &mut |keys| {
            count += 1;
            if examples.len() < SHOWN {
                examples.push(
                    StepKey::new(node, keys.to_vec())
                        .display(&op.name)
                        .to_string(),
                );
            }
        });
        SelectError::UnknownStep {
            selector: selector.to_string(),
            op: op.name.clone(),
            depth: op.depth(),
            count,
            examples,
        }
    }

    /// Calls `visit` with the keys of every step the parent had under `scope` (the rest of an
    /// op's scope, below the keys in `outer`).
    fn each_step(
        &self,
        plan: &Plan,
        scope: &[Source],
        outer: &mut Vec<String>,
        visit: &mut dyn FnMut(&[String]),
    ) {
        let Some((source, inner)) = scope.split_first() else {
            visit(outer);
            return;
        };
        for (key, _) in self.values(plan, source, outer) {
            outer.push(key.clone());
            self.each_step(plan, inner, outer, visit);
            outer.pop();
        }
    }
}

/// The steps `step` reads from. A key prefix stands for every clone under it: a collected op's
/// clones, or all of an op's steps when `step` has no keys.
fn upstream<'a>(plan: &'a Plan, step: &'a StepKey) -> impl Iterator<Item = StepKey> + 'a {
    plan.nodes[step.node]
        .inputs
        .iter()
        .filter_map(move |input| {
            let s = input.source.source()?;
            let keys = step.keys.len().min(plan.nodes[s.node].depth());
            Some(StepKey::new(s.node, step.keys[..keys].to_vec()))
        })
}

/// `step` and the steps up to `levels` levels upstream of it.
fn with_ancestors(plan: &Plan, step: StepKey, levels: usize) -> HashSet<StepKey> {
    let mut found = HashSet::from([step.clone()]);
    let mut frontier = vec![step];
    for _ in 0..levels.min(plan.nodes.len()) {
        frontier = frontier
            .iter()
            .flat_map(|s| upstream(plan, s))
            .filter(|s| found.insert(s.clone()))
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

    /// A parent run in which step `producer` yielded `keys` on output `result`.
    fn yielded(parent: &mut Prior, plan: &Plan, producer: &str, keys: &[&str]) {
        let producer = plan.step_key(producer).unwrap();
        let values = keys.iter().map(|k| (k.to_string(), Vec::new())).collect();
        parent.emitted.push((producer, "result".into(), values));
    }

    fn parse(plan: &Plan, selectors: &[&str], parent: &Prior) -> Result<Selection, SelectError> {
        let selectors: Vec<String> = selectors.iter().map(|s| s.to_string()).collect();
        Selection::parse(plan, &selectors, parent)
    }

    /// Which of `steps` `selectors` cover, the parent of CHAIN having yielded `a` and `b`.
    fn covered(selectors: &[&str], steps: &[&str]) -> Vec<bool> {
        let plan = plan(CHAIN).unwrap();
        let mut parent = Prior::default();
        yielded(&mut parent, &plan, "emit", &["a", "b"]);
        let selection = parse(&plan, selectors, &parent).unwrap();
        steps
            .iter()
            .map(|s| selection.covers(&plan.step_key(s).unwrap()))
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
    fn the_ancestors_of_a_clone_are_the_steps_it_read_from() {
        let steps = [
            "emit", "one", "add[a]", "add[b]", "echo[a]", "echo[b]", "sum",
        ];
        assert_eq!(
            covered(&["+echo[a]"], &steps),
            [false, false, true, false, true, false, true]
        );
        // `add[a]` read `emit` and `one`, which are not mapped: re-running them re-runs every
        // clone.
        assert_eq!(covered(&["++echo[a]"], &steps), [true; 7]);
        assert_eq!(covered(&["*echo[b]"], &steps), [true; 7]);
    }

    #[test]
    fn unknown_ops_are_errors() {
        let plan = plan(CHAIN).unwrap();
        for selector in ["nope", "nope[a]", "*nope"] {
            let err = parse(&plan, &[selector], &Prior::default()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("selection `{selector}` names no op of the job")
            );
        }
    }

    #[test]
    fn a_step_the_parent_did_not_have_is_an_error_showing_those_it_had() {
        let plan = plan(CHAIN).unwrap();
        let mut parent = Prior::default();
        yielded(&mut parent, &plan, "emit", &["k0", "k1", "k2", "k3"]);
        let error = |selector: &str| parse(&plan, &[selector], &parent).unwrap_err().to_string();
        let had = "names no step of the parent run, which had 4 steps of op `add`: \
                   `add[k0]`, `add[k1]`, `add[k2]`, ...";
        // A key it did not yield, too many or too few keys, a malformed key.
        for selector in [
            "add[k99]",
            "+add[k99]",
            "add[k0][k1]",
            "add[]",
            "add[k0",
            "add[k0]x",
        ] {
            assert_eq!(error(selector), format!("selection `{selector}` {had}"));
        }
        assert_eq!(
            error("sum[k0]"),
            "selection `sum[k0]` names no step of the parent run, which had 1 step of op `sum`: `sum`"
        );
        assert!(parse(&plan, &["add[k3]", "echo[k0]"], &parent).is_ok());
    }

    #[test]
    fn a_clone_of_an_op_that_never_ran_is_an_error_but_the_op_is_not() {
        let plan = plan(CHAIN).unwrap();
        let err = parse(&plan, &["echo[a]"], &Prior::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "selection `echo[a]` names no step of the parent run, which had no steps of op \
             `echo` (they would be named like `echo[key]`)"
        );
        let selection = parse(&plan, &["echo"], &Prior::default()).unwrap();
        assert!(selection.covers(&plan.step_key("sum").unwrap()));
    }

    #[test]
    fn nested_clones_are_checked_level_by_level() {
        let plan = plan(
            "[ops.emit]\ncomponent = 'c'\n\
             [ops.inner]\ncomponent = 'c'\nop = 'emit_in'\ninputs.x = { map = 'emit' }\n\
             [ops.echo]\ncomponent = 'c'\ninputs.x = { map = 'inner' }\n\
             [ops.gather]\ncomponent = 'c'\ninputs.xs = { collect = 'echo' }\n",
        )
        .unwrap();
        let mut parent = Prior::default();
        yielded(&mut parent, &plan, "emit", &["a", "b"]);
        yielded(&mut parent, &plan, "inner[a]", &["x", "y"]);
        yielded(&mut parent, &plan, "inner[b]", &["z"]);
        assert!(parse(&plan, &["echo[a][y]", "echo[b][z]", "inner[b]"], &parent).is_ok());
        let had = "names no step of the parent run, which had 3 steps of op `echo`: \
                   `echo[a][x]`, `echo[a][y]`, `echo[b][z]`";
        for selector in ["echo[b][x]", "echo[c][x]", "echo[a]"] {
            let err = parse(&plan, &[selector], &parent).unwrap_err();
            assert_eq!(err.to_string(), format!("selection `{selector}` {had}"));
        }
        let selection = parse(&plan, &["+echo[a][x]"], &parent).unwrap();
        let covers = |step: &str| selection.covers(&plan.step_key(step).unwrap());
        assert!(covers("inner[a]") && covers("echo[a][y]") && covers("gather[a]"));
        assert!(!covers("emit") && !covers("inner[b]") && !covers("echo[b][z]"));
        // A collecting clone's parents are all the clones it collected.
        let selection = parse(&plan, &["+gather[a]"], &parent).unwrap();
        let covers = |step: &str| selection.covers(&plan.step_key(step).unwrap());
        assert!(covers("echo[a][x]") && covers("echo[a][y]") && covers("gather[a]"));
        assert!(!covers("inner[a]") && !covers("echo[b][z]") && !covers("gather[b]"));
    }
}

//! Op selection at launch (Dagster's `op_selection`): only the selected ops run, as a job of
//! their own. The ancestors and descendants a selector adds follow the job's wiring.

use std::collections::HashSet;

use super::{SelectError, Selector, each_selector};
use crate::job::{InputSpec, Job, OpSpec};

/// The names of the ops `selectors` select in `job`; every op when there are none.
pub fn select(job: &Job, selectors: &[String]) -> Result<HashSet<String>, SelectError> {
    if selectors.is_empty() {
        return Ok(job.ops.keys().cloned().collect());
    }
    let mut selected = HashSet::new();
    for text in each_selector(selectors) {
        let selector = Selector::parse(text)?;
        if !job.ops.contains_key(selector.name) {
            return Err(SelectError::UnknownOp(text.to_string()));
        }
        selected.extend(reach(job, selector.name, selector.up, |op| {
            parents(job, op)
        }));
        selected.extend(reach(job, selector.name, selector.down, |op| {
            children(job, op)
        }));
    }
    Ok(selected)
}

/// Refuses an op of `selected` with an input that still reads from an op of the job that is
/// not selected (inputs given a value no longer read from any; an op the job does not have is
/// the plan's to report).
pub fn check_upstream(job: &Job, selected: &HashSet<String>) -> Result<(), SelectError> {
    for (op, spec) in job.ops.iter().filter(|(op, _)| selected.contains(*op)) {
        for (input, upstream) in wired(spec) {
            if !selected.contains(upstream) && job.ops.contains_key(upstream) {
                return Err(SelectError::UnselectedUpstream {
                    op: op.clone(),
                    input: input.clone(),
                    upstream: upstream.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Leaves only the `selected` ops in `job`, and drops the inputs that read from the others
/// (not those that read from an op the job does not have: the plan reports them).
pub fn retain(job: &mut Job, selected: &HashSet<String>) {
    let left_out: HashSet<String> = job
        .ops
        .keys()
        .filter(|op| !selected.contains(*op))
        .cloned()
        .collect();
    job.ops.retain(|op, _| selected.contains(op));
    for spec in job.ops.values_mut() {
        spec.inputs.retain(|_, input| {
            source_op(input).is_none_or(|upstream| !left_out.contains(upstream))
        });
    }
}

/// `start` and the ops up to `levels` steps away from it through `next`.
fn reach<'a, I>(
    job: &'a Job,
    start: &'a str,
    levels: usize,
    next: impl Fn(&'a str) -> I,
) -> HashSet<String>
where
    I: Iterator<Item = &'a str>,
{
    let mut found = HashSet::from([start.to_string()]);
    let mut frontier = vec![start];
    for _ in 0..levels.min(job.ops.len()) {
        frontier = frontier
            .into_iter()
            .flat_map(&next)
            .filter(|op| found.insert(op.to_string()))
            .collect();
        if frontier.is_empty() {
            break;
        }
    }
    found
}

/// The ops `op` reads from.
fn parents<'a>(job: &'a Job, op: &str) -> impl Iterator<Item = &'a str> {
    job.ops
        .get(op)
        .into_iter()
        .flat_map(wired)
        .map(|(_, upstream)| upstream)
        .filter(|upstream| job.ops.contains_key(*upstream))
}

/// The ops that read from `op`.
fn children<'a>(job: &'a Job, op: &'a str) -> impl Iterator<Item = &'a str> {
    job.ops
        .iter()
        .filter(move |(_, spec)| wired(spec).any(|(_, upstream)| upstream == op))
        .map(|(name, _)| name.as_str())
}

/// Each input of `spec` that reads from an op, with that op.
fn wired(spec: &OpSpec) -> impl Iterator<Item = (&String, &str)> {
    spec.inputs
        .iter()
        .filter_map(|(input, source)| Some((input, source_op(source)?)))
}

/// The op an input reads from; none for a literal.
fn source_op(input: &InputSpec) -> Option<&str> {
    input.reference().map(|r| r.op.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `emit` -> `add` (mapped, with `one`) -> `echo` -> `sum` (collect), and `lone`.
    const CHAIN: &str = "[components.c]\npath = 'c.wasm'\n\
        [ops.emit]\ncomponent = 'c'\n\
        [ops.one]\ncomponent = 'c'\n\
        [ops.add]\ncomponent = 'c'\ninputs.a = { map = 'emit' }\ninputs.b = { from = 'one' }\n\
        [ops.echo]\ncomponent = 'c'\ninputs.x = { from = 'add' }\n\
        [ops.sum]\ncomponent = 'c'\ninputs.xs = { collect = 'echo' }\n\
        [ops.lone]\ncomponent = 'c'\n";

    fn job() -> Job {
        toml::from_str(CHAIN).unwrap()
    }

    /// The ops `selectors` select in CHAIN, sorted.
    fn selected(selectors: &[&str]) -> Vec<String> {
        let selectors: Vec<String> = selectors.iter().map(|s| s.to_string()).collect();
        let mut ops: Vec<String> = select(&job(), &selectors).unwrap().into_iter().collect();
        ops.sort();
        ops
    }

    #[test]
    fn each_form_adds_its_levels_of_ancestors_or_descendants() {
        assert_eq!(selected(&["echo"]), ["echo"]);
        assert_eq!(selected(&["+echo"]), ["add", "echo"]);
        assert_eq!(selected(&["++echo"]), ["add", "echo", "emit", "one"]);
        assert_eq!(selected(&["*echo"]), ["add", "echo", "emit", "one"]);
        assert_eq!(selected(&["emit+"]), ["add", "emit"]);
        assert_eq!(selected(&["emit++"]), ["add", "echo", "emit"]);
        assert_eq!(selected(&["emit+++"]), ["add", "echo", "emit", "sum"]);
        assert_eq!(selected(&["emit*"]), ["add", "echo", "emit", "sum"]);
        assert_eq!(selected(&["+add+"]), ["add", "echo", "emit", "one"]);
        assert_eq!(selected(&["*sum*"]), ["add", "echo", "emit", "one", "sum"]);
    }

    #[test]
    fn flags_and_comma_lists_add_up() {
        assert_eq!(selected(&["lone", "one"]), ["lone", "one"]);
        assert_eq!(selected(&["lone, one+"]), ["add", "lone", "one"]);
        let all = selected(&[]);
        assert_eq!(all, ["add", "echo", "emit", "lone", "one", "sum"]);
    }

    #[test]
    fn unknown_ops_and_bad_syntax_are_errors() {
        let select = |text: &str| select(&job(), &[text.to_string()]).unwrap_err().to_string();
        for text in ["nope", "*nope+", "emit,nope"] {
            let bad = text.rsplit(',').next().unwrap();
            assert_eq!(
                select(text),
                format!("selection `{bad}` names no op of the job")
            );
        }
        for text in ["", "*", "+*emit", "emit**", "emit,", "**emit"] {
            let err = select(text);
            assert!(err.contains("is not an op name with"), "{text}: {err}");
        }
    }

    #[test]
    fn an_input_from_an_unselected_op_is_refused_naming_it() {
        let job = job();
        let picked = select(&job, &["echo+".to_string()]).unwrap();
        let err = check_upstream(&job, &picked).unwrap_err();
        assert_eq!(
            err,
            SelectError::UnselectedUpstream {
                op: "echo".into(),
                input: "x".into(),
                upstream: "add".into(),
            }
        );
        assert!(err.to_string().contains("`--input echo.x=JSON`"), "{err}");
        let picked = select(&job, &["*sum".to_string()]).unwrap();
        assert_eq!(check_upstream(&job, &picked), Ok(()));
    }

    #[test]
    fn an_input_from_an_op_the_job_lacks_is_left_for_the_plan_to_report() {
        let mut job = job();
        let ghost = InputSpec::From(crate::job::OutputRef {
            op: "ghost".into(),
            output: None,
        });
        job.ops["lone"].inputs.insert("x".into(), ghost);
        let all = select(&job, &[]).unwrap();
        assert_eq!(check_upstream(&job, &all), Ok(()));
        retain(&mut job, &all);
        assert_eq!(job.ops["lone"].inputs.len(), 1);
    }

    #[test]
    fn retain_keeps_the_selected_ops_and_their_wiring_among_them() {
        let mut job = job();
        let picked = select(&job, &["add+".to_string()]).unwrap();
        retain(&mut job, &picked);
        let ops: Vec<&String> = job.ops.keys().collect();
        assert_eq!(ops, ["add", "echo"]);
        assert!(job.ops["add"].inputs.is_empty());
        assert_eq!(job.ops["echo"].inputs.len(), 1);
    }
}

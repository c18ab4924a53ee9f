use super::testing::plan;
use super::*;

fn scope_names(plan: &Plan, op: &str) -> Vec<String> {
    let node = &plan.nodes[plan.node(op).unwrap()];
    node.scope
        .iter()
        .map(|s| format!("{}.{}", plan.nodes[s.node].name, s.output))
        .collect()
}

#[test]
fn chained_maps_keep_the_scope_and_collect_closes_it() {
    let plan = plan(
        "[ops.emit]\ncomponent = 'c'\n\
         [ops.echo]\ncomponent = 'c'\ninputs.x = { map = 'emit' }\n\
         [ops.echo_2]\ncomponent = 'c'\nop = 'echo'\ninputs.x = { from = 'echo' }\n\
         [ops.sum]\ncomponent = 'c'\ninputs.xs = { collect = 'echo_2' }\n",
    )
    .unwrap();
    assert_eq!(scope_names(&plan, "echo"), ["emit.result"]);
    assert_eq!(scope_names(&plan, "echo_2"), ["emit.result"]);
    assert!(scope_names(&plan, "sum").is_empty());
    // `sum` waits on `echo_2` clones and on `emit` finishing its key list.
    let emit = &plan.nodes[plan.node("emit").unwrap()];
    assert!(emit.dependents.contains(&plan.node("sum").unwrap()));
    assert_eq!(
        plan.leaves().collect::<Vec<_>>(),
        [plan.node("sum").unwrap()]
    );
}

#[test]
fn non_dynamic_inputs_beside_a_mapped_one_are_broadcast() {
    let plan = plan(
        "[ops.one]\ncomponent = 'c'\n[ops.emit]\ncomponent = 'c'\n\
         [ops.add]\ncomponent = 'c'\ninputs.a = { map = 'emit' }\ninputs.b = { from = 'one' }\n",
    )
    .unwrap();
    assert_eq!(scope_names(&plan, "add"), ["emit.result"]);
}

#[test]
fn nested_maps_get_a_two_level_scope_and_collect_pops_one() {
    let plan = plan(
        "[ops.emit]\ncomponent = 'c'\n\
         [ops.emit_in]\ncomponent = 'c'\ninputs.x = { map = 'emit' }\n\
         [ops.echo]\ncomponent = 'c'\ninputs.x = { map = 'emit_in' }\n\
         [ops.sum]\ncomponent = 'c'\ninputs.xs = { collect = 'echo' }\n",
    )
    .unwrap();
    assert_eq!(
        scope_names(&plan, "echo"),
        ["emit.result", "emit_in.result"]
    );
    assert_eq!(scope_names(&plan, "sum"), ["emit.result"]);
}

#[test]
fn collecting_a_dynamic_output_directly_is_allowed() {
    let plan = plan(
        "[ops.two]\ncomponent = 'c'\n\
         [ops.sum]\ncomponent = 'c'\ninputs.xs = { collect = 'two', output = 'values' }\n",
    )
    .unwrap();
    assert!(scope_names(&plan, "sum").is_empty());
}

fn error(ops: &str) -> String {
    plan(ops).unwrap_err().to_string()
}

#[test]
fn reports_unknown_references_by_op_and_name() {
    assert_eq!(
        error("[ops.x]\ncomponent = 'nope'\n"),
        "op `x` uses unknown component `nope`"
    );
    assert_eq!(
        error("[ops.x]\ncomponent = 'c'\n"),
        "op `x`: component `c` has no op `x` (it has `emit`, `emit_in`, `two`, `echo`, `add`, `one`, `sum`, `gather`, `failures`, `branch`, `maybe_emit`)"
    );
    assert_eq!(
        error("[ops.echo]\ncomponent = 'c'\ninputs.x = { from = 'ghost' }\n"),
        "op `echo`: input `x` reads from unknown op `ghost`"
    );
    assert_eq!(
        error(
            "[ops.one]\ncomponent = 'c'\n[ops.echo]\ncomponent = 'c'\ninputs.x = { from = 'one', output = 'total' }\n"
        ),
        "op `echo`: input `x` reads output `total` of `one`, which has outputs `result`"
    );
    assert_eq!(
        error(
            "[ops.two]\ncomponent = 'c'\n[ops.echo]\ncomponent = 'c'\ninputs.x = { map = 'two' }\n"
        ),
        "op `echo`: input `x` must name one of the outputs of `two` (`values`, `negatives`) with `output = \"...\"`"
    );
}

#[test]
fn reports_unwired_and_unknown_inputs() {
    assert_eq!(
        error("[ops.add]\ncomponent = 'c'\ninputs.a = { value = 1 }\n"),
        "op `add`: input `b` is not wired: wire it (`inputs.b = { from = \"OP\" }`) or give \
         it a value (`inputs.b = { value = ... }`, `[ops.add.inputs]` in run config, or \
         `--input add.b=JSON`)"
    );
    assert_eq!(
        error("[ops.one]\ncomponent = 'c'\ninputs.z = { value = 1 }\n"),
        "op `one` wires input `z`, which it does not take (it takes (none))"
    );
}

#[test]
fn reports_misuse_of_map_and_collect() {
    assert_eq!(
        error(
            "[ops.emit]\ncomponent = 'c'\n[ops.echo]\ncomponent = 'c'\ninputs.x = { from = 'emit' }\n"
        ),
        "op `echo`: input `x` takes dynamic output `emit.result` directly; use `map` or `collect`"
    );
    assert_eq!(
        error(
            "[ops.one]\ncomponent = 'c'\n[ops.echo]\ncomponent = 'c'\ninputs.x = { map = 'one' }\n"
        ),
        "op `echo`: input `x` maps over `one.result`, which is not a dynamic output"
    );
    assert_eq!(
        error(
            "[ops.one]\ncomponent = 'c'\n[ops.sum]\ncomponent = 'c'\ninputs.xs = { collect = 'one' }\n"
        ),
        "op `sum`: input `xs` collects `one.result`, which is neither a dynamic output nor the output of a mapped op"
    );
}

#[test]
fn rejects_collecting_a_dynamic_output_the_op_is_mapped_over() {
    let emit = "[ops.emit]\ncomponent = 'c'\n";
    assert_eq!(
        error(&format!(
            "{emit}[ops.add]\ncomponent = 'c'\ninputs.a = {{ map = 'emit' }}\ninputs.b = {{ collect = 'emit' }}\n"
        )),
        "op `add` cannot both collect over dynamic output `emit.result` (input `b`) and be downstream of it (input `a`)"
    );
    // Collecting the clones of a step mapped over the same output.
    assert_eq!(
        error(&format!(
            "{emit}[ops.echo]\ncomponent = 'c'\ninputs.x = {{ map = 'emit' }}\n\
             [ops.add]\ncomponent = 'c'\ninputs.a = {{ from = 'echo' }}\ninputs.b = {{ collect = 'echo' }}\n"
        )),
        "op `add` cannot both collect over dynamic output `emit.result` (input `b`) and be downstream of it (input `a`)"
    );
    // Collecting the outer output from inside a nested map.
    assert_eq!(
        error(&format!(
            "{emit}[ops.emit_in]\ncomponent = 'c'\ninputs.x = {{ map = 'emit' }}\n\
             [ops.add]\ncomponent = 'c'\ninputs.a = {{ map = 'emit_in' }}\ninputs.b = {{ collect = 'emit' }}\n"
        )),
        "op `add` cannot both collect over dynamic output `emit.result` (input `b`) and be downstream of it (input `a`)"
    );
}

#[test]
fn rejects_two_unrelated_dynamic_sources() {
    assert_eq!(
        error(
            "[ops.two]\ncomponent = 'c'\n\
             [ops.add]\ncomponent = 'c'\ninputs.a = { map = 'two', output = 'values' }\ninputs.b = { map = 'two', output = 'negatives' }\n"
        ),
        "op `add` is downstream of two unrelated dynamic outputs, `two.values` and `two.negatives`; collect one of them first"
    );
}

#[test]
fn rejects_cycles_and_bad_names() {
    let err = error(
        "[ops.echo]\ncomponent = 'c'\ninputs.x = { from = 'echo_2' }\n\
         [ops.echo_2]\ncomponent = 'c'\nop = 'echo'\ninputs.x = { from = 'echo' }\n",
    );
    assert!(
        [
            "the job has a cycle: `echo` -> `echo_2` -> `echo`",
            "the job has a cycle: `echo_2` -> `echo` -> `echo_2`"
        ]
        .contains(&err.as_str()),
        "{err}"
    );
    assert_eq!(
        error("[ops.'bad-name']\ncomponent = 'c'\nop = 'one'\n"),
        "invalid op name `bad-name`: it contains '-'; only ASCII letters, digits and `_` are allowed"
    );
}

#[test]
fn step_keys_read_back() {
    let plan = plan(
        "[ops.emit]\ncomponent = 'c'\n\
         [ops.emit_in]\ncomponent = 'c'\ninputs.x = { map = 'emit' }\n\
         [ops.echo]\ncomponent = 'c'\ninputs.x = { map = 'emit_in' }\n",
    )
    .unwrap();
    let echo = plan.node("echo").unwrap();
    let key = plan.step_key("echo[a][b_2]").unwrap();
    assert_eq!(key, StepKey::new(echo, vec!["a".into(), "b_2".into()]));
    assert_eq!(key.display("echo").to_string(), "echo[a][b_2]");
    assert_eq!(
        plan.step_key("emit"),
        Some(StepKey::new(plan.node("emit").unwrap(), vec![]))
    );
    for bad in ["echo[a]", "emit[a]", "nope", "echo[a][b", "emit_in"] {
        assert_eq!(plan.step_key(bad), None, "{bad}");
    }
}

#[test]
fn a_zip_follows_the_map_beside_it() {
    let plan = plan(
        "[ops.emit]\ncomponent = 'c'\n[ops.emit_2]\ncomponent = 'c'\nop = 'emit'\n\
         [ops.add]\ncomponent = 'c'\ninputs.a = { map = 'emit' }\n\
         inputs.b = { map = 'emit_2', zip = true }\n",
    )
    .unwrap();
    assert_eq!(scope_names(&plan, "add"), ["emit.result"]);
    let emit_2 = &plan.nodes[plan.node("emit_2").unwrap()];
    assert!(emit_2.dependents.contains(&plan.node("add").unwrap()));
}

#[test]
fn zips_without_a_map_or_across_levels_are_refused() {
    let err = plan(
        "[ops.one]\ncomponent = 'c'\n[ops.emit]\ncomponent = 'c'\n\
         [ops.add]\ncomponent = 'c'\ninputs.a = { from = 'one' }\n\
         inputs.b = { map = 'emit', zip = true }\n",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "op `add`: input `b` zips `emit.result`, but the op maps over nothing to zip it with; give one input `map` without `zip`"
    );
    // `emit_in` yields inside each clone of `emit`: its keys are a level deeper.
    let err = plan(
        "[ops.emit]\ncomponent = 'c'\n\
         [ops.emit_in]\ncomponent = 'c'\ninputs.x = { map = 'emit' }\n\
         [ops.add]\ncomponent = 'c'\ninputs.a = { map = 'emit' }\n\
         inputs.b = { map = 'emit_in', zip = true }\n",
    )
    .unwrap_err();
    assert!(
        matches!(&err, PlanError::ZipScope { input, mapped, .. } if input == "b" && mapped == "emit.result"),
        "{err}"
    );
}

#[test]
fn failures_need_a_partial_collect_and_min_success_needs_clones() {
    let err = plan(
        "[ops.emit]\ncomponent = 'c'\n[ops.echo]\ncomponent = 'c'\ninputs.x = { map = 'emit' }\n\
         [ops.failures]\ncomponent = 'c'\ninputs.xs = { collect = 'echo' }\n\
         inputs.errors = { failures = 'echo' }\n",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "op `failures`: input `errors` takes the failures of `echo`, which needs another input collecting `echo` with `min_success`"
    );
    let err = plan(
        "[ops.emit]\ncomponent = 'c'\n\
         [ops.sum]\ncomponent = 'c'\ninputs.xs = { collect = 'emit', min_success = 0.5 }\n",
    )
    .unwrap_err();
    assert!(matches!(err, PlanError::MinSuccessOfValues { .. }), "{err}");
}

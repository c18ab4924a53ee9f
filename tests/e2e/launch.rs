//! Launching part of a job (`--select`, Dagster's op selection) and giving op inputs values
//! (`--input`, run config `[ops.NAME.inputs]`, job file literals), through `host run`.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::support::{Ran, TempJob, component, host_in, of_kind, only_run, root};

/// `one` and `dynamic_values` -> `add` (mapped, `b` from `one`) -> `process` (collect): 65.
fn other_arg() -> PathBuf {
    component("mapping");
    root().join("guest-examples/jobs/other_arg.toml")
}

/// `host run JOB args... --json` on a fresh store; returns the store with what ran.
fn run_json(job: &Path, args: &[&str], code: i32) -> (tempfile::TempDir, Ran) {
    let store = tempfile::tempdir().unwrap();
    let mut command = vec!["run", job.to_str().unwrap()];
    command.extend(args);
    command.push("--json");
    let ran = host_in(store.path(), &command).expect_code(code);
    (store, ran)
}

/// The ops that started a step, in order of first start.
fn started_ops(ran: &Ran) -> Vec<String> {
    let mut ops: Vec<String> = Vec::new();
    for event in of_kind(&ran.events(), "STEP_START") {
        let key = event["step_key"].as_str().unwrap();
        let op = key.split('[').next().unwrap().to_string();
        if !ops.contains(&op) {
            ops.push(op);
        }
    }
    ops.sort();
    ops
}

/// Runs `job` with `args` and returns its final outputs.
fn outputs(store: &Path, job: &Path, args: &[&str]) -> serde_json::Value {
    let mut command = vec!["run", job.to_str().unwrap()];
    command.extend(args);
    host_in(store, &command).expect_code(0).json()
}

/// Asserts that the command failed before anything ran, saying `message`.
fn refused(store: &Path, ran: &Ran, message: &str) {
    assert!(
        ran.stderr.contains(message),
        "expected {message:?} in:\n{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
    let runs = host_in(store, &["runs"]).expect_code(0);
    assert_eq!(runs.stdout, "", "nothing may have run");
}

#[test]
fn only_the_selected_ops_run() {
    let (_store, ran) = run_json(&other_arg(), &["--select", "one"], 0);
    assert_eq!(started_ops(&ran), ["one"]);

    let (_store, ran) = run_json(&other_arg(), &["--select", "*add"], 0);
    assert_eq!(started_ops(&ran), ["add", "dynamic_values", "one"]);
    let store = tempfile::tempdir().unwrap();
    let final_outputs = outputs(store.path(), &other_arg(), &["--select", "*add"]);
    let added = final_outputs["add"]
        .as_object()
        .expect("add is the leaf, mapped");
    assert_eq!(added.len(), 10, "{final_outputs}");
    assert_eq!(added.values().map(|v| v.as_i64().unwrap()).sum::<i64>(), 65);
    assert!(final_outputs.get("process").is_none(), "{final_outputs}");
}

#[test]
fn a_selection_needing_an_unselected_op_is_refused_naming_it() {
    let store = tempfile::tempdir().unwrap();
    let job = other_arg();
    let ran = host_in(
        store.path(),
        &["run", job.to_str().unwrap(), "--select", "add+"],
    );
    refused(
        store.path(),
        &ran.expect_code(2),
        "op `add` is selected but its input `a` reads from op `dynamic_values`, which is not: \
         select it too (e.g. `*add`) or give the input a value (`--input add.a=JSON`)",
    );
    let ran = host_in(
        store.path(),
        &["run", job.to_str().unwrap(), "--select", "+nope"],
    );
    refused(
        store.path(),
        &ran.expect_code(2),
        "selection `+nope` names no op of the job",
    );
    let ran = host_in(
        store.path(),
        &["validate", job.to_str().unwrap(), "--select", "add"],
    );
    refused(
        store.path(),
        &ran.expect_code(2),
        "op `add` is selected but its input `a`",
    );
}

#[test]
fn inputs_given_at_launch_reach_the_op_and_its_output() {
    let store = tempfile::tempdir().unwrap();
    let job = other_arg();
    let given = [
        "--select", "add", "--input", "add.a=5", "--input", "add.b=7",
    ];
    assert_eq!(outputs(store.path(), &job, &given), json!({"add": 12}));
    // A comma list and a descendant selector; `b` no longer reads from `one`, left out.
    let given = ["--select", "dynamic_values,add*", "--input", "add.b=100"];
    assert_eq!(
        outputs(store.path(), &job, &given),
        json!({"process": 1055})
    );

    let listed = host_in(store.path(), &["runs", "--json"]).expect_code(0);
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(listed[0]["select"], json!(["dynamic_values,add*"]));
    assert_eq!(listed[0]["inputs"], json!({"add": {"b": 100}}));
    assert_eq!(listed[1]["inputs"], json!({"add": {"a": 5, "b": 7}}));
    let shown = host_in(store.path(), &["show", "latest"]).expect_code(0);
    assert!(
        shown
            .stdout
            .contains("selected ops dynamic_values,add*\ninputs add.b=100\n"),
        "{}",
        shown.stdout
    );
}

/// `add` with both inputs given in the job file: 10 + 1.
fn literal_add() -> TempJob {
    let mapping = format!("{:?}", component("mapping").display().to_string());
    TempJob::new(&format!(
        "[components.mapping]\npath = {mapping}\n\
         [ops.add]\ncomponent = 'mapping'\ninputs.a = {{ value = 10 }}\ninputs.b = {{ value = 1 }}\n"
    ))
}

#[test]
fn launch_beats_run_config_beats_the_job_file() {
    let store = tempfile::tempdir().unwrap();
    let job = literal_add();
    let path = job.path();
    assert_eq!(outputs(store.path(), &path, &[]), json!({"add": 11}));
    let run_config = job.dir.path().join("run.toml");
    std::fs::write(&run_config, "[ops.add.inputs]\nb = 2\n").unwrap();
    let config = ["--config", run_config.to_str().unwrap()];
    assert_eq!(outputs(store.path(), &path, &config), json!({"add": 12}));
    let launched = [config[0], config[1], "--input", "add.b=3"];
    assert_eq!(outputs(store.path(), &path, &launched), json!({"add": 13}));
    let launched = [config[0], config[1], "--input", "add.a=20"];
    assert_eq!(outputs(store.path(), &path, &launched), json!({"add": 22}));
}

#[test]
fn values_that_do_not_fit_the_input_schema_are_refused_before_anything_runs() {
    let store = tempfile::tempdir().unwrap();
    let job = literal_add();
    let path = job.path();
    let path = path.to_str().unwrap();
    let ran = host_in(store.path(), &["run", path, "--input", "add.b=hello"]).expect_code(2);
    refused(
        store.path(),
        &ran,
        "op `add`: input `b` is given \"hello\", which does not have the shape the op declares: \
         \"hello\" is not of type \"integer\"",
    );
    let ran = host_in(store.path(), &["run", path, "--input", "add.b=[1, 2]"]).expect_code(2);
    refused(
        store.path(),
        &ran,
        "input `b` is given [1,2], which does not have the shape",
    );
    // A job file literal is checked the same way.
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("value = 10", "value = 'ten'");
    std::fs::write(path, text).unwrap();
    let ran = host_in(store.path(), &["run", path]).expect_code(2);
    refused(store.path(), &ran, "op `add`: input `a` is given \"ten\"");
}

#[test]
fn values_for_what_does_not_exist_or_is_wired_are_refused() {
    let store = tempfile::tempdir().unwrap();
    let job = other_arg();
    let job = job.to_str().unwrap();
    for (args, message) in [
        (
            vec!["--input", "nope.x=1"],
            "`--input` gives a value to input `x` of op `nope`, which the job does not have",
        ),
        (
            vec!["--input", "add.zz=1"],
            "`--input` gives a value to input `zz` of op `add`, which does not take it (it takes \
             `a`, `b`)",
        ),
        (
            vec!["--input", "add.b=1"],
            "`--input` gives a value to input `b` of op `add`, which reads from op `one`: a \
             value can replace that only when the selection leaves `one` out",
        ),
        (
            vec!["--select", "one", "--input", "add.b=1"],
            "`--input` gives a value to input `b` of op `add`, but the selection leaves `add` out",
        ),
        (
            vec!["--input", "add.b"],
            "invalid value 'add.b' for '--input <OP.INPUT=VALUE>': `add.b` is not OP.INPUT=VALUE",
        ),
        (vec!["--input", "add.b={1"], "`{1` is not valid JSON"),
        (
            vec!["--select", "one++*"],
            "selection `one++*` is not an op name with",
        ),
    ] {
        let mut command = vec!["run", job];
        command.extend(args);
        let ran = host_in(store.path(), &command).expect_code(2);
        refused(store.path(), &ran, message);
    }
}

#[test]
fn an_unwired_input_says_how_to_give_it_a_value_and_then_runs() {
    let store = tempfile::tempdir().unwrap();
    let job = literal_add();
    let path = job.path();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("inputs.b = { value = 1 }\n", "");
    std::fs::write(&path, text).unwrap();
    let ran = host_in(store.path(), &["run", path.to_str().unwrap()]).expect_code(2);
    refused(
        store.path(),
        &ran,
        "op `add`: input `b` is not wired: wire it (`inputs.b = { from = \"OP\" }`) or give it a \
         value (`inputs.b = { value = ... }`, `[ops.add.inputs]` in run config, or `--input \
         add.b=JSON`)",
    );
    let given = ["--input", "add.b=-4"];
    assert_eq!(outputs(store.path(), &path, &given), json!({"add": 6}));
}

/// `one` -> `add` (`b` given) -> `fail_on` (fails on 3), and `lone`, which no selection takes.
const FAILING: &str = "[ops.one]\ncomponent = 'mapping'\n\
    [ops.lone]\ncomponent = 'mapping'\nop = 'one'\n\
    [ops.add]\ncomponent = 'mapping'\ninputs.a = { from = 'one' }\n\
    [ops.fail_on]\ncomponent = 'testkit'\nconfig = { fail_on = [3] }\n\
    inputs.value = { from = 'add' }\n";

#[test]
fn resume_and_reexecution_run_the_recorded_selection_on_the_recorded_values() {
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    let mapping = format!("{:?}", component("mapping").display().to_string());
    let job = TempJob::new(&format!(
        "[components.mapping]\npath = {mapping}\n{FAILING}"
    ));
    let path = job.path();
    let path = path.to_str().unwrap();
    let launch = ["run", path, "--select", "*fail_on", "--input", "add.b=2"];
    host_in(store, &launch).expect_code(1);
    let id = only_run(store);

    // Without the recorded value `add.b` would be unwired, and `lone` would run.
    let resumed = host_in(store, &["resume", &id, "--json"]).expect_code(1);
    assert_eq!(started_ops(&resumed), ["fail_on"]);
    assert!(
        resumed.stdout.contains("value 3 is unlucky"),
        "{}",
        resumed.stdout
    );

    let fixed = job.dir.path().join("fixed.toml");
    std::fs::write(&fixed, "[ops.fail_on.config]\nfail_on = []\n").unwrap();
    let fixed = fixed.to_str().unwrap();
    let again = [
        "reexecute",
        &id,
        "--from-failure",
        "--config",
        fixed,
        "--json",
    ];
    let reexecuted = host_in(store, &again).expect_code(0);
    assert_eq!(started_ops(&reexecuted), ["fail_on"]);
    let listed = host_in(store, &["runs", "--json"]).expect_code(0);
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(listed[0]["select"], json!(["*fail_on"]));
    assert_eq!(listed[0]["inputs"], json!({"add": {"b": 2}}));
    let latest = host_in(store, &["output", "latest", "fail_on"]).expect_code(0);
    assert_eq!(latest.stdout.trim(), "3");
}

#[test]
fn validate_and_graph_take_the_selection() {
    let job = other_arg();
    let job = job.to_str().unwrap();
    let store = tempfile::tempdir().unwrap();
    let validated = host_in(store.path(), &["validate", job, "--select", "*add"]).expect_code(0);
    assert!(
        validated
            .stderr
            .contains("job `other_arg` is valid: 3 ops (1 mapped)"),
        "{}",
        validated.stderr
    );
    let args = [
        "graph", job, "--format", "mermaid", "--select", "add", "--input", "add.a=1",
    ];
    let graph = host_in(store.path(), &[&args[..], &["--input", "add.b=2"]].concat());
    let graph = graph.expect_code(0).stdout;
    assert!(graph.contains("\"add\""), "{graph}");
    for left_out in ["one", "dynamic_values", "process"] {
        assert!(!graph.contains(&format!("\"{left_out}")), "{graph}");
    }
}

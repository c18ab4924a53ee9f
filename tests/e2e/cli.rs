//! `host validate`, `host graph`, `host inspect`, `host doctor`, `host completions`, `host man`
//! and run config layering.

use serde_json::json;

use crate::support::{TempJob, component, host, host_in, root};

const FAN_OUT_SUM: &str = "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 3 }\n\
    [ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out' }\n\
    [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'identity' }\n";

#[test]
fn validate_accepts_a_good_job_and_says_what_it_holds() {
    let job = root().join("guest-examples/jobs/dynamic_graph.toml");
    component("dynamic_graph");
    let ran = host(["validate".as_ref(), job.as_os_str()]).expect_code(0);
    assert!(
        ran.stderr
            .contains("job `dynamic_graph` is valid: 3 ops (1 mapped), 1 components"),
        "{}",
        ran.stderr
    );
}

#[test]
fn graph_draws_dot_and_mermaid() {
    component("dynamic_graph");
    let job = root().join("guest-examples/jobs/dynamic_graph.toml");
    let dot = host([
        "graph".as_ref(),
        job.as_os_str(),
        "--format".as_ref(),
        "dot".as_ref(),
    ])
    .expect_code(0);
    assert!(
        dot.stdout.starts_with("digraph \"dynamic_graph\" {"),
        "{}",
        dot.stdout
    );
    assert!(
        dot.stdout
            .contains(r#""load_pieces" -> "compute_piece[?]" [style=dashed, label="map piece"];"#),
        "{}",
        dot.stdout
    );
    assert!(dot.stdout.contains(
        r#""compute_piece[?]" -> "merge_and_analyze" [style=bold, label="collect pieces"];"#
    ));
    let mermaid = host([
        "graph".as_ref(),
        job.as_os_str(),
        "--format".as_ref(),
        "mermaid".as_ref(),
    ])
    .expect_code(0);
    assert!(
        mermaid.stdout.starts_with(
            "flowchart LR\n  n0[\"load_pieces\"]\n  n1[\"compute_piece[?]\"]\n  \
             n2[\"merge_and_analyze\"]\n"
        ),
        "{}",
        mermaid.stdout
    );
    assert!(
        mermaid.stdout.contains("  n0 -. \"map piece\" .-> n1\n"),
        "{}",
        mermaid.stdout
    );
    assert!(
        mermaid
            .stdout
            .contains("  n1 == \"collect pieces\" ==> n2\n")
    );
}

#[test]
fn inspect_lists_ops_with_inputs_and_outputs() {
    let ran = host(["inspect".as_ref(), component("mapping").as_os_str()]).expect_code(0);
    assert!(ran.stdout.contains("multiple_dynamic_values\n  yields values 0, 1 and negatives 0, -1\n  inputs: (none)\n  dynamic output: `values`\n  dynamic output: `negatives`\n"), "{}", ran.stdout);
    let integer = r#"{"format":"int64","title":"int64","type":"integer"}"#;
    let add = format!(
        "add\n  returns a + b\n  inputs: `a`, `b`\n  input: `a`: {integer}\n  input: `b`: \
         {integer}\n  output: `result`: {integer}\n"
    );
    assert!(ran.stdout.contains(&add), "{}", ran.stdout);
}

#[test]
fn run_config_overrides_op_config() {
    let job = TempJob::new(FAN_OUT_SUM);
    assert_eq!(job.run(&[]).expect_code(0).json(), json!({"sum": 3}));
    let run_config = job.dir.path().join("run.toml");
    std::fs::write(&run_config, "[ops.fan_out.config]\nn = 5\n").unwrap();
    let ran = job
        .run(&["--config", run_config.to_str().unwrap()])
        .expect_code(0);
    assert_eq!(ran.json(), json!({"sum": 10}));
}

#[test]
fn run_config_with_an_unknown_op_is_rejected() {
    let job = TempJob::new(FAN_OUT_SUM);
    let run_config = job.dir.path().join("run.toml");
    std::fs::write(&run_config, "[ops.fan_in.config]\nn = 5\n").unwrap();
    let ran = job
        .run(&["--config", run_config.to_str().unwrap()])
        .expect_code(2);
    assert!(
        ran.stderr
            .contains("run config sets op `fan_in`, which the job does not have"),
        "{}",
        ran.stderr
    );
}

#[test]
fn an_empty_fan_out_gives_collect_an_empty_list() {
    let job = TempJob::new(&FAN_OUT_SUM.replace("n = 3", "n = 0"));
    assert_eq!(job.run(&[]).expect_code(0).json(), json!({"sum": 0}));
}

#[test]
fn a_big_fan_out_runs_every_clone() {
    let job = TempJob::new(&FAN_OUT_SUM.replace("n = 3", "n = 2000"));
    assert_eq!(
        job.run(&[]).expect_code(0).json(),
        json!({"sum": 1999 * 2000 / 2})
    );
}

#[test]
fn usage_errors_exit_2() {
    let ran = host(["run"]).expect_code(2);
    assert!(ran.stderr.contains("Usage"), "{}", ran.stderr);
    host(["run", "job.toml", "--max-concurrent", "0"]).expect_code(2);
}

#[test]
fn run_config_reaches_the_op_of_an_example() {
    // Chunks of 10 instead of 2: 10 clones, same total.
    let dir = tempfile::tempdir().unwrap();
    let run_config = dir.path().join("run.toml");
    std::fs::write(&run_config, "[ops.load_pieces.config]\nchunk_size = 10\n").unwrap();
    let ran =
        crate::support::run_example("dynamic_graph", &["--config", run_config.to_str().unwrap()])
            .expect_code(0);
    assert_eq!(ran.json(), json!({"merge_and_analyze": 9900}));
    assert!(
        ran.stderr.contains("compute_piece      10 succeeded"),
        "{}",
        ran.stderr
    );
}

#[test]
fn the_readme_job_file_reference_parses() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = &readme[readme.find("## Job file").expect("job file section")..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let job: host::job::Job = toml::from_str(block).unwrap_or_else(|err| panic!("{err}"));
    let limits =
        host::limits::Limits::layered(&job.limits, &host::limits::LimitsSpec::default()).unwrap();
    // The block lists the defaults; keep them in step with the code.
    assert_eq!(limits, host::limits::Limits::DEFAULT);
}

#[test]
fn guest_text_cannot_forge_terminal_output() {
    let job = TempJob::new(
        "[ops.forge_output]\ncomponent = 'adversary'\n\
         config = { text = \"\\u001b[2J\\u001b[32mok\\nrun 1 succeeded in 1.0 ms (1 steps)\" }\n",
    );
    let ran = job.run(&[]).expect_code(1);
    assert!(!ran.stderr.contains('\u{1b}'), "{}", ran.stderr);
    // Every line the guest wrote carries its step's prefix; no line is the host's verdict but
    // the real one.
    let verdicts: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|line| line.starts_with("run ") && !line.ends_with(" started"))
        .collect();
    assert_eq!(verdicts.len(), 1, "{}", ran.stderr);
    assert!(verdicts[0].contains("failed"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("[forge_output] info: run 1 succeeded"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("[forge_output] stdout: run 1 succeeded"),
        "{}",
        ran.stderr
    );
    // `--json` keeps the raw text.
    let events = job.run(&["--json"]).expect_code(1).events();
    let failure = crate::support::failure(&events, "forge_output");
    assert!(failure["error"].as_str().unwrap().contains("\u{1b}[2J"));
}

#[test]
fn doctor_passes_a_built_job_and_fails_an_unbuilt_one_saying_how_to_build_it() {
    let store = tempfile::tempdir().unwrap();
    let job = TempJob::new(FAN_OUT_SUM);
    let ran = host_in(store.path(), &["doctor", job.path().to_str().unwrap()]).expect_code(0);
    assert!(ran.stderr.contains("run store"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("component `testkit`") && ran.stderr.contains("loads:"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.ends_with("no problems found\n"),
        "{}",
        ran.stderr
    );

    let (_dir, unbuilt) = crate::support::unbuilt_job();
    let ran = host_in(store.path(), &["doctor", unbuilt.to_str().unwrap()]).expect_code(1);
    assert!(
        ran.stderr.contains("fail  component `words`")
            && ran.stderr.contains("is not built")
            && ran
                .stderr
                .contains(&format!("help: host build {}", unbuilt.display())),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.ends_with("1 problem(s) found\n"),
        "{}",
        ran.stderr
    );
}

#[test]
fn completions_and_the_manual_page_come_from_the_binary() {
    let bash = host(["completions", "bash"]).expect_code(0).stdout;
    assert!(
        bash.contains("_host()") && bash.contains("reexecute"),
        "{bash}"
    );
    let zsh = host(["completions", "zsh"]).expect_code(0).stdout;
    assert!(zsh.starts_with("#compdef host"), "{zsh}");
    let man = host(["man"]).expect_code(0).stdout;
    assert!(
        man.contains(".TH host 1") && man.contains("doctor"),
        "{man}"
    );
    host(["completions", "tcsh"]).expect_code(2);
}

#[test]
fn json_mode_prints_errors_as_json() {
    let ran = host(["run", "no-such-job.toml", "--json"]).expect_code(2);
    let error: serde_json::Value = serde_json::from_str(ran.stdout.trim()).unwrap();
    assert_eq!(error["error"], "cannot read `no-such-job.toml`", "{error}");
    assert!(error["causes"].is_array(), "{error}");
}

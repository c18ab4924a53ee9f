//! Ops in Rust, Python and JavaScript through the real `host`: the dynamic graph in each
//! language and mixed across them, `host new` + `host build` + `host run` from an empty
//! directory, config schemas checked before a run, and components built against the previous
//! version of the op interface.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::{Ran, component, host, host_command, root};

/// PATH with the Python and JavaScript build tools (installed by `.ci/tools-python` and
/// `.ci/tools-js` into `${SHOAL_TOOLS:-target/tools}`) in front, or `None`, said loudly, when
/// they are missing; under CI they must be there.
fn tools_path() -> Option<OsString> {
    let tools = std::env::var_os("SHOAL_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/tools"));
    let bins = [tools.join("venv/bin"), tools.join("js/node_modules/.bin")];
    let found = |tool: &str| {
        bins.iter().any(|bin| bin.join(tool).exists())
            || Command::new(tool).arg("--version").output().is_ok()
    };
    let missing: Vec<&str> = ["componentize-py", "jco"]
        .into_iter()
        .filter(|tool| !found(tool))
        .collect();
    if !missing.is_empty() {
        let message = format!(
            "{} not installed; `bash .ci/tools-python && bash .ci/tools-js` installs them",
            missing.join(" and ")
        );
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("SKIPPED: {message}");
        return None;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let paths = bins.into_iter().chain(std::env::split_paths(&path));
    Some(std::env::join_paths(paths).expect("PATH joins"))
}

/// `host` with the build tools on PATH.
fn host_with_tools(path: &OsString, dir: &Path, args: &[&str]) -> Ran {
    host_command()
        .env("PATH", path)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("host runs")
        .into()
}

/// Builds the mixed job's three components once (`host build`, which runs each language's
/// build); `None` without the tools.
fn mixed_job() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let path = tools_path()?;
            component("dynamic_graph");
            let jobs = root().join("guest-examples/jobs");
            host_with_tools(&path, &jobs, &["build", "mixed.toml"]).expect_code(0);
            Some(jobs.join("mixed.toml"))
        })
        .clone()
}

fn total(ran: Ran) -> i64 {
    let ran = ran.expect_code(0);
    ran.json()["merge_and_analyze"]
        .as_i64()
        .unwrap_or_else(|| panic!("no total: {}", ran.stdout))
}

#[test]
fn the_dynamic_graph_gives_9900_in_python_and_javascript() {
    let Some(_) = mixed_job() else { return };
    for job in ["dynamic_graph_python", "dynamic_graph_js"] {
        let job = root().join(format!("guest-examples/jobs/{job}.toml"));
        for mc in ["1", "2", "4"] {
            let ran = host([
                "run".as_ref(),
                job.as_os_str(),
                "--max-concurrent".as_ref(),
                mc.as_ref(),
            ]);
            assert_eq!(
                total(ran),
                9900,
                "{} at --max-concurrent {mc}",
                job.display()
            );
        }
    }
}

#[test]
fn a_python_producer_mapped_into_rust_and_collected_by_javascript_gives_9900() {
    let Some(job) = mixed_job() else { return };
    for mc in ["1", "2", "4"] {
        let ran = host([
            "run".as_ref(),
            job.as_os_str(),
            "--max-concurrent".as_ref(),
            mc.as_ref(),
        ]);
        assert_eq!(total(ran), 9900, "at --max-concurrent {mc}");
    }
}

#[test]
fn host_new_builds_and_runs_a_project_in_each_language() {
    let Some(path) = tools_path() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    for lang in ["python", "js", "rust"] {
        let name = format!("words-{lang}");
        host_with_tools(&path, dir.path(), &["new", &name, "--lang", lang]).expect_code(0);
        let project = dir.path().join(&name);
        let ran = host_with_tools(&path, &project, &["build"]).expect_code(0);
        assert!(
            ran.stderr.contains("built 1 component(s)"),
            "{}",
            ran.stderr
        );
        let ran = host_with_tools(&path, &project, &["run", "job.toml"]).expect_code(0);
        assert_eq!(ran.json()["join"], "HELLO FROM SHOAL", "{lang}");
        if lang != "rust" {
            // The Python and JavaScript templates attach metadata to `join`'s output.
            let ran = host_with_tools(&path, &project, &["run", "job.toml", "--json"]);
            let events = ran.expect_code(0).events();
            let join = one_event(&events, "STEP_OUTPUT", "join");
            assert_eq!(
                join["metadata"],
                serde_json::json!({"words": {"int": 3}}),
                "{lang}"
            );
        }
        let again = host_with_tools(&path, dir.path(), &["new", &name, "--lang", lang]);
        assert!(again.expect_code(2).stderr.contains("already exists"));
    }
}

#[test]
fn a_component_not_built_yet_says_how_to_build_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    host_command()
        .current_dir(dir.path())
        .args(["new", "fresh", "--lang", "python"])
        .output()
        .expect("host runs");
    let job = dir.path().join("fresh/job.toml");
    let ran = host(["run".as_ref(), job.as_os_str()]).expect_code(2);
    assert!(
        ran.stderr
            .contains("component `fresh` is not built: there is no")
            && ran.stderr.contains("build it with `host build")
            && ran.stderr.contains("(which runs `componentize-py"),
        "{}",
        ran.stderr
    );
    // A build whose program is missing says so.
    let ran = host_command()
        .current_dir(dir.path().join("fresh"))
        .env("PATH", "/nonexistent")
        .arg("build")
        .output()
        .expect("host runs");
    let ran = Ran::from(ran).expect_code(2);
    assert!(
        ran.stderr.contains("the build of component `fresh` failed")
            && ran
                .stderr
                .contains("help: the shell did not find the program"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_component_older_than_its_source_is_noted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wasm = dir.path().join("op.wasm");
    std::fs::copy(component("dynamic_graph"), &wasm).expect("copy");
    let source = dir.path().join("src.rs");
    std::fs::write(&source, "// changed after the build").expect("write");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
    std::fs::File::options()
        .write(true)
        .open(&wasm)
        .and_then(|file| file.set_modified(old))
        .expect("age the component");
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        "[components.graph]\npath = 'op.wasm'\nsource = 'src.rs'\nbuild = 'true'\n\
         [ops.load_pieces]\ncomponent = 'graph'\n",
    )
    .expect("write job");
    let ran = host(["validate".as_ref(), job.as_os_str()]).expect_code(0);
    assert!(
        ran.stderr.contains("component `graph`") && ran.stderr.contains("is older than"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_config_of_the_wrong_type_is_refused_before_the_run() {
    let job = root().join("guest-examples/jobs/dynamic_graph.toml");
    component("dynamic_graph");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("run.toml");
    std::fs::write(&config, "[ops.load_pieces]\nconfig.chunk_size = \"two\"\n").expect("write");
    let expected = "op `load_pieces`: its config does not have the shape the op declares: \
                    field `chunk_size`: \"two\" is not of type \"integer\"";
    for command in ["validate", "run"] {
        let ran = host([
            command.as_ref(),
            job.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
        ]);
        let ran = ran.expect_code(2);
        assert!(ran.stderr.contains(expected), "{command}: {}", ran.stderr);
    }
    let inspect = host(["inspect".as_ref(), component("dynamic_graph").as_os_str()]).expect_code(0);
    assert!(
        inspect.stdout.contains("config: {") && inspect.stdout.contains("\"chunk_size\""),
        "{}",
        inspect.stdout
    );
}

#[test]
fn a_component_built_against_0_1_0_still_runs() {
    let wasm = component("legacy_op");
    let inspect = host(["inspect".as_ref(), wasm.as_os_str()]).expect_code(0);
    assert!(
        inspect
            .stdout
            .contains("double\n  doubles its input; fails on 3"),
        "{}",
        inspect.stdout
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "[components.legacy]\npath = {:?}\n[ops.count]\ncomponent = 'legacy'\n\
             [ops.double]\ncomponent = 'legacy'\ninputs.value = {{ map = 'count' }}\n",
            wasm.display().to_string()
        ),
    )
    .expect("write job");
    // Yields, logs, values and a retry request all cross the 0.1.0 interface.
    let ran = host(["run".as_ref(), job.as_os_str()]).expect_code(1);
    assert_eq!(ran.json()["double"], serde_json::json!({"1": 2, "2": 4}));
    assert!(
        ran.stderr.contains("[double[1]] info: doubling 1"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("double[3]: op requested a retry: three is unlucky"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_component_built_against_0_2_0_still_runs() {
    let wasm = component("op_v0_2");
    let inspect = host(["inspect".as_ref(), wasm.as_os_str()]).expect_code(0);
    // Its schemas come through; its outputs are all required (0.2.0 has no optional ones).
    assert!(
        inspect.stdout.contains(
            "triple\n  triples its input; fails on 3\n  inputs: `value`\n  \
             input: `value`: a number, {\"type\":\"integer\"}\n  output: `result`: {\"type\":\"integer\"}\n"
        ),
        "{}",
        inspect.stdout
    );
    assert!(!inspect.stdout.contains("optional"), "{}", inspect.stdout);
    let dir = tempfile::tempdir().expect("temp dir");
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "[components.v0_2]\npath = {:?}\n[ops.count]\ncomponent = 'v0_2'\n\
             [ops.triple]\ncomponent = 'v0_2'\ninputs.value = {{ map = 'count' }}\n",
            wasm.display().to_string()
        ),
    )
    .expect("write job");
    // Yields, logs, values and a failure all cross the 0.2.0 interface.
    let ran = host(["run".as_ref(), job.as_os_str()]).expect_code(1);
    assert_eq!(ran.json()["triple"], serde_json::json!({"1": 3, "2": 6}));
    assert!(
        ran.stderr
            .contains("[triple[2]] info: tripling 2 in triple[2]"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("step `triple[3]` failed: op failed: three is not for tripling"),
        "{}",
        ran.stderr
    );
}

/// The `orders` example of each language, built once by `host build` (each language's build
/// script); `None` without the tools.
fn orders_jobs() -> Option<[PathBuf; 2]> {
    static BUILT: OnceLock<Option<[PathBuf; 2]>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let path = tools_path()?;
            let jobs = root().join("guest-examples/jobs");
            Some(["orders_python.toml", "orders_js.toml"].map(|job| {
                host_with_tools(&path, &jobs, &["build", job]).expect_code(0);
                jobs.join(job)
            }))
        })
        .clone()
}

/// `host run JOB --json` with `extra` arguments.
fn run_json(job: &Path, extra: &[&str]) -> Ran {
    let mut args: Vec<&std::ffi::OsStr> = vec!["run".as_ref(), job.as_os_str(), "--json".as_ref()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    host(args)
}

/// The events of `kind` that step `step` sent.
fn step_events<'a>(
    events: &'a [serde_json::Value],
    kind: &str,
    step: &str,
) -> Vec<&'a serde_json::Value> {
    events
        .iter()
        .filter(|e| e["event"] == kind && e["step_key"] == step)
        .collect()
}

/// The one event of `kind` that step `step` sent.
fn one_event<'a>(events: &'a [serde_json::Value], kind: &str, step: &str) -> &'a serde_json::Value {
    match step_events(events, kind, step).as_slice() {
        [event] => event,
        other => panic!("{step}: expected one {kind}, found {other:?}"),
    }
}

#[test]
fn python_and_javascript_ops_read_tags_attach_metadata_and_log_asset_events() {
    let Some(jobs) = orders_jobs() else { return };
    for job in &jobs {
        let events = run_json(job, &[]).expect_code(0).events();
        let job = job.display();
        // No tag `env` on the run: the op falls back to "dev".
        let output = one_event(&events, "STEP_OUTPUT", "load_orders");
        let metadata = &output["metadata"];
        assert_eq!(metadata["rows"], serde_json::json!({"int": 4}), "{job}");
        assert_eq!(metadata["env"], serde_json::json!({"text": "dev"}), "{job}");
        assert_eq!(metadata["total"], serde_json::json!({"int": 225}), "{job}");
        let preview = metadata["preview"]["markdown"].as_str().unwrap_or_default();
        assert!(preview.contains("| 2 | -10 |"), "{job}: {metadata}");

        let materialization = one_event(&events, "ASSET_MATERIALIZATION", "load_orders");
        assert_eq!(
            materialization["asset_key"],
            serde_json::json!(["warehouse", "orders"]),
            "{job}"
        );
        assert_eq!(materialization["partition"], "dev", "{job}");
        assert_eq!(
            materialization["description"], "orders loaded from the config",
            "{job}"
        );
        assert_eq!(
            materialization["metadata"],
            serde_json::json!({"rows": {"int": 4}}),
            "{job}"
        );
        let expectation = one_event(&events, "STEP_EXPECTATION_RESULT", "load_orders");
        assert_eq!(expectation["label"], "amounts_nonzero", "{job}");
        assert_eq!(expectation["success"], true, "{job}");
        assert_eq!(
            expectation["metadata"],
            serde_json::json!({"zeros": {"int": 0}}),
            "{job}"
        );

        let observation = one_event(&events, "ASSET_OBSERVATION", "large_orders");
        assert_eq!(
            observation["metadata"],
            serde_json::json!({"large": {"int": 1}}),
            "{job}"
        );
        // Metadata on one value of a dynamic output travels with that value.
        let large = one_event(&events, "STEP_OUTPUT", "large_orders");
        assert_eq!(large["mapping_key"], "order_0", "{job}");
        assert_eq!(
            large["metadata"],
            serde_json::json!({"amount": {"int": 120}}),
            "{job}"
        );
        let audit = one_event(&events, "STEP_OUTPUT", "audit[order_0]");
        assert_eq!(audit["value"], "order 0: 120", "{job}");
        assert!(audit.get("metadata").is_none(), "{job}: {audit}");
        let refunds = one_event(&events, "STEP_OUTPUT", "refunds");
        assert_eq!(
            refunds["value"],
            serde_json::json!([{"id": 2, "amount": -10}]),
            "{job}"
        );
    }
}

#[test]
fn optional_outputs_of_python_and_javascript_ops_are_described_and_left_out() {
    let Some(jobs) = orders_jobs() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("run.toml");
    std::fs::write(&config, "[ops.load_orders]\nconfig.amounts = [5, 6]\n").expect("write");
    let config = config.to_str().expect("a UTF-8 path");
    for (job, wasm) in jobs.iter().zip(["python/orders.wasm", "js/orders.wasm"]) {
        let wasm = root().join("guest-examples/target").join(wasm);
        let inspect = host(["inspect".as_ref(), wasm.as_os_str()]).expect_code(0);
        for line in [
            "optional dynamic output: `result`",
            "optional output: `result`",
        ] {
            assert!(inspect.stdout.contains(line), "{}", inspect.stdout);
        }
        // No order is large and none is negative: both optional outputs are left out. (What
        // happens downstream of them, and so the run's outcome, is the scheduler's business.)
        let events = run_json(job, &["--config", config]).events();
        let job = job.display();
        assert!(
            step_events(&events, "STEP_OUTPUT", "large_orders").is_empty(),
            "{job}"
        );
        one_event(&events, "STEP_SUCCESS", "large_orders");
        one_event(&events, "ASSET_OBSERVATION", "large_orders");
        assert!(
            step_events(&events, "STEP_OUTPUT", "refunds").is_empty(),
            "{job}"
        );
    }
}

//! shoal:op@0.3.0 through the real host: optional outputs as `inspect` shows them, tags in the
//! context, metadata on outputs and user events in `run --json`, the terminal, `logs` and
//! `show`; refused events and metadata fail the op that insists on them.

use serde_json::json;

use crate::support::{TempJob, component, failure, host, host_in, of_kind};

#[test]
fn inspect_shows_optional_outputs() {
    let inspect = host(["inspect".as_ref(), component("testkit").as_os_str()]).expect_code(0);
    for line in [
        "branch\n  returns n on `even` or on `odd`, leaving the other out\n  inputs: `n`\n  \
         optional output: `even`\n  optional output: `odd`\n",
        "maybe_fan\n",
        "  optional dynamic output: `items`\n",
        "maybe_out\n  returns n only when it is even\n  inputs: `n`\n  optional output: `result`\n",
    ] {
        assert!(inspect.stdout.contains(line), "{line}\n{}", inspect.stdout);
    }
    // A required output stays as it was.
    assert!(
        inspect.stdout.contains("  dynamic output: `parts`\n"),
        "{}",
        inspect.stdout
    );
}

#[test]
fn metadata_and_user_events_reach_json_the_terminal_logs_and_show() {
    let job = TempJob::new(
        "[ops.record_facts]\ncomponent = 'testkit'\nconfig.rows = 0\n\
         [ops.keep]\ncomponent = 'testkit'\nop = 'identity'\ninputs.value = { map = 'record_facts', output = 'parts' }\n",
    );
    let store = job.dir.path().join("store");
    let job_arg = job.path();
    let job_arg = job_arg.to_str().unwrap();
    let ran = host_in(&store, &["run", job_arg, "--json"]).expect_code(0);
    let events = ran.events();
    let outputs = of_kind(&events, "STEP_OUTPUT");
    let table = outputs
        .iter()
        .find(|e| e["output"] == "table")
        .expect("a table output");
    assert_eq!(
        table["metadata"],
        json!({"rows": {"int": 0}, "schema": {"json": {"id": "int"}}})
    );
    let part = outputs
        .iter()
        .find(|e| e["output"] == "parts" && e["mapping_key"] == "p1")
        .expect("part p1");
    assert_eq!(part["metadata"], json!({"part": {"int": 1}}));
    // Without metadata, no field: the clones' outputs.
    let clone = outputs
        .iter()
        .find(|e| e["step_key"] == "keep[p0]")
        .expect("a clone's output");
    assert!(clone.get("metadata").is_none(), "{clone}");

    let materialized = of_kind(&events, "ASSET_MATERIALIZATION");
    assert_eq!(materialized.len(), 1, "{events:?}");
    assert_eq!(materialized[0]["asset_key"], json!(["warehouse", "orders"]));
    assert_eq!(materialized[0]["partition"], "2026-12-01");
    assert_eq!(materialized[0]["step_key"], "record_facts");
    assert_eq!(
        materialized[0]["metadata"],
        json!({"rows": {"int": 0}, "path": {"path": "/data/orders.parquet"}})
    );
    let observed = of_kind(&events, "ASSET_OBSERVATION");
    assert_eq!(observed[0]["asset_key"], json!(["raw", "orders"]));
    assert_eq!(observed[0]["description"], "read the source");
    let expectations = of_kind(&events, "STEP_EXPECTATION_RESULT");
    let outcomes: Vec<_> = expectations
        .iter()
        .map(|e| (e["label"].clone(), e["success"].clone()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (json!("no_nulls"), json!(true)),
            (json!("has_rows"), json!(false))
        ]
    );

    // The terminal shows them among the log lines.
    let ran = host_in(&store, &["run", job_arg]).expect_code(0);
    for line in [
        "[record_facts] materialization: warehouse/orders partition 2026-12-01 \
         (path=/data/orders.parquet rows=0)\n",
        "[record_facts] observation: raw/orders: read the source\n",
        "[record_facts] expectation: has_rows failed: the table is not empty (rows=0)\n",
    ] {
        assert!(ran.stderr.contains(line), "{line}\n{}", ran.stderr);
    }

    let logs = host_in(&store, &["logs", "latest"]).expect_code(0);
    assert!(
        logs.stdout
            .contains("[record_facts] expectation: no_nulls passed\n"),
        "{}",
        logs.stdout
    );
    let show = host_in(&store, &["show", "latest"]).expect_code(0);
    assert!(
        show.stdout.contains(
            "    1 materialization, 1 observation, 1 passed expectation, 1 failed expectation\n"
        ),
        "{}",
        show.stdout
    );
    let show = host_in(&store, &["show", "latest", "--json"]).expect_code(0);
    let ops = &show.json()["ops"];
    assert_eq!(
        ops[0]["events"],
        json!({"materializations": 1, "observations": 1, "expectations_passed": 1,
               "expectations_failed": 1}),
        "{ops}"
    );
    assert!(ops[1].get("events").is_none(), "{ops}");
}

#[test]
fn refused_events_and_metadata_say_why() {
    let job = TempJob::new(
        "[ops.empty_key]\ncomponent = 'testkit'\nop = 'bad_fact'\nconfig.kind = 'empty_key'\n\
         [ops.bad_json]\ncomponent = 'testkit'\nop = 'bad_fact'\nconfig.kind = 'bad_json'\n\
         [ops.undeclared]\ncomponent = 'testkit'\nop = 'bad_fact'\nconfig.kind = 'undeclared'\n\
         [ops.yielded]\ncomponent = 'testkit'\nop = 'bad_fact'\nconfig.kind = 'yielded'\n",
    );
    let ran = job.run(&["--json"]).expect_code(1);
    let events = ran.events();
    for (step, expected) in [
        ("empty_key", "an asset key must have at least one component"),
        ("bad_json", "metadata `j`: `{nope` is not JSON: "),
        ("undeclared", "op has no output `nope`"),
        (
            "yielded",
            "output `items` key `k0` was already yielded: add its metadata before yielding",
        ),
    ] {
        let error = failure(&events, step)["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(error.contains(expected), "{step}: {error}");
    }
    assert!(of_kind(&events, "ASSET_MATERIALIZATION").is_empty());
}

#[test]
fn an_op_reads_its_tags() {
    // The scheduler hands every step its tags (none until tags are wired to the job file).
    let job = TempJob::new("[ops.tagged]\ncomponent = 'testkit'\n");
    let ran = job.run(&[]).expect_code(0);
    assert_eq!(ran.json()["tagged"], json!({}));
}

//! Every example of the seeds, through `host run`, with the exact results they must give.

use serde_json::json;

use crate::support::{of_kind, root, run_example};

#[test]
fn dynamic_graph_totals_9900() {
    let ran = run_example("dynamic_graph", &[]).expect_code(0);
    assert_eq!(ran.json(), json!({"merge_and_analyze": 9900}));
    assert!(
        ran.stderr.contains("compute_piece      50 succeeded"),
        "{}",
        ran.stderr
    );
}

#[test]
fn dynamic_graph_events_follow_dagster() {
    let ran = run_example("dynamic_graph", &["--json"]).expect_code(0);
    let events = ran.events();
    assert_eq!(events.first().unwrap()["event"], "RUN_START");
    assert_eq!(events.last().unwrap()["event"], "RUN_SUCCESS");
    let run_id = events[0]["run_id"].clone();
    assert!(
        events
            .iter()
            .all(|e| e["run_id"] == run_id && e["timestamp"].is_f64())
    );

    // load_pieces yields chunks of two of 0..100 keyed "0".."49", in order.
    let yielded: Vec<_> = of_kind(&events, "STEP_OUTPUT")
        .into_iter()
        .filter(|e| e["step_key"] == "load_pieces")
        .collect();
    let keys: Vec<String> = yielded
        .iter()
        .map(|e| e["mapping_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, (0..50).map(|i| i.to_string()).collect::<Vec<_>>());
    assert_eq!(yielded[7]["value"], json!([14, 15]));
    assert_eq!(yielded[7]["output"], "result");

    // Each clone doubles its piece and logs through the host, attributed to the clone.
    let doubled = of_kind(&events, "STEP_OUTPUT")
        .into_iter()
        .find(|e| e["step_key"] == "compute_piece[7]")
        .expect("compute_piece[7] output");
    assert_eq!(doubled["value"], json!([28, 30]));
    assert!(doubled.get("mapping_key").is_none());
    assert!(
        of_kind(&events, "LOGS")
            .iter()
            .any(|e| e["step_key"] == "compute_piece[7]"
                && e["level"] == "info"
                && e["message"] == "computing piece: [14, 15]")
    );
    assert_eq!(of_kind(&events, "STEP_SUCCESS").len(), 52);
    assert_eq!(of_kind(&events, "STEP_START").len(), 52);
}

#[test]
fn process_directory_sums_the_sample_file_sizes() {
    let sample = root().join("guest-examples/sample");
    let total: u64 = std::fs::read_dir(&sample)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total > 0);
    let ran = run_example("process_directory", &["--json"]).expect_code(0);
    let events = ran.events();
    let keys: Vec<&str> = of_kind(&events, "STEP_OUTPUT")
        .into_iter()
        .filter(|e| e["step_key"] == "files_in_directory")
        .map(|e| e["mapping_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["config_json", "data_csv", "notes_txt"]);
    let summary = of_kind(&events, "STEP_OUTPUT")
        .into_iter()
        .find(|e| e["step_key"] == "summarize_directory")
        .unwrap();
    assert_eq!(summary["value"], total);
    assert_eq!(
        run_example("process_directory", &[]).expect_code(0).json(),
        json!({"summarize_directory": total})
    );
}

#[test]
fn chained_maps_keep_the_key_and_sum_to_55() {
    let ran = run_example("chained", &[]).expect_code(0);
    assert_eq!(ran.json(), json!({"process": 55}));
    let events = run_example("chained", &["--json"]).expect_code(0).events();
    for step in ["echo[3]", "echo_2[3]", "echo_3[3]"] {
        assert!(
            of_kind(&events, "STEP_SUCCESS")
                .iter()
                .any(|e| e["step_key"] == step),
            "{step}"
        );
    }
}

#[test]
fn nested_maps_clone_per_key_pair_and_collect_one_level_at_a_time() {
    let ran = run_example("nested", &[]).expect_code(0);
    assert_eq!(ran.json(), json!({"total": 220}));
    let events = run_example("nested", &["--json"]).expect_code(0).events();
    let succeeded = |step: &str| {
        of_kind(&events, "STEP_SUCCESS")
            .iter()
            .any(|e| e["step_key"] == step)
    };
    for step in [
        "range[10]",
        "echo[10][10]",
        "echo[3][1]",
        "inner_sum[4]",
        "total",
    ] {
        assert!(succeeded(step), "{step}");
    }
    assert!(!succeeded("echo[3][4]"), "range(3) yields 1..=3 only");
    assert_eq!(of_kind(&events, "STEP_SUCCESS").len(), 1 + 10 + 55 + 10 + 1);
}

#[test]
fn other_arg_adds_one_to_every_value() {
    assert_eq!(
        run_example("other_arg", &[]).expect_code(0).json(),
        json!({"process": 65})
    );
}

#[test]
fn multiple_dynamic_outputs_are_used_separately() {
    assert_eq!(
        run_example("multiple", &[]).expect_code(0).json(),
        json!({"process": 1, "process_2": -1})
    );
}

#[test]
fn returned_dynamic_outputs_keep_their_order() {
    assert_eq!(
        run_example("return_dynamic", &[]).expect_code(0).json(),
        json!({"gather": ["HOME", "ABOUT", "CONTACT"]})
    );
}

#[test]
fn sequential_and_limited_runs_give_the_same_results() {
    for flags in [
        &["--sequential"][..],
        &["--max-concurrent", "1"],
        &["--max-concurrent", "7"],
    ] {
        assert_eq!(
            run_example("dynamic_graph", flags).expect_code(0).json(),
            json!({"merge_and_analyze": 9900}),
            "{flags:?}"
        );
    }
}

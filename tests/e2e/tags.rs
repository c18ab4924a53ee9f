//! Tags (job, op, run config, `--tag`) recorded with the run, shown and filtered on; tag
//! concurrency limits and an op's `max_concurrent` holding with real components.

use serde_json::{Value, json};

use crate::support::{TempJob, host_in, of_kind};

/// `host runs --json` with `filter`, as the ids listed.
fn listed(store: &std::path::Path, filter: &[&str]) -> Vec<String> {
    let mut args = vec!["runs", "--json"];
    args.extend(filter);
    let ran = host_in(store, &args).expect_code(0);
    let runs: Vec<Value> = serde_json::from_str(&ran.stdout).unwrap();
    runs.iter()
        .map(|run| run["id"].as_str().unwrap().to_string())
        .collect()
}

const TAGGED: &str = "[job]\ntags = { team = 'data', tier = 'a' }\n\
    [ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 3 }\ntags = { tier = 'op' }\n\
    [ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out' }\n";

#[test]
fn tags_are_recorded_with_the_run_shown_and_filtered_on() {
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    let job = TempJob::new(TAGGED);
    let config = job.dir.path().join("run.toml");
    std::fs::write(&config, "[tags]\ntier = 'config'\nsource = 'config'\n").unwrap();
    let job_path = job.path();
    let job_arg = job_path.to_str().unwrap();
    host_in(
        store,
        &[
            "run",
            job_arg,
            "--config",
            config.to_str().unwrap(),
            "--tag",
            "tier=launch",
            "--tag",
            "env=prod",
        ],
    )
    .expect_code(0);
    host_in(store, &["run", job_arg]).expect_code(0);
    let [plain, tagged] = <[String; 2]>::try_from(listed(store, &[])).unwrap();

    // The job's tags, the run config's over them, the launch's over both; an op's are its own.
    let shown = host_in(store, &["show", &tagged, "--json"]).expect_code(0);
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(
        shown["run"]["tags"],
        json!({"env": "prod", "source": "config", "team": "data", "tier": "launch"})
    );
    let text = host_in(store, &["show", &tagged]).expect_code(0).stdout;
    assert!(
        text.contains("\ntags env=prod source=config team=data tier=launch\n"),
        "{text}"
    );
    let plain_shown = host_in(store, &["show", &plain]).expect_code(0).stdout;
    assert!(
        plain_shown.contains("\ntags team=data tier=a\n"),
        "{plain_shown}"
    );

    assert_eq!(
        listed(store, &["--tag", "team=data"]),
        [plain.as_str(), tagged.as_str()]
    );
    assert_eq!(
        listed(store, &["--tag", "team=data", "--tag", "env=prod"]),
        [tagged.as_str()]
    );
    assert_eq!(listed(store, &["--tag", "tier=a"]), [plain.as_str()]);
    assert!(listed(store, &["--tag", "env=dev"]).is_empty());

    // A re-execution runs with the tags its parent was launched with.
    host_in(store, &["reexecute", &tagged, "--select", "identity"]).expect_code(0);
    let child = &listed(store, &[])[0];
    assert_eq!(
        listed(store, &["--tag", "env=prod"]),
        [child.as_str(), tagged.as_str()]
    );
}

#[test]
fn bad_tags_and_limits_are_refused_naming_them() {
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    let job = TempJob::new(TAGGED);
    let job_arg = job.path().to_str().unwrap().to_string();
    for (tag, expected) in [
        ("bad key=x", "tag key `bad key` is invalid: it contains ' '"),
        ("novalue", "tag `novalue` is not `KEY=VALUE`"),
        ("=x", "tag key `` is invalid: it is empty"),
    ] {
        let ran = host_in(store, &["run", &job_arg, "--tag", tag]).expect_code(2);
        assert!(ran.stderr.contains(expected), "{tag}: {}", ran.stderr);
        let ran = host_in(store, &["runs", "--tag", tag]).expect_code(2);
        assert!(ran.stderr.contains(expected), "{tag}: {}", ran.stderr);
    }
    for (body, expected) in [
        (
            TAGGED.replace("team = 'data'", "'te am' = 'data'"),
            "tag key `te am` is invalid",
        ),
        (
            TAGGED.replace("team = 'data'", "team = 3"),
            "invalid type: integer `3`, expected a string",
        ),
        (
            format!("{TAGGED}[[execution.tag_concurrency_limits]]\nkey = 'db'\nlimit = 0\n"),
            "a concurrency limit must be at least 1, not 0",
        ),
        (
            format!(
                "{TAGGED}[[execution.tag_concurrency_limits]]\nkey = 'db'\nvalue = 'pg'\n\
                 limit = 1\nper_unique_value = true\n"
            ),
            "gives both `value` (`pg`) and `per_unique_value`",
        ),
        (
            TAGGED.replace(
                "config = { n = 3 }",
                "config = { n = 3 }\nmax_concurrent = 0",
            ),
            "a concurrency limit must be at least 1, not 0",
        ),
    ] {
        let bad = TempJob::new(&body);
        let ran = host_in(store, &["run", bad.path().to_str().unwrap()]).expect_code(2);
        assert!(ran.stderr.contains(expected), "{body}: {}", ran.stderr);
        assert!(ran.stderr.contains("line "), "{}", ran.stderr);
    }
    assert!(listed(store, &[]).is_empty(), "no bad run was recorded");
}

/// The most steps of `op` (its clones) running at once, from their start and end events.
fn most_at_once(events: &[Value], op: &str) -> usize {
    let of_op = |e: &&Value| {
        let step = e["step_key"].as_str().unwrap_or_default();
        step.split('[').next() == Some(op)
    };
    let mut edges: Vec<(f64, i32)> = of_kind(events, "STEP_START")
        .into_iter()
        .filter(of_op)
        .map(|e| (e["timestamp"].as_f64().unwrap(), 1))
        .chain(
            of_kind(events, "STEP_SUCCESS")
                .into_iter()
                .filter(of_op)
                .map(|e| (e["timestamp"].as_f64().unwrap(), -1)),
        )
        .collect();
    // An end before a start at the same instant.
    edges.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (mut now, mut most) = (0, 0);
    for (_, change) in edges {
        now += change;
        most = most.max(now);
    }
    most as usize
}

#[test]
fn concurrency_limits_hold_with_real_components_and_block_nothing_else() {
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 6 }\n\
         [ops.nap]\ncomponent = 'testkit'\nconfig = { ms = 150 }\ntags = { db = 'pg' }\n\
         inputs.value = { map = 'fan_out' }\n\
         [ops.slow]\ncomponent = 'testkit'\nop = 'nap'\nconfig = { ms = 100 }\nmax_concurrent = 1\n\
         inputs.value = { map = 'fan_out' }\n\
         [ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out' }\n\
         [[execution.tag_concurrency_limits]]\nkey = 'db'\nlimit = 2\n",
    );
    let ran = job.run(&["--max-concurrent", "8", "--json"]).expect_code(0);
    let events = ran.events();
    assert_eq!(of_kind(&events, "STEP_SUCCESS").len(), 19, "{}", ran.stderr);
    assert_eq!(most_at_once(&events, "nap"), 2);
    assert_eq!(most_at_once(&events, "slow"), 1);
    // Every `identity` clone was done long before the last held-back step started.
    let last_start = |op: &str| {
        of_kind(&events, "STEP_START")
            .into_iter()
            .filter(|e| {
                e["step_key"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{op}["))
            })
            .map(|e| e["timestamp"].as_f64().unwrap())
            .fold(f64::MIN, f64::max)
    };
    let identity_done = of_kind(&events, "STEP_SUCCESS")
        .into_iter()
        .filter(|e| e["step_key"].as_str().unwrap().starts_with("identity["))
        .map(|e| e["timestamp"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    assert!(identity_done < last_start("nap"), "{events:#?}");
    assert!(identity_done < last_start("slow"), "{events:#?}");

    // A run config's limits replace the job's.
    let config = job.dir.path().join("run.toml");
    std::fs::write(
        &config,
        "[[execution.tag_concurrency_limits]]\nkey = 'db'\nlimit = 1\n",
    )
    .unwrap();
    let ran = job
        .run(&[
            "--max-concurrent",
            "8",
            "--json",
            "--config",
            config.to_str().unwrap(),
        ])
        .expect_code(0);
    assert_eq!(most_at_once(&ran.events(), "nap"), 1);
}

#[cfg(unix)]
#[test]
fn a_submission_to_the_server_tags_its_run() {
    use crate::serve::{Server, uploadable};
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(store.path(), &[]);
    let api = server.tenant("alpha", &[]);
    api.upload("dynamic_graph");
    let (job, _) = uploadable("dynamic_graph");
    let submitted = json!({ "job": job, "tags": { "env": "prod" } });
    let id = api.post("/v1/runs", &submitted).expect(201).json()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(api.wait(&id)["tags"], json!({"env": "prod"}));
    assert_eq!(
        api.get("/v1/runs").expect(200).json()["runs"][0]["tags"],
        json!({"env": "prod"})
    );
    let bad = json!({ "job": job, "tags": { "bad key": "x" } });
    let refused = api.post("/v1/runs", &bad).expect(400);
    assert!(
        refused.body.contains("tag key `bad key` is invalid"),
        "{}",
        refused.body
    );
}

#[test]
fn an_op_reads_its_steps_tags_job_then_op_then_run() {
    let job = TempJob::new(
        "[job]\ntags = { team = 'data', tier = 'job' }\n\
         [ops.tagged]\ncomponent = 'testkit'\ntags = { tier = 'op', db = 'pg' }\n\
         [ops.plain]\ncomponent = 'testkit'\nop = 'tagged'\n",
    );
    let outputs = job.run(&["--tag", "db=warehouse"]).expect_code(0).json();
    assert_eq!(
        outputs["tagged"],
        json!({"db": "warehouse", "team": "data", "tier": "op"})
    );
    assert_eq!(
        outputs["plain"],
        json!({"db": "warehouse", "team": "data", "tier": "job"})
    );
}

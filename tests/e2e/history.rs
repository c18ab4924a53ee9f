//! Managing recorded runs: naming them by a prefix of their id or `latest`, listing them with
//! filters, summarising them, following their logs, and deleting them with what only they kept.

use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};

use crate::support::{
    Ran, TempJob, component, finish, host_command, host_in, only_run, root, wait_for_run,
};
use host::store::{RunStatus, RunStore, SqliteStore};

/// Runs `job` on `store` to the end, expecting exit `code`; returns the new run's id.
fn run(store: &Path, job: &Path, code: i32) -> String {
    host_in(store, &["run", job.to_str().unwrap()]).expect_code(code);
    SqliteStore::open(store).unwrap().runs().unwrap()[0]
        .id
        .clone()
}

fn dynamic_graph() -> std::path::PathBuf {
    component("dynamic_graph");
    root().join("guest-examples/jobs/dynamic_graph.toml")
}

/// Ten clones of `fail_on`, two of them failing, and a `sum` that is then skipped.
const FAILING: &str = "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 10 }\n\
    [ops.fail_on]\ncomponent = 'testkit'\nconfig = { fail_on = [3, 7] }\n\
    inputs.value = { map = 'fan_out' }\n\
    [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'fail_on' }\n";

fn json_of(ran: &Ran) -> Value {
    serde_json::from_str(&ran.stdout).unwrap_or_else(|err| panic!("{err}: {}", ran.stdout))
}

#[test]
fn runs_are_named_by_a_unique_prefix_of_their_id_or_latest() {
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    let empty = host_in(store, &["show", "latest"]).expect_code(2);
    assert!(
        empty.stderr.contains("no runs recorded yet"),
        "{}",
        empty.stderr
    );

    let older = run(store, &dynamic_graph(), 0);
    let newer = run(store, &dynamic_graph(), 0);
    let shared = older
        .chars()
        .zip(newer.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let unique = &older[..=shared];

    let latest = host_in(store, &["show", "latest"]).expect_code(0);
    assert!(
        latest
            .stdout
            .starts_with(&format!("run {newer}  SUCCESS\n")),
        "{}",
        latest.stdout
    );
    let by_prefix = host_in(store, &["show", unique]).expect_code(0);
    assert!(
        by_prefix
            .stdout
            .starts_with(&format!("run {older}  SUCCESS\n")),
        "{}",
        by_prefix.stdout
    );
    let logs = host_in(store, &["logs", unique, "--step", "compute_piece[7]"]).expect_code(0);
    assert_eq!(
        logs.stdout,
        "[compute_piece[7]] info: computing piece: [14, 15]\n"
    );
    let output = host_in(store, &["output", "latest", "merge_and_analyze"]).expect_code(0);
    assert_eq!(json_of(&output), json!(9900));
    // Resume and re-execute name the run they resolved.
    let resume = host_in(store, &["resume", unique]).expect_code(2);
    assert!(
        resume
            .stderr
            .contains(&format!("run `{older}` already succeeded")),
        "{}",
        resume.stderr
    );

    let ambiguous = &older[..shared];
    for command in ["show", "logs"] {
        let ran = host_in(store, &[command, ambiguous]).expect_code(2);
        assert!(
            ran.stderr.contains(&format!(
                "`{ambiguous}` is ambiguous: matches 2 runs (`{newer}`, `{older}`)"
            )),
            "{}",
            ran.stderr
        );
    }
    let unknown = host_in(store, &["output", "zzz", "merge_and_analyze"]).expect_code(2);
    assert!(
        unknown.stderr.contains("no run matches `zzz`"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn runs_are_listed_by_status_and_job_newest_first_and_as_json() {
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    let job = TempJob::new(FAILING);
    let failed = run(store, &job.path(), 1);
    let succeeded = run(store, &dynamic_graph(), 0);

    let ids = |args: &[&str]| -> Vec<String> {
        let mut command = vec!["runs"];
        command.extend(args);
        let ran = host_in(store, &command).expect_code(0);
        ran.stdout
            .lines()
            .map(|line| line.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&[]), [succeeded.as_str(), failed.as_str()]);
    assert_eq!(ids(&["--status", "failure"]), [failed.as_str()]);
    assert_eq!(
        ids(&["--status", "SUCCESS", "--job", "dynamic_graph"]),
        [succeeded.as_str()]
    );
    assert!(ids(&["--job", "nope"]).is_empty());
    assert_eq!(ids(&["--limit", "1"]), [succeeded.as_str()]);

    let bad = host_in(store, &["runs", "--status", "done"]).expect_code(2);
    assert!(
        bad.stderr
            .contains("[possible values: RUNNING, SUCCESS, FAILURE, CANCELED, INTERRUPTED]"),
        "{}",
        bad.stderr
    );

    let listed = json_of(&host_in(store, &["runs", "--json"]).expect_code(0));
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let run = &listed[1];
    assert_eq!(run["id"], failed.as_str());
    assert_eq!(run["status"], "FAILURE");
    assert_eq!(run["job"], "job");
    assert_eq!(run["job_path"], job.path().to_str().unwrap());
    assert_eq!(
        (&run["parent"], &run["tenant"]),
        (&json!(null), &json!(null))
    );
    assert!(run["duration_s"].as_f64().unwrap() > 0.0, "{run}");
    for field in ["started", "finished"] {
        let time = run[field].as_str().unwrap();
        humantime::parse_rfc3339(time).unwrap_or_else(|err| panic!("{time}: {err}"));
    }
}

#[test]
fn show_summarises_per_op_lists_steps_with_steps_and_prints_json() {
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    // Enough failures that only the first ten are listed.
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 2000 }\n\
         [ops.fail_on]\ncomponent = 'testkit'\nconfig = { fail_on = [3, 7, 10, 11, 12, 13, \
         14, 15, 16, 17, 18, 19] }\ninputs.value = { map = 'fan_out' }\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'fail_on' }\n",
    );
    let id = run(store, &job.path(), 1);

    let summary = host_in(store, &["show", &id]).expect_code(0).stdout;
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(lines.len(), 3 + 3 + 10 + 1, "{summary}");
    assert!(
        lines[3].starts_with("  fan_out  1 SUCCESS ") && lines[3].contains("  p50 "),
        "{summary}"
    );
    assert!(
        lines[4].starts_with("  fail_on  1988 SUCCESS, 12 FAILURE  p50 ")
            && lines[4].contains(" ms  p95 ")
            && lines[4].contains(" ms  max "),
        "{summary}"
    );
    assert_eq!(
        lines[5],
        "    failed fail_on[k3]: op failed: value 3 is unlucky"
    );
    assert_eq!(lines[15], "    and 2 more failed");
    assert_eq!(lines[16], "  sum      1 SKIPPED");

    let steps = host_in(store, &["show", &id, "--steps"])
        .expect_code(0)
        .stdout;
    assert_eq!(steps.lines().count(), 3 + 2002, "{steps}");
    assert!(
        steps.contains("  fail_on[k7]     FAILURE  attempts 1 "),
        "{steps}"
    );

    let shown = json_of(&host_in(store, &["show", &id, "--json"]).expect_code(0));
    assert_eq!(shown["run"]["id"], id.as_str());
    assert_eq!(shown["run"]["status"], "FAILURE");
    assert!(shown.get("steps").is_none());
    let fail_on = &shown["ops"][1];
    assert_eq!(fail_on["op"], "fail_on");
    assert_eq!(fail_on["statuses"], json!({"SUCCESS": 1988, "FAILURE": 12}));
    assert_eq!(fail_on["failures"].as_array().unwrap().len(), 10);
    assert_eq!(
        fail_on["failures"][1],
        json!({"step": "fail_on[k7]", "error": "op failed: value 7 is unlucky"})
    );
    assert_eq!(fail_on["more_failures"], 2);
    let durations = &fail_on["duration_ms"];
    assert!(durations["p50"].as_f64() <= durations["p95"].as_f64());
    assert!(durations["p95"].as_f64() <= durations["max"].as_f64());

    let with_steps = json_of(&host_in(store, &["show", &id, "--json", "--steps"]).expect_code(0));
    let steps = with_steps["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2002);
    let sum = steps.iter().find(|step| step["step"] == "sum").unwrap();
    assert_eq!(
        (&sum["status"], &sum["attempts"], &sum["duration_ms"]),
        (&json!("SKIPPED"), &json!(0), &json!(null)),
        "{sum}"
    );
}

#[test]
fn logs_follow_a_running_run_until_it_ends() {
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    // Four pieces, each napping a second before the clone that logs it.
    let job = TempJob::new(&format!(
        "[components.dynamic_graph]\npath = {:?}\n\
         [ops.load_pieces]\ncomponent = 'dynamic_graph'\nconfig = {{ chunk_size = 25 }}\n\
         [ops.nap]\ncomponent = 'testkit'\nconfig = {{ ms = 1000 }}\n\
         inputs.value = {{ map = 'load_pieces' }}\n\
         [ops.compute_piece]\ncomponent = 'dynamic_graph'\ninputs.piece = {{ from = 'nap' }}\n",
        component("dynamic_graph").display().to_string()
    ));
    let mut running = host_command()
        .env("SHOAL_STORE", store)
        .args(["run", job.path().to_str().unwrap(), "--max-concurrent", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let id = wait_for_run(store);
    let status = || SqliteStore::open(store).unwrap().run(&id).unwrap().status;
    assert_eq!(status(), RunStatus::Running);

    let followed = host_in(store, &["logs", "latest", "--follow", "--json"]).expect_code(0);
    // It waited for the run to end.
    assert_eq!(status(), RunStatus::Success);
    assert!(finish(&mut running).success());
    let lines: Vec<Value> = followed
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut steps: Vec<&str> = lines.iter().map(|l| l["step"].as_str().unwrap()).collect();
    steps.sort_unstable();
    assert_eq!(
        steps,
        [
            "compute_piece[0]",
            "compute_piece[1]",
            "compute_piece[2]",
            "compute_piece[3]"
        ],
        "{}",
        followed.stdout
    );
    assert_eq!(lines[0]["level"], "info");
    assert!(
        lines[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("computing piece: ["),
        "{}",
        followed.stdout
    );
    humantime::parse_rfc3339(lines[0]["timestamp"].as_str().unwrap()).unwrap();

    // Once the run has ended, `--follow` prints what there is and exits.
    let again = host_in(store, &["logs", &id, "--follow"]).expect_code(0);
    assert_eq!(again.stdout.lines().count(), 4, "{}", again.stdout);
}

#[test]
fn rm_refuses_a_running_run_and_deletes_it_once_stopped() {
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 1 }\n\
         [ops.nap]\ncomponent = 'testkit'\nconfig = { ms = 60000 }\n\
         inputs.value = { map = 'fan_out' }\n",
    );
    let mut running = host_command()
        .env("SHOAL_STORE", store)
        .args(["run", job.path().to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let id = wait_for_run(store);
    let refused = host_in(store, &["rm", "latest"]);
    running.kill().unwrap();
    running.wait().unwrap();
    let refused = refused.expect_code(2);
    assert!(
        refused.stderr.contains(&format!(
            "run `{id}` is still running, in process {}",
            running.id()
        )),
        "{}",
        refused.stderr
    );

    // Killed, it is interrupted: nobody executes it any more.
    let removed = host_in(store, &["rm", &id[..id.len() - 2]]).expect_code(0);
    assert!(
        removed.stdout.starts_with("deleted 1 run, "),
        "{}",
        removed.stdout
    );
    assert!(SqliteStore::open(store).unwrap().runs().unwrap().is_empty());
}

fn blob_count(store: &Path) -> i64 {
    rusqlite::Connection::open(store.join("shoal.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM blobs", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn gc_keeps_the_newest_runs_and_the_values_they_share_with_deleted_ones() {
    let store = tempfile::tempdir().unwrap();
    let store = store.path();
    // Five large values (0..4, 2,000 bytes each: above the size kept in an event's row) of its
    // own, each recorded by `fan_out` and `identity`.
    let own = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 5, bytes = 2000 }\n\
         [ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out' }\n",
    );
    run(store, &own.path(), 0);
    // Two runs of one job record the same values.
    run(store, &dynamic_graph(), 0);
    let kept = run(store, &dynamic_graph(), 0);
    let blobs = blob_count(store);

    let nothing = host_in(store, &["gc"]).expect_code(0);
    assert!(
        nothing
            .stdout
            .starts_with("deleted 0 runs, 0 blobs; freed 0 B (store "),
        "{}",
        nothing.stdout
    );
    let collected = host_in(store, &["gc", "--keep", "1"]).expect_code(0);
    assert!(
        collected
            .stdout
            .starts_with("deleted 2 runs, 5 blobs; freed "),
        "{}",
        collected.stdout
    );
    assert!(
        collected.stdout.contains(" (store "),
        "{}",
        collected.stdout
    );
    assert_eq!(blob_count(store), blobs - 5);
    assert_eq!(only_run(store), kept);
    let output = host_in(store, &["output", "latest", "merge_and_analyze"]).expect_code(0);
    assert_eq!(json_of(&output), json!(9900));
    let clones = host_in(store, &["output", &kept, "compute_piece"]).expect_code(0);
    assert_eq!(json_of(&clones).as_object().unwrap().len(), 50);

    // The kept run is younger than a day.
    host_in(store, &["gc", "--older-than", "1d"]).expect_code(0);
    assert_eq!(only_run(store), kept);
    let bad = host_in(store, &["gc", "--older-than", "soon"]).expect_code(2);
    assert!(bad.stderr.contains("--older-than"), "{}", bad.stderr);
}

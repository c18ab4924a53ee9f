//! The compiled-component cache in the run store: the first run compiles and says how long it
//! took, later processes load the machine code, a damaged entry is compiled again, and no op
//! may be granted the store that holds it.

use std::path::Path;

use serde_json::json;

use crate::support::{Ran, TempJob, host_command, root};

fn run_in_store(store: &Path, job: &Path) -> Ran {
    host_command()
        .env("SHOAL_STORE", store)
        .arg("run")
        .arg(job)
        .output()
        .expect("host runs")
        .into()
}

fn dynamic_graph() -> std::path::PathBuf {
    crate::support::component("dynamic_graph");
    root().join("guest-examples/jobs/dynamic_graph.toml")
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn the_first_run_compiles_and_later_runs_load_from_the_cache() {
    let store = tempfile::tempdir().unwrap();
    let cold = run_in_store(store.path(), &dynamic_graph()).expect_code(0);
    assert!(
        cold.stderr.contains("compiled 1 component(s) in"),
        "{}",
        cold.stderr
    );
    assert!(!files(&store.path().join("cache")).is_empty());

    let warm = run_in_store(store.path(), &dynamic_graph()).expect_code(0);
    assert!(!warm.stderr.contains("compiled"), "{}", warm.stderr);
    assert_eq!(warm.json(), json!({"merge_and_analyze": 9900}));
    assert_eq!(warm.stdout, cold.stdout);
}

#[test]
fn a_damaged_cache_entry_is_compiled_again() {
    let store = tempfile::tempdir().unwrap();
    run_in_store(store.path(), &dynamic_graph()).expect_code(0);
    let entries = files(&store.path().join("cache/modules"));
    assert!(!entries.is_empty());
    for entry in &entries {
        std::fs::write(entry, b"not machine code").unwrap();
    }
    let ran = run_in_store(store.path(), &dynamic_graph()).expect_code(0);
    assert!(
        ran.stderr.contains("compiled 1 component(s)"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.json(), json!({"merge_and_analyze": 9900}));
}

#[test]
fn an_op_may_not_be_granted_the_run_store() {
    let store = tempfile::tempdir().unwrap();
    for granted in [store.path().to_path_buf(), store.path().join("cache")] {
        std::fs::create_dir_all(&granted).unwrap();
        let job = TempJob::new(&format!(
            "[ops.write_file]\ncomponent = 'adversary'\n\
             dirs = [{{ host = {:?}, guest = '/out', writable = true }}]\n",
            granted.display().to_string()
        ));
        let ran = run_in_store(store.path(), &job.path()).expect_code(2);
        assert!(
            ran.stderr.contains("overlaps the run store"),
            "{}",
            ran.stderr
        );
    }
}

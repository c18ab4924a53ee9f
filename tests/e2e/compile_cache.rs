//! The compiled-component cache in the run store: the first run compiles and says how long it
//! took, later processes load the machine code, a damaged entry is compiled again, no op may be
//! granted the store that holds it, and the store may be given as a relative path.

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

#[test]
fn a_relative_store_path_works_for_every_command() {
    let cwd = tempfile::tempdir().unwrap();
    let job = dynamic_graph();
    let in_cwd = |store_flag: bool, args: &[&std::ffi::OsStr]| -> Ran {
        let mut command = host_command();
        command.current_dir(cwd.path());
        if store_flag {
            command
                .env_remove("SHOAL_STORE")
                .arg("--store")
                .arg("./store");
        } else {
            command.env("SHOAL_STORE", "store");
        }
        command.args(args).output().expect("host runs").into()
    };
    let cold = in_cwd(true, &["run".as_ref(), job.as_os_str()]).expect_code(0);
    assert!(
        cold.stderr.contains("compiled 1 component(s)"),
        "{}",
        cold.stderr
    );
    assert!(!files(&cwd.path().join("store/cache")).is_empty());
    let warm = in_cwd(false, &["run".as_ref(), job.as_os_str()]).expect_code(0);
    assert!(!warm.stderr.contains("compiled"), "{}", warm.stderr);
    assert_eq!(warm.json(), json!({"merge_and_analyze": 9900}));

    let component = crate::support::component("dynamic_graph");
    for args in [
        vec!["validate".as_ref(), job.as_os_str()],
        vec!["graph".as_ref(), job.as_os_str()],
        vec!["inspect".as_ref(), component.as_os_str()],
    ] {
        in_cwd(true, &args).expect_code(0);
        in_cwd(false, &args).expect_code(0);
    }
    let runs = in_cwd(false, &["runs".as_ref()]).expect_code(0);
    assert_eq!(runs.stdout.lines().count(), 2, "{}", runs.stdout);
    let parent = runs.stdout.split_whitespace().next().unwrap().to_string();
    in_cwd(
        true,
        &[
            "reexecute".as_ref(),
            parent.as_ref(),
            "--select".as_ref(),
            "merge_and_analyze".as_ref(),
        ],
    )
    .expect_code(0);
}

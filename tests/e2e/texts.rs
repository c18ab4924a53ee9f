//! What users read, pinned: every command's `--help`, and the errors a newcomer meets first
//! (insta snapshots in `tests/e2e/snapshots/`; `cargo insta review` after a deliberate change).

use clap::CommandFactory;

use crate::support::{TempJob, host, host_in, test_store};

#[test]
fn every_command_has_its_help_pinned() {
    // The tests' store shows as the `--store` default from the environment.
    let store = test_store().display().to_string();
    let help = |args: &[&str]| host(args).expect_code(0).stdout.replace(&store, "[STORE]");
    insta::assert_snapshot!("help", help(&["--help"]));
    for command in host::cli::Cli::command().get_subcommands() {
        let name = command.get_name();
        if name == "help" {
            continue;
        }
        insta::assert_snapshot!(format!("help_{name}"), help(&[name, "--help"]));
    }
}

/// `host ARGS` against a fresh store, its stderr with the temp dir of `job` written `[DIR]`.
fn error_of(job: Option<&TempJob>, args: &[&str]) -> String {
    let store = tempfile::tempdir().unwrap();
    let ran = host_in(store.path(), args).expect_code(2);
    let mut text = ran.stderr;
    if let Some(job) = job {
        text = text.replace(&job.dir.path().display().to_string(), "[DIR]");
    }
    text.replace(
        &crate::support::component("testkit")
            .parent()
            .unwrap()
            .display()
            .to_string(),
        "[GUESTS]",
    )
}

#[test]
fn the_first_errors_a_newcomer_meets_are_pinned() {
    let missing = error_of(None, &["run", "no-such-job.toml"]);
    insta::assert_snapshot!("error_missing_job_file", missing);

    let job = TempJob::new(
        "[ops.total]\ncomponent = 'testkit'\nop = 'sum'\ninputs.values = { collect = 'nums' }\n",
    );
    let path = job.path();
    let wiring = error_of(Some(&job), &["run", path.to_str().unwrap()]);
    insta::assert_snapshot!("error_unknown_op_in_wiring", wiring);

    let job = TempJob::new(
        "[ops.a]\ncomponent = 'testkit'\nop = 'identity'\ninputs.value = { from = 'b' }\n\
         [ops.b]\ncomponent = 'testkit'\nop = 'identity'\ninputs.value = { from = 'a' }\n",
    );
    let path = job.path();
    let cycle = error_of(Some(&job), &["validate", path.to_str().unwrap()]);
    insta::assert_snapshot!("error_cycle", cycle);

    let job = TempJob::new("[ops.a]\ncomponent = 'testkit'\nop = 'nap'\nlimits.timeout = 5\n");
    let path = job.path();
    let typed = error_of(Some(&job), &["validate", path.to_str().unwrap()]);
    insta::assert_snapshot!("error_wrong_type", typed);

    let (dir, path) = crate::support::unbuilt_job();
    let store = tempfile::tempdir().unwrap();
    let unbuilt = host_in(store.path(), &["run", path.to_str().unwrap()])
        .expect_code(2)
        .stderr
        .replace(&dir.path().display().to_string(), "[DIR]");
    insta::assert_snapshot!("error_component_not_built", unbuilt);

    let usage = host(["run", "job.toml", "--max-concurrent", "0"])
        .expect_code(2)
        .stderr;
    insta::assert_snapshot!("error_bad_flag_value", usage);
}

//! `host run` in a real terminal: tmux runs it in a pane, the tests read the screen
//! (`capture-pane`) and type into it (`send-keys`). Each test has its own tmux server (its
//! socket in a temp dir), killed when the test ends.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::TempJob;

/// A tmux server with one 120×40 pane running a shell command.
struct Tmux {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmux {
    /// Runs `command` in a new pane; after it exits the pane shows `EXIT=<code>` and stays.
    /// `None` (said loudly) where tmux is not installed; under CI it must be.
    fn run(command: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(
                std::env::var_os("CI").is_none(),
                "tmux is not installed; .ci/run installs it (apt-get install tmux)"
            );
            eprintln!("SKIPPED: tmux is not installed (apt-get install tmux)");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let tmux = Tmux {
            socket: dir.path().join("tmux.sock"),
            _dir: dir,
        };
        // The shell outlives a Ctrl-C meant for `command` (a trap is reset in the child).
        let shell = format!("trap true INT; {command}; echo EXIT=$?; sleep 600");
        let status = tmux
            .command()
            .args([
                "new-session",
                "-d",
                "-x",
                "120",
                "-y",
                "40",
                "sh",
                "-c",
                &shell,
            ])
            .status()
            .expect("tmux starts");
        assert!(status.success(), "tmux new-session failed");
        Some(tmux)
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        // No user configuration; a terminal that knows colours.
        command
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"]);
        command.env("TERM", "xterm-256color");
        command
    }

    fn screen(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-p", "-J", "-S", "-200"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `wanted` (a minute at most); returns the screen.
    fn wait_for(&self, wanted: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if screen.contains(wanted) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {wanted:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn keys(&self, keys: &str) {
        let status = self
            .command()
            .args(["send-keys", keys])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}

/// `host run` of `job` against a store of its own, as a shell command line.
fn host_run(job: &TempJob, store: &tempfile::TempDir, extra: &str) -> String {
    format!(
        "SHOAL_STORE='{}' '{}' run '{}' --max-concurrent 2 {extra}",
        store.path().display(),
        env!("CARGO_BIN_EXE_host"),
        job.path().display()
    )
}

/// 3,000 clones of 2 ms each: long enough to be watched.
fn long_fan_out() -> TempJob {
    TempJob::new(
        "[ops.nums]\ncomponent = 'testkit'\nop = 'fan_out'\nconfig.n = 3000\n\
         [ops.work]\ncomponent = 'testkit'\nop = 'nap'\nconfig.ms = 2\n\
         inputs.value = { map = 'nums' }\n\
         [ops.total]\ncomponent = 'testkit'\nop = 'sum'\ninputs.values = { collect = 'work' }\n",
    )
}

#[test]
fn a_long_fan_out_shows_its_progress_then_only_the_summary() {
    let (job, store) = (long_fan_out(), tempfile::tempdir().unwrap());
    let Some(tmux) = Tmux::run(&host_run(&job, &store, "")) else {
        return;
    };
    // The run's line and a bar per op, the mapped op's total known from what was yielded.
    let screen = tmux.wait_for("/3000");
    assert!(screen.contains("run "), "{screen}");
    assert!(screen.contains("steps/s"), "{screen}");
    assert!(screen.contains("running"), "{screen}");
    let screen = tmux.wait_for("EXIT=0");
    // The bars are gone: the summary says what they said.
    assert!(!screen.contains("steps/s"), "{screen}");
    assert!(screen.contains("work   3000 succeeded"), "{screen}");
    assert!(screen.contains(r#""total": 4498500"#), "{screen}");
}

#[test]
fn ctrl_c_during_a_fan_out_cancels_it_and_says_how_to_resume() {
    let (job, store) = (long_fan_out(), tempfile::tempdir().unwrap());
    let Some(tmux) = Tmux::run(&host_run(&job, &store, "")) else {
        return;
    };
    tmux.wait_for("running");
    tmux.keys("C-c");
    let screen = tmux.wait_for("EXIT=130");
    assert!(screen.contains("canceled"), "{screen}");
    assert!(screen.contains("resume it with:"), "{screen}");
    // The terminal's echo of ^C may leave the frame drawn when it came behind; after the
    // message that the run stops, the bars are gone.
    let (_, after) = screen
        .split_once("SIGINT: stopping run")
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(!after.contains("steps/s"), "{screen}");
}

#[test]
fn a_failing_run_prints_its_failures_above_the_bars_and_exits_1() {
    let job = TempJob::new(
        "[ops.nums]\ncomponent = 'testkit'\nop = 'fan_out'\nconfig.n = 400\n\
         [ops.check]\ncomponent = 'testkit'\nop = 'fail_on'\nconfig.fail_on = [7, 300]\n\
         inputs.value = { map = 'nums' }\n\
         [ops.total]\ncomponent = 'testkit'\nop = 'sum'\ninputs.values = { collect = 'check' }\n",
    );
    let store = tempfile::tempdir().unwrap();
    let Some(tmux) = Tmux::run(&host_run(&job, &store, "")) else {
        return;
    };
    let screen = tmux.wait_for("EXIT=1");
    assert!(screen.contains("value 7 is unlucky"), "{screen}");
    assert!(
        screen.contains("check  398 succeeded, 2 failed"),
        "{screen}"
    );
    assert!(!screen.contains("steps/s"), "{screen}");
}

#[test]
fn quiet_prints_only_the_outputs() {
    let (job, store) = (long_fan_out(), tempfile::tempdir().unwrap());
    let Some(tmux) = Tmux::run(&host_run(&job, &store, "--quiet")) else {
        return;
    };
    let screen = tmux.wait_for("EXIT=0");
    assert!(screen.contains(r#""total": 4498500"#), "{screen}");
    assert!(!screen.contains("succeeded"), "{screen}");
}

//! Steps run by `host worker` processes over a real `nats-server` with JetStream (Debian's
//! package; `.ci/run` installs it): every test starts its own server on a free loopback port
//! with a temporary store directory, and real worker processes, and stops them all.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use host::events::EventKind;
use host::store::{RunStore, SqliteStore};
use serde_json::{Value, json};

use crate::serve::{EXAMPLES, Server, uploadable};
use crate::support::{
    Ran, TempJob, component, free_port, host, host_command, host_in, root, run_example, test_store,
};

/// A `nats-server -js` on a free loopback port, killed when dropped.
struct Nats {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nats {
    /// Starts a server, or `None` (saying so loudly) where `nats-server` is not installed;
    /// under CI it must be.
    fn start() -> Option<Nats> {
        if Command::new("nats-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "nats-server is not installed; .ci/run installs it (apt-get install nats-server)"
            );
            eprintln!("SKIPPED: nats-server is not installed (apt-get install nats-server)");
            return None;
        }
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let child = spawn_server(port, dir.path());
        Some(Nats { child, port, dir })
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and starts it again on the same port and store.
    fn restart(&mut self, down_for: Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down_for);
        self.child = spawn_server(self.port, self.dir.path());
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_server(port: u16, dir: &Path) -> Child {
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// A `host worker` process, killed (SIGKILL) when dropped.
struct Worker(Child);

impl Worker {
    /// A worker named `name` running `max_concurrent` steps at once, with `extra` flags. Its
    /// compiled-component cache is the tests' shared one.
    fn start(nats: &Nats, name: &str, max_concurrent: usize, extra: &[&str]) -> Worker {
        let child = host_command()
            .env("SHOAL_STORE", test_store())
            .args(["worker", "--nats", &nats.url(), "--name", name])
            .args(["--max-concurrent", &max_concurrent.to_string()])
            .args(["--ack-wait", "2s"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(nats.dir.path().join(format!("worker-{name}.log"))).unwrap(),
            )
            .spawn()
            .expect("host worker starts");
        Worker(child)
    }

    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `host workers --json`.
fn live_workers(nats: &Nats) -> Vec<Value> {
    let listed = host(["workers", "--json", "--nats", &nats.url()]).expect_code(0);
    listed.json().as_array().expect("a list of workers").clone()
}

/// Waits until `host workers` lists `n` workers (a minute: on a loaded 2-core machine a
/// worker may take a while to connect); the panic shows what the workers logged.
fn wait_for_workers(nats: &Nats, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while live_workers(nats).len() < n {
        if Instant::now() > deadline {
            let mut logs = String::new();
            for entry in std::fs::read_dir(nats.dir.path()).unwrap().flatten() {
                if entry.file_name().to_string_lossy().starts_with("worker-") {
                    let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    logs.push_str(&format!("{:?}:\n{text}\n", entry.file_name()));
                }
            }
            panic!("{n} workers never announced themselves; their logs:\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `host ARGS --executor URL` against `store`.
fn remote(nats: &Nats, store: &Path, args: &[&str]) -> Ran {
    let url = nats.url();
    host_in(store, &[args, &["--executor", &url]].concat())
}

/// `host run JOB --executor URL`, spawned.
fn spawn_run(nats: &Nats, store: &Path, job: &Path) -> Child {
    host_command()
        .env("SHOAL_STORE", store)
        .arg("run")
        .arg(job)
        .args(["--executor", &nats.url()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("host run starts")
}

/// Counts how many times each step of a run succeeded, reading the run store's events as
/// they are added.
#[derive(Default)]
struct Successes {
    after: i64,
    counts: HashMap<String, usize>,
}

impl Successes {
    /// Reads the events added since the last call.
    fn update(&mut self, store: &SqliteStore, id: &str) -> &HashMap<String, usize> {
        loop {
            let events = store.events_after(id, self.after, 10_000).unwrap();
            let Some((last, _)) = events.last() else {
                break;
            };
            self.after = *last;
            for (_, event) in events {
                if let (EventKind::StepSuccess { .. }, Some(key)) = (&event.kind, &event.step_key) {
                    *self.counts.entry(key.to_string()).or_insert(0) += 1;
                }
            }
        }
        &self.counts
    }
}

/// How many times each step of run `id` succeeded.
fn successes(store: &Path, id: &str) -> HashMap<String, usize> {
    let store = SqliteStore::open(store).unwrap();
    Successes::default().update(&store, id).clone()
}

/// Waits until run `id` in `store` has at least `n` successful steps.
fn wait_for_successes(store: &Path, id: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let opened = SqliteStore::open(store).unwrap();
    let mut seen = Successes::default();
    while seen.update(&opened, id).len() < n {
        assert!(
            Instant::now() < deadline,
            "run {id} never reached {n} successes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that every step of run `id` succeeded exactly once, `steps` in all.
fn each_step_succeeded_once(store: &Path, id: &str, steps: usize) {
    let counts = successes(store, id);
    assert_eq!(counts.len(), steps, "steps that succeeded");
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "steps recorded more than once: {twice:?}");
}

/// A fan-out of `n` clones of `op` (a testkit op with `config`), summed.
fn fan_out_job(n: u32, op: &str, config: &str) -> TempJob {
    TempJob::new(&format!(
        "[ops.nums]\ncomponent = 'testkit'\nop = 'fan_out'\nconfig.n = {n}\n\
         [ops.work]\ncomponent = 'testkit'\nop = '{op}'\nconfig = {config}\n\
         inputs.value = {{ map = 'nums' }}\n\
         [ops.total]\ncomponent = 'testkit'\nop = 'sum'\ninputs.values = {{ collect = 'work' }}\n"
    ))
}

fn total(n: u32) -> Value {
    json!({"total": (0..i64::from(n)).sum::<i64>()})
}

#[test]
fn every_example_gives_its_exact_result_with_two_workers() {
    let Some(nats) = Nats::start() else { return };
    let sample = root().join("guest-examples/sample");
    let allow = ["--allow-dir", sample.to_str().unwrap()];
    let _one = Worker::start(&nats, "one", 2, &allow);
    let _two = Worker::start(&nats, "two", 2, &allow);
    wait_for_workers(&nats, 2);
    let listed = live_workers(&nats);
    let names: Vec<&str> = listed.iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["one", "two"]);
    assert_eq!(listed[0]["max_concurrent"], 2);
    assert_eq!(
        listed[0]["allow_dirs"],
        json!([sample.canonicalize().unwrap()])
    );
    let store = tempfile::tempdir().unwrap();
    component("mapping");
    for example in EXAMPLES {
        let job = root().join(format!("guest-examples/jobs/{example}.toml"));
        let local = run_example(example, &[]).expect_code(0).json();
        let there = remote(&nats, store.path(), &["run", job.to_str().unwrap()]).expect_code(0);
        assert_eq!(there.json(), local, "{example}");
    }
    // Both workers took steps.
    std::thread::sleep(Duration::from_secs(4));
    for worker in live_workers(&nats) {
        assert!(worker["finished"].as_u64().unwrap() > 0, "{worker}");
    }
}

#[test]
fn a_10000_way_fan_out_survives_a_killed_worker_and_a_new_one() {
    let Some(nats) = Nats::start() else { return };
    let workers = [
        Worker::start(&nats, "a", 2, &[]),
        Worker::start(&nats, "b", 2, &[]),
        Worker::start(&nats, "c", 2, &[]),
    ];
    wait_for_workers(&nats, 3);
    let store = tempfile::tempdir().unwrap();
    let job = fan_out_job(10_000, "burn", "{ rounds = 1000000 }");
    let mut run = spawn_run(&nats, store.path(), &job.path());
    let id = crate::support::wait_for_run(store.path());
    wait_for_successes(store.path(), &id, 1_000);
    let [a, b, c] = workers;
    // kill -9 mid-step: its calls are redelivered once their ack deadline (2 s) passes.
    a.kill();
    let _d = Worker::start(&nats, "d", 2, &[]);
    let status = crate::support::finish(&mut run);
    assert!(status.success(), "{status:?}");
    let outputs = host_in(store.path(), &["output", &id, "total"]).expect_code(0);
    assert_eq!(json!({"total": outputs.json()}), total(10_000));
    each_step_succeeded_once(store.path(), &id, 10_002);
    drop((b, c));
}

#[test]
fn a_killed_coordinator_is_resumed_and_takes_over_what_workers_finished_meanwhile() {
    let Some(nats) = Nats::start() else { return };
    let _one = Worker::start(&nats, "one", 2, &[]);
    let _two = Worker::start(&nats, "two", 2, &[]);
    wait_for_workers(&nats, 2);
    let store = tempfile::tempdir().unwrap();
    let job = fan_out_job(200, "nap", "{ ms = 20 }");
    let mut run = spawn_run(&nats, store.path(), &job.path());
    let id = crate::support::wait_for_run(store.path());
    wait_for_successes(store.path(), &id, 20);
    // kill -9: the workers go on with the calls it had sent (up to 64), meanwhile.
    run.kill().unwrap();
    run.wait().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let resumed = remote(&nats, store.path(), &["resume", &id]).expect_code(0);
    assert_eq!(resumed.json(), total(200), "{}", resumed.stderr);
    each_step_succeeded_once(store.path(), &id, 202);
    // What finished while the coordinator was down was taken over, not run again: without
    // that, the workers would have run the up to 64 calls in flight twice.
    std::thread::sleep(Duration::from_secs(4));
    let ran: u64 = live_workers(&nats)
        .iter()
        .map(|w| w["finished"].as_u64().unwrap())
        .sum();
    assert!(
        ran < 202 + 16,
        "the workers ran {ran} attempts for 202 steps"
    );
}

#[test]
fn a_nats_server_restart_mid_run_loses_nothing() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    let _one = Worker::start(&nats, "one", 2, &[]);
    let _two = Worker::start(&nats, "two", 2, &[]);
    wait_for_workers(&nats, 2);
    let store = tempfile::tempdir().unwrap();
    let job = fan_out_job(400, "nap", "{ ms = 10 }");
    let mut run = spawn_run(&nats, store.path(), &job.path());
    let id = crate::support::wait_for_run(store.path());
    wait_for_successes(store.path(), &id, 50);
    nats.restart(Duration::from_millis(500));
    let status = crate::support::finish(&mut run);
    assert!(status.success(), "{status:?}");
    each_step_succeeded_once(store.path(), &id, 402);
    let outputs = host_in(store.path(), &["output", &id, "total"]).expect_code(0);
    assert_eq!(json!({"total": outputs.json()}), total(400));
}

#[test]
fn processes_setting_up_a_new_server_at_once_all_join_it() {
    let Some(nats) = Nats::start() else { return };
    // Each creates the streams and buckets it misses: the server refuses all but one creation
    // of each bucket, and the others must take the one that won.
    let _workers: Vec<_> = (0..8)
        .map(|i| Worker::start(&nats, &format!("w{i}"), 1, &[]))
        .collect();
    wait_for_workers(&nats, 8);
}

#[test]
fn values_above_the_inline_limit_travel_through_the_object_store() {
    let Some(nats) = Nats::start() else { return };
    let _one = Worker::start(&nats, "one", 2, &[]);
    let job = TempJob::new(
        "[ops.blobs]\ncomponent = 'testkit'\nop = 'fan_out'\nconfig = { n = 12, bytes = 200000 }\n\
         [ops.echo]\ncomponent = 'testkit'\nop = 'identity'\ninputs.value = { map = 'blobs' }\n\
         [ops.seen]\ncomponent = 'testkit'\nop = 'count'\ninputs.values = { collect = 'echo' }\n",
    );
    let store = tempfile::tempdir().unwrap();
    let ran = remote(&nats, store.path(), &["run", job.path().to_str().unwrap()]).expect_code(0);
    assert_eq!(ran.json(), json!({"seen": 12}));
    // Every byte came back: clone 7's value is 200,000 bytes of 7.
    let id = crate::support::only_run(store.path());
    let value = host_in(store.path(), &["output", &id, "echo[k7]"]).expect_code(0);
    let text = value.json().to_string();
    assert!(text.len() > 200_000, "{}", &text[..100.min(text.len())]);
}

#[test]
fn a_step_granted_a_directory_its_worker_does_not_serve_fails_saying_so() {
    let Some(nats) = Nats::start() else { return };
    let _bare = Worker::start(&nats, "bare", 1, &[]);
    let store = tempfile::tempdir().unwrap();
    let job = root().join("guest-examples/jobs/process_directory.toml");
    let ran = remote(&nats, store.path(), &["run", job.to_str().unwrap()]).expect_code(1);
    assert!(
        ran.stderr
            .contains("worker `bare` does not serve directory")
            && ran.stderr.contains("--allow-dir"),
        "{}",
        ran.stderr
    );
}

#[test]
fn bad_executors_are_refused_with_a_clear_error() {
    let job = root().join("guest-examples/jobs/dynamic_graph.toml");
    let job = job.to_str().unwrap();
    let ran = host(["run", job, "--executor", "tcp://x"]).expect_code(2);
    assert!(
        ran.stderr
            .contains("unknown executor `tcp://x`: use `local` or `nats://HOST:PORT`"),
        "{}",
        ran.stderr
    );
    let url = format!("nats://127.0.0.1:{}", free_port());
    let ran = host(["run", job, "--executor", &url]).expect_code(2);
    assert!(
        ran.stderr
            .contains(&format!("cannot connect to NATS at `{url}`")),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_server_with_a_nats_executor_runs_tenant_jobs_on_the_workers() {
    let Some(nats) = Nats::start() else { return };
    let _one = Worker::start(&nats, "one", 2, &[]);
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(store.path(), &["--executor", &nats.url()]);
    let api = server.tenant("team", &[]);
    let (job, components) = uploadable("dynamic_graph");
    for name in components {
        api.upload(&name);
    }
    let id = api.submit(&job);
    assert_eq!(api.wait(&id)["status"], "SUCCESS");
    assert_eq!(
        api.get(&format!("/v1/runs/{id}/outputs"))
            .expect(200)
            .json(),
        json!({"merge_and_analyze": 9900})
    );
    std::thread::sleep(Duration::from_secs(4));
    assert!(live_workers(&nats)[0]["finished"].as_u64().unwrap() >= 52);
}

#[test]
fn hostile_steps_on_a_worker_fail_with_the_same_typed_errors_and_harm_nothing() {
    let Some(nats) = Nats::start() else { return };
    let _one = Worker::start(&nats, "one", 2, &[]);
    let job = TempJob::new(
        "[ops.spin]\ncomponent = 'adversary'\nlimits = { fuel = 100_000_000 }\n\
         [ops.grow_memory]\ncomponent = 'adversary'\nlimits = { memory = '32MiB' }\n\
         [ops.recurse]\ncomponent = 'adversary'\n\
         [ops.huge_log]\ncomponent = 'adversary'\nconfig.bytes = 500000\n\
         [ops.print_ignoring_errors]\ncomponent = 'adversary'\nconfig.bytes = 900000\n",
    );
    let store = tempfile::tempdir().unwrap();
    let ran = remote(
        &nats,
        store.path(),
        &["run", job.path().to_str().unwrap(), "--json"],
    )
    .expect_code(1);
    let events = ran.events();
    let failed = |step: &str| {
        events
            .iter()
            .find(|e| e["event"] == "STEP_FAILURE" && e["step_key"] == step)
            .unwrap_or_else(|| panic!("{step} did not fail: {}", ran.stderr))["error_kind"]
            .clone()
    };
    assert_eq!(failed("spin"), "out_of_fuel");
    assert_eq!(failed("grow_memory"), "memory_limit");
    assert_eq!(failed("recurse"), "stack_overflow");
    // Large log lines and captured output are cut to fit a message, saying so; the steps
    // succeed.
    for step in ["huge_log", "print_ignoring_errors"] {
        let logged = events
            .iter()
            .find(|e| e["event"] == "LOGS" && e["step_key"] == step)
            .unwrap_or_else(|| panic!("no log of {step}"));
        let text = logged["message"].as_str().unwrap();
        assert!(text.len() < 70_000, "{step}: {} bytes", text.len());
        assert!(
            text.ends_with("more bytes not sent by the worker)"),
            "{step}"
        );
        assert!(
            events
                .iter()
                .any(|e| e["event"] == "STEP_SUCCESS" && e["step_key"] == step),
            "{step}"
        );
    }
    // The worker is still there for the next run.
    let job = root().join("guest-examples/jobs/dynamic_graph.toml");
    let again = remote(&nats, store.path(), &["run", job.to_str().unwrap()]).expect_code(0);
    assert_eq!(again.json(), json!({"merge_and_analyze": 9900}));
}

//! `host serve` through a real HTTP client: the real binary on a free loopback port with its own
//! store, tenants added with `host tenant add`, the example components uploaded.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{TempJob, component, host, host_command, root, run_example};

/// A running `host serve`, killed (SIGKILL) when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    store: PathBuf,
}

impl Server {
    /// Starts `host serve` on a free loopback port with the store in `store`.
    pub fn start(store: &Path, extra: &[&str]) -> Server {
        Server::spawn(store, "serve", extra)
    }

    /// Starts `host ui` on a free loopback port with the store in `store`.
    pub fn start_ui(store: &Path) -> Server {
        Server::spawn(store, "ui", &[])
    }

    fn spawn(store: &Path, command: &str, extra: &[&str]) -> Server {
        let mut child = host_command()
            .env("SHOAL_STORE", store)
            .env("RUST_LOG", "warn")
            .args([command, "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("host serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("host serve prints its address");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server {
            child,
            base,
            store: store.to_path_buf(),
        }
    }

    /// Adds tenant `name` with `quotas` (`host tenant add` flags) and returns its client.
    pub fn tenant(&self, name: &str, quotas: &[&str]) -> Api {
        let out = host_command()
            .env("SHOAL_STORE", &self.store)
            .args(["tenant", "add", name])
            .args(quotas)
            .output()
            .expect("host tenant add runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
        Api::new(&self.base, Some(&token))
    }

    /// Sends SIGTERM and waits for the server to exit; returns its exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        crate::support::wait_within(&mut self.child, Duration::from_secs(30))
            .expect("the server did not stop on SIGTERM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client with one tenant's token (or none).
pub struct Api {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

/// A response: status code, headers we look at, and the body.
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.body))
    }

    /// Asserts the status, showing the body when it differs.
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status, status, "{}", self.body);
        self
    }

    /// The error's message, checking the error shape.
    pub fn error(&self, kind: &str) -> String {
        let json = self.json();
        assert_eq!(json["error"]["kind"], kind, "{json}");
        json["error"]["message"].as_str().unwrap().to_string()
    }
}

impl Api {
    /// The tenant's token, as `host tenant add` printed it.
    pub fn token(&self) -> &str {
        self.token.as_deref().expect("a tenant's client")
    }

    pub fn new(base: &str, token: Option<&str>) -> Api {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Api {
            agent,
            base: base.to_string(),
            token: token.map(str::to_string),
        }
    }

    fn reply(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        let mut response = result.expect("the server answers");
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let body = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string()
            .unwrap();
        Reply {
            status: response.status().as_u16(),
            retry_after,
            body,
        }
    }

    fn auth<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(token) => request.header("Authorization", &format!("Bearer {token}")),
            None => request,
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        Self::reply(
            self.auth(self.agent.get(format!("{}{path}", self.base)))
                .call(),
        )
    }

    pub fn delete(&self, path: &str) -> Reply {
        Self::reply(
            self.auth(self.agent.delete(format!("{}{path}", self.base)))
                .call(),
        )
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        Self::reply(
            self.auth(self.agent.post(format!("{}{path}", self.base)))
                .send_json(body),
        )
    }

    pub fn put(&self, path: &str, bytes: &[u8]) -> Reply {
        Self::reply(
            self.auth(self.agent.put(format!("{}{path}", self.base)))
                .send(bytes),
        )
    }

    /// Uploads example component `name` under its own name.
    pub fn upload(&self, name: &str) -> Value {
        let bytes = std::fs::read(component(name)).unwrap();
        self.put(&format!("/v1/components/{name}"), &bytes)
            .expect(201)
            .json()
    }

    /// Submits `job` and returns the run id.
    pub fn submit(&self, job: &str) -> String {
        let reply = self.post("/v1/runs", &json!({ "job": job })).expect(201);
        reply.json()["run_id"].as_str().unwrap().to_string()
    }

    /// Follows run `id`'s events until it ends and returns them.
    pub fn follow(&self, id: &str) -> Vec<Value> {
        let reply = self
            .get(&format!("/v1/runs/{id}/events?follow=true"))
            .expect(200);
        reply
            .body
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Waits for run `id` to end and returns its record.
    pub fn wait(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let run = self.get(&format!("/v1/runs/{id}")).expect(200).json();
            if run["status"] != "RUNNING" {
                return run;
            }
            assert!(Instant::now() < deadline, "run {id} did not end: {run}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Example job `name` as a server takes it: each component named by its upload name instead
/// of a path; returns the text and the components it names.
pub fn uploadable(name: &str) -> (String, Vec<String>) {
    let text =
        std::fs::read_to_string(root().join(format!("guest-examples/jobs/{name}.toml"))).unwrap();
    let mut components = Vec::new();
    let lines: Vec<String> = text
        .lines()
        .map(|line| match line.trim().strip_prefix("path = ") {
            Some(path) if path.ends_with(".wasm\"") => {
                let file = Path::new(path.trim_matches('"'));
                let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
                components.push(stem.clone());
                format!("name = \"{stem}\"")
            }
            _ => line.to_string(),
        })
        .collect();
    (lines.join("\n"), components)
}

pub const EXAMPLES: [&str; 7] = [
    "dynamic_graph",
    "chained",
    "multiple",
    "nested",
    "other_arg",
    "return_dynamic",
    "process_directory",
];

#[test]
fn every_example_gives_through_the_api_what_host_run_prints() {
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(store.path(), &[]);
    let sample = root().join("guest-examples/sample");
    let api = server.tenant("team_a", &["--allow-dir", sample.to_str().unwrap()]);
    let mut uploaded = std::collections::HashSet::new();
    for example in EXAMPLES {
        let (job, components) = uploadable(example);
        for name in components {
            if uploaded.insert(name.clone()) {
                let entry = api.upload(&name);
                assert_eq!(entry["name"], name.as_str());
                assert_eq!(entry["digest"].as_str().unwrap().len(), 64);
                assert!(!entry["ops"].as_array().unwrap().is_empty(), "{entry}");
            }
        }
        let id = api.submit(&job);
        let events = api.follow(&id);
        assert_eq!(events.first().unwrap()["event"], "RUN_START", "{example}");
        assert_eq!(events.last().unwrap()["event"], "RUN_SUCCESS", "{example}");
        assert!(events.iter().all(|e| e["run_id"] == id.as_str()));
        let local = run_example(example, &[]).expect_code(0).json();
        let served = api
            .get(&format!("/v1/runs/{id}/outputs"))
            .expect(200)
            .json();
        assert_eq!(served, local, "{example}");
    }
    // One run in detail: step counts per op, one step's output, the run list.
    let (job, _) = uploadable("dynamic_graph");
    let id = api.submit(&job);
    let run = api.wait(&id);
    assert_eq!(run["status"], "SUCCESS");
    assert_eq!(run["steps"]["compute_piece"]["SUCCESS"], 50, "{run}");
    assert_eq!(run["steps"]["merge_and_analyze"]["SUCCESS"], 1, "{run}");
    let piece = api
        .get(&format!("/v1/runs/{id}/outputs/compute_piece[7]"))
        .expect(200)
        .json();
    assert_eq!(piece, json!([28, 30]));
    let listed = api
        .get("/v1/runs?status=SUCCESS&limit=3")
        .expect(200)
        .json();
    let listed = listed["runs"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["run_id"], id.as_str(), "newest first");
    let components = api.get("/v1/components").expect(200).json();
    assert_eq!(
        components["components"].as_array().unwrap().len(),
        uploaded.len()
    );
    assert_eq!(
        api.get("/healthz").expect(200).body.trim(),
        "ok",
        "no token needed"
    );
    // A second server on the same store refuses to start.
    let second = host_command()
        .env("SHOAL_STORE", store.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another `host serve` uses the store"),
        "{stderr}"
    );
    let metrics = api.get("/metrics").expect(200).body;
    assert!(
        metrics.contains("shoal_runs_total{tenant=\"team_a\",status=\"success\"} 8"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shoal_step_duration_seconds_bucket"),
        "{metrics}"
    );
}

#[test]
fn a_tenant_sees_nothing_of_another_and_needs_its_token() {
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(store.path(), &[]);
    let a = server.tenant("alpha", &[]);
    let b = server.tenant("beta", &[]);
    a.upload("dynamic_graph");
    let (job, _) = uploadable("dynamic_graph");
    let id = a.submit(&job);
    a.wait(&id);

    // Another tenant's run answers exactly as a run that does not exist.
    for path in [
        format!("/v1/runs/{id}"),
        format!("/v1/runs/{id}/events"),
        format!("/v1/runs/{id}/outputs"),
        format!("/v1/runs/{id}/outputs/compute_piece[1]"),
    ] {
        let theirs = b.get(&path).expect(404);
        let none = b
            .get(&path.replace(&id, "0000000000-00000-0000"))
            .expect(404);
        assert_eq!(
            theirs.body.replace(&id, "ID"),
            none.body.replace("0000000000-00000-0000", "ID"),
            "{path}"
        );
    }
    b.post(&format!("/v1/runs/{id}/cancel"), &json!({}))
        .expect(404);
    b.post(
        &format!("/v1/runs/{id}/reexecute"),
        &json!({"from_failure": true}),
    )
    .expect(404);
    b.delete(&format!("/v1/runs/{id}")).expect(404);
    assert_eq!(b.get("/v1/runs").expect(200).json()["runs"], json!([]));
    // Nor its components: a job naming one is refused.
    assert_eq!(
        b.get("/v1/components").expect(200).json()["components"],
        json!([])
    );
    b.get("/v1/components/dynamic_graph").expect(404);
    let refused = b.post("/v1/runs", &json!({ "job": job })).expect(400);
    assert!(
        refused.error("invalid_job").contains("has not uploaded"),
        "{}",
        refused.body
    );

    // No token, a malformed one, a forged one, a rotated one: 401.
    let anonymous = Api::new(&server.base, None);
    anonymous.get("/v1/runs").expect(401).error("unauthorized");
    Api::new(&server.base, Some("nonsense"))
        .get("/v1/runs")
        .expect(401);
    let forged = format!("shoal.alpha.{}", "0".repeat(64));
    Api::new(&server.base, Some(&forged))
        .get("/v1/runs")
        .expect(401);
    let old = a.token.clone().unwrap();
    let out = host_command()
        .env("SHOAL_STORE", store.path())
        .args(["tenant", "rotate", "alpha"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let new = String::from_utf8(out.stdout).unwrap().trim().to_string();
    Api::new(&server.base, Some(&old))
        .get("/v1/runs")
        .expect(401);
    let rotated = Api::new(&server.base, Some(&new));
    assert_eq!(
        rotated.get("/v1/runs").expect(200).json()["runs"][0]["run_id"],
        id.as_str()
    );
    // The store keeps no token.
    let db = std::fs::read(store.path().join("shoal.db")).unwrap();
    let secret = new.rsplit('.').next().unwrap();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the token is in the store"
    );

    // The owner deletes its run and its component; then they are gone for it too.
    rotated.delete(&format!("/v1/runs/{id}")).expect(204);
    rotated.get(&format!("/v1/runs/{id}")).expect(404);
    rotated.delete("/v1/components/dynamic_graph").expect(204);
    rotated.get("/v1/components/dynamic_graph").expect(404);

    // The administrator lists tenants (no tokens shown) and removes one: its token stops working.
    let list = |args: &[&str]| {
        host_command()
            .env("SHOAL_STORE", store.path())
            .arg("tenant")
            .args(args)
            .output()
            .unwrap()
    };
    let listed = String::from_utf8(list(&["list"]).stdout).unwrap();
    assert!(
        listed.contains("alpha\t") && listed.contains("beta\t"),
        "{listed}"
    );
    assert!(!listed.contains(secret), "{listed}");
    assert!(list(&["remove", "beta"]).status.success());
    b.get("/v1/runs").expect(401);
    let bad = list(&["add", "../evil"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid tenant name `../evil`"));
}

#[test]
fn jobs_and_uploads_are_held_to_the_tenant_quotas() {
    let store = tempfile::tempdir().unwrap();
    let allowed = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let server = Server::start(store.path(), &["--max-request-size", "4KiB"]);
    let api = server.tenant(
        "gamma",
        &[
            "--allow-dir",
            allowed.path().to_str().unwrap(),
            "--max-memory",
            "64MiB",
            "--max-queued-runs",
            "1",
            "--storage",
            "600KiB",
        ],
    );
    api.upload("testkit");
    let job = |extra: &str| {
        format!(
            "[components.testkit]\n[ops.nums]\ncomponent = 'testkit'\nop = 'fan_out'\n\
             config.n = 3\n[ops.total]\ncomponent = 'testkit'\nop = 'sum'\n\
             inputs.values = {{ collect = 'nums' }}\n{extra}"
        )
    };
    // A run that reads as ended no longer counts against `max_queued_runs`, so each of these
    // is refused for what it asks, never for the runs before it.
    let refused = |extra: &str, kind: &str| {
        api.post("/v1/runs", &json!({ "job": job(extra) }))
            .expect(400)
            .error(kind)
    };
    // Directories only under the tenant's roots: not elsewhere, not by `..`, not by symlink.
    let grant = |host: &str| format!("[[ops.total.dirs]]\nhost = '{host}'\nguest = '/data'\n");
    for host in [
        outside.path().to_str().unwrap().to_string(),
        format!("{}/../", allowed.path().display()),
        "/".to_string(),
    ] {
        let message = refused(&grant(&host), "invalid_job");
        assert!(
            message.contains("outside the directories this tenant may grant"),
            "{message}"
        );
    }
    // A symlink out of the root, and a path that does not exist, get the same answer: a tenant
    // cannot tell what exists on the server.
    std::os::unix::fs::symlink(outside.path(), allowed.path().join("link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent", allowed.path().join("dangling")).unwrap();
    let answers: Vec<String> = ["link", "dangling", "missing"]
        .iter()
        .map(|name| {
            let host = format!("{}/{name}", allowed.path().display());
            refused(&grant(&host), "invalid_job").replace(&host, "HOST")
        })
        .collect();
    assert!(
        answers[0].contains("not an existing directory beneath"),
        "{}",
        answers[0]
    );
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    // A relative grant resolves under the first root: allowed.
    std::fs::create_dir(allowed.path().join("in")).unwrap();
    let fine = api.submit(&job(&grant("in")));
    api.wait(&fine);
    // A job `host validate` refuses is refused with the same message.
    let miswired =
        "[ops.total2]\ncomponent = 'testkit'\nop = 'sum'\ninputs.values = { collect = 'nope' }\n";
    let message = refused(miswired, "invalid_job");
    let local = TempJob::new(&job(miswired).replace("[components.testkit]\n", ""));
    let validate = host(["validate".as_ref(), local.path().as_os_str()]).expect_code(2);
    let cause = validate
        .stderr
        .lines()
        .find_map(|line| line.trim().strip_prefix("caused by: "))
        .unwrap_or_else(|| panic!("{}", validate.stderr));
    assert!(message.ends_with(cause), "{message} vs {cause}");
    // No file path for a component, no environment beyond the server's allow-list.
    let message = refused("[components.other]\npath = '/etc/passwd'\n", "invalid_job");
    assert!(message.contains("gives a `path`"), "{message}");
    let message = refused("env = ['HOME']\n", "above_quota");
    assert!(message.contains("environment variable `HOME`"), "{message}");
    // Limits above the tenant's ceilings are refused, naming the ceiling.
    let message = refused("limits.memory = '1GiB'\n", "above_quota");
    assert!(message.contains("ceiling `64.0 MiB`"), "{message}");
    // Bodies over the server's limit: 413.
    let big = job(&format!("# {}\n", "x".repeat(8 << 10)));
    let reply = api.post("/v1/runs", &json!({ "job": big })).expect(413);
    assert!(
        reply.error("too_large").contains("4.0 KiB"),
        "{}",
        reply.body
    );
    // Whatever axum refuses by itself answers in the API's error shape too.
    api.get("/v1/runs/%FF").expect(400).error("bad_request");
    api.get("/v1/nothing").expect(404).error("not_found");
    api.delete("/v1/runs")
        .expect(405)
        .error("method_not_allowed");
    // Component names are names, not paths; bytes must be a component.
    api.put("/v1/components/..%2F..%2Fetc", b"x").expect(400);
    let reply = api.put("/v1/components/junk", b"not wasm").expect(400);
    reply.error("invalid_component");

    // One unfinished run at most: the second is refused with Retry-After, until cancel.
    let slow = format!(
        "{}[ops.wait]\ncomponent = 'testkit'\nop = 'nap'\nconfig.ms = 60000\n\
         inputs.value = {{ from = 'total' }}\n",
        job("")
    );
    let running = api.submit(&slow);
    let reply = api.post("/v1/runs", &json!({ "job": job("") })).expect(429);
    assert!(reply.retry_after.is_some());
    assert!(
        reply.error("too_many_runs").contains("1 unfinished"),
        "{}",
        reply.body
    );
    api.post(&format!("/v1/runs/{running}/cancel"), &json!({}))
        .expect(202);
    assert_eq!(api.wait(&running)["status"], "CANCELED");
    api.post(&format!("/v1/runs/{running}/cancel"), &json!({}))
        .expect(409);

    // Storage: components and outputs count; over the quota, uploads are refused with 409.
    let reply = api
        .put(
            "/v1/components/adversary",
            &std::fs::read(component("adversary")).unwrap(),
        )
        .expect(409);
    assert!(
        reply.error("storage_full").contains("of its 600.0 KiB"),
        "{}",
        reply.body
    );
}

/// A fan-out of `n` naps of `ms` each, summed: slow enough to act on while it runs.
pub fn naps(n: u32, ms: u32) -> String {
    format!(
        "[components.testkit]\n[ops.nums]\ncomponent = 'testkit'\nop = 'fan_out'\nconfig.n = {n}\n\
         [ops.nap]\ncomponent = 'testkit'\nconfig.ms = {ms}\ninputs.value = {{ map = 'nums' }}\n\
         [ops.total]\ncomponent = 'testkit'\nop = 'sum'\ninputs.values = {{ collect = 'nap' }}\n"
    )
}

/// Waits until run `id` has a step of op `op` running.
fn wait_for_running(api: &Api, id: &str, op: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.get(&format!("/v1/runs/{id}")).expect(200).json()["steps"][op]["RUNNING"]
        .as_u64()
        .unwrap_or(0)
        == 0
    {
        assert!(Instant::now() < deadline, "no {op} step of {id} started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until run `id` has at least `n` successful steps of op `op`.
fn wait_for_successes(api: &Api, id: &str, op: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let run = api.get(&format!("/v1/runs/{id}")).expect(200).json();
        if run["steps"][op]["SUCCESS"].as_u64().unwrap_or(0) >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{run}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_or_stopped_server_resumes_its_runs_without_redoing_committed_steps() {
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(store.path(), &[]);
    let api = server.tenant("delta", &["--max-concurrent", "2"]);
    api.upload("testkit");
    let id = api.submit(&naps(24, 150));
    wait_for_successes(&api, &id, "nap", 3);
    // kill -9 mid-run: every committed step survives.
    drop(server);
    let server = Server::start(store.path(), &[]);
    let api = Api::new(&server.base, api.token.as_deref());
    wait_for_successes(&api, &id, "nap", 10);
    // A run the tenant cancels stays canceled, even when the server stops meanwhile.
    let canceled = api.submit(&naps(1, 30_000));
    wait_for_running(&api, &canceled, "nap");
    api.post(&format!("/v1/runs/{canceled}/cancel"), &json!({}))
        .expect(202);
    // SIGTERM mid-run, with a client that never finishes its request: the server stops within
    // the grace period all the same, leaving the run interrupted.
    let mut slow_client =
        std::net::TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    std::io::Write::write_all(&mut slow_client, b"GET /v1/runs HTTP/1.1\r\nHost: x\r\n").unwrap();
    let stopping = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "{:?}",
        stopping.elapsed()
    );
    drop(slow_client);
    let runs = host_command()
        .env("SHOAL_STORE", store.path())
        .arg("runs")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&runs.stdout);
    assert!(listed.contains("INTERRUPTED"), "{listed}");
    let server = Server::start(store.path(), &[]);
    let api = Api::new(&server.base, api.token.as_deref());
    let run = api.wait(&id);
    assert_eq!(run["status"], "SUCCESS", "{run}");
    assert_eq!(
        api.get(&format!("/v1/runs/{id}/outputs"))
            .expect(200)
            .json(),
        json!({"total": (0..24).sum::<i64>()})
    );
    assert_eq!(api.wait(&canceled)["status"], "CANCELED");
    // Each nap succeeded exactly once across the three servers.
    let events = api.follow(&id);
    for k in 0..24 {
        let key = format!("nap[k{k}]");
        let successes = events
            .iter()
            .filter(|e| e["event"] == "STEP_SUCCESS" && e["step_key"] == key.as_str())
            .count();
        assert_eq!(successes, 1, "{key}");
    }
}

#[test]
fn a_tenants_fan_out_neither_starves_nor_harms_another() {
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(store.path(), &["--max-concurrent", "2"]);
    let big = server.tenant("big", &["--max-concurrent", "2"]);
    let small = server.tenant("small", &["--max-concurrent", "2"]);
    for api in [&big, &small] {
        api.upload("testkit");
    }
    big.upload("adversary");
    // Tenant big: a long fan-out, and misbehaving guests in runs of their own.
    let fan_out = big.submit(&naps(400, 25));
    let mut attacks = Vec::new();
    for op in ["spin", "grow_memory", "recurse"] {
        let job = format!(
            "[components.adversary]\n[ops.{op}]\ncomponent = 'adversary'\nlimits.timeout = '2s'\n"
        );
        attacks.push(big.submit(&job));
    }
    // Tenant small: a 10-step job finishes while big's fan-out still runs.
    let started = Instant::now();
    let quick = small.submit(&naps(8, 1));
    let run = small.wait(&quick);
    let took = started.elapsed();
    assert_eq!(run["status"], "SUCCESS", "{run}");
    assert_eq!(
        small
            .get(&format!("/v1/runs/{quick}/outputs"))
            .expect(200)
            .json(),
        json!({"total": 28})
    );
    let still = big.get(&format!("/v1/runs/{fan_out}")).expect(200).json();
    assert_eq!(still["status"], "RUNNING", "small waited for big: {took:?}");
    for attack in attacks {
        assert_eq!(big.wait(&attack)["status"], "FAILURE");
    }
    assert_eq!(big.get("/healthz").expect(200).body.trim(), "ok");
    big.post(&format!("/v1/runs/{fan_out}/cancel"), &json!({}))
        .expect(202);
    eprintln!("small tenant's 10-step job beside a 400-nap fan-out: {took:?}");
}

#[test]
fn a_failed_run_is_reexecuted_from_failure_once_fixed() {
    let store = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(store.path(), &[]);
    let api = server.tenant("eps", &["--allow-dir", data.path().to_str().unwrap()]);
    api.upload("adversary");
    let job = "[components.adversary]\n[ops.read_file]\ncomponent = 'adversary'\n\
               config.path = '/data/input.txt'\n[[ops.read_file.dirs]]\nhost = '.'\nguest = '/data'\n";
    let failed = api.submit(job);
    assert_eq!(api.wait(&failed)["status"], "FAILURE");
    std::fs::write(data.path().join("input.txt"), "fixed").unwrap();
    let reply = api
        .post(
            &format!("/v1/runs/{failed}/reexecute"),
            &json!({"from_failure": true}),
        )
        .expect(201);
    let child = reply.json()["run_id"].as_str().unwrap().to_string();
    let run = api.wait(&child);
    assert_eq!(run["status"], "SUCCESS", "{run}");
    assert_eq!(run["parent"], failed.as_str());
    assert_eq!(
        api.get(&format!("/v1/runs/{child}/outputs"))
            .expect(200)
            .json(),
        json!({"read_file": "fixed"})
    );
    let bad = api
        .post(&format!("/v1/runs/{failed}/reexecute"), &json!({}))
        .expect(400);
    assert!(
        bad.error("bad_request").contains("from_failure"),
        "{}",
        bad.body
    );
}

#[test]
fn four_tenants_submitting_25_runs_each_at_once_lose_nothing() {
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(store.path(), &[]);
    let (job, _) = uploadable("dynamic_graph");
    let tenants: Vec<Api> = (0..4)
        .map(|t| {
            let api = server.tenant(&format!("load{t}"), &["--max-queued-runs", "25"]);
            api.upload("dynamic_graph");
            api
        })
        .collect();
    let started = Instant::now();
    let submitted: Vec<Vec<(String, Duration)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = tenants
            .iter()
            .map(|api| {
                scope.spawn(|| {
                    (0..25)
                        .map(|_| {
                            let at = Instant::now();
                            (api.submit(&job), at.elapsed())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all_submitted = started.elapsed();
    let mut submit_ms = Vec::new();
    let mut run_ms = Vec::new();
    for (api, runs) in tenants.iter().zip(&submitted) {
        for (id, latency) in runs {
            let run = api.wait(id);
            assert_eq!(run["status"], "SUCCESS");
            assert_eq!(
                api.get(&format!("/v1/runs/{id}/outputs"))
                    .expect(200)
                    .json(),
                json!({"merge_and_analyze": 9900})
            );
            submit_ms.push(latency.as_secs_f64() * 1e3);
            run_ms.push(run["duration_s"].as_f64().unwrap() * 1e3);
        }
        assert_eq!(
            api.get("/v1/runs").expect(200).json()["runs"]
                .as_array()
                .unwrap()
                .len(),
            25
        );
    }
    let all = started.elapsed();
    let percentile = |values: &mut Vec<f64>, p: f64| {
        values.sort_by(f64::total_cmp);
        values[((values.len() - 1) as f64 * p).round() as usize]
    };
    eprintln!(
        "load: 100 runs (5,200 steps): submit p50 {:.1} ms, p95 {:.1} ms; run p50 {:.1} ms, \
         p95 {:.1} ms; all submitted in {all_submitted:?}, all finished in {all:?}: {:.1} runs/s",
        percentile(&mut submit_ms, 0.5),
        percentile(&mut submit_ms, 0.95),
        percentile(&mut run_ms, 0.5),
        percentile(&mut run_ms, 0.95),
        100.0 / all.as_secs_f64()
    );
}

#[test]
fn concurrent_submissions_never_exceed_max_queued_runs() {
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(store.path(), &[]);
    let api = server.tenant("zeta", &["--max-queued-runs", "3"]);
    api.upload("testkit");
    let slow = naps(2, 20_000);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|_| scope.spawn(|| api.post("/v1/runs", &json!({ "job": slow })).status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|&&s| s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 429).count(),
        7,
        "{statuses:?}"
    );
    for run in api.get("/v1/runs").expect(200).json()["runs"]
        .as_array()
        .unwrap()
    {
        let id = run["run_id"].as_str().unwrap();
        api.post(&format!("/v1/runs/{id}/cancel"), &json!({}))
            .expect(202);
    }
}

#[test]
fn a_grant_swapped_for_a_symlink_after_it_was_checked_leads_nowhere() {
    let store = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "server secret").unwrap();
    std::fs::create_dir(root.path().join("data")).unwrap();
    let server = Server::start(store.path(), &[]);
    let api = server.tenant(
        "eta",
        &[
            "--allow-dir",
            root.path().to_str().unwrap(),
            "--max-concurrent",
            "1",
        ],
    );
    api.upload("testkit");
    api.upload("adversary");
    // The tenant's only slot is busy, so the reader waits, its grant already checked.
    let busy = api.submit(&naps(1, 1500));
    wait_for_running(&api, &busy, "nap");
    let reader = api.submit(
        "[components.adversary]\n[ops.read_file]\ncomponent = 'adversary'\n\
         config.path = '/data/secret.txt'\n[[ops.read_file.dirs]]\nhost = 'data'\nguest = '/data'\n",
    );
    std::fs::remove_dir(root.path().join("data")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("data")).unwrap();
    assert_eq!(api.wait(&busy)["status"], "SUCCESS");
    let run = api.wait(&reader);
    assert_eq!(run["status"], "FAILURE", "{run}");
    let events = api.follow(&reader);
    let failure = events
        .iter()
        .find(|e| e["event"] == "STEP_FAILURE")
        .expect("the reader fails");
    assert!(
        failure["error"]
            .as_str()
            .unwrap()
            .contains("no longer a directory beneath its root"),
        "{failure}"
    );
    assert!(
        !api.follow(&reader)
            .iter()
            .any(|e| e.to_string().contains("server secret"))
    );
}

#[test]
fn a_submission_selects_ops_and_gives_inputs_values() {
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(store.path(), &[]);
    let api = server.tenant("team_a", &[]);
    let (job, _) = uploadable("other_arg");
    api.upload("mapping");
    let submission = json!({"job": job, "select": ["add"], "inputs": {"add": {"a": 5, "b": 7}}});
    let reply = api.post("/v1/runs", &submission).expect(201);
    let id = reply.json()["run_id"].as_str().unwrap().to_string();
    let run = api.wait(&id);
    assert_eq!(
        (&run["status"], &run["select"]),
        (&json!("SUCCESS"), &json!(["add"]))
    );
    let outputs = api
        .get(&format!("/v1/runs/{id}/outputs"))
        .expect(200)
        .json();
    assert_eq!(outputs, json!({"add": 12}));

    let refused = json!({"job": job, "select": ["add"], "inputs": {"add": {"a": "x", "b": 7}}});
    let message = api
        .post("/v1/runs", &refused)
        .expect(400)
        .error("invalid_job");
    assert!(
        message.contains("op `add`: input `a` is given \"x\""),
        "{message}"
    );
    let null = json!({"job": job, "inputs": {"add": {"a": null}}});
    let message = api.post("/v1/runs", &null).expect(400).error("bad_request");
    assert!(
        message.contains("input `a` of op `add`: `null` cannot be given"),
        "{message}"
    );
}

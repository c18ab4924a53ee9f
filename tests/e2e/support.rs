//! Test support: builds the guest components once, writes job files into temp dirs, runs
//! `host` and parses what it prints.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use host::store::{RunStore, SqliteStore};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Builds `guest-examples/` (once per test process) and returns the path of component `name`.
pub fn component(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let guests = root().join("guest-examples");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(guests.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", guests.join("target"))
            // The host build's flags must not reach the wasm build.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .expect("failed to run cargo to build guest-examples");
        assert!(
            status.success(),
            "building guest-examples failed; is the wasm32-wasip2 target installed? \
             (rustup target add wasm32-wasip2)"
        );
        guests.join("target/wasm32-wasip2/release")
    });
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.exists(), "no component at {}", path.display());
    path
}

/// What one `host` invocation did.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// The JSON on stdout (the final outputs of `host run`).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|err| {
            panic!(
                "stdout is not JSON ({err}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    /// The JSON Lines events of `host run --json`.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|line| serde_json::from_str(line).expect("event line is JSON"))
            .collect()
    }

    /// Asserts the exit code, showing the output when it differs.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl From<Output> for Ran {
    fn from(output: Output) -> Self {
        Ran {
            code: output
                .status
                .code()
                .expect("host exited normally, not by a signal"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// The run store the tests share, inside cargo's scratch directory rather than `~/.shoal`.
pub fn test_store() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("store")
}

/// A `host` command using the tests' run store.
pub fn host_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_host"));
    command.env("SHOAL_STORE", test_store());
    command
}

/// `host run JOB --max-concurrent 1` against the store in `store`, to be spawned: a run
/// whose steps go one at a time, for tests that act on it while it runs.
pub fn one_at_a_time(job: &Path, store: &Path) -> Command {
    let mut command = host_command();
    command
        .env("SHOAL_STORE", store)
        .arg("run")
        .arg(job)
        .args(["--max-concurrent", "1"]);
    command
}

/// Runs `host` with `args`.
pub fn host<I, S>(args: I) -> Ran
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut command = host_command();
    command.args(args);
    output_within(&mut command, HOST_DEADLINE).into()
}

/// Runs `host` with `args` against the store in `store`.
pub fn host_in(store: &Path, args: &[&str]) -> Ran {
    let mut command = host_command();
    command.env("SHOAL_STORE", store).args(args);
    output_within(&mut command, HOST_DEADLINE).into()
}

/// How long one `host` command of a test may take: far more than any needs on a loaded 2-core
/// machine, so that a hung process fails its test instead of stalling the whole suite.
pub const HOST_DEADLINE: Duration = Duration::from_secs(300);

/// Runs `command` to completion like [`Command::output`], but kills it and fails the test if it
/// has not exited after `deadline`, showing what it printed.
pub fn output_within(command: &mut Command, deadline: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("host runs");
    let stdout = drain(child.stdout.take().expect("piped"));
    let stderr = drain(child.stderr.take().expect("piped"));
    let status = wait_within(&mut child, deadline);
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let Some(status) = status else {
        panic!(
            "{command:?} did not exit within {deadline:?}; killed it.\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
    };
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Reads all of `pipe` on a thread of its own, so that neither of a child's pipes fills up
/// while the other is read.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Waits for `child` to exit; kills it (and returns `None`) once `deadline` has passed.
pub fn wait_within(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return Some(status);
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a spawned `host` to exit, failing the test if it takes past [`HOST_DEADLINE`].
pub fn finish(child: &mut Child) -> ExitStatus {
    wait_within(child, HOST_DEADLINE)
        .unwrap_or_else(|| panic!("host did not exit within {HOST_DEADLINE:?}; killed it"))
}

/// A job in a new temp dir (kept alive by the returned handle) whose one component, `words`,
/// is not built yet: `target/words.wasm` is missing, and its table says how to build it.
pub fn unbuilt_job() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("job.toml");
    std::fs::write(
        &path,
        "[components.words]\npath = 'target/words.wasm'\nbuild = 'cargo build --release'\n\
         [ops.split]\ncomponent = 'words'\n",
    )
    .expect("write job");
    (dir, path)
}

/// The id of the one run in `store`.
pub fn only_run(store: &Path) -> String {
    let runs = SqliteStore::open(store).unwrap().runs().unwrap();
    assert_eq!(runs.len(), 1, "one run in the store");
    runs[0].id.clone()
}

/// Waits until a `host` process started on `store` has recorded its run; returns its id.
pub fn wait_for_run(store: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(run) = SqliteStore::open(store).unwrap().runs().unwrap().first() {
            return run.id.clone();
        }
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs an example job of `guest-examples/jobs/`.
pub fn run_example(name: &str, extra: &[&str]) -> Ran {
    component("mapping");
    let job = root()
        .join("guest-examples/jobs")
        .join(format!("{name}.toml"));
    let mut args = vec!["run".into(), job.into_os_string()];
    args.extend(extra.iter().map(Into::into));
    host(args)
}

/// A temp dir holding `job.toml`: `body` after `[components.testkit]` and
/// `[components.adversary]` tables.
pub struct TempJob {
    pub dir: tempfile::TempDir,
}

impl TempJob {
    pub fn new(body: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = |name| format!("{:?}", component(name).display().to_string());
        let text = format!(
            "[components.testkit]\npath = {}\n[components.adversary]\npath = {}\n\n{body}",
            path("testkit"),
            path("adversary")
        );
        std::fs::write(dir.path().join("job.toml"), text).expect("write job");
        TempJob { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("job.toml")
    }

    /// Runs `host run job.toml` with `extra` arguments.
    pub fn run(&self, extra: &[&str]) -> Ran {
        self.run_with_env(extra, &[])
    }

    /// Runs `host run job.toml` with `extra` arguments and environment variables `env` set.
    pub fn run_with_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Ran {
        host_command()
            .arg("run")
            .arg(self.path())
            .args(extra)
            .envs(env.iter().copied())
            .output()
            .expect("host runs")
            .into()
    }
}

/// The events of `kind` (e.g. `STEP_FAILURE`).
pub fn of_kind<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

/// The single STEP_FAILURE event of `step`.
pub fn failure<'a>(events: &'a [serde_json::Value], step: &str) -> &'a serde_json::Value {
    let failures: Vec<_> = of_kind(events, "STEP_FAILURE")
        .into_iter()
        .filter(|e| e["step_key"] == step)
        .collect();
    assert_eq!(
        failures.len(),
        1,
        "expected one failure of {step}: {events:#?}"
    );
    failures[0]
}

/// `component`'s bytes with `sections` (written by wasm-encoder) appended to its top level, as
/// a third-party toolchain might have laid it out: existing indices stay as they are.
pub fn with_sections(component: &[u8], sections: &wasm_encoder::Component) -> Vec<u8> {
    let extra = sections.clone().finish();
    // Both start with the same 8-byte component header.
    let mut bytes = component.to_vec();
    bytes.extend_from_slice(&extra[8..]);
    bytes
}

/// The sizes of a component's top-level type and core module index spaces: where appended
/// definitions land.
pub struct TopLevel {
    pub types: u32,
    pub core_modules: u32,
}

impl TopLevel {
    pub fn of(bytes: &[u8]) -> TopLevel {
        use wasmparser::{
            ComponentAlias, ComponentExternalKind as Kind, ComponentOuterAliasKind as Outer,
            ComponentTypeRef, Payload,
        };
        let mut top = TopLevel {
            types: 0,
            core_modules: 0,
        };
        let mut depth = 0usize;
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            let payload = payload.expect("a valid component");
            if depth > 1 {
                match payload {
                    Payload::Version { .. } => depth += 1,
                    Payload::End(_) => depth -= 1,
                    _ => {}
                }
                continue;
            }
            match payload {
                Payload::Version { .. } => depth += 1,
                Payload::End(_) => depth -= 1,
                Payload::ModuleSection { .. } => top.core_modules += 1,
                Payload::ComponentTypeSection(reader) => top.types += reader.count(),
                Payload::ComponentImportSection(reader) => {
                    for import in reader {
                        match import.unwrap().ty {
                            ComponentTypeRef::Type(_) => top.types += 1,
                            ComponentTypeRef::Module(_) => top.core_modules += 1,
                            _ => {}
                        }
                    }
                }
                Payload::ComponentAliasSection(reader) => {
                    for alias in reader {
                        match alias.unwrap() {
                            ComponentAlias::InstanceExport {
                                kind: Kind::Type, ..
                            }
                            | ComponentAlias::Outer {
                                kind: Outer::Type, ..
                            } => top.types += 1,
                            ComponentAlias::InstanceExport {
                                kind: Kind::Module, ..
                            }
                            | ComponentAlias::Outer {
                                kind: Outer::CoreModule,
                                ..
                            } => {
                                top.core_modules += 1;
                            }
                            _ => {}
                        }
                    }
                }
                Payload::ComponentExportSection(reader) => {
                    for export in reader {
                        match export.unwrap().kind {
                            Kind::Type => top.types += 1,
                            Kind::Module => top.core_modules += 1,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        top
    }
}

/// Loads the components of the job at `path` into `runtime` and builds its plan, as `host run`
/// does before its first step.
pub async fn plan_on(runtime: &host::runtime::Runtime, path: &Path) -> host::plan::Plan {
    use host::runtime::{self, ComponentFile};
    let job = host::job::LoadedJob::load(path).expect("job loads");
    let files: Vec<ComponentFile> = job
        .job
        .components
        .iter()
        .map(|(name, c)| ComponentFile::read(c.file(name).unwrap()).expect("component reads"))
        .collect();
    let loaded = runtime::load_all(runtime, &files)
        .await
        .expect("components load");
    let described = job
        .job
        .components
        .keys()
        .cloned()
        .zip(loaded.iter().map(|c| host::plan::Described {
            digest: c.digest,
            ops: c.ops.clone(),
        }))
        .collect();
    host::plan::build(&job, &described).expect("plan builds")
}

/// A loopback port nothing listens on (now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

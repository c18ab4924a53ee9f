//! Shoal's benchmark suite: every figure beside a baseline measured in the same process.
//!
//! - `per-step`: a trivial mapped op at fan-outs of `SIZES` (default 1k, 10k, 100k), the whole
//!   `host run` lifecycle (instantiate, call, CBOR in and out, drop, scheduling, events, and
//!   with the run store, SQLite) divided by its steps, against raw wasmtime: instantiate the
//!   same component from its `InstancePre` in a fresh `Store`, call `identity`, drop, in a loop.
//! - `value-size`: the same at 10k clones with byte-string values of 16 B to 64 KiB.
//! - `scaling`: a CPU-bound mapped op (about 1 ms a clone) at `--max-concurrent` 1 and 2.
//! - `first-result`: time from the start of a run to the first clone's success, by fan-out size
//!   (clones start while the producer still yields, so it should not grow).
//!
//! Run: `cargo bench --bench fanout` (after building guest-examples). `BENCH=per-step,scaling`
//! picks sections, `SIZES=1000,1000000` changes the fan-outs, `ROUNDS=5` the rounds. Each figure
//! is the median of the rounds. Whole-process figures (start-up, 1M peak RSS) are in
//! `bench/process.sh`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use host::app::{self, App, JobSource, Settings};
use host::events::{Event, EventKind, EventSink, NoEvents, SinkError};
use host::exec::Run;
use host::runtime::{EngineSize, Runtime};

/// The allocator `host` itself uses, so that figures match the binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn testkit() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../guest-examples/target/wasm32-wasip2/release/testkit.wasm");
    assert!(
        path.exists(),
        "build the guests first: cargo build --release --target wasm32-wasip2 --manifest-path guest-examples/Cargo.toml"
    );
    path
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn rounds() -> usize {
    std::env::var("ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Raw wasmtime: instantiate + call `identity` + drop, `calls` times on one thread.
async fn raw_per_call(calls: usize) -> Duration {
    let runtime = Runtime::new(EngineSize::for_run(1, None, &[]), None).expect("engine");
    let component = runtime.load(&testkit()).await.expect("testkit loads");
    let inputs = vec![("value".to_string(), vec![0x01])];
    let mut samples = Vec::new();
    for _ in 0..rounds() {
        let start = Instant::now();
        for _ in 0..calls {
            component
                .call_once(&runtime, "identity", inputs.clone())
                .await
                .expect("identity runs");
        }
        samples.push(start.elapsed() / calls as u32);
    }
    median(samples)
}

/// A job: `fan_out` (with `fan_out_config`) mapped by `mapped` (with `mapped_config`), collected
/// by `collect`.
struct Job {
    fan_out_config: String,
    mapped: &'static str,
    mapped_config: String,
    collect: &'static str,
}

impl Job {
    fn write(&self, dir: &Path) -> PathBuf {
        let job = dir.join(format!("job-{}.toml", fastrand::u64(..)));
        std::fs::write(
            &job,
            format!(
                "[components.testkit]\npath = {:?}\n\
                 [limits]\nmax_fanout = 10_000_000\nmemory = '2GiB'\n\
                 max_step_output_size = '1GiB'\n\
                 [ops.fan_out]\ncomponent = 'testkit'\nconfig = {{ {} }}\n\
                 [ops.{mapped}]\ncomponent = 'testkit'\nconfig = {{ {} }}\n\
                 inputs.value = {{ map = 'fan_out' }}\n\
                 [ops.{collect}]\ncomponent = 'testkit'\ninputs.values = {{ collect = '{mapped}' }}\n",
                testkit().display().to_string(),
                self.fan_out_config,
                self.mapped_config,
                mapped = self.mapped,
                collect = self.collect,
            ),
        )
        .expect("write job");
        job
    }

    fn trivial(fanout: usize) -> Self {
        Job {
            fan_out_config: format!("n = {fanout}"),
            mapped: "identity",
            mapped_config: String::new(),
            collect: "sum",
        }
    }
}

/// One run of `job`; with `stored`, recorded in a run store in `dir` as `host run` does.
/// Returns when the run started (after loading) and how long it took.
async fn run_once(
    job: &Path,
    max_concurrent: usize,
    stored: bool,
    dir: &Path,
    sink: &mut dyn EventSink,
) -> (Run, Instant, Duration) {
    // The store directory holds the compiled-component cache: only the first round compiles.
    let store = dir.join("store");
    let source = JobSource::file(job);
    let settings = Settings {
        max_concurrent: Some(max_concurrent),
        ..Settings::default()
    };
    let (run, start) = if stored {
        let app = App::open(&store).expect("store opens");
        let handle = app.submit(&source, &settings).await.expect("job loads");
        let start = Instant::now();
        (handle.execute(sink).await, start)
    } else {
        let prepared = app::prepare(&source, &settings, Some(&store))
            .await
            .expect("job loads");
        let start = Instant::now();
        (prepared.run(sink).await, start)
    };
    let elapsed = start.elapsed();
    assert!(
        run.succeeded(),
        "benchmark run failed:\n{}",
        host::report::summary(&run)
    );
    (run, start, elapsed)
}

/// Median time per step of `job`.
async fn per_step(job: &Path, max_concurrent: usize, stored: bool, dir: &Path) -> Duration {
    let mut samples = Vec::new();
    for _ in 0..rounds() {
        let (run, _, elapsed) = run_once(job, max_concurrent, stored, dir, &mut NoEvents).await;
        samples.push(elapsed / run.steps.len() as u32);
    }
    median(samples)
}

async fn per_step_section(dir: &Path, floor: Duration) {
    println!("\n## per-step: trivial mapped op, whole `host run` lifecycle / step");
    println!(
        "raw wasmtime (instantiate + call + drop, 1 thread): {:.2} µs/call",
        micros(floor)
    );
    println!(
        "{:>9} | {:>4} | {:>5} | {:>9} | {:>13} | {:>8}",
        "fan-out", "mc", "store", "µs/step", "µs/step/core", "× raw"
    );
    for size in env_list("SIZES", "1000,10000,100000") {
        let fanout: usize = size.parse().expect("SIZES are numbers");
        let job = Job::trivial(fanout).write(dir);
        for (max_concurrent, stored) in [(1, false), (2, false), (1, true), (2, true)] {
            let step = per_step(&job, max_concurrent, stored, dir).await;
            let per_core = micros(step) * max_concurrent as f64;
            println!(
                "{fanout:>9} | {max_concurrent:>4} | {:>5} | {:>9.2} | {per_core:>13.2} | {:>8.2}",
                if stored { "yes" } else { "no" },
                micros(step),
                per_core / micros(floor)
            );
        }
    }
}

async fn value_size_section(dir: &Path) {
    println!("\n## value-size: 10k clones, mc 2, run store; baseline: the same with 16 B values");
    // 10k x 16 KiB = 160 MiB flows through map and into the collect.
    println!("{:>9} | {:>9} | {:>8}", "value", "µs/step", "× 16 B");
    let mut baseline = None;
    for bytes in [16usize, 256, 4 << 10, 16 << 10] {
        let job = Job {
            fan_out_config: format!("n = 10000, bytes = {bytes}"),
            collect: "count",
            ..Job::trivial(0)
        }
        .write(dir);
        let step = per_step(&job, 2, true, dir).await;
        let base = *baseline.get_or_insert(step);
        println!(
            "{:>9} | {:>9.2} | {:>8.2}",
            bytesize::ByteSize::b(bytes as u64).to_string(),
            micros(step),
            step.as_secs_f64() / base.as_secs_f64()
        );
    }
}

async fn scaling_section(dir: &Path) {
    println!("\n## scaling: 1,000 CPU-bound clones (burn, ~1 ms each), no run store");
    let rounds_config = std::env::var("BURN_ROUNDS").unwrap_or_else(|_| "400000".into());
    let job = Job {
        fan_out_config: "n = 1000".into(),
        mapped: "burn",
        mapped_config: format!("rounds = {rounds_config}"),
        collect: "sum",
    }
    .write(dir);
    let mut walls = Vec::new();
    for max_concurrent in [1, 2] {
        let mut samples = Vec::new();
        for _ in 0..rounds() {
            samples.push(
                run_once(&job, max_concurrent, false, dir, &mut NoEvents)
                    .await
                    .2,
            );
        }
        let wall = median(samples);
        println!("--max-concurrent {max_concurrent}: {:.1} ms", millis(wall));
        walls.push(wall);
    }
    println!(
        "speed-up mc1 -> mc2: {:.2}x",
        walls[0].as_secs_f64() / walls[1].as_secs_f64()
    );
}

/// Records when the first step of op `op` succeeded.
struct FirstSuccess {
    op: &'static str,
    at: Arc<Mutex<Option<Instant>>>,
}

impl EventSink for FirstSuccess {
    fn event(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        if let (EventKind::StepSuccess { .. }, Some(key)) = (&event.kind, event.step_key.as_deref())
            && key.starts_with(self.op)
            && key[self.op.len()..].starts_with('[')
        {
            self.at.lock().unwrap().get_or_insert_with(Instant::now);
        }
        Ok(())
    }
}

async fn first_result_section(dir: &Path) {
    println!("\n## first-result: run start -> first clone succeeded, mc 2, run store");
    println!(
        "{:>9} | {:>12} | {:>10} | {:>11}",
        "fan-out", "first (ms)", "× at 1k", "whole (ms)"
    );
    let mut baseline = None;
    for fanout in [1_000usize, 10_000, 100_000] {
        let job = Job::trivial(fanout).write(dir);
        let mut firsts = Vec::new();
        let mut wholes = Vec::new();
        for _ in 0..rounds() {
            let at = Arc::new(Mutex::new(None));
            let mut sink = FirstSuccess {
                op: "identity",
                at: at.clone(),
            };
            let (_, started, whole) = run_once(&job, 2, true, dir, &mut sink).await;
            firsts.push(at.lock().unwrap().expect("a clone succeeded") - started);
            wholes.push(whole);
        }
        let first = median(firsts);
        let base = *baseline.get_or_insert(first);
        println!(
            "{fanout:>9} | {:>12.3} | {:>10.2} | {:>11.1}",
            millis(first),
            first.as_secs_f64() / base.as_secs_f64(),
            millis(median(wholes))
        );
    }
}

fn main() {
    let sections = env_list("BENCH", "per-step,value-size,scaling,first-result");
    let dir = tempfile::tempdir().expect("temp dir");
    let dir_path = dir.path().to_path_buf();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .expect("tokio");
    println!(
        "shoal benchmarks: {} cores, median of {} rounds",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        rounds()
    );
    // Spawned, as `host` does, so that the scheduler runs on the runtime's worker threads.
    let body = async move {
        for section in &sections {
            match section.as_str() {
                "per-step" => {
                    let floor = raw_per_call(20_000).await;
                    per_step_section(&dir_path, floor).await;
                }
                "value-size" => value_size_section(&dir_path).await,
                "scaling" => scaling_section(&dir_path).await,
                "first-result" => first_result_section(&dir_path).await,
                other => panic!("unknown section `{other}`"),
            }
        }
    };
    let handle = tokio.spawn(body);
    tokio.block_on(handle).expect("benchmarks ran");
}

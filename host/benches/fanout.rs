//! Per-step overhead of a trivial mapped op at a large fan-out, beside the raw wasmtime floor.
//!
//! Baseline: instantiate the testkit component from its `InstancePre` in a fresh `Store`, call
//! `identity` once, drop the store, in a loop on one thread. Shoal: `fan_out` yields N values,
//! `identity` is mapped over them (N clones, each in its own instance), `sum` collects them:
//! the whole run, with scheduling, output checks, CBOR lists and events, divided by its steps.
//!
//! With the run store, every event and output is also written to SQLite (what `host run` does).
//!
//! Run: `cargo bench --bench fanout` (after building guest-examples; `FANOUT=100000` changes N).
//! Each figure is the median of several rounds measured in the same process.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use host::cli;
use host::events::NoEvents;
use host::exec::Prior;
use host::runtime::Runtime;
use host::store::{RunRecord, Store};

const ROUNDS: usize = 5;

fn testkit() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../guest-examples/target/wasm32-wasip2/release/testkit.wasm");
    assert!(
        path.exists(),
        "build the guests first: cargo build --release --target wasm32-wasip2 --manifest-path guest-examples/Cargo.toml"
    );
    path
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn baseline(calls: usize) -> Duration {
    let runtime = Runtime::new(1, None, None).expect("engine");
    let component = runtime.load(&testkit()).await.expect("testkit loads");
    let inputs = vec![("value".to_string(), vec![0x01])];
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..calls {
            component
                .call_once(&runtime, "identity", inputs.clone())
                .await
                .expect("identity runs");
        }
        rounds.push(start.elapsed() / calls as u32);
    }
    median(rounds)
}

/// Per-step time of `host run` at `max_concurrent`, recording to a run store when `stored`.
async fn shoal(
    fanout: usize,
    max_concurrent: usize,
    stored: bool,
    dir: &tempfile::TempDir,
) -> Duration {
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            "[components.testkit]\npath = {:?}\n\
             [ops.fan_out]\ncomponent = 'testkit'\nconfig = {{ n = {fanout} }}\n\
             [ops.identity]\ncomponent = 'testkit'\ninputs.value = {{ map = 'fan_out' }}\n\
             [ops.sum]\ncomponent = 'testkit'\ninputs.values = {{ collect = 'identity' }}\n",
            testkit().display().to_string()
        ),
    )
    .expect("write job");
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let prepared = cli::prepare(&job, None, Some(max_concurrent), None)
            .await
            .expect("job loads");
        let start = Instant::now();
        let run = if stored {
            let store = Store::open(&dir.path().join("store")).expect("store opens");
            let id = format!("bench-{}", fastrand::u64(..));
            let record = RunRecord {
                id: id.clone(),
                job_name: "bench".into(),
                job_path: job.clone(),
                config_path: None,
                status: "RUNNING".into(),
                started: 0.0,
                finished: None,
                parent: None,
            };
            store.begin_run(&record).expect("run recorded");
            let mut sink = store.sink(&id).expect("sink");
            let run = prepared.run_as(id, Prior::default(), &mut sink).await;
            sink.finish().expect("store written");
            run
        } else {
            prepared.run(&mut NoEvents).await
        };
        let elapsed = start.elapsed();
        assert!(run.succeeded(), "benchmark run failed");
        rounds.push(elapsed / run.steps.len() as u32);
    }
    median(rounds)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let fanout: usize = std::env::var("FANOUT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .expect("tokio");
    tokio.block_on(async {
        let floor = baseline(fanout).await;
        println!("fan-out {fanout}, median of {ROUNDS} rounds");
        println!("  raw wasmtime (instantiate + call + drop, 1 thread): {:8.2} µs/call", micros(floor));
        for (max_concurrent, stored) in [(1, false), (2, false), (1, true), (2, true)] {
            let step = shoal(fanout, max_concurrent, stored, &dir).await;
            let per_core = micros(step) * max_concurrent as f64;
            let store = if stored { "with run store" } else { "no run store  " };
            println!(
                "  host run, --max-concurrent {max_concurrent}, {store}: {:8.2} µs/step  ({:.2} µs/step/core, {:.2}x raw)",
                micros(step),
                per_core,
                per_core / micros(floor)
            );
        }
    });
}

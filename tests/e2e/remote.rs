//! Steps run as a worker on another machine would run them: every step call, every message a
//! step sends, every reply and every result crosses as CBOR bytes, and the runs end as they do
//! in one process.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use host::exec::{self, StepCall, StepChannel, StepMessage, StepReply, StepRunner};
use host::runtime::{EngineSize, Runtime, WasmRunner};
use host::step_error::StepError;
use host::value::NamedValues;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::support::{TempJob, component, plan_on, root};

fn to_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).expect("serializes");
    bytes
}

fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> T {
    ciborium::from_reader(bytes).expect("deserializes")
}

/// Sends each step to a "worker" task over byte channels; the worker runs it with the real
/// [`WasmRunner`] on a remote [`StepChannel`].
struct OverTheWire {
    worker: Arc<WasmRunner>,
    /// How many times a step was told to pause: backpressure went through.
    paused: AtomicUsize,
}

impl StepRunner for OverTheWire {
    async fn run(&self, call: StepCall, channel: StepChannel) -> Result<NamedValues, StepError> {
        let (to_coordinator, mut from_worker) = mpsc::unbounded_channel::<Vec<u8>>();
        let (to_worker, from_coordinator) = mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(work(
            self.worker.clone(),
            to_bytes(&call),
            to_coordinator,
            from_coordinator,
        ));
        while let Some(bytes) = from_worker.recv().await {
            let reply = |reply: StepReply| {
                if reply == StepReply::Paused {
                    self.paused.fetch_add(1, SeqCst);
                }
                let _sent = to_worker.send(to_bytes(&reply));
            };
            if let Some(result) = channel.serve(from_bytes(&bytes), reply).await {
                return result;
            }
        }
        panic!("the worker stopped without a result")
    }
}

/// The worker's side: decodes the call, runs it, and sends what the step says, its result
/// last, as bytes.
async fn work(
    runner: Arc<WasmRunner>,
    call: Vec<u8>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    mut incoming: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let call: StepCall = from_bytes(&call);
    let (channel, end) = StepChannel::remote();
    let mut messages = end.messages;
    tokio::spawn(async move {
        while let Some(message) = messages.recv().await {
            let _sent = out.send(to_bytes::<StepMessage>(&message));
        }
    });
    let replies = end.replies;
    tokio::spawn(async move {
        while let Some(bytes) = incoming.recv().await {
            if replies.send(from_bytes(&bytes)).is_err() {
                break;
            }
        }
    });
    let result = runner.run(call, channel.clone()).await;
    channel.finish(result);
}

/// How a run ended: its final outputs and every step's status and attempts.
type Ending = (serde_json::Value, Vec<String>);

fn ending(run: &exec::Run) -> Ending {
    let mut statuses: Vec<String> = run
        .steps
        .iter()
        .map(|s| format!("{}: {:?} after {}", s.name, s.status, s.attempts))
        .collect();
    statuses.sort();
    (host::report::final_outputs(run), statuses)
}

/// Runs the job at `path` in one process, then over the wire, on one engine. Returns both
/// endings and how many times a step over the wire was told to pause.
async fn both_ways(path: &Path, max_concurrent: usize) -> (Ending, Ending, usize) {
    let size = EngineSize::for_run(max_concurrent, None, &[]);
    let runtime = Arc::new(Runtime::new(size, None).expect("engine"));
    let plan = Arc::new(plan_on(&runtime, path).await);
    let options = || exec::RunOptions {
        run_id: "remote".into(),
        max_concurrent,
        emit_window: exec::DEFAULT_EMIT_WINDOW,
        prior: exec::Prior::default(),
        cancel: Default::default(),
        share: None,
    };
    let mut sink = host::events::NoEvents;
    let local = Arc::new(WasmRunner::new(runtime.clone()));
    let here = exec::execute(plan.clone(), local, options(), &mut sink).await;
    let wire = Arc::new(OverTheWire {
        worker: Arc::new(WasmRunner::new(runtime)),
        paused: AtomicUsize::new(0),
    });
    let there = exec::execute(plan, wire.clone(), options(), &mut sink).await;
    (ending(&here), ending(&there), wire.paused.load(SeqCst))
}

/// Example job `name` of component `component` gives `expected` in-process, and the same over
/// the wire.
async fn example_over_the_wire(component_name: &str, name: &str, expected: serde_json::Value) {
    component(component_name);
    let path = root().join(format!("guest-examples/jobs/{name}.toml"));
    let (here, there, _) = both_ways(&path, 2).await;
    assert_eq!(here.0, expected);
    assert_eq!(there, here);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_graph_over_the_wire_totals_9900() {
    let expected = serde_json::json!({"merge_and_analyze": 9900});
    example_over_the_wire("dynamic_graph", "dynamic_graph", expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chained_maps_over_the_wire_sum_to_55() {
    example_over_the_wire("mapping", "chained", serde_json::json!({"process": 55})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_maps_over_the_wire_sum_to_220() {
    example_over_the_wire("mapping", "nested", serde_json::json!({"total": 220})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_producer_replays_over_the_wire() {
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 6, fail_first_attempt_after = 3 }\n\
         retry = { max_retries = 1 }\n\
         [ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out' }\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'identity' }\n",
    );
    let (here, there, _) = both_ways(&job.path(), 2).await;
    assert_eq!(here.0["sum"], 15);
    assert!(
        here.1.contains(&"fan_out: Succeeded after 2".to_string()),
        "{:?}",
        here.1
    );
    assert_eq!(there, here);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_divergent_retry_is_refused_over_the_wire() {
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\n\
         config = { n = 4, fail_first_attempt_after = 2, vary_by_attempt = true }\n\
         retry = { max_retries = 1 }\n\
         [ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out' }\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'identity' }\n",
    );
    let (here, there, _) = both_ways(&job.path(), 2).await;
    let fan_out = here.1.iter().find(|s| s.starts_with("fan_out:")).unwrap();
    assert!(fan_out.contains("NondeterministicRetry"), "{fan_out}");
    assert_eq!(there, here);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_past_its_emit_window_pauses_over_the_wire() {
    // At one slot, the producer's clones run only while it pauses: past 1,024 values it must.
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 3000 }\n\
         [ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out' }\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'identity' }\n",
    );
    let (here, there, paused) = both_ways(&job.path(), 1).await;
    assert_eq!(here.0["sum"], 2999 * 3000 / 2);
    assert_eq!(there, here);
    assert!(paused > 0, "the producer never paused");
}

//! Steps run as a worker on another machine would run them: every step call, every message a
//! step sends, every reply and every result crosses as CBOR bytes, and the runs end as they do
//! in one process.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use host::events::{Event, EventSink, SinkError};
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
    /// Tags given to every call, when not empty.
    tags: Vec<(String, String)>,
}

impl OverTheWire {
    fn new(worker: WasmRunner, tags: &[(&str, &str)]) -> Self {
        OverTheWire {
            worker: Arc::new(worker),
            paused: AtomicUsize::new(0),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

impl StepRunner for OverTheWire {
    async fn run(
        &self,
        mut call: StepCall,
        channel: StepChannel,
    ) -> Result<NamedValues, StepError> {
        if !self.tags.is_empty() {
            call.context.tags = self.tags.clone();
        }
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

/// Keeps every event as JSON, without its time.
#[derive(Default)]
struct Recorded(Vec<serde_json::Value>);

impl EventSink for Recorded {
    fn event(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        let mut json = serde_json::to_value(event).expect("events serialize");
        json.as_object_mut().expect("an object").remove("timestamp");
        self.0.push(json);
        Ok(())
    }
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
    let wire = Arc::new(OverTheWire::new(WasmRunner::new(runtime), &[]));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_events_metadata_and_tags_cross_the_wire() {
    let job = TempJob::new(
        "[ops.record_facts]\ncomponent = 'testkit'\nconfig.rows = 5\n\
         [ops.tagged]\ncomponent = 'testkit'\n",
    );
    let size = EngineSize::for_run(1, None, &[]);
    let runtime = Arc::new(Runtime::new(size, None).expect("engine"));
    let plan = Arc::new(plan_on(&runtime, &job.path()).await);
    let options = exec::RunOptions {
        run_id: "remote".into(),
        max_concurrent: 1,
        emit_window: exec::DEFAULT_EMIT_WINDOW,
        prior: exec::Prior::default(),
        cancel: Default::default(),
        share: None,
    };
    let tags = [("team", "data"), ("tier", "1")];
    let wire = Arc::new(OverTheWire::new(WasmRunner::new(runtime), &tags));
    let mut sink = Recorded::default();
    let run = exec::execute(plan, wire, options, &mut sink).await;
    let outputs = host::report::final_outputs(&run);
    assert_eq!(
        outputs["tagged"],
        serde_json::json!({"team": "data", "tier": "1"})
    );
    let facts: Vec<(String, serde_json::Value)> = sink
        .0
        .iter()
        .filter(|e| e["event"] != "STEP_OUTPUT" || e.get("metadata").is_some())
        .filter(|e| {
            !["RUN_START", "RUN_SUCCESS", "STEP_START", "STEP_SUCCESS"]
                .contains(&e["event"].as_str().unwrap_or_default())
        })
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["metadata"].clone(),
            )
        })
        .collect();
    let rows = serde_json::json!({"rows": {"int": 5}});
    let none = serde_json::Value::Null;
    assert_eq!(
        facts,
        [
            ("ASSET_OBSERVATION".to_string(), none.clone()),
            (
                "ASSET_MATERIALIZATION".to_string(),
                serde_json::json!({"rows": {"int": 5}, "path": {"path": "/data/orders.parquet"}})
            ),
            ("STEP_EXPECTATION_RESULT".to_string(), none),
            ("STEP_EXPECTATION_RESULT".to_string(), rows),
            (
                "STEP_OUTPUT".to_string(),
                serde_json::json!({"part": {"int": 0}})
            ),
            (
                "STEP_OUTPUT".to_string(),
                serde_json::json!({"part": {"int": 1}})
            ),
            (
                "STEP_OUTPUT".to_string(),
                serde_json::json!({"rows": {"int": 5}, "schema": {"json": {"id": "int"}}})
            ),
        ],
        "{:#?}",
        sink.0
    );
}

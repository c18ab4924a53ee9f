//! Scheduler tests with ops written in Rust, so no component is needed.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Notify;

use super::*;
use crate::cancel::Cancel;
use crate::events::{Event, EventSink, NoEvents, SinkError};
use crate::outputs::DynamicValue;
use crate::plan::testing::plan;
use crate::plan::{InputSource, Plan};
use crate::step_key::StepKey;
use crate::value::{self, KeyedValues};

/// Runs the catalog ops of `plan::testing` natively.
struct FakeRunner {
    /// Notified when any `echo` step starts, so a producer can wait for its first clone.
    echo_started: Arc<Notify>,
    /// Step keys of every attempt run, in order.
    calls: std::sync::Mutex<Vec<String>>,
    /// Values yielded and `echo` steps started so far, and the largest lead of the first over
    /// the second: what backpressure bounds.
    lead: Arc<Lead>,
}

#[derive(Default)]
struct Lead {
    yielded: AtomicUsize,
    echoes: AtomicUsize,
    max: AtomicUsize,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct FakeConfig {
    /// `emit`: how many values to yield.
    n: i64,
    /// `emit`: after the first value, wait until a clone has started.
    wait_for_clone: bool,
    /// `echo`: fail on these values.
    fail_on: Vec<i64>,
    /// `echo`: sleep `10 - x` ms so that later clones finish first.
    reverse_finish: bool,
}

fn cbor(value: i64) -> Vec<u8> {
    value::encode(&value.into())
}

fn int(call: &StepCall, name: &str) -> i64 {
    let (_, bytes) = call.inputs.iter().find(|(n, _)| n == name).unwrap();
    ciborium::from_reader(bytes.as_slice()).unwrap()
}

type Outcome = Result<NamedValues, StepError>;

impl FakeRunner {
    fn attempt(
        &self,
        call: StepCall,
        channel: StepChannel,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send>> {
        self.calls
            .lock()
            .unwrap()
            .push(call.context.step_key.clone());
        let config: FakeConfig = ciborium::from_reader(call.context.config.as_slice()).unwrap();
        let op = call.op.clone();
        let echo_started = self.echo_started.clone();
        let lead = self.lead.clone();
        let emit_lead = lead.clone();
        let emit = move |output: &str, key: String, value: i64| {
            let channel = channel.clone();
            let lead = emit_lead.clone();
            let value = DynamicValue {
                output: output.into(),
                key,
                value: cbor(value),
                metadata: Default::default(),
            };
            async move {
                channel.emit(value).await.expect("fake ops never replay");
                let yielded = lead.yielded.fetch_add(1, SeqCst) + 1;
                let ahead = yielded.saturating_sub(lead.echoes.load(SeqCst));
                lead.max.fetch_max(ahead, SeqCst);
            }
        };
        Box::pin(async move {
            let result = |v: i64| Ok(vec![("result".to_string(), cbor(v))]);
            match op.as_str() {
                "emit" => {
                    for i in 0..config.n {
                        emit("result", format!("k{i}"), i).await;
                        if i == 0 && config.wait_for_clone {
                            echo_started.notified().await;
                        }
                    }
                    Ok(vec![])
                }
                "emit_in" => {
                    let x = int(&call, "x");
                    for j in 0..x {
                        emit("result", format!("j{j}"), x * 10 + j).await;
                    }
                    Ok(vec![])
                }
                "two" => {
                    for i in 0..2 {
                        emit("values", format!("num_{i}"), i).await;
                        emit("negatives", format!("neg_{i}"), -i).await;
                    }
                    Ok(vec![])
                }
                "echo" => {
                    lead.echoes.fetch_add(1, SeqCst);
                    echo_started.notify_one();
                    let x = int(&call, "x");
                    if config.reverse_finish {
                        tokio::time::sleep(Duration::from_millis(10 - x as u64)).await;
                    }
                    if config.fail_on.contains(&x) {
                        return Err(StepError::OpFailed(format!("{x} is unlucky")));
                    }
                    result(x)
                }
                "add" => result(int(&call, "a") + int(&call, "b")),
                "one" => result(1),
                "sum" | "gather" => {
                    let (_, bytes) = &call.inputs[0];
                    if op == "gather" {
                        return Ok(vec![("result".to_string(), bytes.clone())]);
                    }
                    let xs: Vec<i64> = ciborium::from_reader(bytes.as_slice()).unwrap();
                    result(xs.iter().sum())
                }
                other => panic!("no fake op {other}"),
            }
        })
    }
}

impl StepRunner for FakeRunner {
    fn run(&self, call: StepCall, channel: StepChannel) -> impl Future<Output = Outcome> + Send {
        self.attempt(call, channel)
    }
}

fn fake_runner() -> Arc<FakeRunner> {
    Arc::new(FakeRunner {
        echo_started: Arc::new(Notify::new()),
        calls: Default::default(),
        lead: Arc::default(),
    })
}

async fn run_job(ops: &str, max_concurrent: usize) -> Run {
    run_job_from(ops, max_concurrent, Prior::default()).await.0
}

/// Runs `ops` starting from `prior`; also returns the step keys that ran.
async fn run_job_from(ops: &str, max_concurrent: usize, prior: Prior) -> (Run, Vec<String>) {
    let (run, runner) = run_with(ops, max_concurrent, prior, DEFAULT_EMIT_WINDOW).await;
    let calls = runner.calls.lock().unwrap().clone();
    (run, calls)
}

async fn run_with(
    ops: &str,
    max_concurrent: usize,
    prior: Prior,
    emit_window: usize,
) -> (Run, Arc<FakeRunner>) {
    let plan = plan(ops).expect("test plan is valid");
    run_plan(plan, max_concurrent, prior, emit_window).await
}

async fn run_plan(
    plan: Plan,
    max_concurrent: usize,
    prior: Prior,
    emit_window: usize,
) -> (Run, Arc<FakeRunner>) {
    let plan = Arc::new(plan);
    let runner = fake_runner();
    let options = RunOptions {
        prior,
        run_id: "test".into(),
        max_concurrent,
        emit_window,
        cancel: Cancel::default(),
        share: None,
    };
    let mut sink = NoEvents;
    let run = execute(plan, runner.clone(), options, &mut sink);
    let run = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("run finishes");
    (run, runner)
}

fn output(run: &Run, op: &str) -> serde_json::Value {
    run.output_for_node(run.plan.node(op).unwrap(), "result")
}

fn status(run: &Run, step: &str) -> Status {
    run.steps
        .iter()
        .find(|s| s.name == step)
        .map(|s| s.status.clone())
        .unwrap()
}

const MAP_COLLECT: &str = "[ops.emit]\ncomponent = 'c'\nconfig = { n = 10 }\n\
    [ops.echo]\ncomponent = 'c'\ninputs.x = { map = 'emit' }\n\
    [ops.sum]\ncomponent = 'c'\ninputs.xs = { collect = 'echo' }\n";

#[tokio::test]
async fn map_then_collect_sums_every_clone() {
    let run = run_job(MAP_COLLECT, 4).await;
    assert!(run.succeeded());
    assert_eq!(output(&run, "sum"), 45);
    assert_eq!(run.steps.len(), 12);
    assert_eq!(output(&run, "echo")["k7"], 7);
}

#[tokio::test]
async fn a_run_that_ends_with_planned_steps_never_run_fails_naming_them() {
    // A plan the checks refuse (an op mapped over and collecting the same output) stands for
    // any scheduler bug that leaves steps waiting forever: the run must not succeed.
    let mut plan = plan(
        "[ops.one]\ncomponent = 'c'\n[ops.emit]\ncomponent = 'c'\nconfig = { n = 2 }\n\
         [ops.add]\ncomponent = 'c'\ninputs.a = { map = 'emit' }\ninputs.b = { from = 'one' }\n",
    )
    .unwrap();
    let (add, emit) = (plan.node("add").unwrap(), plan.node("emit").unwrap());
    plan.nodes[add].inputs[1].source = InputSource::Collect(crate::plan::Source {
        node: emit,
        output: "result".into(),
    });
    let (run, _) = run_plan(plan, 2, Prior::default(), DEFAULT_EMIT_WINDOW).await;
    assert_eq!(run.unresolved, ["add[k0]", "add[k1]"]);
    assert!(!run.succeeded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_start_while_the_producer_still_runs() {
    // The producer blocks after its first value until a clone has started: a scheduler that
    // waited for the producer to finish would time out here.
    let ops = MAP_COLLECT.replace("n = 10", "n = 3, wait_for_clone = true");
    let run = run_job(&ops, 2).await;
    assert!(run.succeeded());
    assert_eq!(output(&run, "sum"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_keeps_emission_order_not_completion_order() {
    // Clone k4 finishes first and k0 last; the list still follows the emission order.
    let ops = "[ops.emit]\ncomponent = 'c'\nconfig = { n = 5 }\n\
        [ops.echo]\ncomponent = 'c'\nconfig = { reverse_finish = true }\ninputs.x = { map = 'emit' }\n\
        [ops.gather]\ncomponent = 'c'\ninputs.xs = { collect = 'echo' }\n";
    let run = run_job(ops, 5).await;
    assert_eq!(output(&run, "gather"), serde_json::json!([0, 1, 2, 3, 4]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_producer_is_paused_while_its_clones_catch_up() {
    // 2,000 values through a window of 8: the producer may never be more than the window in
    // flight plus the window queued (plus the clones running) ahead of the clones started,
    // also when it holds the only slot (it gives it up while paused).
    let ops = MAP_COLLECT.replace("n = 10", "n = 2000");
    for max_concurrent in [1, 2, 4] {
        let (run, runner) = run_with(&ops, max_concurrent, Prior::default(), 8).await;
        assert!(run.succeeded());
        assert_eq!(output(&run, "sum"), 1999 * 1000);
        let max = runner.lead.max.load(SeqCst);
        assert!(
            max <= 2 * 8 + 2 * max_concurrent,
            "max_concurrent {max_concurrent}: yielded {max} values ahead"
        );
    }
}

#[tokio::test]
async fn without_backpressure_the_producer_runs_ahead() {
    // The bound above is not vacuous: with a window larger than the fan-out, the producer,
    // alone in its slot, yields everything before a clone starts.
    let ops = MAP_COLLECT.replace("n = 10", "n = 2000");
    let (run, runner) = run_with(&ops, 1, Prior::default(), 1 << 20).await;
    assert!(run.succeeded());
    assert_eq!(runner.lead.max.load(SeqCst), 2000);
}

#[tokio::test]
async fn an_empty_fan_out_gives_collect_an_empty_list() {
    let run = run_job(&MAP_COLLECT.replace("n = 10", "n = 0"), 2).await;
    assert!(run.succeeded());
    assert_eq!(output(&run, "sum"), 0);
    assert_eq!(run.steps.len(), 2);
}

#[tokio::test]
async fn a_failed_clone_skips_its_downstream_and_the_collect_but_not_its_siblings() {
    let ops = "[ops.emit]\ncomponent = 'c'\nconfig = { n = 5 }\n\
        [ops.echo]\ncomponent = 'c'\nconfig = { fail_on = [2] }\ninputs.x = { map = 'emit' }\n\
        [ops.echo_2]\ncomponent = 'c'\nop = 'echo'\ninputs.x = { from = 'echo' }\n\
        [ops.sum]\ncomponent = 'c'\ninputs.xs = { collect = 'echo_2' }\n";
    let run = run_job(ops, 2).await;
    assert!(!run.succeeded());
    assert_eq!(
        status(&run, "echo[k2]"),
        Status::Failed(Box::new(StepError::OpFailed("2 is unlucky".into())))
    );
    assert_eq!(
        status(&run, "echo_2[k2]"),
        Status::Skipped("upstream step `echo[k2]` failed".into())
    );
    for k in [0, 1, 3, 4] {
        assert_eq!(status(&run, &format!("echo_2[k{k}]")), Status::Succeeded);
    }
    assert_eq!(
        status(&run, "sum"),
        Status::Skipped("upstream step `echo_2[k2]` was skipped".into())
    );
}

#[tokio::test]
async fn non_dynamic_inputs_are_broadcast_to_every_clone() {
    let ops = "[ops.one]\ncomponent = 'c'\n[ops.emit]\ncomponent = 'c'\nconfig = { n = 10 }\n\
        [ops.add]\ncomponent = 'c'\ninputs.a = { map = 'emit' }\ninputs.b = { from = 'one' }\n\
        [ops.sum]\ncomponent = 'c'\ninputs.xs = { collect = 'add' }\n";
    for max_concurrent in [1, 3] {
        let run = run_job(ops, max_concurrent).await;
        assert_eq!(output(&run, "sum"), 55, "max_concurrent {max_concurrent}");
    }
}

#[tokio::test]
async fn two_dynamic_outputs_of_one_op_are_mapped_and_collected_separately() {
    let ops = "[ops.two]\ncomponent = 'c'\n\
        [ops.sum]\ncomponent = 'c'\ninputs.xs = { collect = 'two', output = 'values' }\n\
        [ops.echo]\ncomponent = 'c'\ninputs.x = { map = 'two', output = 'negatives' }\n\
        [ops.sum_2]\ncomponent = 'c'\nop = 'sum'\ninputs.xs = { collect = 'echo' }\n";
    let run = run_job(ops, 2).await;
    assert_eq!(output(&run, "sum"), 1);
    assert_eq!(output(&run, "sum_2"), -1);
    assert_eq!(status(&run, "echo[neg_1]"), Status::Succeeded);
}

#[tokio::test]
async fn nested_maps_clone_per_key_path_and_collect_per_outer_key() {
    let ops = "[ops.emit]\ncomponent = 'c'\nconfig = { n = 3 }\n\
        [ops.emit_in]\ncomponent = 'c'\ninputs.x = { map = 'emit' }\n\
        [ops.echo]\ncomponent = 'c'\ninputs.x = { map = 'emit_in' }\n\
        [ops.sum]\ncomponent = 'c'\ninputs.xs = { collect = 'echo' }\n\
        [ops.sum_2]\ncomponent = 'c'\nop = 'sum'\ninputs.xs = { collect = 'sum' }\n";
    let run = run_job(ops, 2).await;
    assert!(run.succeeded());
    // emit_in[k1] yields 10; emit_in[k2] yields 20, 21; emit_in[k0] yields nothing.
    assert_eq!(status(&run, "echo[k2][j1]"), Status::Succeeded);
    assert_eq!(
        output(&run, "sum"),
        serde_json::json!({"k0": 0, "k1": 10, "k2": 41})
    );
    assert_eq!(output(&run, "sum_2"), 51);
}

fn key(run: &Run, op: &str, keys: &[&str]) -> StepKey {
    StepKey::new(
        run.plan.node(op).unwrap(),
        keys.iter().map(|k| k.to_string()).collect(),
    )
}

/// What an interrupted run had committed: `emit` yielded `k0..k{yielded}` (and finished if
/// `emit_done`), and clones `echo[k0..k{cloned}]` succeeded.
fn interrupted(full: &Run, yielded: usize, emit_done: bool, cloned: usize) -> Prior {
    let emit = key(full, "emit", &[]);
    let values: KeyedValues = full
        .emitted(&emit, "result")
        .unwrap()
        .iter()
        .take(yielded)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut prior = Prior {
        emitted: vec![(emit.clone(), "result".into(), values)],
        ..Prior::default()
    };
    if emit_done {
        prior.succeeded.push((emit, vec![]));
    }
    for k in 0..cloned {
        let clone = key(full, "echo", &[&format!("k{k}")]);
        let outputs = full.step(&clone).unwrap().outputs.unpack();
        prior.succeeded.push((clone, outputs));
    }
    prior
}

#[tokio::test]
async fn resuming_runs_only_what_was_not_committed() {
    let full = run_job(MAP_COLLECT, 2).await;
    let (run, calls) = run_job_from(MAP_COLLECT, 2, interrupted(&full, 10, true, 5)).await;
    assert!(run.succeeded());
    assert_eq!(output(&run, "sum"), 45);
    let mut ran = calls.clone();
    ran.sort();
    assert_eq!(
        ran,
        [
            "echo[k5]", "echo[k6]", "echo[k7]", "echo[k8]", "echo[k9]", "sum"
        ]
    );
}

#[tokio::test]
async fn resuming_an_interrupted_producer_replays_it_without_rerunning_its_clones() {
    let full = run_job(MAP_COLLECT, 2).await;
    let (run, calls) = run_job_from(MAP_COLLECT, 2, interrupted(&full, 3, false, 1)).await;
    assert!(
        run.succeeded(),
        "{:?}",
        run.steps
            .iter()
            .map(|s| (&s.name, &s.status))
            .collect::<Vec<_>>()
    );
    assert_eq!(output(&run, "sum"), 45);
    assert!(!calls.contains(&"echo[k0]".to_string()));
    for k in 1..10 {
        let step = format!("echo[k{k}]");
        assert_eq!(calls.iter().filter(|c| **c == step).count(), 1, "{step}");
    }
    assert_eq!(calls.iter().filter(|c| *c == "emit").count(), 1);
}

/// The names of a run's events, in order.
#[derive(Default)]
struct EventNames(Vec<&'static str>);

impl EventSink for EventNames {
    fn event(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        self.0.push(event.kind.name());
        Ok(())
    }
}

/// Runs `ops` at `max_concurrent`, asking it to stop once `stop` completes (given the runner).
async fn run_stopped<F: Future<Output = ()> + Send + 'static>(
    ops: &str,
    max_concurrent: usize,
    grace: Duration,
    stop: impl FnOnce(&FakeRunner) -> F,
) -> (Run, Vec<String>, Vec<&'static str>) {
    let plan = Arc::new(plan(ops).expect("test plan is valid"));
    let runner = fake_runner();
    let cancel = Cancel::with_grace(grace);
    let stopped = stop(&runner);
    let requester = cancel.clone();
    tokio::spawn(async move {
        stopped.await;
        requester.request();
    });
    let options = RunOptions {
        prior: Prior::default(),
        run_id: "test".into(),
        max_concurrent,
        emit_window: DEFAULT_EMIT_WINDOW,
        cancel,
        share: None,
    };
    let mut events = EventNames::default();
    let run = execute(plan, runner.clone(), options, &mut events);
    let run = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the run stops");
    let calls = runner.calls.lock().unwrap().clone();
    (run, calls, events.0)
}

#[tokio::test]
async fn a_stopped_run_starts_no_more_steps_and_lets_running_ones_finish() {
    let ops = MAP_COLLECT.replace(
        "[ops.echo]",
        "[ops.echo]\nconfig = { reverse_finish = true }",
    );
    let (run, calls, events) = run_stopped(&ops, 1, Duration::from_secs(5), |runner| {
        let started = runner.echo_started.clone();
        async move { started.notified().await }
    })
    .await;
    assert_eq!(calls, ["emit", "echo[k0]"]);
    assert!(run.canceled());
    assert_eq!(status(&run, "echo[k0]"), Status::Succeeded);
    assert_eq!(status(&run, "echo[k1]"), Status::Queued);
    assert_eq!(events.last(), Some(&"RUN_CANCELED"));
    assert!(!events.contains(&"STEP_FAILURE"), "{events:?}");
}

#[tokio::test]
async fn a_step_still_running_after_the_grace_period_is_aborted_not_failed() {
    // At one step at a time, `emit` waits forever for a clone that cannot start.
    let ops = MAP_COLLECT.replace("n = 10", "n = 3, wait_for_clone = true");
    let (run, calls, events) = run_stopped(&ops, 1, Duration::from_millis(50), |_| {
        tokio::time::sleep(Duration::from_millis(20))
    })
    .await;
    assert_eq!(calls, ["emit"]);
    assert!(run.canceled());
    assert_eq!(status(&run, "emit"), Status::Running);
    assert_eq!(
        events,
        ["RUN_START", "STEP_START", "STEP_OUTPUT", "RUN_CANCELED"]
    );
}

/// Takes `left` events, then fails on every one (a run store whose writer stopped).
struct FailingAfter {
    left: usize,
    names: Vec<&'static str>,
}

impl EventSink for FailingAfter {
    fn event(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        self.names.push(event.kind.name());
        if self.left == 0 {
            return Err(SinkError::new(std::io::Error::other("disk full")));
        }
        self.left -= 1;
        Ok(())
    }
}

#[tokio::test]
async fn a_run_whose_sink_fails_stops_early_and_does_not_succeed() {
    let plan = Arc::new(plan(MAP_COLLECT).expect("test plan is valid"));
    let runner = fake_runner();
    let options = RunOptions {
        prior: Prior::default(),
        run_id: "test".into(),
        max_concurrent: 1,
        emit_window: DEFAULT_EMIT_WINDOW,
        cancel: Cancel::default(),
        share: None,
    };
    // RUN_START, STEP_START and two of emit's ten values.
    let mut sink = FailingAfter {
        left: 4,
        names: Vec::new(),
    };
    let run = execute(plan, runner.clone(), options, &mut sink);
    let run = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the run stops");
    assert!(!run.succeeded());
    assert!(!run.canceled(), "a failed sink is a failure, not a cancel");
    assert_eq!(run.sink_error.as_ref().unwrap().to_string(), "disk full");
    let calls = runner.calls.lock().unwrap().clone();
    assert!(!calls.contains(&"sum".to_string()), "{calls:?}");
    assert!(calls.len() < 11, "no new step starts: {calls:?}");
    assert_eq!(sink.names.last(), Some(&"RUN_FAILURE"), "{:?}", sink.names);
    assert!(run.unresolved.is_empty(), "{:?}", run.unresolved);
}

/// Runs `ops` with an emit window of 8 under `share`.
async fn run_shared(ops: &str, max_concurrent: usize, share: TenantShare) -> Run {
    let plan = Arc::new(plan(ops).expect("test plan is valid"));
    let options = RunOptions {
        prior: Prior::default(),
        run_id: "test".into(),
        max_concurrent,
        emit_window: 8,
        cancel: Cancel::default(),
        share: Some(share),
    };
    let mut sink = NoEvents;
    let run = execute(plan, fake_runner(), options, &mut sink);
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the run finishes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_paused_for_credits_lends_its_share_slot_to_its_clones() {
    // 200 values through a window of 8 at a tenant cap of one slot: a producer that kept its
    // slot while paused would wait forever for clones that wait for its slot.
    let ops = MAP_COLLECT.replace("n = 10", "n = 200");
    for max_concurrent in [1, 4] {
        let share = Share::new(1);
        let run = run_shared(&ops, max_concurrent, share.tenant("t", 1)).await;
        assert!(run.succeeded(), "max_concurrent {max_concurrent}");
        assert_eq!(output(&run, "sum"), 199 * 100);
        let stats = share.stats();
        assert_eq!((stats.free, stats.tenants[0].running), (1, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_two_tenants_share_one_slot() {
    let share = Share::new(1);
    let ops = MAP_COLLECT.replace("n = 10", "n = 100");
    let (a, b) = tokio::join!(
        run_shared(&ops, 4, share.tenant("a", 1)),
        run_shared(MAP_COLLECT, 4, share.tenant("b", 1)),
    );
    assert_eq!(output(&a, "sum"), 99 * 50);
    assert_eq!(output(&b, "sum"), 45);
    assert_eq!(share.stats().free, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_waiting_for_a_slot_starts_when_it_gets_one() {
    let share = Share::new(1);
    // Another tenant holds the only slot for 300 ms.
    let held = share.tenant("hog", 1).acquire().await;
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(held);
    });
    let run = run_shared(MAP_COLLECT, 2, share.tenant("b", 1)).await;
    release.await.unwrap();
    assert!(run.succeeded());
    assert!(
        run.duration >= Duration::from_millis(300),
        "{:?}",
        run.duration
    );
    for step in &run.steps {
        let took = step.duration.expect("every step ran");
        assert!(took < Duration::from_millis(200), "{}: {took:?}", step.name);
    }
}

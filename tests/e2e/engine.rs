//! One engine per process: runs share it and the components it compiled.

use std::sync::Arc;

use host::exec::{self, Prior, RunOptions};
use host::runtime::{EngineSize, Runtime, WasmRunner};

use crate::support::{TempJob, component, plan_on};

fn fan_out_and_sum(n: u32) -> TempJob {
    TempJob::new(&format!(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = {{ n = {n} }}\n\
         [ops.identity]\ncomponent = 'testkit'\ninputs.value = {{ map = 'fan_out' }}\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = {{ collect = 'identity' }}\n"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_share_one_engine_and_its_compiled_components() {
    let size = EngineSize::for_run(2, None, &[]);
    let runtime = Arc::new(Runtime::new(size, None).expect("engine"));
    let testkit = runtime.load(&component("testkit")).await.expect("loads");
    let again = runtime.load(&component("testkit")).await.expect("loads");
    assert!(Arc::ptr_eq(&testkit, &again), "loaded twice");

    let (small, large) = (fan_out_and_sum(10), fan_out_and_sum(20));
    let small = Arc::new(plan_on(&runtime, &small.path()).await);
    let large = Arc::new(plan_on(&runtime, &large.path()).await);
    assert_eq!(small.components[0].digest, testkit.digest);
    let runner = Arc::new(WasmRunner::new(runtime));
    let options = |run_id: &str| RunOptions {
        run_id: run_id.into(),
        max_concurrent: 2,
        emit_window: exec::DEFAULT_EMIT_WINDOW,
        prior: Prior::default(),
        cancel: Default::default(),
        share: None,
    };
    let (mut one, mut other) = (host::events::NoEvents, host::events::NoEvents);
    let (small_run, large_run) = tokio::join!(
        exec::execute(small.clone(), runner.clone(), options("small"), &mut one),
        exec::execute(large.clone(), runner, options("large"), &mut other),
    );
    let sum = |run: &exec::Run| run.output_for_node(run.plan.node("sum").unwrap(), "result");
    assert_eq!(sum(&small_run), 45);
    assert_eq!(sum(&large_run), 190);
}

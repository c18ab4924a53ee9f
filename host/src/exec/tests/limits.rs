//! Concurrency pools in the scheduler: tag concurrency limits and an op's `max_concurrent`
//! hold, and steps they hold back do not hold back others.

use super::*;

/// `n` values from `emit`, each mapped to `echo` and to `echo_2` (also the `echo` op), whose
/// tables get the lines `echo` and `echo_2`; `extra` adds to the job (tags, limits).
fn two_mapped(n: usize, echo: &str, echo_2: &str, extra: &str) -> String {
    format!(
        "[ops.emit]\ncomponent = 'c'\nconfig = {{ n = {n} }}\n\
         [ops.echo]\ncomponent = 'c'\ninputs.x = {{ map = 'emit' }}\n{echo}\n\
         [ops.echo_2]\ncomponent = 'c'\nop = 'echo'\ninputs.x = {{ map = 'emit' }}\n{echo_2}\n\
         {extra}"
    )
}

const SLEEP_5: &str = "config = { sleep_ms = 5 }";

/// Runs `ops` at `max_concurrent`, which must succeed; returns the runner, which saw the
/// overlap.
async fn run_ok(ops: &str, max_concurrent: usize) -> Arc<FakeRunner> {
    let (run, runner) = run_with(ops, max_concurrent, Prior::default(), DEFAULT_EMIT_WINDOW).await;
    assert!(run.succeeded(), "{:?}", run.unresolved);
    runner
}

/// Where `step` first ran in `calls`.
fn at(calls: &[String], step: &str) -> usize {
    calls.iter().position(|c| c == step).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_limit_holds_over_every_op_with_the_tag() {
    let ops = two_mapped(
        8,
        &format!("{SLEEP_5}\ntags = {{ db = 'pg' }}"),
        &format!("{SLEEP_5}\ntags = {{ db = 'mysql' }}"),
        "[[execution.tag_concurrency_limits]]\nkey = 'db'\nlimit = 2\n",
    );
    let runner = run_ok(&ops, 8).await;
    assert_eq!(runner.overlap.peak("db"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_on_a_value_leaves_other_values_alone() {
    let ops = two_mapped(
        8,
        &format!("{SLEEP_5}\ntags = {{ db = 'pg' }}"),
        &format!("{SLEEP_5}\ntags = {{ db = 'mysql' }}"),
        "[[execution.tag_concurrency_limits]]\nkey = 'db'\nvalue = 'pg'\nlimit = 1\n",
    );
    let runner = run_ok(&ops, 8).await;
    assert_eq!(runner.overlap.peak("db=pg"), 1);
    assert!(runner.overlap.peak("db=mysql") > 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_per_unique_value_counts_each_value_apart() {
    let ops = two_mapped(
        8,
        &format!("{SLEEP_5}\ntags = {{ db = 'pg' }}"),
        &format!("{SLEEP_5}\ntags = {{ db = 'mysql' }}"),
        "[[execution.tag_concurrency_limits]]\nkey = 'db'\nlimit = 1\nper_unique_value = true\n",
    );
    let runner = run_ok(&ops, 8).await;
    assert_eq!(runner.overlap.peak("db=pg"), 1);
    assert_eq!(runner.overlap.peak("db=mysql"), 1);
    assert_eq!(runner.overlap.peak("db"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_op_max_concurrent_holds_its_clones_only() {
    let ops = two_mapped(12, &format!("{SLEEP_5}\nmax_concurrent = 3"), SLEEP_5, "");
    let runner = run_ok(&ops, 8).await;
    assert_eq!(runner.overlap.peak("op:echo"), 3);
    assert!(runner.overlap.peak("op:echo_2") > 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_tags_under_op_tags_reach_every_step_and_its_limits() {
    let ops = two_mapped(
        6,
        SLEEP_5,
        &format!("{SLEEP_5}\ntags = {{ db = 'mysql' }}"),
        "[job]\ntags = { db = 'pg' }\n\
         [[execution.tag_concurrency_limits]]\nkey = 'db'\nvalue = 'pg'\nlimit = 1\n",
    );
    let runner = run_ok(&ops, 8).await;
    // `emit` has the job's tag too.
    assert_eq!(runner.overlap.peak("db=pg"), 1);
    assert_eq!(runner.overlap.peak("op:echo"), 1);
    assert!(runner.overlap.peak("db=mysql") > 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_step_does_not_hold_back_the_steps_behind_it() {
    // Ready in turn: echo[k0], echo_2[k0], echo[k1], echo_2[k1], ... `echo` runs one at a time
    // for 30 ms each; `echo_2` must not wait behind it.
    let ops = two_mapped(4, "config = { sleep_ms = 30 }\nmax_concurrent = 1", "", "");
    let runner = run_ok(&ops, 4).await;
    let calls = runner.calls.lock().unwrap().clone();
    for k in 0..4 {
        assert!(
            at(&calls, &format!("echo_2[k{k}]")) < at(&calls, "echo[k1]"),
            "{calls:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_waiting_for_a_retry_holds_no_place() {
    // echo[k0] fails every attempt, 100 ms apart; its siblings run meanwhile in its one place.
    let ops = two_mapped(
        4,
        "config = { fail_on = [0] }\nmax_concurrent = 1\nretry = { max_retries = 2, delay = '100ms' }",
        "",
        "",
    );
    let (run, runner) = run_with(&ops, 4, Prior::default(), DEFAULT_EMIT_WINDOW).await;
    assert!(matches!(status(&run, "echo[k0]"), Status::Failed(_)));
    let calls = runner.calls.lock().unwrap().clone();
    let retried = calls.iter().rposition(|c| c == "echo[k0]").unwrap();
    for k in 1..4 {
        assert_eq!(status(&run, &format!("echo[k{k}]")), Status::Succeeded);
        assert!(at(&calls, &format!("echo[k{k}]")) < retried, "{calls:?}");
    }
    assert_eq!(calls.iter().filter(|c| *c == "echo[k0]").count(), 3);
    assert_eq!(runner.overlap.peak("op:echo"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_paused_by_backpressure_frees_its_place_for_its_clones() {
    // Producer and clones share a pool of one place: a paused producer that kept it would
    // wait forever for clones that cannot start.
    let ops = "[ops.emit]\ncomponent = 'c'\nconfig = { n = 20 }\ntags = { db = 'pg' }\n\
               [ops.echo]\ncomponent = 'c'\ninputs.x = { map = 'emit' }\ntags = { db = 'pg' }\n\
               [ops.sum]\ncomponent = 'c'\ninputs.xs = { collect = 'echo' }\n\
               [[execution.tag_concurrency_limits]]\nkey = 'db'\nlimit = 1\n";
    let (run, runner) = run_with(ops, 4, Prior::default(), 2).await;
    assert!(run.succeeded(), "{:?}", run.unresolved);
    assert_eq!(output(&run, "sum"), 190);
    // The producer runs on while paused (it holds no place then); its clones, one at a time.
    assert_eq!(runner.overlap.peak("op:echo"), 1);
}

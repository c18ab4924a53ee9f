//! The adversarial suite: guests written to misbehave (`guest-examples/adversary`), each run in a
//! job beside well-behaved clones. Every case asserts that (a) the bad step fails with its
//! specific error, (b) every other step completes with the right output, (c) the host's memory
//! stays bounded, and the last tests show (d) that the same host process runs normal jobs after.

use serde_json::json;

use crate::support::{Ran, TempJob, failure, of_kind};
use host::app::{JobSource, Settings};
use host::events::NoEvents;

/// A well-behaved branch beside every attack: 20 clones and a collect that must total 190.
const BYSTANDERS: &str = "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 20 }\n\
    [ops.identity]\ncomponent = 'testkit'\ninputs.value = { map = 'fan_out' }\n\
    [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'identity' }\n";

/// The most the host may hold while a guest attacks it: two steps' memory limits and slack.
const HOST_MEMORY_BOUND: u64 = 1 << 30;

/// Runs the op `attack` (TOML for `[ops.NAME]` tables) beside the bystanders, and checks (b)
/// and (c). Returns the events for the caller to check (a).
fn attack(attack: &str) -> Vec<serde_json::Value> {
    let job = TempJob::new(&format!("{attack}\n{BYSTANDERS}"));
    checked(job.run(&["--json", "--max-concurrent", "2"]))
}

fn checked(ran: Ran) -> Vec<serde_json::Value> {
    let ran = ran.expect_code(1);
    // The guest's own panic message may be quoted; the host must not panic.
    for thread in ["'main'", "'tokio-runtime-worker'"] {
        assert!(
            !ran.stderr.contains(&format!("thread {thread}")),
            "{}",
            ran.stderr
        );
    }
    let events = ran.events();
    let sum = of_kind(&events, "STEP_OUTPUT")
        .into_iter()
        .find(|e| e["step_key"] == "sum")
        .unwrap_or_else(|| panic!("sum did not complete: {}", ran.stderr));
    assert_eq!(sum["value"], 190);
    let clones = of_kind(&events, "STEP_SUCCESS")
        .iter()
        .filter(|e| e["step_key"].as_str().unwrap().starts_with("identity["))
        .count();
    assert_eq!(clones, 20);
    let end = events.last().expect("events");
    assert_eq!(end["event"], "RUN_FAILURE");
    let peak = end["peak_rss_bytes"]
        .as_u64()
        .expect("peak memory reported");
    assert!(peak < HOST_MEMORY_BOUND, "host peak memory {peak} bytes");
    events
}

fn assert_failed(events: &[serde_json::Value], step: &str, kind: &str, message: &str) {
    let failed = failure(events, step);
    assert_eq!(failed["error_kind"], kind, "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains(message), "expected {message:?} in {error:?}");
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let events = attack("[ops.spin]\ncomponent = 'adversary'\nlimits = { fuel = 100_000_000 }\n");
    assert_failed(
        &events,
        "spin",
        "out_of_fuel",
        "more than 100000000 instructions",
    );
}

#[test]
fn an_infinite_loop_without_a_fuel_limit_times_out() {
    let events = attack(
        "[ops.spin]\ncomponent = 'adversary'\nlimits = { fuel = 9_000_000_000_000_000_000, timeout = '500ms' }\n",
    );
    assert_failed(&events, "spin", "timeout", "timed out after 500ms");
}

#[test]
fn a_guest_blocked_in_a_host_call_times_out() {
    let events = attack("[ops.sleep]\ncomponent = 'adversary'\nlimits = { timeout = '1s' }\n");
    assert_failed(&events, "sleep", "timeout", "timed out after 1s");
}

#[test]
fn deep_recursion_overflows_the_stack() {
    let events = attack("[ops.recurse]\ncomponent = 'adversary'\n");
    assert_failed(&events, "recurse", "stack_overflow", "stack overflow");
}

#[test]
fn a_memory_grow_bomb_hits_the_memory_limit() {
    let events =
        attack("[ops.grow_memory]\ncomponent = 'adversary'\nlimits = { memory = '64MiB' }\n");
    assert_failed(&events, "grow_memory", "memory_limit", "more than 64.0 MiB");
}

#[test]
fn a_memory_grow_bomb_at_the_default_limit_leaves_the_host_bounded() {
    let events = attack("[ops.grow_memory]\ncomponent = 'adversary'\n");
    assert_failed(
        &events,
        "grow_memory",
        "memory_limit",
        "more than 256.0 MiB",
    );
}

#[test]
fn a_huge_single_output_is_refused() {
    let events =
        attack("[ops.huge_output]\ncomponent = 'adversary'\nconfig = { bytes = 20_000_000 }\n");
    assert_failed(
        &events,
        "huge_output",
        "output_too_large",
        "is more than the limit of 16.0 MiB",
    );
}

#[test]
fn outputs_over_the_step_total_are_refused() {
    let events = attack(
        "[ops.big_values]\ncomponent = 'testkit'\nop = 'fan_out'\nconfig = { n = 3, bytes = 1_500_000 }\n\
         limits = { max_output_size = '2MiB', max_step_output_size = '4MiB' }\n",
    );
    assert_failed(
        &events,
        "big_values",
        "step_outputs_too_large",
        "more than the limit of 4.0 MiB",
    );
}

#[test]
fn an_output_over_its_own_limit_is_named_even_past_the_step_total() {
    let events = attack(
        "[ops.huge_output]\ncomponent = 'adversary'\nconfig = { bytes = 4_000_000 }\n\
         limits = { max_output_size = '1MiB', max_step_output_size = '2MiB' }\n",
    );
    assert_failed(
        &events,
        "huge_output",
        "output_too_large",
        "output `result`: 4000005 bytes is more than the limit of 1.0 MiB",
    );
}

#[test]
fn a_fan_out_bomb_is_stopped_at_the_limit() {
    let events =
        attack("[ops.fan_out_bomb]\ncomponent = 'adversary'\nlimits = { max_fanout = 1000 }\n");
    assert_failed(
        &events,
        "fan_out_bomb",
        "fanout_limit",
        "more than 1000 dynamic values",
    );
    let yielded = of_kind(&events, "STEP_OUTPUT")
        .iter()
        .filter(|e| e["step_key"] == "fan_out_bomb")
        .count();
    assert_eq!(yielded, 1000);
}

#[test]
fn a_trap_halfway_through_a_fan_out_keeps_the_clones_already_started() {
    let events = attack(
        "[ops.trap_midway]\ncomponent = 'adversary'\n\
         [ops.echo]\ncomponent = 'testkit'\nop = 'identity'\ninputs.value = { map = 'trap_midway' }\n\
         [ops.total]\ncomponent = 'testkit'\nop = 'sum'\ninputs.values = { collect = 'echo' }\n",
    );
    assert_failed(&events, "trap_midway", "trap", "trapped after five values");
    for k in 0..5 {
        let output = of_kind(&events, "STEP_OUTPUT")
            .into_iter()
            .find(|e| e["step_key"] == format!("echo[k{k}]"));
        assert_eq!(output.expect("clone output recorded")["value"], k);
    }
    assert!(
        of_kind(&events, "STEP_SKIPPED").iter().any(
            |e| e["step_key"] == "total" && e["reason"] == "upstream step `trap_midway` failed"
        )
    );
}

#[test]
fn files_outside_the_grant_cannot_be_read() {
    let events = attack(
        "[ops.read_file]\ncomponent = 'adversary'\nconfig = { path = '/etc/passwd' }\n\
         [ops.escape]\ncomponent = 'adversary'\nop = 'read_file'\nconfig = { path = '/data/../../../etc/passwd' }\n\
         dirs = [{ host = '.', guest = '/data' }]\n",
    );
    assert_failed(
        &events,
        "read_file",
        "op_failed",
        "cannot read `/etc/passwd`",
    );
    assert_failed(
        &events,
        "escape",
        "op_failed",
        "cannot read `/data/../../../etc/passwd`",
    );
    // Not the bare "No such file or directory (os error 44)": the error says why.
    assert_failed(
        &events,
        "read_file",
        "op_failed",
        "(help: an op sees only the directories its job entry grants with `dirs`",
    );
    assert!(!serde_json::to_string(&events).unwrap().contains("root:"));
}

#[test]
fn a_read_only_grant_cannot_be_written() {
    let job = TempJob::new(&format!(
        "[ops.write_file]\ncomponent = 'adversary'\nconfig = {{ path = '/data/job.toml' }}\n\
         dirs = [{{ host = '.', guest = '/data' }}]\n\
         [ops.write_new]\ncomponent = 'adversary'\nop = 'write_file'\nconfig = {{ path = '/data/new.txt' }}\n\
         dirs = [{{ host = '.', guest = '/data' }}]\n{BYSTANDERS}"
    ));
    let before = std::fs::read_to_string(job.path()).unwrap();
    let events = checked(job.run(&["--json"]));
    assert_failed(
        &events,
        "write_file",
        "op_failed",
        "cannot write `/data/job.toml`",
    );
    assert_failed(
        &events,
        "write_new",
        "op_failed",
        "cannot write `/data/new.txt`",
    );
    assert_eq!(std::fs::read_to_string(job.path()).unwrap(), before);
    assert!(!job.dir.path().join("new.txt").exists());
}

#[test]
fn a_writable_grant_can_be_written() {
    let job = TempJob::new(
        "[ops.write_file]\ncomponent = 'adversary'\nconfig = { path = '/out/result.txt' }\n\
         dirs = [{ host = '.', guest = '/out', writable = true }]\n",
    );
    job.run(&[]).expect_code(0);
    let written = std::fs::read_to_string(job.dir.path().join("result.txt")).unwrap();
    assert_eq!(written, "overwritten by a guest");
}

#[test]
fn environment_variables_are_visible_only_when_granted() {
    let job = TempJob::new(
        "[ops.read_env]\ncomponent = 'adversary'\nconfig = { name = 'SHOAL_TEST_SECRET' }\n\
         [ops.granted]\ncomponent = 'adversary'\nop = 'read_env'\nconfig = { name = 'SHOAL_TEST_SECRET' }\n\
         env = ['SHOAL_TEST_SECRET']\n",
    );
    let ran = job
        .run_with_env(&[], &[("SHOAL_TEST_SECRET", "hunter2")])
        .expect_code(0);
    assert_eq!(ran.json(), json!({"read_env": null, "granted": "hunter2"}));
}

#[test]
fn sockets_cannot_be_opened() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    let events = attack(&format!(
        "[ops.connect]\ncomponent = 'adversary'\nconfig = {{ address = '{address}' }}\n"
    ));
    assert_failed(
        &events,
        "connect",
        "op_failed",
        &format!("cannot connect to `{address}`"),
    );
    assert!(listener.accept().is_err(), "the guest reached the listener");
}

#[test]
fn a_stdout_flood_hits_the_log_limit() {
    let events =
        attack("[ops.print_flood]\ncomponent = 'adversary'\nlimits = { max_log_size = '64KiB' }\n");
    assert_failed(&events, "print_flood", "log_limit", "more than 64.0 KiB");
    let captured: usize = of_kind(&events, "LOGS")
        .iter()
        .filter(|e| e["step_key"] == "print_flood" && e["level"] == "stdout")
        .map(|e| e["message"].as_str().unwrap().len())
        .sum();
    assert!(captured <= 64 << 10, "captured {captured} bytes");
}

#[test]
fn a_log_flood_hits_the_log_limit() {
    let events =
        attack("[ops.log_flood]\ncomponent = 'adversary'\nlimits = { max_log_size = '64KiB' }\n");
    assert_failed(&events, "log_flood", "log_limit", "more than 64.0 KiB");
}

#[test]
fn empty_log_messages_are_not_free() {
    let events = attack(
        "[ops.empty_log_flood]\ncomponent = 'adversary'\nlimits = { max_log_size = '64KiB' }\n",
    );
    assert_failed(
        &events,
        "empty_log_flood",
        "log_limit",
        "more than 64.0 KiB",
    );
    // Each call costs 64 bytes of the budget: at most 1,024 events reach the store.
    let logged = of_kind(&events, "LOGS")
        .iter()
        .filter(|e| e["step_key"] == "empty_log_flood")
        .count();
    assert!((1..=1024).contains(&logged), "{logged} log events");
}

#[test]
fn one_huge_log_message_hits_the_log_limit() {
    let events =
        attack("[ops.huge_log]\ncomponent = 'adversary'\nconfig = { bytes = 70_000_000 }\n");
    assert_failed(&events, "huge_log", "log_limit", "more than 1.0 MiB");
}

#[test]
fn stdout_past_the_limit_fails_even_when_the_guest_ignores_write_errors() {
    let events = attack(
        "[ops.print_ignoring_errors]\ncomponent = 'adversary'\nconfig = { bytes = 100_000 }\n\
         limits = { max_log_size = '64KiB' }\n",
    );
    assert_failed(
        &events,
        "print_ignoring_errors",
        "log_limit",
        "more than 64.0 KiB",
    );
}

#[test]
fn stdout_of_exactly_the_limit_is_not_past_it() {
    // The limit is not exceeded: the step's own trap is reported.
    let events = attack(
        "[ops.print_ignoring_errors]\ncomponent = 'adversary'\nconfig = { bytes = 65_536, panic = true }\n\
         limits = { max_log_size = '64KiB' }\n",
    );
    assert_failed(
        &events,
        "print_ignoring_errors",
        "trap",
        "panicked after printing 65536 bytes",
    );
    let job = TempJob::new(
        "[ops.print_ignoring_errors]\ncomponent = 'adversary'\nconfig = { bytes = 65_536 }\n\
         limits = { max_log_size = '64KiB' }\n",
    );
    let events = job.run(&["--json"]).expect_code(0).events();
    let printed: usize = of_kind(&events, "LOGS")
        .iter()
        .map(|e| e["message"].as_str().unwrap().len())
        .sum();
    assert_eq!(printed, 65_536);
}

/// A tiny deterministic generator, so the test needs no `rand` and a failure reproduces.
fn pseudo_random(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

#[test]
fn a_thousand_clones_with_ten_percent_trapping() {
    let mut seed = 0x5eed;
    let mut trapping = std::collections::BTreeSet::new();
    while trapping.len() < 100 {
        trapping.insert(pseudo_random(&mut seed) % 1000);
    }
    let list: Vec<String> = trapping.iter().map(u64::to_string).collect();
    let job = TempJob::new(&format!(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = {{ n = 1000 }}\n\
         [ops.fail_on]\ncomponent = 'testkit'\nconfig = {{ panic_on = [{}] }}\ninputs.value = {{ map = 'fan_out' }}\n",
        list.join(", ")
    ));
    // Two at a time: the instance pool has three slots, so a slot not released after a trap
    // would stop the run within a few steps.
    let events = job
        .run(&["--json", "--max-concurrent", "2"])
        .expect_code(1)
        .events();
    let failed: std::collections::BTreeSet<u64> = of_kind(&events, "STEP_FAILURE")
        .iter()
        .map(|e| {
            assert_eq!(e["error_kind"], "trap");
            let key = e["step_key"].as_str().unwrap();
            key.trim_start_matches("fail_on[k")
                .trim_end_matches(']')
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(failed, trapping);
    let outputs: Vec<_> = of_kind(&events, "STEP_OUTPUT")
        .into_iter()
        .filter(|e| e["step_key"].as_str().unwrap().starts_with("fail_on["))
        .collect();
    assert_eq!(outputs.len(), 900);
    for output in outputs {
        let key = output["step_key"].as_str().unwrap();
        let k: u64 = key
            .trim_start_matches("fail_on[k")
            .trim_end_matches(']')
            .parse()
            .unwrap();
        assert_eq!(output["value"], k);
    }
}

#[test]
fn the_same_host_process_runs_a_normal_job_after_attacks() {
    let attacks = TempJob::new(&format!(
        "[ops.grow_memory]\ncomponent = 'adversary'\nlimits = {{ memory = '64MiB' }}\n\
         [ops.spin]\ncomponent = 'adversary'\nlimits = {{ fuel = 10_000_000 }}\n\
         [ops.recurse]\ncomponent = 'adversary'\n{BYSTANDERS}"
    ));
    let normal = TempJob::new(BYSTANDERS);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let two = Settings {
        max_concurrent: Some(2),
        ..Settings::default()
    };
    tokio.block_on(async {
        for round in 0..3 {
            let prepared = host::app::prepare(&JobSource::file(&attacks.path()), &two, None)
                .await
                .unwrap();
            let run = prepared.run(&mut NoEvents).await;
            assert!(!run.succeeded(), "round {round}");
            let failed = run
                .steps
                .iter()
                .filter(|s| matches!(s.status, host::exec::Status::Failed(_)));
            assert_eq!(failed.count(), 3, "round {round}");

            let prepared = host::app::prepare(&JobSource::file(&normal.path()), &two, None)
                .await
                .unwrap();
            let run = prepared.run(&mut NoEvents).await;
            assert!(run.succeeded(), "round {round}");
            let sum = run.plan.node("sum").unwrap();
            assert_eq!(run.output_for_node(sum, "result"), 190);
        }
    });
}

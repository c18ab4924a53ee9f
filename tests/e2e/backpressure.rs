//! Backpressure through the real host: a producer far ahead of its clones pauses inside
//! `yield-output`, and the pause does not count against its timeout.

use crate::support::{TempJob, of_kind};

#[test]
fn a_producer_paused_by_backpressure_does_not_time_out() {
    // 3,000 clones of 1 ms on 2 slots take about 1.5 s; the producer yields its first 2,048
    // values at once and then waits for credits for most of that time. Its 500 ms timeout
    // counts only the time it runs.
    let job = TempJob::new(
        "[ops.fan_out]\ncomponent = 'testkit'\nconfig = { n = 3000 }\n\
         limits = { timeout = '500ms' }\n\
         [ops.nap]\ncomponent = 'testkit'\nconfig = { ms = 1 }\ninputs.value = { map = 'fan_out' }\n\
         [ops.sum]\ncomponent = 'testkit'\ninputs.values = { collect = 'nap' }\n",
    );
    let ran = job.run(&["--max-concurrent", "2", "--json"]).expect_code(0);
    let events = ran.events();
    let done = of_kind(&events, "STEP_SUCCESS");
    let producer = done.iter().find(|e| e["step_key"] == "fan_out").unwrap();
    assert!(
        producer["duration_ms"].as_f64().unwrap() > 500.0,
        "the producer was not paused long: {producer}"
    );
    let sum = of_kind(&events, "STEP_OUTPUT")
        .into_iter()
        .find(|e| e["step_key"] == "sum")
        .unwrap()
        .clone();
    assert_eq!(sum["value"], 2999 * 3000 / 2, "{sum}");
}

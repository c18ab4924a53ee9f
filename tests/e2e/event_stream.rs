//! The `--json` event stream of the seed examples, pinned as snapshots (run ids, times,
//! durations and memory redacted; `--sequential` fixes the order), and read back into the
//! host's event type.

use host::events::Event;
use serde_json::Value;

use crate::support::run_example;

/// The events of example `name`, run one step at a time.
fn stream(name: &str) -> Vec<Value> {
    run_example(name, &["--json", "--sequential"])
        .expect_code(0)
        .events()
}

/// Every event deserializes into [`Event`] and serializes back to the same JSON.
fn assert_round_trips(events: &[Value]) {
    for json in events {
        let event: Event<'static> = serde_json::from_value(json.clone())
            .unwrap_or_else(|err| panic!("{json} does not read back: {err}"));
        assert_eq!(&serde_json::to_value(&event).unwrap(), json);
    }
}

/// Pins the event stream of example `name` as snapshot `name`.
fn assert_stream_snapshot(name: &str) {
    let events = stream(name);
    assert_round_trips(&events);
    insta::assert_json_snapshot!(name, events, {
        "[].run_id" => "[run_id]",
        "[].timestamp" => "[timestamp]",
        "[].duration_ms" => "[duration_ms]",
        "[].peak_rss_bytes" => "[peak_rss_bytes]",
    });
}

#[test]
fn dynamic_graph_events() {
    assert_stream_snapshot("dynamic_graph");
}

/// Maps chained three deep, each clone keeping its key.
#[test]
fn chained_map_events() {
    assert_stream_snapshot("chained");
}

/// One op with two dynamic outputs, one collected, one mapped.
#[test]
fn multiple_dynamic_outputs_events() {
    assert_stream_snapshot("multiple");
}

/// A map inside a map: clones keyed by two mapping keys, collected one level at a time.
#[test]
fn nested_map_events() {
    assert_stream_snapshot("nested");
}

//! Job files: parsing and plan validation must reject bad input with an error, never panic.
#![no_main]

use host::digest::Digest;
use host::job::{Job, LoadedJob};
use host::op_info::OpInfo;
use host::plan::Described;
use indexmap::IndexMap;
use libfuzzer_sys::fuzz_target;

/// Ops shaped like the seed examples, in a component called `c`, so that inputs reach the
/// wiring checks and not only "unknown component".
fn catalog() -> IndexMap<String, Described> {
    let op = OpInfo::new;
    let ops = vec![
        op("emit", &[], &[("result", true)]),
        op("two", &[], &[("values", true), ("negatives", true)]),
        op("echo", &["x"], &[("result", false)]),
        op("add", &["a", "b"], &[("result", false)]),
        op("sum", &["xs"], &[("result", false)]),
    ];
    let described = Described {
        digest: Digest::of(b"c"),
        ops,
    };
    IndexMap::from([("c".to_string(), described)])
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(job) = toml::from_str::<Job>(text) else {
        return;
    };
    let loaded = LoadedJob {
        name: "fuzz".into(),
        job,
    };
    if let Err(err) = host::plan::build(&loaded, &catalog()) {
        // Rendering the message must not panic either, nor finding where it points.
        let _ = err.to_string();
        if let Some((op, input)) = err.place() {
            let _ = host::job::locate(text, op, input);
        }
    }
});

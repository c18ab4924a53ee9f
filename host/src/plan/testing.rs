//! Plans for unit tests, built from TOML against a fixed catalog of ops.

use super::*;
use crate::job::Job;

/// A catalog with one component `c` holding ops shaped like the seed examples.
pub fn catalog() -> IndexMap<String, Described> {
    let op = OpInfo::new;
    let ops = vec![
        op("emit", &[], &[("result", true)]),
        op("emit_in", &["x"], &[("result", true)]),
        op("two", &[], &[("values", true), ("negatives", true)]),
        op("echo", &["x"], &[("result", false)]),
        op("add", &["a", "b"], &[("result", false)]),
        op("one", &[], &[("result", false)]),
        op("sum", &["xs"], &[("result", false)]),
        op("gather", &["xs"], &[("result", false)]),
        op("failures", &["xs", "errors"], &[("result", false)]),
        optional(op("branch", &["x"], &[("even", false), ("odd", false)])),
        optional(op("maybe_emit", &[], &[("result", true)])),
    ];
    let c = Described {
        digest: Digest::of(b"c"),
        ops,
    };
    IndexMap::from([("c".to_string(), c)])
}

/// `op` with every output optional.
fn optional(mut op: OpInfo) -> OpInfo {
    for output in &mut op.outputs {
        output.required = false;
    }
    op
}

pub fn plan(ops: &str) -> Result<Plan, PlanError> {
    let text = format!("[components.c]\npath = 'c.wasm'\n{ops}");
    let job: Job = toml::from_str(&text).expect("test job parses");
    build(
        &LoadedJob {
            name: "test".into(),
            job,
        },
        &catalog(),
    )
}

//! Host bindings generated from `wit/op.wit`, and their conversions to host types.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "op-component",
    // Both can stop the guest: past its log budget, or when it keeps yielding after a
    // rejected value.
    imports: {
        // Async: a guest waits in `log` while the log queue is full, and a producer waits in
        // `yield-output` while the run has too much queued work.
        "shoal:op/log.log": async | trappable,
        "shoal:op/emit.yield-output": async | trappable,
    },
    exports: { default: async },
});

pub use shoal::op::types::{
    Context, DynamicValue, NamedValue, OpError, OpInfo as WitOpInfo, Outputs,
};

use crate::op_info::{OpInfo, OutputInfo};

impl From<WitOpInfo> for OpInfo {
    fn from(op: WitOpInfo) -> Self {
        OpInfo {
            name: op.name,
            description: op.description,
            inputs: op.inputs,
            outputs: op
                .outputs
                .into_iter()
                .map(|o| OutputInfo {
                    name: o.name,
                    dynamic: o.dynamic,
                    description: o.description,
                })
                .collect(),
        }
    }
}

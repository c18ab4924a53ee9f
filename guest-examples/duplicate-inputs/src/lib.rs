//! A component that declares the same input twice: loading it must fail, as for outputs.
//! `#[op]` cannot declare an input twice (parameters have distinct names), so the op is built
//! by hand with the SDK's builder.

use shoal_sdk::{Context, Inputs, Op, OpError};

fn echo(_: &Context, inputs: &Inputs) -> Result<i64, OpError> {
    inputs.get("x")
}

fn ops() -> Vec<Op> {
    vec![Op::new("echo", echo).input("x").input("x")]
}

shoal_sdk::export!(fn ops);

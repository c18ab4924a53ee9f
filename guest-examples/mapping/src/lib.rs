//! The ops of Dagster's "advanced mapping" examples: chaining, extra arguments, several
//! dynamic outputs, and dynamic outputs returned as a list.

use shoal_sdk::{Context, DynamicOutput, Inputs, Op, OpError, Outputs, Value};

/// Yields `1..=10`, keyed by the value.
fn dynamic_values(ctx: &Context, _: &Inputs) -> Result<(), OpError> {
    for value in 1..=10i64 {
        ctx.yield_output(DynamicOutput::new(&value, value.to_string()))?;
    }
    Ok(())
}

/// Yields `1..=value`, keyed by the value: a dynamic op with an input, so that it can be mapped
/// and its own values mapped again (a nested map).
fn range(ctx: &Context, inputs: &Inputs) -> Result<(), OpError> {
    let n: i64 = inputs.get("value")?;
    for value in 1..=n {
        ctx.yield_output(DynamicOutput::new(&value, value.to_string()))?;
    }
    Ok(())
}

/// Returns its input unchanged.
fn echo(_: &Context, inputs: &Inputs) -> Result<Value, OpError> {
    inputs.get("value")
}

/// Sums a collected list of integers.
fn process(_: &Context, inputs: &Inputs) -> Result<i64, OpError> {
    let values: Vec<i64> = inputs.get("values")?;
    Ok(values.iter().sum())
}

/// Returns 1.
fn one(_: &Context, _: &Inputs) -> Result<i64, OpError> {
    Ok(1)
}

/// Adds two integers.
fn add(_: &Context, inputs: &Inputs) -> Result<i64, OpError> {
    Ok(inputs.get::<i64>("a")? + inputs.get::<i64>("b")?)
}

/// Yields `0, 1` on `values` and `0, -1` on `negatives`.
fn multiple_dynamic_values(ctx: &Context, _: &Inputs) -> Result<Outputs, OpError> {
    for i in 0..2i64 {
        ctx.yield_output(DynamicOutput::new(&i, format!("num_{i}")).output_name("values"))?;
        ctx.yield_output(DynamicOutput::new(&-i, format!("neg_{i}")).output_name("negatives"))?;
    }
    Ok(Outputs::new())
}

/// Returns (not yields) one dynamic output per page.
fn return_dynamic(_: &Context, _: &Inputs) -> Result<Outputs, OpError> {
    let pages = ["home", "about", "contact"];
    let outputs: Vec<DynamicOutput> = pages
        .iter()
        .enumerate()
        .map(|(idx, page)| DynamicOutput::new(page, idx.to_string()))
        .collect();
    Ok(outputs.into())
}

/// Uppercases a string.
fn uppercase(_: &Context, inputs: &Inputs) -> Result<String, OpError> {
    Ok(inputs.get::<String>("value")?.to_uppercase())
}

/// Returns a collected list as it is.
fn gather(_: &Context, inputs: &Inputs) -> Result<Vec<Value>, OpError> {
    inputs.get("values")
}

fn ops() -> Vec<Op> {
    vec![
        Op::dynamic("dynamic_values", dynamic_values).describe("yields 1..=10"),
        Op::dynamic("range", range)
            .describe("yields 1..=value")
            .input("value"),
        Op::new("echo", echo)
            .describe("returns its input")
            .input("value"),
        Op::new("process", process)
            .describe("sums a list of integers")
            .input("values"),
        Op::new("one", one).describe("returns 1"),
        Op::new("add", add)
            .describe("returns a + b")
            .input("a")
            .input("b"),
        Op::with_outputs("multiple_dynamic_values", multiple_dynamic_values)
            .describe("yields values 0, 1 and negatives 0, -1")
            .dynamic_output("values")
            .dynamic_output("negatives"),
        Op::with_outputs("return_dynamic", return_dynamic)
            .describe("returns the pages home, about, contact as a dynamic list")
            .dynamic_output("result"),
        Op::new("uppercase", uppercase)
            .describe("uppercases a string")
            .input("value"),
        Op::new("gather", gather)
            .describe("returns a collected list")
            .input("values"),
    ]
}

shoal_sdk::export!(ops);

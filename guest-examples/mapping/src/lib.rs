//! The ops of Dagster's "advanced mapping" examples: chaining, extra arguments, several
//! dynamic outputs, and dynamic outputs returned as a list.

use shoal_sdk::{Context, DynamicOutput, OpError, Value, op};

// Keyed by the value.
/// yields 1..=10
#[op(dynamic)]
fn dynamic_values(ctx: &Context) -> Result<(), OpError> {
    for value in 1..=10i64 {
        ctx.yield_output(DynamicOutput::new(&value, value.to_string()))?;
    }
    Ok(())
}

// Keyed by the value: a dynamic op with an input, so that it can be mapped and its own values
// mapped again (a nested map).
/// yields 1..=value
#[op(dynamic)]
fn range(ctx: &Context, value: i64) -> Result<(), OpError> {
    for value in 1..=value {
        ctx.yield_output(DynamicOutput::new(&value, value.to_string()))?;
    }
    Ok(())
}

/// returns its input
#[op]
fn echo(value: Value) -> Value {
    value
}

/// sums a list of integers
#[op]
fn process(values: Vec<i64>) -> i64 {
    values.iter().sum()
}

/// returns 1
#[op]
fn one() -> i64 {
    1
}

/// returns a + b
#[op]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// yields values 0, 1 and negatives 0, -1
#[op(dynamic_out = "values", dynamic_out = "negatives")]
fn multiple_dynamic_values(ctx: &Context) -> Result<(), OpError> {
    for i in 0..2i64 {
        ctx.yield_output(DynamicOutput::new(&i, format!("num_{i}")).output_name("values"))?;
        ctx.yield_output(DynamicOutput::new(&-i, format!("neg_{i}")).output_name("negatives"))?;
    }
    Ok(())
}

// Returned, not yielded: Dagster's "return a list of DynamicOutput".
/// returns the pages home, about, contact as a dynamic list
#[op(dynamic)]
fn return_dynamic() -> Vec<DynamicOutput> {
    let pages = ["home", "about", "contact"];
    pages
        .iter()
        .enumerate()
        .map(|(idx, page)| DynamicOutput::new(page, idx.to_string()))
        .collect()
}

/// uppercases a string
#[op]
fn uppercase(value: String) -> String {
    value.to_uppercase()
}

/// returns a collected list
#[op]
fn gather(values: Vec<Value>) -> Vec<Value> {
    values
}

shoal_sdk::export!(
    dynamic_values,
    range,
    echo,
    process,
    one,
    add,
    multiple_dynamic_values,
    return_dynamic,
    uppercase,
    gather,
);

#[cfg(test)]
mod tests {
    use shoal_sdk::testing::build_op_context;

    use super::*;

    #[test]
    fn two_dynamic_outputs_are_yielded_apart() {
        let run = build_op_context().run(multiple_dynamic_values::op());
        assert_eq!(
            run.dynamic::<i64>("values"),
            [("num_0".to_string(), 0), ("num_1".to_string(), 1)]
        );
        assert_eq!(
            run.dynamic::<i64>("negatives"),
            [("neg_0".to_string(), 0), ("neg_1".to_string(), -1)]
        );
    }

    #[test]
    fn returned_dynamic_outputs_keep_their_order() {
        let run = build_op_context().run(return_dynamic::op());
        let pages: Vec<String> = run
            .dynamic::<String>("result")
            .into_iter()
            .map(|(_, page)| page)
            .collect();
        assert_eq!(pages, ["home", "about", "contact"]);
    }

    #[test]
    fn a_nested_map_sums_to_220() {
        let total: i64 = (1..=10)
            .map(|n| {
                let run = build_op_context()
                    .mapping_key(n.to_string())
                    .input("value", &n)
                    .run(range::op());
                let echoed: Vec<i64> = run
                    .dynamic::<i64>("result")
                    .into_iter()
                    .map(|(_, i)| i)
                    .collect();
                process(echoed)
            })
            .sum();
        assert_eq!(total, 220);
    }

    #[test]
    fn add_names_the_input_it_cannot_read() {
        let run = build_op_context()
            .input("a", &1)
            .input("b", &"x")
            .run(add::op());
        assert_eq!(
            run.op_error().map(OpError::message),
            Some("op `add`: input `b`: invalid type: string, expected integer")
        );
        assert_eq!(add(one(), 2), 3);
    }
}

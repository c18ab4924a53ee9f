//! Splits a text into words, shouts each word in its own step, joins them again.

use schemars::JsonSchema;
use serde::Deserialize;
use shoal_sdk::{Context, DynamicOutput, OpError, op};

#[derive(Deserialize, JsonSchema)]
struct SplitConfig {
    /// The text to split into words.
    text: String,
}

/// Yields each word of `config.text`, keyed by its position.
#[op(dynamic)]
fn split(ctx: &Context, config: SplitConfig) -> Result<(), OpError> {
    for (i, word) in config.text.split_whitespace().enumerate() {
        ctx.yield_output(DynamicOutput::new(word, i.to_string()))?;
    }
    Ok(())
}

/// Uppercases one word.
#[op]
fn shout(word: String) -> String {
    word.to_uppercase()
}

/// Joins the shouted words with spaces.
#[op]
fn join(words: Vec<String>) -> String {
    words.join(" ")
}

shoal_sdk::export!(split, shout, join);

/// `cargo test` runs the ops natively, without Wasm.
#[cfg(test)]
mod tests {
    use super::*;
    use shoal_sdk::testing::build_op_context;

    #[test]
    fn split_yields_one_value_per_word() {
        let run = build_op_context()
            .config(&serde_json::json!({"text": "a b"}))
            .run(split::op());
        let words = run.dynamic::<String>("result");
        assert_eq!(words, [("0".into(), "a".into()), ("1".into(), "b".into())]);
    }

    #[test]
    fn shout_and_join() {
        assert_eq!(shout("hi".into()), "HI");
        assert_eq!(join(vec!["A".into(), "B".into()]), "A B");
    }
}

//! Dagster's "dynamic graph" example: chunk `0..100`, double each chunk, sum everything.
//!
//! Each op's doc comment is the description `host inspect` shows.

use schemars::JsonSchema;
use serde::Deserialize;
use shoal_sdk::{Context, DynamicOutput, OpError, op};

#[derive(Deserialize, JsonSchema)]
struct LoadConfig {
    /// Elements per piece.
    #[serde(default = "two")]
    chunk_size: usize,
}

fn two() -> usize {
    2
}

// Keyed by chunk index, "0".."49" with the default chunk size.
/// yields 0..100 in chunks of config.chunk_size (default 2)
#[op(dynamic)]
fn load_pieces(ctx: &Context, config: LoadConfig) -> Result<(), OpError> {
    let LoadConfig { chunk_size } = config;
    if chunk_size == 0 {
        return Err(OpError::bad_input("config `chunk_size` must be at least 1"));
    }
    let large_data: Vec<i64> = (0..100).collect();
    for (idx, piece) in large_data.chunks(chunk_size).enumerate() {
        ctx.yield_output(DynamicOutput::new(piece, idx.to_string()))?;
    }
    Ok(())
}

/// doubles each element of a piece
#[op]
fn compute_piece(piece: Vec<i64>) -> Vec<i64> {
    shoal_sdk::info!("computing piece: {piece:?}");
    piece.iter().map(|x| x * 2).collect()
}

/// sums all pieces
#[op]
fn merge_and_analyze(pieces: Vec<Vec<i64>>) -> i64 {
    let total = pieces.iter().flatten().sum();
    shoal_sdk::info!("total sum of pieces: {total}");
    total
}

shoal_sdk::export!(load_pieces, compute_piece, merge_and_analyze);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use shoal_sdk::testing::build_op_context;

    use super::*;

    #[test]
    fn load_pieces_yields_50_pieces_of_two_by_default() {
        let run = build_op_context().run(load_pieces::op());
        let pieces = run.dynamic::<Vec<i64>>("result");
        assert_eq!(pieces.len(), 50);
        assert_eq!(pieces[0], ("0".to_string(), vec![0, 1]));
        assert_eq!(pieces[49], ("49".to_string(), vec![98, 99]));
    }

    #[test]
    fn load_pieces_follows_its_config() {
        let run = build_op_context()
            .config(&json!({"chunk_size": 30}))
            .run(load_pieces::op());
        let sizes: Vec<usize> = run
            .dynamic::<Vec<i64>>("result")
            .iter()
            .map(|(_, piece)| piece.len())
            .collect();
        assert_eq!(sizes, [30, 30, 30, 10]);

        let run = build_op_context()
            .config(&json!({"chunk_size": 0}))
            .run(load_pieces::op());
        assert_eq!(
            run.op_error(),
            Some(&OpError::bad_input(
                "config `chunk_size` must be at least 1"
            ))
        );
        let run = build_op_context()
            .config(&json!({"chunk_size": "two"}))
            .run(load_pieces::op());
        assert_eq!(
            run.op_error().map(OpError::message),
            Some(
                "op `load_pieces`: config field `chunk_size`: invalid type: string, expected integer"
            )
        );
    }

    #[test]
    fn compute_piece_doubles_and_logs() {
        let run = build_op_context()
            .mapping_key("7")
            .input("piece", &vec![14, 15])
            .run(compute_piece::op());
        assert_eq!(run.output::<Vec<i64>>("result"), [28, 30]);
        assert_eq!(run.logs()[0].message, "computing piece: [14, 15]");
        assert_eq!(compute_piece(vec![-1, 0, 2]), [-2, 0, 4]);
    }

    #[test]
    fn merge_and_analyze_sums_everything() {
        let run = build_op_context()
            .input("pieces", &vec![vec![0, 2], vec![4, 6]])
            .run(merge_and_analyze::op());
        assert_eq!(run.output::<i64>("result"), 12);
    }

    #[test]
    fn the_graph_totals_9900() {
        let pieces = build_op_context()
            .run(load_pieces::op())
            .dynamic::<Vec<i64>>("result");
        let doubled: Vec<Vec<i64>> = pieces
            .into_iter()
            .map(|(key, piece)| {
                build_op_context()
                    .mapping_key(key)
                    .input("piece", &piece)
                    .run(compute_piece::op())
                    .output("result")
            })
            .collect();
        let total = build_op_context()
            .input("pieces", &doubled)
            .run(merge_and_analyze::op());
        assert_eq!(total.output::<i64>("result"), 9900);
    }

    #[test]
    fn describe_declares_the_config_schema() {
        let op = load_pieces::op();
        let info = op.info();
        assert_eq!(
            info.description,
            "yields 0..100 in chunks of config.chunk_size (default 2)"
        );
        let schema: serde_json::Value =
            serde_json::from_str(info.config_schema.as_deref().unwrap()).unwrap();
        assert_eq!(schema["properties"]["chunk_size"]["type"], "integer");
        assert_eq!(schema["properties"]["chunk_size"]["default"], 2);
        assert!(schema.get("required").is_none());
        let compute = compute_piece::op();
        let inputs: Vec<&str> = compute
            .info()
            .inputs
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(inputs, ["piece"]);
    }
}

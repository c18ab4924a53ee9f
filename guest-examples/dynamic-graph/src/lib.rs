//! Dagster's "dynamic graph" example: chunk `0..100`, double each chunk, sum everything.

use serde::Deserialize;
use shoal_sdk::{Context, DynamicOutput, Inputs, Op, OpError};

#[derive(Deserialize)]
struct LoadConfig {
    /// Elements per piece.
    #[serde(default = "two")]
    chunk_size: usize,
}

fn two() -> usize {
    2
}

/// Yields `0..100` in chunks of `chunk_size` (default two), keyed by chunk index
/// (`"0"`..`"49"`).
fn load_pieces(ctx: &Context, _: &Inputs) -> Result<(), OpError> {
    let LoadConfig { chunk_size } = ctx.config()?;
    if chunk_size == 0 {
        return Err(OpError::bad_input("config `chunk_size` must be at least 1"));
    }
    let large_data: Vec<i64> = (0..100).collect();
    for (idx, piece) in large_data.chunks(chunk_size).enumerate() {
        ctx.yield_output(DynamicOutput::new(piece, idx.to_string()))?;
    }
    Ok(())
}

/// Doubles every element of one piece.
fn compute_piece(_: &Context, inputs: &Inputs) -> Result<Vec<i64>, OpError> {
    let piece: Vec<i64> = inputs.get("piece")?;
    shoal_sdk::info!("computing piece: {piece:?}");
    Ok(piece.iter().map(|x| x * 2).collect())
}

/// Sums all the computed pieces.
fn merge_and_analyze(_: &Context, inputs: &Inputs) -> Result<i64, OpError> {
    let pieces: Vec<Vec<i64>> = inputs.get("pieces")?;
    let total = pieces.iter().flatten().sum();
    shoal_sdk::info!("total sum of pieces: {total}");
    Ok(total)
}

fn ops() -> Vec<Op> {
    vec![
        Op::dynamic("load_pieces", load_pieces)
            .describe("yields 0..100 in chunks of config.chunk_size (default 2)"),
        Op::new("compute_piece", compute_piece)
            .describe("doubles each element of a piece")
            .input("piece"),
        Op::new("merge_and_analyze", merge_and_analyze)
            .describe("sums all pieces")
            .input("pieces"),
    ]
}

shoal_sdk::export!(ops);

//! Dagster's `DynamicOut` API example: one clone per file of a directory.

use serde::Deserialize;
use shoal_sdk::{Context, DynamicOutput, Inputs, Op, OpError};

#[derive(Deserialize)]
struct DirectoryConfig {
    /// The directory to list, as the op sees it (the job grants it read-only).
    #[serde(default = "default_path")]
    path: String,
}

fn default_path() -> String {
    "/sample".to_string()
}

/// Makes a file name a valid mapping key: every character outside `[A-Za-z0-9_]` becomes `_`.
fn clean(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Yields the path of every regular file in the configured directory, keyed by cleaned name.
fn files_in_directory(ctx: &Context, _: &Inputs) -> Result<(), OpError> {
    let config: DirectoryConfig = ctx.config()?;
    let entries = std::fs::read_dir(&config.path)
        .map_err(|err| OpError::failed(format!("cannot list `{}`: {err}", config.path)))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(OpError::failed)?;
        if entry.file_type().map_err(OpError::failed)?.is_file() {
            files.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    // Directory order is not stable across file systems; sort so runs are reproducible.
    files.sort();
    for file in files {
        let path = format!("{}/{file}", config.path.trim_end_matches('/'));
        ctx.yield_output(DynamicOutput::new(&path, clean(&file)))?;
    }
    Ok(())
}

/// Returns the size of one file in bytes.
fn process_file(_: &Context, inputs: &Inputs) -> Result<u64, OpError> {
    let path: String = inputs.get("path")?;
    let metadata = std::fs::metadata(&path)
        .map_err(|err| OpError::failed(format!("cannot stat `{path}`: {err}")))?;
    Ok(metadata.len())
}

/// Sums the sizes of all files.
fn summarize_directory(_: &Context, inputs: &Inputs) -> Result<u64, OpError> {
    let sizes: Vec<u64> = inputs.get("sizes")?;
    Ok(sizes.iter().sum())
}

fn ops() -> Vec<Op> {
    vec![
        Op::dynamic("files_in_directory", files_in_directory)
            .describe("yields each file of the directory `config.path`"),
        Op::new("process_file", process_file)
            .describe("returns a file's size in bytes")
            .input("path"),
        Op::new("summarize_directory", summarize_directory)
            .describe("sums the file sizes")
            .input("sizes"),
    ]
}

shoal_sdk::export!(ops);

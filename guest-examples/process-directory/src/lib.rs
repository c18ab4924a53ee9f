//! Dagster's `DynamicOut` API example: one clone per file of a directory.

use schemars::JsonSchema;
use serde::Deserialize;
use shoal_sdk::{Context, DynamicOutput, OpError, op};

#[derive(Deserialize, JsonSchema)]
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

// Every regular file, keyed by its cleaned name, in name order.
/// yields each file of the directory `config.path`
#[op(dynamic)]
fn files_in_directory(ctx: &Context, config: DirectoryConfig) -> Result<(), OpError> {
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

/// returns a file's size in bytes
#[op]
fn process_file(path: String) -> Result<u64, OpError> {
    let metadata = std::fs::metadata(&path)
        .map_err(|err| OpError::failed(format!("cannot stat `{path}`: {err}")))?;
    Ok(metadata.len())
}

/// sums the file sizes
#[op]
fn summarize_directory(sizes: Vec<u64>) -> u64 {
    sizes.iter().sum()
}

shoal_sdk::export!(files_in_directory, process_file, summarize_directory);

#[cfg(test)]
mod tests {
    use shoal_sdk::testing::build_op_context;

    use super::*;

    #[test]
    fn the_sample_directory_gives_one_clone_per_file_and_their_total_size() {
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../sample");
        let run = build_op_context()
            .config(&serde_json::json!({ "path": sample }))
            .run(files_in_directory::op());
        let files = run.dynamic::<String>("result");
        let keys: Vec<&str> = files.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, ["config_json", "data_csv", "notes_txt"]);
        let sizes: Vec<u64> = files
            .iter()
            .map(|(_, path)| process_file(path.clone()).unwrap())
            .collect();
        let expected: u64 = std::fs::read_dir(sample)
            .unwrap()
            .map(|entry| entry.unwrap().metadata().unwrap().len())
            .sum();
        assert_eq!(summarize_directory(sizes), expected);
    }

    #[test]
    fn a_missing_directory_fails_the_op() {
        let run = build_op_context()
            .config(&serde_json::json!({ "path": "/no/such/dir" }))
            .run(files_in_directory::op());
        let message = run.op_error().unwrap().message();
        assert!(
            message.starts_with("cannot list `/no/such/dir`: "),
            "{message}"
        );
    }
}

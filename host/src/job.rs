//! The job file (`job.toml`) and run config (`--config run.toml`) as written by users.
//!
//! Parsing is strict: unknown fields are errors that carry the line and column. Paths are
//! resolved relative to the job file. Cross-references (ops, outputs, inputs) are checked later,
//! by [`crate::plan`], once the components have described their ops.

use std::path::{Path, PathBuf};

use bytesize::ByteSize;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::limits::LimitsSpec;

pub mod concurrency;
mod locate;
pub mod tags;
use crate::retry::RetrySpec;
use concurrency::{Cap, TagConcurrencyLimit};
pub use locate::locate;
use tags::Tags;

/// Why a job file or run config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {what} `{path}`")]
    Parse {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: TomlError,
    },
    #[error("run config sets op `{0}`, which the job does not have")]
    UnknownOpInRunConfig(String),
    #[error(
        "component `{0}` needs `path`, the `.wasm` file to run (`name` refers to a component \
         uploaded to `host serve`, and only jobs submitted there may use it)"
    )]
    ComponentFile(String),
    #[error(
        "component `{0}` gives a `path`: a job submitted to `host serve` names components \
         uploaded there (`name = \"...\"`, or the table's name) and reads no file"
    )]
    ComponentPathOnServer(String),
    #[error("op `{op}` is granted directory `{host}`: {reason}")]
    BadGrant {
        op: String,
        host: PathBuf,
        reason: String,
    },
}

/// A job: components, ops wired into a graph, and execution settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// Job metadata.
    #[serde(default)]
    pub job: JobMeta,
    /// Component name -> component file.
    pub components: IndexMap<String, ComponentSpec>,
    /// Op name (unique in the job) -> what it runs and how its inputs are wired.
    pub ops: IndexMap<String, OpSpec>,
    /// Execution settings (Dagster's executor config).
    #[serde(default)]
    pub execution: Execution,
    /// Default limits of every op.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Default retry policy of every op.
    #[serde(default)]
    pub retry: RetrySpec,
    /// The run's tags (run config `[tags]`, then `host run --tag`), over every op's: never read
    /// from the job file.
    #[serde(skip)]
    pub run_tags: Tags,
}

/// `[job]`: metadata.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobMeta {
    /// Defaults to the job file's name without `.toml`.
    pub name: Option<String>,
    pub description: Option<String>,
    /// Tags of the run and of every step.
    #[serde(default)]
    pub tags: Tags,
}

/// `[components.NAME]`: a component file (`host run`) or an uploaded component (`host serve`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentSpec {
    /// Path to the `.wasm` component, relative to the job file. Required by `host run`,
    /// refused by `host serve`.
    pub path: Option<PathBuf>,
    /// The name a component was uploaded to `host serve` under; defaults to this table's name.
    pub name: Option<String>,
    /// A shell command that builds the component (`host build`), run in the job file's
    /// directory. `host serve` never runs it.
    pub build: Option<String>,
    /// The file or directory the component is built from, relative to the job file: `host run`
    /// notes when something in it is newer than the component. `host serve` never reads it.
    pub source: Option<PathBuf>,
}

impl ComponentSpec {
    /// The name of the uploaded component that table `key` refers to.
    pub fn uploaded_name<'a>(&'a self, key: &'a str) -> &'a str {
        self.name.as_deref().unwrap_or(key)
    }

    /// Where component `key` comes from, as messages name it: its file, else its uploaded name.
    pub fn origin(&self, key: &str) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| PathBuf::from(self.uploaded_name(key)))
    }

    /// The file of component `key`, which a local job must give.
    pub fn file(&self, key: &str) -> Result<&Path, JobError> {
        match (&self.path, &self.name) {
            (Some(path), None) => Ok(path),
            _ => Err(JobError::ComponentFile(key.to_string())),
        }
    }
}

/// `[ops.NAME]`: one op of the job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpSpec {
    /// The component that holds the op.
    pub component: String,
    /// The op's name inside the component; defaults to the name of this table, so that an op
    /// used twice can be named `process` and `process_2` (as Dagster aliases it).
    pub op: Option<String>,
    /// Passed to the op as a CBOR map; run config is layered on top.
    #[serde(default)]
    pub config: toml::Table,
    /// Input name -> where its value comes from.
    #[serde(default)]
    pub inputs: IndexMap<String, InputSpec>,
    /// Host directories the op may open. Nothing is granted by default.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Names of host environment variables the op may read. None by default.
    #[serde(default)]
    pub env: Vec<String>,
    /// Limits of this op, over the job's `[limits]`.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Retry policy of this op, over the job's `[retry]`.
    #[serde(default)]
    pub retry: RetrySpec,
    /// Tags of this op's steps, over the job's.
    #[serde(default)]
    pub tags: Tags,
    /// Most steps (clones) of this op running at once.
    pub max_concurrent: Option<Cap>,
}

/// `[[ops.NAME.dirs]]`: a host directory made visible to the op.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// Host directory, relative to the job file.
    pub host: PathBuf,
    /// Where the op sees it, e.g. `/data`.
    pub guest: String,
    /// Read-only unless set.
    #[serde(default)]
    pub writable: bool,
    /// For a tenant's job on a server: the root (one of the tenant's `--allow-dir`) that
    /// `host` must be opened beneath when the step starts. Set while parsing, never read from
    /// the job file.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
}

/// Where an input's value comes from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawInput")]
pub enum InputSpec {
    /// `{ from = "op", output = "name" }`: a non-dynamic output of another op. When that op is
    /// mapped, this op is mapped with it (a chained `map`) and keeps the mapping key.
    From(OutputRef),
    /// `{ map = "op", output = "name" }`: one clone of this op per value of a dynamic output.
    Map(OutputRef),
    /// `{ map = "op", zip = true }` beside another `map`: the value with the same mapping key
    /// from a second dynamic output (one clone per key, not one per pair).
    Zip(OutputRef, Unmatched),
    /// `{ collect = "op", output = "name" }`: the list of all values of a dynamic output, or of
    /// all clones of a mapped op, in the order the mapping keys were emitted.
    Collect(OutputRef, CollectSpec),
    /// `{ failures = "op" }`: the clones of a mapped op that a partial-success collect went
    /// without, as a map from mapping key to error.
    Failures(OutputRef),
    /// `{ value = ... }`: a literal, passed as CBOR.
    Value(toml::Value),
}

/// How a collect gathers clones.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CollectSpec {
    /// `by_key = true`: a map from mapping key to value instead of a list.
    pub by_key: bool,
    /// `min_success`: run once the clones are done if this many succeeded, without the
    /// failed ones; `None` skips the collect on any failed clone (Dagster's rule).
    pub min_success: Option<MinSuccess>,
}

/// How many clones must succeed for a partial-success collect to run.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum MinSuccess {
    /// An integer: at least this many clones.
    Count(u64),
    /// A fraction in (0, 1]: at least this share of the clones (rounded up).
    Share(f64),
}

impl MinSuccess {
    /// Whether `succeeded` of `total` clones meet the bar.
    pub fn met(self, succeeded: usize, total: usize) -> bool {
        match self {
            MinSuccess::Count(count) => succeeded as u64 >= count,
            MinSuccess::Share(share) => succeeded as f64 >= (share * total as f64).ceil(),
        }
    }
}

impl std::fmt::Display for MinSuccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MinSuccess::Count(count) => write!(f, "{count}"),
            MinSuccess::Share(share) => write!(f, "{}%", share * 100.0),
        }
    }
}

/// What a zipped clone does when its key has no value on one side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmatched {
    /// The clone fails (the default): keys that do not match are a bug upstream.
    #[default]
    Fail,
    /// The clone is skipped, as Dagster skips a step whose input was not produced.
    Skip,
}

/// A reference to an op's output; `output` may be left out when the op has one output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRef {
    pub op: String,
    pub output: Option<String>,
}

impl InputSpec {
    /// The op output the input reads, unless it is a literal.
    pub fn reference(&self) -> Option<&OutputRef> {
        match self {
            InputSpec::From(r)
            | InputSpec::Map(r)
            | InputSpec::Zip(r, _)
            | InputSpec::Collect(r, _)
            | InputSpec::Failures(r) => Some(r),
            InputSpec::Value(_) => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    from: Option<String>,
    map: Option<String>,
    collect: Option<String>,
    failures: Option<String>,
    output: Option<String>,
    value: Option<toml::Value>,
    zip: Option<bool>,
    unmatched: Option<Unmatched>,
    by_key: Option<bool>,
    min_success: Option<MinSuccess>,
}

impl TryFrom<RawInput> for InputSpec {
    type Error = String;

    fn try_from(raw: RawInput) -> Result<Self, String> {
        let output = raw.output;
        let reference = |op| OutputRef {
            op,
            output: output.clone(),
        };
        let spec = match (raw.from, raw.map, raw.collect, raw.failures, raw.value) {
            (Some(op), None, None, None, None) => InputSpec::From(reference(op)),
            (None, Some(op), None, None, None) => match (raw.zip, raw.unmatched) {
                (Some(true), unmatched) => {
                    InputSpec::Zip(reference(op), unmatched.unwrap_or_default())
                }
                (_, Some(_)) => return Err("`unmatched` goes with `zip = true`".to_string()),
                (_, None) => InputSpec::Map(reference(op)),
            },
            (None, None, Some(op), None, None) => {
                if let Some(MinSuccess::Share(share)) = raw.min_success
                    && !(share > 0.0 && share <= 1.0)
                {
                    return Err(format!(
                        "`min_success` is a whole number of clones or a share in (0, 1], not {share}"
                    ));
                }
                InputSpec::Collect(
                    reference(op),
                    CollectSpec {
                        by_key: raw.by_key.unwrap_or(false),
                        min_success: raw.min_success,
                    },
                )
            }
            (None, None, None, Some(op), None) => InputSpec::Failures(reference(op)),
            (None, None, None, None, Some(value)) if output.is_none() => InputSpec::Value(value),
            (None, None, None, None, Some(_)) => {
                return Err("`output` cannot go with `value`".to_string());
            }
            _ => {
                return Err(
                    "an input needs exactly one of `from`, `map`, `collect`, `failures` or `value`"
                        .to_string(),
                );
            }
        };
        let misplaced = [
            (
                "zip",
                raw.zip.is_some() && !matches!(spec, InputSpec::Zip(..) | InputSpec::Map(_)),
                "`map`",
            ),
            (
                "by_key",
                raw.by_key.is_some() && !matches!(spec, InputSpec::Collect(..)),
                "`collect`",
            ),
            (
                "min_success",
                raw.min_success.is_some() && !matches!(spec, InputSpec::Collect(..)),
                "`collect`",
            ),
        ];
        match misplaced.iter().find(|(_, bad, _)| *bad) {
            Some((field, _, with)) => Err(format!("`{field}` goes with {with}")),
            None => Ok(spec),
        }
    }
}

/// `[execution]`: how the run is executed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    /// Most steps running at once; defaults to the number of cores.
    pub max_concurrent: Option<usize>,
    /// Wasm stack of every step, e.g. `"1MiB"`; defaults to 512 KiB. Deep recursion past it
    /// fails the step with a stack overflow.
    pub wasm_stack: Option<ByteSize>,
    /// At most `limit` steps with a tag running at once.
    pub tag_concurrency_limits: Option<Vec<TagConcurrencyLimit>>,
}

/// `--config run.toml`: settings layered over the job for one run (Dagster's run config).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Op name -> config to merge over the op's config.
    #[serde(default)]
    pub ops: IndexMap<String, RunOpConfig>,
    /// Overrides `[execution]` settings that are set here.
    #[serde(default)]
    pub execution: Execution,
    /// Tags of the run, over the job's and every op's.
    #[serde(default)]
    pub tags: Tags,
}

/// `[ops.NAME]` in a run config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunOpConfig {
    #[serde(default)]
    pub config: toml::Table,
    /// Input name -> value, over the job file's (see [`crate::inputs`]).
    #[serde(default)]
    pub inputs: toml::Table,
}

/// A job file after loading: the job, with paths resolved, and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedJob {
    pub name: String,
    pub job: Job,
}

impl LoadedJob {
    /// Reads and parses `path`, resolving component and directory paths against its folder.
    pub fn load(path: &Path) -> Result<Self, JobError> {
        Self::parse(&read(path)?, path)
    }

    /// Parses `text`, the job file at `path` (read now, or recorded when a run started),
    /// resolving component and directory paths against that file's folder.
    pub fn parse(text: &str, path: &Path) -> Result<Self, JobError> {
        Self::parse_confined(text, path, None)
    }

    /// The job in `text` (the job file at `path`) as written, checking nothing on disk.
    pub fn parse_text_only(text: &str, path: &Path) -> Result<Job, JobError> {
        parse_text(text, path, "job file")
    }

    /// [`LoadedJob::parse`]; with `roots`, every directory granted must lie under one of them
    /// (canonical paths), checked before the file system is asked anything about it, and again
    /// once symlinks are resolved.
    pub fn parse_confined(
        text: &str,
        path: &Path,
        roots: Option<&[PathBuf]>,
    ) -> Result<Self, JobError> {
        let mut job: Job = parse_text(text, path, "job file")?;
        let base = path.parent().unwrap_or(Path::new("."));
        for component in job.components.values_mut() {
            for file in [&mut component.path, &mut component.source]
                .into_iter()
                .flatten()
            {
                *file = base.join(&*file);
            }
        }
        for (name, op) in &mut job.ops {
            for dir in &mut op.dirs {
                dir.host = base.join(&dir.host);
                match roots {
                    Some(roots) => confine(name, dir, roots)?,
                    None => check_grant(name, dir)?,
                }
            }
        }
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        let name = job
            .job
            .name
            .clone()
            .or(stem)
            .unwrap_or_else(|| "job".to_string());
        Ok(LoadedJob { name, job })
    }

    /// Layers a run config over the job: op config tables are merged key by key (nested tables
    /// recursively), execution settings replace the job's, tags are added to the run's.
    pub fn apply(&mut self, run: RunConfig) -> Result<(), JobError> {
        for (name, op) in run.ops {
            let spec = self
                .job
                .ops
                .get_mut(&name)
                .ok_or_else(|| JobError::UnknownOpInRunConfig(name.clone()))?;
            merge(&mut spec.config, op.config);
        }
        let execution = &mut self.job.execution;
        execution.max_concurrent = run.execution.max_concurrent.or(execution.max_concurrent);
        execution.wasm_stack = run.execution.wasm_stack.or(execution.wasm_stack);
        if let Some(limits) = run.execution.tag_concurrency_limits {
            execution.tag_concurrency_limits = Some(limits);
        }
        self.tag(&run.tags);
        Ok(())
    }
}

impl LoadedJob {
    /// Refuses a grant of `protected` (the run store, with the compiled-component cache), of a
    /// directory inside it, or of one that contains it: an op that could write there could
    /// corrupt recorded runs or plant machine code the host would load.
    pub fn check_grants_avoid(&self, protected: &Path) -> Result<(), JobError> {
        let protected = canonical(protected);
        for (name, op) in &self.job.ops {
            for dir in &op.dirs {
                let host = canonical(&dir.host);
                if host.starts_with(&protected) || protected.starts_with(&host) {
                    return Err(JobError::BadGrant {
                        op: name.clone(),
                        host: dir.host.clone(),
                        reason: format!(
                            "it overlaps the run store `{}`, which ops may not reach",
                            protected.display()
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// `path` with symlinks and `..` resolved, or as given when it does not exist yet.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// `path` made absolute with `.` and `..` resolved by their names, asking the file system
/// nothing.
fn lexical(path: &Path) -> PathBuf {
    let mut resolved = PathBuf::new();
    for part in std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .components()
    {
        match part {
            std::path::Component::ParentDir => {
                resolved.pop();
            }
            std::path::Component::CurDir => {}
            part => resolved.push(part),
        }
    }
    resolved
}

/// Confines a grant to `roots`: its path, resolved by name, must lie under one of them, and it
/// must open as a directory beneath that root (symlinks included). Whatever the reason it does
/// not, the message is the same, so that a tenant learns nothing of the server's files. The
/// root is kept on the grant for the step to open the directory beneath it again.
fn confine(op: &str, dir: &mut DirGrant, roots: &[PathBuf]) -> Result<(), JobError> {
    let resolved = lexical(&dir.host);
    let Some(root) = roots.iter().find(|root| resolved.starts_with(root)) else {
        return Err(outside(op, dir, roots));
    };
    dir.host = resolved;
    dir.root = Some(root.clone());
    check_guest_path(op, dir)?;
    #[cfg(target_os = "linux")]
    let opens = crate::beneath::open(root, &dir.host).is_ok();
    #[cfg(not(target_os = "linux"))]
    let opens = false;
    if opens {
        Ok(())
    } else {
        Err(JobError::BadGrant {
            op: op.to_string(),
            host: dir.host.clone(),
            reason: "it is not an existing directory beneath the directories this tenant may \
                     grant (symlinks may not lead out of them)"
                .to_string(),
        })
    }
}

/// The refusal of a grant outside every root.
fn outside(op: &str, dir: &DirGrant, roots: &[PathBuf]) -> JobError {
    let allowed = if roots.is_empty() {
        "this tenant may grant no directory".to_string()
    } else {
        let roots: Vec<String> = roots
            .iter()
            .map(|root| format!("`{}`", root.display()))
            .collect();
        format!(
            "it is outside the directories this tenant may grant ({})",
            roots.join(", ")
        )
    };
    JobError::BadGrant {
        op: op.to_string(),
        host: dir.host.clone(),
        reason: allowed,
    }
}

/// A grant must name an existing host directory and an absolute guest path.
fn check_grant(op: &str, dir: &DirGrant) -> Result<(), JobError> {
    if !dir.host.is_dir() {
        return Err(JobError::BadGrant {
            op: op.to_string(),
            host: dir.host.clone(),
            reason: "it is not an existing directory".to_string(),
        });
    }
    check_guest_path(op, dir)
}

fn check_guest_path(op: &str, dir: &DirGrant) -> Result<(), JobError> {
    if !dir.guest.starts_with('/') {
        return Err(JobError::BadGrant {
            op: op.to_string(),
            host: dir.host.clone(),
            reason: format!("guest path `{}` must be absolute", dir.guest),
        });
    }
    Ok(())
}

/// Reads a run config file.
pub fn load_run_config(path: &Path) -> Result<RunConfig, JobError> {
    parse_run_config(&read(path)?, path)
}

/// Parses `text`, the run config at `path`.
pub fn parse_run_config(text: &str, path: &Path) -> Result<RunConfig, JobError> {
    parse_text(text, path, "run config")
}

/// Reads a job file or run config.
pub fn read(path: &Path) -> Result<String, JobError> {
    std::fs::read_to_string(path).map_err(|source| JobError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_text<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
    what: &'static str,
) -> Result<T, JobError> {
    toml::from_str(text).map_err(|source| JobError::Parse {
        what,
        path: path.to_path_buf(),
        source: TomlError(plain_types(&source.to_string())),
    })
}

/// toml's message for a job file, with the line, column and snippet it shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TomlError(String);

/// `message` with the Rust type names serde puts in it (`expected u64`) said in words.
fn plain_types(message: &str) -> String {
    const WORDS: [(&str, &str); 7] = [
        ("expected usize", "expected a whole number of 0 or more"),
        ("expected u64", "expected a whole number of 0 or more"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected i64", "expected a whole number"),
        (
            "expected parsable string",
            "expected a size such as `64MiB`",
        ),
    ];
    WORDS
        .iter()
        .fold(message.to_string(), |text, (rust, words)| {
            text.replace(rust, words)
        })
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(over)) => merge(inner, over),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Job, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn parses_every_input_kind() {
        let job = parse(
            r#"
            [components.c]
            path = "c.wasm"
            [ops.a]
            component = "c"
            inputs.x = { from = "b" }
            inputs.y = { map = "b", output = "values" }
            inputs.z = { collect = "b" }
            inputs.w = { value = [1, 2] }
            "#,
        )
        .unwrap();
        let inputs = &job.ops["a"].inputs;
        let b = |output: Option<&str>| OutputRef {
            op: "b".into(),
            output: output.map(str::to_string),
        };
        assert_eq!(inputs["x"], InputSpec::From(b(None)));
        assert_eq!(inputs["y"], InputSpec::Map(b(Some("values"))));
        assert_eq!(
            inputs["z"],
            InputSpec::Collect(b(None), CollectSpec::default())
        );
        assert_eq!(
            inputs["w"],
            InputSpec::Value(toml::Value::Array(vec![1.into(), 2.into()]))
        );
    }

    #[test]
    fn collect_zip_and_failures_options_parse_and_misplaced_ones_are_refused() {
        let input = |text: &str| {
            parse(&format!(
                "[components.c]\npath = 'c.wasm'\n[ops.a]\ncomponent = 'c'\ninputs.x = {text}\n"
            ))
            .map(|job| job.ops["a"].inputs["x"].clone())
            .map_err(|err| format!("{:#}", anyhow::Error::from(err)))
        };
        let b = OutputRef {
            op: "b".into(),
            output: None,
        };
        assert_eq!(
            input("{ collect = 'b', by_key = true, min_success = 0.9 }").unwrap(),
            InputSpec::Collect(
                b.clone(),
                CollectSpec {
                    by_key: true,
                    min_success: Some(MinSuccess::Share(0.9)),
                }
            )
        );
        assert_eq!(
            input("{ collect = 'b', min_success = 3 }").unwrap(),
            InputSpec::Collect(
                b.clone(),
                CollectSpec {
                    by_key: false,
                    min_success: Some(MinSuccess::Count(3)),
                }
            )
        );
        assert_eq!(
            input("{ map = 'b', zip = true, unmatched = 'skip' }").unwrap(),
            InputSpec::Zip(b.clone(), Unmatched::Skip)
        );
        assert_eq!(
            input("{ map = 'b', zip = true }").unwrap(),
            InputSpec::Zip(b.clone(), Unmatched::Fail)
        );
        assert_eq!(input("{ failures = 'b' }").unwrap(), InputSpec::Failures(b));
        for (bad, says) in [
            (
                "{ collect = 'b', min_success = 1.5 }",
                "a share in (0, 1], not 1.5",
            ),
            ("{ collect = 'b', min_success = -1 }", "min_success"),
            (
                "{ from = 'b', by_key = true }",
                "`by_key` goes with `collect`",
            ),
            (
                "{ map = 'b', min_success = 1 }",
                "`min_success` goes with `collect`",
            ),
            ("{ collect = 'b', zip = true }", "`zip` goes with `map`"),
            (
                "{ map = 'b', unmatched = 'skip' }",
                "`unmatched` goes with `zip = true`",
            ),
            ("{ map = 'b', zip = true, unmatched = 'drop' }", "unmatched"),
        ] {
            let err = input(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert!(MinSuccess::Share(0.9).met(9, 10));
        assert!(!MinSuccess::Share(0.9).met(8, 10));
        assert!(MinSuccess::Share(0.5).met(0, 0));
        assert!(MinSuccess::Count(2).met(2, 10));
        assert!(!MinSuccess::Count(2).met(1, 1));
    }

    #[test]
    fn unknown_fields_are_rejected_with_line_and_column() {
        let err = parse("[components.c]\npath = 'c.wasm'\n[ops.a]\ncomponent = 'c'\nretries = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 5, column 1"), "{err}");
        assert!(err.contains("unknown field `retries`"), "{err}");
    }

    #[test]
    fn ambiguous_inputs_are_rejected_with_position() {
        let err = parse(
            "[components.c]\npath = 'c.wasm'\n[ops.a]\ncomponent = 'c'\ninputs.x = { from = 'b', map = 'b' }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 5"), "{err}");
        assert!(
            err.contains("exactly one of `from`, `map`, `collect`, `failures` or `value`"),
            "{err}"
        );
    }

    #[test]
    fn run_config_merges_nested_tables_and_rejects_unknown_ops() {
        let job = parse(
            "[components.c]\npath = 'c.wasm'\n[ops.a]\ncomponent = 'c'\nconfig = { n = 1, deep = { keep = 1, change = 1 } }\n",
        )
        .unwrap();
        let mut loaded = LoadedJob {
            name: "j".into(),
            job,
        };
        let run: RunConfig = toml::from_str(
            "execution.max_concurrent = 3\n[ops.a.config]\nn = 2\ndeep = { change = 2 }\n",
        )
        .unwrap();
        loaded.apply(run).unwrap();
        let config = &loaded.job.ops["a"].config;
        assert_eq!(config["n"].as_integer(), Some(2));
        assert_eq!(config["deep"]["keep"].as_integer(), Some(1));
        assert_eq!(config["deep"]["change"].as_integer(), Some(2));
        assert_eq!(loaded.job.execution.max_concurrent, Some(3));

        let unknown: RunConfig = toml::from_str("[ops.nope.config]\nx = 1\n").unwrap();
        let err = loaded.apply(unknown).unwrap_err();
        assert!(matches!(err, JobError::UnknownOpInRunConfig(ref op) if op == "nope"));
    }

    #[test]
    fn type_errors_name_no_rust_types() {
        for (setting, words) in [
            (
                "limits.max_fanout = 'x'",
                "expected a whole number of 0 or more",
            ),
            (
                "retry.max_retries = 1.5",
                "expected a whole number from 0 to 4294967295",
            ),
            ("limits.memory = 'lots'", "expected a size such as `64MiB`"),
        ] {
            let text =
                format!("{setting}\n[components.c]\npath = 'c.wasm'\n[ops.a]\ncomponent = 'c'\n");
            let err = LoadedJob::parse_text_only(&text, Path::new("job.toml")).unwrap_err();
            let cause = std::error::Error::source(&err).map(ToString::to_string);
            let err = cause.unwrap_or_default();
            assert!(err.contains(words), "{setting}: {err}");
            assert!(!err.contains("expected u"), "{setting}: {err}");
        }
    }
}

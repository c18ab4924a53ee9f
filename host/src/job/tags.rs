//! Tags (Dagster's tags): string key-value pairs on a job (`[job] tags`), an op
//! (`[ops.NAME] tags`) and a run (`[tags]` in run config, `host run --tag k=v`). A step's tags
//! are the job's, overridden by its op's, overridden by the run's: run tags apply to every step.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The longest tag key, in bytes.
pub const MAX_KEY_LEN: usize = 64;

/// The longest tag value, in bytes: a tag labels a run, it does not carry data.
pub const MAX_VALUE_LEN: usize = 1024;

/// Why a tag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("tag key `{key}` is invalid: {reason}")]
    Key { key: String, reason: KeyProblem },
    #[error("tag `{key}` has a value of {len} bytes; the limit is {MAX_VALUE_LEN}")]
    ValueTooLong { key: String, len: usize },
    #[error("tag `{0}` is not `KEY=VALUE`")]
    NotAPair(String),
}

/// What is wrong with a tag key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    #[error("it is empty")]
    Empty,
    #[error("it is {0} bytes long; the limit is {MAX_KEY_LEN}")]
    TooLong(usize),
    #[error("it contains {0:?}; only ASCII letters, digits, `_`, `-`, `.` and `/` are allowed")]
    BadChar(char),
}

/// Checks a tag key: 1 to [`MAX_KEY_LEN`] ASCII letters, digits, `_`, `-`, `.` or `/` (so
/// that `team`, `dagster/priority` and `db.pool` are keys, and `k=v` reads back unambiguously).
pub fn check_key(key: &str) -> Result<(), TagError> {
    let problem = if key.is_empty() {
        Some(KeyProblem::Empty)
    } else if key.len() > MAX_KEY_LEN {
        Some(KeyProblem::TooLong(key.len()))
    } else {
        key.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "_-./".contains(*c)))
            .map(KeyProblem::BadChar)
    };
    match problem {
        Some(reason) => Err(TagError::Key {
            key: key.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Checks a tag: its key, and the length of its value.
pub fn check(key: &str, value: &str) -> Result<(), TagError> {
    check_key(key)?;
    if value.len() > MAX_VALUE_LEN {
        return Err(TagError::ValueTooLong {
            key: key.to_string(),
            len: value.len(),
        });
    }
    Ok(())
}

/// Reads `KEY=VALUE` (the value may be empty or hold `=`), as `--tag` takes it.
pub fn parse_pair(text: &str) -> Result<(String, String), TagError> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| TagError::NotAPair(text.to_string()))?;
    check(key, value)?;
    Ok((key.to_string(), value.to_string()))
}

/// Checked tags, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, String>",
    into = "BTreeMap<String, String>"
)]
pub struct Tags(BTreeMap<String, String>);

impl TryFrom<BTreeMap<String, String>> for Tags {
    type Error = TagError;

    fn try_from(tags: BTreeMap<String, String>) -> Result<Tags, TagError> {
        for (key, value) in &tags {
            check(key, value)?;
        }
        Ok(Tags(tags))
    }
}

impl From<Tags> for BTreeMap<String, String> {
    fn from(tags: Tags) -> Self {
        tags.0
    }
}

impl FromIterator<(String, String)> for Tags {
    /// Tags already checked (by [`parse_pair`]); a later pair overrides an earlier one.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Tags {
        Tags(pairs.into_iter().collect())
    }
}

impl Tags {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// These tags with `over`'s on top: a key in both takes `over`'s value.
    pub fn overlaid(&self, over: &Tags) -> Tags {
        let mut tags = self.0.clone();
        tags.extend(over.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        Tags(tags)
    }

    /// Whether every pair of `wanted` is among these tags.
    pub fn contains_all(&self, wanted: &[(String, String)]) -> bool {
        wanted.iter().all(|(k, v)| self.get(k) == Some(v))
    }

    /// The tags as (key, value) pairs, sorted by key.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl super::Job {
    /// The tags a run of this job is recorded with: the job's, with the run's over them.
    pub fn tags(&self) -> Tags {
        self.job.tags.overlaid(&self.run_tags)
    }

    /// The tags of a step of `op`: the job's, overridden by the op's, overridden by the run's
    /// (as in Dagster, run tags apply to every step).
    pub fn step_tags(&self, op: &super::OpSpec) -> Vec<(String, String)> {
        self.job
            .tags
            .overlaid(&op.tags)
            .overlaid(&self.run_tags)
            .pairs()
    }
}

impl super::LoadedJob {
    /// Adds `tags` to the run's, over those it has.
    pub fn tag(&mut self, tags: &Tags) {
        self.job.run_tags = self.job.run_tags.overlaid(tags);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_charset() {
        for key in [
            "team",
            "dagster/priority",
            "db.pool",
            "a-b_C9",
            &"k".repeat(64),
        ] {
            assert_eq!(check_key(key), Ok(()), "{key}");
        }
        let problem = |key: &str| match check_key(key) {
            Err(TagError::Key { reason, .. }) => reason,
            other => panic!("{key}: {other:?}"),
        };
        assert_eq!(problem(""), KeyProblem::Empty);
        assert_eq!(problem(&"k".repeat(65)), KeyProblem::TooLong(65));
        assert_eq!(problem("a b"), KeyProblem::BadChar(' '));
        assert_eq!(problem("a=b"), KeyProblem::BadChar('='));
        assert_eq!(problem("é"), KeyProblem::BadChar('é'));
    }

    #[test]
    fn errors_quote_the_bad_key() {
        let err = check_key("bad key").unwrap_err().to_string();
        assert_eq!(
            err,
            "tag key `bad key` is invalid: it contains ' '; only ASCII letters, digits, `_`, \
             `-`, `.` and `/` are allowed"
        );
    }

    #[test]
    fn pairs_split_at_the_first_equals_sign() {
        assert_eq!(parse_pair("team=data"), Ok(("team".into(), "data".into())));
        assert_eq!(parse_pair("q=a=b"), Ok(("q".into(), "a=b".into())));
        assert_eq!(parse_pair("empty="), Ok(("empty".into(), String::new())));
        assert_eq!(parse_pair("team"), Err(TagError::NotAPair("team".into())));
        assert!(matches!(parse_pair("=x"), Err(TagError::Key { .. })));
        let long = format!("k={}", "v".repeat(MAX_VALUE_LEN + 1));
        assert!(matches!(
            parse_pair(&long),
            Err(TagError::ValueTooLong { len: 1025, .. })
        ));
    }

    #[test]
    fn overlaid_tags_take_the_upper_value() {
        let job: Tags = [("team", "data"), ("db", "pg")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into_iter()
            .collect();
        let run: Tags = [("db".to_string(), "mysql".to_string())]
            .into_iter()
            .collect();
        let tags = job.overlaid(&run);
        assert_eq!(
            tags.pairs(),
            vec![
                ("db".to_string(), "mysql".to_string()),
                ("team".to_string(), "data".to_string())
            ]
        );
        assert!(tags.contains_all(&[("db".into(), "mysql".into())]));
        assert!(!tags.contains_all(&[("db".into(), "pg".into())]));
    }

    #[test]
    fn step_tags_layer_job_then_op_then_run() {
        let text = "[job]\ntags = { team = 'data', db = 'pg', tier = 'a' }\n\
                    [components.c]\npath = 'c.wasm'\n\
                    [ops.a]\ncomponent = 'c'\ntags = { db = 'mysql', tier = 'b' }\n\
                    [ops.b]\ncomponent = 'c'\n";
        let job = super::super::LoadedJob::parse_text_only(text, std::path::Path::new("j.toml"));
        let mut loaded = super::super::LoadedJob {
            name: "j".into(),
            job: job.unwrap(),
        };
        let run: super::super::RunConfig = toml::from_str("tags = { tier = 'c' }").unwrap();
        loaded.apply(run).unwrap();
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        let job = &loaded.job;
        assert_eq!(
            job.step_tags(&job.ops["a"]),
            vec![pair("db", "mysql"), pair("team", "data"), pair("tier", "c")]
        );
        assert_eq!(
            job.step_tags(&job.ops["b"]),
            vec![pair("db", "pg"), pair("team", "data"), pair("tier", "c")]
        );
        assert_eq!(
            job.tags().pairs(),
            vec![pair("db", "pg"), pair("team", "data"), pair("tier", "c")]
        );
        let launch: Tags = [pair("tier", "d")].into_iter().collect();
        loaded.tag(&launch);
        assert_eq!(loaded.job.tags().get("tier"), Some("d"));
    }

    #[test]
    fn parsing_checks_every_key() {
        let err = toml::from_str::<BTreeMap<String, Tags>>("tags = { 'no good' = 'x' }")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tag key `no good` is invalid"), "{err}");
    }
}

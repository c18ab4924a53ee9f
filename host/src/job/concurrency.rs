//! Concurrency limits beyond `[execution] max_concurrent`, as Dagster's executor config has
//! them: `[[execution.tag_concurrency_limits]]` (at most `limit` steps with a tag at once) and
//! `[ops.NAME] max_concurrent` (at most that many steps of one op at once).

use serde::Deserialize;

use super::tags::{self, TagError};

/// A limit on how many steps run at once: a whole number of at least 1 (0 would hold its
/// steps back forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "usize")]
pub struct Cap(usize);

impl TryFrom<usize> for Cap {
    type Error = String;

    fn try_from(n: usize) -> Result<Cap, String> {
        if n == 0 {
            return Err("a concurrency limit must be at least 1, not 0".to_string());
        }
        Ok(Cap(n))
    }
}

impl Cap {
    pub fn get(self) -> usize {
        self.0
    }
}

/// Which steps with the tag key a [`TagConcurrencyLimit`] counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagMatch {
    /// Every step with the key, whatever its value: together at most `limit`.
    AnyValue,
    /// The steps whose value is this one.
    Value(String),
    /// The steps with the key, counted separately for each value.
    PerUniqueValue,
}

/// `[[execution.tag_concurrency_limits]]`: at most `limit` steps with tag `key` (and `value`)
/// run at once; the other steps are not held back by it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawTagLimit")]
pub struct TagConcurrencyLimit {
    pub key: String,
    pub matching: TagMatch,
    pub limit: Cap,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTagLimit {
    key: String,
    value: Option<String>,
    limit: Cap,
    #[serde(default)]
    per_unique_value: bool,
}

/// Why a tag concurrency limit cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error(transparent)]
    Tag(#[from] TagError),
    #[error(
        "the limit on tag `{key}` gives both `value` (`{value}`) and `per_unique_value`: a \
         limit counts one value, or each value separately"
    )]
    ValueAndPerUnique { key: String, value: String },
}

impl TryFrom<RawTagLimit> for TagConcurrencyLimit {
    type Error = LimitError;

    fn try_from(raw: RawTagLimit) -> Result<Self, LimitError> {
        let matching = match (raw.value, raw.per_unique_value) {
            (Some(value), true) => {
                return Err(LimitError::ValueAndPerUnique {
                    key: raw.key,
                    value,
                });
            }
            (Some(value), false) => {
                tags::check(&raw.key, &value)?;
                TagMatch::Value(value)
            }
            (None, per_unique) => {
                tags::check_key(&raw.key)?;
                if per_unique {
                    TagMatch::PerUniqueValue
                } else {
                    TagMatch::AnyValue
                }
            }
        };
        Ok(TagConcurrencyLimit {
            key: raw.key,
            matching,
            limit: raw.limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TagConcurrencyLimit, String> {
        #[derive(Deserialize)]
        struct Wrapper {
            limit: TagConcurrencyLimit,
        }
        toml::from_str::<Wrapper>(&format!("limit = {{ {text} }}"))
            .map(|w| w.limit)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_limit_matches_any_value_one_value_or_each_value() {
        let any = parse("key = 'db', limit = 2").unwrap();
        assert_eq!(any.matching, TagMatch::AnyValue);
        assert_eq!(any.limit.get(), 2);
        let one = parse("key = 'db', value = 'pg', limit = 1").unwrap();
        assert_eq!(one.matching, TagMatch::Value("pg".into()));
        let each = parse("key = 'db', limit = 1, per_unique_value = true").unwrap();
        assert_eq!(each.matching, TagMatch::PerUniqueValue);
    }

    #[test]
    fn bad_limits_are_refused_with_the_bad_value() {
        for (text, expected) in [
            ("key = 'db', limit = 0", "must be at least 1, not 0"),
            ("key = 'no good', limit = 1", "tag key `no good` is invalid"),
            (
                "key = 'db', value = 'pg', limit = 1, per_unique_value = true",
                "gives both `value` (`pg`) and `per_unique_value`",
            ),
            (
                "key = 'db', limit = 1, values = 'x'",
                "unknown field `values`",
            ),
            ("key = 'db'", "missing field `limit`"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}

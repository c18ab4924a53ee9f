//! Names users choose: op names, input and output names and mapping keys all follow Dagster's
//! rule `^[A-Za-z0-9_]+$`, so that step keys like `op[key]` can be read back unambiguously.

/// The longest name or mapping key accepted, in bytes. Dagster has no bound; one keeps step keys
/// printable and event lines small.
pub const MAX_LEN: usize = 128;

/// Why a name or mapping key was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum NameError {
    #[error("it is empty")]
    Empty,
    #[error("it is {0} bytes long; the limit is {MAX_LEN}")]
    TooLong(usize),
    #[error("it contains {0:?}; only ASCII letters, digits and `_` are allowed")]
    BadChar(char),
}

/// Checks `name` against `^[A-Za-z0-9_]+$` and [`MAX_LEN`].
pub fn check(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_LEN {
        return Err(NameError::TooLong(name.len()));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        Some(c) => Err(NameError::BadChar(c)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dagster_names() {
        for name in ["0", "num_1", "ABC_def_9", &"k".repeat(MAX_LEN)] {
            assert_eq!(check(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn rejects_what_dagster_rejects_and_overlong_keys() {
        assert_eq!(check(""), Err(NameError::Empty));
        assert_eq!(check("?"), Err(NameError::BadChar('?')));
        assert_eq!(check("foo.baz"), Err(NameError::BadChar('.')));
        assert_eq!(check("a-b"), Err(NameError::BadChar('-')));
        assert_eq!(check("é"), Err(NameError::BadChar('é')));
        assert_eq!(check("a]"), Err(NameError::BadChar(']')));
        assert_eq!(
            check(&"k".repeat(MAX_LEN + 1)),
            Err(NameError::TooLong(MAX_LEN + 1))
        );
    }
}

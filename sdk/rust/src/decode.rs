//! Decoding an op's config and inputs into its types, with errors that say where in the value
//! decoding failed: ciborium's own errors print as Rust debug text
//! (`Semantic(None, "invalid type: string, expected integer")`) and name no field.

use std::marker::PhantomData;

use ciborium::de::Error;
use serde::de::{Deserialize, DeserializeOwned, Deserializer};

/// Why a CBOR value is not the type an op asked for.
pub(crate) struct DecodeError {
    /// Where in the value, e.g. `chunk_size` or `[3].name`; empty when the value itself is
    /// wrong.
    path: String,
    message: String,
}

impl DecodeError {
    /// The error about value `what`, e.g. "input `num` at `[1]`: invalid type: ...", with `at`
    /// joining `what` and the path.
    pub(crate) fn describe(&self, what: &str, at: &str) -> String {
        match self.path.as_str() {
            "" => format!("{what}: {}", self.message),
            path => format!("{what} {at} `{path}`: {}", self.message),
        }
    }
}

/// Decodes CBOR `bytes` as a `T`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    ciborium::from_reader(bytes).map_err(|err| DecodeError {
        path: failing_path::<T>(bytes),
        message: message(&err),
    })
}

/// Where in `bytes` decoding a `T` fails: decoded again, on this error path only, with
/// `serde_path_to_error` tracking the path.
fn failing_path<T: DeserializeOwned>(bytes: &[u8]) -> String {
    match ciborium::from_reader::<AtPath<T>, _>(bytes) {
        Err(Error::Semantic(_, path)) => path,
        _ => String::new(),
    }
}

/// ciborium's error in words rather than as its debug text.
fn message(err: &Error<std::io::Error>) -> String {
    match err {
        Error::Io(err) => format!("invalid CBOR: {err}"),
        Error::Syntax(offset) => format!("invalid CBOR at byte {offset}"),
        Error::Semantic(_, message) => message.clone(),
        Error::RecursionLimitExceeded => "the value is nested too deeply".to_string(),
    }
}

/// Decodes a `T` and fails with nothing but the path where decoding it failed (empty at the
/// top): `deserialize` can only fail with the deserializer's own error type, so the path
/// leaves it as that error's message.
struct AtPath<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for AtPath<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_path_to_error::deserialize::<_, T>(deserializer) {
            Ok(_) => Ok(AtPath(PhantomData)),
            Err(err) if err.path().iter().next().is_none() => Err(serde::de::Error::custom("")),
            Err(err) => Err(serde::de::Error::custom(err.path())),
        }
    }
}

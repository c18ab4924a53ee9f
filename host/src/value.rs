//! Values as the host sees them: CBOR bytes. The host checks guest bytes are well-formed, builds
//! collected lists without decoding their items, and converts to and from TOML and JSON at the
//! edges.

use ciborium::Value;

/// Values by name (inputs or outputs), as CBOR.
pub type NamedValues = Vec<(String, Vec<u8>)>;

/// Values of a dynamic output by mapping key, in emission order, as CBOR.
pub type KeyedValues = Vec<(String, Vec<u8>)>;

/// How deep CBOR arrays and maps may nest in a value from a guest.
pub const MAX_DEPTH: usize = 64;

/// Why bytes from a guest are not one well-formed CBOR value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum CborError {
    #[error("invalid CBOR: {0}")]
    Malformed(String),
    #[error("invalid CBOR: {0} bytes follow the value")]
    TrailingBytes(usize),
}

/// Checks that `bytes` hold exactly one well-formed CBOR item (RFC 8949, Appendix C), nested
/// at most [`MAX_DEPTH`] deep. Nothing else is checked: the WIT promises ops that the host
/// routes any well-formed value.
pub fn check(bytes: &[u8]) -> Result<(), CborError> {
    cbor::parse(bytes, MAX_DEPTH).map(drop)
}

/// Encodes a CBOR value.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).expect("writing CBOR into a Vec cannot fail");
    bytes
}

/// Builds a CBOR array from already-encoded items without decoding them: how `collect` hands a
/// list of clone results to the consuming step.
pub fn array<'a>(items: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut bytes = header(4, items.len() as u64);
    for item in items {
        bytes.extend_from_slice(item);
    }
    bytes
}

/// Builds a CBOR map from text keys to already-encoded values, in the order given: how a
/// `by_key` collect hands clone results to the consuming step.
pub fn map<'a>(entries: impl ExactSizeIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut bytes = header(5, entries.len() as u64);
    for (key, value) in entries {
        bytes.extend(header(3, key.len() as u64));
        bytes.extend_from_slice(key.as_bytes());
        bytes.extend_from_slice(value);
    }
    bytes
}

/// The head of a CBOR item of major type `major` with argument `len`, in the shortest form
/// RFC 8949 allows.
fn header(major: u8, len: u64) -> Vec<u8> {
    let major = major << 5;
    let mut bytes = Vec::with_capacity(9);
    match len {
        0..=23 => bytes.push(major | len as u8),
        24..=0xff => bytes.extend([major | 24, len as u8]),
        0x100..=0xffff => {
            bytes.push(major | 25);
            bytes.extend((len as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            bytes.push(major | 26);
            bytes.extend((len as u32).to_be_bytes());
        }
        _ => {
            bytes.push(major | 27);
            bytes.extend(len.to_be_bytes());
        }
    }
    bytes
}

/// Converts a TOML value (literal input or op config) to CBOR. Datetimes become RFC 3339 text.
pub fn from_toml(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::Text(s.clone()),
        toml::Value::Integer(i) => Value::Integer((*i).into()),
        toml::Value::Float(f) => Value::Float(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::Text(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(from_toml).collect()),
        toml::Value::Table(table) => Value::Map(
            table
                .iter()
                .map(|(k, v)| (Value::Text(k.clone()), from_toml(v)))
                .collect(),
        ),
    }
}

/// Renders CBOR bytes as JSON for events and `host run` output, by the rules in
/// [`json`]. Bytes that are not CBOR render as JSON `null` (the host never stores such values;
/// this keeps display total).
pub fn to_json(bytes: &[u8]) -> serde_json::Value {
    // One level deeper than guests may send: a collected list holds values of the full depth.
    cbor::parse(bytes, MAX_DEPTH + 1).map_or(serde_json::Value::Null, |item| json::render(&item))
}

/// A value's JSON, cut to about 80 characters, for error messages.
pub fn preview(bytes: &[u8]) -> String {
    preview_within(bytes, 80)
}

/// `bytes` as JSON text, cut after `width` characters (marked `...`).
pub fn preview_within(bytes: &[u8], width: usize) -> String {
    let text = to_json(bytes).to_string();
    match text.char_indices().nth(width) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

mod cbor;
mod json;

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// `value` encoded by ciborium, as guests encode theirs.
    pub(super) fn cbor<T: serde::Serialize>(value: &T) -> Vec<u8> {
        let mut bytes = Vec::new();
        ciborium::into_writer(value, &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn array_matches_ciborium_for_every_length_class() {
        for len in [0usize, 1, 23, 24, 255, 256, 65_535, 65_536] {
            let items: Vec<Vec<u8>> = (0..len as u64).map(|i| cbor(&(i % 7))).collect();
            let built = array(items.iter().map(Vec::as_slice));
            let expected = cbor(&(0..len as u64).map(|i| i % 7).collect::<Vec<_>>());
            assert_eq!(built, expected, "length {len}");
        }
    }

    #[test]
    fn map_matches_ciborium_and_keeps_the_order_given() {
        for len in [0usize, 3, 24, 300] {
            let keys: Vec<String> = (0..len).map(|i| format!("k{}", len - i)).collect();
            let values: Vec<Vec<u8>> = (0..len as u64).map(|i| cbor(&i)).collect();
            let built = map(keys
                .iter()
                .map(String::as_str)
                .zip(values.iter().map(Vec::as_slice)));
            let expected: indexmap::IndexMap<&str, u64> =
                keys.iter().map(String::as_str).zip(0..len as u64).collect();
            assert_eq!(built, cbor(&expected), "length {len}");
        }
        let long_key = "k".repeat(300);
        assert_eq!(
            map([(long_key.as_str(), cbor(&1).as_slice())].into_iter()),
            cbor(&indexmap::IndexMap::from([(long_key.as_str(), 1)]))
        );
    }

    #[test]
    fn check_rejects_truncated_trailing_and_too_deep_values() {
        assert!(matches!(check(&[0xb8, 0x18]), Err(CborError::Malformed(_))));
        assert_eq!(check(&[0x01, 0x02]), Err(CborError::TrailingBytes(1)));
        let mut deep = vec![0x81; MAX_DEPTH + 1];
        deep.push(0x00);
        assert!(matches!(check(&deep), Err(CborError::Malformed(_))));
        assert_eq!(check(&deep[1..]), Ok(()));
        assert_eq!(check(&cbor(&vec![1, 2])), Ok(()));
    }

    #[test]
    fn preview_cuts_long_values() {
        assert_eq!(preview(&cbor(&"short")), "\"short\"");
        let long = preview(&cbor(&"x".repeat(500)));
        assert_eq!(long.len(), 83);
        assert!(long.ends_with("..."));
    }

    #[test]
    fn json_rendering() {
        let value: toml::Value =
            toml::from_str("a = [1, -2.5, 'x', true]\nb = { c = 1979-05-27 }").unwrap();
        let json = to_json(&encode(&from_toml(&value)));
        assert_eq!(
            json,
            serde_json::json!({"a": [1, -2.5, "x", true], "b": {"c": "1979-05-27"}})
        );
        assert_eq!(to_json(&cbor(&u64::MAX)), serde_json::json!(u64::MAX));
    }
}

/// Serde for [`NamedValues`] with each value as one CBOR byte string (not an array of
/// integers): step calls and step messages crossing to workers.
pub mod named_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::NamedValues;

    pub fn serialize<S: Serializer>(values: &NamedValues, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            values
                .iter()
                .map(|(name, value)| (name, serde_bytes::Bytes::new(value))),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NamedValues, D::Error> {
        let values: Vec<(String, serde_bytes::ByteBuf)> = Deserialize::deserialize(d)?;
        Ok(values
            .into_iter()
            .map(|(name, value)| (name, value.into_vec()))
            .collect())
    }

    /// [`named_bytes`](self) for a step's result.
    pub mod result {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        use super::NamedValues;

        struct Borrowed<'a>(&'a NamedValues);

        impl Serialize for Borrowed<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                super::serialize(self.0, s)
            }
        }

        #[derive(Deserialize)]
        struct Owned(#[serde(with = "super")] NamedValues);

        pub fn serialize<S: Serializer, E: Serialize>(
            result: &Result<NamedValues, E>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            result.as_ref().map(Borrowed).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>, E: Deserialize<'de>>(
            d: D,
        ) -> Result<Result<NamedValues, E>, D::Error> {
            Ok(Result::<Owned, E>::deserialize(d)?.map(|owned| owned.0))
        }
    }
}

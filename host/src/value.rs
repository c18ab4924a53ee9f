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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    #[error("invalid CBOR: {0}")]
    Malformed(String),
    #[error("invalid CBOR: {0} bytes follow the value")]
    TrailingBytes(usize),
}

/// Decodes exactly one CBOR value from `bytes`, nested at most [`MAX_DEPTH`] deep.
pub fn decode(bytes: &[u8]) -> Result<Value, CborError> {
    let mut rest = bytes;
    let value = ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_DEPTH).map_err(
        |err: ciborium::de::Error<std::io::Error>| CborError::Malformed(err.to_string()),
    )?;
    if !rest.is_empty() {
        return Err(CborError::TrailingBytes(rest.len()));
    }
    Ok(value)
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
    let len = items.len() as u64;
    let mut bytes = Vec::new();
    // Major type 4 (array) with the length in the shortest form RFC 8949 allows.
    match len {
        0..=23 => bytes.push(0x80 | len as u8),
        24..=0xff => bytes.extend([0x98, len as u8]),
        0x100..=0xffff => {
            bytes.push(0x99);
            bytes.extend((len as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            bytes.push(0x9a);
            bytes.extend((len as u32).to_be_bytes());
        }
        _ => {
            bytes.push(0x9b);
            bytes.extend(len.to_be_bytes());
        }
    }
    for item in items {
        bytes.extend_from_slice(item);
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

/// Renders CBOR bytes as JSON for events and `host run` output. Bytes that are not CBOR render
/// as JSON `null` (the host never stores such values; this keeps display total).
pub fn to_json(bytes: &[u8]) -> serde_json::Value {
    decode(bytes).map_or(serde_json::Value::Null, |value| json(&value))
}

fn json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Integer(i) => {
            let i = i128::from(*i);
            i64::try_from(i)
                .map(J::from)
                .or_else(|_| u64::try_from(i).map(J::from))
                .unwrap_or_else(|_| J::String(i.to_string()))
        }
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Bytes(bytes) => J::Array(bytes.iter().map(|b| J::from(*b)).collect()),
        Value::Text(s) => J::String(s.clone()),
        Value::Bool(b) => J::Bool(*b),
        Value::Null => J::Null,
        Value::Tag(_, inner) => json(inner),
        Value::Array(items) => J::Array(items.iter().map(json).collect()),
        Value::Map(pairs) => J::Object(
            pairs
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::Text(s) => s.clone(),
                        other => {
                            let mut key = String::new();
                            diagnostic(other, &mut key);
                            key
                        }
                    };
                    (key, json(v))
                })
                .collect(),
        ),
        _ => J::Null,
    }
}

/// Writes a non-text map key in CBOR diagnostic notation (RFC 8949 §8), e.g. `{1: [h'00']}`.
/// Written in one pass: rendering nested keys as JSON text inside JSON text would escape every
/// level again and grow exponentially with the depth (found by the `guest_cbor` fuzz target).
fn diagnostic(value: &Value, out: &mut String) {
    use std::fmt::Write;
    match value {
        Value::Integer(i) => write!(out, "{}", i128::from(*i)).expect("writing to a String"),
        Value::Float(f) => write!(out, "{f:?}").expect("writing to a String"),
        Value::Bytes(bytes) => {
            out.push_str("h'");
            for b in bytes {
                write!(out, "{b:02x}").expect("writing to a String");
            }
            out.push('\'');
        }
        Value::Text(s) => write!(out, "{s:?}").expect("writing to a String"),
        Value::Bool(b) => write!(out, "{b}").expect("writing to a String"),
        Value::Null => out.push_str("null"),
        Value::Tag(tag, inner) => {
            write!(out, "{tag}(").expect("writing to a String");
            diagnostic(inner, out);
            out.push(')');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                diagnostic(item, out);
            }
            out.push(']');
        }
        Value::Map(pairs) => {
            out.push('{');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                diagnostic(k, out);
                out.push_str(": ");
                diagnostic(v, out);
            }
            out.push('}');
        }
        _ => out.push_str("undefined"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor<T: serde::Serialize>(value: &T) -> Vec<u8> {
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
    fn decode_rejects_truncated_trailing_and_too_deep_values() {
        assert!(matches!(
            decode(&[0xb8, 0x18]),
            Err(CborError::Malformed(_))
        ));
        assert_eq!(decode(&[0x01, 0x02]), Err(CborError::TrailingBytes(1)));
        let mut deep = vec![0x81; MAX_DEPTH + 1];
        deep.push(0x00);
        assert!(matches!(decode(&deep), Err(CborError::Malformed(_))));
        assert_eq!(
            decode(&cbor(&vec![1, 2])),
            Ok(Value::Array(vec![1.into(), 2.into()]))
        );
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

    #[test]
    fn non_text_keys_render_in_diagnostic_notation_in_linear_time() {
        let key = Value::Map(vec![(
            Value::Bytes(vec![0, 255]),
            Value::Array(vec![1.into(), "a".into()]),
        )]);
        let value = Value::Map(vec![
            (key, true.into()),
            (Value::Integer(7.into()), Value::Null),
        ]);
        assert_eq!(
            to_json(&encode(&value)),
            serde_json::json!({"{h'00ff': [1, \"a\"]}": true, "7": null})
        );
        // Maps keyed by maps, 60 deep: the key text must stay small (it once doubled per level).
        let mut nested = Value::Text("x\"y".into());
        for _ in 0..60 {
            nested = Value::Map(vec![(nested, Value::Null)]);
        }
        let rendered = to_json(&encode(&nested)).to_string();
        assert!(rendered.len() < 2_000, "{} bytes", rendered.len());
    }
}

//! CBOR rendered as JSON for events, `host run` and `host output`, without losing a value:
//! JSON has no bignums, NaN, simple values or non-text map keys, so each gets a stated form.

use std::collections::HashSet;
use std::fmt::Write;

use serde_json::Value as J;

use super::cbor::Item;

/// Bignums with more magnitude bytes than this render in hexadecimal: decimal conversion is
/// quadratic, and a guest may send megabytes.
const MAX_DECIMAL_BIGNUM: usize = 1024;

/// Renders one item. See the README ("Values as JSON") for the rules.
pub fn render(item: &Item<'_>) -> J {
    match item {
        Item::Unsigned(n) => J::from(*n),
        Item::Negative(n) => integer(-1 - i128::from(*n)),
        Item::Bytes(bytes) => J::Array(bytes.iter().map(|b| J::from(*b)).collect()),
        Item::Text(text) => J::String(String::from_utf8_lossy(text).into_owned()),
        Item::Array(items) => J::Array(items.iter().map(render).collect()),
        Item::Map(pairs) => map(pairs),
        Item::Tag(tag @ (2 | 3), inner) => match inner.as_ref() {
            Item::Bytes(magnitude) => bignum(magnitude, *tag == 3),
            other => render(other),
        },
        Item::Tag(_, inner) => render(inner),
        Item::Bool(b) => J::Bool(*b),
        Item::Null | Item::Undefined => J::Null,
        Item::Simple(n) => J::String(format!("simple({n})")),
        Item::Float(f) => serde_json::Number::from_f64(*f)
            .map_or_else(|| J::String(non_finite(*f).to_string()), J::Number),
    }
}

/// An integer as a JSON number when it fits 64 bits, else as a decimal string.
fn integer(i: i128) -> J {
    i64::try_from(i)
        .map(J::from)
        .or_else(|_| u64::try_from(i).map(J::from))
        .unwrap_or_else(|_| J::String(i.to_string()))
}

fn non_finite(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// A bignum (tag 2, or tag 3 for `-1 - n`): a number when it fits 64 bits, a decimal string
/// up to [`MAX_DECIMAL_BIGNUM`] bytes, a hexadecimal string (`0x...`) beyond.
fn bignum(magnitude: &[u8], negative: bool) -> J {
    let start = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    let magnitude = &magnitude[start..];
    if magnitude.len() <= 8 {
        let n = magnitude
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        return integer(if negative {
            -1 - i128::from(n)
        } else {
            i128::from(n)
        });
    }
    // `-1 - n` is `-(n + 1)`.
    let mut digits = magnitude.to_vec();
    if negative {
        increment(&mut digits);
    }
    let sign = if negative { "-" } else { "" };
    if digits.len() > MAX_DECIMAL_BIGNUM {
        let mut hex = format!("{sign}0x");
        for b in &digits {
            write!(hex, "{b:02x}").expect("writing to a String");
        }
        return J::String(hex);
    }
    J::String(format!("{sign}{}", decimal(digits)))
}

/// Adds one to a big-endian unsigned integer.
fn increment(digits: &mut Vec<u8>) {
    for b in digits.iter_mut().rev() {
        let (sum, carry) = b.overflowing_add(1);
        *b = sum;
        if !carry {
            return;
        }
    }
    digits.insert(0, 1);
}

/// The decimal text of a big-endian unsigned integer, by long division by 10^9.
fn decimal(mut digits: Vec<u8>) -> String {
    const BASE: u64 = 1_000_000_000;
    let mut groups = Vec::new();
    while digits.iter().any(|&b| b != 0) {
        let mut remainder = 0u64;
        for b in digits.iter_mut() {
            let current = (remainder << 8) | u64::from(*b);
            *b = (current / BASE) as u8;
            remainder = current % BASE;
        }
        groups.push(remainder);
        let zeros = digits.iter().take_while(|&&b| b == 0).count();
        digits.drain(..zeros);
    }
    let mut text = groups
        .pop()
        .map_or_else(|| "0".to_string(), |g| g.to_string());
    for group in groups.iter().rev() {
        write!(text, "{group:09}").expect("writing to a String");
    }
    text
}

/// A map whose keys are distinct text strings is a JSON object. Otherwise every key is written
/// in CBOR diagnostic notation (so `1` and `"1"` stay apart); a map with a repeated key, which
/// no object can hold, is a list of `[key, value]` pairs.
fn map(pairs: &[(Item<'_>, Item<'_>)]) -> J {
    let text_keys: Option<Vec<String>> = pairs
        .iter()
        .map(|(k, _)| match k {
            Item::Text(text) => Some(String::from_utf8_lossy(text).into_owned()),
            _ => None,
        })
        .collect();
    let keys = text_keys.filter(|keys| distinct(keys)).or_else(|| {
        let keys: Vec<String> = pairs
            .iter()
            .map(|(k, _)| {
                let mut key = String::new();
                diagnostic(k, &mut key);
                key
            })
            .collect();
        distinct(&keys).then_some(keys)
    });
    match keys {
        Some(keys) => J::Object(
            keys.into_iter()
                .zip(pairs)
                .map(|(key, (_, v))| (key, render(v)))
                .collect(),
        ),
        None => J::Array(
            pairs
                .iter()
                .map(|(k, v)| J::Array(vec![render(k), render(v)]))
                .collect(),
        ),
    }
}

fn distinct(keys: &[String]) -> bool {
    let mut seen = HashSet::with_capacity(keys.len());
    keys.iter().all(|k| seen.insert(k.as_str()))
}

/// Writes an item in CBOR diagnostic notation (RFC 8949 §8), e.g. `{1: [h'00']}`. Written in
/// one pass: rendering nested keys as JSON text inside JSON text would escape every level again
/// and grow exponentially with the depth (found by the `guest_cbor` fuzz target).
fn diagnostic(item: &Item<'_>, out: &mut String) {
    let mut list =
        |open: char, close: char, count: usize, each: &mut dyn FnMut(usize, &mut String)| {
            out.push(open);
            for i in 0..count {
                if i > 0 {
                    out.push_str(", ");
                }
                each(i, out);
            }
            out.push(close);
        };
    match item {
        Item::Unsigned(n) => write!(out, "{n}").expect("writing to a String"),
        Item::Negative(n) => write!(out, "{}", -1 - i128::from(*n)).expect("writing to a String"),
        Item::Bytes(bytes) => {
            out.push_str("h'");
            for b in bytes.iter() {
                write!(out, "{b:02x}").expect("writing to a String");
            }
            out.push('\'');
        }
        Item::Text(text) => {
            write!(out, "{:?}", String::from_utf8_lossy(text)).expect("writing to a String");
        }
        Item::Array(items) => list('[', ']', items.len(), &mut |i, out| {
            diagnostic(&items[i], out);
        }),
        Item::Map(pairs) => list('{', '}', pairs.len(), &mut |i, out| {
            diagnostic(&pairs[i].0, out);
            out.push_str(": ");
            diagnostic(&pairs[i].1, out);
        }),
        Item::Tag(tag, inner) => {
            write!(out, "{tag}(").expect("writing to a String");
            diagnostic(inner, out);
            out.push(')');
        }
        Item::Bool(b) => write!(out, "{b}").expect("writing to a String"),
        Item::Null => out.push_str("null"),
        Item::Undefined => out.push_str("undefined"),
        Item::Simple(n) => write!(out, "simple({n})").expect("writing to a String"),
        Item::Float(f) if f.is_finite() => write!(out, "{f:?}").expect("writing to a String"),
        Item::Float(f) => out.push_str(non_finite(*f)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::cbor;
    use super::super::{encode, to_json};

    #[test]
    fn scalars_that_json_lacks_keep_a_stated_form() {
        assert_eq!(to_json(&[0xf6]), json!(null));
        assert_eq!(to_json(&[0xf0]), json!("simple(16)"));
        assert_eq!(to_json(&[0xf8, 0xff]), json!("simple(255)"));
        assert_eq!(to_json(&cbor(&f64::NAN)), json!("NaN"));
        assert_eq!(to_json(&cbor(&f64::INFINITY)), json!("Infinity"));
        assert_eq!(to_json(&cbor(&f64::NEG_INFINITY)), json!("-Infinity"));
        assert_eq!(to_json(&cbor(&-2.5f64)), json!(-2.5));
        assert_eq!(to_json(&cbor(&u64::MAX)), json!(u64::MAX));
        // -2^64, the smallest CBOR integer.
        assert_eq!(
            to_json(&[0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            json!("-18446744073709551616")
        );
        assert_eq!(to_json(&[0x62, 0xff, b'a']), json!("\u{fffd}a"));
    }

    #[test]
    fn bignums_render_as_numbers_or_decimal_strings() {
        // Tag 2 holding 1 and 2^64; tag 3 holding 0 (that is, -1) and 2^64 (-2^64 - 1).
        assert_eq!(to_json(&[0xc2, 0x41, 0x01]), json!(1));
        assert_eq!(to_json(&[0xc2, 0x43, 0x00, 0x00, 0x07]), json!(7));
        let two_64 = [0xc2, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(to_json(&two_64), json!("18446744073709551616"));
        assert_eq!(to_json(&[0xc3, 0x40]), json!(-1));
        let minus = [0xc3, 0x49, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(to_json(&minus), json!("-18446744073709551617"));
        // 10^40 = 0x1d6329f1c35ca4bfabb9f5610000000000.
        let mut big = vec![0xc2, 0x51];
        big.extend([
            0x1d, 0x63, 0x29, 0xf1, 0xc3, 0x5c, 0xa4, 0xbf, 0xab, 0xb9, 0xf5, 0x61, 0x00, 0x00,
            0x00, 0x00, 0x00,
        ]);
        assert_eq!(to_json(&big), json!(format!("1{}", "0".repeat(40))));
        // A negative bignum whose magnitude carries into a new byte.
        assert_eq!(
            to_json(&[
                0xc3, 0x49, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ]),
            json!("-4722366482869645213696")
        );
        // Huge bignums render in hexadecimal, in linear time.
        let mut huge = vec![0xc2, 0x5a, 0x00, 0x10, 0x00, 0x00];
        huge.extend(std::iter::repeat_n(0xab, 1 << 20));
        let rendered = to_json(&huge);
        assert!(rendered.as_str().unwrap().starts_with("0xabab"));
    }

    #[test]
    fn map_keys_never_collide() {
        use ciborium::Value;
        let text_and_int = Value::Map(vec![
            (Value::Integer(1.into()), "int".into()),
            (Value::Text("1".into()), "text".into()),
        ]);
        assert_eq!(
            to_json(&encode(&text_and_int)),
            json!({"1": "int", "\"1\"": "text"})
        );
        let repeated = Value::Map(vec![
            (Value::Text("a".into()), 1.into()),
            (Value::Text("a".into()), 2.into()),
        ]);
        assert_eq!(to_json(&encode(&repeated)), json!([["a", 1], ["a", 2]]));
        let plain = Value::Map(vec![(Value::Text("a".into()), Value::Null)]);
        assert_eq!(to_json(&encode(&plain)), json!({"a": null}));
    }

    #[test]
    fn non_text_keys_render_in_diagnostic_notation_in_linear_time() {
        use ciborium::Value;
        let key = Value::Map(vec![(
            Value::Bytes(vec![0, 255]),
            Value::Array(vec![1.into(), "a".into()]),
        )]);
        let value = Value::Map(vec![
            (key, true.into()),
            (Value::Integer(7.into()), Value::Null),
            (Value::Float(1.0), Value::Null),
        ]);
        assert_eq!(
            to_json(&encode(&value)),
            json!({"{h'00ff': [1, \"a\"]}": true, "7": null, "1.0": null})
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

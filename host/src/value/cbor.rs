//! A CBOR reader that accepts exactly the well-formed items of RFC 8949 (Appendix C): every
//! simple value, every tag, indefinite-length items, half floats and text that is not UTF-8.
//! The host promises guests to check well-formedness only; validity is the ops' business.

use std::borrow::Cow;

use super::CborError;

/// One decoded CBOR item, borrowing strings from the input.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    Unsigned(u64),
    /// The integer `-1 - n`.
    Negative(u64),
    Bytes(Cow<'a, [u8]>),
    /// A text string's bytes, which a well-formed item need not keep UTF-8.
    Text(Cow<'a, [u8]>),
    Array(Vec<Item<'a>>),
    Map(Vec<(Item<'a>, Item<'a>)>),
    Tag(u64, Box<Item<'a>>),
    Bool(bool),
    Null,
    Undefined,
    /// A simple value other than false, true, null and undefined.
    Simple(u8),
    Float(f64),
}

/// Reads exactly one item from `bytes`, nested at most `max_depth` deep (arrays, maps, tags).
pub fn parse(bytes: &[u8], max_depth: usize) -> Result<Item<'_>, CborError> {
    let mut reader = Reader { bytes, pos: 0 };
    let item = reader.item(max_depth)?;
    match bytes.len() - reader.pos {
        0 => Ok(item),
        rest => Err(CborError::TrailingBytes(rest)),
    }
}

/// What an initial byte announces.
enum Head {
    Item(Item<'static>),
    /// Major type and argument of a string, array, map or tag; `None` for indefinite length.
    Open(u8, Option<u64>),
    Break,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

fn malformed(what: impl Into<String>) -> CborError {
    CborError::Malformed(what.into())
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], CborError> {
        let available = (self.bytes.len() - self.pos) as u64;
        if n > available {
            return Err(malformed(format!(
                "truncated at offset {}: {n} more bytes needed, {available} left",
                self.pos
            )));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn uint(&mut self, size: u64) -> Result<u64, CborError> {
        Ok(self
            .take(size)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn head(&mut self) -> Result<Head, CborError> {
        let offset = self.pos;
        let initial = self.take(1)?[0];
        let (major, info) = (initial >> 5, initial & 0x1f);
        let argument = match info {
            0..=23 => Some(u64::from(info)),
            24..=27 => Some(self.uint(1 << (info - 24))?),
            31 => None,
            _ => {
                return Err(malformed(format!(
                    "reserved additional information {info} at offset {offset}"
                )));
            }
        };
        Ok(match (major, argument) {
            (0, Some(n)) => Head::Item(Item::Unsigned(n)),
            (1, Some(n)) => Head::Item(Item::Negative(n)),
            (2..=5, length) | (6, length @ Some(_)) => Head::Open(major, length),
            (7, None) => Head::Break,
            (7, Some(n)) => Head::Item(match info {
                20 => Item::Bool(false),
                21 => Item::Bool(true),
                22 => Item::Null,
                23 => Item::Undefined,
                0..=19 => Item::Simple(info),
                24 if n < 32 => {
                    return Err(malformed(format!(
                        "simple value {n} at offset {offset} must be encoded in one byte"
                    )));
                }
                24 => Item::Simple(n as u8),
                25 => Item::Float(half(n as u16)),
                26 => Item::Float(f64::from(f32::from_bits(n as u32))),
                _ => Item::Float(f64::from_bits(n)),
            }),
            (_, None) => {
                return Err(malformed(format!(
                    "major type {major} cannot have an indefinite length (offset {offset})"
                )));
            }
            _ => unreachable!("the major type has three bits"),
        })
    }

    fn item(&mut self, depth: usize) -> Result<Item<'a>, CborError> {
        let offset = self.pos;
        match self.head()? {
            Head::Item(item) => Ok(item),
            Head::Break => Err(malformed(format!("unexpected break at offset {offset}"))),
            Head::Open(major @ (2 | 3), length) => {
                let bytes = match length {
                    Some(n) => Cow::Borrowed(self.take(n)?),
                    None => Cow::Owned(self.chunks(major)?),
                };
                Ok(if major == 2 {
                    Item::Bytes(bytes)
                } else {
                    Item::Text(bytes)
                })
            }
            Head::Open(major, argument) => {
                let depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| malformed(format!("nested too deeply at offset {offset}")))?;
                match major {
                    4 => Ok(Item::Array(self.items(argument, depth, 1)?)),
                    5 => {
                        let mut flat =
                            self.items(argument.map(|n| n.saturating_mul(2)), depth, 2)?;
                        let mut pairs = Vec::with_capacity(flat.len() / 2);
                        let mut flat = flat.drain(..);
                        while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                            pairs.push((k, v));
                        }
                        Ok(Item::Map(pairs))
                    }
                    _ => {
                        let tag = argument.expect("a tag has an argument");
                        Ok(Item::Tag(tag, Box::new(self.item(depth)?)))
                    }
                }
            }
        }
    }

    /// `count` items, or items up to a break when `None`; `group` is 2 for a map, whose break
    /// may not fall between a key and its value.
    fn items(
        &mut self,
        count: Option<u64>,
        depth: usize,
        group: usize,
    ) -> Result<Vec<Item<'a>>, CborError> {
        let Some(count) = count else {
            let mut items = Vec::new();
            loop {
                if self.bytes.get(self.pos) == Some(&0xff) {
                    self.pos += 1;
                    if items.len() % group != 0 {
                        return Err(malformed(format!(
                            "map ends between a key and its value at offset {}",
                            self.pos - 1
                        )));
                    }
                    return Ok(items);
                }
                items.push(self.item(depth)?);
            }
        };
        // Every item takes at least one byte: a huge count cannot make us allocate.
        let left = (self.bytes.len() - self.pos) as u64;
        if count > left {
            return Err(malformed(format!(
                "{count} items announced at offset {}, {left} bytes left",
                self.pos
            )));
        }
        (0..count).map(|_| self.item(depth)).collect()
    }

    /// The chunks of an indefinite-length string, which must be definite strings of its type.
    fn chunks(&mut self, major: u8) -> Result<Vec<u8>, CborError> {
        let mut joined = Vec::new();
        loop {
            let offset = self.pos;
            match self.head()? {
                Head::Break => return Ok(joined),
                Head::Open(m, Some(n)) if m == major => joined.extend_from_slice(self.take(n)?),
                _ => {
                    return Err(malformed(format!(
                        "chunk at offset {offset} of an indefinite-length string is not a definite string of the same type"
                    )));
                }
            }
        }
    }
}

/// An IEEE 754 half-precision float, widened.
fn half(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    sign * match exponent {
        0 => fraction * 2f64.powi(-24),
        31 if fraction == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + fraction / 1024.0) * 2f64.powi(exponent - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(bytes: &[u8]) -> Item<'_> {
        parse(bytes, 64).unwrap_or_else(|err| panic!("{bytes:02x?}: {err}"))
    }

    #[test]
    fn accepts_every_well_formed_item() {
        assert_eq!(ok(&[0xf0]), Item::Simple(16));
        assert_eq!(ok(&[0xf8, 0xff]), Item::Simple(255));
        assert_eq!(ok(&[0xf8, 0x20]), Item::Simple(32));
        assert_eq!(ok(&[0xf7]), Item::Undefined);
        assert_eq!(ok(&[0xf9, 0x3c, 0x00]), Item::Float(1.0));
        assert_eq!(ok(&[0xf9, 0x7c, 0x00]), Item::Float(f64::INFINITY));
        assert!(matches!(ok(&[0xf9, 0x7e, 0x00]), Item::Float(f) if f.is_nan()));
        assert_eq!(ok(&[0xf9, 0x00, 0x01]), Item::Float(5.960464477539063e-8));
        assert_eq!(
            ok(&[0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Item::Negative(u64::MAX)
        );
        // Text that is not UTF-8 is well-formed (RFC 8949 calls it invalid, not malformed).
        assert_eq!(ok(&[0x61, 0xff]), Item::Text(Cow::Borrowed(&[0xff])));
        // Indefinite-length strings, arrays and maps.
        assert_eq!(
            ok(&[0x7f, 0x61, b'a', 0x62, b'b', b'c', 0xff]),
            Item::Text(Cow::Owned(b"abc".to_vec()))
        );
        assert_eq!(
            ok(&[0x9f, 0x01, 0x9f, 0xff, 0xff]),
            Item::Array(vec![Item::Unsigned(1), Item::Array(vec![])])
        );
        assert_eq!(
            ok(&[0xbf, 0x01, 0xf6, 0xff]),
            Item::Map(vec![(Item::Unsigned(1), Item::Null)])
        );
        assert_eq!(
            ok(&[0xc2, 0x41, 0x01]),
            Item::Tag(2, Box::new(Item::Bytes(Cow::Borrowed(&[1]))))
        );
    }

    #[test]
    fn rejects_what_is_not_well_formed() {
        let cases: &[(&[u8], &str)] = &[
            (&[], "truncated at offset 0: 1 more bytes needed, 0 left"),
            (
                &[0xf8, 0x10],
                "simple value 16 at offset 0 must be encoded in one byte",
            ),
            (&[0x1c], "reserved additional information 28 at offset 0"),
            (
                &[0x1f],
                "major type 0 cannot have an indefinite length (offset 0)",
            ),
            (
                &[0xdf, 0x01],
                "major type 6 cannot have an indefinite length (offset 0)",
            ),
            (&[0xff], "unexpected break at offset 0"),
            (
                &[0xbf, 0x01, 0xff],
                "map ends between a key and its value at offset 2",
            ),
            (
                &[0x5f, 0x61, b'a', 0xff],
                "chunk at offset 1 of an indefinite-length string is not a definite string of the same type",
            ),
            (
                &[0x5f, 0x5f, 0xff, 0xff],
                "chunk at offset 1 of an indefinite-length string is not a definite string of the same type",
            ),
            (
                &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                "18446744073709551615 items announced at offset 9, 0 bytes left",
            ),
            (
                &[0x62, b'a'],
                "truncated at offset 1: 2 more bytes needed, 1 left",
            ),
            (
                &[0x9f, 0x01],
                "truncated at offset 2: 1 more bytes needed, 0 left",
            ),
        ];
        for (bytes, message) in cases {
            assert_eq!(
                parse(bytes, 64),
                Err(CborError::Malformed(message.to_string())),
                "{bytes:02x?}"
            );
        }
        assert_eq!(parse(&[0x01, 0x02], 64), Err(CborError::TrailingBytes(1)));
    }

    #[test]
    fn bounds_nesting() {
        let mut deep = vec![0x81; 4];
        deep.push(0x00);
        assert!(parse(&deep, 4).is_ok());
        assert_eq!(
            parse(&deep, 3),
            Err(CborError::Malformed("nested too deeply at offset 3".into()))
        );
        let tags = [0xc1, 0xc1, 0xc1, 0x00];
        assert!(parse(&tags, 2).is_err());
    }
}

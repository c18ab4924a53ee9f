//! A step's outputs packed into one allocation. A million-way fan-out keeps every clone's
//! outputs until the collect runs; as `(String, Vec<u8>)` pairs that is three allocations per
//! output (about 128 bytes for a small value), packed it is one.

use crate::value::NamedValues;

/// Named values as `(name length, name, value length, value)*`, lengths as little-endian u32.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackedValues(Box<[u8]>);

impl PackedValues {
    pub fn pack(values: &NamedValues) -> Self {
        let size = values.iter().map(|(n, v)| 8 + n.len() + v.len()).sum();
        let mut packed = Vec::with_capacity(size);
        for (name, value) in values {
            for part in [name.as_bytes(), value.as_slice()] {
                let len = u32::try_from(part.len()).expect("outputs are limited far below 4 GiB");
                packed.extend_from_slice(&len.to_le_bytes());
                packed.extend_from_slice(part);
            }
        }
        PackedValues(packed.into_boxed_slice())
    }

    /// The values in their order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let mut rest = &self.0[..];
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let name = take(&mut rest);
            let value = take(&mut rest);
            Some((std::str::from_utf8(name).expect("packed from a str"), value))
        })
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn unpack(&self) -> NamedValues {
        self.iter()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect()
    }
}

fn take<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let (len, tail) = rest.split_at(4);
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    let (part, tail) = tail.split_at(len);
    *rest = tail;
    part
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks_in_order() {
        let values: NamedValues = vec![
            ("result".into(), vec![0x18, 42]),
            ("empty".into(), vec![]),
            ("ünïcode".into(), vec![7; 300]),
        ];
        let packed = PackedValues::pack(&values);
        assert_eq!(packed.unpack(), values);
        assert_eq!(packed.get("empty"), Some(&[][..]));
        assert_eq!(packed.get("ünïcode").map(<[u8]>::len), Some(300));
        assert_eq!(packed.get("missing"), None);
        assert_eq!(PackedValues::pack(&vec![]).iter().count(), 0);
    }
}

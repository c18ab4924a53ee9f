//! Values keyed by mapping key, as JSON: how a mapped op's outputs and a dynamic output's values
//! are shown (Dagster's `output_for_node`), one level of nesting per mapping key.

use serde_json::{Map, Value};

/// A JSON object holding each entry's value under its mapping-key path, outermost key first,
/// in the order the entries come. An entry whose path runs through a value that is not an
/// object, or whose path is empty, has no place in the object and is left out.
pub fn nest<P, K>(entries: impl IntoIterator<Item = (P, Value)>) -> Value
where
    P: AsRef<[K]>,
    K: AsRef<str>,
{
    let mut root = Map::new();
    for (path, value) in entries {
        let Some((last, outer)) = path.as_ref().split_last() else {
            continue;
        };
        let mut slot = Some(&mut root);
        for key in outer {
            slot = slot.and_then(|object| {
                object
                    .entry(key.as_ref())
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
            });
        }
        if let Some(object) = slot {
            object.insert(last.as_ref().to_string(), value);
        }
    }
    Value::Object(root)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nests_one_level_per_key_in_entry_order() {
        let entries = [
            (vec!["b", "y"], json!(1)),
            (vec!["a", "x"], json!(2)),
            (vec!["b", "x"], json!(null)),
            (vec!["c"], json!({})),
        ];
        assert_eq!(
            nest(entries).to_string(),
            r#"{"b":{"y":1,"x":null},"a":{"x":2},"c":{}}"#
        );
    }

    #[test]
    fn leaves_out_entries_that_have_no_place() {
        let entries = [
            (vec!["a".to_string()], json!(1)),
            (vec!["a".to_string(), "x".to_string()], json!(2)),
            (Vec::new(), json!(3)),
        ];
        assert_eq!(nest(entries), json!({"a": 1}));
    }
}

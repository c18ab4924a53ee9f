//! The JSON Schemas ops declare (`shoal:op@0.2.0`): checked when a component is loaded, and
//! used to check a job's config before anything runs (Dagster's `validate_run_config`).

use jsonschema::paths::LocationSegment;

/// Most problems one config check reports; the rest are counted.
const MOST_PROBLEMS: usize = 8;
/// The longest problem message, cut past it: a message quotes the offending value, which may be
/// a large part of the config.
const MOST_CHARS: usize = 200;
/// The largest schema a component may declare: it is compiled at load and for every run of a
/// job that uses the op, so a huge one would cost every submission.
pub const MOST_SCHEMA_BYTES: usize = 64 << 10;

/// Compiles `text`, a schema a component declared; the error says why it is not one.
pub fn compile(text: &str) -> Result<jsonschema::Validator, String> {
    if text.len() > MOST_SCHEMA_BYTES {
        return Err(format!(
            "its schema is {} bytes, more than the {MOST_SCHEMA_BYTES} a schema may have",
            text.len()
        ));
    }
    let schema: serde_json::Value =
        serde_json::from_str(text).map_err(|err| format!("its schema is not JSON ({err})"))?;
    jsonschema::validator_for(&schema).map_err(|err| format!("its schema is not valid ({err})"))
}

/// Checks `value` against `schema`; each problem names the field it is about, e.g.
/// ``field `chunk_size`: "two" is not of type "integer"``.
pub fn check(schema: &jsonschema::Validator, value: &serde_json::Value) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let mut more = 0;
    for err in schema.iter_errors(value) {
        if problems.len() == MOST_PROBLEMS {
            more += 1;
            continue;
        }
        let path = field(err.instance_path().segments());
        let message = cut(err.to_string());
        problems.push(if path.is_empty() {
            message
        } else {
            format!("field `{path}`: {message}")
        });
    }
    if more > 0 {
        problems.push(format!("and {more} more"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// `message` cut to [`MOST_CHARS`] characters, with `…` when it was longer.
fn cut(message: String) -> String {
    match message.char_indices().nth(MOST_CHARS) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message,
    }
}

/// A JSON pointer's segments as a field path: `a.b[0].c`.
fn field<'a>(segments: impl Iterator<Item = LocationSegment<'a>>) -> String {
    let mut path = String::new();
    for segment in segments {
        match segment {
            LocationSegment::Index(index) => path.push_str(&format!("[{index}]")),
            LocationSegment::Property(name) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&name);
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CONFIG: &str = r#"{
        "type": "object",
        "properties": {
            "chunk_size": {"type": "integer", "minimum": 1, "default": 2},
            "tables": {"type": "array", "items": {"type": "object",
                "properties": {"name": {"type": "string"}}, "required": ["name"]}}
        },
        "additionalProperties": false
    }"#;

    #[test]
    fn a_config_of_the_declared_shape_passes() {
        let schema = compile(CONFIG).unwrap();
        assert_eq!(check(&schema, &json!({})), Ok(()));
        assert_eq!(check(&schema, &json!({"chunk_size": 5})), Ok(()));
    }

    #[test]
    fn each_problem_names_its_field_and_the_expected_type() {
        let schema = compile(CONFIG).unwrap();
        assert_eq!(
            check(&schema, &json!({"chunk_size": "two"})),
            Err(vec![
                r#"field `chunk_size`: "two" is not of type "integer""#.to_string()
            ])
        );
        assert_eq!(
            check(&schema, &json!({"tables": [{"name": "a"}, {"name": 3}]})),
            Err(vec![
                r#"field `tables[1].name`: 3 is not of type "string""#.to_string()
            ])
        );
        let unknown = check(&schema, &json!({"chunk": 5})).unwrap_err();
        assert!(unknown[0].contains("'chunk'"), "{unknown:?}");
    }

    #[test]
    fn many_problems_are_cut_short() {
        let schema = compile(r#"{"type": "array", "items": {"type": "integer"}}"#).unwrap();
        let problems = check(&schema, &serde_json::Value::Array(vec![json!("x"); 20])).unwrap_err();
        assert_eq!(problems.len(), MOST_PROBLEMS + 1);
        assert_eq!(problems.last().unwrap(), "and 12 more");
    }

    #[test]
    fn long_messages_and_large_schemas_are_cut_short() {
        let schema = compile(r#"{"type": "object"}"#).unwrap();
        let problems = check(&schema, &json!("x".repeat(10_000))).unwrap_err();
        assert_eq!(problems[0].chars().count(), MOST_CHARS + 1, "{problems:?}");
        assert!(problems[0].ends_with('…'));
        let huge = format!(r#"{{"description": "{}"}}"#, "x".repeat(MOST_SCHEMA_BYTES));
        assert!(compile(&huge).unwrap_err().contains("more than the 65536"));
    }

    #[test]
    fn a_schema_cannot_make_the_host_fetch_anything() {
        for reference in ["http://127.0.0.1:9/schema.json", "file:///etc/passwd"] {
            let schema = format!(r#"{{"$ref": "{reference}"}}"#);
            assert!(compile(&schema).is_err(), "{reference}");
        }
    }

    #[test]
    fn a_schema_that_is_not_one_is_refused() {
        assert!(
            compile("{")
                .unwrap_err()
                .starts_with("its schema is not JSON")
        );
        assert!(
            compile(r#"{"type": "integr"}"#)
                .unwrap_err()
                .starts_with("its schema is not valid")
        );
    }
}

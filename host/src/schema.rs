//! The JSON Schemas ops declare (`shoal:op@0.2.0`): checked when a component is loaded, and
//! used to check a job's config before anything runs (Dagster's `validate_run_config`).

use jsonschema::paths::LocationSegment;

/// Most problems one config check reports; the rest are counted.
const MOST_PROBLEMS: usize = 8;

/// Compiles `text`, a schema a component declared; the error says why it is not one.
pub fn compile(text: &str) -> Result<jsonschema::Validator, String> {
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
        problems.push(if path.is_empty() {
            err.to_string()
        } else {
            format!("field `{path}`: {err}")
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

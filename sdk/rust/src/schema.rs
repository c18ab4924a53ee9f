//! JSON Schemas of configs, inputs and outputs, from [`JsonSchema`] types.

use std::marker::PhantomData;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;

/// `T`'s JSON Schema (draft 2020-12) as JSON text, e.g. `{"$schema": "...", "type":
/// "integer", ...}`. The root schema carries `$schema`, a `title` for named types, and the
/// definitions of nested named types under `$defs`.
pub fn schema_of<T: JsonSchema + ?Sized>() -> String {
    SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>()
        .as_value()
        .to_string()
}

/// Autoref specialization for the code `#[op]` generates, where every type is concrete:
/// `(&SchemaProbe::<T>::new()).json_schema()` is `Some(schema)` when `T: JsonSchema`
/// ([`ViaJsonSchema`], found first because it takes the probe by reference) and `None` for any
/// other `T` ([`NoJsonSchema`], on a reference to the probe, found one autoref later).
pub struct SchemaProbe<T: ?Sized>(PhantomData<T>);

impl<T: ?Sized> SchemaProbe<T> {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        SchemaProbe(PhantomData)
    }
}

/// The schema of a [`JsonSchema`] type.
pub trait ViaJsonSchema {
    fn json_schema(&self) -> Option<String>;
}

impl<T: JsonSchema + ?Sized> ViaJsonSchema for SchemaProbe<T> {
    fn json_schema(&self) -> Option<String> {
        Some(schema_of::<T>())
    }
}

/// No schema, for any other type.
pub trait NoJsonSchema {
    fn json_schema(&self) -> Option<String>;
}

impl<T: ?Sized> NoJsonSchema for &SchemaProbe<T> {
    fn json_schema(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(dead_code)]
    #[derive(JsonSchema, serde::Deserialize)]
    struct Config {
        /// Elements per piece.
        #[serde(default = "two")]
        chunk_size: usize,
        name: String,
    }

    fn two() -> usize {
        2
    }

    #[test]
    // The borrow is the point: without it both traits' methods are found at once.
    #[allow(clippy::needless_borrow)]
    fn the_probe_finds_a_schema_only_for_json_schema_types() {
        let some = (&SchemaProbe::<Vec<i64>>::new()).json_schema();
        let json: serde_json::Value = serde_json::from_str(&some.unwrap()).unwrap();
        assert_eq!(json["type"], "array");
        assert_eq!(json["items"]["type"], "integer");
        assert_eq!(
            json["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!((&SchemaProbe::<ciborium::Value>::new()).json_schema(), None);
        assert_eq!(
            (&SchemaProbe::<Vec<ciborium::Value>>::new()).json_schema(),
            None
        );
    }

    #[test]
    fn fields_with_serde_defaults_are_not_required() {
        let json: serde_json::Value = serde_json::from_str(&schema_of::<Config>()).unwrap();
        assert_eq!(json["required"], serde_json::json!(["name"]));
        let chunk_size = &json["properties"]["chunk_size"];
        assert_eq!(chunk_size["type"], "integer");
        assert_eq!(chunk_size["default"], 2);
        assert_eq!(chunk_size["description"], "Elements per piece.");
    }
}

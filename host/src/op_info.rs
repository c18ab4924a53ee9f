//! What a component says about its ops (`describe`), in host types so that planning and
//! validation do not depend on wasmtime.

/// One op of a component.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OpInfo {
    pub name: String,
    pub description: String,
    /// The inputs the job must wire.
    pub inputs: Vec<InputInfo>,
    pub outputs: Vec<OutputInfo>,
    /// The JSON Schema of the op's `config` table, as JSON text, when the op declares one.
    #[serde(
        serialize_with = "schema_json",
        skip_serializing_if = "Option::is_none"
    )]
    pub config_schema: Option<String>,
}

/// One declared input of an op.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputInfo {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The JSON Schema of the input's value, as JSON text, when the op declares one.
    #[serde(
        serialize_with = "schema_json",
        skip_serializing_if = "Option::is_none"
    )]
    pub schema: Option<String>,
}

/// One declared output of an op.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutputInfo {
    pub name: String,
    /// A dynamic output yields any number of keyed values and must be mapped or collected.
    pub dynamic: bool,
    pub description: String,
    /// The JSON Schema of the output's value (of each element when dynamic), as JSON text.
    #[serde(
        serialize_with = "schema_json",
        skip_serializing_if = "Option::is_none"
    )]
    pub schema: Option<String>,
    /// False when the op may leave the output out (Dagster's `is_required=False`): the steps
    /// that read it are then skipped, not failed. Components older than `shoal:op@0.3.0`
    /// declare every output required.
    pub required: bool,
}

impl InputInfo {
    /// An input with only a name, as a `shoal:op@0.1.0` component declares it.
    pub fn named(name: String) -> Self {
        InputInfo {
            name,
            description: String::new(),
            schema: None,
        }
    }
}

/// Writes a schema as the JSON it holds (checked when the component was loaded), not as a
/// string of JSON.
fn schema_json<S: serde::Serializer>(schema: &Option<String>, to: S) -> Result<S::Ok, S::Error> {
    let parsed = schema
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>);
    match parsed {
        Some(Ok(value)) => serde::Serialize::serialize(&value, to),
        _ => serde::Serialize::serialize(schema, to),
    }
}

impl OpInfo {
    /// An op without descriptions: `outputs` are (name, dynamic?) pairs. For tests and fuzzing.
    pub fn new(name: &str, inputs: &[&str], outputs: &[(&str, bool)]) -> Self {
        OpInfo {
            name: name.to_string(),
            description: String::new(),
            inputs: inputs
                .iter()
                .map(|name| InputInfo::named(name.to_string()))
                .collect(),
            outputs: outputs
                .iter()
                .map(|(name, dynamic)| OutputInfo {
                    name: name.to_string(),
                    dynamic: *dynamic,
                    description: String::new(),
                    schema: None,
                    required: true,
                })
                .collect(),
            config_schema: None,
        }
    }

    /// Whether the op declares an input called `name`.
    pub fn has_input(&self, name: &str) -> bool {
        self.inputs.iter().any(|input| input.name == name)
    }

    /// Input names, comma-separated, for error messages.
    pub fn input_names(&self) -> String {
        join(self.inputs.iter().map(|i| i.name.as_str()))
    }

    /// The declared output called `name`.
    pub fn output(&self, name: &str) -> Option<&OutputInfo> {
        self.outputs.iter().find(|output| output.name == name)
    }

    /// Output names, comma-separated, for error messages.
    pub fn output_names(&self) -> String {
        join(self.outputs.iter().map(|o| o.name.as_str()))
    }
}

/// Joins names for an error message; `(none)` when there are none.
pub fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let joined = names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if joined.is_empty() {
        "(none)".to_string()
    } else {
        joined
    }
}

//! What a component says about its ops (`describe`), in host types so that planning and
//! validation do not depend on wasmtime.

/// One op of a component.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OpInfo {
    pub name: String,
    pub description: String,
    /// Input names the job must wire.
    pub inputs: Vec<String>,
    pub outputs: Vec<OutputInfo>,
}

/// One declared output of an op.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutputInfo {
    pub name: String,
    /// A dynamic output yields any number of keyed values and must be mapped or collected.
    pub dynamic: bool,
    pub description: String,
}

impl OpInfo {
    /// An op without descriptions: `outputs` are (name, dynamic?) pairs. For tests and fuzzing.
    pub fn new(name: &str, inputs: &[&str], outputs: &[(&str, bool)]) -> Self {
        OpInfo {
            name: name.to_string(),
            description: String::new(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: outputs
                .iter()
                .map(|(name, dynamic)| OutputInfo {
                    name: name.to_string(),
                    dynamic: *dynamic,
                    description: String::new(),
                })
                .collect(),
        }
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

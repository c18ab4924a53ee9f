//! Step identity: an op of the plan plus the path of mapping keys that cloned it.

use std::fmt;

/// Identifies one step of a run: `op` for a plain step, `op[key]` for a clone and
/// `op[outer][inner]` for a clone of a clone (Dagster's `ResolvedFromDynamicStepHandle`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepKey {
    /// Index of the op in the plan.
    pub node: usize,
    /// Mapping keys, outermost first; as many as the op's mapping depth.
    pub keys: Vec<String>,
}

impl StepKey {
    /// The key of the step `node` cloned by `keys`.
    pub fn new(node: usize, keys: Vec<String>) -> Self {
        StepKey { node, keys }
    }

    /// Renders the key with the op's name, e.g. `compute_piece[7]`.
    pub fn display<'a>(&'a self, name: &'a str) -> StepKeyDisplay<'a> {
        StepKeyDisplay {
            name,
            keys: &self.keys,
        }
    }
}

/// Reads back a rendered key such as `op[a][b]` as its op name and mapping keys; `None` when
/// it is not of that form.
pub fn parse(text: &str) -> Option<(&str, Vec<&str>)> {
    let Some((name, rest)) = text.split_once('[') else {
        return Some((text, Vec::new()));
    };
    let keys = rest.strip_suffix(']')?.split("][").collect();
    Some((name, keys))
}

/// [`StepKey`] rendered with the op's name.
pub struct StepKeyDisplay<'a> {
    name: &'a str,
    keys: &'a [String],
}

impl fmt::Display for StepKeyDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        for key in self.keys {
            write!(f, "[{key}]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_dagster_style_keys() {
        let plain = StepKey::new(0, vec![]);
        assert_eq!(plain.display("merge").to_string(), "merge");
        let clone = StepKey::new(1, vec!["7".into()]);
        assert_eq!(
            clone.display("compute_piece").to_string(),
            "compute_piece[7]"
        );
        let nested = StepKey::new(2, vec!["a".into(), "b".into()]);
        assert_eq!(nested.display("op").to_string(), "op[a][b]");
    }

    #[test]
    fn reads_rendered_keys_back() {
        assert_eq!(parse("merge"), Some(("merge", vec![])));
        assert_eq!(parse("op[a][b]"), Some(("op", vec!["a", "b"])));
        assert_eq!(parse("op[a"), None);
    }
}

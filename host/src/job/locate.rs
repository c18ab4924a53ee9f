//! Where an op, or one of its inputs, is written in a job file's text: errors found after
//! parsing (wiring, cycles, config) point there by line and column, as parse errors do.

use toml::de::{DeTable, DeValue};

/// The 1-based line and column of `[ops.OP]`'s input `input` (or of the op itself when
/// `input` is `None` or not written) in job file `text`; `None` when the op is not in it (it
/// came from a run config, say) or the text does not parse.
pub fn locate(text: &str, op: &str, input: Option<&str>) -> Option<(usize, usize)> {
    let root = DeTable::parse(text).ok()?;
    let ops = table(root.get_ref(), "ops")?;
    let (key, spec) = ops.iter().find(|(key, _)| key.get_ref().as_ref() == op)?;
    let span = input
        .and_then(|input| {
            let DeValue::Table(spec) = spec.get_ref() else {
                return None;
            };
            let (key, _) = table(spec, "inputs")?
                .iter()
                .find(|(key, _)| key.get_ref().as_ref() == input)?;
            Some(key.span())
        })
        .unwrap_or_else(|| key.span());
    Some(line_and_column(text, span.start))
}

fn table<'a, 'i>(table: &'a DeTable<'i>, name: &str) -> Option<&'a DeTable<'i>> {
    let (_, value) = table
        .iter()
        .find(|(key, _)| key.get_ref().as_ref() == name)?;
    match value.get_ref() {
        DeValue::Table(table) => Some(table),
        _ => None,
    }
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "[components.c]\npath = 'c.wasm'\n\n[ops.a]\ncomponent = 'c'\nop = 'x'\n\
                       inputs.values = { collect = 'nope' }\n\n\
                       [ops.b]\ncomponent = 'c'\nop = 'x'\n[ops.b.inputs]\nv = { from = 'a' }\n";

    #[test]
    fn finds_ops_and_their_inputs_in_either_spelling() {
        assert_eq!(locate(JOB, "a", Some("values")), Some((7, 8)));
        assert_eq!(locate(JOB, "a", None), Some((4, 6)));
        assert_eq!(locate(JOB, "b", Some("v")), Some((13, 1)));
        // An input not written in the file points at its op.
        assert_eq!(locate(JOB, "b", Some("w")), Some((9, 6)));
        assert_eq!(locate(JOB, "c", None), None);
        assert_eq!(locate("not toml [", "a", None), None);
    }
}

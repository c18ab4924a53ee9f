//! The names of the event kinds, as the `event` field spells them, for choosing events by kind
//! (`host events --type`). The list is serde's: the derive of [`EventKind`] knows every name
//! and hands them to a deserializer's error on meeting one it does not know, so a new kind is
//! listed without being written down twice.

use serde::Deserialize;
use serde::de::value::MapDeserializer;

use super::EventKind;

/// An event name no kind has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type `{name}` (known: {})", names().join(", "))]
pub struct UnknownEventType {
    pub name: String,
}

/// Every event kind's name, in declaration order.
pub fn names() -> &'static [&'static str] {
    let probe = MapDeserializer::<_, Expected>::new(std::iter::once(("event", "")));
    match EventKind::deserialize(probe) {
        Err(Expected(Some(names))) => names,
        _ => unreachable!("no event kind is named by the empty string"),
    }
}

/// The kind named `text` (any case), spelled as the `event` field spells it.
pub fn parse_name(text: &str) -> Result<&'static str, UnknownEventType> {
    let text = text.trim();
    names()
        .iter()
        .find(|name| name.eq_ignore_ascii_case(text))
        .copied()
        .ok_or_else(|| UnknownEventType {
            name: text.to_string(),
        })
}

/// The error [`names`] deserializes with: it keeps the names serde expected.
#[derive(Debug)]
struct Expected(Option<&'static [&'static str]>);

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not an event kind")
    }
}

impl std::error::Error for Expected {}

impl serde::de::Error for Expected {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Expected(None)
    }

    fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
        Expected(Some(expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_are_those_of_the_event_field() {
        let names = names();
        let kinds: std::collections::HashSet<&str> = super::super::tests::every_kind()
            .iter()
            .map(EventKind::name)
            .collect();
        for kind in &kinds {
            assert!(names.contains(kind), "{kind} is missing");
        }
        assert_eq!(names.len(), kinds.len());
        assert_eq!(names[0], "RUN_START");
    }

    #[test]
    fn a_name_parses_in_any_case_and_an_unknown_one_lists_the_known() {
        assert_eq!(parse_name("STEP_FAILURE"), Ok("STEP_FAILURE"));
        assert_eq!(parse_name(" step_output "), Ok("STEP_OUTPUT"));
        let err = parse_name("STEP_EXPLODED").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("unknown event type `STEP_EXPLODED` (known: RUN_START, STEP_START, "),
            "{text}"
        );
        assert!(text.contains(", RUN_CANCELED"), "{text}");
        assert!(parse_name("").is_err());
    }
}

//! How the pages write times, durations, statuses and values.

use maud::{Markup, html};

use crate::store::RunStatus;

/// A Unix time as `2026-11-30 14:02:11 UTC`.
pub fn when(unix: f64) -> String {
    humantime::format_rfc3339_seconds(crate::events::unix_time(unix))
        .to_string()
        .replacen('T', " ", 1)
        .replace('Z', " UTC")
}

/// A duration in seconds, to a precision that fits its size.
pub fn took(seconds: f64) -> String {
    match seconds {
        s if s < 0.01 => format!("{:.2} ms", s * 1e3),
        s if s < 1.0 => format!("{:.0} ms", s * 1e3),
        s if s < 60.0 => format!("{s:.2} s"),
        s => {
            let whole = s.round() as u64;
            format!("{} min {} s", whole / 60, whole % 60)
        }
    }
}

/// A run's status as a badge.
pub fn status(status: RunStatus) -> Markup {
    let name = status.as_str();
    html! { span class={"badge " (name.to_lowercase())} { (name) } }
}

/// A JSON value, pretty-printed, cut at `limit` bytes with a note of what was left out.
pub fn json(value: &serde_json::Value, limit: usize) -> String {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    if text.len() <= limit {
        return text;
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}\n… {} more bytes (`host output` prints it all)",
        &text[..cut],
        text.len() - cut
    )
}

/// `path` with `pairs` as its query, the values encoded.
pub fn href(path: &str, pairs: &[(&str, &str)]) -> String {
    let pairs: Vec<_> = pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
    if pairs.is_empty() {
        return path.to_string();
    }
    let query = serde_urlencoded::to_string(pairs).expect("a flat query");
    format!("{path}?{query}")
}

/// A labelled filter: select `name` offering "any", then `choices`, with `selected` chosen.
pub fn choose<'a>(
    name: &str,
    label: &str,
    choices: impl IntoIterator<Item = &'a str>,
    selected: &str,
) -> Markup {
    html! {
        label for=(name) { (label) }
        select id=(name) name=(name) {
            option value="" { "any" }
            @for choice in choices {
                option value=(choice) selected[choice == selected] { (choice) }
            }
        }
    }
}

/// What the pages show of a value at most.
pub const VALUE_LIMIT: usize = 64 << 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_read_plainly() {
        assert_eq!(when(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(took(0.0123), "12 ms");
        assert_eq!(took(0.000_25), "0.25 ms");
        assert_eq!(took(3.5), "3.50 s");
        assert_eq!(took(125.0), "2 min 5 s");
    }

    #[test]
    fn links_encode_their_query_and_leave_out_empty_values() {
        assert_eq!(
            href("/runs/r/step", &[("key", "op[a b]"), ("x", "")]),
            "/runs/r/step?key=op%5Ba+b%5D"
        );
        assert_eq!(href("/runs/r/log", &[("kind", "")]), "/runs/r/log");
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        let value = serde_json::json!("ééééé");
        let text = json(&value, 4);
        assert!(text.starts_with("\"é"), "{text}");
        assert!(text.contains("more bytes"), "{text}");
        assert_eq!(json(&value, 1000), "\"ééééé\"");
    }
}

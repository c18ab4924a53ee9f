//! The README's CLI reference checked against the command line itself: every command has a
//! line, and a line names exactly the flags its command takes (a line ending in `(see ...)`
//! points to a section of its own and may name only some).

use std::collections::BTreeSet;

use clap::CommandFactory;

use super::Cli;

const README: &str = include_str!("../../../README.md");

/// The lines of the first code block after the `## CLI` heading.
fn reference() -> Vec<&'static str> {
    let (_, after) = README
        .split_once("\n## CLI\n")
        .expect("README has a `## CLI` section");
    let (_, block) = after.split_once("```text\n").expect("a ```text block");
    let (block, _) = block.split_once("```").expect("the block ends");
    block.lines().collect()
}

/// The `--flags` a line names.
fn flags(line: &str) -> BTreeSet<String> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readme_lists_every_command_with_exactly_its_flags() {
    let lines = reference();
    let cli = Cli::command();
    let globals: BTreeSet<_> = cli
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .collect();
    for command in cli.get_subcommands() {
        let name = command.get_name();
        let prefix = format!("host {name}");
        let line = lines
            .iter()
            .find(|line| {
                line.strip_prefix(&prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
            })
            .unwrap_or_else(|| panic!("the README's CLI reference has no line for `{prefix}`"));
        let actual: BTreeSet<String> = command
            .get_arguments()
            .filter_map(|arg| arg.get_long())
            .filter(|long| !globals.contains(long) && *long != "help")
            .map(|long| format!("--{long}"))
            .collect();
        let documented = flags(line);
        let unknown: Vec<_> = documented.difference(&actual).collect();
        assert!(
            unknown.is_empty(),
            "`{prefix}` takes no {unknown:?}; it takes {actual:?}"
        );
        if !line.contains("(see ") {
            let missing: Vec<_> = actual.difference(&documented).collect();
            assert!(
                missing.is_empty(),
                "the README's line for `{prefix}` lacks {missing:?}"
            );
        }
    }
}

#[test]
fn the_readme_names_the_global_flags() {
    let section = README.split_once("\n## CLI\n").expect("a CLI section").1;
    for arg in Cli::command().get_arguments() {
        if let Some(long) = arg.get_long() {
            assert!(
                section.contains(&format!("--{long}")),
                "the README's CLI section does not mention `--{long}`"
            );
        }
    }
}

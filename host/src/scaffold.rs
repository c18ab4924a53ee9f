//! `host new NAME --lang rust|python|js`: a ready-to-build op project and a job file that runs
//! it. Python and JavaScript projects carry a copy of their SDK (a few source files and the
//! WIT), so that they build wherever they are; a Rust project depends on the SDK crate of the
//! checkout this host was built from.

use std::path::{Path, PathBuf};

/// The languages `host new` writes projects in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

/// Why a project could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "invalid project name `{0}`: use lowercase letters, digits, `-` and `_`, starting with a \
         letter"
    )]
    BadName(String),
    #[error("`{}` already exists; choose another name or remove it", .0.display())]
    Exists(PathBuf),
    #[error(
        "the Rust SDK is not at `{}`, where the checkout this host was built from had it; build \
         `host` from a checkout of Shoal (`cargo install --path host`) and run it from there",
        .0.display()
    )]
    NoRustSdk(PathBuf),
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One file of a template: its path in the project, and its text with `{{...}}` placeholders.
type File = (&'static str, &'static str);

/// The Rust SDK crate this host was built beside (`sdk/rust` of the checkout).
const RUST_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk/rust");

const RUST: &[File] = &[
    ("Cargo.toml", include_str!("../templates/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("../templates/rust/src/lib.rs")),
    ("job.toml", include_str!("../templates/rust/job.toml")),
    (".gitignore", include_str!("../templates/rust/gitignore")),
];

const PYTHON: &[File] = &[
    ("app.py", include_str!("../templates/python/app.py")),
    ("job.toml", include_str!("../templates/python/job.toml")),
    (".gitignore", include_str!("../templates/python/gitignore")),
];

/// The Python SDK, copied as it is.
const PYTHON_SDK: &[File] = &[
    (
        "shoal/__init__.py",
        include_str!("../../sdk/python/shoal/__init__.py"),
    ),
    (
        "shoal/_component.py",
        include_str!("../../sdk/python/shoal/_component.py"),
    ),
    (
        "shoal/_core.py",
        include_str!("../../sdk/python/shoal/_core.py"),
    ),
    (
        "shoal/cbor.py",
        include_str!("../../sdk/python/shoal/cbor.py"),
    ),
    (
        "shoal/events.py",
        include_str!("../../sdk/python/shoal/events.py"),
    ),
    (
        "shoal/schema.py",
        include_str!("../../sdk/python/shoal/schema.py"),
    ),
    (
        "shoal/testing.py",
        include_str!("../../sdk/python/shoal/testing.py"),
    ),
    ("wit/op.wit", include_str!("../../sdk/python/wit/op.wit")),
];

const JS: &[File] = &[
    ("op.js", include_str!("../templates/js/op.js")),
    ("job.toml", include_str!("../templates/js/job.toml")),
    (".gitignore", include_str!("../templates/js/gitignore")),
];

/// The JavaScript SDK, copied as it is.
const JS_SDK: &[File] = &[
    ("shoal/shoal.js", include_str!("../../sdk/js/shoal.js")),
    ("shoal/core.js", include_str!("../../sdk/js/core.js")),
    ("shoal/cbor.js", include_str!("../../sdk/js/cbor.js")),
    ("shoal/events.js", include_str!("../../sdk/js/events.js")),
    ("shoal/wit/op.wit", include_str!("../../sdk/js/wit/op.wit")),
];

impl Lang {
    /// The project's own files, whose placeholders are filled in.
    fn files(self) -> &'static [File] {
        match self {
            Lang::Rust => RUST,
            Lang::Python => PYTHON,
            Lang::Js => JS,
        }
    }

    /// The SDK files a project carries, copied as they are.
    fn sdk(self) -> &'static [File] {
        match self {
            Lang::Rust => &[],
            Lang::Python => PYTHON_SDK,
            Lang::Js => JS_SDK,
        }
    }
}

/// Creates project `name` in a new directory `parent/name`; returns the directory.
pub fn create(parent: &Path, name: &str, lang: Lang) -> Result<PathBuf, ScaffoldError> {
    check_name(name)?;
    let rust_sdk = std::path::absolute(RUST_SDK).unwrap_or_else(|_| PathBuf::from(RUST_SDK));
    if lang == Lang::Rust && !rust_sdk.join("Cargo.toml").is_file() {
        return Err(ScaffoldError::NoRustSdk(rust_sdk));
    }
    // A TOML string, quotes and all, whatever the path holds.
    let rust_sdk = toml::Value::String(rust_sdk.to_string_lossy().into_owned()).to_string();
    let dir = parent.join(name);
    std::fs::create_dir(&dir).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => ScaffoldError::Exists(dir.clone()),
        _ => ScaffoldError::Write {
            path: dir.clone(),
            source,
        },
    })?;
    let snake = name.replace('-', "_");
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", &snake)
            .replace("{{component}}", &snake)
            .replace("{{rust_sdk}}", &rust_sdk)
    };
    let files = (lang.files().iter()).map(|(path, text)| (path, fill(text)));
    let sdk = (lang.sdk().iter()).map(|(path, text)| (path, text.to_string()));
    for (path, text) in files.chain(sdk) {
        let path = dir.join(path);
        let write_error = |source| ScaffoldError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_error)?;
        }
        std::fs::write(&path, text).map_err(write_error)?;
    }
    Ok(dir)
}

/// A name that is a valid crate, package and component name all at once.
fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.len() <= 64;
    if valid {
        Ok(())
    } else {
        Err(ScaffoldError::BadName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            let dir = tempfile::tempdir().unwrap();
            let project = create(dir.path(), "word-count", lang).unwrap();
            for (path, _) in lang.files() {
                let text = std::fs::read_to_string(project.join(path)).unwrap();
                assert!(!text.contains("{{"), "{lang:?} {path}: {text}");
            }
            let job = std::fs::read_to_string(project.join("job.toml")).unwrap();
            assert!(job.contains("[components.word_count]"), "{job}");
        }
    }

    /// Every file of an SDK's package is copied into new projects.
    #[test]
    fn projects_carry_every_file_of_their_sdk() {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        for (lang, dir, copied_as, of) in [
            (Lang::Python, "python/shoal", "shoal", "py"),
            (Lang::Js, "js", "shoal", "js"),
        ] {
            let mut files: Vec<String> = std::fs::read_dir(sdk.join(dir))
                .unwrap()
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(&format!(".{of}")) && name != "testing.js")
                .map(|name| format!("{copied_as}/{name}"))
                .collect();
            files.sort();
            let mut copied: Vec<String> = (lang.sdk().iter())
                .map(|(path, _)| path.to_string())
                .filter(|path| path.ends_with(&format!(".{of}")))
                .collect();
            copied.sort();
            assert_eq!(copied, files, "{lang:?}");
        }
    }

    #[test]
    fn bad_names_and_existing_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "Upper", "1st", "a b", "../up", "a/b"] {
            assert!(
                matches!(
                    create(dir.path(), bad, Lang::Rust),
                    Err(ScaffoldError::BadName(_))
                ),
                "{bad:?}"
            );
        }
        create(dir.path(), "taken", Lang::Rust).unwrap();
        let err = create(dir.path(), "taken", Lang::Python).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("already exists; choose another name or remove it")
        );
    }
}

//! Building a job's components (`host build`) from the `build` command and `source` its job file
//! declares, and noticing a component older than its sources (`host run` warns).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::job::{ComponentSpec, Job};

/// Directories never searched for sources: build outputs, dependencies and caches, which change
/// when a component is built.
const NOT_SOURCES: [&str; 4] = ["target", "node_modules", "__pycache__", "dist"];
/// Most files looked at for one component's sources: the check runs before every `host run`,
/// and a `source` that names a huge tree by mistake must not make that slow.
const MOST_SOURCE_FILES: usize = 10_000;

/// Why a component could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot start the build of component `{component}` (`{command}`)")]
    Start {
        component: String,
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the build of component `{component}` failed ({status}): `{command}`{}",
        not_found_hint(status)
    )]
    Failed {
        component: String,
        command: String,
        status: std::process::ExitStatus,
    },
    #[error(
        "the build of component `{component}` succeeded but did not write `{}`; fix its `path` \
         or its `build` command",
        path.display()
    )]
    NoOutput { component: String, path: PathBuf },
    #[error("no component of the job has a `build` command to run{}", only_hint(.0))]
    NothingToBuild(Vec<String>),
    #[error("the job has no component `{0}`")]
    UnknownComponent(String),
}

/// Shells exit 127 when they cannot find the command.
fn not_found_hint(status: &std::process::ExitStatus) -> &'static str {
    if status.code() == Some(127) {
        "\nhelp: the shell did not find the program it runs: install it, or put it on PATH"
    } else {
        ""
    }
}

fn only_hint(components: &[String]) -> String {
    if components.is_empty() {
        " (add `build = \"...\"` to a `[components.NAME]` table)".to_string()
    } else {
        format!(" among `{}`", components.join("`, `"))
    }
}

/// Runs the `build` command of each component of `job` (of those named in `only`, when not
/// empty), in order, in the job file's directory `job_dir` (which its relative paths are
/// relative to); `announce` is told each before it starts. Returns the components built. The
/// job is only parsed, not checked: a build must not wait for the directories its ops will be
/// granted.
pub fn build(
    job: &Job,
    job_dir: &Path,
    only: &[String],
    mut announce: impl FnMut(&str, &str),
) -> Result<Vec<String>, BuildError> {
    if let Some(unknown) = only.iter().find(|c| !job.components.contains_key(*c)) {
        return Err(BuildError::UnknownComponent(unknown.clone()));
    }
    let chosen = job
        .components
        .iter()
        .filter(|(name, _)| only.is_empty() || only.contains(name));
    let mut built = Vec::new();
    for (name, spec) in chosen {
        let Some(command) = &spec.build else { continue };
        announce(name, command);
        let output = spec.path.as_ref().map(|path| job_dir.join(path));
        let failed = |source| BuildError::Start {
            component: name.clone(),
            command: command.clone(),
            source,
        };
        let status = shell(command)
            .current_dir(job_dir)
            .status()
            .map_err(failed)?;
        if !status.success() {
            return Err(BuildError::Failed {
                component: name.clone(),
                command: command.clone(),
                status,
            });
        }
        // Present after the build (incremental builds may leave an up-to-date one as it was).
        if let Some(path) = output
            && !path.exists()
        {
            return Err(BuildError::NoOutput {
                component: name.clone(),
                path,
            });
        }
        built.push(name.clone());
    }
    if built.is_empty() {
        return Err(BuildError::NothingToBuild(only.to_vec()));
    }
    Ok(built)
}

/// `command` run by the platform's shell, so that a job file can chain steps with `&&`.
fn shell(command: &str) -> Command {
    let mut shell = if cfg!(windows) {
        let mut cmd = Command::new("cmd");
        cmd.arg("/C");
        cmd
    } else {
        // By its path: a PATH without the tools the command needs is still a PATH we can run
        // the shell with.
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c");
        cmd
    };
    shell.arg(command);
    shell
}

/// The newest file among `spec`'s sources, when it is newer than the component file: the
/// component was not rebuilt since that file changed.
pub fn newer_source(spec: &ComponentSpec) -> Option<PathBuf> {
    let (component, source) = (spec.path.as_ref()?, spec.source.as_ref()?);
    let built = modified(component)?;
    let mut left = MOST_SOURCE_FILES;
    let (changed, path) = newest(source, &mut left)?;
    (changed > built).then_some(path)
}

/// The newest modification time under `path` (a file, or a directory searched recursively past
/// hidden and build directories, and symbolic links to directories, which may loop), with the
/// file that has it; looks at no more than `left` files.
fn newest(path: &Path, left: &mut usize) -> Option<(SystemTime, PathBuf)> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        *left = left.checked_sub(1)?;
        return Some((meta.modified().ok()?, path.to_path_buf()));
    }
    let mut newest_found: Option<(SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(path).ok()?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let linked_dir = entry.file_type().is_ok_and(|t| t.is_symlink()) && entry.path().is_dir();
        if name.starts_with('.') || NOT_SOURCES.contains(&name.as_ref()) || linked_dir {
            continue;
        }
        if *left == 0 {
            break;
        }
        if let Some(found) = newest(&entry.path(), left)
            && newest_found
                .as_ref()
                .is_none_or(|(time, _)| found.0 > *time)
        {
            newest_found = Some(found);
        }
    }
    newest_found
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn touch(path: &Path, age: Duration) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
        let when = SystemTime::now() - age;
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    fn spec(dir: &Path) -> ComponentSpec {
        ComponentSpec {
            path: Some(dir.join("out/op.wasm")),
            name: None,
            build: Some("true".to_string()),
            source: Some(dir.join("src")),
        }
    }

    #[test]
    fn a_component_built_after_its_sources_is_current() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("src/lib.rs"), Duration::from_secs(60));
        touch(&dir.path().join("out/op.wasm"), Duration::from_secs(10));
        assert_eq!(newer_source(&spec(dir.path())), None);
    }

    #[test]
    fn the_newest_changed_source_is_named() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("out/op.wasm"), Duration::from_secs(60));
        touch(&dir.path().join("src/a.rs"), Duration::from_secs(120));
        touch(&dir.path().join("src/deep/b.rs"), Duration::from_secs(5));
        assert_eq!(
            newer_source(&spec(dir.path())),
            Some(dir.path().join("src/deep/b.rs"))
        );
    }

    #[test]
    fn build_outputs_and_hidden_files_are_not_sources() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("out/op.wasm"), Duration::from_secs(60));
        touch(&dir.path().join("src/a.rs"), Duration::from_secs(120));
        for skipped in ["src/target/x", "src/node_modules/y.js", "src/.cache/z"] {
            touch(&dir.path().join(skipped), Duration::ZERO);
        }
        assert_eq!(newer_source(&spec(dir.path())), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_loop_under_the_source_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("out/op.wasm"), Duration::from_secs(60));
        touch(&dir.path().join("src/a.rs"), Duration::from_secs(5));
        std::os::unix::fs::symlink(dir.path().join("src"), dir.path().join("src/loop")).unwrap();
        assert_eq!(
            newer_source(&spec(dir.path())),
            Some(dir.path().join("src/a.rs"))
        );
    }

    /// A job of `components` tables and one op.
    fn job(components: &str) -> Job {
        let text = format!("{components}[ops.x]\ncomponent = 'a'\n");
        crate::job::LoadedJob::parse_text_only(&text, Path::new("job.toml")).unwrap()
    }

    #[test]
    fn a_build_runs_in_the_job_directory_and_must_write_the_component() {
        let dir = tempfile::tempdir().unwrap();
        let ok = job(
            "[components.a]\npath = 'a.wasm'\nbuild = 'echo x > a.wasm'\n\
                      [components.b]\npath = 'b.wasm'\n",
        );
        let mut announced = Vec::new();
        let built = build(&ok, dir.path(), &[], |name, _| {
            announced.push(name.to_string())
        });
        assert_eq!(built.unwrap(), ["a"]);
        assert_eq!(announced, ["a"]);
        // A build that writes no component did not build it.
        let nothing = job("[components.a]\npath = 'none.wasm'\nbuild = 'true'\n");
        let err = build(&nothing, dir.path(), &[], |_, _| {}).unwrap_err();
        assert!(matches!(err, BuildError::NoOutput { .. }), "{err}");
        let failing = job("[components.a]\npath = 'a.wasm'\nbuild = 'exit 3'\n");
        let err = build(&failing, dir.path(), &[], |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("exit status: 3"), "{err}");
    }

    #[test]
    fn unknown_components_and_nothing_to_build_are_said() {
        let dir = tempfile::tempdir().unwrap();
        let plain = job("[components.a]\npath = 'a.wasm'\n");
        let only = |name: &str| vec![name.to_string()];
        let err = build(&plain, dir.path(), &only("zz"), |_, _| {}).unwrap_err();
        assert_eq!(err.to_string(), "the job has no component `zz`");
        let err = build(&plain, dir.path(), &[], |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("add `build = \"...\"`"), "{err}");
        let err = build(&plain, dir.path(), &only("a"), |_, _| {}).unwrap_err();
        assert!(err.to_string().ends_with("among `a`"), "{err}");
    }

    #[test]
    fn without_a_source_or_a_built_component_nothing_is_said() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("src/a.rs"), Duration::ZERO);
        assert_eq!(newer_source(&spec(dir.path())), None);
        let mut no_source = spec(dir.path());
        no_source.source = None;
        assert_eq!(newer_source(&no_source), None);
    }
}

//! `host doctor`: checks what a run needs on this machine and, given a job, each of its
//! components, saying for each problem how to fix it. Exits 1 when a check failed.

use std::path::Path;
use std::process::{Command, ExitCode};

use crate::app::{self, App};
use crate::job::LoadedJob;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    /// Works, but something may bite later.
    Warn,
    Fail,
}

/// The checks' findings, printed as they come.
#[derive(Default)]
struct Findings {
    failed: usize,
}

impl Findings {
    fn say(&mut self, verdict: Verdict, what: &str, help: Option<&str>) {
        let label = match verdict {
            Verdict::Ok => console::style("ok  ").green(),
            Verdict::Warn => console::style("warn").yellow(),
            Verdict::Fail => console::style("fail").red().bold(),
        };
        eprintln!("{label}  {what}");
        if let Some(help) = help {
            eprintln!("      help: {help}");
        }
        if verdict == Verdict::Fail {
            self.failed += 1;
        }
    }
}

/// Runs the checks; `job`'s components too when given.
pub async fn check(job: Option<&Path>, store_dir: &Path) -> anyhow::Result<ExitCode> {
    let mut findings = Findings::default();
    store(&mut findings, store_dir);
    cache(&mut findings, store_dir);
    tools(&mut findings);
    if let Some(job) = job {
        components(&mut findings, job, store_dir).await;
    }
    Ok(if findings.failed == 0 {
        eprintln!("no problems found");
        ExitCode::SUCCESS
    } else {
        eprintln!("{} problem(s) found", findings.failed);
        ExitCode::from(1)
    })
}

fn store(findings: &mut Findings, store_dir: &Path) {
    let shown = store_dir.display();
    // Opening a store creates or migrates it: a diagnosis must change nothing.
    if !store_dir.join(crate::store::DATABASE_FILE).exists() {
        findings.say(
            Verdict::Ok,
            &format!("run store `{shown}`: none yet (the first run creates it)"),
            None,
        );
        return;
    }
    match App::open(store_dir).and_then(|app| Ok(app.runs()?.len())) {
        Ok(runs) => {
            let size = bytesize::ByteSize(dir_size(store_dir));
            findings.say(
                Verdict::Ok,
                &format!("run store `{shown}`: {runs} run(s), {size} on disk"),
                None,
            );
        }
        Err(err) => findings.say(
            Verdict::Fail,
            &format!("run store `{shown}`: {err}"),
            Some("choose another with --store DIR or SHOAL_STORE"),
        ),
    }
}

fn cache(findings: &mut Findings, store_dir: &Path) {
    let dir = app::cache_dir(store_dir);
    let probe = dir.join(format!(".doctor-{}", std::process::id()));
    let writable = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe));
    match writable {
        Ok(()) => findings.say(
            Verdict::Ok,
            &format!(
                "compile cache `{}`: {}",
                dir.display(),
                bytesize::ByteSize(dir_size(&dir))
            ),
            None,
        ),
        Err(err) => findings.say(
            Verdict::Warn,
            &format!("compile cache `{}` is not writable: {err}", dir.display()),
            Some("components are compiled again on every run until it is"),
        ),
    }
}

/// The tools that build ops, each needed only for ops in its language.
fn tools(findings: &mut Findings) {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out)
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|t| t == "wasm32-wasip2") =>
        {
            findings.say(Verdict::Ok, "Rust target wasm32-wasip2 installed", None);
        }
        Ok(_) => findings.say(
            Verdict::Warn,
            "Rust target wasm32-wasip2 is not installed (needed to build Rust ops)",
            Some("rustup target add wasm32-wasip2"),
        ),
        Err(_) => findings.say(
            Verdict::Warn,
            "rustup not found (needed to build Rust ops)",
            Some("install Rust from https://rustup.rs, then: rustup target add wasm32-wasip2"),
        ),
    }
    for (tool, language, install) in [
        (
            "componentize-py",
            "Python",
            "bash .ci/tools-python in a Shoal checkout, or pip install componentize-py",
        ),
        (
            "jco",
            "JavaScript",
            "bash .ci/tools-js in a Shoal checkout, or npm install -g @bytecodealliance/jco",
        ),
    ] {
        if on_path(tool) {
            findings.say(Verdict::Ok, &format!("`{tool}` found"), None);
        } else {
            findings.say(
                Verdict::Warn,
                &format!("`{tool}` not on PATH (needed to build {language} ops)"),
                Some(install),
            );
        }
    }
}

/// Each component of `job`: present, not older than its source, and loadable.
async fn components(findings: &mut Findings, job: &Path, store_dir: &Path) {
    let loaded = match LoadedJob::load(job) {
        Ok(loaded) => loaded,
        Err(err) => {
            findings.say(
                Verdict::Fail,
                &format!("job `{}`: {err}", job.display()),
                None,
            );
            return;
        }
    };
    let build_hint = format!("host build {}", job.display());
    for (name, spec) in &loaded.job.components {
        let Some(path) = &spec.path else {
            findings.say(
                Verdict::Fail,
                &format!("component `{name}` has no `path`"),
                Some("`host run` needs the component's file"),
            );
            continue;
        };
        let shown = format!("component `{name}` (`{}`)", path.display());
        if let Some(program) = spec.build.as_deref().and_then(build_program)
            && !on_path(program)
        {
            findings.say(
                Verdict::Warn,
                &format!("{shown}: its build command's program `{program}` is not on PATH"),
                None,
            );
        }
        if !path.exists() {
            let help = spec.build.as_ref().map(|_| build_hint.as_str());
            findings.say(Verdict::Fail, &format!("{shown} is not built"), help);
            continue;
        }
        if let Some(changed) = crate::build::newer_source(spec) {
            findings.say(
                Verdict::Warn,
                &format!("{shown} is older than `{}`", changed.display()),
                Some(&build_hint),
            );
        }
        match app::describe(path, Some(store_dir)).await {
            Ok(ops) => findings.say(
                Verdict::Ok,
                &format!("{shown} loads: {} op(s)", ops.len()),
                None,
            ),
            Err(err) => findings.say(Verdict::Fail, &format!("{shown}: {err}"), None),
        }
    }
}

/// The program a build command starts, when it is one to look for on PATH: not a path, a
/// shell builtin or keyword (`cd x && make`), nor after `NAME=value` assignments.
fn build_program(command: &str) -> Option<&str> {
    const SHELL_WORDS: [&str; 12] = [
        "cd", "export", "set", "exec", "if", "for", "while", "test", "[", "(", ".", "source",
    ];
    let program = command
        .split_whitespace()
        .find(|word| !word.contains('='))?;
    (!program.contains('/') && !SHELL_WORDS.contains(&program)).then_some(program)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The bytes of the files under `dir`, not following links.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_size(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

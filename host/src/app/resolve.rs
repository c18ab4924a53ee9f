//! Naming a recorded run on the command line: its id, a unique prefix of it (ids are long), or
//! `latest`.

use super::AppError;
use crate::store::RunStore;

/// The name of the newest run.
const LATEST: &str = "latest";

/// The ids an ambiguous prefix's error shows.
const SHOWN: usize = 5;

/// The id of the run `name` names: `latest` for the newest run, else the run whose id is
/// `name` or the only one whose id starts with it.
pub fn run_id(store: &dyn RunStore, name: &str) -> Result<String, AppError> {
    if name == LATEST {
        let newest = store.runs_starting_with("", Some(1))?;
        return newest
            .into_iter()
            .next()
            .map(|run| run.id)
            .ok_or(AppError::NoRuns);
    }
    // Every id starts with "": `host rm "$RUN"` with RUN unset must not pick a run.
    if name.trim().is_empty() {
        return Err(AppError::NoRunMatches(name.to_string()));
    }
    let matches = store.runs_starting_with(name, None)?;
    if let Some(exact) = matches.iter().find(|run| run.id == name) {
        return Ok(exact.id.clone());
    }
    match matches.as_slice() {
        [] => Err(AppError::NoRunMatches(name.to_string())),
        [only] => Ok(only.id.clone()),
        several => {
            let mut shown = crate::op_info::join(several.iter().take(SHOWN).map(|r| r.id.as_str()));
            if several.len() > SHOWN {
                shown.push_str(", ...");
            }
            Err(AppError::AmbiguousRun {
                prefix: name.to_string(),
                count: several.len(),
                shown,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RunRecord, RunStatus, SqliteStore};

    /// A store holding runs `ids`, started in that order.
    fn store_with(ids: &[&str]) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        for (started, id) in ids.iter().enumerate() {
            let run = RunRecord {
                id: (*id).to_string(),
                job_name: "job".into(),
                job_path: "/job.toml".into(),
                config_path: None,
                status: RunStatus::Running,
                started: started as f64,
                finished: None,
                parent: None,
                owner: None,
                tenant: None,
                tags: Default::default(),
            };
            let snapshot = crate::snapshot::RunSnapshot {
                job_path: "/job.toml".into(),
                job_text: String::new(),
                config_path: None,
                config_text: None,
                components: indexmap::IndexMap::new(),
                tags: Default::default(),
                launch: Default::default(),
            };
            store.begin_run(&run, &snapshot, &[]).unwrap();
        }
        (dir, store)
    }

    #[test]
    fn a_unique_prefix_or_the_whole_id_names_a_run() {
        let (_dir, store) = store_with(&["abc1", "abd2", "b"]);
        assert_eq!(run_id(&store, "abc").unwrap(), "abc1");
        assert_eq!(run_id(&store, "abd2").unwrap(), "abd2");
        assert_eq!(run_id(&store, "b").unwrap(), "b");
    }

    #[test]
    fn an_id_that_prefixes_another_names_itself() {
        let (_dir, store) = store_with(&["ab", "abc"]);
        assert_eq!(run_id(&store, "ab").unwrap(), "ab");
    }

    #[test]
    fn an_ambiguous_prefix_lists_some_of_its_matches_newest_first() {
        let (_dir, store) = store_with(&["a1", "a2", "a3", "a4", "a5", "a6", "b"]);
        let err = run_id(&store, "a").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`a` is ambiguous: matches 6 runs (`a6`, `a5`, `a4`, `a3`, `a2`, ...)"
        );
    }

    #[test]
    fn a_prefix_no_run_has_is_an_error_quoting_it() {
        let (_dir, store) = store_with(&["a1"]);
        let err = run_id(&store, "xyz").unwrap_err();
        assert_eq!(err.to_string(), "no run matches `xyz`");
        // An empty name (an unset shell variable) names no run, not every run.
        for empty in ["", " "] {
            assert!(matches!(
                run_id(&store, empty),
                Err(AppError::NoRunMatches(_))
            ));
        }
    }

    #[test]
    fn latest_is_the_newest_run_and_an_error_in_an_empty_store() {
        let (_dir, empty) = store_with(&[]);
        assert_eq!(
            run_id(&empty, LATEST).unwrap_err().to_string(),
            "no runs recorded yet"
        );
        let (_dir, store) = store_with(&["b1", "a2"]);
        assert_eq!(run_id(&store, LATEST).unwrap(), "a2");
    }
}

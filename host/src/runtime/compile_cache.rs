//! The compiled-component cache: wasmtime's own, keyed by a hash of the component's bytes and
//! of every engine setting that affects code generation, so a later `host` process loads
//! machine code instead of compiling. Wasmtime loads cached code without verifying it, so
//! whoever can write to the directory can run code in the host: it is created private to the
//! user, and the CLI refuses to grant it (or the store around it) to an op.

use std::path::Path;

use wasmtime::{Cache, CacheConfig};

use super::LoadError;

/// Opens (creating, mode 0700) the cache in `dir`, which may be relative: wasmtime takes only
/// absolute paths, so it is given the canonical one.
pub(super) fn open(dir: &Path) -> Result<Cache, LoadError> {
    let error = |message: String| LoadError::Cache {
        path: dir.to_path_buf(),
        message,
    };
    create_private_dir(dir).map_err(|err| error(err.to_string()))?;
    let absolute = std::fs::canonicalize(dir).map_err(|err| error(err.to_string()))?;
    let mut config = CacheConfig::new();
    config.with_directory(absolute);
    Cache::new(config).map_err(|err| error(format!("{err:#}")))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_directory_is_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("store/cache");
        open(&dir).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "mode {mode:o}");
        }
    }

    #[test]
    fn an_unusable_directory_is_a_clear_error() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("file");
        std::fs::write(&file, "not a directory").unwrap();
        let err = open(&file.join("cache")).unwrap_err().to_string();
        assert!(
            err.contains("cannot use the compiled-component cache"),
            "{err}"
        );
    }
}

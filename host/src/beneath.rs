//! Opening a granted directory so that it cannot lead out of the root it was granted under,
//! whatever symlinks or `..` an op (or anyone) planted since the job was checked: the kernel
//! resolves the path beneath the root (`openat2` with `RESOLVE_BENEATH`), and the step is given
//! the directory that was opened, not a path that could be swapped afterwards.

use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Directory `path`, opened beneath `root`: refused if it is not a directory or if resolving it
/// (symlinks, `..`) would leave `root`.
pub fn open(root: &Path, path: &Path) -> io::Result<Opened> {
    let relative = path
        .strip_prefix(root)
        .map_err(|_| io::Error::new(io::ErrorKind::PermissionDenied, "outside the root"))?;
    let relative = if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    };
    let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
    let root = rustix::fs::open(root, flags, Mode::empty())?;
    let fd = rustix::fs::openat2(
        &root,
        relative,
        flags,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )?;
    Ok(Opened(fd))
}

/// A directory opened beneath its root, open until dropped.
pub struct Opened(OwnedFd);

impl Opened {
    /// A path naming this very directory (not whatever is at its original path now), for
    /// APIs that take a path: `/proc/self/fd/N`, valid while `self` lives.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.0.as_raw_fd()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_beneath_the_root_only() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root_path = root.path().canonicalize().unwrap();
        std::fs::create_dir(root_path.join("in")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root_path.join("out")).unwrap();
        std::os::unix::fs::symlink("../..", root_path.join("in/up")).unwrap();
        std::os::unix::fs::symlink("../in", root_path.join("in/back")).unwrap();
        assert!(open(&root_path, &root_path).is_ok());
        assert!(open(&root_path, &root_path.join("in")).is_ok());
        assert!(
            open(&root_path, &root_path.join("in/back")).is_ok(),
            "stays beneath"
        );
        for escape in ["out", "in/up", "missing"] {
            assert!(
                open(&root_path, &root_path.join(escape)).is_err(),
                "{escape}"
            );
        }
        assert!(open(&root_path, outside.path()).is_err());
        let opened = open(&root_path, &root_path.join("in")).unwrap();
        std::fs::write(root_path.join("in/file"), "x").unwrap();
        assert!(opened.path().join("file").exists());
    }
}

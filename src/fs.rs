//! File-system helpers: every error names its path (through `fs_err`), and files are written
//! atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

pub use fs_err::*;

pub mod output_tree;
pub mod place;
pub mod temporary;

/// The permissions of the files this crate writes: `rw-r--r--`, like a file written the
/// ordinary way (a temporary file starts out as `rw-------`).
#[cfg(unix)]
pub(crate) const FILE_MODE: u32 = 0o644;

/// Gives `file` (a temporary file about to be renamed into place) the permissions of an
/// ordinary file ([`FILE_MODE`] on unix; nothing to do elsewhere).
///
/// # Errors
/// Any I/O error.
pub(crate) fn set_file_mode(file: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Writes `bytes` to `path` atomically: into a temporary file in the same folder, flushed to
/// disk, then renamed over `path`. A reader never sees a half-written file. The file gets the
/// permissions of an ordinary file (`rw-r--r--` on unix).
///
/// # Errors
/// Any I/O error, naming the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_via_temporary(path, bytes, false)
}

/// Like [`write_atomic`], but never replaces: fails with [`std::io::ErrorKind::AlreadyExists`]
/// when `path` exists (also when it appears while writing), leaving it untouched.
///
/// # Errors
/// `AlreadyExists`, or any other I/O error, naming the path.
pub fn write_atomic_noclobber(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_via_temporary(path, bytes, true)
}

fn write_via_temporary(path: &Path, bytes: &[u8], noclobber: bool) -> std::io::Result<()> {
    let dir = parent_dir(path);
    fs_err::create_dir_all(&dir)?;
    let mut tmp = temporary::builder().tempfile_in(&dir).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("{e} (creating a temporary file in `{}`)", dir.display()),
        )
    })?;
    tmp.write_all(bytes)?;
    set_file_mode(tmp.as_file())?;
    tmp.as_file().sync_all()?;
    let persisted = if noclobber {
        tmp.persist_noclobber(path)
    } else {
        tmp.persist(path)
    };
    persisted.map_err(|e| {
        std::io::Error::new(
            e.error.kind(),
            format!("{} (renaming into `{}`)", e.error, path.display()),
        )
    })?;
    Ok(())
}

/// The folder `path` lives in (`.` for a bare file name).
#[must_use]
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b.txt");
        write_atomic(&path, b"one").expect("first write");
        write_atomic(&path, b"two").expect("second write");
        assert_eq!(fs_err::read_to_string(&path).expect("read"), "two");
        let names: Vec<_> = fs_err::read_dir(dir.path().join("a"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("b.txt")]);
    }

    #[cfg(unix)]
    #[test]
    fn write_atomic_gives_an_ordinary_file_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.json");
        write_atomic(&path, b"{}").expect("write");
        let mode = fs_err::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "mode {mode:o}");
    }

    #[test]
    fn write_atomic_noclobber_refuses_an_existing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new/a.txt");
        write_atomic_noclobber(&path, b"first").expect("first write");
        let err = write_atomic_noclobber(&path, b"second").expect_err("second write");
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
        assert!(err.to_string().contains("a.txt"), "{err}");
        assert_eq!(fs_err::read_to_string(&path).expect("read"), "first");
        let names: Vec<_> = fs_err::read_dir(dir.path().join("new"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.txt")]);
    }
}

//! Moving manifests between the hot folder, `processing/`, `done/` and `failed/`.
//!
//! A file is claimed by renaming it into the processing folder. On one file system the rename is
//! atomic: the file is either still in the hot folder or already claimed, and a second claimer
//! (another watcher on the same folder) fails because the file is gone. When the target folder
//! is on another file system the rename cannot work; the file is then copied into a hidden
//! temporary file next to the target, flushed to disk, renamed into place and only then removed
//! from where it was. A crash between the copy and the removal leaves the file in both places,
//! so keep the processing folder on the hot folder's file system for exactly-once claims.
//!
//! Target names never overwrite: `a.yaml` becomes `a-1.yaml`, `a-2.yaml`, ... when taken.
//!
//! A manifest that is a symbolic link is followed when it is claimed: what it points to is
//! copied into the processing folder (as across file systems) and the link is removed; the file
//! it points to is left alone. Moving the link itself would break a relative link, and the run
//! would then read nothing. A link that points nowhere is not a manifest (yet): it is not
//! claimed.

use std::ffi::{OsStr, OsString};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Suffixes of the files written next to a manifest in `done/` and `failed/`.
pub const SIDECAR_SUFFIXES: [&str; 2] = [".report.json", ".error.txt"];

/// A free name for `name` in `dir`: `name` itself, else `stem-1.ext`, `stem-2.ext`, ...
/// A name is taken when the file or one of its sidecars (`NAME.report.json`,
/// `NAME.error.txt`) exists.
#[must_use]
pub fn free_name(dir: &Path, name: &OsStr) -> OsString {
    free_name_among(&[dir], name)
}

/// A name for `name` that is free (see [`free_name`]) in every folder of `dirs` at once.
#[must_use]
pub fn free_name_among(dirs: &[&Path], name: &OsStr) -> OsString {
    let taken = |candidate: &OsStr| {
        dirs.iter().any(|dir| {
            dir.join(candidate).symlink_metadata().is_ok()
                || SIDECAR_SUFFIXES.iter().any(|suffix| {
                    let mut sidecar = candidate.to_owned();
                    sidecar.push(suffix);
                    dir.join(sidecar).symlink_metadata().is_ok()
                })
        })
    };
    if !taken(name) {
        return name.to_owned();
    }
    let path = Path::new(name);
    let stem = path.file_stem().unwrap_or(name).to_owned();
    let ext = path.extension().map(OsStr::to_owned);
    (1u64..)
        .map(|n| {
            let mut candidate = stem.clone();
            candidate.push(format!("-{n}"));
            if let Some(ext) = &ext {
                candidate.push(".");
                candidate.push(ext);
            }
            candidate
        })
        .find(|candidate| !taken(candidate))
        .unwrap_or_else(|| name.to_owned())
}

/// Moves `src` into `dir` as `name`, or a free name like it (see [`free_name`]), and returns
/// the new path, or `None` when `src` is gone (another claimer was faster, or it was deleted).
///
/// # Errors
/// Any other I/O error, naming the paths.
#[allow(
    clippy::disallowed_methods,
    reason = "its error names both paths; NotFound and CrossesDevices are matched"
)]
pub fn move_into(src: &Path, dir: &Path, name: &OsStr) -> std::io::Result<Option<PathBuf>> {
    let target = dir.join(free_name(dir, name));
    if src
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        return copy_then_remove(src, &target);
    }
    match std::fs::rename(src, &target) {
        Ok(()) => Ok(Some(target)),
        Err(e) if e.kind() == ErrorKind::NotFound && !src.exists() => Ok(None),
        Err(e) if e.kind() == ErrorKind::CrossesDevices => copy_then_remove(src, &target),
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!("{e} (moving `{}` to `{}`)", src.display(), target.display()),
        )),
    }
}

/// The fallback of [`move_into`] across file systems: copy into a hidden temporary file next
/// to `target`, flush it, rename it to `target`, then remove `src`. Returns `None` (and leaves
/// nothing behind) when `src` is gone before or during the move.
///
/// # Errors
/// Any I/O error, naming the paths.
pub fn copy_then_remove(src: &Path, target: &Path) -> std::io::Result<Option<PathBuf>> {
    let bytes = match fs_err::read(src) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    crate::fs::write_atomic_noclobber(target, &bytes)?;
    match fs_err::remove_file(src) {
        Ok(()) => Ok(Some(target.to_path_buf())),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            // Someone else took it meanwhile: the copy is not ours.
            fs_err::remove_file(target)?;
            Ok(None)
        }
        Err(e) => {
            let _ = fs_err::remove_file(target);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs_err::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn free_names_skip_files_and_their_sidecars() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        assert_eq!(free_name(d, OsStr::new("a.yaml")), "a.yaml");
        fs_err::write(d.join("a.yaml"), "x").expect("write");
        assert_eq!(free_name(d, OsStr::new("a.yaml")), "a-1.yaml");
        fs_err::write(d.join("a-1.yaml.error.txt"), "x").expect("write");
        assert_eq!(free_name(d, OsStr::new("a.yaml")), "a-2.yaml");
        fs_err::write(d.join("noext"), "x").expect("write");
        assert_eq!(free_name(d, OsStr::new("noext")), "noext-1");
        fs_err::write(d.join("b.yaml.report.json"), "x").expect("write");
        assert_eq!(free_name(d, OsStr::new("b.yaml")), "b-1.yaml");
    }

    #[test]
    fn a_name_free_among_folders_is_free_in_each() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fs_err::create_dir_all(&a).expect("mkdir");
        fs_err::create_dir_all(&b).expect("mkdir");
        let name = OsStr::new("cat.png");
        assert_eq!(free_name_among(&[&a, &b], name), "cat.png");
        fs_err::write(a.join("cat.png"), "x").expect("write");
        fs_err::write(b.join("cat-1.png.report.json"), "{}").expect("write");
        assert_eq!(free_name(&b, name), "cat.png");
        assert_eq!(free_name_among(&[&a, &b], name), "cat-2.png");
    }

    #[test]
    fn a_move_never_overwrites_and_a_second_claim_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hot = dir.path().join("hot");
        let processing = dir.path().join("processing");
        fs_err::create_dir_all(&hot).expect("mkdir");
        fs_err::create_dir_all(&processing).expect("mkdir");
        fs_err::write(processing.join("a.yaml"), "old").expect("write");
        let src = hot.join("a.yaml");
        fs_err::write(&src, "new").expect("write");

        let claimed = move_into(&src, &processing, OsStr::new("a.yaml"))
            .expect("move")
            .expect("claimed");
        assert_eq!(claimed, processing.join("a-1.yaml"));
        assert_eq!(
            fs_err::read_to_string(processing.join("a.yaml")).expect("read"),
            "old"
        );
        assert_eq!(fs_err::read_to_string(&claimed).expect("read"), "new");
        assert_eq!(
            move_into(&src, &processing, OsStr::new("a.yaml")).expect("second move"),
            None
        );
        assert_eq!(names(&processing), ["a-1.yaml", "a.yaml"]);
    }

    #[test]
    fn the_copy_fallback_moves_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("a.yaml");
        let target_dir = dir.path().join("elsewhere");
        fs_err::create_dir_all(&target_dir).expect("mkdir");
        fs_err::write(&src, "content").expect("write");
        let target = target_dir.join("a.yaml");
        let moved = copy_then_remove(&src, &target)
            .expect("copy")
            .expect("moved");
        assert_eq!(moved, target);
        assert!(!src.exists());
        assert_eq!(fs_err::read_to_string(&target).expect("read"), "content");
        assert_eq!(names(&target_dir), ["a.yaml"]);
        assert_eq!(
            copy_then_remove(&src, &target_dir.join("b.yaml")).expect("gone"),
            None
        );
        assert_eq!(names(&target_dir), ["a.yaml"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_relative_link_is_claimed_by_its_content_and_its_target_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hot = dir.path().join("hot");
        let processing = hot.join("processing");
        fs_err::create_dir_all(&processing).expect("mkdir");
        fs_err::create_dir_all(hot.join("library")).expect("mkdir");
        fs_err::write(hot.join("library/job.yaml"), "version: 1").expect("write");
        std::os::unix::fs::symlink("library/job.yaml", hot.join("link.yaml")).expect("link");
        let claimed = move_into(&hot.join("link.yaml"), &processing, OsStr::new("link.yaml"))
            .expect("claim")
            .expect("claimed");
        assert!(
            !claimed
                .symlink_metadata()
                .expect("meta")
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs_err::read_to_string(&claimed).expect("read"),
            "version: 1"
        );
        assert!(
            hot.join("link.yaml").symlink_metadata().is_err(),
            "the link is gone"
        );
        assert_eq!(
            fs_err::read_to_string(hot.join("library/job.yaml")).expect("target stays"),
            "version: 1"
        );
    }

    #[test]
    fn the_copy_fallback_refuses_to_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("a.yaml");
        let target = dir.path().join("b.yaml");
        fs_err::write(&src, "new").expect("write");
        fs_err::write(&target, "old").expect("write");
        copy_then_remove(&src, &target).expect_err("target exists");
        assert_eq!(fs_err::read_to_string(&target).expect("read"), "old");
        assert!(src.exists(), "the source stays when the move fails");
        assert_eq!(names(dir.path()), ["a.yaml", "b.yaml"]);
    }
}

//! The temporary files this crate writes before renaming them into place, and the sweep of the
//! ones a killed process left behind.
//!
//! Each is named `.invk-HOST-PID-XXXXXX.part` in the folder of the file it will become: a
//! process started again can tell a temporary file of its own host whose writer is gone (removed)
//! from one another live process is writing (left alone: several shards, on this host or on
//! others sharing the folder, write into one output folder at once).

use std::path::Path;
use std::sync::OnceLock;

/// Every temporary file starts so.
const PREFIX: &str = ".invk-";
/// And ends so.
const SUFFIX: &str = ".part";

/// This host's name as the temporary names carry it (no `-`, no path separators).
fn host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let name = crate::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let name: String = name
            .trim()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(32)
            .collect();
        if name.is_empty() {
            "host".to_owned()
        } else {
            name
        }
    })
}

/// A builder of this process's temporary files.
#[must_use]
pub fn builder() -> tempfile::Builder<'static, 'static> {
    static PROCESS_PREFIX: OnceLock<String> = OnceLock::new();
    let prefix =
        PROCESS_PREFIX.get_or_init(|| format!("{PREFIX}{}-{}-", host(), std::process::id()));
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix.as_str()).suffix(SUFFIX);
    builder
}

/// Whether `name` is a temporary file of this host whose writing process is gone.
fn is_stale(name: &str) -> bool {
    let Some(middle) = name
        .strip_prefix(PREFIX)
        .and_then(|n| n.strip_suffix(SUFFIX))
    else {
        return false;
    };
    let mut parts = middle.rsplitn(3, '-');
    let (Some(_random), Some(pid), Some(host_name)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    host_name == host() && pid != std::process::id() && !is_running(pid)
}

/// Whether process `pid` of this host runs (when that cannot be told: yes).
fn is_running(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Removes the temporary files in `dir` (not below it) that a process of this host left when
/// it was killed; returns how many. A folder that does not exist holds none.
///
/// # Errors
/// The folder cannot be listed, or a stale file cannot be removed.
pub fn remove_stale(dir: &Path) -> std::io::Result<usize> {
    let entries = match crate::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_str().is_some_and(is_stale) {
            match crate::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_temporary_of_this_host_whose_writer_is_gone_is_stale() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = builder().tempfile_in(dir.path()).expect("temporary");
        // No process has pid u32::MAX - 1 (Linux pids stay far below).
        let gone = format!("{PREFIX}{}-{}-abcdef{SUFFIX}", host(), u32::MAX - 1);
        let other_host = format!("{PREFIX}elsewhere-{}-abcdef{SUFFIX}", u32::MAX - 1);
        let old_style = format!("{PREFIX}abcdef{SUFFIX}");
        for name in [&gone, &other_host, &old_style, &"photo.png".to_owned()] {
            crate::fs::write(dir.path().join(name), b"x").expect("write");
        }
        let removed = remove_stale(dir.path()).expect("sweep");
        if cfg!(target_os = "linux") {
            assert_eq!(removed, 1);
            assert!(!dir.path().join(&gone).exists());
        }
        assert!(live.path().exists(), "a live writer's file stays");
        for kept in [&other_host, &old_style, &"photo.png".to_owned()] {
            assert!(dir.path().join(kept).exists(), "{kept}");
        }
        assert_eq!(remove_stale(&dir.path().join("none")).expect("missing"), 0);
    }
}

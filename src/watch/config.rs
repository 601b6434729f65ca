//! The watcher's settings. The binary's command layer builds them from the command line before
//! anything is watched; the watcher never sees command-line types.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::watch::WatchError;
use crate::watch::patterns::FilePatterns;

/// The default settle window.
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(500);

/// How long an image that is still incomplete (or a file still open for writing) is waited
/// for, unchanged, before it is given up on, unless told otherwise.
pub const DEFAULT_INCOMPLETE_WAIT: Duration = Duration::from_secs(60);

/// The default interval of the safety-net rescan of the hot folder (file events can be lost).
pub const DEFAULT_RESCAN: Duration = Duration::from_secs(2);

/// How to watch a hot folder.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The hot folder (absolute).
    pub dir: PathBuf,
    /// Which files are manifests.
    pub patterns: FilePatterns,
    /// Where claimed manifests are while they run.
    pub processing_dir: PathBuf,
    /// Where finished manifests are filed, with their reports.
    pub done_dir: PathBuf,
    /// Where invalid and failed manifests are filed, with their error reports.
    pub failed_dir: PathBuf,
    /// How long a file's size and modification time must stay unchanged before it is claimed.
    /// It must exceed the longest pause of the slowest writer.
    pub settle: Duration,
    /// How long a PNG, JPEG or WebP file that stops before its end (or a file whose writer has
    /// not closed it) may stay unchanged before it is given up on: an incomplete image is then
    /// filed as failed, never sent.
    pub incomplete_wait: Duration,
    /// How many manifests run at once (at least 1).
    pub concurrency: usize,
    /// How often the hot folder is listed again, in case file events were lost.
    pub rescan_interval: Duration,
    /// Claim each file under a name that is free in the processing, done and failed folders
    /// alike, and report it under that name (`--each`: an image's claimed name names its
    /// output folder, so a second `cat.png` runs as `cat-1.png` instead of resuming the
    /// first one's run).
    pub fresh_names: bool,
}

impl WatchConfig {
    /// The defaults for the hot folder `dir`: `*.yaml` and `*.yml`, the `processing`, `done`
    /// and `failed` folders inside it, a 500 ms settle window, one manifest at a time.
    ///
    /// # Errors
    /// [`WatchError::Folder`] when the current folder is unknown (for a relative `dir`).
    pub fn new(dir: &Path) -> Result<WatchConfig, WatchError> {
        let dir = absolute(dir)?;
        Ok(WatchConfig {
            processing_dir: dir.join("processing"),
            done_dir: dir.join("done"),
            failed_dir: dir.join("failed"),
            dir,
            patterns: FilePatterns::new(&[], &[])?,
            settle: DEFAULT_SETTLE,
            incomplete_wait: DEFAULT_INCOMPLETE_WAIT,
            concurrency: 1,
            rescan_interval: DEFAULT_RESCAN,
            fresh_names: false,
        })
    }

    /// Replaces the processing, done and failed folders that are given (relative ones are
    /// made absolute); `None` keeps the default inside the hot folder.
    ///
    /// # Errors
    /// [`WatchError::Folder`] when the current folder is unknown (for a relative folder).
    pub fn with_folders(
        mut self,
        processing: Option<&Path>,
        done: Option<&Path>,
        failed: Option<&Path>,
    ) -> Result<WatchConfig, WatchError> {
        if let Some(dir) = processing {
            self.processing_dir = absolute(dir)?;
        }
        if let Some(dir) = done {
            self.done_dir = absolute(dir)?;
        }
        if let Some(dir) = failed {
            self.failed_dir = absolute(dir)?;
        }
        Ok(self)
    }

    /// Checks what can be checked without the disk.
    ///
    /// # Errors
    /// [`WatchError::Concurrency`] for 0.
    pub fn check(&self) -> Result<(), WatchError> {
        if self.concurrency == 0 {
            return Err(WatchError::Concurrency);
        }
        Ok(())
    }

    /// Checks the hot folder, creates the processing, done and failed folders, and checks that
    /// none of them is the hot folder and that processing is apart from the others.
    ///
    /// # Errors
    /// [`WatchError::Missing`], [`WatchError::NotAFolder`], [`WatchError::Folder`] or [`WatchError::FolderClash`].
    #[allow(
        clippy::disallowed_methods,
        reason = "errors become WatchError::Folder, which names the folder; NotFound is matched"
    )]
    pub fn prepare(&self) -> Result<(), WatchError> {
        self.check()?;
        match std::fs::metadata(&self.dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(WatchError::NotAFolder {
                    path: self.dir.clone(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(WatchError::Missing {
                    path: self.dir.clone(),
                });
            }
            Err(source) => {
                return Err(WatchError::Folder {
                    path: self.dir.clone(),
                    source,
                });
            }
        }
        let mut seen: Vec<(&'static str, PathBuf)> = vec![("hot folder", canonical(&self.dir)?)];
        for (option, label, dir) in [
            (
                "--processing-dir",
                "processing folder",
                &self.processing_dir,
            ),
            ("--done-dir", "done folder", &self.done_dir),
            ("--failed-dir", "failed folder", &self.failed_dir),
        ] {
            std::fs::create_dir_all(dir).map_err(|source| WatchError::Folder {
                path: dir.clone(),
                source,
            })?;
            let real = canonical(dir)?;
            // done and failed may share a folder; nothing else may.
            let clash = seen.iter().find(|(other, path)| {
                *path == real && !(label == "failed folder" && *other == "done folder")
            });
            if let Some((other, _)) = clash {
                return Err(WatchError::FolderClash {
                    option,
                    label,
                    path: dir.clone(),
                    other,
                });
            }
            seen.push((label, real));
        }
        Ok(())
    }

    /// How often waiting files are looked at again.
    #[must_use]
    pub fn poll_period(&self) -> Duration {
        (self.settle / 4).clamp(Duration::from_millis(10), Duration::from_millis(250))
    }
}

fn absolute(path: &Path) -> Result<PathBuf, WatchError> {
    std::path::absolute(path).map_err(|source| WatchError::Folder {
        path: path.to_path_buf(),
        source,
    })
}

#[allow(
    clippy::disallowed_methods,
    reason = "its error becomes WatchError::Folder, which names the folder"
)]
fn canonical(path: &Path) -> Result<PathBuf, WatchError> {
    std::fs::canonicalize(path).map_err(|source| WatchError::Folder {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_creates_the_folders_and_refuses_clashes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut config = WatchConfig::new(tmp.path()).expect("config");
        config.prepare().expect("prepare");
        for sub in ["processing", "done", "failed"] {
            assert!(tmp.path().join(sub).is_dir(), "{sub}");
        }
        config.failed_dir = config.done_dir.clone();
        config
            .prepare()
            .expect("done and failed may share a folder");
        config.processing_dir = config.done_dir.clone();
        let err = config.prepare().expect_err("processing = done");
        assert!(
            err.to_string().contains("is also the processing folder"),
            "{err}"
        );
        config.processing_dir = tmp.path().to_path_buf();
        let err = config.prepare().expect_err("processing = hot");
        assert!(err.to_string().contains("hot folder"), "{err}");

        let file = tmp.path().join("file.yaml");
        fs_err::write(&file, "x").expect("write");
        let err = WatchConfig::new(&file)
            .expect("config")
            .prepare()
            .expect_err("a file");
        assert!(err.to_string().contains("not a folder"), "{err}");
        let err = WatchConfig::new(&tmp.path().join("missing"))
            .expect("config")
            .prepare()
            .expect_err("missing");
        assert!(
            err.to_string().ends_with("missing` does not exist"),
            "{err}"
        );
    }
}

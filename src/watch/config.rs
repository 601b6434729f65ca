//! The watcher's settings, resolved from the command line before anything is watched.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::WatchArgs;
use crate::watch::WatchError;
use crate::watch::patterns::FilePatterns;

/// The default settle window.
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(500);

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
    /// How many manifests run at once (at least 1).
    pub concurrency: usize,
    /// How often the hot folder is listed again, in case file events were lost.
    pub rescan_interval: Duration,
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
            concurrency: 1,
            rescan_interval: DEFAULT_RESCAN,
        })
    }

    /// The settings `invk-run watch` was given.
    ///
    /// # Errors
    /// A bad glob, a concurrency of 0, or extra arguments after the folder.
    pub fn resolve(args: &WatchArgs) -> Result<WatchConfig, WatchError> {
        if !args.run.manifests.is_empty() {
            return Err(WatchError::ExtraArguments {
                args: args.run.manifests.join(" "),
            });
        }
        let mut config = WatchConfig::new(&args.dir)?;
        config.patterns = FilePatterns::new(&args.include, &args.exclude)?;
        if let Some(dir) = &args.processing_dir {
            config.processing_dir = absolute(dir)?;
        }
        if let Some(dir) = &args.done_dir {
            config.done_dir = absolute(dir)?;
        }
        if let Some(dir) = &args.failed_dir {
            config.failed_dir = absolute(dir)?;
        }
        config.settle = Duration::from_millis(args.settle_ms);
        config.concurrency = args.concurrency;
        config.check()?;
        Ok(config)
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

fn canonical(path: &Path) -> Result<PathBuf, WatchError> {
    std::fs::canonicalize(path).map_err(|source| WatchError::Folder {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(line: &[&str]) -> WatchArgs {
        let cli = crate::cli::Cli::try_parse_from(line).expect("parse");
        match cli.command {
            Some(crate::cli::Command::Watch(args)) => args,
            other => panic!("not a watch command: {other:?}"),
        }
    }

    #[test]
    fn defaults_live_inside_the_hot_folder() {
        let config = WatchConfig::resolve(&args(&["invk-run", "watch", "/hot"])).expect("resolve");
        assert_eq!(config.dir, Path::new("/hot"));
        assert_eq!(config.processing_dir, Path::new("/hot/processing"));
        assert_eq!(config.done_dir, Path::new("/hot/done"));
        assert_eq!(config.failed_dir, Path::new("/hot/failed"));
        assert_eq!(config.settle, Duration::from_millis(500));
        assert_eq!(config.concurrency, 1);
        assert_eq!(config.poll_period(), Duration::from_millis(125));
    }

    #[test]
    fn options_are_taken_and_bad_ones_refused() {
        let config = WatchConfig::resolve(&args(&[
            "invk-run",
            "watch",
            "/hot",
            "--done-dir",
            "/out/ok",
            "--failed-dir",
            "/out/bad",
            "--processing-dir",
            "/srv/hot/processing",
            "--settle-ms",
            "2000",
            "-j",
            "3",
            "--include",
            "*.job",
        ]))
        .expect("resolve");
        assert_eq!(config.done_dir, Path::new("/out/ok"));
        assert_eq!(config.failed_dir, Path::new("/out/bad"));
        assert_eq!(config.processing_dir, Path::new("/srv/hot/processing"));
        assert_eq!(config.settle, Duration::from_secs(2));
        assert_eq!(config.concurrency, 3);
        assert!(config.patterns.matches(Path::new("a.job")));
        assert!(!config.patterns.matches(Path::new("a.yaml")));

        let err = WatchConfig::resolve(&args(&["invk-run", "watch", "/hot", "-j", "0"]))
            .expect_err("-j 0");
        insta::assert_snapshot!(err.to_string(), @"--concurrency must be at least 1");
        let err = WatchConfig::resolve(&args(&["invk-run", "watch", "/hot", "a.yaml"]))
            .expect_err("extra");
        insta::assert_snapshot!(err.to_string(), @"`invk-run watch` takes one folder; unexpected arguments: a.yaml");
    }

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

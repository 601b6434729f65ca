//! The names a file is placed under: a [`Name`]'s candidates and a file's companions.

use std::path::{Path, PathBuf};

/// A file's name under an output folder, before a free suffix is chosen: `stem` (relative, may
/// hold sub-folders) and the extension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name {
    stem: PathBuf,
    ext: String,
}

impl Name {
    /// `stem.ext` (`ext` without its dot; empty for none).
    #[must_use]
    pub fn new(stem: impl Into<PathBuf>, ext: &str) -> Name {
        Name {
            stem: stem.into(),
            ext: ext.trim_start_matches('.').to_owned(),
        }
    }

    /// The `n`-th candidate, relative to the output folder: `stem.ext`, then `stem-1.ext`,
    /// `stem-2.ext`, ...
    #[must_use]
    pub fn candidate(&self, n: u32) -> PathBuf {
        let mut name = self.stem.as_os_str().to_owned();
        if n > 0 {
            name.push(format!("-{n}"));
        }
        if !self.ext.is_empty() {
            name.push(".");
            name.push(&self.ext);
        }
        PathBuf::from(name)
    }
}

/// The path of a companion of `file`: its name with `suffix` added (`x.png` → `x.png.json`).
#[must_use]
pub fn companion(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

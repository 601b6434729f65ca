//! Which files in the hot folder are manifests: include and exclude globs over the file name.

use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::watch::WatchError;

/// The include patterns used when none are given.
pub const DEFAULT_INCLUDE: [&str; 2] = ["*.yaml", "*.yml"];

/// Include and exclude globs, matched against a file's name (not its folder).
///
/// Hidden files (names starting with `.`) never match: writers often write into a hidden
/// temporary file and rename it when it is complete.
#[derive(Debug, Clone)]
pub struct FilePatterns {
    include: GlobSet,
    exclude: GlobSet,
    include_text: Vec<String>,
}

impl FilePatterns {
    /// Builds the matcher. An empty `include` means [`DEFAULT_INCLUDE`].
    ///
    /// # Errors
    /// [`WatchError::Pattern`] naming the glob that does not parse.
    pub fn new(include: &[String], exclude: &[String]) -> Result<FilePatterns, WatchError> {
        let include_text: Vec<String> = if include.is_empty() {
            DEFAULT_INCLUDE.iter().map(|s| (*s).to_owned()).collect()
        } else {
            include.to_vec()
        };
        Ok(FilePatterns {
            include: build(&include_text, "--include")?,
            exclude: build(exclude, "--exclude")?,
            include_text,
        })
    }

    /// Whether a file with this name is a manifest to run.
    #[must_use]
    pub fn matches(&self, file_name: &Path) -> bool {
        let hidden = file_name
            .to_str()
            .is_none_or(|name| name.starts_with('.') || name.is_empty());
        !hidden && self.include.is_match(file_name) && !self.exclude.is_match(file_name)
    }

    /// The include patterns, for messages.
    #[must_use]
    pub fn include_text(&self) -> &[String] {
        &self.include_text
    }
}

fn build(patterns: &[String], option: &'static str) -> Result<GlobSet, WatchError> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern).map_err(|source| WatchError::Pattern {
            option,
            pattern: pattern.clone(),
            source,
        })?;
        set.add(glob);
    }
    set.build().map_err(|source| WatchError::Pattern {
        option,
        pattern: patterns.join(", "),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn defaults_take_yaml_files_only() {
        let p = FilePatterns::new(&[], &[]).expect("patterns");
        let cases = [
            ("job.yaml", true),
            ("job.yml", true),
            ("Job Night.yaml", true),
            ("job.yaml.part", false),
            ("job.json", false),
            (".job.yaml", false),
            (".~lock.job.yaml#", false),
            ("yaml", false),
        ];
        for (name, want) in cases {
            assert_eq!(p.matches(Path::new(name)), want, "{name}");
        }
    }

    #[test]
    fn exclude_beats_include() {
        let p = FilePatterns::new(
            &strings(&["*.job", "*.yaml"]),
            &strings(&["draft-*", "*.tmp.yaml"]),
        )
        .expect("patterns");
        let cases = [
            ("a.job", true),
            ("a.yaml", true),
            ("a.yml", false),
            ("draft-a.job", false),
            ("a.tmp.yaml", false),
        ];
        for (name, want) in cases {
            assert_eq!(p.matches(Path::new(name)), want, "{name}");
        }
        assert_eq!(p.include_text(), ["*.job", "*.yaml"]);
    }

    #[test]
    fn a_bad_glob_is_named_in_the_error() {
        let err = FilePatterns::new(&strings(&["*.{yaml"]), &[]).expect_err("bad glob");
        let text = err.to_string();
        assert!(
            text.contains("--include") && text.contains("`*.{yaml`"),
            "{text}"
        );
    }
}

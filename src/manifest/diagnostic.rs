//! Problems found in a manifest, each with its file, line and column, and the error that carries
//! all of them.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::source::{Location, Segment, SourceMap, YamlPath};

/// One problem in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The manifest, as the user named it.
    pub file: PathBuf,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
    /// What is wrong (lowercase, values in backticks).
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// At most this many problems are listed for one manifest.
pub const MAX_DIAGNOSTICS: usize = 100;

/// Values quoted in messages (between backticks or double quotes) are cut to this many
/// characters.
pub const MAX_QUOTED_CHARS: usize = 80;

/// A message (or hint) is cut to this many characters.
pub const MAX_MESSAGE_CHARS: usize = 1000;

impl Diagnostic {
    /// A problem at `location` of `file`; long values quoted in the message and hint are cut
    /// (see [`bounded`]).
    #[must_use]
    pub fn new(
        file: &Path,
        location: Location,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        Diagnostic {
            file: file.to_path_buf(),
            line: location.line,
            col: location.col,
            message: bounded(&message.into()),
            hint: hint.map(|h| bounded(&h)),
        }
    }
}

/// `text` with every value quoted in it (between backticks or double quotes) longer than
/// [`MAX_QUOTED_CHARS`] cut with an ellipsis, and the whole cut to [`MAX_MESSAGE_CHARS`]: a
/// message about a huge value does not repeat it.
#[must_use]
pub fn bounded(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4 * MAX_MESSAGE_CHARS + 8));
    let mut quote: Option<(char, usize)> = None; // the open quote and the characters since
    let mut written = 0usize;
    for c in text.chars() {
        let before = out.len();
        match quote {
            Some((q, _)) if c == q => {
                quote = None;
                out.push(c);
            }
            Some((q, n)) => {
                if n < MAX_QUOTED_CHARS {
                    out.push(c);
                } else if n == MAX_QUOTED_CHARS {
                    out.push('…');
                }
                quote = Some((q, n + 1));
            }
            None => {
                if c == '`' || c == '"' {
                    quote = Some((c, 0));
                }
                out.push(c);
            }
        }
        if out.len() > before {
            written += 1;
        }
        if written >= MAX_MESSAGE_CHARS {
            out.push('…');
            break;
        }
    }
    out
}

/// A manifest that cannot be run, and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The manifest file could not be read.
    #[error("cannot read manifest `{}`: {source}", path.display())]
    Read {
        /// The manifest.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifest is invalid; every problem found is listed, in file order.
    #[error("{}", DisplayAll(diagnostics))]
    Invalid {
        /// The problems, sorted by line and column.
        diagnostics: Vec<Diagnostic>,
    },
}

impl ManifestError {
    /// The problems (empty for [`ManifestError::Read`]).
    #[must_use]
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ManifestError::Invalid { diagnostics } => diagnostics,
            ManifestError::Read { .. } => &[],
        }
    }
}

struct DisplayAll<'a>(&'a [Diagnostic]);

impl fmt::Display for DisplayAll<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Which part of a node a problem is about: the key (unknown name) or the value (bad value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum At {
    Key,
    Value,
}

/// A data file a manifest names (a table, a list of lines): problems about what is below its
/// path in the manifest are placed in the file.
pub(crate) trait DataFile: fmt::Debug + Send + Sync {
    /// The file as messages name it.
    fn file(&self) -> &Path;
    /// The place of `rest` (the path below the file's own path in the manifest), if it has one.
    fn locate(&self, rest: &[Segment]) -> Option<Location>;
}

/// Collects problems while a manifest is checked. Problems found once per job are merged by
/// (place, kind): a bad value in a 1000-job sweep is reported once, with how many jobs it hit.
#[derive(Debug)]
pub(crate) struct Diagnostics<'a> {
    file: &'a Path,
    source: &'a SourceMap,
    items: Vec<Item>,
    per_job: HashMap<(YamlPath, String), usize>,
    /// Data files, by their path in the manifest.
    data: Vec<(YamlPath, Arc<dyn DataFile>)>,
}

#[derive(Debug)]
struct Item {
    /// 0: the manifest; `n`: data file `n - 1`.
    file: usize,
    location: Location,
    message: String,
    hint: Option<String>,
    /// How many jobs the problem was found in (0: not a per-job problem), and the first.
    jobs: usize,
    first_job: usize,
}

impl<'a> Diagnostics<'a> {
    pub(crate) fn new(file: &'a Path, source: &'a SourceMap) -> Diagnostics<'a> {
        Diagnostics {
            file,
            source,
            items: Vec::new(),
            per_job: HashMap::new(),
            data: Vec::new(),
        }
    }

    /// From now on, problems about paths below `path` are placed in `file` when it knows them.
    pub(crate) fn add_data_file(&mut self, path: YamlPath, file: Arc<dyn DataFile>) {
        self.data.push((path, file));
    }

    /// Records a problem about the node at `path`.
    pub(crate) fn push(
        &mut self,
        path: &YamlPath,
        at: At,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let segments = path.segments();
        let in_data = self
            .data
            .iter()
            .enumerate()
            .find_map(|(i, (prefix, file))| {
                let rest = segments.strip_prefix(prefix.segments())?;
                if rest.is_empty() {
                    return None;
                }
                file.locate(rest).map(|location| (i + 1, location))
            });
        if let Some((file, location)) = in_data {
            self.push_in(file, location, message.into(), hint);
            return;
        }
        let location = match at {
            At::Key => self.source.key(path),
            At::Value => self.source.value(path),
        };
        self.push_at(location, message, hint);
    }

    /// Records a problem at `location` of data file `data` (as [`Diagnostics::add_data_file`]
    /// numbered it: 0 is the first one added).
    pub(crate) fn push_in_data(
        &mut self,
        data: usize,
        location: Location,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.push_in(data + 1, location, message.into(), hint);
    }

    /// How many data files were added.
    pub(crate) fn data_files(&self) -> usize {
        self.data.len()
    }

    fn push_in(&mut self, file: usize, location: Location, message: String, hint: Option<String>) {
        self.items.push(Item {
            file,
            location,
            message,
            hint,
            jobs: 0,
            first_job: 0,
        });
    }

    /// Records a problem at a known location.
    pub(crate) fn push_at(
        &mut self,
        location: Location,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.push_in(0, location, message.into(), hint);
    }

    /// Records a problem found while building job `job`; only the first of each (path, kind) is
    /// kept, and the jobs it affects are counted.
    pub(crate) fn push_job(
        &mut self,
        job: usize,
        path: &YamlPath,
        at: At,
        kind: &str,
        message: impl FnOnce() -> (String, Option<String>),
    ) {
        if let Some(&i) = self.per_job.get(&(path.clone(), kind.to_owned())) {
            let item = &mut self.items[i];
            item.jobs += 1;
            item.first_job = item.first_job.min(job);
            return;
        }
        let (message, hint) = message();
        self.push(path, at, message, hint);
        let i = self.items.len() - 1;
        self.items[i].jobs = 1;
        self.items[i].first_job = job;
        self.per_job.insert((path.clone(), kind.to_owned()), i);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The problems, sorted by place; per-job problems say how many of `job_count` jobs they hit.
    /// At most [`MAX_DIAGNOSTICS`] are listed; a last one says how many more there are.
    pub(crate) fn finish(self, job_count: usize) -> Vec<Diagnostic> {
        let mut items = self.items;
        items.sort_by_key(|i| (i.file, i.location));
        let more = items.len().saturating_sub(MAX_DIAGNOSTICS);
        let next = items.get(MAX_DIAGNOSTICS).map(|i| (i.file, i.location));
        let data = self.data;
        let file_of = |n: usize| match n {
            0 => self.file,
            n => data[n - 1].1.file(),
        };
        let mut out: Vec<Diagnostic> = items
            .into_iter()
            .take(MAX_DIAGNOSTICS)
            .map(|i| {
                let mut message = i.message;
                if job_count > 1 && i.jobs > 0 {
                    let first = i.first_job;
                    if i.jobs == 1 {
                        message.push_str(&format!(" (in job {first})"));
                    } else if i.jobs < job_count {
                        message.push_str(&format!(
                            " (in {} of {job_count} jobs, first job {first})",
                            i.jobs
                        ));
                    }
                }
                Diagnostic::new(file_of(i.file), i.location, message, i.hint)
            })
            .collect();
        if let Some((file, location)) = next {
            out.push(Diagnostic::new(
                file_of(file),
                location,
                format!(
                    "{more} more problem{} from here on (only the first {MAX_DIAGNOSTICS} are listed)",
                    if more == 1 { "" } else { "s" }
                ),
                None,
            ));
        }
        out
    }

    /// `Err(ManifestError)` with everything collected, or `Ok(())` when nothing was.
    pub(crate) fn into_result(self, job_count: usize) -> Result<(), ManifestError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ManifestError::Invalid {
                diagnostics: self.finish(job_count),
            })
        }
    }
}

/// The candidate closest to `name` (case-insensitive Jaro-Winkler), when it is close enough to be
/// a plausible typo.
#[must_use]
pub fn closest<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `did you mean `x`?` for the closest candidate, if any.
#[must_use]
pub fn did_you_mean<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<String> {
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// A short description of a value for messages: `a string "x"`, `a map`, `the number 3`.
#[must_use]
pub(super) fn describe(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().map(|k| format!("`{k}`")).collect();
            if keys.is_empty() {
                "an empty map".to_owned()
            } else {
                format!("a map with {}", keys.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_prints_every_problem_with_its_place_and_hint() {
        let err = ManifestError::Invalid {
            diagnostics: vec![
                Diagnostic {
                    file: "jobs/a.yaml".into(),
                    line: 7,
                    col: 3,
                    message: "unknown input `Hu`".into(),
                    hint: Some("did you mean `Hue`?".into()),
                },
                Diagnostic {
                    file: "jobs/a.yaml".into(),
                    line: 9,
                    col: 1,
                    message: "runs must be at least 1".into(),
                    hint: None,
                },
            ],
        };
        assert_eq!(
            err.to_string(),
            "jobs/a.yaml:7:3: error: unknown input `Hu`\n  hint: did you mean `Hue`?\njobs/a.yaml:9:1: error: runs must be at least 1"
        );
    }

    #[test]
    fn per_job_problems_are_merged_and_counted() {
        let source = SourceMap::parse("inputs:\n  Steps: x\n").expect("yaml");
        let file = Path::new("a.yaml");
        let mut d = Diagnostics::new(file, &source);
        let path = YamlPath::keys(&["inputs", "Steps"]);
        for job in [3, 4, 9] {
            d.push_job(job, &path, At::Value, "check", || {
                ("bad value".into(), None)
            });
        }
        d.push_job(5, &YamlPath::keys(&["inputs"]), At::Key, "check", || {
            ("other".into(), None)
        });
        let out = d.finish(10);
        let lines: Vec<_> = out.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "a.yaml:1:1: error: other (in job 5)",
                "a.yaml:2:10: error: bad value (in 3 of 10 jobs, first job 3)"
            ]
        );
    }

    #[test]
    fn quoted_values_and_whole_messages_are_cut() {
        let long = "y".repeat(500);
        assert_eq!(
            bounded("short `value` and \"text\""),
            "short `value` and \"text\""
        );
        assert_eq!(
            bounded(&format!("image file `{long}` not found")),
            format!("image file `{}…` not found", "y".repeat(MAX_QUOTED_CHARS))
        );
        let cut = bounded(&"z".repeat(5000));
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn at_most_a_hundred_problems_are_listed() {
        let text: String = (0..150).map(|i| format!("k{i}: 1\n")).collect();
        let source = SourceMap::parse(&text).expect("yaml");
        let file = Path::new("a.yaml");
        let mut d = Diagnostics::new(file, &source);
        for i in 0..150 {
            d.push(
                &YamlPath::keys(&[&format!("k{i}")]),
                At::Key,
                format!("bad `k{i}`"),
                None,
            );
        }
        let out = d.finish(0);
        assert_eq!(out.len(), MAX_DIAGNOSTICS + 1);
        assert_eq!(
            out[MAX_DIAGNOSTICS].to_string(),
            "a.yaml:101:1: error: 50 more problems from here on (only the first 100 are listed)"
        );
    }

    #[test]
    fn suggestions_only_for_close_names() {
        assert_eq!(closest("Hu", ["Hue", "Source"]), Some("Hue"));
        assert_eq!(
            closest("positive prompt", ["Positive Prompt", "Negative Prompt"]),
            Some("Positive Prompt")
        );
        assert_eq!(closest("zzz", ["Hue", "Source"]), None);
    }
}

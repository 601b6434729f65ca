//! Reading a manifest file: YAML (serde_norway) into the model, section by section, so that one
//! run reports every structural problem with its line and column.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::diagnostic::describe;
use super::diagnostic::{At, Diagnostic, Diagnostics, ManifestError, did_you_mean};
use super::model::{Cleanup, Manifest, Output, Servers, Sweep, VERSION, WorkflowRef};
use super::source::{Limit, Location, SourceMap, YamlPath};

/// The top-level keys of a manifest (kept equal to [`Manifest`]'s fields by a test).
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "version",
    "workflow",
    "server",
    "inputs",
    "vars",
    "sweep",
    "runs",
    "seed",
    "wildcards",
    "output",
    "cleanup",
    "notify",
];

/// Where the workflow of a manifest is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowSource {
    /// A workflow file (the manifest's folder joined with the path written).
    File(PathBuf),
    /// A workflow in the server's library, by name or id.
    Library(String),
}

/// A manifest read from a file, with the locations of its keys and values.
///
/// Loading stops only at problems that leave nothing to check (not YAML, no usable workflow);
/// other problems are kept and reported by [`ManifestFile::expand`] together with those found
/// against the workflow's inputs, so one run shows them all. Nothing may be sent for a manifest
/// whose `expand` failed.
#[derive(Debug, Clone)]
pub struct ManifestFile {
    pub(crate) path: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) manifest: Manifest,
    pub(crate) source: SourceMap,
    pub(crate) workflow: WorkflowSource,
    /// Problems found while loading, reported by `expand`.
    pub(crate) pending: Vec<(Location, String, Option<String>)>,
    /// Sections that failed to parse (their defaults are used; checks that depend on them are
    /// skipped to avoid follow-on errors).
    pub(crate) broken: Vec<&'static str>,
    /// The image of a hot folder this run is for (`invk-run watch --each`).
    pub(crate) each: Option<super::scope::EachImage>,
}

impl ManifestFile {
    /// Reads and parses the manifest at `path` (shown in messages as given).
    ///
    /// # Errors
    /// The file cannot be read, or has problems that leave nothing to check.
    pub fn load(path: &Path) -> Result<ManifestFile, ManifestError> {
        let text = read_manifest(path, path)?;
        ManifestFile::parse(&text, path)
    }

    /// Parses manifest text; `path` names it in messages and its folder anchors relative paths.
    ///
    /// # Errors
    /// As [`ManifestFile::load`].
    pub fn parse(text: &str, path: &Path) -> Result<ManifestFile, ManifestError> {
        ManifestFile::parse_with_base(text, path, &crate::fs::parent_dir(path))
    }

    /// Parses manifest text named `path` in messages, with relative paths starting from
    /// `base_dir` (for a manifest that was moved, e.g. claimed from a hot folder).
    ///
    /// # Errors
    /// As [`ManifestFile::load`].
    pub fn parse_with_base(
        text: &str,
        path: &Path,
        base_dir: &Path,
    ) -> Result<ManifestFile, ManifestError> {
        let fatal =
            |location: Location, message: String, hint: Option<String>| ManifestError::Invalid {
                diagnostics: vec![Diagnostic::new(path, location, message, hint)],
            };
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(too_large(path, text.as_bytes()));
        }
        if text.trim().is_empty() {
            return Err(fatal(
                Location::START,
                "the manifest is empty".into(),
                Some("a manifest needs at least `version: 1` and `workflow: FILE`".into()),
            ));
        }
        // The locations first: a list too long to check stops here, before it is built.
        let early = SourceMap::parse(text);
        if let Err(e) = &early {
            let hint = match e.over {
                Some(Limit::Items) => Some(
                    "write long sweeps as `{range: ...}` or `{glob: ...}`, or split the manifest",
                ),
                Some(Limit::Nesting) => {
                    Some("a manifest needs a few levels: check for a run of `- - -` or of brackets")
                }
                None => None,
            };
            if let Some(hint) = hint {
                return Err(fatal(e.location, e.message.clone(), Some(hint.into())));
            }
        }
        let value: Value = match serde_norway::from_str(text) {
            Ok(Value::Null) => {
                return Err(fatal(
                    Location::START,
                    "the manifest is empty".into(),
                    Some("a manifest needs at least `version: 1` and `workflow: FILE`".into()),
                ));
            }
            Ok(v) => v,
            Err(e) => {
                let (location, message) = yaml_error(&e, text);
                // A whole number past what 64 bits hold (`runs: 10**26`) is a number, too large.
                if let Some(field) = message.strip_suffix(": JSON number out of range") {
                    return Err(fatal(
                        location,
                        format!(
                            "`{field}` is too large: numbers in a manifest are at most {}",
                            u64::MAX
                        ),
                        None,
                    ));
                }
                return Err(fatal(
                    location,
                    format!("invalid YAML: {message}"),
                    Some(yaml_hint(text, location)),
                ));
            }
        };
        let source = early.map_err(|e| {
            fatal(
                e.location,
                format!("invalid YAML: {}", e.message),
                Some(yaml_hint(text, e.location)),
            )
        })?;
        let Value::Object(mut top) = value else {
            return Err(fatal(
                Location::START,
                format!(
                    "a manifest is a map of keys (`version`, `workflow`, `inputs`...), found {}",
                    describe(&value)
                ),
                None,
            ));
        };

        let dir = base_dir.to_path_buf();
        let mut diags = Diagnostics::new(path, &source);
        for d in source.duplicates() {
            diags.push_at(
                d.again,
                format!(
                    "duplicate key `{}` (first at line {})",
                    last_key(&d.path),
                    d.first.line
                ),
                Some("YAML keys must be unique in a map; remove one".into()),
            );
        }
        for key in top.keys() {
            if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
                let hint = did_you_mean(key, TOP_LEVEL_KEYS.iter().copied())
                    .unwrap_or_else(|| format!("known keys: {}", TOP_LEVEL_KEYS.join(", ")));
                diags.push(
                    &YamlPath::keys(&[key]),
                    At::Key,
                    format!("unknown key `{key}`"),
                    Some(hint),
                );
            }
        }

        let mut broken = Vec::new();
        let mut fatal_problem = false;

        let version = section::<u32>(&mut top, "version", &mut diags, &mut broken);
        match version {
            None if !broken.contains(&"version") => diags.push(
                &YamlPath::root(),
                At::Value,
                "missing key `version`",
                Some(format!("add `version: {VERSION}` at the top")),
            ),
            Some(v) if v != VERSION => diags.push(
                &YamlPath::keys(&["version"]),
                At::Value,
                format!("unsupported manifest version {v}"),
                Some(format!(
                    "this invk-run reads version {VERSION}; see docs/manifest.md"
                )),
            ),
            _ => {}
        }

        let workflow_ref = section::<WorkflowRef>(&mut top, "workflow", &mut diags, &mut broken);
        let workflow = match workflow_ref.clone() {
            None => {
                if !broken.contains(&"workflow") {
                    diags.push(
                        &YamlPath::root(),
                        At::Value,
                        "missing key `workflow`",
                        Some("add `workflow: PATH` (a file exported from the InvokeAI web UI) or `workflow: {library: NAME}`".into()),
                    );
                }
                fatal_problem = true;
                WorkflowSource::Library(String::new())
            }
            Some(WorkflowRef::Library { library }) => WorkflowSource::Library(library),
            Some(WorkflowRef::File(file)) => {
                let full = dir.join(&file);
                if !full.is_file() {
                    fatal_problem = true;
                    diags.push(
                        &YamlPath::keys(&["workflow"]),
                        At::Value,
                        format!("workflow file `{file}` not found"),
                        Some(format!(
                            "the path is relative to the manifest's folder `{}`",
                            dir.display()
                        )),
                    );
                }
                WorkflowSource::File(full)
            }
        };

        let server = top
            .remove("server")
            .and_then(|value| super::server_list::read(value, &mut diags));
        let inputs = section::<Map<String, Value>>(&mut top, "inputs", &mut diags, &mut broken)
            .unwrap_or_default();
        let vars = section::<Map<String, Value>>(&mut top, "vars", &mut diags, &mut broken)
            .unwrap_or_default();
        let sweep =
            section::<Sweep>(&mut top, "sweep", &mut diags, &mut broken).unwrap_or_default();
        let runs = section::<u64>(&mut top, "runs", &mut diags, &mut broken).unwrap_or(1);
        if runs == 0 {
            diags.push(
                &YamlPath::keys(&["runs"]),
                At::Value,
                "`runs` must be at least 1",
                Some("leave `runs` out to run each combination once".into()),
            );
        }
        let runs = u32::try_from(runs).unwrap_or_else(|_| {
            diags.push(
                &YamlPath::keys(&["runs"]),
                At::Value,
                format!("`runs` is too large: {runs} is more than {}, the limit", u32::MAX),
                Some("each run of each combination is a job, and a manifest makes at most `--max-jobs` jobs (10000 by default)".into()),
            );
            1
        });
        let seed = section::<u64>(&mut top, "seed", &mut diags, &mut broken);
        let wildcards = section::<String>(&mut top, "wildcards", &mut diags, &mut broken);
        let output =
            section::<Output>(&mut top, "output", &mut diags, &mut broken).unwrap_or_default();
        let cleanup =
            section::<Cleanup>(&mut top, "cleanup", &mut diags, &mut broken).unwrap_or_default();

        let notify = top
            .remove("notify")
            .and_then(|value| super::notify::read(value, &mut diags));
        let manifest = Manifest {
            version: version.unwrap_or(VERSION),
            workflow: workflow_ref.unwrap_or(WorkflowRef::File(String::new())),
            server,
            inputs,
            vars,
            sweep,
            runs: runs.max(1),
            seed,
            wildcards,
            output,
            cleanup,
            notify,
        };
        if fatal_problem {
            return Err(ManifestError::Invalid {
                diagnostics: diags.finish(0),
            });
        }
        let pending = diags
            .finish(0)
            .into_iter()
            .map(|d| {
                (
                    Location {
                        line: d.line,
                        col: d.col,
                    },
                    d.message,
                    d.hint,
                )
            })
            .collect();
        Ok(ManifestFile {
            path: path.to_path_buf(),
            dir,
            manifest,
            source,
            workflow,
            pending,
            broken,
            each: None,
        })
    }

    /// The manifest as parsed (sections with problems hold their defaults).
    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest's path, as given.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The manifest's folder, which relative paths in it start from.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the workflow is.
    #[must_use]
    pub fn workflow(&self) -> &WorkflowSource {
        &self.workflow
    }

    /// The server URL the manifest names, if any (the first of a pool).
    #[must_use]
    pub fn server(&self) -> Option<&str> {
        self.servers().first().copied()
    }

    /// The server URLs the manifest names: none, one, or a pool.
    #[must_use]
    pub fn servers(&self) -> Vec<&str> {
        self.manifest
            .server
            .as_ref()
            .map(Servers::urls)
            .unwrap_or_default()
    }

    /// The servers the manifest names, with their options.
    #[must_use]
    pub fn server_entries(&self) -> Vec<crate::server_entry::ServerEntry> {
        self.manifest
            .server
            .as_ref()
            .map(super::server_list::entries)
            .unwrap_or_default()
    }

    /// Where the value at `path` is in the file.
    #[must_use]
    pub fn location(&self, path: &YamlPath) -> Location {
        self.source.value(path)
    }

    /// The problems found while loading (all are reported again by `expand`).
    #[must_use]
    pub fn load_problems(&self) -> Vec<Diagnostic> {
        self.pending
            .iter()
            .map(|(l, m, h)| Diagnostic {
                file: self.path.clone(),
                line: l.line,
                col: l.col,
                message: m.clone(),
                hint: h.clone(),
            })
            .collect()
    }
}

/// A manifest file may have at most this many bytes.
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// Reads the manifest at `read_from` (named `display_path` in messages), refusing one larger than
/// [`MAX_MANIFEST_BYTES`] without reading more than that.
///
/// # Errors
/// The file cannot be read, is not UTF-8, or is too large.
pub fn read_manifest(read_from: &Path, display_path: &Path) -> Result<String, ManifestError> {
    use std::io::Read;
    let read_error = |source| ManifestError::Read {
        path: display_path.to_path_buf(),
        source,
    };
    // `ManifestError::Read` names the manifest (by the name the user gave): the plain OS error
    // is its cause, where fs_err's would name the file a second time.
    #[allow(
        clippy::disallowed_methods,
        reason = "the error names its path: ManifestError::Read"
    )]
    let file = std::fs::File::open(read_from).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(too_large(display_path, &bytes));
    }
    String::from_utf8(bytes).map_err(|_| {
        read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })
}

/// The error for a manifest over [`MAX_MANIFEST_BYTES`], at the line where the limit is reached.
fn too_large(path: &Path, bytes: &[u8]) -> ManifestError {
    let head = &bytes[..MAX_MANIFEST_BYTES.min(bytes.len())];
    let line = head.iter().filter(|&&b| b == b'\n').count() + 1;
    ManifestError::Invalid {
        diagnostics: vec![Diagnostic::new(
            path,
            Location { line, col: 1 },
            format!(
                "the manifest is larger than {} MiB, the limit; it reaches the limit on this line",
                MAX_MANIFEST_BYTES >> 20
            ),
            Some(
                "write long sweeps as `{range: ...}` or `{glob: ...}`, or split the manifest"
                    .into(),
            ),
        )],
    }
}

/// Takes `key` out of the top-level map and deserializes it, recording a located problem when it
/// does not fit. `None` when the key is absent (or broken).
fn section<T: DeserializeOwned>(
    top: &mut Map<String, Value>,
    key: &'static str,
    diags: &mut Diagnostics<'_>,
    broken: &mut Vec<&'static str>,
) -> Option<T> {
    let value = top.remove(key)?;
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            broken.push(key);
            let path = YamlPath::keys(&[key]).join_serde(e.path());
            let message = humanize(&e.inner().to_string());
            // "unknown key `x`, expected one of `a`, `b`" (the path ends at the key) and
            // "unknown variant `x`, expected `a` or `b`" get the closest accepted word as a hint.
            let at = if message.starts_with("unknown key `") {
                At::Key
            } else {
                At::Value
            };
            let hint = ["unknown key `", "unknown variant `"]
                .iter()
                .find_map(|prefix| {
                    let rest = message.strip_prefix(prefix)?;
                    let mut words = rest.split('`').step_by(2);
                    let given = words.next()?;
                    did_you_mean(given, words.filter(|w| !w.trim().is_empty()))
                });
            diags.push(&path, at, message, hint);
            None
        }
    }
}

/// serde's wording, made to read like the rest of our messages.
fn humanize(message: &str) -> String {
    message
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key")
        .replace("expected u32", "expected a whole number")
        .replace("expected u64", "expected a whole number")
        .replace("expected a boolean", "expected `true` or `false`")
        .replace("expected a sequence", "expected a list")
        .replace("expected a map", "expected a map of keys")
}

fn last_key(path: &YamlPath) -> String {
    match path.segments().last() {
        Some(super::source::Segment::Key(k)) => k.clone(),
        Some(super::source::Segment::Index(i)) => i.to_string(),
        None => String::new(),
    }
}

/// The location and the message (without its position suffix) of a serde_norway error.
/// What to check for a YAML syntax error at `location`: a tab that indents a line up to
/// there, else the indentation and the usual slips around that line.
fn yaml_hint(text: &str, location: Location) -> String {
    let tab = (text.lines().enumerate().take(location.line.max(1)))
        .find(|(_, line)| line.trim_start_matches(' ').starts_with('\t'));
    if let Some((index, _)) = tab {
        return format!(
            "line {} is indented with a tab: YAML indents with spaces only",
            index + 1
        );
    }
    if location.line > text.lines().count() {
        return "the file ends inside something opened above it: look for an unclosed `[`, `{` \
                or quote"
            .to_owned();
    }
    format!(
        "check the indentation of line {} and the line above it: the keys of one map start in \
         the same column, indented with spaces; also look for a missing `:` after a key, a \
         value holding `: ` without quotes, or an unclosed quote or bracket",
        location.line
    )
}

fn yaml_error(e: &serde_norway::Error, text: &str) -> (Location, String) {
    let message = e.to_string();
    match e.location() {
        Some(l) => {
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            (
                Location {
                    line: l.line(),
                    col: l.column(),
                },
                message.replacen(&suffix, "", 1),
            )
        }
        None => {
            // Fall back to the event parser for a location.
            let location = SourceMap::parse(text)
                .err()
                .map_or(Location::START, |s| s.location);
            (location, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_beyond_the_limit_say_so() {
        assert_eq!(
            problems("version: 1\nworkflow: wf.json\nruns: 1000000000000\n"),
            [
                "m.yaml:3:7: error: `runs` is too large: 1000000000000 is more than 4294967295, the limit\n  hint: each run of each combination is a job, and a manifest makes at most `--max-jobs` jobs (10000 by default)"
            ]
        );
    }

    #[test]
    fn a_manifest_over_the_size_limit_is_refused_at_the_line_that_crosses_it() {
        let line = "# a comment line that is exactly sixty-four bytes long ........\n";
        assert_eq!(line.len(), 64);
        let text = format!("version: 1\nworkflow: wf.json\n{}", line.repeat(20_000));
        assert!(text.len() > MAX_MANIFEST_BYTES);
        let found = problems(&text);
        // 26 bytes of header, then 64 bytes a line: byte 2^20 is on line 2 + ceil((2^20 - 26) / 64).
        let expected_line = 2 + (MAX_MANIFEST_BYTES - 26).div_ceil(64);
        assert_eq!(
            found,
            [format!(
                "m.yaml:{expected_line}:1: error: the manifest is larger than 1 MiB, the limit; it reaches the limit on this line\n  hint: write long sweeps as `{{range: ...}}` or `{{glob: ...}}`, or split the manifest"
            )]
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.yaml");
        crate::fs::write(&path, &text).expect("write");
        let err = read_manifest(&path, Path::new("big.yaml")).expect_err("too large");
        assert!(
            err.to_string().starts_with(&format!(
                "big.yaml:{expected_line}:1: error: the manifest is larger than 1 MiB"
            )),
            "{err}"
        );
    }

    #[test]
    fn a_list_over_the_length_limit_is_refused_where_it_starts() {
        let items = "1,".repeat(crate::manifest::MAX_COLLECTION_ITEMS + 1);
        let text =
            format!("version: 1\nworkflow: wf.json\nsweep:\n  matrix:\n    Steps: [{items}]\n");
        assert!(text.len() < MAX_MANIFEST_BYTES);
        assert_eq!(
            problems(&text),
            [
                "m.yaml:5:12: error: the list `sweep.matrix.Steps` has more than 100000 items, the limit\n  hint: write long sweeps as `{range: ...}` or `{glob: ...}`, or split the manifest"
            ]
        );
    }

    #[test]
    fn messages_about_huge_values_do_not_repeat_them() {
        let value = "x".repeat(100_000);
        let found = problems(&format!(
            "version: 1\nworkflow: wf.json\nrunz: \"{value}\"\nserver: \"{value}\"\n"
        ));
        assert_eq!(found.len(), 2, "{found:?}");
        for p in &found {
            assert!(p.len() < 400, "{p}");
        }
        assert!(
            found[1].contains(&format!("`{}…`", "x".repeat(80))),
            "{}",
            found[1]
        );
    }

    fn problems(yaml: &str) -> Vec<String> {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::fs::write(dir.path().join("wf.json"), "{}").expect("write");
        let path = dir.path().join("m.yaml");
        let strip = |s: String| s.replace(&format!("{}/", dir.path().display()), "");
        match ManifestFile::parse(yaml, &path) {
            Ok(f) => f
                .load_problems()
                .into_iter()
                .map(|d| strip(d.to_string()))
                .collect(),
            Err(e) => e
                .diagnostics()
                .iter()
                .map(|d| strip(d.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_clean_manifest_has_no_problems() {
        assert_eq!(
            problems("version: 1\nworkflow: wf.json\ninputs: {Hue: 3}\n"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn structural_problems_are_all_reported_with_places() {
        let yaml = "\
version: 2
workflow: wf.json
imputs: {Hue: 3}
runs: 0
output:
  nam: x
cleanup:
  uploads: sometimes
";
        assert_eq!(
            problems(yaml),
            [
                "m.yaml:1:10: error: unsupported manifest version 2\n  hint: this invk-run reads version 1; see docs/manifest.md",
                "m.yaml:3:1: error: unknown key `imputs`\n  hint: did you mean `inputs`?",
                "m.yaml:4:7: error: `runs` must be at least 1\n  hint: leave `runs` out to run each combination once",
                "m.yaml:6:3: error: unknown key `nam`, expected one of `dir`, `name`, `sidecar`, `grid`, `gallery`\n  hint: did you mean `name`?",
                "m.yaml:8:12: error: unknown variant `sometimes`, expected one of `on-success`, `always`, `never`",
            ]
        );
        assert_eq!(
            problems("version: 1\nworkflow: wf.json\ncleanup: {outputs: after-downlaod}\n"),
            [
                "m.yaml:3:20: error: unknown variant `after-downlaod`, expected `after-download` or `never`\n  hint: did you mean `after-download`?",
            ]
        );
    }

    #[test]
    fn fatal_problems_stop_loading() {
        assert_eq!(
            problems(""),
            [
                "m.yaml:1:1: error: the manifest is empty\n  hint: a manifest needs at least `version: 1` and `workflow: FILE`"
            ]
        );
        assert_eq!(
            problems("- a\n- b\n"),
            [
                "m.yaml:1:1: error: a manifest is a map of keys (`version`, `workflow`, `inputs`...), found a list"
            ]
        );
        let p = problems("version: 1\nworkflow: [a\n");
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("m.yaml:3:1: error: invalid YAML: "),
            "{p:?}"
        );
        let p = problems("version: 1\nworkflow: nope.json\n");
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("m.yaml:2:11: error: workflow file `nope.json` not found\n  hint: the path is relative to the manifest's folder `"),
            "{p:?}"
        );
    }

    #[test]
    fn duplicate_keys_are_refused() {
        assert_eq!(
            problems("version: 1\nworkflow: wf.json\ninputs:\n  Hue: 1\n  Hue: 2\n"),
            [
                "m.yaml:5:3: error: duplicate key `Hue` (first at line 4)\n  hint: YAML keys must be unique in a map; remove one"
            ]
        );
    }

    #[test]
    fn server_must_be_a_url() {
        assert_eq!(
            problems("version: 1\nworkflow: wf.json\nserver: localhost:9090\n"),
            [
                "m.yaml:3:9: error: `localhost:9090` is not an http(s) URL\n  hint: write the server's base URL, e.g. `http://127.0.0.1:9090`"
            ]
        );
    }

    #[test]
    fn top_level_keys_match_the_model() {
        let schema = schemars::schema_for!(Manifest);
        let props: Vec<&String> = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().collect())
            .unwrap_or_default();
        assert_eq!(props, TOP_LEVEL_KEYS);
    }
}

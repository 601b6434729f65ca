//! The manifest's serde model. `docs/manifest.md` is the user-facing reference of these keys;
//! `schemas/manifest.schema.json` is generated from these types.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Number, Value};

use super::diagnostic::describe;

/// The only manifest format version this build reads.
pub const VERSION: u32 = 1;

/// The server of a manifest: one URL, or a pool of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Servers {
    /// One server.
    One(String),
    /// A pool: the run spreads its jobs over them.
    Pool(Vec<ServerSpec>),
}

/// A server of a manifest's pool: its URL, or its URL with options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ServerSpec {
    /// Its base URL.
    Url(String),
    /// Its base URL and options.
    Entry(ServerOptions),
}

/// A server of a pool with options of its own. Secrets are never in a manifest: a token or a
/// password is read from the environment variable named here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerOptions {
    /// Its base URL.
    pub url: String,
    /// The most sessions of the run pending on it at once (else the run's `--window`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub window: Option<u32>,
    /// Its share against the other servers: its window is the run's times this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// The environment variable that holds its token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// The email to log into it with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The environment variable that holds the password for `email` (else `INVK_PASSWORD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
}

impl ServerSpec {
    /// Its URL.
    #[must_use]
    pub fn url(&self) -> &str {
        match self {
            ServerSpec::Url(url) => url,
            ServerSpec::Entry(options) => &options.url,
        }
    }
}

impl Servers {
    /// The URLs, in order.
    #[must_use]
    pub fn urls(&self) -> Vec<&str> {
        match self {
            Servers::One(url) => vec![url.as_str()],
            Servers::Pool(specs) => specs.iter().map(ServerSpec::url).collect(),
        }
    }
}

/// A job manifest: which workflow to run, with which input values, how often, where the outputs
/// go and what is deleted on the server afterwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "invk-run manifest")]
pub struct Manifest {
    /// Manifest format version; always `1`.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// The workflow to run: a JSON file exported from the InvokeAI web UI (a path relative to
    /// this manifest's folder), or `{library: NAME_OR_ID}` for a workflow in the server's library.
    pub workflow: WorkflowRef,
    /// Base URL of the InvokeAI server, or a list of them: a pool the run spreads its jobs
    /// over; `--server` and `INVK_SERVER` override it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<Servers>,
    /// Input values, by user name (the label in the workflow's form), system name
    /// (`node_id.field`) or `#INDEX`. Strings are templates. An image input takes a local path
    /// (relative to this manifest's folder; uploaded) or `{image_name: NAME}`; a model input takes
    /// an installed model's name or `{key: KEY}`; an integer (seed) input may take
    /// `{seed: random}`, a reproducible seed per job.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub inputs: Map<String, Value>,
    /// Free variables for templates, as `vars.NAME`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub vars: Map<String, Value>,
    /// Which input values (or template variables) vary from job to job.
    #[serde(default, skip_serializing_if = "Sweep::is_empty")]
    pub sweep: Sweep,
    /// How many times every combination runs (each repeat is a separate job).
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub runs: u32,
    /// The manifest seed (default 0): the seeds invk-run derives for `{seed: random}` inputs
    /// and `{seeds: N}` sweep keys start from it; change it to draw other seeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The folder of wildcard files (relative to this manifest's folder) that `{dynamic: ...}`
    /// templates read `__NAME__` from: `NAME.txt`, one value per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcards: Option<String>,
    /// Where outputs are written.
    #[serde(default)]
    pub output: Output,
    /// What is deleted on the server after the run.
    #[serde(default)]
    pub cleanup: Cleanup,
    /// Who is told when the run ends: a URL POSTed a JSON summary, or a command that reads it
    /// on its stdin; one entry or a list (see docs/notify.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<super::notify::Notify>,
}

fn one() -> u32 {
    1
}

/// Where the workflow comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum WorkflowRef {
    /// A workflow JSON file, relative to the manifest's folder.
    File(String),
    /// A workflow in the server's library.
    Library {
        /// The workflow's name or id in the library.
        library: String,
    },
}

impl<'de> Deserialize<'de> for WorkflowRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const EXPECTED: &str = "expected a workflow file path or `{library: NAME_OR_ID}`";
        match Value::deserialize(d)? {
            Value::String(s) if !s.trim().is_empty() => Ok(WorkflowRef::File(s)),
            Value::Object(m) => match (m.get("library"), m.len()) {
                (Some(Value::String(s)), 1) if !s.trim().is_empty() => {
                    Ok(WorkflowRef::Library { library: s.clone() })
                }
                _ => Err(D::Error::custom(format!(
                    "{EXPECTED}, found {}",
                    describe(&Value::Object(m))
                ))),
            },
            other => Err(D::Error::custom(format!(
                "{EXPECTED}, found {}",
                describe(&other)
            ))),
        }
    }
}

/// The sweep: `table` (rows from files), `matrix` (cartesian product), `zip` (lists advanced
/// together), `exclude` and `include` (GitHub Actions semantics).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Rows from a data file (relative to the manifest's folder): CSV or TSV with a header
    /// (`.csv`, `.tsv`) or JSON Lines (`.jsonl`, one object per line). Each row is one
    /// combination of its columns (zip semantics); columns name inputs or template variables as
    /// sweep keys do. A list of files makes one group per file, combined as a product.
    #[serde(default, skip_serializing_if = "Tables::is_empty")]
    pub table: Tables,
    /// Every combination of these values; the first key varies slowest, the last fastest.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub matrix: IndexMap<String, Axis>,
    /// Lists of equal length advanced together: one map, or a list of maps (each its own group,
    /// combined with the matrix and each other as a product).
    #[serde(default, skip_serializing_if = "Zip::is_empty")]
    pub zip: Zip,
    /// Combinations to drop: each entry drops every combination whose values match all its keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<Map<String, Value>>,
    /// Combinations to extend or add: an entry extends every combination whose sweep values it
    /// matches with its other keys, and becomes a new combination when it matches none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<Map<String, Value>>,
}

impl Sweep {
    /// Whether the sweep has no entries at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
            && self.matrix.is_empty()
            && self.zip.is_empty()
            && self.exclude.is_empty()
            && self.include.is_empty()
    }
}

/// The data files of `sweep.table`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Tables {
    /// One file.
    One(String),
    /// Several files, each its own group of rows.
    Many(Vec<String>),
}

impl Default for Tables {
    fn default() -> Tables {
        Tables::Many(Vec::new())
    }
}

impl Tables {
    /// Whether there is no file.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        matches!(self, Tables::Many(files) if files.is_empty())
    }

    /// The files, each with its index under `table` (`None` for the single-file form).
    #[must_use]
    pub fn files(&self) -> Vec<(Option<usize>, &str)> {
        match self {
            Tables::One(file) => vec![(None, file.as_str())],
            Tables::Many(files) => files
                .iter()
                .enumerate()
                .map(|(i, f)| (Some(i), f.as_str()))
                .collect(),
        }
    }
}

impl<'de> Deserialize<'de> for Tables {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const EXPECTED: &str = "expected a data file (`.csv`, `.tsv`, `.jsonl`) or a list of them";
        match Value::deserialize(d)? {
            Value::String(s) if !s.trim().is_empty() => Ok(Tables::One(s)),
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) if !s.trim().is_empty() => Ok(s),
                    other => Err(D::Error::custom(format!(
                        "{EXPECTED}, found {} in the list",
                        describe(&other)
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Tables::Many),
            other => Err(D::Error::custom(format!(
                "{EXPECTED}, found {}",
                describe(&other)
            ))),
        }
    }
}

/// The values of one sweep key.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Axis {
    /// The values, in order.
    Values(Vec<Value>),
    /// Local files matching a glob pattern (relative to the manifest's folder), sorted by path.
    Glob {
        /// The pattern, e.g. `photos/*.png` (`**` crosses folders).
        glob: String,
    },
    /// Numbers from `start` to `stop` inclusive, by `step` (default 1).
    Range {
        /// `[start, stop]` or `[start, stop, step]`.
        #[schemars(length(min = 2, max = 3))]
        range: Vec<Number>,
    },
    /// One value per non-empty line of a text file (relative to the manifest's folder); lines
    /// whose first non-blank character is `#` are comments. Values are taken as written (no
    /// templates), without surrounding blanks.
    Lines {
        /// The file, e.g. `prompts.txt`.
        lines: String,
    },
    /// `N` different seeds, reproducible: derived from the manifest's `seed`, the key and the
    /// position (the same `N` for every combination, so a grid compares like with like).
    Seeds {
        /// How many seeds.
        #[schemars(range(min = 1))]
        seeds: u64,
    },
    /// Prompts from a dynamic-prompt template (see [`DynamicAxis`]).
    Dynamic(DynamicAxis),
    /// Prompt search/replace (see [`ReplaceAxis`]).
    Replace(ReplaceAxis),
}

/// `{dynamic: TEMPLATE}`: the prompts of a template in the syntax of the `dynamicprompts`
/// library (`a {red|green} {car|bike}`, `{2$$a|b|c}`, `__wildcard__`): every combination in the
/// library's order, or `random` draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DynamicAxis {
    /// The template.
    pub dynamic: String,
    /// Take the first `max` combinations (without it, a template with more combinations than
    /// the job limit is refused rather than cut).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max: Option<u64>,
    /// Draw this many random prompts instead, reproducibly from the manifest's `seed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub random: Option<u64>,
}

impl DynamicAxis {
    /// `{dynamic: ...}` read from a value, `None` when the value is not a map with `dynamic`.
    pub(crate) fn of(value: &Value) -> Option<Result<DynamicAxis, String>> {
        match value {
            Value::Object(m) if m.contains_key("dynamic") => Some(
                serde_json::from_value::<DynamicAxis>(value.clone())
                    .map_err(|e| format!("in `{{dynamic: ...}}`: {e}"))
                    .and_then(|d| match (d.max, d.random) {
                        (Some(0), _) | (_, Some(0)) => {
                            Err("`max` and `random` take a whole number of at least 1".into())
                        }
                        (Some(_), Some(_)) => Err(
                            "`max` caps the combinations and `random` draws prompts instead: give one of them".into(),
                        ),
                        _ => Ok(d),
                    }),
            ),
            _ => None,
        }
    }
}

/// `{replace: [cat, dog, fox], in: INPUT}` (A1111's Prompt S/R): one value per word; each job
/// has the first word replaced by its word in the text of `in`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceAxis {
    /// The words: the first is searched for, each in turn replaces it.
    #[schemars(length(min = 1))]
    pub replace: Vec<String>,
    /// The input whose text is edited (as inputs are named under `inputs`).
    #[serde(rename = "in")]
    pub input: String,
}

impl ReplaceAxis {
    fn of(value: &Value) -> Result<ReplaceAxis, String> {
        let r = serde_json::from_value::<ReplaceAxis>(value.clone())
            .map_err(|e| format!("in `{{replace: [...], in: INPUT}}`: {e}"))?;
        if r.replace.first().is_none_or(String::is_empty) {
            return Err("`replace` takes a list of words, the first one not empty".into());
        }
        Ok(r)
    }
}

impl<'de> Deserialize<'de> for Axis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const EXPECTED: &str = "expected a list of values, `{glob: PATTERN}`, `{range: [START, STOP, STEP]}`, `{lines: FILE}`, `{seeds: N}`, `{dynamic: TEMPLATE}` or `{replace: [WORDS], in: INPUT}`";
        let value = Value::deserialize(d)?;
        if let Some(dynamic) = DynamicAxis::of(&value) {
            return dynamic.map(Axis::Dynamic).map_err(D::Error::custom);
        }
        match value {
            Value::Object(ref m) if m.contains_key("replace") => ReplaceAxis::of(&value)
                .map(Axis::Replace)
                .map_err(D::Error::custom),
            Value::Array(items) => Ok(Axis::Values(items)),
            Value::Object(ref m) if m.len() == 1 => match m.iter().next() {
                Some((k, Value::String(p))) if k == "glob" => Ok(Axis::Glob { glob: p.clone() }),
                Some((k, Value::String(p))) if k == "lines" && !p.trim().is_empty() => {
                    Ok(Axis::Lines { lines: p.clone() })
                }
                Some((k, n)) if k == "seeds" => match n.as_u64() {
                    Some(seeds) if seeds >= 1 => Ok(Axis::Seeds { seeds }),
                    _ => Err(D::Error::custom(format!(
                        "`seeds` takes how many seeds to draw (a whole number of at least 1), found {}",
                        describe(n)
                    ))),
                },
                Some((k, Value::Array(items))) if k == "range" => {
                    let numbers: Option<Vec<Number>> =
                        items.iter().map(|v| v.as_number().cloned()).collect();
                    match numbers {
                        Some(n) if (2..=3).contains(&n.len()) => Ok(Axis::Range { range: n }),
                        _ => Err(D::Error::custom(
                            "`range` takes two or three numbers: `[START, STOP]` or `[START, STOP, STEP]`",
                        )),
                    }
                }
                _ => Err(D::Error::custom(format!(
                    "{EXPECTED}, found {}",
                    describe(&value)
                ))),
            },
            other => Err(D::Error::custom(format!(
                "{EXPECTED}, found {}",
                describe(&other)
            ))),
        }
    }
}

/// The `zip` groups of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Zip {
    /// One group.
    One(IndexMap<String, Axis>),
    /// Several groups, combined as a product.
    Groups(Vec<IndexMap<String, Axis>>),
}

impl Default for Zip {
    fn default() -> Zip {
        Zip::Groups(Vec::new())
    }
}

impl Zip {
    /// Whether there is no zip group.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        match self {
            Zip::One(m) => m.is_empty(),
            Zip::Groups(g) => g.iter().all(IndexMap::is_empty),
        }
    }

    /// The groups, each with the index it has under `zip` (`None` for the single-map form).
    #[must_use]
    pub fn groups(&self) -> Vec<(Option<usize>, &IndexMap<String, Axis>)> {
        match self {
            Zip::One(m) if m.is_empty() => Vec::new(),
            Zip::One(m) => vec![(None, m)],
            Zip::Groups(g) => g
                .iter()
                .enumerate()
                .filter(|(_, m)| !m.is_empty())
                .map(|(i, m)| (Some(i), m))
                .collect(),
        }
    }
}

impl<'de> Deserialize<'de> for Zip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        match value {
            Value::Object(_) => serde_json::from_value(value)
                .map(Zip::One)
                .map_err(D::Error::custom),
            Value::Array(_) => serde_json::from_value(value)
                .map(Zip::Groups)
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "expected a map of equal-length lists, or a list of such maps, found {}",
                describe(&other)
            ))),
        }
    }
}

/// Where outputs go. Both are templates (see `docs/manifest.md` for their variables).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// The folder (relative to the manifest's folder, or absolute).
    #[serde(default = "default_dir")]
    pub dir: String,
    /// The file name without extension, relative to `dir` (may contain `/`, may not leave `dir`).
    #[serde(default = "default_name")]
    pub name: String,
    /// Write a JSON file beside each output: inputs, seed, workflow, server, item id, times.
    #[serde(default = "default_true")]
    pub sidecar: bool,
    /// X/Y grids of the sweep's outputs: one grid (a map), several (a list), or `false` for
    /// none. Without it, a sweep of one or two keys gets one default grid per output node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<super::grid::Grids>,
    /// Write `index.html`, a gallery of every output, at the root of `dir`.
    #[serde(default = "default_true")]
    pub gallery: bool,
}

/// The default `output.dir`.
pub const DEFAULT_OUTPUT_DIR: &str = "out/{{ manifest.stem }}";
/// The default `output.name`.
pub const DEFAULT_OUTPUT_NAME: &str = "{{ job.number }}-{{ node.label }}-{{ image.index }}";

fn default_dir() -> String {
    DEFAULT_OUTPUT_DIR.to_owned()
}

fn default_name() -> String {
    DEFAULT_OUTPUT_NAME.to_owned()
}

fn default_true() -> bool {
    true
}

impl Default for Output {
    fn default() -> Output {
        Output {
            dir: default_dir(),
            name: default_name(),
            sidecar: true,
            grid: None,
            gallery: true,
        }
    }
}

/// What is deleted on the server after a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cleanup {
    /// The images this run uploaded.
    #[serde(default)]
    pub uploads: UploadsPolicy,
    /// The images the jobs produced.
    #[serde(default)]
    pub outputs: OutputsPolicy,
    /// The intermediate images the jobs produced.
    #[serde(default)]
    pub intermediates: IntermediatesPolicy,
}

/// When uploaded images are deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UploadsPolicy {
    /// After every job that uses them finished successfully (kept for diagnosis otherwise).
    #[default]
    OnSuccess,
    /// At the end of the run, whatever happened.
    Always,
    /// Never.
    Never,
}

/// When produced images are deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OutputsPolicy {
    /// Once every file that needs them is safely on disk.
    #[default]
    AfterDownload,
    /// Never.
    Never,
}

/// What happens to intermediate images.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IntermediatesPolicy {
    /// Delete the intermediates the run's jobs made.
    #[default]
    Delete,
    /// Keep them.
    Keep,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(yaml: &str) -> Result<T, String> {
        serde_norway::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_manifest_parses_with_defaults() {
        let m: Manifest = parse(
            "version: 1\nworkflow: wf.json\ninputs: {Hue: 30}\nsweep:\n  matrix: {animal: [cat, dog], photo: {glob: '*.png'}, steps: {range: [10, 40, 10]}}\n  zip: [{a: [1, 2], b: [3, 4]}]\n",
        )
        .expect("valid");
        assert_eq!(m.workflow, WorkflowRef::File("wf.json".into()));
        assert_eq!(m.runs, 1);
        assert_eq!(m.output, Output::default());
        assert_eq!(m.cleanup, Cleanup::default());
        assert_eq!(
            m.sweep.matrix.keys().collect::<Vec<_>>(),
            ["animal", "photo", "steps"]
        );
        assert_eq!(
            m.sweep.matrix["photo"],
            Axis::Glob {
                glob: "*.png".into()
            }
        );
        assert_eq!(m.sweep.zip.groups().len(), 1);
    }

    #[test]
    fn workflow_may_name_a_library_entry() {
        let m: Manifest = parse("version: 1\nworkflow: {library: My Flow}\n").expect("valid");
        assert_eq!(
            m.workflow,
            WorkflowRef::Library {
                library: "My Flow".into()
            }
        );
        let err = parse::<Manifest>("version: 1\nworkflow: {libary: x}\n").expect_err("typo");
        assert!(err.contains("expected a workflow file path or `{library: NAME_OR_ID}`, found a map with `libary`"), "{err}");
    }

    #[test]
    fn zip_takes_one_map_or_a_list_of_maps() {
        let one: Sweep = parse("zip: {a: [1], b: [2]}").expect("map");
        assert!(matches!(one.zip, Zip::One(_)));
        let err = parse::<Sweep>("zip: 3").expect_err("number");
        assert!(
            err.contains("expected a map of equal-length lists"),
            "{err}"
        );
    }

    #[test]
    fn axis_errors_say_what_is_accepted() {
        for (yaml, expected) in [
            (
                "matrix: {a: 3}",
                "expected a list of values, `{glob: PATTERN}`, `{range: [START, STOP, STEP]}`, `{lines: FILE}`, `{seeds: N}`, `{dynamic: TEMPLATE}` or `{replace: [WORDS], in: INPUT}`, found the number 3",
            ),
            (
                "matrix: {a: {range: [1]}}",
                "`range` takes two or three numbers",
            ),
            ("matrix: {a: {globs: x}}", "found a map with `globs`"),
        ] {
            let err = parse::<Sweep>(yaml).expect_err(yaml);
            assert!(err.contains(expected), "{yaml}: {err}");
        }
    }

    #[test]
    fn cleanup_words_are_kebab_case() {
        let c: Cleanup =
            parse("uploads: always\noutputs: never\nintermediates: keep").expect("valid");
        assert_eq!(c.uploads, UploadsPolicy::Always);
        let err = parse::<Cleanup>("uploads: sometimes").expect_err("bad word");
        assert!(
            err.contains(
                "unknown variant `sometimes`, expected one of `on-success`, `always`, `never`"
            ),
            "{err}"
        );
    }
}

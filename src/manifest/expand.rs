//! Sweep expansion: from `sweep` and `runs` to the ordered list of combinations.
//!
//! Order (documented in `docs/manifest.md`):
//! 1. axes: each `matrix` key in written order, then each `zip` group; the product runs like
//!    nested loops written in that order, so the first axis varies slowest and the last fastest;
//! 2. `exclude` drops every combination matching all keys of an entry;
//! 3. `include` extends matching combinations or appends new ones (GitHub Actions semantics);
//! 4. `runs` repeats the whole list (runs are the outer loop, as on the server).

use std::path::Path;

use globset::GlobBuilder;
use indexmap::IndexMap;
use serde_json::{Map, Number, Value};

use super::diagnostic::{At, Diagnostics, did_you_mean};
use super::model::{Axis, Sweep};
use super::source::YamlPath;

/// Above this many combinations before `exclude`, expansion refuses without enumerating.
const ENUMERATION_LIMIT: u128 = 5_000_000;

/// A sweep value and the place in the manifest it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SweepValue {
    pub(crate) value: Value,
    pub(crate) origin: YamlPath,
    /// Whether the value is a file path a glob produced (never a template).
    pub(crate) from_glob: bool,
}

/// One combination of sweep values, by sweep key.
pub(crate) type Combination = IndexMap<String, SweepValue>;

/// The result of expanding a sweep.
#[derive(Debug)]
pub(crate) struct Expanded {
    /// The combinations, in order (without runs).
    pub(crate) combinations: Vec<Combination>,
    /// Every sweep key, with the path of its first appearance (matrix, zip, then include).
    pub(crate) keys: IndexMap<String, YamlPath>,
}

/// One dimension of the product: a matrix key (one key) or a zip group (several keys).
struct Dimension {
    keys: Vec<String>,
    rows: Vec<Vec<SweepValue>>,
}

/// Expands `sweep`; problems go to `diags` (the result is then partial and must not be run).
pub(crate) fn expand(
    sweep: &Sweep,
    runs: u32,
    base_dir: &Path,
    max_jobs: u64,
    diags: &mut Diagnostics<'_>,
) -> Expanded {
    let sweep_path = YamlPath::keys(&["sweep"]);
    let mut keys: IndexMap<String, YamlPath> = IndexMap::new();
    let mut dims: Vec<Dimension> = Vec::new();

    for (key, axis) in &sweep.matrix {
        let path = sweep_path.key("matrix").key(key);
        keys.insert(key.clone(), path.clone());
        let values = axis_values(axis, &path, base_dir, max_jobs, diags);
        dims.push(Dimension {
            keys: vec![key.clone()],
            rows: values.into_iter().map(|v| vec![v]).collect(),
        });
    }

    for (group_index, group) in sweep.zip.groups() {
        let group_path = match group_index {
            Some(i) => sweep_path.key("zip").index(i),
            None => sweep_path.key("zip"),
        };
        let mut columns: Vec<(String, Vec<SweepValue>)> = Vec::new();
        for (key, axis) in group {
            let path = group_path.key(key);
            if let Some(first) = keys.get(key) {
                diags.push(
                    &path,
                    At::Key,
                    format!("`{key}` is swept twice (also at `{first}`)"),
                    Some(
                        "a key may appear in only one of `sweep.matrix` and the `sweep.zip` groups"
                            .into(),
                    ),
                );
                continue;
            }
            keys.insert(key.clone(), path.clone());
            columns.push((
                key.clone(),
                axis_values(axis, &path, base_dir, max_jobs, diags),
            ));
        }
        let lengths: Vec<usize> = columns.iter().map(|(_, v)| v.len()).collect();
        if lengths.windows(2).any(|w| w[0] != w[1]) {
            let detail: Vec<String> = columns
                .iter()
                .map(|(k, v)| format!("`{k}` has {} value{}", v.len(), plural(v.len())))
                .collect();
            diags.push(
                &group_path,
                At::Key,
                format!("zipped lists differ in length: {}", detail.join(", ")),
                Some(
                    "zipped lists advance together, so each needs the same number of values".into(),
                ),
            );
            continue;
        }
        let len = lengths.first().copied().unwrap_or(0);
        let rows = (0..len)
            .map(|i| columns.iter().map(|(_, v)| v[i].clone()).collect())
            .collect();
        dims.push(Dimension {
            keys: columns.into_iter().map(|(k, _)| k).collect(),
            rows,
        });
    }

    let product: u128 = dims.iter().map(|d| d.rows.len() as u128).product();
    let total_before_exclude = product.saturating_mul(u128::from(runs));
    if product > ENUMERATION_LIMIT {
        too_many(
            diags,
            sweep,
            &format!("about {total_before_exclude}"),
            total_before_exclude,
            max_jobs,
        );
        return Expanded {
            combinations: Vec::new(),
            keys,
        };
    }

    // With no axes, `include` entries are the combinations (as in GitHub Actions); without
    // either there is one empty combination, so a manifest without a sweep is one job per run.
    let mut combinations: Vec<Combination> = if dims.is_empty() && !sweep.include.is_empty() {
        Vec::new()
    } else {
        product_of(&dims)
    };

    let axis_keys: Vec<String> = dims.iter().flat_map(|d| d.keys.iter().cloned()).collect();
    apply_exclude(sweep, &axis_keys, &mut combinations, diags);
    apply_include(sweep, &axis_keys, &mut combinations, &mut keys);

    let total = (combinations.len() as u128).saturating_mul(u128::from(runs));
    if total > u128::from(max_jobs) {
        too_many(diags, sweep, &total.to_string(), total, max_jobs);
        combinations.clear();
    }
    Expanded { combinations, keys }
}

fn too_many(diags: &mut Diagnostics<'_>, sweep: &Sweep, count: &str, total: u128, max_jobs: u64) {
    let path = if sweep.is_empty() {
        YamlPath::keys(&["runs"])
    } else {
        YamlPath::keys(&["sweep"])
    };
    diags.push(
        &path,
        At::Key,
        format!("the manifest expands to {count} jobs, more than the limit of {max_jobs}"),
        Some(format!(
            "narrow the sweep, or raise the limit with `--max-jobs {total}`"
        )),
    );
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The cartesian product of the dimensions, last dimension fastest.
fn product_of(dims: &[Dimension]) -> Vec<Combination> {
    let mut out = vec![Combination::new()];
    for dim in dims {
        let mut next = Vec::with_capacity(out.len() * dim.rows.len());
        for combo in &out {
            for row in &dim.rows {
                let mut c = combo.clone();
                for (k, v) in dim.keys.iter().zip(row) {
                    c.insert(k.clone(), v.clone());
                }
                next.push(c);
            }
        }
        out = next;
    }
    out
}

fn apply_exclude(
    sweep: &Sweep,
    axis_keys: &[String],
    combos: &mut Vec<Combination>,
    diags: &mut Diagnostics<'_>,
) {
    for (i, entry) in sweep.exclude.iter().enumerate() {
        let path = YamlPath::keys(&["sweep", "exclude"]).index(i);
        let mut valid = true;
        for key in entry.keys() {
            if !axis_keys.contains(key) {
                valid = false;
                let hint =
                    did_you_mean(key, axis_keys.iter().map(String::as_str)).unwrap_or_else(|| {
                        "`exclude` entries may only name keys of `sweep.matrix` and `sweep.zip`"
                            .into()
                    });
                diags.push(
                    &path.key(key),
                    At::Key,
                    format!("`exclude` names `{key}`, which is not a sweep key"),
                    Some(hint),
                );
            }
        }
        if !valid {
            continue;
        }
        if entry.is_empty() {
            diags.push(
                &path,
                At::Value,
                "empty `exclude` entry",
                Some("an empty entry would drop every combination".into()),
            );
            continue;
        }
        let before = combos.len();
        combos.retain(|c| !matches_all(entry, c));
        if combos.len() == before {
            diags.push(
                &path,
                At::Value,
                "this `exclude` entry matches no combination",
                Some("values are compared exactly (`0` and `\"0\"` differ); check them against the sweep's lists".into()),
            );
        }
    }
}

fn apply_include(
    sweep: &Sweep,
    axis_keys: &[String],
    combos: &mut Vec<Combination>,
    keys: &mut IndexMap<String, YamlPath>,
) {
    let original = combos.len();
    for (i, entry) in sweep.include.iter().enumerate() {
        let path = YamlPath::keys(&["sweep", "include"]).index(i);
        let value = |k: &str, v: &Value| SweepValue {
            value: v.clone(),
            origin: path.key(k),
            from_glob: false,
        };
        for k in entry.keys() {
            keys.entry(k.clone()).or_insert_with(|| path.key(k));
        }
        let mut matched = false;
        for combo in combos.iter_mut().take(original) {
            // An entry may add keys and overwrite keys added by earlier entries, but never
            // overwrite an original sweep value.
            let compatible = entry.iter().all(|(k, v)| {
                !axis_keys.contains(k) || combo.get(k).is_some_and(|sv| values_equal(&sv.value, v))
            });
            if compatible {
                matched = true;
                for (k, v) in entry {
                    if !axis_keys.contains(k) {
                        combo.insert(k.clone(), value(k, v));
                    }
                }
            }
        }
        if !matched {
            combos.push(
                entry
                    .iter()
                    .map(|(k, v)| (k.clone(), value(k, v)))
                    .collect(),
            );
        }
    }
}

fn matches_all(entry: &Map<String, Value>, combo: &Combination) -> bool {
    entry
        .iter()
        .all(|(k, v)| combo.get(k).is_some_and(|sv| values_equal(&sv.value, v)))
}

/// Equality where `1` and `1.0` are the same number.
pub(crate) fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        _ => a == b,
    }
}

fn axis_values(
    axis: &Axis,
    path: &YamlPath,
    base_dir: &Path,
    max_jobs: u64,
    diags: &mut Diagnostics<'_>,
) -> Vec<SweepValue> {
    let values: Vec<SweepValue> = match axis {
        Axis::Values(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| SweepValue {
                value: v.clone(),
                origin: path.index(i),
                from_glob: false,
            })
            .collect(),
        Axis::Glob { glob } => match glob_files(base_dir, glob) {
            Ok(files) if files.is_empty() => {
                diags.push(
                    &path.key("glob"),
                    At::Value,
                    format!("`{glob}` matches no file"),
                    Some(format!(
                        "the pattern is relative to the manifest's folder `{}`",
                        base_dir.display()
                    )),
                );
                Vec::new()
            }
            Ok(files) => files
                .into_iter()
                .map(|f| SweepValue {
                    value: Value::String(f),
                    origin: path.key("glob"),
                    from_glob: true,
                })
                .collect(),
            Err(message) => {
                diags.push(&path.key("glob"), At::Value, message, None);
                Vec::new()
            }
        },
        Axis::Range { range } => match range_values(range, max_jobs) {
            Ok(v) => v
                .into_iter()
                .map(|v| SweepValue {
                    value: v,
                    origin: path.key("range"),
                    from_glob: false,
                })
                .collect(),
            Err(message) => {
                diags.push(&path.key("range"), At::Value, message, None);
                Vec::new()
            }
        },
    };
    if values.is_empty() && matches!(axis, Axis::Values(_)) {
        diags.push(
            path,
            At::Key,
            format!(
                "`{}` has no values, so the sweep would make no job",
                path.segments().last().map_or_else(String::new, key_text)
            ),
            Some("give it at least one value, or remove it".into()),
        );
    }
    values
}

fn key_text(s: &super::source::Segment) -> String {
    match s {
        super::source::Segment::Key(k) => k.clone(),
        super::source::Segment::Index(i) => i.to_string(),
    }
}

/// Files under `base_dir` matching `pattern` (`*` stays inside one folder, `**` crosses folders),
/// as `/`-separated paths relative to `base_dir` (absolute for an absolute pattern), sorted.
pub(crate) fn glob_files(base_dir: &Path, pattern: &str) -> Result<Vec<String>, String> {
    let matcher = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("invalid glob `{pattern}`: {}", e.kind()))?
        .compile_matcher();
    let absolute = Path::new(pattern).is_absolute();
    // Walk from the longest folder prefix without glob characters.
    let parts: Vec<&str> = pattern.split('/').collect();
    let literal = parts
        .iter()
        .take_while(|p| !p.contains(['*', '?', '[', '{']))
        .count()
        .min(parts.len() - 1);
    let prefix = parts[..literal].join("/");
    let recursive = pattern.contains("**");
    let max_depth = parts.len() - literal;
    let start = if absolute {
        Path::new(&prefix).to_path_buf()
    } else {
        base_dir.join(&prefix)
    };
    let mut out = Vec::new();
    walk(
        &start,
        &prefix,
        1,
        if recursive { usize::MAX } else { max_depth },
        &mut |rel| {
            if matcher.is_match(rel) {
                out.push(rel.to_owned());
            }
        },
    );
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, rel: &str, depth: usize, max_depth: usize, found: &mut impl FnMut(&str)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name
        } else if rel.ends_with('/') {
            format!("{rel}{name}")
        } else {
            format!("{rel}/{name}")
        };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let is_dir = kind.is_dir() || (kind.is_symlink() && entry.path().is_dir());
        if is_dir {
            if depth < max_depth {
                walk(&entry.path(), &child, depth + 1, max_depth, found);
            }
        } else {
            found(&child);
        }
    }
}

/// The numbers of `[start, stop]` or `[start, stop, step]`, stop included when reached.
/// Integers stay integers; with a fractional bound or step the values are floats.
pub(crate) fn range_values(range: &[Number], max_jobs: u64) -> Result<Vec<Value>, String> {
    let shown = format!(
        "[{}]",
        range
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let ints: Option<Vec<i64>> = range.iter().map(Number::as_i64).collect();
    if let Some(ints) = ints {
        let (start, stop, step) = (ints[0], ints[1], ints.get(2).copied().unwrap_or(1));
        if step == 0 {
            return Err(format!("range {shown} has a step of 0"));
        }
        if (stop - start).signum() * step.signum() < 0 {
            return Err(format!(
                "range {shown} is empty: the step goes away from the stop"
            ));
        }
        let count = (stop - start) / step + 1;
        if count as u64 > max_jobs {
            return Err(format!(
                "range {shown} has {count} values, more than the job limit of {max_jobs}"
            ));
        }
        return Ok((0..count).map(|i| Value::from(start + i * step)).collect());
    }
    let floats: Vec<f64> = range.iter().filter_map(Number::as_f64).collect();
    let (start, stop, step) = (floats[0], floats[1], floats.get(2).copied().unwrap_or(1.0));
    if step == 0.0 || !step.is_finite() {
        return Err(format!("range {shown} has a step of 0"));
    }
    if (stop - start) * step < 0.0 {
        return Err(format!(
            "range {shown} is empty: the step goes away from the stop"
        ));
    }
    // A small tolerance so that [0, 1, 0.1] ends at 1.0 despite binary fractions.
    let steps = ((stop - start) / step + 1e-9).floor();
    if steps + 1.0 > max_jobs as f64 {
        return Err(format!(
            "range {shown} has {} values, more than the job limit of {max_jobs}",
            steps + 1.0
        ));
    }
    let count = steps as u64 + 1;
    Ok((0..count)
        .map(|i| {
            let x = start + i as f64 * step;
            let rounded = (x * 1e9).round() / 1e9;
            Number::from_f64(rounded).map_or(Value::Null, Value::Number)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::source::SourceMap;
    use serde_json::json;

    fn run(yaml: &str, runs: u32, max_jobs: u64) -> (Vec<Value>, Vec<String>) {
        run_in(yaml, runs, max_jobs, Path::new("."))
    }

    fn run_in(yaml: &str, runs: u32, max_jobs: u64, dir: &Path) -> (Vec<Value>, Vec<String>) {
        let doc = format!(
            "sweep:\n{}",
            yaml.lines().map(|l| format!("  {l}\n")).collect::<String>()
        );
        let source = SourceMap::parse(&doc).expect("yaml");
        let sweep: Sweep = serde_norway::from_str(yaml).expect("sweep");
        let file = Path::new("m.yaml");
        let mut diags = Diagnostics::new(file, &source);
        let out = expand(&sweep, runs, dir, max_jobs, &mut diags);
        let combos = out
            .combinations
            .iter()
            .map(|c| {
                Value::Object(
                    c.iter()
                        .map(|(k, v)| (k.clone(), v.value.clone()))
                        .collect(),
                )
            })
            .collect();
        (
            combos,
            diags.finish(0).iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn expansion_order_and_counts() {
        let cases: &[(&str, &str, Value)] = &[
            ("no sweep", "{}", json!([{}])),
            (
                "matrix: first key slowest",
                "matrix: {a: [1, 2], b: [x, y]}",
                json!([
                {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]),
            ),
            (
                "zip advances together",
                "zip: {p: [cat, dog], s: [1, 2]}",
                json!([
                {"p": "cat", "s": 1}, {"p": "dog", "s": 2}]),
            ),
            (
                "matrix times zip",
                "matrix: {a: [1, 2]}\nzip: {p: [x, y]}",
                json!([
                {"a": 1, "p": "x"}, {"a": 1, "p": "y"}, {"a": 2, "p": "x"}, {"a": 2, "p": "y"}]),
            ),
            (
                "two zip groups are a product",
                "zip: [{p: [x, y]}, {q: [1, 2]}]",
                json!([
                {"p": "x", "q": 1}, {"p": "x", "q": 2}, {"p": "y", "q": 1}, {"p": "y", "q": 2}]),
            ),
            (
                "range inclusive",
                "matrix: {s: {range: [10, 40, 10]}}",
                json!([{"s": 10}, {"s": 20}, {"s": 30}, {"s": 40}]),
            ),
            (
                "float range",
                "matrix: {s: {range: [0, 0.3, 0.1]}}",
                json!([{"s": 0.0}, {"s": 0.1}, {"s": 0.2}, {"s": 0.3}]),
            ),
            (
                "descending range",
                "matrix: {s: {range: [3, 1, -1]}}",
                json!([{"s": 3}, {"s": 2}, {"s": 1}]),
            ),
            (
                "exclude drops partial matches",
                "matrix: {a: [1, 2], b: [x, y]}\nexclude: [{b: y}]",
                json!([
                {"a": 1, "b": "x"}, {"a": 2, "b": "x"}]),
            ),
            (
                "exclude with all keys",
                "matrix: {a: [1, 2], b: [x, y]}\nexclude: [{a: 1, b: y}]",
                json!([
                {"a": 1, "b": "x"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]),
            ),
            (
                "exclude compares 1 and 1.0 as numbers",
                "matrix: {a: [1, 2]}\nexclude: [{a: 1.0}]",
                json!([{"a": 2}]),
            ),
            (
                "include with no matrix adds combos",
                "include: [{a: 1}, {a: 2, b: 3}]",
                json!([{"a": 1}, {"a": 2, "b": 3}]),
            ),
        ];
        for (name, yaml, expected) in cases {
            let (combos, errors) = run(yaml, 1, 1000);
            assert_eq!(errors, Vec::<String>::new(), "{name}");
            assert_eq!(Value::Array(combos), *expected, "{name}");
        }
    }

    /// The example from the GitHub Actions documentation of `include`.
    #[test]
    fn include_follows_github_actions() {
        let yaml = "\
matrix: {fruit: [apple, pear], animal: [cat, dog]}
include:
  - {color: green}
  - {color: pink, animal: cat}
  - {fruit: apple, shape: circle}
  - {fruit: banana}
  - {fruit: banana, animal: cat}";
        let (combos, errors) = run(yaml, 1, 1000);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            Value::Array(combos),
            json!([
                {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
                {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
                {"fruit": "pear", "animal": "cat", "color": "pink"},
                {"fruit": "pear", "animal": "dog", "color": "green"},
                {"fruit": "banana"},
                {"fruit": "banana", "animal": "cat"},
            ])
        );
    }

    #[test]
    fn problems_are_reported_with_places() {
        let cases: &[(&str, &str)] = &[
            (
                "zip: {p: [a, b, c], s: [1, 2]}",
                "m.yaml:2:3: error: zipped lists differ in length: `p` has 3 values, `s` has 2 values\n  hint: zipped lists advance together, so each needs the same number of values",
            ),
            (
                "matrix: {a: [1]}\nexclude: [{b: 1}]",
                "m.yaml:3:14: error: `exclude` names `b`, which is not a sweep key\n  hint: `exclude` entries may only name keys of `sweep.matrix` and `sweep.zip`",
            ),
            (
                "matrix: {a: [1]}\nexclude: [{a: 2}]",
                "m.yaml:3:13: error: this `exclude` entry matches no combination\n  hint: values are compared exactly (`0` and `\"0\"` differ); check them against the sweep's lists",
            ),
            (
                "matrix: {a: []}",
                "m.yaml:2:12: error: `a` has no values, so the sweep would make no job\n  hint: give it at least one value, or remove it",
            ),
            (
                "matrix: {a: [1]}\nzip: {a: [2]}",
                "m.yaml:3:9: error: `a` is swept twice (also at `sweep.matrix.a`)\n  hint: a key may appear in only one of `sweep.matrix` and the `sweep.zip` groups",
            ),
            (
                "matrix: {a: {range: [1, 5, 0]}}",
                "m.yaml:2:23: error: range [1, 5, 0] has a step of 0",
            ),
            (
                "matrix: {a: {range: [5, 1]}}",
                "m.yaml:2:23: error: range [5, 1] is empty: the step goes away from the stop",
            ),
            (
                "matrix: {a: {glob: '[x'}}",
                "m.yaml:2:22: error: invalid glob `[x`: unclosed character class; missing ']'",
            ),
        ];
        let mut wrong = Vec::new();
        for (yaml, expected) in cases {
            let (_, errors) = run(yaml, 1, 1000);
            if errors.join("\n") != *expected {
                wrong.push(format!("{yaml}\n  got: {}", errors.join("\n")));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn the_job_cap_counts_runs_and_refuses_before_enumerating_huge_sweeps() {
        let (_, errors) = run(
            "matrix: {a: {range: [1, 50]}, b: {range: [1, 30]}}",
            2,
            1000,
        );
        assert_eq!(
            errors,
            [
                "m.yaml:1:1: error: the manifest expands to 3000 jobs, more than the limit of 1000\n  hint: narrow the sweep, or raise the limit with `--max-jobs 3000`"
            ]
        );
        let (_, errors) = run(
            "matrix: {a: {range: [1, 5000]}, b: {range: [1, 5000]}}",
            1,
            10_000,
        );
        assert_eq!(
            errors,
            [
                "m.yaml:1:1: error: the manifest expands to about 25000000 jobs, more than the limit of 10000\n  hint: narrow the sweep, or raise the limit with `--max-jobs 25000000`"
            ]
        );
    }

    #[test]
    fn globs_are_relative_sorted_and_stay_in_their_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in [
            "photos/b.png",
            "photos/a.png",
            "photos/c.jpg",
            "photos/sub/d.png",
            "other/e.png",
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, b"x").expect("write");
        }
        assert_eq!(
            glob_files(dir.path(), "photos/*.png").expect("glob"),
            ["photos/a.png", "photos/b.png"]
        );
        assert_eq!(
            glob_files(dir.path(), "photos/**/*.png").expect("glob"),
            ["photos/a.png", "photos/b.png", "photos/sub/d.png"]
        );
        assert_eq!(
            glob_files(dir.path(), "*/*.png").expect("glob"),
            ["other/e.png", "photos/a.png", "photos/b.png"]
        );
        let (combos, errors) = run_in("matrix: {src: {glob: 'photos/*.gif'}}", 1, 10, dir.path());
        assert!(combos.is_empty());
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("m.yaml:2:24: error: `photos/*.gif` matches no file"),
            "{errors:?}"
        );
    }
}

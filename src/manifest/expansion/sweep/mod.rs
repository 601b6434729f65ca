//! Sweep expansion: from `sweep` and `runs` to the ordered combinations, computed one at a time.
//!
//! Order (documented in `docs/manifest.md`):
//! 1. axes: each `table` file (its rows), each `matrix` key in written order, then each `zip`
//!    group; the product runs like nested loops written in that order, so the first axis varies
//!    slowest and the last fastest;
//! 2. `exclude` drops every combination matching all keys of an entry;
//! 3. `include` extends matching combinations or appends new ones (GitHub Actions semantics);
//! 4. `runs` repeats the whole list (runs are the outer loop, as on the server).
//!
//! Nothing here holds every combination: combination *c* is computed from *c* (a mixed-radix
//! number over the axes; with `exclude`, the *c*-th position a bit set leaves; then the `include`
//! entries that match it), so memory follows the size of the manifest, not the number of jobs.

mod axis;
mod data_file;
pub(crate) mod dynamic;
mod glob;
mod include_exclude;
mod values;

use std::borrow::Cow;
use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;

use super::super::diagnostic::{At, Diagnostics};
use super::super::dynamic::WildcardDir;
use super::super::model::DynamicAxis;
use super::super::model::Sweep;
use super::super::source::YamlPath;
use axis::axis_values;
use data_file::load_table;
use include_exclude::{Excluded, Include, apply_exclude, apply_include};
pub(crate) use values::Values;

/// With `exclude`, the product of the axes is filtered through a bit set; above this many
/// combinations expansion refuses instead.
const ENUMERATION_LIMIT: u128 = 5_000_000;

/// Where one sweep value is: a row of a `matrix`/`zip` column, or a key of an `include` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Cell {
    /// Row `row` of column `column` (an index into [`Expanded::columns`]).
    Column { column: usize, row: usize },
    /// Key number `key` of `include` entry `entry`.
    Include { entry: usize, key: usize },
}

/// One combination: its sweep keys (by their index in [`Expanded::keys`]) and where each value
/// is, in the order the keys appear in the job's `sweep`.
pub(crate) type Combination = Vec<(usize, Cell)>;

/// The values of one sweep key of `matrix` or `zip`.
#[derive(Debug)]
pub(crate) struct Column {
    /// Index of the key in [`Expanded::keys`].
    pub(crate) slot: usize,
    /// Where the key is (`sweep.matrix.KEY`, `sweep.zip.KEY`...).
    pub(crate) path: YamlPath,
    pub(crate) values: Values,
    dim: usize,
}

impl Column {
    /// How many values.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

/// One factor of the product: a matrix key (one column) or a zip group (columns advancing
/// together).
#[derive(Debug)]
struct Dim {
    len: u64,
    /// Combinations per step of this dimension (the product of the later dimensions' lengths).
    stride: u64,
}
/// A sweep, ready to give its combinations by index.
#[derive(Debug)]
pub(crate) struct Expanded {
    /// Every sweep key, with the path of its first appearance (matrix, zip, then include).
    pub(crate) keys: IndexMap<String, YamlPath>,
    /// The `matrix` and `zip` columns, in order.
    pub(crate) columns: Vec<Column>,
    dims: Vec<Dim>,
    excluded: Option<Excluded>,
    /// Combinations of the axes left after `exclude`.
    left: u64,
    includes: Vec<Include>,
    /// `include` entries that match no combination: appended, in order.
    appended: Vec<usize>,
    /// Combinations (without runs); 0 when expansion failed.
    count: usize,
}

impl Expanded {
    /// How many combinations (without runs).
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Combination `c` (`c < count()`).
    pub(crate) fn combination(&self, c: usize) -> Combination {
        let c = c as u64;
        if c >= self.left {
            let entry = self.appended[(c - self.left) as usize];
            return self.includes[entry]
                .keys
                .iter()
                .enumerate()
                .map(|(key, (slot, ..))| (*slot, Cell::Include { entry, key }))
                .collect();
        }
        let p = self.excluded.as_ref().map_or(c, |e| e.select(c));
        let rows: Vec<usize> = self
            .dims
            .iter()
            .map(|d| ((p / d.stride) % d.len) as usize)
            .collect();
        let mut combo: Combination = self
            .columns
            .iter()
            .enumerate()
            .map(|(column, col)| {
                (
                    col.slot,
                    Cell::Column {
                        column,
                        row: rows[col.dim],
                    },
                )
            })
            .collect();
        for (entry, inc) in self.includes.iter().enumerate() {
            let fits = inc.axis.iter().all(|&(column, key)| {
                let col = &self.columns[column];
                values_equal(&col.values.get(rows[col.dim]), &inc.keys[key].2)
            });
            if !fits {
                continue;
            }
            for &key in &inc.extras {
                let slot = inc.keys[key].0;
                let cell = Cell::Include { entry, key };
                match combo.iter_mut().find(|(s, _)| *s == slot) {
                    Some(existing) => existing.1 = cell,
                    None => combo.push((slot, cell)),
                }
            }
        }
        combo
    }

    /// The value at `cell`, as written (templates not rendered).
    pub(crate) fn value(&self, cell: Cell) -> Cow<'_, Value> {
        match cell {
            Cell::Column { column, row } => self.columns[column].values.get(row),
            Cell::Include { entry, key } => Cow::Borrowed(&self.includes[entry].keys[key].2),
        }
    }

    /// Where the value at `cell` is written.
    pub(crate) fn origin(&self, cell: Cell) -> YamlPath {
        match cell {
            Cell::Column { column, row } => {
                let col = &self.columns[column];
                match col.values {
                    // A table column's path is the table's path and the column's name.
                    Values::List(_) | Values::Data { lines: false, .. } => col.path.index(row),
                    Values::Data { lines: true, .. } => col.path.key("lines").index(row),
                    Values::Glob(_) => col.path.key("glob"),
                    Values::Ints { .. } | Values::Floats { .. } => col.path.key("range"),
                    Values::Seeds { .. } => col.path.key("seeds"),
                    Values::Prompts(_) => col.path.key("dynamic"),
                    Values::Replace(_) => col.path.key("replace").index(row),
                }
            }
            Cell::Include { entry, key } => {
                let inc = &self.includes[entry];
                inc.path.key(&inc.keys[key].1)
            }
        }
    }

    /// Whether the value at `cell` is taken as it is, never as a template: a file a glob matched,
    /// a value from a data file, a derived seed.
    pub(crate) fn is_literal(&self, cell: Cell) -> bool {
        matches!(cell, Cell::Column { column, .. } if matches!(
            self.columns[column].values,
            Values::Glob(_)
                | Values::Data { .. }
                | Values::Seeds { .. }
                | Values::Prompts(_)
                | Values::Replace(_)
        ))
    }

    /// The `{replace: [...], in: INPUT}` axes: each column's sweep key (slot), where it is
    /// written, and the input it edits as written.
    pub(crate) fn replace_columns(&self) -> Vec<(usize, usize, &YamlPath)> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c.values, Values::Replace(_)))
            .map(|(i, c)| (i, c.slot, &c.path))
            .collect()
    }

    /// Whether sweep key `slot` is a search/replace axis (a label, no input or variable).
    pub(crate) fn is_replace_slot(&self, slot: usize) -> bool {
        self.columns
            .iter()
            .any(|c| c.slot == slot && matches!(c.values, Values::Replace(_)))
    }

    /// Whether the value at `cell` is a derived seed (`{seeds: N}`).
    pub(crate) fn is_seed(&self, cell: Cell) -> bool {
        matches!(cell, Cell::Column { column, .. } if matches!(self.columns[column].values, Values::Seeds { .. }))
    }

    /// The cells of `include` entries, with their key slots.
    pub(crate) fn include_cells(&self) -> impl Iterator<Item = (usize, Cell)> + '_ {
        self.includes.iter().enumerate().flat_map(|(entry, inc)| {
            inc.keys
                .iter()
                .enumerate()
                .map(move |(key, (slot, ..))| (*slot, Cell::Include { entry, key }))
        })
    }

    /// The number of values of each `include` entry.
    pub(crate) fn include_sizes(&self) -> impl Iterator<Item = usize> + '_ {
        self.includes.iter().map(|i| i.keys.len())
    }
}

/// What an expansion needs besides the sweep.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits<'p> {
    pub(crate) runs: u32,
    pub(crate) base_dir: &'p Path,
    pub(crate) max_jobs: u64,
    /// The manifest's `seed` (0 when absent).
    pub(crate) manifest_seed: u64,
    /// The manifest's `wildcards` folder, listed.
    pub(crate) wildcards: Option<&'p WildcardDir>,
    /// Inputs written as `{dynamic: ...}` under `inputs`, by key: each a sweep key, swept as if
    /// it were the last key of `sweep.matrix`.
    pub(crate) input_prompts: &'p [(String, DynamicAxis)],
}

/// Expands `sweep`; problems go to `diags` (the result then has no combination and must not be
/// run).
pub(crate) fn expand(sweep: &Sweep, limits: Limits<'_>, diags: &mut Diagnostics<'_>) -> Expanded {
    let Limits {
        runs,
        base_dir,
        max_jobs,
        ..
    } = limits;
    let sweep_path = YamlPath::keys(&["sweep"]);
    let mut keys: IndexMap<String, YamlPath> = IndexMap::new();
    let mut columns: Vec<Column> = Vec::new();
    let mut lengths: Vec<usize> = Vec::new();

    for (index, file) in sweep.table.files() {
        let path = match index {
            Some(i) => sweep_path.key("table").index(i),
            None => sweep_path.key("table"),
        };
        let Some(table) = load_table(file, &path, base_dir, diags) else {
            continue;
        };
        let mut group = Vec::new();
        for (column, name) in table.columns.iter().enumerate() {
            let column_path = path.key(name);
            if swept_twice(&keys, name, &column_path, diags) {
                continue;
            }
            group.push((name.clone(), column_path, column));
        }
        if group.is_empty() {
            continue;
        }
        lengths.push(table.rows());
        for (name, column_path, column) in group {
            let (slot, _) = keys.insert_full(name, column_path.clone());
            columns.push(Column {
                slot,
                path: column_path,
                values: Values::Data {
                    table: table.clone(),
                    column,
                    lines: false,
                },
                dim: lengths.len() - 1,
            });
        }
    }

    for (key, axis) in &sweep.matrix {
        let path = sweep_path.key("matrix").key(key);
        if swept_twice(&keys, key, &path, diags) {
            continue;
        }
        let (slot, _) = keys.insert_full(key.clone(), path.clone());
        let values = axis_values(axis, &path, limits, diags);
        lengths.push(values.len());
        columns.push(Column {
            slot,
            path,
            values,
            dim: lengths.len() - 1,
        });
    }

    for (key, axis) in limits.input_prompts {
        let path = YamlPath::keys(&["inputs", key]);
        if swept_twice(&keys, key, &path, diags) {
            continue;
        }
        let (slot, _) = keys.insert_full(key.clone(), path.clone());
        let values = dynamic::dynamic_values(axis, &path, key, limits, diags);
        lengths.push(values.len());
        columns.push(Column {
            slot,
            path,
            values,
            dim: lengths.len() - 1,
        });
    }

    for (group_index, group) in sweep.zip.groups() {
        let group_path = match group_index {
            Some(i) => sweep_path.key("zip").index(i),
            None => sweep_path.key("zip"),
        };
        let mut group_columns: Vec<(String, YamlPath, Values)> = Vec::new();
        for (key, axis) in group {
            let path = group_path.key(key);
            if swept_twice(&keys, key, &path, diags) {
                continue;
            }
            let values = axis_values(axis, &path, limits, diags);
            group_columns.push((key.clone(), path, values));
        }
        let group_lengths: Vec<usize> = group_columns.iter().map(|(_, _, v)| v.len()).collect();
        if group_lengths.windows(2).any(|w| w[0] != w[1]) {
            let detail: Vec<String> = group_columns
                .iter()
                .map(|(k, _, v)| format!("`{k}` has {} value{}", v.len(), plural(v.len())))
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
        if group_columns.is_empty() {
            continue;
        }
        lengths.push(group_lengths[0]);
        for (key, path, values) in group_columns {
            let (slot, _) = keys.insert_full(key, path.clone());
            columns.push(Column {
                slot,
                path,
                values,
                dim: lengths.len() - 1,
            });
        }
    }

    let product: u128 = lengths.iter().map(|&l| l as u128).product();
    let mut expanded = Expanded {
        keys,
        columns,
        dims: Vec::new(),
        excluded: None,
        left: 0,
        includes: Vec::new(),
        appended: Vec::new(),
        count: 0,
    };
    if !sweep.exclude.is_empty() && product > ENUMERATION_LIMIT || product > u128::from(u64::MAX) {
        // Too many to filter: refuse before any work per combination.
        let total = product.saturating_mul(u128::from(runs));
        if total > u128::from(max_jobs) {
            too_many(diags, sweep, &format!("about {total}"), total, max_jobs);
        } else {
            diags.push(
                &YamlPath::keys(&["sweep", "exclude"]),
                At::Key,
                format!("`exclude` filters at most {ENUMERATION_LIMIT} combinations, and this sweep has {product}"),
                Some("narrow the lists instead of excluding from them".into()),
            );
        }
        return expanded;
    }
    let product = product as u64;
    let mut stride = 1u64;
    let mut dims: Vec<Dim> = lengths
        .iter()
        .rev()
        .map(|&len| {
            let d = Dim {
                len: len as u64,
                stride,
            };
            stride = stride.saturating_mul(len as u64);
            d
        })
        .collect();
    dims.reverse();
    expanded.dims = dims;

    // With no axes, `include` entries are the combinations (as in GitHub Actions); without
    // either there is one empty combination, so a manifest without a sweep is one job per run.
    let originals = if expanded.dims.is_empty() && !sweep.include.is_empty() {
        0
    } else {
        product
    };
    expanded.left = originals;
    if !sweep.exclude.is_empty() && originals > 0 {
        expanded.left = apply_exclude(sweep, &mut expanded, product, diags);
    }
    apply_include(sweep, &mut expanded);

    let count = u128::from(expanded.left) + expanded.appended.len() as u128;
    let total = count.saturating_mul(u128::from(runs));
    if total > u128::from(max_jobs) {
        too_many(diags, sweep, &total.to_string(), total, max_jobs);
        return expanded;
    }
    expanded.count = count as usize;
    expanded
}

/// Whether `key` (at `path`) is already a sweep key; reports it when it is.
fn swept_twice(
    keys: &IndexMap<String, YamlPath>,
    key: &str,
    path: &YamlPath,
    diags: &mut Diagnostics<'_>,
) -> bool {
    let Some(first) = keys.get(key) else {
        return false;
    };
    diags.push(
        path,
        At::Key,
        format!("`{key}` is swept twice (also at `{first}`)"),
        Some("a key may come from only one table, `sweep.matrix` or `sweep.zip` group".into()),
    );
    true
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

#[cfg(test)]
mod tests;

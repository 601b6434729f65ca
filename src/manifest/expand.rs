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

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use globset::GlobBuilder;
use indexmap::IndexMap;
use serde_json::{Number, Value};

use super::diagnostic::{At, Diagnostics, did_you_mean};
use super::model::{Axis, Sweep};
use super::seed::{axis_identity, derive_seed};
use super::source::YamlPath;
use super::table::{Format, Table, TableProblem};

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

/// The values of one sweep key.
#[derive(Debug)]
pub(crate) enum Values {
    /// Values as written.
    List(Vec<Value>),
    /// Files a glob matched (never templates).
    Glob(Vec<String>),
    /// `start + i * step`, integers.
    Ints { start: i64, step: i64, count: usize },
    /// `start + i * step`, rounded to 9 decimals.
    Floats { start: f64, step: f64, count: usize },
    /// A column of a data file (a table, or a list of lines when `lines`), as written (never
    /// templates).
    Data {
        table: Arc<Table>,
        column: usize,
        lines: bool,
    },
    /// Seeds derived from the manifest seed, the key and the position (see `seed.rs`).
    Seeds {
        manifest_seed: u64,
        key: String,
        count: usize,
    },
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::List(v) => v.len(),
            Values::Glob(v) => v.len(),
            Values::Data { table, .. } => table.rows(),
            Values::Ints { count, .. }
            | Values::Floats { count, .. }
            | Values::Seeds { count, .. } => *count,
        }
    }

    fn get(&self, i: usize) -> Cow<'_, Value> {
        match self {
            Values::List(v) => Cow::Borrowed(&v[i]),
            Values::Glob(v) => Cow::Owned(Value::String(v[i].clone())),
            Values::Ints { start, step, .. } => Cow::Owned(Value::from(start + i as i64 * step)),
            Values::Floats { start, step, .. } => {
                let x = start + i as f64 * step;
                let rounded = (x * 1e9).round() / 1e9;
                Cow::Owned(Number::from_f64(rounded).map_or(Value::Null, Value::Number))
            }
            Values::Data { table, column, .. } => Cow::Owned(table.value(i, *column)),
            Values::Seeds {
                manifest_seed, key, ..
            } => Cow::Owned(Value::from(derive_seed(
                *manifest_seed,
                &axis_identity(key, i),
            ))),
        }
    }
}

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

/// An `include` entry, prepared.
#[derive(Debug)]
struct Include {
    path: YamlPath,
    /// Every key of the entry: its slot in [`Expanded::keys`], its name and value.
    keys: Vec<(usize, String, Value)>,
    /// The entry's keys that are axis keys: (column, index into `keys`).
    axis: Vec<(usize, usize)>,
    /// Indices into `keys` of the keys the entry adds.
    extras: Vec<usize>,
}

/// Which product positions `exclude` dropped, with counts to find the n-th one left.
#[derive(Debug)]
struct Excluded {
    /// Bit `p` set: position `p` is dropped (positions past the product are set too).
    words: Vec<u64>,
    /// Positions left before each word.
    before: Vec<u64>,
}

impl Excluded {
    fn new(product: u64) -> Excluded {
        let n = usize::try_from(product.div_ceil(64)).unwrap_or(usize::MAX);
        let mut words = vec![0u64; n];
        let tail = product % 64;
        if tail != 0 {
            if let Some(last) = words.last_mut() {
                *last = !0u64 << tail;
            }
        }
        Excluded {
            words,
            before: Vec::new(),
        }
    }

    fn contains(&self, p: u64) -> bool {
        self.words[(p / 64) as usize] & (1 << (p % 64)) != 0
    }

    /// Sets bit `p`; whether it was clear.
    fn insert(&mut self, p: u64) -> bool {
        let w = &mut self.words[(p / 64) as usize];
        let bit = 1 << (p % 64);
        let fresh = *w & bit == 0;
        *w |= bit;
        fresh
    }

    /// Computes the counts; returns how many positions are left.
    fn finish(&mut self) -> u64 {
        let mut left = 0u64;
        self.before = self
            .words
            .iter()
            .map(|w| {
                let here = left;
                left += u64::from((!w).count_ones());
                here
            })
            .collect();
        left
    }

    /// The position of the `n`-th position left (from 0).
    fn select(&self, n: u64) -> u64 {
        let w = self.before.partition_point(|&b| b <= n) - 1;
        let mut free = !self.words[w];
        for _ in 0..(n - self.before[w]) {
            free &= free - 1;
        }
        w as u64 * 64 + u64::from(free.trailing_zeros())
    }
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
            Values::Glob(_) | Values::Data { .. } | Values::Seeds { .. }
        ))
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

/// For each dimension, the rows whose values agree with `wanted` ((column, value) pairs).
fn rows_agreeing(expanded: &Expanded, wanted: &[(usize, &Value)]) -> Vec<Vec<usize>> {
    expanded
        .dims
        .iter()
        .enumerate()
        .map(|(d, dim)| {
            let here: Vec<(usize, &Value)> = wanted
                .iter()
                .filter(|(c, _)| expanded.columns[*c].dim == d)
                .copied()
                .collect();
            (0..dim.len as usize)
                .filter(|&row| {
                    here.iter()
                        .all(|(c, v)| values_equal(&expanded.columns[*c].values.get(row), v))
                })
                .collect()
        })
        .collect()
}

/// Calls `f` with every product position whose rows are in `rows` (one list per dimension),
/// until it returns `false`.
fn for_each_position(expanded: &Expanded, rows: &[Vec<usize>], f: &mut impl FnMut(u64) -> bool) {
    if rows.iter().any(Vec::is_empty) {
        return;
    }
    let mut at = vec![0usize; rows.len()];
    loop {
        let p: u64 = at
            .iter()
            .enumerate()
            .map(|(d, &i)| rows[d][i] as u64 * expanded.dims[d].stride)
            .sum();
        if !f(p) {
            return;
        }
        // Odometer: the last dimension turns fastest.
        let mut d = rows.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            at[d] += 1;
            if at[d] < rows[d].len() {
                break;
            }
            at[d] = 0;
        }
    }
}

/// The column of each axis key, by name.
fn axis_columns(expanded: &Expanded) -> IndexMap<&str, usize> {
    expanded
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let name = expanded
                .keys
                .get_index(c.slot)
                .map_or("", |(k, _)| k.as_str());
            (name, i)
        })
        .collect()
}

/// Marks what `exclude` drops; returns how many combinations are left.
fn apply_exclude(
    sweep: &Sweep,
    expanded: &mut Expanded,
    product: u64,
    diags: &mut Diagnostics<'_>,
) -> u64 {
    let mut excluded = Excluded::new(product);
    {
        let columns = axis_columns(expanded);
        let axis_keys: Vec<&str> = columns.keys().copied().collect();
        for (i, entry) in sweep.exclude.iter().enumerate() {
            let path = YamlPath::keys(&["sweep", "exclude"]).index(i);
            let mut valid = true;
            for key in entry.keys() {
                if !columns.contains_key(key.as_str()) {
                    valid = false;
                    let hint = did_you_mean(key, axis_keys.iter().copied()).unwrap_or_else(|| {
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
            let wanted: Vec<(usize, &Value)> = entry
                .iter()
                .map(|(k, v)| (columns[k.as_str()], v))
                .collect();
            let rows = rows_agreeing(expanded, &wanted);
            let mut dropped = 0u64;
            for_each_position(expanded, &rows, &mut |p| {
                if excluded.insert(p) {
                    dropped += 1;
                }
                true
            });
            if dropped == 0 {
                diags.push(
                    &path,
                    At::Value,
                    "this `exclude` entry matches no combination",
                    Some("values are compared exactly (`0` and `\"0\"` differ); check them against the sweep's lists".into()),
                );
            }
        }
    }
    let left = excluded.finish();
    expanded.excluded = Some(excluded);
    left
}

/// Prepares the `include` entries and finds those that match no combination (appended).
fn apply_include(sweep: &Sweep, expanded: &mut Expanded) {
    let columns: IndexMap<String, usize> = axis_columns(expanded)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let mut includes = Vec::with_capacity(sweep.include.len());
    let mut appended = Vec::new();
    for (i, entry) in sweep.include.iter().enumerate() {
        let path = YamlPath::keys(&["sweep", "include"]).index(i);
        let mut keys = Vec::with_capacity(entry.len());
        let mut axis = Vec::new();
        let mut extras = Vec::new();
        for (n, (k, v)) in entry.iter().enumerate() {
            let (slot, _) = match expanded.keys.get_full(k) {
                Some((slot, ..)) => (slot, ()),
                None => {
                    let (slot, _) = expanded.keys.insert_full(k.clone(), path.key(k));
                    (slot, ())
                }
            };
            keys.push((slot, k.clone(), v.clone()));
            match columns.get(k) {
                Some(&column) => axis.push((column, n)),
                None => extras.push(n),
            }
        }
        let matched = expanded.left > 0 && {
            let wanted: Vec<(usize, &Value)> = axis.iter().map(|&(c, n)| (c, &keys[n].2)).collect();
            let rows = rows_agreeing(expanded, &wanted);
            let mut any = false;
            match &expanded.excluded {
                None => any = rows.iter().all(|r| !r.is_empty()),
                Some(excluded) => for_each_position(expanded, &rows, &mut |p| {
                    any = !excluded.contains(p);
                    !any
                }),
            }
            any
        };
        if !matched {
            appended.push(i);
        }
        includes.push(Include {
            path,
            keys,
            axis,
            extras,
        });
    }
    expanded.includes = includes;
    expanded.appended = appended;
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

/// Reads the data file `file` named at `path` (a table when `lines` is false); its problems go to
/// `diags`, placed in the file; the file is registered there for the problems found later.
fn load_file(
    file: &str,
    format: Format,
    path: &YamlPath,
    base_dir: &Path,
    diags: &mut Diagnostics<'_>,
) -> Option<Arc<Table>> {
    match Table::load(base_dir, file, format) {
        Ok(table) => {
            let table = Arc::new(table);
            diags.add_data_file(path.clone(), table.clone());
            Some(table)
        }
        Err(problems) => {
            let shown = if base_dir == Path::new(".") {
                std::path::PathBuf::from(file)
            } else {
                base_dir.join(file)
            };
            let data = diags.data_files();
            let mut registered = false;
            for TableProblem { at, message, hint } in problems {
                match at {
                    None => diags.push(path, At::Value, message, hint),
                    Some(location) => {
                        if !registered {
                            diags.add_data_file(path.clone(), Arc::new(Unreadable(shown.clone())));
                            registered = true;
                        }
                        diags.push_in_data(data, location, message, hint);
                    }
                }
            }
            None
        }
    }
}

/// A data file with problems: named in messages, no place below it.
#[derive(Debug)]
struct Unreadable(std::path::PathBuf);

impl super::diagnostic::DataFile for Unreadable {
    fn file(&self) -> &Path {
        &self.0
    }

    fn locate(&self, _: &[super::source::Segment]) -> Option<super::source::Location> {
        None
    }
}

/// Reads a table of `sweep.table` (its format from its extension).
fn load_table(
    file: &str,
    path: &YamlPath,
    base_dir: &Path,
    diags: &mut Diagnostics<'_>,
) -> Option<Arc<Table>> {
    let Some(format) = Format::of_table(file) else {
        diags.push(
            path,
            At::Value,
            format!("`{file}` is not a table file this version reads"),
            Some("tables are `.csv` or `.tsv` files with a header line, or `.jsonl` files (one JSON object per line); for one value per line write `{lines: FILE}` under `matrix`".into()),
        );
        return None;
    };
    load_file(file, format, path, base_dir, diags)
}

fn axis_values(
    axis: &Axis,
    path: &YamlPath,
    limits: Limits<'_>,
    diags: &mut Diagnostics<'_>,
) -> Values {
    let Limits {
        base_dir,
        max_jobs,
        manifest_seed,
        ..
    } = limits;
    let values = match axis {
        Axis::Lines { lines } => {
            let at = path.key("lines");
            match load_file(lines, Format::Lines, &at, base_dir, diags) {
                Some(table) => Values::Data {
                    table,
                    column: 0,
                    lines: true,
                },
                None => Values::List(Vec::new()),
            }
        }
        Axis::Seeds { seeds } => {
            if *seeds > max_jobs {
                diags.push(
                    &path.key("seeds"),
                    At::Value,
                    format!("{seeds} seeds are more than the job limit of {max_jobs}"),
                    Some(format!(
                        "draw fewer, or raise the limit with `--max-jobs {seeds}`"
                    )),
                );
                Values::List(Vec::new())
            } else {
                Values::Seeds {
                    manifest_seed,
                    key: path.segments().last().map_or_else(String::new, key_text),
                    count: usize::try_from(*seeds).unwrap_or(usize::MAX),
                }
            }
        }
        Axis::Values(items) => Values::List(items.clone()),
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
                Values::Glob(Vec::new())
            }
            Ok(files) => Values::Glob(files),
            Err(message) => {
                diags.push(&path.key("glob"), At::Value, message, None);
                Values::Glob(Vec::new())
            }
        },
        Axis::Range { range } => match range_values(range, max_jobs) {
            Ok(v) => v,
            Err(message) => {
                diags.push(&path.key("range"), At::Value, message, None);
                Values::List(Vec::new())
            }
        },
    };
    if values.len() == 0 && matches!(axis, Axis::Values(_)) {
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
fn range_values(range: &[Number], max_jobs: u64) -> Result<Values, String> {
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
        let span = i128::from(stop) - i128::from(start);
        if span.signum() * i128::from(step.signum()) < 0 {
            return Err(format!(
                "range {shown} is empty: the step goes away from the stop"
            ));
        }
        let count = span / i128::from(step) + 1;
        if count > i128::from(max_jobs) {
            return Err(format!(
                "range {shown} has {count} values, more than the job limit of {max_jobs}"
            ));
        }
        return Ok(Values::Ints {
            start,
            step,
            count: count as usize,
        });
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
    if !steps.is_finite() || steps + 1.0 > max_jobs as f64 {
        return Err(format!(
            "range {shown} has {} values, more than the job limit of {max_jobs}",
            steps + 1.0
        ));
    }
    Ok(Values::Floats {
        start,
        step,
        count: steps as usize + 1,
    })
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
        let limits = Limits {
            runs,
            base_dir: dir,
            max_jobs,
            manifest_seed: 0,
        };
        let out = expand(&sweep, limits, &mut diags);
        let combos = (0..out.count())
            .map(|c| {
                Value::Object(
                    out.combination(c)
                        .into_iter()
                        .map(|(slot, cell)| {
                            let key = out.keys.get_index(slot).expect("slot").0.clone();
                            (key, out.value(cell).into_owned())
                        })
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
                "m.yaml:3:9: error: `a` is swept twice (also at `sweep.matrix.a`)\n  hint: a key may come from only one table, `sweep.matrix` or `sweep.zip` group",
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
                "m.yaml:1:1: error: the manifest expands to 25000000 jobs, more than the limit of 10000\n  hint: narrow the sweep, or raise the limit with `--max-jobs 25000000`"
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

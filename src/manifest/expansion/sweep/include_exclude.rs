//! `exclude` and `include`: which combinations of the axes are dropped, extended or appended.

use indexmap::IndexMap;
use serde_json::Value;

use super::super::super::diagnostic::{At, Diagnostics, did_you_mean};
use super::super::super::model::Sweep;
use super::super::super::source::YamlPath;
use super::{Expanded, values_equal};

/// An `include` entry, prepared.
#[derive(Debug)]
pub(super) struct Include {
    pub(super) path: YamlPath,
    /// Every key of the entry: its slot in [`Expanded::keys`], its name and value.
    pub(super) keys: Vec<(usize, String, Value)>,
    /// The entry's keys that are axis keys: (column, index into `keys`).
    pub(super) axis: Vec<(usize, usize)>,
    /// Indices into `keys` of the keys the entry adds.
    pub(super) extras: Vec<usize>,
}

/// Which product positions `exclude` dropped, with counts to find the n-th one left.
#[derive(Debug)]
pub(super) struct Excluded {
    /// Bit `p` set: position `p` is dropped (positions past the product are set too).
    words: Vec<u64>,
    /// Positions left before each word.
    before: Vec<u64>,
}

impl Excluded {
    pub(super) fn new(product: u64) -> Excluded {
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

    pub(super) fn contains(&self, p: u64) -> bool {
        self.words[(p / 64) as usize] & (1 << (p % 64)) != 0
    }

    /// Sets bit `p`; whether it was clear.
    pub(super) fn insert(&mut self, p: u64) -> bool {
        let w = &mut self.words[(p / 64) as usize];
        let bit = 1 << (p % 64);
        let fresh = *w & bit == 0;
        *w |= bit;
        fresh
    }

    /// Computes the counts; returns how many positions are left.
    pub(super) fn finish(&mut self) -> u64 {
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
    pub(super) fn select(&self, n: u64) -> u64 {
        let w = self.before.partition_point(|&b| b <= n) - 1;
        let mut free = !self.words[w];
        for _ in 0..(n - self.before[w]) {
            free &= free - 1;
        }
        w as u64 * 64 + u64::from(free.trailing_zeros())
    }
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
pub(super) fn apply_exclude(
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
pub(super) fn apply_include(sweep: &Sweep, expanded: &mut Expanded) {
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

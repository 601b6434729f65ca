//! The values of one sweep key: as written, files a glob matched, a range, derived seeds, or a
//! column of a data file.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Number, Value};

use super::super::super::dynamic::{Prompts, draw_seed};
use super::super::super::seed::{axis_identity, derive_seed};
use super::super::super::table::Table;

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
    /// The prompts of a dynamic template (never templates).
    Prompts(PromptValues),
    /// The words of a search/replace axis (never templates).
    Replace(Vec<String>),
}

impl Values {
    pub(super) fn len(&self) -> usize {
        match self {
            Values::List(v) => v.len(),
            Values::Glob(v) => v.len(),
            Values::Data { table, .. } => table.rows(),
            Values::Prompts(p) => p.len(),
            Values::Replace(words) => words.len(),
            Values::Ints { count, .. }
            | Values::Floats { count, .. }
            | Values::Seeds { count, .. } => *count,
        }
    }

    pub(super) fn get(&self, i: usize) -> Cow<'_, Value> {
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
            Values::Prompts(p) => Cow::Owned(Value::String(p.get(i))),
            Values::Replace(words) => Cow::Owned(Value::String(words[i].clone())),
            Values::Seeds {
                manifest_seed, key, ..
            } => Cow::Owned(Value::from(derive_seed(
                *manifest_seed,
                &axis_identity(key, i),
            ))),
        }
    }
}

/// The prompts of a dynamic template: made once (combinations), or drawn when asked for.
#[derive(Debug)]
pub(crate) enum PromptValues {
    /// The combinations, in the library's order.
    Listed(Vec<String>),
    /// `count` random draws, each a function of the manifest seed, the key and its index.
    Drawn {
        prompts: Arc<Prompts>,
        manifest_seed: u64,
        key: String,
        count: usize,
    },
}

impl PromptValues {
    pub(super) fn len(&self) -> usize {
        match self {
            PromptValues::Listed(v) => v.len(),
            PromptValues::Drawn { count, .. } => *count,
        }
    }

    pub(super) fn get(&self, i: usize) -> String {
        match self {
            PromptValues::Listed(v) => v[i].clone(),
            // Validation drew every prompt once, so a draw cannot fail here.
            PromptValues::Drawn {
                prompts,
                manifest_seed,
                key,
                ..
            } => prompts
                .draw(draw_seed(*manifest_seed, key, i))
                .unwrap_or_default(),
        }
    }
}

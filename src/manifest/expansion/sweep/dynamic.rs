//! The values of a `{dynamic: TEMPLATE}` sweep key (or input) and of a `{replace: [...]}` axis.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::super::super::diagnostic::{At, DataFile, Diagnostics};
use super::super::super::dynamic::{DynamicError, Prompts, draw_seed};
use super::super::super::model::{DynamicAxis, ReplaceAxis};
use super::super::super::source::{Location, Segment, YamlPath};
use super::Limits;
use super::values::{PromptValues, Values};

/// A wildcard file a problem is in.
#[derive(Debug)]
struct WildcardFile(PathBuf);

impl DataFile for WildcardFile {
    fn file(&self) -> &Path {
        &self.0
    }
    fn locate(&self, _: &[Segment]) -> Option<Location> {
        None
    }
}

/// Reports a problem of the template at `path` (in its wildcard file, when it is in one).
pub(crate) fn report(e: DynamicError, path: &YamlPath, diags: &mut Diagnostics<'_>) {
    match e.file {
        Some((file, line)) => {
            let index = diags.data_files();
            // A path no manifest node has: only this problem is placed in the file.
            diags.add_data_file(
                path.key("\u{0}wildcard").index(index),
                Arc::new(WildcardFile(file)),
            );
            diags.push_in_data(
                index,
                Location {
                    line: line.max(1),
                    col: 1,
                },
                e.message,
                e.hint,
            );
        }
        None => diags.push(path, At::Value, e.message, e.hint),
    }
}

/// The prompts of `axis` (at `path`, written under the key `key`).
pub(crate) fn dynamic_values(
    axis: &DynamicAxis,
    path: &YamlPath,
    key: &str,
    limits: Limits<'_>,
    diags: &mut Diagnostics<'_>,
) -> Values {
    let at = path.key("dynamic");
    let empty = Values::List(Vec::new());
    let prompts = match Prompts::compile(&axis.dynamic, limits.wildcards) {
        Ok(p) => p,
        Err(e) => {
            report(e, &at, diags);
            return empty;
        }
    };
    let max_jobs = limits.max_jobs;
    if let Some(n) = axis.random {
        if n > max_jobs {
            diags.push(
                &path.key("random"),
                At::Value,
                format!("{n} random prompts are more than the job limit of {max_jobs}"),
                Some(format!(
                    "draw fewer, or raise the limit with `--max-jobs {n}`"
                )),
            );
            return empty;
        }
        let count = usize::try_from(n).unwrap_or(usize::MAX);
        let values = PromptValues::Drawn {
            prompts: Arc::new(prompts),
            manifest_seed: limits.manifest_seed,
            key: key.to_owned(),
            count,
        };
        // Every draw once: a draw too long is found now, not while the run goes.
        if let PromptValues::Drawn { prompts, .. } = &values {
            for i in 0..count {
                if let Err(e) = prompts.draw(draw_seed(limits.manifest_seed, key, i)) {
                    report(e, &at, diags);
                    return empty;
                }
            }
        }
        return Values::Prompts(values);
    }
    let count = prompts.count();
    let shown = if count == u128::MAX {
        "more than 10^38".to_owned()
    } else {
        count.to_string()
    };
    let cap = match axis.max {
        Some(max) if max > max_jobs => {
            diags.push(
                &path.key("max"),
                At::Value,
                format!("`max: {max}` is more than the job limit of {max_jobs}"),
                Some(format!(
                    "lower it, or raise the limit with `--max-jobs {max}`"
                )),
            );
            return empty;
        }
        Some(max) => max,
        None if count > u128::from(max_jobs) => {
            diags.push(
                &at,
                At::Value,
                format!(
                    "the template makes {shown} prompts, more than the job limit of {max_jobs}"
                ),
                Some(format!(
                    "take the first N with `max: N` beside `dynamic`, draw some with `random: N`, or raise the limit with `--max-jobs {count}`"
                )),
            );
            return empty;
        }
        None => max_jobs,
    };
    let take = usize::try_from(u128::from(cap).min(count)).unwrap_or(usize::MAX);
    match prompts.enumerate(take) {
        Ok(list) if list.is_empty() => {
            diags.push(
                &at,
                At::Value,
                "the template makes no prompt (every pick repeats an option)",
                Some("give its variants options that differ".into()),
            );
            empty
        }
        Ok(list) => Values::Prompts(PromptValues::Listed(list)),
        Err(e) => {
            report(e, &at, diags);
            empty
        }
    }
}

/// The words of a `{replace: [...], in: INPUT}` axis.
pub(super) fn replace_values(axis: &ReplaceAxis) -> Values {
    Values::Replace(axis.replace.clone())
}

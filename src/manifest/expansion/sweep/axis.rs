//! What values a sweep key takes: each kind of axis (lines, a range, a file, a glob, a dynamic
//! prompt, a replace list, ...) read into its [`Values`], with its problems reported.

use super::super::super::diagnostic::{At, Diagnostics};
use super::super::super::model::Axis;
use super::super::super::source::YamlPath;
use super::super::super::table::Format;
use super::Limits;
use super::data_file::load_file;
use super::dynamic::{dynamic_values, replace_values};
use super::glob::glob_files;
use super::values::Values;
use serde_json::Number;

/// The values of the sweep key `axis` at `path`; problems go to `diags`.
pub(super) fn axis_values(
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
                    key: path.last_step(),
                    count: usize::try_from(*seeds).unwrap_or(usize::MAX),
                }
            }
        }
        Axis::Values(items) => Values::List(items.clone()),
        Axis::Dynamic(d) => dynamic_values(d, path, &path.last_step(), limits, diags),
        Axis::Replace(r) => replace_values(r),
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
                diags.push(&path.key("glob"), At::Value, message.to_string(), None);
                Values::Glob(Vec::new())
            }
        },
        Axis::Range { range } => match range_values(range, max_jobs) {
            Ok(v) => v,
            Err(message) => {
                diags.push(&path.key("range"), At::Value, message.to_string(), None);
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
                path.last_step()
            ),
            Some("give it at least one value, or remove it".into()),
        );
    }
    values
}

/// Why a `range` makes no values (each holds the range as written, e.g. `[0, 10, 2]`).
#[derive(Debug, thiserror::Error)]
pub(super) enum RangeProblem {
    #[error("range {0} has a step of 0")]
    ZeroStep(String),
    #[error("range {0} is empty: the step goes away from the stop")]
    Empty(String),
    #[error("range {shown} has {count} values, more than the job limit of {max_jobs}")]
    TooMany {
        shown: String,
        /// How many, as shown (an integer, or a float's count).
        count: String,
        max_jobs: u64,
    },
}

/// The numbers of `[start, stop]` or `[start, stop, step]`, stop included when reached.
/// Integers stay integers; with a fractional bound or step the values are floats.
fn range_values(range: &[Number], max_jobs: u64) -> Result<Values, RangeProblem> {
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
            return Err(RangeProblem::ZeroStep(shown));
        }
        let span = i128::from(stop) - i128::from(start);
        if span.signum() * i128::from(step.signum()) < 0 {
            return Err(RangeProblem::Empty(shown));
        }
        let count = span / i128::from(step) + 1;
        if count > i128::from(max_jobs) {
            return Err(RangeProblem::TooMany {
                shown,
                count: count.to_string(),
                max_jobs,
            });
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
        return Err(RangeProblem::ZeroStep(shown));
    }
    if (stop - start) * step < 0.0 {
        return Err(RangeProblem::Empty(shown));
    }
    // A small tolerance so that [0, 1, 0.1] ends at 1.0 despite binary fractions.
    let steps = ((stop - start) / step + 1e-9).floor();
    if !steps.is_finite() || steps + 1.0 > max_jobs as f64 {
        return Err(RangeProblem::TooMany {
            shown,
            count: (steps + 1.0).to_string(),
            max_jobs,
        });
    }
    Ok(Values::Floats {
        start,
        step,
        count: steps as usize + 1,
    })
}

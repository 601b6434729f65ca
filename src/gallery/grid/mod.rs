//! X/Y grids: which job's image goes in which cell ([`plan`]), and the grid image with its axis
//! labels ([`render`]). Cells without an image say why (failed, not run, not in the sweep).

mod bands;
mod cells;
pub mod naming;
mod render;
#[cfg(test)]
mod tests;

use bands::*;
use cells::*;
pub use render::*;

use super::ReportError;
use super::records::{JobRecord, PENDING};
use crate::manifest::{GridNameVars, GridSpec, MAX_CELLS, render_grid_name, value_label};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// Space around the grid and its label strips, in pixels.
pub(super) const PAD: u32 = 12;
/// Space between cells, in pixels.
pub(super) const GAP: u32 = 4;
/// Label text size, in pixels.
pub(super) const LABEL_PX: f32 = 15.0;
/// Axis name and caption text size, in pixels.
pub(super) const TITLE_PX: f32 = 17.0;
/// The row label strip is at most this wide (labels wrap inside it).
pub(super) const MAX_ROW_LABEL_WIDTH: u32 = 220;
/// The smallest default cell (room for the reason of an empty cell); smaller images are
/// centred in it at their own size.
pub(super) const DEFAULT_CELL_MIN: u32 = 128;
/// The label for files whose node is unknown (no sidecar).
pub const UNLABELLED: &str = "output";

/// What one cell holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cell {
    /// A job's output.
    Image {
        /// Job index.
        job: usize,
        /// The file, relative to the output folder.
        file: PathBuf,
    },
    /// No image, and why.
    Empty {
        /// The job, when there is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        job: Option<usize>,
        /// Why the cell is empty.
        reason: String,
        /// Whether the job failed.
        failed: bool,
    },
}

/// One grid file to draw.
#[derive(Debug, Clone, Serialize)]
pub struct GridPlan {
    /// Where it goes, relative to the output folder (with its extension).
    pub file: PathBuf,
    /// The X key.
    pub x: String,
    /// The Y key, if any.
    pub y: Option<String>,
    /// The output node's label.
    pub node: String,
    /// The page's values, by key (empty without pages).
    pub page: Map<String, Value>,
    /// The column values.
    pub columns: Vec<Value>,
    /// The row values (one `null` row without a Y key).
    pub rows: Vec<Value>,
    /// The cells, row by row.
    pub cells: Vec<Cell>,
    /// How many jobs of its page are still [`PENDING`] (0: the grid is complete).
    #[serde(skip)]
    pub waiting: usize,
    /// The cell size asked for.
    #[serde(skip)]
    cell_size: Option<u32>,
    #[serde(skip)]
    jpeg: bool,
}

/// Where things are in a drawn grid (saved beside it as `NAME.EXT.json`).
#[derive(Debug, Clone, Serialize)]
pub struct GridLayout {
    /// Always `grid`.
    pub kind: &'static str,
    /// Image width and height.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// The left edge of the first column.
    pub left: u32,
    /// The top edge of the first row.
    pub top: u32,
    /// A cell's side.
    pub cell: u32,
    /// The space between cells.
    pub gap: u32,
    /// The left edge of each column.
    pub column_lefts: Vec<u32>,
    /// The top edge of each row (a row with a long label is taller than a cell).
    pub row_tops: Vec<u32>,
    /// What was planned.
    #[serde(flatten)]
    pub plan: GridPlan,
}

/// Values of one key in job order, without repeats.
pub(super) fn distinct(records: &[JobRecord], key: &str) -> Vec<Value> {
    let mut values: Vec<Value> = Vec::new();
    for r in records {
        let v = r.sweep.get(key).cloned().unwrap_or(Value::Null);
        if !values.contains(&v) {
            values.push(v);
        }
    }
    values
}

/// The grids `spec` (entry `number` of `count`) makes from `records`.
///
/// # Errors
/// Too many cells or pages, or a file name that does not render.
pub fn plan(
    spec: &GridSpec,
    number: usize,
    count: usize,
    records: &[JobRecord],
) -> Result<Vec<GridPlan>, ReportError> {
    let columns = distinct(records, &spec.x);
    let rows = spec
        .y
        .as_deref()
        .map_or_else(|| vec![Value::Null], |y| distinct(records, y));
    if columns.len() * rows.len() > MAX_CELLS {
        return Err(ReportError::GridTooLarge {
            what: format!(
                "{} cells ({} × {}); at most {MAX_CELLS}",
                columns.len() * rows.len(),
                columns.len(),
                rows.len()
            ),
        });
    }
    // Keys on no axis are pages, like those on `pages:`; but not a key whose value the axes'
    // values fix (the other columns of a table's row): it would only add pages of empty cells.
    let mut others: Vec<&String> = Vec::new();
    for r in records {
        for k in r.sweep.keys() {
            if k != &spec.x && spec.y.as_ref() != Some(k) && !others.contains(&k) {
                others.push(k);
            }
        }
    }
    let mut page_keys: Vec<String> = spec.pages.clone();
    for k in others {
        if !page_keys.contains(k) && !fixed_by_axes(records, spec, k) {
            page_keys.push(k.clone());
        }
    }
    let page_of = |r: &JobRecord| -> Map<String, Value> {
        page_keys
            .iter()
            .map(|k| (k.clone(), r.sweep.get(k).cloned().unwrap_or(Value::Null)))
            .collect()
    };
    let mut pages: Vec<Map<String, Value>> = Vec::new();
    // Jobs still running, per page (by index in `pages`).
    let mut waiting: Vec<usize> = Vec::new();
    for r in records {
        let p = page_of(r);
        let i = pages.iter().position(|q| q == &p).unwrap_or_else(|| {
            pages.push(p);
            waiting.push(0);
            pages.len() - 1
        });
        waiting[i] += usize::from(r.status == PENDING);
    }
    if pages.is_empty() {
        pages.push(Map::new());
        waiting.push(0);
    }
    let mut nodes: Vec<(String, String)> = Vec::new();
    match &spec.node {
        Some(label) => nodes.push((label.clone(), String::new())),
        None => {
            for f in records.iter().flat_map(|r| &r.files) {
                let label = f
                    .node_label
                    .clone()
                    .unwrap_or_else(|| UNLABELLED.to_owned());
                if !nodes.iter().any(|(l, _)| l == &label) {
                    nodes.push((label, f.node_id.clone().unwrap_or_default()));
                }
            }
        }
    }
    if nodes.is_empty() {
        nodes.push((UNLABELLED.to_owned(), String::new()));
    }
    if pages.len() > crate::manifest::MAX_PAGES {
        return Err(ReportError::GridTooLarge {
            what: format!(
                "{} pages; at most {}",
                pages.len(),
                crate::manifest::MAX_PAGES
            ),
        });
    }

    // Before a run's end writes `runs.jsonl`, a missing job may still come.
    let finished = records.iter().any(|r| r.summarized);
    // The jobs of each place (column, row, page), found once.
    let mut by_place: HashMap<(String, String, String), Vec<&JobRecord>> = HashMap::new();
    for r in records {
        let x = r.sweep.get(&spec.x).unwrap_or(&Value::Null).to_string();
        let y = spec
            .y
            .as_ref()
            .map_or(Value::Null, |y| {
                r.sweep.get(y).cloned().unwrap_or(Value::Null)
            })
            .to_string();
        let page = Value::Object(page_of(r)).to_string();
        by_place.entry((x, y, page)).or_default().push(r);
    }
    let template = spec.name_template(count);
    let ext = spec.format.extension();
    let mut taken: HashSet<PathBuf> = HashSet::new();
    let mut plans = Vec::new();
    for (label, node_id) in &nodes {
        for (page, &waiting) in pages.iter().zip(&waiting) {
            let page_text: Vec<String> = page
                .iter()
                .map(|(k, v)| format!("{k}={}", value_label(v)))
                .collect();
            let vars = GridNameVars {
                node_label: label.clone(),
                node_id: node_id.clone(),
                number,
                x: spec.x.clone(),
                y: spec.y.clone().unwrap_or_default(),
                page: page_text.join(","),
                pages: page.clone(),
            };
            let name =
                render_grid_name(&template, &vars).map_err(|message| ReportError::GridName {
                    template: template.clone(),
                    message,
                })?;
            let file = naming::grid_file(&name, &format!("grid{number}"), ext, &mut taken);
            let mut cells = Vec::with_capacity(columns.len() * rows.len());
            for row in &rows {
                for column in &columns {
                    let key = (
                        column.to_string(),
                        row.to_string(),
                        Value::Object(page.clone()).to_string(),
                    );
                    let jobs = by_place.get(&key).map_or(&[][..], Vec::as_slice);
                    cells.push(cell_for(jobs, label, finished));
                }
            }
            plans.push(GridPlan {
                file,
                x: spec.x.clone(),
                y: spec.y.clone(),
                node: label.clone(),
                page: page.clone(),
                columns: columns.clone(),
                rows: rows.clone(),
                cells,
                waiting,
                cell_size: spec.cell,
                jpeg: spec.format == crate::manifest::GridFormat::Jpeg,
            });
        }
    }
    Ok(plans)
}

/// Whether every job's value of `key` is the same as that of each other job at its place on
/// the axes (x and y): the key then adds nothing a page would show.
fn fixed_by_axes(records: &[JobRecord], spec: &GridSpec, key: &str) -> bool {
    let mut at: HashMap<(String, String), &Value> = HashMap::new();
    records.iter().all(|r| {
        let of = |k: &str| r.sweep.get(k).unwrap_or(&Value::Null);
        let place = (
            of(&spec.x).to_string(),
            spec.y
                .as_deref()
                .map_or_else(String::new, |y| of(y).to_string()),
        );
        *at.entry(place).or_insert_with(|| of(key)) == of(key)
    })
}

/// The cell of the jobs at one place (several with `runs:`; the first with an image is shown).
pub(super) fn cell_for(jobs: &[&JobRecord], label: &str, finished: bool) -> Cell {
    let file_of = |r: &JobRecord| {
        r.files
            .iter()
            .find(|f| f.node_label.as_deref().unwrap_or(UNLABELLED) == label)
            .cloned()
    };
    if let Some((r, f)) = jobs
        .iter()
        .filter(|r| r.status == "completed")
        .find_map(|r| file_of(r).filter(|f| f.exists).map(|f| (r, f)))
    {
        return Cell::Image {
            job: r.job,
            file: f.path,
        };
    }
    let Some(r) = jobs.first() else {
        return Cell::Empty {
            job: None,
            reason: if finished {
                "not in the sweep"
            } else {
                "not done yet"
            }
            .to_owned(),
            failed: false,
        };
    };
    let (reason, failed) = match r.status.as_str() {
        "failed" => (
            format!(
                "failed: {}",
                r.error.as_deref().unwrap_or("no error message")
            ),
            true,
        ),
        "completed" => match file_of(r) {
            Some(f) => (format!("file missing: {}", f.path.display()), false),
            // Known only from its other outputs' sidecars: its run has not ended.
            None if !r.summarized => ("not done yet".to_owned(), false),
            None => (format!("no `{label}` output"), false),
        },
        PENDING => ("not done yet".to_owned(), false),
        _ => ("not run yet".to_owned(), false),
    };
    Cell::Empty {
        job: Some(r.job),
        reason,
        failed,
    }
}

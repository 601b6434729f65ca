//! X/Y/Z grids: which job's image goes in which cell of which sub-grid ([`plan`]), with its
//! caption and the values the grid holds fixed, and the grid image with its axis labels
//! ([`render`]). Cells without an image say why (failed, not run, not in the sweep).

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
use crate::manifest::{
    CaptionTemplate, CaptionVars, GridNameVars, GridSpec, MAX_CELLS, YamlPath, ZLayout,
    render_grid_name, value_label,
};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// Space around the grid and its label strips, in pixels.
pub(super) const PAD: u32 = 12;
/// Space between cells, in pixels.
pub(super) const GAP: u32 = 4;
/// Space between the sub-grids of a Z axis, in pixels.
pub(super) const Z_GAP: u32 = 36;
/// Caption text size, in pixels.
pub(super) const CAPTION_PX: f32 = 13.0;
/// The most lines the values held fixed take in a grid's header (more are cut with `…`).
pub(super) const MAX_FIXED_LINES: usize = 4;
/// The most values held fixed a grid's header lists (the layout JSON has them all).
pub(super) const MAX_FIXED_SHOWN: usize = 40;
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
    /// The Z key, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub z: Option<String>,
    /// Where the sub-grids of the Z key go.
    pub z_layout: ZLayout,
    /// The output node's label.
    pub node: String,
    /// The page's values, by key (empty without pages).
    pub page: Map<String, Value>,
    /// The other values held fixed in every job of the grid: sweep keys on no axis with one
    /// value here, and inputs no sweep key sets that are the same in every job.
    pub fixed: Map<String, Value>,
    /// The column values.
    pub columns: Vec<Value>,
    /// The row values (one `null` row without a Y key).
    pub rows: Vec<Value>,
    /// The sub-grid values (one `null` sub-grid without a Z key).
    pub layers: Vec<Value>,
    /// The cells, sub-grid by sub-grid, row by row.
    pub cells: Vec<Cell>,
    /// Each cell's caption (empty without `caption`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub captions: Vec<Option<String>>,
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
    /// The left edge of each column (of the first sub-grid).
    pub column_lefts: Vec<u32>,
    /// The top edge of each row (a row with a long label is taller than a cell; of the first
    /// sub-grid).
    pub row_tops: Vec<u32>,
    /// The height of the caption under each cell (0 without captions).
    pub caption_height: u32,
    /// The top edge of the header's lines of values held fixed.
    pub fixed_top: u32,
    /// Their height (0 when the grid holds nothing fixed).
    pub fixed_height: u32,
    /// Where each sub-grid's columns and rows are (one without a Z key).
    pub sub_grids: Vec<SubGrid>,
    /// What was planned.
    #[serde(flatten)]
    pub plan: GridPlan,
}

/// Where one sub-grid of a drawn grid is.
#[derive(Debug, Clone, Serialize)]
pub struct SubGrid {
    /// Its Z value (`null` without a Z key).
    pub z: Value,
    /// The left edge of each column.
    pub column_lefts: Vec<u32>,
    /// The top edge of each row.
    pub row_tops: Vec<u32>,
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
    let mut layers = spec
        .z
        .as_deref()
        .map_or_else(|| vec![Value::Null], |z| distinct(records, z));
    if layers.is_empty() {
        layers.push(Value::Null);
    }
    let cell_count = columns.len() * rows.len() * layers.len();
    if cell_count > MAX_CELLS {
        return Err(ReportError::GridTooLarge {
            what: format!(
                "{cell_count} cells ({} × {} × {}); at most {MAX_CELLS}",
                columns.len(),
                rows.len(),
                layers.len()
            ),
        });
    }
    let caption =
        spec.caption
            .as_deref()
            .map(|source| {
                CaptionTemplate::new(source, &YamlPath::keys(&["output", "grid", "caption"]))
                    .map_err(|(message, _)| ReportError::GridCaption {
                        template: source.to_owned(),
                        message,
                    })
            })
            .transpose()?;
    let on_axis =
        |k: &str| k == spec.x || spec.y.as_deref() == Some(k) || spec.z.as_deref() == Some(k);
    // Keys on no axis are pages, like those on `pages:`; but not a key whose value the axes'
    // values fix (the other columns of a table's row): it would only add pages of empty cells.
    let mut others: Vec<&String> = Vec::new();
    for r in records {
        for k in r.sweep.keys() {
            if !on_axis(k) && !others.contains(&k) {
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
    // The jobs of each place (column, row, sub-grid, page), found once.
    let axis_value = |r: &JobRecord, key: Option<&String>| {
        key.map_or(Value::Null, |k| {
            r.sweep.get(k).cloned().unwrap_or(Value::Null)
        })
        .to_string()
    };
    let mut by_place: HashMap<[String; 4], Vec<&JobRecord>> = HashMap::new();
    let mut by_page: HashMap<String, Vec<&JobRecord>> = HashMap::new();
    for r in records {
        let page = Value::Object(page_of(r)).to_string();
        let place = [
            axis_value(r, Some(&spec.x)),
            axis_value(r, spec.y.as_ref()),
            axis_value(r, spec.z.as_ref()),
            page.clone(),
        ];
        by_place.entry(place).or_default().push(r);
        by_page.entry(page).or_default().push(r);
    }
    let sweep_keys: HashSet<&String> = records.iter().flat_map(|r| r.sweep.keys()).collect();
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
                z: spec.z.clone().unwrap_or_default(),
                page: page_text.join(","),
                pages: page.clone(),
            };
            let name =
                render_grid_name(&template, &vars).map_err(|message| ReportError::GridName {
                    template: template.clone(),
                    message,
                })?;
            let file = naming::grid_file(&name, &format!("grid{number}"), ext, &mut taken);
            let page_key = Value::Object(page.clone()).to_string();
            let mut cells = Vec::with_capacity(cell_count);
            let mut captions = Vec::new();
            for layer in &layers {
                for row in &rows {
                    for column in &columns {
                        let key = [
                            column.to_string(),
                            row.to_string(),
                            layer.to_string(),
                            page_key.clone(),
                        ];
                        let jobs = by_place.get(&key).map_or(&[][..], Vec::as_slice);
                        let cell = cell_for(jobs, label, finished);
                        if let Some(caption) = &caption {
                            captions.push(caption_of(caption, &cell, jobs, label));
                        }
                        cells.push(cell);
                    }
                }
            }
            let in_page = by_page.get(&page_key).map_or(&[][..], Vec::as_slice);
            let fixed = held_fixed(in_page, &on_axis, page, &sweep_keys);
            plans.push(GridPlan {
                file,
                x: spec.x.clone(),
                y: spec.y.clone(),
                z: spec.z.clone(),
                z_layout: spec.z_layout,
                node: label.clone(),
                page: page.clone(),
                fixed,
                columns: columns.clone(),
                rows: rows.clone(),
                layers: layers.clone(),
                cells,
                captions,
                waiting,
                cell_size: spec.cell,
                jpeg: spec.format == crate::manifest::GridFormat::Jpeg,
            });
        }
    }
    Ok(plans)
}

/// Whether every job's value of `key` is the same as that of each other job at its place on
/// the axes (x, y and z): the key then adds nothing a page would show.
fn fixed_by_axes(records: &[JobRecord], spec: &GridSpec, key: &str) -> bool {
    let mut at: HashMap<[String; 3], &Value> = HashMap::new();
    records.iter().all(|r| {
        let of = |k: &str| r.sweep.get(k).unwrap_or(&Value::Null);
        let axis = |k: Option<&str>| k.map_or_else(String::new, |k| of(k).to_string());
        let place = [
            of(&spec.x).to_string(),
            axis(spec.y.as_deref()),
            axis(spec.z.as_deref()),
        ];
        *at.entry(place).or_insert_with(|| of(key)) == of(key)
    })
}

/// The values a grid's jobs (`in_page`) hold fixed beyond its page's: sweep keys on no axis
/// with one value in all of them, then the inputs no sweep key sets that are the same in all of
/// them, in the order the jobs list them.
fn held_fixed(
    in_page: &[&JobRecord],
    on_axis: &dyn Fn(&str) -> bool,
    page: &Map<String, Value>,
    sweep_keys: &HashSet<&String>,
) -> Map<String, Value> {
    let mut fixed = Map::new();
    let Some(first) = in_page.first() else {
        return fixed;
    };
    let same = |of: &dyn Fn(&JobRecord) -> Option<&Value>, v: &Value| {
        in_page.iter().all(|r| of(r) == Some(v))
    };
    for (k, v) in &first.sweep {
        if !on_axis(k) && !page.contains_key(k) && same(&|r| r.sweep.get(k), v) {
            fixed.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in &first.inputs {
        if !on_axis(k)
            && !page.contains_key(k)
            && !sweep_keys.contains(k)
            && !fixed.contains_key(k)
            && same(&|r| r.inputs.get(k), v)
        {
            fixed.insert(k.clone(), v.clone());
        }
    }
    fixed
}

/// The caption of a cell: its template rendered with the job the cell shows (or, for an empty
/// cell, the first at its place); none for a place without a job. A render that fails says why
/// in the caption.
fn caption_of(
    caption: &CaptionTemplate,
    cell: &Cell,
    jobs: &[&JobRecord],
    label: &str,
) -> Option<String> {
    let job = match cell {
        Cell::Image { job, .. } => jobs.iter().find(|r| r.job == *job),
        Cell::Empty { .. } => jobs.first(),
    }?;
    // The seed the sidecars record: of this node's file, else of any file of the job.
    let of_label = job
        .files
        .iter()
        .filter(|f| f.node_label.as_deref().unwrap_or(UNLABELLED) == label);
    let seed = of_label
        .chain(job.files.iter())
        .find_map(|f| f.sidecar.as_ref().and_then(|s| s.get("seed")))
        .filter(|s| !s.is_null())
        .unwrap_or(&Value::Null);
    let vars = CaptionVars {
        sweep: &job.sweep,
        job: job.job,
        seed,
        node_label: label,
    };
    Some(match caption.render(&vars) {
        Ok(text) => text,
        Err((message, _)) => format!("caption: {message}"),
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

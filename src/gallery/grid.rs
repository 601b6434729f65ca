//! X/Y grids: which job's image goes in which cell ([`plan`]), and the grid image with its axis
//! labels ([`render`]). Cells without an image say why (failed, not run, not in the sweep).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use image::imageops::FilterType;
use image::{Rgb, RgbImage};
use serde::Serialize;
use serde_json::{Map, Value};

use super::ReportError;
use super::records::{JobRecord, PENDING};
use super::text::Pen;
use crate::manifest::{
    DEFAULT_CELL_MAX, GridNameVars, GridSpec, MAX_CELL, MAX_CELLS, MAX_GRID_PIXELS,
    MAX_LABEL_CHARS, MIN_CELL, render_grid_name, value_label,
};

/// Space around the grid and its label strips, in pixels.
const PAD: u32 = 12;
/// Space between cells, in pixels.
const GAP: u32 = 4;
/// Label text size, in pixels.
const LABEL_PX: f32 = 15.0;
/// Axis name and caption text size, in pixels.
const TITLE_PX: f32 = 17.0;
/// The row label strip is at most this wide (labels wrap inside it).
const MAX_ROW_LABEL_WIDTH: u32 = 220;
/// The smallest default cell (room for the reason of an empty cell); smaller images are
/// centred in it at their own size.
const DEFAULT_CELL_MIN: u32 = 128;
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
fn distinct(records: &[JobRecord], key: &str) -> Vec<Value> {
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
    // Keys on no axis are pages, like those on `pages:`.
    let mut page_keys: Vec<String> = spec.pages.clone();
    for r in records {
        for k in r.sweep.keys() {
            if k != &spec.x && spec.y.as_ref() != Some(k) && !page_keys.contains(k) {
                page_keys.push(k.clone());
            }
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
            let name = crate::fs::output_tree::sanitize_relative(&name)
                .unwrap_or_else(|| PathBuf::from(format!("grid{number}")));
            let mut file = name.into_os_string();
            file.push(".");
            file.push(ext);
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
                file: PathBuf::from(file),
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

/// The cell of the jobs at one place (several with `runs:`; the first with an image is shown).
fn cell_for(jobs: &[&JobRecord], label: &str, finished: bool) -> Cell {
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

/// Draws `plan` from the images under `output_dir`; returns the encoded file and its layout.
///
/// The cells' sizes come from their files' headers, and each image is decoded only when its
/// cell is drawn: one image is in memory at a time, beside the grid.
///
/// # Errors
/// A grid past the size bounds, or one that cannot be encoded.
pub fn render(output_dir: &Path, plan: &GridPlan) -> Result<(Vec<u8>, GridLayout), ReportError> {
    // A file that is no image this build reads (a video) leaves its cell empty, saying so.
    let mut plan = plan.clone();
    let mut sides: Vec<Option<u32>> = plan
        .cells
        .iter_mut()
        .map(|cell| image_side(output_dir, cell))
        .collect();
    loop {
        let cell = cell_side(&plan, &sides);
        let (bytes, geometry, undecodable) = draw(output_dir, &mut plan, &mut sides, cell)?;
        // An image that failed past its header is empty now: its grid is drawn again when the
        // cell size was its own.
        if undecodable && cell_side(&plan, &sides) != cell {
            continue;
        }
        return Ok((
            bytes,
            GridLayout {
                kind: "grid",
                width: geometry.width,
                height: geometry.height,
                left: geometry.left,
                top: geometry.top,
                cell,
                gap: GAP,
                column_lefts: geometry.column_lefts,
                row_tops: geometry.row_tops,
                plan,
            },
        ));
    }
}

/// Where a drawn grid's parts are.
struct Geometry {
    width: u32,
    height: u32,
    left: u32,
    top: u32,
    column_lefts: Vec<u32>,
    row_tops: Vec<u32>,
}

/// The longest side of `cell`'s image, read from its file's header; a file that is no image
/// this build reads makes the cell empty, saying why.
fn image_side(output_dir: &Path, cell: &mut Cell) -> Option<u32> {
    let Cell::Image { file, job } = cell else {
        return None;
    };
    let size = image::ImageReader::open(output_dir.join(&*file))
        .map_err(image::ImageError::from)
        .and_then(image::ImageReader::into_dimensions);
    match size {
        Ok((w, h)) => Some(w.max(h)),
        Err(e) => {
            *cell = cannot_show(*job, file, &e);
            None
        }
    }
}

/// The empty cell of a file that does not decode.
fn cannot_show(job: usize, file: &Path, e: &image::ImageError) -> Cell {
    Cell::Empty {
        job: Some(job),
        reason: format!("cannot show {}: {e}", file.display()),
        failed: false,
    }
}

/// A cell's side: the size asked for, else the largest image's side within the defaults.
fn cell_side(plan: &GridPlan, sides: &[Option<u32>]) -> u32 {
    let largest = sides.iter().flatten().copied().max().unwrap_or(128);
    plan.cell_size
        .unwrap_or_else(|| largest.clamp(DEFAULT_CELL_MIN, DEFAULT_CELL_MAX))
        .clamp(MIN_CELL, MAX_CELL)
}

/// Draws `plan` with cells of `cell` pixels and encodes it, decoding each image as its cell is
/// drawn. A PNG is drawn and encoded one band (the labels above the cells, then a row
/// of cells) at a time, so the whole grid is never in memory. An image that does not decode
/// past its header leaves its cell empty (in `plan` and `sides` too), and the last value says
/// so.
fn draw(
    output_dir: &Path,
    plan: &mut GridPlan,
    sides: &mut [Option<u32>],
    cell: u32,
) -> Result<(Vec<u8>, Geometry, bool), ReportError> {
    let label_pen = Pen::new(LABEL_PX);
    let title_pen = Pen::new(TITLE_PX);
    let line = label_pen.line_height();
    let title_line = title_pen.line_height();
    let short = |v: &Value| {
        let mut s = value_label(v);
        if s.chars().count() > MAX_LABEL_CHARS {
            s = s.chars().take(MAX_LABEL_CHARS - 1).collect::<String>() + "…";
        }
        s
    };
    let column_labels: Vec<Vec<String>> = plan
        .columns
        .iter()
        .map(|v| label_pen.wrap(&short(v), cell))
        .collect();
    let row_width = if plan.y.is_some() {
        let natural = plan
            .rows
            .iter()
            .map(|v| label_pen.width(&short(v)))
            .chain(plan.y.iter().map(|y| title_pen.width(&format!("{y} ↓"))))
            .max()
            .unwrap_or(0);
        natural.clamp(40, MAX_ROW_LABEL_WIDTH)
    } else {
        0
    };
    let row_labels: Vec<Vec<String>> = plan
        .rows
        .iter()
        .map(|v| label_pen.wrap(&short(v), row_width.max(1)))
        .collect();
    let column_lines = column_labels.iter().map(Vec::len).max().unwrap_or(1) as u32;
    let caption = caption(plan);
    let left = PAD + if plan.y.is_some() { row_width + PAD } else { 0 };
    let top = PAD + title_line * 2 + GAP + column_lines * line + GAP;
    let cols = plan.columns.len() as u32;
    // A row is at least as tall as its wrapped label.
    let row_heights: Vec<u32> = row_labels
        .iter()
        .map(|l| cell.max(l.len() as u32 * line))
        .collect();
    let width =
        (left + cols * (cell + GAP) - GAP + PAD).max(PAD * 2 + title_pen.width(&caption).min(4000));
    let height = top + row_heights.iter().map(|h| h + GAP).sum::<u32>() - GAP + PAD;
    if u64::from(width) * u64::from(height) > MAX_GRID_PIXELS {
        return Err(ReportError::GridTooLarge {
            what: format!("{width}×{height} pixels; at most {MAX_GRID_PIXELS}"),
        });
    }

    let mut sink = Bands::new(width, height, plan)?;
    let ink = [34, 34, 34];
    let mut img = sink.band(top);
    // Caption, axis names, labels.
    title_pen.draw(&mut img, i64::from(PAD), i64::from(PAD), &caption, ink);
    let axis_y = i64::from(PAD + title_line);
    title_pen.draw(
        &mut img,
        i64::from(left),
        axis_y,
        &format!("{} →", plan.x),
        [0, 70, 160],
    );
    if let Some(y) = &plan.y {
        title_pen.draw(
            &mut img,
            i64::from(PAD),
            axis_y,
            &format!("{y} ↓"),
            [0, 70, 160],
        );
    }
    for (i, lines) in column_labels.iter().enumerate() {
        let x0 = left + i as u32 * (cell + GAP);
        // Bottom-aligned above the cells, each line centred on the column.
        let y0 = top - GAP - lines.len() as u32 * line;
        for (n, text) in lines.iter().enumerate() {
            let w = label_pen.width(text);
            let x = i64::from(x0) + (i64::from(cell) - i64::from(w)) / 2;
            label_pen.draw(&mut img, x, i64::from(y0 + n as u32 * line), text, ink);
        }
    }
    sink.push(&img)?;
    let mut undecodable = false;
    let mut band_top = top;
    let mut row_tops = Vec::with_capacity(row_labels.len());
    for (j, lines) in row_labels.iter().enumerate() {
        row_tops.push(band_top);
        // The row's band: its cells and labels, and the gap (the margin, last) below them.
        let below = if j + 1 == row_labels.len() { PAD } else { GAP };
        let mut img = sink.band(row_heights[j] + below);
        let y0 = 0;
        if plan.y.is_some() {
            // Right-aligned, centred on the row.
            let y_text = y0 + (row_heights[j] - lines.len() as u32 * line) / 2;
            for (n, text) in lines.iter().enumerate() {
                let w = label_pen.width(text);
                let x = i64::from(PAD + row_width.saturating_sub(w));
                label_pen.draw(&mut img, x, i64::from(y_text + n as u32 * line), text, ink);
            }
        }
        for i in 0..plan.columns.len() {
            let k = j * plan.columns.len() + i;
            let x0 = left + i as u32 * (cell + GAP);
            if let Cell::Image { file, job } = &plan.cells[k] {
                match image::open(output_dir.join(file)) {
                    Ok(decoded) => {
                        let src = decoded.into_rgb8();
                        let fitted = fit(&src, cell);
                        let dx = (cell - fitted.width()) / 2;
                        let dy = (cell - fitted.height()) / 2;
                        image::imageops::replace(
                            &mut img,
                            &*fitted,
                            i64::from(x0 + dx),
                            i64::from(y0 + dy),
                        );
                        continue;
                    }
                    Err(e) => {
                        plan.cells[k] = cannot_show(*job, file, &e);
                        sides[k] = None;
                        undecodable = true;
                    }
                }
            }
            if let Cell::Empty { reason, failed, .. } = &plan.cells[k] {
                empty_cell(&mut img, x0, y0, cell, reason, *failed, &label_pen);
            }
        }
        sink.push(&img)?;
        band_top += row_heights[j] + GAP;
    }
    let bytes = sink.finish()?;
    let geometry = Geometry {
        width,
        height,
        left,
        top,
        column_lefts: (0..cols).map(|i| left + i * (cell + GAP)).collect(),
        row_tops,
    };
    Ok((bytes, geometry, undecodable))
}

/// Where a grid's bands go, top to bottom: a PNG encoded as they come, or (JPEG, which is
/// encoded whole) the full image.
struct Bands {
    width: u32,
    file: PathBuf,
    to: BandsTo,
}

enum BandsTo {
    Png {
        stream: Box<png::StreamWriter<'static, SharedBytes>>,
        bytes: SharedBytes,
    },
    Jpeg {
        img: RgbImage,
        filled: u32,
    },
}

/// The encoded bytes, written by the PNG encoder (which must own its writer) and taken back at
/// the end.
#[derive(Clone, Default)]
struct SharedBytes(Rc<RefCell<Vec<u8>>>);

impl std::io::Write for SharedBytes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Bands {
    fn new(width: u32, height: u32, plan: &GridPlan) -> Result<Bands, ReportError> {
        let to = if plan.jpeg {
            BandsTo::Jpeg {
                img: RgbImage::new(width, height),
                filled: 0,
            }
        } else {
            let bytes = SharedBytes::default();
            let mut encoder = png::Encoder::new(bytes.clone(), width, height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            // Fast compression: a grid is rewritten while its run goes.
            encoder.set_compression(png::Compression::Fast);
            encoder.set_filter(png::Filter::Adaptive);
            let stream = encoder
                .write_header()
                .and_then(png::Writer::into_stream_writer)
                .map_err(|e| png_error(&plan.file, e))?;
            BandsTo::Png {
                stream: Box::new(stream),
                bytes,
            }
        };
        Ok(Bands {
            width,
            file: plan.file.clone(),
            to,
        })
    }

    /// A white band `height` pixels tall, to draw and [`Bands::push`].
    fn band(&self, height: u32) -> RgbImage {
        RgbImage::from_pixel(self.width, height, Rgb([255, 255, 255]))
    }

    /// The next band down.
    fn push(&mut self, band: &RgbImage) -> Result<(), ReportError> {
        match &mut self.to {
            BandsTo::Png { stream, .. } => {
                use std::io::Write;
                stream
                    .write_all(band.as_raw())
                    .map_err(|e| png_error(&self.file, e.into()))
            }
            BandsTo::Jpeg { img, filled } => {
                image::imageops::replace(img, band, 0, i64::from(*filled));
                *filled += band.height();
                Ok(())
            }
        }
    }

    /// The encoded file (every band pushed).
    fn finish(self) -> Result<Vec<u8>, ReportError> {
        match self.to {
            BandsTo::Png { stream, bytes } => {
                stream.finish().map_err(|e| png_error(&self.file, e))?;
                Ok(bytes.0.take())
            }
            BandsTo::Jpeg { img, .. } => {
                let mut bytes = Vec::new();
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
                    .encode_image(&img)
                    .map_err(|source| ReportError::Encode {
                        path: self.file,
                        source,
                    })?;
                Ok(bytes)
            }
        }
    }
}

/// A PNG encoder's error, as the image crate's encoder reports it.
fn png_error(file: &Path, e: png::EncodingError) -> ReportError {
    ReportError::Encode {
        path: file.to_path_buf(),
        source: image::ImageError::IoError(e.into()),
    }
}

/// The grid's caption: its node, and its page's values.
fn caption(plan: &GridPlan) -> String {
    let mut caption = plan.node.clone();
    for (k, v) in &plan.page {
        caption.push_str(&format!("  ·  {k}: {}", value_label(v)));
    }
    caption
}

/// `src` scaled down to fit a `cell` × `cell` square (kept as it is when it fits: images are
/// never enlarged).
fn fit(src: &RgbImage, cell: u32) -> Cow<'_, RgbImage> {
    if src.width().max(src.height()) <= cell {
        return Cow::Borrowed(src);
    }
    let scale = f64::from(cell) / f64::from(src.width().max(src.height()));
    let w = ((f64::from(src.width()) * scale).round() as u32).clamp(1, cell);
    let h = ((f64::from(src.height()) * scale).round() as u32).clamp(1, cell);
    Cow::Owned(image::imageops::resize(src, w, h, FilterType::CatmullRom))
}

/// A visibly empty cell: grey, crossed, with the reason inside.
fn empty_cell(
    img: &mut RgbImage,
    x0: u32,
    y0: u32,
    cell: u32,
    reason: &str,
    failed: bool,
    pen: &Pen,
) {
    let fill = if failed {
        [253, 232, 232]
    } else {
        [238, 238, 238]
    };
    let edge = if failed {
        [200, 60, 60]
    } else {
        [170, 170, 170]
    };
    for y in y0..y0 + cell {
        for x in x0..x0 + cell {
            let border = x == x0 || y == y0 || x == x0 + cell - 1 || y == y0 + cell - 1;
            let diagonal = (x - x0) == (y - y0) || (x - x0) + (y - y0) == cell - 1;
            let color = if border || diagonal { edge } else { fill };
            img.put_pixel(x, y, Rgb(color));
        }
    }
    let ink = if failed { [160, 0, 30] } else { [80, 80, 80] };
    let lines = pen.wrap(reason, cell.saturating_sub(8).max(8));
    let line = pen.line_height();
    let fits = (cell.saturating_sub(8) / line).max(1) as usize;
    let shown: Vec<String> = if lines.len() > fits {
        let mut shown = lines[..fits].to_vec();
        if let Some(last) = shown.last_mut() {
            last.push('…');
        }
        shown
    } else {
        lines
    };
    for (n, text) in shown.iter().enumerate() {
        pen.draw(
            img,
            i64::from(x0 + 4),
            i64::from(y0 + 4 + n as u32 * line),
            text,
            ink,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gallery::records::FileRecord;
    use serde_json::json;

    fn record(job: usize, hue: i64, blur: i64, status: &str) -> JobRecord {
        JobRecord {
            job,
            status: status.to_owned(),
            error: (status == "failed").then(|| "boom".to_owned()),
            sweep: json!({"Hue": hue, "Blur": blur})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            inputs: Map::new(),
            files: if status == "completed" {
                vec![FileRecord {
                    path: PathBuf::from(format!("{job}.png")),
                    node_label: Some("Tinted".into()),
                    node_id: Some("n".into()),
                    sidecar: None,
                    exists: true,
                }]
            } else {
                Vec::new()
            },
            summarized: true,
        }
    }

    #[test]
    fn cells_follow_the_axes_and_say_why_they_are_empty() {
        let records = vec![
            record(0, 0, 1, "completed"),
            record(1, 0, 3, "failed"),
            record(2, 90, 1, "not_run"),
        ];
        let spec = GridSpec::new("Hue", Some("Blur"));
        let plans = plan(&spec, 1, 1, &records).expect("plan");
        assert_eq!(plans.len(), 1);
        let p = &plans[0];
        assert_eq!(p.file, PathBuf::from("grid-Tinted.png"));
        assert_eq!(p.columns, [json!(0), json!(90)]);
        assert_eq!(p.rows, [json!(1), json!(3)]);
        assert_eq!(
            p.cells[0],
            Cell::Image {
                job: 0,
                file: "0.png".into()
            }
        );
        assert!(matches!(&p.cells[1], Cell::Empty { reason, .. } if reason == "not run yet"));
        assert!(
            matches!(&p.cells[2], Cell::Empty { reason, failed: true, .. } if reason == "failed: boom")
        );
        assert!(
            matches!(&p.cells[3], Cell::Empty { reason, job: None, .. } if reason == "not in the sweep")
        );
    }

    /// A Hue × Blur grid of two cells: a 20 × 10 green image, and the file `second` writes;
    /// returns the decoded grid and its layout, after checking the grid's image is the size
    /// its layout says and the green image sits centred in its cell, pixel for pixel.
    fn two_cells(second: impl FnOnce(&Path)) -> (RgbImage, GridLayout) {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = RgbImage::from_pixel(20, 10, Rgb([10, 200, 30]));
        img.save(dir.path().join("0.png")).expect("png");
        second(&dir.path().join("1.png"));
        let records = vec![record(0, 0, 1, "completed"), record(1, 90, 1, "completed")];
        let plans = plan(&GridSpec::new("Hue", Some("Blur")), 1, 1, &records).expect("plan");
        let (bytes, layout) = render(dir.path(), &plans[0]).expect("render");
        let grid = image::load_from_memory(&bytes).expect("decode").to_rgb8();
        assert_eq!((grid.width(), grid.height()), (layout.width, layout.height));
        let (x, y) = (
            layout.column_lefts[0] + (layout.cell - 20) / 2,
            layout.row_tops[0] + (layout.cell - 10) / 2,
        );
        assert_eq!(*grid.get_pixel(x, y), Rgb([10, 200, 30]));
        assert_eq!(*grid.get_pixel(x + 19, y + 9), Rgb([10, 200, 30]));
        assert_ne!(*grid.get_pixel(x - 1, y), Rgb([10, 200, 30]));
        (grid, layout)
    }

    #[test]
    fn a_cell_whose_file_is_no_image_says_so_and_the_rest_is_drawn() {
        let (_, layout) = two_cells(|path| crate::fs::write(path, b"not a png").expect("write"));
        assert!(
            matches!(&layout.plan.cells[1], Cell::Empty { reason, .. } if reason.starts_with("cannot show 1.png"))
        );
    }

    #[test]
    fn an_image_that_fails_past_its_header_is_an_empty_cell_and_the_cells_shrink_without_it() {
        // A large image cut short: its header says 300 × 300, its pixels are missing.
        let (_, layout) = two_cells(|path| {
            RgbImage::from_pixel(300, 300, Rgb([200, 10, 30]))
                .save(path)
                .expect("png");
            let whole = crate::fs::read(path).expect("read");
            crate::fs::write(path, &whole[..whole.len() - 20]).expect("cut");
            assert_eq!(
                image::image_dimensions(path).expect("its header reads"),
                (300, 300)
            );
        });
        assert!(
            matches!(&layout.plan.cells[1], Cell::Empty { reason, .. } if reason.starts_with("cannot show 1.png")),
            "{:?}",
            layout.plan.cells[1]
        );
        assert_eq!(
            layout.cell, DEFAULT_CELL_MIN,
            "sized as if the cut image were not there"
        );
    }

    #[test]
    fn a_jpeg_grid_has_its_cells_where_its_layout_says() {
        let dir = tempfile::tempdir().expect("tempdir");
        RgbImage::from_pixel(64, 64, Rgb([250, 250, 0]))
            .save(dir.path().join("0.png"))
            .expect("png");
        let records = vec![record(0, 0, 1, "completed"), record(1, 0, 3, "failed")];
        let spec = GridSpec {
            format: crate::manifest::GridFormat::Jpeg,
            ..GridSpec::new("Hue", Some("Blur"))
        };
        let plans = plan(&spec, 1, 1, &records).expect("plan");
        let (bytes, layout) = render(dir.path(), &plans[0]).expect("render");
        let grid = image::load_from_memory(&bytes).expect("decode").to_rgb8();
        assert_eq!((grid.width(), grid.height()), (layout.width, layout.height));
        // Below the centre of each cell: off an empty cell's cross and its text.
        let at = |row: usize| {
            *grid.get_pixel(
                layout.column_lefts[0] + layout.cell / 2,
                layout.row_tops[row] + layout.cell / 2 + 20,
            )
        };
        let Rgb([r, g, b]) = at(0);
        assert!(
            r > 200 && g > 200 && b < 60,
            "the yellow image: {:?}",
            at(0)
        );
        let Rgb([r, g, b]) = at(1);
        assert!(
            r >= 240 && r >= g + 8 && r >= b + 8,
            "the failed cell's pink: {:?}",
            at(1)
        );
    }

    #[test]
    fn keys_on_no_axis_make_pages() {
        let records = vec![record(0, 0, 1, "completed"), record(1, 0, 3, "completed")];
        let plans = plan(&GridSpec::new("Hue", None), 1, 1, &records).expect("plan");
        let files: Vec<_> = plans.iter().map(|p| p.file.clone()).collect();
        assert_eq!(
            files,
            [
                PathBuf::from("grid-Tinted-Blur=1.png"),
                PathBuf::from("grid-Tinted-Blur=3.png")
            ]
        );
    }
}

//! Drawing a planned grid: the cells measured from their files, then drawn and encoded a band of rows at a time.

use super::super::ReportError;
use super::super::text::Pen;
use super::*;
use crate::manifest::{
    DEFAULT_CELL_MAX, MAX_CELL, MAX_GRID_PIXELS, MAX_LABEL_CHARS, MIN_CELL, value_label,
};
use serde_json::Value;
use std::path::Path;

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
pub(super) struct Geometry {
    width: u32,
    height: u32,
    left: u32,
    top: u32,
    column_lefts: Vec<u32>,
    row_tops: Vec<u32>,
}

/// The longest side of `cell`'s image, read from its file's header; a file that is no image
/// this build reads makes the cell empty, saying why.
pub(super) fn image_side(output_dir: &Path, cell: &mut Cell) -> Option<u32> {
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
pub(super) fn cannot_show(job: usize, file: &Path, e: &image::ImageError) -> Cell {
    Cell::Empty {
        job: Some(job),
        reason: format!("cannot show {}: {e}", file.display()),
        failed: false,
    }
}

/// A cell's side: the size asked for, else the largest image's side within the defaults.
pub(super) fn cell_side(plan: &GridPlan, sides: &[Option<u32>]) -> u32 {
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
pub(super) fn draw(
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

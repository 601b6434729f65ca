//! Drawing a planned grid: the cells measured from their files, then drawn and encoded a band of rows at a time.

use super::super::ReportError;
use super::super::text::Pen;
use super::*;
use crate::manifest::{
    DEFAULT_CELL_MAX, MAX_CAPTION_CHARS, MAX_CAPTION_LINES, MAX_CELL, MAX_GRID_PIXELS,
    MAX_LABEL_CHARS, MIN_CELL, ZLayout, value_label,
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
                caption_height: geometry.caption_height,
                fixed_top: geometry.fixed_top,
                fixed_height: geometry.fixed_height,
                sub_grids: geometry.sub_grids,
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
    caption_height: u32,
    fixed_top: u32,
    fixed_height: u32,
    sub_grids: Vec<SubGrid>,
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
/// drawn. A PNG is drawn and encoded one band (the header, a sub-grid's labels above its cells,
/// then a row of cells and their captions) at a time, so the whole grid is never in memory. An
/// image that does not decode past its header leaves its cell empty (in `plan` and `sides`
/// too), and the last value says so.
pub(super) fn draw(
    output_dir: &Path,
    plan: &mut GridPlan,
    sides: &mut [Option<u32>],
    cell: u32,
) -> Result<(Vec<u8>, Geometry, bool), ReportError> {
    let label_pen = Pen::new(LABEL_PX);
    let title_pen = Pen::new(TITLE_PX);
    let caption_pen = Pen::new(CAPTION_PX);
    let line = label_pen.line_height();
    let title_line = title_pen.line_height();
    let short = |v: &Value| cut(&value_label(v), MAX_LABEL_CHARS);
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
    // Captions, wrapped to the cell and cut to their bound; all take the same height.
    let captions: Vec<Vec<String>> = plan
        .captions
        .iter()
        .map(|c| {
            c.as_deref().map_or_else(Vec::new, |text| {
                let lines = caption_pen.wrap(&cut(text, MAX_CAPTION_CHARS), cell);
                at_most(lines, MAX_CAPTION_LINES)
            })
        })
        .collect();
    let caption_lines = captions.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let caption_height = if caption_lines > 0 {
        GAP + caption_lines * caption_pen.line_height()
    } else {
        0
    };
    let (cols, rows, layers) = (
        plan.columns.len() as u32,
        plan.rows.len() as u32,
        plan.layers.len() as u32,
    );
    // Sections top to bottom, each a band of labels and rows of cells: one holding every
    // sub-grid side by side (`across`), or one per sub-grid (`down`).
    let per_section = match plan.z_layout {
        ZLayout::Across => layers.max(1),
        ZLayout::Down => 1,
    };
    let sections = layers.div_ceil(per_section).max(1);
    let block_width = (cols * (cell + GAP)).saturating_sub(GAP);
    let z_line = if plan.z.is_some() { title_line } else { 0 };
    let z_labels: Vec<String> = match &plan.z {
        Some(z) => plan
            .layers
            .iter()
            .map(|v| one_line(&title_pen, &format!("{z}: {}", short(v)), block_width))
            .collect(),
        None => vec![String::new(); plan.layers.len()],
    };
    let title = caption(plan);
    let left = PAD + if plan.y.is_some() { row_width + PAD } else { 0 };
    let content_right = left + per_section * (block_width + Z_GAP) - Z_GAP + PAD;
    let fixed_text = fixed_line(plan);
    let fixed_width = content_right.saturating_sub(2 * PAD).max(480);
    let fixed_lines = if fixed_text.is_empty() {
        Vec::new()
    } else {
        at_most(label_pen.wrap(&fixed_text, fixed_width), MAX_FIXED_LINES)
    };
    let header = PAD + title_line + fixed_lines.len() as u32 * line + title_line + GAP;
    let section_head = z_line + column_lines * line + GAP;
    // A row is at least as tall as its wrapped label, and holds its cells' captions.
    let row_heights: Vec<u32> = row_labels
        .iter()
        .map(|l| cell.max(l.len() as u32 * line) + caption_height)
        .collect();
    let rows_height = row_heights.iter().sum::<u32>() + rows.saturating_sub(1) * GAP;
    let width = content_right
        .max(PAD * 2 + title_pen.width(&title).min(4000))
        .max(
            PAD * 2
                + fixed_lines
                    .iter()
                    .map(|l| label_pen.width(l))
                    .max()
                    .unwrap_or(0),
        );
    let height = header + sections * (section_head + rows_height) + (sections - 1) * Z_GAP + PAD;
    if u64::from(width) * u64::from(height) > MAX_GRID_PIXELS {
        return Err(ReportError::GridTooLarge {
            what: format!("{width}×{height} pixels; at most {MAX_GRID_PIXELS}"),
        });
    }

    let mut sink = Bands::new(width, height, plan)?;
    let ink = [34, 34, 34];
    let axis_ink = [0, 70, 160];
    let mut img = sink.band(header);
    // The title (node and page), the values held fixed, the axis names.
    title_pen.draw(&mut img, i64::from(PAD), i64::from(PAD), &title, ink);
    for (n, text) in fixed_lines.iter().enumerate() {
        let y = PAD + title_line + n as u32 * line;
        label_pen.draw(&mut img, i64::from(PAD), i64::from(y), text, [90, 90, 90]);
    }
    let axis_y = i64::from(header - GAP - title_line);
    let x_name = format!("{} →", plan.x);
    title_pen.draw(&mut img, i64::from(left), axis_y, &x_name, axis_ink);
    if let Some(y) = &plan.y {
        title_pen.draw(
            &mut img,
            i64::from(PAD),
            axis_y,
            &format!("{y} ↓"),
            axis_ink,
        );
    }
    sink.push(&img)?;

    let mut undecodable = false;
    let mut band_top = header;
    let mut sub_grids: Vec<SubGrid> = plan
        .layers
        .iter()
        .map(|z| SubGrid {
            z: z.clone(),
            column_lefts: Vec::new(),
            row_tops: Vec::new(),
        })
        .collect();
    for section in 0..sections {
        let blocks: Vec<u32> =
            (section * per_section..((section + 1) * per_section).min(layers)).collect();
        let block_left = |pos: u32| left + pos * (block_width + Z_GAP);
        // The section's labels: each sub-grid's Z value, and its column labels.
        let mut img = sink.band(section_head);
        for (pos, &b) in blocks.iter().enumerate() {
            let x_start = block_left(pos as u32);
            if plan.z.is_some() {
                title_pen.draw(
                    &mut img,
                    i64::from(x_start),
                    0,
                    &z_labels[b as usize],
                    axis_ink,
                );
            }
            for (i, lines) in column_labels.iter().enumerate() {
                let x0 = x_start + i as u32 * (cell + GAP);
                sub_grids[b as usize].column_lefts.push(x0);
                // Bottom-aligned above the cells, each line centred on the column.
                let y0 = section_head - GAP - lines.len() as u32 * line;
                for (n, text) in lines.iter().enumerate() {
                    let w = label_pen.width(text);
                    let x = i64::from(x0) + (i64::from(cell) - i64::from(w)) / 2;
                    label_pen.draw(&mut img, x, i64::from(y0 + n as u32 * line), text, ink);
                }
            }
        }
        sink.push(&img)?;
        band_top += section_head;
        for (j, lines) in row_labels.iter().enumerate() {
            for &b in &blocks {
                sub_grids[b as usize].row_tops.push(band_top);
            }
            // The row's band: its cells, captions and labels, and the gap (a margin, last)
            // below them.
            let below = if j + 1 < row_labels.len() {
                GAP
            } else if section + 1 < sections {
                Z_GAP
            } else {
                PAD
            };
            let mut img = sink.band(row_heights[j] + below);
            let y0 = 0;
            if plan.y.is_some() {
                // Right-aligned, centred on the row's cells.
                let y_text = y0
                    + (row_heights[j] - caption_height).saturating_sub(lines.len() as u32 * line)
                        / 2;
                for (n, text) in lines.iter().enumerate() {
                    let w = label_pen.width(text);
                    let x = i64::from(PAD + row_width.saturating_sub(w));
                    label_pen.draw(&mut img, x, i64::from(y_text + n as u32 * line), text, ink);
                }
            }
            for (pos, &b) in blocks.iter().enumerate() {
                for i in 0..plan.columns.len() {
                    let k = (b as usize * plan.rows.len() + j) * plan.columns.len() + i;
                    let x0 = block_left(pos as u32) + i as u32 * (cell + GAP);
                    if let Some(lines) = captions.get(k) {
                        let cap_top = y0 + row_heights[j] - caption_height + GAP;
                        for (n, text) in lines.iter().enumerate() {
                            let w = caption_pen.width(text);
                            let x = i64::from(x0) + (i64::from(cell) - i64::from(w)) / 2;
                            let y = cap_top + n as u32 * caption_pen.line_height();
                            caption_pen.draw(&mut img, x, i64::from(y), text, ink);
                        }
                    }
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
            }
            sink.push(&img)?;
            band_top += row_heights[j] + below;
        }
    }
    let bytes = sink.finish()?;
    let geometry = Geometry {
        width,
        height,
        left,
        top: header + section_head,
        column_lefts: sub_grids[0].column_lefts.clone(),
        row_tops: sub_grids[0].row_tops.clone(),
        caption_height,
        fixed_top: PAD + title_line,
        fixed_height: fixed_lines.len() as u32 * line,
        sub_grids,
    };
    Ok((bytes, geometry, undecodable))
}

/// `text` on one line at most `max` pixels wide, `…` last when it was cut.
fn one_line(pen: &Pen, text: &str, max: u32) -> String {
    if pen.width(text) <= max {
        return text.to_owned();
    }
    let mut shown = String::new();
    for c in text.chars() {
        if pen.width(&format!("{shown}{c}…")) > max {
            break;
        }
        shown.push(c);
    }
    shown + "…"
}

/// `text` cut to `max` characters, `…` last when it was longer.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        text.chars().take(max - 1).collect::<String>() + "…"
    } else {
        text.to_owned()
    }
}

/// The first `max` of `lines`, the last ending in `…` when some were left out.
fn at_most(mut lines: Vec<String>, max: usize) -> Vec<String> {
    if lines.len() > max {
        lines.truncate(max);
        if let Some(last) = lines.last_mut() {
            last.push('…');
        }
    }
    lines
}

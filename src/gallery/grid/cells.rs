//! What a cell shows: its image fitted, or an empty cell saying why, and the caption.

use super::super::text::Pen;
use super::*;
use crate::manifest::value_label;
use image::imageops::FilterType;
use image::{Rgb, RgbImage};
use std::borrow::Cow;

/// The grid's caption: its node, and its page's values.
pub(super) fn caption(plan: &GridPlan) -> String {
    let mut caption = plan.node.clone();
    for (k, v) in &plan.page {
        caption.push_str(&format!("  ·  {k}: {}", value_label(v)));
    }
    caption
}

/// The other values the grid holds fixed, as one line for its header (`fixed: K: V · ...`;
/// empty when there are none). Each value is cut to 60 characters, and at most
/// [`MAX_FIXED_SHOWN`] are listed.
pub(super) fn fixed_line(plan: &GridPlan) -> String {
    if plan.fixed.is_empty() {
        return String::new();
    }
    let mut items: Vec<String> = plan
        .fixed
        .iter()
        .take(MAX_FIXED_SHOWN)
        .map(|(k, v)| {
            let v = value_label(v);
            let v = if v.chars().count() > 60 {
                v.chars().take(59).collect::<String>() + "…"
            } else {
                v
            };
            format!("{k}: {v}")
        })
        .collect();
    if plan.fixed.len() > MAX_FIXED_SHOWN {
        items.push(format!("and {} more", plan.fixed.len() - MAX_FIXED_SHOWN));
    }
    format!("fixed: {}", items.join("  ·  "))
}

/// `src` scaled down to fit a `cell` × `cell` square (kept as it is when it fits: images are
/// never enlarged).
pub(super) fn fit(src: &RgbImage, cell: u32) -> Cow<'_, RgbImage> {
    if src.width().max(src.height()) <= cell {
        return Cow::Borrowed(src);
    }
    let scale = f64::from(cell) / f64::from(src.width().max(src.height()));
    let w = ((f64::from(src.width()) * scale).round() as u32).clamp(1, cell);
    let h = ((f64::from(src.height()) * scale).round() as u32).clamp(1, cell);
    Cow::Owned(image::imageops::resize(src, w, h, FilterType::CatmullRom))
}

/// A visibly empty cell: grey, crossed, with the reason inside.
pub(super) fn empty_cell(
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

//! Text on grid images: the shipped font (DejaVu Sans, `assets/fonts/`, Bitstream Vera licence
//! beside it), measured, wrapped to a width and drawn with ab_glyph's rasteriser.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use image::{Rgb, RgbImage};

/// The font file, shipped in the repository with its licence.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// A font at one size.
pub(crate) struct Pen {
    font: FontRef<'static>,
    scale: PxScale,
}

impl Pen {
    /// The shipped font at `px` pixels.
    pub(crate) fn new(px: f32) -> Pen {
        #[allow(clippy::expect_used)]
        let font = FontRef::try_from_slice(FONT).expect("invariant: the shipped font parses");
        Pen {
            font,
            scale: PxScale::from(px),
        }
    }

    /// The height of one line, in pixels.
    pub(crate) fn line_height(&self) -> u32 {
        let s = self.font.as_scaled(self.scale);
        (s.height() + s.line_gap()).ceil() as u32
    }

    /// The width of `text` on one line, in pixels.
    pub(crate) fn width(&self, text: &str) -> u32 {
        let s = self.font.as_scaled(self.scale);
        let mut w = 0.0;
        let mut prev = None;
        for c in text.chars() {
            let id = s.glyph_id(c);
            if let Some(p) = prev {
                w += s.kern(p, id);
            }
            w += s.h_advance(id);
            prev = Some(id);
        }
        w.ceil() as u32
    }

    /// `text` broken into lines no wider than `max` pixels: at spaces where it can, inside a
    /// word too long for a line otherwise. Nothing is cut.
    pub(crate) fn wrap(&self, text: &str, max: u32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            for word in paragraph.split(' ') {
                let candidate = if line.is_empty() {
                    word.to_owned()
                } else {
                    format!("{line} {word}")
                };
                if self.width(&candidate) <= max {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                // The word alone: split it where it overflows.
                for c in word.chars() {
                    line.push(c);
                    if self.width(&line) > max && line.chars().count() > 1 {
                        line.pop();
                        lines.push(std::mem::take(&mut line));
                        line.push(c);
                    }
                }
            }
            lines.push(line);
        }
        lines
    }

    /// Draws one line of `text` with its top-left corner at (`x`, `y`), blending `color` by the
    /// glyphs' coverage; pixels outside the image are skipped.
    pub(crate) fn draw(&self, img: &mut RgbImage, x: i64, y: i64, text: &str, color: [u8; 3]) {
        let s = self.font.as_scaled(self.scale);
        let baseline = y as f32 + s.ascent();
        let mut caret = x as f32;
        let mut prev = None;
        for c in text.chars() {
            let id = s.glyph_id(c);
            if let Some(p) = prev {
                caret += s.kern(p, id);
            }
            let glyph = id.with_scale_and_position(self.scale, point(caret, baseline));
            caret += s.h_advance(id);
            prev = Some(id);
            let Some(outlined) = self.font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outlined.px_bounds();
            outlined.draw(|gx, gy, coverage| {
                let px = i64::from(gx) + bounds.min.x as i64;
                let py = i64::from(gy) + bounds.min.y as i64;
                let (Ok(px), Ok(py)) = (u32::try_from(px), u32::try_from(py)) else {
                    return;
                };
                if px >= img.width() || py >= img.height() {
                    return;
                }
                let a = coverage.clamp(0.0, 1.0);
                let Rgb(bg) = *img.get_pixel(px, py);
                let mix =
                    |b: u8, f: u8| (f32::from(b) * (1.0 - a) + f32::from(f) * a).round() as u8;
                img.put_pixel(
                    px,
                    py,
                    Rgb([
                        mix(bg[0], color[0]),
                        mix(bg[1], color[1]),
                        mix(bg[2], color[2]),
                    ]),
                );
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_labels_wrap_without_losing_a_character() {
        let pen = Pen::new(14.0);
        let text = "a rather long prompt about a lighthouse on a cliff at dusk";
        let lines = pen.wrap(text, 80);
        assert!(lines.len() > 2, "{lines:?}");
        assert!(lines.iter().all(|l| pen.width(l) <= 80), "{lines:?}");
        assert_eq!(lines.join(" "), text);
        let word = "supercalifragilisticexpialidocious";
        let lines = pen.wrap(word, 40);
        assert!(lines.len() > 1);
        assert_eq!(lines.concat(), word);
    }

    #[test]
    fn drawing_text_darkens_pixels_inside_the_image_only() {
        let pen = Pen::new(16.0);
        let mut img = RgbImage::from_pixel(60, 20, Rgb([255, 255, 255]));
        pen.draw(&mut img, -3, 0, "Hue 90", [0, 0, 0]);
        let dark = img.pixels().filter(|p| p.0[0] < 128).count();
        assert!(dark > 20, "{dark} dark pixels");
    }
}

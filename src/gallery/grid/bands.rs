//! Writing a grid image a band of rows at a time (PNG), or whole (JPEG).

use super::super::ReportError;
use super::*;
use image::{Rgb, RgbImage};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Where a grid's bands go, top to bottom: a PNG encoded as they come, or (JPEG, which is
/// encoded whole) the full image.
pub(super) struct Bands {
    width: u32,
    file: PathBuf,
    to: BandsTo,
}

pub(super) enum BandsTo {
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
pub(super) struct SharedBytes(Rc<RefCell<Vec<u8>>>);

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
    pub(super) fn new(width: u32, height: u32, plan: &GridPlan) -> Result<Bands, ReportError> {
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
    pub(super) fn band(&self, height: u32) -> RgbImage {
        RgbImage::from_pixel(self.width, height, Rgb([255, 255, 255]))
    }

    /// The next band down.
    pub(super) fn push(&mut self, band: &RgbImage) -> Result<(), ReportError> {
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
    pub(super) fn finish(self) -> Result<Vec<u8>, ReportError> {
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
pub(super) fn png_error(file: &Path, e: png::EncodingError) -> ReportError {
    ReportError::Encode {
        path: file.to_path_buf(),
        source: image::ImageError::IoError(e.into()),
    }
}

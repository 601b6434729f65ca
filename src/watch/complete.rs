//! Whether an image file is structurally complete: a PNG through its `IEND` chunk, a JPEG
//! through its end marker (`EOI`, after the last marker segment), a WebP file as long as its
//! RIFF header says. A file cut short by a writer that paused (a camera, a network copy) is
//! [`Completeness::Incomplete`] and must not be uploaded yet.
//!
//! The checks walk the file's structure (chunk and segment lengths), so a JPEG whose embedded
//! thumbnail ends with its own end marker is not taken for whole. They do not decode pixels.

use std::path::Path;

/// What the structure of a file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completeness {
    /// A PNG, JPEG or WebP file that is whole.
    Complete,
    /// A PNG, JPEG or WebP file (or the start of one) that stops before its end: it may still
    /// be being written. The text says where it stops.
    Incomplete(String),
    /// A PNG, JPEG or WebP file whose structure is broken before its end; more bytes would not
    /// mend it. The text says where.
    Damaged(String),
    /// Not a PNG, JPEG or WebP file at all (a manifest, a text file).
    Unknown,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_SIGNATURE: &[u8] = &[0xFF, 0xD8, 0xFF];

/// Checks the bytes of a whole file.
#[must_use]
pub fn check(bytes: &[u8]) -> Completeness {
    if bytes.starts_with(PNG_SIGNATURE) {
        return png(bytes);
    }
    if bytes.starts_with(JPEG_SIGNATURE) {
        return jpeg(bytes);
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return webp(bytes);
    }
    // The first bytes of a signature only: the rest is still to come.
    let short = !bytes.is_empty()
        && (PNG_SIGNATURE.starts_with(bytes)
            || JPEG_SIGNATURE.starts_with(bytes)
            || (bytes.len() < 12 && (b"RIFF".starts_with(&bytes[..bytes.len().min(4)]))));
    if short {
        return Completeness::Incomplete(format!(
            "it has only {} bytes, the start of an image's header",
            bytes.len()
        ));
    }
    Completeness::Unknown
}

/// Whether the file at `path` is a whole image, an incomplete one, or no image at all (read
/// whole only when it starts like an image). A file that cannot be read is left to the claim
/// and the run, which say why.
pub fn of_file(path: &Path) -> Completeness {
    use std::io::Read;
    let Ok(file) = fs_err::File::open(path) else {
        return Completeness::Unknown;
    };
    let mut reader = std::io::BufReader::new(file);
    let mut bytes = Vec::new();
    if (&mut reader).take(12).read_to_end(&mut bytes).is_err() {
        return Completeness::Unknown;
    }
    if check(&bytes) == Completeness::Unknown {
        return Completeness::Unknown;
    }
    if reader.read_to_end(&mut bytes).is_err() {
        return Completeness::Unknown;
    }
    check(&bytes)
}

fn png(bytes: &[u8]) -> Completeness {
    let n = bytes.len();
    let mut pos = PNG_SIGNATURE.len();
    loop {
        if pos == n {
            return Completeness::Incomplete(format!(
                "the PNG stops after {n} bytes, before its IEND chunk"
            ));
        }
        let Some(header) = bytes.get(pos..pos + 8) else {
            return Completeness::Incomplete(format!(
                "the PNG stops after {n} bytes, inside a chunk header"
            ));
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let kind = &header[4..8];
        if len > 0x7FFF_FFFF || !kind.iter().all(u8::is_ascii_alphabetic) {
            return Completeness::Damaged(format!("the PNG has no valid chunk at byte {pos}"));
        }
        let name = String::from_utf8_lossy(kind);
        // Header (length and type), data, CRC.
        let end = pos + 12 + len as usize;
        if end > n {
            return Completeness::Incomplete(format!(
                "the PNG stops after {n} bytes, inside its {name} chunk (which ends at byte {end})"
            ));
        }
        if kind == b"IEND" {
            return Completeness::Complete;
        }
        pos = end;
    }
}

fn jpeg(bytes: &[u8]) -> Completeness {
    let n = bytes.len();
    let stops = |what: &str| {
        Completeness::Incomplete(format!(
            "the JPEG stops after {n} bytes, {what}, before its end marker (EOI)"
        ))
    };
    let mut pos = 2;
    loop {
        if pos >= n {
            return stops("after a segment");
        }
        if bytes[pos] != 0xFF {
            return Completeness::Damaged(format!("the JPEG has no marker at byte {pos}"));
        }
        // Fill bytes: any number of 0xFF before the marker code.
        while pos + 1 < n && bytes[pos + 1] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = bytes.get(pos + 1) else {
            return stops("inside a marker");
        };
        match marker {
            0xD9 => return Completeness::Complete,
            0x01 | 0xD0..=0xD7 => {
                pos += 2;
                continue;
            }
            0x00 => {
                return Completeness::Damaged(format!("the JPEG has no marker at byte {pos}"));
            }
            _ => {}
        }
        let Some(len) = bytes.get(pos + 2..pos + 4) else {
            return stops("inside a segment's length");
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if len < 2 {
            return Completeness::Damaged(format!(
                "the JPEG's segment at byte {pos} has a length of {len}"
            ));
        }
        let end = pos + 2 + len;
        if end > n {
            return stops(&format!("inside a segment that ends at byte {end}"));
        }
        pos = end;
        if marker == 0xDA {
            // Start of scan: entropy-coded data up to the next marker that is not a stuffed
            // 0xFF00 or a restart marker.
            loop {
                let Some(offset) = bytes[pos..].iter().position(|&b| b == 0xFF) else {
                    return stops("inside its image data");
                };
                pos += offset;
                match bytes.get(pos + 1) {
                    None => return stops("inside its image data"),
                    Some(0x00 | 0xD0..=0xD7 | 0xFF) => pos += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

fn webp(bytes: &[u8]) -> Completeness {
    let n = bytes.len() as u64;
    let riff = u64::from(u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]));
    // The RIFF length counts what follows its own 8-byte header.
    if riff < 4 {
        return Completeness::Damaged(format!("the WebP file's RIFF length is {riff}"));
    }
    if n < 8 + riff {
        return Completeness::Incomplete(format!(
            "the WebP file has {n} of the {} bytes its RIFF header announces",
            8 + riff
        ));
    }
    Completeness::Complete
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(format: image::ImageFormat) -> Vec<u8> {
        let image = image::RgbImage::from_fn(40, 24, |x, y| {
            image::Rgb([
                u8::try_from(x * 6).unwrap_or(0),
                u8::try_from(y * 9).unwrap_or(0),
                u8::try_from((x * y) % 251).unwrap_or(0),
            ])
        });
        let mut bytes = Vec::new();
        image
            .write_to(&mut std::io::Cursor::new(&mut bytes), format)
            .expect("encode");
        bytes
    }

    fn is_incomplete(c: &Completeness) -> bool {
        matches!(c, Completeness::Incomplete(_))
    }

    /// Every proper prefix is incomplete, the whole file is complete.
    fn every_cut_is_incomplete(bytes: &[u8]) {
        assert_eq!(check(bytes), Completeness::Complete);
        for cut in 1..bytes.len() {
            let got = check(&bytes[..cut]);
            assert!(
                is_incomplete(&got),
                "cut at {cut} of {}: {got:?}",
                bytes.len()
            );
        }
    }

    #[test]
    fn a_png_is_complete_only_through_its_iend_chunk() {
        let png = encoded(image::ImageFormat::Png);
        every_cut_is_incomplete(&png);
        let Completeness::Incomplete(why) = check(&png[..png.len() - 12]) else {
            panic!("cut before IEND")
        };
        assert!(why.contains("before its IEND chunk"), "{why}");
        let Completeness::Incomplete(why) = check(&png[..60]) else {
            panic!("cut in the data")
        };
        assert!(why.contains("inside its IDAT chunk"), "{why}");
        // Trailing bytes after IEND do not matter.
        let mut longer = png.clone();
        longer.extend_from_slice(b"trailing");
        assert_eq!(check(&longer), Completeness::Complete);
    }

    #[test]
    fn a_jpeg_is_complete_only_through_its_end_marker() {
        let jpeg = encoded(image::ImageFormat::Jpeg);
        every_cut_is_incomplete(&jpeg);
    }

    #[test]
    fn a_jpeg_cut_after_its_thumbnails_end_marker_is_incomplete() {
        let jpeg = encoded(image::ImageFormat::Jpeg);
        // An APP1 segment holding a whole small JPEG (a thumbnail, as in Exif).
        let thumb = encoded(image::ImageFormat::Jpeg);
        let mut app1 = vec![0xFF, 0xE1];
        let len = u16::try_from(thumb.len() + 2).expect("small");
        app1.extend_from_slice(&len.to_be_bytes());
        app1.extend_from_slice(&thumb);
        let mut with_thumb = jpeg[..2].to_vec();
        with_thumb.extend_from_slice(&app1);
        with_thumb.extend_from_slice(&jpeg[2..]);
        assert_eq!(check(&with_thumb), Completeness::Complete);
        // Cut right after the thumbnail's own FFD9: the last two bytes say "end", the
        // structure does not.
        let cut = 2 + app1.len();
        assert_eq!(&with_thumb[cut - 2..cut], &[0xFF, 0xD9]);
        assert!(is_incomplete(&check(&with_thumb[..cut])));
        // And cut inside the scan where the data happens to hold a restart marker or a
        // stuffed byte: still incomplete.
        let mut scan = jpeg[..jpeg.len() - 2].to_vec();
        scan.extend_from_slice(&[0xFF, 0x00, 0x12, 0xFF, 0xD3, 0x34]);
        assert!(is_incomplete(&check(&scan)));
        scan.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(check(&scan), Completeness::Complete);
    }

    #[test]
    fn a_webp_file_is_as_long_as_its_riff_header_says() {
        let mut webp = b"RIFF".to_vec();
        let body = b"WEBPVP8L\x05\x00\x00\x00abcde\x00";
        webp.extend_from_slice(&u32::try_from(body.len()).expect("small").to_le_bytes());
        webp.extend_from_slice(body);
        every_cut_is_incomplete(&webp);
        let Completeness::Incomplete(why) = check(&webp[..20]) else {
            panic!("cut")
        };
        assert_eq!(
            why,
            "the WebP file has 20 of the 26 bytes its RIFF header announces"
        );
    }

    #[test]
    fn other_files_are_unknown_and_broken_structures_damaged() {
        assert_eq!(check(b"workflow: a.json\n"), Completeness::Unknown);
        assert_eq!(check(b"hello, not an image"), Completeness::Unknown);
        assert_eq!(check(b"GIF89a......"), Completeness::Unknown);
        let png = encoded(image::ImageFormat::Png);
        let mut garbage = png[..8].to_vec();
        garbage.extend_from_slice(&[0xFF; 40]);
        assert!(matches!(check(&garbage), Completeness::Damaged(_)));
        let jpeg = encoded(image::ImageFormat::Jpeg);
        // Its first segment, then no marker where the next should be.
        let first = 4 + usize::from(u16::from_be_bytes([jpeg[4], jpeg[5]]));
        let mut garbage = jpeg[..first].to_vec();
        garbage.extend_from_slice(b"\x12\x34 not a segment");
        assert!(matches!(check(&garbage), Completeness::Damaged(_)));
    }
}

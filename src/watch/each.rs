//! `invk-run watch DIR --each MANIFEST --as INPUT`: every image that lands in the hot folder runs
//! one manifest, with the input `INPUT` set to the image ([`RunEach`]).

use std::io::Read;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::run::progress::Reporter;
use crate::run::settings::RunSettings;
use crate::run::{self, ForImage, ManifestOutcome, ManifestSource, RunError};
use crate::watch::complete::{self, Completeness};
use crate::watch::runner::ManifestRunner;

/// The include patterns of a hot folder of images.
pub const IMAGE_PATTERNS: [&str; 8] = [
    "*.png", "*.PNG", "*.jpg", "*.JPG", "*.jpeg", "*.JPEG", "*.webp", "*.WEBP",
];

/// How many images run at once unless told otherwise (`-j`): as many as the sessions a run
/// keeps pending (the default `--window`), so that a burst of images goes at once and their
/// runs share their enqueues.
pub const EACH_CONCURRENCY: usize = crate::run::DEFAULT_WINDOW;

/// The most bytes of an image file that are read to check it (its header).
const HEADER_BYTES: u64 = 64 * 1024;

/// The runner of `--each`: each claimed file is an image; it is checked, then `manifest` runs
/// with `input` set to it. Each image's run has its own output folder (and so its own journal),
/// unless the manifest's `output.dir` names the image itself: see
/// [`ManifestFile::for_image`](crate::manifest::ManifestFile::for_image). With a
/// [`Coalescer`](crate::run::coalesce::Coalescer) in the settings, the runs of images that go at
/// once share their enqueues.
#[derive(Debug, Clone)]
pub struct RunEach<'a> {
    manifest: PathBuf,
    input: String,
    settings: &'a RunSettings,
    reporter: &'a Reporter,
}

impl<'a> RunEach<'a> {
    /// A runner of `manifest` for each image, set as `input`. Check the manifest first with
    /// [`run::check_each`].
    #[must_use]
    pub fn new(
        manifest: &Path,
        input: &str,
        settings: &'a RunSettings,
        reporter: &'a Reporter,
    ) -> RunEach<'a> {
        RunEach {
            manifest: manifest.to_path_buf(),
            input: input.to_owned(),
            settings,
            reporter,
        }
    }
}

impl ManifestRunner for RunEach<'_> {
    async fn run(
        &self,
        source: ManifestSource,
        cancel: CancellationToken,
    ) -> Result<ManifestOutcome, RunError> {
        let each = ManifestSource {
            path: self.manifest.clone(),
            base_dir: crate::fs::parent_dir(&self.manifest),
            display_name: self.manifest.display().to_string(),
            image: Some(ForImage {
                input: self.input.clone(),
                image: source.path.clone(),
            }),
        };
        // Other images' runs may wait for this one's first enqueue, to share a batch with it,
        // until it enqueues or ends.
        let _starting = self
            .settings
            .coalescer
            .as_ref()
            .map(|c| c.starting(&each.run_name()));
        check_image(&source.path)?;
        run::run_manifest(&each, self.settings, self.reporter, cancel).await
    }
}

/// Checks that `path` is a PNG or JPEG whose header decodes (its size is read), or a WebP file
/// (its RIFF header; the server decodes it), and that it is whole (PNG through `IEND`, JPEG
/// through its end marker, WebP as long as its RIFF header says).
///
/// # Errors
/// [`RunError::NotAnImage`] saying what is wrong; [`RunError::Io`] when it cannot be read.
pub fn check_image(path: &Path) -> Result<(), RunError> {
    let not_an_image = |reason: String| RunError::NotAnImage {
        path: path.to_path_buf(),
        reason,
    };
    let mut header = Vec::new();
    fs_err::File::open(path)?
        .take(HEADER_BYTES)
        .read_to_end(&mut header)?;
    if header.is_empty() {
        return Err(not_an_image("the file is empty".into()));
    }
    if header.len() >= 12 && &header[..4] == b"RIFF" && &header[8..12] == b"WEBP" {
        return Ok(());
    }
    let format = image::guess_format(&header).map_err(|_| {
        not_an_image("its content is not PNG, JPEG or WebP (the name does not make it one)".into())
    })?;
    if !matches!(format, image::ImageFormat::Png | image::ImageFormat::Jpeg) {
        return Err(not_an_image(format!(
            "it is {format:?}; the hot folder takes PNG, JPEG and WebP"
        )));
    }
    let reader =
        image::ImageReader::with_format(std::io::BufReader::new(fs_err::File::open(path)?), format);
    reader
        .into_dimensions()
        .map_err(|e| not_an_image(format!("it does not decode: {e}")))?;
    match complete::check(&crate::fs::read(path)?) {
        Completeness::Incomplete(reason) => {
            Err(not_an_image(format!("it is incomplete: {reason}")))
        }
        // A damaged structure is left to the server's decoder, which names what is wrong.
        Completeness::Complete | Completeness::Damaged(_) | Completeness::Unknown => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_pass_and_other_files_are_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let png = tmp.path().join("a.png");
        image::RgbImage::new(4, 4).save(&png).expect("png");
        check_image(&png).expect("a png");
        let jpg = tmp.path().join("b.jpg");
        image::RgbImage::new(4, 4).save(&jpg).expect("jpg");
        check_image(&jpg).expect("a jpeg");

        let cases = [
            (
                "text.png",
                b"hello, not an image".to_vec(),
                "its content is not PNG, JPEG or WebP",
            ),
            ("empty.png", Vec::new(), "the file is empty"),
            (
                "cut.png",
                crate::fs::read(&png).expect("read")[..20].to_vec(),
                "it does not decode",
            ),
            (
                "half.png",
                crate::fs::read(&png).expect("read")[..60].to_vec(),
                "it is incomplete: the PNG stops after 60 bytes",
            ),
        ];
        for (name, bytes, want) in cases {
            let path = tmp.path().join(name);
            fs_err::write(&path, bytes).expect("write");
            let err = check_image(&path).expect_err(name).to_string();
            assert!(err.contains(name) && err.contains(want), "{name}: {err}");
        }
    }
}

//! Which manifest a run reads, where its relative paths are resolved from, and the image it runs
//! for (`invk-run watch --each`).

use std::path::{Path, PathBuf};

/// Where a manifest's relative paths (workflow, images, output folder) are resolved from.
#[derive(Debug, Clone)]
pub struct ManifestSource {
    /// The manifest file to read.
    pub path: PathBuf,
    /// The folder its relative paths are relative to (its own folder, unless the hot folder
    /// moved it while it runs).
    pub base_dir: PathBuf,
    /// The name to report it under.
    pub display_name: String,
    /// The image it runs for (`invk-run watch --each`), if any.
    pub image: Option<ForImage>,
}

/// A manifest run for one image (`invk-run watch DIR --each MANIFEST --as INPUT`): `input` is
/// set to `image`, and templates see the image as `source`.
#[derive(Debug, Clone)]
pub struct ForImage {
    /// The workflow input the image is for (a name as `inputs:` takes it).
    pub input: String,
    /// The image file.
    pub image: PathBuf,
}

impl ManifestSource {
    /// A manifest read where it is.
    #[must_use]
    pub fn new(path: &Path) -> ManifestSource {
        ManifestSource {
            path: path.to_path_buf(),
            base_dir: crate::fs::parent_dir(path),
            display_name: path.display().to_string(),
            image: None,
        }
    }

    /// The name its run reports under: the manifest's, and for `--each` the image's after it
    /// (`each.yaml for cat.png`).
    #[must_use]
    pub fn run_name(&self) -> String {
        match self.image.as_ref().and_then(|i| i.image.file_name()) {
            Some(image) => format!("{} for {}", self.display_name, image.to_string_lossy()),
            None => self.display_name.clone(),
        }
    }
}

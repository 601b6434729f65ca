//! A manifest run for one image of a hot folder (`invk-run watch DIR --each MANIFEST --as INPUT`):
//! the image is the value of one image input, and templates see it as `source`.

use std::path::Path;

use serde_json::Value;

use super::ManifestFile;
use super::scope::{EachImage, file_vars};
use super::source::YamlPath;
use super::template::Templates;

impl ManifestFile {
    /// This manifest, run for the image `image`: the input `input` is set to it (replacing the
    /// manifest's own value), templates see `source`, and unless `output.dir` itself reads
    /// `source`, each image gets its own folder `OUTPUT_DIR/{{ source.stem }}`, so that every
    /// image's run has its own journal.
    #[must_use]
    pub fn for_image(mut self, input: &str, image: &Path) -> ManifestFile {
        let path = image.display().to_string();
        self.manifest
            .inputs
            .insert(input.to_owned(), Value::String(path.clone()));
        if !dir_reads_source(&self.manifest.output.dir) {
            let dir = self.manifest.output.dir.trim_end_matches('/');
            self.manifest.output.dir = format!("{dir}/{{{{ source.stem }}}}");
        }
        self.each = Some(EachImage {
            vars: file_vars(image, &crate::fs::parent_dir(image)),
        });
        self
    }
}

/// Whether the template `dir` reads the variable `source`.
fn dir_reads_source(dir: &str) -> bool {
    let mut templates = Templates::new();
    let path = YamlPath::keys(&["output", "dir"]);
    templates.add(&path, dir).is_ok() && templates.top_level_names(&path).contains("source")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn manifest(text: &str) -> ManifestFile {
        let tmp = tempfile::tempdir().expect("tempdir");
        fs_err::write(tmp.path().join("wf.json"), "{}").expect("write");
        ManifestFile::parse(text, &tmp.path().join("m.yaml")).expect("parse")
    }

    #[test]
    fn the_image_sets_the_input_and_a_folder_of_its_own() {
        let m = manifest("version: 1\nworkflow: wf.json\ninputs: {Photo: old.png, Hue: 3}\n")
            .for_image("Photo", Path::new("/hot/processing/cat 1.png"));
        assert_eq!(
            m.manifest.inputs["Photo"],
            json!("/hot/processing/cat 1.png")
        );
        assert_eq!(m.manifest.inputs["Hue"], json!(3));
        assert_eq!(
            m.manifest.output.dir,
            "out/{{ manifest.stem }}/{{ source.stem }}"
        );
        let vars = &m.each.as_ref().expect("each").vars;
        assert_eq!(
            vars,
            &json!({"name": "cat 1.png", "stem": "cat 1", "dir": "/hot/processing", "path": "/hot/processing/cat 1.png"})
        );
    }

    #[test]
    fn a_folder_that_names_the_image_is_kept() {
        let m = manifest(
            "version: 1\nworkflow: wf.json\noutput: {dir: \"out/{{ source['stem'] | upper }}/\"}\n",
        )
        .for_image("Photo", Path::new("a.png"));
        assert_eq!(m.manifest.output.dir, "out/{{ source['stem'] | upper }}/");
        let m = manifest("version: 1\nworkflow: wf.json\noutput: {dir: \"out/\"}\n")
            .for_image("Photo", Path::new("a.png"));
        assert_eq!(m.manifest.output.dir, "out/{{ source.stem }}");
    }
}

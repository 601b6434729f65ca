//! The HTML gallery: `index.html` at the output root, made from the minijinja templates in
//! `templates/`, with small generated thumbnails in `.invk-run/thumbs/`. It opens from disk and
//! works offline: the jobs are embedded as JSON and the page's own script draws the views.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use indexmap::IndexMap;
use minijinja::Environment;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::ReportError;
use super::grid::UNLABELLED;
use super::records::{JobRecord, PENDING};
use crate::manifest::{GridSpec, value_label};
use crate::store::OutputStore;

/// The thumbnails' longest side, in pixels.
pub const THUMB_SIZE: u32 = 192;

/// Where thumbnails go, relative to the output folder.
pub const THUMB_DIR: &str = ".invk-run/thumbs";

/// The page, relative to the output folder.
pub const PAGE: &str = "index.html";

/// A grid to link from the gallery.
#[derive(Debug, Clone, Serialize)]
pub struct GridLink {
    /// The file, relative to the output folder.
    pub file: PathBuf,
    /// The output node it shows.
    pub node: String,
}

/// What writing the gallery did.
#[derive(Debug, Clone, Default)]
pub struct GalleryOutcome {
    /// Thumbnails made now (the others were up to date).
    pub thumbnails_made: usize,
    /// Files without a thumbnail (not an image this build decodes, or missing).
    pub without_thumbnail: usize,
}

/// What the X/Y view shows when the address does not say: the first grid's axes, and an
/// output node: the one a grid names; else the node whose images differ most between jobs
/// (`variety`: by node, how many file sizes its outputs have), so that the cells do not all
/// look alike (as an intermediate output that the swept values do not touch would).
fn xy_default(specs: &[GridSpec], nodes: &[String], variety: &HashMap<&str, usize>) -> Value {
    let spec = specs.first();
    let varied = || {
        // The first of the most varied, in the order the nodes were met.
        let most = nodes
            .iter()
            .map(|n| variety.get(n.as_str()).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        nodes
            .iter()
            .find(|n| variety.get(n.as_str()).copied().unwrap_or(0) == most)
            .cloned()
    };
    let (node, why) = match specs.iter().find_map(|s| s.node.as_ref()) {
        Some(node) if nodes.contains(node) => (Some(node.clone()), "the grid's output"),
        _ if nodes.len() > 1 => (varied(), "its images differ most between jobs"),
        _ => (nodes.first().cloned(), "the only output"),
    };
    json!({
        "x": spec.map(|s| s.x.clone()),
        "y": spec.map(|s| s.y.clone().unwrap_or_default()),
        "node": node,
        "why": why,
    })
}

/// Writes `index.html` (atomically) and the thumbnails it needs, through the store `root`
/// (under its rules: no links in a local folder). Jobs still [`PENDING`] are left out: the page shows what is finished.
/// `specs` are the grids asked for: the X/Y view starts on the first one's axes and node.
///
/// # Errors
/// The page or a thumbnail cannot be written, or the template fails.
pub fn write(
    root: &dyn OutputStore,
    title: &str,
    records: &[JobRecord],
    grids: &[GridLink],
    specs: &[GridSpec],
) -> Result<GalleryOutcome, ReportError> {
    let records: Vec<&JobRecord> = records.iter().filter(|r| r.status != PENDING).collect();
    let mut outcome = GalleryOutcome::default();
    let mut keys: Vec<&str> = Vec::new();
    let mut values: IndexMap<&str, Vec<String>> = IndexMap::new();
    let mut nodes: Vec<String> = Vec::new();
    // By node, the sizes of its files: how much its images differ between jobs.
    let mut sizes: HashMap<String, HashSet<u64>> = HashMap::new();
    let mut jobs = Vec::with_capacity(records.len());
    let mut counts = Counts {
        jobs: records.len(),
        ..Counts::default()
    };
    for r in records {
        match r.status.as_str() {
            "completed" => counts.completed += 1,
            "failed" => counts.failed += 1,
            "not_run" => counts.not_run += 1,
            _ => {}
        }
        let mut sweep = IndexMap::new();
        for (k, v) in &r.sweep {
            let label = value_label(v);
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
            let list = values.entry(k).or_default();
            if !list.contains(&label) {
                list.push(label.clone());
            }
            sweep.insert(k.as_str(), label);
        }
        let mut files = Vec::new();
        for f in &r.files {
            let node = f
                .node_label
                .clone()
                .unwrap_or_else(|| UNLABELLED.to_owned());
            if !nodes.contains(&node) {
                nodes.push(node.clone());
            }
            if let Some(len) = f
                .exists
                .then(|| root.local_folder())
                .flatten()
                .and_then(|dir| crate::fs::metadata(dir.join(&f.path)).ok())
                .map(|m| m.len())
            {
                sizes.entry(node.clone()).or_default().insert(len);
            }
            let thumb = if f.exists {
                match thumbnail(root, &f.path)? {
                    Some((path, made)) => {
                        outcome.thumbnails_made += usize::from(made);
                        Some(url(&path))
                    }
                    None => {
                        outcome.without_thumbnail += 1;
                        None
                    }
                }
            } else {
                outcome.without_thumbnail += 1;
                None
            };
            files.push(PageFile {
                src: url(&f.path),
                name: f.path.display().to_string(),
                thumb,
                node,
                exists: f.exists,
                meta: f.sidecar.as_ref(),
            });
        }
        counts.files += files.len();
        jobs.push(PageJob {
            job: r.job,
            status: &r.status,
            error: r.error.as_deref(),
            sweep,
            inputs: &r.inputs,
            files,
        });
    }
    let grid_links: Vec<PageGrid> = grids
        .iter()
        .map(|g| PageGrid {
            src: url(&g.file),
            name: g.file.display().to_string(),
            node: &g.node,
        })
        .collect();
    let variety: HashMap<&str, usize> = sizes.iter().map(|(n, s)| (n.as_str(), s.len())).collect();
    let data = PageData {
        title,
        keys,
        values,
        xy: xy_default(specs, &nodes, &variety),
        nodes: &nodes,
        jobs,
        grids: &grid_links,
    };
    let html = render_page(title, &counts, &grid_links, &data)?;
    root.write_replacing(Path::new(PAGE), html.as_bytes())?;
    Ok(outcome)
}

// What the page embeds, borrowed from the records and written straight to JSON text (the
// sidecars and inputs are not copied into a tree of JSON values first). Fields are in the
// order the page's script reads them.

/// The counts in the page's header.
#[derive(Default, Serialize)]
struct Counts {
    jobs: usize,
    completed: usize,
    failed: usize,
    not_run: usize,
    files: usize,
}

/// Everything the page's script draws from.
#[derive(Serialize)]
struct PageData<'a> {
    title: &'a str,
    keys: Vec<&'a str>,
    values: IndexMap<&'a str, Vec<String>>,
    xy: Value,
    nodes: &'a [String],
    jobs: Vec<PageJob<'a>>,
    grids: &'a [PageGrid<'a>],
}

/// A job as the page shows it.
#[derive(Serialize)]
struct PageJob<'a> {
    job: usize,
    status: &'a str,
    error: Option<&'a str>,
    sweep: IndexMap<&'a str, String>,
    inputs: &'a Map<String, Value>,
    files: Vec<PageFile<'a>>,
}

/// A file as the page shows it.
#[derive(Serialize)]
struct PageFile<'a> {
    src: String,
    name: String,
    thumb: Option<String>,
    node: String,
    exists: bool,
    meta: Option<&'a Value>,
}

/// A grid the page links to.
#[derive(Serialize)]
struct PageGrid<'a> {
    src: String,
    name: String,
    node: &'a str,
}

/// The page from the templates.
fn render_page(
    title: &str,
    counts: &impl Serialize,
    grids: &impl Serialize,
    data: &impl Serialize,
) -> Result<String, ReportError> {
    let mut env = Environment::new();
    for (name, source) in [
        ("gallery.html", include_str!("../../templates/gallery.html")),
        ("gallery.css", include_str!("../../templates/gallery.css")),
        ("gallery.js", include_str!("../../templates/gallery.js")),
    ] {
        env.add_template(name, source)?;
    }
    let template = env.get_template("gallery.html")?;
    Ok(template.render(minijinja::context! {
        title => title,
        counts => counts,
        grids => grids,
        data => minijinja::Value::from_safe_string(script_json(data)),
    })?)
}

/// JSON text that is safe inside a `<script>` element: `<`, `>` and `&` (only ever inside
/// strings) become `\u003c`-style escapes, so no `</script>` or `<!--` can end the element early;
/// U+2028 and U+2029 are escaped for older JavaScript parsers.
#[must_use]
pub fn script_json(value: &impl Serialize) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// A relative path as a URL path: each part percent-encoded (spaces, `#`, `?`, `%`...).
#[must_use]
pub fn url(path: &Path) -> String {
    let mut parts = Vec::new();
    for part in path.components() {
        let text = part.as_os_str().to_string_lossy();
        let mut encoded = String::with_capacity(text.len());
        for b in text.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                encoded.push(char::from(b));
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
        parts.push(encoded);
    }
    parts.join("/")
}

/// The thumbnail of `rel` (relative to the output folder): made when missing or older than the
/// file. Returns its relative path and whether it was made now; `None` for a file that is no
/// image this build decodes, or that is not in a local folder (the images are decoded from
/// local files).
///
/// # Errors
/// The thumbnail cannot be written (a link in its way is refused).
pub fn thumbnail(
    root: &dyn OutputStore,
    rel: &Path,
) -> Result<Option<(PathBuf, bool)>, ReportError> {
    let Some(output_dir) = root.local_folder() else {
        return Ok(None);
    };
    let digest = Sha256::digest(rel.to_string_lossy().as_bytes());
    let name: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    let thumb_rel = Path::new(THUMB_DIR).join(format!("{name}.jpg"));
    let source = output_dir.join(rel);
    let thumb = output_dir.join(&thumb_rel);
    let modified = |p: &Path| crate::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(t), Some(s)) = (modified(&thumb), modified(&source)) {
        if t >= s {
            return Ok(Some((thumb_rel, false)));
        }
    }
    let Ok(img) = image::open(&source) else {
        return Ok(None);
    };
    let small = if img.width().max(img.height()) > THUMB_SIZE {
        img.resize(THUMB_SIZE, THUMB_SIZE, FilterType::Triangle)
    } else {
        img
    };
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 82)
        .encode_image(&small.into_rgb8())
        .map_err(|source| ReportError::Encode {
            path: thumb.clone(),
            source,
        })?;
    root.write_replacing(&thumb_rel, &bytes)?;
    Ok(Some((thumb_rel, true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_the_script_element() {
        let v = json!({"prompt": "</script><script>alert(1)</script> & <!--"});
        let text = script_json(&v);
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        let back: Value = serde_json::from_str(&text).expect("still JSON");
        assert_eq!(back, v);
    }

    #[test]
    fn urls_encode_each_part() {
        assert_eq!(url(Path::new("hue 90/a#b?.png")), "hue%2090/a%23b%3F.png");
    }

    #[test]
    fn user_text_in_the_page_is_escaped() {
        let html = render_page(
            "<b>out</b>",
            &json!({"jobs": 0, "completed": 0, "failed": 0, "not_run": 0, "files": 0}),
            &[json!({"src": "g.png", "name": "<i>g</i>", "node": "n"})],
            &json!({"title": "</script>"}),
        )
        .expect("render");
        assert!(html.contains("&lt;b&gt;out&lt;"), "{html}");
        assert!(html.contains("&lt;i&gt;g&lt;"));
        assert!(!html.contains("<b>out") && !html.contains("\"</script>"));
    }
}

//! What a run shows: X/Y grids of its sweep and an HTML gallery of every output, rebuilt from
//! what is on disk (`runs.jsonl`, the sidecars, the journal), so a run made before this feature,
//! or a folder whose files were moved, can be reported too.
//!
//! ```text
//! records::load(dir)                  jobs with status, sweep values, inputs, files, sidecars
//! grid::plan(spec, records)           which job's image goes in which cell (or why none)
//! grid::render(dir, plan)             the grid image, with its axis labels
//! page::write(dir, records, grids)  index.html + thumbnails
//! ```
//! [`refresh`] does all of it; the runner calls it at the end of a run, and so does
//! `invk-run report`. While a run goes, [`live::LiveReport`] keeps `index.html` up to date and
//! writes each grid once its cells are complete, on a thread of its own.
//!
//! Every file a report writes goes through the output store ([`crate::store::OutputStore`]):
//! atomically, and (in a local folder) never through a symbolic link inside it. The images
//! the grids and thumbnails are drawn from are read from the store's local folder.

pub mod grid;
pub mod live;
pub mod page;
pub mod records;
mod text;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::exit_status::ExitStatus;
use crate::fs::place::PlaceError;
use crate::manifest::{GridSpec, Manifest, default_grid, resolve_grids};
use crate::store::{LocalStore, OutputStore};

/// Where a folder's report settings are kept, relative to it (so `invk-run report DIR` draws
/// the grids the manifest asked for).
pub const CONFIG_FILE: &str = ".invk-run/report.json";

/// What to draw for an output folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportConfig {
    /// The page's title (the manifest's name).
    pub title: String,
    /// The grids.
    #[serde(default)]
    pub grids: Vec<GridSpec>,
    /// Whether to write `index.html`.
    #[serde(default = "yes")]
    pub gallery: bool,
}

fn yes() -> bool {
    true
}

impl ReportConfig {
    /// The report a manifest asks for, titled `title`.
    #[must_use]
    pub fn from_manifest(title: &str, manifest: &Manifest) -> ReportConfig {
        ReportConfig {
            title: title.to_owned(),
            grids: resolve_grids(&manifest.output, &manifest.sweep),
            gallery: manifest.output.gallery,
        }
    }

    /// The settings saved in `output_dir` by an earlier report; without them (a run made before
    /// reports), the gallery and the default grid of the sweep found on disk.
    ///
    /// # Errors
    /// The saved settings cannot be read.
    pub fn saved_or_default(output_dir: &Path) -> Result<ReportConfig, ReportError> {
        let store = LocalStore::at(output_dir);
        if let Some(text) = store.read(Path::new(CONFIG_FILE), u64::MAX)? {
            return serde_json::from_slice(&text).map_err(|source| ReportError::Config {
                path: output_dir.join(CONFIG_FILE),
                source,
            });
        }
        let records = records::load_from(&store)?;
        let title = output_dir.file_name().map_or_else(
            || "invk-run".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(ReportConfig {
            title,
            grids: default_grid_of(&records).into_iter().collect(),
            gallery: true,
        })
    }
}

/// The default grid of jobs read from disk: when their sweep is a full product of one or two
/// keys (as a `matrix` makes it).
fn default_grid_of(records: &[records::JobRecord]) -> Option<GridSpec> {
    let mut keys: Vec<&String> = Vec::new();
    let mut combos: Vec<Vec<&serde_json::Value>> = Vec::new();
    for r in records {
        for k in r.sweep.keys() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let mut distinct: Vec<Vec<&serde_json::Value>> = vec![Vec::new(); keys.len()];
    for r in records {
        let combo: Vec<&serde_json::Value> = keys
            .iter()
            .map(|k| r.sweep.get(*k).unwrap_or(&serde_json::Value::Null))
            .collect();
        for (i, v) in combo.iter().enumerate() {
            if !distinct[i].contains(v) {
                distinct[i].push(v);
            }
        }
        if !combos.contains(&combo) {
            combos.push(combo);
        }
    }
    let product: usize = distinct.iter().map(Vec::len).product();
    if product == combos.len() {
        default_grid(&keys)
    } else {
        None
    }
}

/// What [`refresh`] wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReportSummary {
    /// `index.html`, when written.
    pub gallery: Option<PathBuf>,
    /// The grid files written, relative to the output folder.
    pub grids: Vec<PathBuf>,
    /// Jobs shown.
    pub jobs: usize,
    /// Thumbnails made (the others were up to date).
    pub thumbnails_made: usize,
    /// Grid cells left empty (failed, not run, not in the sweep), over all grids.
    pub empty_cells: usize,
}

/// A report that could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A file could not be read or written.
    #[error("cannot access `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file would be written through a symbolic link, or its folder cannot be made.
    #[error(transparent)]
    Place(#[from] PlaceError),
    /// Several parts of the report could not be written (the others were).
    #[error("{}", several(.0))]
    Several(Vec<ReportError>),
    /// An image could not be encoded.
    #[error("cannot encode `{}`", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: image::ImageError,
    },
    /// A grid would be too large.
    #[error("the grid would be too large: {what}")]
    GridTooLarge {
        /// Its size and the bound.
        what: String,
    },
    /// A grid's file name does not render.
    #[error("grid name `{template}`: {message}")]
    GridName {
        /// The template.
        template: String,
        /// Why.
        message: String,
    },
    /// A grid's caption template does not compile.
    #[error("grid caption `{template}`: {message}")]
    GridCaption {
        /// The template.
        template: String,
        /// Why.
        message: String,
    },
    /// The saved report settings are not valid.
    #[error("invalid report settings in `{}`", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The gallery template failed.
    #[error("cannot render the gallery page")]
    Template(#[from] minijinja::Error),
    /// Grids are drawn from the images as local files, and the store has none.
    #[error("cannot draw grids of the outputs in {store}: they are not in a local folder")]
    NoLocalFolder {
        /// The store, as it names itself.
        store: String,
    },
    /// `invk-run report` was given something that is neither an output folder nor a manifest.
    #[error(
        "`{}` is neither an output folder (with `runs.jsonl`) nor a manifest (`.yaml`)",
        path.display()
    )]
    NotAReport {
        /// What was given.
        path: PathBuf,
    },
}

/// Each error with its causes, one after the other.
fn several(errors: &[ReportError]) -> String {
    errors
        .iter()
        .map(|e| crate::error_chain::error_chain(e))
        .collect::<Vec<_>>()
        .join("; and ")
}

impl ReportError {
    /// The errors as one: none, the one, or [`ReportError::Several`].
    pub(crate) fn all(mut errors: Vec<ReportError>) -> Result<(), ReportError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(ReportError::Several(errors)),
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> ReportError {
        ReportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The exit status this error ends the process with.
    #[must_use]
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            ReportError::GridTooLarge { .. }
            | ReportError::GridName { .. }
            | ReportError::GridCaption { .. }
            | ReportError::NotAReport { .. } => ExitStatus::Invalid,
            _ => ExitStatus::Failed,
        }
    }
}

/// Rebuilds the grids and `index.html` of `output_dir` from what is on disk, and saves `config`
/// beside the journal for `invk-run report`. Every file is written atomically; a run still
/// going gets grids whose unfinished cells say so.
///
/// # Errors
/// A file that cannot be read or written, an image that cannot be decoded, or a grid past its
/// bounds.
pub fn refresh(output_dir: &Path, config: &ReportConfig) -> Result<ReportSummary, ReportError> {
    refresh_in(&LocalStore::at(output_dir), config)
}

/// [`refresh`] for the outputs in `root`: read and written through the store.
///
/// # Errors
/// As [`refresh`]; [`ReportError::NoLocalFolder`] for grids of a store without a local folder.
pub fn refresh_in(
    root: &dyn OutputStore,
    config: &ReportConfig,
) -> Result<ReportSummary, ReportError> {
    let records = records::load_from(root)?;
    let mut summary = ReportSummary {
        jobs: records.len(),
        ..ReportSummary::default()
    };
    let mut links = Vec::new();
    // A grid or page that cannot be written (a link in its way) does not cost the others:
    // the errors are returned once the rest is written.
    let mut failed = Vec::new();
    for (i, spec) in config.grids.iter().enumerate() {
        for plan in grid::plan(spec, i + 1, config.grids.len(), &records)? {
            if plan
                .cells
                .iter()
                .all(|c| matches!(c, grid::Cell::Empty { .. }))
                && records.is_empty()
            {
                continue;
            }
            match write_grid(root, &plan) {
                Ok(empty) => summary.empty_cells += empty,
                Err(e) => {
                    failed.push(e);
                    continue;
                }
            }
            links.push(page::GridLink {
                file: plan.file.clone(),
                node: plan.node.clone(),
            });
            summary.grids.push(plan.file);
        }
    }
    if config.gallery {
        match page::write(root, &config.title, &records, &links, &config.grids) {
            Ok(outcome) => {
                summary.thumbnails_made = outcome.thumbnails_made;
                summary.gallery = Some(
                    root.local_folder()
                        .map_or_else(|| PathBuf::from(page::PAGE), |dir| dir.join(page::PAGE)),
                );
            }
            Err(e) => failed.push(e),
        }
    }
    if let Err(e) = save_config(root, config) {
        failed.push(e);
    }
    ReportError::all(failed)?;
    Ok(summary)
}

/// Draws `plan` and writes it, with its layout beside it (`NAME.EXT.json`); returns how many
/// of its cells are empty.
///
/// # Errors
/// As [`grid::render`], or a file that cannot be written.
pub(crate) fn write_grid(
    root: &dyn OutputStore,
    plan: &grid::GridPlan,
) -> Result<usize, ReportError> {
    let folder = root
        .local_folder()
        .ok_or_else(|| ReportError::NoLocalFolder {
            store: root.location(),
        })?;
    let (bytes, layout) = grid::render(folder, plan)?;
    let empty = layout
        .plan
        .cells
        .iter()
        .filter(|c| matches!(c, grid::Cell::Empty { .. }))
        .count();
    root.write_replacing(&plan.file, &bytes)?;
    let mut text = serde_json::to_vec_pretty(&layout).unwrap_or_default();
    text.push(b'\n');
    root.write_replacing(&crate::fs::output_tree::sidecar_path(&plan.file), &text)?;
    Ok(empty)
}

/// Saves `config` beside the journal, for `invk-run report`.
///
/// # Errors
/// The file cannot be written.
pub(crate) fn save_config(
    root: &dyn OutputStore,
    config: &ReportConfig,
) -> Result<(), ReportError> {
    let mut text = serde_json::to_vec_pretty(config).unwrap_or_default();
    text.push(b'\n');
    root.write_replacing(Path::new(CONFIG_FILE), &text)?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_refused_grid_does_not_cost_the_gallery_and_each_refusal_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("outside");
        let root = dir.path();
        image::RgbImage::from_pixel(8, 8, image::Rgb([200, 10, 10]))
            .save(root.join("0.png"))
            .expect("png");
        let line =
            json!({"job": 0, "status": "completed", "sweep": {"Hue": 0}, "files": ["0.png"]});
        crate::fs::write(root.join("runs.jsonl"), format!("{line}\n")).expect("runs.jsonl");
        std::os::unix::fs::symlink(outside.path(), root.join("grids")).expect("link");
        std::os::unix::fs::symlink(outside.path().join("s.json"), root.join("other.png"))
            .expect("link");
        let spec = |name: &str| GridSpec {
            name: Some(name.to_owned()),
            ..GridSpec::new("Hue", None)
        };
        let config = ReportConfig {
            title: "t".into(),
            grids: vec![spec("grids/hue"), spec("other")],
            gallery: true,
        };
        let err = refresh(root, &config).expect_err("two grids refused");
        let text = crate::error_chain::error_chain(&err);
        assert!(
            matches!(&err, ReportError::Several(e) if e.len() == 2),
            "{text}"
        );
        for link in ["grids", "other.png"] {
            let want = format!("`{}` is a symbolic link", root.join(link).display());
            assert!(text.contains(&want), "{text}");
        }
        let page = crate::fs::read_to_string(root.join(page::PAGE)).expect("the page");
        assert!(!page.contains("grids/hue.png") && !page.contains("\"other.png\""));
        assert!(root.join(CONFIG_FILE).is_file());
        assert_eq!(
            crate::fs::read_dir(outside.path()).expect("list").count(),
            0
        );
    }
}

//! What names one produced file: the template variables of `output.dir` and `output.name`, the
//! rule a rendered name must follow, and the resulting path. Rendering is in `output_path.rs`.

use std::path::{Component, Path, PathBuf};

/// What the runner knows about one produced file, for the output templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputVars {
    /// `node.id`: the workflow node's id.
    pub node_id: String,
    /// `node.label`: the node's label in the workflow, else its type.
    pub node_label: String,
    /// `node.type`: the invocation type, e.g. `save_image`.
    pub node_type: String,
    /// `image.index`: which of the node's files this is, from 0.
    pub image_index: usize,
    /// `image.count`: how many files the node produced.
    pub image_count: usize,
    /// `image.name`: the file's name on the server.
    pub image_name: String,
    /// `item.id`: the queue item id.
    pub item_id: i64,
    /// `batch.id`: the batch id.
    pub batch_id: String,
    /// `run.id`: the id of this invocation of invk-run (the journal's run id).
    pub run_id: String,
    /// `date`: the day the run started, `YYYY-MM-DD`.
    pub date: String,
    /// `time`: the time the run started, `HHMMSS`.
    pub time: String,
}

impl OutputVars {
    /// Stand-in values, used to check the templates before anything runs.
    #[must_use]
    pub fn example() -> OutputVars {
        OutputVars {
            node_id: "node-id".into(),
            node_label: "node-label".into(),
            node_type: "node_type".into(),
            image_index: 0,
            image_count: 1,
            image_name: "image-name.png".into(),
            item_id: 1,
            batch_id: "batch-id".into(),
            run_id: "run-id".into(),
            date: "2000-01-01".into(),
            time: "000000".into(),
        }
    }
}

/// Where one output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPath {
    /// The folder (`output.dir` rendered; relative ones joined to the manifest's folder).
    pub dir: PathBuf,
    /// The file name without extension, relative to `dir` (may contain folders, never `..`).
    pub name: PathBuf,
}

impl OutputPath {
    /// The full path with `extension` (e.g. `png`) appended to the name.
    #[must_use]
    pub fn file(&self, extension: &str) -> PathBuf {
        let mut name = self.name.clone().into_os_string();
        if !extension.is_empty() {
            name.push(".");
            name.push(extension);
        }
        self.dir.join(name)
    }
}

/// Why a rendered file name (of `output.name`, or of a grid) cannot be used; each holds the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameProblem {
    /// Empty, or only spaces.
    Empty,
    /// Has a `..` step, which could leave `output.dir`.
    Parent(String),
    /// An absolute path.
    Absolute(String),
    /// Ends with `/`: a folder.
    Folder(String),
}

impl NameProblem {
    /// The problem as a sentence about the setting that rendered the name (`` `output.name` ``,
    /// `the grid name`).
    #[must_use]
    pub fn describe(&self, setting: &str) -> String {
        match self {
            NameProblem::Empty => format!("{setting} renders to an empty name"),
            NameProblem::Parent(name) => {
                format!("{setting} renders to `{name}`; `..` could leave `output.dir`")
            }
            NameProblem::Absolute(name) => {
                format!("{setting} renders to the absolute path `{name}`")
            }
            NameProblem::Folder(name) => {
                format!("{setting} renders to `{name}`, which names a folder, not a file")
            }
        }
    }
}

impl std::fmt::Display for NameProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe("`output.name`"))
    }
}

impl std::error::Error for NameProblem {}

/// Checks a rendered `output.name`: a non-empty relative path that stays inside `output.dir`.
///
/// # Errors
/// What is wrong with it.
pub fn check_name(name: &str) -> Result<(), NameProblem> {
    if name.trim().is_empty() {
        return Err(NameProblem::Empty);
    }
    let path = Path::new(name);
    for c in path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err(NameProblem::Parent(name.to_owned())),
            Component::RootDir | Component::Prefix(_) => {
                return Err(NameProblem::Absolute(name.to_owned()));
            }
        }
    }
    if name.ends_with('/') {
        return Err(NameProblem::Folder(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_may_have_folders_but_not_leave_the_output_dir() {
        assert_eq!(check_name("a/b-1"), Ok(()));
        assert_eq!(check_name("./x"), Ok(()));
        assert_eq!(check_name(".."), Err(NameProblem::Parent("..".into())));
        for (name, expected) in [
            (
                "../x",
                "`output.name` renders to `../x`; `..` could leave `output.dir`",
            ),
            (
                "a/../../x",
                "`output.name` renders to `a/../../x`; `..` could leave `output.dir`",
            ),
            (
                "/etc/x",
                "`output.name` renders to the absolute path `/etc/x`",
            ),
            ("  ", "`output.name` renders to an empty name"),
            (
                "a/",
                "`output.name` renders to `a/`, which names a folder, not a file",
            ),
        ] {
            assert_eq!(
                check_name(name).map_err(|e| e.to_string()),
                Err(expected.to_owned()),
                "{name}"
            );
        }
    }

    #[test]
    fn file_appends_the_extension() {
        let p = OutputPath {
            dir: "out".into(),
            name: "0-a.b".into(),
        };
        assert_eq!(p.file("png"), PathBuf::from("out/0-a.b.png"));
    }
}

//! What the finished items produced, and downloading it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{HandleError, WorkflowHandle};
use crate::client::queue::QueueItem;
use crate::store::{LocalStore, Name, OutputStore};
use crate::workflow::OutputNode;

/// The files one output node of the workflow produced in one queue item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The queue item.
    pub item_id: i64,
    /// The node's id in the workflow.
    pub node_id: String,
    /// The node's type (`save_image`, `canvas_output`, ...).
    pub node_type: String,
    /// The node's label (else its type's title).
    pub label: String,
    /// Image names, in result order.
    pub images: Vec<String>,
    /// Video names, in result order.
    pub videos: Vec<String>,
    /// The board the files went to (`None`: uncategorized).
    pub board: Option<String>,
}

impl WorkflowHandle {
    /// The workflow's output nodes (non-intermediate nodes that produce images or videos).
    #[must_use]
    pub fn output_nodes(&self) -> Vec<OutputNode> {
        self.workflow.outputs()
    }

    /// The files each of the workflow's output nodes produced in a completed item, in node
    /// order (nodes that produced nothing are listed with no files).
    ///
    /// # Errors
    /// As [`WorkflowHandle::ensure_completed`].
    pub fn outputs(&self, item: &QueueItem) -> Result<Vec<Output>, HandleError> {
        self.ensure_completed(item)?;
        let produced = item.outputs();
        let run_board = self
            .submissions
            .iter()
            .find(|s| s.batch_id == item.batch_id)
            .and_then(|s| s.board_id.as_deref());
        Ok(self
            .workflow
            .outputs()
            .into_iter()
            .map(|node| {
                let files = produced.get(&node.node_id);
                Output {
                    item_id: item.item_id,
                    board: node.board.resolve(run_board).map(str::to_owned),
                    images: files.map(|f| f.images.clone()).unwrap_or_default(),
                    videos: files.map(|f| f.videos.clone()).unwrap_or_default(),
                    node_id: node.node_id,
                    node_type: node.node_type,
                    label: node.label,
                }
            })
            .collect())
    }

    /// Downloads the output images of every completed item into `dir` (created if needed) as
    /// `ITEM-LABEL.EXT` (`ITEM-LABEL-2.EXT`, ... for further images of a node), under the same
    /// rules as the runner's outputs ([`crate::fs::place`]): each file is written to a temporary
    /// file first and then linked into place under a free name, so nothing is ever overwritten
    /// (an existing name gets a `-N` suffix), and nothing is written through a symbolic link in
    /// `dir` (nor when `dir` itself is one). An image several items share
    /// (cached nodes) is downloaded once. Failed and canceled items have no outputs and are
    /// skipped (with a warning). Returns the files written, in item and node order.
    ///
    /// # Errors
    /// [`HandleError::NotFinished`] when an item has not finished (nothing is downloaded then),
    /// [`HandleError::Place`] for a link in `dir`, or any [`ClientError`].
    ///
    /// [`ClientError`]: crate::client::ClientError
    pub async fn download_outputs(
        &self,
        dir: impl AsRef<Path>,
    ) -> Result<Vec<PathBuf>, HandleError> {
        let dir = dir.as_ref();
        let items = self.items().await?;
        if let Some(running) = items.iter().find(|i| !i.status.is_terminal()) {
            return Err(HandleError::NotFinished {
                workflow: self.name().to_owned(),
                item_id: running.item_id,
                status: running.status.as_str().to_owned(),
            });
        }
        let root = LocalStore::open(dir)?;
        let mut written = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for item in &items {
            let outputs = match self.outputs(item) {
                Ok(outputs) => outputs,
                Err(err) => {
                    tracing::warn!("{err}; it has no outputs to download");
                    continue;
                }
            };
            for output in outputs {
                for (n, image) in output.images.iter().enumerate() {
                    if !seen.insert(image.clone()) {
                        continue;
                    }
                    let stem = if n == 0 {
                        format!("{}-{}", item.item_id, label_file_stem(&output.label))
                    } else {
                        format!(
                            "{}-{}-{}",
                            item.item_id,
                            label_file_stem(&output.label),
                            n + 1
                        )
                    };
                    let ext = Path::new(image)
                        .extension()
                        .and_then(|e| e.to_str())
                        .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()))
                        .unwrap_or("png");
                    written.push(self.download_one(image, &root, &stem, ext).await?);
                }
            }
        }
        Ok(written)
    }

    /// Downloads one image into a file staged in `root`, then commits it under the first free
    /// name `stem.ext`, `stem-1.ext`, ...
    async fn download_one(
        &self,
        image_name: &str,
        root: &LocalStore,
        stem: &str,
        ext: &str,
    ) -> Result<PathBuf, HandleError> {
        let name = Name::new(stem, ext);
        let staged = root.stage(&name.candidate(0))?;
        self.client
            .images()
            .download(image_name, staged.path())
            .await?;
        let rel = root.commit(staged, &name, &[], 0, &HashSet::new())?;
        Ok(root.full_path(&rel))
    }
}

/// The file-name stem of a downloaded output from its node's label: lowercase letters (any
/// script), digits, `-` and `_`; runs of anything else become one `-`; at most 80 characters,
/// `output` when nothing is left. Not the templates' `slug` filter (ASCII only, `_` becomes `-`,
/// as `docs/manifest.md` documents): this one keeps a label readable in its own language.
fn label_file_stem(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    for c in label.chars() {
        if c.is_alphanumeric() || c == '_' {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed: String = out.trim_matches('-').chars().take(80).collect();
    if trimmed.is_empty() {
        "output".to_owned()
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_become_safe_file_names() {
        let cases = [
            ("Blurred copy", "blurred-copy"),
            ("../../etc/passwd", "etc-passwd"),
            ("  ", "output"),
            ("Größe: 2×", "größe-2"),
            ("save_image", "save_image"),
        ];
        for (label, want) in cases {
            assert_eq!(label_file_stem(label), want, "{label:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn downloads_are_placed_without_overwriting_as_the_runner_places_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let existing = dir.path().join("7-out.png");
        fs_err::write(&existing, b"keep me").expect("write");
        let root = LocalStore::open(dir.path()).expect("root");
        let name = Name::new("7-out", "png");
        let staged = root.stage(&name.candidate(0)).expect("staged");
        fs_err::write(staged.path(), b"new").expect("write");
        let first = root
            .commit(staged, &name, &[], 0, &HashSet::new())
            .map(|rel| root.full_path(&rel))
            .expect("placed");
        assert_eq!(first, dir.path().join("7-out-1.png"));
        assert_eq!(fs_err::read(&existing).expect("read"), b"keep me");
        assert_eq!(fs_err::read(&first).expect("read"), b"new");
    }
}

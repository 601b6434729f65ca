//! What can go wrong with a [`WorkflowHandle`].
//!
//! [`WorkflowHandle`]: super::WorkflowHandle

use std::path::PathBuf;
use std::time::Duration;

use crate::client::ClientError;
use crate::workflow::WorkflowError;

/// An error of a [`WorkflowHandle`].
///
/// [`WorkflowHandle`]: super::WorkflowHandle
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// Talking to the server failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The workflow, an input or a value is wrong.
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// A model input given by name could not be resolved against the server's models.
    #[error("workflow `{workflow}`: input `{input}`: cannot use the model `{model}`: {source}")]
    Model {
        /// The workflow's name.
        workflow: String,
        /// The input's system name.
        input: String,
        /// The model name given.
        model: String,
        /// Why (not installed, ambiguous, server error).
        #[source]
        source: Box<ClientError>,
    },
    /// An image file was given for an input that does not take an image.
    #[error(
        "workflow `{workflow}`: input `{input}` takes {ty}, not an image; nothing was uploaded"
    )]
    NotAnImageInput {
        /// The workflow's name.
        workflow: String,
        /// The input's system name.
        input: String,
        /// The input's type.
        ty: String,
    },
    /// The handle has submitted nothing yet.
    #[error("workflow `{workflow}` has not been submitted yet: call `submit` first")]
    NothingSubmitted {
        /// The workflow's name.
        workflow: String,
    },
    /// The wait ended before every item finished.
    #[error(
        "workflow `{workflow}`: {} item(s) still unfinished after {}s: {}; call `cancel()` to \
         stop them, or wait longer",
        unfinished.len(), waited.as_secs_f64(), id_list(unfinished)
    )]
    Timeout {
        /// The workflow's name.
        workflow: String,
        /// How long the wait lasted.
        waited: Duration,
        /// The items that had not finished.
        unfinished: Vec<i64>,
    },
    /// An item failed on the server.
    #[error(
        "workflow `{workflow}`: queue item {item_id} failed on the server: {error_type}: {error_message}"
    )]
    ItemFailed {
        /// The workflow's name.
        workflow: String,
        /// The item.
        item_id: i64,
        /// The server's error type (`ValueError`, `UnknownModelException`, ...).
        error_type: String,
        /// The server's error message.
        error_message: String,
    },
    /// An item was canceled.
    #[error("workflow `{workflow}`: queue item {item_id} was canceled")]
    ItemCanceled {
        /// The workflow's name.
        workflow: String,
        /// The item.
        item_id: i64,
    },
    /// An item has not finished yet.
    #[error(
        "workflow `{workflow}`: queue item {item_id} is still `{status}`; wait for it to finish first"
    )]
    NotFinished {
        /// The workflow's name.
        workflow: String,
        /// The item.
        item_id: i64,
        /// Its status.
        status: String,
    },
    /// Items left the queue (deleted or cleared by someone) before they were seen finishing.
    #[error(
        "workflow `{workflow}`: queue item(s) {} left the queue before finishing (deleted or \
         cleared on the server)",
        id_list(items)
    )]
    Vanished {
        /// The workflow's name.
        workflow: String,
        /// The items.
        items: Vec<i64>,
    },
    /// Clean-up was asked while items still run (they may still need the uploaded images).
    #[error(
        "workflow `{workflow}`: not cleaning up while queue item(s) {} are unfinished; wait for \
         them or `cancel()` them first",
        id_list(items)
    )]
    StillRunning {
        /// The workflow's name.
        workflow: String,
        /// The unfinished items.
        items: Vec<i64>,
    },
    /// A file could not be placed in the download folder (a link there, no free name, ...).
    #[error(transparent)]
    Place(#[from] crate::fs::place::PlaceError),
    /// A local file or folder could not be written.
    #[error("could not {action} `{}`", path.display())]
    File {
        /// The file or folder.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn id_list(ids: &[i64]) -> String {
    const SHOWN: usize = 10;
    let mut text = ids
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        text.push_str(&format!(" and {} more", ids.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_workflow_the_items_and_what_to_do() {
        let shown = [
            HandleError::Timeout {
                workflow: "Blur".into(),
                waited: Duration::from_millis(1500),
                unfinished: (1..=12).collect(),
            },
            HandleError::ItemFailed {
                workflow: "Text to Image".into(),
                item_id: 4,
                error_type: "UnknownModelException".into(),
                error_message: "model not found: made-up-key".into(),
            },
            HandleError::StillRunning {
                workflow: "Blur".into(),
                items: vec![5],
            },
        ]
        .map(|e| e.to_string());
        insta::assert_snapshot!(shown.join("\n"), @r"
        workflow `Blur`: 12 item(s) still unfinished after 1.5s: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more; call `cancel()` to stop them, or wait longer
        workflow `Text to Image`: queue item 4 failed on the server: UnknownModelException: model not found: made-up-key
        workflow `Blur`: not cleaning up while queue item(s) 5 are unfinished; wait for them or `cancel()` them first
        ");
    }
}

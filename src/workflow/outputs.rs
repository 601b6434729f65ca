//! Which nodes produce a workflow's outputs: non-intermediate invocation nodes whose output
//! schema carries an image or a video, and the board each writes to.

use serde::Serialize;
use serde_json::Value;

use super::definition::WorkflowDefinition;
use super::graph::is_batch_or_generator;
use super::schema::SchemaSet;

/// Node types that only pass an existing file through (the web UI ignores them too).
const PASS_THROUGH: [&str; 3] = ["image", "load_image", "video"];

/// Where an output node sends its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "board_id")]
pub enum OutputBoard {
    /// The node has no board input, or it holds no value: no board (unless the run has one).
    Unset,
    /// `auto`: the run's board, or none.
    Auto,
    /// `none`: no board.
    None,
    /// This board.
    Board(String),
}

impl OutputBoard {
    /// The board id the files land on, given the run's board.
    #[must_use]
    pub fn resolve<'a>(&'a self, run_board: Option<&'a str>) -> Option<&'a str> {
        match self {
            OutputBoard::Unset | OutputBoard::Auto => run_board,
            OutputBoard::None => None,
            OutputBoard::Board(id) => Some(id),
        }
    }
}

/// A node whose images or videos are the workflow's outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputNode {
    /// Source node id (look it up in `session.source_prepared_mapping`).
    pub node_id: String,
    /// Invocation type.
    pub node_type: String,
    /// The node's label, else its type's title, else its type.
    pub label: String,
    /// Output fields holding images.
    pub image_fields: Vec<String>,
    /// Output fields holding videos.
    pub video_fields: Vec<String>,
    /// Where the files go.
    pub board: OutputBoard,
}

/// The output nodes of a workflow, in node order.
#[must_use]
pub fn output_nodes(def: &WorkflowDefinition, schemas: &SchemaSet) -> Vec<OutputNode> {
    let mut out = Vec::new();
    for node in def.nodes() {
        let Some(ty) = node.invocation_type() else {
            continue;
        };
        let Some(data) = &node.data else { continue };
        if data.is_intermediate.unwrap_or(false)
            || is_batch_or_generator(ty)
            || PASS_THROUGH.contains(&ty)
        {
            continue;
        }
        let Some(schema) = schemas.invocation(ty) else {
            continue;
        };
        if !schema.produces_files() {
            continue;
        }
        let board = match node.input("board").map(|i| i.get("value")) {
            None | Some(None | Some(Value::Null)) => OutputBoard::Unset,
            Some(Some(Value::String(s))) if s == "auto" => OutputBoard::Auto,
            Some(Some(Value::String(s))) if s == "none" => OutputBoard::None,
            Some(Some(v)) => v
                .get("board_id")
                .and_then(Value::as_str)
                .map_or(OutputBoard::Unset, |id| OutputBoard::Board(id.to_string())),
        };
        let label = node
            .label()
            .map(str::to_string)
            .or_else(|| (!schema.title.is_empty()).then(|| schema.title.clone()))
            .unwrap_or_else(|| ty.to_string());
        out.push(OutputNode {
            node_id: node.id.clone(),
            node_type: ty.to_string(),
            label,
            image_fields: schema.output.image_fields.clone(),
            video_fields: schema.output.video_fields.clone(),
            board,
        });
    }
    out
}

//! What the server executes: the graph and the batch around it (`POST /queue/{id}/enqueue_batch`).
//!
//! These are plain serde types shared by the conversion ([`super::graph`]) and the client.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A graph as the server takes it: nodes keyed by id, each a flat object
/// (`{"id", "type", "is_intermediate", "use_cache", <input>: <value>...}`), and edges.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// Optional graph id; the server makes one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Invocation nodes, keyed by node id (insertion order is kept).
    pub nodes: Map<String, Value>,
    /// Connections from an output field to an input field.
    pub edges: Vec<Edge>,
}

/// One connection of a [`Graph`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Edge {
    /// The node and output field the value comes from.
    pub source: EdgeEnd,
    /// The node and input field the value goes to.
    pub destination: EdgeEnd,
}

/// One end of an [`Edge`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EdgeEnd {
    /// Node id.
    pub node_id: String,
    /// Field name.
    pub field: String,
}

/// One substitution list of a batch: the server sets `node_path.field_name` to each item in turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchDatum {
    /// Node id in the graph.
    pub node_path: String,
    /// Input field of that node.
    pub field_name: String,
    /// The values, one per session (strings, numbers, `{image_name}` objects, or lists of them).
    pub items: Vec<Value>,
}

/// A batch: one graph, expanded by the server into `runs × Π(zip group lengths)` sessions.
/// `data` is a list of zip groups (datums advanced together) combined as a cartesian product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Batch id; always a fresh one (reusing an id mixes old items into the result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// Free-form tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Free-form tag (used to count, cancel and delete a run's items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Zip groups, combined as a product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Vec<Vec<BatchDatum>>>,
    /// The graph every session runs.
    pub graph: Graph,
    /// The workflow, embedded into the output images' metadata as the web UI does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<Value>,
    /// How many times the whole expansion is repeated (at least 1).
    pub runs: u32,
}

impl Batch {
    /// How many sessions the server will make of this batch.
    #[must_use]
    pub fn session_count(&self) -> u64 {
        let product: u64 = self
            .data
            .iter()
            .flatten()
            .map(|group| group.first().map_or(0, |d| d.items.len() as u64))
            .product();
        u64::from(self.runs) * product
    }
}

/// The body of `POST /api/v1/queue/{queue_id}/enqueue_batch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnqueueBatch {
    /// The batch.
    pub batch: Batch,
    /// Put the batch ahead of pending items.
    pub prepend: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datum(n: usize) -> BatchDatum {
        BatchDatum {
            node_path: "n".into(),
            field_name: "f".into(),
            items: vec![Value::Null; n],
        }
    }

    #[test]
    fn session_count_is_runs_times_product_of_zip_groups() {
        let mut b = Batch {
            batch_id: None,
            origin: None,
            destination: None,
            data: None,
            graph: Graph::default(),
            workflow: None,
            runs: 2,
        };
        assert_eq!(b.session_count(), 2);
        b.data = Some(vec![vec![datum(3), datum(3)], vec![datum(4)]]);
        assert_eq!(b.session_count(), 24);
        b.data = Some(vec![vec![datum(0)]]);
        assert_eq!(b.session_count(), 0);
    }
}

//! Conversion of a workflow into what the server executes: the graph (invocation nodes with
//! their values, edges between them) and the batch data of its batch nodes.
//!
//! The graph follows the server's own builder (`build_graph_from_workflow`), which the
//! conformance test runs as an oracle: invocation nodes only (notes, connectors and viewers are
//! skipped), `is_intermediate`/`use_cache` from the node data, every input that has a `value`
//! (the board sentinels `auto`/`none` aside), only `default` edges, connectors resolved to the
//! real source, duplicate edges dropped, and inputs fed by an edge removed. Like the web UI
//! (and unlike the oracle, which refuses them), batch nodes and the generators feeding them do
//! not become graph nodes: they become batch data.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::definition::{WorkflowDefinition, WorkflowNode};
use super::error::WorkflowError;
use super::payload::{BatchDatum, Edge, EdgeEnd, Graph};

/// Batch node types: their items become batch data instead of graph nodes.
pub const BATCH_NODE_TYPES: [&str; 4] = [
    "image_batch",
    "string_batch",
    "integer_batch",
    "float_batch",
];

const CONNECTOR_IN: &str = "in";

/// Options of the conversion.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// The run's board: board inputs set to `auto`, and those of output (non-intermediate)
    /// nodes left without a value, send their images here. Without it they are left out, and
    /// the images have no board.
    pub board: Option<String>,
    /// `Batch.origin`.
    pub origin: Option<String>,
    /// `Batch.destination`.
    pub destination: Option<String>,
    /// `Batch.runs` (at least 1).
    pub runs: u32,
    /// `Batch.batch_id`; when absent the server makes a fresh one (never reuse an id).
    pub batch_id: Option<String>,
    /// Embed the workflow into the batch, as the web UI does (it lands in the images' metadata).
    pub embed_workflow: bool,
    /// Put the batch ahead of pending items.
    pub prepend: bool,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            board: None,
            origin: None,
            destination: None,
            runs: 1,
            batch_id: None,
            embed_workflow: true,
            prepend: false,
        }
    }
}

/// Whether a node type is a batch node or a generator (they feed batch data, not the graph).
#[must_use]
pub fn is_batch_or_generator(node_type: &str) -> bool {
    BATCH_NODE_TYPES.contains(&node_type) || node_type.ends_with("_generator")
}

fn graph_invocation(node: &WorkflowNode) -> Option<(&str, &str)> {
    let data = node.data.as_ref()?;
    if node.kind != "invocation" {
        return None;
    }
    let id = data.id.as_deref().unwrap_or(&node.id);
    let ty = data.kind.as_deref()?;
    (!is_batch_or_generator(ty)).then_some((id, ty))
}

/// Builds the graph of a workflow.
#[must_use]
pub fn build_graph(def: &WorkflowDefinition, board: Option<&str>) -> Graph {
    let mut nodes = Map::new();
    for node in def.nodes() {
        let Some((id, ty)) = graph_invocation(node) else {
            continue;
        };
        let Some(data) = node.data.as_ref() else {
            continue;
        };
        let mut g = Map::new();
        g.insert("id".into(), Value::String(id.to_string()));
        g.insert("type".into(), Value::String(ty.to_string()));
        g.insert(
            "use_cache".into(),
            Value::Bool(data.use_cache.unwrap_or(false)),
        );
        g.insert(
            "is_intermediate".into(),
            Value::Bool(data.is_intermediate.unwrap_or(false)),
        );
        for (field, input) in data.inputs.iter().flatten() {
            let Some(input) = input.as_object() else {
                continue;
            };
            let value = input.get("value");
            if field == "board" {
                match value {
                    Some(Value::String(s)) if s == "none" => continue,
                    Some(Value::String(s)) if s == "auto" => {
                        if let Some(b) = board {
                            g.insert(field.clone(), board_value(b));
                        }
                        continue;
                    }
                    // Without a value, only output (non-intermediate) nodes go to the run's board.
                    None => {
                        if let Some(b) = board
                            && !data.is_intermediate.unwrap_or(false)
                        {
                            g.insert(field.clone(), board_value(b));
                        }
                        continue;
                    }
                    Some(_) => {}
                }
            }
            if let Some(v) = value {
                g.insert(field.clone(), v.clone());
            }
        }
        nodes.insert(id.to_string(), Value::Object(g));
    }

    let mut edges = Vec::new();
    let mut seen = HashSet::new();
    for edge in def.edges().iter().filter(|e| e.is_default()) {
        let (Some(source_handle), Some(target_handle)) = (&edge.source_handle, &edge.target_handle)
        else {
            continue;
        };
        let Some(target) = def.node(&edge.target) else {
            continue;
        };
        if graph_invocation(target).is_none() {
            continue;
        }
        let Some(source) = def.node(&edge.source) else {
            continue;
        };
        let resolved = if source.is_invocation() {
            Some((source.id.as_str(), source_handle.as_str()))
        } else if source.is_connector() {
            resolve_connector(def, &source.id)
        } else {
            None
        };
        let Some((source_id, source_field)) = resolved else {
            continue;
        };
        // Edges from batch nodes become batch data.
        if def
            .node(source_id)
            .and_then(WorkflowNode::invocation_type)
            .is_some_and(is_batch_or_generator)
        {
            continue;
        }
        let e = Edge {
            source: EdgeEnd {
                node_id: source_id.to_string(),
                field: source_field.to_string(),
            },
            destination: EdgeEnd {
                node_id: target.id.clone(),
                field: target_handle.clone(),
            },
        };
        if seen.insert(e.clone()) {
            edges.push(e);
        }
    }
    for e in &edges {
        if let Some(Value::Object(node)) = nodes.get_mut(&e.destination.node_id) {
            node.remove(&e.destination.field);
        }
    }
    Graph {
        id: None,
        nodes,
        edges,
    }
}

fn board_value(board_id: &str) -> Value {
    let mut m = Map::new();
    m.insert("board_id".into(), Value::String(board_id.to_string()));
    Value::Object(m)
}

/// Follows a connector's incoming edge (through chained connectors) to the invocation output
/// that feeds it.
fn resolve_connector<'a>(
    def: &'a WorkflowDefinition,
    connector: &str,
) -> Option<(&'a str, &'a str)> {
    let mut visited = HashSet::new();
    let mut current = connector.to_string();
    loop {
        if !visited.insert(current.clone()) {
            return None;
        }
        let incoming =
            def.edges().iter().filter(|e| e.is_default()).find(|e| {
                e.target == current && e.target_handle.as_deref() == Some(CONNECTOR_IN)
            })?;
        let source = def.node(&incoming.source)?;
        if source.is_invocation() {
            return Some((source.id.as_str(), incoming.source_handle.as_deref()?));
        }
        if !source.is_connector() {
            return None;
        }
        current = source.id.clone();
    }
}

/// The invocation inputs an edge from `source` (through connectors) reaches: `(node, field)`.
fn targets_of(def: &WorkflowDefinition, source: &str, handle: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut visited = HashSet::new();
    let mut stack = vec![(source.to_string(), Some(handle.to_string()))];
    while let Some((from, from_handle)) = stack.pop() {
        if !visited.insert(from.clone()) {
            continue;
        }
        for e in def
            .edges()
            .iter()
            .filter(|e| e.is_default() && e.source == from)
        {
            if let Some(h) = &from_handle
                && e.source_handle.as_deref() != Some(h.as_str())
            {
                continue;
            }
            let Some(target) = def.node(&e.target) else {
                continue;
            };
            if target.is_connector() {
                stack.push((target.id.clone(), None));
            } else if graph_invocation(target).is_some()
                && let Some(th) = &e.target_handle
            {
                out.push((target.id.clone(), th.clone()));
            }
        }
    }
    out
}

/// The batch data of the workflow's batch nodes, as the web UI builds it: batch nodes in the
/// same `batch_group_id` are zipped into one group; each node of group `None` is a group of
/// its own; groups are combined as a product by the server. `None` when there are no batch
/// nodes.
///
/// # Errors
/// [`WorkflowError::Batch`] when a batch node has no items, a generator needs the server
/// (dynamic prompts, images from a board), or zipped nodes have different lengths.
pub fn batch_data(def: &WorkflowDefinition) -> Result<Option<Vec<Vec<BatchDatum>>>, WorkflowError> {
    let mut groups: Vec<(String, Vec<BatchDatum>, Vec<String>)> = Vec::new();
    let mut data = Vec::new();
    let mut any = false;
    for node in def.nodes() {
        let Some(ty) = node.invocation_type() else {
            continue;
        };
        if !BATCH_NODE_TYPES.contains(&ty) {
            continue;
        }
        any = true;
        let items = batch_items(def, node, ty)?;
        if items.is_empty() {
            return Err(batch_err(&node.id, "it has no items"));
        }
        let handle = if ty == "image_batch" {
            "image"
        } else {
            "value"
        };
        let datums: Vec<BatchDatum> = targets_of(def, &node.id, handle)
            .into_iter()
            .map(|(node_path, field_name)| BatchDatum {
                node_path,
                field_name,
                items: items.clone(),
            })
            .collect();
        if datums.is_empty() {
            continue;
        }
        let group = node
            .input("batch_group_id")
            .and_then(|i| i.get("value"))
            .and_then(Value::as_str)
            .unwrap_or("None")
            .to_string();
        if group == "None" {
            data.push(datums);
        } else if let Some((_, g, members)) = groups.iter_mut().find(|(name, _, _)| *name == group)
        {
            let expected = g.first().map_or(0, |d| d.items.len());
            if expected != items.len() {
                return Err(batch_err(
                    &node.id,
                    &format!(
                        "it has {} items but `{}` of the same batch group `{group}` has {expected}; zipped batch nodes need the same number",
                        items.len(),
                        members.first().map_or("", String::as_str)
                    ),
                ));
            }
            g.extend(datums);
            members.push(node.id.clone());
        } else {
            groups.push((group, datums, vec![node.id.clone()]));
        }
    }
    data.extend(groups.into_iter().map(|(_, g, _)| g));
    Ok(any.then_some(data))
}

fn batch_err(node_id: &str, message: &str) -> WorkflowError {
    WorkflowError::Batch {
        node_id: node_id.to_string(),
        message: message.to_string(),
    }
}

fn batch_items(
    def: &WorkflowDefinition,
    node: &WorkflowNode,
    ty: &str,
) -> Result<Vec<Value>, WorkflowError> {
    let field = match ty {
        "image_batch" => "images",
        "string_batch" => "strings",
        "integer_batch" => "integers",
        _ => "floats",
    };
    let fed_by = def
        .edges()
        .iter()
        .filter(|e| e.is_default())
        .find(|e| e.target == node.id && e.target_handle.as_deref() == Some(field));
    if let Some(edge) = fed_by {
        let generator = def
            .node(&edge.source)
            .ok_or_else(|| batch_err(&node.id, "its generator is missing"))?;
        let spec = generator
            .input("generator")
            .and_then(|i| i.get("value"))
            .ok_or_else(|| {
                batch_err(
                    &node.id,
                    &format!(
                        "`{field}` is fed by `{}`, which is not a generator",
                        generator.id
                    ),
                )
            })?;
        return super::generators::generate(spec)
            .map_err(|e| batch_err(&node.id, &format!("generator `{}`: {e}", generator.id)));
    }
    Ok(match node.input(field).and_then(|i| i.get("value")) {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(nodes: Value, edges: Value) -> WorkflowDefinition {
        WorkflowDefinition::from_json_value(
            json!({"name": "t", "nodes": nodes, "edges": edges}),
            "t.json",
        )
        .expect("valid")
    }

    fn inv(id: &str, ty: &str, inputs: Value) -> Value {
        json!({"id": id, "type": "invocation", "data": {"id": id, "type": ty, "inputs": inputs,
               "isIntermediate": true, "useCache": true}})
    }

    fn edge(s: &str, sh: &str, t: &str, th: &str) -> Value {
        json!({"id": format!("{s}{sh}-{t}{th}"), "type": "default", "source": s, "sourceHandle": sh,
               "target": t, "targetHandle": th})
    }

    #[test]
    fn connectors_resolve_and_fed_inputs_and_board_sentinels_are_dropped() {
        let d = def(
            json!([
                inv("a", "integer", json!({"value": {"name": "value", "label": "", "value": 3}})),
                {"id": "c1", "type": "connector", "data": {"id": "c1"}},
                {"id": "c2", "type": "connector", "data": {"id": "c2"}},
                inv("b", "add", json!({"a": {"name": "a", "value": 9}, "b": {"name": "b", "value": 1},
                                       "board": {"name": "board", "value": "auto"}})),
                {"id": "n", "type": "notes", "data": {"id": "n", "type": "notes", "notes": ""}}
            ]),
            json!([
                edge("a", "value", "c1", "in"), edge("c1", "out", "c2", "in"), edge("c2", "out", "b", "a"),
                edge("c2", "out", "b", "a"),
                {"id": "x", "type": "collapsed", "source": "a", "target": "b"}
            ]),
        );
        let g = build_graph(&d, None);
        assert_eq!(
            serde_json::to_value(&g).expect("json"),
            json!({"nodes": {
                "a": {"id": "a", "type": "integer", "use_cache": true, "is_intermediate": true, "value": 3},
                "b": {"id": "b", "type": "add", "use_cache": true, "is_intermediate": true, "b": 1}},
             "edges": [{"source": {"node_id": "a", "field": "value"}, "destination": {"node_id": "b", "field": "a"}}]})
        );
        let g = build_graph(&d, Some("board-1"));
        assert_eq!(g.nodes["b"]["board"], json!({"board_id": "board-1"}));
    }

    #[test]
    fn batch_nodes_become_zipped_and_product_groups() {
        let d = def(
            json!([
                inv(
                    "s",
                    "string_batch",
                    json!({"strings": {"name": "strings", "value": ["x", "y"]},
                                                "batch_group_id": {"name": "batch_group_id", "value": "Group 1"}})
                ),
                inv(
                    "i",
                    "integer_batch",
                    json!({"integers": {"name": "integers", "value": [1, 2]},
                                                 "batch_group_id": {"name": "batch_group_id", "value": "Group 1"}})
                ),
                inv(
                    "f",
                    "float_batch",
                    json!({"floats": {"name": "floats", "value": [0.5]},
                                               "batch_group_id": {"name": "batch_group_id", "value": "None"}})
                ),
                inv(
                    "t",
                    "string_join",
                    json!({"string_left": {"name": "string_left", "value": ""}})
                ),
                inv("m", "float_math", json!({})),
                inv("r", "add", json!({}))
            ]),
            json!([
                edge("s", "value", "t", "string_left"),
                edge("i", "value", "r", "a"),
                edge("f", "value", "m", "a")
            ]),
        );
        let g = build_graph(&d, None);
        assert_eq!(g.nodes.keys().collect::<Vec<_>>(), ["t", "m", "r"]);
        assert!(g.edges.is_empty());
        let data = batch_data(&d).expect("ok").expect("some");
        let shape: Vec<Vec<(String, String, usize)>> = data
            .iter()
            .map(|g| {
                g.iter()
                    .map(|d| (d.node_path.clone(), d.field_name.clone(), d.items.len()))
                    .collect()
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                vec![("m".into(), "a".into(), 1)],
                vec![
                    ("t".into(), "string_left".into(), 2),
                    ("r".into(), "a".into(), 2)
                ]
            ]
        );
    }

    #[test]
    fn zipped_batch_nodes_of_different_lengths_are_refused() {
        let d = def(
            json!([
                inv(
                    "s",
                    "string_batch",
                    json!({"strings": {"value": ["x", "y"]}, "batch_group_id": {"value": "Group 1"}})
                ),
                inv(
                    "i",
                    "integer_batch",
                    json!({"integers": {"value": [1]}, "batch_group_id": {"value": "Group 1"}})
                ),
                inv("t", "string_join", json!({})),
                inv("r", "add", json!({}))
            ]),
            json!([
                edge("s", "value", "t", "string_left"),
                edge("i", "value", "r", "a")
            ]),
        );
        let e = batch_data(&d).expect_err("mismatch").to_string();
        assert_eq!(
            e,
            "batch node `i`: it has 1 items but `s` of the same batch group `Group 1` has 2; zipped batch nodes need the same number"
        );
    }
}

//! The workflow file the InvokeAI web UI exports, as a serde model that keeps every field it
//! does not know, so a loaded workflow writes back unchanged and can be embedded in submissions.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::WorkflowError;

/// The text fields of a workflow the server requires to be strings (`WorkflowWithoutID`): an
/// exported workflow may leave them out or `null`; the server refuses it then.
pub const TEXT_FIELDS: [&str; 7] = [
    "name",
    "author",
    "description",
    "version",
    "contact",
    "tags",
    "notes",
];

/// A workflow as exported from the InvokeAI web UI (`name`, `author`, `nodes`, `edges`, `form`,
/// legacy `exposedFields`, ...). Fields this model does not name are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowDefinition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notes: Option<String>,
    #[serde(
        rename = "exposedFields",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    exposed_fields: Option<Vec<FieldIdentifier>>,
    nodes: Vec<WorkflowNode>,
    edges: Vec<WorkflowEdge>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    form: Option<Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
    /// Where the workflow came from (file path or a label); not part of the JSON.
    #[serde(skip)]
    source: String,
    /// The nodes by id, built when first asked (a lookup per edge stays linear in all).
    #[serde(skip)]
    by_id: NodeIndex,
}

/// Node id → position of its first node in `nodes`, built once. Not part of what a workflow
/// is: two workflows are equal whether or not their index was built yet.
#[derive(Debug, Clone, Default)]
struct NodeIndex(std::sync::OnceLock<std::collections::HashMap<String, usize>>);

impl PartialEq for NodeIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// One node of the editor: an invocation, a note, a connector (a reroute point) or the
/// current-image viewer. Only invocations become graph nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowNode {
    /// Node id (equal to `data.id` for invocations).
    pub id: String,
    /// `invocation`, `notes`, `connector` or `current_image`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The node's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<NodeData>,
    /// Everything else (position, size, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl WorkflowNode {
    /// Whether this node is an invocation (becomes a graph node).
    #[must_use]
    pub fn is_invocation(&self) -> bool {
        self.kind == "invocation" && self.data.is_some()
    }

    /// Whether this node is a connector (a reroute point edges pass through).
    #[must_use]
    pub fn is_connector(&self) -> bool {
        self.kind == "connector"
    }

    /// The invocation type (`data.type`), for invocation nodes.
    #[must_use]
    pub fn invocation_type(&self) -> Option<&str> {
        if self.kind == "invocation" {
            self.data.as_ref()?.kind.as_deref()
        } else {
            None
        }
    }

    /// The node's label, if it has a non-empty one.
    #[must_use]
    pub fn label(&self) -> Option<&str> {
        self.data
            .as_ref()?
            .label
            .as_deref()
            .filter(|l| !l.is_empty())
    }

    /// The input `field` of this node (`data.inputs[field]`).
    #[must_use]
    pub fn input(&self, field: &str) -> Option<&Map<String, Value>> {
        self.data.as_ref()?.inputs.as_ref()?.get(field)?.as_object()
    }
}

/// The `data` of a node. For invocations: `id`, `type`, `label`, `inputs`,
/// `isIntermediate`, `useCache`; everything else is kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeData {
    /// Node id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Invocation type (`save_image`, ...) or `notes`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The label the user gave the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Input fields: `{field: {name, label, value?}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Map<String, Value>>,
    /// Whether the node's outputs are intermediate (hidden, deleted with intermediates).
    #[serde(
        rename = "isIntermediate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub is_intermediate: Option<bool>,
    /// Whether the server may answer from its invocation cache.
    #[serde(rename = "useCache", default, skip_serializing_if = "Option::is_none")]
    pub use_cache: Option<bool>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An edge of the editor. `type` is `default` (a real connection) or `collapsed` (drawn for a
/// collapsed node; it carries no handles and is ignored by the conversion).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowEdge {
    /// `default` or `collapsed`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Source node id.
    pub source: String,
    /// Target node id.
    pub target: String,
    /// Source output field.
    #[serde(
        rename = "sourceHandle",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_handle: Option<String>,
    /// Target input field.
    #[serde(
        rename = "targetHandle",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub target_handle: Option<String>,
    /// Everything else (`id`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl WorkflowEdge {
    /// Whether this is a real connection (`type: default`).
    #[must_use]
    pub fn is_default(&self) -> bool {
        self.kind.as_deref() == Some("default")
    }
}

/// A node field (`{nodeId, fieldName}`), as in `exposedFields` and form node-field elements.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldIdentifier {
    /// Node id.
    #[serde(rename = "nodeId")]
    pub node_id: String,
    /// Input field name.
    #[serde(rename = "fieldName")]
    pub field_name: String,
}

/// The largest workflow file read: the web UI's exports are kilobytes (the largest bundled one
/// is 27 KB); anything near this is not a workflow someone drew.
pub const MAX_WORKFLOW_BYTES: u64 = 16 << 20;

/// The most nodes, and the most edges, a workflow may have (the web UI's largest are a few
/// hundred).
pub const MAX_WORKFLOW_NODES: usize = 10_000;

impl WorkflowDefinition {
    /// Reads and checks a workflow file.
    ///
    /// # Errors
    /// [`WorkflowError::Read`] when the file cannot be read, [`WorkflowError::TooLarge`] when it
    /// is larger than [`MAX_WORKFLOW_BYTES`] (refused before it is parsed),
    /// [`WorkflowError::Parse`] or [`WorkflowError::Invalid`] (naming the file and the JSON
    /// path) when it is not a workflow.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, WorkflowError> {
        use std::io::Read;
        let path = path.as_ref();
        let read = |source| WorkflowError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = fs_err::File::open(path).map_err(read)?;
        let mut text = String::new();
        file.take(MAX_WORKFLOW_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read)?;
        if text.len() as u64 > MAX_WORKFLOW_BYTES {
            return Err(WorkflowError::TooLarge {
                path: path.to_path_buf(),
                limit_mib: MAX_WORKFLOW_BYTES >> 20,
            });
        }
        Self::from_json_str(&text, &path.display().to_string())
    }

    /// Parses and checks a workflow from JSON text; `source` names it in errors.
    ///
    /// # Errors
    /// [`WorkflowError::Parse`] or [`WorkflowError::Invalid`], naming `source` and the JSON path.
    pub fn from_json_str(text: &str, source: &str) -> Result<Self, WorkflowError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let mut def: WorkflowDefinition =
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let json_path = e.path().to_string();
                WorkflowError::Parse {
                    source_name: source.to_string(),
                    json_path,
                    message: e.into_inner().to_string(),
                }
            })?;
        de.end().map_err(|e| WorkflowError::Parse {
            source_name: source.to_string(),
            json_path: ".".to_string(),
            message: e.to_string(),
        })?;
        def.source = source.to_string();
        def.check()?;
        Ok(def)
    }

    /// Parses and checks a workflow from a JSON value; `source` names it in errors.
    ///
    /// # Errors
    /// As [`WorkflowDefinition::from_json_str`].
    pub fn from_json_value(value: Value, source: &str) -> Result<Self, WorkflowError> {
        let mut def: WorkflowDefinition = serde_path_to_error::deserialize(value).map_err(|e| {
            let json_path = e.path().to_string();
            WorkflowError::Parse {
                source_name: source.to_string(),
                json_path,
                message: e.into_inner().to_string(),
            }
        })?;
        def.source = source.to_string();
        def.check()?;
        Ok(def)
    }

    /// The workflow as JSON, with every field it was loaded with.
    #[must_use]
    pub fn to_json(&self) -> Value {
        // Serialising plain maps, strings and numbers cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Where the workflow was loaded from (a path or the `source` given).
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The workflow's name (empty when absent).
    #[must_use]
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// The workflow's author.
    #[must_use]
    pub fn author(&self) -> &str {
        self.author.as_deref().unwrap_or_default()
    }

    /// The workflow's description.
    #[must_use]
    pub fn description(&self) -> &str {
        self.description.as_deref().unwrap_or_default()
    }

    /// The workflow's own version string (not the format version in `meta`).
    #[must_use]
    pub fn version(&self) -> &str {
        self.version.as_deref().unwrap_or_default()
    }

    /// The tags, as written (one comma-separated string).
    #[must_use]
    pub fn tags(&self) -> &str {
        self.tags.as_deref().unwrap_or_default()
    }

    /// The workflow's notes.
    #[must_use]
    pub fn notes(&self) -> &str {
        self.notes.as_deref().unwrap_or_default()
    }

    /// The nodes, in file order.
    #[must_use]
    pub fn nodes(&self) -> &[WorkflowNode] {
        &self.nodes
    }

    /// The edges, in file order.
    #[must_use]
    pub fn edges(&self) -> &[WorkflowEdge] {
        &self.edges
    }

    /// The node with this id.
    #[must_use]
    pub fn node(&self, id: &str) -> Option<&WorkflowNode> {
        let index = self.by_id.0.get_or_init(|| {
            let mut index = std::collections::HashMap::with_capacity(self.nodes.len());
            for (i, node) in self.nodes.iter().enumerate() {
                index.entry(node.id.clone()).or_insert(i);
            }
            index
        });
        index.get(id).and_then(|&i| self.nodes.get(i))
    }

    /// The legacy `exposedFields` list (empty when absent).
    #[must_use]
    pub fn exposed_fields(&self) -> &[FieldIdentifier] {
        self.exposed_fields.as_deref().unwrap_or_default()
    }

    /// The form (`{elements, rootElementId}`), if the workflow has one.
    #[must_use]
    pub fn form(&self) -> Option<&Map<String, Value>> {
        self.form.as_ref()?.as_object()
    }

    /// Other top-level fields (`id`, `meta`, `contact`, ...).
    #[must_use]
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }

    /// Sets `data.inputs[field].value` of an invocation node (creating the input entry when
    /// missing). Returns false when there is no such invocation node.
    pub(crate) fn set_input_value(&mut self, node_id: &str, field: &str, value: Value) -> bool {
        let Some(node) = self.nodes.iter_mut().find(|n| n.id == node_id) else {
            return false;
        };
        let Some(data) = node.data.as_mut() else {
            return false;
        };
        let inputs = data.inputs.get_or_insert_with(Map::new);
        let entry = inputs.entry(field.to_string()).or_insert_with(|| {
            let mut m = Map::new();
            m.insert("name".into(), Value::String(field.to_string()));
            m.insert("label".into(), Value::String(String::new()));
            Value::Object(m)
        });
        match entry.as_object_mut() {
            Some(obj) => {
                obj.insert("value".into(), value);
                true
            }
            None => false,
        }
    }

    fn invalid(&self, json_path: impl Into<String>, message: impl Into<String>) -> WorkflowError {
        WorkflowError::Invalid {
            source_name: self.source.clone(),
            json_path: json_path.into(),
            message: message.into(),
        }
    }

    /// Structural checks serde cannot do: unique node ids, invocation nodes with a type and
    /// object inputs, edges between existing nodes, form elements pointing to existing nodes,
    /// fields and elements.
    fn check(&self) -> Result<(), WorkflowError> {
        for (what, count) in [("nodes", self.nodes.len()), ("edges", self.edges.len())] {
            if count > MAX_WORKFLOW_NODES {
                return Err(self.invalid(
                    what,
                    format!(
                        "the workflow has {count} {what}, more than {MAX_WORKFLOW_NODES}, the limit; a workflow drawn in the web UI has a few hundred at most"
                    ),
                ));
            }
        }
        let mut ids = HashSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if !ids.insert(node.id.as_str()) {
                return Err(self.invalid(
                    format!("nodes[{i}].id"),
                    format!("node id `{}` repeats", node.id),
                ));
            }
            if node.kind != "invocation" {
                continue;
            }
            let Some(data) = &node.data else {
                return Err(self.invalid(format!("nodes[{i}]"), "invocation node has no `data`"));
            };
            if data.kind.as_deref().is_none_or(str::is_empty) {
                return Err(
                    self.invalid(format!("nodes[{i}].data"), "invocation node has no `type`")
                );
            }
            if let Some(data_id) = &data.id
                && data_id != &node.id
            {
                return Err(self.invalid(
                    format!("nodes[{i}].data.id"),
                    format!("`{data_id}` differs from the node's id `{}`", node.id),
                ));
            }
            for (field, input) in data.inputs.iter().flatten() {
                if !input.is_object() {
                    return Err(self.invalid(
                        format!("nodes[{i}].data.inputs.{field}"),
                        "expected an object `{name, label, value}`",
                    ));
                }
            }
        }
        for (i, edge) in self.edges.iter().enumerate() {
            for (end, id) in [("source", &edge.source), ("target", &edge.target)] {
                if !ids.contains(id.as_str()) {
                    return Err(self.invalid(
                        format!("edges[{i}].{end}"),
                        format!("no node has the id `{id}`"),
                    ));
                }
            }
        }
        self.check_form()
    }

    fn check_form(&self) -> Result<(), WorkflowError> {
        let Some(form) = &self.form else {
            return Ok(());
        };
        if form.is_null() {
            return Ok(());
        }
        let Some(form) = form.as_object() else {
            return Err(self.invalid("form", "expected an object `{elements, rootElementId}`"));
        };
        let elements = match form.get("elements") {
            Some(Value::Object(e)) => e,
            None => return Ok(()),
            Some(_) => {
                return Err(self.invalid("form.elements", "expected an object of elements by id"));
            }
        };
        match form.get("rootElementId") {
            Some(Value::String(root)) if elements.contains_key(root) => {}
            Some(Value::String(root)) => {
                return Err(self.invalid(
                    "form.rootElementId",
                    format!("no form element has the id `{root}`"),
                ));
            }
            _ if elements.is_empty() => {}
            _ => {
                return Err(
                    self.invalid("form.rootElementId", "expected the id of the root element")
                );
            }
        }
        for (id, element) in elements {
            let path = format!("form.elements.{id}");
            let Some(element) = element.as_object() else {
                return Err(self.invalid(path, "expected an object"));
            };
            let data = element.get("data").and_then(Value::as_object);
            if let Some(children) = data.and_then(|d| d.get("children")) {
                let Some(children) = children.as_array() else {
                    return Err(self.invalid(
                        format!("{path}.data.children"),
                        "expected a list of element ids",
                    ));
                };
                for (k, child) in children.iter().enumerate() {
                    match child.as_str() {
                        Some(c) if elements.contains_key(c) => {}
                        Some(c) => {
                            return Err(self.invalid(
                                format!("{path}.data.children[{k}]"),
                                format!("no form element has the id `{c}`"),
                            ));
                        }
                        None => {
                            return Err(self.invalid(
                                format!("{path}.data.children[{k}]"),
                                "expected an element id",
                            ));
                        }
                    }
                }
            }
            if element.get("type").and_then(Value::as_str) == Some("node-field") {
                let ident = data
                    .and_then(|d| d.get("fieldIdentifier"))
                    .cloned()
                    .unwrap_or(Value::Null);
                let ident: FieldIdentifier = serde_json::from_value(ident).map_err(|e| {
                    self.invalid(
                        format!("{path}.data.fieldIdentifier"),
                        format!("expected `{{nodeId, fieldName}}`: {e}"),
                    )
                })?;
                self.check_field(&format!("{path}.data.fieldIdentifier"), &ident)?;
            }
        }
        Ok(())
    }

    /// A field identifier must name an existing node and one of its inputs.
    pub(crate) fn check_field(
        &self,
        path: &str,
        ident: &FieldIdentifier,
    ) -> Result<(), WorkflowError> {
        let Some(node) = self.node(&ident.node_id) else {
            return Err(self.invalid(
                format!("{path}.nodeId"),
                format!("no node has the id `{}`", ident.node_id),
            ));
        };
        if node.input(&ident.field_name).is_none() {
            return Err(self.invalid(
                format!("{path}.fieldName"),
                format!(
                    "node `{}` has no input `{}`",
                    ident.node_id, ident.field_name
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_workflow_with_more_nodes_than_the_limit_is_refused_at_nodes() {
        let nodes: Vec<_> = (0..=MAX_WORKFLOW_NODES)
            .map(|i| serde_json::json!({"id": format!("n{i}"), "type": "notes", "data": {}}))
            .collect();
        let text = serde_json::json!({"nodes": nodes, "edges": []}).to_string();
        let e = WorkflowDefinition::from_json_str(&text, "big.json").expect_err("too many");
        assert_eq!(
            e.to_string(),
            "`big.json` is not a valid workflow: at `nodes`: the workflow has 10001 nodes, more than 10000, the limit; a workflow drawn in the web UI has a few hundred at most"
        );
    }

    use super::*;

    const SMALL: &str = r#"{
        "id": "x", "name": "small", "author": "me", "description": "d", "version": "1.0",
        "contact": "", "tags": "a, b", "notes": "n", "exposedFields": [],
        "meta": {"version": "3.0.0", "category": "user"}, "somethingNew": [1, 2.5, {"k": null}],
        "nodes": [
          {"id": "a", "type": "invocation", "position": {"x": 1.25, "y": 2},
           "data": {"id": "a", "type": "integer", "label": "", "isOpen": true, "version": "1.0.1",
                    "inputs": {"value": {"name": "value", "label": "Count", "value": 3}},
                    "isIntermediate": true, "useCache": true}},
          {"id": "b", "type": "invocation", "position": {"x": 0, "y": 0},
           "data": {"id": "b", "type": "add", "label": "", "inputs": {"a": {"name": "a", "label": ""}},
                    "isIntermediate": false, "useCache": true}},
          {"id": "n", "type": "notes", "data": {"id": "n", "type": "notes", "notes": "hi"}, "position": {"x": 0, "y": 0}}
        ],
        "edges": [{"id": "e", "type": "default", "source": "a", "sourceHandle": "value", "target": "b", "targetHandle": "a"}]
    }"#;

    #[test]
    fn accessors_and_round_trip_keep_unknown_fields() {
        let def = WorkflowDefinition::from_json_str(SMALL, "small.json").expect("loads");
        assert_eq!(def.name(), "small");
        assert_eq!(def.author(), "me");
        assert_eq!(def.tags(), "a, b");
        assert_eq!(def.nodes().len(), 3);
        assert_eq!(def.edges().len(), 1);
        let original: Value = serde_json::from_str(SMALL).expect("json");
        assert_eq!(def.to_json(), original);
    }

    fn err(text: &str) -> String {
        WorkflowDefinition::from_json_str(text, "bad.json")
            .expect_err("must fail")
            .to_string()
    }

    #[test]
    fn malformed_input_names_the_file_and_the_json_path() {
        assert_eq!(
            err("not json"),
            "`bad.json` is not a valid workflow: at `.`: expected ident at line 1 column 2"
        );
        assert_eq!(
            err(r#"{"nodes": [{"id": 3, "type": "invocation"}], "edges": []}"#),
            "`bad.json` is not a valid workflow: at `nodes[0].id`: invalid type: integer `3`, expected a string at line 1 column 19"
        );
        assert_eq!(
            err(r#"{"nodes": [], "edges": [{"source": "a", "target": "b"}]}"#),
            "`bad.json` is not a valid workflow: at `edges[0].source`: no node has the id `a`"
        );
        assert!(err(r#"{"nodes": []}"#).contains("missing field `edges`"));
    }

    #[test]
    fn form_elements_must_point_to_existing_nodes_and_fields() {
        let mut v: Value = serde_json::from_str(SMALL).expect("json");
        v["form"] = serde_json::json!({"rootElementId": "root", "elements": {
            "root": {"id": "root", "type": "container", "data": {"layout": "column", "children": ["f"]}},
            "f": {"id": "f", "type": "node-field", "data": {"fieldIdentifier": {"nodeId": "a", "fieldName": "nope"}}}
        }});
        let e = WorkflowDefinition::from_json_value(v.clone(), "w.json")
            .expect_err("bad field")
            .to_string();
        assert_eq!(
            e,
            "`w.json` is not a valid workflow: at `form.elements.f.data.fieldIdentifier.fieldName`: node `a` has no input `nope`"
        );
        v["form"]["elements"]["f"]["data"]["fieldIdentifier"]["nodeId"] = "zz".into();
        let e = WorkflowDefinition::from_json_value(v.clone(), "w.json")
            .expect_err("bad node")
            .to_string();
        assert!(
            e.ends_with(
                "at `form.elements.f.data.fieldIdentifier.nodeId`: no node has the id `zz`"
            ),
            "{e}"
        );
        v["form"]["elements"]["root"]["data"]["children"] = serde_json::json!(["gone"]);
        let e = WorkflowDefinition::from_json_value(v, "w.json")
            .expect_err("bad child")
            .to_string();
        assert!(e.contains("no form element has the id `gone`"), "{e}");
    }

    #[test]
    fn repeated_node_ids_are_refused() {
        let mut v: Value = serde_json::from_str(SMALL).expect("json");
        v["nodes"][1]["id"] = "a".into();
        v["nodes"][1]["data"]["id"] = "a".into();
        let e = WorkflowDefinition::from_json_value(v, "w.json")
            .expect_err("dup")
            .to_string();
        assert!(e.contains("at `nodes[1].id`: node id `a` repeats"), "{e}");
    }
}

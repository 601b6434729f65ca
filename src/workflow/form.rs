//! Which node fields are the workflow's inputs, in order: depth-first over the form's element
//! tree (containers in child order; headings, text and dividers skipped), or, for older exports
//! without form fields, the legacy `exposedFields` list.

use std::collections::HashSet;

use serde_json::Value;

use super::definition::{FieldIdentifier, WorkflowDefinition};
use super::error::WorkflowError;

/// The workflow's input fields, in form order, each once.
///
/// # Errors
/// [`WorkflowError::Invalid`] when an `exposedFields` entry (used when the form has no fields)
/// names a missing node or field.
pub fn input_fields(def: &WorkflowDefinition) -> Result<Vec<FieldIdentifier>, WorkflowError> {
    let from_form = form_fields(def);
    if !from_form.is_empty() {
        return Ok(from_form);
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, f) in def.exposed_fields().iter().enumerate() {
        def.check_field(&format!("exposedFields[{i}]"), f)?;
        if seen.insert(f.clone()) {
            out.push(f.clone());
        }
    }
    Ok(out)
}

/// The node-field elements of the form, depth-first from the root, in child order.
fn form_fields(def: &WorkflowDefinition) -> Vec<FieldIdentifier> {
    let Some(form) = def.form() else {
        return Vec::new();
    };
    let (Some(elements), Some(root)) = (
        form.get("elements").and_then(Value::as_object),
        form.get("rootElementId").and_then(Value::as_str),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen_fields = HashSet::new();
    let mut visited = HashSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        if !visited.insert(id) {
            continue;
        }
        let Some(element) = elements.get(id) else {
            continue;
        };
        let data = element.get("data");
        if element.get("type").and_then(Value::as_str) == Some("node-field")
            && let Some(ident) = data
                .and_then(|d| d.get("fieldIdentifier"))
                .and_then(|f| serde_json::from_value::<FieldIdentifier>(f.clone()).ok())
            && seen_fields.insert(ident.clone())
        {
            out.push(ident);
        }
        if let Some(children) = data
            .and_then(|d| d.get("children"))
            .and_then(Value::as_array)
        {
            stack.extend(children.iter().rev().filter_map(Value::as_str));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn workflow(form: Value, exposed: Value) -> WorkflowDefinition {
        let node = |id: &str| {
            json!({"id": id, "type": "invocation", "data": {"id": id, "type": "integer",
                   "inputs": {"value": {"name": "value", "label": ""}}}})
        };
        let v = json!({"name": "w", "nodes": [node("a"), node("b"), node("c"), node("d")], "edges": [],
                       "exposedFields": exposed, "form": form});
        WorkflowDefinition::from_json_value(v, "w.json").expect("valid")
    }

    fn field(id: &str, node: &str) -> Value {
        json!({"id": id, "type": "node-field", "data": {"fieldIdentifier": {"nodeId": node, "fieldName": "value"}}})
    }

    #[test]
    fn form_order_is_depth_first_in_child_order() {
        let form = json!({"rootElementId": "root", "elements": {
            "root": {"id": "root", "type": "container", "data": {"children": ["h", "c1", "fd", "div"]}},
            "h": {"id": "h", "type": "heading", "data": {"content": "Title"}},
            "div": {"id": "div", "type": "divider"},
            "c1": {"id": "c1", "type": "container", "data": {"children": ["fb", "c2"]}},
            "c2": {"id": "c2", "type": "container", "data": {"children": ["t", "fa"]}},
            "t": {"id": "t", "type": "text", "data": {"content": "x"}},
            "fa": field("fa", "a"), "fb": field("fb", "b"), "fd": field("fd", "d")
        }});
        let def = workflow(form, json!([{"nodeId": "c", "fieldName": "value"}]));
        let order: Vec<String> = input_fields(&def)
            .expect("ok")
            .into_iter()
            .map(|f| f.node_id)
            .collect();
        assert_eq!(order, ["b", "a", "d"]);
    }

    #[test]
    fn without_form_fields_the_exposed_fields_are_the_inputs() {
        let form = json!({"rootElementId": "root", "elements": {
            "root": {"id": "root", "type": "container", "data": {"children": []}}}});
        let exposed =
            json!([{"nodeId": "c", "fieldName": "value"}, {"nodeId": "a", "fieldName": "value"}]);
        let def = workflow(form, exposed);
        let order: Vec<String> = input_fields(&def)
            .expect("ok")
            .into_iter()
            .map(|f| f.node_id)
            .collect();
        assert_eq!(order, ["c", "a"]);
    }

    #[test]
    fn an_exposed_field_of_a_missing_node_is_an_error() {
        let def = workflow(Value::Null, json!([{"nodeId": "zz", "fieldName": "value"}]));
        let e = input_fields(&def).expect_err("missing node").to_string();
        assert_eq!(
            e,
            "`w.json` is not a valid workflow: at `exposedFields[0].nodeId`: no node has the id `zz`"
        );
    }
}

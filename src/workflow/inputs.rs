//! A workflow's inputs (the fields of its form) and the ways to name one: `#INDEX`, system name
//! `node_id.field_name`, or user name (the field's label, else its name).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::ink::{InkType, InkValue};
use super::schema::FieldSchema;

/// One input of a workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowInput {
    /// Position in form order, from 0.
    pub index: usize,
    /// `node_id.field_name` (always unique).
    pub system_name: String,
    /// The field's label in the workflow if non-empty, else the field name (may repeat).
    pub user_name: String,
    /// Node id.
    pub node_id: String,
    /// Input field name.
    pub field_name: String,
    /// The node's invocation type.
    pub node_type: String,
    /// The field's schema; `None` for node types the schema set does not know (custom nodes).
    pub schema: Option<FieldSchema>,
    /// Whether the node needs a value here to run.
    pub required: bool,
    /// Whether an edge feeds this field (then its value is not used).
    pub connected: bool,
    /// The current value; `None` when the workflow holds none.
    pub value: Option<InkValue>,
}

impl WorkflowInput {
    /// The field's type ([`InkType::Any`] for unknown node types).
    #[must_use]
    pub fn ty(&self) -> &InkType {
        self.schema.as_ref().map_or(&InkType::Any, |s| &s.ty)
    }

    /// Whether it still needs a value: required, not fed by an edge, and empty.
    #[must_use]
    pub fn is_missing(&self) -> bool {
        self.required && !self.connected && self.value.as_ref().is_none_or(InkValue::is_null)
    }
}

/// The row `invk-run inputs --json` prints for an input.
#[derive(Debug, Clone, Serialize)]
pub struct InputSummary {
    /// Position in form order.
    pub index: usize,
    /// User name.
    pub user_name: String,
    /// System name.
    pub system_name: String,
    /// Type, as text.
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether it needs a value.
    pub required: bool,
    /// The current value (wire shape), `null` when none.
    pub value: serde_json::Value,
}

impl From<&WorkflowInput> for InputSummary {
    fn from(i: &WorkflowInput) -> Self {
        InputSummary {
            index: i.index,
            user_name: i.user_name.clone(),
            system_name: i.system_name.clone(),
            ty: i.ty().to_string(),
            required: i.required,
            value: i
                .value
                .as_ref()
                .map_or(serde_json::Value::Null, InkValue::to_json),
        }
    }
}

/// A way to name an input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InputRef {
    /// `#3`: by position.
    Index(usize),
    /// `node_id.field_name` (node ids may contain dashes). If no input has this system name,
    /// the whole text is tried as a user name.
    SystemName {
        /// Node id.
        node_id: String,
        /// Field name.
        field_name: String,
    },
    /// By user name (label, else field name).
    UserName(String),
}

impl InputRef {
    /// Parses `#3`, `node.field`, or a user name.
    #[must_use]
    pub fn parse(text: &str) -> InputRef {
        let t = text.trim();
        if let Some(n) = t.strip_prefix('#').and_then(|n| n.parse::<usize>().ok()) {
            return InputRef::Index(n);
        }
        if let Some((node, field)) = t.rsplit_once('.')
            && !node.is_empty()
            && !field.is_empty()
            && !node.contains(char::is_whitespace)
            && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return InputRef::SystemName {
                node_id: node.to_string(),
                field_name: field.to_string(),
            };
        }
        InputRef::UserName(t.to_string())
    }
}

impl FromStr for InputRef {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(InputRef::parse(s))
    }
}

impl From<&str> for InputRef {
    fn from(s: &str) -> Self {
        InputRef::parse(s)
    }
}

impl From<usize> for InputRef {
    fn from(i: usize) -> Self {
        InputRef::Index(i)
    }
}

impl fmt::Display for InputRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputRef::Index(i) => write!(f, "#{i}"),
            InputRef::SystemName {
                node_id,
                field_name,
            } => write!(f, "{node_id}.{field_name}"),
            InputRef::UserName(n) => f.write_str(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_parse_index_system_and_user_names() {
        assert_eq!(InputRef::parse("#3"), InputRef::Index(3));
        assert_eq!(
            InputRef::parse("c8d55139-f380-4695.model"),
            InputRef::SystemName {
                node_id: "c8d55139-f380-4695".into(),
                field_name: "model".into()
            }
        );
        assert_eq!(
            InputRef::parse("Positive Prompt"),
            InputRef::UserName("Positive Prompt".into())
        );
        assert_eq!(
            InputRef::parse("Scale 1.5x"),
            InputRef::UserName("Scale 1.5x".into())
        );
        assert_eq!(InputRef::parse("#x"), InputRef::UserName("#x".into()));
    }
}

//! A typed value of an input field.

use super::*;
use serde_json::{Map, Number, Value};

/// A typed value of an input field.
#[derive(Debug, Clone, PartialEq)]
pub enum InkValue {
    /// No value (`null`).
    Null,
    /// A string.
    String(String),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Boolean(bool),
    /// A member of a literal (a string or a number).
    Enum(Value),
    /// An image on the server, by name.
    Image {
        /// The server's image name.
        image_name: String,
    },
    /// A video on the server, by name.
    Video {
        /// The server's video name.
        video_name: String,
    },
    /// A board choice.
    Board(BoardChoice),
    /// A colour.
    Color(Color),
    /// A fully identified model.
    Model(ModelIdentifier),
    /// A model given only by name: to be resolved against the server's installed models.
    ModelName(String),
    /// A list.
    Collection(Vec<InkValue>),
    /// A value of a type this crate does not model, kept as is.
    Raw(Value),
}

impl InkValue {
    /// The value as the server takes it (the wire shape). A [`InkValue::ModelName`] has no
    /// wire shape; it is written as `{"name": ...}` here and must be resolved before sending.
    #[must_use]
    pub fn to_json(&self) -> Value {
        match self {
            InkValue::Null => Value::Null,
            InkValue::String(s) => Value::String(s.clone()),
            InkValue::Integer(i) => Value::from(*i),
            InkValue::Float(x) => Number::from_f64(*x).map_or(Value::Null, Value::Number),
            InkValue::Boolean(b) => Value::Bool(*b),
            InkValue::Enum(v) | InkValue::Raw(v) => v.clone(),
            InkValue::Image { image_name } => one("image_name", image_name),
            InkValue::Video { video_name } => one("video_name", video_name),
            InkValue::Board(BoardChoice::Auto) => Value::String("auto".into()),
            InkValue::Board(BoardChoice::None) => Value::String("none".into()),
            InkValue::Board(BoardChoice::Id(id)) => one("board_id", id),
            InkValue::Color(c) => serde_json::to_value(c).unwrap_or(Value::Null),
            InkValue::Model(m) => serde_json::to_value(m).unwrap_or(Value::Null),
            InkValue::ModelName(name) => one("name", name),
            InkValue::Collection(items) => {
                Value::Array(items.iter().map(InkValue::to_json).collect())
            }
        }
    }

    /// Whether this is `null`.
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self, InkValue::Null)
    }

    /// A short human rendering for tables and messages.
    #[must_use]
    pub fn display(&self) -> String {
        match self {
            InkValue::Null => String::new(),
            InkValue::String(s) => s.clone(),
            InkValue::Integer(i) => i.to_string(),
            InkValue::Float(x) => format!("{x:?}"),
            InkValue::Boolean(b) => b.to_string(),
            InkValue::Enum(Value::String(s)) => s.clone(),
            InkValue::Image { image_name } => image_name.clone(),
            InkValue::Video { video_name } => video_name.clone(),
            InkValue::Board(BoardChoice::Auto) => "auto".into(),
            InkValue::Board(BoardChoice::None) => "none".into(),
            InkValue::Board(BoardChoice::Id(id)) => id.clone(),
            InkValue::Color(c) => format!("#{:02x}{:02x}{:02x}{:02x}", c.r, c.g, c.b, c.a),
            InkValue::Model(m) => format!("{} ({}, {})", m.name, m.base, m.model_type),
            InkValue::ModelName(name) => format!("{name} (unresolved)"),
            InkValue::Collection(items) => {
                format!(
                    "[{}]",
                    items
                        .iter()
                        .map(InkValue::display)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            InkValue::Enum(v) | InkValue::Raw(v) => v.to_string(),
        }
    }

    /// Model names this value still needs resolved (itself, or inside a list).
    pub(crate) fn unresolved_model_names(&self) -> Vec<&str> {
        match self {
            InkValue::ModelName(n) => vec![n.as_str()],
            InkValue::Collection(items) => items
                .iter()
                .flat_map(InkValue::unresolved_model_names)
                .collect(),
            _ => Vec::new(),
        }
    }
}

pub(super) fn one(key: &str, value: &str) -> Value {
    let mut m = Map::new();
    m.insert(key.to_string(), Value::String(value.to_string()));
    Value::Object(m)
}

//! The type of an input field and its schema constraints.

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};
use std::fmt;

/// The type of an input field, read from the server's invocation schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "of", rename_all = "snake_case")]
pub enum InkType {
    /// `str`.
    String,
    /// `int`.
    Integer,
    /// `float`.
    Float,
    /// `bool`.
    Boolean,
    /// A literal: one of the members (schedulers, modes, ...).
    Enum(Vec<Value>),
    /// `ImageField`: `{image_name}`.
    Image,
    /// `VideoField`: `{video_name}`.
    Video,
    /// `BoardField`: `{board_id}`, or the UI's `auto`/`none`.
    Board,
    /// `ColorField`: `{r, g, b, a}`.
    Color,
    /// `ModelIdentifierField`; the model types the field accepts (`main`, `vae`, ...), empty
    /// when any.
    Model(Vec<String>),
    /// A list of values of one type.
    Collection(Box<InkType>),
    /// One value or a list of them (`T | list[T]`, as `cfg_scale`).
    OneOrMany(Box<InkType>),
    /// Another structured field (latents, conditioning, ...), normally fed by a connection;
    /// kept as raw JSON.
    Object(String),
    /// Anything (custom nodes, `Any` fields); kept as raw JSON.
    Any,
}

impl InkType {
    /// Whether the server's batch data can carry values of this type (`str`, `int`, `float`,
    /// `ImageField`, and lists of them).
    #[must_use]
    pub fn is_batchable(&self) -> bool {
        match self {
            InkType::String | InkType::Integer | InkType::Float | InkType::Image => true,
            InkType::Enum(members) => members.iter().all(|m| m.is_string() || m.is_number()),
            InkType::Collection(item) | InkType::OneOrMany(item) => {
                matches!(
                    **item,
                    InkType::String
                        | InkType::Integer
                        | InkType::Float
                        | InkType::Image
                        | InkType::Enum(_)
                )
            }
            _ => false,
        }
    }

    /// Whether this is a model field.
    #[must_use]
    pub fn is_model(&self) -> bool {
        matches!(self, InkType::Model(_))
    }
}

impl fmt::Display for InkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InkType::String => f.write_str("string"),
            InkType::Integer => f.write_str("integer"),
            InkType::Float => f.write_str("float"),
            InkType::Boolean => f.write_str("boolean"),
            InkType::Enum(_) => f.write_str("enum"),
            InkType::Image => f.write_str("image"),
            InkType::Video => f.write_str("video"),
            InkType::Board => f.write_str("board"),
            InkType::Color => f.write_str("color"),
            InkType::Model(types) if types.is_empty() => f.write_str("model"),
            InkType::Model(types) => write!(f, "model({})", types.join("|")),
            InkType::Collection(item) => write!(f, "list<{item}>"),
            InkType::OneOrMany(item) => write!(f, "{item} | list<{item}>"),
            InkType::Object(name) => write!(f, "{name}"),
            InkType::Any => f.write_str("any"),
        }
    }
}

/// Numeric and length constraints of a field, from its schema.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    /// Inclusive lower bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Number>,
    /// Exclusive lower bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_minimum: Option<Number>,
    /// Inclusive upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<Number>,
    /// Exclusive upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_maximum: Option<Number>,
    /// The value must be a multiple of this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_of: Option<Number>,
    /// Shortest string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// Longest string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// Fewest list items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    /// Most list items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
}

impl Constraints {
    pub(super) fn is_empty(&self) -> bool {
        *self == Constraints::default()
    }
}

/// A board choice as the web UI stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardChoice {
    /// `"auto"`: the UI's auto-add board (the run's board, if any).
    Auto,
    /// `"none"`: no board (uncategorized).
    None,
    /// A real board.
    Id(String),
}

/// A model as the server identifies it (`ModelIdentifierField`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelIdentifier {
    /// The model's key in the server's model store (the only thing the executor uses).
    pub key: String,
    /// Its BLAKE3 hash.
    pub hash: String,
    /// Its name.
    pub name: String,
    /// Base model (`sd-1`, `sdxl`, `flux`, ...).
    pub base: String,
    /// Model type (`main`, `vae`, `lora`, ...).
    #[serde(rename = "type")]
    pub model_type: String,
    /// Submodel to load, for main models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submodel_type: Option<String>,
}

/// An RGBA colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Color {
    /// Red.
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
    /// Alpha.
    pub a: u8,
}

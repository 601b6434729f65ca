//! Typed values of InvokeAI's type system (`Ink*`): what an input field holds, how a user's
//! value is converted into it, and the schema constraints it must meet.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

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
    fn is_empty(&self) -> bool {
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

fn one(key: &str, value: &str) -> Value {
    let mut m = Map::new();
    m.insert(key.to_string(), Value::String(value.to_string()));
    Value::Object(m)
}

/// Why a value does not fit an input: it is not of the input's type, or it breaks one of the
/// schema's constraints. Shown as a sentence naming the value and the rule
/// (``-5 is not greater than the exclusive minimum 0``); each `value` is the value as shown
/// there (strings in backticks, long values cut).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not a value of the type; `expected` says what the type takes (`an integer`).
    #[error("{value} is not {expected}")]
    NotA {
        /// The value.
        value: String,
        /// What the type takes.
        expected: &'static str,
    },
    /// An object without the field the type needs (`image_name`, a colour's `r`).
    #[error("{value} has no `{field}`")]
    NoField {
        /// The value.
        value: String,
        /// The field.
        field: &'static str,
    },
    /// A colour channel that is not an integer from 0 to 255.
    #[error("`{channel}` of {value} is not an integer from 0 to 255")]
    Channel {
        /// The colour.
        value: String,
        /// The channel (`r`, `g`, `b` or `a`).
        channel: &'static str,
    },
    /// Not one of an enumeration's members.
    #[error("{value} is not one of {}{}", quoted_list(.members), did_you_mean(.closest.as_deref()))]
    NotAMember {
        /// The value.
        value: String,
        /// The members, as text.
        members: Vec<String>,
        /// The member it most resembles, when one is close.
        closest: Option<String>,
    },
    /// A model identifier that lacks some of its fields.
    #[error("model {value} lacks `{}`", .missing.join("`, `"))]
    ModelLacks {
        /// The value.
        value: String,
        /// The fields it lacks.
        missing: Vec<&'static str>,
    },
    /// A model identifier that does not parse.
    #[error("{value} is not a model: {reason}")]
    NotAModel {
        /// The value.
        value: String,
        /// Why, as the parser says.
        reason: String,
    },
    /// A model of a type the input does not take.
    #[error("model `{name}` is of type `{model_type}`, this input takes `{}`", .takes.join("`, `"))]
    ModelType {
        /// The model's name.
        name: String,
        /// Its type.
        model_type: String,
        /// The types the input takes.
        takes: Vec<String>,
    },
    /// An item of a list that does not fit (`index` from 0).
    #[error("item {index}: {problem}")]
    Item {
        /// Which item.
        index: usize,
        /// What is wrong with it.
        problem: Box<ValueError>,
    },
    /// A string shorter than the minimum length.
    #[error("`{value}` is shorter than the minimum length {min}")]
    TooShort {
        /// The string.
        value: String,
        /// The minimum length, in characters.
        min: u64,
    },
    /// A string longer than the maximum length.
    #[error("`{value}` is longer than the maximum length {max}")]
    TooLong {
        /// The string (cut when long).
        value: String,
        /// The maximum length, in characters.
        max: u64,
    },
    /// A list with fewer items than the minimum.
    #[error("{count} items are fewer than the minimum {min}")]
    TooFewItems {
        /// How many items.
        count: u64,
        /// The minimum.
        min: u64,
    },
    /// A list with more items than the maximum.
    #[error("{count} items are more than the maximum {max}")]
    TooManyItems {
        /// How many items.
        count: u64,
        /// The maximum.
        max: u64,
    },
    /// A number outside a bound, or not a multiple of the step.
    #[error("{value} {rule} {bound}")]
    Number {
        /// The number.
        value: String,
        /// The rule it breaks (`is less than the minimum`).
        rule: NumberRule,
        /// The bound or step, as the schema writes it.
        bound: String,
    },
}

/// A rule of the schema for numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberRule {
    /// `exclusiveMinimum`.
    ExclusiveMinimum,
    /// `minimum`.
    Minimum,
    /// `exclusiveMaximum`.
    ExclusiveMaximum,
    /// `maximum`.
    Maximum,
    /// `multipleOf`.
    MultipleOf,
}

impl std::fmt::Display for NumberRule {
    /// How a number that breaks the rule is described: `-5 {this} 0`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NumberRule::ExclusiveMinimum => "is not greater than the exclusive minimum",
            NumberRule::Minimum => "is less than the minimum",
            NumberRule::ExclusiveMaximum => "is not less than the exclusive maximum",
            NumberRule::Maximum => "is greater than the maximum",
            NumberRule::MultipleOf => "is not a multiple of",
        })
    }
}

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn did_you_mean(closest: Option<&str>) -> String {
    closest
        .map(|n| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default()
}

/// What a colour takes.
const A_COLOUR: &str = "a colour (`#rrggbb`, `#rrggbbaa` or `{r, g, b, a}`)";

/// What a model input takes.
const A_MODEL: &str = "a model (`{key, hash, name, base, type}` or a name)";

fn not_a(value: &Value, expected: &'static str) -> ValueError {
    ValueError::NotA {
        value: show(value),
        expected,
    }
}

fn no_field(value: &Value, field: &'static str) -> ValueError {
    ValueError::NoField {
        value: show(value),
        field,
    }
}

/// Converts `value` into a value of type `ty` and checks `constraints`.
///
/// # Errors
/// Why the value does not fit, naming the value and the rule
/// (``-5 is not greater than the exclusive minimum 0``).
pub fn coerce(
    ty: &InkType,
    constraints: &Constraints,
    value: &Value,
) -> Result<InkValue, ValueError> {
    if value.is_null() {
        return Ok(InkValue::Null);
    }
    let v = convert(ty, value)?;
    check(&v, constraints)?;
    Ok(v)
}

fn convert(ty: &InkType, value: &Value) -> Result<InkValue, ValueError> {
    match ty {
        InkType::String => match value {
            Value::String(s) => Ok(InkValue::String(s.clone())),
            Value::Number(n) => Ok(InkValue::String(n.to_string())),
            Value::Bool(b) => Ok(InkValue::String(b.to_string())),
            _ => Err(not_a(value, "a string")),
        },
        InkType::Integer => to_integer(value).map(InkValue::Integer),
        InkType::Float => to_float(value).map(InkValue::Float),
        InkType::Boolean => to_bool(value).map(InkValue::Boolean),
        InkType::Enum(members) => to_enum(members, value),
        InkType::Image => match value {
            Value::String(s) if !s.is_empty() => Ok(InkValue::Image {
                image_name: s.clone(),
            }),
            Value::Object(o) => match o.get("image_name") {
                Some(Value::String(s)) if !s.is_empty() => Ok(InkValue::Image {
                    image_name: s.clone(),
                }),
                _ => Err(no_field(value, "image_name")),
            },
            _ => Err(not_a(value, "an image name or `{image_name}`")),
        },
        InkType::Video => match value {
            Value::String(s) if !s.is_empty() => Ok(InkValue::Video {
                video_name: s.clone(),
            }),
            Value::Object(o) => match o.get("video_name") {
                Some(Value::String(s)) if !s.is_empty() => Ok(InkValue::Video {
                    video_name: s.clone(),
                }),
                _ => Err(no_field(value, "video_name")),
            },
            _ => Err(not_a(value, "a video name or `{video_name}`")),
        },
        InkType::Board => match value {
            Value::String(s) if s == "auto" => Ok(InkValue::Board(BoardChoice::Auto)),
            Value::String(s) if s == "none" => Ok(InkValue::Board(BoardChoice::None)),
            Value::String(s) if !s.is_empty() => Ok(InkValue::Board(BoardChoice::Id(s.clone()))),
            Value::Object(o) => match o.get("board_id") {
                Some(Value::String(s)) if !s.is_empty() => {
                    Ok(InkValue::Board(BoardChoice::Id(s.clone())))
                }
                _ => Err(no_field(value, "board_id")),
            },
            _ => Err(not_a(value, "a board id, `auto`, `none` or `{board_id}`")),
        },
        InkType::Color => to_color(value).map(InkValue::Color),
        InkType::Model(types) => to_model(types, value),
        InkType::Collection(item) => match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(index, v)| {
                    convert(item, v).map_err(|e| ValueError::Item {
                        index,
                        problem: Box::new(e),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(InkValue::Collection),
            // A single value where a list is expected is a list of one.
            other => convert(item, other).map(|v| InkValue::Collection(vec![v])),
        },
        InkType::OneOrMany(item) => match value {
            Value::Array(_) => convert(&InkType::Collection(item.clone()), value),
            other => convert(item, other),
        },
        InkType::Object(_) | InkType::Any => Ok(InkValue::Raw(value.clone())),
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => format!("`{s}`"),
        Value::Number(n) => n.to_string(),
        other => {
            let text = other.to_string();
            if text.chars().count() > 60 {
                format!("{}...", text.chars().take(57).collect::<String>())
            } else {
                text
            }
        }
    }
}

fn to_integer(value: &Value) -> Result<i64, ValueError> {
    let not = || not_a(value, "an integer");
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else {
                float_as_integer(n.as_f64().ok_or_else(not)?).ok_or_else(not)
            }
        }
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(float_as_integer))
                .ok_or_else(not)
        }
        _ => Err(not()),
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
fn float_as_integer(x: f64) -> Option<i64> {
    (x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15).then_some(x as i64)
}

fn to_float(value: &Value) -> Result<f64, ValueError> {
    let not = || not_a(value, "a number");
    let x = match value {
        Value::Number(n) => n.as_f64().ok_or_else(not)?,
        Value::String(s) => s.trim().parse::<f64>().map_err(|_| not())?,
        _ => return Err(not()),
    };
    if x.is_finite() { Ok(x) } else { Err(not()) }
}

fn to_bool(value: &Value) -> Result<bool, ValueError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(not_a(value, "a boolean (true or false)")),
        },
        _ => Err(not_a(value, "a boolean (true or false)")),
    }
}

fn to_enum(members: &[Value], value: &Value) -> Result<InkValue, ValueError> {
    if let Some(m) = members.iter().find(|m| *m == value) {
        return Ok(InkValue::Enum(m.clone()));
    }
    // "3" for the member 3, or 3 for the member "3".
    let text = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    if let Some(m) = members.iter().find(|m| match m {
        Value::String(s) => *s == text,
        Value::Number(n) => n.to_string() == text,
        _ => false,
    }) {
        return Ok(InkValue::Enum(m.clone()));
    }
    let names: Vec<String> = members
        .iter()
        .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_string))
        .collect();
    let closest = names
        .iter()
        .map(|n| (strsim::jaro_winkler(n, &text), n))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n.clone());
    Err(ValueError::NotAMember {
        value: show(value),
        members: names,
        closest,
    })
}

fn to_color(value: &Value) -> Result<Color, ValueError> {
    match value {
        Value::String(s) => {
            let hex = s.trim().trim_start_matches('#');
            let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("x"), 16).ok();
            let parsed = match hex.len() {
                6 => Some((byte(0), byte(2), byte(4), Some(255))),
                8 => Some((byte(0), byte(2), byte(4), byte(6))),
                _ => None,
            };
            match parsed {
                Some((Some(r), Some(g), Some(b), Some(a))) => Ok(Color { r, g, b, a }),
                _ => Err(not_a(value, A_COLOUR)),
            }
        }
        Value::Object(o) => {
            let part = |k: &'static str, default: Option<u8>| -> Result<u8, ValueError> {
                match o.get(k) {
                    None => default.ok_or_else(|| no_field(value, k)),
                    Some(v) => v
                        .as_u64()
                        .and_then(|n| u8::try_from(n).ok())
                        .ok_or_else(|| ValueError::Channel {
                            value: show(value),
                            channel: k,
                        }),
                }
            };
            Ok(Color {
                r: part("r", None)?,
                g: part("g", None)?,
                b: part("b", None)?,
                a: part("a", Some(255))?,
            })
        }
        _ => Err(not_a(value, A_COLOUR)),
    }
}

fn to_model(types: &[String], value: &Value) -> Result<InkValue, ValueError> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Ok(InkValue::ModelName(s.trim().to_string())),
        Value::Object(o) => {
            let missing: Vec<&str> = ["key", "hash", "name", "base", "type"]
                .into_iter()
                .filter(|k| !o.get(*k).is_some_and(Value::is_string))
                .collect();
            if missing.len() == 5 {
                return Err(not_a(value, A_MODEL));
            }
            if !missing.is_empty() {
                // `{name}` alone (maybe with base/type) is a model to resolve by name.
                if let (Some(Value::String(name)), true) = (o.get("name"), missing.contains(&"key"))
                {
                    return Ok(InkValue::ModelName(name.clone()));
                }
                return Err(ValueError::ModelLacks {
                    value: show(value),
                    missing,
                });
            }
            let model: ModelIdentifier =
                serde_json::from_value(value.clone()).map_err(|e| ValueError::NotAModel {
                    value: show(value),
                    reason: e.to_string(),
                })?;
            if !types.is_empty() && !types.contains(&model.model_type) {
                return Err(ValueError::ModelType {
                    name: model.name,
                    model_type: model.model_type,
                    takes: types.to_vec(),
                });
            }
            Ok(InkValue::Model(model))
        }
        _ => Err(not_a(value, A_MODEL)),
    }
}

/// Checks a converted value against the schema's constraints (for lists, each item).
///
/// # Errors
/// The rule the value breaks.
pub fn check(value: &InkValue, c: &Constraints) -> Result<(), ValueError> {
    if c.is_empty() {
        return Ok(());
    }
    match value {
        InkValue::Integer(i) => check_number(&Value::from(*i), c),
        InkValue::Float(x) => {
            check_number(&Number::from_f64(*x).map_or(Value::Null, Value::Number), c)
        }
        InkValue::Enum(v @ Value::Number(_)) => check_number(v, c),
        InkValue::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = c.min_length
                && len < min
            {
                return Err(ValueError::TooShort {
                    value: s.clone(),
                    min,
                });
            }
            if let Some(max) = c.max_length
                && len > max
            {
                return Err(ValueError::TooLong {
                    value: shorten(s),
                    max,
                });
            }
            Ok(())
        }
        InkValue::Collection(items) => {
            let n = items.len() as u64;
            if let Some(min) = c.min_items
                && n < min
            {
                return Err(ValueError::TooFewItems { count: n, min });
            }
            if let Some(max) = c.max_items
                && n > max
            {
                return Err(ValueError::TooManyItems { count: n, max });
            }
            for (i, item) in items.iter().enumerate() {
                check(item, c).map_err(|e| ValueError::Item {
                    index: i,
                    problem: Box::new(e),
                })?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(37).collect::<String>())
    } else {
        s.to_string()
    }
}

fn check_number(v: &Value, c: &Constraints) -> Result<(), ValueError> {
    let Some(x) = v.as_f64() else { return Ok(()) };
    let broken = |rule: NumberRule, bound: &Number| ValueError::Number {
        value: v.to_string(),
        rule,
        bound: bound.to_string(),
    };
    let bound = |n: &Number| n.as_f64().unwrap_or(f64::NAN);
    if let Some(m) = &c.exclusive_minimum
        && x <= bound(m)
    {
        return Err(broken(NumberRule::ExclusiveMinimum, m));
    }
    if let Some(m) = &c.minimum
        && x < bound(m)
    {
        return Err(broken(NumberRule::Minimum, m));
    }
    if let Some(m) = &c.exclusive_maximum
        && x >= bound(m)
    {
        return Err(broken(NumberRule::ExclusiveMaximum, m));
    }
    if let Some(m) = &c.maximum
        && x > bound(m)
    {
        return Err(broken(NumberRule::Maximum, m));
    }
    if let Some(m) = &c.multiple_of {
        let step = bound(m);
        if step > 0.0 {
            let q = x / step;
            if (q - q.round()).abs() > 1e-9 {
                return Err(broken(NumberRule::MultipleOf, m));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(ty: &InkType, v: Value) -> InkValue {
        coerce(ty, &Constraints::default(), &v).expect("accepted")
    }

    #[test]
    fn strings_become_numbers_and_booleans() {
        assert_eq!(ok(&InkType::Integer, json!("30")), InkValue::Integer(30));
        assert_eq!(ok(&InkType::Integer, json!(30.0)), InkValue::Integer(30));
        assert_eq!(ok(&InkType::Float, json!("0.5")), InkValue::Float(0.5));
        assert_eq!(ok(&InkType::Float, json!(2)), InkValue::Float(2.0));
        assert_eq!(
            ok(&InkType::Boolean, json!("true")),
            InkValue::Boolean(true)
        );
        assert_eq!(ok(&InkType::Boolean, json!("No")), InkValue::Boolean(false));
        assert_eq!(
            ok(&InkType::String, json!(12)),
            InkValue::String("12".into())
        );
        let e = coerce(&InkType::Integer, &Constraints::default(), &json!("3.5"))
            .expect_err("not int")
            .to_string();
        assert_eq!(e, "`3.5` is not an integer");
        let e = coerce(&InkType::Boolean, &Constraints::default(), &json!("maybe"))
            .expect_err("not bool")
            .to_string();
        assert_eq!(e, "`maybe` is not a boolean (true or false)");
    }

    #[test]
    fn constraints_name_the_value_and_the_rule() {
        let c = Constraints {
            exclusive_minimum: Some(0.into()),
            ..Constraints::default()
        };
        assert_eq!(
            coerce(&InkType::Integer, &c, &json!(-5))
                .expect_err("refused")
                .to_string(),
            "-5 is not greater than the exclusive minimum 0"
        );
        assert_eq!(
            coerce(&InkType::Integer, &c, &json!(0))
                .expect_err("refused")
                .to_string(),
            "0 is not greater than the exclusive minimum 0"
        );
        assert_eq!(
            coerce(&InkType::Integer, &c, &json!(0)),
            Err(ValueError::Number {
                value: "0".into(),
                rule: NumberRule::ExclusiveMinimum,
                bound: "0".into(),
            })
        );
        let c = Constraints {
            minimum: Number::from_f64(0.0),
            maximum: Some(1.into()),
            multiple_of: Some(8.into()),
            ..Constraints::default()
        };
        assert_eq!(
            coerce(&InkType::Float, &c, &json!(1.5))
                .expect_err("max")
                .to_string(),
            "1.5 is greater than the maximum 1"
        );
        assert_eq!(
            coerce(&InkType::Float, &c, &json!(-0.5))
                .expect_err("min")
                .to_string(),
            "-0.5 is less than the minimum 0.0"
        );
        let c = Constraints {
            multiple_of: Some(8.into()),
            ..Constraints::default()
        };
        assert_eq!(
            coerce(&InkType::Integer, &c, &json!(100))
                .expect_err("mult")
                .to_string(),
            "100 is not a multiple of 8"
        );
        assert_eq!(
            ok_with(&InkType::Integer, &c, json!("64")),
            InkValue::Integer(64)
        );
        let c = Constraints {
            exclusive_maximum: Some(1.into()),
            ..Constraints::default()
        };
        assert_eq!(
            coerce(&InkType::Float, &c, &json!(1))
                .expect_err("xmax")
                .to_string(),
            "1.0 is not less than the exclusive maximum 1"
        );
        let c = Constraints {
            min_length: Some(2),
            max_length: Some(3),
            ..Constraints::default()
        };
        assert_eq!(
            coerce(&InkType::String, &c, &json!("a"))
                .expect_err("short")
                .to_string(),
            "`a` is shorter than the minimum length 2"
        );
        assert_eq!(
            coerce(&InkType::String, &c, &json!("abcd"))
                .expect_err("long")
                .to_string(),
            "`abcd` is longer than the maximum length 3"
        );
    }

    fn ok_with(ty: &InkType, c: &Constraints, v: Value) -> InkValue {
        coerce(ty, c, &v).expect("accepted")
    }

    #[test]
    fn enums_accept_members_only_and_suggest_the_closest() {
        let ty = InkType::Enum(vec![json!("euler"), json!("euler_a"), json!("ddim")]);
        assert_eq!(ok(&ty, json!("ddim")), InkValue::Enum(json!("ddim")));
        let e = coerce(&ty, &Constraints::default(), &json!("eulr"))
            .expect_err("no")
            .to_string();
        assert_eq!(
            e,
            "`eulr` is not one of `euler`, `euler_a`, `ddim` (did you mean `euler`?)"
        );
        let ints = InkType::Enum(vec![json!(1), json!(2)]);
        assert_eq!(ok(&ints, json!("2")), InkValue::Enum(json!(2)));
    }

    #[test]
    fn images_boards_colors_and_models_take_their_short_forms() {
        let img = InkValue::Image {
            image_name: "a.png".into(),
        };
        assert_eq!(ok(&InkType::Image, json!("a.png")), img);
        assert_eq!(ok(&InkType::Image, json!({"image_name": "a.png"})), img);
        assert_eq!(img.to_json(), json!({"image_name": "a.png"}));
        assert!(
            coerce(
                &InkType::Image,
                &Constraints::default(),
                &json!({"name": "a"})
            )
            .is_err()
        );
        assert_eq!(
            ok(&InkType::Board, json!("auto")),
            InkValue::Board(BoardChoice::Auto)
        );
        assert_eq!(
            ok(&InkType::Board, json!({"board_id": "b1"})).to_json(),
            json!({"board_id": "b1"})
        );
        assert_eq!(
            ok(&InkType::Color, json!("#ff000080")).to_json(),
            json!({"r": 255, "g": 0, "b": 0, "a": 128})
        );
        let model = json!({"key": "k", "hash": "h", "name": "n", "base": "sd-1", "type": "main"});
        let types = InkType::Model(vec!["main".into()]);
        assert_eq!(ok(&types, model.clone()).to_json(), model);
        assert_eq!(
            ok(&types, json!("Juggernaut")),
            InkValue::ModelName("Juggernaut".into())
        );
        let vae = json!({"key": "k", "hash": "h", "name": "v", "base": "sd-1", "type": "vae"});
        assert_eq!(
            coerce(&types, &Constraints::default(), &vae)
                .expect_err("wrong type")
                .to_string(),
            "model `v` is of type `vae`, this input takes `main`"
        );
    }

    #[test]
    fn collections_convert_each_item_and_one_or_many_keeps_a_single_value() {
        let ty = InkType::Collection(Box::new(InkType::Integer));
        assert_eq!(
            ok(&ty, json!(["1", 2])),
            InkValue::Collection(vec![InkValue::Integer(1), InkValue::Integer(2)])
        );
        assert_eq!(
            coerce(&ty, &Constraints::default(), &json!([1, "x"]))
                .expect_err("bad item")
                .to_string(),
            "item 1: `x` is not an integer"
        );
        let ty = InkType::OneOrMany(Box::new(InkType::Float));
        assert_eq!(ok(&ty, json!("7.5")), InkValue::Float(7.5));
        assert_eq!(ok(&ty, json!([1, 2])).to_json(), json!([1.0, 2.0]));
    }

    #[test]
    fn batchable_types_are_those_batch_data_carries() {
        assert!(InkType::Integer.is_batchable());
        assert!(InkType::Image.is_batchable());
        assert!(InkType::Collection(Box::new(InkType::String)).is_batchable());
        assert!(!InkType::Boolean.is_batchable());
        assert!(!InkType::Model(vec![]).is_batchable());
        assert!(!InkType::Board.is_batchable());
    }
}

//! Converting a user's value into a value of an input's type.

use super::*;
use serde_json::Value;

/// What a colour takes.
pub(super) const A_COLOUR: &str = "a colour (`#rrggbb`, `#rrggbbaa` or `{r, g, b, a}`)";

/// What a model input takes.
pub(super) const A_MODEL: &str = "a model (`{key, hash, name, base, type}` or a name)";

pub(super) fn not_a(value: &Value, expected: &'static str) -> ValueError {
    ValueError::NotA {
        value: show(value),
        expected,
    }
}

pub(super) fn no_field(value: &Value, field: &'static str) -> ValueError {
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

pub(super) fn convert(ty: &InkType, value: &Value) -> Result<InkValue, ValueError> {
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

pub(super) fn show(value: &Value) -> String {
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

pub(super) fn to_integer(value: &Value) -> Result<i64, ValueError> {
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
pub(super) fn float_as_integer(x: f64) -> Option<i64> {
    (x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15).then_some(x as i64)
}

pub(super) fn to_float(value: &Value) -> Result<f64, ValueError> {
    let not = || not_a(value, "a number");
    let x = match value {
        Value::Number(n) => n.as_f64().ok_or_else(not)?,
        Value::String(s) => s.trim().parse::<f64>().map_err(|_| not())?,
        _ => return Err(not()),
    };
    if x.is_finite() { Ok(x) } else { Err(not()) }
}

pub(super) fn to_bool(value: &Value) -> Result<bool, ValueError> {
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

pub(super) fn to_enum(members: &[Value], value: &Value) -> Result<InkValue, ValueError> {
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

pub(super) fn to_color(value: &Value) -> Result<Color, ValueError> {
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

pub(super) fn to_model(types: &[String], value: &Value) -> Result<InkValue, ValueError> {
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

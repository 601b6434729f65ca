//! Converting a user's value (YAML/JSON) into a typed value of a field's type.

use serde_json::Value;

use super::{BoardChoice, Color, Constraints, InkType, InkValue, ModelIdentifier, check};

/// Converts `value` into a value of type `ty` and checks `constraints`. On refusal, returns
/// the problem naming the value and the rule (``-5 is not greater than the exclusive minimum 0``).
///
/// # Errors
/// A sentence describing why the value does not fit.
pub fn coerce(ty: &InkType, constraints: &Constraints, value: &Value) -> Result<InkValue, String> {
    if value.is_null() {
        return Ok(InkValue::Null);
    }
    let v = convert(ty, value)?;
    check(&v, constraints)?;
    Ok(v)
}

fn convert(ty: &InkType, value: &Value) -> Result<InkValue, String> {
    match ty {
        InkType::String => match value {
            Value::String(s) => Ok(InkValue::String(s.clone())),
            Value::Number(n) => Ok(InkValue::String(n.to_string())),
            Value::Bool(b) => Ok(InkValue::String(b.to_string())),
            _ => Err(format!("{} is not a string", show(value))),
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
                _ => Err(format!("{} has no `image_name`", show(value))),
            },
            _ => Err(format!(
                "{} is not an image name or `{{image_name}}`",
                show(value)
            )),
        },
        InkType::Video => match value {
            Value::String(s) if !s.is_empty() => Ok(InkValue::Video {
                video_name: s.clone(),
            }),
            Value::Object(o) => match o.get("video_name") {
                Some(Value::String(s)) if !s.is_empty() => Ok(InkValue::Video {
                    video_name: s.clone(),
                }),
                _ => Err(format!("{} has no `video_name`", show(value))),
            },
            _ => Err(format!(
                "{} is not a video name or `{{video_name}}`",
                show(value)
            )),
        },
        InkType::Board => match value {
            Value::String(s) if s == "auto" => Ok(InkValue::Board(BoardChoice::Auto)),
            Value::String(s) if s == "none" => Ok(InkValue::Board(BoardChoice::None)),
            Value::String(s) if !s.is_empty() => Ok(InkValue::Board(BoardChoice::Id(s.clone()))),
            Value::Object(o) => match o.get("board_id") {
                Some(Value::String(s)) if !s.is_empty() => {
                    Ok(InkValue::Board(BoardChoice::Id(s.clone())))
                }
                _ => Err(format!("{} has no `board_id`", show(value))),
            },
            _ => Err(format!(
                "{} is not a board id, `auto`, `none` or `{{board_id}}`",
                show(value)
            )),
        },
        InkType::Color => to_color(value).map(InkValue::Color),
        InkType::Model(types) => to_model(types, value),
        InkType::Collection(item) => match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| convert(item, v).map_err(|e| format!("item {i}: {e}")))
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

fn to_integer(value: &Value) -> Result<i64, String> {
    let not = || format!("{} is not an integer", show(value));
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

fn to_float(value: &Value) -> Result<f64, String> {
    let not = || format!("{} is not a number", show(value));
    let x = match value {
        Value::Number(n) => n.as_f64().ok_or_else(not)?,
        Value::String(s) => s.trim().parse::<f64>().map_err(|_| not())?,
        _ => return Err(not()),
    };
    if x.is_finite() { Ok(x) } else { Err(not()) }
}

fn to_bool(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(format!("{} is not a boolean (true or false)", show(value))),
        },
        _ => Err(format!("{} is not a boolean (true or false)", show(value))),
    }
}

fn to_enum(members: &[Value], value: &Value) -> Result<InkValue, String> {
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
        .map(|(_, n)| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default();
    Err(format!(
        "{} is not one of {}{closest}",
        show(value),
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn to_color(value: &Value) -> Result<Color, String> {
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
                _ => Err(format!(
                    "{} is not a colour (`#rrggbb`, `#rrggbbaa` or `{{r, g, b, a}}`)",
                    show(value)
                )),
            }
        }
        Value::Object(o) => {
            let part = |k: &str, default: Option<u8>| -> Result<u8, String> {
                match o.get(k) {
                    None => default.ok_or_else(|| format!("{} has no `{k}`", show(value))),
                    Some(v) => v
                        .as_u64()
                        .and_then(|n| u8::try_from(n).ok())
                        .ok_or_else(|| {
                            format!("`{k}` of {} is not an integer from 0 to 255", show(value))
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
        _ => Err(format!(
            "{} is not a colour (`#rrggbb`, `#rrggbbaa` or `{{r, g, b, a}}`)",
            show(value)
        )),
    }
}

fn to_model(types: &[String], value: &Value) -> Result<InkValue, String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Ok(InkValue::ModelName(s.trim().to_string())),
        Value::Object(o) => {
            let missing: Vec<&str> = ["key", "hash", "name", "base", "type"]
                .into_iter()
                .filter(|k| !o.get(*k).is_some_and(Value::is_string))
                .collect();
            if missing.len() == 5 {
                return Err(format!(
                    "{} is not a model (`{{key, hash, name, base, type}}` or a name)",
                    show(value)
                ));
            }
            if !missing.is_empty() {
                // `{name}` alone (maybe with base/type) is a model to resolve by name.
                if let (Some(Value::String(name)), true) = (o.get("name"), missing.contains(&"key"))
                {
                    return Ok(InkValue::ModelName(name.clone()));
                }
                return Err(format!(
                    "model {} lacks `{}`",
                    show(value),
                    missing.join("`, `")
                ));
            }
            let model: ModelIdentifier = serde_json::from_value(value.clone())
                .map_err(|e| format!("{} is not a model: {e}", show(value)))?;
            if !types.is_empty() && !types.contains(&model.model_type) {
                return Err(format!(
                    "model `{}` is of type `{}`, this input takes `{}`",
                    model.name,
                    model.model_type,
                    types.join("`, `")
                ));
            }
            Ok(InkValue::Model(model))
        }
        _ => Err(format!(
            "{} is not a model (`{{key, hash, name, base, type}}` or a name)",
            show(value)
        )),
    }
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
        let e =
            coerce(&InkType::Integer, &Constraints::default(), &json!("3.5")).expect_err("not int");
        assert_eq!(e, "`3.5` is not an integer");
        let e = coerce(&InkType::Boolean, &Constraints::default(), &json!("maybe"))
            .expect_err("not bool");
        assert_eq!(e, "`maybe` is not a boolean (true or false)");
    }

    #[test]
    fn enums_accept_members_only_and_suggest_the_closest() {
        let ty = InkType::Enum(vec![json!("euler"), json!("euler_a"), json!("ddim")]);
        assert_eq!(ok(&ty, json!("ddim")), InkValue::Enum(json!("ddim")));
        let e = coerce(&ty, &Constraints::default(), &json!("eulr")).expect_err("no");
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
            coerce(&types, &Constraints::default(), &vae).expect_err("wrong type"),
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
            coerce(&ty, &Constraints::default(), &json!([1, "x"])).expect_err("bad item"),
            "item 1: `x` is not an integer"
        );
        let ty = InkType::OneOrMany(Box::new(InkType::Float));
        assert_eq!(ok(&ty, json!("7.5")), InkValue::Float(7.5));
        assert_eq!(ok(&ty, json!([1, 2])).to_json(), json!([1.0, 2.0]));
    }
}

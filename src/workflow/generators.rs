//! Generators that feed batch nodes with values computed without the server: arithmetic
//! sequences, linear distributions, uniform random values and parsed strings. (Dynamic prompts
//! and images from a board need the server and are refused here.)
//!
//! Uniform random values come from our own seeded generator: the same seed gives the same
//! values on every run, but not the values the web UI would draw.

use serde_json::{Map, Value};

use crate::random::SplitMix64;

/// Why a generator cannot be expanded here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeneratorError {
    /// The spec is not an object (the spec as JSON).
    #[error("expected a generator object, got {0}")]
    NotAnObject(String),
    /// The spec has no `type`.
    #[error("the generator has no `type`")]
    NoType,
    /// A numeric parameter is missing or not a number.
    #[error("the generator has no number `{0}`")]
    NoNumber(String),
    /// `count` is missing or out of range.
    #[error("the generator has no `count` from 0 to {MAX_COUNT}")]
    NoCount,
    /// A string generator has no `input`.
    #[error("the generator has no `input` string")]
    NoInput,
    /// The generator (its type) draws on the server: dynamic prompts, images from a board.
    #[error("the generator `{0}` needs the server and cannot be expanded offline")]
    NeedsServer(String),
}

/// The most values a generator may produce.
const MAX_COUNT: u32 = 100_000;

/// The values a generator spec (`{type, start, step, count, ...}`) produces.
///
/// # Errors
/// The missing or invalid parameter, or a generator type that needs the server.
pub fn generate(spec: &Value) -> Result<Vec<Value>, GeneratorError> {
    let obj = spec
        .as_object()
        .ok_or_else(|| GeneratorError::NotAnObject(spec.to_string()))?;
    let ty = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or(GeneratorError::NoType)?;
    let integer = ty.starts_with("integer_generator");
    let float = ty.starts_with("float_generator");
    let string = ty.starts_with("string_generator");
    let numbers = |xs: Vec<f64>| -> Vec<Value> {
        xs.into_iter()
            .map(|x| {
                if integer {
                    Value::from(round(x))
                } else {
                    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
                }
            })
            .collect()
    };
    if (integer || float) && ty.ends_with("_arithmetic_sequence") {
        let (start, step, count) = (num(obj, "start")?, num(obj, "step")?, count(obj)?);
        if step == 0.0 {
            return Ok(numbers(vec![start]));
        }
        return Ok(numbers(
            (0..count).map(|i| start + f64::from(i) * step).collect(),
        ));
    }
    if (integer || float) && ty.ends_with("_linear_distribution") {
        let (start, end, count) = (num(obj, "start")?, num(obj, "end")?, count(obj)?);
        if count <= 1 {
            return Ok(numbers(vec![start]));
        }
        let last = f64::from(count - 1);
        return Ok(numbers(
            (0..count)
                .map(|i| start + (end - start) * f64::from(i) / last)
                .collect(),
        ));
    }
    if (integer || float) && ty.contains("uniform") {
        let (min, max, count) = (num(obj, "min")?, num(obj, "max")?, count(obj)?);
        let seed = obj
            .get("seed")
            .and_then(Value::as_u64)
            .unwrap_or_else(time_seed);
        let mut rng = SplitMix64(seed);
        return Ok(if integer {
            let (lo, hi) = (round(min), round(max));
            (0..count)
                .map(|_| Value::from(rng.int_in(lo, hi)))
                .collect()
        } else {
            numbers((0..count).map(|_| min + rng.unit() * (max - min)).collect())
        });
    }
    if ty.ends_with("_parse_string") {
        let input = obj
            .get("input")
            .and_then(Value::as_str)
            .ok_or(GeneratorError::NoInput)?;
        let split_on = match obj.get("splitOn").and_then(Value::as_str) {
            None | Some("") => ",".to_string(),
            Some(s) => unescape(s),
        };
        let parts = input
            .split(split_on.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty());
        return Ok(if string {
            parts.map(|s| Value::String(s.to_string())).collect()
        } else if integer {
            parts
                .filter_map(|s| s.parse::<f64>().ok())
                .filter(|x| x.is_finite())
                .map(|x| Value::from(round(x.trunc())))
                .collect()
        } else {
            numbers(
                parts
                    .filter_map(|s| s.parse::<f64>().ok())
                    .filter(|x| x.is_finite())
                    .collect(),
            )
        });
    }
    Err(GeneratorError::NeedsServer(ty.to_owned()))
}

fn num(obj: &Map<String, Value>, key: &str) -> Result<f64, GeneratorError> {
    obj.get(key)
        .and_then(Value::as_f64)
        .ok_or_else(|| GeneratorError::NoNumber(key.to_owned()))
}

fn count(obj: &Map<String, Value>) -> Result<u32, GeneratorError> {
    obj.get("count")
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok())
        .filter(|c| *c <= MAX_COUNT)
        .ok_or(GeneratorError::NoCount)
}

#[allow(clippy::cast_possible_truncation)]
fn round(x: f64) -> i64 {
    x.round() as i64
}

/// `\n` and `\t` written as two characters in the UI's split field.
fn unescape(s: &str) -> String {
    s.replace("\\n", "\n")
        .replace("\\t", "\t")
        .replace("\\r", "\r")
}

fn time_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() ^ u64::from(d.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sequences_and_distributions() {
        let g = |v: Value| generate(&v).expect("generates");
        assert_eq!(
            g(
                json!({"type": "integer_generator_arithmetic_sequence", "start": 2, "step": 3, "count": 4})
            ),
            vec![json!(2), json!(5), json!(8), json!(11)]
        );
        assert_eq!(
            g(
                json!({"type": "float_generator_linear_distribution", "start": 0, "end": 1, "count": 3})
            ),
            vec![json!(0.0), json!(0.5), json!(1.0)]
        );
        assert_eq!(
            g(
                json!({"type": "string_generator_parse_string", "input": "a, b,,c ", "splitOn": ","})
            ),
            vec![json!("a"), json!("b"), json!("c")]
        );
        assert_eq!(
            g(json!({"type": "float_generator_parse_string", "input": "1;x;2.5", "splitOn": ";"})),
            vec![json!(1.0), json!(2.5)]
        );
    }

    #[test]
    fn seeded_random_values_repeat_and_stay_in_range() {
        let spec = json!({"type": "integer_generator_random_distribution_uniform", "min": 5, "max": 7, "count": 50, "seed": 42});
        let a = generate(&spec).expect("a");
        assert_eq!(a, generate(&spec).expect("b"));
        assert!(
            a.iter()
                .all(|v| (5..=7).contains(&v.as_i64().expect("int")))
        );
        assert!(a.iter().any(|v| v != &a[0]));
    }

    #[test]
    fn server_generators_are_refused() {
        let e = generate(&json!({"type": "string_generator_dynamic_prompts_random", "input": "{a|b}", "count": 2}))
            .expect_err("needs the server");
        assert_eq!(
            e,
            GeneratorError::NeedsServer("string_generator_dynamic_prompts_random".into())
        );
        assert_eq!(
            e.to_string(),
            "the generator `string_generator_dynamic_prompts_random` needs the server and cannot be expanded offline"
        );
    }
}

//! Checking a converted value against the schema's constraints.

use serde_json::{Number, Value};

use super::{Constraints, InkValue};

/// Checks a converted value against the schema's constraints (for lists, each item).
///
/// # Errors
/// A sentence naming the value and the rule it breaks.
pub fn check(value: &InkValue, c: &Constraints) -> Result<(), String> {
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
                return Err(format!("`{s}` is shorter than the minimum length {min}"));
            }
            if let Some(max) = c.max_length
                && len > max
            {
                return Err(format!(
                    "`{}` is longer than the maximum length {max}",
                    shorten(s)
                ));
            }
            Ok(())
        }
        InkValue::Collection(items) => {
            let n = items.len() as u64;
            if let Some(min) = c.min_items
                && n < min
            {
                return Err(format!("{n} items are fewer than the minimum {min}"));
            }
            if let Some(max) = c.max_items
                && n > max
            {
                return Err(format!("{n} items are more than the maximum {max}"));
            }
            for (i, item) in items.iter().enumerate() {
                check(item, c).map_err(|e| format!("item {i}: {e}"))?;
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

fn check_number(v: &Value, c: &Constraints) -> Result<(), String> {
    let Some(x) = v.as_f64() else { return Ok(()) };
    let shown = v.to_string();
    let bound = |n: &Number| n.as_f64().unwrap_or(f64::NAN);
    if let Some(m) = &c.exclusive_minimum
        && x <= bound(m)
    {
        return Err(format!(
            "{shown} is not greater than the exclusive minimum {m}"
        ));
    }
    if let Some(m) = &c.minimum
        && x < bound(m)
    {
        return Err(format!("{shown} is less than the minimum {m}"));
    }
    if let Some(m) = &c.exclusive_maximum
        && x >= bound(m)
    {
        return Err(format!(
            "{shown} is not less than the exclusive maximum {m}"
        ));
    }
    if let Some(m) = &c.maximum
        && x > bound(m)
    {
        return Err(format!("{shown} is greater than the maximum {m}"));
    }
    if let Some(m) = &c.multiple_of {
        let step = bound(m);
        if step > 0.0 {
            let q = x / step;
            if (q - q.round()).abs() > 1e-9 {
                return Err(format!("{shown} is not a multiple of {m}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::ink::{InkType, coerce};
    use serde_json::json;

    fn ok_with(ty: &InkType, c: &Constraints, v: Value) -> InkValue {
        coerce(ty, c, &v).expect("accepted")
    }

    #[test]
    fn constraints_name_the_value_and_the_rule() {
        let c = Constraints {
            exclusive_minimum: Some(0.into()),
            ..Constraints::default()
        };
        assert_eq!(
            coerce(&InkType::Integer, &c, &json!(-5)).expect_err("refused"),
            "-5 is not greater than the exclusive minimum 0"
        );
        assert_eq!(
            coerce(&InkType::Integer, &c, &json!(0)).expect_err("refused"),
            "0 is not greater than the exclusive minimum 0"
        );
        let c = Constraints {
            minimum: Number::from_f64(0.0),
            maximum: Some(1.into()),
            multiple_of: Some(8.into()),
            ..Constraints::default()
        };
        assert_eq!(
            coerce(&InkType::Float, &c, &json!(1.5)).expect_err("max"),
            "1.5 is greater than the maximum 1"
        );
        assert_eq!(
            coerce(&InkType::Float, &c, &json!(-0.5)).expect_err("min"),
            "-0.5 is less than the minimum 0.0"
        );
        let c = Constraints {
            multiple_of: Some(8.into()),
            ..Constraints::default()
        };
        assert_eq!(
            coerce(&InkType::Integer, &c, &json!(100)).expect_err("mult"),
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
            coerce(&InkType::Float, &c, &json!(1)).expect_err("xmax"),
            "1.0 is not less than the exclusive maximum 1"
        );
        let c = Constraints {
            min_length: Some(2),
            max_length: Some(3),
            ..Constraints::default()
        };
        assert_eq!(
            coerce(&InkType::String, &c, &json!("a")).expect_err("short"),
            "`a` is shorter than the minimum length 2"
        );
        assert_eq!(
            coerce(&InkType::String, &c, &json!("abcd")).expect_err("long"),
            "`abcd` is longer than the maximum length 3"
        );
    }
}

//! Checking a typed value against the schema's constraints.

use super::*;
use serde_json::{Number, Value};

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

pub(super) fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(37).collect::<String>())
    } else {
        s.to_string()
    }
}

pub(super) fn check_number(v: &Value, c: &Constraints) -> Result<(), ValueError> {
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

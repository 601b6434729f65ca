//! Why a value does not fit an input.

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

pub(super) fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn did_you_mean(closest: Option<&str>) -> String {
    closest
        .map(|n| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default()
}

//! Plain templates: those that cannot grow (`{{ vars.style }}`, `{{ sweep.image | stem }}`), told
//! apart by their text so they are rendered without a budget.

/// Filters whose result is no longer than their input (a [plain](is_plain) template may use
/// them).
const PLAIN_FILTERS: &[&str] = &[
    "stem",
    "basename",
    "slug",
    "lower",
    "upper",
    "trim",
    "title",
    "capitalize",
    "string",
    "length",
    "int",
    "float",
    "abs",
    "round",
];

/// The longest template that can be [plain](is_plain): its reads and concatenations are few, so
/// its values stay within a small multiple of the context's.
const MAX_PLAIN_LEN: usize = 512;

/// Whether `source` cannot grow: no tags or comments, and `{{ }}` expressions of variables,
/// literals, parentheses, [`PLAIN_FILTERS`] (with literal arguments) and the operators that add
/// or compare (`+ - / // % ~`, comparisons, `and or not in`), but no repetition (`*`, `**`), no
/// calls and no list or map literals; and at most [`MAX_PLAIN_LEN`] bytes. `{{ vars.style }}`,
/// `{{ sweep['Hue shift'] | slug }}`, `{{ job.index % 50 + 1 }}` are plain.
pub(super) fn is_plain(source: &str) -> bool {
    if source.len() > MAX_PLAIN_LEN || source.contains("{%") || source.contains("{#") {
        return false;
    }
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return false;
        };
        let expr = after[..end].strip_prefix('-').unwrap_or(&after[..end]);
        let expr = expr.strip_suffix('-').unwrap_or(expr);
        if !is_plain_expression(expr) {
            return false;
        }
        rest = &after[end + 2..];
    }
    true
}

/// One token of an expression, as far as [`is_plain_expression`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Name(&'a str),
    Literal,
    Operator,
    Open(char),
    Close(char),
    Dot,
    Comma,
    Pipe,
}

/// The tokens of `expr`; `None` for any character a plain expression does not use.
fn tokens(expr: &str) -> Option<Vec<Token<'_>>> {
    let mut out = Vec::new();
    let mut rest = expr.trim_start();
    while let Some(c) = rest.chars().next() {
        let len = if c.is_ascii_alphabetic() || c == '_' {
            let n = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.push(Token::Name(&rest[..n]));
            n
        } else if c.is_ascii_digit() {
            out.push(Token::Literal);
            rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
                .unwrap_or(rest.len())
        } else if c == '\'' || c == '"' {
            let close = rest[1..].find(c)? + 1;
            if rest[..close].contains('\\') {
                return None;
            }
            out.push(Token::Literal);
            close + 1
        } else if let Some(op) = ["//", "==", "!=", "<=", ">="]
            .iter()
            .find(|op| rest.starts_with(**op))
        {
            out.push(Token::Operator);
            op.len()
        } else {
            out.push(match c {
                '+' | '-' | '/' | '%' | '~' | '<' | '>' => Token::Operator,
                '(' | '[' => Token::Open(c),
                ')' | ']' => Token::Close(c),
                '.' => Token::Dot,
                ',' => Token::Comma,
                '|' => Token::Pipe,
                _ => return None,
            });
            1
        };
        rest = rest[len..].trim_start();
    }
    Some(out)
}

/// See [`is_plain`].
fn is_plain_expression(expr: &str) -> bool {
    const WORDS: &[&str] = &[
        "and", "or", "not", "in", "true", "false", "none", "True", "False", "None",
    ];
    let Some(tokens) = tokens(expr) else {
        return false;
    };
    let mut brackets = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| tokens[j]);
        let after = tokens.get(i + 1).copied();
        let ok = match *t {
            Token::Name(n) => match before {
                // A filter, maybe with literal arguments.
                Some(Token::Pipe) => PLAIN_FILTERS.contains(&n) || n == "default",
                // An attribute.
                Some(Token::Dot) => true,
                // A variable or a word, never called.
                _ => after != Some(Token::Open('(')) || WORDS.contains(&n),
            },
            // `(` of a filter's arguments, or grouping; `[` only to subscript.
            Token::Open('[') => {
                matches!(before, Some(Token::Name(_) | Token::Close(_)))
                    && matches!(after, Some(Token::Literal))
                    && tokens.get(i + 2) == Some(&Token::Close(']'))
            }
            Token::Open(c) => {
                let call = matches!(before, Some(Token::Name(n)) if !WORDS.contains(&n));
                let filter = i >= 2 && tokens[i - 2] == Token::Pipe;
                if call && !filter {
                    false
                } else {
                    // A filter's arguments are literals only.
                    if filter {
                        let close = tokens[i..].iter().position(|t| *t == Token::Close(')'));
                        let Some(close) = close else { return false };
                        if !tokens[i + 1..i + close]
                            .iter()
                            .all(|t| matches!(t, Token::Literal | Token::Comma))
                        {
                            return false;
                        }
                    }
                    brackets.push(c);
                    true
                }
            }
            Token::Close(c) => {
                let open = if c == ')' { '(' } else { '[' };
                c == ']' || brackets.pop() == Some(open)
            }
            Token::Dot => matches!(after, Some(Token::Name(_))),
            Token::Comma => brackets.last() == Some(&'('),
            Token::Literal | Token::Operator | Token::Pipe => true,
        };
        if !ok {
            return false;
        }
    }
    brackets.is_empty() && !tokens.is_empty()
}

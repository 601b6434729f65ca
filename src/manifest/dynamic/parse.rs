//! The dynamic-prompt grammar, read the way the `dynamicprompts` library reads it: variants
//! `{a|b}` (nested, empty, weighted `{0.5::a|b}`, bounded `{2$$a|b}` / `{1-2$$ and $$a|b}`),
//! wildcards `__name__`, comments (`#` to the end of the line, `//` and `/* */` where a part
//! starts), tabs expanded to 8 columns. Variables (`${...}`), wraps (`%{...}`), and the random and
//! cyclical sampler marks (`~`, `@`) are refused with a clear message.

use super::{DynamicError, MAX_DEPTH, MAX_TEMPLATE_CHARS};

/// One part of a template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// Text as written.
    Literal(String),
    /// Parts one after the other.
    Seq(Vec<Node>),
    /// One (or `min..=max`) of its options.
    Variant(Variant),
    /// The values of a wildcard, by its name (or glob) as written between `__`.
    Wildcard(String),
}

/// `{...}`: options, how many to pick and how to join them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Variant {
    pub(crate) options: Vec<(f64, Node)>,
    pub(crate) min: usize,
    pub(crate) max: usize,
    pub(crate) separator: String,
}

/// Python's `str.expandtabs()` (8 columns), which the library's parser applies first.
fn expand_tabs(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut col = 0usize;
    for c in s.chars() {
        match c {
            '\t' => {
                let n = 8 - col % 8;
                out.extend(std::iter::repeat_n(' ', n));
                col += n;
            }
            '\n' | '\r' => {
                out.push(c);
                col = 0;
            }
            _ => {
                out.push(c);
                col += 1;
            }
        }
    }
    out
}

/// Parses `template`.
pub(crate) fn parse(template: &str) -> Result<Node, DynamicError> {
    let count = template.chars().count();
    if count > MAX_TEMPLATE_CHARS {
        return Err(DynamicError::new(format!(
            "the template has {count} characters, more than the limit of {MAX_TEMPLATE_CHARS}"
        )));
    }
    let chars: Vec<char> = expand_tabs(template).chars().collect();
    let mut p = Parser {
        s: chars,
        pos: 0,
        depth: 0,
    };
    let node = p.prompt(false)?;
    if p.pos < p.s.len() {
        return Err(p.error(format!("unexpected `{}`", p.s[p.pos])));
    }
    Ok(node)
}

struct Parser {
    s: Vec<char>,
    pos: usize,
    depth: usize,
}

/// Characters that never belong to text outside variants.
fn stops_text(c: char) -> bool {
    matches!(c, '#' | '{' | '$' | '%')
}

/// Characters that also end text inside a variant.
fn stops_variant_text(c: char) -> bool {
    stops_text(c) || matches!(c, '|' | '}')
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.s.get(self.pos).copied()
    }

    fn at(&self, text: &str) -> bool {
        text.chars()
            .enumerate()
            .all(|(i, c)| self.s.get(self.pos + i) == Some(&c))
    }

    fn error(&self, message: String) -> DynamicError {
        DynamicError::new(format!(
            "{message} at character {} of the template",
            self.pos + 1
        ))
    }

    /// Skips comments where a part may start.
    fn skip_comments(&mut self) -> bool {
        let start = self.pos;
        loop {
            if self.at("#") || self.at("//") {
                while let Some(c) = self.peek() {
                    if c == '\n' || c == '\r' {
                        break;
                    }
                    self.pos += 1;
                }
            } else if self.at("/*") {
                let mut i = self.pos + 2;
                loop {
                    if i + 1 >= self.s.len() {
                        // Unclosed: not a comment.
                        return self.pos > start;
                    }
                    if self.s[i] == '*' && self.s[i + 1] == '/' {
                        break;
                    }
                    i += 1;
                }
                self.pos = i + 2;
            } else {
                return self.pos > start;
            }
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\n' | '\r')) {
            self.pos += 1;
        }
    }

    /// Whether position `i` may continue a run of text.
    fn text_char(&self, i: usize, in_variant: bool) -> bool {
        let Some(&c) = self.s.get(i) else {
            return false;
        };
        let stop = if in_variant {
            stops_variant_text(c)
        } else {
            stops_text(c)
        };
        let wildcard_starts = c == '_' && self.s.get(i + 1) == Some(&'_');
        !(stop || wildcard_starts)
    }

    fn text_run(&mut self, in_variant: bool) -> String {
        let start = self.pos;
        while self.text_char(self.pos, in_variant) {
            self.pos += 1;
        }
        self.s[start..self.pos].iter().collect()
    }

    /// A sequence of parts, up to the end (or, in a variant, up to `|` or `}`).
    fn prompt(&mut self, in_variant: bool) -> Result<Node, DynamicError> {
        let mut parts = Vec::new();
        loop {
            self.skip_comments();
            let Some(c) = self.peek() else { break };
            if in_variant && matches!(c, '|' | '}') {
                break;
            }
            if c == '{' {
                parts.push(Node::Variant(self.variant()?));
            } else if self.at("__") {
                parts.push(self.wildcard()?);
            } else if c == '$' {
                return Err(self.error(
                    "`$` starts a variable (`${name}`), which invk-run does not support".into(),
                ));
            } else if c == '%' {
                return Err(self.error(
                    "`%` starts a wrap command (`%{...}`), which invk-run does not support; the library refuses a lone `%` too".into(),
                ));
            } else {
                let mut text = self.text_run(in_variant);
                // Runs of text split by comments are joined with a space, as the library does.
                loop {
                    let before = self.pos;
                    if self.skip_comments() && self.text_char(self.pos, in_variant) {
                        text.push(' ');
                        text.push_str(&self.text_run(in_variant));
                    } else {
                        self.pos = before;
                        break;
                    }
                }
                parts.push(Node::Literal(text));
            }
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap_or(Node::Seq(Vec::new()))
        } else {
            Node::Seq(parts)
        })
    }

    fn sampler_mark(&mut self) -> Result<(), DynamicError> {
        match self.peek() {
            Some('!') => {
                self.pos += 1;
                Ok(())
            }
            Some(c @ ('~' | '@')) => Err(self.error(format!(
                "`{c}` asks for the library's {} sampler, which invk-run does not support; use `random: N` on the sweep key for random prompts",
                if c == '~' { "random" } else { "cyclical" }
            ))),
            _ => Ok(()),
        }
    }

    fn digits(&mut self) -> Option<usize> {
        let start = self.pos;
        while matches!(self.peek(), Some('0'..='9')) {
            self.pos += 1;
        }
        if self.pos == start {
            return None;
        }
        let text: String = self.s[start..self.pos].iter().collect();
        // A bound beyond any number of options means "all of them".
        Some(text.parse().unwrap_or(usize::MAX))
    }

    /// `N$$`, `N-M$$`, `-M$$`, `N-$$`, each optionally followed by `SEPARATOR$$`.
    fn bound(&mut self, options_later: &mut Option<(Option<usize>, Option<usize>)>) -> String {
        let start = self.pos;
        let range = (|| {
            if self.peek() == Some('-') {
                self.pos += 1;
                let upper = self.digits()?;
                return Some((Some(1), Some(upper)));
            }
            let lower = self.digits()?;
            if self.peek() == Some('-') {
                self.pos += 1;
                let save = self.pos;
                match self.digits() {
                    Some(upper) => Some((Some(lower), Some(upper))),
                    None => {
                        self.pos = save;
                        Some((Some(lower), None))
                    }
                }
            } else {
                Some((Some(lower), Some(lower)))
            }
        })();
        let Some(range) = range.filter(|_| self.at("$$")) else {
            self.pos = start;
            return ",".into();
        };
        self.pos += 2;
        *options_later = Some(range);
        let sep_start = self.pos;
        while let Some(c) = self.peek() {
            let ok = c == ' ' || (c.is_ascii_graphic() && !matches!(c, '$' | '{' | '}'));
            if !ok {
                break;
            }
            self.pos += 1;
        }
        if self.pos > sep_start && self.at("$$") {
            let sep: String = self.s[sep_start..self.pos].iter().collect();
            self.pos += 2;
            sep
        } else {
            self.pos = sep_start;
            ",".into()
        }
    }

    /// `1.5::`, `.5::`, `-0.5::`, `2::`: an option's weight (a signed decimal, or digits).
    fn weight(&mut self) -> f64 {
        let start = self.pos;
        let signed = matches!(self.peek(), Some('+' | '-'));
        if signed {
            self.pos += 1;
        }
        let ints = self.count_digits();
        let dot = self.peek() == Some('.');
        let fraction = if dot {
            self.pos += 1;
            self.count_digits()
        } else {
            0
        };
        let valid = if dot {
            ints + fraction > 0
        } else {
            !signed && ints > 0
        };
        if valid && self.at("::") {
            let text: String = self.s[start..self.pos].iter().collect();
            self.pos += 2;
            return text.parse().unwrap_or(1.0);
        }
        self.pos = start;
        1.0
    }

    fn count_digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some('0'..='9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn variant(&mut self) -> Result<Variant, DynamicError> {
        let open = self.pos;
        self.pos += 1;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!(
                "variants are nested more than {MAX_DEPTH} deep, the limit,"
            )));
        }
        self.skip_ws();
        self.sampler_mark()?;
        let mut range = None;
        let separator = self.bound(&mut range);
        self.skip_ws();
        let mut options = Vec::new();
        loop {
            self.skip_ws();
            let weight = self.weight();
            let node = self.prompt(true)?;
            options.push((weight, node));
            if self.peek() == Some('|') {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.skip_ws();
        if self.peek() != Some('}') {
            self.pos = open;
            return Err(self.error("the variant `{` is never closed by `}`".into()));
        }
        self.pos += 1;
        self.depth -= 1;
        let (min, max) = match range {
            None => (1, 1),
            Some((lower, upper)) => (lower.unwrap_or(1), upper.unwrap_or(options.len())),
        };
        let (min, max) = if min <= max { (min, max) } else { (max, min) };
        Ok(Variant {
            options,
            min,
            max,
            separator,
        })
    }

    fn wildcard(&mut self) -> Result<Node, DynamicError> {
        let open = self.pos;
        self.pos += 2;
        self.sampler_mark()?;
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(c, '#' | '{' | '$' | '%' | '(' | ')') || self.at("__") {
                break;
            }
            self.pos += 1;
        }
        let name: String = self.s[start..self.pos].iter().collect();
        match self.peek() {
            Some('{' | '$' | '(') => {
                return Err(self.error(
                    "a wildcard name with variants, variables or parameters is not supported"
                        .into(),
                ));
            }
            _ if !self.at("__") || name.is_empty() => {
                self.pos = open;
                return Err(self.error(
                    "`__` starts a wildcard (`__name__`) that is never closed by `__`".into(),
                ));
            }
            _ => {}
        }
        self.pos += 2;
        Ok(Node::Wildcard(name))
    }
}

//! Text that users or servers control (file names, labels, server strings, error messages that
//! quote them), made safe to print on a terminal or in a log: control characters are escaped
//! (`\n`, `\u{1b}`, ...), so a file name cannot fake a status line or colour the terminal.

use std::borrow::Cow;
use std::path::Path;

/// `text` with every control character escaped (`\n`, `\t`, `\u{1b}`, ...).
#[must_use]
pub fn printable(text: &str) -> Cow<'_, str> {
    escape(text, |_| true)
}

/// `text` with every control character but the line feed escaped: for messages made of
/// several lines on purpose (diagnostics with a source excerpt).
#[must_use]
pub fn printable_lines(text: &str) -> Cow<'_, str> {
    escape(text, |c| c != '\n')
}

/// A path as [`printable`] text (not UTF-8 parts replaced).
#[must_use]
pub fn printable_path(path: &Path) -> String {
    printable(&path.to_string_lossy()).into_owned()
}

fn escape(text: &str, escaped: impl Fn(char) -> bool) -> Cow<'_, str> {
    let needs = |c: char| c.is_control() && escaped(c);
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_plain_text_is_kept() {
        assert_eq!(printable("a.yaml"), "a.yaml");
        assert!(matches!(printable("a.yaml"), Cow::Borrowed(_)));
        assert_eq!(
            printable("x\nclaimed evil.yaml\r\u{1b}[31m\t\u{7f}é"),
            "x\\nclaimed evil.yaml\\r\\u{1b}[31m\\t\\u{7f}é"
        );
        assert_eq!(printable_lines("a\nb\rc"), "a\nb\\rc");
        assert_eq!(printable_path(Path::new("dir/new\nline")), "dir/new\\nline");
    }
}

//! Where each key and value of a manifest sits in its YAML text.
//!
//! serde reports a location only for the first syntax or type error it meets; the semantic checks
//! (unknown input, glob matching nothing, bad value in job 17) happen later, on plain values. So
//! the loader also walks the YAML event stream once and records, for every path such as
//! `sweep.matrix.Hue[2]`, the line and column of the key and of the value.
//!
//! The event parser is `saphyr-parser`: pure safe Rust (the crate denies `unsafe`, which rules out
//! driving `unsafe-libyaml` ourselves), YAML 1.2 like serde_norway, maintained by the yaml-rust2
//! authors who moved there, and every event carries a span with 1-based lines and 0-based
//! character columns. It also lets us see duplicate keys, which serde_json's map silently
//! collapses.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScanError, Span};

/// A line and column in a manifest, both 1-based (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

impl Location {
    /// The start of the file.
    pub const START: Location = Location { line: 1, col: 1 };

    fn from_span(span: &Span) -> Location {
        Location {
            line: span.start.line(),
            col: span.start.col() + 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One step of a [`YamlPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index (0-based).
    Index(usize),
}

/// The path of a value inside a manifest, e.g. `sweep.matrix.Hue[2]` or `inputs["Positive Prompt"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct YamlPath(Vec<Segment>);

impl YamlPath {
    /// The document root.
    #[must_use]
    pub fn root() -> YamlPath {
        YamlPath(Vec::new())
    }

    /// A path of mapping keys (`YamlPath::keys(&["output", "dir"])`).
    #[must_use]
    pub fn keys(keys: &[&str]) -> YamlPath {
        YamlPath(keys.iter().map(|k| Segment::Key((*k).to_owned())).collect())
    }

    /// This path extended by a mapping key.
    #[must_use]
    pub fn key(&self, key: &str) -> YamlPath {
        let mut p = self.clone();
        p.0.push(Segment::Key(key.to_owned()));
        p
    }

    /// This path extended by a sequence index.
    #[must_use]
    pub fn index(&self, index: usize) -> YamlPath {
        let mut p = self.clone();
        p.0.push(Segment::Index(index));
        p
    }

    /// The path one level up (the root stays the root).
    #[must_use]
    pub fn parent(&self) -> YamlPath {
        let mut p = self.clone();
        p.0.pop();
        p
    }

    /// The steps of the path.
    #[must_use]
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// The last step as written: a key, or an index as digits (empty for the root).
    pub(crate) fn last_step(&self) -> String {
        match self.0.last() {
            Some(Segment::Key(k)) => k.clone(),
            Some(Segment::Index(i)) => i.to_string(),
            None => String::new(),
        }
    }

    /// Appends the segments of a `serde_path_to_error` path (as found below this path).
    #[must_use]
    pub fn join_serde(&self, path: &serde_path_to_error::Path) -> YamlPath {
        let mut p = self.clone();
        for seg in path {
            match seg {
                serde_path_to_error::Segment::Seq { index } => p.0.push(Segment::Index(*index)),
                serde_path_to_error::Segment::Map { key } => p.0.push(Segment::Key(key.clone())),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        p
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if is_plain_key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Segment::Key(k) => write!(f, "[{k:?}]")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

fn is_plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// Where one node of the document sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Node {
    /// The key's location, for mapping entries.
    key: Option<Location>,
    /// The value's location.
    value: Location,
}

/// A key that appears twice in the same mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// The path of the key (both occurrences share it).
    pub path: YamlPath,
    /// Where the key first appears.
    pub first: Location,
    /// Where it appears again.
    pub again: Location,
}

/// The locations of every key and value of a YAML document.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    nodes: HashMap<YamlPath, Node>,
    duplicates: Vec<DuplicateKey>,
}

/// A list or map of a manifest may have at most this many items.
pub const MAX_COLLECTION_ITEMS: usize = 100_000;

/// Lists and maps of a manifest may be nested at most this deep (a manifest needs a handful of
/// levels; the YAML reader itself stops at 128).
pub(crate) const MAX_NESTING: usize = 64;

/// A YAML syntax error found while building a [`SourceMap`], or a list too long to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the parser stopped (for a list that is too long: where the list starts).
    pub location: Location,
    /// What it expected.
    pub message: String,
    /// The limit the document is over, if it is valid YAML but over one.
    pub over: Option<Limit>,
}

/// A limit of what a manifest's YAML may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A list or map has more than [`MAX_COLLECTION_ITEMS`] items.
    Items,
    /// Lists and maps are nested more than [`MAX_NESTING`] deep.
    Nesting,
}

enum Frame {
    Mapping {
        path: YamlPath,
        pending_key: Option<(String, Location)>,
        seen: HashMap<String, Location>,
    },
    Sequence {
        path: YamlPath,
        next: usize,
    },
}

impl SourceMap {
    /// Walks the first document of `text` and records every node's location.
    ///
    /// # Errors
    /// The YAML syntax error the parser stopped at.
    pub fn parse(text: &str) -> Result<SourceMap, SyntaxError> {
        let mut map = SourceMap::default();
        let mut stack: Vec<Frame> = Vec::new();
        // Keys that are themselves collections (`? [a, b] : c`) have no path; their contents are
        // skipped by counting nesting depth.
        let mut complex_key_depth = 0usize;
        for item in Parser::new_from_str(text) {
            let (event, span) = item.map_err(|e| syntax_error(&e))?;
            let here = Location::from_span(&span);
            if complex_key_depth > 0 {
                match event {
                    Event::MappingStart(..) | Event::SequenceStart(..) => complex_key_depth += 1,
                    Event::MappingEnd | Event::SequenceEnd => {
                        complex_key_depth -= 1;
                        if complex_key_depth == 0 {
                            set_pending_key(&mut stack, "?".to_owned(), here);
                        }
                    }
                    _ => {}
                }
                continue;
            }
            match event {
                Event::DocumentEnd => break,
                Event::Scalar(value, ..) => {
                    if expects_key(&stack) {
                        set_pending_key(&mut stack, value.into_owned(), here);
                    } else {
                        map.place_value(&mut stack, here)?;
                    }
                }
                Event::Alias(_) => {
                    if expects_key(&stack) {
                        set_pending_key(&mut stack, "*".to_owned(), here);
                    } else {
                        map.place_value(&mut stack, here)?;
                    }
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    if expects_key(&stack) {
                        complex_key_depth = 1;
                        continue;
                    }
                    if stack.len() >= MAX_NESTING {
                        return Err(SyntaxError {
                            location: here,
                            message: format!(
                                "lists and maps are nested more than {MAX_NESTING} deep here, the limit"
                            ),
                            over: Some(Limit::Nesting),
                        });
                    }
                    let path = map.place_value(&mut stack, here)?;
                    stack.push(match event {
                        Event::MappingStart(..) => Frame::Mapping {
                            path,
                            pending_key: None,
                            seen: HashMap::new(),
                        },
                        _ => Frame::Sequence { path, next: 0 },
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        Ok(map)
    }

    /// Records a value at the current position and returns its path.
    fn place_value(
        &mut self,
        stack: &mut [Frame],
        here: Location,
    ) -> Result<YamlPath, SyntaxError> {
        let full = match stack.last() {
            Some(Frame::Sequence { path, next }) if *next >= MAX_COLLECTION_ITEMS => {
                Some((path.clone(), "list"))
            }
            Some(Frame::Mapping { path, seen, .. }) if seen.len() >= MAX_COLLECTION_ITEMS => {
                Some((path.clone(), "map"))
            }
            _ => None,
        };
        if let Some((path, what)) = full {
            let shown = if path.segments().is_empty() {
                "the manifest".to_owned()
            } else {
                format!("`{path}`")
            };
            return Err(SyntaxError {
                location: self.value(&path),
                message: format!(
                    "the {what} {shown} has more than {MAX_COLLECTION_ITEMS} items, the limit"
                ),
                over: Some(Limit::Items),
            });
        }
        Ok(match stack.last_mut() {
            None => {
                self.nodes.insert(
                    YamlPath::root(),
                    Node {
                        key: None,
                        value: here,
                    },
                );
                YamlPath::root()
            }
            Some(Frame::Sequence { path, next }) => {
                let p = path.index(*next);
                *next += 1;
                self.nodes.insert(
                    p.clone(),
                    Node {
                        key: None,
                        value: here,
                    },
                );
                p
            }
            Some(Frame::Mapping {
                path,
                pending_key,
                seen,
            }) => {
                let (key, key_at) = pending_key.take().unwrap_or_else(|| ("?".to_owned(), here));
                let p = path.key(&key);
                if let Some(first) = seen.get(&key) {
                    self.duplicates.push(DuplicateKey {
                        path: p.clone(),
                        first: *first,
                        again: key_at,
                    });
                    // The last occurrence wins in the parsed value, so it wins here too.
                } else {
                    seen.insert(key, key_at);
                }
                self.nodes.insert(
                    p.clone(),
                    Node {
                        key: Some(key_at),
                        value: here,
                    },
                );
                p
            }
        })
    }

    /// Where the value at `path` starts, or the nearest enclosing node's location when the path
    /// is not in the document (a default, or a value reached through an alias).
    #[must_use]
    pub fn value(&self, path: &YamlPath) -> Location {
        self.nearest(path).value
    }

    /// Where the key of the mapping entry at `path` is (the value's location for list items and
    /// the root), with the same fallback as [`SourceMap::value`].
    #[must_use]
    pub fn key(&self, path: &YamlPath) -> Location {
        let node = self.nearest(path);
        node.key.unwrap_or(node.value)
    }

    /// Whether `path` is present in the document.
    #[must_use]
    pub fn contains(&self, path: &YamlPath) -> bool {
        self.nodes.contains_key(path)
    }

    /// Keys that appear more than once in one mapping.
    #[must_use]
    pub fn duplicates(&self) -> &[DuplicateKey] {
        &self.duplicates
    }

    fn nearest(&self, path: &YamlPath) -> Node {
        let mut p = path.clone();
        loop {
            if let Some(node) = self.nodes.get(&p) {
                return *node;
            }
            if p.0.is_empty() {
                return Node {
                    key: None,
                    value: Location::START,
                };
            }
            p.0.pop();
        }
    }
}

fn expects_key(stack: &[Frame]) -> bool {
    matches!(
        stack.last(),
        Some(Frame::Mapping {
            pending_key: None,
            ..
        })
    )
}

fn set_pending_key(stack: &mut [Frame], key: String, at: Location) {
    if let Some(Frame::Mapping { pending_key, .. }) = stack.last_mut() {
        *pending_key = Some((key, at));
    }
}

fn syntax_error(e: &ScanError) -> SyntaxError {
    let m = e.marker();
    SyntaxError {
        location: Location {
            line: m.line(),
            col: m.col() + 1,
        },
        message: e.info().to_owned(),
        over: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
version: 1
inputs:
  Hue: 30
  \"Positive Prompt\": a cat
sweep:
  matrix:
    animal: [cat, dog]
    steps:
      - 10
      - 20
";

    #[test]
    fn nesting_is_bounded_where_it_passes_the_limit() {
        let nested = |depth: usize| format!("vars:\n  deep:\n    {}1\n", "- ".repeat(depth));
        // The document's map and `vars` hold the lists: MAX_NESTING - 2 of them fit.
        assert!(SourceMap::parse(&nested(MAX_NESTING - 2)).is_ok());
        let e = SourceMap::parse(&nested(MAX_NESTING - 1)).expect_err("too deep");
        assert_eq!(e.over, Some(Limit::Nesting));
        // At the list that is one too many.
        assert_eq!(
            (e.location.line, e.location.col),
            (3, 5 + 2 * (MAX_NESTING - 2))
        );
        let e = SourceMap::parse(&nested(10_000)).expect_err("too deep");
        assert_eq!(e.over, Some(Limit::Nesting));
        let e = SourceMap::parse(&format!("a: {}1{}", "[".repeat(100), "]".repeat(100)))
            .expect_err("too deep");
        assert_eq!(e.over, Some(Limit::Nesting));
    }

    #[test]
    fn keys_and_values_have_their_lines_and_columns() {
        let map = SourceMap::parse(DOC).expect("parses");
        let cases = [
            (YamlPath::keys(&["version"]), (1, 1), (1, 10)),
            (YamlPath::keys(&["inputs", "Hue"]), (3, 3), (3, 8)),
            (
                YamlPath::keys(&["inputs", "Positive Prompt"]),
                (4, 3),
                (4, 22),
            ),
            (
                YamlPath::keys(&["sweep", "matrix", "animal"]).index(1),
                (7, 19),
                (7, 19),
            ),
            (
                YamlPath::keys(&["sweep", "matrix", "steps"]).index(1),
                (10, 9),
                (10, 9),
            ),
        ];
        for (path, key, value) in cases {
            assert_eq!(
                map.key(&path),
                Location {
                    line: key.0,
                    col: key.1
                },
                "key of {path}"
            );
            assert_eq!(
                map.value(&path),
                Location {
                    line: value.0,
                    col: value.1
                },
                "value of {path}"
            );
        }
    }

    #[test]
    fn missing_paths_fall_back_to_the_nearest_ancestor() {
        let map = SourceMap::parse(DOC).expect("parses");
        let p = YamlPath::keys(&["sweep", "matrix", "nope"]);
        assert!(!map.contains(&p));
        assert_eq!(map.value(&p), Location { line: 7, col: 5 });
        assert_eq!(map.value(&YamlPath::keys(&["output"])), Location::START);
    }

    #[test]
    fn duplicate_keys_are_reported_with_both_places() {
        let map = SourceMap::parse("a: 1\nb:\n  x: 1\n  x: 2\na: 3\n").expect("parses");
        let d: Vec<_> = map
            .duplicates()
            .iter()
            .map(|d| (d.path.to_string(), d.first, d.again))
            .collect();
        assert_eq!(
            d,
            vec![
                (
                    "b.x".to_owned(),
                    Location { line: 3, col: 3 },
                    Location { line: 4, col: 3 }
                ),
                (
                    "a".to_owned(),
                    Location { line: 1, col: 1 },
                    Location { line: 5, col: 1 }
                ),
            ]
        );
    }

    #[test]
    fn syntax_errors_carry_a_location() {
        let err = SourceMap::parse("a: [1, 2\nb: 3\n").expect_err("unclosed flow sequence");
        assert!(err.location.line >= 1, "{err:?}");
        assert!(!err.message.is_empty());
    }

    #[test]
    fn paths_display_like_the_manifest_reads() {
        let p = YamlPath::keys(&["inputs", "Positive Prompt"]);
        assert_eq!(p.to_string(), "inputs[\"Positive Prompt\"]");
        assert_eq!(
            YamlPath::keys(&["sweep", "matrix", "Hue"])
                .index(2)
                .to_string(),
            "sweep.matrix.Hue[2]"
        );
        assert_eq!(YamlPath::root().to_string(), "(top level)");
    }

    #[test]
    fn complex_keys_and_aliases_do_not_derail_the_walk() {
        let map = SourceMap::parse("? [a, b]\n: 1\nx: &anchor {y: 2}\nz: *anchor\nw: 4\n")
            .expect("parses");
        assert_eq!(
            map.value(&YamlPath::keys(&["w"])),
            Location { line: 5, col: 4 }
        );
        assert_eq!(
            map.value(&YamlPath::keys(&["x", "y"])),
            Location { line: 3, col: 16 }
        );
        assert_eq!(
            map.value(&YamlPath::keys(&["z", "y"])),
            Location { line: 4, col: 4 }
        );
    }
}

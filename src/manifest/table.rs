//! Data files a sweep takes its values from: tables (CSV or TSV with a header, JSON Lines) for
//! `sweep.table`, and plain lists of lines for `{lines: FILE}`.
//!
//! A file is read once, bounded ([`MAX_TABLE_BYTES`], [`MAX_TABLE_ROWS`], [`MAX_TABLE_CELLS`]),
//! and indexed: its cells are kept as text in one buffer with their ends and places, so a value is
//! made when a job asks for it and memory follows the file, not a JSON value per cell. Problems
//! in the file (a ragged row, a duplicate column, a line that is no JSON object) carry its line
//! and column.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::diagnostic::DataFile;
use super::source::{Location, Segment};

/// A data file may have at most this many bytes.
pub const MAX_TABLE_BYTES: u64 = 64 << 20;
/// A data file may have at most this many rows (lines of a list).
pub const MAX_TABLE_ROWS: usize = 1_000_000;
/// A data file may have at most this many cells (rows times columns).
pub const MAX_TABLE_CELLS: usize = 10_000_000;
/// At most this many problems are collected from one file.
const MAX_PROBLEMS: usize = 100;

/// How a data file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Comma-separated values with a header line.
    Csv,
    /// Tab-separated values with a header line.
    Tsv,
    /// One JSON object per line; the first line's keys are the columns.
    JsonLines,
    /// One value per non-empty line (`#` comment lines skipped): a single column.
    Lines,
}

impl Format {
    /// The table format of `file`, from its extension.
    pub(crate) fn of_table(file: &str) -> Option<Format> {
        let ext = Path::new(file)
            .extension()?
            .to_string_lossy()
            .to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "tsv" => Some(Format::Tsv),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// A problem with a data file: at a place in it, or (`at: None`) with the file as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableProblem {
    pub(crate) at: Option<Location>,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl TableProblem {
    fn whole(message: String, hint: Option<String>) -> TableProblem {
        TableProblem {
            at: None,
            message,
            hint,
        }
    }

    fn at(at: Location, message: String, hint: Option<String>) -> TableProblem {
        TableProblem {
            at: Some(at),
            message,
            hint,
        }
    }
}

/// A data file, read and indexed.
#[derive(Debug)]
pub(crate) struct Table {
    /// The file as messages name it.
    shown: PathBuf,
    /// Column names (a list file has one, unnamed).
    pub(crate) columns: Vec<String>,
    /// Where each column is named (the header cell; the key in a JSON Lines file's first row).
    header: Vec<Location>,
    /// Cells hold JSON text (JSON Lines) rather than plain text.
    json: bool,
    /// Every cell's text, row by row.
    text: String,
    /// The end of each cell in `text` (its start is the previous cell's end).
    ends: Vec<u32>,
    /// Where each cell starts in the file: (line, column).
    places: Vec<(u32, u32)>,
    rows: usize,
}

impl Table {
    /// Reads `written` (relative to `dir`) as `format`. The file is named in messages as `dir`
    /// joined with `written` (or as written, when `dir` is the current folder).
    ///
    /// # Errors
    /// Every problem found, up to a hundred: the file cannot be read or is too large (`at:
    /// None`), or rows in it are wrong (with their line and column).
    pub(crate) fn load(
        dir: &Path,
        written: &str,
        format: Format,
    ) -> Result<Table, Vec<TableProblem>> {
        let path = dir.join(written);
        let shown = if dir == Path::new(".") {
            PathBuf::from(written)
        } else {
            path.clone()
        };
        let text = read_bounded(&path, written)?;
        let mut loader = Loader {
            table: Table {
                shown,
                columns: Vec::new(),
                header: Vec::new(),
                json: format == Format::JsonLines,
                text: String::new(),
                ends: Vec::new(),
                places: Vec::new(),
                rows: 0,
            },
            problems: Vec::new(),
            cursor: Cursor::default(),
            raw: &text,
        };
        match format {
            Format::Csv => loader.csv(b','),
            Format::Tsv => loader.csv(b'\t'),
            Format::JsonLines => loader.json_lines(),
            Format::Lines => loader.lines(),
        }
        let Loader {
            table, problems, ..
        } = loader;
        if !problems.is_empty() {
            return Err(problems);
        }
        if table.rows == 0 {
            let what = if format == Format::Lines {
                "has no value line"
            } else {
                "has no rows"
            };
            return Err(vec![TableProblem::whole(
                format!("`{written}` {what}, so the sweep would make no job"),
                Some("add rows to the file, or remove it from the sweep".into()),
            )]);
        }
        Ok(table)
    }

    /// How many rows.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    fn cell(&self, row: usize, column: usize) -> usize {
        row * self.columns.len() + column
    }

    fn text(&self, cell: usize) -> &str {
        let start = if cell == 0 {
            0
        } else {
            self.ends[cell - 1] as usize
        };
        &self.text[start..self.ends[cell] as usize]
    }

    /// The value at `row`, `column`: a string (CSV, TSV, lists) or the JSON value (JSON Lines).
    pub(crate) fn value(&self, row: usize, column: usize) -> Value {
        let text = self.text(self.cell(row, column));
        if self.json {
            serde_json::from_str(text).unwrap_or(Value::Null)
        } else {
            Value::String(text.to_owned())
        }
    }

    /// Where the cell at `row`, `column` is.
    pub(crate) fn location(&self, row: usize, column: usize) -> Location {
        let (line, col) = self.places[self.cell(row, column)];
        Location {
            line: line as usize,
            col: col as usize,
        }
    }

    /// Where column `column` is named (the top of the file for a list).
    pub(crate) fn header_location(&self, column: usize) -> Location {
        self.header.get(column).copied().unwrap_or(Location::START)
    }
}

/// The places of a table's cells for messages: below the table's path in the manifest, a key
/// names a column (its header) and a key then an index name a cell.
impl DataFile for Table {
    fn file(&self) -> &Path {
        &self.shown
    }

    fn locate(&self, rest: &[Segment]) -> Option<Location> {
        match rest {
            [Segment::Key(name)] => {
                let column = self.columns.iter().position(|c| c == name)?;
                Some(self.header_location(column))
            }
            [Segment::Key(name), Segment::Index(row)] => {
                let column = self.columns.iter().position(|c| c == name)?;
                (*row < self.rows).then(|| self.location(*row, column))
            }
            // A list file: its single column, by row.
            [Segment::Index(row)] if self.columns.len() == 1 && *row < self.rows => {
                Some(self.location(*row, 0))
            }
            _ => None,
        }
    }
}

/// Reads a whole data file, refusing one over [`MAX_TABLE_BYTES`] or not UTF-8.
#[allow(
    clippy::disallowed_methods,
    reason = "its problem names the file as the manifest writes it; NotFound gets its own message"
)]
fn read_bounded(path: &Path, written: &str) -> Result<String, Vec<TableProblem>> {
    let whole = |message: String, hint: Option<String>| vec![TableProblem::whole(message, hint)];
    let file = std::fs::File::open(path).map_err(|e| {
        let hint = (e.kind() == std::io::ErrorKind::NotFound).then(|| {
            format!(
                "the path is relative to the manifest's folder `{}`",
                crate::fs::parent_dir(path).display()
            )
        });
        let what = if e.kind() == std::io::ErrorKind::NotFound {
            "not found".to_owned()
        } else {
            format!("cannot be read: {e}")
        };
        whole(format!("data file `{written}` {what}"), hint)
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_TABLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| whole(format!("data file `{written}` cannot be read: {e}"), None))?;
    if bytes.len() as u64 > MAX_TABLE_BYTES {
        return Err(whole(
            format!(
                "data file `{written}` is larger than {} MiB, the limit",
                MAX_TABLE_BYTES >> 20
            ),
            Some("split it into several files and run them as several manifests".into()),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        vec![TableProblem::at(
            Location { line, col: 1 },
            "this line is not UTF-8 text".into(),
            Some("save the file as UTF-8".into()),
        )]
    })
}

/// Line and column (in characters) of a byte offset, moved forward through the text.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    offset: usize,
    line: u32,
    col: u32,
}

impl Default for Cursor {
    fn default() -> Cursor {
        Cursor {
            offset: 0,
            line: 1,
            col: 1,
        }
    }
}

impl Cursor {
    /// Moves to `offset` (not before the current one).
    fn advance(&mut self, raw: &str, offset: usize) {
        for &b in &raw.as_bytes()[self.offset..offset.min(raw.len())] {
            if b == b'\n' {
                self.line += 1;
                self.col = 1;
            } else if b & 0xC0 != 0x80 {
                self.col += 1;
            }
        }
        self.offset = self.offset.max(offset.min(raw.len()));
    }

    fn location(self) -> Location {
        Location {
            line: self.line as usize,
            col: self.col as usize,
        }
    }
}

struct Loader<'r> {
    table: Table,
    problems: Vec<TableProblem>,
    cursor: Cursor,
    raw: &'r str,
}

impl Loader<'_> {
    fn problem(&mut self, at: Location, message: String, hint: Option<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(TableProblem::at(at, message, hint));
        }
    }

    /// The place of byte `offset` (not before the last place asked for).
    fn place(&mut self, offset: usize) -> Location {
        self.cursor.advance(self.raw, offset);
        self.cursor.location()
    }

    /// Appends a row's cells; `false` (with a problem) when the file is over a limit.
    fn push_row<'c>(
        &mut self,
        cells: impl Iterator<Item = (Location, std::borrow::Cow<'c, str>)>,
        at: Location,
    ) -> bool {
        if self.table.rows >= MAX_TABLE_ROWS
            || self.table.ends.len() + self.table.columns.len() > MAX_TABLE_CELLS
        {
            self.problem(
                at,
                format!(
                    "the file has more than {MAX_TABLE_ROWS} rows or {MAX_TABLE_CELLS} cells, the limit; it reaches the limit on this line"
                ),
                Some("split it into several files and run them as several manifests".into()),
            );
            return false;
        }
        for (place, text) in cells {
            self.table.text.push_str(&text);
            let end = u32::try_from(self.table.text.len()).unwrap_or(u32::MAX);
            self.table.ends.push(end);
            let line = u32::try_from(place.line).unwrap_or(u32::MAX);
            let col = u32::try_from(place.col).unwrap_or(u32::MAX);
            self.table.places.push((line, col));
        }
        self.table.rows += 1;
        true
    }

    fn csv(&mut self, delimiter: u8) {
        let raw = self.raw;
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(raw.as_bytes());
        let mut record = csv::StringRecord::new();
        let mut first = true;
        loop {
            let start = reader.position().byte() as usize;
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let at = e
                        .position()
                        .map_or(Location::START, |p| self.place(p.byte() as usize));
                    self.problem(at, format!("unreadable row: {e}"), None);
                    return;
                }
            }
            let mut record_start = record.position().map_or(start, |p| p.byte() as usize);
            // The parser's position may be at blank lines it skipped before the record.
            while matches!(raw.as_bytes().get(record_start), Some(b'\n' | b'\r')) {
                record_start += 1;
            }
            let end = reader.position().byte() as usize;
            let starts = field_starts(&raw[record_start..end.max(record_start)], delimiter);
            let places: Vec<Location> = if starts.len() == record.len() {
                starts
                    .iter()
                    .map(|&s| self.place(record_start + s))
                    .collect()
            } else {
                let at = self.place(record_start);
                vec![at; record.len()]
            };
            let row_at = places.first().copied().unwrap_or(Location::START);
            if first {
                first = false;
                self.header(record.iter().map(str::trim).zip(places.iter().copied()));
                continue;
            }
            let width = self.table.columns.len();
            if record.len() != width {
                let columns = self
                    .table
                    .columns
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let n = record.len();
                self.problem(
                    row_at,
                    format!(
                        "this row has {n} field{}, the header has {width}: {columns}",
                        if n == 1 { "" } else { "s" }
                    ),
                    Some("every row needs one value per column; quote a value that holds the separator".into()),
                );
                continue;
            }
            let cells = places
                .into_iter()
                .zip(record.iter().map(std::borrow::Cow::Borrowed));
            let cells: Vec<_> = cells.collect();
            if !self.push_row(cells.into_iter(), row_at) {
                return;
            }
        }
    }

    /// Records the column names; problems for empty and repeated names.
    fn header<'h>(&mut self, names: impl Iterator<Item = (&'h str, Location)>) {
        for (name, at) in names {
            let name = name.trim_start_matches('\u{feff}');
            if name.is_empty() {
                self.problem(
                    at,
                    "a column has no name in the header".into(),
                    Some("the first line names the columns: inputs of the workflow or template variables".into()),
                );
            } else if let Some(i) = self.table.columns.iter().position(|c| c == name) {
                let first = self.table.header[i];
                self.problem(
                    at,
                    format!(
                        "column `{name}` appears twice in the header (first at column {})",
                        first.col
                    ),
                    Some("keep one of the two columns".into()),
                );
            }
            self.table.columns.push(name.to_owned());
            self.table.header.push(at);
        }
    }

    fn json_lines(&mut self) {
        let raw = self.raw;
        let mut offset = 0usize;
        for line in raw.split_inclusive('\n') {
            let start = offset;
            offset += line.len();
            let body = line.trim_end_matches(['\n', '\r']);
            if body.trim().is_empty() {
                continue;
            }
            let at = self.place(start + (body.len() - body.trim_start().len()));
            let object: Map<String, Value> = match serde_json::from_str::<Value>(body) {
                Ok(Value::Object(m)) => m,
                Ok(other) => {
                    self.problem(
                        at,
                        format!(
                            "a JSON Lines row is an object of column values, found {}",
                            super::diagnostic::describe(&other)
                        ),
                        Some("write one object per line, e.g. `{\"Prompt\": \"a cat\", \"Steps\": 20}`".into()),
                    );
                    continue;
                }
                Err(e) => {
                    self.problem(
                        Location {
                            line: at.line,
                            col: e.column().max(1),
                        },
                        format!("invalid JSON: {}", strip_position(&e.to_string())),
                        None,
                    );
                    continue;
                }
            };
            // Where each key is written on the line (the line's start when it cannot be found).
            let key_place = |key: &str| {
                let quoted = serde_json::to_string(key).unwrap_or_default();
                body.find(&quoted).map_or(at, |i| Location {
                    line: at.line,
                    col: 1 + body[..i].chars().count(),
                })
            };
            if self.table.columns.is_empty() {
                if object.is_empty() {
                    self.problem(at, "the first row has no columns".into(), None);
                    return;
                }
                let names: Vec<(String, Location)> =
                    object.keys().map(|k| (k.clone(), key_place(k))).collect();
                self.header(names.iter().map(|(n, l)| (n.as_str(), *l)));
            }
            let mut cells = Vec::with_capacity(self.table.columns.len());
            let mut fine = true;
            for column in self.table.columns.clone() {
                match object.get(&column) {
                    Some(v) => {
                        cells.push((key_place(&column), std::borrow::Cow::Owned(v.to_string())))
                    }
                    None => {
                        fine = false;
                        self.problem(
                            at,
                            format!("this row has no `{column}`, which the first row has"),
                            Some("every row needs the same keys as the first (the columns)".into()),
                        );
                    }
                }
            }
            for key in object.keys() {
                if !self.table.columns.contains(key) {
                    fine = false;
                    self.problem(
                        key_place(key),
                        format!("this row has `{key}`, which the first row does not"),
                        Some("every row needs the same keys as the first (the columns)".into()),
                    );
                }
            }
            if fine && !self.push_row(cells.into_iter(), at) {
                return;
            }
        }
    }

    fn lines(&mut self) {
        let raw = self.raw;
        self.table.columns.push(String::new());
        let mut offset = 0usize;
        for line in raw.split_inclusive('\n') {
            let start = offset;
            offset += line.len();
            let value = line.trim();
            if value.is_empty() || value.starts_with('#') {
                continue;
            }
            let lead = line.len() - line.trim_start().len();
            let at = self.place(start + lead);
            let value = value.trim_start_matches('\u{feff}');
            if !self.push_row(std::iter::once((at, std::borrow::Cow::Borrowed(value))), at) {
                return;
            }
        }
    }
}

/// serde_json's message without its " at line L column C".
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The byte offsets at which the fields of one raw CSV record start (quotes as RFC 4180 writes
/// them: a doubled quote inside a quoted field toggles twice). The caller checks the count
/// against the parser's and ignores these offsets when they differ.
fn field_starts(record: &str, delimiter: u8) -> Vec<usize> {
    let mut starts = vec![0];
    let mut quoted = false;
    for (i, &b) in record.as_bytes().iter().enumerate() {
        if b == b'"' {
            quoted = !quoted;
        } else if b == delimiter && !quoted {
            starts.push(i + 1);
        } else if (b == b'\n' || b == b'\r') && !quoted {
            break;
        }
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str, text: &str) -> Result<Table, Vec<String>> {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::fs::write(dir.path().join(name), text).expect("write");
        let format = Format::of_table(name).unwrap_or(Format::Lines);
        Table::load(dir.path(), name, format).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| match p.at {
                    Some(at) => format!("{}:{}: {}", at.line, at.col, p.message),
                    None => p.message,
                })
                .collect()
        })
    }

    fn rows(t: &Table) -> Vec<Vec<Value>> {
        (0..t.rows())
            .map(|r| (0..t.columns.len()).map(|c| t.value(r, c)).collect())
            .collect()
    }

    #[test]
    fn csv_fields_may_hold_quotes_separators_and_newlines() {
        let t = load(
            "t.csv",
            "Prompt,Steps\n\"a cat, sitting\",4\n\"say \"\"hi\"\"\nthen go\",5\n\nplain,6\n",
        )
        .expect("valid");
        assert_eq!(t.columns, ["Prompt", "Steps"]);
        assert_eq!(
            rows(&t),
            [
                [Value::from("a cat, sitting"), Value::from("4")],
                [Value::from("say \"hi\"\nthen go"), Value::from("5")],
                [Value::from("plain"), Value::from("6")],
            ]
        );
        // Places: the second field of the quoted multi-line row is on the row's second line.
        assert_eq!(t.location(0, 1), Location { line: 2, col: 18 });
        assert_eq!(t.location(1, 1), Location { line: 4, col: 10 });
        assert_eq!(t.location(2, 0), Location { line: 6, col: 1 });
        assert_eq!(t.header_location(1), Location { line: 1, col: 8 });
    }

    #[test]
    fn tsv_and_json_lines_read_their_own_way() {
        let t = load("t.tsv", "a\tb\n1\tx y\n").expect("tsv");
        assert_eq!(rows(&t), [[Value::from("1"), Value::from("x y")]]);
        let t = load(
            "t.jsonl",
            "{\"Prompt\": \"cat\", \"Steps\": 4}\n\n{\"Steps\": 5, \"Prompt\": \"dog\"}\n",
        )
        .expect("jsonl");
        assert_eq!(t.columns, ["Prompt", "Steps"]);
        assert_eq!(
            rows(&t),
            [
                [Value::from("cat"), Value::from(4)],
                [Value::from("dog"), Value::from(5)]
            ]
        );
        assert_eq!(t.location(1, 1), Location { line: 3, col: 2 });
    }

    #[test]
    fn lines_skip_blanks_and_comments() {
        let t = load(
            "p.txt",
            "# prompts\n  a red fox  \n\n   # indented comment\nblue whale\r\n",
        )
        .expect("lines");
        assert_eq!(
            rows(&t),
            [[Value::from("a red fox")], [Value::from("blue whale")]]
        );
        assert_eq!(t.location(0, 0), Location { line: 2, col: 3 });
        assert_eq!(
            t.locate(&[Segment::Index(1)]),
            Some(Location { line: 5, col: 1 })
        );
    }

    #[test]
    fn problems_name_their_line_and_column() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "t.csv",
                "a,b\n1,2\n3\n4,5,6\n",
                &[
                    "3:1: this row has 1 field, the header has 2: `a`, `b`",
                    "4:1: this row has 3 fields, the header has 2: `a`, `b`",
                ],
            ),
            (
                "t.csv",
                "a,,a\n1,2,3\n",
                &[
                    "1:3: a column has no name in the header",
                    "1:4: column `a` appears twice in the header (first at column 1)",
                ],
            ),
            (
                "t.csv",
                "a,b\n",
                &["`t.csv` has no rows, so the sweep would make no job"],
            ),
            (
                "p.txt",
                "# only a comment\n\n",
                &["`p.txt` has no value line, so the sweep would make no job"],
            ),
            (
                "t.jsonl",
                "{\"a\": 1, \"b\": 2}\n{\"a\": 1}\n[1]\n{\"a\": 1, \"b\": 2, \"c\": 3}\n{\"a\": \n",
                &[
                    "2:1: this row has no `b`, which the first row has",
                    "3:1: a JSON Lines row is an object of column values, found a list",
                    "4:18: this row has `c`, which the first row does not",
                    "5:6: invalid JSON: EOF while parsing a value",
                ],
            ),
        ];
        for (name, text, expected) in cases {
            let got = load(name, text).expect_err(text);
            assert_eq!(got, *expected, "{text}");
        }
        let got = load("missing.csv", "").map(|_| ());
        assert!(got.is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Table::load(dir.path(), "none.csv", Format::Csv).expect_err("missing");
        assert_eq!(err[0].message, "data file `none.csv` not found");
        assert_eq!(err[0].at, None);
    }

    #[test]
    fn not_utf8_is_refused_at_its_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::fs::write(dir.path().join("t.csv"), b"a\nok\n\xff\n").expect("write");
        let err = Table::load(dir.path(), "t.csv", Format::Csv).expect_err("latin-1");
        assert_eq!(err[0].at, Some(Location { line: 3, col: 1 }));
        assert_eq!(err[0].message, "this line is not UTF-8 text");
    }
}

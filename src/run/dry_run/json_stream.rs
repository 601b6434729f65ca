//! A JSON object written as it is made: field by field, lists element by element, laid out as
//! `serde_json` lays out the whole, so a dry run of a million jobs never holds its document.

use std::io::Write;

use serde::Serialize;

/// A JSON object written field by field, lists element by element, laid out as
/// `serde_json::to_string_pretty` (or compact) would lay out the whole.
pub(super) struct JsonStream<'w, W: Write> {
    out: &'w mut W,
    pretty: bool,
    fields: usize,
}

impl<'w, W: Write> JsonStream<'w, W> {
    pub(super) fn new(out: &'w mut W, pretty: bool) -> JsonStream<'w, W> {
        JsonStream {
            out,
            pretty,
            fields: 0,
        }
    }

    fn key(&mut self, key: &str) -> std::io::Result<()> {
        let open = if self.fields == 0 { "{" } else { "," };
        let key = serde_json::to_string(key)?;
        if self.pretty {
            write!(self.out, "{open}\n  {key}: ")?;
        } else {
            write!(self.out, "{open}{key}:")?;
        }
        self.fields += 1;
        Ok(())
    }

    /// Writes `value` nested `depth` levels deep.
    fn value(&mut self, value: &impl Serialize, depth: usize) -> std::io::Result<()> {
        if self.pretty {
            let text = serde_json::to_string_pretty(value)?;
            let indent = "  ".repeat(depth);
            for (i, line) in text.lines().enumerate() {
                if i > 0 {
                    write!(self.out, "\n{indent}")?;
                }
                self.out.write_all(line.as_bytes())?;
            }
            Ok(())
        } else {
            serde_json::to_writer(&mut *self.out, value).map_err(std::io::Error::from)
        }
    }

    pub(super) fn field(&mut self, key: &str, value: &impl Serialize) -> std::io::Result<()> {
        self.key(key)?;
        self.value(value, 1)
    }

    pub(super) fn list<T: Serialize>(
        &mut self,
        key: &str,
        items: impl Iterator<Item = T>,
    ) -> std::io::Result<()> {
        self.key(key)?;
        self.out.write_all(b"[")?;
        let mut any = false;
        for item in items {
            let sep = if any { "," } else { "" };
            if self.pretty {
                write!(self.out, "{sep}\n    ")?;
            } else {
                self.out.write_all(sep.as_bytes())?;
            }
            self.value(&item, 2)?;
            any = true;
        }
        if any && self.pretty {
            self.out.write_all(b"\n  ")?;
        }
        self.out.write_all(b"]")
    }

    pub(super) fn end(self) -> std::io::Result<()> {
        if self.fields == 0 {
            self.out.write_all(b"{")?;
        }
        if self.pretty && self.fields > 0 {
            self.out.write_all(b"\n")?;
        }
        self.out.write_all(b"}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn the_stream_lays_out_json_as_serde_json_does() {
        let jobs = vec![
            json!({"index": 0, "inputs": {"a": [1, 2]}}),
            json!({"index": 1}),
        ];
        for pretty in [true, false] {
            let mut buf = Vec::new();
            let mut doc = JsonStream::new(&mut buf, pretty);
            doc.field("manifest", &"m.yaml").expect("write");
            doc.list("jobs", jobs.iter()).expect("write");
            doc.list("enqueues", std::iter::empty::<Value>())
                .expect("write");
            doc.end().expect("write");
            let whole = json!({"manifest": "m.yaml", "jobs": jobs, "enqueues": []});
            let expected = if pretty {
                serde_json::to_string_pretty(&whole).expect("json")
            } else {
                serde_json::to_string(&whole).expect("json")
            };
            assert_eq!(String::from_utf8(buf).expect("utf-8"), expected + "\n");
        }
    }
}

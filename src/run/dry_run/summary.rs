//! What a person reads of a dry run, on stderr: each input by its user name (its value, or how
//! many values it takes), the first files the run will write and how many more, the grids and
//! the gallery.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use super::outputs::{Grids, Outputs, gallery_file};
use crate::manifest::{InputValue, value_label};
use crate::run::finish::GALLERY_MAX_JOBS;
use crate::run::prepare::Prepared;
use crate::run::shard::Shard;

/// The summary lists this many of the files a run will write (and counts the rest).
const FILES_SHOWN: usize = 10;

/// A value in the summary is cut past this many characters.
const VALUE_CHARS: usize = 60;

/// The summary shows this many of an input's values.
const VALUES_SHOWN: usize = 3;

/// The summary counts an input's distinct values up to this many (and says "more than").
const MAX_DISTINCT: usize = 1000;

/// The values the jobs give one input: the first few, and how many distinct ones (up to a
/// bound, so that a sweep of unique prompts is not held whole).
#[derive(Default)]
struct Values {
    first: Vec<String>,
    seen: HashSet<String>,
}

impl Values {
    fn add(&mut self, value: String) {
        if self.seen.len() > MAX_DISTINCT || self.seen.contains(&value) {
            return;
        }
        if self.first.len() < VALUES_SHOWN {
            self.first.push(value.clone());
        }
        self.seen.insert(value);
    }
}

/// What a person reads of a dry run: each input by its user name (its value, or how many
/// values it takes), the first files the run will write and how many more, the grids and the
/// gallery.
pub(super) struct Summary {
    /// Inputs in the workflow's order: name, and the values the jobs give it.
    inputs: Vec<(String, Values)>,
    files: Vec<String>,
    file_count: usize,
    jobs: usize,
    grids: Grids,
    gallery: Option<PathBuf>,
    /// Whether the manifest asks for a gallery.
    gallery_wanted: bool,
}

impl Summary {
    pub(super) fn of(
        prepared: &Prepared,
        shard: Shard,
        outputs: &Outputs<'_>,
        grids: Grids,
    ) -> Summary {
        let expansion = &prepared.expansion;
        let total = expansion.job_count();
        let mut values: Vec<(String, Values)> = Vec::new();
        let mut files = Vec::new();
        for job in shard.indices(total).map(|i| expansion.job(i)) {
            for (system, v) in &job.inputs {
                let shown = match v {
                    InputValue::LocalImage(i) => i.written.clone(),
                    InputValue::Value(v) => value_label(v.get()),
                };
                let name = outputs.name(system);
                let i = values
                    .iter()
                    .position(|(n, _)| n == name)
                    .unwrap_or_else(|| {
                        values.push((name.to_owned(), Values::default()));
                        values.len() - 1
                    });
                values[i].1.add(shown);
            }
            if files.len() < FILES_SHOWN {
                for f in outputs.files(&job) {
                    if files.len() < FILES_SHOWN {
                        files.push(match f {
                            Ok(path) => path.display().to_string(),
                            Err(e) => format!("(no name: {e})"),
                        });
                    }
                }
            }
        }
        Summary {
            inputs: values,
            files,
            file_count: shard.jobs_of(total) * outputs.nodes.len(),
            jobs: shard.jobs_of(total),
            grids,
            gallery: gallery_file(prepared),
            gallery_wanted: prepared.file.manifest().output.gallery,
        }
    }

    pub(super) fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let cut = |s: &str| {
            let s = s.replace('\n', " ");
            if s.chars().count() > VALUE_CHARS {
                format!("{}…", s.chars().take(VALUE_CHARS - 1).collect::<String>())
            } else {
                s
            }
        };
        let width = self
            .inputs
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0);
        if !self.inputs.is_empty() {
            writeln!(out, "  inputs:")?;
        }
        for (name, values) in &self.inputs {
            let text = if values.seen.len() == 1 {
                cut(&values.first[0])
            } else {
                // A value with a comma is quoted, so the list stays readable.
                let first: Vec<String> = values
                    .first
                    .iter()
                    .map(|v| {
                        if v.contains(',') {
                            format!("{:?}", cut(v))
                        } else {
                            cut(v)
                        }
                    })
                    .collect();
                let more = if values.seen.len() > first.len() {
                    ", …"
                } else {
                    ""
                };
                let count = if values.seen.len() > MAX_DISTINCT {
                    format!("more than {MAX_DISTINCT}")
                } else {
                    values.seen.len().to_string()
                };
                format!("{count} values: {}{more}", first.join(", "))
            };
            writeln!(out, "    {name:<width$}  {text}")?;
        }
        let per_job = self.file_count.checked_div(self.jobs).unwrap_or(0);
        writeln!(
            out,
            "  files: {} ({per_job} per job, one per output node){}",
            self.file_count,
            if self.file_count > self.files.len() {
                format!("; the first {}:", self.files.len())
            } else {
                ":".to_owned()
            }
        )?;
        for f in &self.files {
            writeln!(out, "    {f}")?;
        }
        if self.file_count > self.files.len() {
            writeln!(out, "    and {} more", self.file_count - self.files.len())?;
        }
        match &self.grids {
            Grids::Files(files) if files.is_empty() => {}
            Grids::Files(files) => {
                writeln!(out, "  grids:")?;
                for g in files {
                    writeln!(out, "    {}", g.display())?;
                }
            }
            Grids::NotForSoManyJobs => writeln!(
                out,
                "  grids: none (a run of more than {GALLERY_MAX_JOBS} jobs draws none; `invk-run report` draws them after it)"
            )?,
        }
        if let Some(page) = &self.gallery {
            writeln!(out, "  gallery: {}", page.display())?;
        } else if self.gallery_wanted && self.jobs > GALLERY_MAX_JOBS {
            writeln!(
                out,
                "  gallery: none (a run of more than {GALLERY_MAX_JOBS} jobs writes none; `invk-run report` writes it after it)"
            )?;
        }
        Ok(())
    }
}

//! Data files of a sweep (tables, and `lines` files), read with their problems placed in them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::super::super::diagnostic::{At, DataFile, Diagnostics};
use super::super::super::source::{Location, Segment, YamlPath};
use super::super::super::table::{Format, Table, TableProblem};

/// Reads the data file `file` named at `path` (a table when `lines` is false); its problems go to
/// `diags`, placed in the file; the file is registered there for the problems found later.
pub(super) fn load_file(
    file: &str,
    format: Format,
    path: &YamlPath,
    base_dir: &Path,
    diags: &mut Diagnostics<'_>,
) -> Option<Arc<Table>> {
    match Table::load(base_dir, file, format) {
        Ok(table) => {
            let table = Arc::new(table);
            diags.add_data_file(path.clone(), table.clone());
            Some(table)
        }
        Err(problems) => {
            let shown = if base_dir == Path::new(".") {
                PathBuf::from(file)
            } else {
                base_dir.join(file)
            };
            let data = diags.data_files();
            let mut registered = false;
            for TableProblem { at, message, hint } in problems {
                match at {
                    None => diags.push(path, At::Value, message, hint),
                    Some(location) => {
                        if !registered {
                            diags.add_data_file(path.clone(), Arc::new(Unreadable(shown.clone())));
                            registered = true;
                        }
                        diags.push_in_data(data, location, message, hint);
                    }
                }
            }
            None
        }
    }
}

/// A data file with problems: named in messages, no place below it.
#[derive(Debug)]
struct Unreadable(PathBuf);

impl DataFile for Unreadable {
    fn file(&self) -> &Path {
        &self.0
    }

    fn locate(&self, _: &[Segment]) -> Option<Location> {
        None
    }
}

/// Reads a table of `sweep.table` (its format from its extension).
pub(super) fn load_table(
    file: &str,
    path: &YamlPath,
    base_dir: &Path,
    diags: &mut Diagnostics<'_>,
) -> Option<Arc<Table>> {
    let Some(format) = Format::of_table(file) else {
        diags.push(
            path,
            At::Value,
            format!("`{file}` is not a table file this version reads"),
            Some("tables are `.csv` or `.tsv` files with a header line, or `.jsonl` files (one JSON object per line); for one value per line write `{lines: FILE}` under `matrix`".into()),
        );
        return None;
    };
    load_file(file, format, path, base_dir, diags)
}

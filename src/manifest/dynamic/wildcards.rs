//! The `wildcards:` folder: every `.txt` file under it is a wildcard named by its path without
//! the extension (`colors.txt` is `__colors__`, `animals/cats.txt` is `__animals/cats__`), one
//! value per line, blank lines and lines starting with `#` skipped. A name is matched as the
//! library matches it: as a glob (`*`, `?`, `[...]`, `*` crossing `/`), and, when nothing matches,
//! again below any folder (`**/NAME`); the values of every matching file are merged, duplicates
//! dropped, and sorted.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{DynamicError, MAX_WILDCARD_FILE_BYTES, MAX_WILDCARD_FILES, MAX_WILDCARD_LINES};

/// Folders below the wildcards folder are followed at most this deep.
const MAX_FOLDER_DEPTH: usize = 16;

/// The values of a wildcard file, each with its line.
type Values = Arc<Vec<(String, usize)>>;

/// The `.txt` files of a wildcards folder, by wildcard name.
#[derive(Debug)]
pub struct WildcardDir {
    files: BTreeMap<String, PathBuf>,
    cache: std::sync::Mutex<HashMap<PathBuf, Values>>,
}

impl WildcardDir {
    /// Lists the wildcard files under `root` (at most [`MAX_WILDCARD_FILES`]).
    ///
    /// # Errors
    /// When `root` is not a readable folder, or holds too many files.
    pub fn open(root: &Path) -> Result<WildcardDir, DynamicError> {
        if !root.is_dir() {
            return Err(DynamicError::new(format!(
                "the wildcards folder `{}` is not a folder",
                root.display()
            )));
        }
        let mut files = BTreeMap::new();
        let mut stack = vec![(root.to_path_buf(), 0usize)];
        let mut seen = 0usize;
        while let Some((dir, depth)) = stack.pop() {
            let entries = crate::fs::read_dir(&dir).map_err(|e| {
                DynamicError::new(format!("cannot read the folder `{}`: {e}", dir.display()))
            })?;
            for entry in entries.flatten() {
                seen += 1;
                if seen > MAX_WILDCARD_FILES {
                    return Err(DynamicError::new(format!(
                        "the wildcards folder `{}` holds more than {MAX_WILDCARD_FILES} entries, the limit",
                        root.display()
                    )));
                }
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if path.is_dir() {
                    if !name.starts_with('.') && depth < MAX_FOLDER_DEPTH {
                        stack.push((path, depth + 1));
                    }
                } else if path.extension().is_some_and(|e| e == "txt") {
                    let relative = path.strip_prefix(root).unwrap_or(&path).with_extension("");
                    let key = relative
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/");
                    files.insert(key, path);
                }
            }
        }
        Ok(WildcardDir {
            files,
            cache: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The files whose names match `name` as the library matches it.
    pub(crate) fn matching(&self, name: &str) -> Result<Vec<&Path>, String> {
        let cleaned = clean(name)?;
        let find = |pattern: &str| -> Vec<&Path> {
            let pattern: Vec<char> = pattern.chars().collect();
            self.files
                .iter()
                .filter(|(n, _)| fnmatch(&n.chars().collect::<Vec<_>>(), &pattern))
                .map(|(_, p)| p.as_path())
                .collect()
        };
        let mut found = find(&cleaned);
        if found.is_empty() && !cleaned.starts_with("**") {
            found = find(&format!("**/{cleaned}"));
        }
        Ok(found)
    }

    /// Every wildcard name, for suggestions.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The values of one wildcard file, each with its line (read once).
    pub(crate) fn values(&self, file: &Path) -> Result<Values, DynamicError> {
        if let Some(v) = self.cache.lock().ok().and_then(|c| c.get(file).cloned()) {
            return Ok(v);
        }
        let values = Arc::new(read_values(file)?);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(file.to_path_buf(), values.clone());
        }
        Ok(values)
    }
}

/// The library's `clean_wildcard`: separators normalised, no `..`.
fn clean(name: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut last_sep = false;
    for c in name.chars() {
        if c == '/' || c == '\\' {
            if !last_sep {
                out.push('/');
            }
            last_sep = true;
        } else {
            out.push(c);
            last_sep = false;
        }
    }
    let out = out.trim_matches('/').to_owned();
    if out.contains("..") {
        return Err(format!("the wildcard name `{name}` contains `..`"));
    }
    Ok(out)
}

fn read_values(file: &Path) -> Result<Vec<(String, usize)>, DynamicError> {
    let at = |line: usize, message: String| DynamicError {
        message,
        hint: None,
        file: Some((file.to_path_buf(), line)),
    };
    let size = crate::fs::metadata(file)
        .map_err(|e| at(0, format!("cannot read the wildcard file: {e}")))?
        .len();
    if size > MAX_WILDCARD_FILE_BYTES {
        return Err(at(
            0,
            format!(
                "the wildcard file has {size} bytes, more than the limit of {MAX_WILDCARD_FILE_BYTES}"
            ),
        ));
    }
    let bytes =
        crate::fs::read(file).map_err(|e| at(0, format!("cannot read the wildcard file: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| at(0, "the wildcard file is not UTF-8 text".into()))?;
    let mut values = Vec::new();
    // Universal newlines, as Python reads text files.
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    for (i, line) in text.split('\n').enumerate() {
        let value = line.trim();
        if value.is_empty() || value.starts_with('#') {
            continue;
        }
        if values.len() == MAX_WILDCARD_LINES {
            return Err(at(
                i + 1,
                format!("the wildcard file has more than {MAX_WILDCARD_LINES} values, the limit"),
            ));
        }
        values.push((value.to_owned(), i + 1));
    }
    Ok(values)
}

/// Python's `fnmatch` (case-sensitive, as on POSIX): `*` any run (slashes too), `?` one
/// character, `[abc]`, `[a-z]`, `[!abc]`; a `[` without its `]` is itself.
fn fnmatch(name: &[char], pattern: &[char]) -> bool {
    // Iterative matcher with one backtrack point for `*`.
    let (mut n, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                '*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                '?' => {
                    n += 1;
                    p += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class(&pattern[p..], name[n]) {
                        if matched {
                            n += 1;
                            p += next;
                            continue;
                        }
                    } else if name[n] == '[' {
                        n += 1;
                        p += 1;
                        continue;
                    }
                }
                c if c == name[n] => {
                    n += 1;
                    p += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// A `[...]` class at the start of `pattern`: whether `c` is in it, and the class's length;
/// `None` when the class is not closed.
fn class(pattern: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pattern.get(i), Some('!'));
    if negate {
        i += 1;
    }
    let first = i;
    let mut matched = false;
    while i < pattern.len() {
        if pattern[i] == ']' && i > first {
            return Some((matched != negate, i + 1));
        }
        if pattern.get(i + 1) == Some(&'-') && pattern.get(i + 2).is_some_and(|&e| e != ']') {
            if pattern[i] <= c && c <= pattern[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if pattern[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, pattern: &str) -> bool {
        fnmatch(
            &name.chars().collect::<Vec<_>>(),
            &pattern.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn globs_match_as_fnmatch_does() {
        assert!(m("colors", "colors"));
        assert!(m("colors_warm", "colors*"));
        assert!(m("dir/colors", "**/colors"));
        assert!(m("dir/sub/colors", "*colors"));
        assert!(!m("colors", "**/colors"));
        assert!(m("a1", "a[0-9]"));
        assert!(!m("ab", "a[!b]"));
        assert!(m("a[", "a["));
        assert!(m("abc", "a?c"));
        assert!(!m("Colors", "colors"));
    }

    #[test]
    fn names_are_cleaned_like_the_library_cleans_them() {
        assert_eq!(clean("/a//b\\c/").as_deref(), Ok("a/b/c"));
        assert!(clean("../x").is_err());
    }
}

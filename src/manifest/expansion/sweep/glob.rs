//! The files a sweep's `glob` matches.

use std::path::Path;

use globset::GlobBuilder;

/// A `glob` pattern that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("invalid glob `{pattern}`: {kind}")]
pub(super) struct InvalidGlob {
    pattern: String,
    kind: globset::ErrorKind,
}

/// Files under `base_dir` matching `pattern` (`*` stays inside one folder, `**` crosses folders),
/// as `/`-separated paths relative to `base_dir` (absolute for an absolute pattern), sorted.
pub(super) fn glob_files(base_dir: &Path, pattern: &str) -> Result<Vec<String>, InvalidGlob> {
    let matcher = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| InvalidGlob {
            pattern: pattern.to_owned(),
            kind: e.kind().clone(),
        })?
        .compile_matcher();
    let absolute = Path::new(pattern).is_absolute();
    // Walk from the longest folder prefix without glob characters.
    let parts: Vec<&str> = pattern.split('/').collect();
    let literal = parts
        .iter()
        .take_while(|p| !p.contains(['*', '?', '[', '{']))
        .count()
        .min(parts.len() - 1);
    let prefix = parts[..literal].join("/");
    let recursive = pattern.contains("**");
    let max_depth = parts.len() - literal;
    let start = if absolute {
        Path::new(&prefix).to_path_buf()
    } else {
        base_dir.join(&prefix)
    };
    let mut out = Vec::new();
    walk(
        &start,
        &prefix,
        1,
        if recursive { usize::MAX } else { max_depth },
        &mut |rel| {
            if matcher.is_match(rel) {
                out.push(rel.to_owned());
            }
        },
    );
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, rel: &str, depth: usize, max_depth: usize, found: &mut impl FnMut(&str)) {
    let Ok(entries) = crate::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(crate::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() {
            name
        } else if rel.ends_with('/') {
            format!("{rel}{name}")
        } else {
            format!("{rel}/{name}")
        };
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let is_dir = kind.is_dir() || (kind.is_symlink() && entry.path().is_dir());
        if is_dir {
            if depth < max_depth {
                walk(&entry.path(), &child, depth + 1, max_depth, found);
            }
        } else {
            found(&child);
        }
    }
}

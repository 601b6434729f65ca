//! Where an output file goes: a rendered name made safe (it can never leave the output folder)
//! and made unique (an existing file is never overwritten).

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// The longest file-name component we write, in bytes (most file systems allow 255).
const MAX_COMPONENT: usize = 200;

/// Turns a rendered output name (which may hold `/` for sub-folders) into a relative path that
/// stays inside the output folder: `..`, `.`, empty and absolute parts are dropped, control
/// characters and characters that are invalid on common file systems become `_`, and each part
/// is cut to a safe length. Returns `None` when nothing usable is left.
#[must_use]
pub fn sanitize_relative(name: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in name.split(['/', '\\']) {
        let cleaned: String = part
            .chars()
            .map(|c| {
                if c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let cleaned = cleaned.trim().trim_end_matches('.').trim();
        if cleaned.is_empty()
            || cleaned == "."
            || cleaned == ".."
            || cleaned.starts_with("..") && cleaned.chars().all(|c| c == '.')
        {
            continue;
        }
        out.push(truncate(cleaned, MAX_COMPONENT));
    }
    let safe = out.components().all(|c| matches!(c, Component::Normal(_)));
    (safe && !out.as_os_str().is_empty()).then_some(out)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Picks `dir/rel.ext`, or `dir/rel-1.ext`, `dir/rel-2.ext`, ... when that file exists or was
/// already taken in this run.
#[must_use]
pub fn unique_path(dir: &Path, rel: &Path, ext: &str, taken: &HashSet<PathBuf>) -> PathBuf {
    let with_ext = |suffix: &str| {
        let mut name = rel.as_os_str().to_owned();
        name.push(suffix);
        if !ext.is_empty() {
            name.push(".");
            name.push(ext);
        }
        dir.join(name)
    };
    let first = with_ext("");
    if !first.exists() && !taken.contains(&first) {
        return first;
    }
    (1..)
        .map(|n| with_ext(&format!("-{n}")))
        .find(|p| !p.exists() && !taken.contains(p))
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_names_never_leave_the_folder() {
        let cases = [
            ("0-Blurred", Some("0-Blurred")),
            ("cat/0-out", Some("cat/0-out")),
            ("../../etc/passwd", Some("etc/passwd")),
            ("/abs/path", Some("abs/path")),
            ("a/./b/../c", Some("a/b/c")),
            ("..", None),
            ("", None),
            ("   ", None),
            ("what?<now>:", Some("what__now__")),
            ("tab\there", Some("tab_here")),
            ("dots...", Some("dots")),
            ("C:\\windows\\x", Some("C_/windows/x")),
        ];
        for (input, want) in cases {
            assert_eq!(
                sanitize_relative(input),
                want.map(PathBuf::from),
                "input {input:?}"
            );
        }
        let long = "é".repeat(300);
        let got = sanitize_relative(&long).expect("long name");
        assert!(got.as_os_str().len() <= MAX_COMPONENT);
    }

    #[test]
    fn unique_path_never_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut taken = HashSet::new();
        let a = unique_path(dir.path(), Path::new("x"), "png", &taken);
        assert_eq!(a, dir.path().join("x.png"));
        std::fs::write(&a, b"").expect("write");
        let b = unique_path(dir.path(), Path::new("x"), "png", &taken);
        assert_eq!(b, dir.path().join("x-1.png"));
        taken.insert(b.clone());
        let c = unique_path(dir.path(), Path::new("x"), "png", &taken);
        assert_eq!(c, dir.path().join("x-2.png"));
    }
}

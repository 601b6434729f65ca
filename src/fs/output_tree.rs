//! The names of what a run keeps in its output folder: each output at a rendered name made safe
//! (it can never leave the output folder, and no part of it is longer than file systems allow),
//! its sidecar beside it, and the folder's `runs.jsonl`. Free names and writing without
//! overwriting are [`crate::fs::place`]'s.

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// The longest file-name component we write, in bytes (most file systems allow 255; the rest is
/// room for a `-N` suffix, the extension and a sidecar's `.json`).
const MAX_COMPONENT: usize = 200;

/// Hex digits of the hash that keeps cut names apart.
const HASH_DIGITS: usize = 12;

/// The summary file's name.
pub const SUMMARY_FILE: &str = "runs.jsonl";

/// The summary file's path in an output folder.
#[must_use]
pub fn summary_path(output_dir: &Path) -> PathBuf {
    output_dir.join(SUMMARY_FILE)
}

/// The path of the sidecar (the metadata JSON) of an output file: its name and `.json`.
#[must_use]
pub fn sidecar_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

/// Turns a rendered output name (which may hold `/` for sub-folders) into a relative path that
/// stays inside the output folder: `..`, `.`, empty and absolute parts are dropped, control
/// characters and characters that are invalid on common file systems become `_`, and a part
/// longer than 200 bytes is cut (its beginning, `~` and the start of a hash of the whole, so that
/// names differing only past the cut stay apart). Returns `None` when nothing usable
/// is left.
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
        out.push(cut(cleaned, MAX_COMPONENT));
    }
    let safe = out.components().all(|c| matches!(c, Component::Normal(_)));
    (safe && !out.as_os_str().is_empty()).then_some(out)
}

/// `s` itself when it has at most `max` bytes; else its beginning, `~` and the first 12 hex
/// digits of the SHA-256 of the whole of `s`, `max` bytes at most: names that differ only
/// beyond the cut stay apart.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let hash: String = Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..HASH_DIGITS]
        .to_owned();
    let mut end = max - HASH_DIGITS - 1;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}~{hash}", s[..end].trim_end())
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
    fn long_names_are_cut_with_a_hash_and_stay_distinct() {
        let base = "a".repeat(5000);
        let names: Vec<PathBuf> = (0..8)
            .map(|i| sanitize_relative(&format!("run/{base}{i}")).expect("name"))
            .collect();
        let distinct: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(distinct.len(), 8, "{names:?}");
        for name in &names {
            let last = name.file_name().expect("file name").to_string_lossy();
            assert_eq!(last.len(), MAX_COMPONENT, "{last}");
            assert!(last.starts_with(&"a".repeat(187)), "{last}");
            assert!(name.starts_with("run"));
        }
        // Short names are kept as they are, and a cut is the same every time.
        assert_eq!(cut("short", MAX_COMPONENT), "short");
        assert_eq!(
            sanitize_relative(&format!("{base}0")),
            Some(names[0].strip_prefix("run").expect("prefix").to_path_buf())
        );
    }
}

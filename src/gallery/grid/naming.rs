//! A grid's file name: its rendered template made a slug (letters, digits, `-`, `_` and `.`;
//! everything else, spaces, `=` and commas included, becomes one `-`), so that it can be typed,
//! linked and globbed as it is. The human text (the node, the page's keys and values) stays in
//! the image's caption and in the layout JSON beside it.

use std::collections::HashSet;
use std::path::PathBuf;

/// `name` as a slug, `/` kept as the folder separator: in each part, every run of characters
/// other than letters, digits, `-`, `_` and `.` becomes one `-`, and `-` does not start or end
/// a part. Parts left empty are dropped.
#[must_use]
pub fn slug(name: &str) -> String {
    let mut parts = Vec::new();
    for part in name.split(['/', '\\']) {
        let mut out = String::with_capacity(part.len());
        for c in part.chars() {
            if c.is_alphanumeric() || matches!(c, '_' | '.') {
                out.push(c);
            } else if !out.ends_with('-') {
                out.push('-');
            }
        }
        let out = out.trim_matches('-');
        if !out.is_empty() {
            parts.push(out.to_owned());
        }
    }
    parts.join("/")
}

/// The file of a grid named `name` (rendered), with extension `ext`: slugged, kept inside the
/// output folder, and distinct from every file in `taken` (`-2`, `-3`... appended), which it
/// joins. `fallback` stands in for a name with nothing usable left.
pub(super) fn grid_file(
    name: &str,
    fallback: &str,
    ext: &str,
    taken: &mut HashSet<PathBuf>,
) -> PathBuf {
    let base = crate::fs::output_tree::sanitize_relative(&slug(name))
        .unwrap_or_else(|| PathBuf::from(fallback));
    let mut n = 1;
    loop {
        let mut file = base.clone().into_os_string();
        if n > 1 {
            file.push(format!("-{n}"));
        }
        file.push(".");
        file.push(ext);
        let file = PathBuf::from(file);
        if taken.insert(file.clone()) {
            return file;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_slugs_and_stay_apart() {
        assert_eq!(
            slug("grid-Tinted-Hue shift=0,Blur radius=1"),
            "grid-Tinted-Hue-shift-0-Blur-radius-1"
        );
        assert_eq!(slug("grids/ a, b /x=é"), "grids/a-b/x-é");
        assert_eq!(slug("=,/ "), "");
        let mut taken = HashSet::new();
        let a = grid_file("g-a b", "grid1", "png", &mut taken);
        let b = grid_file("g-a,b", "grid1", "png", &mut taken);
        let c = grid_file("=", "grid1", "png", &mut taken);
        assert_eq!(a, PathBuf::from("g-a-b.png"));
        assert_eq!(b, PathBuf::from("g-a-b-2.png"));
        assert_eq!(c, PathBuf::from("grid1.png"));
    }
}

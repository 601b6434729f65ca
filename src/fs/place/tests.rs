//! The placement rules, checked on a real folder.

use super::*;
use std::collections::HashSet;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = crate::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

fn place_bytes(root: &OutputRoot, name: &Name, bytes: &[u8], side: &[u8]) -> PathBuf {
    let tmp = root.temporary_for(&name.candidate(0)).expect("tmp");
    crate::fs::write(&tmp, bytes).expect("fill");
    root.place(&tmp, name, &[(".json", side)], 0, &HashSet::new())
        .expect("placed")
}

#[test]
fn a_file_and_its_sidecar_take_their_names_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = OutputRoot::open(dir.path()).expect("root");
    // A sidecar without its image: the image name is not free.
    crate::fs::write(dir.path().join("x.png.json"), "user data").expect("write");
    let name = Name::new("x", "png");
    let first = place_bytes(&root, &name, b"one", b"{1}");
    assert_eq!(first, dir.path().join("x-1.png"));
    let second = place_bytes(&root, &name, b"two", b"{2}");
    assert_eq!(second, dir.path().join("x-2.png"));
    assert_eq!(
        crate::fs::read_to_string(dir.path().join("x.png.json")).expect("read"),
        "user data"
    );
    assert_eq!(
        crate::fs::read_to_string(dir.path().join("x-2.png.json")).expect("read"),
        "{2}"
    );
    assert_eq!(
        names(dir.path()),
        [
            "x-1.png",
            "x-1.png.json",
            "x-2.png",
            "x-2.png.json",
            "x.png.json"
        ],
        "no temporary file is left"
    );
    let mode = crate::fs::metadata(&first).expect("stat");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o644);
}

#[test]
fn a_name_taken_while_placing_is_left_alone_and_what_was_placed_is_taken_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = OutputRoot::open(dir.path()).expect("root");
    let tmp = root.temporary_for(Path::new("x.png")).expect("tmp");
    crate::fs::write(&tmp, b"new").expect("fill");
    // The image name is free but its sidecar appeared "meanwhile".
    crate::fs::write(dir.path().join("x.png.json"), "theirs").expect("write");
    let placed = root
        .place_at(&tmp, &dir.path().join("x.png"), &[(".json", b"ours")])
        .expect("attempt");
    assert!(!placed);
    assert!(
        !dir.path().join("x.png").exists(),
        "our image is taken back"
    );
    assert_eq!(
        crate::fs::read_to_string(dir.path().join("x.png.json")).expect("read"),
        "theirs"
    );
    // And an image that appeared meanwhile is not replaced.
    crate::fs::write(dir.path().join("y.png"), "theirs").expect("write");
    let placed = root
        .place_at(&tmp, &dir.path().join("y.png"), &[])
        .expect("attempt");
    assert!(!placed);
    assert_eq!(
        crate::fs::read_to_string(dir.path().join("y.png")).expect("read"),
        "theirs"
    );
}

#[test]
fn links_inside_the_output_folder_are_refused_and_nothing_is_written_through_them() {
    let outside = tempfile::tempdir().expect("outside");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = OutputRoot::open(dir.path()).expect("root");
    symlink(outside.path(), dir.path().join("sub")).expect("link");
    let err = root
        .temporary_for(Path::new("sub/x.png"))
        .expect_err("linked sub-folder");
    assert!(err.is_link(), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "`{}` is a symbolic link (to `{}`); invk-run never writes through links in an \
             output folder: remove or rename the link, or use a real folder there, and run again",
            dir.path().join("sub").display(),
            outside.path().display()
        )
    );
    // A dangling link and a link to a file at the target path.
    symlink(dir.path().join("nowhere"), dir.path().join("a.png")).expect("link");
    crate::fs::write(outside.path().join("f"), "theirs").expect("write");
    symlink(outside.path().join("f"), dir.path().join("b.png.json")).expect("link");
    let tmp = root.temporary_for(Path::new("t")).expect("tmp");
    for (stem, link) in [("a", "a.png"), ("b", "b.png.json")] {
        let err = root
            .place(
                &tmp,
                &Name::new(stem, "png"),
                &[(".json", b"{}")],
                0,
                &HashSet::new(),
            )
            .expect_err("link at the target");
        assert!(
            matches!(&err, PlaceError::Link { path, .. } if path == &dir.path().join(link)),
            "{err}"
        );
    }
    assert_eq!(names(outside.path()), ["f"]);
    assert_eq!(
        crate::fs::read_to_string(outside.path().join("f")).expect("read"),
        "theirs"
    );
    // The output folder itself.
    let linked_root = dir.path().join("root-link");
    symlink(outside.path(), &linked_root).expect("link");
    let err = OutputRoot::open(&linked_root).expect_err("linked root");
    assert!(
        err.to_string()
            .ends_with("name the folder it points to as the output folder instead"),
        "{err}"
    );
    let err = root
        .open_append(Path::new("a.png"))
        .expect_err("append through a link");
    assert!(err.is_link(), "{err}");
}

#[test]
fn a_file_written_earlier_is_found_by_its_companion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = OutputRoot::open(dir.path()).expect("root");
    let name = Name::new("sub/x", "png");
    crate::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    crate::fs::write(dir.path().join("sub/x.png"), "other").expect("write");
    crate::fs::write(dir.path().join("sub/x.png.json"), "image-a").expect("write");
    crate::fs::write(dir.path().join("sub/x-1.png"), "ours").expect("write");
    crate::fs::write(dir.path().join("sub/x-1.png.json"), "image-b").expect("write");
    let same = |want: &'static str| {
        move |_: &Path, b: Option<&[u8]>| (b == Some(want.as_bytes())).then_some(())
    };
    assert_eq!(
        root.find_earlier(&name, ".json", same("image-b")),
        Some((dir.path().join("sub/x-1.png"), ()))
    );
    assert_eq!(
        root.find_earlier(&name, ".json", same("image-a")),
        Some((dir.path().join("sub/x.png"), ()))
    );
    assert_eq!(root.find_earlier(&name, ".json", same("image-c")), None);
    // A companion whose file is missing (a placing cut short) is recognised too.
    crate::fs::write(dir.path().join("sub/y.png.json"), "image-e").expect("write");
    assert_eq!(
        root.find_earlier(&Name::new("sub/y", "png"), ".json", same("image-e")),
        Some((dir.path().join("sub/y.png"), ()))
    );
    // Without a companion, the path alone decides.
    crate::fs::write(dir.path().join("sub/x-2.png"), "bare").expect("write");
    let bare = dir.path().join("sub/x-2.png");
    assert_eq!(
        root.find_earlier(&name, ".json", |p, b| (p == bare && b.is_none())
            .then_some(2)),
        Some((bare.clone(), 2))
    );
    // A superseded file is replaced in place, its companion after it.
    let tmp = root.temporary_for(Path::new("sub/x.png")).expect("tmp");
    crate::fs::write(&tmp, "newer").expect("write");
    let placed = root
        .replace(&tmp, &bare, &[(".json", b"image-d")])
        .expect("replace");
    assert_eq!(placed, bare);
    assert_eq!(crate::fs::read(&bare).expect("read"), b"newer");
    assert_eq!(
        crate::fs::read(dir.path().join("sub/x-2.png.json")).expect("read"),
        b"image-d"
    );
}

#[test]
fn new_and_replaced_files_follow_the_same_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = OutputRoot::open(dir.path()).expect("root");
    let name = Name::new("grids/sheet", "png");
    assert_eq!(
        root.write_new(&name, b"1").expect("new"),
        dir.path().join("grids/sheet.png")
    );
    assert_eq!(
        root.write_new(&name, b"2").expect("new"),
        dir.path().join("grids/sheet-1.png")
    );
    let index = Path::new("index.html");
    root.write_replacing(index, b"old").expect("write");
    root.write_replacing(index, b"new").expect("replace");
    assert_eq!(
        crate::fs::read(dir.path().join(index)).expect("read"),
        b"new"
    );
    assert!(matches!(
        root.prepare(Path::new("../escape")),
        Err(PlaceError::Outside { .. })
    ));
}

#[test]
fn a_full_disk_says_to_free_space_and_run_again_and_other_errors_do_not() {
    let full = io_error(Path::new("out/a.png"), "write")(std::io::Error::from(
        std::io::ErrorKind::StorageFull,
    ));
    assert_eq!(
        full.to_string(),
        "could not write `out/a.png`: the disk is full. Free some space, then run the same \
         command again: the run resumes where it stopped, and what is on disk is whole"
    );
    let denied = io_error(Path::new("out/a.png"), "write")(std::io::Error::from(
        std::io::ErrorKind::PermissionDenied,
    ));
    assert_eq!(denied.to_string(), "could not write `out/a.png`");
}

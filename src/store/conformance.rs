//! The rules every [`OutputStore`] keeps, as functions that each take a fresh, empty store and
//! panic (with a message naming the rule) when it breaks one: [`RULES`]. A new store runs them
//! all in a test of its own (see the [module documentation](super) for how), the local store
//! runs them in `src/store/tests.rs`. [`LOCAL_RULES`] are the local tree's own (links refused,
//! nothing left on disk), each given an empty folder to make its stores in.
//!
//! These are test helpers: they panic instead of returning errors. They are public (not behind
//! `cfg(test)`) so that a store written in another crate, or tested from `tests/`, can run them.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use super::{Name, OutputStore, PlaceError, Staged};

/// A rule for any store: called with a fresh, empty store, it panics when the store breaks it.
pub type Rule = fn(&dyn OutputStore);

/// A rule of the local tree's own: called with an empty folder to make its stores in.
pub type LocalRule = fn(&Path);

/// The sidecar suffix the rules use, as the run does.
const SIDE: &str = ".json";

/// Every rule, by name, for any store.
pub const RULES: &[(&str, Rule)] = &[
    ("no clobber", no_clobber),
    (
        "a sidecar without its file is found and its slot refilled",
        sidecar_first_and_refilled,
    ),
    (
        "a staged file never committed leaves nothing",
        staged_never_committed_leaves_nothing,
    ),
    ("names cannot leave the root", names_cannot_leave_the_root),
    (
        "list gives every committed output with its sidecar",
        list_gives_every_output_with_its_sidecar,
    ),
    (
        "find_earlier sees a file by its sidecar",
        find_earlier_sees_a_file_by_its_sidecar,
    ),
    (
        "replacing an earlier try keeps its name",
        replace_keeps_the_name,
    ),
    ("logs are append-only", logs_are_append_only),
    (
        "own files are rewritten whole, new ones never replace",
        own_files_are_rewritten_whole,
    ),
];

/// The local tree's own rules, by name: each is given an empty folder.
#[cfg(unix)]
pub const LOCAL_RULES: &[(&str, LocalRule)] = &[
    (
        "links inside the folder are refused",
        local::links_are_refused,
    ),
    (
        "nothing is written outside the folder or left on disk",
        local::nothing_outside_nor_left_behind,
    ),
];

/// A staged file holding `bytes`, to go to `rel`.
pub fn staged(store: &dyn OutputStore, rel: &str, bytes: &[u8]) -> Staged {
    let staged = store
        .stage(Path::new(rel))
        .unwrap_or_else(|e| panic!("stage `{rel}` in {}: {e}", store.location()));
    crate::fs::write(staged.path(), bytes).expect("fill the staged file");
    staged
}

/// The bytes at `rel`, `None` when nothing is there.
pub fn read(store: &dyn OutputStore, rel: &str) -> Option<Vec<u8>> {
    store
        .read(Path::new(rel), 1 << 20)
        .unwrap_or_else(|e| panic!("read `{rel}` in {}: {e}", store.location()))
}

/// Every listed output with its sidecar's text; an output listed twice fails.
pub fn listed(store: &dyn OutputStore) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    store
        .list_outputs(SIDE, &mut |path, bytes| {
            let text = String::from_utf8_lossy(bytes).into_owned();
            assert!(
                out.insert(path.to_path_buf(), text).is_none(),
                "`{}` is listed twice",
                path.display()
            );
        })
        .expect("list the outputs");
    out
}

fn commit(store: &dyn OutputStore, stem: &str, bytes: &[u8], side: &[u8]) -> PathBuf {
    let name = Name::new(stem, "png");
    store
        .commit(
            staged(store, &format!("{stem}.png"), bytes),
            &name,
            &[(SIDE, side)],
            0,
            &HashSet::new(),
        )
        .unwrap_or_else(|e| panic!("commit `{stem}.png`: {e}"))
}

fn text(store: &dyn OutputStore, rel: &str) -> Option<String> {
    read(store, rel).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<PathBuf, String> {
    pairs
        .iter()
        .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
        .collect()
}

/// An existing file, and a file whose sidecar exists, are never replaced: the file and its
/// sidecar take the next free name together; names handed out already are passed over too.
pub fn no_clobber(store: &dyn OutputStore) {
    let x = Name::new("x", "png");
    assert_eq!(
        store.write_new(&x, b"first").expect("new"),
        Path::new("x.png")
    );
    let second = commit(store, "x", b"second", b"{2}");
    assert_eq!(
        second,
        Path::new("x-1.png"),
        "an existing file takes a suffix"
    );
    assert_eq!(text(store, "x.png").as_deref(), Some("first"));
    assert_eq!(text(store, "x-1.png").as_deref(), Some("second"));
    assert_eq!(text(store, "x-1.png.json").as_deref(), Some("{2}"));

    // A sidecar without its file: the file's name is not free either.
    store
        .write_replacing(Path::new("y.png.json"), b"user data")
        .expect("write");
    assert_eq!(commit(store, "y", b"img", b"{y}"), Path::new("y-1.png"));
    assert_eq!(text(store, "y.png.json").as_deref(), Some("user data"));
    assert!(!store.exists(Path::new("y.png")).expect("exists"));

    // Names handed out already.
    let free = |taken: &[&str]| {
        let taken: HashSet<PathBuf> = taken.iter().map(PathBuf::from).collect();
        store.free_name(&x, &[SIDE], 0, &taken).expect("free name")
    };
    assert_eq!(free(&[]), (2, PathBuf::from("x-2.png")));
    assert_eq!(free(&["x-2.png"]), (3, PathBuf::from("x-3.png")));
    let taken: HashSet<PathBuf> = [PathBuf::from("x-2.png")].into();
    let placed = store
        .commit(
            staged(store, "x.png", b"third"),
            &x,
            &[(SIDE, b"{3}")],
            0,
            &taken,
        )
        .expect("commit");
    assert_eq!(
        placed,
        Path::new("x-3.png"),
        "a name handed out is passed over"
    );
    assert_eq!(
        store
            .commit(staged(store, "x.png", b"4"), &x, &[], 5, &HashSet::new())
            .expect("commit"),
        Path::new("x-5.png"),
        "the search starts at `start`"
    );
    assert_eq!(text(store, "x.png").as_deref(), Some("first"));
    assert_eq!(text(store, "x-1.png").as_deref(), Some("second"));
}

/// The sidecar is stored before its file: a commit cut short leaves a sidecar without its
/// file, which `find_earlier` shows (its file missing) so the slot is refilled by `replace`,
/// not written again as a `-1` copy.
pub fn sidecar_first_and_refilled(store: &dyn OutputStore) {
    let side = br#"{"image_name": "img-a.png"}"#;
    store
        .write_replacing(Path::new("cat/z.png.json"), side)
        .expect("write the sidecar alone");
    let name = Name::new("cat/z", "png");
    let mut seen = Vec::new();
    let found = store
        .find_earlier(&name, SIDE, &mut |c| {
            seen.push((c.path.to_path_buf(), c.has_file));
            c.companion == Some(side.as_slice())
        })
        .expect("find");
    assert_eq!(found.as_deref(), Some(Path::new("cat/z.png")));
    assert_eq!(
        seen,
        [(PathBuf::from("cat/z.png"), false)],
        "the sidecar is shown with its file missing"
    );
    let placed = store
        .replace(
            staged(store, "cat/z.png", b"image"),
            Path::new("cat/z.png"),
            &[(SIDE, side)],
        )
        .expect("refill");
    assert_eq!(placed, Path::new("cat/z.png"));
    assert_eq!(text(store, "cat/z.png").as_deref(), Some("image"));
    assert!(!store.exists(Path::new("cat/z-1.png")).expect("exists"));
    assert_eq!(
        listed(store),
        map(&[("cat/z.png", r#"{"image_name": "img-a.png"}"#)])
    );
    // And the slot is taken now.
    assert_eq!(
        store
            .free_name(&name, &[SIDE], 0, &HashSet::new())
            .expect("free")
            .1,
        Path::new("cat/z-1.png")
    );
}

/// A staged file that is dropped instead of committed leaves nothing in the store.
pub fn staged_never_committed_leaves_nothing(store: &dyn OutputStore) {
    let dropped = staged(store, "sub/a.png", b"half a download");
    let local = dropped.path().to_path_buf();
    drop(dropped);
    assert!(!local.exists(), "the staged file is deleted when dropped");
    assert!(!store.exists(Path::new("sub/a.png")).expect("exists"));
    assert!(listed(store).is_empty());
    let name = Name::new("sub/a", "png");
    assert_eq!(
        store
            .free_name(&name, &[SIDE], 0, &HashSet::new())
            .expect("free"),
        (0, PathBuf::from("sub/a.png"))
    );
    let found = store
        .find_earlier(&name, SIDE, &mut |_| true)
        .expect("find");
    assert_eq!(found, None);
    // A commit refused (a name outside) leaves nothing either.
    let refused = store.commit(
        staged(store, "sub/b.png", b"x"),
        &Name::new("../b", "png"),
        &[(SIDE, b"{}")],
        0,
        &HashSet::new(),
    );
    assert!(refused.is_err());
    assert!(listed(store).is_empty());
    assert!(!store.exists(Path::new("sub/b.png")).expect("exists"));
}

fn outside<T: std::fmt::Debug>(what: &str, bad: &str, result: Result<T, PlaceError>) {
    match result {
        Err(PlaceError::Outside { .. }) => {}
        other => panic!("{what} `{bad}`: want an Outside error, got {other:?}"),
    }
}

/// Paths that are absolute, hold `..` or `.`, or are empty are refused by every method.
pub fn names_cannot_leave_the_root(store: &dyn OutputStore) {
    for bad in [
        "../x.png",
        "a/../../x.png",
        "/abs/x.png",
        "",
        "./x.png",
        "..",
    ] {
        let p = Path::new(bad);
        outside("prepare", bad, store.prepare(p));
        outside("stage", bad, store.stage(p));
        outside("exists", bad, store.exists(p));
        outside("open", bad, store.open(p).map(|o| o.is_some()));
        outside("read", bad, store.read(p, 10));
        outside("write_replacing", bad, store.write_replacing(p, b"x"));
        outside("open_log", bad, store.open_log(p).map(drop));
        outside(
            "replace",
            bad,
            store.replace(staged(store, "ok.png", b"x"), p, &[(SIDE, b"{}")]),
        );
        store
            .write_replacing(Path::new("mine.txt"), b"mine")
            .expect("write");
        outside(
            "move_aside to",
            bad,
            store.move_aside(Path::new("mine.txt"), p),
        );
        outside(
            "move_aside from",
            bad,
            store.move_aside(p, Path::new("t.txt")),
        );
    }
    for stem in ["../x", "a/../../x", "/abs/x"] {
        let name = Name::new(stem, "png");
        outside("write_new", stem, store.write_new(&name, b"x"));
        outside(
            "free_name",
            stem,
            store.free_name(&name, &[SIDE], 0, &HashSet::new()),
        );
        outside(
            "find_earlier",
            stem,
            store.find_earlier(&name, SIDE, &mut |_| true),
        );
        outside(
            "commit",
            stem,
            store.commit(
                staged(store, "ok.png", b"x"),
                &name,
                &[],
                0,
                &HashSet::new(),
            ),
        );
    }
    assert!(listed(store).is_empty());
    assert_eq!(text(store, "mine.txt").as_deref(), Some("mine"));
}

/// `list_outputs` gives each committed output once, with its sidecar, in any sub-folder; not
/// files without a sidecar, sidecars without a file, nor the run's own (dot) files.
pub fn list_gives_every_output_with_its_sidecar(store: &dyn OutputStore) {
    commit(store, "a", b"1", b"A");
    commit(store, "sub/b", b"2", b"B");
    commit(store, "sub/deeper/c", b"3", b"C");
    commit(store, "sub/b", b"4", b"B2");
    store
        .write_new(&Name::new("plain", "png"), b"no sidecar")
        .expect("new");
    store
        .write_replacing(Path::new("orphan.png.json"), b"O")
        .expect("write");
    store
        .write_replacing(Path::new(".invk-run/own.png"), b"own")
        .expect("write");
    store
        .write_replacing(Path::new(".invk-run/own.png.json"), b"own")
        .expect("write");
    let mut log = store.open_log(Path::new("runs.jsonl")).expect("log");
    log.append(b"{}\n").expect("append");
    log.sync().expect("sync");
    assert_eq!(
        listed(store),
        map(&[
            ("a.png", "A"),
            ("sub/b.png", "B"),
            ("sub/b-1.png", "B2"),
            ("sub/deeper/c.png", "C")
        ])
    );
}

/// `find_earlier` goes through the candidates in order and finds a file by its sidecar's
/// bytes; a file without a sidecar is shown by its path alone.
pub fn find_earlier_sees_a_file_by_its_sidecar(store: &dyn OutputStore) {
    commit(store, "sub/x", b"a", b"image-a");
    commit(store, "sub/x", b"b", b"image-b");
    let name = Name::new("sub/x", "png");
    let by = |want: &'static str| {
        let mut seen = Vec::new();
        let found = store
            .find_earlier(&name, SIDE, &mut |c| {
                seen.push((c.path.to_path_buf(), c.has_file));
                c.companion == Some(want.as_bytes())
            })
            .expect("find");
        (found, seen)
    };
    let (found, seen) = by("image-b");
    assert_eq!(found.as_deref(), Some(Path::new("sub/x-1.png")));
    assert_eq!(
        seen,
        [
            (PathBuf::from("sub/x.png"), true),
            (PathBuf::from("sub/x-1.png"), true)
        ]
    );
    assert_eq!(by("image-a").0.as_deref(), Some(Path::new("sub/x.png")));
    let (none, seen) = by("image-c");
    assert_eq!(none, None);
    assert_eq!(seen.len(), 2, "the search ends at the first free candidate");
    let bare = store.write_new(&name, b"bare").expect("new");
    assert_eq!(bare, Path::new("sub/x-2.png"));
    let found = store
        .find_earlier(&name, SIDE, &mut |c| c.has_file && c.companion.is_none())
        .expect("find");
    assert_eq!(found, Some(bare));
}

/// Replacing the file of an earlier try keeps its name and puts the new sidecar beside it.
pub fn replace_keeps_the_name(store: &dyn OutputStore) {
    let first = commit(store, "job/out", b"old", b"old sidecar");
    let placed = store
        .replace(
            staged(store, "job/out.png", b"new"),
            &first,
            &[(SIDE, b"new sidecar")],
        )
        .expect("replace");
    assert_eq!(placed, first);
    assert_eq!(text(store, "job/out.png").as_deref(), Some("new"));
    assert_eq!(
        listed(store),
        map(&[("job/out.png", "new sidecar")]),
        "one file, its sidecar the new one"
    );
    assert!(!store.exists(Path::new("job/out-1.png")).expect("exists"));
}

/// A log keeps what it held and what each opening appended, in order.
pub fn logs_are_append_only(store: &dyn OutputStore) {
    let rel = Path::new(".invk-run/journal.jsonl");
    store
        .write_replacing(rel, b"checkpoint\n")
        .expect("a checkpoint");
    let mut log = store.open_log(rel).expect("open");
    log.append(b"a\n").expect("append");
    log.sync().expect("sync");
    drop(log);
    let mut log = store.open_log(rel).expect("open again");
    log.append(b"b\n").expect("append");
    log.append(b"c\n").expect("append");
    log.sync().expect("sync");
    assert_eq!(
        text(store, ".invk-run/journal.jsonl").as_deref(),
        Some("checkpoint\na\nb\nc\n")
    );
    let mut fresh = store.open_log(Path::new("runs.jsonl")).expect("create");
    fresh.append(b"1\n").expect("append");
    fresh.sync().expect("sync");
    assert_eq!(text(store, "runs.jsonl").as_deref(), Some("1\n"));
    assert!(listed(store).is_empty(), "logs are not outputs");
}

/// The run's own files are rewritten whole; `write_new` never replaces; `move_aside` replaces
/// nothing; reads are bounded.
pub fn own_files_are_rewritten_whole(store: &dyn OutputStore) {
    let page = Path::new("index.html");
    assert_eq!(read(store, "index.html"), None);
    store
        .write_replacing(page, b"a longer old page")
        .expect("write");
    store.write_replacing(page, b"new").expect("rewrite");
    assert_eq!(text(store, "index.html").as_deref(), Some("new"));
    let grid = Name::new("grids/sheet", "png");
    assert_eq!(
        store.write_new(&grid, b"1").expect("new"),
        Path::new("grids/sheet.png")
    );
    assert_eq!(
        store.write_new(&grid, b"2").expect("new"),
        Path::new("grids/sheet-1.png")
    );
    assert_eq!(text(store, "grids/sheet.png").as_deref(), Some("1"));

    let (journal, aside) = (Path::new("j.jsonl"), Path::new("j.jsonl.1"));
    store.write_replacing(journal, b"old").expect("write");
    store.write_replacing(aside, b"there").expect("write");
    assert!(store.move_aside(journal, aside).is_err(), "`to` is taken");
    assert_eq!(text(store, "j.jsonl").as_deref(), Some("old"));
    assert_eq!(text(store, "j.jsonl.1").as_deref(), Some("there"));
    store
        .move_aside(journal, Path::new("j.jsonl.2"))
        .expect("move aside");
    assert!(!store.exists(journal).expect("exists"));
    assert_eq!(text(store, "j.jsonl.2").as_deref(), Some("old"));

    assert!(matches!(
        store.read(page, 2),
        Err(PlaceError::TooLarge { limit: 2, .. })
    ));
    assert_eq!(
        store.read(page, 3).expect("read").as_deref(),
        Some(b"new".as_slice())
    );
}

/// The local tree's own rules.
#[cfg(unix)]
mod local {
    use std::os::unix::fs::symlink;
    use std::path::{Path, PathBuf};

    use super::{OutputStore, SIDE, listed, staged};
    use crate::store::{LocalStore, Name};

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in crate::fs::read_dir(&d).expect("list").flatten() {
                let t = e.file_type().expect("type");
                if t.is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(e.path().strip_prefix(dir).expect("under").to_path_buf());
                }
            }
        }
        out.sort();
        out
    }

    /// Links inside the folder are refused by every write, and nothing is written through them;
    /// a linked folder is not listed.
    pub(super) fn links_are_refused(dir: &Path) {
        let (root, outside) = (dir.join("out"), dir.join("elsewhere"));
        crate::fs::create_dir_all(&outside).expect("mkdir");
        crate::fs::write(outside.join("f.png"), "theirs").expect("write");
        crate::fs::write(outside.join("f.png.json"), "theirs").expect("write");
        let store = LocalStore::open(&root).expect("open");
        symlink(&outside, root.join("sub")).expect("link");
        symlink(outside.join("f.png"), root.join("a.png")).expect("link");
        symlink(root.join("nowhere"), root.join("b.png.json")).expect("link");
        let refused = |what: &str, result: Result<(), crate::store::PlaceError>| match result {
            Err(e) if e.is_link() => {}
            other => panic!("{what}: want a refused link, got {other:?}"),
        };
        let store: &dyn OutputStore = &store;
        refused("stage", store.stage(Path::new("sub/x.png")).map(drop));
        refused(
            "write_replacing",
            store.write_replacing(Path::new("sub/page.html"), b"x"),
        );
        refused(
            "write_replacing at a link",
            store.write_replacing(Path::new("a.png"), b"x"),
        );
        refused("open_log", store.open_log(Path::new("a.png")).map(drop));
        refused("prepare", store.prepare(Path::new("a.png")));
        for stem in ["a", "b"] {
            refused(
                "commit",
                store
                    .commit(
                        staged(store, "t.png", b"x"),
                        &Name::new(stem, "png"),
                        &[(SIDE, b"{}")],
                        0,
                        &std::collections::HashSet::new(),
                    )
                    .map(drop),
            );
            refused(
                "free_name",
                store
                    .free_name(
                        &Name::new(stem, "png"),
                        &[SIDE],
                        0,
                        &std::collections::HashSet::new(),
                    )
                    .map(drop),
            );
        }
        refused(
            "replace",
            store
                .replace(staged(store, "t.png", b"x"), Path::new("a.png"), &[])
                .map(drop),
        );
        assert!(listed(store).is_empty(), "a linked folder is not listed");
        assert_eq!(
            files_under(&outside),
            [PathBuf::from("f.png"), PathBuf::from("f.png.json")]
        );
        assert_eq!(
            crate::fs::read(outside.join("f.png")).expect("read"),
            b"theirs"
        );
        // The folder itself.
        symlink(&outside, dir.join("linked")).expect("link");
        let err = LocalStore::open(dir.join("linked")).expect_err("linked folder");
        assert!(err.is_link(), "{err}");
        let lazy = LocalStore::at(dir.join("linked"));
        refused(
            "a write into a linked folder",
            lazy.write_replacing(Path::new("index.html"), b"x"),
        );
        assert_eq!(files_under(&outside).len(), 2);
    }

    /// Nothing lands beside the folder for names that try to leave it, and a staged file
    /// never committed leaves no file in it.
    pub(super) fn nothing_outside_nor_left_behind(dir: &Path) {
        let root = dir.join("out");
        let store = LocalStore::open(&root).expect("open");
        let store: &dyn OutputStore = &store;
        super::names_cannot_leave_the_root(store);
        let dropped = staged(store, "deep/sub/a.png", b"partial");
        drop(dropped);
        assert_eq!(
            files_under(dir),
            [PathBuf::from("out/mine.txt")],
            "only the file the rule wrote is there"
        );
    }
}

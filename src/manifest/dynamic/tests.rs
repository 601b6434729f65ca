use std::time::Instant;

use super::*;

fn all(template: &str) -> Vec<String> {
    Prompts::compile(template, None)
        .and_then(|p| p.enumerate(usize::MAX))
        .unwrap_or_else(|e| panic!("{template:?}: {e}"))
}

#[test]
fn variants_expand_in_the_library_order() {
    // Expected lists as the `dynamicprompts` library 0.31 gives them.
    let cases: &[(&str, &[&str])] = &[
        ("{a|b}{a|b}", &["aa", "ab", "ba", "bb"]),
        ("{ a | b }", &["a ", "b "]),
        ("{a|}", &["a", ""]),
        ("{2$$a|b|c}", &["a,b", "a,c", "b,a", "b,c", "c,a", "c,b"]),
        ("{2$$a|a|b}", &["a,b", "b,a"]),
        ("{2$$a|{a|b}}", &["a,b", "b,a"]),
        ("{2$$a|b|}", &["a,b", "a", "b,a", "b", "a", "b"]),
        ("{1-2$$ $$a|b}", &["a", "b", "a b", "b a"]),
        ("{2$$a$$b|c}", &["bac", "cab"]),
        ("{0$$a|b}", &[""]),
        ("{2 ::a|b}", &["2 ::a", "b"]),
        ("a # comment\nb", &["a  \nb"]),
        ("a\tb {x|y}", &["a       b x", "a       b y"]),
        ("/* c */ {a|b}", &[" a", " b"]),
        ("a } b | c", &["a } b | c"]),
    ];
    for (template, expected) in cases {
        assert_eq!(all(template), *expected, "{template:?}");
    }
}

#[test]
fn counts_are_computed_from_the_structure() {
    for t in [
        "{a|b}{a|b}",
        "{2$$a|b|c}",
        "{1-3$$a|b|c|d}",
        "x {a|{b|c}d} {1-2$$e|f}",
    ] {
        let p = Prompts::compile(t, None).expect("parses");
        assert_eq!(p.count(), all(t).len() as u128, "{t}");
    }
}

#[test]
fn a_trillion_combinations_are_counted_at_once() {
    let template = "{a|b|c|d|e|f|g|h|i|j}".repeat(12);
    let start = Instant::now();
    let p = Prompts::compile(&template, None).expect("parses");
    assert_eq!(p.count(), 1_000_000_000_000);
    assert_eq!(p.enumerate(3).expect("first three").len(), 3);
    assert!(start.elapsed().as_millis() < 100, "{:?}", start.elapsed());
    let options: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    let huge =
        Prompts::compile(&("{40$$".to_owned() + &options.join("|") + "}"), None).expect("parses");
    assert_eq!(huge.count(), u128::MAX);
}

#[test]
fn unsupported_and_broken_syntax_is_refused_with_its_place() {
    for (t, needle) in [
        ("{a|b", "never closed"),
        ("cost $5", "variable"),
        ("50% off", "wrap"),
        ("a__b", "never closed"),
        ("{~a|b}", "random"),
        ("__colors__", "no wildcards folder"),
    ] {
        let e = Prompts::compile(t, None).expect_err(t);
        assert!(e.message.contains(needle), "{t}: {e}");
    }
    let deep = format!(
        "{}x{}",
        "{".repeat(MAX_DEPTH + 1),
        "}".repeat(MAX_DEPTH + 1)
    );
    assert!(
        Prompts::compile(&deep, None)
            .expect_err("deep")
            .message
            .contains("nested")
    );
}

#[test]
fn random_draws_are_a_function_of_the_seed() {
    let p =
        Prompts::compile("{red|green|blue} {0.1::car|5::bike} {2$$a|b|c}", None).expect("parses");
    let draws = |s: u64| {
        (0..20)
            .map(|i| p.draw(draw_seed(s, "Prompt", i)).expect("draw"))
            .collect::<Vec<_>>()
    };
    assert_eq!(draws(1), draws(1));
    assert_ne!(draws(1), draws(2));
    let bikes = draws(1).iter().filter(|d| d.contains("bike")).count();
    assert!(bikes > 12, "weights favour bike: {bikes} of 20");
}

#[test]
fn wildcards_nest_merge_sort_and_report_their_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::fs::write(dir.path().join("colors.txt"), "# hues\nred\n\nblue\nred\n").expect("write");
    crate::fs::write(dir.path().join("colors_warm.txt"), "orange\n").expect("write");
    crate::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    crate::fs::write(
        dir.path().join("sub/things.txt"),
        "__colors__ car\n{big|small} box\n",
    )
    .expect("write");
    crate::fs::write(dir.path().join("bad.txt"), "ok\n__nope__\n").expect("write");
    let w = WildcardDir::open(dir.path()).expect("opens");
    let run = |t: &str| Prompts::compile(t, Some(&w)).and_then(|p| p.enumerate(100));
    assert_eq!(run("__colors__").expect("ok"), ["blue", "red"]);
    assert_eq!(run("__colors*__").expect("ok"), ["blue", "orange", "red"]);
    assert_eq!(
        run("__sub/things__").expect("ok"),
        ["blue car", "red car", "big box", "small box"],
        "values sorted as text: `_` before `{{`"
    );
    assert_eq!(
        run("__things__").expect("ok").len(),
        4,
        "found below a folder"
    );
    assert_eq!(
        run("{2$$__colors__}").expect("ok"),
        ["blue,red", "red,blue"]
    );
    let e = run("__bad__").expect_err("unknown inside");
    assert_eq!(e.file, Some((dir.path().join("bad.txt"), 2)));
    crate::fs::write(dir.path().join("loop.txt"), "__loop__\n").expect("write");
    let w = WildcardDir::open(dir.path()).expect("opens");
    let e = Prompts::compile("__loop__", Some(&w)).expect_err("cycle");
    assert!(e.message.contains("uses itself"), "{e}");
}

#[test]
fn a_million_line_wildcard_file_is_refused_quickly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text: String = (0..1_000_000).map(|i| format!("v{i}\n")).collect();
    crate::fs::write(dir.path().join("big.txt"), text).expect("write");
    let w = WildcardDir::open(dir.path()).expect("opens");
    let start = Instant::now();
    let e = Prompts::compile("__big__", Some(&w)).expect_err("too big");
    assert!(e.message.contains("the limit"), "{e}");
    assert!(start.elapsed().as_secs() < 2);
}

#[test]
fn a_wildcard_file_over_the_value_limit_is_refused_at_the_line_that_passes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text: String = (0..=MAX_WILDCARD_LINES).map(|i| format!("{i}\n")).collect();
    assert!(text.len() as u64 <= MAX_WILDCARD_FILE_BYTES);
    crate::fs::write(dir.path().join("many.txt"), text).expect("write");
    let w = WildcardDir::open(dir.path()).expect("opens");
    let e = Prompts::compile("__many__", Some(&w)).expect_err("too many");
    assert_eq!(
        e.file,
        Some((dir.path().join("many.txt"), MAX_WILDCARD_LINES + 1))
    );
    assert!(e.message.contains("more than 100000 values"), "{e}");
}

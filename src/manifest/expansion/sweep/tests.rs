//! The sweep's combinations, their order and count, and its problems.

use super::glob::glob_files;
use super::*;
use crate::manifest::source::SourceMap;
use serde_json::json;

fn run(yaml: &str, runs: u32, max_jobs: u64) -> (Vec<Value>, Vec<String>) {
    run_in(yaml, runs, max_jobs, Path::new("."))
}

fn run_in(yaml: &str, runs: u32, max_jobs: u64, dir: &Path) -> (Vec<Value>, Vec<String>) {
    let doc = format!(
        "sweep:\n{}",
        yaml.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    let source = SourceMap::parse(&doc).expect("yaml");
    let sweep: Sweep = serde_norway::from_str(yaml).expect("sweep");
    let file = Path::new("m.yaml");
    let mut diags = Diagnostics::new(file, &source);
    let limits = Limits {
        runs,
        base_dir: dir,
        max_jobs,
        manifest_seed: 0,
        wildcards: None,
        input_prompts: &[],
    };
    let out = expand(&sweep, limits, &mut diags);
    let combos = (0..out.count())
        .map(|c| {
            Value::Object(
                out.combination(c)
                    .into_iter()
                    .map(|(slot, cell)| {
                        let key = out.keys.get_index(slot).expect("slot").0.clone();
                        (key, out.value(cell).into_owned())
                    })
                    .collect(),
            )
        })
        .collect();
    (
        combos,
        diags.finish(0).iter().map(ToString::to_string).collect(),
    )
}

#[test]
fn expansion_order_and_counts() {
    let cases: &[(&str, &str, Value)] = &[
        ("no sweep", "{}", json!([{}])),
        (
            "matrix: first key slowest",
            "matrix: {a: [1, 2], b: [x, y]}",
            json!([
            {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]),
        ),
        (
            "zip advances together",
            "zip: {p: [cat, dog], s: [1, 2]}",
            json!([
            {"p": "cat", "s": 1}, {"p": "dog", "s": 2}]),
        ),
        (
            "matrix times zip",
            "matrix: {a: [1, 2]}\nzip: {p: [x, y]}",
            json!([
            {"a": 1, "p": "x"}, {"a": 1, "p": "y"}, {"a": 2, "p": "x"}, {"a": 2, "p": "y"}]),
        ),
        (
            "two zip groups are a product",
            "zip: [{p: [x, y]}, {q: [1, 2]}]",
            json!([
            {"p": "x", "q": 1}, {"p": "x", "q": 2}, {"p": "y", "q": 1}, {"p": "y", "q": 2}]),
        ),
        (
            "range inclusive",
            "matrix: {s: {range: [10, 40, 10]}}",
            json!([{"s": 10}, {"s": 20}, {"s": 30}, {"s": 40}]),
        ),
        (
            "float range",
            "matrix: {s: {range: [0, 0.3, 0.1]}}",
            json!([{"s": 0.0}, {"s": 0.1}, {"s": 0.2}, {"s": 0.3}]),
        ),
        (
            "descending range",
            "matrix: {s: {range: [3, 1, -1]}}",
            json!([{"s": 3}, {"s": 2}, {"s": 1}]),
        ),
        (
            "exclude drops partial matches",
            "matrix: {a: [1, 2], b: [x, y]}\nexclude: [{b: y}]",
            json!([
            {"a": 1, "b": "x"}, {"a": 2, "b": "x"}]),
        ),
        (
            "exclude with all keys",
            "matrix: {a: [1, 2], b: [x, y]}\nexclude: [{a: 1, b: y}]",
            json!([
            {"a": 1, "b": "x"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]),
        ),
        (
            "exclude compares 1 and 1.0 as numbers",
            "matrix: {a: [1, 2]}\nexclude: [{a: 1.0}]",
            json!([{"a": 2}]),
        ),
        (
            "include with no matrix adds combos",
            "include: [{a: 1}, {a: 2, b: 3}]",
            json!([{"a": 1}, {"a": 2, "b": 3}]),
        ),
    ];
    for (name, yaml, expected) in cases {
        let (combos, errors) = run(yaml, 1, 1000);
        assert_eq!(errors, Vec::<String>::new(), "{name}");
        assert_eq!(Value::Array(combos), *expected, "{name}");
    }
}

/// The example from the GitHub Actions documentation of `include`.
#[test]
fn include_follows_github_actions() {
    let yaml = "\
matrix: {fruit: [apple, pear], animal: [cat, dog]}
include:
  - {color: green}
  - {color: pink, animal: cat}
  - {fruit: apple, shape: circle}
  - {fruit: banana}
  - {fruit: banana, animal: cat}";
    let (combos, errors) = run(yaml, 1, 1000);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        Value::Array(combos),
        json!([
            {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
            {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
            {"fruit": "pear", "animal": "cat", "color": "pink"},
            {"fruit": "pear", "animal": "dog", "color": "green"},
            {"fruit": "banana"},
            {"fruit": "banana", "animal": "cat"},
        ])
    );
}

#[test]
fn problems_are_reported_with_places() {
    let cases: &[(&str, &str)] = &[
        (
            "zip: {p: [a, b, c], s: [1, 2]}",
            "m.yaml:2:3: error: zipped lists differ in length: `p` has 3 values, `s` has 2 values\n  hint: zipped lists advance together, so each needs the same number of values",
        ),
        (
            "matrix: {a: [1]}\nexclude: [{b: 1}]",
            "m.yaml:3:14: error: `exclude` names `b`, which is not a sweep key\n  hint: `exclude` entries may only name keys of `sweep.matrix` and `sweep.zip`",
        ),
        (
            "matrix: {a: [1]}\nexclude: [{a: 2}]",
            "m.yaml:3:13: error: this `exclude` entry matches no combination\n  hint: values are compared exactly (`0` and `\"0\"` differ); check them against the sweep's lists",
        ),
        (
            "matrix: {a: []}",
            "m.yaml:2:12: error: `a` has no values, so the sweep would make no job\n  hint: give it at least one value, or remove it",
        ),
        (
            "matrix: {a: [1]}\nzip: {a: [2]}",
            "m.yaml:3:9: error: `a` is swept twice (also at `sweep.matrix.a`)\n  hint: a key may come from only one table, `sweep.matrix` or `sweep.zip` group",
        ),
        (
            "matrix: {a: {range: [1, 5, 0]}}",
            "m.yaml:2:23: error: range [1, 5, 0] has a step of 0",
        ),
        (
            "matrix: {a: {range: [5, 1]}}",
            "m.yaml:2:23: error: range [5, 1] is empty: the step goes away from the stop",
        ),
        (
            "matrix: {a: {glob: '[x'}}",
            "m.yaml:2:22: error: invalid glob `[x`: unclosed character class; missing ']'",
        ),
    ];
    let mut wrong = Vec::new();
    for (yaml, expected) in cases {
        let (_, errors) = run(yaml, 1, 1000);
        if errors.join("\n") != *expected {
            wrong.push(format!("{yaml}\n  got: {}", errors.join("\n")));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_job_cap_counts_runs_and_refuses_before_enumerating_huge_sweeps() {
    let (_, errors) = run(
        "matrix: {a: {range: [1, 50]}, b: {range: [1, 30]}}",
        2,
        1000,
    );
    assert_eq!(
        errors,
        [
            "m.yaml:1:1: error: the manifest expands to 3000 jobs, more than the limit of 1000\n  hint: narrow the sweep, or raise the limit with `--max-jobs 3000`"
        ]
    );
    let (_, errors) = run(
        "matrix: {a: {range: [1, 5000]}, b: {range: [1, 5000]}}",
        1,
        10_000,
    );
    assert_eq!(
        errors,
        [
            "m.yaml:1:1: error: the manifest expands to 25000000 jobs, more than the limit of 10000\n  hint: narrow the sweep, or raise the limit with `--max-jobs 25000000`"
        ]
    );
}

#[test]
fn globs_are_relative_sorted_and_stay_in_their_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    for f in [
        "photos/b.png",
        "photos/a.png",
        "photos/c.jpg",
        "photos/sub/d.png",
        "other/e.png",
    ] {
        let p = dir.path().join(f);
        crate::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        crate::fs::write(&p, b"x").expect("write");
    }
    assert_eq!(
        glob_files(dir.path(), "photos/*.png").expect("glob"),
        ["photos/a.png", "photos/b.png"]
    );
    assert_eq!(
        glob_files(dir.path(), "photos/**/*.png").expect("glob"),
        ["photos/a.png", "photos/b.png", "photos/sub/d.png"]
    );
    assert_eq!(
        glob_files(dir.path(), "*/*.png").expect("glob"),
        ["other/e.png", "photos/a.png", "photos/b.png"]
    );
    let (combos, errors) = run_in("matrix: {src: {glob: 'photos/*.gif'}}", 1, 10, dir.path());
    assert!(combos.is_empty());
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("m.yaml:2:24: error: `photos/*.gif` matches no file"),
        "{errors:?}"
    );
}

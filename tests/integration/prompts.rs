//! Dynamic prompts and the prompt search/replace axis: conformance with the `dynamicprompts`
//! library InvokeAI ships (run by `scripts/oracle_dynamic.py` in the installed package's Python),
//! the server's own endpoint, bounds, and manifests using them.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support;

/// Templates covering every form: variants (nested, empty, weighted, bounded, with joiners),
/// wildcards (plain, in folders, globbed, nested, as a variant's options), comments, whitespace
/// and the text the library takes literally.
const CORPUS: &[&str] = &[
    "a {red|green|blue} {car|bike}",
    "{a|b}{a|b}",
    "plain text, no variants",
    "abc",
    "{a}",
    "{a|}",
    "{|a}",
    "{}",
    "{|}",
    "{a|b|}",
    "{ a | b }",
    "{  a|  b}",
    " lead {a|b} trail ",
    "{a|{b|c}}",
    "{a|{b|c}d}e",
    "{{a|b}|{c|d}}",
    "{{a|b}}",
    "x {a|{b|{c|{d|e}}}} y",
    "{2$$a|b|c}",
    "{2$$a|a|b}",
    "{2$$a|{a|b}}",
    "{2$$a|b|}",
    "{3$$a|b|c}",
    "{5$$a|b}",
    "{0$$a|b}",
    "{1-2$$a|b|c}",
    "{-2$$a|b|c}",
    "{2-$$a|b|c}",
    "{3-1$$a|b|c}",
    "{2$$ and $$a|b|c}",
    "{1-2$$ $$a|b}",
    "{2$$  $$a|b}",
    "{2$$|$$a|b}",
    "{2$$,$$a|b|c}",
    "{2$$a$$b|c}",
    "{1-3$$ + $${x|y}|z|w}",
    "{!a|b}",
    "{0.5::a|b}",
    "{2::a|1.5::b|c}",
    "{.5::a|1.::b}",
    "{ 2::a|b}",
    "{2 ::a|b}",
    "{2$$0.5::a|3::b|c}",
    "a } b | c",
    "a}",
    "a_b {c_d|e}",
    "a # comment\nb",
    "{a|b # x\n}",
    "// whole line\n{a|b}",
    "a // not a comment here",
    "/* c */ {a|b}",
    "{a|b}/* c */",
    "a {b|/* c */d}",
    "a\tb {x|y}",
    "{a\n|b}",
    "line one\nline {two|2}",
    "\\{a|b\\}",
    "caf\u{e9} {\u{fc}ber|na\u{ef}ve} \u{1F600}",
    "__colors__",
    "a __colors__ car",
    "__colors*__",
    "__colors_w?rm__",
    "__animals/cats__",
    "__animals/*__",
    "__cats__",
    "__things__",
    "__spaced__!",
    "{__colors__}",
    "{2$$__colors__}",
    "{1-2$$ and $$__animals/cats__}",
    "{__colors__|pink}",
    "__colors__ and __colors__",
    "{big|small} __animals/dogs__",
    "a {2$$__colors_warm__|x}",
    "{a|b|c|d|e|f}{1|2|3|4|5|6}{x|y|z}",
    "{a|b",
    "a__b",
    "50% off",
    "cost $5",
];

fn wildcards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wildcards")
}

/// The library's answers for `templates`: each a list of prompts, or `None` when it refuses.
fn oracle(templates: &[&str], limit: usize) -> Vec<Option<Vec<String>>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/oracle_dynamic.py");
    let mut child = Command::new(support::installation().python())
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running the oracle");
    let request = json!({"wildcards": wildcards_dir(), "limit": limit, "templates": templates});
    serde_json::to_writer(child.stdin.take().expect("stdin"), &request).expect("request");
    let out = child.wait_with_output().expect("oracle output");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> = serde_json::from_slice(&out.stdout).expect("oracle prints JSON");
    answers
        .into_iter()
        .map(|a| serde_json::from_value::<Vec<String>>(a).ok())
        .collect()
}

fn ours(template: &str, limit: usize) -> Option<Vec<String>> {
    invk_run::manifest::dynamic_combinations(template, Some(&wildcards_dir()), limit).ok()
}

#[test]
fn combinations_equal_the_librarys_for_every_template_of_the_corpus() {
    assert!(CORPUS.len() >= 50, "{} templates", CORPUS.len());
    let limit = 1000;
    let theirs = oracle(CORPUS, limit);
    let mut differences = Vec::new();
    for (template, theirs) in CORPUS.iter().zip(&theirs) {
        let ours = ours(template, limit);
        if &ours != theirs {
            differences.push(format!(
                "{template:?}\n  library: {theirs:?}\n  invk-run: {ours:?}"
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} templates differ:\n{}",
        differences.len(),
        CORPUS.len(),
        differences.join("\n")
    );
    // The corpus exercises both answers: prompts, and refusals.
    assert!(theirs.iter().filter(|t| t.is_none()).count() >= 3);
    assert!(
        theirs
            .iter()
            .filter(|t| t.as_ref().is_some_and(|l| l.len() > 1))
            .count()
            >= 40
    );
}

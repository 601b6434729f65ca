//! Property tests over hostile input (proptest, a fixed number of cases from a fixed seed, so
//! CI runs them in seconds and a failure replays): the manifest parser, the workflow loader
//! and the template layer never panic, finish each input within a bound, and answer a bad one
//! with an error of bounded length. Crashes found are kept as regression cases below.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use invk_run::manifest::{ExpandOptions, ManifestFile};
use invk_run::workflow::{ConvertOptions, Workflow, WorkflowDefinition};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};

/// Cases per target: a few seconds each on a loaded machine.
const CASES: u32 = 256;
/// No single input may take longer (a hang is a failure, not a slow test).
const PER_CASE: Duration = Duration::from_secs(5);
/// An error about an input of at most a few KB is at most this long.
const MAX_ERROR: usize = 8 * 1024;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A runner with a fixed seed and no persistence files: the same cases on every run
/// (`INVK_FUZZ_CASES` runs more, for a longer search by hand).
fn runner() -> TestRunner {
    let config = Config {
        cases: std::env::var("INVK_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(CASES),
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]))
}

fn bounded<T>(what: &str, input: &str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    assert!(took < PER_CASE, "{what} took {took:?} on {input:?}");
    out
}

fn check_error(what: &str, input: &str, error: &impl std::fmt::Display) {
    let text = error.to_string();
    assert!(
        text.len() <= MAX_ERROR,
        "{what}: an error of {} bytes on {input:?}",
        text.len()
    );
}

/// Text made of YAML's and the templates' own punctuation, words the manifest knows, and
/// anything else: more likely to reach deep into the parser than uniform noise.
fn yamlish() -> impl Strategy<Value = String> {
    let atoms = prop_oneof![
        Just("\n".to_owned()),
        Just("  ".to_owned()),
        Just(": ".to_owned()),
        Just("- ".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(", ".to_owned()),
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("!!str ".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("#".to_owned()),
        Just("{{ ".to_owned()),
        Just(" }}".to_owned()),
        Just("{% for i in range(3) %}".to_owned()),
        Just("{% endfor %}".to_owned()),
        Just("version: 1\n".to_owned()),
        Just("workflow: ../workflows/flux-image-to-image.json\n".to_owned()),
        Just("inputs:\n".to_owned()),
        Just("sweep:\n".to_owned()),
        Just("matrix:\n".to_owned()),
        Just("zip:\n".to_owned()),
        Just("output:\n".to_owned()),
        Just("name: ".to_owned()),
        Just("runs: ".to_owned()),
        Just("Positive Prompt".to_owned()),
        Just("image".to_owned()),
        Just("range(1, 9, 2)".to_owned()),
        Just("glob(\"../photos/*.png\")".to_owned()),
        Just("sweep['Positive Prompt']".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just("-1".to_owned()),
        Just("\u{0}".to_owned()),
        "[a-z0-9 ._/-]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ];
    prop::collection::vec(atoms, 0..48).prop_map(|parts| parts.concat())
}

/// A valid manifest with one part replaced by noise.
fn mutated_manifest() -> impl Strategy<Value = String> {
    let base = fs_err::read_to_string(repo("tests/fixtures/manifests/valid/zip-and-range.yaml"))
        .expect("fixture");
    (any::<prop::sample::Index>(), 0usize..64, yamlish()).prop_map(move |(at, cut, noise)| {
        let chars: Vec<char> = base.chars().collect();
        let start = at.index(chars.len());
        let end = (start + cut).min(chars.len());
        let mut s: String = chars[..start].iter().collect();
        s.push_str(&noise);
        s.extend(&chars[end..]);
        s
    })
}

fn fixture_workflow() -> Workflow {
    let path = repo("tests/fixtures/manifests/workflows/flux-image-to-image.json");
    let definition = WorkflowDefinition::load(&path).expect("fixture workflow loads");
    Workflow::new(definition, crate::support::schemas()).expect("fixture workflow types")
}

/// How far an input got: refused when parsed (0), refused when expanded (1), expanded (2).
/// The tests count these, so a generator that never gets past the parser is noticed.
fn parse_and_expand(text: &str, workflow: &Workflow) -> usize {
    let path = repo("tests/fixtures/manifests/valid/fuzz.yaml");
    bounded("the manifest", text, || {
        match ManifestFile::parse(text, &path) {
            Ok(file) => match file.expand(workflow, &ExpandOptions { max_jobs: 1000 }) {
                Ok(_) => 2,
                Err(e) => {
                    check_error("expand", text, &e);
                    1
                }
            },
            Err(e) => {
                check_error("parse", text, &e);
                0
            }
        }
    })
}

#[test]
fn the_manifest_parser_survives_arbitrary_and_mutated_text() {
    let workflow = fixture_workflow();
    let reached = std::cell::RefCell::new([0usize; 3]);
    let mut runner = runner();
    runner
        .run(
            &prop_oneof![any::<String>(), yamlish(), mutated_manifest()],
            |text| {
                reached.borrow_mut()[parse_and_expand(&text, &workflow)] += 1;
                Ok(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let [_, refused, expanded] = *reached.borrow();
    assert!(
        refused + expanded >= 5,
        "few inputs got past the parser: {reached:?}"
    );
}

/// Templates in every place a manifest takes one: an input, the output name, a sweep value.
#[test]
fn the_template_layer_survives_arbitrary_templates() {
    let workflow = fixture_workflow();
    let template = prop::collection::vec(
        prop_oneof![
            Just("{{ ".to_owned()),
            Just(" }}".to_owned()),
            Just("{% ".to_owned()),
            Just(" %}".to_owned()),
            Just("{# ".to_owned()),
            Just(" #}".to_owned()),
            Just("for x in range(5)".to_owned()),
            Just("endfor".to_owned()),
            Just("if job.index".to_owned()),
            Just("endif".to_owned()),
            Just("macro m()".to_owned()),
            Just("endmacro".to_owned()),
            Just("m()".to_owned()),
            Just("sweep['Positive Prompt']".to_owned()),
            Just("job.index".to_owned()),
            Just("vars.x".to_owned()),
            Just("manifest.stem".to_owned()),
            Just(" | upper".to_owned()),
            Just(" | default('x')".to_owned()),
            Just(" ~ ".to_owned()),
            Just(" * 999".to_owned()),
            Just("'x'".to_owned()),
            Just("(".to_owned()),
            Just(")".to_owned()),
            Just("..".to_owned()),
            Just("/".to_owned()),
            "[a-z0-9 _.-]{0,6}",
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat());
    let reached = std::cell::RefCell::new([0usize; 3]);
    let mut runner = runner();
    runner
        .run(&(template.clone(), template), |(a, b)| {
            let text = format!(
                "version: 1\nworkflow: ../workflows/flux-image-to-image.json\nvars:\n  x: 3\ninputs:\n  image: ../photos/cat.png\n  Positive Prompt: {}\nsweep:\n  matrix:\n    Positive Prompt: [a, {}]\noutput:\n  name: {}\n",
                json!(a),
                json!(b),
                json!(format!("{a}{b}"))
            );
            reached.borrow_mut()[parse_and_expand(&text, &workflow)] += 1;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let [parsed_not, refused, expanded] = *reached.borrow();
    assert!(
        expanded >= 20 && refused >= 20,
        "templates must both render and fail: {parsed_not} {refused} {expanded}"
    );
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z_]{0,8}".prop_map(Value::String),
        Just(json!("invocation")),
        Just(json!("connector")),
        Just(json!("default")),
        Just(json!("add")),
        Just(json!("save_image")),
        Just(json!("integer_batch")),
        Just(json!("a")),
        Just(json!("value")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_owned()),
                    Just("type".to_owned()),
                    Just("data".to_owned()),
                    Just("inputs".to_owned()),
                    Just("value".to_owned()),
                    Just("source".to_owned()),
                    Just("target".to_owned()),
                    Just("sourceHandle".to_owned()),
                    Just("targetHandle".to_owned()),
                    Just("form".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces the value at a random place of `doc` by `with`.
fn graft(doc: &mut Value, mut at: usize, with: Value) {
    fn walk(v: &mut Value, at: &mut usize, with: &mut Option<Value>) {
        if with.is_none() {
            return;
        }
        if *at == 0 {
            *v = with.take().unwrap_or(Value::Null);
            return;
        }
        *at -= 1;
        match v {
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, at, with)),
            Value::Object(map) => map.values_mut().for_each(|i| walk(i, at, with)),
            _ => {}
        }
    }
    let mut with = Some(with);
    walk(doc, &mut at, &mut with);
}

/// Loads a workflow and, when it loads, types it and converts it: a failure is an error.
fn load_and_convert(value: Value) {
    let text = value.to_string();
    bounded("the workflow", &text, || {
        match WorkflowDefinition::from_json_value(value, "fuzz.json") {
            Ok(def) => match Workflow::new(def, crate::support::schemas()) {
                Ok(wf) => {
                    let _ = wf.inputs();
                    if let Err(e) = wf.to_batch(&ConvertOptions::default()) {
                        check_error("convert", &text, &e);
                    }
                }
                Err(e) => check_error("type", &text, &e),
            },
            Err(e) => check_error("load", &text, &e),
        }
        if let Err(e) = WorkflowDefinition::from_json_str(&text, "fuzz.json") {
            check_error("load text", &text, &e);
        }
    });
}

#[test]
fn the_workflow_loader_survives_arbitrary_and_grafted_documents() {
    let example: Value = serde_json::from_str(
        &fs_err::read_to_string(repo("examples/workflows/size-sweep.json")).expect("example"),
    )
    .expect("json");
    let mut runner = runner();
    runner
        .run(
            &(
                json_value(),
                json_value(),
                any::<prop::sample::Index>(),
                any::<bool>(),
            ),
            |(nodes, graft_value, at, shape)| {
                if shape {
                    load_and_convert(json!({"name": "f", "nodes": nodes, "edges": graft_value}));
                } else {
                    let mut doc = example.clone();
                    graft(&mut doc, at.index(400), graft_value);
                    load_and_convert(doc);
                }
                Ok(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
}

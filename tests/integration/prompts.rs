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

#[tokio::test]
async fn the_servers_dynamicprompts_endpoint_agrees_on_the_templates_without_wildcards() {
    // The server's generator has no wildcards folder; a template it cannot parse comes back as
    // itself with an error, which invk-run refuses instead.
    let url = support::server().url().to_owned();
    let client = reqwest::Client::new();
    let mut compared = 0;
    for template in CORPUS.iter().filter(|t| !t.contains("__")) {
        let Some(ours) = ours(template, 1000) else {
            continue;
        };
        let answer: Value = client
            .post(format!("{url}/api/v1/utilities/dynamicprompts"))
            .json(&json!({"prompt": template, "max_prompts": 1000, "combinatorial": true}))
            .send()
            .await
            .expect("POST dynamicprompts")
            .json()
            .await
            .expect("JSON answer");
        assert_eq!(answer["error"], Value::Null, "{template:?}: {answer}");
        let theirs: Vec<String> =
            serde_json::from_value(answer["prompts"].clone()).expect("prompts");
        assert_eq!(ours, theirs, "{template:?}");
        compared += 1;
    }
    assert!(compared >= 40, "compared {compared} templates");
}

/// A folder with the `seeded-tint` workflow, its photo and `m.yaml`.
fn workspace(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (from, to) in [
        ("examples/workflows/seeded-tint.json", "wf.json"),
        ("examples/images/sea.png", "sea.png"),
    ] {
        fs_err::copy(repo.join(from), dir.path().join(to)).expect("copy");
    }
    fs_err::write(dir.path().join("m.yaml"), manifest).expect("manifest");
    dir
}

fn validate(dir: &Path) -> crate::hostile::Measured {
    let mut cmd = support::invk_run();
    cmd.current_dir(dir).args(["validate", "m.yaml"]);
    crate::hostile::measure(cmd)
}

#[test]
fn validate_refuses_a_trillion_prompts_at_once_in_little_memory() {
    let template = "{a|b|c|d|e|f|g|h|i|j}".repeat(12);
    let ws = workspace(&format!(
        "version: 1\nworkflow: wf.json\ninputs:\n  Source image: sea.png\nsweep:\n  matrix:\n    Prompt: {{dynamic: '{template}'}}\n"
    ));
    // A manifest of the same size that is valid: the fixed cost of starting and reading.
    let small = workspace(
        "version: 1\nworkflow: wf.json\ninputs:\n  Source image: sea.png\nsweep:\n  matrix:\n    Prompt: {dynamic: 'a {b|c}'}\n",
    );
    // The fastest of three runs each: the machine is shared.
    let fastest = |dir: &Path| {
        (0..3)
            .map(|_| validate(dir))
            .min_by_key(|m| m.took)
            .expect("three runs")
    };
    let base = fastest(small.path());
    assert!(base.status.success(), "{}", base.stderr);
    let m = fastest(ws.path());
    assert_eq!(m.status.code(), Some(2), "{}", m.stderr);
    assert!(
        m.stderr.contains("m.yaml:7:23")
            && m.stderr.contains(
                "the template makes 1000000000000 prompts, more than the job limit of 10000"
            ),
        "{}",
        m.stderr
    );
    eprintln!(
        "trillion: {:?} and {} MB; a valid two-prompt manifest: {:?} and {} MB",
        m.took,
        m.peak_bytes >> 20,
        base.took,
        base.peak_bytes >> 20
    );
    // Beyond what starting the program and reading the workflow and its schemas take (the same
    // for both), the refusal costs under 50 MB and 0.1 s.
    assert!(
        m.peak_bytes < base.peak_bytes + (50 << 20),
        "peak {} MB against {} MB",
        m.peak_bytes >> 20,
        base.peak_bytes >> 20
    );
    assert!(
        m.took < base.took + std::time::Duration::from_millis(100),
        "{:?} against {:?}",
        m.took,
        base.took
    );
}

#[test]
fn a_replace_word_missing_from_the_text_is_exit_2_at_its_line() {
    let ws = workspace(
        "version: 1\nworkflow: wf.json\ninputs:\n  Source image: sea.png\n  Prompt: a bird on a wire\nsweep:\n  matrix:\n    animal: {replace: [cat, dog, fox], in: Prompt}\n",
    );
    let m = validate(ws.path());
    assert_eq!(m.status.code(), Some(2), "{}", m.stderr);
    assert!(
        m.stderr.contains("m.yaml:8:24")
            && m.stderr.contains("`cat`, the word `replace` searches for, does not occur in the text of input `Prompt`: a bird on a wire"),
        "{}",
        m.stderr
    );
}

/// Runs `m.yaml` in `dir` on the shared test server to its end.
fn run(dir: &Path, extra: &[&str]) {
    let out = support::invk_run()
        .current_dir(dir)
        .args(["--server", support::server().url(), "-q"])
        .args(extra)
        .arg("m.yaml")
        .output()
        .expect("run invk-run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `Prompt` of each job, by job number, from the sidecars of its `Tinted` output.
fn sidecar_prompts(dir: &Path) -> Vec<(u64, String)> {
    let mut found = Vec::new();
    let entries = fs_err::read_dir(dir.join("out")).into_iter().flatten();
    for entry in entries {
        let path = entry.expect("entry").path();
        if !path.to_string_lossy().ends_with("-Tinted.png.json") {
            continue;
        }
        let sidecar: Value =
            serde_json::from_str(&fs_err::read_to_string(&path).expect("sidecar")).expect("json");
        let number = sidecar["job"]
            .as_u64()
            .unwrap_or_else(|| panic!("no job index in {}: {sidecar}", path.display()));
        let prompt = sidecar["inputs"]["Prompt"]
            .as_str()
            .expect("Prompt")
            .to_owned();
        found.push((number, prompt));
    }
    found.sort();
    found
}

const OUTPUT: &str = "output:\n  dir: out\n  name: \"{{ job.number }}-{{ node.label }}\"\n  grid: false\n  gallery: false\n";

#[test]
fn a_replace_axis_runs_one_job_per_word_with_its_text_in_the_sidecars() {
    let ws = workspace(&format!(
        "version: 1\nworkflow: wf.json\ninputs:\n  Source image: sea.png\n  Width: 32\n  Prompt: a cat on a mat\nsweep:\n  matrix:\n    animal: {{replace: [cat, dog, fox], in: Prompt}}\n{OUTPUT}"
    ));
    run(ws.path(), &[]);
    assert_eq!(
        sidecar_prompts(ws.path()),
        [
            (0, "a cat on a mat".to_owned()),
            (1, "a dog on a mat".to_owned()),
            (2, "a fox on a mat".to_owned())
        ]
    );
}

#[test]
fn random_prompts_are_the_same_after_a_kill_and_resume_and_differ_by_seed() {
    let manifest = |seed: u64| {
        format!(
            "version: 1\nworkflow: wf.json\nseed: {seed}\ninputs:\n  Source image: sea.png\n  Width: 32\n  Prompt: {{dynamic: 'a {{red|green|blue|grey|pink}} {{car|bike|boat|kite}} {{1-2$$ and $$sun|rain|snow}}', random: 8}}\n{OUTPUT}"
        )
    };
    let whole = workspace(&manifest(1));
    run(whole.path(), &[]);
    let first = sidecar_prompts(whole.path());
    assert_eq!(first.len(), 8, "{first:?}");

    // The same manifest, killed (`kill -9`) once a job is saved, then resumed.
    let killed = workspace(&manifest(1));
    let mut child = support::invk_run()
        .current_dir(killed.path())
        .args([
            "--server",
            support::server().url(),
            "-q",
            "--window",
            "2",
            "m.yaml",
        ])
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while sidecar_prompts(killed.path()).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no output appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let before = sidecar_prompts(killed.path());
    assert!(
        before.len() < 8,
        "every job finished before the kill: {before:?}"
    );
    run(killed.path(), &[]);
    assert_eq!(sidecar_prompts(killed.path()), first);

    let other = workspace(&manifest(2));
    run(other.path(), &[]);
    let second = sidecar_prompts(other.path());
    assert_eq!(second.len(), 8);
    assert_ne!(
        second.iter().map(|(_, p)| p).collect::<Vec<_>>(),
        first.iter().map(|(_, p)| p).collect::<Vec<_>>(),
        "another seed draws other prompts"
    );
}

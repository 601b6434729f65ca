//! Manifests: every valid fixture loads and expands (job lists snapshotted), every invalid one is
//! refused with located errors (full messages snapshotted), the committed JSON Schema is current,
//! and the behaviours users rely on (templates, globs, include, output paths) hold end to end.

use std::path::{Path, PathBuf};

use invk_run::manifest::{
    ExpandOptions, Expansion, InputValue, ManifestError, ManifestFile, OutputVars, Plan,
    manifest_schema,
};
use serde_json::{Map, Value, json};

/// The fixture path relative to the package root (the tests' working folder), so messages and
/// snapshots do not depend on where the repository is.
fn relative(path: &Path) -> PathBuf {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .map_or_else(|_| path.to_path_buf(), Path::to_path_buf)
}

fn load_and_expand(path: &Path) -> Result<Expansion, ManifestError> {
    ManifestFile::load(path)?.expand(&fixture_workflow(), &ExpandOptions::default())
}

/// The inputs of `tests/fixtures/manifests/workflows/flux-image-to-image.json` (a real export
/// of the web UI, with the image input emptied), typed by the shipped schema snapshot: names
/// from its form, types and constraints from the schemas, as `invk-run` checks manifests.
fn fixture_workflow() -> invk_run::workflow::Workflow {
    use invk_run::workflow::{Workflow, WorkflowDefinition};
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/manifests/workflows/flux-image-to-image.json");
    let definition = WorkflowDefinition::load(&path).expect("fixture workflow loads");
    Workflow::new(definition, crate::support::schemas()).expect("fixture workflow types")
}

/// What a user checks in a dry run: the jobs with their values (by user name), how they are
/// grouped into enqueues, and where the first output would go.
fn summary(expansion: &Expansion) -> Value {
    let user = |system: &str| {
        expansion
            .inputs
            .get(system)
            .map_or(system.to_owned(), |i| i.user_name.clone())
    };
    let show = |v: &InputValue| match v {
        InputValue::LocalImage(i) => json!({ "local_image": i.written }),
        other => other.display_json(),
    };
    let jobs: Vec<Value> = expansion
        .jobs()
        .map(|j| {
            let inputs: Map<String, Value> =
                j.inputs.iter().map(|(k, v)| (user(k), show(v))).collect();
            json!({"index": j.index, "run": j.run, "inputs": inputs, "sweep": j.sweep})
        })
        .collect();
    let plan = Plan::new(expansion);
    let enqueues: Vec<Value> = plan
        .enqueues
        .iter()
        .map(|e| {
            json!({
                "jobs": e.job_indices,
                "runs": e.runs(),
                "varying": e.varying.keys().map(|k| user(k)).collect::<Vec<_>>(),
                "fixed": e.fixed.keys().map(|k| user(k)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let first_output = (expansion.job_count() > 0).then(|| {
        let p = expansion
            .output_path(&expansion.job(0), &OutputVars::example())
            .expect("output path of job 0");
        p.file("png").display().to_string()
    });
    json!({"plan": plan.to_string(), "enqueues": enqueues, "first_output": first_output, "jobs": jobs})
}

#[test]
fn valid_manifests_load_and_expand() {
    insta::glob!("../../fixtures/manifests/valid", "*.yaml", |path| {
        let path = relative(path);
        let expansion =
            load_and_expand(&path).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
        insta::assert_yaml_snapshot!(summary(&expansion));
    });
}

#[test]
fn invalid_manifests_are_refused_with_located_errors() {
    let mut seen = 0;
    insta::glob!("../../fixtures/manifests/invalid", "*.yaml", |path| {
        seen += 1;
        let path = relative(path);
        let err = match load_and_expand(&path) {
            Ok(_) => panic!(
                "{} expanded, but it is in the invalid corpus",
                path.display()
            ),
            Err(e) => e,
        };
        let count = err.diagnostics().len();
        let several = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("several-"));
        if several {
            assert!(
                count > 1,
                "{} should report several problems:\n{err}",
                path.display()
            );
        } else {
            assert_eq!(
                count,
                1,
                "{} should report exactly one problem:\n{err}",
                path.display()
            );
        }
        let prefix = format!("{}:", path.display());
        assert!(
            err.to_string().starts_with(&prefix),
            "every error names the file and place:\n{err}"
        );
        insta::assert_snapshot!(err.to_string());
    });
    assert!(
        seen >= 20,
        "the invalid corpus has {seen} manifests, expected at least 20"
    );
}

#[test]
fn manifest_schema_is_current() {
    let committed_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/manifest.schema.json");
    let generated = manifest_schema();
    if std::env::var_os("INVK_UPDATE_SCHEMA").is_some() {
        fs_err::create_dir_all(committed_path.parent().expect("schemas folder"))
            .expect("create schemas/");
        fs_err::write(&committed_path, &generated).expect("write the schema");
        return;
    }
    let committed = fs_err::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/manifest.schema.json is stale; regenerate it with\n  INVK_UPDATE_SCHEMA=1 cargo test --test integration manifest_schema"
    );
}

/// Writes `yaml` as `m.yaml` in a temporary folder next to the fixture workflow and photos.
fn scratch(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests");
    fs_err::copy(
        fixtures.join("workflows/flux-image-to-image.json"),
        dir.path().join("wf.json"),
    )
    .expect("copy workflow");
    fs_err::create_dir(dir.path().join("photos")).expect("mkdir");
    for p in ["cat.png", "dog.png"] {
        fs_err::copy(
            fixtures.join("photos").join(p),
            dir.path().join("photos").join(p),
        )
        .expect("copy photo");
    }
    let path = dir.path().join("m.yaml");
    fs_err::write(&path, format!("version: 1\nworkflow: wf.json\n{yaml}")).expect("write manifest");
    (dir, path)
}

#[test]
fn a_sweep_over_a_photo_folder_uploads_each_photo_once_in_one_enqueue() {
    let (_dir, path) = scratch(
        "inputs:\n  Positive Prompt: \"{{ sweep.image | stem }} in {{ vars.style }} style, take {{ run.index }}\"\nvars: {style: ink}\nsweep:\n  matrix:\n    image: {glob: \"photos/*.png\"}\nruns: 2\n",
    );
    let expansion = load_and_expand(&path).expect("valid");
    let prompts: Vec<Value> = expansion
        .jobs()
        .filter_map(|j| {
            j.inputs
                .get("01f674f8-b3d1-4df1-acac-6cb8e0bfb63c.prompt")
                .and_then(InputValue::as_value)
                .cloned()
        })
        .collect();
    assert_eq!(
        prompts,
        [
            "cat in ink style, take 0",
            "dog in ink style, take 0",
            "cat in ink style, take 1",
            "dog in ink style, take 1"
        ]
    );
    let plan = Plan::new(&expansion);
    assert_eq!(plan.to_string(), "4 jobs in 1 enqueue");
    let images: Vec<&str> = plan.enqueues[0]
        .local_images()
        .iter()
        .map(|i| i.written.as_str())
        .collect();
    assert_eq!(images, ["photos/cat.png", "photos/dog.png"]);
    assert!(
        plan.enqueues[0]
            .local_images()
            .iter()
            .all(|i| i.path.is_file())
    );
}

#[test]
fn output_paths_follow_the_templates_and_never_leave_the_output_folder() {
    let (dir, path) = scratch(
        "inputs: {image: photos/cat.png}\noutput:\n  dir: \"out/{{ manifest.stem }}\"\n  name: \"{{ node.label }}/{{ job.number }}-{{ image.index }}\"\n",
    );
    let expansion = load_and_expand(&path).expect("valid");
    let job = &expansion.job(0);
    let mut vars = OutputVars::example();
    vars.node_label = "Blurred".into();
    let out = expansion.output_path(job, &vars).expect("path");
    assert_eq!(out.file("png"), dir.path().join("out/m/Blurred/0-0.png"));

    vars.node_label = "..".into();
    let err = expansion
        .output_path(job, &vars)
        .expect_err("a label of `..` would leave the folder");
    assert_eq!(
        err.to_string()
            .replace(&format!("{}/", dir.path().display()), ""),
        "m.yaml:6:9: error: `output.name` renders to `../0-0`; `..` could leave `output.dir`"
    );
}

#[test]
fn job_numbers_are_zero_padded_to_the_widest_index() {
    let (_dir, path) = scratch(
        "inputs:\n  image: photos/cat.png\n  Positive Prompt: \"{{ job.number }}/{{ job.count }}\"\nsweep:\n  matrix:\n    num_steps: {range: [1, 12]}\n",
    );
    let expansion = load_and_expand(&path).expect("valid");
    let numbers: Vec<String> = expansion
        .jobs()
        .map(|j| {
            j.inputs["01f674f8-b3d1-4df1-acac-6cb8e0bfb63c.prompt"]
                .display_json()
                .to_string()
        })
        .collect();
    assert_eq!(numbers.first().map(String::as_str), Some("\"00/12\""));
    assert_eq!(numbers.last().map(String::as_str), Some("\"11/12\""));
}

/// Manifests made to exhaust the checker (issue 12): a 3 MB and a 50 MB sweep list, a list of
/// 150,000 values in a small file. Each is refused with exit 2 by `validate` and by a run (whose
/// server, on port 1, does not exist: a run that sent anything would fail otherwise), with a
/// short message naming the file and the line. `scripts/bench-validate` prints their time and
/// memory.
#[test]
fn huge_manifests_are_refused_with_a_short_message_naming_the_line() {
    let (dir, _) = scratch("");
    let header = "version: 1\nworkflow: wf.json\ninputs: {image: photos/cat.png}\nsweep:\n  matrix:\n    num_steps: [";
    let cases = [
        (
            "list-3mb.yaml",
            "1, ".repeat(1_000_000),
            "the manifest is larger than 1 MiB",
        ),
        (
            "list-50mb.yaml",
            "1, ".repeat(16_700_000),
            "the manifest is larger than 1 MiB",
        ),
        (
            "list-150k.yaml",
            "1,".repeat(150_000),
            "the list `sweep.matrix.num_steps` has more than 100000 items",
        ),
    ];
    for (name, items, expected) in cases {
        fs_err::write(dir.path().join(name), format!("{header}{items}1]\n")).expect("write");
        for args in [&["validate"][..], &["--server", "http://127.0.0.1:1"][..]] {
            let out = crate::support::invk_run()
                .current_dir(dir.path())
                .args(args)
                .arg(name)
                .output()
                .expect("run");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {stderr}");
            // (A run warns first that it cannot reach the server for its schemas.)
            let first = stderr
                .lines()
                .find(|l| l.starts_with(&format!("{name}:")))
                .unwrap_or_else(|| panic!("{name}: no line names the file: {stderr}"));
            assert!(first.contains(expected), "{name}: {first}");
            assert!(
                stderr.len() < 1000,
                "{name}: {} bytes of messages",
                stderr.len()
            );
        }
    }
}

/// The dry run prints one JSON document (streamed as jobs are made): every job in order, and
/// enqueues that cover every job once.
#[test]
fn the_dry_run_lists_every_job_and_enqueue_without_a_server() {
    let (dir, _) = scratch(
        "inputs: {image: photos/cat.png, Positive Prompt: \"{{ animal }} {{ job.number }}\"}\nsweep:\n  matrix:\n    animal: [cat, dog, owl]\n    num_steps: {range: [1, 4]}\nruns: 2\n",
    );
    for json_flag in [false, true] {
        let mut cmd = crate::support::invk_run();
        cmd.current_dir(dir.path())
            .args(["--dry-run", "--server", "http://127.0.0.1:1"]);
        if json_flag {
            cmd.arg("--json");
        }
        let out = cmd.arg("m.yaml").output().expect("dry run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
        let jobs = doc["jobs"].as_array().expect("jobs");
        assert_eq!(jobs.len(), 24);
        let indices: Vec<u64> = jobs.iter().filter_map(|j| j["index"].as_u64()).collect();
        assert_eq!(indices, (0..24).collect::<Vec<u64>>());
        assert_eq!(jobs[23]["inputs"]["Positive Prompt"], "owl 23");
        let mut covered: Vec<u64> = doc["enqueues"]
            .as_array()
            .expect("enqueues")
            .iter()
            .flat_map(|e| {
                assert!(e.get("batch").is_some(), "{e}");
                e["jobs"].as_array().cloned().unwrap_or_default()
            })
            .filter_map(|j| j.as_u64())
            .collect();
        covered.sort_unstable();
        assert_eq!(covered, (0..24).collect::<Vec<u64>>());
    }
}

//! What the built binary tells a new user, as it shows on a terminal: `validate --json`, the
//! errors of a missing manifest and of broken YAML, the help of `watch` and `--server`, `-q`
//! with `--local`, and a non-image dropped into a `watch --each` folder.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A folder with the bundled `blur-and-tint` workflow (`wf.json`), a photo, a valid manifest
/// (`m.yaml`) and manifests with mistakes.
fn job_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let at = |name: &str| dir.path().join(name);
    fs_err::copy(repo("examples/workflows/blur-and-tint.json"), at("wf.json")).expect("copy");
    fs_err::copy(repo("examples/images/sunset.png"), at("sunset.png")).expect("copy");
    let files = [
        (
            "m.yaml",
            "version: 1\nworkflow: wf.json\ninputs:\n  Source image: sunset.png\nsweep:\n  matrix:\n    Hue shift: [0, 180]\noutput:\n  dir: out/m\n",
        ),
        (
            "typo.yaml",
            "version: 1\nworkflow: wf.json\ninputs:\n  Source image: sunset.png\n  Hue shfit: 3\n",
        ),
        (
            "tab.yaml",
            "version: 1\nworkflow: wf.json\ninputs:\n\tHue shift: 3\n",
        ),
        (
            "indent.yaml",
            "version: 1\nworkflow: wf.json\ninputs:\n  Hue shift: 3\n   Blur radius: 2\n",
        ),
        (
            "open.yaml",
            "version: 1\nworkflow: wf.json\ninputs:\n  Hue shift: [0, 90\n",
        ),
        (
            "dedent.yaml",
            "version: 1\nworkflow: wf.json\ninputs:\n  Hue shift: 3\n Blur radius: 2\n",
        ),
    ];
    for (name, text) in files {
        fs_err::write(at(name), text).expect("write");
    }
    dir
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    support::invk_run()
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run invk-run")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_json_prints_one_object_per_manifest_with_its_errors() {
    let dir = job_folder();
    let out = run_in(
        dir.path(),
        &[
            "validate",
            "--json",
            "m.yaml",
            "typo.yaml",
            "tab.yaml",
            "missing.yaml",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "the errors are in the JSON");
    let stdout = text(&out.stdout);
    let objects: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
        .collect();
    assert_eq!(objects.len(), 4, "{stdout}");
    for (object, valid) in objects.iter().zip([true, false, false, false]) {
        assert_eq!(object["valid"], valid, "{object}");
        assert_eq!(
            object["errors"].as_array().expect("errors").is_empty(),
            valid,
            "{object}"
        );
    }
    insta::assert_snapshot!(stdout);

    // A valid manifest alone: exit 0, and the same shape.
    let out = run_in(dir.path(), &["validate", "--json", "m.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 1);
}

#[test]
fn a_missing_manifest_names_its_cause_once() {
    let dir = job_folder();
    let out = run_in(dir.path(), &["validate", "missing.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    // Its cause once, and its name once.
    assert_eq!(stderr.matches("No such file").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("missing.yaml").count(), 1, "{stderr}");
    insta::assert_snapshot!(stderr);
}

#[test]
fn a_yaml_syntax_error_hints_at_what_to_check() {
    let dir = job_folder();
    let out = run_in(
        dir.path(),
        &[
            "validate",
            "tab.yaml",
            "indent.yaml",
            "dedent.yaml",
            "open.yaml",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("  hint: ").count(), 4, "{stderr}");
    insta::assert_snapshot!(stderr);
}

#[test]
fn global_options_may_come_before_a_command_and_run_options_may_not() {
    let dir = job_folder();
    // `-q` before `validate` used to make `validate` a manifest to run.
    let out = run_in(dir.path(), &["-q", "validate", "typo.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("typo.yaml:5:3: error: "),
        "the manifest is checked: {stderr}"
    );
    let out = run_in(dir.path(), &["--json", "validate", "m.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("{\"file\":\"m.yaml\",\"valid\":true"));
    // A run's option would be ignored by a command: refused instead.
    let out = run_in(dir.path(), &["--dry-run", "validate", "m.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(text(&out.stderr));
}

#[test]
fn watch_takes_one_folder_as_its_help_says() {
    let dir = job_folder();
    let help = text(&run_in(dir.path(), &["watch", "--help"]).stdout);
    assert!(
        help.contains("Usage: invk-run watch [OPTIONS] <DIR>\n"),
        "{help}"
    );
    assert!(!help.contains("MANIFEST]..."), "{help}");
    let out = run_in(dir.path(), &["watch", "hot", "m.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(text(&out.stderr));
}

#[test]
fn the_server_option_says_which_commands_take_several() {
    let dir = job_folder();
    let help = text(&run_in(dir.path(), &["--help"]).stdout);
    let start = help
        .find("      --server <URL>")
        .expect("--server in the help");
    let end = start + help[start..].find("[env: INVK_SERVER").expect("its env");
    let paragraph = help[start..end].trim_end();
    assert!(
        !paragraph.contains("every other command talks to one"),
        "{paragraph}"
    );
    insta::assert_snapshot!(paragraph);
}

/// A cache folder holding what looks like an installed InvokeAI whose server cannot start
/// (no `invokeai-web`): `--local` gets as far as starting it, then fails.
fn broken_installation(dir: &Path) -> (PathBuf, &'static str) {
    let version = "0.0.0-test";
    let venv = dir.join("cache").join(format!("invokeai-{version}"));
    fs_err::create_dir_all(venv.join("bin")).expect("venv");
    fs_err::write(venv.join("bin/python"), "").expect("python");
    fs_err::write(venv.join(".invk-run-installed"), format!("{version}\n")).expect("marker");
    (dir.join("cache"), version)
}

#[test]
fn quiet_silences_the_private_server_start() {
    let dir = job_folder();
    let (cache, version) = broken_installation(dir.path());
    let local = |quiet: bool| {
        let mut cmd = support::invk_run();
        cmd.current_dir(dir.path())
            .env("INVK_CACHE_DIR", &cache)
            .env("INVK_INVOKEAI_VERSION", version)
            .stdin(Stdio::null());
        if quiet {
            cmd.arg("-q");
        }
        let out = cmd.args(["--local", "m.yaml"]).output().expect("run");
        (out.status.code(), text(&out.stderr))
    };
    let (code, loud) = local(false);
    assert_eq!(code, Some(1), "{loud}");
    assert!(
        loud.contains("starting a private InvokeAI 0.0.0-test server"),
        "{loud}"
    );
    let (code, quiet) = local(true);
    assert_eq!(code, Some(1), "{quiet}");
    assert!(!quiet.contains("starting"), "-q: {quiet}");
    assert!(
        quiet.contains("error: ") && quiet.contains("invokeai-web"),
        "-q still prints errors: {quiet}"
    );
}

/// Kills the watcher when the test ends, passed or not.
struct Watcher(std::process::Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn watch_each_says_a_file_is_not_an_image_and_where_it_is_now() {
    let dir = job_folder();
    let hot = dir.path().join("hot");
    fs_err::create_dir_all(&hot).expect("hot folder");
    let mut watcher = Watcher(
        support::invk_run()
            .current_dir(dir.path())
            .args([
                "watch",
                "hot",
                "--each",
                "m.yaml",
                "--as",
                "Source image",
                "--settle-ms",
                "100",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the watcher"),
    );
    let stderr = watcher.0.stderr.take().expect("stderr");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = |deadline: Instant| {
        lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("a line from the watcher in time")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let started = next_line(deadline);
    assert!(started.starts_with("watching "), "{started}");
    fs_err::write(hot.join("notes.png"), "not a picture\n").expect("drop a text file");
    let failed = loop {
        let line = next_line(deadline);
        if line.starts_with("failed ") {
            break line;
        }
    };
    let root = dir.path().canonicalize().expect("canonical");
    let shown = failed
        .replace(&root.display().to_string(), "[DIR]")
        .replace(&dir.path().display().to_string(), "[DIR]");
    assert!(!shown.contains("invalid manifest"), "{shown}");
    assert!(!shown.contains("processing"), "{shown}");
    insta::assert_snapshot!(shown);
    assert!(hot.join("failed/notes.png").is_file());
    let error = fs_err::read_to_string(hot.join("failed/notes.png.error.txt")).expect("report");
    assert!(
        error.starts_with("notes.png: not an image, nothing was sent\n"),
        "{error}"
    );
    drop(watcher);
}

#[test]
fn docs_json_shows_the_shape_validate_prints() {
    let doc = fs_err::read_to_string(repo("docs/json.md")).expect("docs/json.md");
    let blocks: Vec<Value> = doc
        .split("```json\n")
        .skip(1)
        .map(|rest| {
            let block = &rest[..rest.find("```").expect("a closed block")];
            serde_json::from_str(block).unwrap_or_else(|e| panic!("{e}: {block}"))
        })
        .collect();
    assert_eq!(blocks.len(), 3, "{blocks:?}");
    let keys =
        |v: &Value| -> Vec<String> { v.as_object().expect("an object").keys().cloned().collect() };
    // The first example is what the bundled manifest gives.
    let out = run_in(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["validate", "--json", "jobs/hue-sweep.yaml"],
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(blocks[0], printed);
    // The others have the fields the binary prints, in its order.
    let dir = job_folder();
    let out = run_in(dir.path(), &["validate", "--json", "typo.yaml"]);
    let invalid: Value = serde_json::from_slice(&out.stdout).expect("json");
    for block in &blocks[1..] {
        assert_eq!(keys(block), keys(&invalid));
        assert_eq!(keys(&block["errors"][0]), keys(&invalid["errors"][0]));
    }
}

/// A folder for `PATH` whose `python3.12` makes a virtual environment whose `pip` prints as
/// pip does (on stdout) and fails to install InvokeAI.
fn failing_python(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("fake-bin");
    fs_err::create_dir_all(&bin).expect("bin");
    let pip = "#!/bin/sh\necho \"Collecting $*\"\ncase \"$*\" in *invokeai==*) echo 'ERROR: No matching distribution' >&2; exit 1;; esac\n";
    let python = format!(
        "#!/bin/sh\nif [ \"$1\" = -m ] && [ \"$2\" = venv ]; then\n  mkdir -p \"$3/bin\"\n  cat > \"$3/bin/pip\" <<'PIP'\n{pip}PIP\n  chmod +x \"$3/bin/pip\"\nfi\nexit 0\n"
    );
    let path = bin.join("python3.12");
    fs_err::write(&path, python).expect("python");
    fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

#[test]
fn an_install_prints_nothing_on_stdout_and_only_errors_with_quiet() {
    let dir = job_folder();
    let bin = failing_python(dir.path());
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let install = |quiet: bool| {
        let cache = dir.path().join(if quiet { "cache-q" } else { "cache" });
        let mut cmd = support::invk_run();
        cmd.current_dir(dir.path())
            .env("PATH", &path)
            .env("INVK_CACHE_DIR", &cache)
            .env("INVK_INVOKEAI_VERSION", "0.0.0-test")
            .stdin(Stdio::null());
        if quiet {
            cmd.arg("-q");
        }
        let out = cmd
            .args(["--json", "--local", "m.yaml"])
            .output()
            .expect("run");
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, stdout, stderr) = install(false);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "", "pip's output is not the command's: {stderr}");
    assert!(
        stderr.contains("installing InvokeAI 0.0.0-test"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Collecting install --progress-bar off invokeai==0.0.0-test"),
        "pip's progress: {stderr}"
    );
    let (code, stdout, stderr) = install(true);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert!(!stderr.contains("installing"), "-q: {stderr}");
    assert!(
        stderr.contains("install --progress-bar off --quiet invokeai==0.0.0-test")
            && stderr.contains("ERROR: No matching distribution"),
        "pip is asked to be quiet, and its errors still show: {stderr}"
    );
}

//! The built binary as a shell pipeline uses it: every command that prints on stdout ends
//! quietly with exit status 0 when its reader goes away (`invk-run ... | head`), as `rg` does;
//! and no ANSI colour reaches stderr when it is not a terminal, or when `NO_COLOR` is set.
//!
//! Commands that print on stdout, and where they are covered:
//! - here, offline: `completions` (every shell), `inputs` (table and `--json`), `graph`
//!   (pretty and `--json`), `validate` (text, on stderr) and `validate --json`, `--dry-run`
//!   (text and `--json`), `status` (text and `--json`), `report --json`, `server status`,
//!   `server logs`, `servers check` (text and `--json`, against a port nothing listens on);
//! - here, against a fake server (a few canned HTTP answers): `workflows list` and
//!   `boards list` (table and `--json`);
//! - here, a watcher: `watch --json` stops at its next event once its reader is gone (as
//!   `tail -f | head` does), running manifests staying in `processing/` for the next start;
//! - not here: a run's `--json` progress (a run keeps going without its reader rather than be
//!   abandoned halfway; it needs a server to get there), `cancel --json` and
//!   `workflows upload` (they change a server's state: the real-server tests cover them),
//!   `server install` and `server start` (they install and start InvokeAI).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs the command with a stdout whose reader is gone before anything is written, and
/// returns its output (stderr only).
fn with_stdout_closed(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start invk-run");
    // The read end goes now: the process has only just started, and its first write fails.
    drop(child.stdout.take());
    child.wait_with_output().expect("wait for invk-run")
}

/// Runs the command as `| head -n 1` does: reads the first line, then closes the pipe.
fn with_first_line_read(cmd: &mut Command) -> (String, Output) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start invk-run");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("read the first line");
    (first, child.wait_with_output().expect("wait for invk-run"))
}

/// The command's own output when all of it is read (so that a closed pipe is not tested on a
/// command that prints nothing).
fn in_full(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run invk-run")
}

fn assert_quiet_end(what: &str, out: &Output, want: Option<i32>) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{what}: {stderr}"
    );
    assert!(
        !stderr.contains("error"),
        "{what}: a closed stdout is not an error: {stderr}"
    );
    assert_eq!(
        out.status.code(),
        want,
        "{what}: exit status, stderr: {stderr}"
    );
}

/// A folder with a valid manifest (`m.yaml`, 12 jobs of the bundled `blur-and-tint`), an
/// invalid one (`bad.yaml`), and a run folder (`run`, with an empty journal).
fn job_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs_err::copy(
        repo("examples/workflows/blur-and-tint.json"),
        dir.path().join("wf.json"),
    )
    .expect("copy the workflow");
    fs_err::copy(
        repo("examples/images/sunset.png"),
        dir.path().join("sunset.png"),
    )
    .expect("copy the image");
    fs_err::write(
        dir.path().join("m.yaml"),
        "version: 1\nworkflow: wf.json\ninputs:\n  Source image: sunset.png\nsweep:\n  matrix:\n    Hue shift: [0, 90, 180, 270]\n    Blur radius: [1, 3, 6]\noutput:\n  dir: out/m\n",
    )
    .expect("write the manifest");
    fs_err::write(
        dir.path().join("bad.yaml"),
        "version: 1\nworkflow: wf.json\ninputs:\n  Hue shfit: 3\n",
    )
    .expect("write the bad manifest");
    fs_err::create_dir_all(dir.path().join("run/.invk-run")).expect("run folder");
    fs_err::write(dir.path().join("run/.invk-run/journal.jsonl"), "").expect("journal");
    dir
}

/// Every command that prints on stdout without a server, with the exit status it ends with
/// when its stdout is read in full.
fn offline_commands(dir: &Path) -> Vec<(Vec<String>, i32)> {
    let wf = dir.join("wf.json").display().to_string();
    let server_root = dir.join("server-root").display().to_string();
    let mut commands: Vec<(Vec<&str>, i32)> = vec![
        (vec!["inputs", &wf], 0),
        (vec!["inputs", &wf, "--json"], 0),
        (vec!["graph", &wf], 0),
        (vec!["graph", &wf, "--json", "--set", "Hue shift=90"], 0),
        (vec!["validate", "--json", "m.yaml"], 0),
        (vec!["validate", "--json", "m.yaml", "bad.yaml"], 2),
        (vec!["--dry-run", "m.yaml"], 0),
        (vec!["--json", "--dry-run", "m.yaml"], 0),
        (vec!["status", "run"], 0),
        (vec!["status", "--json", "run"], 0),
        (vec!["report", "--json", "run"], 0),
        (vec!["server", "status", "--root", &server_root], 0),
        (
            vec![
                "servers",
                "check",
                "--server",
                "http://127.0.0.1:1",
                "--timeout",
                "5",
            ],
            1,
        ),
        (
            vec![
                "servers",
                "check",
                "--json",
                "--server",
                "http://127.0.0.1:1",
                "--timeout",
                "5",
            ],
            1,
        ),
    ];
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        commands.push((vec!["completions", shell], 0));
    }
    commands
        .into_iter()
        .map(|(args, code)| (args.into_iter().map(str::to_owned).collect(), code))
        .collect()
}

fn invk_run_in(dir: &Path, args: &[String]) -> Command {
    let mut cmd = support::invk_run();
    cmd.current_dir(dir)
        .args(args)
        .env("INVK_CACHE_DIR", dir.join("cache"));
    cmd
}

#[test]
fn every_offline_command_that_prints_ends_quietly_when_its_reader_goes() {
    let dir = job_folder();
    for (args, code) in offline_commands(dir.path()) {
        let what = args.join(" ");
        let full = in_full(&mut invk_run_in(dir.path(), &args));
        assert!(!full.stdout.is_empty(), "{what} prints on stdout");
        assert_eq!(
            full.status.code(),
            Some(code),
            "{what}: {}",
            String::from_utf8_lossy(&full.stderr)
        );
        let closed = with_stdout_closed(&mut invk_run_in(dir.path(), &args));
        assert_quiet_end(&what, &closed, Some(0));
        let (first, head) = with_first_line_read(&mut invk_run_in(dir.path(), &args));
        let full_first = String::from_utf8_lossy(&full.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(first.trim_end(), full_first, "{what}: the first line");
        // Read in part, a command whose whole output fit in the pipe ends as it would have.
        let stderr = String::from_utf8_lossy(&head.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{what}: {stderr}"
        );
        assert!(
            head.status.code() == Some(0) || head.status.code() == Some(code),
            "{what}: {:?} {stderr}",
            head.status
        );
    }
}

#[test]
fn validate_prints_nothing_on_stdout_and_still_ends_quietly() {
    // `validate` without `--json` writes its verdict on stderr; a closed stdout changes nothing.
    let dir = job_folder();
    let args = ["validate".to_owned(), "m.yaml".to_owned()];
    let closed = with_stdout_closed(&mut invk_run_in(dir.path(), &args));
    assert_quiet_end("validate", &closed, Some(0));
    assert!(String::from_utf8_lossy(&closed.stderr).contains("m.yaml: valid: 12 jobs"));
}

#[test]
fn a_long_output_read_in_part_ends_quietly() {
    // Larger than a pipe holds: the process is still writing when the reader goes, as with
    // `invk-run server logs | head`.
    let dir = job_folder();
    let root = dir.path().join("server-root");
    fs_err::create_dir_all(&root).expect("root");
    fs_err::write(
        root.join("invokeai-web.log"),
        "one\ntwo\nthree\n".repeat(40_000),
    )
    .expect("log");
    let args: Vec<String> = ["server", "logs", "--root", &root.display().to_string()]
        .map(str::to_owned)
        .to_vec();
    let full = in_full(&mut invk_run_in(dir.path(), &args));
    assert!(
        full.stdout.len() > 500_000,
        "the log is printed: {}",
        String::from_utf8_lossy(&full.stderr)
    );
    let (first, head) = with_first_line_read(&mut invk_run_in(dir.path(), &args));
    assert_eq!(first, "one\n");
    assert_quiet_end("server logs | head -n 1", &head, Some(0));
}

/// A server that answers every request with the canned answer of its path: the boards, or a
/// page of workflows.
fn fake_library_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let request = String::from_utf8_lossy(&request);
            let body = if request.contains("/api/v1/boards/") {
                let board = |i: usize| {
                    serde_json::json!({"board_id": format!("board-{i}"), "board_name": format!("Board {i}"),
                        "created_at": "2026-01-01", "updated_at": "2026-01-01", "image_count": i})
                };
                serde_json::Value::Array((0..2000).map(board).collect())
            } else {
                let item = |i: usize| {
                    serde_json::json!({"workflow_id": format!("wf-{i}"), "name": format!("Workflow {i}"),
                        "category": "user", "created_at": "2026-01-01", "updated_at": "2026-01-01"})
                };
                serde_json::json!({"page": 0, "pages": 1, "per_page": 2000, "total": 2000,
                    "items": (0..2000).map(item).collect::<Vec<_>>()})
            }
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn the_server_lists_end_quietly_when_their_reader_goes() {
    let url = fake_library_server();
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        vec!["workflows", "list"],
        vec!["workflows", "list", "--json"],
        vec!["boards", "list"],
        vec!["boards", "list", "--json"],
    ] {
        let what = args.join(" ");
        let mut args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        args.extend(["--server".to_owned(), url.clone()]);
        let full = in_full(&mut invk_run_in(dir.path(), &args));
        assert!(
            full.status.success() && full.stdout.len() > 70_000,
            "{what}: {} bytes, {}",
            full.stdout.len(),
            String::from_utf8_lossy(&full.stderr)
        );
        let closed = with_stdout_closed(&mut invk_run_in(dir.path(), &args));
        assert_quiet_end(&what, &closed, Some(0));
        let (first, head) = with_first_line_read(&mut invk_run_in(dir.path(), &args));
        assert!(!first.is_empty(), "{what}");
        assert_quiet_end(&format!("{what} | head -n 1"), &head, Some(0));
    }
}

/// A command that logs on stderr without a server: the client's requests (`-vv`) to a port
/// nothing listens on.
const LOGGING: [&str; 7] = [
    "servers",
    "check",
    "-vv",
    "--server",
    "http://127.0.0.1:1",
    "--timeout",
    "5",
];

#[test]
fn stderr_is_not_coloured_when_it_is_not_a_terminal() {
    let out = support::invk_run()
        .args(LOGGING)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DEBUG"), "it logs: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "no escape sequence: {stderr:?}");
    // Nor the messages and hints of an error.
    let dir = job_folder();
    let out = support::invk_run()
        .current_dir(dir.path())
        .args(["-vv", "validate", "bad.yaml", "missing.yaml"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no escape sequence: {stderr:?}");
}

/// Runs `args` with stderr on a terminal (through `script`, which gives the command a
/// pseudo-terminal and copies what it shows), stdout dropped; `None` without `script`.
fn on_a_terminal(args: &[&str], no_color: Option<&str>) -> Option<String> {
    let line = std::iter::once(env!("CARGO_BIN_EXE_invk-run"))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &format!("{line} >/dev/null"), "/dev/null"])
        .stdin(Stdio::null());
    for var in ["INVK_SERVER", "INVK_LOG", "NO_COLOR"] {
        cmd.env_remove(var);
    }
    if let Some(value) = no_color {
        cmd.env("NO_COLOR", value);
    }
    let out = cmd.output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn no_color_is_honoured_on_a_terminal() {
    let Some(coloured) = on_a_terminal(&LOGGING, None) else {
        eprintln!("skipped: no `script` to give the command a terminal");
        return;
    };
    assert!(coloured.contains("DEBUG"), "it logs: {coloured:?}");
    assert!(
        coloured.contains('\u{1b}'),
        "a terminal gets colour: {coloured:?}"
    );
    let plain = on_a_terminal(&LOGGING, Some("1")).expect("script ran once");
    assert!(plain.contains("DEBUG"), "it logs: {plain:?}");
    assert!(!plain.contains('\u{1b}'), "NO_COLOR: {plain:?}");
}

#[test]
fn watch_json_stops_quietly_when_its_reader_goes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hot = dir.path().join("hot");
    fs_err::create_dir_all(&hot).expect("hot folder");
    let mut child = support::invk_run()
        .current_dir(dir.path())
        .args(["watch", "hot", "--json", "--settle-ms", "100"])
        .args(["--server", "http://127.0.0.1:1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the watcher");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("the first line");
    assert!(first.contains("\"watch_started\""), "{first}");
    // `head -n 1` is gone; the next event finds out.
    fs_err::write(hot.join("next.yaml"), "version: 1\n").expect("drop a manifest");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let status = status.unwrap_or_else(|| panic!("the watcher kept going: {stderr}"));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
}

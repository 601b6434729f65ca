//! Secrets never reach a log: a run, `watch`, `status` and `servers check` on the multi-user
//! server at `INVK_LOG=trace`, with a token and a password set, print neither (nor any token
//! the server mints at login) on stdout or stderr, and write neither into the output folder
//! (journal, sidecars, `runs.jsonl`, gallery).

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::runner::{SWEEP, Workspace, files_under, text};
use crate::support;

/// A run of two jobs, with its gallery.
fn manifest() -> String {
    SWEEP
        .replace("[0, 90, 180, 270]", "[0, 90]")
        .replace("[1, 3, 6]", "[2]")
}

/// A token for the admin of the multi-user server, as a user would have it.
fn admin_token(server: &support::TestServer) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let credentials = invk_run::client::Credentials {
        token: None,
        email: Some(server.admin_email.clone()),
        password: Some(server.admin_password.clone()),
    };
    let client = rt
        .block_on(invk_run::client::Client::connect(
            server.url(),
            &credentials,
        ))
        .expect("log in");
    client.token().expect("a token").expose().to_owned()
}

/// Fails when a secret, or anything shaped like a JWT (`eyJ…`, the tokens the server mints),
/// is in `text`.
fn assert_no_secret(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{what} holds a secret:\n{text}");
    }
    assert!(!text.contains("eyJ"), "{what} holds a token:\n{text}");
}

/// Every file under `dir`, read as text, holds no secret.
fn assert_no_secret_under(dir: &Path, secrets: &[&str]) {
    let files = files_under(dir);
    assert!(!files.is_empty(), "nothing under {}", dir.display());
    for file in files {
        let bytes = fs_err::read(dir.join(&file)).expect("read");
        assert_no_secret(&file, &String::from_utf8_lossy(&bytes), secrets);
    }
}

/// The output of a command, checked: it succeeded, and shows no secret.
fn checked(what: &str, out: &Output, secrets: &[&str]) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{what}: {stderr}");
    assert_no_secret(&format!("{what}'s stdout"), &text(&out.stdout), secrets);
    assert_no_secret(&format!("{what}'s stderr"), &stderr, secrets);
    stderr
}

#[test]
fn no_command_logs_a_token_or_a_password_at_trace() {
    let server = support::multiuser_server();
    let token = admin_token(server);
    let password = server.admin_password.clone();
    let secrets = [token.as_str(), password.as_str()];
    let ws = Workspace::new(&manifest());
    let with_secrets = |cmd: &mut std::process::Command| {
        cmd.env("INVK_LOG", "trace")
            .env("INVK_TOKEN", &token)
            .env("INVK_PASSWORD", &password);
    };

    // A run: its events come over the websocket, whose handshake carries the token.
    let mut run = ws.command(server.url(), &["job.yaml"]);
    with_secrets(&mut run);
    let stderr = checked("the run", &run.output().expect("run"), &secrets);
    assert!(stderr.contains("TRACE"), "not a trace log: {stderr}");
    assert!(
        stderr.contains("seen_by=Event"),
        "the run did not follow its jobs over the websocket: {stderr}"
    );
    assert!(ws.path("out/job/index.html").exists(), "no gallery");

    // `status` and `servers check`, with the token; then logging in with the password (the
    // server mints a token, which the JWT check looks for).
    for args in [
        &["status", "out/job"][..],
        &["servers", "check", "blur-and-tint.json"][..],
    ] {
        let mut cmd = support::invk_run();
        cmd.current_dir(ws.dir.path())
            .args(args)
            .args(["--server", server.url()]);
        with_secrets(&mut cmd);
        checked(&args.join(" "), &cmd.output().expect("run"), &secrets);
        let mut login = support::invk_run();
        login
            .current_dir(ws.dir.path())
            .args(args)
            .args(["--server", server.url(), "--email", &server.admin_email])
            .env("INVK_LOG", "trace")
            .env("INVK_PASSWORD", &password);
        checked(
            &format!("{} with a login", args.join(" ")),
            &login.output().expect("run"),
            &secrets,
        );
    }

    // `watch`: a manifest moved into a hot folder runs; the watcher is stopped once it is done.
    let hot = ws.path("hot");
    fs_err::create_dir_all(hot.join("photos")).expect("mkdir");
    fs_err::copy(
        ws.path("blur-and-tint.json"),
        hot.join("blur-and-tint.json"),
    )
    .expect("copy");
    fs_err::copy(ws.path("photos/sunset.png"), hot.join("photos/sunset.png")).expect("copy");
    let log = ws.path("watch.log");
    let mut watch = support::invk_run();
    watch
        .arg("watch")
        .arg(&hot)
        .args(["--server", server.url()])
        .stdout(Stdio::from(
            fs_err::File::create(ws.path("watch.out"))
                .expect("create")
                .into_file(),
        ))
        .stderr(Stdio::from(
            fs_err::File::create(&log).expect("create").into_file(),
        ));
    with_secrets(&mut watch);
    let mut watcher = watch.spawn().expect("start watch");
    fs_err::write(ws.path("tint.yaml"), manifest()).expect("write");
    fs_err::rename(ws.path("tint.yaml"), hot.join("tint.yaml")).expect("move in");
    let started = Instant::now();
    while !hot.join("done/tint.yaml").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the hot folder's run did not finish: {}",
            fs_err::read_to_string(&log).unwrap_or_default()
        );
        assert!(
            watcher.try_wait().expect("wait").is_none(),
            "watch ended: {}",
            fs_err::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    let watch_log = fs_err::read_to_string(&log).expect("watch log");
    assert!(watch_log.contains("TRACE"), "not a trace log: {watch_log}");

    // Nothing anywhere: the run's folder (journal, sidecars, runs.jsonl, gallery), the hot
    // folder's outputs and reports, and watch's stdout and stderr.
    assert_no_secret_under(ws.dir.path(), &secrets);
}

#[test]
fn a_wire_level_target_named_in_invk_log_is_logged_with_a_warning_and_redacted() {
    let server = support::multiuser_server();
    let token = admin_token(server);
    let ws = Workspace::new(&manifest());
    let out = ws
        .command(server.url(), &["job.yaml"])
        .env("INVK_LOG", "invk_run=info,tungstenite=trace")
        .env("INVK_TOKEN", &token)
        .env("INVK_PASSWORD", &server.admin_password)
        .output()
        .expect("run");
    let stderr = checked(
        "the run",
        &out,
        &[token.as_str(), server.admin_password.as_str()],
    );
    assert!(
        stderr.contains("warning: INVK_LOG names `tungstenite` at trace"),
        "{stderr}"
    );
    // The handshake is logged, its token redacted.
    assert!(
        stderr.contains("authorization: Bearer <redacted>"),
        "{stderr}"
    );
    assert_no_secret_under(ws.dir.path(), &[token.as_str()]);
}

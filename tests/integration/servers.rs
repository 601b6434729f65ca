//! `invk-run servers check`: the real server and a dead port; a bundled model-free workflow and
//! one with a node type the server lacks; per-server model resolution on local fakes (the real
//! server has no models), where the same model name has a different key on each server; bad
//! input, which sends nothing.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support;

/// The time limit of a check of a real server: a fresh InvokeAI builds its `/openapi.json` on
/// the first request, which takes long on a busy test machine; these tests are not about time.
const REAL_TIMEOUT: &str = "300";

fn bundled(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/workflows")
        .join(name)
}

/// A loopback port nothing listens on (bound, then released).
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn text(output: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Masks what differs between runs: the real server's port and version, the dead port, the
/// queue's counts (other tests share the server), temporary folders.
fn settings(real: &str, dead: u16) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(real), "[REAL]");
    settings.add_filter(&format!("127\\.0\\.0\\.1:{dead}"), "[DEAD]");
    settings.add_filter(r"version     \S+", "version     [VERSION]");
    settings.add_filter(
        r"\d+ pending, \d+ in progress",
        "[N] pending, [N] in progress",
    );
    settings.add_filter(r"/[^\s`]*/\.tmp[^/\s`]*", "[TEMP]");
    settings
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == ':' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn the_real_server_is_usable_and_a_dead_port_is_reported_unreachable() {
    let real = support::server().url();
    let dead = dead_port();
    let output = support::invk_run()
        .args([
            "servers",
            "check",
            "--timeout",
            REAL_TIMEOUT,
            "--server",
            real,
        ])
        .args(["--server", &format!("http://127.0.0.1:{dead}")])
        .output()
        .expect("run");
    settings(real, dead).bind(|| {
        insta::assert_snapshot!(text(&output), @r"
        exit: Some(1)
        --- stdout
        [REAL]/  usable
          reachable   yes
          version     [VERSION]
          auth        open
          queue       [N] pending, [N] in progress
        http://[DEAD]/  not usable
          reachable   no
          problem     unreachable: no connection (Connection refused (os error 111))
        1 of 2 servers usable
        --- stderr
        ");
    });
    // The version shown is the server's own.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "version     {}",
            invk_run::local_server::wanted_version()
        )),
        "{stdout}"
    );
}

#[test]
fn a_model_free_bundled_workflow_can_run_on_the_real_server() {
    let real = support::server().url();
    let output = support::invk_run()
        .args([
            "servers",
            "check",
            "--timeout",
            REAL_TIMEOUT,
            "--server",
            real,
        ])
        .arg(bundled("blur-and-tint.json"))
        .output()
        .expect("run");
    let mut settings = settings(real, 0);
    settings.add_filter(r"/\S*/examples/workflows/", "[EXAMPLES]/");
    settings.bind(|| {
        insta::assert_snapshot!(text(&output), @r"
        exit: Some(0)
        --- stdout
        [REAL]/  usable
          reachable   yes
          version     [VERSION]
          auth        open
          queue       [N] pending, [N] in progress
          node types  5 used, all found
          models      none named
        1 of 1 server usable
        --- stderr
        ");
    });
}

#[test]
fn a_workflow_with_a_node_type_the_server_lacks_makes_it_unusable_naming_the_type() {
    let real = support::server().url();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut workflow: Value =
        serde_json::from_str(&fs_err::read_to_string(bundled("blur-and-tint.json")).expect("read"))
            .expect("json");
    let blur = workflow["nodes"]
        .as_array_mut()
        .expect("nodes")
        .iter_mut()
        .find(|n| n["data"]["type"] == "img_blur")
        .expect("a blur node");
    blur["data"]["type"] = json!("no_such_node");
    let file = dir.path().join("custom.json");
    fs_err::write(&file, workflow.to_string()).expect("write");

    let output = support::invk_run()
        .args([
            "servers",
            "check",
            "--timeout",
            REAL_TIMEOUT,
            "--server",
            real,
        ])
        .arg(&file)
        .output()
        .expect("run");
    settings(real, 0).bind(|| {
        insta::assert_snapshot!(text(&output), @r"
        exit: Some(1)
        --- stdout
        [REAL]/  not usable
          reachable   yes
          version     [VERSION]
          auth        open
          queue       [N] pending, [N] in progress
          node types  5 used, 1 missing
          models      none named
          problem     it lacks the node type `no_such_node` that `[TEMP]/custom.json` uses
        0 of 1 server usable
        --- stderr
        ");
    });

    let json = support::invk_run()
        .args([
            "servers",
            "check",
            "--timeout",
            REAL_TIMEOUT,
            "--json",
            "--server",
            real,
        ])
        .arg(&file)
        .output()
        .expect("run");
    assert_eq!(json.status.code(), Some(1), "{}", text(&json));
    let reports = json_lines(&json);
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0]["usable"], false);
    assert_eq!(
        reports[0]["workflow"]["missing_node_types"],
        json!(["no_such_node"])
    );
}

/// A fake single-user InvokeAI server whose models are `models` (listed at most once: the check
/// reads a server's model list once), with the shipped invocation schema.
pub(crate) async fn fake_server(models: Value) -> MockServer {
    let server = fake_base().await;
    let answer = |body: Value| ResponseTemplate::new(200).set_body_json(body);
    Mock::given(method("GET"))
        .and(path("/api/v1/queue/default/status"))
        .respond_with(answer(json!({
            "queue": {"queue_id": "default", "pending": 2, "in_progress": 1, "completed": 0,
                      "failed": 0, "canceled": 0, "total": 3},
            "processor": {"is_started": true, "is_processing": true}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/models/"))
        .respond_with(answer(json!({ "models": models })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    server
}

/// A fake server that answers as an open InvokeAI 6.14.2 (its version, its auth status, the
/// shipped invocation schema); the rest is up to the test.
pub(crate) async fn fake_base() -> MockServer {
    let server = MockServer::start().await;
    let answer = |body: Value| ResponseTemplate::new(200).set_body_json(body);
    Mock::given(method("GET"))
        .and(path("/api/v1/app/version"))
        .respond_with(answer(json!({"version": "6.14.2"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/auth/status"))
        .respond_with(answer(
            json!({"multiuser_enabled": false, "setup_required": false}),
        ))
        .mount(&server)
        .await;
    let schema = fs_err::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/invocations-6.14.2.json"),
    )
    .expect("schema snapshot");
    Mock::given(method("GET"))
        .and(path("/openapi.json"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(schema, "application/json"))
        .mount(&server)
        .await;
    server
}

fn model(key: &str, name: &str, base: &str, ty: &str) -> Value {
    json!({"key": key, "hash": format!("blake3:{key}"), "name": name, "base": base, "type": ty,
           "format": "checkpoint", "description": null})
}

/// The models of the FLUX fixture on one install: the loader's own encoders, and `FLUX` as a
/// main model and (unless `with_vae` is false) a VAE, with keys of this install.
pub(crate) fn flux_models(prefix: &str, with_vae: bool) -> Value {
    let mut models = vec![
        model(&format!("{prefix}-main"), "FLUX", "flux", "main"),
        model(
            &format!("{prefix}-t5"),
            "t5_bnb_int8_quantized_encoder",
            "any",
            "t5_encoder",
        ),
        model(
            &format!("{prefix}-clip"),
            "clip-vit-large-patch14",
            "any",
            "clip_embed",
        ),
    ];
    if with_vae {
        models.push(model(&format!("{prefix}-vae"), "FLUX", "flux", "vae"));
    }
    Value::Array(models)
}

pub(crate) const FLUX_MODEL: &str = "f8d9d7c8-9ed7-4bd7-9e42-ab0e89bfac90.model";
pub(crate) const FLUX_VAE: &str = "f8d9d7c8-9ed7-4bd7-9e42-ab0e89bfac90.vae_model";

#[tokio::test(flavor = "multi_thread")]
async fn models_are_found_on_each_server_by_name_whatever_their_keys_and_a_missing_one_is_named() {
    let a = fake_server(flux_models("a", true)).await;
    let b = fake_server(flux_models("b", true)).await;
    let no_vae = fake_server(flux_models("c", false)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    fs_err::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/workflows/flux-image-to-image.json"),
        dir.path().join("flux.json"),
    )
    .expect("copy");
    fs_err::write(
        dir.path().join("job.yaml"),
        format!(
            "version: 1\nworkflow: flux.json\ninputs:\n  {FLUX_MODEL}: FLUX\n  {FLUX_VAE}: FLUX\noutput:\n  dir: out\n"
        ),
    )
    .expect("manifest");
    // INVK_SERVER as a comma-separated list.
    let servers = format!("{},{},{}", a.uri(), b.uri(), no_vae.uri());
    let cwd = dir.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        support::invk_run()
            .current_dir(cwd)
            .args(["servers", "check", "--json", "job.yaml"])
            .env("INVK_SERVER", servers)
            .output()
            .expect("run")
    })
    .await
    .expect("join");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let reports = json_lines(&output);
    assert_eq!(reports.len(), 3, "{}", text(&output));
    let keys = |report: &Value| -> Vec<(String, String)> {
        report["workflow"]["models"]
            .as_array()
            .expect("models")
            .iter()
            .map(|m| {
                (
                    m["model"].as_str().expect("model").to_owned(),
                    m["found"]["key"].as_str().unwrap_or("(missing)").to_owned(),
                )
            })
            .collect()
    };
    let want = |p: &str| {
        vec![
            ("`FLUX` (main)".to_owned(), format!("{p}-main")),
            ("`FLUX` (vae)".to_owned(), format!("{p}-vae")),
            (
                "`clip-vit-large-patch14` (any, clip_embed)".to_owned(),
                format!("{p}-clip"),
            ),
            (
                "`t5_bnb_int8_quantized_encoder` (any, t5_encoder)".to_owned(),
                format!("{p}-t5"),
            ),
        ]
    };
    assert_eq!(reports[0]["server"], format!("{}/", a.uri()));
    assert_eq!(reports[0]["usable"], true, "{}", reports[0]);
    assert_eq!(keys(&reports[0]), want("a"));
    assert_eq!(reports[1]["usable"], true, "{}", reports[1]);
    assert_eq!(keys(&reports[1]), want("b"));
    assert_eq!(reports[1]["queue"], json!({"pending": 2, "in_progress": 1}));

    let lacking = &reports[2];
    assert_eq!(lacking["usable"], false, "{lacking}");
    let mut expected = want("c");
    expected[1].1 = "(missing)".to_owned();
    assert_eq!(keys(lacking), expected);
    let problems = lacking["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 1, "{lacking}");
    let problem = problems[0].as_str().expect("text");
    assert!(
        problem.starts_with("it lacks the model `FLUX` (vae) that `job.yaml` names: no model has the id or name `FLUX` among the `vae` models"),
        "{problem}"
    );
    // Each server's model list was read once (the mocks verify it when dropped).
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multi_user_server_needs_a_login_and_a_token_it_takes_opens_it() {
    let server = MockServer::start().await;
    let answer = |body: Value| ResponseTemplate::new(200).set_body_json(body);
    Mock::given(method("GET"))
        .and(path("/api/v1/app/version"))
        .respond_with(answer(json!({"version": "6.14.2"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/auth/status"))
        .respond_with(answer(
            json!({"multiuser_enabled": true, "setup_required": false}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/auth/me"))
        .and(wiremock::matchers::header(
            "authorization",
            "Bearer good-token",
        ))
        .respond_with(answer(json!({"user_id": "u1", "email": "me@example.org"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/auth/me"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"detail": "Invalid token"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/queue/default/status"))
        .respond_with(answer(json!({
            "queue": {"queue_id": "default", "pending": 0, "in_progress": 0, "completed": 0,
                      "failed": 0, "canceled": 0, "total": 0},
            "processor": {"is_started": true, "is_processing": false}
        })))
        .mount(&server)
        .await;
    let url = server.uri();
    let run = move |token: Option<&'static str>| {
        let url = url.clone();
        std::thread::spawn(move || {
            let mut cmd = support::invk_run();
            cmd.args(["servers", "check", "--server", &url]);
            if let Some(token) = token {
                cmd.args(["--token", token]);
            }
            cmd.output().expect("run")
        })
        .join()
        .expect("join")
    };
    let port = server.address().port().to_string();
    let anonymous = tokio::task::spawn_blocking({
        let run = run.clone();
        move || run(None)
    })
    .await
    .expect("join");
    insta::assert_snapshot!(text(&anonymous).replace(&port, "[PORT]"), @r"
    exit: Some(1)
    --- stdout
    http://127.0.0.1:[PORT]/  not usable
      reachable   yes
      version     6.14.2
      auth        needs a login
      problem     needs a login: it is multi-user: give `--token`, or `--email` with `INVK_PASSWORD`
    0 of 1 server usable
    --- stderr
    ");
    let refused = tokio::task::spawn_blocking({
        let run = run.clone();
        move || run(Some("stale-token"))
    })
    .await
    .expect("join");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("it refused the token"),
        "{}",
        text(&refused)
    );
    let good = tokio::task::spawn_blocking(move || run(Some("good-token")))
        .await
        .expect("join");
    assert_eq!(good.status.code(), Some(0), "{}", text(&good));
    assert!(
        String::from_utf8_lossy(&good.stdout).contains("auth        logged in as `me@example.org`"),
        "{}",
        text(&good)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_exits_2_and_sends_nothing() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    fs_err::write(dir.path().join("broken.json"), "{\"nodes\": [").expect("write");
    fs_err::write(
        dir.path().join("bad.yaml"),
        "version: 1\nworkflow: missing.json\n",
    )
    .expect("write");
    let url = server.uri();
    let cwd = dir.path().to_path_buf();
    let outputs = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| {
            support::invk_run()
                .current_dir(&cwd)
                .args(["servers", "check"])
                .args(args)
                .output()
                .expect("run")
        };
        vec![
            run(&["--server", &url, "--server", "ftp://host"]),
            run(&["--server", &url, "broken.json"]),
            run(&["--server", &url, "bad.yaml"]),
            run(&["--server", &url, "--email", "me@example.org"]),
        ]
    })
    .await
    .expect("join");
    for output in &outputs {
        assert_eq!(output.status.code(), Some(2), "{}", text(output));
        assert!(output.stdout.is_empty(), "{}", text(output));
    }
    let stderr = |i: usize| String::from_utf8_lossy(&outputs[i].stderr).into_owned();
    assert!(stderr(0).contains("`ftp://host`"), "{}", stderr(0));
    assert!(stderr(1).contains("broken.json"), "{}", stderr(1));
    assert!(stderr(2).contains("bad.yaml"), "{}", stderr(2));
    assert!(stderr(3).contains("INVK_PASSWORD"), "{}", stderr(3));
}

#[test]
fn commands_that_talk_to_one_server_refuse_several() {
    let output = support::invk_run()
        .args(["boards", "list"])
        .env("INVK_SERVER", "http://127.0.0.1:9,http://127.0.0.1:10")
        .output()
        .expect("run");
    insta::assert_snapshot!(text(&output), @r"
    exit: Some(2)
    --- stdout
    --- stderr
    error: `--server` or `INVK_SERVER` names 2 servers (`http://127.0.0.1:9`, `http://127.0.0.1:10`), but this command talks to one: name one; only a run (`invk-run MANIFEST...`), `invk-run watch` and `invk-run servers check` take several
    ");
}

/// A loopback server that accepts connections and never answers; returns its URL.
fn silent_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    url
}

#[test]
fn each_server_gets_a_bounded_time_and_servers_are_checked_at_once() {
    let silent = [silent_server(), silent_server(), silent_server()];
    let started = std::time::Instant::now();
    let output = support::invk_run()
        .args(["servers", "check", "--timeout", "3", "--json"])
        .args(silent.iter().flat_map(|url| ["--server", url.as_str()]))
        .output()
        .expect("run");
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    // Three servers of 3 s each, checked one after the other, would take 9 s (plus the start).
    assert!(took < std::time::Duration::from_secs(7), "{took:?}");
    let reports = json_lines(&output);
    assert_eq!(reports.len(), 3, "{}", text(&output));
    for report in &reports {
        assert_eq!(report["reachable"], false, "{report}");
        assert_eq!(
            report["problems"],
            json!(["the check took longer than 3 s (while asking its version)"]),
            "{report}"
        );
    }
}

#[test]
fn a_real_multi_user_server_needs_a_login_and_the_runs_credentials_open_it() {
    let server = support::multiuser_server();
    let anonymous = support::invk_run()
        .args([
            "servers",
            "check",
            "--timeout",
            REAL_TIMEOUT,
            "--json",
            "--server",
            server.url(),
        ])
        .output()
        .expect("run");
    assert_eq!(anonymous.status.code(), Some(1), "{}", text(&anonymous));
    let report = &json_lines(&anonymous)[0];
    assert_eq!(report["auth"]["state"], "needs_login", "{report}");
    assert_eq!(report["queue"], Value::Null, "{report}");

    let wrong = support::invk_run()
        .args([
            "servers",
            "check",
            "--timeout",
            REAL_TIMEOUT,
            "--json",
            "--server",
            server.url(),
        ])
        .args(["--email", &server.admin_email])
        .env("INVK_PASSWORD", "not-the-password")
        .output()
        .expect("run");
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    let report = &json_lines(&wrong)[0];
    assert_eq!(report["auth"]["state"], "needs_login", "{report}");
    let reason = report["auth"]["reason"].as_str().expect("reason");
    assert!(
        reason.starts_with("logging in as `admin@invk-run.test` failed"),
        "{reason}"
    );
    assert!(
        !text(&wrong).contains("not-the-password"),
        "{}",
        text(&wrong)
    );

    let logged_in = support::invk_run()
        .args([
            "servers",
            "check",
            "--timeout",
            REAL_TIMEOUT,
            "--server",
            server.url(),
        ])
        .arg(bundled("blur-and-tint.json"))
        .args(["--email", &server.admin_email])
        .env("INVK_PASSWORD", &server.admin_password)
        .output()
        .expect("run");
    assert_eq!(logged_in.status.code(), Some(0), "{}", text(&logged_in));
    let stdout = String::from_utf8_lossy(&logged_in.stdout);
    assert!(
        stdout.contains("auth        logged in as `admin@invk-run.test`"),
        "{stdout}"
    );
    assert!(stdout.contains("node types  5 used, all found"), "{stdout}");
}

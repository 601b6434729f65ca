//! The managed server and the test servers.

use crate::support;

#[test]
fn test_server_answers_with_the_pinned_version() {
    let server = support::server();
    let addr = server
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let (status, body) =
        invk_run::local_server::http_get(addr, "/api/v1/app/version").expect("GET version");
    assert_eq!(status, 200);
    let version: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(version["version"], invk_run::local_server::wanted_version());
}

#[test]
fn server_commands_start_report_and_stop_a_managed_server() {
    support::installation();
    let root = tempfile::tempdir().expect("tempdir");
    let port = invk_run::local_server::free_port().expect("port");
    let run = |args: &[&str]| {
        let out = support::invk_run()
            .arg("server")
            .args(args)
            .arg("--root")
            .arg(root.path())
            .arg("--port")
            .arg(port.to_string())
            .output()
            .expect("run invk-run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run(&["start"]);
    assert_eq!(code, Some(0), "start failed: {stderr}");
    assert_eq!(stdout.trim(), format!("http://127.0.0.1:{port}"));
    let (code, stdout, _) = run(&["status"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains(&format!("running: http://127.0.0.1:{port}")),
        "{stdout}"
    );
    let (code, stdout, _) = run(&["logs"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("Invoke running on"),
        "log lacks the start line: {stdout}"
    );
    let (code, _, stderr) = run(&["stop"]);
    assert_eq!(code, Some(0), "stop failed: {stderr}");
    let (_, stdout, _) = run(&["status"]);
    assert!(stdout.contains("stopped"), "{stdout}");
    let (code, _, stderr) = run(&["stop"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no managed server is running"), "{stderr}");
}

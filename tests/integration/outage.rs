//! A network outage during downloads, between the runner and a real server: a TCP proxy that
//! drops every connection (open ones and new ones) for 10 s as soon as the first download is
//! asked for. The run must outlast it like any other outage shorter than `--server-wait`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::runner::{
    SWEEP, Workspace, assert_server_keeps_nothing_at, files_under, is_output_png, text,
};
use crate::support;

/// What the proxy saw.
#[derive(Default)]
pub(crate) struct Seen {
    /// Whether the outage happened.
    pub(crate) outage: AtomicBool,
    /// Connections dropped during it.
    pub(crate) dropped: AtomicUsize,
}

/// A proxy to `upstream` that, once a request whose first line contains `trigger` passes by,
/// drops every connection for `outage`. The request itself is lost; with `lose_answer`, it
/// reaches the server and its answer is what is lost (the outage starts a moment later).
/// Returns its URL.
pub(crate) async fn outage_proxy(
    upstream: SocketAddr,
    trigger: &'static str,
    outage: Duration,
    lose_answer: bool,
) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Seen::default());
    // `Some(until)` while the outage lasts.
    let (down_tx, down_rx) = watch::channel::<Option<Instant>>(None);
    let down_tx = Arc::new(down_tx);
    let seen_loop = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let down = *down_rx.borrow();
            if down.is_some_and(|until| Instant::now() < until) {
                seen_loop.dropped.fetch_add(1, Ordering::SeqCst);
                let _ = client.set_zero_linger();
                drop(client);
                continue;
            }
            tokio::spawn(relay(
                client,
                upstream,
                (trigger, lose_answer),
                outage,
                Arc::clone(&down_tx),
                down_rx.clone(),
                Arc::clone(&seen_loop),
            ));
        }
    });
    (url, seen)
}

async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    (trigger, lose_answer): (&'static str, bool),
    outage: Duration,
    down_tx: Arc<watch::Sender<Option<Instant>>>,
    mut down_rx: watch::Receiver<Option<Instant>>,
    seen: Arc<Seen>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // The trigger's answer is dropped (with `lose_answer`).
    let swallow = AtomicBool::new(false);
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            let is_trigger = String::from_utf8_lossy(chunk)
                .lines()
                .next()
                .is_some_and(|line| line.contains(trigger));
            if is_trigger && !seen.outage.swap(true, Ordering::SeqCst) {
                if lose_answer {
                    // The request goes on to the server; its answer is dropped, and the outage
                    // starts once the server has had time to take it.
                    swallow.store(true, Ordering::SeqCst);
                    let down_tx = Arc::clone(&down_tx);
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                        down_tx.send_replace(Some(Instant::now() + outage));
                    });
                } else {
                    // The outage starts: this request is lost, and so is every open connection.
                    down_tx.send_replace(Some(Instant::now() + outage));
                    return;
                }
            }
            if server_write.write_all(chunk).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if swallow.load(Ordering::SeqCst) {
                continue;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // Only connections open when the outage starts are cut.
    down_rx.mark_unchanged();
    let cut = async {
        let _ = down_rx.changed().await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
        () = cut => { seen.dropped.fetch_add(1, Ordering::SeqCst); }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_10_s_outage_during_downloads_is_outlasted_with_every_file_and_nothing_left() {
    let server = support::server();
    let upstream: SocketAddr = server
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("server address");
    let (url, seen) =
        outage_proxy(upstream, "/full HTTP/1.1", Duration::from_secs(10), false).await;
    let ws = Workspace::new(SWEEP);
    let started = Instant::now();
    let out = {
        let mut cmd = ws.command(&url, &["job.yaml", "--server-wait", "120"]);
        tokio::task::spawn_blocking(move || cmd.output().expect("run invk-run"))
            .await
            .expect("join")
    };
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        seen.outage.load(Ordering::SeqCst),
        "no download was asked for"
    );
    assert!(
        seen.dropped.load(Ordering::SeqCst) > 0,
        "the outage dropped nothing"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(10),
        "the run cannot have finished before the outage ended"
    );
    let pngs = files_under(&ws.path("out/job"))
        .into_iter()
        .filter(|f| is_output_png(f))
        .count();
    assert_eq!(pngs, 24, "12 jobs x 2 outputs, each once: {stderr}");
    assert!(
        !files_under(&ws.path("out/job"))
            .iter()
            .any(|f| f.contains("-1.png")),
        "no duplicates"
    );
    assert_server_keeps_nothing_at(server.url(), &ws.journal("out/job"));
}

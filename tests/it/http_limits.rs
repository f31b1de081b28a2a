//! The HTTP server under idle and half-sent connections (issue 17, item 2): they are closed
//! after the header timeout and `/healthz` keeps answering (the cap: `src/http/mod.rs`).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use quartermaster::http;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

async fn start() -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let router = Router::new().route("/healthz", get(|| async { "ok" }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move { http::serve(listener, router, rx).await.unwrap() });
    (addr, tx, task)
}

/// One `GET /healthz` on a new connection; its latency.
async fn healthz(addr: SocketAddr) -> Duration {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: qm\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    t.elapsed()
}

/// Whether the server closed `s` (EOF, or a reset) within `within`.
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or similar before the close: keep reading.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn idle_and_half_sent_connections_are_closed_and_healthz_keeps_answering() {
    let (addr, stop, task) = start().await;
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    for s in idle.iter_mut().take(100) {
        // Half a request: the headers never end.
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: qm\r\nX-Slow: ")
            .await
            .unwrap();
    }
    for _ in 0..5 {
        let took = healthz(addr).await;
        assert!(took < Duration::from_secs(1), "/healthz took {took:?}");
    }
    // The default header timeout is 5 s: all are closed by the server well within 8 s.
    let started = Instant::now();
    for (i, s) in idle.iter_mut().enumerate() {
        let left = Duration::from_secs(8).saturating_sub(started.elapsed());
        assert!(closed_by_server(s, left).await, "connection {i} still open");
    }
    assert!(healthz(addr).await < Duration::from_secs(1));
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the server stops when told")
        .unwrap();
}

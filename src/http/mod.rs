//! The HTTP server (axum): each route module returns an `axum::Router`, and [`serve`] merges
//! them on `[http] listen`. Routes verify, decode and call the core; no business rules here.
//!
//! The accept loop bounds what clients can hold: at most [`Limits::max_connections`] open
//! connections (at the cap the longest-idle one is closed to make room), request headers within
//! [`Limits::header_timeout`] (which also closes a connection idle that long), and each
//! route's body within its size cap and [`BODY_TIMEOUT`] ([`bounded_body`]).

pub mod hr;
pub mod interactions;
pub mod mfa;
pub mod ops;
pub mod scim;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::{Service as _, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// The default address when `[http] listen` is not given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Time for a whole request body to arrive, on the routes that read one.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// What clients may hold of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections at most. At the cap a new one closes the longest-idle one; when
    /// every open one is busy, it waits in the kernel's backlog.
    pub max_connections: usize,
    /// Time for a request line and headers to arrive, counted from when the server waits for
    /// them: a new or kept-alive connection that sends nothing this long is closed.
    pub header_timeout: Duration,
    /// On shutdown, how long requests in flight may take to finish.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            header_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` with the default [`Limits`] until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    serve_with(listener, router, stop, Limits::default()).await
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// One open connection, as the accept loop sees it.
struct Conn {
    /// Requests being served on it (headers read, response not yet produced).
    busy: AtomicUsize,
    /// When it last became idle, in milliseconds since the server started.
    idle_since: AtomicU64,
    /// Asks it to close if it is still idle.
    evict: Notify,
}

/// The open connections, so that at the cap the longest-idle one can make room.
#[derive(Default)]
struct Conns {
    open: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Conns {
    /// Asks the connection idle longest (no request in flight) to close; false if every
    /// connection is busy.
    fn evict_idlest(&self) -> bool {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let idlest = open
            .values()
            .filter(|c| c.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|c| c.idle_since.load(Ordering::Acquire));
        match idlest {
            Some(c) => {
                c.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `stop` turns true; then stops
/// accepting, lets requests in flight finish (up to [`Limits::shutdown_grace`]) and returns.
///
/// At the connection cap a new connection is still accepted when some open one is idle (no
/// request in flight, including one whose headers are still arriving): the one idle longest
/// is closed to make room, so a flood of idle sockets cannot lock out `/healthz`.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    mut stop: watch::Receiver<bool>,
    limits: Limits,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let conns = Arc::new(Conns::default());
    let epoch = Instant::now();
    let mut tasks = JoinSet::new();
    let mut next_id = 0u64;
    loop {
        while tasks.try_join_next().is_some() {}
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of file descriptors and the like: wait for some to close.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let Some(slot) = take_slot(&slots, &conns, &mut stop).await else {
            break;
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(millis_since(epoch)),
            evict: Notify::new(),
        });
        conns
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(next_id, conn.clone());
        let task = ConnTask {
            id: next_id,
            conn,
            conns: conns.clone(),
            slot,
            full: slots.clone(),
            stop: stop.clone(),
            limits,
            epoch,
        };
        tasks.spawn(serve_conn(stream, router.clone(), task));
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Milliseconds from `epoch` (the server's start) to now.
fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A connection slot: at once when one is free; at the cap, after asking the longest-idle
/// connection to close (retried while busy ones may turn idle); `None` once stopping.
async fn take_slot(
    slots: &Arc<Semaphore>,
    conns: &Conns,
    stop: &mut watch::Receiver<bool>,
) -> Option<OwnedSemaphorePermit> {
    loop {
        if let Ok(s) = slots.clone().try_acquire_owned() {
            return Some(s);
        }
        if conns.evict_idlest() {
            tracing::debug!("at the connection cap: closing the longest idle one");
        }
        tokio::select! {
            s = slots.clone().acquire_owned() => return s.ok(),
            // Busy ones may have turned idle (kept alive) meanwhile.
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = stopped(stop) => return None,
        }
    }
}

/// What one connection's task holds besides its socket and routes.
struct ConnTask {
    /// Its key in `conns`.
    id: u64,
    /// Its busy count, idle time and eviction signal.
    conn: Arc<Conn>,
    /// The open connections, left when it closes.
    conns: Arc<Conns>,
    /// Its connection slot, freed when it closes.
    slot: OwnedSemaphorePermit,
    /// Every slot: an eviction is carried out only while none is free.
    full: Arc<Semaphore>,
    /// Turns true when the server stops.
    stop: watch::Receiver<bool>,
    /// The header timeout and the shutdown grace.
    limits: Limits,
    /// The server's start, for idle times.
    epoch: Instant,
}

/// Serves one connection until it ends, is evicted while idle, or the server stops (an idle
/// one closes at once, a busy one gets [`Limits::shutdown_grace`] to finish).
async fn serve_conn(stream: tokio::net::TcpStream, router: Router, t: ConnTask) {
    let ConnTask {
        id,
        conn,
        conns,
        slot,
        full,
        mut stop,
        limits,
        epoch,
    } = t;
    let _slot = slot;
    let inner = TowerToHyperService::new(router);
    let tracked = conn.clone();
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        tracked.busy.fetch_add(1, Ordering::AcqRel);
        let tracked = tracked.clone();
        let response = inner.call(req);
        async move {
            let r = response.await;
            tracked
                .idle_since
                .store(millis_since(epoch), Ordering::Release);
            tracked.busy.fetch_sub(1, Ordering::AcqRel);
            r
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let served = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(served);
    loop {
        tokio::select! {
            r = served.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended");
                }
                break;
            }
            _ = conn.evict.notified() => {
                // Only while idle and still needed (the request may be stale).
                if conn.busy.load(Ordering::Acquire) == 0 && full.available_permits() == 0 {
                    break;
                }
            }
            _ = stopped(&mut stop) => {
                // Idle ones (headers perhaps half sent) close now; busy ones finish.
                if conn.busy.load(Ordering::Acquire) == 0 {
                    break;
                }
                served.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(limits.shutdown_grace, served).await;
                break;
            }
        }
    }
    conns
        .open
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
}

/// Middleware reading a route's request body before the handler sees it: 413 when it
/// declares or sends more than `max` bytes, 408 when it takes longer than `timeout`.
/// Use as `router.layer(axum::middleware::from_fn(move |r, n| bounded_body(MAX, T, r, n)))`.
pub async fn bounded_body(max: usize, timeout: Duration, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {max} bytes"),
        )
            .into_response()
    };
    if declared.is_some_and(|n| n > max as u64) {
        return too_large();
    }
    let bytes = match tokio::time::timeout(timeout, Limited::new(body, max).collect()).await {
        Err(_) => {
            tracing::warn!("a request body did not arrive in time");
            return (StatusCode::REQUEST_TIMEOUT, "request body too slow").into_response();
        }
        Ok(Err(e)) if e.is::<LengthLimitError>() => return too_large(),
        Ok(Err(_)) => return (StatusCode::BAD_REQUEST, "unreadable body").into_response(),
        Ok(Ok(c)) => c.to_bytes(),
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::net::SocketAddr;
    use std::time::Instant;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    async fn start(
        limits: Limits,
    ) -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let router = Router::new().route("/healthz", get(|| async { "ok" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = watch::channel(false);
        let task =
            tokio::spawn(async move { serve_with(listener, router, rx, limits).await.unwrap() });
        (addr, tx, task)
    }

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

    async fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 1024];
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, s.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
            }
        }
    }

    #[tokio::test]
    async fn at_the_cap_the_longest_idle_connection_makes_room() {
        let limits = Limits {
            max_connections: 8,
            header_timeout: Duration::from_secs(30),
            ..Limits::default()
        };
        let (addr, stop, task) = start(limits).await;
        let mut idle = Vec::new();
        for i in 0..8 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            if i % 2 == 1 {
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: ")
                    .await
                    .unwrap();
            }
            idle.push(s);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for _ in 0..4 {
            let took = healthz(addr).await;
            assert!(
                took < Duration::from_secs(1),
                "/healthz at the cap took {took:?}"
            );
        }
        // The one idle longest made room (each probe closed after its answer, freeing its slot
        // for the next); the others are still open.
        assert!(closed_by_server(&mut idle[0], Duration::from_secs(1)).await);
        for s in &mut idle[1..] {
            assert!(!closed_by_server(s, Duration::from_millis(100)).await);
        }
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the server stops when told")
            .unwrap();
    }

    #[tokio::test]
    async fn the_cap_holds_while_every_connection_is_busy() {
        let limits = Limits {
            max_connections: 4,
            ..Limits::default()
        };
        let router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    "slow"
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = watch::channel(false);
        let task =
            tokio::spawn(async move { serve_with(listener, router, rx, limits).await.unwrap() });
        let mut busy = Vec::new();
        for _ in 0..4 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /slow HTTP/1.1\r\nHost: qm\r\n\r\n")
                .await
                .unwrap();
            busy.push(s);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A fifth waits for a busy one to finish: neither refused nor served beside them.
        let took = healthz(addr).await;
        assert!(
            took >= Duration::from_millis(1000) && took < Duration::from_secs(3),
            "/healthz behind 4 busy connections took {took:?}"
        );
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the server stops when told")
            .unwrap();
    }

    #[tokio::test]
    async fn a_kept_alive_connection_idle_past_the_header_timeout_is_closed() {
        let limits = Limits {
            header_timeout: Duration::from_secs(1),
            ..Limits::default()
        };
        let (addr, stop, task) = start(limits).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: qm\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        let t = Instant::now();
        assert!(closed_by_server(&mut s, Duration::from_secs(3)).await);
        assert!(
            t.elapsed() >= Duration::from_millis(800),
            "{:?}",
            t.elapsed()
        );
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the server stops when told")
            .unwrap();
    }
}

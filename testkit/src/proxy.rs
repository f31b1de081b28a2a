//! A counting, delaying HTTP proxy written for the tests (tokio, one request per connection,
//! as scim2-server's HTTP/1.0 answers close the connection). It forwards bytes unchanged to a
//! real peer; it records every request line with the peer's status, can hold each response
//! back for a while (so a client can be killed while its request is in flight), and can run
//! a hook before forwarding a request (to change the peer's state under the client's feet).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The request body (the head of it that came with the headers).
    pub body: String,
    /// The peer's status, once it answered.
    pub status: Option<u16>,
    /// When the request arrived.
    pub at: Instant,
    /// When the response was handed on to the client.
    pub answered: Option<Instant>,
}

/// A hook run before a request is forwarded: (method, path) → run it?
pub type Hook = Box<dyn FnMut(&str, &str) + Send>;

#[derive(Clone)]
pub struct Proxy {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    delay: Arc<Mutex<Duration>>,
    hook: Arc<Mutex<Option<Hook>>>,
    /// Told each time an answer is handed on.
    answers: Arc<tokio::sync::Notify>,
}

impl Proxy {
    /// A proxy on a free loopback port in front of `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = Self {
            port,
            seen: Arc::default(),
            delay: Arc::default(),
            hook: Arc::default(),
            answers: Arc::default(),
        };
        let p = me.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let p = p.clone();
                tokio::spawn(async move {
                    let _ = p.serve(client, upstream).await;
                });
            }
        });
        me
    }

    /// Holds every response back this long before handing it on.
    pub fn set_delay(&self, d: Duration) {
        *self.delay.lock().unwrap() = d;
    }

    pub fn set_hook(&self, h: Option<Hook>) {
        *self.hook.lock().unwrap() = h;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The newest request for which `f` gives a value, looked at in place (newest first,
    /// nothing copied): cheap enough to poll while the traffic it watches runs.
    pub fn find_newest<T>(&self, f: impl FnMut(&Seen) -> Option<T>) -> Option<T> {
        self.seen.lock().unwrap().iter().rev().find_map(f)
    }

    /// Waits (at most `limit`) for the newest request for which `f` gives a value, woken by
    /// each answer the proxy hands on instead of polling: a waiter that polls takes CPU
    /// from the traffic it times.
    pub async fn wait_newest<T>(
        &self,
        limit: Duration,
        mut f: impl FnMut(&Seen) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let answered = self.answers.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            if let Some(t) = self.find_newest(&mut f) {
                return Some(t);
            }
            if tokio::time::timeout_at(deadline, answered).await.is_err() {
                return None;
            }
        }
    }

    /// Requests still waiting for their answer to reach the client.
    pub fn in_flight(&self) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.answered.is_none())
            .count()
    }

    /// `http://127.0.0.1:<proxy>` + path.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn serve(&self, mut client: TcpStream, upstream: u16) -> std::io::Result<()> {
        let mut head = Vec::new();
        let mut buf = [0u8; 8192];
        let header_end = loop {
            let n = client.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            head.extend_from_slice(&buf[..n]);
            if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let text = String::from_utf8_lossy(&head[..header_end]).to_string();
        let length: usize = text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while head.len() < header_end + length {
            let n = client.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let mut parts = text.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        let body = String::from_utf8_lossy(&head[header_end..]).to_string();
        let idx = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(Seen {
                method: method.clone(),
                path: path.clone(),
                body,
                status: None,
                at: Instant::now(),
                answered: None,
            });
            seen.len() - 1
        };
        let hook = self.hook.lock().unwrap().take();
        if let Some(mut h) = hook {
            let (m, p) = (method.clone(), path.clone());
            let h = tokio::task::spawn_blocking(move || {
                h(&m, &p);
                h
            })
            .await
            .unwrap();
            let mut slot = self.hook.lock().unwrap();
            if slot.is_none() {
                *slot = Some(h);
            }
        }
        let mut up = TcpStream::connect(("127.0.0.1", upstream)).await?;
        up.write_all(&head).await?;
        let mut response = Vec::new();
        up.read_to_end(&mut response).await?;
        let status = String::from_utf8_lossy(&response[..response.len().min(20)])
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok());
        self.seen.lock().unwrap()[idx].status = status;
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        client.write_all(&response).await?;
        client.shutdown().await?;
        self.seen.lock().unwrap()[idx].answered = Some(Instant::now());
        self.answers.notify_waiters();
        Ok(())
    }
}

//! A real SCIM 2.0 peer for the tests: scim2-server (PyPI), on a free loopback port, with
//! dynamic tenants (`http://127.0.0.1:P/<tenant>/v2`, each an empty store). It is started
//! under a small `sh` watchdog that kills it when our stdin pipe closes, so the server never
//! outlives the test process, even when the test binary is killed.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The bearer token the test server accepts.
pub const TOKEN: &str = "qm-test-scim-token";

/// A running scim2-server.
pub struct ScimServer {
    pub port: u16,
    /// The Python process (not the watchdog), for SIGSTOP/SIGCONT.
    pub pid: u32,
    child: Child,
    stdin: Option<ChildStdin>,
}

fn program() -> String {
    match std::env::var("QM_SCIM2_SERVER") {
        Ok(p) if std::path::Path::new(&p).exists() => p,
        Ok(p) => panic!(
            "QM_SCIM2_SERVER={p} does not exist: run scripts/test.sh, or pip install scim2-server \
             and set QM_SCIM2_SERVER to the path of its scim2-server executable"
        ),
        Err(_) => panic!(
            "QM_SCIM2_SERVER is not set: run scripts/test.sh, or pip install scim2-server and set \
             QM_SCIM2_SERVER to the path of its scim2-server executable"
        ),
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.0 request with the test token; returns (status, body).
pub fn raw(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    try_raw(port, method, path, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn try_raw(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    try_raw_with(port, TOKEN, method, path, body)
}

fn try_raw_with(
    port: u16,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_owned();
    Ok((status, body))
}

/// Percent-encodes a query value.
pub fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

static SHARED: OnceLock<ScimServer> = OnceLock::new();
static TENANTS: AtomicUsize = AtomicUsize::new(0);

impl ScimServer {
    /// The server shared by every test of this binary (a tenant per test).
    pub fn shared() -> &'static ScimServer {
        SHARED.get_or_init(ScimServer::start)
    }

    /// A server of one's own, on a free port.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// A server on `port`.
    pub fn start_on(port: u16) -> Self {
        Self::start_with_token(port, TOKEN)
    }

    /// A server on `port` that accepts `token` instead of [`TOKEN`] (the benches give it a
    /// canary value, to search the logs for).
    pub fn start_with_token(port: u16, token: &str) -> Self {
        let prog = program();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("\"$0\" \"$@\" >/dev/null 2>&1 & p=$!; echo $p; read _; kill $p; kill -CONT $p 2>/dev/null; wait $p")
            .arg(&prog)
            .args([
                "--hostname",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--bearer-token",
                token,
                "--dynamic-tenants",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {prog}: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid: u32 = line.trim().parse().expect("watchdog prints the pid");
        let stdin = child.stdin.take();
        let me = Self {
            port,
            pid,
            child,
            stdin,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) =
                try_raw_with(port, token, "GET", "/probe/v2/ServiceProviderConfig", None)
            {
                return me;
            }
            assert!(
                Instant::now() < deadline,
                "scim2-server did not answer on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A fresh tenant's base URL (`http://127.0.0.1:P/<name>-<n>/v2`).
    pub fn tenant(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.tenant_path(name))
    }

    /// A fresh tenant's path (`/<name>-<n>/v2`).
    pub fn tenant_path(&self, name: &str) -> String {
        let n = TENANTS.fetch_add(1, Ordering::SeqCst);
        format!("/{name}-{}-{n}/v2", std::process::id())
    }

    /// Sends a signal (`STOP`, `CONT`) to the Python process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid.to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {}", self.pid);
    }
}

impl Drop for ScimServer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.pid.to_string())
            .status();
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Reads a tenant (a path such as `/t-1-0/v2`) the way a person would check it.
pub struct Peer {
    pub port: u16,
    pub path: String,
}

impl Peer {
    /// The tenant behind a base URL `http://127.0.0.1:P/<tenant>/v2`.
    pub fn of(base: &str) -> Self {
        let rest = base.strip_prefix("http://127.0.0.1:").unwrap();
        let (port, path) = rest.split_once('/').unwrap();
        Self {
            port: port.parse().unwrap(),
            path: format!("/{path}"),
        }
    }

    pub fn get(&self, rel: &str) -> serde_json::Value {
        let (status, body) = raw(self.port, "GET", &format!("{}/{rel}", self.path), None);
        assert_eq!(status, 200, "GET {rel}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Users with this userName (the server compares case-insensitively).
    pub fn users_named(&self, user_name: &str) -> Vec<serde_json::Value> {
        let f = enc(&format!("userName eq \"{user_name}\""));
        let v = self.get(&format!("Users?filter={f}&count=1000"));
        v["Resources"].as_array().cloned().unwrap_or_default()
    }

    /// Every user.
    pub fn users(&self) -> Vec<serde_json::Value> {
        let v = self.get("Users?count=1000");
        v["Resources"].as_array().cloned().unwrap_or_default()
    }

    /// Groups with this displayName.
    pub fn groups_named(&self, name: &str) -> Vec<serde_json::Value> {
        let f = enc(&format!("displayName eq \"{name}\""));
        let v = self.get(&format!("Groups?filter={f}&count=1000"));
        v["Resources"].as_array().cloned().unwrap_or_default()
    }

    /// The member ids of the one group called `name` (none when it does not exist).
    pub fn members(&self, name: &str) -> Vec<String> {
        let groups = self.groups_named(name);
        assert!(
            groups.len() <= 1,
            "group {name} exists {} times",
            groups.len()
        );
        groups
            .first()
            .and_then(|g| g["members"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|m| m["value"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn post(&self, rel: &str, body: &serde_json::Value) -> (u16, String) {
        raw(
            self.port,
            "POST",
            &format!("{}/{rel}", self.path),
            Some(&body.to_string()),
        )
    }

    pub fn delete(&self, rel: &str) -> (u16, String) {
        raw(self.port, "DELETE", &format!("{}/{rel}", self.path), None)
    }

    pub fn patch(&self, rel: &str, body: &serde_json::Value) -> (u16, String) {
        raw(
            self.port,
            "PATCH",
            &format!("{}/{rel}", self.path),
            Some(&body.to_string()),
        )
    }
}

//! A second, independent SCIM 2.0 peer for the tests: SCIMMY (npm `scimmy` with
//! `scimmy-routers` and `express`), run by `tests/peers/scimmy/server.js` under Node, on a free
//! loopback port, a tenant per test (`http://127.0.0.1:P/<tenant>/v2`). One process per mode:
//! `spec` (SCIMMY as shipped: case-sensitive `userName eq`), `lying` (django-scim2's layout:
//! filters ignored — 200 with zero results — and `filter.supported: false`; 501 to the
//! path-filter member removal), `nopatch` (no PATCH: groups change by PUT). A tenant whose
//! name starts with `blind` shows no memberships at all. The server exits when our stdin pipe
//! closes, so it never outlives the test process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::scim::{TOKEN, free_port, raw};

/// A running SCIMMY server.
pub struct Scimmy {
    pub port: u16,
    pub mode: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
}

const HOW: &str = "run scripts/test.sh (it installs Debian `nodejs npm` and runs `npm install \
    --prefix target/peers-node` with tests/peers/scimmy/package.json), or set QM_SCIMMY_MODULES \
    to a node_modules folder holding scimmy, scimmy-routers and express";

fn repo() -> PathBuf {
    // testkit/ sits at the repository's root.
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The `node_modules` folder with scimmy, scimmy-routers and express.
fn modules() -> PathBuf {
    let dir = std::env::var_os("QM_SCIMMY_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/peers-node/node_modules"));
    for m in ["scimmy", "scimmy-routers", "express"] {
        assert!(
            dir.join(m).join("package.json").exists(),
            "the SCIMMY peer needs npm package {m} in {}: {HOW}",
            dir.display()
        );
    }
    dir
}

static SPEC: OnceLock<Scimmy> = OnceLock::new();
static LYING: OnceLock<Scimmy> = OnceLock::new();
static NOPATCH: OnceLock<Scimmy> = OnceLock::new();
static TENANTS: AtomicUsize = AtomicUsize::new(0);

impl Scimmy {
    /// The server of this mode shared by every test of this binary (a tenant per test).
    pub fn shared(mode: &'static str) -> &'static Scimmy {
        let cell = match mode {
            "spec" => &SPEC,
            "lying" => &LYING,
            "nopatch" => &NOPATCH,
            _ => panic!("no SCIMMY mode {mode}"),
        };
        cell.get_or_init(|| Scimmy::start(mode))
    }

    /// A server of one's own in `mode`, on a free port.
    pub fn start(mode: &'static str) -> Self {
        let modules = modules();
        let node = std::env::var("QM_NODE").unwrap_or_else(|_| "node".to_owned());
        let port = free_port();
        let mut child = Command::new(&node)
            .arg(repo().join("tests/peers/scimmy/server.js"))
            .args([port.to_string().as_str(), TOKEN, mode])
            .env("NODE_PATH", &modules)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {node} (Node.js): {e}: {HOW}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the SCIMMY peer did not start (see its error above): {HOW}"
        );
        let stdin = child.stdin.take();
        Self {
            port,
            mode,
            child,
            stdin,
        }
    }

    /// A fresh tenant's base URL (`http://127.0.0.1:P/<name>-<n>/v2`); a name starting with
    /// `blind` hides memberships.
    pub fn tenant(&self, name: &str) -> String {
        let n = TENANTS.fetch_add(1, Ordering::SeqCst);
        format!(
            "http://127.0.0.1:{}/{name}-{}-{n}/v2",
            self.port,
            std::process::id()
        )
    }
}

impl Drop for Scimmy {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tenant's store as it truly is (`GET /_qm/<tenant>`), read over plain HTTP.
pub fn truth(base: &str) -> serde_json::Value {
    let rest = base.strip_prefix("http://127.0.0.1:").unwrap();
    let (port, path) = rest.split_once('/').unwrap();
    let tenant = path.trim_end_matches("/v2");
    let (status, body) = raw(
        port.parse().unwrap(),
        "GET",
        &format!("/_qm/{tenant}"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

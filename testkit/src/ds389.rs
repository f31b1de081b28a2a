//! A throwaway 389 Directory Server (Debian `389-ds-base`) for one test: `dscreate from-file`
//! with lib389's systemd detection forced off (it insists on systemd otherwise), then
//! `ns-slapd -D /etc/dirsrv/slapd-NAME -d 0` started by the test on free loopback ports. The
//! suffix `dc=acme,dc=test` holds `ou=people` and `ou=groups`. Killed and removed on drop.
//! Creating an instance needs root (it writes under /etc/dirsrv and /var/lib/dirsrv).
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ldap3::{Ldap, Mod};

pub const SUFFIX: &str = "dc=acme,dc=test";
pub const ADMIN_DN: &str = "cn=Directory Manager";
pub const PEOPLE_DN: &str = "ou=people,dc=acme,dc=test";
pub const GROUPS_DN: &str = "ou=groups,dc=acme,dc=test";

const NS_SLAPD: &str = "/usr/sbin/ns-slapd";
const DSCREATE: &str = "/usr/sbin/dscreate";
const PYTHON: &str = "/usr/bin/python3";

/// dscreate with systemd detection off (PEERS.md).
const CREATE_PY: &str = r#"
import sys, lib389, lib389.paths
lib389.DirSrv.with_systemd = lambda self: False
lib389.paths.Paths.with_systemd = property(lambda self: False)
sys.argv = ["dscreate", "from-file", sys.argv[1]]
exec(compile(open("/usr/sbin/dscreate").read(), "/usr/sbin/dscreate", "exec"))
"#;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A running 389 DS instance owned by the test.
pub struct Ds389 {
    child: Option<Child>,
    name: String,
    pub url: String,
    pub admin_password: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn instance_dirs(name: &str) -> Vec<String> {
    vec![
        format!("/etc/dirsrv/slapd-{name}"),
        format!("/var/lib/dirsrv/slapd-{name}"),
        format!("/var/log/dirsrv/slapd-{name}"),
        format!("/run/lock/dirsrv/slapd-{name}"),
    ]
}

impl Ds389 {
    /// Creates and starts an instance, waits until it answers and seeds the tree.
    pub async fn start() -> Self {
        for p in [NS_SLAPD, DSCREATE] {
            if !Path::new(p).exists() {
                panic!(
                    "the 389 Directory Server tests need {p}, which does not exist. Run \
                     scripts/test.sh (it installs it), or `apt-get install 389-ds-base`."
                );
            }
        }
        // dscreate starts the instance once to build it; on a busy machine a port picked
        // free can be taken before ns-slapd binds it, and the start fails. Try again (new
        // name, new ports) after removing what the failed attempt left.
        let mut failures = Vec::new();
        let (dir, name, password, port) = loop {
            let dir = tempfile::tempdir().unwrap();
            let name = format!(
                "qm{}x{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst)
            );
            let password = format!("Ds-{}-pw", std::process::id());
            let (port, secure) = (free_port(), free_port());
            let inf = format!(
                "[general]\nfull_machine_name = localhost\nstart = False\n\
                 strict_host_checking = False\n[slapd]\ninstance_name = {name}\nport = {port}\n\
                 secure_port = {secure}\nroot_password = {password}\nself_sign_cert = False\n\
                 [backend-userroot]\nsuffix = {SUFFIX}\ncreate_suffix_entry = True\n\
                 sample_entries = no\n"
            );
            let inf_path = dir.path().join("instance.inf");
            std::fs::write(&inf_path, inf).unwrap();
            let py = dir.path().join("create.py");
            std::fs::write(&py, CREATE_PY).unwrap();
            let out = Command::new(PYTHON)
                .arg(&py)
                .arg(&inf_path)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {PYTHON}: {e}"));
            if out.status.success() {
                break (dir, name, password, port);
            }
            failures.push(format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
            let _ = Command::new("pkill")
                .args(["-f", &format!("slapd-{name} ")])
                .status();
            for d in instance_dirs(&name) {
                let _ = std::fs::remove_dir_all(d);
            }
            if failures.len() == 3 {
                panic!(
                    "dscreate failed three times (is this run as root, with a few GB of free disk?):\n{}",
                    failures.join("\n---\n")
                );
            }
        };
        for d in ["/run/dirsrv".to_owned(), "/run/lock/dirsrv".to_owned()]
            .into_iter()
            .chain([format!("/run/lock/dirsrv/slapd-{name}")])
        {
            std::fs::create_dir_all(&d).unwrap();
            let _ = Command::new("chown").args(["dirsrv:dirsrv", &d]).status();
        }
        let log = dir.path().join("ns-slapd.log");
        let child = Command::new(NS_SLAPD)
            .arg("-D")
            .arg(format!("/etc/dirsrv/slapd-{name}"))
            .arg("-i")
            .arg(format!("/run/dirsrv/slapd-{name}.pid"))
            .arg("-d")
            .arg("0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {NS_SLAPD}: {e}"));
        let s = Ds389 {
            child: Some(child),
            name,
            url: format!("ldap://127.0.0.1:{port}"),
            admin_password: password,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut l) = s.try_bind(ADMIN_DN, &s.admin_password).await {
                let _ = l.unbind().await;
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "ns-slapd did not answer within 30 s; its output:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        s.add(
            PEOPLE_DN,
            &[
                ("objectClass", &["top", "organizationalUnit"]),
                ("ou", &["people"]),
            ],
        )
        .await;
        s.add(
            GROUPS_DN,
            &[
                ("objectClass", &["top", "organizationalUnit"]),
                ("ou", &["groups"]),
            ],
        )
        .await;
        s
    }
    /// Connects and binds as `dn`.
    pub async fn try_bind(&self, dn: &str, password: &str) -> Result<Ldap, ldap3::LdapError> {
        super::ldap::bind_at(&self.url, dn, password).await
    }

    /// A connection bound as Directory Manager.
    pub async fn admin(&self) -> Ldap {
        self.try_bind(ADMIN_DN, &self.admin_password)
            .await
            .expect("admin bind")
    }
    /// The result code of a simple bind as `dn` (0 on success).
    pub async fn bind_rc(&self, dn: &str, password: &str) -> u32 {
        super::ldap::bind_rc_at(&self.url, dn, password).await
    }
    /// Adds an entry as the administrator (`attrs` as name, values).
    pub async fn add(&self, dn: &str, attrs: &[(&str, &[&str])]) {
        super::ldap::add_entry(self.admin().await, dn, attrs).await
    }

    /// Sets an entry's `userPassword`.
    pub async fn set_password(&self, dn: &str, password: &str) {
        let mut l = self.admin().await;
        l.modify(
            dn,
            vec![Mod::Replace("userPassword", HashSet::from([password]))],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
        let _ = l.unbind().await;
    }
    /// An entry's attributes (lower-cased names); None if absent.
    pub async fn entry(&self, dn: &str) -> Option<HashMap<String, Vec<String>>> {
        super::ldap::read_entry(self.admin().await, dn, vec!["*", "+", "nsAccountLock"]).await
    }
    /// The values of one attribute of an entry, sorted (empty if absent).
    pub async fn values(&self, dn: &str, attr: &str) -> Vec<String> {
        super::ldap::attr_values(self.entry(dn).await, attr)
    }
}

impl Drop for Ds389 {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in instance_dirs(&self.name) {
            let _ = std::fs::remove_dir_all(d);
        }
        for f in [
            format!("/run/dirsrv/slapd-{}.pid", self.name),
            format!("/run/dirsrv/slapd-{}.stats", self.name),
            format!("/run/slapd-{}.socket", self.name),
        ] {
            let _ = std::fs::remove_file(f);
        }
    }
}

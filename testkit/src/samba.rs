//! A throwaway Samba Active Directory domain controller (Debian `samba-ad-dc` and
//! `samba-ad-provision`) for one test: `samba-tool domain provision` into a temporary folder
//! (realm ACME.TEST, `DC=acme,DC=test`, no DNS), then `samba -i -M single` started by the test.
//! AD listens on the fixed port 389 (127.0.0.1 only), so one such test runs at a time; simple
//! binds over plain LDAP are allowed on this loopback-only server (`ldap server require strong
//! auth = no`). Killed on drop.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ldap3::{Ldap, Mod};

pub const ADMIN_DN: &str = "CN=Administrator,CN=Users,DC=acme,DC=test";
const SAMBA: &str = "/usr/sbin/samba";
const SAMBA_TOOL: &str = "/usr/bin/samba-tool";

/// One Samba at a time: its port is fixed.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A running Samba AD DC owned by the test.
pub struct Samba {
    child: Child,
    pub url: String,
    pub admin_password: String,
    conf: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Samba {
    /// Provisions a domain and starts its DC; waits until LDAP answers.
    pub async fn start() -> Self {
        for p in [SAMBA, SAMBA_TOOL] {
            if !Path::new(p).exists() {
                panic!(
                    "the Active Directory test needs {p}, which does not exist. Run \
                     scripts/test.sh (it installs it), or `apt-get install samba-ad-dc \
                     samba-ad-provision`."
                );
            }
        }
        let turn = ONE_AT_A_TIME.lock().await;
        if std::net::TcpStream::connect("127.0.0.1:389").is_ok() {
            panic!("port 389 is taken: the Samba AD test needs it (AD's port is fixed)");
        }
        let dir = tempfile::tempdir().unwrap();
        let password = format!("Adm1n-{}-pw!", std::process::id());
        let target = dir.path().join("dc");
        let out = Command::new(SAMBA_TOOL)
            .args([
                "domain",
                "provision",
                "--realm=ACME.TEST",
                "--domain=ACME",
                "--server-role=dc",
                "--dns-backend=NONE",
                "--use-rfc2307",
                "--host-name=dc1",
                "--option=interfaces=lo",
                "--option=bind interfaces only=yes",
            ])
            .arg(format!("--adminpass={password}"))
            .arg(format!("--targetdir={}", target.display()))
            .output()
            .unwrap_or_else(|e| panic!("cannot run {SAMBA_TOOL}: {e}"));
        if !out.status.success() {
            panic!(
                "samba-tool domain provision failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let conf = target.join("etc/smb.conf");
        // Simple binds over plain LDAP, on this loopback-only DC (provision does not keep the
        // option when given on its command line). Only the LDAP service runs: the others (RPC,
        // KDC, NBT, winbind) are not used by the tests, and RPC's endpoints take ports from
        // 49152 up, which other tests' ephemeral sockets may hold (samba then exits).
        // Provision writes its own `server services` line, which would win over ours: drop it.
        let text = std::fs::read_to_string(&conf).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("server services"))
            .map(|l| format!("{l}\n"))
            .collect();
        let text = text.replacen(
            "[global]",
            "[global]\n\tldap server require strong auth = no\n\tserver services = ldap",
            1,
        );
        std::fs::write(&conf, text).unwrap();
        let log = dir.path().join("samba.log");
        let child = Command::new(SAMBA)
            .args(["-i", "-M", "single", "-s"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {SAMBA}: {e}"));
        let s = Samba {
            child,
            url: "ldap://127.0.0.1:389".into(),
            admin_password: password,
            conf,
            _dir: dir,
            _turn: turn,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let last = match s.try_bind(ADMIN_DN, &s.admin_password).await {
                Ok(mut l) => {
                    let _ = l.unbind().await;
                    return s;
                }
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                panic!(
                    "samba did not answer on 127.0.0.1:389 within 60 s ({last}); its output:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    /// Connects and binds as `dn`.
    pub async fn try_bind(&self, dn: &str, password: &str) -> Result<Ldap, ldap3::LdapError> {
        super::ldap::bind_at(&self.url, dn, password).await
    }

    /// A connection bound as the domain's Administrator.
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

    /// Replaces one attribute's values as Administrator.
    pub async fn replace(&self, dn: &str, attr: &str, values: &[&str]) {
        let mut l = self.admin().await;
        l.modify(
            dn,
            vec![Mod::Replace(attr, values.iter().copied().collect())],
        )
        .await
        .unwrap()
        .success()
        .unwrap_or_else(|e| panic!("modifying {dn}: {e}"));
        let _ = l.unbind().await;
    }

    /// Sets a user's password (`samba-tool user setpassword`, by sAMAccountName).
    pub fn set_password(&self, sam: &str, password: &str) {
        let out = Command::new(SAMBA_TOOL)
            .args(["user", "setpassword", sam])
            .arg(format!("--newpassword={password}"))
            .arg("-s")
            .arg(&self.conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "setpassword: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    /// An entry's attributes (lower-cased names); None if absent.
    pub async fn entry(&self, dn: &str) -> Option<HashMap<String, Vec<String>>> {
        super::ldap::read_entry(self.admin().await, dn, vec!["*"]).await
    }
    /// The values of one attribute of an entry, sorted (empty if absent).
    pub async fn values(&self, dn: &str, attr: &str) -> Vec<String> {
        super::ldap::attr_values(self.entry(dn).await, attr)
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

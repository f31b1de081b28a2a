//! A throwaway OpenLDAP slapd for one test: a temporary config and database, a free loopback
//! port, the memberof, refint and ppolicy overlays (with a default policy whose `pwdLockout`
//! is TRUE, so `pwdAccountLockedTime` bites), the tree `dc=acme,dc=test` with `ou=people`,
//! `ou=groups` and `ou=policies`. Killed on drop.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, Mod, Scope, SearchEntry};

pub const SUFFIX: &str = "dc=acme,dc=test";
pub const ADMIN_DN: &str = "cn=admin,dc=acme,dc=test";
pub const PEOPLE_DN: &str = "ou=people,dc=acme,dc=test";
pub const GROUPS_DN: &str = "ou=groups,dc=acme,dc=test";
pub const POLICY_DN: &str = "cn=default,ou=policies,dc=acme,dc=test";
/// With [`Slapd::start_with_size_limit`]: a service account (not the rootdn, whom no limit
/// binds) that reads everything and whose plain searches the size limit cuts short.
pub const READER_DN: &str = "cn=reader,dc=acme,dc=test";
pub const READER_PW: &str = "reader-Pw-1234";

/// The Active Directory attributes and classes the connector touches, with AD's own OIDs, so
/// that `userAccountControl` handling runs on slapd (no AD or Samba peer on this machine).
pub const AD_SCHEMA: &str = r#"
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
    EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
    EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.5.9 NAME 'user' SUP organizationalPerson STRUCTURAL
    MAY ( userAccountControl $ sAMAccountName $ userPrincipalName $ mail $ displayName ) )
objectclass ( 1.2.840.113556.1.5.8 NAME 'group' SUP top STRUCTURAL
    MUST cn MAY ( member $ sAMAccountName $ description ) )
"#;

/// A running slapd owned by the test.
pub struct Slapd {
    child: Child,
    pub url: String,
    pub admin_password: String,
    dir: tempfile::TempDir,
    /// With [`Slapd::start_tls`]: the `ldaps://` URL (StartTLS works on `url` too).
    pub ldaps_url: Option<String>,
    /// With [`Slapd::start_tls`]: the PEM of the test CA that signed the server certificate.
    pub ca_file: Option<PathBuf>,
}

/// A CA and a server certificate for 127.0.0.1 / localhost signed by it (openssl CLI).
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("the TLS test needs the openssl command ({e}); apt-get install openssl")
            });
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=QM Test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

fn slapd_binary() -> PathBuf {
    let p = std::env::var_os("QM_SLAPD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/slapd"));
    if !p.exists() {
        panic!(
            "the LDAP tests need OpenLDAP's slapd, and {} does not exist. Run scripts/test.sh \
             (it installs it), or `apt-get install slapd ldap-utils`, or point QM_SLAPD at slapd.",
            p.display()
        );
    }
    p
}

fn first_dir(candidates: &[&str], what: &str) -> PathBuf {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_dir())
        .unwrap_or_else(|| {
            panic!("no {what} found in {candidates:?}; install slapd (apt-get install slapd)")
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn write_config(
    dir: &Path,
    password: &str,
    extra_schema: Option<&str>,
    tls: bool,
    size_limit: Option<usize>,
) -> PathBuf {
    let schema = first_dir(
        &["/etc/ldap/schema", "/etc/openldap/schema"],
        "schema folder",
    );
    let modules = first_dir(
        &["/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap"],
        "slapd module folder",
    );
    let db = dir.join("db");
    std::fs::create_dir_all(&db).unwrap();
    let extra = match extra_schema {
        Some(text) => {
            let p = dir.join("extra.schema");
            std::fs::write(&p, text).unwrap();
            format!("include {}\n", p.display())
        }
        None => String::new(),
    };
    let extra = if tls {
        let d = dir.display();
        format!(
            "{extra}TLSCACertificateFile {d}/ca.pem\nTLSCertificateFile {d}/server.pem\n\
             TLSCertificateKeyFile {d}/server.key\n"
        )
    } else {
        extra
    };
    let conf = format!(
        r#"include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {schema}/nis.schema
{extra}pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
modulepath {modules}
moduleload back_mdb
moduleload memberof
moduleload refint
moduleload ppolicy

database mdb
suffix "{SUFFIX}"
rootdn "{ADMIN_DN}"
rootpw {password}
directory {db}
maxsize 16777216
index objectClass eq
index member eq
index uid eq

{limits}overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE

overlay refint
refint_attributes member

overlay ppolicy
ppolicy_default "{POLICY_DN}"
"#,
        schema = schema.display(),
        modules = modules.display(),
        dir = dir.display(),
        db = db.display(),
        limits = size_limit.map_or(String::new(), |n| format!(
            "limits dn.exact=\"{READER_DN}\" size.soft={n} size.hard={n} size.pr=unlimited \
             size.prtotal=unlimited\n\n"
        )),
    );
    let path = dir.join("slapd.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

impl Slapd {
    /// Starts a fresh slapd, waits until it answers and seeds the tree.
    pub async fn start() -> Self {
        Self::start_with_password(&format!("admin-{}", std::process::id())).await
    }

    /// Starts a fresh slapd whose administrator password is `admin_password` (the benches give
    /// it a canary value, to search the logs for).
    pub async fn start_with_password(admin_password: &str) -> Self {
        Self::start_full(admin_password, None, false, None).await
    }

    /// Starts a fresh slapd where [`READER_DN`] (password [`READER_PW`]) may read everything
    /// but gets at most `n` entries from a search without the paged-results control
    /// (sizeLimitExceeded after them); paged searches are not limited.
    pub async fn start_with_size_limit(n: usize) -> Self {
        let s = Self::start_full(
            &format!("admin-{}", std::process::id()),
            None,
            false,
            Some(n),
        )
        .await;
        s.add(
            READER_DN,
            &[
                (
                    "objectClass",
                    &["top", "organizationalRole", "simpleSecurityObject"],
                ),
                ("cn", &["reader"]),
                ("userPassword", &[READER_PW]),
            ],
        )
        .await;
        s
    }

    /// Starts a fresh slapd that also speaks TLS: `ldaps://` on [`Slapd::ldaps_url`] and
    /// StartTLS on `url`, with a certificate signed by the test CA in [`Slapd::ca_file`].
    pub async fn start_tls() -> Self {
        Self::start_full(&format!("admin-{}", std::process::id()), None, true, None).await
    }

    /// Starts a fresh slapd that also loads `schema` (slapd.conf schema syntax), e.g. the
    /// Active Directory attributes of [`AD_SCHEMA`].
    pub async fn start_with_schema(schema: &str) -> Self {
        Self::start_full(
            &format!("admin-{}", std::process::id()),
            Some(schema),
            false,
            None,
        )
        .await
    }

    async fn start_full(
        admin_password: &str,
        extra_schema: Option<&str>,
        tls: bool,
        size_limit: Option<usize>,
    ) -> Self {
        let admin_password = admin_password.to_owned();
        let bin = slapd_binary();
        let mut dir = tempfile::tempdir().unwrap();
        if tls {
            make_certs(dir.path());
        }
        let conf = write_config(dir.path(), &admin_password, extra_schema, tls, size_limit);
        let mut last_log = String::new();
        // A port found free may be taken by a parallel test before slapd binds it: try again.
        for _attempt in 0..5 {
            let port = free_port();
            let url = format!("ldap://127.0.0.1:{port}");
            let ldaps_url = tls.then(|| format!("ldaps://127.0.0.1:{}", free_port()));
            let listen = match &ldaps_url {
                Some(l) => format!("{url}/ {l}/"),
                None => format!("{url}/"),
            };
            let log = dir.path().join(format!("slapd-{port}.log"));
            let child = Command::new(&bin)
                .arg("-f")
                .arg(&conf)
                .arg("-h")
                .arg(listen)
                .arg("-d")
                .arg("0")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
            let ca_file = tls.then(|| dir.path().join("ca.pem"));
            let mut s = Slapd {
                child,
                url,
                admin_password: admin_password.clone(),
                dir,
                ldaps_url,
                ca_file,
            };
            if s.wait_ready().await {
                s.seed().await;
                return s;
            }
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
            // Take the folder back for the next attempt; dropping `s` kills this slapd.
            dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
        }
        panic!("slapd did not start; its last output:\n{last_log}");
    }

    async fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut l) = self.try_admin().await {
                let _ = l.unbind().await;
                return true;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        false
    }

    async fn try_admin(&self) -> Result<Ldap, ldap3::LdapError> {
        self.try_bind(ADMIN_DN, &self.admin_password).await
    }
    /// Connects and binds as `dn`.
    pub async fn try_bind(&self, dn: &str, password: &str) -> Result<Ldap, ldap3::LdapError> {
        bind_at(&self.url, dn, password).await
    }
    /// The result code of a simple bind as `dn` (0 on success).
    pub async fn bind_rc(&self, dn: &str, password: &str) -> u32 {
        bind_rc_at(&self.url, dn, password).await
    }

    /// A connection bound as the administrator.
    pub async fn admin(&self) -> Ldap {
        self.try_admin().await.expect("admin bind")
    }

    async fn seed(&self) {
        let mut l = self.admin().await;
        type Attrs = Vec<(&'static str, Vec<&'static str>)>;
        let entries: Vec<(&str, Attrs)> = vec![
            (
                SUFFIX,
                vec![
                    ("objectClass", vec!["top", "dcObject", "organization"]),
                    ("dc", vec!["acme"]),
                    ("o", vec!["Acme"]),
                ],
            ),
            (
                PEOPLE_DN,
                vec![
                    ("objectClass", vec!["top", "organizationalUnit"]),
                    ("ou", vec!["people"]),
                ],
            ),
            (
                GROUPS_DN,
                vec![
                    ("objectClass", vec!["top", "organizationalUnit"]),
                    ("ou", vec!["groups"]),
                ],
            ),
            (
                "ou=policies,dc=acme,dc=test",
                vec![
                    ("objectClass", vec!["top", "organizationalUnit"]),
                    ("ou", vec!["policies"]),
                ],
            ),
            (
                POLICY_DN,
                vec![
                    ("objectClass", vec!["top", "device", "pwdPolicy"]),
                    ("cn", vec!["default"]),
                    ("pwdAttribute", vec!["userPassword"]),
                    ("pwdLockout", vec!["TRUE"]),
                ],
            ),
        ];
        for (dn, attrs) in entries {
            let attrs: Vec<(&str, HashSet<&str>)> = attrs
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().collect()))
                .collect();
            l.add(dn, attrs)
                .await
                .unwrap()
                .success()
                .unwrap_or_else(|e| panic!("seeding {dn}: {e}"));
        }
        let _ = l.unbind().await;
    }
    /// An entry's attributes (lower-cased names), operational ones included; None if absent.
    pub async fn entry(&self, dn: &str) -> Option<HashMap<String, Vec<String>>> {
        read_entry(self.admin().await, dn, vec!["*", "+"]).await
    }

    /// The `member` values of a group (empty if the group is absent).
    pub async fn members(&self, group_dn: &str) -> Vec<String> {
        self.values(group_dn, "member").await
    }
    /// The values of one attribute of an entry, sorted (empty if absent).
    pub async fn values(&self, dn: &str, attr: &str) -> Vec<String> {
        attr_values(self.entry(dn).await, attr)
    }
    /// Adds an entry as the administrator (`attrs` as name, values).
    pub async fn add(&self, dn: &str, attrs: &[(&str, &[&str])]) {
        add_entry(self.admin().await, dn, attrs).await
    }

    /// Sets an entry's `userPassword` as the administrator.
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
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --------------------------------------------------------------- admin reads, any directory
// The independent reads every LDAP test peer (slapd here, 389 DS, Samba AD) offers, over a
// plain ldap3 connection: never through the connector under test.

/// Connects to `url` and binds as `dn`.
pub async fn bind_at(url: &str, dn: &str, password: &str) -> Result<Ldap, ldap3::LdapError> {
    let (conn, mut ldap) = LdapConnAsync::new(url).await?;
    tokio::spawn(async move {
        let _ = conn.drive().await;
    });
    ldap.simple_bind(dn, password).await?.success()?;
    Ok(ldap)
}

/// The result code of a simple bind as `dn` at `url` (0 on success).
pub async fn bind_rc_at(url: &str, dn: &str, password: &str) -> u32 {
    let (conn, mut ldap) = LdapConnAsync::new(url).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.drive().await;
    });
    let rc = ldap.simple_bind(dn, password).await.unwrap().rc;
    let _ = ldap.unbind().await;
    rc
}

/// Adds an entry over `l` (`attrs` as name, values), then unbinds.
pub async fn add_entry(mut l: Ldap, dn: &str, attrs: &[(&str, &[&str])]) {
    let attrs: Vec<(&str, HashSet<&str>)> = attrs
        .iter()
        .map(|(k, v)| (*k, v.iter().copied().collect()))
        .collect();
    l.add(dn, attrs)
        .await
        .unwrap()
        .success()
        .unwrap_or_else(|e| panic!("adding {dn}: {e}"));
    let _ = l.unbind().await;
}

/// An entry's attributes `wanted` (lower-cased names) read over `l`, then unbinds; None if
/// absent.
pub async fn read_entry(
    mut l: Ldap,
    dn: &str,
    wanted: Vec<&str>,
) -> Option<HashMap<String, Vec<String>>> {
    let res = l
        .search(dn, Scope::Base, "(objectClass=*)", wanted)
        .await
        .unwrap();
    let _ = l.unbind().await;
    if res.1.rc == 32 {
        return None;
    }
    let (entries, _) = res.success().unwrap();
    entries.into_iter().next().map(|e| {
        SearchEntry::construct(e)
            .attrs
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect()
    })
}

/// One attribute's values of an entry read by [`read_entry`], sorted (empty if absent).
pub fn attr_values(entry: Option<HashMap<String, Vec<String>>>, attr: &str) -> Vec<String> {
    let mut m = entry
        .and_then(|mut e| e.remove(&attr.to_ascii_lowercase()))
        .unwrap_or_default();
    m.sort();
    m
}

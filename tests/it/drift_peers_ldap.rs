//! Drift through the console on a real LDAP peer (slapd, groupOfNames in `ou=groups` with a
//! placeholder member), changed behind Quartermaster's back by LDAP modifies as the
//! administrator and read back the same way, never through our connector: a member added is
//! found unrecorded and removed with Revoke; a member removed is found missing and
//! re-provisioned; an entry matching nobody is an orphan, two carrying one person's mail are
//! ambiguous; and a run whose connection dies mid-way concludes no absence.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ldap3::Mod;
use quartermaster::core::model::{ConnectorName, Finding, FindingState};
use quartermaster::core::ports::DriftRecords;
use testkit::Bot;
use testkit::ldap::{ADMIN_DN, GROUPS_DN, PEOPLE_DN, Slapd};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CONN: &str = "corp-ldap";

/// The organisation's wiki on the LDAP connector (after the people of the SCIM drift tests).
const APP: &str = r#"
[[app]]
name = "wiki"
display = "Wiki"
connector = "corp-ldap"
entitlement = "wiki-editors"
approvals = []

[[connector]]
name = "corp-ldap"
kind = "ldap"
url = "URL"
bind_dn = "cn=admin,dc=acme,dc=test"
password_env = "LDAP_PASSWORD"
people_dn = "ou=people,dc=acme,dc=test"
groups_dn = "ou=groups,dc=acme,dc=test"
create_groups = true
placeholder_member = "cn=admin,dc=acme,dc=test"
"#;

pub(super) async fn bot(s: &Slapd, url: &str) -> Bot {
    let text =
        format!("{}{APP}", super::drift_peers::PEOPLE).replace("\"URL\"", &format!("\"{url}\""));
    let pw = s.admin_password.clone();
    Bot::from_toml_env(&text, &move |k| (k == "LDAP_PASSWORD").then(|| pw.clone())).await
}

pub(super) fn user_dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE_DN}")
}

fn group() -> String {
    format!("cn=wiki-editors,{GROUPS_DN}")
}

/// An inetOrgPerson added straight into slapd (someone else's doing).
pub(super) async fn add_person(s: &Slapd, uid: &str, name: &str, mail: &str) -> String {
    let dn = user_dn(uid);
    s.add(
        &dn,
        &[
            (
                "objectClass",
                &["top", "person", "organizationalPerson", "inetOrgPerson"],
            ),
            ("uid", &[uid]),
            ("cn", &[name]),
            ("sn", &[name]),
            ("mail", &[mail]),
        ],
    )
    .await;
    dn
}

/// Adds or removes a `member` of the group by an LDAP modify as the administrator.
pub(super) async fn modify_member(s: &Slapd, dn: &str, add: bool) {
    let mut l = s.admin().await;
    let m = if add {
        Mod::Add("member", HashSet::from([dn]))
    } else {
        Mod::Delete("member", HashSet::from([dn]))
    };
    l.modify(&group(), vec![m])
        .await
        .unwrap()
        .success()
        .unwrap();
    let _ = l.unbind().await;
}

/// The group's members as slapd holds them, the placeholder left out.
pub(super) async fn members(s: &Slapd) -> Vec<String> {
    let mut m: Vec<String> = s
        .members(&group())
        .await
        .into_iter()
        .filter(|d| d != ADMIN_DN)
        .collect();
    m.sort();
    m
}

async fn findings(bot: &Bot) -> Vec<Finding> {
    bot.store
        .live_findings(&ConnectorName::parse(CONN).unwrap())
        .await
        .unwrap()
}

fn open_of(all: &[Finding], class: &str) -> Vec<Finding> {
    all.iter()
        .filter(|f| f.class.as_str() == class && f.state == FindingState::Open)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slapd_unrecorded_revoked_and_missing_re_provisioned() {
    let s = Slapd::start().await;
    let mut bot = bot(&s, &s.url).await;
    bot.run("alice: /request app:wiki reason:\"runbooks\"")
        .await;
    let alice = user_dn("alice");
    assert_eq!(
        members(&s).await,
        std::slice::from_ref(&alice),
        "alice provisioned"
    );

    let frank = add_person(&s, "frank", "Frank Li", "frank@acme.test").await;
    modify_member(&s, &frank, true).await;
    bot.run("dana: /drift connector:corp-ldap").await;
    assert!(
        bot.texts_to("dana")
            .iter()
            .any(|x| x.starts_with("🔎 Drift on corp-ldap")),
        "{:?}",
        bot.texts_to("dana")
    );
    let f = bot.last_to("dana");
    assert!(
        f.text.contains("Unrecorded access") && f.text.contains("Frank Li is in wiki-editors"),
        "{f:?}"
    );
    assert_eq!(f.buttons, ["Adopt", "Revoke", "Ignore", "Service account"]);
    let all = findings(&bot).await;
    assert_eq!(all.len(), 1, "only frank's membership: {all:?}");
    bot.run("dana: :click Revoke").await;
    assert_eq!(
        members(&s).await,
        std::slice::from_ref(&alice),
        "frank gone in slapd"
    );

    modify_member(&s, &alice, false).await;
    assert!(members(&s).await.is_empty(), "removed behind its back");
    bot.run("dana: /drift connector:corp-ldap").await;
    let f = bot.last_to("dana");
    assert!(
        f.text.contains("Missing access") && f.text.contains("alice holds Wiki"),
        "{f:?}"
    );
    assert_eq!(f.buttons, ["Re-provision", "Ignore"]);
    bot.run("dana: :click Re-provision").await;
    assert_eq!(members(&s).await, [alice], "back in slapd");
    bot.run("dana: /drift connector:corp-ldap").await;
    let all = findings(&bot).await;
    assert!(
        all.iter().all(|f| f.state != FindingState::Open),
        "nothing left: {all:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slapd_orphan_and_ambiguous_entries() {
    let s = Slapd::start().await;
    let mut bot = bot(&s, &s.url).await;
    let ghost = add_person(&s, "ghost", "Ghost", "ghost@elsewhere.test").await;
    // slapd does not make mail unique: two entries carry alice's.
    let a1 = add_person(&s, "akim", "Alice Kim", "alice@acme.test").await;
    let a2 = add_person(&s, "alice.kim", "Alice Kim", "Alice@Acme.test").await;
    bot.run("dana: /drift connector:corp-ldap").await;
    let all = findings(&bot).await;
    let orphans = open_of(&all, "orphan");
    assert_eq!(orphans.len(), 1, "{all:?}");
    assert!(orphans[0].account.eq_ignore_ascii_case(&ghost), "{all:?}");
    let amb = open_of(&all, "ambiguous");
    assert_eq!(amb.len(), 1, "{all:?}");
    // The finding joins the two DNs with a comma (DNs hold commas too: look for each).
    let account = amb[0].account.to_lowercase();
    assert!(
        account.contains(&a1.to_lowercase()) && account.contains(&a2.to_lowercase()),
        "{all:?}"
    );
}

/// A relay in front of slapd that counts the bytes of its answers and, once `cut` is
/// reached, closes every connection and refuses new ones: slapd gone mid-way.
struct Relay {
    url: String,
    sent: Arc<AtomicUsize>,
    cut: Arc<AtomicUsize>,
    dead: Arc<AtomicBool>,
}

impl Relay {
    async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let me = Self {
            url: format!("ldap://{}", listener.local_addr().unwrap()),
            sent: Arc::default(),
            cut: Arc::new(AtomicUsize::new(usize::MAX)),
            dead: Arc::default(),
        };
        let (sent, cut, dead) = (me.sent.clone(), me.cut.clone(), me.dead.clone());
        let addr = upstream.trim_start_matches("ldap://").to_owned();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if dead.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = TcpStream::connect(&addr).await else {
                    continue;
                };
                let (sent, cut, dead) = (sent.clone(), cut.clone(), dead.clone());
                tokio::spawn(pipe(client, server, sent, cut, dead));
            }
        });
        me
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    sent: Arc<AtomicUsize>,
    cut: Arc<AtomicUsize>,
    dead: Arc<AtomicBool>,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
    });
    let mut buf = vec![0u8; 4096];
    while let Ok(n) = sr.read(&mut buf).await {
        if n == 0 || dead.load(Ordering::SeqCst) {
            break;
        }
        let total = sent.fetch_add(n, Ordering::SeqCst) + n;
        let upto = cut.load(Ordering::SeqCst);
        let n = if total >= upto { n - (total - upto) } else { n };
        if cw.write_all(&buf[..n]).await.is_err() {
            break;
        }
        if total >= upto {
            dead.store(true, Ordering::SeqCst);
            break;
        }
    }
    let _ = cw.shutdown().await;
    up.abort();
}

/// With an open unrecorded finding and a grant, slapd's answers stop half-way through a run
/// (the relay counts a whole run first): the digest says what cannot be read, frank's
/// finding stays open, and alice is not concluded missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slapd_dying_mid_run_concludes_no_absence() {
    let s = Slapd::start().await;
    let relay = Relay::start(&s.url).await;
    let mut bot = bot(&s, &relay.url).await;
    bot.run("alice: /request app:wiki reason:\"runbooks\"")
        .await;
    let frank = add_person(&s, "frank", "Frank Li", "frank@acme.test").await;
    modify_member(&s, &frank, true).await;
    let start = relay.sent.load(Ordering::SeqCst);
    bot.run("dana: /drift connector:corp-ldap").await;
    let whole = relay.sent.load(Ordering::SeqCst) - start;
    let before = findings(&bot).await;
    assert_eq!(open_of(&before, "unrecorded").len(), 1, "{before:?}");

    let at = relay.sent.load(Ordering::SeqCst);
    relay.cut.store(at + whole / 2, Ordering::SeqCst);
    let from = bot.texts_to("dana").len();
    bot.run("dana: /drift connector:corp-ldap").await;
    assert!(relay.dead.load(Ordering::SeqCst), "cut mid-run");
    let texts = bot.texts_to("dana")[from..].to_vec();
    assert!(
        texts
            .iter()
            .any(|x| x.contains("Cannot be read:") && x.contains("nothing is concluded")),
        "{texts:?}"
    );
    let after = findings(&bot).await;
    assert_eq!(
        open_of(&after, "unrecorded").len(),
        1,
        "frank's finding stays open: {after:?}"
    );
    assert!(
        open_of(&after, "missing").is_empty(),
        "no absence concluded: {after:?}"
    );
    assert_eq!(after.len(), before.len(), "nothing settled: {after:?}");
    // slapd itself still holds both: the run changed nothing.
    assert_eq!(members(&s).await.len(), 2);
}

//! Drift through the console on real SCIM peers (scim2-server and SCIMMY), each changed behind
//! Quartermaster's back by plain HTTP and read back the same way, never through our connector:
//! a member added is found unrecorded and removed with Revoke; a member removed is found
//! missing and re-provisioned; an account matching nobody is an orphan, two matching one
//! person are ambiguous; `on_drift = "revoke"` acts on the second run only; and a listing cut
//! mid-way (the peer killed between pages, or the accounts changing under the listing)
//! concludes no absence. The LDAP (slapd) versions are in `drift_peers_ldap`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::any::Any;
use std::sync::{Arc, Mutex};

use quartermaster::core::model::{ConnectorName, Finding, FindingState};
use quartermaster::core::ports::DriftRecords;
use serde_json::{Value, json};
use testkit::Bot;
use testkit::proxy::Proxy;
use testkit::scim::{Peer, ScimServer, TOKEN, raw};
use testkit::scimmy::{Scimmy, truth};

const CONN: &str = "design";
const GROUP: &str = "Figma Editors";

/// Dana in IT; alice and frank, who hold nothing (shared with the LDAP drift tests).
pub(super) const PEOPLE: &str = r#"
[organization]
name = "Acme"
it_admins = ["dana"]

[[person]]
handle = "dana"
name = "Dana Ortiz"
email = "dana@acme.test"
role = "staff"

[[person]]
handle = "alice"
name = "Alice Kim"
email = "alice@acme.test"
role = "staff"
manager = "dana"

[[person]]
handle = "frank"
name = "Frank Li"
email = "frank@acme.test"
role = "staff"
manager = "dana"

[[role]]
name = "staff"
apps = []
"#;

/// The organisation: [`PEOPLE`], and figma (no approval) on the SCIM connector at `base`,
/// listed two resources a page so a listing spans pages.
pub(super) fn org(base: &str, on_drift: &str) -> String {
    format!(
        r#"{PEOPLE}
[[app]]
name = "figma"
display = "Figma"
connector = "{CONN}"
entitlement = "{GROUP}"
approvals = []

[[connector]]
name = "{CONN}"
kind = "scim"
base_url = "{base}"
token_env = "QM_TEST_SCIM_TOKEN"
timeout = "2s"
max_concurrency = 2
page_size = 2
on_drift = "{on_drift}"
"#
    )
}

pub(super) async fn bot(base: &str, on_drift: &str) -> Bot {
    Bot::with_config(crate::scim::config_with_token(&org(base, on_drift), TOKEN)).await
}

/// A tenant on one of the peers, read and changed over plain HTTP (never our connector).
pub(super) struct Tenant {
    pub(super) label: &'static str,
    /// The tenant's base URL on the peer itself (the bot may go through a proxy).
    base: String,
    /// SCIMMY (read by its `/_qm` dump) rather than scim2-server (its unfiltered listings).
    scimmy: bool,
}

impl Tenant {
    pub(super) fn scim2(base: String) -> Self {
        Self {
            label: "scim2-server",
            base,
            scimmy: false,
        }
    }

    pub(super) fn scimmy(base: String) -> Self {
        Self {
            label: "scimmy",
            base,
            scimmy: true,
        }
    }

    pub(super) fn state(&self) -> (Vec<Value>, Vec<Value>) {
        if self.scimmy {
            let t = truth(&self.base);
            (
                t["users"].as_array().unwrap().clone(),
                t["groups"].as_array().unwrap().clone(),
            )
        } else {
            let p = Peer::of(&self.base);
            let all = |r: &str| {
                p.get(&format!("{r}?count=1000"))["Resources"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            };
            (all("Users"), all("Groups"))
        }
    }

    pub(super) fn send(&self, method: &str, rel: &str, body: &Value) -> (u16, String) {
        let p = Peer::of(&self.base);
        raw(
            p.port,
            method,
            &format!("{}/{rel}", p.path),
            Some(&body.to_string()),
        )
    }

    /// Creates a user on the peer (someone else's doing); its id.
    pub(super) fn add_user(&self, user_name: &str, email: &str) -> String {
        let body = json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name, "active": true,
            "emails": [{"value": email, "type": "work", "primary": true}]});
        let (s, b) = self.send("POST", "Users", &body);
        assert_eq!(s, 201, "{}: {b}", self.label);
        serde_json::from_str::<Value>(&b).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates the group on the peer when it is not there yet.
    pub(super) fn ensure_group(&self) {
        if self.group().is_none() {
            let body = json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": GROUP});
            let (s, b) = self.send("POST", "Groups", &body);
            assert_eq!(s, 201, "{}: {b}", self.label);
        }
    }

    pub(super) fn group(&self) -> Option<Value> {
        self.state()
            .1
            .into_iter()
            .find(|g| g["displayName"] == GROUP)
    }

    /// The member ids of the group, as the peer holds them.
    pub(super) fn members(&self) -> Vec<String> {
        let mut m: Vec<String> = self
            .group()
            .and_then(|g| g["members"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|m| m["value"].as_str().unwrap().to_owned())
            .collect();
        m.sort();
        m
    }

    pub(super) fn user_id(&self, user_name: &str) -> String {
        let us: Vec<Value> = self
            .state()
            .0
            .into_iter()
            .filter(|u| {
                u["userName"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(user_name))
            })
            .collect();
        assert_eq!(us.len(), 1, "{}: {user_name}: {us:?}", self.label);
        us[0]["id"].as_str().unwrap().to_owned()
    }

    /// Adds (or removes) a member by PATCH, as another admin tool would.
    pub(super) fn patch_member(&self, uid: &str, add: bool) {
        let gid = self.group().unwrap()["id"].as_str().unwrap().to_owned();
        let op = if add {
            json!({"op":"add","path":"members","value":[{"value": uid}]})
        } else {
            json!({"op":"remove","path": format!("members[value eq \"{uid}\"]")})
        };
        let body = json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations":[op]});
        let (s, b) = self.send("PATCH", &format!("Groups/{gid}"), &body);
        assert!(s == 200 || s == 204, "{}: {s} {b}", self.label);
    }
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

/// The digest texts dana received since `from`.
fn dana_since(bot: &Bot, from: usize) -> Vec<String> {
    bot.texts_to("dana")[from..].to_vec()
}

/// A member added behind Quartermaster's back is found unrecorded and revoked; a member
/// removed behind its back is found missing and re-provisioned; each checked on the peer.
async fn unrecorded_then_missing(t: &Tenant, mut bot: Bot) {
    let l = t.label;
    bot.run("alice: /request app:figma reason:\"mock-ups\"")
        .await;
    let alice = t.user_id("alice@acme.test");
    assert_eq!(
        t.members(),
        std::slice::from_ref(&alice),
        "{l}: alice provisioned"
    );

    // Frank, who holds nothing, is put into the group straight on the peer.
    let frank = t.add_user("frank@acme.test", "frank@acme.test");
    t.patch_member(&frank, true);
    let from = bot.texts_to("dana").len();
    bot.run("dana: /drift connector:design").await;
    let texts = dana_since(&bot, from);
    assert!(
        texts.iter().any(|x| x.starts_with("🔎 Drift on design")),
        "{l}: {texts:?}"
    );
    let f = bot.last_to("dana");
    assert!(
        f.text.contains("Unrecorded access") && f.text.contains("Frank Li is in Figma Editors"),
        "{l}: {f:?}"
    );
    assert_eq!(f.buttons, ["Adopt", "Revoke", "Ignore", "Service account"]);
    let all = findings(&bot).await;
    assert_eq!(all.len(), 1, "{l}: only frank's membership: {all:?}");
    assert_eq!(
        all[0].account, frank,
        "{l}: the finding names the peer's id"
    );

    bot.run("dana: :click Revoke").await;
    assert_eq!(
        t.members(),
        std::slice::from_ref(&alice),
        "{l}: frank gone on the peer"
    );
    bot.run("dana: /drift connector:design").await;
    assert!(
        open_of(&findings(&bot).await, "unrecorded").is_empty(),
        "{l}"
    );

    // Alice's membership is removed straight on the peer; her grant stands.
    t.patch_member(&alice, false);
    assert!(t.members().is_empty(), "{l}: removed behind its back");
    bot.run("dana: /drift connector:design").await;
    let f = bot.last_to("dana");
    assert!(
        f.text.contains("Missing access") && f.text.contains("alice holds Figma"),
        "{l}: {f:?}"
    );
    assert_eq!(f.buttons, ["Re-provision", "Ignore"]);
    bot.run("dana: :click Re-provision").await;
    assert_eq!(t.members(), [alice], "{l}: back on the peer");
    bot.run("dana: /drift connector:design").await;
    let open: Vec<Finding> = findings(&bot)
        .await
        .into_iter()
        .filter(|f| f.state == FindingState::Open)
        .collect();
    assert!(open.is_empty(), "{l}: nothing left: {open:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_server_unrecorded_revoked_and_missing_re_provisioned() {
    let base = ScimServer::shared().tenant("drift");
    let t = Tenant::scim2(base.clone());
    t.ensure_group();
    unrecorded_then_missing(&t, bot(&base, "report").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scimmy_unrecorded_revoked_and_missing_re_provisioned() {
    let base = Scimmy::shared("spec").tenant("drift");
    let t = Tenant::scimmy(base.clone());
    t.ensure_group();
    unrecorded_then_missing(&t, bot(&base, "report").await).await;
}

/// An account matching nobody is an orphan; two accounts carrying one person's e-mail under
/// other userNames are ambiguous.
async fn orphan_and_ambiguous(t: &Tenant, mut bot: Bot) {
    let l = t.label;
    t.ensure_group();
    let ghost = t.add_user("ghost@elsewhere.test", "ghost@elsewhere.test");
    // Both peers take a second user with the same e-mail (only userName is unique).
    let a1 = t.add_user("akim", "alice@acme.test");
    let a2 = t.add_user("alice.kim", "Alice@Acme.test");
    bot.run("dana: /drift connector:design").await;
    let all = findings(&bot).await;
    let orphans = open_of(&all, "orphan");
    assert_eq!(orphans.len(), 1, "{l}: {all:?}");
    assert_eq!(orphans[0].account, ghost, "{l}");
    assert!(orphans[0].detail.contains("ghost@elsewhere.test"), "{l}");
    let amb = open_of(&all, "ambiguous");
    assert_eq!(amb.len(), 1, "{l}: {all:?}");
    let mut ids = vec![a1, a2];
    ids.sort();
    let mut got: Vec<String> = amb[0].account.split(',').map(str::to_owned).collect();
    got.sort();
    assert_eq!(got, ids, "{l}");
    let texts = bot.texts_to("dana");
    assert!(
        texts.iter().any(|x| x.contains("Orphan account"))
            && texts.iter().any(|x| x.contains("Ambiguous match")),
        "{l}: {texts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_server_orphan_and_ambiguous_accounts() {
    let base = ScimServer::shared().tenant("orphan");
    orphan_and_ambiguous(&Tenant::scim2(base.clone()), bot(&base, "report").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scimmy_orphan_and_ambiguous_accounts() {
    let base = Scimmy::shared("spec").tenant("orphan");
    orphan_and_ambiguous(&Tenant::scimmy(base.clone()), bot(&base, "report").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_server_on_drift_revoke_acts_on_the_second_run_only() {
    let base = ScimServer::shared().tenant("auto");
    let t = Tenant::scim2(base.clone());
    t.ensure_group();
    let mut bot = bot(&base, "revoke").await;
    let frank = t.add_user("frank@acme.test", "frank@acme.test");
    t.patch_member(&frank, true);
    bot.run("dana: /drift connector:design").await;
    assert_eq!(
        t.members(),
        std::slice::from_ref(&frank),
        "one run is not enough"
    );
    bot.run("dana: /drift connector:design").await;
    assert!(t.members().is_empty(), "revoked on the second run");
    assert!(
        bot.texts_to("dana")
            .iter()
            .any(|x| x.contains("Revoke queued automatically (seen twice): 1")),
        "{:?}",
        bot.texts_to("dana")
    );
}

/// A peer of the test's own, behind a proxy that can kill it when a given request comes.
struct Killable {
    proxy: Proxy,
    peer: Arc<Mutex<Option<Box<dyn Any + Send>>>>,
}

impl Killable {
    async fn new(port: u16, peer: Box<dyn Any + Send>) -> Self {
        Self {
            proxy: Proxy::start(port).await,
            peer: Arc::new(Mutex::new(Some(peer))),
        }
    }

    /// Kills the peer just before the first request whose path contains every one of `parts`
    /// reaches it (the request then finds nobody listening).
    fn kill_at(&self, parts: &'static [&'static str]) {
        let peer = self.peer.clone();
        self.proxy.set_hook(Some(Box::new(move |_m: &str, p: &str| {
            if parts.iter().all(|x| p.contains(x)) {
                drop(peer.lock().unwrap().take());
            }
        })));
    }
}

/// Where a listing is cut: the request that finds the peer dead, and what is then unread.
struct Cut {
    at: &'static [&'static str],
    unread: &'static str,
}

/// With an open unrecorded finding and a grant, the peer dies between two pages of the
/// accounts listing: the run says what cannot be read, concludes nothing missing, and
/// settles nothing found before.
async fn killed_mid_listing(t: &Tenant, k: Killable, proxied: &str, cut: Cut) {
    let l = t.label;
    let mut bot = bot(proxied, "report").await;
    bot.run("alice: /request app:figma reason:\"mock-ups\"")
        .await;
    let frank = t.add_user("frank@acme.test", "frank@acme.test");
    t.patch_member(&frank, true);
    t.add_user("ghost@elsewhere.test", "ghost@elsewhere.test");
    bot.run("dana: /drift connector:design").await;
    let before = findings(&bot).await;
    assert_eq!(open_of(&before, "unrecorded").len(), 1, "{l}: {before:?}");
    assert!(open_of(&before, "missing").is_empty(), "{l}: {before:?}");

    k.kill_at(cut.at);
    let from = bot.texts_to("dana").len();
    bot.run("dana: /drift connector:design").await;
    assert!(
        k.peer.lock().unwrap().is_none(),
        "{l}: the peer was killed mid-listing: {:?}",
        k.proxy.seen().iter().map(|s| &s.path).collect::<Vec<_>>()
    );
    let texts = dana_since(&bot, from);
    assert!(
        texts
            .iter()
            .any(|x| x.contains(cut.unread) && x.contains("nothing is concluded")),
        "{l}: {texts:?}"
    );
    let after = findings(&bot).await;
    assert_eq!(
        open_of(&after, "unrecorded")
            .iter()
            .map(|f| &f.account)
            .collect::<Vec<_>>(),
        [&frank],
        "{l}: frank's finding stays open: {after:?}"
    );
    assert!(
        open_of(&after, "missing").is_empty(),
        "{l}: no absence concluded: {after:?}"
    );
    assert_eq!(after.len(), before.len(), "{l}: nothing settled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_server_killed_mid_listing_concludes_no_absence() {
    let server = ScimServer::start();
    let (port, path) = (server.port, server.tenant_path("cut"));
    let direct = format!("http://127.0.0.1:{port}{path}");
    let k = Killable::new(port, Box::new(server)).await;
    let proxied = k.proxy.url(&path);
    let t = Tenant::scim2(direct);
    t.ensure_group();
    // Three users, two a page: the second page of Users never comes.
    let cut = Cut {
        at: &["/Users", "startIndex=3"],
        unread: "Cannot be read: accounts",
    };
    killed_mid_listing(&t, k, &proxied, cut).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scimmy_killed_mid_listing_concludes_no_absence() {
    let server = Scimmy::start("spec");
    let port = server.port;
    let direct = server.tenant("cut");
    let path = direct
        .strip_prefix(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .to_owned();
    let k = Killable::new(port, Box::new(server)).await;
    let proxied = k.proxy.url(&path);
    let t = Tenant::scimmy(direct);
    t.ensure_group();
    // SCIMMY answers every user in one page whatever `count` asks (three users, count=2),
    // so it dies after the accounts were listed, when the group's members are read.
    let cut = Cut {
        at: &["/Groups/"],
        unread: "Cannot be read: members of Figma Editors",
    };
    killed_mid_listing(&t, k, &proxied, cut).await;
}

/// The accounts listing cannot be believed (a user deleted between its pages, so the pages
/// no longer add up to the total announced) while the group's members — ids only, on SCIM —
/// are read in full: who those ids are was to come from the accounts, so they are neither
/// orphans nor proof that a grant's holder is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_server_accounts_changing_mid_listing_make_no_orphan_and_no_missing() {
    let server = ScimServer::shared();
    let path = server.tenant_path("shift");
    let direct = format!("http://127.0.0.1:{}{path}", server.port);
    let proxy = Proxy::start(server.port).await;
    let t = Tenant::scim2(direct);
    t.ensure_group();
    // Listed in this order, two a page: ghost and alice, then frank.
    let ghost = t.add_user("ghost@elsewhere.test", "ghost@elsewhere.test");
    let mut bot = bot(&proxy.url(&path), "report").await;
    bot.run("alice: /request app:figma reason:\"mock-ups\"")
        .await;
    let frank = t.add_user("frank@acme.test", "frank@acme.test");
    t.patch_member(&frank, true);
    bot.run("dana: /drift connector:design").await;
    let before = findings(&bot).await;
    assert_eq!(open_of(&before, "unrecorded").len(), 1, "{before:?}");
    assert_eq!(open_of(&before, "orphan").len(), 1, "{before:?}");

    // Someone deletes ghost while the listing is between its two pages.
    let (port, gone) = (server.port, format!("{path}/Users/{ghost}"));
    let mut once = Some(());
    proxy.set_hook(Some(Box::new(move |_m: &str, p: &str| {
        if p.contains("/Users?") && p.contains("startIndex=3") && once.take().is_some() {
            let (s, b) = raw(port, "DELETE", &gone, None);
            assert_eq!(s, 204, "{b}");
        }
    })));
    let from = bot.texts_to("dana").len();
    bot.run("dana: /drift connector:design").await;
    let texts = dana_since(&bot, from);
    assert!(
        texts
            .iter()
            .any(|x| x.contains("Cannot be read: accounts") && x.contains("nothing is concluded")),
        "{texts:?}"
    );
    let after = findings(&bot).await;
    assert!(
        open_of(&after, "missing").is_empty(),
        "alice is in the group; unknown ids prove no absence: {after:?}"
    );
    let orphans: Vec<String> = open_of(&after, "orphan")
        .into_iter()
        .map(|f| f.account)
        .collect();
    assert_eq!(
        orphans,
        [ghost],
        "members are nobody's only when the accounts say so: {after:?}"
    );
    assert_eq!(open_of(&after, "unrecorded").len(), 1, "{after:?}");
}

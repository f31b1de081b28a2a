//! The SCIM connector against more than one implementation of SCIM, each started by the test:
//! scim2-server (Python), SCIMMY (Node: as shipped; in django-scim2's layout, ignoring filters
//! and refusing the path-filter removal with 501; without PATCH; and a tenant that shows no
//! memberships at all). Every step the connector reports is checked by an independent read of
//! the peer over plain HTTP, and a peer that cannot show the truth ends in "could not
//! verify", never in a reported removal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as support;

use std::time::Duration;

use quartermaster::connectors::scim::Scim;
use quartermaster::core::model::{ActionOp, Email, Handle};
use quartermaster::core::ports::{Connector, ConnectorError, Effect, Subject};
use secrecy::SecretString;
use serde_json::{Value, json};
use support::proxy::Proxy;
use support::scim::{Peer, ScimServer, TOKEN, raw};
use support::scimmy::{Scimmy, truth};

fn subject(handle: &str, email: &str) -> Subject {
    Subject {
        handle: Handle::parse(handle).unwrap(),
        name: format!("{} Tester", handle.to_uppercase()),
        email: Email::parse(email).unwrap(),
    }
}

/// A connector as after a restart: nothing remembered.
fn scim(base: &str) -> Scim {
    Scim::new(
        "peer-test",
        base,
        SecretString::from(TOKEN.to_owned()),
        2,
        Duration::from_secs(10),
    )
    .unwrap()
}

/// A tenant on one of the peers, read independently of the connector.
struct Tenant {
    label: &'static str,
    base: String,
    /// SCIMMY (its `/_qm` dump) rather than scim2-server (its unfiltered listings).
    scimmy: bool,
}

impl Tenant {
    fn scim2(name: &str) -> Self {
        Self {
            label: "scim2-server",
            base: ScimServer::shared().tenant(name),
            scimmy: false,
        }
    }

    fn scimmy(mode: &'static str, name: &str, label: &'static str) -> Self {
        Self {
            label,
            base: Scimmy::shared(mode).tenant(name),
            scimmy: true,
        }
    }

    /// Every user and group as the peer holds them.
    fn state(&self) -> (Vec<Value>, Vec<Value>) {
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

    /// The users whose userName is `email` in any case.
    fn users(&self, email: &str) -> Vec<Value> {
        self.state()
            .0
            .into_iter()
            .filter(|u| {
                u["userName"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(email))
            })
            .collect()
    }

    fn user_id(&self, email: &str) -> String {
        let us = self.users(email);
        assert_eq!(us.len(), 1, "{}: users {email}: {us:?}", self.label);
        us[0]["id"].as_str().unwrap().to_owned()
    }

    /// The member ids of group `name` (none when it does not exist; it exists at most once).
    fn members(&self, name: &str) -> Vec<String> {
        let gs: Vec<Value> = self
            .state()
            .1
            .into_iter()
            .filter(|g| g["displayName"] == name)
            .collect();
        assert!(gs.len() <= 1, "{}: group {name} twice: {gs:?}", self.label);
        gs.first()
            .and_then(|g| g["members"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|m| m["value"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Adds a user directly on the peer (someone else's doing).
    fn add_user(&self, user_name: &str) -> String {
        let (port, path) = split(&self.base);
        let body = json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name, "active": true});
        let (s, b) = raw(
            port,
            "POST",
            &format!("{path}/Users"),
            Some(&body.to_string()),
        );
        assert_eq!(s, 201, "{b}");
        serde_json::from_str::<Value>(&b).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Adds a member directly on the peer (PATCH in the Entra form, which every peer here
    /// takes; PUT on the peer without PATCH).
    fn add_member(&self, group: &str, uid: &str) {
        let (port, path) = split(&self.base);
        let g = self
            .state()
            .1
            .into_iter()
            .find(|g| g["displayName"] == group)
            .unwrap();
        let gid = g["id"].as_str().unwrap();
        let (method, body) = if self.label.contains("without PATCH") {
            let mut members = g["members"].as_array().cloned().unwrap_or_default();
            members.push(json!({ "value": uid }));
            let body = json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": group, "members": members});
            ("PUT", body)
        } else {
            let body = json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations":[{"op":"add","path":"members","value":[{"value": uid}]}]});
            ("PATCH", body)
        };
        let (s, b) = raw(
            port,
            method,
            &format!("{path}/Groups/{gid}"),
            Some(&body.to_string()),
        );
        assert!(s == 200 || s == 204, "{s} {b}");
    }
}

fn split(base: &str) -> (u16, String) {
    let rest = base.strip_prefix("http://127.0.0.1:").unwrap();
    let (port, path) = rest.split_once('/').unwrap();
    (port.parse().unwrap(), format!("/{path}"))
}

fn inventory(e: Effect) -> (Vec<String>, bool) {
    match e {
        Effect::Inventory {
            entitlements,
            active_account,
        } => (entitlements, active_account),
        other => panic!("not an inventory: {other:?}"),
    }
}

/// Grant, revoke, grant again and the offboarding re-read, each through a connector that has
/// just started (nothing remembered), each checked against the peer's own state.
async fn round_trip(t: &Tenant) {
    let l = t.label;
    let henry = subject("henry", "henry@acme.test");
    let ines = subject("ines", "ines@acme.test");

    assert_eq!(
        scim(&t.base)
            .apply(ActionOp::Grant, &henry, Some("figma"))
            .await
            .unwrap_or_else(|e| panic!("{l}: grant: {e}")),
        Effect::Applied,
        "{l}"
    );
    assert_eq!(
        scim(&t.base)
            .apply(ActionOp::Grant, &ines, Some("figma"))
            .await
            .unwrap_or_else(|e| panic!("{l}: second grant: {e}")),
        Effect::Applied,
        "{l}"
    );
    let (h, i) = (t.user_id("henry@acme.test"), t.user_id("ines@acme.test"));
    let mut both = vec![h.clone(), i.clone()];
    both.sort();
    let mut m = t.members("figma");
    m.sort();
    assert_eq!(m, both, "{l}: both are members");

    // Revoke: reported removed, and removed; the other member stays.
    assert_eq!(
        scim(&t.base)
            .apply(ActionOp::Revoke, &henry, Some("figma"))
            .await
            .unwrap_or_else(|e| panic!("{l}: revoke: {e}")),
        Effect::Applied,
        "{l}"
    );
    assert_eq!(t.members("figma"), vec![i.clone()], "{l}: after revoke");
    // Again: "already" is said because a read shows it.
    assert_eq!(
        scim(&t.base)
            .apply(ActionOp::Revoke, &henry, Some("figma"))
            .await
            .unwrap_or_else(|e| panic!("{l}: second revoke: {e}")),
        Effect::AlreadyInState,
        "{l}"
    );

    // Grant again, after a restart: the group exists and is found.
    assert_eq!(
        scim(&t.base)
            .apply(ActionOp::Grant, &henry, Some("figma"))
            .await
            .unwrap_or_else(|e| panic!("{l}: grant again: {e}")),
        Effect::Applied,
        "{l}"
    );
    let mut m = t.members("figma");
    m.sort();
    assert_eq!(m, both, "{l}: member again");

    // The offboarding re-read sees what the peer holds.
    let (held, active) = inventory(
        scim(&t.base)
            .apply(ActionOp::Verify, &henry, None)
            .await
            .unwrap_or_else(|e| panic!("{l}: verify: {e}")),
    );
    assert_eq!(held, vec!["figma".to_owned()], "{l}");
    assert!(active, "{l}");

    // Offboarding: revoke and disable, then the re-read says nothing is left, and the peer
    // agrees.
    let c = scim(&t.base);
    assert_eq!(
        c.apply(ActionOp::Revoke, &henry, Some("figma"))
            .await
            .unwrap_or_else(|e| panic!("{l}: offboard revoke: {e}")),
        Effect::Applied,
        "{l}"
    );
    assert_eq!(
        c.apply(ActionOp::Disable, &henry, None)
            .await
            .unwrap_or_else(|e| panic!("{l}: disable: {e}")),
        Effect::Applied,
        "{l}"
    );
    assert_eq!(t.members("figma"), vec![i.clone()], "{l}");
    assert_eq!(t.users("henry@acme.test")[0]["active"], false, "{l}");
    let (held, active) = inventory(
        scim(&t.base)
            .apply(ActionOp::Verify, &henry, None)
            .await
            .unwrap_or_else(|e| panic!("{l}: verify after: {e}")),
    );
    assert!(held.is_empty() && !active, "{l}: {held:?} {active}");

    // Someone adds henry back on the peer: the re-read reports it (never "nothing left").
    t.add_member("figma", &h);
    let (held, _) = inventory(
        scim(&t.base)
            .apply(ActionOp::Verify, &henry, None)
            .await
            .unwrap(),
    );
    assert_eq!(
        held,
        vec!["figma".to_owned()],
        "{l}: added back on the peer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_server_grant_revoke_grant_again_and_verify() {
    round_trip(&Tenant::scim2("rt")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scimmy_grant_revoke_grant_again_and_verify() {
    round_trip(&Tenant::scimmy("spec", "rt", "scimmy")).await;
}

/// django-scim2's layout: filters answered with zero results, `filter.supported: false`, 501
/// to the path-filter removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_ignoring_filters_grant_revoke_grant_again_and_verify() {
    round_trip(&Tenant::scimmy("lying", "rt", "scimmy ignoring filters")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_patch_changes_groups_by_put() {
    round_trip(&Tenant::scimmy("nopatch", "rt", "scimmy without PATCH")).await;
}

/// A peer that ignores filters and shows no memberships (neither Group.members nor
/// User.groups): a revoke it accepts cannot be confirmed, and the re-read cannot see; both
/// end in "could not verify", never in a removal reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_cannot_show_memberships_ends_in_could_not_verify() {
    let t = Tenant::scimmy("lying", "blind", "scimmy blind");
    let henry = subject("henry", "henry@acme.test");
    assert_eq!(
        scim(&t.base)
            .apply(ActionOp::Grant, &henry, Some("figma"))
            .await
            .unwrap(),
        Effect::Applied
    );
    let h = t.user_id("henry@acme.test");
    assert_eq!(t.members("figma"), vec![h.clone()]);

    for _ in 0..2 {
        match scim(&t.base)
            .apply(ActionOp::Revoke, &henry, Some("figma"))
            .await
        {
            Err(ConnectorError::Unverifiable(m)) => {
                assert!(m.contains("cannot be confirmed"), "{m}")
            }
            other => panic!("a removal nobody can see was reported: {other:?}"),
        }
    }
    match scim(&t.base).apply(ActionOp::Verify, &henry, None).await {
        Err(ConnectorError::Unverifiable(m)) => assert!(m.contains("no members"), "{m}"),
        other => panic!("the re-read claimed to see: {other:?}"),
    }
    // The same whether or not the membership is really there.
    t.add_member("figma", &h);
    assert!(matches!(
        scim(&t.base).apply(ActionOp::Verify, &henry, None).await,
        Err(ConnectorError::Unverifiable(_))
    ));
    let e = scim(&t.base)
        .apply(ActionOp::Verify, &henry, None)
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("could not verify: "), "{e}");
}

/// One connector re-reading a user again and again: after the first re-read (a complete
/// listing, against which the member search is tried), memberships added and removed behind
/// its back are still seen, whether the peer's member search works (scim2-server, SCIMMY) or
/// answers nothing while claiming filter support (a "deaf" SCIMMY tenant).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_re_reads_see_changes_behind_their_back_whatever_the_search_does() {
    for t in [
        Tenant::scim2("search"),
        Tenant::scimmy("spec", "search", "scimmy"),
        Tenant::scimmy("spec", "deaf-search", "scimmy ignoring filters silently"),
    ] {
        let l = t.label;
        let c = scim(&t.base);
        let (kim, lou) = (
            subject("kim", "kim@acme.test"),
            subject("lou", "lou@acme.test"),
        );
        for g in ["figma", "notion"] {
            c.apply(ActionOp::Grant, &kim, Some(g)).await.unwrap();
        }
        c.apply(ActionOp::Grant, &lou, Some("figma")).await.unwrap();
        let verify = |who: &Subject| {
            let c = &c;
            let who = who.clone();
            async move {
                inventory(
                    c.apply(ActionOp::Verify, &who, None)
                        .await
                        .unwrap_or_else(|e| panic!("{l}: verify: {e}")),
                )
                .0
            }
        };
        assert_eq!(verify(&kim).await, vec!["figma", "notion"], "{l}");
        assert_eq!(verify(&lou).await, vec!["figma"], "{l}");
        // Behind its back: lou added to notion on the peer.
        let lou_id = t.user_id("lou@acme.test");
        t.add_member("notion", &lou_id);
        assert_eq!(verify(&lou).await, vec!["figma", "notion"], "{l}");
        // Revoked through the connector: the next re-read no longer sees it, and the peer
        // agrees.
        c.apply(ActionOp::Revoke, &lou, Some("figma"))
            .await
            .unwrap();
        assert_eq!(verify(&lou).await, vec!["notion"], "{l}");
        assert!(!t.members("figma").contains(&lou_id), "{l}");
        assert_eq!(verify(&kim).await, vec!["figma", "notion"], "{l}");
    }
}

/// A peer whose two reads disagree (the group's members no longer list the user, the user's
/// `groups` still name the group): the revoke ends in "could not verify", and the re-read
/// reports the membership (what any read shows is reported present, never "nothing left").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_that_disagree_end_in_could_not_verify() {
    let t = Tenant::scimmy("spec", "stale", "scimmy with stale User.groups");
    let lee = subject("lee", "lee@acme.test");
    scim(&t.base)
        .apply(ActionOp::Grant, &lee, Some("figma"))
        .await
        .unwrap();
    match scim(&t.base)
        .apply(ActionOp::Revoke, &lee, Some("figma"))
        .await
    {
        Err(ConnectorError::Unverifiable(m)) => assert!(m.contains("disagree"), "{m}"),
        other => panic!("a removal the peer contradicts was reported: {other:?}"),
    }
    assert!(t.members("figma").is_empty(), "the removal itself happened");
    match scim(&t.base)
        .apply(ActionOp::Revoke, &lee, Some("figma"))
        .await
    {
        Err(ConnectorError::Unverifiable(_)) => {}
        other => panic!("\"already\" against a read that says otherwise: {other:?}"),
    }
    let (held, _) = inventory(
        scim(&t.base)
            .apply(ActionOp::Verify, &lee, None)
            .await
            .unwrap(),
    );
    assert_eq!(held, vec!["figma".to_owned()]);
}

/// 501 to `members[value eq "…"]` is permanent for that form: the Entra form is sent next
/// (no retry of the refused one) and remembered for the connector's next removals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_501_to_one_removal_form_switches_to_the_other() {
    let t = Tenant::scimmy("lying", "form", "scimmy ignoring filters");
    let (port, path) = split(&t.base);
    let proxy = Proxy::start(port).await;
    let base = proxy.url(&path);
    let c = scim(&base);
    let people = [
        subject("jo", "jo@acme.test"),
        subject("kai", "kai@acme.test"),
    ];
    for p in &people {
        c.apply(ActionOp::Grant, p, Some("miro")).await.unwrap();
    }
    for p in &people {
        assert_eq!(
            c.apply(ActionOp::Revoke, p, Some("miro")).await.unwrap(),
            Effect::Applied
        );
    }
    assert!(t.members("miro").is_empty());
    let removals: Vec<(Option<u16>, bool)> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "PATCH" && s.body.contains("\"remove\""))
        .map(|s| (s.status, s.body.contains("members[value eq")))
        .collect();
    assert_eq!(
        removals,
        [(Some(501), true), (Some(200), false), (Some(200), false)],
        "{removals:?}"
    );
}

/// A user that exists as `Henry@Acme.test` on a peer whose `userName eq` is case-sensitive:
/// the 409 on create leads to the listing, and the existing user is adopted (not a second
/// one, not "created but cannot be found").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_user_in_another_case_is_adopted() {
    for t in [
        Tenant::scimmy("spec", "case", "scimmy"),
        Tenant::scimmy("lying", "case", "scimmy ignoring filters"),
        Tenant::scim2("case"),
    ] {
        let l = t.label;
        let id = t.add_user("Henry@Acme.test");
        let henry = subject("henry", "henry@acme.test");
        assert_eq!(
            scim(&t.base)
                .apply(ActionOp::Grant, &henry, Some("figma"))
                .await
                .unwrap_or_else(|e| panic!("{l}: {e}")),
            Effect::Applied,
            "{l}"
        );
        assert_eq!(
            t.users("henry@acme.test").len(),
            1,
            "{l}: adopted, not doubled"
        );
        assert_eq!(t.members("figma"), vec![id.clone()], "{l}");
        let acct = scim(&t.base).find_account(&henry).await.unwrap();
        assert_eq!(acct.map(|a| a.id), Some(id.clone()), "{l}");
        assert_eq!(
            scim(&t.base).create_account(&henry).await.unwrap(),
            Effect::AlreadyInState,
            "{l}"
        );
        assert_eq!(
            scim(&t.base)
                .apply(ActionOp::Revoke, &henry, Some("figma"))
                .await
                .unwrap(),
            Effect::Applied,
            "{l}"
        );
        assert!(t.members("figma").is_empty(), "{l}");
    }
}

/// Capability discovery reads what each peer says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_are_discovered() {
    let caps = scim(&ScimServer::shared().tenant("caps"))
        .discover()
        .await
        .unwrap();
    assert_eq!(
        (caps.filter, caps.patch, caps.etag),
        (Some(true), Some(true), Some(true))
    );
    assert_eq!(caps.members_returned, Some(true));
    let lying = scim(&Scimmy::shared("lying").tenant("caps"))
        .discover()
        .await
        .unwrap();
    assert_eq!((lying.filter, lying.etag), (Some(false), Some(false)));
    assert!(
        lying
            .warnings()
            .iter()
            .any(|w| w.contains("paged listings")),
        "{:?}",
        lying.warnings()
    );
    let blind = scim(&Scimmy::shared("lying").tenant("blind-caps"))
        .discover()
        .await
        .unwrap();
    assert_eq!(blind.members_returned, None);
    assert!(
        blind.summary().contains("/Schemas not served"),
        "{}",
        blind.summary()
    );
    let nopatch = scim(&Scimmy::shared("nopatch").tenant("caps"))
        .discover()
        .await
        .unwrap();
    assert_eq!(nopatch.patch, Some(false));
}

/// `check --probe` prints the capabilities, and warns where config and peer disagree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_prints_capabilities_and_warnings() {
    let good = ScimServer::shared().tenant("probe");
    let lying = Scimmy::shared("lying").tenant("probe");
    let text = format!(
        r#"
[organization]
name = "Probe Co"
it_admins = ["admin"]

[[person]]
handle = "admin"
name = "Ada Admin"
email = "admin@probe.test"
role = "it"

[[role]]
name = "it"
apps = []

[[connector]]
name = "okta"
kind = "scim"
base_url = "{good}"
token_env = "QM_T_SCIM"

[[connector]]
name = "django"
kind = "scim"
base_url = "{lying}"
token_env = "QM_T_SCIM"
page_size = 500
"#
    );
    let config = quartermaster::config::parse(&text, std::path::Path::new("."), &|k| {
        (k == "QM_T_SCIM").then(|| TOKEN.to_owned())
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("none.db").display());
    let out: Vec<String> = quartermaster::probe::run(&config, &db)
        .await
        .iter()
        .map(ToString::to_string)
        .collect();
    let out = out.join("\n");
    assert!(
        out.contains("OK   connector okta (scim ")
            && out.contains(
                "reachable; filter yes (max 1000), patch yes, etag yes, bulk yes, changePassword yes, sort yes"
            ),
        "{out}"
    );
    assert!(
        out.contains("OK   connector django (scim ")
            && out.contains("filter no (max 200)")
            && out.contains("WARNING: filter.supported is false")
            && out.contains("WARNING: page_size 500 is above the provider's filter.maxResults 200"),
        "{out}"
    );
}

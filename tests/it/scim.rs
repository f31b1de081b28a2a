//! The SCIM connector against the real scim2-server (a tenant per test), and against a local
//! HTTP stub only for what that server never does (429 with Retry-After, 5xx, timeouts).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use quartermaster::connectors::scim::Scim;
use quartermaster::core::model::{ActionOp, Email, Handle};
use quartermaster::core::ports::{Connector, ConnectorError, Effect, Subject};
use secrecy::SecretString;
use serde_json::json;
use support::proxy::Proxy;
use support::scim::{Peer, ScimServer, TOKEN};

fn subject(handle: &str, email: &str) -> Subject {
    Subject {
        handle: Handle::parse(handle).unwrap(),
        name: format!("{} Tester", handle.to_uppercase()),
        email: Email::parse(email).unwrap(),
    }
}

fn scim(base: &str, page_size: usize) -> Scim {
    Scim::new(
        "test-scim",
        base,
        SecretString::from(TOKEN.to_owned()),
        page_size,
        Duration::from_secs(10),
    )
    .unwrap()
}

/// A fresh tenant on the shared server behind a recording proxy: the proxy, the tenant's base
/// URL through it, and the tenant read directly.
async fn proxied_tenant(name: &str) -> (Proxy, String, Peer) {
    let server = ScimServer::shared();
    let path = server.tenant_path(name);
    let proxy = Proxy::start(server.port).await;
    let base = proxy.url(&path);
    let peer = Peer {
        port: server.port,
        path,
    };
    (proxy, base, peer)
}

#[tokio::test]
async fn accounts_and_groups_round_trip_and_repeat_as_already_in_state() {
    let base = ScimServer::shared().tenant("round");
    let peer = Peer::of(&base);
    let c = scim(&base, 100);
    c.test_connection().await.unwrap();
    let alice = subject("alice", "Alice@Acme.test");

    assert_eq!(c.find_account(&alice).await.unwrap(), None);
    assert_eq!(c.create_account(&alice).await.unwrap(), Effect::Applied);
    assert_eq!(
        c.create_account(&alice).await.unwrap(),
        Effect::AlreadyInState
    );
    let users = peer.users();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["userName"], "Alice@Acme.test");
    assert_eq!(users[0]["externalId"], "alice");
    assert_eq!(users[0]["active"], true);
    assert_eq!(users[0]["emails"][0]["value"], "Alice@Acme.test");
    assert_eq!(users[0]["name"]["formatted"], "ALICE Tester");

    // userName is matched case-insensitively.
    let lower = subject("alice", "alice@acme.test");
    let acct = c.find_account(&lower).await.unwrap().expect("found");
    assert!(acct.active);
    assert_eq!(acct.id, users[0]["id"].as_str().unwrap());

    // Group membership: the group is created on first use.
    assert_eq!(c.grant(&lower, "figma").await.unwrap(), Effect::Applied);
    assert_eq!(
        c.grant(&lower, "figma").await.unwrap(),
        Effect::AlreadyInState
    );
    assert_eq!(peer.members("figma"), vec![acct.id.clone()]);
    assert_eq!(peer.groups_named("figma").len(), 1);
    assert_eq!(
        c.list_grants(&alice).await.unwrap(),
        vec!["figma".to_owned()]
    );
    assert_eq!(c.revoke(&alice, "figma").await.unwrap(), Effect::Applied);
    assert_eq!(
        c.revoke(&alice, "figma").await.unwrap(),
        Effect::AlreadyInState
    );
    assert_eq!(
        c.revoke(&alice, "no-such-group").await.unwrap(),
        Effect::AlreadyInState
    );
    assert!(peer.members("figma").is_empty());
    assert!(c.list_grants(&alice).await.unwrap().is_empty());

    // Deactivate and reactivate.
    assert_eq!(c.disable_account(&alice).await.unwrap(), Effect::Applied);
    assert_eq!(
        c.disable_account(&alice).await.unwrap(),
        Effect::AlreadyInState
    );
    assert_eq!(peer.users()[0]["active"], false);
    assert!(!c.find_account(&alice).await.unwrap().unwrap().active);
    assert_eq!(c.enable_account(&alice).await.unwrap(), Effect::Applied);
    assert_eq!(
        c.enable_account(&alice).await.unwrap(),
        Effect::AlreadyInState
    );
    assert_eq!(peer.users()[0]["active"], true);

    // The queued operations, as the engine runs them.
    let bob = subject("bob", "bob@acme.test");
    assert_eq!(
        c.apply(ActionOp::Grant, &bob, Some("jira")).await.unwrap(),
        Effect::Applied
    );
    assert_eq!(
        c.apply(ActionOp::Grant, &bob, Some("jira")).await.unwrap(),
        Effect::AlreadyInState
    );
    assert_eq!(
        c.apply(ActionOp::Disable, &bob, None).await.unwrap(),
        Effect::Applied
    );
    assert_eq!(
        c.apply(ActionOp::Disable, &bob, None).await.unwrap(),
        Effect::AlreadyInState
    );
    // A grant re-enables a disabled account.
    assert_eq!(
        c.apply(ActionOp::Grant, &bob, Some("jira")).await.unwrap(),
        Effect::Applied
    );
    assert!(c.find_account(&bob).await.unwrap().unwrap().active);
    assert_eq!(
        c.apply(ActionOp::Revoke, &bob, Some("jira")).await.unwrap(),
        Effect::Applied
    );

    // Delete.
    assert_eq!(c.delete_account(&alice).await.unwrap(), Effect::Applied);
    assert_eq!(
        c.delete_account(&alice).await.unwrap(),
        Effect::AlreadyInState
    );
    assert!(peer.users_named("alice@acme.test").is_empty());
    assert_eq!(
        c.disable_account(&alice).await.unwrap(),
        Effect::AlreadyInState
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_uniqueness_from_a_racing_create_counts_as_already_in_state() {
    let (proxy, base, peer) = proxied_tenant("race").await;
    // Hold answers back so both lookups see no user before either create lands.
    proxy.set_delay(Duration::from_millis(300));
    let (a, b) = (scim(&base, 100), scim(&base, 100));
    let carol = subject("carol", "carol@acme.test");
    let (ra, rb) = tokio::join!(a.create_account(&carol), b.create_account(&carol));
    let mut effects = vec![ra.unwrap(), rb.unwrap()];
    effects.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(effects, vec![Effect::AlreadyInState, Effect::Applied]);
    let posts: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST" && s.path.ends_with("/Users"))
        .map(|s| s.status)
        .collect();
    assert_eq!(posts.len(), 2, "both looked, found nothing, and created");
    assert!(
        posts.contains(&Some(201)) && posts.contains(&Some(409)),
        "{posts:?}"
    );
    let server = ScimServer::shared();
    assert_eq!(Peer::of(&server.tenant("x")).port, server.port);
    assert_eq!(peer.users_named("carol@acme.test").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_follow_pages() {
    let (proxy, base, _) = proxied_tenant("pages").await;
    let c = scim(&base, 2);
    let dave = subject("dave", "dave@acme.test");
    for i in 0..5 {
        let other = subject("x", &format!("other{i}@acme.test"));
        c.create_account(&other).await.unwrap();
        c.grant(&other, &format!("g{i}")).await.unwrap();
    }
    c.create_account(&dave).await.unwrap();
    let mut want = Vec::new();
    for i in 0..5 {
        c.grant(&dave, &format!("g{i}")).await.unwrap();
        want.push(format!("g{i}"));
    }
    let before = proxy.seen().len();
    assert_eq!(c.list_grants(&dave).await.unwrap(), want);
    let groups_read = |from: usize| -> (Vec<String>, Vec<String>) {
        proxy.seen()[from..]
            .iter()
            .filter(|s| s.path.contains("/Groups?"))
            .map(|s| s.path.clone())
            .partition(|p| !p.contains("filter="))
    };
    let (pages, searched) = groups_read(before);
    assert_eq!(pages.len(), 3, "5 groups, 2 a page: {pages:?}");
    assert!(pages[2].contains("startIndex=5"), "{pages:?}");
    // The member search was tried against that listing (dave is in all 5: 3 pages too) …
    assert_eq!(searched.len(), 3, "{searched:?}");
    // … and, having agreed, stands in for the listing from then on.
    let before = proxy.seen().len();
    assert_eq!(c.list_grants(&dave).await.unwrap(), want);
    let (pages, searched) = groups_read(before);
    assert!(pages.is_empty(), "no complete listing: {pages:?}");
    assert_eq!(searched.len(), 3, "{searched:?}");
    // More users than one page: every one is still found.
    for i in 0..5 {
        let other = subject("x", &format!("OTHER{i}@acme.test"));
        assert!(c.find_account(&other).await.unwrap().is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_etag_gets_412_and_the_update_is_retried() {
    let (proxy, base, peer) = proxied_tenant("etag").await;
    let c = scim(&base, 100);
    let erin = subject("erin", "erin@acme.test");
    c.create_account(&erin).await.unwrap();
    c.grant(&subject("y", "y@acme.test"), "wiki")
        .await
        .unwrap_err(); // no such user
    c.create_account(&subject("y", "y@acme.test"))
        .await
        .unwrap();
    c.grant(&subject("y", "y@acme.test"), "wiki").await.unwrap();
    let gid = peer.groups_named("wiki")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let uid = c_id(&peer, "erin@acme.test");
    // Someone else changes the resource between our read and our PATCH: once the group, once
    // erin's user record.
    let fired = Arc::new(Mutex::new(Vec::<String>::new()));
    let (f2, port, p2, g2, u2) = (
        fired.clone(),
        peer.port,
        peer.path.clone(),
        gid.clone(),
        uid.clone(),
    );
    proxy.set_hook(Some(Box::new(move |method, p| {
        let mut fired = f2.lock().unwrap();
        if method != "PATCH" {
            return;
        }
        let (rel, op) = if p.contains("/Groups/") {
            (
                format!("{p2}/Groups/{g2}"),
                json!({"op":"add","path":"members","value":[{"value":"ghost"}]}),
            )
        } else {
            (
                format!("{p2}/Users/{u2}"),
                json!({"op":"replace","path":"displayName","value":"Erin Renamed"}),
            )
        };
        if fired.contains(&rel) {
            return;
        }
        fired.push(rel.clone());
        let body = json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations":[op]});
        let (s, b) = support::scim::raw(port, "PATCH", &rel, Some(&body.to_string()));
        assert!(s == 200 || s == 204, "{s} {b}");
    })));
    let patches = || -> Vec<(String, Option<u16>)> {
        proxy
            .seen()
            .into_iter()
            .filter(|s| s.method == "PATCH")
            .map(|s| (s.path, s.status))
            .collect()
    };

    // A member is added as a value, without If-Match: the other change to the group does not
    // make it wrong, so there is no 412 and both changes stand.
    let before = patches().len();
    assert_eq!(c.grant(&erin, "wiki").await.unwrap(), Effect::Applied);
    assert_eq!(fired.lock().unwrap().len(), 1);
    let after = patches();
    assert_eq!(after.len(), before + 1, "{after:?}");
    assert_eq!(after[before].1, Some(204), "{after:?}");
    let mut members = peer.members("wiki");
    members.retain(|m| m == "ghost" || m == uid.as_str());
    assert_eq!(members.len(), 2, "the other change and ours both stand");

    // A replace carries the ETag of the read: the peer refuses it (412), the connector reads
    // again and retries.
    assert_eq!(c.disable_account(&erin).await.unwrap(), Effect::Applied);
    assert_eq!(fired.lock().unwrap().len(), 2);
    let users: Vec<Option<u16>> = patches()
        .into_iter()
        .filter(|(p, _)| p.contains("/Users/"))
        .map(|(_, s)| s)
        .collect();
    assert_eq!(users, [Some(412), Some(204)], "{users:?}");
    let erin_now = peer.users_named("erin@acme.test");
    assert_eq!(erin_now[0]["active"], false);
    assert_eq!(
        erin_now[0]["displayName"], "Erin Renamed",
        "the other change stands"
    );
}

#[tokio::test]
async fn a_group_is_looked_up_once_and_again_when_it_is_gone() {
    let (proxy, base, peer) = proxied_tenant("groupcache").await;
    let c = scim(&base, 100);
    let people: Vec<Subject> = (0..3)
        .map(|i| subject(&format!("g{i}"), &format!("g{i}@acme.test")))
        .collect();
    for p in &people {
        c.create_account(p).await.unwrap();
    }
    let group_lookups = || {
        proxy
            .seen()
            .iter()
            .filter(|s| s.method == "GET" && s.path.contains("/Groups?"))
            .count()
    };
    for p in &people {
        assert_eq!(c.grant(p, "design").await.unwrap(), Effect::Applied);
    }
    // The first grant looked the group up (and, missing, created it); the others used its id.
    assert_eq!(group_lookups(), 1, "{:?}", proxy.seen());
    assert_eq!(peer.members("design").len(), 3);

    // Someone deletes the group on the peer: the remembered id is gone; the next grant finds
    // out, looks the group up again and creates it anew.
    let gid = peer.groups_named("design")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = peer.delete(&format!("Groups/{gid}"));
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        c.grant(&people[0], "design").await.unwrap(),
        Effect::Applied
    );
    assert_eq!(peer.groups_named("design").len(), 1);
    assert_eq!(peer.members("design"), vec![c_id(&peer, "g0@acme.test")]);

    // And again for a removal: a group recreated under the same name (a new id) with a member
    // is found, and the member removed; a removal from a group that is gone is "already".
    let gid = peer.groups_named("design")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(peer.delete(&format!("Groups/{gid}")).0, 204);
    let (status, body) = peer.post(
        "Groups",
        &json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName":"design", "members":[{"value": c_id(&peer, "g1@acme.test")}]}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        c.revoke(&people[1], "design").await.unwrap(),
        Effect::Applied
    );
    assert!(peer.members("design").is_empty());
    let gid = peer.groups_named("design")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(peer.delete(&format!("Groups/{gid}")).0, 204);
    assert_eq!(
        c.revoke(&people[2], "design").await.unwrap(),
        Effect::AlreadyInState
    );
    assert!(peer.groups_named("design").is_empty());
}

#[tokio::test]
async fn five_grants_of_a_new_user_at_once_create_it_once() {
    let (proxy, base, peer) = proxied_tenant("together").await;
    let c = scim(&base, 100);
    let nora = subject("nora", "nora@acme.test");
    let apps = ["a1", "a2", "a3", "a4", "a5"];
    let grant = |a| c.apply(ActionOp::Grant, &nora, Some(a));
    let effects = tokio::join!(
        grant(apps[0]),
        grant(apps[1]),
        grant(apps[2]),
        grant(apps[3]),
        grant(apps[4])
    );
    for e in [effects.0, effects.1, effects.2, effects.3, effects.4] {
        assert_eq!(e.unwrap(), Effect::Applied);
    }
    // The grants waited for the one creating the user: one POST, no 409.
    let posts: Vec<Option<u16>> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST" && s.path.ends_with("/Users"))
        .map(|s| s.status)
        .collect();
    assert_eq!(posts, [Some(201)], "{posts:?}");
    let uid = c_id(&peer, "nora@acme.test");
    for a in apps {
        assert_eq!(peer.members(a), vec![uid.clone()], "{a}");
    }
}

fn c_id(peer: &Peer, user_name: &str) -> String {
    peer.users_named(user_name)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

// ------------------------------------------------------------------- stub: what no peer does

async fn stub() -> u16 {
    use axum::http::{HeaderMap, StatusCode, Uri};
    async fn answer(uri: Uri) -> (StatusCode, HeaderMap, String) {
        let mut h = HeaderMap::new();
        let p = uri.path();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if p.starts_with("/seconds/") {
            h.insert("retry-after", "7".parse().unwrap());
            (StatusCode::TOO_MANY_REQUESTS, h, String::new())
        } else if p.starts_with("/date/") {
            let at = chrono::Utc::now() + chrono::TimeDelta::seconds(30);
            let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            h.insert("retry-after", date.parse().unwrap());
            (StatusCode::TOO_MANY_REQUESTS, h, String::new())
        } else if p.starts_with("/okta/") {
            h.insert(
                "x-rate-limit-reset",
                (now + 45).to_string().parse().unwrap(),
            );
            (StatusCode::TOO_MANY_REQUESTS, h, "{}".into())
        } else if p.starts_with("/down/") {
            (StatusCode::SERVICE_UNAVAILABLE, h, "maintenance".into())
        } else if p.starts_with("/broken/") {
            let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":500,"detail":"boom"}"#;
            (StatusCode::INTERNAL_SERVER_ERROR, h, body.into())
        } else if p.starts_with("/slow/") {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::OK, h, "{}".into())
        } else {
            (StatusCode::NOT_FOUND, h, String::new())
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(answer);
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

fn within(d: Option<Duration>, lo: u64, hi: u64) -> bool {
    d.is_some_and(|d| d >= Duration::from_secs(lo) && d <= Duration::from_secs(hi))
}

#[tokio::test]
async fn rate_limits_server_errors_and_timeouts_from_a_stub() {
    let port = stub().await;
    let who = subject("frank", "frank@acme.test");
    let c = |p: &str| {
        Scim::new(
            "stub",
            &format!("http://127.0.0.1:{port}/{p}/v2"),
            SecretString::from(TOKEN.to_owned()),
            100,
            Duration::from_secs(1),
        )
        .unwrap()
    };
    match c("seconds").find_account(&who).await {
        Err(ConnectorError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)))
        }
        other => panic!("{other:?}"),
    }
    match c("date").create_account(&who).await {
        Err(ConnectorError::RateLimited { retry_after }) => {
            assert!(within(retry_after, 28, 30), "{retry_after:?}")
        }
        other => panic!("{other:?}"),
    }
    match c("okta").grant(&who, "x").await {
        Err(ConnectorError::RateLimited { retry_after }) => {
            assert!(within(retry_after, 43, 45), "{retry_after:?}")
        }
        other => panic!("{other:?}"),
    }
    match c("down").find_account(&who).await {
        Err(ConnectorError::Transient(m)) => assert!(m.contains("HTTP 503"), "{m}"),
        other => panic!("{other:?}"),
    }
    match c("broken").find_account(&who).await {
        Err(ConnectorError::Transient(m)) => assert!(m.contains("HTTP 500: boom"), "{m}"),
        other => panic!("{other:?}"),
    }
    let t = std::time::Instant::now();
    match c("slow").find_account(&who).await {
        Err(ConnectorError::Transient(m)) => assert!(m.contains("timed out"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(4));
    assert!(
        ConnectorError::RateLimited { retry_after: None }.is_retryable()
            && ConnectorError::Transient(String::new()).is_retryable()
    );
}

#[tokio::test]
async fn a_wrong_token_is_unauthorised() {
    let base = ScimServer::shared().tenant("auth");
    let c = Scim::new(
        "bad",
        &base,
        SecretString::from("not-the-token".to_owned()),
        100,
        Duration::from_secs(5),
    )
    .unwrap();
    match c.test_connection().await {
        Err(ConnectorError::Unauthorized(m)) => assert!(m.contains("HTTP 401"), "{m}"),
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------------------------- end to end

pub fn scim_org(base: &str, extra_people: usize) -> String {
    let mut s = format!(
        r#"
[organization]
name = "Scimco"
it_admins = ["ivy"]

[[person]]
handle = "ivy"
name = "Ivy Admin"
email = "ivy@scimco.test"
role = "staff"

[[person]]
handle = "bob"
name = "Bob Boss"
email = "bob@scimco.test"
role = "staff"

[[person]]
handle = "alice"
name = "Alice Kim"
email = "Alice.Kim@scimco.test"
role = "staff"
manager = "bob"

[[role]]
name = "staff"
apps = []

[[app]]
name = "figma"
connector = "design"
entitlement = "Figma Editors"
approvals = ["manager"]

[[app]]
name = "miro"
connector = "design"
approvals = []

[[connector]]
name = "design"
kind = "scim"
base_url = "{base}"
token_env = "QM_TEST_SCIM_TOKEN"
timeout = "2s"
max_concurrency = 2
"#
    );
    for i in 0..extra_people {
        s.push_str(&format!(
            "\n[[person]]\nhandle = \"p{i}\"\nname = \"Person {i}\"\nemail = \"p{i}@scimco.test\"\nrole = \"staff\"\n"
        ));
    }
    s
}

pub fn config_with_token(text: &str, token: &str) -> quartermaster::config::Config {
    let token = token.to_owned();
    quartermaster::config::parse(text, std::path::Path::new("."), &move |k| {
        (k == "QM_TEST_SCIM_TOKEN").then(|| token.clone())
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn request_and_approval_provision_the_user_and_membership_in_scim() {
    let base = ScimServer::shared().tenant("e2e");
    let peer = Peer::of(&base);
    let mut bot = support::Bot::with_config(config_with_token(&scim_org(&base, 0), TOKEN)).await;
    bot.run("alice: /request app:figma reason:\"mock-ups\"")
        .await;
    assert!(peer.users().is_empty(), "nothing before approval");
    bot.run("bob: :click Approve").await;
    let users = peer.users_named("alice.kim@scimco.test");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["externalId"], "alice");
    assert_eq!(users[0]["active"], true);
    let id = users[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(peer.members("Figma Editors"), vec![id.clone()]);
    assert!(
        bot.texts_to("alice")
            .iter()
            .any(|t| t.contains("Figma") || t.contains("figma")),
        "{:?}",
        bot.texts_to("alice")
    );
    assert!(
        bot.audit_actions()
            .await
            .contains(&"grant.provisioned".to_owned())
    );
    // Revoking takes the membership away again; the account stays.
    bot.run("alice: /revoke app:figma").await;
    assert!(peer.members("Figma Editors").is_empty());
    assert_eq!(peer.users_named("alice.kim@scimco.test").len(), 1);
    assert!(matches!(
        bot.store.verify_audit().await.unwrap(),
        quartermaster::store::VerifyReport::Ok { .. }
    ));
}

//! Drift through the console on the directory connector (a real database, changed behind
//! Quartermaster's back): unrecorded access found and revoked, missing access re-provisioned,
//! orphan and ambiguous accounts, Ignore and Service account, Adopt, auto-revoke only on the
//! second run, nothing from in-flight work, and no absence concluded from a partial listing.
#![allow(clippy::unwrap_used)]

use quartermaster::core::drift::Listing;
use quartermaster::core::model::{ConnectorName, FindingState, Handle};
use quartermaster::core::ports::{
    Change, ConnectorError, DriftRecords, Grants, Listed, NewAction, ReqRef, UnitOfWork,
};
use quartermaster::core::service::OnDrift;
use testkit::Bot;

const DIR: &str = "directory";

async fn members(bot: &Bot, who: &str) -> Vec<String> {
    bot.store.dir_memberships(DIR, who).await.unwrap()
}

async fn findings(bot: &Bot) -> Vec<quartermaster::core::model::Finding> {
    bot.store
        .live_findings(&ConnectorName::parse(DIR).unwrap())
        .await
        .unwrap()
}

/// The example organisation, its directory connector reconciling under `on_drift`.
async fn bot(on_drift: &str) -> Bot {
    bot_with(&format!("on_drift = \"{on_drift}\"")).await
}

/// The example organisation with `line` added to its directory connector.
async fn bot_with(line: &str) -> Bot {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/acme.toml"))
        .unwrap();
    let text = text.replacen(
        "kind = \"directory\"",
        &format!("kind = \"directory\"\n{line}"),
        1,
    );
    Bot::from_toml(&text).await
}

#[tokio::test]
async fn unrecorded_access_is_found_and_revoked_and_the_peer_shows_it_gone() {
    let mut bot = bot("report").await;
    bot.store
        .dir_create_account(DIR, "alice", "alice@acme.test", "Alice Kim")
        .await
        .unwrap();
    bot.store
        .dir_add_member(DIR, "alice", "wordpress")
        .await
        .unwrap();
    // Only IT reconciles; an unknown connector gets "did you mean".
    bot.run("alice: /drift").await;
    assert_eq!(bot.last_to("alice").text, "/drift is for IT admins only.");
    bot.run("dana: /drift connector:directry").await;
    assert!(
        bot.last_to("dana")
            .text
            .contains("did you mean `directory`"),
        "{}",
        bot.last_to("dana").text
    );
    bot.run("dana: /drift connector:directory").await;
    let texts = bot.texts_to("dana");
    assert!(
        texts.iter().any(|t| t.starts_with("🔎 Drift on directory")),
        "{texts:?}"
    );
    let f = bot.last_to("dana");
    assert!(
        f.text.contains("Unrecorded access") && f.text.contains("Alice Kim is in wordpress"),
        "{f:?}"
    );
    assert_eq!(f.buttons, ["Adopt", "Revoke", "Ignore", "Service account"]);
    // Mia (IT too) got the same digest.
    assert!(
        bot.texts_to("mia")
            .iter()
            .any(|t| t.contains("Unrecorded access"))
    );
    bot.run("dana: :click Revoke").await;
    assert!(
        members(&bot, "alice").await.is_empty(),
        "an independent read shows it gone"
    );
    let edited = bot.last_to("mia");
    assert!(
        edited.text.contains("revoke queued by dana") && edited.buttons.is_empty(),
        "{edited:?}"
    );
    let actions = bot.audit_actions().await;
    assert!(
        actions.contains(&"drift.found".to_owned())
            && actions.contains(&"drift.resolved".to_owned())
    );
    // The next run finds nothing.
    bot.run("dana: /drift connector:directory").await;
    assert!(
        findings(&bot).await.is_empty(),
        "{:?}",
        findings(&bot).await
    );
}

#[tokio::test]
async fn a_connector_that_cannot_list_says_so() {
    let mut bot = bot("report").await;
    bot.run("dana: /drift connector:manual").await;
    let t = bot.last_to("dana").text;
    assert!(
        t.contains("Cannot be read: members of adobe") && t.contains("nothing is concluded"),
        "{t}"
    );
}

#[tokio::test]
async fn missing_access_is_re_provisioned() {
    let mut bot = bot("report").await;
    bot.run("alice: /request app:notion").await;
    assert_eq!(members(&bot, "alice").await, ["notion"]);
    bot.store
        .dir_remove_member(DIR, "alice", "notion")
        .await
        .unwrap();
    bot.run("dana: /drift connector:directory").await;
    let f = bot.last_to("dana");
    assert!(f.text.contains("Missing access"), "{f:?}");
    assert_eq!(f.buttons, ["Re-provision", "Ignore"]);
    bot.run("dana: :click Re-provision").await;
    assert_eq!(members(&bot, "alice").await, ["notion"]);
}

#[tokio::test]
async fn orphan_and_ambiguous_accounts_and_ignore_and_service_account() {
    let mut bot = bot("report").await;
    bot.store
        .dir_create_account(DIR, "ghost", "ghost@elsewhere.test", "Ghost")
        .await
        .unwrap();
    bot.store
        .dir_create_account(DIR, "alice", "alice@acme.test", "Alice Kim")
        .await
        .unwrap();
    bot.store
        .dir_create_account(DIR, "alice2", "alice@acme.test", "Alice Kim")
        .await
        .unwrap();
    bot.run("dana: /drift").await;
    let all = findings(&bot).await;
    let classes: Vec<&str> = all.iter().map(|f| f.class.as_str()).collect();
    assert!(
        classes.contains(&"orphan") && classes.contains(&"ambiguous"),
        "{all:?}"
    );
    let orphan = all.iter().find(|f| f.class.as_str() == "orphan").unwrap();
    assert_eq!(orphan.account, "ghost");
    // Service account needs an owner; Ignore needs a reason.
    bot.run(&format!(
        "dana: :click \"Service account\" #{}",
        seq_of(&bot, "dana", orphan.id.0)
    ))
    .await;
    assert_eq!(bot.last_to("dana").kind, "form");
    bot.run("dana: :submit owner:erin").await;
    assert!(
        bot.last_to("dana")
            .text
            .contains("service account, owned by erin"),
        "{}",
        bot.last_to("dana").text
    );
    let amb = all
        .iter()
        .find(|f| f.class.as_str() == "ambiguous")
        .unwrap();
    bot.run(&format!(
        "dana: :click Ignore #{} reason:\"known duplicate, being merged\"",
        seq_of(&bot, "dana", amb.id.0)
    ))
    .await;
    assert!(
        bot.last_to("dana").text.contains("ignored for 30 days"),
        "{}",
        bot.last_to("dana").text
    );
    // The next run reports neither, and keeps them as decided.
    let before = bot.texts_to("dana").len();
    bot.run("dana: /drift").await;
    let after = &bot.texts_to("dana")[before..];
    assert!(
        after
            .iter()
            .all(|t| !t.contains("Orphan account") && !t.contains("Ambiguous")),
        "{after:?}"
    );
    let states: Vec<FindingState> = findings(&bot).await.iter().map(|f| f.state).collect();
    assert!(states.contains(&FindingState::Service) && states.contains(&FindingState::Ignored));
}

/// The transcript number of the newest message to `who` about finding `id`.
fn seq_of(bot: &Bot, who: &str, id: i64) -> u64 {
    bot.transcript()
        .into_iter()
        .rev()
        .find(|m| m.to.as_deref() == Some(who) && m.text.starts_with(&format!("Finding #{id} ")))
        .unwrap()
        .seq
}

#[tokio::test]
async fn adopt_records_a_grant() {
    let mut bot = bot("report").await;
    bot.store
        .dir_create_account(DIR, "alice", "alice@acme.test", "Alice Kim")
        .await
        .unwrap();
    bot.store
        .dir_add_member(DIR, "alice", "wordpress")
        .await
        .unwrap();
    bot.run("dana: /drift").await;
    bot.run("dana: :click Adopt").await;
    assert_eq!(bot.last_to("dana").kind, "form");
    bot.run("dana: :submit until:30d reason:\"approved by email, ticket 12\"")
        .await;
    let g = bot
        .store
        .grants_of(&Handle::parse("alice").unwrap())
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.app.as_str() == "wordpress")
        .unwrap();
    assert!(g.expires_at.is_some());
    bot.run("dana: /drift").await;
    assert!(
        findings(&bot).await.is_empty(),
        "adopted access is no longer drift"
    );
}

#[tokio::test]
async fn on_drift_revoke_acts_only_on_the_second_run() {
    let mut bot = bot("revoke").await;
    bot.store
        .dir_create_account(DIR, "frank", "frank@acme.test", "Frank Li")
        .await
        .unwrap();
    bot.store
        .dir_add_member(DIR, "frank", "figma")
        .await
        .unwrap();
    bot.run("dana: /drift").await;
    assert_eq!(
        members(&bot, "frank").await,
        ["figma"],
        "one run is not enough"
    );
    bot.run("dana: /drift").await;
    assert!(
        members(&bot, "frank").await.is_empty(),
        "revoked on the second run"
    );
    assert!(
        bot.texts_to("dana")
            .iter()
            .any(|t| t.contains("Revoke queued automatically (seen twice): 1"))
    );
}

#[tokio::test]
async fn in_flight_work_is_never_drift_and_a_partial_listing_proves_no_absence() {
    let bot = bot("report").await;
    let dir = ConnectorName::parse(DIR).unwrap();
    let alice = Handle::parse("alice").unwrap();
    let wp = quartermaster::core::model::AppName::parse("wordpress").unwrap();
    // A grant being provisioned (its action queued, not run): the member is not drift.
    bot.store
        .commit(Change {
            new_actions: vec![NewAction {
                connector: dir.clone(),
                op: quartermaster::core::model::ActionOp::Grant,
                person: alice.clone(),
                app: Some(wp.clone()),
                entitlement: Some("wordpress".into()),
                grant: None,
                request: ReqRef::None,
                at: testkit::t0(),
            }],
            ..Change::default()
        })
        .await
        .unwrap();
    let member = Listed {
        id: "alice".into(),
        login: Some("alice".into()),
        emails: vec!["alice@acme.test".into()],
        active: Some(true),
    };
    let listing = Listing {
        connector: dir.clone(),
        accounts: Ok(Some(vec![member.clone()])),
        members: vec![("wordpress".into(), Ok(vec![member.clone()]))],
    };
    let r = bot
        .service
        .record_reconcile(&listing, OnDrift::Report)
        .await
        .unwrap();
    assert!(r.open.is_empty(), "{:?}", r.open);
    // Someone who holds notion by the records, but whose listing of notion failed half-way:
    // no "missing" finding, and nothing found before is settled by it.
    let mut bot = bot;
    bot.run("frank: /request app:notion").await;
    let listing = Listing {
        connector: dir.clone(),
        accounts: Ok(Some(Vec::new())),
        members: vec![(
            "notion".into(),
            Err(ConnectorError::Transient(
                "the peer stopped answering after page 3".into(),
            )),
        )],
    };
    let r = bot
        .service
        .record_reconcile(&listing, OnDrift::Revoke)
        .await
        .unwrap();
    assert!(
        r.open.iter().all(|f| f.class.as_str() != "missing"),
        "{:?}",
        r.open
    );
    assert_eq!(r.unread.len(), 1);
    assert!(
        bot.texts_to("dana")
            .iter()
            .any(|t| t.contains("Cannot be read: members of notion"))
    );
}

#[tokio::test]
async fn one_run_per_connector_at_a_time() {
    let mut bot = bot("report").await;
    bot.store
        .dir_create_account(DIR, "ghost", "ghost@elsewhere.test", "Ghost")
        .await
        .unwrap();
    // Another instance holds the directory's reconcile lease.
    let held = bot
        .store
        .take_lease(
            "reconcile:directory",
            "another-instance",
            testkit::t0(),
            std::time::Duration::from_secs(600),
        )
        .await
        .unwrap();
    assert!(held);
    bot.run("dana: /drift connector:directory").await;
    assert!(
        findings(&bot).await.is_empty(),
        "no second run while the first holds the lease"
    );
    bot.store
        .drop_lease("reconcile:directory", "another-instance")
        .await
        .unwrap();
    bot.run("dana: /drift connector:directory").await;
    assert_eq!(findings(&bot).await.len(), 1);
}

#[tokio::test]
async fn reconcile_every_runs_by_itself() {
    let mut bot = bot_with("reconcile_every = \"1h\"").await;
    bot.run("erin: /access").await;
    let runs = bot.store.reconcile_runs().await.unwrap();
    assert_eq!(runs.len(), 1, "the first run is due at once: {runs:?}");
    bot.store
        .dir_create_account(DIR, "ghost", "ghost@elsewhere.test", "Ghost")
        .await
        .unwrap();
    bot.run(":advance 30m").await;
    assert!(findings(&bot).await.is_empty(), "not due yet");
    bot.run(":advance 31m").await;
    assert_eq!(findings(&bot).await.len(), 1);
    assert!(
        bot.texts_to("dana")
            .iter()
            .any(|t| t.contains("Orphan account"))
    );
}

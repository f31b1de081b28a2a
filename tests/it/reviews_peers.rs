//! Access reviews on real peers (scim2-server, SCIMMY and slapd), each changed and read back
//! behind Quartermaster's back (plain HTTP, LDAP as the administrator): the launch re-reads
//! the peer (a member added there is an unrecorded item), Revoke removes on the peer, and the
//! review completes only once the removals are seen gone; a removal that cannot be carried
//! out keeps the review open for IT with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use quartermaster::core::model::{ItemState, ReviewId, ReviewState};
use quartermaster::core::ports::ReviewRecords;
use quartermaster::core::render::review_report;
use testkit::Bot;
use testkit::ldap::Slapd;
use testkit::proxy::Proxy;
use testkit::scim::ScimServer;
use testkit::scimmy::Scimmy;

use super::drift_peers::{Tenant, bot};
use super::drift_peers_ldap as ldap;

async fn items(bot: &Bot) -> Vec<quartermaster::core::model::ReviewItem> {
    bot.store.review_items(ReviewId(1)).await.unwrap()
}

async fn state(bot: &Bot) -> ReviewState {
    bot.store.review(ReviewId(1)).await.unwrap().unwrap().state
}

/// Alice holds Figma (provisioned on the peer); Frank is put into the group on the peer by
/// hand. The review finds both, Revoke removes both there, and it completes once the
/// removals are seen gone.
async fn reviewed_and_removed_on_the_peer(t: &Tenant, mut bot: Bot) {
    let l = t.label;
    bot.run("alice: /request app:figma reason:\"mock-ups\"")
        .await;
    let alice = t.user_id("alice@acme.test");
    let frank = t.add_user("frank@acme.test", "frank@acme.test");
    t.patch_member(&frank, true);
    bot.run("dana: /review start scope:app:figma").await;
    let snap = bot
        .store
        .review(ReviewId(1))
        .await
        .unwrap()
        .unwrap()
        .snapshot
        .unwrap();
    assert_eq!((snap.grants, snap.unrecorded), (1, 1), "{l}: {snap:?}");
    assert_eq!(snap.reads[0].1, "read", "{l}");
    let its = items(&bot).await;
    let seen: Vec<(&str, &str)> = its
        .iter()
        .map(|i| (i.person.as_str(), i.seen.as_str()))
        .collect();
    assert!(seen.contains(&("alice", "present")), "{l}: {seen:?}");
    assert!(
        seen.contains(&("frank", "present (unrecorded)")),
        "{l}: {seen:?}"
    );
    // Dana (the manager of both) revokes both, with a reason each.
    for who in ["Alice Kim", "Frank Li"] {
        let page = bot
            .transcript()
            .into_iter()
            .find(|m| m.to.as_deref() == Some("dana") && m.text.contains(who))
            .unwrap();
        bot.run(&format!("dana: :click Revoke #{}", page.seq)).await;
        bot.run("dana: :submit reason:\"not on the design team\"")
            .await;
    }
    assert!(t.members().is_empty(), "{l}: both gone on the peer");
    assert_eq!(state(&bot).await, ReviewState::Open, "{l}: not yet re-read");
    bot.run(":advance 1m").await;
    let its = items(&bot).await;
    assert!(
        its.iter().all(|i| i.state == ItemState::Revoked),
        "{l}: {its:?}"
    );
    assert_eq!(state(&bot).await, ReviewState::Complete, "{l}");
    let rep = bot
        .service
        .review_report(ReviewId(1), "dana")
        .await
        .unwrap()
        .unwrap();
    let md = review_report::markdown(&rep);
    assert_eq!(md.matches("verified: action").count(), 2, "{l}: {md}");
    assert!(md.contains("unrecorded account"), "{l}: {md}");
    let _ = alice;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_server_review_removes_on_the_peer_and_completes_on_the_re_read() {
    let base = ScimServer::shared().tenant("review");
    let t = Tenant::scim2(base.clone());
    t.ensure_group();
    reviewed_and_removed_on_the_peer(&t, bot(&base, "report").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scimmy_review_removes_on_the_peer_and_completes_on_the_re_read() {
    let base = Scimmy::shared("spec").tenant("review");
    let t = Tenant::scimmy(base.clone());
    t.ensure_group();
    reviewed_and_removed_on_the_peer(&t, bot(&base, "report").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slapd_review_removes_on_the_peer_and_completes_on_the_re_read() {
    let s = Slapd::start().await;
    let mut bot = ldap::bot(&s, &s.url).await;
    bot.run("alice: /request app:wiki reason:runbooks").await;
    let frank = ldap::add_person(&s, "frank", "Frank Li", "frank@acme.test").await;
    ldap::modify_member(&s, &frank, true).await;
    bot.run("dana: /review start scope:connector:corp-ldap")
        .await;
    let its = items(&bot).await;
    assert_eq!(its.len(), 2, "{its:?}");
    assert!(
        its.iter()
            .any(|i| i.account.is_some() && i.person.as_str() == "frank")
    );
    // Keep on Alice's access; Revoke on Frank's unrecorded membership.
    for (who, click) in [("Alice Kim", "Keep"), ("Frank Li", "Revoke")] {
        let page = bot
            .transcript()
            .into_iter()
            .find(|m| m.to.as_deref() == Some("dana") && m.text.contains(who))
            .unwrap();
        bot.run(&format!("dana: :click {click} #{}", page.seq))
            .await;
    }
    bot.run("dana: :submit reason:\"no wiki for finance\"")
        .await;
    assert_eq!(ldap::members(&s).await, [ldap::user_dn("alice")]);
    bot.run(":advance 1m").await;
    assert_eq!(state(&bot).await, ReviewState::Complete);
}

/// A removal that cannot be carried out (the peer dies as the removal reaches it): the item
/// is not revoked, the review stays open, and IT is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_that_cannot_be_verified_keeps_the_review_open_for_it() {
    let server = ScimServer::start();
    let (port, path) = (server.port, server.tenant_path("gone"));
    let direct = format!("http://127.0.0.1:{port}{path}");
    let proxy = Proxy::start(port).await;
    let t = Tenant::scim2(direct);
    t.ensure_group();
    let mut bot = bot(&proxy.url(&path), "report").await;
    bot.run("alice: /request app:figma reason:\"mock-ups\"")
        .await;
    bot.run("dana: /review start scope:app:figma").await;
    let peer = Arc::new(Mutex::new(Some(server)));
    let p = peer.clone();
    proxy.set_hook(Some(Box::new(move |m: &str, _path: &str| {
        if m == "PATCH" || m == "DELETE" {
            drop(p.lock().unwrap().take());
        }
    })));
    bot.run("dana: :click Revoke\ndana: :submit reason:\"left the team\"")
        .await;
    // The removal is retried with backoff until it fails for good.
    for _ in 0..12 {
        bot.run(":advance 15m").await;
    }
    let it = &items(&bot).await[0];
    assert_eq!(it.state, ItemState::Unverified, "{it:?}");
    assert!(it.removal.is_some(), "{it:?}");
    assert_eq!(state(&bot).await, ReviewState::Open);
    assert!(
        bot.texts_to("dana")
            .iter()
            .any(|t| t.contains("could not be verified") && t.contains("stays open")),
        "{:?}",
        bot.texts_to("dana")
    );
    let rep = bot
        .service
        .review_report(ReviewId(1), "dana")
        .await
        .unwrap()
        .unwrap();
    assert!(
        review_report::markdown(&rep).contains("unverified: action"),
        "{:?}",
        rep.items
    );
}

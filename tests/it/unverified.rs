//! Never report a removal that was not seen: a removal or re-read the connector could not
//! verify is told as such (to the person, to IT with a Retry, in the offboarding report and
//! the audit trail), never as "removed" or "✔"; offboarding covers grants an earlier removal
//! left behind. The built-in `directory` connector does the work; its answers are altered at
//! the connector port (testkit/src/tamper.rs) the way a proxy alters a peer's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as support;

use quartermaster::core::model::{ActionOp, GrantState, Handle};
use quartermaster::core::ports::{ConnectorError, Grants};
use support::Bot;

async fn memberships(bot: &Bot, who: &str) -> Vec<String> {
    bot.store.dir_memberships("directory", who).await.unwrap()
}

fn any_to(bot: &Bot, who: &str, needle: &str) -> bool {
    bot.texts_to(who).iter().any(|t| t.contains(needle))
}

/// The state of `who`'s grant of `app` among those not yet revoked (None: none left).
async fn grant_state(bot: &Bot, who: &str, app: &str) -> Option<GrantState> {
    bot.store
        .grants_of(&Handle::parse(who).unwrap())
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.app.as_str() == app)
        .map(|g| g.state)
}

async fn alice_with_figma(bot: &mut Bot) {
    bot.run(
        r#"alice: /request app:figma reason:"mock-ups"
bob: :click Approve
carol: :click Approve"#,
    )
    .await;
    assert_eq!(memberships(bot, "alice").await, ["figma"]);
}

/// The newest offboarding report (new or edited) IT's Dana received.
fn last_report(bot: &Bot) -> String {
    bot.texts_to("dana")
        .into_iter()
        .rev()
        .find(|t| t.starts_with("Offboarding report for"))
        .expect("a report")
}

fn ignored_filter() -> ConnectorError {
    ConnectorError::Unverifiable("the peer ignored the membership filter".into())
}

#[tokio::test]
async fn an_unverified_revoke_is_not_told_as_removed_and_its_retry_removes_it() {
    let (mut bot, switch) = Bot::example_tampered().await;
    alice_with_figma(&mut bot).await;

    switch.set(ActionOp::Revoke, false, ignored_filter());
    bot.run("alice: /revoke app:figma").await;
    assert!(
        !any_to(&bot, "alice", "access has been removed"),
        "{:?}",
        bot.texts_to("alice")
    );
    let told = bot.last_to("alice").text;
    assert!(
        told.contains("could not be verified") && told.contains("you may still have it"),
        "{told}"
    );
    let it = bot.last_to("dana");
    assert_eq!(it.buttons, ["Retry"]);
    assert!(
        it.text.contains("could not be verified")
            && it
                .text
                .contains("could not verify: the peer ignored the membership filter")
            && it.text.contains("not reported as done"),
        "{}",
        it.text
    );
    // Not retried blindly like a transient error: one attempt, then IT.
    let audit = bot.audit().await;
    assert!(!audit.iter().any(|r| r.action == "action.retrying"));
    assert!(!audit.iter().any(|r| r.action == "grant.revoked"));
    let row = audit
        .iter()
        .find(|r| r.action == "revoke.unverified")
        .expect("a revoke.unverified row");
    assert_eq!(row.outcome, "unverified");
    assert!(row.detail.contains("could not verify"), "{}", row.detail);
    // The grant is not "revoked" on an answer nobody could check.
    assert_eq!(
        grant_state(&bot, "alice", "figma").await,
        Some(GrantState::Revoking)
    );
    assert_eq!(memberships(&bot, "alice").await, ["figma"]);
    bot.run("alice: /access").await;
    let access = bot.last_to("alice").text;
    assert!(
        access.contains("Figma (removal not verified: IT can retry)"),
        "{access}"
    );
    bot.run("alice: /revoke app:figma").await;
    let again = bot.last_to("alice").text;
    assert!(
        again.contains("The removal of Figma was not seen to finish (could not verify:"),
        "{again}"
    );

    // The connector can be read again; IT's Retry removes it, and now Alice is told.
    switch.clear();
    bot.run("dana: :click Retry").await;
    assert_eq!(memberships(&bot, "alice").await, Vec::<String>::new());
    assert_eq!(grant_state(&bot, "alice", "figma").await, None);
    assert_eq!(
        bot.last_to("alice").text,
        "Your Figma access has been removed."
    );
    let audit = bot.audit().await;
    let row = audit
        .iter()
        .find(|r| r.action == "grant.revoked")
        .expect("a grant.revoked row");
    assert!(row.detail.contains("verified gone"), "{}", row.detail);
}

#[tokio::test]
async fn offboarding_removes_a_grant_an_earlier_failed_removal_left_revoking() {
    let (mut bot, switch) = Bot::example_tampered().await;
    alice_with_figma(&mut bot).await;
    switch.set(
        ActionOp::Revoke,
        false,
        ConnectorError::Permanent("HTTP 501: remove by path filter not supported".into()),
    );
    bot.run("alice: /revoke app:figma").await;
    assert!(any_to(&bot, "alice", "Removing your Figma access failed"));
    assert_eq!(
        grant_state(&bot, "alice", "figma").await,
        Some(GrantState::Revoking)
    );
    switch.clear();

    bot.run("dana: /offboard user:alice").await;
    let plan = bot.last_to("dana").text;
    assert!(
        plan.contains(
            "Figma (connector directory, entitlement figma) — an earlier removal was not seen to finish"
        ),
        "{plan}"
    );
    bot.run("dana: :click Confirm").await;
    assert_eq!(memberships(&bot, "alice").await, Vec::<String>::new());
    assert_eq!(grant_state(&bot, "alice", "figma").await, None);
    let report = bot.last_to("dana").text;
    assert!(
        report.contains("- Figma (connector directory, entitlement figma): removed ✔"),
        "{report}"
    );
    assert!(
        report.contains("re-read of connector directory: nothing left ✔"),
        "{report}"
    );
    assert!(report.contains("Everything is removed"), "{report}");
}

#[tokio::test]
async fn an_offboarding_whose_removal_cannot_be_verified_stays_open_until_retry_succeeds() {
    let (mut bot, switch) = Bot::example_tampered().await;
    alice_with_figma(&mut bot).await;
    switch.set(ActionOp::Revoke, false, ignored_filter());
    bot.run("dana: /offboard user:alice\ndana: :click Confirm")
        .await;
    let report = bot
        .texts_to("dana")
        .into_iter()
        .rev()
        .find(|t| t.starts_with("Offboarding report for Alice Kim"))
        .expect("a report");
    assert!(
        report.contains(
            "- Figma (connector directory, entitlement figma): ? could not verify: the peer ignored the membership filter — not reported as removed"
        ),
        "{report}"
    );
    // The re-read sees the membership its failed removal left: never ✔.
    assert!(
        report.contains("re-read of connector directory: ✖ still present: figma"),
        "{report}"
    );
    assert!(!report.contains("Everything is removed"), "{report}");
    assert!(
        report.contains("Not everything is verified gone: 1 could not be verified"),
        "{report}"
    );
    assert!(any_to(&bot, "mia", "Offboarding report for Alice Kim"));
    let audit = bot.audit().await;
    let row = audit
        .iter()
        .find(|r| r.action == "offboarding.reported")
        .unwrap();
    assert_eq!(row.outcome, "incomplete");
    assert!(
        row.detail.contains("1 could not be verified"),
        "{}",
        row.detail
    );

    // IT fixes the cause and retries: the report is completed, truthfully, once.
    switch.clear();
    let retry = bot
        .transcript()
        .into_iter()
        .rev()
        .find(|m| m.to.as_deref() == Some("dana") && m.buttons == ["Retry"])
        .expect("IT has a Retry");
    assert!(
        retry.text.contains("revoke Figma for Alice Kim"),
        "{}",
        retry.text
    );
    bot.run("dana: :click Retry").await;
    assert_eq!(memberships(&bot, "alice").await, Vec::<String>::new());
    let last = bot.last_to("dana").text;
    assert!(
        last.starts_with("Offboarding report for Alice Kim") && last.contains(", updated at "),
        "{last}"
    );
    assert!(
        last.contains("- Figma (connector directory, entitlement figma): removed ✔"),
        "{last}"
    );
    assert!(last.contains("Everything is removed"), "{last}");
    let reported: Vec<_> = bot
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "offboarding.reported")
        .collect();
    assert_eq!(reported.len(), 2, "{reported:?}");
    assert_eq!(reported[1].outcome, "ok");
    // Another settled action does not send it again.
    bot.run(":advance 1h").await;
    let finals: Vec<_> = bot
        .transcript()
        .into_iter()
        .filter(|m| {
            m.to.as_deref() == Some("dana")
                && m.text.contains("updated at")
                && m.text.contains("Everything is removed")
        })
        .map(|m| m.kind)
        .collect();
    // The open report is edited to the truth, and the final one is sent once.
    assert_eq!(finals, ["edit", "new"]);
}

#[tokio::test]
async fn a_re_read_that_cannot_be_verified_is_reported_so_never_nothing_left() {
    let (mut bot, switch) = Bot::example_tampered().await;
    alice_with_figma(&mut bot).await;
    switch.set(
        ActionOp::Verify,
        false,
        ConnectorError::Unverifiable("the listing was cut short; two pages disagreed".into()),
    );
    bot.run("dana: /offboard user:alice\ndana: :click Confirm")
        .await;
    let report = bot.last_to("dana").text;
    assert!(
        report.starts_with("Offboarding report for Alice Kim"),
        "{report}"
    );
    assert!(
        report.contains(
            "re-read of connector directory: ? could not verify: the listing was cut short; two pages disagreed — not reported as checked"
        ),
        "{report}"
    );
    assert!(!report.contains("nothing left ✔"), "{report}");
    assert!(!report.contains("Everything is removed"), "{report}");
    let audit = bot.audit().await;
    let row = audit
        .iter()
        .find(|r| r.action == "offboarding.verified" && r.outcome == "unverified")
        .expect("an unverified re-read in the audit");
    assert!(
        row.detail.contains("connector directory: could not verify"),
        "{}",
        row.detail
    );
    assert_eq!(
        audit
            .iter()
            .find(|r| r.action == "offboarding.reported")
            .unwrap()
            .outcome,
        "incomplete"
    );

    // Retried once the listing can be trusted: the re-read runs and the report completes.
    switch.clear();
    bot.run("dana: :click Retry").await;
    let last = bot.last_to("dana").text;
    assert!(
        last.contains("re-read of connector directory: nothing left ✔"),
        "{last}"
    );
    assert!(last.contains("Everything is removed"), "{last}");
}

#[tokio::test]
async fn an_expiry_whose_removal_cannot_be_verified_does_not_say_removed() {
    let (mut bot, switch) = Bot::example_tampered().await;
    bot.run(
        r#"alice: /request app:figma reason:"mock-ups" duration:30d
bob: :click Approve
carol: :click Approve"#,
    )
    .await;
    switch.set(ActionOp::Revoke, false, ignored_filter());
    bot.run(":advance 31d").await;
    assert!(any_to(&bot, "alice", "has ended and is being removed"));
    assert!(!any_to(&bot, "alice", "access has been removed"));
    assert!(
        bot.last_to("alice")
            .text
            .contains("The removal of your Figma access could not be verified"),
        "{}",
        bot.last_to("alice").text
    );
    assert_eq!(memberships(&bot, "alice").await, ["figma"]);
    assert_eq!(bot.last_to("mia").buttons, ["Retry"]);
    switch.clear();
    bot.run("mia: :click Retry").await;
    assert_eq!(memberships(&bot, "alice").await, Vec::<String>::new());
    assert_eq!(
        bot.last_to("alice").text,
        "Your Figma access has been removed."
    );
}

#[tokio::test]
async fn offboarding_removes_a_failed_set_up_and_its_retry_cannot_give_it_back() {
    let (mut bot, switch) = Bot::example_tampered().await;
    // The peer applied the grant, but its answer was lost: the set-up failed for good.
    switch.set(
        ActionOp::Grant,
        true,
        ConnectorError::Permanent("HTTP 500 after the change was made".into()),
    );
    bot.run(
        r#"alice: /request app:figma reason:"mock-ups"
bob: :click Approve
carol: :click Approve"#,
    )
    .await;
    switch.clear();
    assert!(any_to(&bot, "alice", "Setting up Figma failed"));
    assert_eq!(memberships(&bot, "alice").await, ["figma"]);

    bot.run("dana: /offboard user:alice").await;
    let plan = bot.last_to("dana").text;
    assert!(
        plan.contains("Figma (connector directory, entitlement figma) — its set-up failed"),
        "{plan}"
    );
    bot.run("dana: :click Confirm").await;
    assert_eq!(memberships(&bot, "alice").await, Vec::<String>::new());
    let report = bot.last_to("dana").text;
    assert!(
        report.contains("- Figma (connector directory, entitlement figma): removed ✔"),
        "{report}"
    );
    assert!(report.contains("Everything is removed"), "{report}");
    // The old Retry of the failed set-up would give Figma back to someone who has left.
    let retry = bot
        .transcript()
        .into_iter()
        .find(|m| m.to.as_deref() == Some("dana") && m.buttons == ["Retry"])
        .expect("the failed set-up's Retry");
    bot.run(&format!("dana: :click Retry #{}", retry.seq)).await;
    assert!(
        bot.last_to("dana").text.contains("nothing was retried"),
        "{}",
        bot.last_to("dana").text
    );
    assert_eq!(memberships(&bot, "alice").await, Vec::<String>::new());
}

#[tokio::test]
async fn a_report_waiting_for_a_manual_task_stays_open_until_it_is_done() {
    let mut bot = Bot::example().await;
    bot.run(
        r#"alice: /request app:adobe reason:"brochures"
bob: :click Approve
dana: :click Done"#,
    )
    .await;
    assert!(any_to(&bot, "alice", "You now have Adobe Creative Cloud"));
    bot.run("dana: /offboard user:alice\ndana: :click Confirm")
        .await;
    let report = bot.last_to("dana").text;
    assert!(
        report.starts_with("Offboarding report for Alice Kim"),
        "{report}"
    );
    assert!(
        report.contains(
            "- Adobe Creative Cloud (connector manual, entitlement adobe): ⚠ waiting for IT"
        ),
        "{report}"
    );
    assert!(!report.contains("Everything is removed"), "{report}");
    assert!(
        report.contains("- manual account: ⚠ waiting for IT"),
        "{report}"
    );
    assert!(report.contains("2 waiting for IT"), "{report}");

    // The first Done edits the report to what is now true; the second completes it.
    bot.run("dana: :click Done").await;
    assert!(!last_report(&bot).contains("Everything is removed"));
    bot.run("dana: :click Done").await;
    let last = last_report(&bot);
    assert!(
        last.starts_with("Offboarding report for Alice Kim") && last.contains(", updated at "),
        "{last}"
    );
    assert!(
        last.contains("- Adobe Creative Cloud (connector manual, entitlement adobe): removed ✔"),
        "{last}"
    );
    assert!(last.contains("- manual account: disabled ✔"), "{last}");
    assert!(last.contains("Everything is removed"), "{last}");
    let audit = bot.audit().await;
    let revoked = audit
        .iter()
        .find(|r| r.action == "grant.revoked" && r.app.as_deref() == Some("adobe"))
        .unwrap();
    assert!(
        revoked.detail.contains("removed by IT (no read possible)"),
        "{}",
        revoked.detail
    );
    assert_eq!(
        audit
            .iter()
            .filter(|r| r.action == "offboarding.reported")
            .map(|r| r.outcome.as_str())
            .collect::<Vec<_>>(),
        ["incomplete", "ok"]
    );
}

//! Access reviews through the console on a real database (the directory connector is the
//! peer, changed behind Quartermaster's back where a test needs it): campaigns over an app
//! and a role, Keep / Revoke / Keep all, a reason where needed, no self-review, reviewers
//! who leave, reminders, escalation, the default at due, a grant revoked meanwhile, an
//! unrecorded account found at launch, ten simultaneous clicks, overlapping reviews, the
//! scheduled campaign, bad input, and the report.
#![allow(clippy::unwrap_used)]

use quartermaster::core::model::{GrantState, Handle, ItemState, ReviewId, ReviewState};
use quartermaster::core::ports::{Grants, ReviewRecords};
use quartermaster::core::render::review_report;
use testkit::Bot;

const DIR: &str = "directory";

/// The example organisation with `extra` appended (and `privileged` on prod-db).
pub async fn bot(extra: &str) -> Bot {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/acme.toml"))
        .unwrap();
    let text = text.replacen(
        "name = \"prod-db\"",
        "name = \"prod-db\"\nprivileged = true",
        1,
    );
    Bot::from_toml(&format!("{text}\n{extra}")).await
}

/// Alice (engineer, manager Bob) holds Jira, GitHub and Notion; Frank (engineer, manager
/// Bob) holds Jira; Carol (designer, manager Grace) holds Notion.
pub async fn with_access(bot: &mut Bot) {
    bot.run(
        "alice: /request app:jira reason:work\n\
         alice: /request app:github reason:code\n\
         alice: /request app:notion\n\
         frank: /request app:jira reason:work\n\
         carol: /request app:notion",
    )
    .await;
}

async fn items(bot: &Bot, id: i64) -> Vec<quartermaster::core::model::ReviewItem> {
    bot.store.review_items(ReviewId(id)).await.unwrap()
}

async fn review(bot: &Bot, id: i64) -> quartermaster::core::model::Review {
    bot.store.review(ReviewId(id)).await.unwrap().unwrap()
}

/// The newest edit of a message `who` received.
fn last_edit_to(bot: &Bot, who: &str) -> quartermaster::chat::console::Shown {
    bot.transcript()
        .into_iter()
        .rev()
        .find(|m| m.kind == "edit" && m.to.as_deref() == Some(who))
        .unwrap()
}

fn count(actions: &[String], name: &str) -> usize {
    actions.iter().filter(|a| *a == name).count()
}

#[tokio::test]
async fn a_role_campaign_is_decided_in_dms_and_completes_only_once_removals_are_seen_gone() {
    let mut bot = bot("").await;
    with_access(&mut bot).await;
    bot.run("dana: /review start scope:role:engineer due:7d")
        .await;
    let launched = bot.last_to("dana").text;
    assert!(
        launched.contains("Review #1 of role:engineer launched: 4 accesses"),
        "{launched}"
    );
    let r = review(&bot, 1).await;
    assert_eq!(r.state, ReviewState::Open);
    let snap = r.snapshot.unwrap();
    assert_eq!((snap.grants, snap.unrecorded), (4, 0));
    assert_eq!(snap.digest.len(), 64);
    // Every connector a role's people may hold access on is re-read; one that cannot list
    // says so instead of claiming a read.
    let read = |c: &str| {
        snap.reads
            .iter()
            .find(|(n, _)| n.as_str() == c)
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(read(DIR), "read");
    assert!(read("manual").contains("cannot list"), "{:?}", snap.reads);
    // The digest is in the audit chain.
    let rows = bot.audit().await;
    let row = rows.iter().find(|r| r.action == "review.launched").unwrap();
    assert!(row.detail.contains(&snap.digest), "{}", row.detail);
    assert_eq!(row.actor, "dana");
    // Bob gets one message per person he reviews, one row per app.
    let dms: Vec<_> = bot
        .transcript()
        .into_iter()
        .filter(|m| m.to.as_deref() == Some("bob") && m.text.contains("Access review #1"))
        .collect();
    assert_eq!(dms.len(), 2, "{dms:?}");
    let alice = dms.iter().find(|m| m.text.contains("Alice Kim")).unwrap();
    assert_eq!(
        alice.buttons,
        [
            "Keep · GitHub",
            "Revoke · GitHub",
            "Keep · Jira",
            "Revoke · Jira",
            "Keep · Notion",
            "Revoke · Notion",
            "Keep all"
        ]
    );
    assert!(alice.text.contains("seen on the target"), "{}", alice.text);
    let frank = dms.iter().find(|m| m.text.contains("Frank Li")).unwrap();
    assert_eq!(frank.buttons, ["Keep", "Revoke"]);
    // A prefix shared by several buttons of one message is ambiguous; Revoke asks why and
    // decides nothing yet.
    assert!(bot.try_line("bob: :click \"Keep ·\"").await.is_err());
    bot.run("bob: :click \"Revoke · GitHub\"").await;
    assert_eq!(bot.last_to("bob").kind, "form");
    assert_eq!(
        items(&bot, 1)
            .await
            .iter()
            .filter(|i| i.state == ItemState::Open)
            .count(),
        4
    );
    bot.run("bob: :submit reason:\"no longer on the platform team\"")
        .await;
    // Keep all keeps what is left on Alice's page.
    bot.run("bob: :click \"Keep all\"").await;
    assert_eq!(bot.last_to("bob").text, "Kept (2 accesses).");
    let edited = last_edit_to(&bot, "bob");
    assert!(edited.buttons.is_empty(), "{edited:?}");
    assert!(
        edited
            .text
            .contains("Jira** — no end · seen on the target → kept (decided by bob)"),
        "{}",
        edited.text
    );
    bot.run("bob: :click Keep").await;
    let its = items(&bot, 1).await;
    let by_state = |s| its.iter().filter(|i| i.state == s).count();
    assert_eq!(
        (by_state(ItemState::Kept), by_state(ItemState::Revoking)),
        (3, 1)
    );
    // The removal ran on the directory; the review completes only once the tick sees it.
    assert_eq!(
        bot.store.dir_memberships(DIR, "alice").await.unwrap(),
        ["jira", "notion"]
    );
    assert_eq!(review(&bot, 1).await.state, ReviewState::Open);
    bot.run(":advance 1m").await;
    assert_eq!(review(&bot, 1).await.state, ReviewState::Complete);
    let done = bot.last_to("dana").text;
    assert!(
        done.contains("Review #1 of role:engineer is complete")
            && done.contains("1 revoked (verified)"),
        "{done}"
    );
    let actions = bot.audit_actions().await;
    assert_eq!(
        count(&actions, "review.decided"),
        5,
        "4 decisions and the verified removal"
    );
    assert_eq!(count(&actions, "review.completed"), 1);
    // The report says who decided what, the removal's proof, and access now.
    let rep = bot
        .service
        .review_report(ReviewId(1), "dana")
        .await
        .unwrap()
        .unwrap();
    let md = review_report::markdown(&rep);
    assert!(md.contains("no longer on the platform team"), "{md}");
    assert!(md.contains("verified: action"), "{md}");
    assert!(
        md.contains("Every reviewer of record decided their items."),
        "{md}"
    );
    let csv = review_report::csv(&rep).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.contains(",github,") && l.contains(",revoked,") && l.ends_with(",revoked")),
        "{csv}"
    );
    let json = review_report::json(&rep);
    assert_eq!(json["items"].as_array().unwrap().len(), 4);
    assert_eq!(json["snapshot"]["sha256"], snap.digest);
    assert_eq!(count(&bot.audit_actions().await, "review.reported"), 1);
}

#[tokio::test]
async fn bad_input_gets_a_clear_answer_and_changes_nothing() {
    let mut bot = bot("").await;
    with_access(&mut bot).await;
    bot.run("alice: /review start scope:all").await;
    assert_eq!(bot.last_to("alice").text, "/review is for IT admins only.");
    let refused = bot.audit().await;
    assert!(
        refused
            .iter()
            .any(|r| r.action == "command.refused" && r.actor == "alice")
    );
    for (line, want) in [
        ("/review start scope:app:jiraa", "did you mean `jira`"),
        ("/review start scope:role:enginer", "did you mean"),
        (
            "/review start scope:department:Enginering",
            "did you mean `Engineering`",
        ),
        (
            "/review start scope:connector:directry",
            "did you mean `directory`",
        ),
        ("/review start scope:figma", "is not a scope"),
        (
            "/review start scope:app:jira reviewer:nobodyhere",
            "nobody with the handle",
        ),
        (
            "/review start scope:app:jira default:maybe",
            "is not one of the choices",
        ),
        (
            "/review start scope:app:prod-db",
            "no access is recorded in app:prod-db",
        ),
        ("/review cancel id:9", "There is no review #9"),
    ] {
        bot.run(&format!("dana: {line}")).await;
        let got = bot.last_to("dana").text;
        assert!(got.contains(want), "{line}: {got}");
    }
    assert!(
        bot.store
            .reviews_in(&[ReviewState::Open, ReviewState::Snapshot])
            .await
            .unwrap()
            .is_empty()
    );
    bot.run("dana: /review status").await;
    assert_eq!(bot.last_to("dana").text, "No review is open.");
}

#[tokio::test]
async fn only_the_items_reviewers_decide_nobody_reviews_themselves_and_strangers_learn_nothing() {
    let mut bot = bot("").await;
    bot.run("dana: /request app:notion\nmia: /request app:notion\nalice: /request app:notion")
        .await;
    // Reviewer dana: she never reviews her own access (it goes to the other IT admin).
    bot.run("dana: /review start scope:app:notion reviewer:dana")
        .await;
    let its = items(&bot, 1).await;
    let of = |h: &str| its.iter().find(|i| i.person.as_str() == h).unwrap().clone();
    assert_eq!(of("dana").reviewers, [Handle::parse("mia").unwrap()]);
    assert_eq!(of("alice").reviewers, [Handle::parse("dana").unwrap()]);
    // Alice clicks Keep on her own item: refused, audited, nothing revealed.
    let mine = format!("v1:rev:{}:keep", of("alice").id);
    for (who, id) in [
        ("alice", mine.clone()),
        ("bob", mine.clone()),
        ("bob", "v1:rev:999:keep".into()),
    ] {
        let r = bot.service.click(&bot.caller(who).await, &id, None).await;
        let s = format!("{r:?}");
        assert!(s.contains("This button is not for you."), "{who}: {s}");
        assert!(!s.contains("Notion") && !s.contains("Alice"), "{s}");
    }
    assert_eq!(
        items(&bot, 1)
            .await
            .iter()
            .filter(|i| i.state == ItemState::Open)
            .count(),
        3
    );
    let refusals = bot
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "command.refused")
        .count();
    assert_eq!(refusals, 3);
    bot.run("dana: :click Keep").await;
    assert!(
        bot.last_to("dana").text.starts_with("Kept"),
        "{}",
        bot.last_to("dana").text
    );
}

#[tokio::test]
async fn ten_simultaneous_clicks_make_one_decision() {
    let mut bot = bot("").await;
    with_access(&mut bot).await;
    bot.run("dana: /review start scope:app:jira").await;
    let item = items(&bot, 1)
        .await
        .into_iter()
        .find(|i| i.person.as_str() == "frank")
        .unwrap();
    let id = format!("v1:rev:{}:keep", item.id);
    let bob = bot.caller("bob").await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (s, b, id) = (bot.service.clone(), bob.clone(), id.clone());
        tasks.push(tokio::spawn(async move { s.click(&b, &id, None).await }));
    }
    let mut kept = 0;
    for t in tasks {
        let r = format!("{:?}", t.await.unwrap());
        if r.contains("Kept (1 access)") {
            kept += 1;
        } else {
            assert!(r.contains("decided already"), "{r}");
        }
    }
    assert_eq!(kept, 1);
    let decided = bot
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "review.decided")
        .count();
    assert_eq!(decided, 1);
}

#[tokio::test]
async fn privileged_apps_need_a_reason_on_keep_and_overlapping_reviews_share_the_item() {
    let mut bot = bot("").await;
    bot.run("alice: /request app:prod-db reason:INC-1 duration:8h\nbob: :click Approve\ndana: :click Approve")
        .await;
    let g = bot
        .store
        .grants_of(&Handle::parse("alice").unwrap())
        .await
        .unwrap();
    assert_eq!(g[0].state, GrantState::Active);
    bot.run("dana: /review start scope:app:prod-db").await;
    bot.run("mia: /review start scope:role:engineer").await;
    let (a, b) = (items(&bot, 1).await, items(&bot, 2).await);
    assert_eq!(a.len(), 1);
    assert_eq!(a, b, "one item referenced by both reviews");
    // Cancelling one leaves the item open for the other.
    bot.run("mia: /review cancel id:2").await;
    assert!(
        bot.last_to("mia")
            .text
            .contains("0 undecided item(s) closed"),
        "{}",
        bot.last_to("mia").text
    );
    assert_eq!(items(&bot, 1).await[0].state, ItemState::Open);
    bot.run("bob: :click Keep").await;
    assert_eq!(bot.last_to("bob").kind, "form");
    bot.run("bob: :submit reason:\"on call this quarter\"")
        .await;
    assert_eq!(items(&bot, 2).await[0].state, ItemState::Kept);
    bot.run(":advance 1m").await;
    assert_eq!(review(&bot, 1).await.state, ReviewState::Complete);
    assert_eq!(review(&bot, 2).await.state, ReviewState::Cancelled);
}

#[tokio::test]
async fn reminders_escalation_a_reviewer_who_left_and_the_default_at_due() {
    let mut bot = bot("").await;
    with_access(&mut bot).await;
    bot.run("dana: /review start scope:app:notion due:4d default:revoke")
        .await;
    bot.run("dana: /review start scope:app:github due:10d")
        .await;
    let reminders = |bot: &Bot, who: &str| {
        bot.texts_to(who)
            .iter()
            .filter(|t| t.starts_with("⏰"))
            .count()
    };
    bot.run(":advance 23h").await;
    assert_eq!(reminders(&bot, "bob"), 0);
    bot.run(":advance 2h").await;
    assert_eq!(reminders(&bot, "bob"), 1, "one digest for both reviews");
    assert!(
        bot.texts_to("bob")
            .iter()
            .any(|t| t.starts_with("⏰ 2 accesses still wait"))
    );
    bot.run(":advance 12h").await;
    assert_eq!(reminders(&bot, "bob"), 1, "at most one a day");
    // Carol's Notion is reviewed by Grace; Grace leaves: her manager Erin takes over.
    bot.run("dana: /offboard user:grace reason:left\ndana: :click Confirm")
        .await;
    bot.run(":advance 1h").await;
    let carol = items(&bot, 1)
        .await
        .into_iter()
        .find(|i| i.person.as_str() == "carol")
        .unwrap();
    assert!(
        carol.reviewers.contains(&Handle::parse("erin").unwrap()),
        "{carol:?}"
    );
    assert!(
        bot.texts_to("erin")
            .iter()
            .any(|t| t.contains("Access review #1 — Carol Diaz"))
    );
    // After escalate_after (half of due), Bob's manager Erin gets Alice's items too.
    bot.run(":advance 1d").await;
    let alice = items(&bot, 1)
        .await
        .into_iter()
        .find(|i| i.person.as_str() == "alice")
        .unwrap();
    assert!(
        alice.escalated && alice.reviewers.contains(&Handle::parse("erin").unwrap()),
        "{alice:?}"
    );
    assert!(
        bot.texts_to("erin")
            .iter()
            .any(|t| t.contains("your report has not decided yet"))
    );
    // At due, the default (revoke) applies to what nobody decided; the removal is verified.
    bot.run(":advance 2d").await;
    assert_eq!(review(&bot, 1).await.state, ReviewState::Complete);
    assert!(
        bot.store
            .dir_memberships(DIR, "alice")
            .await
            .unwrap()
            .iter()
            .all(|m| m != "notion")
    );
    let rep = bot
        .service
        .review_report(ReviewId(1), "dana")
        .await
        .unwrap()
        .unwrap();
    assert!(
        rep.never_answered.iter().any(|(h, _)| h.as_str() == "bob"),
        "{:?}",
        rep.never_answered
    );
    // Review 2's default is escalate: at due, IT gets the items.
    bot.run(":advance 6d").await;
    let gh = items(&bot, 2).await;
    assert!(
        gh[0].reviewers.contains(&Handle::parse("dana").unwrap()),
        "{gh:?}"
    );
    assert!(
        bot.texts_to("dana")
            .iter()
            .any(|t| t.contains("nobody decided by the due date — IT decides now"))
    );
}

#[tokio::test]
async fn a_grant_revoked_meanwhile_closes_its_item_and_an_unrecorded_account_is_an_item() {
    let mut bot = bot("").await;
    with_access(&mut bot).await;
    bot.store
        .dir_add_member(DIR, "frank", "github")
        .await
        .unwrap();
    bot.run("dana: /review start scope:connector:directory")
        .await;
    let snap = review(&bot, 1).await.snapshot.unwrap();
    assert_eq!(snap.unrecorded, 1);
    let its = items(&bot, 1).await;
    let unrecorded = its.iter().find(|i| i.grant.is_none()).unwrap();
    assert_eq!(
        (unrecorded.person.as_str(), unrecorded.app.as_str()),
        ("frank", "github")
    );
    assert!(
        bot.texts_to("bob")
            .iter()
            .any(|t| t.contains("found with no grant (unrecorded)"))
    );
    // Carol's Notion is revoked by IT meanwhile: the item closes with that reason.
    bot.run("dana: /revoke app:notion user:carol reason:\"team change\"")
        .await;
    bot.run(":advance 1m").await;
    let carol = items(&bot, 1)
        .await
        .into_iter()
        .find(|i| i.person.as_str() == "carol")
        .unwrap();
    assert_eq!(carol.state, ItemState::Closed);
    assert_eq!(carol.decided.unwrap().2, "the grant was revoked meanwhile");
    // Keep on the unrecorded account adopts it as a grant.
    let id = format!("v1:rev:{}:keep", unrecorded.id);
    let r = bot.service.click(&bot.caller("bob").await, &id, None).await;
    assert!(format!("{r:?}").contains("Kept"), "{r:?}");
    let frank = bot
        .store
        .grants_of(&Handle::parse("frank").unwrap())
        .await
        .unwrap();
    assert!(
        frank
            .iter()
            .any(|g| g.app.as_str() == "github" && g.state == GrantState::Active)
    );
}

#[tokio::test]
async fn a_scheduled_campaign_runs_from_its_start_and_every_period_and_can_be_cancelled() {
    let mut bot = bot("[[review]]\nscope = \"app:jira\"\nreviewer = \"owner\"\nevery = \"30d\"\nstarts = \"2026-11-26\"\n").await;
    with_access(&mut bot).await;
    bot.run(":advance 1h").await;
    assert!(
        bot.store.review(ReviewId(1)).await.unwrap().is_none(),
        "not before its start"
    );
    bot.run(":advance 1d").await;
    let r = review(&bot, 1).await;
    assert_eq!(
        (r.state, r.launched_by.as_str(), r.campaign.as_deref()),
        (ReviewState::Open, "system", Some("app:jira"))
    );
    // Bob owns Jira: Frank's and Alice's items are his.
    assert_eq!(items(&bot, 1).await.len(), 2);
    bot.run("dana: /review cancel id:1").await;
    assert!(
        bot.last_to("dana")
            .text
            .contains("Review #1 cancelled: 2 undecided"),
        "{}",
        bot.last_to("dana").text
    );
    assert!(bot.last_to("bob").buttons.is_empty());
    bot.run(":advance 29d").await;
    assert!(bot.store.review(ReviewId(2)).await.unwrap().is_none());
    bot.run(":advance 2d").await;
    assert_eq!(review(&bot, 2).await.state, ReviewState::Open);
}

/// With `step_up_for = ["review"]`, a reviewer's decision needs a code from their app; the
/// decision row says it was stepped up; a wrong code decides nothing.
#[tokio::test]
async fn review_decisions_need_step_up_when_configured() {
    use super::step_up::{KEY, code, config, enrol};
    let text = config("").replacen("[workflow]", "[workflow]\nstep_up_for = [\"review\"]", 1);
    let mut bot = Bot::from_toml_env(&text, &|k| (k == "QM_MFA_KEY").then(|| KEY.to_owned())).await;
    let s = enrol(&mut bot, "bob").await;
    bot.run("frank: /request app:jira reason:work").await;
    bot.run("dana: /review start scope:app:jira").await;
    bot.run("bob: :click Keep").await;
    assert_eq!(bot.last_to("bob").kind, "form", "{:?}", bot.last_to("bob"));
    bot.run("bob: :submit code:999999").await;
    assert!(
        bot.last_to("bob").text.contains("not right"),
        "{}",
        bot.last_to("bob").text
    );
    assert_eq!(items(&bot, 1).await[0].state, ItemState::Open);
    bot.run(&format!("bob: :click Keep code:{}", code(&bot, &s, 0)))
        .await;
    assert_eq!(items(&bot, 1).await[0].state, ItemState::Kept);
    let rows = bot.audit().await;
    let decided = rows.iter().find(|r| r.action == "review.decided").unwrap();
    assert!(decided.detail.contains("step-up: totp"), "{decided:?}");
}

/// A person with more accesses than one message holds gets more than one page; each page's
/// Keep all keeps only its own.
#[tokio::test]
async fn more_accesses_than_a_message_holds_are_paged() {
    let mut bot = bot("").await;
    bot.run(
        "alice: /request app:jira reason:a\nalice: /request app:github reason:b\n\
         alice: /request app:postman reason:c\nalice: /request app:notion\n\
         alice: /request app:figma reason:d\nbob: :click Approve\ncarol: :click Approve",
    )
    .await;
    bot.run("mia: /review start scope:department:Engineering")
        .await;
    let pages: Vec<_> = bot
        .transcript()
        .into_iter()
        .filter(|m| {
            m.kind == "new" && m.to.as_deref() == Some("bob") && m.text.contains("Access review #1")
        })
        .collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert_eq!(
        pages[0].buttons.len(),
        9,
        "4 apps and Keep all: {:?}",
        pages[0].buttons
    );
    bot.run(&format!("bob: :click \"Keep all\" #{}", pages[0].seq))
        .await;
    let its = items(&bot, 1).await;
    assert_eq!(
        its.iter().filter(|i| i.state == ItemState::Kept).count(),
        4,
        "{its:?}"
    );
    assert_eq!(its.iter().filter(|i| i.state == ItemState::Open).count(), 1);
}

/// At the due date, `default = "keep"` keeps the undecided grants, and never adopts an
/// unrecorded account: its item closes saying so, and the review completes.
#[tokio::test]
async fn default_keep_keeps_grants_but_never_adopts_an_unrecorded_account() {
    let mut bot = bot("").await;
    with_access(&mut bot).await;
    bot.store
        .dir_add_member(DIR, "frank", "github")
        .await
        .unwrap();
    bot.run("dana: /review start scope:app:github due:2d default:keep")
        .await;
    bot.run(":advance 3d").await;
    let its = items(&bot, 1).await;
    let alice = its.iter().find(|i| i.person.as_str() == "alice").unwrap();
    let frank = its.iter().find(|i| i.person.as_str() == "frank").unwrap();
    assert_eq!(alice.state, ItemState::Kept);
    assert_eq!(frank.state, ItemState::Closed);
    assert!(
        frank
            .decided
            .as_ref()
            .unwrap()
            .2
            .contains("not adopted by default")
    );
    assert_eq!(review(&bot, 1).await.state, ReviewState::Complete);
    assert!(
        bot.store
            .grants_of(&Handle::parse("frank").unwrap())
            .await
            .unwrap()
            .iter()
            .all(|g| g.app.as_str() != "github"),
        "no grant was made up"
    );
}

/// A grant that expires while under review closes its item with that reason.
#[tokio::test]
async fn a_grant_that_expires_meanwhile_closes_its_item() {
    let mut bot = bot("").await;
    bot.run("alice: /request app:prod-db reason:INC-1 duration:8h\nbob: :click Approve\ndana: :click Approve")
        .await;
    bot.run("mia: /review start scope:app:prod-db").await;
    bot.run(":advance 9h").await;
    let it = items(&bot, 1).await.remove(0);
    assert_eq!(it.state, ItemState::Closed);
    assert_eq!(it.decided.unwrap().2, "the grant expired meanwhile");
    assert_eq!(review(&bot, 1).await.state, ReviewState::Complete);
    let page = last_edit_to(&bot, "bob");
    assert!(
        page.buttons.is_empty()
            && page
                .text
                .contains("closed (decided by system: the grant expired meanwhile)"),
        "{page:?}"
    );
}

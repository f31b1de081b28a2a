//! Findings of the outside security review (issue 17), each proven through the service the
//! adapters call: `/onboard` never rewrites an existing person, absurd durations are refused
//! and stored ones cannot panic a click, one Done completes a manual task once and one expiry
//! is done once (both raced, on SQLite and on PostgreSQL), handles are never only dots, a plan
//! about oneself needs another IT admin, and a forged click tells an outsider nothing.
#![allow(clippy::unwrap_used)]

use testkit as support;

use std::sync::Arc;

use chrono::TimeDelta;
use quartermaster::chat::console::{Console, ConsoleChat};
use quartermaster::config::{self, Config};
use quartermaster::core::model::{
    AppName, ApprovalRule, GrantState, Handle, PersonStatus, RequestKind, RoleName, Span, Step,
};
use quartermaster::core::ports::{
    ActionQueue, Change, Grants, ManualClock, NewGrant, NewGrantSource, NewRequest, People,
    Requests, UnitOfWork,
};
use quartermaster::core::service::{ClickReply, Reply};
use quartermaster::core::workflow::RequestState;
use quartermaster::wiring;
use support::{Bot, t0};
use testkit::testdb::{Backend, TestDb};

fn reply_text(r: ClickReply) -> String {
    match r {
        ClickReply::Reply(Reply { text, .. }) => text,
        ClickReply::Form(f) => panic!("unexpected form {f:?}"),
    }
}

fn h(s: &str) -> Handle {
    Handle::parse(s).unwrap()
}

/// The bot on the given backend (the support harness picks it from `QM_TEST_DB`; the races
/// here must run on both every time).
async fn bot_on(backend: Backend, config: Config) -> Bot {
    let db = TestDb::create(backend).await;
    let store = wiring::open_store(&config, &db.url).await.unwrap();
    let chat = Arc::new(ConsoleChat::silent());
    let clock = Arc::new(ManualClock::new(t0()));
    let (service, engine) =
        wiring::assemble(&config, store.clone(), chat.clone(), clock.clone()).unwrap();
    let first = config.org.it_admins[0].clone();
    let console = Console::new(service.clone(), engine, chat.clone(), clock.clone(), first);
    Bot {
        console,
        service,
        store,
        chat,
        clock,
        db,
    }
}

/// Runs the test function `$name(backend)` on both backends, as `$name::sqlite` and
/// `$name::postgres`.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await
            }
        }
    };
}

// ------------------------------------------------------------------ item 4

#[tokio::test]
async fn onboard_with_an_existing_persons_email_changes_nobody() {
    let mut bot = Bot::example().await;
    let before = bot.store.person(&h("alice")).await.unwrap().unwrap();
    let rows = bot.audit().await.len();
    bot.run("dana: /onboard email:alice@acme.test name:Someone role:designer")
        .await;
    let t = bot.last_to("dana").text;
    assert!(
        t.contains("Alice Kim (alice, alice@acme.test) is already in Quartermaster")
            && t.contains("/role user:alice role:designer"),
        "{t}"
    );
    // The same with her handle given explicitly.
    bot.run("dana: /onboard email:alice@acme.test name:Someone role:designer handle:alice")
        .await;
    assert!(
        bot.last_to("dana")
            .text
            .contains("is already in Quartermaster")
    );
    let after = bot.store.person(&h("alice")).await.unwrap().unwrap();
    assert_eq!(after, before, "her record is untouched");
    assert!(
        !bot.audit().await[rows..]
            .iter()
            .any(|r| r.action == "person.onboarded"),
        "no onboarding was recorded"
    );
    assert!(bot.store.grants_of(&h("alice")).await.unwrap().is_empty());
}

// ------------------------------------------------------------------ item 5

#[tokio::test]
async fn durations_beyond_the_global_ceiling_are_refused() {
    let mut bot = Bot::example().await;
    // github has no max_duration of its own.
    bot.run("henry: /request app:github reason:repos duration:99999999999999d")
        .await;
    let t = bot.last_to("henry").text;
    assert_eq!(
        t,
        "duration: 99999999999999d is longer than anyone may ask for (at most 365d); nothing was requested."
    );
    bot.run("henry: /request app:github reason:repos duration:366d")
        .await;
    assert!(bot.last_to("henry").text.contains("at most 365d"));
    assert!(bot.store.requests_by(&h("henry")).await.unwrap().is_empty());
    bot.run("henry: /request app:github reason:repos duration:365d")
        .await;
    assert!(
        bot.last_to("henry")
            .text
            .starts_with("Request #1 for GitHub"),
        "{}",
        bot.last_to("henry").text
    );

    // `[workflow] max_duration` sets the ceiling.
    let text = config::EXAMPLE_TOML.replace("[workflow]", "[workflow]\nmax_duration = \"30d\"");
    let mut bot = Bot::from_toml(&text).await;
    assert_eq!(
        bot.service.org().workflow.max_duration,
        Span::parse("30d").unwrap()
    );
    bot.run("henry: /request app:github reason:repos duration:31d")
        .await;
    assert!(bot.last_to("henry").text.contains("(at most 30d)"));
    // figma's own cap (90d, also its duration when none is given) is longer than the
    // ceiling: the grant ends after 30 days.
    bot.run("frank: /request app:figma reason:x\nbob: :click Approve\ncarol: :click Approve")
        .await;
    let g = bot.store.grants_of(&h("frank")).await.unwrap();
    let figma = g.iter().find(|g| g.app.as_str() == "figma").unwrap();
    assert_eq!(figma.state, GrantState::Active);
    assert_eq!(figma.expires_at, Some(t0() + TimeDelta::days(30)));
}

#[tokio::test]
async fn a_stored_request_with_an_absurd_duration_can_still_be_decided() {
    let bot = Bot::example().await;
    // As written before the ceiling existed.
    let huge = Span::parse("99999999999999d").unwrap();
    let id = bot
        .store
        .commit(Change {
            new_request: Some(NewRequest {
                requester: h("henry"),
                app: AppName::parse("github").unwrap(),
                reason: Some("repos".into()),
                duration: Some(huge),
                kind: RequestKind::New,
                state: RequestState::Awaiting(0),
                steps: vec![Step {
                    index: 0,
                    rule: ApprovalRule::Manager,
                    approvers: vec![h("ivy")],
                    started_at: Some(t0()),
                    decision: None,
                    reminded: false,
                    escalated: false,
                }],
                grant: None,
                created_at: t0(),
            }),
            ..Change::default()
        })
        .await
        .unwrap()
        .request
        .unwrap();
    let ivy = bot.caller("ivy").await;
    let t = reply_text(
        bot.service
            .click(&ivy, &format!("v1:req:{id}:s0:approve"), None)
            .await,
    );
    assert_eq!(
        t,
        format!("You approved request #{id} (GitHub for Henry Moss).")
    );
    // The engine settles the grant: it ends at the ceiling, not at an overflow.
    let mut bot = bot;
    bot.run(":advance 1m").await;
    let g = bot.store.grants_of(&h("henry")).await.unwrap();
    let github = g.iter().find(|g| g.app.as_str() == "github").unwrap();
    assert_eq!(github.state, GrantState::Active);
    let end = github.expires_at.unwrap();
    assert!(end <= t0() + TimeDelta::days(366), "{end}");
}

// ------------------------------------------------------------------ item 6

both!(thirty_done_clicks_complete_a_manual_task_once);
async fn thirty_done_clicks_complete_a_manual_task_once(b: Backend) {
    let mut bot = bot_on(b, config::load(None).unwrap()).await;
    bot.run("carol: /request app:adobe").await;
    assert_eq!(bot.last_to("dana").buttons, ["Done"]);
    let rows = bot.audit().await.len();
    let dana = bot.caller("dana").await;
    let mia = bot.caller("mia").await;
    let mut tasks = Vec::new();
    for i in 0..30 {
        let service = bot.service.clone();
        let who = if i % 2 == 0 {
            dana.clone()
        } else {
            mia.clone()
        };
        tasks.push(tokio::spawn(async move {
            reply_text(service.click(&who, "v1:act:1:done", None).await)
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let won = answers
        .iter()
        .filter(|a| *a == "Thanks — task #1 is marked done.")
        .count();
    let lost = answers
        .iter()
        .filter(|a| *a == "Task #1 is already done.")
        .count();
    assert_eq!((won, lost), (1, 29), "{answers:#?}");
    let provisioned = bot.audit().await[rows..]
        .iter()
        .filter(|r| r.action == "grant.provisioned")
        .count();
    assert_eq!(provisioned, 1);
    let told = bot
        .texts_to("carol")
        .iter()
        .filter(|t| t.starts_with("✅ You now have Adobe"))
        .count();
    assert_eq!(told, 1);
}

// ------------------------------------------------------------------ item 7

#[tokio::test]
async fn a_handle_of_only_dots_is_refused() {
    let mut bot = Bot::example().await;
    for dots in [".", ".."] {
        bot.run(&format!(
            "dana: /onboard email:x@acme.test name:X role:engineer handle:{dots}"
        ))
        .await;
        let t = bot.last_to("dana").text;
        assert!(t.contains("not only dots"), "{t}");
    }
    // Derived from the email's local part, too.
    bot.run("dana: /onboard email:..@acme.test name:X role:engineer")
        .await;
    assert!(bot.last_to("dana").text.contains("not only dots"));
    assert_eq!(bot.store.people().await.unwrap().len(), 11);
}

// ------------------------------------------------------------------ item 10

#[tokio::test]
async fn an_it_admin_cannot_change_their_own_role_alone() {
    let mut bot = Bot::example().await;
    bot.run("dana: /role user:dana role:engineer").await;
    let t = bot.last_to("dana");
    assert!(
        t.text.contains("Sent to Mia Torres to confirm."),
        "{}",
        t.text
    );
    assert!(t.buttons.is_empty());
    assert_eq!(bot.last_to("mia").buttons, ["Confirm", "Cancel"]);
    // A forged Confirm by dana herself changes nothing.
    let dana = bot.caller("dana").await;
    let r = reply_text(bot.service.click(&dana, "v1:plan:1:confirm", None).await);
    assert_eq!(r, "Plan #1 is about you: another IT admin must confirm it.");
    assert_eq!(
        bot.store.person(&h("dana")).await.unwrap().unwrap().role,
        RoleName::parse("it-admin").unwrap()
    );
    bot.run("mia: :click Confirm").await;
    assert_eq!(
        bot.store.person(&h("dana")).await.unwrap().unwrap().role,
        RoleName::parse("engineer").unwrap()
    );

    // With no other IT admin, it is refused outright.
    let text =
        config::EXAMPLE_TOML.replace("it_admins = [\"dana\", \"mia\"]", "it_admins = [\"dana\"]");
    let mut bot = Bot::from_toml(&text).await;
    bot.run("dana: /role user:dana role:engineer").await;
    assert_eq!(
        bot.last_to("dana").text,
        "There is no other IT admin to confirm this role change; nothing was changed."
    );
}

// ------------------------------------------------------------------ item 11

#[tokio::test]
async fn a_forged_click_tells_an_outsider_nothing() {
    let mut bot = Bot::example().await;
    bot.run(r#"alice: /request app:figma reason:"mock-ups""#)
        .await; // #1: bob, then carol
    bot.run("bob: :click Approve").await;
    let frank = bot.caller("frank").await;
    let on_existing = reply_text(bot.service.click(&frank, "v1:req:1:s1:approve", None).await);
    let on_missing = reply_text(
        bot.service
            .click(&frank, "v1:req:99:s0:approve", None)
            .await,
    );
    assert_eq!(
        on_existing,
        "There is nothing for you to decide on request #1."
    );
    assert_eq!(
        on_missing,
        "There is nothing for you to decide on request #99."
    );
    for step in ["s0", "s5"] {
        let t = reply_text(
            bot.service
                .click(&frank, &format!("v1:req:1:{step}:approve"), None)
                .await,
        );
        assert_eq!(t, "There is nothing for you to decide on request #1.");
    }
    // Someone on the request still hears why.
    let alice = bot.caller("alice").await;
    let t = reply_text(bot.service.click(&alice, "v1:req:1:s1:approve", None).await);
    assert_eq!(t, "You cannot approve or deny your own request.");

    // Plans: the same for an outsider, whether the plan exists or not.
    bot.run("dana: /offboard user:ken").await;
    let on_plan = reply_text(bot.service.click(&frank, "v1:plan:1:confirm", None).await);
    let on_none = reply_text(bot.service.click(&frank, "v1:plan:9:cancel", None).await);
    assert_eq!(
        on_plan,
        "There is nothing for you to confirm or cancel on plan #1."
    );
    assert_eq!(
        on_none,
        "There is nothing for you to confirm or cancel on plan #9."
    );
    bot.run("dana: :click Confirm").await;
    let after = reply_text(bot.service.click(&frank, "v1:plan:1:confirm", None).await);
    assert_eq!(
        after,
        "There is nothing for you to confirm or cancel on plan #1."
    );
    // Every one of them is audited as a refusal.
    let refused = bot
        .audit()
        .await
        .iter()
        .filter(|r| r.action == "command.refused" && r.actor == "frank")
        .count();
    assert_eq!(refused, 7);
}

// ------------------------------------------------------------------ item 15

both!(two_processes_ticking_one_database_expire_each_grant_once);
async fn two_processes_ticking_one_database_expire_each_grant_once(b: Backend) {
    let config = config::load(None).unwrap();
    let bot = bot_on(b, config.clone()).await;
    // 40 time-bound grants that ended an hour ago: 4 people × 10 apps.
    let people = ["alice", "frank", "bob", "carol"];
    let apps = [
        "email",
        "jira",
        "postman",
        "github",
        "prod-db",
        "figma",
        "notion",
        "wordpress",
        "crm",
        "zoho",
    ];
    let mut change = Change::default();
    for p in people {
        for a in apps {
            change.new_grants.push(NewGrant {
                person: h(p),
                app: AppName::parse(a).unwrap(),
                source: NewGrantSource::Birthright,
                state: GrantState::Active,
                granted_at: Some(t0() - TimeDelta::days(2)),
                expires_at: Some(t0() - TimeDelta::hours(1)),
            });
        }
    }
    bot.store.commit(change).await.unwrap();

    // A second process over the same database: its own store, service and chat.
    let store2 = wiring::open_store(&config, &bot.db.url).await.unwrap();
    let chat2 = Arc::new(ConsoleChat::silent());
    let clock2 = Arc::new(ManualClock::new(t0()));
    let (service2, _engine2) = wiring::assemble(&config, store2, chat2.clone(), clock2).unwrap();
    let one = bot.service.clone();
    let (a, b) = tokio::join!(
        tokio::spawn(async move { one.tick().await.unwrap() }),
        tokio::spawn(async move { service2.tick().await.unwrap() }),
    );
    let _ = (a.unwrap(), b.unwrap());

    let rows = bot.audit().await;
    let expired = rows.iter().filter(|r| r.action == "grant.expired").count();
    let revokes = rows
        .iter()
        .filter(|r| r.action == "grant.revoke_requested")
        .count();
    assert_eq!((expired, revokes), (40, 40));
    let told = |chat: &ConsoleChat| {
        chat.transcript()
            .iter()
            .filter(|m| m.text.contains("access has ended"))
            .count()
    };
    assert_eq!(
        told(&bot.chat) + told(&chat2),
        40,
        "each holder is told once per grant"
    );
    let queued = bot.store.queue_depth().await.unwrap();
    assert_eq!(queued, 40, "one revoke action per grant");
    for p in people {
        let p = bot.store.person(&h(p)).await.unwrap().unwrap();
        assert_eq!(p.status, PersonStatus::Active);
    }
}

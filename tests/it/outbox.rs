//! The durable chat outbox against the fake Discord (`testkit/src/discord.rs`) failing on
//! demand: every approval prompt arrives exactly once through 5xx answers and connections
//! dropped before or after the message was made; a 429's `retry_after` is waited out; a DM
//! that keeps failing falls back (naming its recipient) and is audited, or fails audited; a
//! prompt's copy in the approvals channel is retried like any message; a crash between the
//! commit and the send loses nothing.

#![allow(clippy::unwrap_used)]
use testkit::discord as fake;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake::{APP_ID, APPROVALS, Call, FakeDiscord, Fault, GENERAL, Msg};
use quartermaster::config::{self, Config, DiscordConfig, DiscordMode};
use quartermaster::core::ports::{ManualClock, Outbox};
use quartermaster::server::{self, Server};
use quartermaster::store::SqlStore;
use quartermaster::wiring;
use serde_json::{Value, json};
use testkit::testdb::{Backend, TestDb};

const ALICE: (&str, &str) = ("100000000000000004", "alice");
const BOB: (&str, &str) = ("100000000000000003", "bob");
const CAROL: (&str, &str) = ("100000000000000007", "carol");
const DANA: (&str, &str) = ("100000000000000002", "dana");
const MIA: (&str, &str) = ("100000000000000012", "mia");

const WAIT: Duration = Duration::from_secs(20);

fn t0() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

fn config_for(fake: &FakeDiscord, approvals: Option<&str>) -> Config {
    let mut config = config::load(None).unwrap();
    config.discord = Some(DiscordConfig {
        mode: DiscordMode::Interactions,
        application_id: APP_ID.into(),
        public_key: Some(fake.public_key_hex()),
        token: "fake-bot-token".into(),
        api_base: Some(fake.base_url()),
        approvals_channel: approvals.map(str::to_owned),
        guilds: Vec::new(),
    });
    config
}

struct Bot {
    fake: FakeDiscord,
    server: Option<Server>,
    store: SqlStore,
    url: String,
    _db: TestDb,
}

impl Bot {
    async fn start(approvals: Option<&str>) -> Self {
        let fake = FakeDiscord::start().await;
        let config = config_for(&fake, approvals);
        let db = TestDb::create(Backend::from_env()).await;
        let store = wiring::open_store(&config, &db.url).await.unwrap();
        Self::serve(fake, config, store, db).await
    }

    async fn serve(fake: FakeDiscord, config: Config, store: SqlStore, db: TestDb) -> Self {
        let clock = Arc::new(ManualClock::new(t0()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = server::start(&config, store.clone(), clock, listener)
            .await
            .unwrap();
        let url = format!("http://{}", server.addr);
        fake.set_endpoint(format!("{url}/discord/interactions"));
        Self {
            fake,
            server: Some(server),
            store,
            url,
            _db: db,
        }
    }

    /// Short retries and a short time before falling back, so the tests take seconds.
    fn fast(&self, fallback_after: Duration) {
        let s = &self.server.as_ref().unwrap().service;
        let mut p = s.delivery_policy();
        p.retry_base = Duration::from_millis(50);
        p.retry_max = Duration::from_millis(400);
        p.fallback_after = fallback_after;
        s.set_delivery_policy(p);
    }

    async fn say(&self, who: (&str, &str), name: &str, options: Value) -> String {
        let p = self.fake.command(who, name, options);
        let r = self.fake.deliver(&p).await;
        r["data"]["content"].as_str().unwrap_or_default().to_owned()
    }

    async fn request_figma(&self) -> String {
        self.say(
            ALICE,
            "request",
            json!([
                { "name": "app", "type": 3, "value": "figma" },
                { "name": "reason", "type": 3, "value": "mock-ups" },
                { "name": "duration", "type": 3, "value": "30d" },
            ]),
        )
        .await
    }

    fn prompts(&self, user: &str, request: u32) -> Vec<Msg> {
        let head = format!("Access request #{request}:");
        self.fake
            .dms(user)
            .into_iter()
            .filter(|m| m.content.starts_with(&head))
            .collect()
    }

    async fn wait_for(&self, what: &str, mut pred: impl FnMut(&Bot) -> bool) {
        let end = Instant::now() + WAIT;
        while !pred(self) {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every outbox row is settled (sent or failed), as `/metrics` tells.
    async fn outbox_empty(&self) {
        let end = Instant::now() + WAIT;
        loop {
            let m = self.metrics().await;
            if metric(&m, "quartermaster_messages_pending") == 0 {
                return;
            }
            assert!(Instant::now() < end, "the outbox never emptied:\n{m}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }
}

fn metric(text: &str, name: &str) -> i64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

fn creates_in(calls: &[Call], channel: &str) -> Vec<Call> {
    let path = format!("/channels/{channel}/messages");
    calls
        .iter()
        .filter(|c| c.method == "POST" && c.path == path)
        .cloned()
        .collect()
}

/// Fails on the code before the outbox: the first 500 dropped Bob's prompt for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_survives_a_5xx_and_a_dropped_connection_and_arrives_once() {
    let bot = Bot::start(None).await;
    // The first create fails with 500; the second makes the message, but the connection
    // drops before the answer: the bot cannot tell it worked.
    bot.fake
        .fail_next_creates(&[Fault::Status(500), Fault::DropAfterCreate]);
    let t = bot.request_figma().await;
    assert!(t.contains("#1"), "{t}");
    bot.wait_for("Bob's prompt", |b| !b.prompts(BOB.0, 1).is_empty())
        .await;
    // Every try is done: the row is marked sent, and the third create, carrying the same
    // nonce as the one that was made, got that message back instead of a second one.
    bot.outbox_empty().await;
    let m = bot.metrics().await;
    assert_eq!(bot.prompts(BOB.0, 1).len(), 1, "{:#?}", bot.fake.dms(BOB.0));
    let ch = bot.fake.dm_channel(BOB.0);
    let creates = creates_in(&bot.fake.calls(), &ch);
    assert_eq!(creates.len(), 3, "{creates:#?}");
    let nonces: Vec<&Value> = creates.iter().map(|c| &c.body["nonce"]).collect();
    assert!(
        nonces.iter().all(|n| *n == nonces[0]) && nonces[0].is_string(),
        "one nonce for every try: {nonces:?}"
    );
    assert!(creates.iter().all(|c| c.body["enforce_nonce"] == true));
    assert!(
        metric(&m, "quartermaster_messages_retried_total") >= 2,
        "{m}"
    );
    bot.stop().await;
}

/// Prompts through a storm of failures, for both steps: each approver gets exactly one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_prompt_arrives_exactly_once_through_5xx_429_and_drops() {
    let bot = Bot::start(None).await;
    bot.fast(Duration::from_secs(60));
    bot.fake.fail_next_creates(&[
        Fault::Status(502),
        Fault::DropAfterCreate,
        Fault::RateLimit(0.2),
        Fault::DropBefore,
        Fault::Status(503),
        Fault::DropAfterCreate,
    ]);
    bot.request_figma().await;
    bot.wait_for("Bob's prompt", |b| !b.prompts(BOB.0, 1).is_empty())
        .await;
    let prompt = bot.prompts(BOB.0, 1).remove(0);
    bot.fake
        .fail_next_creates(&[Fault::DropAfterCreate, Fault::Status(500)]);
    let r = bot
        .fake
        .deliver(&bot.fake.click(BOB, &prompt, "Approve"))
        .await;
    assert!(
        r["data"]["content"]
            .as_str()
            .is_some_and(|t| t.starts_with("You approved request #1")),
        "{r}"
    );
    bot.wait_for("Carol's prompt", |b| !b.prompts(CAROL.0, 1).is_empty())
        .await;
    bot.wait_for("Bob's prompt to lose its buttons", |b| {
        b.prompts(BOB.0, 1)
            .first()
            .is_some_and(|m| m.buttons().is_empty())
    })
    .await;
    bot.outbox_empty().await;
    assert_eq!(bot.prompts(BOB.0, 1).len(), 1, "{:#?}", bot.fake.dms(BOB.0));
    assert_eq!(
        bot.prompts(CAROL.0, 1).len(),
        1,
        "{:#?}",
        bot.fake.dms(CAROL.0)
    );
    let m = bot.metrics().await;
    assert_eq!(metric(&m, "quartermaster_messages_failed_total"), 0, "{m}");
    assert!(
        metric(&m, "quartermaster_messages_retried_total") >= 6,
        "{m}"
    );
    bot.stop().await;
}

/// A create-message whose answer hangs past the bot's 10 s Discord call timeout (the message
/// was made; the bot cannot tell): the try fails, the retry carries the same nonce, and Bob
/// gets the prompt exactly once. The timeout is not configurable, so this takes ~11 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_whose_create_hangs_past_the_timeout_arrives_once() {
    let bot = Bot::start(None).await;
    bot.fast(Duration::from_secs(60));
    let hang = Duration::from_secs(13);
    bot.fake.fail_next_creates(&[Fault::HangAfterCreate(hang)]);
    let started = Instant::now();
    bot.request_figma().await;
    // The message is made at once; its answer hangs.
    bot.wait_for("Bob's prompt", |b| !b.prompts(BOB.0, 1).is_empty())
        .await;
    bot.wait_for("a second try after the timeout", |b| {
        creates_in(&b.fake.calls(), &b.fake.dm_channel(BOB.0)).len() >= 2
    })
    .await;
    bot.outbox_empty().await;
    let creates = creates_in(&bot.fake.calls(), &bot.fake.dm_channel(BOB.0));
    assert_eq!(creates.len(), 2, "{creates:#?}");
    let waited = creates[1].at - creates[0].at;
    assert!(
        waited >= Duration::from_secs(10) && waited < hang,
        "retried after {waited:?}: at the call timeout, not after the hang"
    );
    assert_eq!(creates[0].body["nonce"], creates[1].body["nonce"]);
    assert_eq!(bot.prompts(BOB.0, 1).len(), 1, "{:#?}", bot.fake.dms(BOB.0));
    let m = bot.metrics().await;
    assert_eq!(metric(&m, "quartermaster_messages_failed_total"), 0, "{m}");
    assert!(started.elapsed() < WAIT, "bounded");
    bot.stop().await;
}

/// A 429's `retry_after` is waited out before the next try, however short the backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_retry_after_is_honoured() {
    let bot = Bot::start(None).await;
    bot.fast(Duration::from_secs(60));
    bot.fake.fail_next_creates(&[Fault::RateLimit(1.2)]);
    bot.request_figma().await;
    bot.wait_for("Bob's prompt", |b| !b.prompts(BOB.0, 1).is_empty())
        .await;
    let ch = bot.fake.dm_channel(BOB.0);
    let creates = creates_in(&bot.fake.calls(), &ch);
    assert_eq!(creates.len(), 2, "{creates:#?}");
    assert_eq!(creates[0].status, 429);
    let waited = creates[1].at - creates[0].at;
    assert!(
        waited >= Duration::from_millis(1200),
        "retried after {waited:?}, before Retry-After (1.2 s)"
    );
    assert_eq!(bot.prompts(BOB.0, 1).len(), 1);
    bot.stop().await;
}

/// A DM that keeps failing goes to the approvals channel after the fallback time, naming
/// its recipient, with its buttons (Bob can still decide from there), and is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_that_keeps_failing_falls_back_to_the_approvals_channel_and_is_audited() {
    let bot = Bot::start(Some(APPROVALS)).await;
    bot.fast(Duration::from_millis(800));
    bot.fake.break_dms(BOB.0);
    bot.request_figma().await;
    bot.fake
        .wait_until("the fallback copy", WAIT, |s| {
            s.messages.values().any(|m| {
                m.channel_id == APPROVALS
                    && m.content
                        .contains("could not deliver this message to Bob Chen")
            })
        })
        .await;
    let copy = bot
        .fake
        .channel(APPROVALS)
        .into_iter()
        .find(|m| m.content.contains("could not deliver"))
        .unwrap();
    assert!(
        copy.content.contains("Access request #1:"),
        "{}",
        copy.content
    );
    assert_eq!(copy.buttons(), ["Approve", "Deny"]);
    assert!(bot.fake.dms(BOB.0).is_empty());
    // Marked sent and audited in one transaction, just after the copy went out.
    let end = Instant::now() + WAIT;
    let fb = loop {
        let rows = bot.store.audit_rows(None).await.unwrap();
        if let Some(r) = rows.into_iter().find(|r| r.action == "message.fallback") {
            break r;
        }
        assert!(Instant::now() < end, "the fallback is not audited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        fb.detail.contains("Bob Chen") && fb.detail.contains("approvals channel"),
        "{}",
        fb.detail
    );
    assert_eq!(fb.subject.as_deref(), Some("bob"));
    // The prompt never reached Bob: no copy says it was sent to him.
    bot.outbox_empty().await;
    let said_sent: Vec<Msg> = bot
        .fake
        .channel(APPROVALS)
        .into_iter()
        .filter(|m| m.content.starts_with("Approval prompt sent to"))
        .collect();
    assert!(said_sent.is_empty(), "{said_sent:#?}");
    // Bob decides from the channel copy; the flow goes on.
    let r = bot
        .fake
        .deliver(&bot.fake.click(BOB, &copy, "Approve"))
        .await;
    assert!(
        r["data"]["content"]
            .as_str()
            .is_some_and(|t| t.starts_with("You approved request #1")),
        "{r}"
    );
    bot.wait_for("Carol's prompt", |b| !b.prompts(CAROL.0, 1).is_empty())
        .await;
    bot.stop().await;
}

/// The approvals channel's copy of a prompt is an outbox row of its own, written with the
/// prompt: a failure is retried, and the channel gets it once, after Bob got his prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_approvals_channel_copy_of_a_prompt_is_retried_and_posted_once() {
    let bot = Bot::start(Some(APPROVALS)).await;
    bot.fast(Duration::from_secs(60));
    bot.fake.fail_next_creates_in(APPROVALS, 2);
    bot.request_figma().await;
    bot.fake
        .wait_until("the copy in the approvals channel", WAIT, |s| {
            s.messages.values().any(|m| {
                m.channel_id == APPROVALS && m.content.starts_with("Approval prompt sent to")
            })
        })
        .await;
    bot.outbox_empty().await;
    let prompt = bot.prompts(BOB.0, 1).remove(0);
    let copies = bot.fake.channel(APPROVALS);
    assert_eq!(copies.len(), 1, "{copies:#?}");
    assert_eq!(
        copies[0].content,
        format!("Approval prompt sent to Bob Chen:\n\n{}", prompt.content)
    );
    assert_eq!(copies[0].buttons(), ["Approve", "Deny"]);
    let calls = bot.fake.calls();
    let creates = creates_in(&calls, APPROVALS);
    let statuses: Vec<u16> = creates.iter().map(|c| c.status).collect();
    assert_eq!(statuses[..2], [500, 500], "{creates:#?}");
    assert_eq!(statuses.len(), 3, "{creates:#?}");
    let dm = creates_in(&calls, &bot.fake.dm_channel(BOB.0));
    assert!(dm[0].at <= creates[0].at, "the copy waits for the prompt");
    let m = bot.metrics().await;
    assert_eq!(metric(&m, "quartermaster_messages_failed_total"), 0, "{m}");
    assert!(
        metric(&m, "quartermaster_messages_retried_total") >= 2,
        "{m}"
    );
    // A decision edits the copy too.
    let r = bot
        .fake
        .deliver(&bot.fake.click(BOB, &prompt, "Approve"))
        .await;
    assert!(
        r["data"]["content"]
            .as_str()
            .is_some_and(|t| t.starts_with("You approved request #1")),
        "{r}"
    );
    bot.wait_for("the copy to lose its buttons", |b| {
        b.fake
            .channel(APPROVALS)
            .iter()
            .any(|m| m.id == copies[0].id && m.buttons().is_empty())
    })
    .await;
    bot.stop().await;
}

/// With no approvals channel and the IT admins unreachable too, the message fails for good:
/// audited as `message.failed` and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_nobody_can_receive_fails_audited_and_counted() {
    let bot = Bot::start(None).await;
    bot.fast(Duration::from_millis(500));
    for u in [BOB.0, DANA.0, MIA.0] {
        bot.fake.break_dms(u);
    }
    bot.request_figma().await;
    let end = Instant::now() + WAIT;
    let failed = loop {
        let rows = bot.store.audit_rows(None).await.unwrap();
        if let Some(r) = rows.into_iter().find(|r| r.action == "message.failed") {
            break r;
        }
        assert!(Instant::now() < end, "no message.failed row");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(failed.subject.as_deref(), Some("bob"));
    assert_eq!(failed.request, Some(1));
    assert!(
        failed.detail.contains("Bob Chen") && failed.detail.contains("500"),
        "{}",
        failed.detail
    );
    let m = bot.metrics().await;
    assert_eq!(metric(&m, "quartermaster_messages_failed_total"), 1, "{m}");
    assert_eq!(metric(&m, "quartermaster_messages_pending"), 0, "{m}");
    bot.stop().await;
}

/// A crash right after the commit that wrote a prompt, before anything was sent: the prompt
/// is in the outbox, and the next start sends it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_commit_and_send_loses_nothing() {
    let fake = FakeDiscord::start().await;
    let config = config_for(&fake, None);
    let db = TestDb::create(Backend::from_env()).await;
    let store = wiring::open_store(&config, &db.url).await.unwrap();
    {
        // The instance that "crashes": it commits the request and its prompt, and dies
        // before its sender runs (here: it never had one).
        let clock = Arc::new(ManualClock::new(t0()));
        let (service, _engine) =
            wiring::assemble(&config, store.clone(), Arc::new(server::LogChat), clock).unwrap();
        service.deliver_in_background();
        let alice = service
            .caller_by_discord_id(ALICE.0)
            .await
            .unwrap()
            .unwrap();
        let r = service
            .command(
                &alice,
                "request",
                vec![
                    ("app".into(), "figma".into()),
                    ("reason".into(), "mock-ups".into()),
                ],
            )
            .await;
        assert!(r.text.contains("#1"), "{}", r.text);
    }
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!(counts.pending, 1, "{counts:?}");
    assert!(fake.calls().is_empty(), "nothing reached Discord yet");
    // The restart sends it.
    let bot = Bot::serve(fake, config, store, db).await;
    bot.wait_for("Bob's prompt after the restart", |b| {
        !b.prompts(BOB.0, 1).is_empty()
    })
    .await;
    bot.outbox_empty().await;
    assert_eq!(bot.prompts(BOB.0, 1).len(), 1);
    bot.stop().await;
}

/// A recipient without a Discord account is not retried for ten minutes: their message goes
/// to the approvals channel at once, naming them (a new hire's welcome, here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_someone_without_discord_goes_to_the_fallback_at_once() {
    let bot = Bot::start(Some(APPROVALS)).await;
    let t = bot
        .say(
            DANA,
            "onboard",
            json!([
                { "name": "email", "type": 3, "value": "zoe@acme.test" },
                { "name": "name", "type": 3, "value": "Zoe Quinn" },
                { "name": "role", "type": 3, "value": "engineer" },
            ]),
        )
        .await;
    assert!(t.starts_with("Zoe Quinn (zoe) created"), "{t}");
    bot.fake
        .wait_until("Zoe's welcome in the approvals channel", WAIT, |s| {
            s.messages.values().any(|m| {
                m.channel_id == APPROVALS
                    && m.content
                        .contains("could not deliver this message to Zoe Quinn")
                    && m.content.contains("Welcome to")
            })
        })
        .await;
    let end = Instant::now() + WAIT;
    let fb = loop {
        let rows = bot.store.audit_rows(None).await.unwrap();
        if let Some(r) = rows
            .into_iter()
            .find(|r| r.action == "message.fallback" && r.subject.as_deref() == Some("zoe"))
        {
            break r;
        }
        assert!(Instant::now() < end, "the fallback is not audited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(fb.detail.contains("no chat account"), "{}", fb.detail);
    bot.stop().await;
}

/// A review's pages against the fake enforcing Discord's rate limits (tightened so the test
/// takes seconds: 2 message creates per second per channel, 2 DM channel opens per second):
/// the adapter reads the buckets' headers and holds a message back until its bucket resets
/// (the outbox sends others meanwhile), so no call goes over a limit, no 429 comes back,
/// and every page reaches its reviewer exactly once — also when held back longer than the
/// time after which a failing message would go to the fallback (being paced is no failure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_pages_keep_within_discords_rate_limits_and_arrive_once() {
    use quartermaster::core::model::{Email, GrantState, Handle, Person, PersonStatus, RoleName};
    use quartermaster::core::ports::{Change, NewGrant, NewGrantSource, People, UnitOfWork};
    let bot = Bot::start(None).await;
    let app = config::load(None)
        .unwrap()
        .org
        .apps
        .into_iter()
        .find(|a| a.connector.as_str() == "directory" && a.entitlement == a.name.as_str())
        .unwrap()
        .name;
    // Twelve holders, four for each of Bob, Carol and Alice (their reviewers).
    let reviewers = [BOB, CAROL, ALICE];
    let people: Vec<Person> = (0..12)
        .map(|i| Person {
            handle: Handle::parse(&format!("holder{i}")).unwrap(),
            name: format!("Holder {i}"),
            email: Email::parse(&format!("holder{i}@acme.test")).unwrap(),
            department: "Bench".into(),
            role: RoleName::parse("copywriter").unwrap(),
            manager: Some(Handle::parse(reviewers[i % 3].1).unwrap()),
            discord_id: Some(format!("5000000000000000{i:02}")),
            status: PersonStatus::Active,
            timezone: None,
        })
        .collect();
    bot.store.seed_people(&people).await.unwrap();
    let grants = people
        .iter()
        .map(|p| NewGrant {
            person: p.handle.clone(),
            app: app.clone(),
            source: NewGrantSource::Birthright,
            state: GrantState::Active,
            granted_at: Some(t0()),
            expires_at: None,
        })
        .collect();
    bot.store
        .commit(Change {
            new_grants: grants,
            ..Change::default()
        })
        .await
        .unwrap();
    let limits = fake::Limits {
        global_per_sec: 50,
        messages: (2, Duration::from_secs(1)),
        dm_channels: (2, Duration::from_secs(1)),
    };
    bot.fake.enforce_rate_limits(limits);
    // A page held back for its bucket's reset (a second) is older than this by then.
    bot.fast(Duration::from_millis(300));
    let scope = format!("app:{app}");
    let said = bot
        .say(
            DANA,
            "review",
            json!([{ "name": "start", "type": 1, "options": [
                { "name": "scope", "type": 3, "value": scope },
                { "name": "reviewer", "type": 3, "value": "manager" },
            ]}]),
        )
        .await;
    assert!(said.contains("12 accesses"), "{said}");
    let pages = |user: &str| -> Vec<String> {
        bot.fake
            .dms(user)
            .into_iter()
            .filter(|m| m.content.contains("Access review #1"))
            .map(|m| m.content)
            .collect()
    };
    let started = Instant::now();
    while reviewers.iter().any(|r| pages(r.0).len() < 4) {
        assert!(started.elapsed() < WAIT, "pages not delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A little longer: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for r in reviewers {
        let mut got = pages(r.0);
        assert_eq!(got.len(), 4, "{}: {got:#?}", r.1);
        got.dedup();
        assert_eq!(got.len(), 4, "each page once");
    }
    assert_eq!(bot.fake.rate_violations(), fake::Violations::default());
    let limited: Vec<Call> = bot
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.status == 429)
        .collect();
    assert!(limited.is_empty(), "{limited:#?}");
    // The buckets were really in play: a reviewer's third page waited for the reset.
    let ch = bot.fake.dm_channel(BOB.0);
    let creates = creates_in(&bot.fake.calls(), &ch);
    assert!(
        creates[2].at - creates[0].at >= Duration::from_millis(900),
        "{creates:#?}"
    );
    let m = bot.metrics().await;
    assert_eq!(metric(&m, "quartermaster_messages_failed_total"), 0, "{m}");
    bot.stop().await;
}

/// The fake's model of Discord's limits refuses what Discord would: a message create over its
/// channel's bucket (429, scope `user`, the wait in the body and `Retry-After`, the bucket's
/// headers), and any call over the global limit (429, `global`), each counted; a channel's
/// bucket is its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fakes_rate_limits_refuse_calls_over_a_limit_with_discords_answers() {
    let fake = FakeDiscord::start().await;
    fake.enforce_rate_limits(fake::Limits {
        global_per_sec: 6,
        messages: (2, Duration::from_secs(5)),
        dm_channels: (5, Duration::from_secs(1)),
    });
    let http = reqwest::Client::new();
    let api = format!("{}/api/v10", fake.base_url());
    let dm: Value = http
        .post(format!("{api}/users/@me/channels"))
        .json(&json!({ "recipient_id": BOB.0 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ch = dm["id"].as_str().unwrap().to_owned();
    let create = |ch: String| {
        let (http, api) = (http.clone(), api.clone());
        async move {
            http.post(format!("{api}/channels/{ch}/messages"))
                .json(&json!({ "content": "hi" }))
                .send()
                .await
                .unwrap()
        }
    };
    let first = create(ch.clone()).await;
    assert_eq!(first.status(), 200);
    let h =
        |r: &reqwest::Response, k: &str| r.headers().get(k).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(h(&first, "x-ratelimit-limit").as_deref(), Some("2"));
    assert_eq!(h(&first, "x-ratelimit-remaining").as_deref(), Some("1"));
    assert!(h(&first, "x-ratelimit-bucket").is_some());
    assert!(h(&first, "x-ratelimit-reset").is_some());
    let after: f64 = h(&first, "x-ratelimit-reset-after")
        .unwrap()
        .parse()
        .unwrap();
    assert!(after > 4.0 && after <= 5.0, "{after}");
    assert_eq!(create(ch.clone()).await.status(), 200);
    let over = create(ch.clone()).await;
    assert_eq!(over.status(), 429);
    assert_eq!(h(&over, "x-ratelimit-scope").as_deref(), Some("user"));
    assert!(h(&over, "retry-after").is_some());
    let body: Value = over.json().await.unwrap();
    assert_eq!(body["global"], false);
    assert!(body["retry_after"].as_f64().unwrap() > 4.0, "{body}");
    // Another channel has its own bucket.
    assert_eq!(create(GENERAL.to_owned()).await.status(), 200);
    // Five calls in this second so far (the refused one counts): the sixth goes, the
    // seventh is over the global limit.
    let me = format!("{api}/users/@me");
    assert_eq!(http.get(&me).send().await.unwrap().status(), 200);
    let global = http.get(&me).send().await.unwrap();
    assert_eq!(global.status(), 429);
    assert_eq!(h(&global, "x-ratelimit-global").as_deref(), Some("true"));
    assert_eq!(h(&global, "x-ratelimit-scope").as_deref(), Some("global"));
    let body: Value = global.json().await.unwrap();
    assert_eq!(body["global"], true);
    assert_eq!(
        fake.rate_violations(),
        fake::Violations {
            global: 1,
            route: 1
        }
    );
}

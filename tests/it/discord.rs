//! Quartermaster on Discord, proven against the fake Discord in `testkit/src/discord.rs`:
//! the real serenity client (REST through `api_base`, and the gateway) in both modes.

#![allow(clippy::unwrap_used)]
use testkit::discord as fake;

use std::sync::Arc;
use std::time::Duration;

use fake::{APP_ID, APPROVALS, FakeDiscord, GENERAL, Msg};
use quartermaster::config::{self, DiscordConfig, DiscordMode};
use quartermaster::core::model::Handle;
use quartermaster::core::ports::{Grants, HrInbox, InteractionLog, ManualClock, People, Requests};
use quartermaster::server::{self, Server};
use quartermaster::store::SqlStore;
use quartermaster::wiring;
use serde_json::{Value, json};
use testkit::testdb::{Backend, TestDb};

const ALICE: (&str, &str) = ("100000000000000004", "alice");
const BOB: (&str, &str) = ("100000000000000003", "bob");
const CAROL: (&str, &str) = ("100000000000000007", "carol");
const DANA: (&str, &str) = ("100000000000000002", "dana");
const FRANK: (&str, &str) = ("100000000000000005", "frank");
const MIA: (&str, &str) = ("100000000000000012", "mia");
const STRANGER: (&str, &str) = ("555555555555555555", "stranger");

const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Gateway,
    Endpoint,
}

struct Bot {
    fake: FakeDiscord,
    server: Option<Server>,
    store: SqlStore,
    clock: Arc<ManualClock>,
    url: String,
    _db: TestDb,
}

fn t0() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

impl Bot {
    async fn start(mode: Mode) -> Self {
        Self::start_with(mode, None).await
    }

    async fn start_with(mode: Mode, approvals_channel: Option<&str>) -> Self {
        Self::start_in(mode, approvals_channel, Vec::new()).await
    }

    /// A bot whose `[discord] guilds` allowlist is `guilds`.
    async fn start_in(mode: Mode, approvals_channel: Option<&str>, guilds: Vec<u64>) -> Self {
        Self::start_config(mode, config::load(None).unwrap(), approvals_channel, guilds).await
    }

    /// A bot over `config` (its `[discord]` table pointed at the fake).
    async fn start_config(
        mode: Mode,
        mut config: config::Config,
        approvals_channel: Option<&str>,
        guilds: Vec<u64>,
    ) -> Self {
        let fake = FakeDiscord::start().await;
        config.discord = Some(DiscordConfig {
            mode: match mode {
                Mode::Gateway => DiscordMode::Gateway,
                Mode::Endpoint => DiscordMode::Interactions,
            },
            application_id: APP_ID.into(),
            public_key: Some(fake.public_key_hex()),
            token: "fake-bot-token".into(),
            api_base: Some(fake.base_url()),
            approvals_channel: approvals_channel.map(str::to_owned),
            guilds,
        });
        let db = TestDb::create(Backend::from_env()).await;
        let store = wiring::open_store(&config, &db.url).await.unwrap();
        let clock = Arc::new(ManualClock::new(t0()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = server::start(&config, store.clone(), clock.clone(), listener)
            .await
            .unwrap();
        let url = format!("http://{}", server.addr);
        match mode {
            Mode::Endpoint => fake.set_endpoint(format!("{url}/discord/interactions")),
            Mode::Gateway => {
                fake.wait_gateway().await;
                let mut ready = server.gateway_ready.clone();
                tokio::time::timeout(WAIT, ready.wait_for(|r| *r))
                    .await
                    .expect("READY reached the event handler")
                    .unwrap();
            }
        }
        Self {
            fake,
            server: Some(server),
            store,
            clock,
            url,
            _db: db,
        }
    }

    /// Delivers an interaction and returns the text the user finally sees (following a
    /// deferral to the edited original).
    async fn answer(&self, payload: &Value) -> (Value, String) {
        let id = payload["id"].as_str().unwrap().to_owned();
        let r = self.fake.deliver(payload).await;
        match r["type"].as_u64() {
            Some(4) => {
                assert_eq!(r["data"]["flags"], 64, "replies are ephemeral: {r}");
                let t = r["data"]["content"].as_str().unwrap().to_owned();
                (r, t)
            }
            Some(5) => {
                self.fake
                    .wait_until("the deferred response to be edited", WAIT, |s| {
                        s.interactions[&id]
                            .original
                            .as_ref()
                            .is_some_and(|o| o.get("content").is_some())
                    })
                    .await;
                let o = self.fake.inter(&id).original.unwrap();
                (r, o["content"].as_str().unwrap().to_owned())
            }
            _ => (r.clone(), String::new()),
        }
    }

    async fn say(&self, who: (&str, &str), name: &str, options: Value) -> String {
        let p = self.fake.command(who, name, options);
        self.answer(&p).await.1
    }

    /// Waits until `user` has a DM matching `pred`, and returns it.
    async fn dm_where(&self, user: &str, what: &str, pred: impl Fn(&Msg) -> bool) -> Msg {
        let f = self.fake.clone();
        let u = user.to_owned();
        let end = std::time::Instant::now() + WAIT;
        loop {
            if let Some(m) = f.dms(&u).into_iter().rev().find(|m| pred(m)) {
                return m;
            }
            if std::time::Instant::now() > end {
                panic!(
                    "timed out waiting for {what}; DMs to {user}: {:#?}",
                    f.dms(&u)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn prompt_for(&self, user: &str, request: u32) -> Msg {
        let head = format!("Access request #{request}:");
        self.dm_where(user, "an approval prompt", |m| {
            m.content.starts_with(&head) && m.buttons() == ["Approve", "Deny"]
        })
        .await
    }

    /// The first audit row named `action`, waited for (messages, and the rows their delivery
    /// writes, go out from the outbox after the command answered).
    async fn audit_row(&self, action: &str) -> quartermaster::store::AuditRecord {
        let end = std::time::Instant::now() + WAIT;
        loop {
            let rows = self.store.audit_rows(None).await.unwrap();
            if let Some(r) = rows.into_iter().find(|r| r.action == action) {
                return r;
            }
            assert!(std::time::Instant::now() < end, "no {action} audit row");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn audit_actions(&self) -> Vec<String> {
        self.store
            .audit_rows(None)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.action)
            .collect()
    }

    async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }
}

fn opt(name: &str, value: &str) -> Value {
    json!({ "name": name, "type": 3, "value": value })
}

/// The README story on Discord: request → manager DM → approve → owner DM → approve → the
/// directory connector grants → requester told; every prompt edited to show who decided, with
/// no buttons left.
async fn readme_story(mode: Mode) {
    let bot = Bot::start(mode).await;
    let text = bot
        .say(
            ALICE,
            "request",
            json!([
                opt("app", "figma"),
                opt("reason", "landing page mock-ups"),
                opt("duration", "30d")
            ]),
        )
        .await;
    assert_eq!(
        text,
        "Request #1 for Figma is waiting for Bob Chen (step 1 of 2)."
    );

    let p1 = bot.prompt_for(BOB.0, 1).await;
    for part in [
        "Alice Kim asks for Figma",
        "Reason: landing page mock-ups",
        "Duration: 30d",
        "Step 1 of 2",
        "already holds: nothing yet",
    ] {
        assert!(
            p1.content.contains(part),
            "{part:?} missing from {}",
            p1.content
        );
    }
    let click = bot.fake.click(BOB, &p1, "Approve");
    assert!(click.get("member").is_none() && click.get("user").is_some());
    let (_, t) = bot.answer(&click).await;
    assert_eq!(t, "You approved request #1 (Figma for Alice Kim).");

    let p2 = bot.prompt_for(CAROL.0, 1).await;
    assert!(p2.content.contains("Step 2 of 2 (owner)"), "{}", p2.content);
    let (_, t) = bot.answer(&bot.fake.click(CAROL, &p2, "Approve")).await;
    assert_eq!(t, "You approved request #1 (Figma for Alice Kim).");

    let done = bot
        .dm_where(ALICE.0, "the requester told of the grant", |m| {
            m.content.starts_with("✅ You now have Figma until")
        })
        .await;
    assert!(done.buttons().is_empty());
    let alice_dms: Vec<String> = bot
        .fake
        .dms(ALICE.0)
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert!(
        alice_dms
            .iter()
            .any(|t| t.contains("approved by Bob Chen; it is now waiting for Carol Diaz")),
        "{alice_dms:#?}"
    );

    // Every prompt now shows who decided and when, and has no buttons.
    let p1 = bot
        .fake
        .dms(BOB.0)
        .into_iter()
        .find(|m| m.id == p1.id)
        .unwrap();
    assert!(
        p1.content
            .contains("✅ Approved by Bob Chen at 2026-11-25 09:00 UTC"),
        "{}",
        p1.content
    );
    assert!(p1.buttons().is_empty() && p1.edits >= 1);
    let p2 = bot
        .fake
        .dms(CAROL.0)
        .into_iter()
        .find(|m| m.id == p2.id)
        .unwrap();
    assert!(
        p2.content.contains("✅ Approved by Carol Diaz at"),
        "{}",
        p2.content
    );
    assert!(p2.buttons().is_empty());

    // The grant is real: active in the store, membership in the directory.
    let alice = Handle::parse("alice").unwrap();
    let grants = bot.store.grants_of(&alice).await.unwrap();
    assert!(
        grants.iter().any(|g| g.app.as_str() == "figma"
            && g.state == quartermaster::core::model::GrantState::Active),
        "{grants:?}"
    );
    // Bob and Carol hear of the outcome too.
    bot.dm_where(BOB.0, "the manager told", |m| {
        m.content == "Alice Kim now has Figma (request #1)."
    })
    .await;
    bot.dm_where(CAROL.0, "the owner told", |m| {
        m.content == "Alice Kim now has Figma (request #1)."
    })
    .await;

    // Nothing the bot sent was refused by Discord's rules.
    let refused: Vec<_> = bot
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.status >= 400)
        .collect();
    assert!(refused.is_empty(), "Discord refused: {refused:#?}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_story_through_the_interactions_endpoint() {
    readme_story(Mode::Endpoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_story_through_the_gateway() {
    readme_story(Mode::Gateway).await;
}

async fn request_figma(bot: &Bot, who: (&str, &str)) -> String {
    bot.say(
        who,
        "request",
        json!([
            opt("app", "figma"),
            opt("reason", "mock-ups"),
            opt("duration", "30d")
        ]),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guild_outside_the_allowlist_is_refused_politely_and_audited() {
    // The people's guild is not on the list: commands there are refused, and nothing happens.
    let bot = Bot::start_in(Mode::Endpoint, None, vec![345_678_901_234_567_890]).await;
    let t = request_figma(&bot, ALICE).await;
    assert!(
        t.starts_with("Sorry, Quartermaster is not set up for this server."),
        "{t}"
    );
    let rows = bot.store.audit_rows(None).await.unwrap();
    let refused = rows
        .iter()
        .find(|r| r.action == "command.refused")
        .expect("the refusal is audited");
    assert!(
        refused.detail.contains(&format!(
            "guild {} is not in [discord] guilds",
            fake::GUILD_ID
        )),
        "{}",
        refused.detail
    );
    assert!(!rows.iter().any(|r| r.action == "request.submitted"));
    // A DM carries no guild: it is answered (the caller is still a linked person).
    let data = json!({ "id": "700000000000000001", "name": "access", "type": 1, "options": [] });
    let dm = bot.fake.interaction(
        2,
        ALICE,
        fake::Place::Dm("810000000000000009".into()),
        data,
        None,
    );
    let (_, t) = bot.answer(&dm).await;
    assert!(!t.starts_with("Sorry, Quartermaster is not set up"), "{t}");
    bot.stop().await;

    // Its own guild on the list: answered as usual.
    let guild: u64 = fake::GUILD_ID.parse().unwrap();
    let bot = Bot::start_in(Mode::Endpoint, None, vec![guild]).await;
    let t = request_figma(&bot, ALICE).await;
    assert!(t.starts_with("Request #1"), "{t}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_opens_a_modal_and_the_reason_reaches_the_requester() {
    let bot = Bot::start(Mode::Endpoint).await;
    let t = bot
        .say(
            FRANK,
            "request",
            json!([opt("app", "zoho"), opt("reason", "expense reports")]),
        )
        .await;
    assert!(t.contains("waiting for Bob Chen"), "{t}");
    let prompt = bot.prompt_for(BOB.0, 1).await;
    let (r, _) = bot.answer(&bot.fake.click(BOB, &prompt, "Deny")).await;
    assert_eq!(r["type"], 9, "Deny opens a modal: {r}");
    let deny_id = prompt.custom_id("Deny");
    assert_eq!(r["data"]["custom_id"], deny_id.as_str());
    let field = &r["data"]["components"][0]["components"][0];
    assert_eq!(
        (field["type"].as_u64(), field["custom_id"].as_str()),
        (Some(4), Some("reason"))
    );
    // Nothing decided yet: the prompt keeps its buttons.
    let now = bot
        .fake
        .dms(BOB.0)
        .into_iter()
        .find(|m| m.id == prompt.id)
        .unwrap();
    assert_eq!(now.buttons(), ["Approve", "Deny"]);

    let submit = bot.fake.modal_submit(
        BOB,
        &prompt,
        &deny_id,
        &[("reason", "not needed for this quarter")],
    );
    let (_, t) = bot.answer(&submit).await;
    assert_eq!(t, "You denied request #1 (Zoho Books for Frank Li).");
    bot.dm_where(FRANK.0, "the requester told of the denial", |m| {
        m.content
            == "Your request #1 for Zoho Books was denied by Bob Chen: not needed for this quarter."
    })
    .await;
    let p = bot
        .fake
        .dms(BOB.0)
        .into_iter()
        .find(|m| m.id == prompt.id)
        .unwrap();
    assert!(
        p.content
            .contains("❌ Denied by Bob Chen at 2026-11-25 09:00 UTC: not needed for this quarter"),
        "{}",
        p.content
    );
    assert!(p.buttons().is_empty());
    assert!(
        bot.audit_actions()
            .await
            .contains(&"step.denied".to_owned())
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_by_the_wrong_person_or_a_stranger_is_refused() {
    let bot = Bot::start(Mode::Gateway).await;
    request_figma(&bot, ALICE).await;
    let prompt = bot.prompt_for(BOB.0, 1).await;
    // Frank presents Bob's button (the server re-authorises from the database, not the
    // message); having no part in the request, he learns nothing about it.
    let (_, t) = bot.answer(&bot.fake.click(FRANK, &prompt, "Approve")).await;
    assert!(!t.starts_with("You approved"), "{t}");
    assert_eq!(t, "There is nothing for you to decide on request #1.");
    let (_, t) = bot
        .answer(&bot.fake.click(STRANGER, &prompt, "Approve"))
        .await;
    assert!(t.starts_with("Sorry, I don't know who you are"), "{t}");
    // Alice cannot approve her own request either.
    let (_, t) = bot.answer(&bot.fake.click(ALICE, &prompt, "Approve")).await;
    assert!(!t.starts_with("You approved"), "{t}");
    // Nothing was decided: the prompt keeps its buttons, Carol got nothing.
    let p = bot
        .fake
        .dms(BOB.0)
        .into_iter()
        .find(|m| m.id == prompt.id)
        .unwrap();
    assert_eq!(p.buttons(), ["Approve", "Deny"]);
    assert!(bot.fake.dms(CAROL.0).is_empty());
    let audit = bot.audit_actions().await;
    assert!(
        audit.iter().filter(|a| *a == "command.refused").count() >= 2,
        "{audit:?}"
    );
    assert!(!audit.contains(&"step.approved".to_owned()));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_checks_signatures_and_timestamps_and_answers_ping() {
    let bot = Bot::start(Mode::Endpoint).await;
    let url = format!("{}/discord/interactions", bot.url);
    let ping =
        br#"{"id":"1","application_id":"900000000000000001","type":1,"token":"t","version":1}"#;
    let (s, b) = bot.fake.post_signed(&url, ping, None).await;
    assert_eq!(
        (s, serde_json::from_str::<Value>(&b).unwrap()),
        (200, json!({"type": 1}))
    );

    let payload = serde_json::to_vec(&bot.fake.command(ALICE, "approvals", json!([]))).unwrap();
    // A signature by another key.
    let other = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut msg = ts.as_bytes().to_vec();
    msg.extend_from_slice(&payload);
    use ed25519_dalek::Signer;
    let sig = hex::encode(other.sign(&msg).to_bytes());
    assert_eq!(bot.fake.post_raw(&url, &payload, &sig, &ts).await.0, 401);
    // Garbage and missing signatures.
    assert_eq!(bot.fake.post_raw(&url, &payload, "zz", &ts).await.0, 401);
    let r = reqwest::Client::new()
        .post(&url)
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // A body changed after signing.
    let (good_sig, good_ts) = {
        let ts = chrono::Utc::now().timestamp().to_string();
        let mut m = ts.as_bytes().to_vec();
        m.extend_from_slice(&payload);
        let k = ed25519_dalek::SigningKey::from_bytes(&fake::SEED);
        (hex::encode(k.sign(&m).to_bytes()), ts)
    };
    let mut tampered = payload.clone();
    tampered.push(b' ');
    assert_eq!(
        bot.fake
            .post_raw(&url, &tampered, &good_sig, &good_ts)
            .await
            .0,
        401
    );
    // Validly signed, but six minutes old or in the future.
    let old = chrono::Utc::now().timestamp() - 360;
    assert_eq!(bot.fake.post_signed(&url, &payload, Some(old)).await.0, 401);
    let future = chrono::Utc::now().timestamp() + 360;
    assert_eq!(
        bot.fake.post_signed(&url, &payload, Some(future)).await.0,
        401
    );
    // None of it reached the service.
    assert!(bot.audit_actions().await.is_empty());
    // The good one does.
    assert_eq!(
        bot.fake
            .post_raw(&url, &payload, &good_sig, &good_ts)
            .await
            .0,
        200
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_caps_bodies_at_128_kib() {
    let bot = Bot::start(Mode::Endpoint).await;
    let url = format!("{}/discord/interactions", bot.url);
    // 100 KiB (a PING padded with whitespace) is within the cap.
    let mut ping =
        br#"{"id":"1","application_id":"900000000000000001","type":1,"token":"t","version":1}"#
            .to_vec();
    ping.resize(100 * 1024, b' ');
    assert_eq!(bot.fake.post_signed(&url, &ping, None).await.0, 200);
    // Over the cap: refused before the signature is even checked.
    ping.resize(200 * 1024, b' ');
    assert_eq!(bot.fake.post_signed(&url, &ping, None).await.0, 413);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prunes_seen_ids_past_the_replay_window() {
    use chrono::TimeDelta;
    let config = config::load(None).unwrap();
    let db = TestDb::create(Backend::from_env()).await;
    let store = wiring::open_store(&config, &db.url).await.unwrap();
    // Interaction ids by the wall clock (kept 10 minutes), HR event ids by the service's
    // clock (kept a day).
    let now = chrono::Utc::now();
    let seen = |id: &'static str, at| {
        let store = store.clone();
        async move { store.record_interaction(id, at).await.unwrap() }
    };
    let hr = |id: &'static str, at| {
        let store = store.clone();
        async move { store.mark_hr_event(id, at, vec![]).await.unwrap() }
    };
    assert!(seen("old", now - TimeDelta::minutes(11)).await);
    assert!(seen("new", now - TimeDelta::minutes(9)).await);
    assert!(hr("hr-old", t0() - TimeDelta::hours(25)).await);
    assert!(hr("hr-new", t0() - TimeDelta::hours(23)).await);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let server = server::start(&config, store.clone(), clock, listener)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        seen("old", now).await,
        "an interaction id past the window is pruned"
    );
    assert!(!seen("new", now).await, "one inside it is kept");
    assert!(
        hr("hr-old", t0()).await,
        "an HR event id older than a day is pruned"
    );
    assert!(!hr("hr-new", t0()).await, "a younger one is kept");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_interaction_is_answered_but_not_acted_on() {
    let bot = Bot::start(Mode::Endpoint).await;
    let url = format!("{}/discord/interactions", bot.url);
    let p = bot.fake.command(
        ALICE,
        "request",
        json!([opt("app", "figma"), opt("reason", "mock-ups")]),
    );
    let (_, t) = bot.answer(&p).await;
    assert!(t.contains("waiting for Bob Chen"), "{t}");
    bot.prompt_for(BOB.0, 1).await;
    let body = serde_json::to_vec(&p).unwrap();
    let (s, b) = bot.fake.post_signed(&url, &body, None).await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("already handled"), "{b}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let alice = Handle::parse("alice").unwrap();
    assert_eq!(bot.store.requests_by(&alice).await.unwrap().len(), 1);
    assert_eq!(bot.fake.dms(BOB.0).len(), 1, "one prompt only");
    let submitted = bot
        .audit_actions()
        .await
        .into_iter()
        .filter(|a| a == "request.submitted")
        .count();
    assert_eq!(submitted, 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_gateway_interaction_is_not_acted_on_or_answered_twice() {
    let bot = Bot::start(Mode::Gateway).await;
    let p = bot.fake.command(
        ALICE,
        "request",
        json!([opt("app", "figma"), opt("reason", "mock-ups")]),
    );
    let (_, t) = bot.answer(&p).await;
    assert!(t.contains("waiting for Bob Chen"), "{t}");
    bot.prompt_for(BOB.0, 1).await;
    // The gateway delivers the same interaction again (as after a resume, or to a second
    // instance on the same token).
    bot.fake.dispatch("INTERACTION_CREATE", p.clone());
    let id = p["id"].as_str().unwrap();
    let replays = || async {
        let m = reqwest::get(format!("{}/metrics", bot.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        m.lines().any(|l| {
            l.starts_with("quartermaster_interactions_total{kind=\"replay\",outcome=\"ignored\"}")
        })
    };
    let deadline = std::time::Instant::now() + WAIT;
    while !replays().await {
        assert!(
            std::time::Instant::now() < deadline,
            "the redelivered interaction was never seen as a replay"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let callbacks = bot
        .fake
        .calls()
        .iter()
        .filter(|c| c.path.starts_with(&format!("/interactions/{id}/")))
        .filter(|c| c.path.ends_with("/callback"))
        .count();
    assert_eq!(callbacks, 1, "one acknowledgement, no 40060");
    let alice = Handle::parse("alice").unwrap();
    assert_eq!(bot.store.requests_by(&alice).await.unwrap().len(), 1);
    assert_eq!(bot.fake.dms(BOB.0).len(), 1, "one prompt only");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_edit_after_the_token_expired_goes_out_as_a_bot_message() {
    let bot = Bot::start(Mode::Gateway).await;
    let user = |id: &str| json!([{ "name": "user", "type": 6, "value": id }]);
    // Within 15 minutes, the plan reply itself is edited through the interaction token.
    let p = bot
        .fake
        .command_with_user(DANA, "offboard", user(FRANK.0), FRANK);
    let (r, t) = bot.answer(&p).await;
    assert!(t.starts_with("Offboarding plan for Frank Li"), "{t}");
    let plan = Msg {
        id: p["id"].as_str().unwrap().into(),
        channel_id: GENERAL.into(),
        content: t.clone(),
        components: r["data"]["components"].clone(),
        edits: 0,
    };
    assert_eq!(plan.buttons(), ["Confirm", "Cancel"]);
    let (_, t) = bot.answer(&bot.fake.click(DANA, &plan, "Cancel")).await;
    assert!(!t.is_empty());
    let pid = p["id"].as_str().unwrap().to_owned();
    bot.fake
        .wait_until("the plan reply edited through its token", WAIT, |s| {
            s.interactions[&pid].original.as_ref().is_some_and(|o| {
                o["content"]
                    .as_str()
                    .is_some_and(|c| c.contains("Cancelled by Dana Ortiz"))
                    && o["components"] == json!([])
            })
        })
        .await;

    // A second plan, decided after the token expired.
    let p = bot
        .fake
        .command_with_user(DANA, "offboard", user(FRANK.0), FRANK);
    let (r, t) = bot.answer(&p).await;
    let plan = Msg {
        id: p["id"].as_str().unwrap().into(),
        channel_id: GENERAL.into(),
        content: t,
        components: r["data"]["components"].clone(),
        edits: 0,
    };
    bot.fake.expire_tokens();
    bot.clock
        .advance(quartermaster::core::model::Span::parse("16m").unwrap());
    let (_, t) = bot.answer(&bot.fake.click(DANA, &plan, "Confirm")).await;
    assert!(!t.is_empty());
    bot.dm_where(DANA.0, "the late edit as a DM", |m| {
        m.content.contains("Confirmed by Dana Ortiz") && m.buttons().is_empty()
    })
    .await;
    let pid = p["id"].as_str().unwrap().to_owned();
    let bad: Vec<_> = bot
        .fake
        .calls()
        .into_iter()
        .filter(|c| {
            c.code == Some(50027) || (c.path.contains("/webhooks/") && c.path.contains(&pid))
        })
        .collect();
    assert!(bad.is_empty(), "the expired token was used: {bad:#?}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_also_go_to_the_approvals_channel_and_clicks_there_are_authorised() {
    let bot = Bot::start_with(Mode::Gateway, Some(APPROVALS)).await;
    request_figma(&bot, ALICE).await;
    let dm = bot.prompt_for(BOB.0, 1).await;
    // Messages go out from the outbox after the command answered: wait for the copy.
    bot.fake
        .wait_until("a prompt in the approvals channel", WAIT, |s| {
            s.messages
                .values()
                .any(|m| m.channel_id == APPROVALS && m.content.contains("Access request #1"))
        })
        .await;
    let copy = bot
        .fake
        .channel(APPROVALS)
        .into_iter()
        .find(|m| m.content.contains("Access request #1"))
        .expect("a copy in the approvals channel");
    assert!(
        copy.content.starts_with("Approval prompt sent to Bob Chen"),
        "{}",
        copy.content
    );
    assert_eq!(copy.buttons(), ["Approve", "Deny"]);
    let click = bot.fake.click(FRANK, &copy, "Approve");
    assert!(
        click.get("member").is_some(),
        "a guild click carries member"
    );
    let (_, t) = bot.answer(&click).await;
    assert!(!t.starts_with("You approved"), "{t}");
    let (_, t) = bot.answer(&bot.fake.click(BOB, &copy, "Approve")).await;
    assert_eq!(t, "You approved request #1 (Figma for Alice Kim).");
    bot.prompt_for(CAROL.0, 1).await;
    // Both copies of Bob's prompt now show the decision without buttons.
    let dm = bot
        .fake
        .dms(BOB.0)
        .into_iter()
        .find(|m| m.id == dm.id)
        .unwrap();
    let copy = bot
        .fake
        .channel(APPROVALS)
        .into_iter()
        .find(|m| m.id == copy.id)
        .unwrap();
    for m in [&dm, &copy] {
        assert!(
            m.content.contains("✅ Approved by Bob Chen"),
            "{}",
            m.content
        );
        assert!(m.buttons().is_empty());
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_dm_falls_back_to_the_approvals_channel_and_is_audited() {
    let bot = Bot::start_with(Mode::Endpoint, Some(APPROVALS)).await;
    bot.fake.close_dms(BOB.0);
    request_figma(&bot, ALICE).await;
    bot.fake
        .wait_until("the fallback prompt", WAIT, |s| {
            s.messages.values().any(|m| {
                m.channel_id == APPROVALS
                    && m.content
                        .contains("Bob Chen does not accept direct messages")
            })
        })
        .await;
    let copy = bot
        .fake
        .channel(APPROVALS)
        .into_iter()
        .find(|m| m.content.contains("does not accept"))
        .unwrap();
    assert!(bot.fake.calls().iter().any(|c| c.code == Some(50007)));
    let (_, t) = bot.answer(&bot.fake.click(BOB, &copy, "Approve")).await;
    assert_eq!(t, "You approved request #1 (Figma for Alice Kim).");
    bot.prompt_for(CAROL.0, 1).await;
    let fb = bot.audit_row("message.fallback").await;
    assert!(
        fb.detail.contains("50007") && fb.detail.contains("approvals channel"),
        "{}",
        fb.detail
    );
    // The decision's edit goes after the prompt's copy is settled: none says Bob got it.
    bot.fake
        .wait_until("the fallback prompt to show the decision", WAIT, |s| {
            s.messages
                .values()
                .any(|m| m.id == copy.id && m.content.contains("✅ Approved by Bob Chen"))
        })
        .await;
    let said_sent: Vec<_> = bot
        .fake
        .channel(APPROVALS)
        .into_iter()
        .filter(|m| m.content.starts_with("Approval prompt sent to Bob Chen"))
        .collect();
    assert!(said_sent.is_empty(), "{said_sent:#?}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_dm_without_an_approvals_channel_goes_to_the_it_admins() {
    let bot = Bot::start(Mode::Endpoint).await;
    bot.fake.close_dms(BOB.0);
    request_figma(&bot, ALICE).await;
    for admin in [DANA.0, MIA.0] {
        let m = bot
            .dm_where(admin, "the fallback prompt to an IT admin", |m| {
                m.content
                    .contains("Bob Chen does not accept direct messages")
            })
            .await;
        assert_eq!(m.buttons(), ["Approve", "Deny"]);
    }
    let fb = bot.audit_row("message.fallback").await;
    assert!(
        fb.detail.contains("dana") && fb.detail.contains("mia"),
        "{}",
        fb.detail
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_calls_are_retried() {
    let bot = Bot::start(Mode::Endpoint).await;
    bot.fake.rate_limit_next(2);
    request_figma(&bot, ALICE).await;
    bot.prompt_for(BOB.0, 1).await;
    let limited = bot.fake.calls().iter().filter(|c| c.status == 429).count();
    assert_eq!(limited, 2);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_autocomplete_user_options_and_deferral() {
    let bot = Bot::start(Mode::Gateway).await;
    let t = bot.say(STRANGER, "approvals", json!([])).await;
    assert!(t.starts_with("Sorry, I don't know who you are"), "{t}");

    let r = bot
        .fake
        .deliver(&bot.fake.autocomplete(ALICE, "figam"))
        .await;
    assert_eq!(r["type"], 8);
    let values: Vec<&str> = r["data"]["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["value"].as_str().unwrap())
        .collect();
    assert_eq!(values.first(), Some(&"figma"), "{r}");

    // A USER option arrives as a Discord id and reaches the core as a handle.
    let user = json!([{ "name": "user", "type": 6, "value": ALICE.0 }]);
    let t = bot
        .answer(&bot.fake.command_with_user(BOB, "access", user, ALICE))
        .await
        .1;
    assert!(t.contains("Alice Kim"), "{t}");
    let nobody = json!([{ "name": "user", "type": 6, "value": STRANGER.0 }]);
    let t = bot
        .answer(&bot.fake.command_with_user(BOB, "access", nobody, STRANGER))
        .await
        .1;
    assert!(t.contains("is not linked"), "{t}");

    // Work that outlasts the threshold is deferred (type 5, ephemeral), then the original is
    // edited with the answer.
    bot.server
        .as_ref()
        .unwrap()
        .interactions
        .as_ref()
        .unwrap()
        .set_defer_after(Duration::ZERO);
    let p = bot.fake.command(
        ALICE,
        "request",
        json!([opt("app", "figma"), opt("reason", "x")]),
    );
    let (r, t) = bot.answer(&p).await;
    assert_eq!(r, json!({ "type": 5, "data": { "flags": 64 } }));
    assert_eq!(
        t,
        "Request #1 for Figma is waiting for Bob Chen (step 1 of 2)."
    );
    let refused: Vec<_> = bot
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.status >= 400)
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics() {
    let bot = Bot::start(Mode::Endpoint).await;
    let get = |path: &str| {
        let url = format!("{}{path}", bot.url);
        async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await, (200, "ok\n".into()));
    request_figma(&bot, ALICE).await;
    let prompt = bot.prompt_for(BOB.0, 1).await;
    bot.answer(&bot.fake.click(BOB, &prompt, "Approve")).await;
    let prompt = bot.prompt_for(CAROL.0, 1).await;
    bot.answer(&bot.fake.click(CAROL, &prompt, "Approve")).await;
    bot.dm_where(ALICE.0, "the grant", |m| m.content.starts_with("✅"))
        .await;
    let (s, m) = get("/metrics").await;
    assert_eq!(s, 200);
    for line in [
        "quartermaster_interactions_total{kind=\"command\",outcome=\"replied\"} 1",
        "quartermaster_interactions_total{kind=\"click\",outcome=\"replied\"} 2",
        "quartermaster_interaction_seconds_count 3",
        "quartermaster_decisions_total{decision=\"approved\"} 2",
        "quartermaster_decisions_total{decision=\"denied\"} 0",
        "quartermaster_requests{state=\"granted\"} 1",
        "quartermaster_actions{state=\"done\"} 1",
        "quartermaster_queue_depth 0",
        "quartermaster_database_up 1",
    ] {
        assert!(m.lines().any(|l| l == line), "{line:?} missing from\n{m}");
    }
    bot.store.close().await;
    assert_eq!(get("/healthz").await.0, 503);
    let (s, m) = get("/metrics").await;
    assert_eq!(s, 200);
    assert!(m.contains("quartermaster_database_up 0"), "{m}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_register_overwrites_in_bulk_so_twice_changes_nothing() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("acme.toml");
    let acme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/acme.toml"))
        .unwrap();
    std::fs::write(
        &cfg,
        format!(
            "{acme}\n[discord]\nmode = \"gateway\"\napplication_id = \"{APP_ID}\"\ntoken_env = \"QM_TEST_DISCORD_TOKEN\"\napi_base = \"{}\"\n",
            fake.base_url()
        ),
    )
    .unwrap();
    let run = |guild: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_quartermaster"));
        c.args(["commands", "register", "--config"]).arg(&cfg);
        if let Some(g) = guild {
            c.args(["--guild", g]);
        }
        c.env("QM_TEST_DISCORD_TOKEN", "fake-bot-token");
        async move {
            tokio::task::spawn_blocking(move || c.output().unwrap())
                .await
                .unwrap()
        }
    };
    let out = run(None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("registered 11 commands globally"),
        "{stdout}"
    );
    let first = fake.with(|s| s.global_commands.clone());
    let mut names: Vec<&str> = first.iter().map(|c| c["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "access",
            "approvals",
            "drift",
            "help",
            "mfa",
            "offboard",
            "onboard",
            "request",
            "review",
            "revoke",
            "role"
        ]
    );
    let request = first.iter().find(|c| c["name"] == "request").unwrap();
    assert_eq!(request["options"][0]["autocomplete"], true);
    assert_eq!(request["options"][3]["name"], "emergency");
    assert_eq!(request["options"][3]["type"], 5);
    // Subcommands reach Discord as type 1 options carrying their own options.
    let mfa = first.iter().find(|c| c["name"] == "mfa").unwrap();
    let subs: Vec<(&str, u64)> = mfa["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), o["type"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        subs,
        [("enroll", 1), ("confirm", 1), ("status", 1), ("reset", 1)]
    );
    assert_eq!(mfa["options"][1]["options"][0]["name"], "code");
    assert_eq!(mfa["options"][3]["options"][0]["type"], 6);
    // The admin commands reach Discord hidden from everyone but server admins, who then grant
    // them to IT's role (Server Settings → Integrations).
    for c in &first {
        let admin = ["onboard", "offboard", "role"].contains(&c["name"].as_str().unwrap());
        assert_eq!(
            c.get("default_member_permissions") == Some(&serde_json::json!("0")),
            admin,
            "{c}"
        );
    }

    let out = run(None).await;
    assert!(out.status.success());
    let second = fake.with(|s| s.global_commands.clone());
    assert_eq!(first, second, "a second registration changes nothing");
    let puts: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|c| c.method == "PUT")
        .map(|c| c.path)
        .collect();
    assert_eq!(
        puts,
        vec![format!("/applications/{APP_ID}/commands"); 2],
        "bulk overwrite, twice"
    );

    let out = run(Some(fake::GUILD_ID)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("in guild {}", fake::GUILD_ID)));
    assert_eq!(fake.with(|s| s.guild_commands[fake::GUILD_ID].len()), 11);

    // Without the token the command says what to set.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quartermaster"))
        .args(["commands", "register", "--config"])
        .arg(&cfg)
        .env_remove("QM_TEST_DISCORD_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("QM_TEST_DISCORD_TOKEN"));
}

/// The fake itself enforces Discord's rules, so the tests above prove something.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_enforces_discords_rules() {
    use quartermaster::chat::discord::{DiscordError, build_http, components};
    use quartermaster::core::ports::{Button, ButtonLabel};
    use serenity::model::id::{ChannelId, InteractionId};
    let fake = FakeDiscord::start().await;
    let cfg = DiscordConfig {
        mode: DiscordMode::Gateway,
        application_id: APP_ID.into(),
        public_key: None,
        token: "t".into(),
        api_base: Some(fake.base_url()),
        approvals_channel: None,
        guilds: Vec::new(),
    };
    let http = build_http(&cfg).unwrap();
    let code =
        |r: Result<(), serenity::Error>| r.map_err(DiscordError::from).err().and_then(|e| e.code());

    // One acknowledgement per interaction (40060).
    let p = fake.command(ALICE, "approvals", json!([]));
    let id = fake.register_only(&p);
    let iid = InteractionId::new(id.parse().unwrap());
    let tok = p["token"].as_str().unwrap();
    let pong = json!({ "type": 4, "data": { "content": "hi", "flags": 64 } });
    assert_eq!(
        code(
            http.create_interaction_response(iid, tok, &pong, vec![])
                .await
        ),
        None
    );
    assert_eq!(
        code(
            http.create_interaction_response(iid, tok, &pong, vec![])
                .await
        ),
        Some(40060)
    );
    // The first response within 3 s (10062).
    let p = fake.command(ALICE, "approvals", json!([]));
    let id = fake.register_only(&p);
    fake.age_interaction(&id, Duration::from_millis(3100));
    let iid = InteractionId::new(id.parse().unwrap());
    let r = http
        .create_interaction_response(iid, p["token"].as_str().unwrap(), &pong, vec![])
        .await;
    assert_eq!(code(r), Some(10062));
    // An expired token (50027).
    fake.expire_tokens();
    let r = http
        .edit_original_interaction_response(tok, &json!({ "content": "late" }), vec![])
        .await
        .map(|_| ());
    assert_eq!(code(r), Some(50027));

    // custom_id ≤ 100 and at most 5 buttons a row (50035).
    let ch = ChannelId::new(GENERAL.parse().unwrap());
    let long = json!([{ "type": 1, "components": [{ "type": 2, "style": 3, "label": "A", "custom_id": "x".repeat(101) }] }]);
    let body = json!({ "content": "c", "components": long });
    let r = http.send_message(ch, vec![], &body).await.map(|_| ());
    assert_eq!(code(r), Some(50035));
    let six = json!([{ "type": 1, "components": (0..6).map(|i| json!({ "type": 2, "style": 3, "label": "A", "custom_id": format!("b{i}") })).collect::<Vec<_>>() }]);
    let r = http
        .send_message(ch, vec![], &json!({ "content": "c", "components": six }))
        .await
        .map(|_| ());
    assert_eq!(code(r), Some(50035));
    // Our renderer never builds such rows: seven buttons make two rows.
    let seven: Vec<Button> = (0..7)
        .map(|i| Button {
            item: None,
            label: ButtonLabel::Done,
            target: quartermaster::core::customid::ClickTarget::Done(
                quartermaster::core::model::ActionId(i),
            ),
        })
        .collect();
    let body = json!({ "content": "c", "components": components(&seven) });
    assert!(http.send_message(ch, vec![], &body).await.is_ok());

    // Closed DMs (50007).
    fake.close_dms(BOB.0);
    let dm = http
        .create_private_channel(&json!({ "recipient_id": BOB.0 }))
        .await
        .unwrap();
    let r = http
        .send_message(dm.id, vec![], &json!({ "content": "hi" }))
        .await
        .map(|_| ());
    assert_eq!(code(r), Some(50007));
    // Injected 429s.
    fake.rate_limit_next(1);
    let r = http
        .send_message(ch, vec![], &json!({ "content": "hi" }))
        .await
        .map(|_| ());
    assert!(r.map_err(DiscordError::from).unwrap_err().is_rate_limited());
}

/// Interactions mode behind a load balancer: two instances on one database. Either answers any
/// interaction, and one delivered to both is acted on once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_behind_a_balancer_act_on_an_interaction_once() {
    let fake = FakeDiscord::start().await;
    let mut config = config::load(None).unwrap();
    config.discord = Some(DiscordConfig {
        mode: DiscordMode::Interactions,
        application_id: APP_ID.into(),
        public_key: Some(fake.public_key_hex()),
        token: "fake-bot-token".into(),
        api_base: Some(fake.base_url()),
        approvals_channel: None,
        guilds: Vec::new(),
    });
    let db = TestDb::create(Backend::from_env()).await;
    let mut instances = Vec::new();
    for _ in 0..2 {
        let store = wiring::open_store(&config, &db.url).await.unwrap();
        let clock = Arc::new(ManualClock::new(t0()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = server::start(&config, store.clone(), clock, listener)
            .await
            .unwrap();
        let url = format!("http://{}/discord/interactions", server.addr);
        instances.push((server, store, url));
    }
    let (a, b) = (&instances[0], &instances[1]);

    // Instance A answers Alice's request.
    fake.set_endpoint(a.2.clone());
    let p = fake.command(
        ALICE,
        "request",
        json!([opt("app", "figma"), opt("reason", "mock-ups")]),
    );
    let r = fake.deliver(&p).await;
    assert_eq!(r["type"], 4, "{r}");
    assert!(
        r["data"]["content"]
            .as_str()
            .unwrap()
            .contains("waiting for Bob Chen")
    );
    // The balancer delivers the same interaction to B as well: answered, not acted on.
    let (status, body) = fake
        .post_signed(&b.2, &serde_json::to_vec(&p).unwrap(), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("already handled"), "{body}");
    // Instance B answers another interaction on the same data.
    fake.set_endpoint(b.2.clone());
    let q = fake.command(FRANK, "access", json!([]));
    let r = fake.deliver(&q).await;
    let text = r["data"]["content"].as_str().unwrap_or_default().to_owned();
    assert!(text.starts_with("Your access:"), "{r}");
    let q = fake.command(ALICE, "access", json!([]));
    let r = fake.deliver(&q).await;
    let text = r["data"]["content"].as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("#1 Figma: waiting for Bob Chen"),
        "B sees A's request: {text}"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let alice = Handle::parse("alice").unwrap();
    assert_eq!(b.1.requests_by(&alice).await.unwrap().len(), 1);
    assert_eq!(fake.dms(BOB.0).len(), 1, "one prompt only");
    let submitted =
        a.1.audit_rows(None)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.action == "request.submitted")
            .count();
    assert_eq!(submitted, 1);
    assert!(a.1.verify_audit().await.unwrap().is_ok());
    for (server, _, _) in instances {
        server.stop().await;
    }
}

/// `/onboard user:` links the given Discord account to the new hire (who is not linked to
/// anyone yet: that is the point), and refuses an account already linked to someone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboard_links_the_new_hires_discord_account() {
    const LENA: (&str, &str) = ("100000000000000042", "lena");
    let bot = Bot::start(Mode::Endpoint).await;
    let onboard = |email: &str, name: &str, id: &str| {
        json!([
            opt("email", email),
            opt("name", name),
            opt("role", "engineer"),
            { "name": "user", "type": 6, "value": id },
        ])
    };
    let t = bot
        .answer(&bot.fake.command_with_user(
            DANA,
            "onboard",
            onboard("lena@acme.test", "Lena Roy", LENA.0),
            LENA,
        ))
        .await
        .1;
    assert!(t.starts_with("Lena Roy (lena) created as engineer"), "{t}");
    let lena = bot
        .store
        .person(&Handle::parse("lena").unwrap())
        .await
        .unwrap();
    assert_eq!(lena.unwrap().discord_id.as_deref(), Some(LENA.0));
    // She can now use Quartermaster from that account.
    let t = bot.say(LENA, "access", json!([])).await;
    assert!(t.starts_with("Your access:"), "{t}");

    // An account already linked to alice is not given to someone else.
    let t = bot
        .answer(&bot.fake.command_with_user(
            DANA,
            "onboard",
            onboard("max@acme.test", "Max Berg", ALICE.0),
            ALICE,
        ))
        .await
        .1;
    assert_eq!(
        t,
        "That Discord account is already linked to Alice Kim (alice); nothing was changed."
    );
    assert!(
        bot.store
            .person(&Handle::parse("max").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let alice = bot
        .store
        .person(&Handle::parse("alice").unwrap())
        .await
        .unwrap();
    assert_eq!(alice.unwrap().discord_id.as_deref(), Some(ALICE.0));
    bot.stop().await;
}

/// Issue 23 item 9: `serve` in gateway mode whose gateway refuses connections reports it on
/// `/healthz` (503 with a reason, never 200 while not connected) and still stops within the
/// grace period after SIGTERM; with a gateway that answers, `/healthz` turns 200 once READY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_mode_reports_its_state_on_healthz_and_stops_on_sigterm_while_reconnecting() {
    let fake = FakeDiscord::start().await;
    // A gateway that accepts connections and never answers (a black hole), so serenity
    // keeps trying to connect.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_port = hole.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = hole.accept().await {
            held.push(sock);
        }
    });
    fake.with(|s| s.gateway_url = Some(format!("ws://127.0.0.1:{hole_port}/gateway")));
    let dir = tempfile::tempdir().unwrap();
    let acme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/acme.toml"))
        .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = dir.path().join("acme.toml");
    std::fs::write(
        &cfg,
        format!(
            "{acme}\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n[discord]\nmode = \"gateway\"\napplication_id = \"{APP_ID}\"\ntoken_env = \"QM_TEST_DISCORD_TOKEN\"\napi_base = \"{}\"\n",
            fake.base_url()
        ),
    )
    .unwrap();
    let db = TestDb::create(Backend::from_env()).await;
    let serve = |cfg: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_quartermaster"))
            .args(["serve", "--config"])
            .arg(cfg)
            .args(["--db", &db.url])
            .env("QM_TEST_DISCORD_TOKEN", "fake-bot-token")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let healthz = |port: u16| async move {
        match reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await {
            Ok(r) => Some((r.status().as_u16(), r.text().await.unwrap())),
            Err(_) => None,
        }
    };
    let mut child = serve(&cfg);
    // Wait until it answers, then give serenity time to fail and retry a few times.
    let deadline = std::time::Instant::now() + WAIT;
    let first = loop {
        if let Some(h) = healthz(port).await {
            break h;
        }
        assert!(std::time::Instant::now() < deadline, "serve never listened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(first.0, 503, "{first:?}");
    assert!(first.1.contains("gateway"), "{first:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = healthz(port).await.unwrap();
    assert_eq!(later.0, 503, "{later:?}");
    assert!(
        later.1.contains("Discord gateway not connected"),
        "{later:?}"
    );

    let t = std::time::Instant::now();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let grace = quartermaster::engine::STOP_GRACE;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > grace + Duration::from_secs(5) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve still running {:?} after SIGTERM", t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = t.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took <= grace, "stopped after {took:?}, grace {grace:?}");
    eprintln!("serve stopped {took:?} after SIGTERM while the gateway was unreachable");

    // With a gateway that answers: 200 once READY.
    fake.with(|s| s.gateway_url = None);
    let mut child = serve(&cfg);
    fake.wait_gateway().await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some((200, body)) = healthz(port).await {
            assert_eq!(body, "ok\n");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// A subcommand reaches the service as "NAME SUB" with the subcommand's own options, and a
/// BOOLEAN option arrives as true/false.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subcommands_and_booleans_reach_the_service() {
    let bot = Bot::start(Mode::Endpoint).await;
    let status = json!([{ "name": "status", "type": 1, "options": [] }]);
    assert_eq!(
        bot.say(ALICE, "mfa", status).await,
        "Step-up verification is not set up on this server (IT has to configure `[mfa] key_env`)."
    );
    let confirm = json!([{ "name": "confirm", "type": 1, "options": [
        { "name": "code", "type": 3, "value": "123" }
    ] }]);
    assert_eq!(
        bot.say(ALICE, "mfa", confirm).await,
        "code: \"123\" is too short; at least 6 characters are needed"
    );
    assert!(
        bot.say(ALICE, "mfa", json!([]))
            .await
            .starts_with("/mfa needs a subcommand: "),
    );
    let t = bot
        .say(
            ALICE,
            "request",
            json!([
                opt("app", "figma"),
                opt("reason", "landing page"),
                { "name": "emergency", "type": 5, "value": false }
            ]),
        )
        .await;
    assert!(t.starts_with("Request #1"), "{t}");
    bot.stop().await;
}

/// The step-up bot of `step_up.rs`, on the fake Discord.
async fn step_up_bot() -> Bot {
    step_up_bot_with(None).await
}

/// [`step_up_bot`] with an approvals channel.
async fn step_up_bot_with(approvals_channel: Option<&str>) -> Bot {
    let text = super::step_up::config("");
    let key = super::step_up::KEY;
    let c = config::parse(&text, std::path::Path::new("."), &|k| {
        (k == "QM_MFA_KEY").then(|| key.to_owned())
    })
    .unwrap();
    Bot::start_config(Mode::Endpoint, c, approvals_channel, Vec::new()).await
}

/// Enrols `who` through `/mfa enroll` and `/mfa confirm`, and moves the clock a step on.
async fn enrol_on_discord(bot: &Bot, who: (&str, &str)) -> quartermaster::core::totp::TotpSecret {
    let t = bot
        .say(
            who,
            "mfa",
            json!([{ "name": "enroll", "type": 1, "options": [] }]),
        )
        .await;
    let secret = t
        .lines()
        .find_map(|l| l.trim().strip_prefix("• secret: "))
        .unwrap_or_else(|| panic!("{t}"))
        .to_owned();
    let s = quartermaster::core::totp::TotpSecret::from_base32(&secret).unwrap();
    let code = s.code_at(quartermaster::core::ports::Clock::now(&*bot.clock).timestamp());
    let confirm = json!([{ "name": "confirm", "type": 1, "options": [
        { "name": "code", "type": 3, "value": code }
    ] }]);
    assert!(bot.say(who, "mfa", confirm).await.starts_with("Enrolled"));
    bot.clock
        .advance(quartermaster::core::model::Span::parse("30s").unwrap());
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_with_step_up_opens_a_modal_for_the_code_on_discord() {
    let bot = step_up_bot().await;
    let s = enrol_on_discord(&bot, BOB).await;
    let t = bot
        .say(
            FRANK,
            "request",
            json!([
                opt("app", "prod-db"),
                opt("reason", "INC-7"),
                opt("duration", "2h")
            ]),
        )
        .await;
    assert!(t.contains("waiting for Bob Chen"), "{t}");
    let prompt = bot.prompt_for(BOB.0, 1).await;
    let started = std::time::Instant::now();
    let (r, _) = bot.answer(&bot.fake.click(BOB, &prompt, "Approve")).await;
    assert_eq!(r["type"], 9, "Approve opens the code form at once: {r}");
    let field = &r["data"]["components"][0]["components"][0];
    assert_eq!(field["custom_id"], "code");
    let id = prompt.custom_id("Approve");
    let wrong = bot
        .fake
        .modal_submit(BOB, &prompt, &id, &[("code", "000000")]);
    let (r, t) = bot.answer(&wrong).await;
    assert_eq!(r["type"], 4);
    assert!(t.contains("not right"), "{t}");
    let code = s.code_at(quartermaster::core::ports::Clock::now(&*bot.clock).timestamp());
    let right = bot.fake.modal_submit(BOB, &prompt, &id, &[("code", &code)]);
    let (r, t) = bot.answer(&right).await;
    assert_eq!(r["type"], 4, "answered without a deferral: {r}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(t.contains("You approved request #1"), "{t}");
    bot.dm_where(DANA.0, "step 2's prompt", |m| {
        m.content.contains("Step 2 of 2")
    })
    .await;
    let rows = bot.store.audit_rows(None).await.unwrap();
    let approved = rows.iter().find(|r| r.action == "step.approved").unwrap();
    assert!(approved.detail.contains("step-up: totp"), "{approved:?}");
    assert!(rows.iter().all(|r| !r.detail.contains(&code)));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_through_the_fake_discord() {
    let bot = step_up_bot_with(Some(APPROVALS)).await;
    // Someone outside `who` is refused; nothing is granted.
    let t = bot
        .say(
            ("100000000000000010", "ken"),
            "request",
            json!([opt("app", "github"), opt("reason", "INC-1"), { "name": "emergency", "type": 5, "value": true }]),
        )
        .await;
    assert!(t.contains("only for the engineer role and carol"), "{t}");
    let r = bot
        .fake
        .deliver(&bot.fake.command(
            CAROL,
            "request",
            json!([
                opt("app", "github"),
                opt("reason", "INC-42"),
                { "name": "emergency", "type": 5, "value": true }
            ]),
        ))
        .await;
    assert_eq!(r["type"], 9, "the confirm form: {r}");
    assert_eq!(r["data"]["title"], "Break-glass: GitHub");
    let reason = &r["data"]["components"][0]["components"][0];
    assert_eq!(reason["value"], "INC-42");
    assert!(
        reason["placeholder"]
            .as_str()
            .unwrap()
            .contains("Grace Park"),
        "names who will be told: {reason}"
    );
    let id = r["data"]["custom_id"].as_str().unwrap().to_owned();
    let submit =
        bot.fake
            .command_modal_submit(CAROL, &id, &[("reason", "INC-42"), ("duration", "1h")]);
    let (_, t) = bot.answer(&submit).await;
    assert!(t.contains("GitHub is being granted now"), "{t}");
    let grace = ("100000000000000006", "grace");
    let m = bot
        .dm_where(grace.0, "the ratify prompt", |m| {
            m.buttons() == ["Ratify", "Revoke now"]
        })
        .await;
    assert!(
        m.content.contains("Carol Diaz took GitHub at once"),
        "{}",
        m.content
    );
    let (_, t) = bot.answer(&bot.fake.click(grace, &m, "Ratify")).await;
    assert!(t.contains("ratified by Grace Park"), "{t}");
    assert!(
        bot.audit_actions()
            .await
            .contains(&"break_glass.ratified".to_owned())
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_nobody_ratified_goes_to_it_on_discord() {
    let bot = step_up_bot().await;
    let r = bot
        .fake
        .deliver(&bot.fake.command(
            CAROL,
            "request",
            json!([opt("app", "github"), opt("reason", "INC-5"), { "name": "emergency", "type": 5, "value": true }]),
        ))
        .await;
    let id = r["data"]["custom_id"].as_str().unwrap().to_owned();
    let (_, t) = bot
        .answer(
            &bot.fake
                .command_modal_submit(CAROL, &id, &[("reason", "INC-5")]),
        )
        .await;
    assert!(t.contains("being granted now"), "{t}");
    // github's window is an hour, with auto_revoke: past it, IT is told and the access goes.
    bot.clock
        .advance(quartermaster::core::model::Span::parse("61m").unwrap());
    bot.server.as_ref().unwrap().service.tick().await.unwrap();
    let m = bot
        .dm_where(DANA.0, "IT told nobody ratified", |m| {
            m.content.contains("nobody ratified") && m.buttons() == ["Ratify", "Revoke now"]
        })
        .await;
    assert!(m.content.contains("being revoked"), "{}", m.content);
    let rows = bot.store.audit_rows(None).await.unwrap();
    assert!(rows.iter().any(|r| r.action == "break_glass.overdue"));
    // Blocked until IT settles it; IT's Ratify clears her.
    let again = json!([opt("app", "github"), opt("reason", "INC-6"), { "name": "emergency", "type": 5, "value": true }]);
    assert!(
        bot.say(CAROL, "request", again.clone())
            .await
            .contains("not ratified yet")
    );
    let (_, t) = bot.answer(&bot.fake.click(DANA, &m, "Ratify")).await;
    assert!(t.contains("settled by Dana Ortiz"), "{t}");
    let r = bot
        .fake
        .deliver(&bot.fake.command(CAROL, "request", again))
        .await;
    assert_eq!(r["type"], 9, "{r}");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_digest_in_the_approvals_channel_and_revoke_on_discord() {
    let bot = Bot::start_with(Mode::Endpoint, Some(APPROVALS)).await;
    bot.store
        .dir_create_account("directory", "alice", "alice@acme.test", "Alice Kim")
        .await
        .unwrap();
    bot.store
        .dir_add_member("directory", "alice", "wordpress")
        .await
        .unwrap();
    // Only IT may ask.
    let t = bot.say(ALICE, "drift", json!([])).await;
    assert_eq!(t, "/drift is for IT admins only.");
    let t = bot
        .say(DANA, "drift", json!([opt("connector", "directory")]))
        .await;
    assert!(t.contains("Reconciling directory now"), "{t}");
    let wait = std::time::Instant::now() + WAIT;
    let finding = loop {
        if let Some(m) = bot
            .fake
            .channel(APPROVALS)
            .into_iter()
            .find(|m| m.content.contains("Unrecorded access") && !m.buttons().is_empty())
        {
            break m;
        }
        assert!(
            std::time::Instant::now() < wait,
            "{:?}",
            bot.fake.channel(APPROVALS)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        finding.buttons(),
        ["Adopt", "Revoke", "Ignore", "Service account"]
    );
    let metrics = reqwest::get(format!("{}/metrics", bot.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "quartermaster_drift_findings{connector=\"directory\",class=\"unrecorded\"} 1"
        ) && metrics
            .contains("quartermaster_reconcile_last_success_seconds{connector=\"directory\"}")
            && metrics.contains("quartermaster_reconcile_failing{connector=\"directory\"} 0"),
        "{metrics}"
    );
    // Someone not IT is refused and nothing changes.
    let (_, t) = bot.answer(&bot.fake.click(ALICE, &finding, "Revoke")).await;
    assert_eq!(t, "drift is for IT admins only.");
    let (_, t) = bot.answer(&bot.fake.click(DANA, &finding, "Revoke")).await;
    assert!(t.contains("Revoke queued"), "{t}");
    let wait = std::time::Instant::now() + WAIT;
    while !bot
        .store
        .dir_memberships("directory", "alice")
        .await
        .unwrap()
        .is_empty()
    {
        assert!(std::time::Instant::now() < wait, "the membership stays");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let actions = bot.audit_actions().await;
    assert!(
        actions.contains(&"drift.resolved".to_owned()),
        "{actions:?}"
    );
    bot.stop().await;
}

/// An access review on Discord: `/review start` (a subcommand), the reviewer's page with
/// `LABEL · ITEM` buttons within Discord's component limits, a stranger's click refused, the
/// Revoke modal asking why, Keep all, and the page edited to show who decided what.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_review_is_decided_in_the_reviewers_dm() {
    let bot = Bot::start(Mode::Endpoint).await;
    for app in ["jira", "github", "notion"] {
        let t = bot
            .say(
                ALICE,
                "request",
                json!([opt("app", app), opt("reason", "work")]),
            )
            .await;
        assert!(t.starts_with("Request #"), "{t}");
    }
    let start =
        |scope: &str| json!([{ "name": "start", "type": 1, "options": [opt("scope", scope)] }]);
    assert_eq!(
        bot.say(ALICE, "review", start("role:engineer")).await,
        "/review is for IT admins only."
    );
    let t = bot.say(DANA, "review", start("role:engineer")).await;
    assert!(t.contains("Review #1 of role:engineer launched"), "{t}");
    let page = bot
        .dm_where(BOB.0, "the review page", |m| {
            m.content.contains("Access review #1 — Alice Kim") && !m.buttons().is_empty()
        })
        .await;
    assert_eq!(
        page.buttons(),
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
    // One row per app, and Keep all on its own.
    let rows: Vec<usize> = page
        .components
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["components"].as_array().unwrap().len())
        .collect();
    assert_eq!(rows, [2, 2, 2, 1]);
    // Someone else's click is refused and reveals nothing.
    let (_, t) = bot
        .answer(&bot.fake.click(FRANK, &page, "Keep · Jira"))
        .await;
    assert_eq!(t, "This button is not for you.");
    // Revoke asks why in a modal; the submission decides.
    let r = bot
        .fake
        .deliver(&bot.fake.click(BOB, &page, "Revoke · GitHub"))
        .await;
    assert_eq!(r["type"], 9, "a modal: {r}");
    let id = r["data"]["custom_id"].as_str().unwrap().to_owned();
    let (_, t) = bot
        .answer(
            &bot.fake
                .modal_submit(BOB, &page, &id, &[("reason", "moved teams")]),
        )
        .await;
    assert!(t.starts_with("Revoke recorded"), "{t}");
    let (_, t) = bot.answer(&bot.fake.click(BOB, &page, "Keep all")).await;
    assert_eq!(t, "Kept (2 accesses).");
    let edited = bot
        .dm_where(BOB.0, "the page edited", |m| {
            m.content.contains("Access review #1 — Alice Kim") && m.buttons().is_empty()
        })
        .await;
    assert!(
        edited
            .content
            .contains("Jira** — no end · seen on the target → kept (decided by bob)")
            && edited.content.contains("(decided by bob: moved teams)"),
        "{}",
        edited.content
    );
    let actions = bot.audit_actions().await;
    assert_eq!(actions.iter().filter(|a| *a == "review.decided").count(), 3);
    bot.stop().await;
}

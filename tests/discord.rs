//! Quartermaster on Discord, proven against the fake Discord in `tests/support/discord.rs`:
//! the real serenity client (REST through `api_base`, and the gateway) in both modes.

#[path = "support/discord.rs"]
mod fake;

use std::sync::Arc;
use std::time::Duration;

use fake::{APP_ID, APPROVALS, FakeDiscord, GENERAL, Msg};
use quartermaster::app;
use quartermaster::config::{self, DiscordConfig, DiscordMode};
use quartermaster::core::model::Handle;
use quartermaster::core::ports::{ManualClock, Store};
use quartermaster::server::{self, Server};
use quartermaster::store::SqlStore;
use serde_json::{Value, json};

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
    _dir: tempfile::TempDir,
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
        let fake = FakeDiscord::start().await;
        let mut config = config::load(None).unwrap();
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
        });
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("qm.db").display());
        let store = app::open_store(&config, &url).await.unwrap();
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
            _dir: dir,
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
        assert!(p1.content.contains(part), "{part:?} missing from {}", p1.content);
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
    let alice_dms: Vec<String> = bot.fake.dms(ALICE.0).into_iter().map(|m| m.content).collect();
    assert!(
        alice_dms
            .iter()
            .any(|t| t.contains("approved by Bob Chen; it is now waiting for Carol Diaz")),
        "{alice_dms:#?}"
    );

    // Every prompt now shows who decided and when, and has no buttons.
    let p1 = bot.fake.dms(BOB.0).into_iter().find(|m| m.id == p1.id).unwrap();
    assert!(p1.content.contains("✅ Approved by Bob Chen at 2026-11-25 09:00 UTC"), "{}", p1.content);
    assert!(p1.buttons().is_empty() && p1.edits >= 1);
    let p2 = bot.fake.dms(CAROL.0).into_iter().find(|m| m.id == p2.id).unwrap();
    assert!(p2.content.contains("✅ Approved by Carol Diaz at"), "{}", p2.content);
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
    bot.dm_where(BOB.0, "the manager told", |m| m.content == "Alice Kim now has Figma (request #1).").await;
    bot.dm_where(CAROL.0, "the owner told", |m| m.content == "Alice Kim now has Figma (request #1).").await;

    // Nothing the bot sent was refused by Discord's rules.
    let refused: Vec<_> = bot.fake.calls().into_iter().filter(|c| c.status >= 400).collect();
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

//! A protocol-faithful fake Discord for the test suite: REST under `/api/v10` and a websocket
//! gateway (HELLO → IDENTIFY → READY, heartbeats, dispatch), recording every call and enforcing
//! the rules the bot must live by:
//!
//! - the first response to an interaction within 3 s, else 10062 (Unknown interaction);
//! - one acknowledgement per interaction, else 40060 (already acknowledged);
//! - `custom_id` ≤ 100, ≤ 5 action rows of ≤ 5 buttons, labels ≤ 80, content ≤ 2000, else
//!   50035 (Invalid Form Body);
//! - DMs to a user who closed them: 50007 (Cannot send messages to this user);
//! - interaction tokens expire (after 15 minutes on Discord; here when the test says so):
//!   50027 (Invalid Webhook Token);
//! - injectable 429s with `Retry-After`;
//! - injectable failures of message creates ([`Fault`]): a 5xx, a 429 with its own
//!   `retry_after`, a connection dropped before or after the message was made, an answer
//!   that hangs after the message was made, and users
//!   whose DMs always fail with 500;
//! - `nonce` + `enforce_nonce` on create-message: a second create with the same nonce in the
//!   same channel returns the first message instead of making another (as Discord does
//!   within a few minutes).
//!
//! Interaction payloads come from ONE complete builder ([`FakeDiscord::interaction`]), and every
//! payload and message the fake produces is checked against serenity's own model first, since
//! serenity silently drops a payload that misses a required field.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message as Ws, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

/// The application's id.
pub const APP_ID: &str = "900000000000000001";
/// The bot user's id.
pub const BOT_ID: &str = "900000000000000002";
/// The guild the people share.
pub const GUILD_ID: &str = "800000000000000001";
/// A guild text channel where people type commands.
pub const GENERAL: &str = "800000000000000002";
/// The approvals channel.
pub const APPROVALS: &str = "800000000000000003";
/// The seed of the application's Ed25519 key.
pub const SEED: [u8; 32] = [7; 32];
/// Discord's first-response deadline.
pub const DEADLINE: Duration = Duration::from_secs(3);

/// A failure the fake answers the next message create with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// This HTTP status (500, 502, 503…) with a JSON error; nothing is made.
    Status(u16),
    /// 429 with this `retry_after` (seconds), in the body and the `Retry-After` header.
    RateLimit(f64),
    /// The connection drops before the request is looked at; nothing is made.
    DropBefore,
    /// The message is made, then the connection drops before the answer is complete (the
    /// bot cannot tell whether it worked).
    DropAfterCreate,
    /// The message is made, then the answer hangs this long (past the bot's call timeout,
    /// the bot cannot tell whether it worked).
    HangAfterCreate(Duration),
}

/// One REST call the bot made.
#[derive(Debug, Clone)]
pub struct Call {
    /// GET, POST, PATCH, PUT…
    pub method: String,
    /// The path after `/api/v10`.
    pub path: String,
    /// The JSON body (Null when none).
    pub body: Value,
    /// The status the fake answered.
    pub status: u16,
    /// Discord's JSON error code, for a refusal.
    pub code: Option<u64>,
    /// The `Authorization` header it came with (`Bot <token>` for the bot's own calls).
    pub auth: Option<String>,
    /// When it arrived.
    pub at: Instant,
}

/// A message as it now stands.
#[derive(Debug, Clone)]
pub struct Msg {
    /// Its id.
    pub id: String,
    /// Its channel.
    pub channel_id: String,
    /// The content.
    pub content: String,
    /// The components (action rows).
    pub components: Value,
    /// How many times it was edited.
    pub edits: u32,
}

impl Msg {
    /// The labels of the buttons still on it.
    pub fn buttons(&self) -> Vec<String> {
        self.button_ids().into_iter().map(|(l, _)| l).collect()
    }
    /// (label, custom_id) of every button on it.
    pub fn button_ids(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for row in self.components.as_array().into_iter().flatten() {
            for b in row["components"].as_array().into_iter().flatten() {
                out.push((
                    b["label"].as_str().unwrap_or_default().to_owned(),
                    b["custom_id"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        out
    }
    /// The custom_id of the button labelled `label`.
    pub fn custom_id(&self, label: &str) -> String {
        self.button_ids()
            .into_iter()
            .find(|(l, _)| l.eq_ignore_ascii_case(label))
            .map(|(_, c)| c)
            .unwrap_or_else(|| panic!("no {label} button on {:?}", self.content))
    }
}

/// An interaction the fake delivered.
#[derive(Debug, Clone)]
pub struct Inter {
    /// Its token.
    pub token: String,
    /// The channel it came from.
    pub channel_id: String,
    /// When it was delivered.
    pub created: Instant,
    /// The first response (the callback body).
    pub ack: Option<Value>,
    /// The original response as it now stands (after edits).
    pub original: Option<Value>,
    /// The token no longer works (15 minutes passed).
    pub expired: bool,
}

/// Everything the fake knows.
#[derive(Default)]
pub struct FakeState {
    next_id: u64,
    /// Every REST call, in order.
    pub calls: Vec<Call>,
    /// DM channel by user id.
    pub dm_channels: HashMap<String, String>,
    /// Messages by id (ids increase with time).
    pub messages: BTreeMap<u64, Msg>,
    /// Interactions by id.
    pub interactions: HashMap<String, Inter>,
    /// Users whose DMs are closed.
    pub closed_dms: HashSet<String>,
    /// The next N REST calls get 429.
    pub rate_limit_next: u32,
    /// Failures for the next message creates, in order.
    pub faults: VecDeque<Fault>,
    /// Users whose DM channel answers every message create with 500.
    pub failing_dms: HashSet<String>,
    /// Messages made under a nonce with `enforce_nonce`, by (channel, nonce).
    pub nonces: HashMap<(String, String), u64>,
    /// Global commands.
    pub global_commands: Vec<Value>,
    /// Commands by guild.
    pub guild_commands: HashMap<String, Vec<Value>>,
    gateway: Option<mpsc::UnboundedSender<String>>,
    seq: u64,
    /// IDENTIFY payloads received.
    pub identifies: Vec<Value>,
    /// Heartbeats received.
    pub heartbeats: u32,
    /// The bot's interactions endpoint, in endpoint mode.
    pub endpoint: Option<String>,
    /// The gateway URL `GET /gateway/bot` hands out instead of this fake's own (e.g. a
    /// closed port, for a gateway that never answers).
    pub gateway_url: Option<String>,
}

impl FakeState {
    fn snowflake(&mut self) -> u64 {
        self.next_id += 1;
        1_000_000_000_000_000_000 + self.next_id
    }
}

struct Shared {
    state: Mutex<FakeState>,
    changed: Notify,
    key: SigningKey,
    addr: SocketAddr,
}

/// The fake Discord.
#[derive(Clone)]
pub struct FakeDiscord {
    shared: Arc<Shared>,
    /// Where it listens.
    pub addr: SocketAddr,
}

// ------------------------------------------------------------------ JSON builders

/// A complete user object.
pub fn user_json(id: &str, name: &str, bot: bool) -> Value {
    json!({
        "id": id, "username": name, "discriminator": "0", "global_name": name,
        "avatar": null, "bot": bot, "system": false, "public_flags": 0, "flags": 0,
        "banner": null, "accent_color": null,
    })
}

fn member_json(user: &Value) -> Value {
    json!({
        "user": user, "nick": null, "avatar": null, "roles": [],
        "joined_at": "2026-01-05T09:00:00.000000+00:00", "premium_since": null,
        "deaf": false, "mute": false, "flags": 0, "pending": false,
        "permissions": "2248473465835073", "communication_disabled_until": null,
    })
}

fn message_json(m: &Msg, flags: u64) -> Value {
    let v = json!({
        "id": m.id, "channel_id": m.channel_id, "author": user_json(BOT_ID, "Quartermaster", true),
        "content": m.content, "timestamp": "2026-11-25T09:00:00.000000+00:00",
        "edited_timestamp": if m.edits > 0 { json!("2026-11-25T09:01:00.000000+00:00") } else { Value::Null },
        "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
        "attachments": [], "embeds": [], "pinned": false, "type": 0, "flags": flags,
        "components": m.components, "application_id": APP_ID, "webhook_id": null,
    });
    if let Err(e) = serde_json::from_value::<serenity::all::Message>(v.clone()) {
        panic!("the fake built a message serenity cannot read: {e}\n{v:#}");
    }
    v
}

fn error(status: StatusCode, code: u64, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({ "code": code, "message": message, "errors": {} }),
    )
}

fn form_error(why: String) -> (StatusCode, Value) {
    (
        StatusCode::BAD_REQUEST,
        json!({ "code": 50035, "message": format!("Invalid Form Body: {why}"), "errors": {} }),
    )
}

/// Checks message components as Discord does.
fn check_components(c: &Value) -> Result<(), String> {
    let Some(rows) = c.as_array() else {
        return if c.is_null() {
            Ok(())
        } else {
            Err("components must be an array".into())
        };
    };
    if rows.len() > 5 {
        return Err(format!("{} action rows (max 5)", rows.len()));
    }
    for row in rows {
        if row["type"] != 1 {
            return Err("a top-level component must be an action row".into());
        }
        let items = row["components"].as_array().cloned().unwrap_or_default();
        if items.is_empty() || items.len() > 5 {
            return Err(format!(
                "an action row holds {} components (1..=5)",
                items.len()
            ));
        }
        for b in items {
            let id = b["custom_id"].as_str().unwrap_or_default();
            if b["type"] == 2 || b["type"] == 4 {
                if id.is_empty() || id.chars().count() > 100 {
                    return Err(format!("custom_id {id:?} must be 1..=100 characters"));
                }
                if b["label"].as_str().is_some_and(|l| l.chars().count() > 80) {
                    return Err("label longer than 80".into());
                }
            }
            if b["type"] == 2 && !(1..=4).contains(&b["style"].as_u64().unwrap_or(0)) {
                return Err("a button with a custom_id needs style 1..=4".into());
            }
        }
    }
    Ok(())
}

fn check_message(body: &Value) -> Result<(), String> {
    if body["content"]
        .as_str()
        .is_some_and(|c| c.chars().count() > 2000)
    {
        return Err("content longer than 2000".into());
    }
    check_components(&body["components"])
}

fn check_callback(body: &Value) -> Result<(), String> {
    let t = body["type"].as_u64().unwrap_or(0);
    match t {
        1 | 4 | 5 | 6 | 7 => check_message(&body["data"]),
        8 => {
            let n = body["data"]["choices"].as_array().map_or(0, Vec::len);
            if n > 25 {
                return Err(format!("{n} choices (max 25)"));
            }
            Ok(())
        }
        9 => {
            let d = &body["data"];
            let id = d["custom_id"].as_str().unwrap_or_default();
            if id.is_empty() || id.chars().count() > 100 {
                return Err(format!("modal custom_id {id:?} must be 1..=100 characters"));
            }
            if d["title"]
                .as_str()
                .is_none_or(|t| t.is_empty() || t.chars().count() > 45)
            {
                return Err("modal title must be 1..=45 characters".into());
            }
            check_components(&d["components"])
        }
        _ => Err(format!("unknown callback type {t}")),
    }
}

/// Where an interaction happens.
#[derive(Debug, Clone)]
pub enum Place {
    /// A guild channel: the payload carries `member` (with `user`) and `guild_id`.
    Guild(String),
    /// A DM channel: the payload carries `user` only.
    Dm(String),
}

// ------------------------------------------------------------------ the fake

impl FakeDiscord {
    /// Starts a fake on a free port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::new(FakeState::default()),
            changed: Notify::new(),
            key: SigningKey::from_bytes(&SEED),
            addr,
        });
        let app = Router::new()
            .route("/gateway", get(gateway))
            .route("/api/v10/{*rest}", any(rest))
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { shared, addr }
    }

    /// `http://127.0.0.1:PORT`, the bot's `api_base`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The application's public key, hex.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.shared.key.verifying_key().to_bytes())
    }

    /// Reads the state.
    pub fn with<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        let mut s = self.shared.state.lock().unwrap();
        f(&mut s)
    }

    /// Every REST call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.with(|s| s.calls.clone())
    }

    /// Endpoint mode: interactions are POSTed, signed, to this URL.
    pub fn set_endpoint(&self, url: String) {
        self.with(|s| s.endpoint = Some(url));
    }

    /// The user no longer accepts DMs from the bot.
    pub fn close_dms(&self, user: &str) {
        self.with(|s| s.closed_dms.insert(user.to_owned()));
    }

    /// The next `n` REST calls get 429.
    pub fn rate_limit_next(&self, n: u32) {
        self.with(|s| s.rate_limit_next = n);
    }

    /// The next message creates fail with these faults, in order.
    pub fn fail_next_creates(&self, faults: &[Fault]) {
        self.with(|s| s.faults.extend(faults.iter().copied()));
    }

    /// Every message to this user's DMs fails with 500 from now on.
    pub fn break_dms(&self, user: &str) {
        self.with(|s| s.failing_dms.insert(user.to_owned()));
    }

    /// The creates (POST …/messages) the bot made so far, with the status answered.
    pub fn creates(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| {
                c.method == "POST"
                    && c.path.starts_with("/channels/")
                    && c.path.ends_with("/messages")
            })
            .collect()
    }

    /// Makes an interaction look `by` older (to test the 3 s deadline without waiting).
    pub fn age_interaction(&self, id: &str, by: Duration) {
        self.with(|s| {
            if let Some(i) = s.interactions.get_mut(id) {
                i.created -= by;
            }
        });
    }

    /// Registers an interaction without delivering it (to drive the REST rules directly).
    pub fn register_only(&self, payload: &Value) -> String {
        self.register(payload)
    }

    /// Fifteen minutes pass for every interaction delivered so far: their tokens stop working.
    pub fn expire_tokens(&self) {
        self.with(|s| s.interactions.values_mut().for_each(|i| i.expired = true));
    }

    /// Waits until `pred` holds, or panics after `timeout` with `what`.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&FakeState) -> bool,
    ) {
        let end = Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            if self.with(|s| pred(s)) {
                return;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("timed out waiting for: {what}");
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), notified).await;
        }
    }

    /// Waits until the bot said IDENTIFY on the gateway.
    pub async fn wait_gateway(&self) {
        self.wait_until(
            "the bot to identify on the gateway",
            Duration::from_secs(10),
            |s| !s.identifies.is_empty() && s.gateway.is_some(),
        )
        .await
    }

    /// Messages in the DM channel with `user`, oldest first.
    pub fn dms(&self, user: &str) -> Vec<Msg> {
        self.with(|s| {
            let Some(ch) = s.dm_channels.get(user).cloned() else {
                return Vec::new();
            };
            s.messages
                .values()
                .filter(|m| m.channel_id == ch)
                .cloned()
                .collect()
        })
    }

    /// Messages in a channel, oldest first.
    pub fn channel(&self, channel: &str) -> Vec<Msg> {
        self.with(|s| {
            s.messages
                .values()
                .filter(|m| m.channel_id == channel)
                .cloned()
                .collect()
        })
    }

    /// The DM channel id with `user`.
    pub fn dm_channel(&self, user: &str) -> String {
        self.with(|s| s.dm_channels.get(user).cloned())
            .unwrap_or_else(|| panic!("no DM channel with {user}"))
    }

    /// An interaction's state.
    pub fn inter(&self, id: &str) -> Inter {
        self.with(|s| s.interactions.get(id).cloned())
            .unwrap_or_else(|| panic!("no interaction {id}"))
    }

    // -------------------------------------------------------------- fixtures

    /// THE interaction builder: every fixture is built here, complete, and checked against
    /// serenity's model (which drops incomplete payloads silently).
    pub fn interaction(
        &self,
        kind: u8,
        user: (&str, &str),
        place: Place,
        data: Value,
        message: Option<Value>,
    ) -> Value {
        let (id, token) = self.with(|s| {
            let id = s.snowflake().to_string();
            (id.clone(), format!("tok-{id}-{}", s.snowflake()))
        });
        let u = user_json(user.0, user.1, false);
        let (channel_id, channel_type) = match &place {
            Place::Guild(c) => (c.clone(), 0),
            Place::Dm(c) => (c.clone(), 1),
        };
        let mut v = json!({
            "id": id,
            "application_id": APP_ID,
            "type": kind,
            "data": data,
            "channel": { "id": channel_id, "type": channel_type },
            "channel_id": channel_id,
            "token": token,
            "version": 1,
            "app_permissions": "2248473465835073",
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": { "0": GUILD_ID },
            "attachment_size_limit": 26_214_400,
        });
        match place {
            Place::Guild(_) => {
                v["guild_id"] = json!(GUILD_ID);
                v["guild_locale"] = json!("en-US");
                v["member"] = member_json(&u);
                v["context"] = json!(0);
            }
            Place::Dm(_) => {
                v["user"] = u;
                v["context"] = json!(1);
            }
        }
        if let Some(m) = message {
            v["message"] = m;
        }
        if let Err(e) = serde_json::from_value::<serenity::all::Interaction>(v.clone()) {
            panic!("the fake built an interaction serenity cannot read: {e}\n{v:#}");
        }
        v
    }

    /// A slash command typed in the general channel; `options` as Discord sends them.
    pub fn command(&self, user: (&str, &str), name: &str, options: Value) -> Value {
        let data =
            json!({ "id": "700000000000000001", "name": name, "type": 1, "options": options });
        self.interaction(2, user, Place::Guild(GENERAL.into()), data, None)
    }

    /// A user option's resolved data is included as Discord does.
    pub fn command_with_user(
        &self,
        user: (&str, &str),
        name: &str,
        options: Value,
        target: (&str, &str),
    ) -> Value {
        let data = json!({
            "id": "700000000000000002", "name": name, "type": 1, "options": options,
            "resolved": { "users": { target.0: user_json(target.0, target.1, false) } },
        });
        self.interaction(2, user, Place::Guild(GENERAL.into()), data, None)
    }

    /// Autocomplete of `/request app:` with `typed` so far.
    pub fn autocomplete(&self, user: (&str, &str), typed: &str) -> Value {
        let data = json!({
            "id": "700000000000000001", "name": "request", "type": 1,
            "options": [{ "name": "app", "type": 3, "value": typed, "focused": true }],
        });
        self.interaction(4, user, Place::Guild(GENERAL.into()), data, None)
    }

    /// A click on a button of message `m` (in a DM: `user` only; in a guild channel: `member`).
    pub fn click(&self, user: (&str, &str), m: &Msg, label: &str) -> Value {
        let custom_id = m.custom_id(label);
        let dm = self.with(|s| s.dm_channels.values().any(|c| *c == m.channel_id));
        let place = if dm {
            Place::Dm(m.channel_id.clone())
        } else {
            Place::Guild(m.channel_id.clone())
        };
        let data = json!({ "custom_id": custom_id, "component_type": 2 });
        self.interaction(3, user, place, data, Some(message_json(m, 0)))
    }

    /// The submission of a modal opened from message `m`.
    pub fn modal_submit(
        &self,
        user: (&str, &str),
        m: &Msg,
        custom_id: &str,
        fields: &[(&str, &str)],
    ) -> Value {
        let rows: Vec<Value> = fields
            .iter()
            .map(|(k, v)| {
                json!({ "type": 1, "components": [{ "type": 4, "custom_id": k, "value": v }] })
            })
            .collect();
        let dm = self.with(|s| s.dm_channels.values().any(|c| *c == m.channel_id));
        let place = if dm {
            Place::Dm(m.channel_id.clone())
        } else {
            Place::Guild(m.channel_id.clone())
        };
        let data = json!({ "custom_id": custom_id, "components": rows });
        self.interaction(5, user, place, data, Some(message_json(m, 0)))
    }

    // -------------------------------------------------------------- delivery

    fn register(&self, payload: &Value) -> String {
        let id = payload["id"].as_str().unwrap().to_owned();
        let token = payload["token"].as_str().unwrap().to_owned();
        let channel_id = payload["channel_id"].as_str().unwrap().to_owned();
        self.with(|s| {
            s.interactions.insert(
                id.clone(),
                Inter {
                    token,
                    channel_id,
                    created: Instant::now(),
                    ack: None,
                    original: None,
                    expired: false,
                },
            )
        });
        id
    }

    /// Delivers an interaction as Discord would (over the gateway, or POSTed signed to the
    /// endpoint) and returns the bot's first response, or panics if none came within 3 s.
    pub async fn deliver(&self, payload: &Value) -> Value {
        let id = self.register(payload);
        let endpoint = self.with(|s| s.endpoint.clone());
        match endpoint {
            Some(url) => {
                let body = serde_json::to_vec(payload).unwrap();
                let started = Instant::now();
                let (status, resp) = self.post_signed(&url, &body, None).await;
                assert_eq!(status, 200, "the endpoint answered {status}: {resp}");
                assert!(
                    started.elapsed() < DEADLINE,
                    "the endpoint took {:?} (Discord gives up after 3 s)",
                    started.elapsed()
                );
                let v: Value = serde_json::from_str(&resp).unwrap();
                if let Err(e) = check_callback(&v) {
                    panic!("Discord would refuse this response (50035): {e}\n{v:#}");
                }
                self.with(|s| {
                    let i = s.interactions.get_mut(&id).unwrap();
                    i.ack = Some(v.clone());
                    if matches!(v["type"].as_u64(), Some(4 | 5)) {
                        i.original = Some(v["data"].clone());
                    }
                });
                self.shared.changed.notify_waiters();
                v
            }
            None => {
                self.dispatch("INTERACTION_CREATE", payload.clone());
                self.wait_until(
                    "the bot's first response to an interaction",
                    DEADLINE,
                    |s| s.interactions.get(&id).is_some_and(|i| i.ack.is_some()),
                )
                .await;
                self.inter(&id).ack.unwrap()
            }
        }
    }

    /// POSTs `body` to the endpoint signed with the application's key (or with `tamper` bytes
    /// appended after signing) and the current timestamp; returns status and body.
    pub async fn post_signed(&self, url: &str, body: &[u8], ts: Option<i64>) -> (u16, String) {
        let ts = ts
            .unwrap_or_else(|| chrono::Utc::now().timestamp())
            .to_string();
        let mut msg = ts.as_bytes().to_vec();
        msg.extend_from_slice(body);
        let sig = hex::encode(self.shared.key.sign(&msg).to_bytes());
        self.post_raw(url, body, &sig, &ts).await
    }

    /// POSTs with the given signature and timestamp headers.
    pub async fn post_raw(&self, url: &str, body: &[u8], sig: &str, ts: &str) -> (u16, String) {
        let r = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header("x-signature-ed25519", sig)
            .header("x-signature-timestamp", ts)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    /// Sends a gateway dispatch (op 0).
    pub fn dispatch(&self, t: &str, d: Value) {
        self.with(|s| {
            s.seq += 1;
            let frame = json!({ "op": 0, "t": t, "s": s.seq, "d": d }).to_string();
            s.gateway
                .as_ref()
                .expect("the bot is not connected to the gateway")
                .send(frame)
                .unwrap();
        });
    }
}

// ------------------------------------------------------------------ REST

fn reply(status: StatusCode, v: Value) -> Response {
    if status == StatusCode::NO_CONTENT {
        return status.into_response();
    }
    (status, axum::Json(v)).into_response()
}

async fn rest(
    State(sh): State<Arc<Shared>>,
    method: Method,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_create =
        method == Method::POST && rest.starts_with("channels/") && rest.ends_with("/messages");
    let mut drop_answer = false;
    let mut hang: Option<Duration> = None;
    let mut retry_after: Option<f64> = None;
    let (status, v) = {
        let mut s = sh.state.lock().unwrap();
        let limited = s.rate_limit_next > 0 && !rest.starts_with("gateway");
        let fault = if is_create {
            s.faults.pop_front()
        } else {
            None
        };
        let (status, v) = if let Some(f) = fault {
            match f {
                Fault::Status(code) => (
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    json!({ "message": "Service unavailable", "code": 0 }),
                ),
                Fault::RateLimit(secs) => {
                    retry_after = Some(secs);
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        json!({ "message": "You are being rate limited.", "retry_after": secs, "global": false, "code": 0 }),
                    )
                }
                Fault::DropBefore => {
                    drop_answer = true;
                    (StatusCode::OK, Value::Null)
                }
                Fault::DropAfterCreate => {
                    drop_answer = true;
                    route(&mut s, sh.addr, &method, &rest, &body)
                }
                Fault::HangAfterCreate(d) => {
                    hang = Some(d);
                    route(&mut s, sh.addr, &method, &rest, &body)
                }
            }
        } else if limited {
            s.rate_limit_next -= 1;
            (
                StatusCode::TOO_MANY_REQUESTS,
                json!({ "message": "You are being rate limited.", "retry_after": 0.05, "global": false, "code": 0 }),
            )
        } else {
            route(&mut s, sh.addr, &method, &rest, &body)
        };
        let code = if status.is_success() {
            None
        } else {
            v["code"].as_u64()
        };
        s.calls.push(Call {
            method: method.to_string(),
            path: format!("/{rest}"),
            body,
            status: status.as_u16(),
            code,
            auth,
            at: Instant::now(),
        });
        (status, v)
    };
    sh.changed.notify_waiters();
    if let Some(d) = hang {
        // Outside the lock: other calls go on meanwhile.
        tokio::time::sleep(d).await;
    }
    if drop_answer {
        // Headers, then a body that breaks: the connection is cut mid-answer.
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("content-length", "512")
            .body(axum::body::Body::new(Broken))
            .unwrap();
    }
    let mut r = reply(status, v);
    if status == StatusCode::TOO_MANY_REQUESTS {
        let secs = retry_after.unwrap_or(0.05).to_string();
        r.headers_mut().insert(
            "retry-after",
            axum::http::HeaderValue::from_str(&secs).unwrap(),
        );
    }
    r
}

/// A response body that fails at once: hyper cuts the connection.
struct Broken;

impl axum::body::HttpBody for Broken {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::other("connection dropped"))))
    }
}

fn route(
    s: &mut FakeState,
    addr: SocketAddr,
    method: &Method,
    rest: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let seg: Vec<&str> = rest.split('/').collect();
    match (method.as_str(), seg.as_slice()) {
        ("GET", ["gateway"]) => (
            StatusCode::OK,
            json!({ "url": s.gateway_url.clone().unwrap_or_else(|| format!("ws://{addr}/gateway")) }),
        ),
        ("GET", ["gateway", "bot"]) => (
            StatusCode::OK,
            json!({
                "url": s.gateway_url.clone().unwrap_or_else(|| format!("ws://{addr}/gateway")),
                "shards": 1,
                "session_start_limit": { "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1 },
            }),
        ),
        ("GET", ["users", "@me"]) => (StatusCode::OK, user_json(BOT_ID, "Quartermaster", true)),
        ("GET", ["applications", "@me"]) => (
            StatusCode::OK,
            json!({ "id": APP_ID, "name": "Quartermaster", "bot_public": false }),
        ),
        ("POST", ["users", "@me", "channels"]) => {
            let Some(user) = body["recipient_id"].as_str().map(str::to_owned) else {
                return form_error("recipient_id is required".into());
            };
            let ch = match s.dm_channels.get(&user) {
                Some(c) => c.clone(),
                None => {
                    let c = s.snowflake().to_string();
                    s.dm_channels.insert(user.clone(), c.clone());
                    c
                }
            };
            (
                StatusCode::OK,
                json!({
                    "id": ch, "type": 1, "last_message_id": null,
                    "recipients": [user_json(&user, "someone", false)],
                }),
            )
        }
        ("POST", ["channels", ch, "messages"]) => {
            if let Err(e) = check_message(body) {
                return form_error(e);
            }
            let dm_user = s
                .dm_channels
                .iter()
                .find(|(_, c)| c.as_str() == *ch)
                .map(|(u, _)| u.clone());
            if dm_user.is_none() && *ch != GENERAL && *ch != APPROVALS {
                return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
            }
            if dm_user.as_ref().is_some_and(|u| s.closed_dms.contains(u)) {
                return error(
                    StatusCode::FORBIDDEN,
                    50007,
                    "Cannot send messages to this user",
                );
            }
            if dm_user.as_ref().is_some_and(|u| s.failing_dms.contains(u)) {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    0,
                    "500: Internal Server Error",
                );
            }
            let nonce = match &body["nonce"] {
                Value::String(n) => Some(n.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            if nonce.as_ref().is_some_and(|n| n.chars().count() > 25) {
                return form_error("nonce longer than 25".into());
            }
            let enforce = body["enforce_nonce"].as_bool().unwrap_or(false);
            if let (Some(n), true) = (&nonce, enforce)
                && let Some(id) = s.nonces.get(&((*ch).to_owned(), n.clone()))
                && let Some(m) = s.messages.get(id)
            {
                return (StatusCode::OK, message_json(m, 0));
            }
            let id = s.snowflake();
            if let (Some(n), true) = (nonce, enforce) {
                s.nonces.insert(((*ch).to_owned(), n), id);
            }
            let m = Msg {
                id: id.to_string(),
                channel_id: (*ch).to_owned(),
                content: body["content"].as_str().unwrap_or_default().to_owned(),
                components: body.get("components").cloned().unwrap_or(json!([])),
                edits: 0,
            };
            let v = message_json(&m, 0);
            s.messages.insert(id, m);
            (StatusCode::OK, v)
        }
        ("PATCH", ["channels", ch, "messages", mid]) => {
            if let Err(e) = check_message(body) {
                return form_error(e);
            }
            let Some(m) = mid
                .parse::<u64>()
                .ok()
                .and_then(|id| s.messages.get_mut(&id))
                .filter(|m| m.channel_id == *ch)
            else {
                return error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
            };
            if let Some(c) = body["content"].as_str() {
                m.content = c.to_owned();
            }
            if let Some(c) = body.get("components") {
                m.components = c.clone();
            }
            m.edits += 1;
            let v = message_json(m, 0);
            (StatusCode::OK, v)
        }
        ("POST", ["interactions", id, token, "callback"]) => {
            let Some(i) = s.interactions.get_mut(*id).filter(|i| i.token == *token) else {
                return error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
            };
            if i.ack.is_some() {
                return error(
                    StatusCode::BAD_REQUEST,
                    40060,
                    "Interaction has already been acknowledged.",
                );
            }
            if i.created.elapsed() > DEADLINE {
                return error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
            }
            if let Err(e) = check_callback(body) {
                return form_error(e);
            }
            i.ack = Some(body.clone());
            if matches!(body["type"].as_u64(), Some(4 | 5)) {
                i.original = Some(body["data"].clone());
            }
            (StatusCode::NO_CONTENT, Value::Null)
        }
        ("PATCH", ["webhooks", app, token, "messages", "@original"]) => {
            if *app != APP_ID {
                return error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
            }
            if let Err(e) = check_message(body) {
                return form_error(e);
            }
            let Some((iid, i)) = s
                .interactions
                .iter_mut()
                .find(|(_, i)| i.token == *token)
                .map(|(k, i)| (k.clone(), i))
            else {
                return error(StatusCode::UNAUTHORIZED, 50027, "Invalid Webhook Token");
            };
            if i.expired {
                return error(StatusCode::UNAUTHORIZED, 50027, "Invalid Webhook Token");
            }
            if i.ack.is_none() {
                return error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
            }
            let mut orig = i.original.clone().unwrap_or(json!({}));
            for k in ["content", "components"] {
                if let Some(v) = body.get(k) {
                    orig[k] = v.clone();
                }
            }
            i.original = Some(orig.clone());
            let m = Msg {
                id: iid,
                channel_id: i.channel_id.clone(),
                content: orig["content"].as_str().unwrap_or_default().to_owned(),
                components: orig.get("components").cloned().unwrap_or(json!([])),
                edits: 1,
            };
            (StatusCode::OK, message_json(&m, 64))
        }
        ("PUT", ["applications", app, "commands"]) => {
            if *app != APP_ID {
                return error(StatusCode::FORBIDDEN, 50001, "Missing Access");
            }
            let old = s.global_commands.clone();
            match overwrite(s, &old, body, None) {
                Ok(v) => {
                    s.global_commands = v.clone();
                    (StatusCode::OK, Value::Array(v))
                }
                Err(e) => form_error(e),
            }
        }
        ("PUT", ["applications", app, "guilds", g, "commands"]) => {
            if *app != APP_ID {
                return error(StatusCode::FORBIDDEN, 50001, "Missing Access");
            }
            let old = s.guild_commands.get(*g).cloned().unwrap_or_default();
            match overwrite(s, &old, body, Some(g)) {
                Ok(v) => {
                    s.guild_commands.insert((*g).to_owned(), v.clone());
                    (StatusCode::OK, Value::Array(v))
                }
                Err(e) => form_error(e),
            }
        }
        _ => error(StatusCode::NOT_FOUND, 0, "404: Not Found"),
    }
}

/// Bulk overwrite: commands keep their id (and version) when their name and content are
/// unchanged, as Discord does.
fn overwrite(
    s: &mut FakeState,
    old: &[Value],
    body: &Value,
    guild: Option<&str>,
) -> Result<Vec<Value>, String> {
    let Some(cmds) = body.as_array() else {
        return Err("the body must be an array of commands".into());
    };
    let mut out = Vec::new();
    for c in cmds {
        let name = c["name"].as_str().unwrap_or_default();
        if name.is_empty() || name.len() > 32 || name.to_lowercase() != name {
            return Err(format!("bad command name {name:?}"));
        }
        let desc = c["description"].as_str().unwrap_or_default();
        if desc.is_empty() || desc.chars().count() > 100 {
            return Err(format!("/{name}: description must be 1..=100 characters"));
        }
        let prev = old.iter().find(|o| o["name"] == name);
        let same = prev
            .is_some_and(|p| p["options"] == c["options"] && p["description"] == c["description"]);
        let (id, version) = match prev {
            Some(p) if same => (p["id"].clone(), p["version"].clone()),
            Some(p) => (p["id"].clone(), json!(s.snowflake().to_string())),
            None => (
                json!(s.snowflake().to_string()),
                json!(s.snowflake().to_string()),
            ),
        };
        let mut v = c.clone();
        v["id"] = id;
        v["version"] = version;
        v["application_id"] = json!(APP_ID);
        v["type"] = c.get("type").cloned().unwrap_or(json!(1));
        v["guild_id"] = guild.map_or(Value::Null, |g| json!(g));
        v["options"] = c.get("options").cloned().unwrap_or(json!([]));
        // Kept as sent (a permission bit set as a string; "0": admins only), else null.
        v["default_member_permissions"] = c
            .get("default_member_permissions")
            .cloned()
            .unwrap_or(Value::Null);
        v["nsfw"] = json!(false);
        if let Err(e) = serde_json::from_value::<serenity::all::Command>(v.clone()) {
            return Err(format!("/{name}: {e}"));
        }
        out.push(v);
    }
    Ok(out)
}

// ------------------------------------------------------------------ gateway

async fn gateway(State(sh): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| session(sh, socket))
}

async fn session(sh: Arc<Shared>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let hello = json!({ "op": 10, "d": { "heartbeat_interval": 41250 }, "s": null, "t": null });
    if socket
        .send(Ws::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(frame) = out else { return };
                if socket.send(Ws::Text(frame.into())).await.is_err() {
                    return;
                }
            }
            inc = socket.recv() => {
                let Some(Ok(msg)) = inc else { return };
                let text = match msg {
                    Ws::Text(t) => t.to_string(),
                    Ws::Close(_) => return,
                    _ => continue,
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                match v["op"].as_u64() {
                    Some(2) => {
                        let ready = {
                            let mut s = sh.state.lock().unwrap();
                            s.identifies.push(v["d"].clone());
                            s.gateway = Some(tx.clone());
                            s.seq += 1;
                            json!({
                                "op": 0, "t": "READY", "s": s.seq,
                                "d": {
                                    "v": 10,
                                    "user": user_json(BOT_ID, "Quartermaster", true),
                                    "guilds": [{ "id": GUILD_ID, "unavailable": true }],
                                    "session_id": "fake-session-1",
                                    "resume_gateway_url": format!("ws://{}/gateway", sh.addr),
                                    "shard": [0, 1],
                                    "application": { "id": APP_ID, "flags": 0 },
                                }
                            })
                        };
                        sh.changed.notify_waiters();
                        if socket.send(Ws::Text(ready.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                    Some(1) => {
                        sh.state.lock().unwrap().heartbeats += 1;
                        let ack = json!({ "op": 11, "d": null, "s": null, "t": null });
                        if socket.send(Ws::Text(ack.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

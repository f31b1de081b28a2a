//! The fake's handle for tests: starting it, injecting failures, delivering interactions,
//! reading what the bot did.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{any, get};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::gateway::gateway;
use super::json::{check_callback, member_json, message_json, user_json};
use super::rest::rest;
use super::{
    APP_ID, Call, DEADLINE, FakeDiscord, FakeState, Fault, GENERAL, GUILD_ID, Inter, Msg, Place,
    SEED, Shared,
};

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

    /// Enforces Discord's rate limits from now on (headers on limited routes, 429 over a
    /// limit, each such call counted).
    pub fn enforce_rate_limits(&self, limits: super::Limits) {
        self.with(|s| s.rates = Some(super::limits::RateState::new(limits)));
    }

    /// The calls refused for going over a limit so far.
    pub fn rate_violations(&self) -> super::Violations {
        self.with(|s| s.rates.as_ref().map(|r| r.violations).unwrap_or_default())
    }

    /// The next message creates fail with these faults, in order.
    pub fn fail_next_creates(&self, faults: &[Fault]) {
        self.with(|s| s.faults.extend(faults.iter().copied()));
    }

    /// Every message to this user's DMs fails with 500 from now on.
    pub fn break_dms(&self, user: &str) {
        self.with(|s| s.failing_dms.insert(user.to_owned()));
    }

    /// The next `n` message creates in this channel fail with 500.
    pub fn fail_next_creates_in(&self, channel: &str, n: u32) {
        self.with(|s| s.failing_creates_in.insert(channel.to_owned(), n));
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

    /// The submission of a modal a slash command opened (no message behind it).
    pub fn command_modal_submit(
        &self,
        user: (&str, &str),
        custom_id: &str,
        fields: &[(&str, &str)],
    ) -> Value {
        let rows: Vec<Value> = fields
            .iter()
            .map(|(k, v)| {
                json!({ "type": 1, "components": [{ "type": 4, "custom_id": k, "value": v }] })
            })
            .collect();
        let data = json!({ "custom_id": custom_id, "components": rows });
        self.interaction(5, user, Place::Guild(GENERAL.into()), data, None)
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

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
//! - when a test turns them on, Discord's rate limits: the global 50 requests/s and per-route
//!   buckets (message creation per channel, DM channel creation) with Discord's headers, a
//!   429 (`retry_after`, `global`, `Retry-After`, `X-RateLimit-Scope`) for a call over one,
//!   every such call counted (see `limits`);
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

mod fake;
mod gateway;
mod json;
mod limits;
mod rest;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

pub use json::user_json;
pub use limits::{Limits, Violations};

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
    /// Discord's rate limits, when a test turned them on.
    pub rates: Option<limits::RateState>,
    /// Failures for the next message creates, in order.
    pub faults: VecDeque<Fault>,
    /// Users whose DM channel answers every message create with 500.
    pub failing_dms: HashSet<String>,
    /// Channels whose next N message creates are answered with 500.
    pub failing_creates_in: HashMap<String, u32>,
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

/// Where an interaction happens.
#[derive(Debug, Clone)]
pub enum Place {
    /// A guild channel: the payload carries `member` (with `user`) and `guild_id`.
    Guild(String),
    /// A DM channel: the payload carries `user` only.
    Dm(String),
}

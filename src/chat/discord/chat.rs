//! The core's `Chat` port over serenity's REST client.
//!
//! A message to a person is a DM (the DM channel is opened on first use). Messages sent under a
//! key are remembered in the database (`discord_messages`), so a decision edits every copy of a
//! prompt, also after a restart. The approvals channel is the core's fallback channel (the
//! core decides what goes there: prompts' copies, undeliverable messages). A DM Discord
//! refuses (50007) is [`ChatError::DmClosed`]: the core's outbox decides where it goes
//! instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::json;
use serenity::http::Http;
use serenity::model::id::{ChannelId, MessageId, UserId};
use tracing::warn;

use super::limits::{RateLimiter, Seen};
use super::{CALL_TIMEOUT, CANNOT_DM, DiscordError, message_body, with_retry};
use crate::core::model::{Handle, Person, Timestamp};
use crate::core::ports::{
    Button, Chat, ChatError, Clock, Message, MessageKey, Recipient, SentMessage, SentMessages,
    Store,
};

/// How long Discord accepts an interaction token (edits of the original response).
pub const TOKEN_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// An ephemeral interaction reply that carries a key (a plan's Confirm/Cancel): it can be edited
/// through the interaction token only while the token lives.
#[derive(Clone)]
struct KeyedReply {
    token: String,
    to: Handle,
    at: Timestamp,
}

/// `Chat` over Discord.
pub struct DiscordChat {
    http: Arc<Http>,
    /// Who people are (their Discord ids).
    store: Arc<dyn Store>,
    /// Where each keyed message went.
    sent: Arc<dyn SentMessages>,
    clock: Arc<dyn Clock>,
    approvals_channel: Option<ChannelId>,
    dm_channels: Mutex<HashMap<UserId, ChannelId>>,
    replies: Mutex<HashMap<MessageKey, Vec<KeyedReply>>>,
    /// Runs the create-message calls that serenity's request builder makes, so their 429's
    /// `Retry-After` is seen (serenity's error drops it).
    raw: reqwest::Client,
    /// `[discord] api_base`, where those calls go instead of Discord.
    api_base: Option<String>,
    /// Discord's limits on those calls (serenity's limiter does not see them).
    limits: RateLimiter,
}

impl DiscordChat {
    /// The port over `http`, with the store's people and its memory of sent messages;
    /// `approvals_channel` is the channel id from `[discord]`.
    pub fn new<S: Store + SentMessages + 'static>(
        http: Arc<Http>,
        store: Arc<S>,
        clock: Arc<dyn Clock>,
        approvals_channel: Option<&str>,
    ) -> Self {
        let approvals_channel = approvals_channel
            .and_then(|c| c.parse::<u64>().ok())
            .filter(|n| *n != 0)
            .map(ChannelId::new);
        Self {
            http,
            store: store.clone(),
            sent: store,
            clock,
            approvals_channel,
            dm_channels: Mutex::new(HashMap::new()),
            replies: Mutex::new(HashMap::new()),
            raw: reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                .build()
                .unwrap_or_default(),
            api_base: None,
            limits: RateLimiter::default(),
        }
    }

    /// Sends REST calls to this Discord API proxy (`[discord] api_base`).
    pub fn with_api_base(mut self, base: Option<String>) -> Self {
        self.api_base = base;
        self
    }

    /// Creates a message (see [`Self::call`]). A dropped connection or a timeout may hide a
    /// success: the body's `nonce` then keeps the retry from posting twice.
    async fn create_message(
        &self,
        channel: ChannelId,
        body: &serde_json::Value,
    ) -> Result<MessageId, DiscordError> {
        use serenity::http::{LightMethod, Route};
        let route = Route::ChannelMessages {
            channel_id: channel,
        };
        let key = format!("POST channels/{channel}/messages");
        let v = self.call(route, LightMethod::Post, &key, body).await?;
        v["id"]
            .as_str()
            .and_then(|id| id.parse::<u64>().ok())
            .filter(|n| *n != 0)
            .map(MessageId::new)
            .ok_or_else(|| DiscordError::Other("create message: no id in the answer".into()))
    }

    /// One REST call: serenity's request (route, headers, token) run by our client under our
    /// [`RateLimiter`] (`key` names its bucket), so Discord's rate-limit headers and a 429's
    /// `Retry-After` are seen (serenity's error drops them). A spent bucket, or a 429, is
    /// [`DiscordError::RateLimited`] with the wait, left to the outbox to honour.
    async fn call(
        &self,
        route: serenity::http::Route<'_>,
        method: serenity::http::LightMethod,
        key: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, DiscordError> {
        use serenity::http::Request;
        if let Err(wait) = self.limits.acquire(key).await {
            return Err(DiscordError::RateLimited {
                retry_after: Some(wait),
            });
        }
        let bytes = serde_json::to_vec(body).map_err(|e| DiscordError::Other(e.to_string()))?;
        let req = Request::new(route, method)
            .body(Some(bytes))
            .build(&self.raw, self.http.token(), self.api_base.as_deref())
            .map_err(DiscordError::from)?;
        let resp = req
            .send()
            .await
            .map_err(|e| DiscordError::Other(format!("{key}: {e}")))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp
            .bytes()
            .await
            .map_err(|e| DiscordError::Other(format!("{key}: {e}")))?;
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
        let seen = Seen::of(status, &headers, &v);
        self.limits.observe(key, seen);
        if status == 429 {
            return Err(DiscordError::RateLimited {
                retry_after: seen
                    .retry_after
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(|s| std::time::Duration::from_secs_f64(s.min(3600.0))),
            });
        }
        if !(200..300).contains(&status) {
            return Err(DiscordError::Refused {
                status,
                code: v["code"]
                    .as_i64()
                    .and_then(|c| isize::try_from(c).ok())
                    .unwrap_or(-1),
                message: v["message"].as_str().unwrap_or_default().to_owned(),
            });
        }
        Ok(v)
    }

    /// The REST client.
    pub fn http(&self) -> &Arc<Http> {
        &self.http
    }

    /// Remembers an ephemeral reply sent under `key` through interaction `token`, so a later
    /// edit of `key` reaches it (through the token while it lives, else as a new DM).
    pub fn remember_reply(&self, key: MessageKey, token: String, to: Handle, at: Timestamp) {
        let mut m = self.replies.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key).or_default().push(KeyedReply { token, to, at });
    }

    async fn dm_channel(&self, user: UserId) -> Result<ChannelId, DiscordError> {
        if let Some(c) = self
            .dm_channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&user)
        {
            return Ok(*c);
        }
        use serenity::http::{LightMethod, Route};
        let body = json!({ "recipient_id": user.to_string() });
        let v = self
            .call(
                Route::UserMeDmChannels,
                LightMethod::Post,
                "POST users/@me/channels",
                &body,
            )
            .await?;
        let ch = v["id"]
            .as_str()
            .and_then(|id| id.parse::<u64>().ok())
            .filter(|n| *n != 0)
            .map(ChannelId::new)
            .ok_or_else(|| DiscordError::Other("open DM: no id in the answer".into()))?;
        self.dm_channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user, ch);
        Ok(ch)
    }

    async fn post(
        &self,
        channel: ChannelId,
        text: &str,
        buttons: &[Button],
        key: Option<&MessageKey>,
        recipient: Option<&Handle>,
        nonce: Option<&str>,
    ) -> Result<(), DiscordError> {
        let mut body = message_body(text, buttons);
        if let Some(n) = nonce {
            // Discord returns the message made under this nonce (by us, moments ago) instead
            // of making a second one: a retry after a timeout or a dropped connection that
            // hid a success does not post twice.
            let n: String = n.chars().take(25).collect();
            body["nonce"] = json!(n);
            body["enforce_nonce"] = json!(true);
        }
        let id = self.create_message(channel, &body).await?;
        if let Some(k) = key {
            let sent = SentMessage {
                channel_id: channel.to_string(),
                message_id: id.to_string(),
                recipient: recipient.map(ToString::to_string),
                sent_at: self.clock.now(),
            };
            if let Err(e) = self.sent.remember_sent(k, &sent).await {
                warn!(key = %k, error = %e, "cannot remember a sent message; it will not be edited later");
            }
        }
        Ok(())
    }

    async fn person(&self, h: &Handle) -> Result<Person, ChatError> {
        self.store
            .person(h)
            .await
            .map_err(|e| ChatError::Other(e.to_string()))?
            .ok_or(ChatError::UnknownRecipient)
    }

    async fn dm(&self, p: &Person, msg: &Message, nonce: Option<&str>) -> Result<(), DiscordError> {
        let Some(id) = p
            .discord_id
            .as_deref()
            .and_then(|d| d.parse::<u64>().ok())
            .filter(|n| *n != 0)
        else {
            return Err(DiscordError::Other(format!(
                "{} has no Discord id",
                p.handle
            )));
        };
        let ch = self.dm_channel(UserId::new(id)).await?;
        self.post(
            ch,
            &msg.text,
            &msg.buttons,
            msg.key.as_ref(),
            Some(&p.handle),
            nonce,
        )
        .await
    }
}

/// A Discord failure as the core sees it: a 429 is "slow down", with Discord's
/// `Retry-After` when the call saw it (message creates do; serenity's own calls do not).
fn chat_error(e: DiscordError) -> ChatError {
    match e {
        DiscordError::RateLimited { retry_after } => ChatError::RateLimited { retry_after },
        e if e.is_rate_limited() => ChatError::RateLimited { retry_after: None },
        e => ChatError::Other(e.to_string()),
    }
}

#[async_trait]
impl Chat for DiscordChat {
    async fn send(&self, msg: Message) -> Result<(), ChatError> {
        self.send_with(msg, None).await
    }

    async fn send_once(&self, msg: Message, nonce: &str) -> Result<(), ChatError> {
        self.send_with(msg, Some(nonce)).await
    }

    fn fallback_channel(&self) -> Option<Recipient> {
        self.approvals_channel
            .map(|c| Recipient::Channel(c.to_string()))
    }

    async fn edit(
        &self,
        key: &MessageKey,
        text: &str,
        buttons: &[Button],
    ) -> Result<(), ChatError> {
        self.edit_all(key, text, buttons).await
    }
}

impl DiscordChat {
    async fn send_with(&self, msg: Message, nonce: Option<&str>) -> Result<(), ChatError> {
        match &msg.to {
            Recipient::Channel(c) => {
                let ch = c
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n != 0)
                    .map(ChannelId::new)
                    .ok_or(ChatError::UnknownRecipient)?;
                self.post(ch, &msg.text, &msg.buttons, msg.key.as_ref(), None, nonce)
                    .await
                    .map_err(chat_error)
            }
            Recipient::Person(h) => {
                let p = self.person(h).await?;
                if p.discord_id.is_none() {
                    return Err(ChatError::UnknownRecipient);
                }
                match self.dm(&p, &msg, nonce).await {
                    Ok(()) => Ok(()),
                    // The core decides where the message goes instead (the outbox's fallback).
                    Err(e) if e.code() == Some(CANNOT_DM) => {
                        Err(ChatError::DmClosed(format!("Discord {CANNOT_DM}")))
                    }
                    Err(e) => Err(chat_error(e)),
                }
            }
        }
    }

    async fn edit_all(
        &self,
        key: &MessageKey,
        text: &str,
        buttons: &[Button],
    ) -> Result<(), ChatError> {
        let mut failures = Vec::new();
        let sent = self
            .sent
            .sent_under(key)
            .await
            .map_err(|e| ChatError::Other(e.to_string()))?;
        for m in sent {
            let (Ok(c), Ok(id)) = (m.channel_id.parse::<u64>(), m.message_id.parse::<u64>()) else {
                continue;
            };
            let body = message_body(text, buttons);
            let (c, id) = (ChannelId::new(c.max(1)), MessageId::new(id.max(1)));
            if let Err(e) = with_retry(|| self.http.edit_message(c, id, &body, Vec::new())).await {
                warn!(key = %key, channel = %c, error = %e, "cannot edit a copy");
                failures.push(e.to_string());
            }
        }
        let replies = self
            .replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
            .unwrap_or_default();
        let now = self.clock.now();
        // A token past its lifetime is forgotten: the DM below replaces it from now on.
        if let Some(live) = self
            .replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(key)
        {
            live.retain(|r| now - r.at < TOKEN_LIFETIME);
        }
        for r in replies {
            if now - r.at < TOKEN_LIFETIME {
                let body = message_body(text, buttons);
                if let Err(e) = with_retry(|| {
                    self.http
                        .edit_original_interaction_response(&r.token, &body, Vec::new())
                })
                .await
                {
                    warn!(key = %key, error = %e, "cannot edit an interaction reply");
                    failures.push(e.to_string());
                }
            } else {
                // The token has expired: tell the person with an ordinary bot message.
                let msg = Message {
                    to: Recipient::Person(r.to.clone()),
                    text: text.to_owned(),
                    buttons: buttons.to_vec(),
                    key: None,
                };
                if let Err(e) = self.send(msg).await {
                    failures.push(e.to_string());
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ChatError::Other(failures.join("; ")))
        }
    }
}

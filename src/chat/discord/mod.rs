//! Discord: serenity's REST client and gateway, and the interactions endpoint's payloads,
//! translated to the core's dispatcher and back. No business rules live here.
//!
//! - [`chat::DiscordChat`] implements the core's `Chat` port (DMs with buttons, every copy of a
//!   prompt edited after a decision, the approvals channel as the core's fallback channel, a
//!   closed DM told to the core).
//! - [`handler::InteractionHandler`] turns one interaction (from the gateway or the HTTP endpoint) into
//!   a service call and the interaction response.
//! - [`gateway`] runs serenity's `Client` with a plain `EventHandler`.
//! - [`register`] bulk-overwrites the application commands from `commands/*.json`.

pub mod chat;
pub mod gateway;
pub mod handler;
pub mod limits;
pub mod register;

use std::future::Future;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{Value, json};
use serenity::http::{Http, HttpBuilder};
use serenity::model::id::ApplicationId;

use crate::config::DiscordConfig;
use crate::core::ports::{Button, ButtonLabel};

/// Discord's limit on a message's content.
pub const MAX_CONTENT: usize = 2000;

/// JSON error code Discord answers when a user does not accept the bot's direct messages.
pub const CANNOT_DM: isize = 50007;

/// A failure talking to Discord.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// `application_id` is not a snowflake.
    #[error("[discord] application_id {0:?} is not a Discord application id")]
    ApplicationId(String),
    /// Discord refused the call (status, JSON code, message).
    #[error("Discord answered {status} (code {code}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Discord's JSON error code.
        code: isize,
        /// Discord's message.
        message: String,
    },
    /// Discord said "slow down" (429), with its `Retry-After` when the call saw it.
    #[error("Discord rate limit (429){}", retry_after.map(|d| format!("; retry after {} ms", d.as_millis())).unwrap_or_default())]
    RateLimited {
        /// Discord's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Anything else serenity reports (network, decoding).
    #[error("Discord call failed: {0}")]
    Other(String),
}

impl DiscordError {
    /// Discord's JSON error code, if Discord answered with one.
    pub fn code(&self) -> Option<isize> {
        match self {
            Self::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
    /// Whether Discord said "slow down".
    pub fn is_rate_limited(&self) -> bool {
        matches!(
            self,
            Self::Refused { status: 429, .. } | Self::RateLimited { .. }
        )
    }
}

impl From<serenity::Error> for DiscordError {
    fn from(e: serenity::Error) -> Self {
        match e {
            serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) => {
                Self::Refused {
                    status: r.status_code.as_u16(),
                    code: r.error.code,
                    message: r.error.message,
                }
            }
            other => Self::Other(other.to_string()),
        }
    }
}

/// The application id of the config.
pub fn application_id(cfg: &DiscordConfig) -> Result<ApplicationId, DiscordError> {
    cfg.application_id
        .parse::<u64>()
        .ok()
        .filter(|n| *n != 0)
        .map(ApplicationId::new)
        .ok_or_else(|| DiscordError::ApplicationId(cfg.application_id.clone()))
}

/// serenity's REST client for the config: with `api_base`, every call goes to that proxy (and
/// serenity's rate limiter is off, since it would ignore the proxy); without it, to Discord
/// with serenity's rate limiter on.
pub fn build_http(cfg: &DiscordConfig) -> Result<Http, DiscordError> {
    let mut b = HttpBuilder::new(cfg.token.expose_secret()).application_id(application_id(cfg)?);
    if let Some(base) = &cfg.api_base {
        b = b
            .proxy(base.trim_end_matches('/'))
            .ratelimiter_disabled(true);
    }
    Ok(b.build())
}

/// How long one REST call may take before it counts as failed (serenity sets no timeout; a
/// call that hangs would hold its outbox row past the row's lease).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a REST call, retrying when Discord answers 429 (serenity's rate limiter is off behind a
/// proxy, and its error does not carry `Retry-After`, so back off: 0.25 s, 0.5 s, 1 s, 2 s).
/// A call that takes longer than [`CALL_TIMEOUT`] fails (it may still have happened).
pub async fn with_retry<T, F, Fut>(mut call: F) -> Result<T, DiscordError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, serenity::Error>>,
{
    let mut wait = Duration::from_millis(250);
    let mut tries = 0;
    loop {
        let r = match tokio::time::timeout(CALL_TIMEOUT, call()).await {
            Ok(r) => r.map_err(DiscordError::from),
            Err(_) => Err(DiscordError::Other(format!(
                "no answer from Discord within {}s",
                CALL_TIMEOUT.as_secs()
            ))),
        };
        match r {
            Err(e) if e.is_rate_limited() && tries < 4 => {
                tracing::warn!(
                    wait_ms = wait.as_millis() as u64,
                    "Discord rate limit; waiting"
                );
                tokio::time::sleep(wait).await;
                wait *= 2;
                tries += 1;
            }
            other => return other,
        }
    }
}

/// Discord's button style for a label: green for going ahead, red for stopping.
pub fn button_style(label: ButtonLabel) -> u8 {
    match label {
        ButtonLabel::Deny | ButtonLabel::Cancel | ButtonLabel::RevokeNow | ButtonLabel::Revoke => 4,
        ButtonLabel::Ignore | ButtonLabel::ServiceAccount => 2,
        ButtonLabel::Approve
        | ButtonLabel::Confirm
        | ButtonLabel::Done
        | ButtonLabel::Extend
        | ButtonLabel::Retry
        | ButtonLabel::Ratify
        | ButtonLabel::Escalate
        | ButtonLabel::Adopt
        | ButtonLabel::Keep
        | ButtonLabel::KeepAll
        | ButtonLabel::Reprovision => 3,
    }
}

/// Message components for buttons: action rows of at most five buttons; on a message whose
/// buttons name items (a review page), one row per item, and the rest on a row of their own.
pub fn components(buttons: &[Button]) -> Value {
    let mut rows: Vec<&[Button]> = Vec::new();
    if buttons.iter().any(|b| b.item.is_some()) {
        let mut start = 0;
        for i in 1..=buttons.len() {
            if i == buttons.len() || buttons[i].item != buttons[start].item || i - start == 5 {
                rows.push(&buttons[start..i]);
                start = i;
            }
        }
    } else {
        rows.extend(buttons.chunks(5));
    }
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|row| {
            let bs: Vec<Value> = row
                .iter()
                .map(|b| {
                    json!({
                        "type": 2,
                        "style": button_style(b.label),
                        "label": b.text(),
                        "custom_id": b.target.to_string(),
                    })
                })
                .collect();
            json!({ "type": 1, "components": bs })
        })
        .collect();
    Value::Array(rows)
}

/// Content cut to Discord's limit, on a character boundary.
pub fn content(text: &str) -> String {
    if text.chars().count() <= MAX_CONTENT {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(MAX_CONTENT - 1).collect();
    s.push('…');
    s
}

/// A message body: content and buttons (an empty list removes the buttons).
pub fn message_body(text: &str, buttons: &[Button]) -> Value {
    json!({
        "content": content(text),
        "components": components(buttons),
        "allowed_mentions": { "parse": [] },
    })
}

//! The chat platform: messages with buttons, sent, edited and deduplicated.

use std::time::Duration;

use async_trait::async_trait;

use crate::core::model::Handle;

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// A direct message to a person.
    Person(Handle),
    /// A channel, by the adapter's name or id for it.
    Channel(String),
}

/// Fixed button labels (the console clicks them by label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ButtonLabel {
    /// Approve a step.
    Approve,
    /// Deny a step (opens a form asking why).
    Deny,
    /// Confirm a plan.
    Confirm,
    /// Cancel a plan.
    Cancel,
    /// A manual task is done.
    Done,
    /// Extend a time-bound grant.
    Extend,
    /// Retry a failed action.
    Retry,
}

impl ButtonLabel {
    /// The label people see.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Approve => "Approve",
            Self::Deny => "Deny",
            Self::Confirm => "Confirm",
            Self::Cancel => "Cancel",
            Self::Done => "Done",
            Self::Extend => "Extend",
            Self::Retry => "Retry",
        }
    }
    /// Every label.
    pub const ALL: [ButtonLabel; 7] = [
        Self::Approve,
        Self::Deny,
        Self::Confirm,
        Self::Cancel,
        Self::Done,
        Self::Extend,
        Self::Retry,
    ];
    /// Reads a label, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|b| b.as_str().eq_ignore_ascii_case(s))
    }
}

/// A button on a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Button {
    /// Its label.
    pub label: ButtonLabel,
    /// What a click sends back (≤ 100 chars, versioned; see `core::customid`).
    pub custom_id: String,
}

/// Groups the copies of one logical message (e.g. every copy of one approval prompt), so
/// that they can be edited together later.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageKey(pub String);

/// A message the bot sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Recipient.
    pub to: Recipient,
    /// Full text.
    pub text: String,
    /// Buttons.
    pub buttons: Vec<Button>,
    /// Key for later edits.
    pub key: Option<MessageKey>,
}

/// Why a message could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// The person does not accept direct messages from the bot (the platform's words, e.g.
    /// "Discord 50007").
    #[error("direct messages closed ({0})")]
    DmClosed(String),
    /// The person has no chat identity.
    #[error("no chat account known")]
    UnknownRecipient,
    /// The platform said "slow down"; try again after this long if it said.
    #[error("rate limited")]
    RateLimited {
        /// The platform's advice.
        retry_after: Option<Duration>,
    },
    /// Anything else.
    #[error("chat failure: {0}")]
    Other(String),
}

/// The chat platform: send and edit messages.
#[async_trait]
pub trait Chat: Send + Sync {
    /// Sends a message.
    async fn send(&self, msg: Message) -> Result<(), ChatError>;
    /// Edits every message sent under `key` to show `text` and `buttons`.
    async fn edit(&self, key: &MessageKey, text: &str, buttons: &[Button])
    -> Result<(), ChatError>;
    /// Sends a message at most once under `nonce` (the outbox row's id): a platform that can
    /// deduplicate creates (Discord's `nonce` + `enforce_nonce`) makes a retry after an
    /// ambiguous failure (a timeout after the message was made) return the first message
    /// instead of posting twice. By default, a plain [`Chat::send`].
    async fn send_once(&self, msg: Message, nonce: &str) -> Result<(), ChatError> {
        let _ = nonce;
        self.send(msg).await
    }
    /// Where a message goes when its recipient cannot be reached for long (the approvals
    /// channel), if the platform has such a place; the IT admins' DMs come after it.
    fn fallback_channel(&self) -> Option<Recipient> {
        None
    }
}

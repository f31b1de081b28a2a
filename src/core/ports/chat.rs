//! The chat platform: messages with buttons, sent, edited and deduplicated.

use std::time::Duration;

use async_trait::async_trait;

use crate::core::customid::ClickTarget;

use crate::core::model::{
    ActionId, BreakGlassId, FindingId, Handle, PlanId, RequestId, ReviewItemId,
};

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
    /// Ratify a break-glass grant after the fact.
    Ratify,
    /// Take a break-glass grant away at once.
    RevokeNow,
    /// Turn one's own pending request into break-glass.
    Escalate,
    /// Record access found in a target as a grant.
    Adopt,
    /// Remove access.
    Revoke,
    /// Put back access the records say is held.
    Reprovision,
    /// Leave a finding alone for 30 days.
    Ignore,
    /// Mark an account as a service account (exempt from drift).
    ServiceAccount,
    /// Keep access under review.
    Keep,
    /// Keep every access on a review page.
    KeepAll,
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
            Self::Ratify => "Ratify",
            Self::RevokeNow => "Revoke now",
            Self::Escalate => "Escalate",
            Self::Adopt => "Adopt",
            Self::Revoke => "Revoke",
            Self::Reprovision => "Re-provision",
            Self::Ignore => "Ignore",
            Self::ServiceAccount => "Service account",
            Self::Keep => "Keep",
            Self::KeepAll => "Keep all",
        }
    }
    /// Every label.
    pub const ALL: [ButtonLabel; 17] = [
        Self::Approve,
        Self::Deny,
        Self::Confirm,
        Self::Cancel,
        Self::Done,
        Self::Extend,
        Self::Retry,
        Self::Ratify,
        Self::RevokeNow,
        Self::Escalate,
        Self::Adopt,
        Self::Revoke,
        Self::Reprovision,
        Self::Ignore,
        Self::ServiceAccount,
        Self::Keep,
        Self::KeepAll,
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
    /// What a click on it asks for; the chat adapter writes it as the button's id (its text
    /// form, ≤ 100 chars and versioned: see `core::customid`).
    pub target: ClickTarget,
    /// The item it is about, where one message carries the same label for several items
    /// (a review page): shown as `LABEL · ITEM`.
    pub item: Option<String>,
}

impl Button {
    /// A button with its label alone.
    pub fn new(label: ButtonLabel, target: ClickTarget) -> Self {
        Self {
            label,
            target,
            item: None,
        }
    }

    /// The text people see: the label, or `LABEL · ITEM` (cut to Discord's 80 characters).
    pub fn text(&self) -> String {
        match &self.item {
            None => self.label.as_str().to_owned(),
            Some(i) => format!("{} · {i}", self.label.as_str())
                .chars()
                .take(80)
                .collect(),
        }
    }
}

/// Groups the copies of one logical message (e.g. every copy of one approval prompt), so
/// that they can be edited together later. Stored as its text (`req:7:s0`, `act:3`, `plan:2`,
/// `report:2`); a stored text that does not read back is corrupt data, never a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKey {
    /// The prompt of a request's approval step (`step` counts from 0).
    Prompt {
        /// The request.
        request: RequestId,
        /// Its step.
        step: u32,
    },
    /// A connector action's prompt to IT (a manual task's Done, a failure's Retry).
    Action(ActionId),
    /// A plan's Confirm and Cancel.
    Plan(PlanId),
    /// An offboarding report.
    Report(PlanId),
    /// A break-glass grant's Ratify and Revoke now.
    BreakGlass(BreakGlassId),
    /// A drift finding's buttons.
    Finding(FindingId),
    /// A review page (keyed by its first item).
    ReviewPage(ReviewItemId),
}

impl MessageKey {
    /// The request the message is about, if any.
    pub fn request(&self) -> Option<RequestId> {
        match self {
            Self::Prompt { request, .. } => Some(*request),
            _ => None,
        }
    }
}

impl std::fmt::Display for MessageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Prompt { request, step } => write!(f, "req:{}:s{step}", request.0),
            Self::Action(a) => write!(f, "act:{}", a.0),
            Self::Plan(p) => write!(f, "plan:{p}"),
            Self::Report(p) => write!(f, "report:{p}"),
            Self::BreakGlass(b) => write!(f, "bg:{b}"),
            Self::Finding(d) => write!(f, "drift:{d}"),
            Self::ReviewPage(i) => write!(f, "review:{i}"),
        }
    }
}

/// A stored message key that does not read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a message key: {0:?}")]
pub struct BadMessageKey(pub String);

impl std::str::FromStr for MessageKey {
    type Err = BadMessageKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadMessageKey(s.to_owned());
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        let num = |t: &str| t.parse::<i64>().map_err(|_| bad());
        match kind {
            "req" => {
                let (r, step) = rest.split_once(":s").ok_or_else(bad)?;
                Ok(Self::Prompt {
                    request: RequestId(num(r)?),
                    step: step.parse().map_err(|_| bad())?,
                })
            }
            "act" => Ok(Self::Action(ActionId(num(rest)?))),
            "plan" => Ok(Self::Plan(PlanId(num(rest)?))),
            "report" => Ok(Self::Report(PlanId(num(rest)?))),
            "bg" => Ok(Self::BreakGlass(BreakGlassId(num(rest)?))),
            "drift" => Ok(Self::Finding(FindingId(num(rest)?))),
            "review" => Ok(Self::ReviewPage(ReviewItemId(num(rest)?))),
            _ => Err(bad()),
        }
    }
}

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
    /// The approvals channel, if the platform has such a place: where a message goes when
    /// its recipient cannot be reached (the IT admins' DMs come after it), and where the
    /// core copies every approval prompt it sends to a person.
    fn fallback_channel(&self) -> Option<Recipient> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_keys_read_back_as_stored_and_anything_else_is_refused() {
        let keys = [
            MessageKey::Prompt {
                request: RequestId(7),
                step: 2,
            },
            MessageKey::Action(ActionId(3)),
            MessageKey::Plan(PlanId(11)),
            MessageKey::Report(PlanId(11)),
        ];
        let texts: Vec<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["req:7:s2", "act:3", "plan:11", "report:11"]);
        for (k, t) in keys.iter().zip(&texts) {
            assert_eq!(t.parse::<MessageKey>().as_ref(), Ok(k));
        }
        assert_eq!(keys[0].request(), Some(RequestId(7)));
        assert_eq!(keys[2].request(), None);
        for bad in [
            "",
            "req:7",
            "req:x:s1",
            "act:",
            "plan:1:2",
            "prompt:1",
            "report:-x",
        ] {
            assert_eq!(
                bad.parse::<MessageKey>(),
                Err(BadMessageKey(bad.into())),
                "{bad}"
            );
        }
    }
}

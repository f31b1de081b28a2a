//! The durable chat outbox as the core sees it: every message or edit the core sends is an
//! [`Outgoing`] row, written in the transaction of the decision that causes it
//! ([`super::ports::Change::messages`]) or, for messages no decision commits, in one of its
//! own. A sender (the `serve` worker, or the console inline) claims due rows with a lease,
//! sends them, marks them sent, retries with backoff, falls back, and audits a final failure.

use std::time::Duration;

use super::customid::ClickTarget;
use super::model::{Handle, PlanId};
use super::ports::{Button, ButtonLabel, MessageKey, Recipient};

/// What a row does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutKind {
    /// Send a new message to this recipient.
    Send(Recipient),
    /// Edit every message sent under the row's key (after the sends under it).
    Edit,
}

/// A message or edit to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Send or edit.
    pub kind: OutKind,
    /// Full text.
    pub text: String,
    /// Buttons (an edit with none removes them).
    pub buttons: Vec<Button>,
    /// Key of the message (a send) or of the messages to edit (an edit).
    pub key: Option<MessageKey>,
    /// One row per logical message, ever: a second row with the same value is not written
    /// (a re-announced prompt after a crash, a retried click).
    pub dedupe: Option<String>,
}

impl Outgoing {
    /// A direct message to a person.
    pub fn to_person(
        to: &Handle,
        text: String,
        buttons: Vec<Button>,
        key: Option<MessageKey>,
    ) -> Self {
        Self {
            kind: OutKind::Send(Recipient::Person(to.clone())),
            text,
            buttons,
            key,
            dedupe: None,
        }
    }

    /// An edit of every message sent under `key`.
    pub fn edit(key: MessageKey, text: String, buttons: Vec<Button>) -> Self {
        Self {
            kind: OutKind::Edit,
            text,
            buttons,
            key: Some(key),
            dedupe: None,
        }
    }

    /// The same row, written at most once under `dedupe`.
    pub fn once(mut self, dedupe: impl Into<String>) -> Self {
        self.dedupe = Some(dedupe.into());
        self
    }
}

/// The key of a plan's Confirm/Cancel messages (edited when the plan is decided).
pub fn plan_key(plan: PlanId) -> MessageKey {
    MessageKey::Plan(plan)
}

/// A plan's Confirm and Cancel buttons.
pub fn plan_buttons(plan: PlanId) -> Vec<Button> {
    vec![
        Button {
            label: ButtonLabel::Confirm,
            target: ClickTarget::Confirm(plan),
        },
        Button {
            label: ButtonLabel::Cancel,
            target: ClickTarget::Cancel(plan),
        },
    ]
}

/// A direct message about the plan a change creates ([`super::ports::Change::new_plan`]),
/// whose id the store learns only when it inserts the plan: the store completes it with
/// that id ([`PlanMessage::complete`]) and writes it in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanMessage {
    /// The recipient.
    pub to: Handle,
    /// The text around the plan's id: the id goes between consecutive parts (one part: the
    /// text does not name the plan).
    pub text: Vec<String>,
    /// Carries the plan's Confirm and Cancel buttons, under the plan's key.
    pub buttons: bool,
}

impl PlanMessage {
    /// The row to write once the plan's id is known.
    pub fn complete(&self, plan: PlanId) -> Outgoing {
        let (buttons, key) = if self.buttons {
            (plan_buttons(plan), Some(plan_key(plan)))
        } else {
            (Vec::new(), None)
        };
        Outgoing::to_person(&self.to, self.text.join(&plan.to_string()), buttons, key)
    }
}

/// A claimed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Row id (also the Discord `nonce` of its create-message calls).
    pub id: i64,
    /// What to deliver.
    pub msg: Outgoing,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// How long ago (real time) it was written.
    pub age: Duration,
}

/// How the outbox stands, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting to be sent (or retried), or being sent.
    pub pending: i64,
    /// Delivered (to the recipient or a fallback).
    pub sent: i64,
    /// Given up on (audited as `message.failed`).
    pub failed: i64,
    /// Attempts beyond the first, over all rows.
    pub retried: i64,
}

/// How the sender retries and when it falls back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// The first retry's delay; each further retry doubles it.
    pub retry_base: Duration,
    /// The longest delay between tries.
    pub retry_max: Duration,
    /// After this long undelivered (real time since it was written), a message goes to the
    /// fallback (the approvals channel, else the IT admins) naming its recipient; an edit is
    /// given up.
    pub fallback_after: Duration,
    /// How long a claimed row is held before another sender may take it.
    pub lease: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            fallback_after: Duration::from_secs(10 * 60),
            lease: Duration::from_secs(30),
        }
    }
}

impl DeliveryPolicy {
    /// The delay before the next try after `attempts` failed ones: doubling from
    /// `retry_base`, capped at `retry_max`, and never sooner than the platform asked.
    pub fn backoff(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        let exp = attempts.saturating_sub(1).min(16);
        let d = self
            .retry_base
            .saturating_mul(1u32 << exp)
            .min(self.retry_max);
        retry_after.map_or(d, |r| d.max(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_message_is_completed_with_the_plan_id_only_where_asked() {
        let to = Handle::parse("dana").unwrap();
        let m = PlanMessage {
            to: to.clone(),
            text: vec!["plan #".into(), " for {plan} and 0".into()],
            buttons: true,
        };
        let o = m.complete(PlanId(42));
        assert_eq!(o.text, "plan #42 for {plan} and 0");
        assert_eq!(o.key, Some(plan_key(PlanId(42))));
        assert_eq!(o.buttons, plan_buttons(PlanId(42)));
        assert_eq!(o.kind, OutKind::Send(Recipient::Person(to)));
        let plain = PlanMessage {
            buttons: false,
            ..m
        }
        .complete(PlanId(7));
        assert!(plain.buttons.is_empty() && plain.key.is_none());
    }

    #[test]
    fn backoff_doubles_is_capped_and_honours_retry_after() {
        let p = DeliveryPolicy::default();
        assert_eq!(p.backoff(1, None), Duration::from_secs(1));
        assert_eq!(p.backoff(3, None), Duration::from_secs(4));
        assert_eq!(p.backoff(30, None), Duration::from_secs(60));
        assert_eq!(
            p.backoff(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }
}

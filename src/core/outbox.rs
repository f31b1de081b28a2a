//! The durable chat outbox as the core sees it: every message or edit the core sends is an
//! [`Outgoing`] row, written in the transaction of the decision that causes it
//! ([`super::ports::Change::messages`]) or, for messages no decision commits, in one of its
//! own. A sender (the `serve` worker, or the console inline) claims due rows with a lease,
//! sends them, marks them sent, retries with backoff, falls back, and audits a final failure.
//! An approval prompt sent to a person is also copied to the approvals channel
//! ([`with_channel_copies`]), as a row of its own written with the prompt.

use std::collections::{HashMap, HashSet};
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
    /// Send this recipient a copy of a message sent under the row's key (an approval
    /// prompt's copy in the approvals channel): it waits until the sends under its key
    /// written before it are settled, and goes out only if they all reached their
    /// recipients as addressed (a prompt that went to the fallback is in the channel
    /// already, and a copy saying it was sent would be false).
    Copy(Recipient),
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

    /// The person this row sends an approval prompt to (a message with Approve, under a
    /// key), if it is one.
    pub fn prompt_recipient(&self) -> Option<&Handle> {
        match (&self.kind, &self.key) {
            (OutKind::Send(Recipient::Person(h)), Some(_))
                if self.buttons.iter().any(|b| b.label == ButtonLabel::Approve) =>
            {
                Some(h)
            }
            _ => None,
        }
    }

    /// The same row, written at most once under `dedupe`.
    pub fn once(mut self, dedupe: impl Into<String>) -> Self {
        self.dedupe = Some(dedupe.into());
        self
    }
}

/// The approvals channel's copy of the approval prompts among `messages`: each prompt sent
/// to a person (see [`Outgoing::prompt_recipient`]) is also posted to `channel`, naming
/// its recipient (`names`: their display names, by handle), with the same buttons and under
/// the same key (so a decision edits it too). One copy per key, ever (the first prompt
/// under it names its recipient; a prompt announced again, or escalated to more people,
/// adds none): it goes right after that prompt, whose delivery it waits for.
pub fn with_channel_copies(
    messages: Vec<Outgoing>,
    channel: &Recipient,
    names: &HashMap<Handle, String>,
) -> Vec<Outgoing> {
    let mut copied = HashSet::new();
    let mut out = Vec::with_capacity(messages.len() + 1);
    for m in messages {
        let copy = match (m.prompt_recipient(), m.key) {
            (Some(h), Some(key)) if copied.insert(key) => Some(Outgoing {
                kind: OutKind::Copy(channel.clone()),
                text: crate::core::render::requests::engine::prompt_copy(
                    names.get(h).map_or(h.as_str(), String::as_str),
                    &m.text,
                ),
                buttons: m.buttons.clone(),
                key: Some(key),
                dedupe: Some(format!("{key}:channel")),
            }),
            _ => None,
        };
        out.push(m);
        out.extend(copy);
    }
    out
}

/// The key of a plan's Confirm/Cancel messages (edited when the plan is decided).
pub fn plan_key(plan: PlanId) -> MessageKey {
    MessageKey::Plan(plan)
}

/// A plan's Confirm and Cancel buttons.
pub fn plan_buttons(plan: PlanId) -> Vec<Button> {
    vec![
        Button {
            item: None,
            label: ButtonLabel::Confirm,
            target: ClickTarget::Confirm(plan),
        },
        Button {
            item: None,
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
    /// After this long undelivered (real time since it was written), a message that fails
    /// again goes to the fallback (the approvals channel, else the IT admins) naming its
    /// recipient, and an edit is given up; one held back by a rate limit only waits.
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

    fn prompt(to: &str, k: u32) -> Outgoing {
        let r = crate::core::model::RequestId(1);
        let buttons = vec![
            Button {
                item: None,
                label: ButtonLabel::Approve,
                target: ClickTarget::Approve(r, k),
            },
            Button {
                item: None,
                label: ButtonLabel::Deny,
                target: ClickTarget::Deny(r, k),
            },
        ];
        let key = MessageKey::Prompt {
            request: r,
            step: k,
        };
        Outgoing::to_person(
            &Handle::parse(to).unwrap(),
            "Access request #1".into(),
            buttons,
            Some(key),
        )
    }

    #[test]
    fn a_prompt_is_copied_to_the_channel_once_per_key_right_after_it() {
        let ch = Recipient::Channel("42".into());
        let names = HashMap::from([(Handle::parse("bob").unwrap(), "Bob Chen".to_owned())]);
        let note = Outgoing::to_person(&Handle::parse("alice").unwrap(), "hi".into(), vec![], None);
        let plan = PlanMessage {
            to: Handle::parse("dana").unwrap(),
            text: vec!["plan".into()],
            buttons: true,
        }
        .complete(PlanId(3));
        let msgs = vec![
            note.clone(),
            prompt("bob", 0),
            prompt("carol", 0),
            plan.clone(),
            prompt("carol", 1),
        ];
        let out = with_channel_copies(msgs, &ch, &names);
        assert_eq!(out.len(), 7);
        assert_eq!(out[0], note);
        assert_eq!(out[1], prompt("bob", 0));
        let copy = &out[2];
        assert_eq!(copy.kind, OutKind::Copy(ch.clone()));
        assert_eq!(
            copy.text,
            "Approval prompt sent to Bob Chen:\n\nAccess request #1"
        );
        assert_eq!((&copy.buttons, copy.key), (&out[1].buttons, out[1].key));
        assert_eq!(copy.dedupe.as_deref(), Some("req:1:s0:channel"));
        assert_eq!(out[3], prompt("carol", 0));
        assert_eq!(out[4], plan, "Confirm/Cancel is no approval prompt");
        // No display name known: the handle.
        assert_eq!(
            out[6].text,
            "Approval prompt sent to carol:\n\nAccess request #1"
        );
        assert_eq!(out[6].dedupe.as_deref(), Some("req:1:s1:channel"));
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

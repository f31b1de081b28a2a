//! Delivering the durable outbox: every message the core sends is a row (see
//! [`crate::core::outbox`]); this claims due rows, sends them through the `Chat` port, marks
//! them sent, retries failures with backoff (never sooner than a 429 asked), falls back to
//! the approvals channel or the IT admins after [`DeliveryPolicy::fallback_after`] (at once
//! when the recipient refuses direct messages or has no chat account) naming the recipient,
//! audited as `message.fallback`, and audits a final failure as `message.failed`.
//!
//! An approval prompt sent to a person is also posted to the approvals channel, when the chat
//! platform has one: [`Service::commit`] adds the copy to the change that writes the prompt
//! ([`crate::core::outbox::with_channel_copies`]), and it goes out once the prompt reached
//! its recipient.
//!
//! `serve` runs [`Service::deliver_due`] in a worker woken after every commit that wrote
//! messages; everywhere else (the console, tests, one-shot commands) the committing task
//! delivers them itself right after the commit, so a transcript stays in order.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use tracing::{info, warn};

use super::{Result, Service};
use crate::core::audit::{AuditAction, AuditEvent, AuditOutcome};
use crate::core::outbox::with_channel_copies;
use crate::core::ports::{
    Change, ChatError, DeliveryPolicy, Message, OutKind, Outgoing, Queued, Recipient, ReqRef,
};
use crate::core::render::requests as render;

/// How many rows one delivery round claims.
pub const DELIVERY_BATCH: usize = 32;

/// The longest a delivered row waits in a round before it is marked sent (well inside the
/// claim's lease, so no other sender takes a delivered row over).
const MARK_SENT_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// What became of one claimed row in a delivery round.
enum Delivery {
    /// It reached its recipient as addressed; to be marked sent.
    Sent,
    /// A rate limit holds it back this long (with the limit's text); to be put back.
    Held(std::time::Duration, String),
    /// Whatever else became of it is written already.
    Settled,
}

/// What a delivery round has yet to write.
#[derive(Default)]
struct Round {
    sent: Vec<i64>,
    held: Vec<(i64, std::time::Duration, String)>,
}

fn request_of(key: Option<&crate::core::ports::MessageKey>) -> ReqRef {
    key.and_then(|k| k.request())
        .map_or(ReqRef::None, ReqRef::Id)
}

impl Service {
    /// Delivery happens in a background worker from now on (`serve`), not in the task that
    /// committed the messages.
    pub fn deliver_in_background(&self) {
        self.inline_delivery.store(false, Ordering::SeqCst);
    }

    /// Sets how the sender retries and falls back.
    pub fn set_delivery_policy(&self, p: DeliveryPolicy) {
        *self.delivery.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }

    /// How the sender retries and falls back.
    pub fn delivery_policy(&self) -> DeliveryPolicy {
        *self.delivery.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves when messages were committed (the outbox worker waits on it). A wake-up given
    /// while nobody waits is kept for the next to wait.
    pub fn messages_enqueued(&self) -> tokio::sync::futures::Notified<'_> {
        self.outbox.notified()
    }

    /// After a commit that wrote messages: wake the worker, or deliver them now when there
    /// is none (the console).
    pub(super) async fn messages_committed(&self) {
        if self.inline_delivery.load(Ordering::SeqCst) {
            self.deliver_all().await;
        } else {
            self.outbox.notify_one();
        }
    }

    /// Without a worker (the console), after each command, click and tick: delivers what a
    /// crashed predecessor committed and never sent, and retries that fell due.
    pub(super) async fn deliver_leftovers(&self) {
        if self.inline_delivery.load(Ordering::SeqCst) {
            self.deliver_all().await;
        }
    }

    /// Writes messages to the outbox in a transaction of their own (no decision commits
    /// them), then has them delivered.
    pub(super) async fn enqueue(&self, messages: Vec<Outgoing>) {
        if messages.is_empty() {
            return;
        }
        let change = Change {
            messages,
            ..Default::default()
        };
        match self.commit(change).await {
            Ok(_) => self.messages_committed().await,
            Err(e) => tracing::error!(error = %e, "cannot write messages to the outbox"),
        }
    }

    /// `change` with the approvals channel's copy of each approval prompt it writes (when
    /// the chat platform has that channel), named after the prompt's recipient.
    pub(super) async fn with_channel_copies(&self, mut change: Change) -> Change {
        let Some(channel) = self.chat.fallback_channel() else {
            return change;
        };
        let mut names = HashMap::new();
        for m in &change.messages {
            if let Some(h) = m.prompt_recipient()
                && !names.contains_key(h)
            {
                let name = self.recipient_name(&Recipient::Person(h.clone())).await;
                names.insert(h.clone(), name);
            }
        }
        if !names.is_empty() {
            change.messages = with_channel_copies(change.messages, &channel, &names);
        }
        change
    }

    /// Delivers due rows until none is due now (rows waiting for a retry stay queued).
    pub async fn deliver_all(&self) -> usize {
        let mut total = 0;
        for _ in 0..1000 {
            match self.deliver_due(DELIVERY_BATCH).await {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) => {
                    warn!(error = %e, "outbox delivery round failed");
                    break;
                }
            }
        }
        total
    }

    /// Claims up to `limit` due rows and delivers them, in order; how many were claimed.
    ///
    /// The rows delivered as addressed are marked sent together, in one write at the end of
    /// the round (or every [`MARK_SENT_WITHIN`] in a round that runs long): each write waits
    /// its turn at SQLite's one writer, beside the engine's claims. A row sent but not yet
    /// marked when the process dies is sent again after its lease, under the same nonce, as
    /// a row whose "sent" write was lost always was. No row in a round waits on another of
    /// the same round: an edit or a copy is claimed only once the sends under its key are
    /// settled.
    pub async fn deliver_due(&self, limit: usize) -> Result<usize> {
        let policy = self.delivery_policy();
        let rows = self.store.claim_messages(policy.lease, limit).await?;
        let n = rows.len();
        let mut round = Round::default();
        let mut since = std::time::Instant::now();
        for row in rows {
            let id = row.id;
            match self.deliver_one(row, &policy).await {
                Ok(Delivery::Sent) => round.sent.push(id),
                Ok(Delivery::Held(wait, why)) => round.held.push((id, wait, why)),
                Ok(Delivery::Settled) => {}
                Err(e) => {
                    self.settle(&mut round).await?;
                    return Err(e);
                }
            }
            if since.elapsed() >= MARK_SENT_WITHIN {
                self.settle(&mut round).await?;
                since = std::time::Instant::now();
            }
        }
        self.settle(&mut round).await?;
        Ok(n)
    }

    /// Writes what a round left to write: the rows delivered as addressed marked sent in one
    /// write, the rows held back by a rate limit put back in another.
    async fn settle(&self, round: &mut Round) -> Result<()> {
        if !round.sent.is_empty() {
            self.store.messages_sent(&round.sent).await?;
            round.sent.clear();
        }
        if !round.held.is_empty() {
            self.store.messages_retry(&round.held).await?;
            round.held.clear();
        }
        Ok(())
    }

    /// Delivers one claimed row: sent as addressed, or held back by a rate limit (both left
    /// for the caller to write with the rest of the round), or settled otherwise (written
    /// here).
    async fn deliver_one(&self, row: Queued, policy: &DeliveryPolicy) -> Result<Delivery> {
        let nonce = format!("qm{}", row.id);
        let m = &row.msg;
        let send_to = match &m.kind {
            OutKind::Send(to) => Some(to),
            OutKind::Copy(to) if self.copied_reached(&row).await? => Some(to),
            // What it copies did not reach its recipient (it went to the fallback, or
            // nowhere): the copy would say otherwise.
            OutKind::Copy(_) => {
                let note = "not copied: the original did not reach its recipient";
                self.store
                    .message_sent(row.id, Some(note), Vec::new())
                    .await?;
                return Ok(Delivery::Settled);
            }
            OutKind::Edit => None,
        };
        let res = match (send_to, &m.key) {
            (Some(to), _) => {
                let msg = Message {
                    to: to.clone(),
                    text: m.text.clone(),
                    buttons: m.buttons.clone(),
                    key: m.key,
                };
                self.chat.send_once(msg, &nonce).await
            }
            (None, Some(k)) => self.chat.edit(k, &m.text, &m.buttons).await,
            (None, None) => Ok(()),
        };
        match res {
            Ok(()) => Ok(Delivery::Sent),
            // A rate limit that says how long is waited out exactly, however old the message:
            // it is no failure (the chat adapter holds a message back this way while its
            // route's bucket is spent), doubling the wait would only hold a reviewer's later
            // pages back longer, and the fallback would take a campaign's 601st page to IT's
            // channel.
            Err(
                e @ ChatError::RateLimited {
                    retry_after: Some(wait),
                },
            ) => {
                tracing::debug!(
                    message = row.id,
                    wait_ms = wait.as_millis() as u64,
                    "rate limited; will retry"
                );
                Ok(Delivery::Held(wait, e.to_string()))
            }
            Err(e) => self
                .delivery_failed(row, e, policy)
                .await
                .map(|()| Delivery::Settled),
        }
    }

    /// Whether the sends a copy row copies (those under its key written before it) reached
    /// their recipients as addressed.
    async fn copied_reached(&self, row: &Queued) -> Result<bool> {
        Ok(match &row.msg.key {
            Some(k) => self.store.sends_reached(k, row.id).await?,
            None => true,
        })
    }

    /// A row that was not delivered: retried later, or (for good, or after
    /// [`DeliveryPolicy::fallback_after`]) sent to the fallback, else recorded as failed.
    async fn delivery_failed(
        &self,
        row: Queued,
        e: ChatError,
        policy: &DeliveryPolicy,
    ) -> Result<()> {
        let why = e.to_string();
        // Nothing gets better by retrying these: a person who closed their DMs or has no chat
        // account goes to the fallback at once.
        let final_now = matches!(e, ChatError::DmClosed(_) | ChatError::UnknownRecipient);
        if !final_now && row.age < policy.fallback_after {
            let wait = policy.backoff(row.attempts, None);
            warn!(
                message = row.id,
                attempts = row.attempts,
                wait_ms = wait.as_millis() as u64,
                error = %why,
                "message not delivered yet; will retry"
            );
            self.store.messages_retry(&[(row.id, wait, why)]).await?;
            return Ok(());
        }
        let closed = matches!(e, ChatError::DmClosed(_));
        let tried = if closed {
            why.clone()
        } else {
            render::delivery_tries(row.attempts, row.age.as_secs(), &why)
        };
        if let OutKind::Send(to) = &row.msg.kind
            && self
                .delivered_elsewhere(&row, to, &why, &tried, closed)
                .await?
        {
            return Ok(());
        }
        self.delivery_given_up(&row, &why, &tried).await
    }

    /// Sends the row to the fallback; when someone got it, marks the row sent with a
    /// `message.fallback` audit row and answers true.
    async fn delivered_elsewhere(
        &self,
        row: &Queued,
        to: &Recipient,
        why: &str,
        tried: &str,
        closed: bool,
    ) -> Result<bool> {
        let delivered = self.fall_back(row, to, tried, closed).await;
        if delivered.is_empty() {
            return Ok(false);
        }
        let detail = if closed {
            format!("{tried}; sent to {} instead", delivered.join(", "))
        } else {
            format!(
                "could not reach {} ({tried}); sent to {} instead",
                self.recipient_name(to).await,
                delivered.join(", ")
            )
        };
        info!(message = row.id, "{detail}");
        let ev = self.outbox_event(
            row,
            to,
            AuditAction::MessageFallback,
            AuditOutcome::Delivered,
            detail,
        );
        self.store.message_sent(row.id, Some(why), vec![ev]).await?;
        Ok(true)
    }

    /// Records the row as failed for good, with a `message.failed` audit row.
    async fn delivery_given_up(&self, row: &Queued, why: &str, tried: &str) -> Result<()> {
        let what = match &row.msg.kind {
            OutKind::Send(to) => format!("message to {}", self.recipient_name(to).await),
            OutKind::Copy(to) => format!("copy to {}", self.recipient_name(to).await),
            OutKind::Edit => format!(
                "edit of {}",
                row.msg
                    .key
                    .as_ref()
                    .map_or_else(|| "a message".to_owned(), ToString::to_string)
            ),
        };
        let detail = format!("{what} not delivered ({tried})");
        warn!(message = row.id, "{detail}");
        let to = match &row.msg.kind {
            OutKind::Send(to) | OutKind::Copy(to) => to.clone(),
            OutKind::Edit => Recipient::Channel(String::new()),
        };
        let ev = self.outbox_event(
            row,
            &to,
            AuditAction::MessageFailed,
            AuditOutcome::Failed,
            detail,
        );
        self.store.message_failed(row.id, why, vec![ev]).await?;
        Ok(())
    }

    fn outbox_event(
        &self,
        row: &Queued,
        to: &Recipient,
        action: AuditAction,
        outcome: AuditOutcome,
        detail: String,
    ) -> AuditEvent {
        let subject = match to {
            Recipient::Person(h) => Some(h),
            Recipient::Channel(_) => None,
        };
        self.audit(action)
            .subject(subject)
            .request(request_of(row.msg.key.as_ref()))
            .outcome(outcome)
            .detail(detail)
    }

    async fn recipient_name(&self, to: &Recipient) -> String {
        match to {
            Recipient::Person(h) => match self.store.person(h).await {
                Ok(Some(p)) => p.name,
                _ => h.to_string(),
            },
            Recipient::Channel(c) => format!("channel {c}"),
        }
    }

    /// Sends an undeliverable message to the approvals channel, else to each IT admin (not
    /// the recipient), naming the recipient (`closed`: they refuse direct messages); where it
    /// went.
    async fn fall_back(
        &self,
        row: &Queued,
        to: &Recipient,
        tried: &str,
        closed: bool,
    ) -> Vec<String> {
        let name = self.recipient_name(to).await;
        let text = render::fallback_copy(&name, tried, closed, &row.msg.text);
        let copy = |to: Recipient| Message {
            to,
            text: text.clone(),
            buttons: row.msg.buttons.clone(),
            key: row.msg.key,
        };
        if let Some(ch) = self.chat.fallback_channel().filter(|c| c != to) {
            match self
                .chat
                .send_once(copy(ch), &format!("qm{}f", row.id))
                .await
            {
                Ok(()) => return vec!["the approvals channel".into()],
                Err(e) => warn!(error = %e, "fallback to the approvals channel failed"),
            }
        }
        let mut delivered = Vec::new();
        for (i, a) in self.org.it_admins.iter().enumerate() {
            if *to == Recipient::Person(a.clone()) {
                continue;
            }
            match self
                .chat
                .send_once(
                    copy(Recipient::Person(a.clone())),
                    &format!("qm{}f{i}", row.id),
                )
                .await
            {
                Ok(()) => delivered.push(a.to_string()),
                Err(e) => warn!(to = %a, error = %e, "fallback DM failed"),
            }
        }
        delivered
    }
}

//! The durable chat outbox table (`outbox`, migration 0025): rows written inside a
//! [`crate::core::ports::Change`]'s transaction, claimed with a lease by any instance, marked
//! sent, retried or failed. Delivery times are real time (unix microseconds), not the
//! business clock: a retry's backoff is about the network, not about the workflow.

use std::time::Duration;

use async_trait::async_trait;

use super::db::{DbRow, Expect, Tx, Val, q, values};
use super::rows::micros;
use super::{SqlStore, audit, json_list, store_err};
use crate::core::customid::ClickTarget;
use crate::core::model::{AuditEvent, Handle};
use crate::core::ports::{
    Button, ButtonLabel, MessageKey, OutKind, Outbox, OutboxCounts, Outgoing, Queued, Recipient,
    StoreError,
};

fn real_now() -> i64 {
    micros(chrono::Utc::now())
}

fn after(d: Duration) -> i64 {
    real_now().saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn recipient_text(r: &Recipient) -> String {
    match r {
        Recipient::Person(h) => format!("person:{h}"),
        Recipient::Channel(c) => format!("channel:{c}"),
    }
}

fn recipient_of(s: &str) -> Result<Recipient, StoreError> {
    match s.split_once(':') {
        Some(("person", h)) => Handle::parse(h)
            .map(Recipient::Person)
            .map_err(|e| StoreError::Corrupt(format!("outbox recipient {s:?}: {e}"))),
        Some(("channel", c)) => Ok(Recipient::Channel(c.to_owned())),
        _ => Err(StoreError::Corrupt(format!("outbox recipient {s:?}"))),
    }
}

/// Buttons as JSON: `[label, custom_id]`, or `[label, custom_id, item]` for a button
/// about one item of several.
fn buttons_text(bs: &[Button]) -> String {
    let rows: Vec<Vec<String>> = bs
        .iter()
        .map(|b| {
            let mut r = vec![b.label.as_str().to_owned(), b.target.to_string()];
            r.extend(b.item.clone());
            r
        })
        .collect();
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into())
}

fn buttons_of(s: &str) -> Result<Vec<Button>, StoreError> {
    let rows: Vec<Vec<String>> =
        serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("outbox buttons: {e}")))?;
    rows.into_iter()
        .map(|r| {
            let (Some(l), Some(id)) = (r.first(), r.get(1)) else {
                return Err(StoreError::Corrupt(format!("outbox button {r:?}")));
            };
            let label = ButtonLabel::parse(l)
                .ok_or_else(|| StoreError::Corrupt(format!("outbox button {l:?}")))?;
            let target = ClickTarget::parse(id)
                .map_err(|_| StoreError::Corrupt(format!("outbox button target {id:?}")))?;
            Ok(Button {
                label,
                target,
                item: r.get(2).cloned(),
            })
        })
        .collect()
}

/// Writes a change's messages in its transaction, one statement per [`values`] batch; a row
/// whose `dedupe` exists is skipped.
pub(super) async fn insert(tx: &mut Tx, msgs: &[Outgoing]) -> Result<(), StoreError> {
    if msgs.is_empty() {
        return Ok(());
    }
    let now = real_now();
    let rows: Vec<Vec<Val>> = msgs
        .iter()
        .zip(0i64..)
        .map(|(m, n)| {
            let (kind, to) = match &m.kind {
                OutKind::Send(r) => ("send", Some(recipient_text(r))),
                OutKind::Edit => ("edit", None),
                OutKind::Copy(r) => ("copy", Some(recipient_text(r))),
            };
            vec![
                Val::from(kind),
                Val::from(to),
                Val::from(m.text.as_str()),
                Val::from(buttons_text(&m.buttons)),
                Val::from(m.key.as_ref().map(ToString::to_string)),
                Val::from(&m.dedupe),
                Val::from(now),
                Val::from(now),
                Val::from(n),
            ]
        })
        .collect();
    for query in values(
        // `WHERE true`: SQLite would read `ON CONFLICT` as a join's constraint.
        "INSERT INTO outbox (kind, recipient, text, buttons, msg_key, dedupe, next_try, \
         created_at, attempts, lease_until, state, last_error, done_at) \
         SELECT column1, column2, column3, column4, column5, column6, column7, column8, 0, \
         NULL, 'pending', NULL, NULL FROM (",
        rows,
        // In the change's order: edits follow the sends they edit.
        ") AS v WHERE true ORDER BY column9 ON CONFLICT (dedupe) DO NOTHING",
    ) {
        // Deferred: on SQLite it goes with the change's next statement.
        tx.defer(query, Expect::Any).await.map_err(store_err)?;
    }
    Ok(())
}

fn queued_of(row: &DbRow, now: i64) -> Result<Queued, StoreError> {
    let get_s = |c: &str| -> Result<Option<String>, StoreError> {
        row.try_get::<Option<String>, _>(c)
            .map_err(|e| StoreError::Corrupt(format!("outbox {c}: {e}")))
    };
    let get_i = |c: &str| -> Result<i64, StoreError> {
        row.try_get::<i64, _>(c)
            .map_err(|e| StoreError::Corrupt(format!("outbox {c}: {e}")))
    };
    let kind = match get_s("kind")?.as_deref() {
        Some("edit") => OutKind::Edit,
        Some("copy") => OutKind::Copy(recipient_of(&get_s("recipient")?.unwrap_or_default())?),
        _ => OutKind::Send(recipient_of(&get_s("recipient")?.unwrap_or_default())?),
    };
    let created = get_i("created_at")?;
    Ok(Queued {
        id: get_i("id")?,
        msg: Outgoing {
            kind,
            text: get_s("text")?.unwrap_or_default(),
            buttons: buttons_of(&get_s("buttons")?.unwrap_or_default())?,
            key: get_s("msg_key")?
                .map(|k| k.parse::<MessageKey>())
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("outbox msg_key: {e}")))?,
            dedupe: get_s("dedupe")?,
        },
        attempts: u32::try_from(get_i("attempts")?).unwrap_or(u32::MAX),
        age: Duration::from_micros(u64::try_from(now - created).unwrap_or(0)),
    })
}

/// Claims up to `?` rows: first those whose sender's lease ended, then those due, oldest due
/// first. Each part walks `outbox_due` (state, next_try) in order and stops at the limit: an
/// `ORDER BY id` over every due row sorted them all under SQLite's writer each round, 30-50
/// ms with a 40,000-page review campaign queued, and every click waited behind it. An edit
/// or copy waits for the sends under its key written before it.
const CLAIM: &str = "UPDATE outbox SET state = 'sending', lease_until = ?, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM (SELECT id FROM (SELECT o.id FROM outbox o \
         WHERE o.state = 'sending' AND o.lease_until <= ? AND NOT (o.kind IN ('edit', 'copy') \
           AND EXISTS (SELECT 1 FROM outbox e WHERE e.msg_key = o.msg_key AND e.id < o.id \
             AND e.state IN ('pending', 'sending'))) \
         ORDER BY o.id LIMIT ?) \
       UNION ALL SELECT id FROM (SELECT o.id FROM outbox o \
         WHERE o.state = 'pending' AND o.next_try <= ? AND NOT (o.kind IN ('edit', 'copy') \
           AND EXISTS (SELECT 1 FROM outbox e WHERE e.msg_key = o.msg_key AND e.id < o.id \
             AND e.state IN ('pending', 'sending'))) \
         ORDER BY o.next_try, o.id LIMIT ?)) LIMIT ?) \
     RETURNING id, kind, recipient, text, buttons, msg_key, dedupe, attempts, created_at";

/// [`CLAIM`] for PostgreSQL: rows another instance is claiming are skipped.
const CLAIM_PG: &str = "UPDATE outbox SET state = 'sending', lease_until = ?, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM (SELECT id FROM (SELECT o.id FROM outbox o \
         WHERE o.state = 'sending' AND o.lease_until <= ? AND NOT (o.kind IN ('edit', 'copy') \
           AND EXISTS (SELECT 1 FROM outbox e WHERE e.msg_key = o.msg_key AND e.id < o.id \
             AND e.state IN ('pending', 'sending'))) \
         ORDER BY o.id LIMIT ? FOR UPDATE SKIP LOCKED) stale \
       UNION ALL SELECT id FROM (SELECT o.id FROM outbox o \
         WHERE o.state = 'pending' AND o.next_try <= ? AND NOT (o.kind IN ('edit', 'copy') \
           AND EXISTS (SELECT 1 FROM outbox e WHERE e.msg_key = o.msg_key AND e.id < o.id \
             AND e.state IN ('pending', 'sending'))) \
         ORDER BY o.next_try, o.id LIMIT ? FOR UPDATE SKIP LOCKED) due) claimable LIMIT ?) \
     RETURNING id, kind, recipient, text, buttons, msg_key, dedupe, attempts, created_at";

impl SqlStore {
    pub(super) async fn outbox_claim(
        &self,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Queued>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = real_now();
        if self.pool.is_sqlite() {
            // An idle poll is a read, not a turn at SQLite's one writer (and stops at the first
            // due row: a count walked all 40,000 pages of a queued campaign each round).
            let due = q(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE state = 'pending' AND next_try <= ?) \
                 OR EXISTS (SELECT 1 FROM outbox WHERE state = 'sending' AND lease_until <= ?)",
            )
            .bind(now)
            .bind(now)
            .fetch_i64(&self.pool)
            .await
            .map_err(store_err)?;
            if due == 0 {
                return Ok(Vec::new());
            }
        }
        let _turn = self.pool.write_turn().await;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = q(CLAIM)
            .pg(CLAIM_PG)
            .bind(after(lease))
            .bind(now)
            .bind(limit)
            .bind(now)
            .bind(limit)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        let mut out = rows
            .iter()
            .map(|r| queued_of(r, now))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by_key(|m| m.id);
        Ok(out)
    }

    pub(super) async fn outbox_sent(
        &self,
        id: i64,
        note: Option<&str>,
        events: Vec<AuditEvent>,
    ) -> Result<bool, StoreError> {
        const SENT: &str = "UPDATE outbox SET state = 'sent', lease_until = NULL, done_at = ?, \
                            last_error = ? WHERE id = ? AND state = 'sending'";
        if events.is_empty() {
            let _turn = self.pool.write_turn().await;
            let n = q(SENT)
                .bind(real_now())
                .bind(note.map(str::to_owned))
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(store_err)?;
            return Ok(n == 1);
        }
        let mut tx = self.begin_write().await.map_err(store_err)?;
        let n = q(SENT)
            .bind(real_now())
            .bind(note.map(str::to_owned))
            .bind(id)
            .execute(&mut tx)
            .await
            .map_err(store_err)?;
        // Audited once: a row another sender already settled is left as it is.
        let head = if n == 1 {
            audit::append(&mut tx, &events, None, self.audit_key.as_deref()).await?
        } else {
            None
        };
        tx.commit().await.map_err(store_err)?;
        self.anchored(head).await;
        Ok(n == 1)
    }

    pub(super) async fn outbox_sent_many(&self, ids: &[i64]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let _turn = self.pool.write_turn().await;
        q(
            "UPDATE outbox SET state = 'sent', lease_until = NULL, done_at = ?, last_error = NULL \
           WHERE id IN (SELECT value FROM json_each(?)) AND state = 'sending'",
        )
        .pg(
            "UPDATE outbox SET state = 'sent', lease_until = NULL, done_at = $1, \
             last_error = NULL \
             WHERE id = ANY(ARRAY(SELECT json_array_elements_text($2::json)::bigint)) \
             AND state = 'sending'",
        )
        .bind(real_now())
        .bind(json_list(ids.iter()))
        .execute(&self.pool)
        .await
        .map_err(store_err)
    }

    pub(super) async fn outbox_retry(
        &self,
        rows: &[(i64, Duration, String)],
    ) -> Result<(), StoreError> {
        const RETRY: &str = "UPDATE outbox SET state = 'pending', lease_until = NULL, \
                             next_try = ?, last_error = ? WHERE id = ? AND state = 'sending'";
        if let [(id, wait, error)] = rows {
            let _turn = self.pool.write_turn().await;
            q(RETRY)
                .bind(after(*wait))
                .bind(error.as_str())
                .bind(*id)
                .execute(&self.pool)
                .await
                .map_err(store_err)?;
            return Ok(());
        }
        let mut tx = self.begin_write().await.map_err(store_err)?;
        for (id, wait, error) in rows {
            q(RETRY)
                .bind(after(*wait))
                .bind(error.as_str())
                .bind(*id)
                .execute(&mut tx)
                .await
                .map_err(store_err)?;
        }
        tx.commit().await.map_err(store_err)
    }

    pub(super) async fn outbox_failed(
        &self,
        id: i64,
        error: &str,
        events: Vec<AuditEvent>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await.map_err(store_err)?;
        let n = q(
            "UPDATE outbox SET state = 'failed', lease_until = NULL, done_at = ?, \
                   last_error = ? WHERE id = ? AND state = 'sending'",
        )
        .bind(real_now())
        .bind(error)
        .bind(id)
        .execute(&mut tx)
        .await
        .map_err(store_err)?;
        // Audited once: a row another sender already settled is left as it is.
        let head = if n == 1 {
            audit::append(&mut tx, &events, None, self.audit_key.as_deref()).await?
        } else {
            None
        };
        tx.commit().await.map_err(store_err)?;
        self.anchored(head).await;
        Ok(())
    }

    pub(super) async fn outbox_sends_reached(
        &self,
        key: &MessageKey,
        before: i64,
    ) -> Result<bool, StoreError> {
        let missed = q(
            "SELECT COUNT(*) FROM outbox WHERE msg_key = ? AND id < ? AND kind = 'send' \
             AND NOT (state = 'sent' AND last_error IS NULL)",
        )
        .bind(key.to_string())
        .bind(before)
        .fetch_i64(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(missed == 0)
    }

    pub(super) async fn outbox_counts_of(&self) -> Result<OutboxCounts, StoreError> {
        let row = q("SELECT \
             CAST(COALESCE(SUM(CASE WHEN state IN ('pending', 'sending') THEN 1 ELSE 0 END), 0) AS BIGINT) AS pending, \
             CAST(COALESCE(SUM(CASE WHEN state = 'sent' THEN 1 ELSE 0 END), 0) AS BIGINT) AS sent, \
             CAST(COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed, \
             CAST(COALESCE(SUM(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END), 0) AS BIGINT) AS retried \
             FROM outbox")
        .fetch_one(&self.pool)
        .await
        .map_err(store_err)?;
        let get = |c: &str| row.try_get::<i64, _>(c).map_err(store_err);
        Ok(OutboxCounts {
            pending: get("pending")?,
            sent: get("sent")?,
            failed: get("failed")?,
            retried: get("retried")?,
        })
    }
}

#[async_trait]
impl Outbox for SqlStore {
    async fn claim_messages(
        &self,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Queued>, StoreError> {
        self.outbox_claim(lease, limit).await
    }

    async fn message_sent(
        &self,
        id: i64,
        note: Option<&str>,
        audit: Vec<AuditEvent>,
    ) -> Result<bool, StoreError> {
        self.outbox_sent(id, note, audit).await
    }

    async fn messages_sent(&self, ids: &[i64]) -> Result<u64, StoreError> {
        self.outbox_sent_many(ids).await
    }

    async fn messages_retry(&self, rows: &[(i64, Duration, String)]) -> Result<(), StoreError> {
        self.outbox_retry(rows).await
    }

    async fn message_failed(
        &self,
        id: i64,
        error: &str,
        audit: Vec<AuditEvent>,
    ) -> Result<(), StoreError> {
        self.outbox_failed(id, error, audit).await
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.outbox_counts_of().await
    }

    async fn sends_reached(&self, key: &MessageKey, before: i64) -> Result<bool, StoreError> {
        self.outbox_sends_reached(key, before).await
    }
}

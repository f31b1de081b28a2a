//! Appending to the chain inside a write transaction, and resealing its head.

use hmac::Mac;
use secrecy::SecretSlice;

use super::{AUDIT_LOCK, GENESIS, actor_text, chain_hash, rfc3339, seal_mac};
use crate::core::model::{AuditEvent, RequestId};
use crate::core::ports::StoreError;
use crate::store::anchor::Head;
use crate::store::db::{Expect, Q, Tx, Val, q, values};
use crate::store::rows::{from_micros, micros};
use crate::store::{resolve_req, store_err};

/// The rows an append adds, chained after the head: their JSON form (one bind), the new
/// head's `seq` and hash, and the hash of row 1 when this append starts the chain.
struct Chained {
    rows: Vec<Vec<Val>>,
    seq: i64,
    head: String,
    first_hash: String,
}

/// How an append's writes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Now: a head another process moved is read again and the rows chained after it.
    Now,
    /// Deferred to the commit ([`Tx::defer`]): one round trip less, but a head another
    /// process moved fails the transaction as a conflict.
    Deferred,
}

/// Appends `events` to the chain inside `tx` (which must hold the write lock), resolving
/// `ReqRef::New` to `new_request`, and reseals the head when a key is given. Returns the new
/// head (to anchor once the transaction commits), or `None` when there was nothing to append.
/// The head appended after is the one this transaction or this process's last writer left
/// ([`Tx::known_head`]), else read.
pub(in crate::store) async fn append(
    tx: &mut Tx,
    events: &[AuditEvent],
    new_request: Option<RequestId>,
    key: Option<&SecretSlice<u8>>,
) -> Result<Option<Head>, StoreError> {
    append_in(tx, events, new_request, key, Mode::Now).await
}

/// [`append`] whose writes wait for the transaction's commit and go with it ([`Tx::defer`]):
/// the group commit's last round trip is then its commit's. When the head this process kept
/// moved meanwhile (another process appended), the commit fails as a conflict instead of the
/// rows being chained after the head read again: for a caller that then commits again
/// another way.
pub(in crate::store) async fn append_deferred(
    tx: &mut Tx,
    events: &[AuditEvent],
    key: Option<&SecretSlice<u8>>,
) -> Result<Option<Head>, StoreError> {
    append_in(tx, events, None, key, Mode::Deferred).await
}

async fn append_in(
    tx: &mut Tx,
    events: &[AuditEvent],
    new_request: Option<RequestId>,
    key: Option<&SecretSlice<u8>>,
    mode: Mode,
) -> Result<Option<Head>, StoreError> {
    if events.is_empty() {
        return Ok(None);
    }
    let kept = tx.known_head();
    let (seq, prev) = match kept.clone() {
        Some(k) => k,
        None => lock_head(tx).await?,
    };
    let mut starts_chain = seq == 0;
    let mut chained = chain_events(events, new_request, seq, prev)?;
    let rows = std::mem::take(&mut chained.rows);
    let landed = match &kept {
        Some((seq, hash)) => insert_rows_after(tx, rows, *seq, hash, mode).await?,
        None => {
            insert_rows(tx, rows, mode).await?;
            true
        }
    };
    if !landed {
        // The head moved since this process kept it (another process appended, or rows
        // went), or the rows need more than one statement: chain after the head as read.
        tx.forget_head();
        let (seq, prev) = lock_head(tx).await?;
        starts_chain = seq == 0;
        chained = chain_events(events, new_request, seq, prev)?;
        insert_rows(tx, std::mem::take(&mut chained.rows), mode).await?;
    }
    tx.appended(chained.seq, &chained.head);
    if starts_chain {
        // The genesis record remembers the chain's first row, so an emptied table does not
        // pass for a fresh database. Once set, it is never changed.
        let genesis =
            q("UPDATE audit_genesis SET first_hash = ? WHERE id = 1 AND first_hash IS NULL")
                .bind(&chained.first_hash);
        write(tx, genesis, mode, Expect::Any).await?;
    }
    let mac = match key {
        Some(key) => Some(reseal(tx, key, chained.seq, &chained.head, mode).await?),
        None => None,
    };
    Ok(Some(Head {
        seq: chained.seq,
        hash: chained.head,
        mac,
    }))
}

/// The chain's head (`seq` and hash; 0 and [`GENESIS`] when empty), read under the append
/// lock.
async fn lock_head(tx: &mut Tx) -> Result<(i64, String), StoreError> {
    if tx.is_pg() {
        // Several writers (instances) append concurrently on PostgreSQL: the lock, held until
        // this transaction ends, makes "read the head, append after it" atomic, so the rows
        // form one chain. The waiter's next statement sees the holder's committed rows.
        q("SELECT pg_advisory_xact_lock(?)")
            .bind(AUDIT_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
    }
    let last = q("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_err)?;
    Ok(match last {
        Some(r) => (
            r.try_get::<i64, _>("seq").map_err(store_err)?,
            r.try_get::<String, _>("hash").map_err(store_err)?,
        ),
        None => (0, GENESIS.to_owned()),
    })
}

/// Numbers and hashes `events` after row `seq` (whose hash is `prev`).
fn chain_events(
    events: &[AuditEvent],
    new_request: Option<RequestId>,
    mut seq: i64,
    mut prev: String,
) -> Result<Chained, StoreError> {
    // Every row goes in with one statement: an engine batch appends one row per action, an
    // expiry chunk two per grant.
    let mut rows = Vec::with_capacity(events.len());
    let mut first_hash = String::new();
    for e in events {
        seq += 1;
        let request = resolve_req(e.request, new_request)?;
        let at_us = micros(e.at);
        // Hash the stored (microsecond) form, so verification recomputes the same text.
        let at = rfc3339(from_micros(at_us)?);
        let actor = actor_text(&e.actor);
        let subject = e.subject.as_ref().map(|h| h.as_str());
        let app = e.app.as_ref().map(|a| a.as_str());
        let connector_action = e.connector_action.map(|a| a.0);
        let hash = chain_hash(
            seq,
            &at,
            &actor,
            e.actor_chat_id.as_deref(),
            e.action.as_str(),
            subject,
            app,
            request,
            connector_action,
            e.outcome.as_str(),
            &e.detail,
            &prev,
        );
        if seq == 1 {
            first_hash.clone_from(&hash);
        }
        rows.push(vec![
            Val::from(seq),
            Val::from(at_us),
            Val::from(actor),
            Val::from(e.actor_chat_id.as_deref()),
            Val::from(e.action.as_str()),
            Val::from(subject),
            Val::from(app),
            Val::from(request),
            Val::from(connector_action),
            Val::from(e.outcome.as_str()),
            Val::from(e.detail.as_str()),
            Val::from(prev.as_str()),
            Val::from(hash.as_str()),
        ]);
        prev = hash;
    }
    Ok(Chained {
        rows,
        seq,
        head: prev,
        first_hash,
    })
}

/// The audit row's columns, in the order [`chain_events`] gives their values.
const COLUMNS: &str = "INSERT INTO audit (seq, at, actor, actor_chat_id, action, subject, app, \
                       request_id, connector_action, outcome, detail, prev_hash, hash)";

/// Runs a write now, or defers it checked against `expect`.
async fn write(tx: &mut Tx, query: Q, mode: Mode, expect: Expect) -> Result<(), StoreError> {
    match mode {
        Mode::Now => query.execute(&mut *tx).await.map(|_| ()),
        Mode::Deferred => tx.defer(query, expect).await,
    }
    .map_err(store_err)
}

/// Inserts the chained rows, with one statement per [`values`] batch.
async fn insert_rows(tx: &mut Tx, rows: Vec<Vec<Val>>, mode: Mode) -> Result<(), StoreError> {
    for query in values(COLUMNS, rows, "") {
        write(tx, query, mode, Expect::Any).await?;
    }
    Ok(())
}

/// Inserts rows chained after the head (`seq`, `hash`) this process kept, in one statement
/// that inserts nothing unless that is still the head; whether they went in (false also when
/// they need more than one statement: none was run). Deferred, it is true once the statement
/// waits: one that inserts nothing fails the transaction then ([`Expect::Rows`]).
async fn insert_rows_after(
    tx: &mut Tx,
    rows: Vec<Vec<Val>>,
    seq: i64,
    hash: &str,
    mode: Mode,
) -> Result<bool, StoreError> {
    let n = rows.len() as u64;
    let mut queries = values(
        &format!("{COLUMNS} SELECT * FROM ("),
        rows,
        ") WHERE EXISTS (SELECT 1 FROM (SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1) \
         WHERE seq = ? AND hash = ?)",
    );
    let (Some(query), true) = (queries.pop(), queries.is_empty()) else {
        return Ok(false);
    };
    let query = query.bind(seq).bind(hash);
    if mode == Mode::Deferred {
        tx.defer(query, Expect::Rows(n)).await.map_err(store_err)?;
        return Ok(true);
    }
    let n = query.execute(&mut *tx).await.map_err(store_err)?;
    Ok(n > 0)
}

/// Seals the head (`seq`, `hash`) with the key; the MAC, in hex.
async fn reseal(
    tx: &mut Tx,
    key: &SecretSlice<u8>,
    seq: i64,
    hash: &str,
    mode: Mode,
) -> Result<String, StoreError> {
    let m = hex::encode(seal_mac(key, seq, hash)?.finalize().into_bytes());
    let query = q(
        "INSERT INTO audit_seal (id, seq, hash, mac) VALUES (1, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
         mac = excluded.mac",
    )
    .bind(seq)
    .bind(hash)
    .bind(&m);
    write(tx, query, mode, Expect::Any).await?;
    Ok(m)
}

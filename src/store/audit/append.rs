//! Appending to the chain inside a write transaction, and resealing its head.

use hmac::Mac;
use secrecy::SecretSlice;

use super::{AUDIT_LOCK, GENESIS, actor_text, chain_hash, rfc3339, seal_mac};
use crate::core::model::{AuditEvent, RequestId};
use crate::core::ports::StoreError;
use crate::store::anchor::Head;
use crate::store::db::{Tx, q};
use crate::store::rows::{from_micros, micros};
use crate::store::{resolve_req, store_err};

/// The rows an append adds, chained after the head: their JSON form (one bind), the new
/// head's `seq` and hash, and the hash of row 1 when this append starts the chain.
struct Chained {
    rows: Vec<serde_json::Value>,
    seq: i64,
    head: String,
    first_hash: String,
}

/// Appends `events` to the chain inside `tx` (which must hold the write lock), resolving
/// `ReqRef::New` to `new_request`, and reseals the head when a key is given. Returns the new
/// head (to anchor once the transaction commits), or `None` when there was nothing to append.
pub(in crate::store) async fn append(
    tx: &mut Tx,
    events: &[AuditEvent],
    new_request: Option<RequestId>,
    key: Option<&SecretSlice<u8>>,
) -> Result<Option<Head>, StoreError> {
    if events.is_empty() {
        return Ok(None);
    }
    let (seq, prev) = lock_head(tx).await?;
    let starts_chain = seq == 0;
    let chained = chain_events(events, new_request, seq, prev)?;
    insert_rows(tx, chained.rows).await?;
    if starts_chain {
        // The genesis record remembers the chain's first row, so an emptied table does not
        // pass for a fresh database. Once set, it is never changed.
        q("UPDATE audit_genesis SET first_hash = ? WHERE id = 1 AND first_hash IS NULL")
            .bind(&chained.first_hash)
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
    }
    let mac = match key {
        Some(key) => Some(reseal(tx, key, chained.seq, &chained.head).await?),
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
    // Every row goes in with one statement (a JSON array of rows, one bind): an engine
    // batch appends one row per action.
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
        rows.push(serde_json::json!({
            "seq": seq,
            "at": at_us,
            "actor": actor,
            "actor_chat_id": e.actor_chat_id,
            "action": e.action.as_str(),
            "subject": subject,
            "app": app,
            "request_id": request,
            "connector_action": connector_action,
            "outcome": e.outcome.as_str(),
            "detail": e.detail,
            "prev_hash": prev,
            "hash": hash,
        }));
        prev = hash;
    }
    Ok(Chained {
        rows,
        seq,
        head: prev,
        first_hash,
    })
}

/// Inserts the chained rows with one statement.
async fn insert_rows(tx: &mut Tx, rows: Vec<serde_json::Value>) -> Result<(), StoreError> {
    q(
        "INSERT INTO audit (seq, at, actor, actor_chat_id, action, subject, app, request_id, \
       connector_action, outcome, detail, prev_hash, hash) \
       SELECT json_extract(value, '$.seq'), json_extract(value, '$.at'), \
       json_extract(value, '$.actor'), json_extract(value, '$.actor_chat_id'), \
       json_extract(value, '$.action'), json_extract(value, '$.subject'), \
       json_extract(value, '$.app'), json_extract(value, '$.request_id'), \
       json_extract(value, '$.connector_action'), json_extract(value, '$.outcome'), \
       json_extract(value, '$.detail'), json_extract(value, '$.prev_hash'), \
       json_extract(value, '$.hash') FROM json_each(?)",
    )
    .pg(
        "INSERT INTO audit (seq, at, actor, actor_chat_id, action, subject, app, request_id, \
         connector_action, outcome, detail, prev_hash, hash) \
         SELECT seq, at, actor, actor_chat_id, action, subject, app, request_id, \
         connector_action, outcome, detail, prev_hash, hash \
         FROM json_to_recordset($1::json) AS r(seq bigint, at bigint, actor text, \
         actor_chat_id text, action text, subject text, app text, request_id bigint, \
         connector_action bigint, outcome text, detail text, prev_hash text, hash text)",
    )
    .bind(serde_json::Value::Array(rows).to_string())
    .execute(&mut *tx)
    .await
    .map_err(store_err)?;
    Ok(())
}

/// Seals the head (`seq`, `hash`) with the key; the MAC, in hex.
async fn reseal(
    tx: &mut Tx,
    key: &SecretSlice<u8>,
    seq: i64,
    hash: &str,
) -> Result<String, StoreError> {
    let m = hex::encode(seal_mac(key, seq, hash)?.finalize().into_bytes());
    q(
        "INSERT INTO audit_seal (id, seq, hash, mac) VALUES (1, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
         mac = excluded.mac",
    )
    .bind(seq)
    .bind(hash)
    .bind(&m)
    .execute(&mut *tx)
    .await
    .map_err(store_err)?;
    Ok(m)
}

//! The append-only, hash-chained audit trail (CONTRACTS §6).
//!
//! Row `seq` (from 1, no gaps) has `hash` = lowercase hex SHA-256 of the UTF-8 JSON array
//!
//! ```text
//! [seq, at, actor, actor_chat_id, action, subject, app, request, connector_action,
//!  outcome, detail, prev_hash]
//! ```
//!
//! as `serde_json` writes it (no spaces; absent values are `null`; `at` is RFC 3339 UTC with
//! six fractional digits and a `Z`, e.g. `2025-01-02T03:04:05.000006Z`). `prev_hash` is the
//! previous row's `hash`, 64 zeros for the first row. The encoding is unambiguous: every field
//! is a JSON scalar in a fixed position.
//!
//! With an audit key, the chain's head is sealed in `audit_seal` as
//! `(seq, hash, hex HMAC-SHA256(key, "{seq}:{hash}"))`, rewritten in the transaction that
//! appends. Without the key, someone with SQL access can cut rows off the end, or recompute
//! the whole chain, undetectably; with it, they cannot.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::db::{DbRow, Tx, q};
use super::rows::{from_micros, micros};
use super::{DbError, SqlStore, store_err};
use crate::core::model::{Actor, AuditEvent, RequestId};
use crate::core::ports::StoreError;

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The PostgreSQL advisory lock key that serialises audit appends ("qm-audit" in ASCII).
const AUDIT_LOCK: i64 = 0x716d_2d61_7564_6974;

/// Rows read per page while verifying.
const PAGE: i64 = 1000;

/// One stored audit row, as exported (`audit export`) and as hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When, RFC 3339 UTC with microseconds.
    pub at: String,
    /// A handle, `system` or `hr`.
    pub actor: String,
    /// The actor's chat id, when the event came from chat.
    pub actor_chat_id: Option<String>,
    /// Dotted name such as `request.submitted`.
    pub action: String,
    /// Whom it concerns (a handle).
    pub subject: Option<String>,
    /// The app's name.
    pub app: Option<String>,
    /// The request number.
    pub request: Option<i64>,
    /// The connector action's id.
    pub connector_action: Option<i64>,
    /// `ok`, `refused`, `failed`, `already`…
    pub outcome: String,
    /// Free text for people.
    pub detail: String,
    /// This row's hash (lowercase hex SHA-256).
    pub hash: String,
    /// The previous row's hash.
    pub prev_hash: String,
}

impl AuditRecord {
    /// The hash this row should carry, from its content and `prev_hash`.
    pub fn compute_hash(&self) -> String {
        chain_hash(
            self.seq,
            &self.at,
            &self.actor,
            self.actor_chat_id.as_deref(),
            &self.action,
            self.subject.as_deref(),
            self.app.as_deref(),
            self.request,
            self.connector_action,
            &self.outcome,
            &self.detail,
            &self.prev_hash,
        )
    }
}

/// The outcome of [`SqlStore::verify_audit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyReport {
    /// Every row verifies.
    Ok {
        /// Rows checked.
        rows: u64,
        /// Whether the head was also checked against the HMAC seal. When false, rows cut off
        /// the end of the chain (or a recomputed chain) cannot be detected.
        sealed: bool,
    },
    /// The first row that does not verify.
    Broken {
        /// Its `seq`.
        seq: i64,
        /// What is wrong, for people.
        reason: String,
    },
}

impl VerifyReport {
    /// True when the chain verified.
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok { .. })
    }
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ok { rows, sealed: true } => {
                write!(f, "audit chain OK: {rows} rows, head matches the HMAC seal")
            }
            Self::Ok {
                rows,
                sealed: false,
            } => write!(
                f,
                "audit chain OK: {rows} rows (no audit key: truncation of the newest rows and a \
                 recomputed chain are not detectable; set [audit] key_env)"
            ),
            Self::Broken { seq, reason } => {
                write!(f, "audit row {seq} does not verify: {reason}")
            }
        }
    }
}

/// The RFC 3339 form of a stored timestamp, as hashed and exported.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[allow(clippy::too_many_arguments)]
fn chain_hash(
    seq: i64,
    at: &str,
    actor: &str,
    actor_chat_id: Option<&str>,
    action: &str,
    subject: Option<&str>,
    app: Option<&str>,
    request: Option<i64>,
    connector_action: Option<i64>,
    outcome: &str,
    detail: &str,
    prev_hash: &str,
) -> String {
    let canonical = serde_json::json!([
        seq,
        at,
        actor,
        actor_chat_id,
        action,
        subject,
        app,
        request,
        connector_action,
        outcome,
        detail,
        prev_hash
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

type HmacSha256 = Hmac<Sha256>;

fn seal_mac(key: &SecretSlice<u8>, seq: i64, hash: &str) -> Result<HmacSha256, DbError> {
    let mut mac = HmacSha256::new_from_slice(key.expose_secret())
        .map_err(|e| DbError::Corrupt(format!("unusable audit key: {e}")))?;
    mac.update(format!("{seq}:{hash}").as_bytes());
    Ok(mac)
}

fn actor_text(a: &Actor) -> String {
    a.to_string()
}

/// Appends `events` to the chain inside `tx` (which must hold the write lock), resolving
/// `ReqRef::New` to `new_request`, and reseals the head when a key is given.
pub(super) async fn append(
    tx: &mut Tx,
    events: &[AuditEvent],
    new_request: Option<RequestId>,
    key: Option<&SecretSlice<u8>>,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
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
    let (mut seq, mut prev) = match last {
        Some(r) => (
            r.try_get::<i64, _>("seq").map_err(store_err)?,
            r.try_get::<String, _>("hash").map_err(store_err)?,
        ),
        None => (0, GENESIS.to_owned()),
    };
    for e in events {
        seq += 1;
        let request = super::resolve_req(e.request, new_request)?;
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
            &e.action,
            subject,
            app,
            request,
            connector_action,
            &e.outcome,
            &e.detail,
            &prev,
        );
        q(
            "INSERT INTO audit (seq, at, actor, actor_chat_id, action, subject, app, request_id, \
             connector_action, outcome, detail, prev_hash, hash) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(seq)
        .bind(at_us)
        .bind(actor)
        .bind(e.actor_chat_id.clone())
        .bind(e.action.as_str())
        .bind(subject.map(str::to_owned))
        .bind(app.map(str::to_owned))
        .bind(request)
        .bind(connector_action)
        .bind(e.outcome.as_str())
        .bind(e.detail.as_str())
        .bind(prev)
        .bind(hash.as_str())
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
        prev = hash;
    }
    if let Some(key) = key {
        let mac = hex::encode(seal_mac(key, seq, &prev)?.finalize().into_bytes());
        q(
            "INSERT INTO audit_seal (id, seq, hash, mac) VALUES (1, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
             mac = excluded.mac",
        )
        .bind(seq)
        .bind(prev)
        .bind(mac)
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
    }
    Ok(())
}

macro_rules! audit_cols {
    () => {
        "SELECT seq, at, actor, actor_chat_id, action, subject, app, request_id, \
         connector_action, outcome, detail, prev_hash, hash FROM audit "
    };
}

fn record_from_row(row: &DbRow) -> Result<AuditRecord, DbError> {
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        at: rfc3339(from_micros(row.try_get("at")?)?),
        actor: row.try_get("actor")?,
        actor_chat_id: row.try_get("actor_chat_id")?,
        action: row.try_get("action")?,
        subject: row.try_get("subject")?,
        app: row.try_get("app")?,
        request: row.try_get("request_id")?,
        connector_action: row.try_get("connector_action")?,
        outcome: row.try_get("outcome")?,
        detail: row.try_get("detail")?,
        hash: row.try_get("hash")?,
        prev_hash: row.try_get("prev_hash")?,
    })
}

impl SqlStore {
    /// Checks the whole audit chain: every row's hash, its link to the previous row, gaps in
    /// `seq`, and — with an audit key — the HMAC seal over the head. Reads one snapshot.
    pub async fn verify_audit(&self) -> Result<VerifyReport, DbError> {
        // One read transaction: a writer appending meanwhile cannot make chain and seal
        // disagree.
        let mut tx = self.pool.begin_read().await?;
        let mut expected_seq: i64 = 1;
        // The first page starts below 1, so stray rows numbered 0 or less are seen too.
        let mut after = i64::MIN;
        let mut prev = GENESIS.to_owned();
        let mut rows: u64 = 0;
        loop {
            let page = q(concat!(audit_cols!(), "WHERE seq > ? ORDER BY seq LIMIT ?"))
                .bind(after)
                .bind(PAGE)
                .fetch_all(&mut tx)
                .await?;
            let done = (page.len() as i64) < PAGE;
            for row in &page {
                let r = record_from_row(row)?;
                if r.seq != expected_seq {
                    let reason = if r.seq < expected_seq {
                        format!("it is numbered outside the chain (expected row {expected_seq})")
                    } else if r.seq - expected_seq == 1 {
                        format!("row {expected_seq} before it is missing (deleted)")
                    } else {
                        format!(
                            "rows {expected_seq} to {} before it are missing (deleted)",
                            r.seq - 1
                        )
                    };
                    return Ok(VerifyReport::Broken { seq: r.seq, reason });
                }
                if r.compute_hash() != r.hash {
                    return Ok(VerifyReport::Broken {
                        seq: r.seq,
                        reason: "its content does not match its hash (the row was changed)".into(),
                    });
                }
                if r.prev_hash != prev {
                    return Ok(VerifyReport::Broken {
                        seq: r.seq,
                        reason: "its prev_hash is not the hash of the row before it (rows were \
                                 deleted, reordered or replaced)"
                            .into(),
                    });
                }
                prev = r.hash;
                after = r.seq;
                expected_seq += 1;
                rows += 1;
            }
            if done {
                break;
            }
        }
        let last_seq = expected_seq - 1;

        let Some(key) = self.audit_key.as_deref() else {
            return Ok(VerifyReport::Ok {
                rows,
                sealed: false,
            });
        };
        let seal = q("SELECT seq, hash, mac FROM audit_seal WHERE id = 1")
            .fetch_optional(&mut tx)
            .await?;
        let Some(seal) = seal else {
            if rows == 0 {
                return Ok(VerifyReport::Ok { rows, sealed: true });
            }
            return Ok(VerifyReport::Broken {
                seq: last_seq,
                reason: "the chain has no seal although an audit key is configured (the seal \
                         was removed, or the rows were written without the key)"
                    .into(),
            });
        };
        let seal_seq: i64 = seal.try_get("seq")?;
        let seal_hash: String = seal.try_get("hash")?;
        let seal_mac_hex: String = seal.try_get("mac")?;
        let mac_ok = hex::decode(&seal_mac_hex)
            .ok()
            .map(|tag| seal_mac(key, seal_seq, &seal_hash).map(|m| m.verify_slice(&tag).is_ok()))
            .transpose()?
            .unwrap_or(false);
        if !mac_ok {
            return Ok(VerifyReport::Broken {
                seq: seal_seq,
                reason: "the seal's HMAC does not verify with the configured key (the seal or \
                         the chain was rewritten without the key, or the key changed)"
                    .into(),
            });
        }
        if seal_seq > last_seq {
            return Ok(VerifyReport::Broken {
                seq: last_seq + 1,
                reason: format!(
                    "the chain ends at row {last_seq} but the seal covers row {seal_seq}: rows \
                     were removed from the end (truncation)"
                ),
            });
        }
        if seal_seq < last_seq {
            return Ok(VerifyReport::Broken {
                seq: seal_seq + 1,
                reason: format!(
                    "rows after {seal_seq} are not covered by the seal (appended without the key)"
                ),
            });
        }
        if seal_hash != prev {
            return Ok(VerifyReport::Broken {
                seq: last_seq,
                reason: "the head's hash differs from the sealed hash (the chain was recomputed)"
                    .into(),
            });
        }
        Ok(VerifyReport::Ok { rows, sealed: true })
    }

    /// The audit rows, oldest first; with `since`, only rows at or after it.
    pub async fn audit_rows(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditRecord>, DbError> {
        let rows = q(concat!(audit_cols!(), "WHERE at >= ? ORDER BY seq"))
            .bind(since.map_or(i64::MIN, micros))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record_from_row).collect()
    }
}

/// Writes one JSON object per row, one row per line.
pub fn write_jsonl(rows: &[AuditRecord], out: &mut impl Write) -> std::io::Result<()> {
    for r in rows {
        serde_json::to_writer(&mut *out, r)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The CSV columns, in order.
const CSV_HEADER: [&str; 13] = [
    "seq",
    "at",
    "actor",
    "actor_chat_id",
    "action",
    "subject",
    "app",
    "request",
    "connector_action",
    "outcome",
    "detail",
    "hash",
    "prev_hash",
];

fn csv_field(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    if s.contains([',', '"', '\n', '\r']) {
        write!(out, "\"{}\"", s.replace('"', "\"\""))
    } else {
        out.write_all(s.as_bytes())
    }
}

/// Writes RFC 4180 CSV: a header row, then one line per row (CRLF line ends); absent values
/// are empty fields.
pub fn write_csv(rows: &[AuditRecord], out: &mut impl Write) -> std::io::Result<()> {
    out.write_all(CSV_HEADER.join(",").as_bytes())?;
    out.write_all(b"\r\n")?;
    for r in rows {
        let opt_i = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let fields: [String; 13] = [
            r.seq.to_string(),
            r.at.clone(),
            r.actor.clone(),
            r.actor_chat_id.clone().unwrap_or_default(),
            r.action.clone(),
            r.subject.clone().unwrap_or_default(),
            r.app.clone().unwrap_or_default(),
            opt_i(r.request),
            opt_i(r.connector_action),
            r.outcome.clone(),
            r.detail.clone(),
            r.hash.clone(),
            r.prev_hash.clone(),
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            csv_field(out, f)?;
        }
        out.write_all(b"\r\n")?;
    }
    Ok(())
}

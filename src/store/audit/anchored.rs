//! `audit verify --anchors`: the chain checked against the anchor file's lines.

use chrono::{DateTime, Utc};
use hmac::Mac;

use super::{PACKED_PAGE, VerifyReport, rfc3339, seal_mac};
use crate::store::anchor::{AnchorLine, parse_anchors};
use crate::store::db::{Tx, q};
use crate::store::rows::from_micros;
use crate::store::{DbError, SqlStore};

/// What `audit verify --anchors` found in the anchor file, when the chain agrees with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchorSummary {
    /// `seal` lines checked.
    pub seals: usize,
    /// The highest anchored row (0 when none).
    pub highest: i64,
}

/// A `seal` line of the anchor file: the row's `seq`, its hash, the line number.
type Seal<'a> = (i64, &'a str, usize);

/// The first disagreement found: the `seq` it names and why.
type Disagreement = (i64, String);

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
        let none = AnchorSummary {
            seals: 0,
            highest: 0,
        };
        let VerifyReport::Ok { rows, .. } = report else {
            return Ok((report, none));
        };
        let broken = |(seq, reason): Disagreement| Ok((VerifyReport::Broken { seq, reason }, none));
        let rows = i64::try_from(rows).unwrap_or(i64::MAX);
        let mut tx = self.pool.begin_read().await?;
        let created_at: i64 = q("SELECT created_at FROM audit_genesis WHERE id = 1")
            .fetch_one(&mut tx)
            .await?
            .try_get("created_at")?;
        let created = from_micros(created_at)?;
        // (seq, hash, line), by seq then line.
        let mut seals = match self.anchor_seals(&lines, created)? {
            Ok(seals) => seals,
            Err(d) => return broken(d),
        };
        seals.sort_unstable();
        if let Some(&(seq, _, n)) = seals.iter().rev().find(|s| s.0 > rows) {
            return broken((
                seq,
                format!(
                    "the anchor file (line {n}) records row {seq}, but the chain ends at row \
                     {rows}: rows were removed from the end (truncation or a rollback)"
                ),
            ));
        }
        if let Some(d) = walk_seals(&mut tx, &seals).await? {
            return broken(d);
        }
        let summary = AnchorSummary {
            seals: seals.len(),
            highest: seals.last().map_or(0, |s| s.0),
        };
        Ok((report, summary))
    }

    /// The `seal` lines, in file order, once every `genesis` line names the database created
    /// at `created` and, with a key, every seal's MAC verifies; else the first disagreement.
    fn anchor_seals<'a>(
        &self,
        lines: &'a [(usize, AnchorLine)],
        created: DateTime<Utc>,
    ) -> Result<Result<Vec<Seal<'a>>, Disagreement>, DbError> {
        let mut seals = Vec::new();
        for (n, line) in lines {
            match line {
                AnchorLine::Genesis { created_at } => {
                    let at = DateTime::parse_from_rfc3339(created_at)
                        .map(|t| t.with_timezone(&Utc))
                        .ok();
                    if at != Some(created) {
                        return Ok(Err((
                            0,
                            format!(
                                "the anchor file (line {n}) was started for a database created \
                                 at {created_at}, but this database was created at {}: it was \
                                 replaced or re-created",
                                rfc3339(created)
                            ),
                        )));
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
                            return Ok(Err((
                                *seq,
                                format!(
                                    "the anchor file's line {n} for row {seq} carries a MAC \
                                     that does not verify with the configured key (it was not \
                                     written by Quartermaster with this key)"
                                ),
                            )));
                        }
                    }
                    seals.push((*seq, hash.as_str(), *n));
                }
            }
        }
        Ok(Ok(seals))
    }
}

/// Walks the anchored rows' hashes in seq order, a page at a time (`seals` sorted, none past
/// the chain's end): the first anchored row that is missing or carries another hash.
async fn walk_seals(tx: &mut Tx, seals: &[Seal<'_>]) -> Result<Option<Disagreement>, DbError> {
    let mut next = 0;
    let mut after = 0i64;
    while next < seals.len() {
        let page = q("SELECT seq, hash FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?")
            .bind(after.max(seals[next].0 - 1))
            .bind(seals[seals.len() - 1].0)
            .bind(PACKED_PAGE)
            .fetch_all(&mut *tx)
            .await?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            let seq: i64 = row.try_get("seq")?;
            let hash: String = row.try_get("hash")?;
            if let Some(&(missing, _, n)) = seals.get(next).filter(|s| s.0 < seq) {
                return Ok(Some((
                    missing,
                    format!("row {missing}, which the anchor file recorded (line {n}), is missing"),
                )));
            }
            while next < seals.len() && seals[next].0 == seq {
                let (_, anchored, n) = seals[next];
                if anchored != hash {
                    return Ok(Some((
                        seq,
                        format!(
                            "row {seq}'s hash differs from the one the anchor file recorded \
                             (line {n}): the chain was rolled back and rewritten from there"
                        ),
                    )));
                }
                next += 1;
            }
            after = seq;
        }
    }
    Ok(seals.get(next).map(|&(missing, _, n)| {
        (
            missing,
            format!("row {missing}, which the anchor file recorded (line {n}), is missing"),
        )
    }))
}

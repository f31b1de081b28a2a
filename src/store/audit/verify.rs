//! Verifying the chain row by row, its genesis record and its seal.

use hmac::Mac;
use secrecy::SecretSlice;

use super::packed::verify_packed;
use super::{GENESIS, PACKED_PAGE, PAGE, VerifyReport, record_from_row, rfc3339, seal_mac};
use crate::store::db::{Tx, q};
use crate::store::rows::from_micros;
use crate::store::{DbError, SqlStore};

/// How far a verification has come: the next `seq` expected, the last row read, the hash
/// the next row must link to, and the rows checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Chain {
    pub(super) expected_seq: i64,
    pub(super) after: i64,
    pub(super) prev: String,
    pub(super) rows: u64,
}

impl Chain {
    pub(super) fn start() -> Self {
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
    pub(super) fn check(
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

/// Verifies the rows after `chain.after` one by one through the driver (the reference
/// reading, and the fallback for rows the packed reading cannot take).
pub(super) async fn verify_rows(
    tx: &mut Tx,
    chain: &mut Chain,
) -> Result<Option<VerifyReport>, DbError> {
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

impl SqlStore {
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
        if let Some(report) = check_genesis(&mut tx, chain.rows).await? {
            return Ok(report);
        }
        match self.audit_key.as_deref() {
            None => Ok(VerifyReport::Ok {
                rows: chain.rows,
                sealed: false,
            }),
            Some(key) => check_seal(&mut tx, key, &chain).await,
        }
    }
}

/// The seal's verdict on a chain that verified (`chain`: its rows, next `seq` and head
/// hash): it must exist (unless the chain is empty), its MAC must verify with `key`, and it
/// must cover exactly the chain's head.
async fn check_seal(
    tx: &mut Tx,
    key: &SecretSlice<u8>,
    chain: &Chain,
) -> Result<VerifyReport, DbError> {
    let rows = chain.rows;
    let last_seq = chain.expected_seq - 1;
    let seal = q("SELECT seq, hash, mac FROM audit_seal WHERE id = 1")
        .fetch_optional(&mut *tx)
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
    Ok(sealed_head_verdict(seal_seq, &seal_hash, chain))
}

/// Whether a seal whose MAC verified covers the chain's head: no rows cut off the end, none
/// appended without the key, the head's hash the sealed one.
fn sealed_head_verdict(seal_seq: i64, seal_hash: &str, chain: &Chain) -> VerifyReport {
    let last_seq = chain.expected_seq - 1;
    if seal_seq > last_seq {
        return VerifyReport::Broken {
            seq: last_seq + 1,
            reason: format!(
                "the chain ends at row {last_seq} but the seal covers row {seal_seq}: rows \
                 were removed from the end (truncation)"
            ),
        };
    }
    if seal_seq < last_seq {
        return VerifyReport::Broken {
            seq: seal_seq + 1,
            reason: format!(
                "rows after {seal_seq} are not covered by the seal (appended without the key)"
            ),
        };
    }
    if seal_hash != chain.prev {
        return VerifyReport::Broken {
            seq: last_seq,
            reason: "the head's hash differs from the sealed hash (the chain was recomputed)"
                .into(),
        };
    }
    VerifyReport::Ok {
        rows: chain.rows,
        sealed: true,
    }
}

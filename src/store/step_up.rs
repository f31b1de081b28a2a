//! Step-up enrolments, their one-time page links and break-glass records: reads, and the
//! writes a [`Change`] carries (conditional ones fail the whole change when the stored state
//! moved).

use async_trait::async_trait;

use super::commit::changed_one;
use super::db::{DbRow, Q, Tx, q};
use super::rows::{app, from_micros, get, handle, micros, opt_ts};
use super::{DbError, SqlStore, resolve_req, store_err};
use crate::core::model::*;
use crate::core::ports::{Change, MfaWrite, StepUpRecords, StoreError};

/// The columns of a break-glass record, in `SELECT` order.
macro_rules! bg_cols {
    () => {
        "SELECT id, request_id, person, app, reason, granted_at, ratify_by, ratified_by, \
         ratified_at, overdue_at, revoked_by, revoked_at, cleared_by, cleared_at, version \
         FROM break_glass"
    };
}

fn ts(row: &DbRow, col: &str) -> Result<Timestamp, DbError> {
    from_micros(get::<i64>(row, col)?)
}

/// Who and when, from a pair of columns set together.
fn by_at(row: &DbRow, by: &str, at: &str) -> Result<Option<(String, Timestamp)>, DbError> {
    Ok(match (get::<Option<String>>(row, by)?, opt_ts(row, at)?) {
        (Some(b), Some(t)) => Some((b, t)),
        _ => None,
    })
}

fn person_at(row: &DbRow, by: &str, at: &str) -> Result<Option<(Handle, Timestamp)>, DbError> {
    by_at(row, by, at)?
        .map(|(b, t)| Ok((handle(&b)?, t)))
        .transpose()
}

fn mfa_from_row(row: &DbRow) -> Result<MfaRecord, DbError> {
    Ok(MfaRecord {
        person: handle(&get::<String>(row, "person")?)?,
        sealed: get(row, "sealed")?,
        confirmed_at: opt_ts(row, "confirmed_at")?,
        last_step: get(row, "last_step")?,
        failures: u32::try_from(get::<i64>(row, "failures")?).unwrap_or(u32::MAX),
        locked_until: opt_ts(row, "locked_until")?,
    })
}

fn link_from_row(row: &DbRow) -> Result<MfaLink, DbError> {
    Ok(MfaLink {
        token_hash: get(row, "token_hash")?,
        person: handle(&get::<String>(row, "person")?)?,
        expires_at: ts(row, "expires_at")?,
        used_at: opt_ts(row, "used_at")?,
    })
}

fn bg_from_row(row: &DbRow) -> Result<BreakGlass, DbError> {
    Ok(BreakGlass {
        id: BreakGlassId(get(row, "id")?),
        request: RequestId(get(row, "request_id")?),
        person: handle(&get::<String>(row, "person")?)?,
        app: app(&get::<String>(row, "app")?)?,
        reason: get(row, "reason")?,
        granted_at: ts(row, "granted_at")?,
        ratify_by: ts(row, "ratify_by")?,
        ratified: person_at(row, "ratified_by", "ratified_at")?,
        overdue_at: opt_ts(row, "overdue_at")?,
        revoked: by_at(row, "revoked_by", "revoked_at")?,
        cleared: person_at(row, "cleared_by", "cleared_at")?,
        version: get(row, "version")?,
    })
}

#[async_trait]
impl StepUpRecords for SqlStore {
    async fn mfa(&self, p: &Handle) -> Result<Option<MfaRecord>, StoreError> {
        let row = q(
            "SELECT person, sealed, confirmed_at, last_step, failures, locked_until \
                     FROM mfa WHERE person = ?",
        )
        .bind(p.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(row.as_ref().map(mfa_from_row).transpose()?)
    }

    async fn mfa_link(&self, token_hash: &str) -> Result<Option<MfaLink>, StoreError> {
        let row = q(
            "SELECT token_hash, person, expires_at, used_at FROM mfa_links \
                     WHERE token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(row.as_ref().map(link_from_row).transpose()?)
    }

    async fn break_glass(&self, id: BreakGlassId) -> Result<Option<BreakGlass>, StoreError> {
        let row = q(concat!(bg_cols!(), " WHERE id = ?"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(bg_from_row).transpose()?)
    }

    async fn break_glass_of_request(&self, r: RequestId) -> Result<Option<BreakGlass>, StoreError> {
        let row = q(concat!(bg_cols!(), " WHERE request_id = ?"))
            .bind(r.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(bg_from_row).transpose()?)
    }

    async fn open_break_glass(&self, p: &Handle) -> Result<Vec<BreakGlass>, StoreError> {
        let sql = concat!(
            bg_cols!(),
            " WHERE person = ? AND cleared_at IS NULL ORDER BY id"
        );
        self.read_all(q(sql).bind(p.as_str()), bg_from_row).await
    }

    async fn overdue_break_glass(&self, now: Timestamp) -> Result<Vec<BreakGlass>, StoreError> {
        let sql = concat!(
            bg_cols!(),
            " WHERE ratified_at IS NULL AND overdue_at IS NULL \
             AND cleared_at IS NULL AND ratify_by <= ? ORDER BY id"
        );
        self.read_all(q(sql).bind(micros(now)), bg_from_row).await
    }
}

/// Writes a change's step-up and break-glass parts.
pub(super) async fn write_step_up(
    tx: &mut Tx,
    change: &Change,
    new_request: Option<RequestId>,
) -> Result<(), StoreError> {
    for w in &change.mfa {
        write_mfa(tx, w).await?;
    }
    if let Some(b) = &change.new_break_glass {
        let request = resolve_req(b.request, new_request)?
            .ok_or_else(|| StoreError::Backend("a break-glass record needs a request".into()))?;
        let id = q(
            "INSERT INTO break_glass (request_id, person, app, reason, granted_at, \
           ratify_by, version) VALUES (?, ?, ?, ?, ?, ?, 1) RETURNING id",
        )
        .bind(request)
        .bind(b.person.as_str())
        .bind(b.app.as_str())
        .bind(b.reason.as_str())
        .bind(micros(b.granted_at))
        .bind(micros(b.ratify_by))
        .fetch_i64(&mut *tx)
        .await
        .map_err(store_err)?;
        let rows: Vec<_> = change
            .break_glass_messages
            .iter()
            .map(|m| m.complete(BreakGlassId(id), RequestId(request)))
            .collect();
        super::outbox::insert(tx, &rows).await?;
    } else if !change.break_glass_messages.is_empty() {
        return Err(StoreError::Backend(
            "messages about a new break-glass record, but the change creates none".into(),
        ));
    }
    for u in &change.break_glass_updates {
        let b = &u.after;
        let n = q(
            "UPDATE break_glass SET ratified_by = ?, ratified_at = ?, overdue_at = ?, \
                   revoked_by = ?, revoked_at = ?, cleared_by = ?, cleared_at = ?, \
                   version = version + 1 WHERE id = ? AND version = ?",
        )
        .bind(b.ratified.as_ref().map(|(h, _)| h.as_str().to_owned()))
        .bind(b.ratified.as_ref().map(|(_, t)| micros(*t)))
        .bind(b.overdue_at.map(micros))
        .bind(b.revoked.as_ref().map(|(h, _)| h.clone()))
        .bind(b.revoked.as_ref().map(|(_, t)| micros(*t)))
        .bind(b.cleared.as_ref().map(|(h, _)| h.as_str().to_owned()))
        .bind(b.cleared.as_ref().map(|(_, t)| micros(*t)))
        .bind(b.id.0)
        .bind(b.version)
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
        changed_one(n)?;
    }
    Ok(())
}

async fn write_mfa(tx: &mut Tx, w: &MfaWrite) -> Result<(), StoreError> {
    if let MfaWrite::Reset { person } = w {
        q("DELETE FROM mfa_links WHERE person = ?")
            .bind(person.as_str())
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
    }
    let n = mfa_query(w).execute(&mut *tx).await.map_err(store_err)?;
    changed_one(n)
}

/// The one statement of an enrolment write (each touches one row when it applies).
fn mfa_query(w: &MfaWrite) -> Q {
    match w {
        MfaWrite::Enrol { person, sealed } => q(
            "INSERT INTO mfa (person, sealed, last_step, failures) VALUES (?, ?, 0, 0) \
             ON CONFLICT (person) DO UPDATE SET sealed = excluded.sealed, last_step = 0, \
             failures = 0, locked_until = NULL WHERE mfa.confirmed_at IS NULL",
        )
        .bind(person.as_str())
        .bind(sealed.as_str()),
        MfaWrite::Link {
            token_hash,
            person,
            expires_at,
        } => q("INSERT INTO mfa_links (token_hash, person, expires_at) VALUES (?, ?, ?)")
            .bind(token_hash.as_str())
            .bind(person.as_str())
            .bind(micros(*expires_at)),
        MfaWrite::LinkUsed { token_hash, at } => q(
            "UPDATE mfa_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL \
             AND expires_at > ?",
        )
        .bind(micros(*at))
        .bind(token_hash.as_str())
        .bind(micros(*at)),
        MfaWrite::Confirm { person, step, at } => q(
            "UPDATE mfa SET confirmed_at = ?, last_step = ?, failures = 0, locked_until = NULL \
             WHERE person = ? AND confirmed_at IS NULL",
        )
        .bind(micros(*at))
        .bind(*step)
        .bind(person.as_str()),
        MfaWrite::Used { person, step } => q(
            "UPDATE mfa SET last_step = ?, failures = 0 WHERE person = ? \
             AND confirmed_at IS NOT NULL AND last_step < ?",
        )
        .bind(*step)
        .bind(person.as_str())
        .bind(*step),
        MfaWrite::Failed {
            person,
            failures,
            lock_until,
        } => {
            let next = if lock_until.is_some() {
                0
            } else {
                i64::from(*failures) + 1
            };
            q(
                "UPDATE mfa SET failures = ?, locked_until = COALESCE(?, locked_until) \
               WHERE person = ? AND failures = ?",
            )
            .bind(next)
            .bind(lock_until.map(micros))
            .bind(person.as_str())
            .bind(i64::from(*failures))
        }
        MfaWrite::Reset { person } => q("DELETE FROM mfa WHERE person = ?").bind(person.as_str()),
    }
}

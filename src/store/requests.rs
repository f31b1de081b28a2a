//! Requests and their approval steps: reading a request with its steps, and replacing the
//! step rows inside a write transaction; which steps were prompted.

use async_trait::async_trait;

use super::db::{Tx, Val, q, values};
use super::rows::{REQUEST_COLS, micros, request_from_row, step_from_row};
use super::{DbError, SqlStore, store_err};
use crate::core::model::*;
use crate::core::ports::{Requests, StoreError};

impl SqlStore {
    /// Reads the steps of `r` into it.
    pub(super) async fn load_steps(&self, r: &mut Request) -> Result<(), StoreError> {
        let rows = q(
            "SELECT idx, rule, approvers, started_at, decided, approved, decided_by, decided_at, \
             reason, reminded, escalated FROM steps WHERE request_id = ? ORDER BY idx",
        )
        .bind(r.id.0)
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?;
        r.steps = rows
            .iter()
            .map(step_from_row)
            .collect::<Result<_, DbError>>()?;
        Ok(())
    }

    pub(super) async fn requests_where(
        &self,
        sql: &'static str,
        binds: &[&str],
    ) -> Result<Vec<Request>, StoreError> {
        let mut query = q(sql);
        for b in binds {
            query = query.bind(*b);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(store_err)?;
        let mut out = rows
            .iter()
            .map(request_from_row)
            .collect::<Result<Vec<Request>, DbError>>()?;
        match out.as_mut_slice() {
            [] => {}
            [one] => self.load_steps(one).await?,
            many => self.load_steps_of(many).await?,
        }
        Ok(out)
    }

    /// The steps of several requests, in one query (one per request was 100 ms for 1,246
    /// open requests).
    async fn load_steps_of(&self, requests: &mut [Request]) -> Result<(), StoreError> {
        let ids = super::json_list(requests.iter().map(|r| r.id.0));
        let rows = q(
            "SELECT request_id, idx, rule, approvers, started_at, decided, approved, decided_by, \
             decided_at, reason, reminded, escalated FROM steps \
             WHERE request_id IN (SELECT value FROM json_each(?)) ORDER BY request_id, idx",
        )
        .pg(
            "SELECT request_id, idx, rule, approvers, started_at, decided, approved, decided_by, \
             decided_at, reason, reminded, escalated FROM steps \
             WHERE request_id = ANY(ARRAY(SELECT json_array_elements_text($1::json)::bigint)) \
             ORDER BY request_id, idx",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?;
        let mut steps: std::collections::HashMap<i64, Vec<Step>> = std::collections::HashMap::new();
        for row in &rows {
            let id: i64 = row
                .try_get("request_id")
                .map_err(|e| StoreError::Corrupt(format!("step request_id: {e}")))?;
            steps.entry(id).or_default().push(step_from_row(row)?);
        }
        for r in requests {
            r.steps = steps.remove(&r.id.0).unwrap_or_default();
        }
        Ok(())
    }
}

/// Replaces the step rows of a request.
pub(super) async fn write_steps(
    tx: &mut Tx,
    request: i64,
    steps: &[Step],
) -> Result<(), StoreError> {
    q("DELETE FROM steps WHERE request_id = ?")
        .bind(request)
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
    for s in steps {
        let approvers: Vec<&str> = s.approvers.iter().map(Handle::as_str).collect();
        let approvers = serde_json::to_string(&approvers)
            .map_err(|e| StoreError::Backend(format!("cannot encode approvers: {e}")))?;
        let d = s.decision.as_ref();
        q(
            "INSERT INTO steps (request_id, idx, rule, approvers, started_at, decided, approved, \
             decided_by, decided_at, reason, reminded, escalated) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(request)
        .bind(i64::from(s.index))
        .bind(s.rule.to_string())
        .bind(approvers)
        .bind(s.started_at.map(micros))
        .bind(d.is_some())
        .bind(d.map(|d| d.approved))
        .bind(d.map(|d| d.by.as_str().to_owned()))
        .bind(d.map(|d| micros(d.at)))
        .bind(d.and_then(|d| d.reason.clone()))
        .bind(s.reminded)
        .bind(s.escalated)
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
    }
    Ok(())
}

/// Replaces the steps of every updated request: one statement deletes them all, one inserts
/// the new ones ([`values`]).
pub(super) async fn replace_steps(
    tx: &mut Tx,
    updates: &[crate::core::ports::RequestUpdate],
) -> Result<(), StoreError> {
    q("DELETE FROM steps WHERE request_id IN (SELECT value FROM json_each(?))")
        .pg("DELETE FROM steps WHERE request_id = ANY(ARRAY(\
             SELECT json_array_elements_text($1::json)::bigint))")
        .bind(super::json_list(updates.iter().map(|u| u.id.0)))
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
    let mut rows = Vec::new();
    for u in updates {
        for s in &u.steps {
            rows.push(step_row(u.id.0, s)?);
        }
    }
    for query in values(
        "INSERT INTO steps (request_id, idx, rule, approvers, started_at, decided, approved, \
         decided_by, decided_at, reason, reminded, escalated)",
        rows,
        "",
    ) {
        query.execute(&mut *tx).await.map_err(store_err)?;
    }
    Ok(())
}

/// One step as a row for [`replace_steps`].
fn step_row(request: i64, s: &Step) -> Result<Vec<Val>, StoreError> {
    let approvers: Vec<&str> = s.approvers.iter().map(Handle::as_str).collect();
    let approvers = serde_json::to_string(&approvers)
        .map_err(|e| StoreError::Backend(format!("cannot encode approvers: {e}")))?;
    let d = s.decision.as_ref();
    Ok(vec![
        Val::from(request),
        Val::from(i64::from(s.index)),
        Val::from(s.rule.to_string()),
        Val::from(approvers),
        Val::from(s.started_at.map(micros)),
        Val::from(d.is_some()),
        Val::from(d.map(|d| d.approved)),
        Val::from(d.map(|d| d.by.as_str())),
        Val::from(d.map(|d| micros(d.at))),
        Val::from(d.and_then(|d| d.reason.clone())),
        Val::from(s.reminded),
        Val::from(s.escalated),
    ])
}

/// A request kind as stored: its name and the grant it extends.
pub(super) fn kind_parts(k: RequestKind) -> (&'static str, Option<i64>) {
    match k {
        RequestKind::New => ("new", None),
        RequestKind::Extend(g) => ("extend", Some(g.0)),
    }
}

#[async_trait]
impl Requests for SqlStore {
    async fn request(&self, id: RequestId) -> Result<Option<Request>, StoreError> {
        let row = q(REQUEST_COLS.by_id)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        let Some(row) = row else { return Ok(None) };
        let mut r = request_from_row(&row)?;
        self.load_steps(&mut r).await?;
        Ok(Some(r))
    }

    async fn open_request(&self, p: &Handle, app: &AppName) -> Result<Option<Request>, StoreError> {
        let mut v = self
            .requests_where(REQUEST_COLS.open_of, &[p.as_str(), app.as_str()])
            .await?;
        Ok(v.pop())
    }

    async fn open_requests(&self) -> Result<Vec<Request>, StoreError> {
        self.requests_where(REQUEST_COLS.open, &[]).await
    }

    async fn requests_by_ids(&self, ids: &[RequestId]) -> Result<Vec<Request>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = q(REQUEST_COLS.by_ids)
            .pg(REQUEST_COLS.by_ids_pg)
            .bind(super::json_list(ids.iter().map(|r| r.0)))
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        let mut out = rows
            .iter()
            .map(request_from_row)
            .collect::<Result<Vec<Request>, DbError>>()?;
        if !out.is_empty() {
            self.load_steps_of(&mut out).await?;
        }
        Ok(out)
    }

    async fn requests_by(&self, p: &Handle) -> Result<Vec<Request>, StoreError> {
        self.requests_where(REQUEST_COLS.by_requester, &[p.as_str()])
            .await
    }

    async fn mark_prompted(&self, id: RequestId, step: u32) -> Result<(), StoreError> {
        let _turn = self.pool.write_turn().await;
        q("UPDATE requests SET prompted_step = ? WHERE id = ? AND current_step = ?")
            .bind(i64::from(step))
            .bind(id.0)
            .bind(i64::from(step))
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn unprompted_requests(&self, before: Timestamp) -> Result<Vec<RequestId>, StoreError> {
        let ids: Vec<i64> = q(
            "SELECT id FROM requests WHERE state IN ('awaiting', 'no_approver') \
             AND current_step IS NOT NULL \
             AND (prompted_step IS NULL OR prompted_step <> current_step) \
             AND updated_at <= ? ORDER BY id",
        )
        .bind(micros(before))
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(|r| r.try_get::<i64, _>("id"))
        .collect::<Result<_, _>>()
        .map_err(store_err)?;
        Ok(ids.into_iter().map(RequestId).collect())
    }
}

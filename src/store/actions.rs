//! The connector action queue: claims with leases, releases and lease renewals.

use std::time::Duration;

use async_trait::async_trait;

use super::db::q;
use super::rows::{ACTION_COLS, action_from_row, micros};
use super::{DbError, SqlStore, json_list, store_err};
use crate::core::model::{Action, ActionId, ConnectorName, GrantId, Handle, Timestamp};
use crate::core::ports::{ActionQueue, StoreError};

/// `now` and the end of a lease taken now, in stored microseconds.
pub(super) fn lease_window(now: Timestamp, lease: Duration) -> (i64, i64) {
    let now_us = micros(now);
    let lease_us = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
    (now_us, now_us.saturating_add(lease_us))
}

/// Connectors to skip as `,a,b,` (one bind). Names are slugs (no commas), so the list is
/// unambiguous.
pub(super) fn skip_list(skip: &[ConnectorName]) -> String {
    format!(
        ",{},",
        skip.iter()
            .map(ConnectorName::as_str)
            .collect::<Vec<_>>()
            .join(",")
    )
}

#[async_trait]
impl ActionQueue for SqlStore {
    async fn action(&self, id: ActionId) -> Result<Option<Action>, StoreError> {
        let row = q(ACTION_COLS.by_id)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(action_from_row).transpose()?)
    }

    async fn actions_for_grant(&self, g: GrantId) -> Result<Vec<Action>, StoreError> {
        self.read_all(q(ACTION_COLS.for_grant).bind(g.0), action_from_row)
            .await
    }

    async fn claim_action(
        &self,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<Action>, StoreError> {
        let (now_us, until) = lease_window(now, lease);
        // One statement, atomic on its own: no explicit transaction needed.
        let _turn = self.pool.write_turn().await;
        let row = q(ACTION_COLS.claim)
            .pg(ACTION_COLS.claim_pg)
            .bind(until)
            .bind(now_us)
            .bind(now_us)
            .bind(now_us)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(action_from_row).transpose()?)
    }

    async fn claim_action_except(
        &self,
        now: Timestamp,
        lease: Duration,
        skip: &[ConnectorName],
    ) -> Result<Option<Action>, StoreError> {
        if skip.is_empty() {
            return self.claim_action(now, lease).await;
        }
        let (now_us, until) = lease_window(now, lease);
        let skipped = skip_list(skip);
        let _turn = self.pool.write_turn().await;
        let row = q(ACTION_COLS.claim_except)
            .pg(ACTION_COLS.claim_except_pg)
            .bind(until)
            .bind(now_us)
            .bind(now_us)
            .bind(skipped.clone())
            .bind(now_us)
            .bind(skipped)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(action_from_row).transpose()?)
    }

    async fn release_action(
        &self,
        id: ActionId,
        now: Timestamp,
        why: &str,
    ) -> Result<bool, StoreError> {
        let _turn = self.pool.write_turn().await;
        let n = q(
            "UPDATE actions SET state = 'pending', lease_until = NULL, last_error = ?, \
             not_before = ?, updated_at = ? WHERE id = ? AND state = 'running'",
        )
        .bind(why)
        .bind(micros(now))
        .bind(micros(now))
        .bind(id.0)
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(n == 1)
    }

    async fn extend_leases(&self, ids: &[ActionId], until: Timestamp) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let _turn = self.pool.write_turn().await;
        q("UPDATE actions SET lease_until = ? \
           WHERE id IN (SELECT value FROM json_each(?)) AND state = 'running'")
        .pg("UPDATE actions SET lease_until = $1 \
             WHERE id = ANY(ARRAY(SELECT json_array_elements_text($2::json)::bigint)) \
             AND state = 'running'")
        .bind(micros(until))
        .bind(json_list(ids.iter().map(|a| a.0)))
        .execute(&self.pool)
        .await
        .map_err(store_err)
    }

    async fn claim_actions(
        &self,
        now: Timestamp,
        lease: Duration,
        skip: &[ConnectorName],
        limit: usize,
    ) -> Result<Vec<Action>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (now_us, until) = lease_window(now, lease);
        let skipped = skip_list(skip);
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        if self.pool.is_sqlite() {
            // Look before queuing for SQLite's one writer: an empty claim (an idle poll, a
            // wake-up after a command that queued nothing) is then a read beside the
            // writers instead of a write transaction in front of the next one.
            let due: bool = q(ACTION_COLS.any_due)
                .bind(now_us)
                .bind(skipped.clone())
                .bind(now_us)
                .bind(skipped.clone())
                .fetch_one(&self.pool)
                .await
                .map_err(store_err)?
                .try_get("due")
                .map_err(store_err)?;
            if !due {
                return Ok(Vec::new());
            }
        }
        let _turn = self.pool.write_turn().await;
        let rows = q(ACTION_COLS.claim_many)
            .pg(ACTION_COLS.claim_many_pg)
            .bind(until)
            .bind(now_us)
            .bind(now_us)
            .bind(skipped.clone())
            .bind(n)
            .bind(now_us)
            .bind(skipped)
            .bind(n)
            .bind(n)
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        let mut out = rows
            .iter()
            .map(action_from_row)
            .collect::<Result<Vec<_>, DbError>>()?;
        out.sort_by_key(|a| a.id);
        Ok(out)
    }

    async fn actions_of(&self, p: &Handle) -> Result<Vec<Action>, StoreError> {
        self.read_all(q(ACTION_COLS.for_person).bind(p.as_str()), action_from_row)
            .await
    }

    async fn actions_of_people(&self, people: &[Handle]) -> Result<Vec<Action>, StoreError> {
        self.read_list(
            (ACTION_COLS.for_people, ACTION_COLS.for_people_pg),
            people.iter().map(Handle::as_str),
            action_from_row,
        )
        .await
    }

    async fn queue_depth(&self) -> Result<i64, StoreError> {
        q("SELECT COUNT(*) FROM actions WHERE state IN ('pending', 'running')")
            .fetch_i64(&self.pool)
            .await
            .map_err(store_err)
    }
}

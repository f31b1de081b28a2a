//! The [`Store`] port implemented over the SQL tables.

use std::time::Duration;

use async_trait::async_trait;

use super::actions::{lease_window, skip_list};
use super::db::q;
use super::people::write_person;
use super::plans::insert_plan;
use super::rows::{
    ACTION_COLS, GRANT_COLS, ONBOARDING_PLANS_SETTLED, ONBOARDING_PLANS_SETTLED_PG, PERSON_COLS,
    PLAN_BY_ID, PLANS_DUE, PLANS_OF, PLANS_UNREPORTED_OFFBOARD, REQUEST_COLS, action_from_row,
    grant_from_row, micros, person_from_row, plan_from_row, request_from_row,
};
use super::{DbError, SqlStore, audit, json_list, outbox, store_err};
use crate::core::model::*;
use crate::core::ports::{
    Change, Committed, NewPlan, OutboxCounts, Outgoing, Plan, PlanState, Queued, Store, StoreError,
};

#[async_trait]
impl Store for SqlStore {
    async fn seed_people(&self, people: &[Person]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await.map_err(store_err)?;
        for p in people {
            q(
                "INSERT INTO people (handle, name, email, department, role, manager, discord_id, \
                 status, timezone) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (handle) DO NOTHING",
            )
            .bind(p.handle.as_str())
            .bind(p.name.as_str())
            .bind(p.email.as_str())
            .bind(p.department.as_str())
            .bind(p.role.as_str())
            .bind(p.manager.as_ref().map(|m| m.as_str().to_owned()))
            .bind(p.discord_id.clone())
            .bind(p.status.as_str())
            .bind(p.timezone.map(|z| z.name()))
            .execute(&mut tx)
            .await
            .map_err(store_err)?;
        }
        tx.commit().await.map_err(store_err)
    }

    async fn upsert_person(&self, p: &Person, audit: Vec<AuditEvent>) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await.map_err(store_err)?;
        write_person(&mut tx, p).await?;
        let head = audit::append(&mut tx, &audit, None, self.audit_key.as_deref()).await?;
        tx.commit().await.map_err(store_err)?;
        self.anchored(head).await;
        Ok(())
    }

    async fn person(&self, h: &Handle) -> Result<Option<Person>, StoreError> {
        let row = q(PERSON_COLS.by_handle)
            .bind(h.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(person_from_row).transpose()?)
    }

    async fn people_by_handle(&self, handles: &[Handle]) -> Result<Vec<Person>, StoreError> {
        self.read_list(
            (PERSON_COLS.in_list, PERSON_COLS.in_list_pg),
            handles.iter().map(Handle::as_str),
            person_from_row,
        )
        .await
    }

    async fn person_by_discord_id(&self, id: &str) -> Result<Option<Person>, StoreError> {
        let row = q(PERSON_COLS.by_discord_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(person_from_row).transpose()?)
    }

    async fn person_by_email(&self, email: &Email) -> Result<Option<Person>, StoreError> {
        let row = q(PERSON_COLS.by_email)
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(person_from_row).transpose()?)
    }

    async fn people(&self) -> Result<Vec<Person>, StoreError> {
        let rows = q(PERSON_COLS.all)
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(person_from_row)
            .collect::<Result<_, DbError>>()?)
    }

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

    async fn requests_by(&self, p: &Handle) -> Result<Vec<Request>, StoreError> {
        self.requests_where(REQUEST_COLS.by_requester, &[p.as_str()])
            .await
    }

    async fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        let row = q(GRANT_COLS.by_id)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(grant_from_row).transpose()?)
    }

    async fn grants_by_id(&self, ids: &[GrantId]) -> Result<Vec<Grant>, StoreError> {
        self.read_list(
            (GRANT_COLS.in_list, GRANT_COLS.in_list_pg),
            ids.iter().map(|g| g.0),
            grant_from_row,
        )
        .await
    }

    async fn grants_of(&self, p: &Handle) -> Result<Vec<Grant>, StoreError> {
        let rows = q(GRANT_COLS.live_of)
            .bind(p.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(grant_from_row)
            .collect::<Result<_, DbError>>()?)
    }

    async fn grants_of_people(&self, people: &[Handle]) -> Result<Vec<Grant>, StoreError> {
        self.read_list(
            (GRANT_COLS.live_of_list, GRANT_COLS.live_of_list_pg),
            people.iter().map(Handle::as_str),
            grant_from_row,
        )
        .await
    }

    async fn grants_ending_by(&self, t: Timestamp) -> Result<Vec<Grant>, StoreError> {
        let rows = q(GRANT_COLS.ending_by)
            .bind(micros(t))
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(grant_from_row)
            .collect::<Result<_, DbError>>()?)
    }

    async fn action(&self, id: ActionId) -> Result<Option<Action>, StoreError> {
        let row = q(ACTION_COLS.by_id)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(action_from_row).transpose()?)
    }

    async fn actions_for_grant(&self, g: GrantId) -> Result<Vec<Action>, StoreError> {
        let rows = q(ACTION_COLS.for_grant)
            .bind(g.0)
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(action_from_row)
            .collect::<Result<_, DbError>>()?)
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
        let rows = q(ACTION_COLS.for_person)
            .bind(p.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(action_from_row)
            .collect::<Result<_, DbError>>()?)
    }

    async fn actions_of_people(&self, people: &[Handle]) -> Result<Vec<Action>, StoreError> {
        self.read_list(
            (ACTION_COLS.for_people, ACTION_COLS.for_people_pg),
            people.iter().map(Handle::as_str),
            action_from_row,
        )
        .await
    }

    async fn create_plan(&self, plan: NewPlan, audit: Vec<AuditEvent>) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await.map_err(store_err)?;
        let id = insert_plan(&mut tx, plan, false).await?;
        let head = audit::append(&mut tx, &audit, None, self.audit_key.as_deref()).await?;
        tx.commit().await.map_err(store_err)?;
        self.anchored(head).await;
        Ok(id)
    }

    async fn plan(&self, id: i64) -> Result<Option<Plan>, StoreError> {
        let row = q(PLAN_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(plan_from_row).transpose()?)
    }

    async fn plans_of(&self, subject: &Handle) -> Result<Vec<Plan>, StoreError> {
        let rows = q(PLANS_OF)
            .bind(subject.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(plan_from_row)
            .collect::<Result<_, DbError>>()?)
    }

    async fn onboarding_plans_settled(&self, people: &[Handle]) -> Result<Vec<Plan>, StoreError> {
        self.read_list(
            (ONBOARDING_PLANS_SETTLED, ONBOARDING_PLANS_SETTLED_PG),
            people.iter().map(Handle::as_str),
            plan_from_row,
        )
        .await
    }

    async fn mark_plan_reported(&self, id: i64) -> Result<bool, StoreError> {
        let _turn = self.pool.write_turn().await;
        let n = q("UPDATE plans SET reported = 1 WHERE id = ? AND reported = 0")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(n == 1)
    }

    async fn close_plan(
        &self,
        id: i64,
        state: PlanState,
        by: &Handle,
        at: Timestamp,
        audit: Vec<AuditEvent>,
        messages: Vec<Outgoing>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await.map_err(store_err)?;
        let n = q(
            "UPDATE plans SET state = ?, decided_by = ?, decided_at = ? \
             WHERE id = ? AND state = 'open'",
        )
        .bind(state.as_str())
        .bind(by.as_str())
        .bind(micros(at))
        .bind(id)
        .execute(&mut tx)
        .await
        .map_err(store_err)?;
        if n == 0 {
            return Ok(false);
        }
        outbox::insert(&mut tx, &messages).await?;
        let head = audit::append(&mut tx, &audit, None, self.audit_key.as_deref()).await?;
        tx.commit().await.map_err(store_err)?;
        self.anchored(head).await;
        Ok(true)
    }

    async fn due_plans(&self, now: Timestamp) -> Result<Vec<Plan>, StoreError> {
        let rows = q(PLANS_DUE)
            .bind(micros(now))
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(plan_from_row)
            .collect::<Result<_, DbError>>()?)
    }

    async fn unreported_offboardings(&self) -> Result<Vec<Plan>, StoreError> {
        let rows = q(PLANS_UNREPORTED_OFFBOARD)
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(plan_from_row)
            .collect::<Result<_, DbError>>()?)
    }

    async fn start_plan(&self, id: i64) -> Result<bool, StoreError> {
        let _turn = self.pool.write_turn().await;
        let n = q("UPDATE plans SET started = 1 WHERE id = ? AND started = 0")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(n == 1)
    }

    async fn unwarned_expiring_grants(&self) -> Result<Vec<Grant>, StoreError> {
        let rows = q(GRANT_COLS.unwarned)
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(grant_from_row)
            .collect::<Result<_, DbError>>()?)
    }

    async fn mark_hr_event(
        &self,
        id: &str,
        at: Timestamp,
        audit: Vec<AuditEvent>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await.map_err(store_err)?;
        let n = q("INSERT INTO hr_events (id, at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING")
            .bind(id)
            .bind(micros(at))
            .execute(&mut tx)
            .await
            .map_err(store_err)?;
        if n == 0 {
            return Ok(false);
        }
        let head = audit::append(&mut tx, &audit, None, self.audit_key.as_deref()).await?;
        tx.commit().await.map_err(store_err)?;
        self.anchored(head).await;
        Ok(true)
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

    async fn hr_event_seen(&self, id: &str) -> Result<bool, StoreError> {
        let n = q("SELECT COUNT(*) FROM hr_events WHERE id = ?")
            .bind(id)
            .fetch_i64(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(n > 0)
    }

    async fn unmark_hr_event(&self, id: &str) -> Result<(), StoreError> {
        let _turn = self.pool.write_turn().await;
        q("DELETE FROM hr_events WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn queue_depth(&self) -> Result<i64, StoreError> {
        q("SELECT COUNT(*) FROM actions WHERE state IN ('pending', 'running')")
            .fetch_i64(&self.pool)
            .await
            .map_err(store_err)
    }

    async fn claim_messages(
        &self,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Queued>, StoreError> {
        self.outbox_claim(lease, limit).await
    }

    async fn message_sent(
        &self,
        id: i64,
        note: Option<&str>,
        audit: Vec<AuditEvent>,
    ) -> Result<bool, StoreError> {
        self.outbox_sent(id, note, audit).await
    }

    async fn message_retry(&self, id: i64, after: Duration, error: &str) -> Result<(), StoreError> {
        self.outbox_retry(id, after, error).await
    }

    async fn message_failed(
        &self,
        id: i64,
        error: &str,
        audit: Vec<AuditEvent>,
    ) -> Result<(), StoreError> {
        self.outbox_failed(id, error, audit).await
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.outbox_counts_of().await
    }

    async fn commit(&self, change: Change) -> Result<Committed, StoreError> {
        self.commit_change(change).await
    }
}

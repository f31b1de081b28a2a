//! Plans: offboardings, role changes and onboardings waiting for Confirm, carried out,
//! reported.

use async_trait::async_trait;

use super::db::{Tx, q};
use super::rows::{
    ONBOARDING_PLANS_SETTLED, ONBOARDING_PLANS_SETTLED_PG, PLAN_BY_ID, PLANS_DUE, PLANS_OF,
    PLANS_OPEN, PLANS_UNREPORTED_OFFBOARD, micros, plan_from_row,
};
use super::{SqlStore, audit, outbox, store_err};
use crate::core::model::{AuditEvent, Handle, PlanId, Timestamp};
use crate::core::ports::{NewPlan, Outgoing, Plan, PlanState, Plans, StoreError};

/// Inserts a plan inside a write transaction (already started when `started`); its id.
pub(super) async fn insert_plan(
    tx: &mut Tx,
    plan: NewPlan,
    started: bool,
) -> Result<PlanId, StoreError> {
    let confirmers: Vec<&str> = plan.confirmers.iter().map(Handle::as_str).collect();
    let confirmers =
        serde_json::to_string(&confirmers).map_err(|e| StoreError::Backend(e.to_string()))?;
    let (state, decided_at) = if plan.preconfirmed {
        (PlanState::Confirmed, Some(micros(plan.created_at)))
    } else {
        (PlanState::Open, None)
    };
    q(
        "INSERT INTO plans (kind, subject, created_by, confirmers, detail, state, \
         decided_by, decided_at, reported, created_at, due_at, started) \
         VALUES (?, ?, ?, ?, ?, ?, NULL, ?, 0, ?, ?, ?) RETURNING id",
    )
    .bind(plan.kind.as_str())
    .bind(plan.subject.as_str())
    .bind(plan.created_by.as_str())
    .bind(confirmers)
    .bind(plan.detail)
    .bind(state.as_str())
    .bind(decided_at)
    .bind(micros(plan.created_at))
    .bind(plan.due_at.map(micros))
    .bind(i64::from(started))
    .fetch_i64(tx)
    .await
    .map(PlanId)
    .map_err(store_err)
}

#[async_trait]
impl Plans for SqlStore {
    async fn create_plan(
        &self,
        plan: NewPlan,
        audit: Vec<AuditEvent>,
    ) -> Result<PlanId, StoreError> {
        let mut tx = self.begin_write().await.map_err(store_err)?;
        let id = insert_plan(&mut tx, plan, false).await?;
        let head = audit::append(&mut tx, &audit, None, self.audit_key.as_deref()).await?;
        tx.commit().await.map_err(store_err)?;
        self.anchored(head).await;
        Ok(id)
    }

    async fn plan(&self, id: PlanId) -> Result<Option<Plan>, StoreError> {
        let row = q(PLAN_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(plan_from_row).transpose()?)
    }

    async fn plans_of(&self, subject: &Handle) -> Result<Vec<Plan>, StoreError> {
        self.read_all(q(PLANS_OF).bind(subject.as_str()), plan_from_row)
            .await
    }

    async fn open_plans(&self) -> Result<Vec<Plan>, StoreError> {
        self.read_all(q(PLANS_OPEN), plan_from_row).await
    }

    async fn onboarding_plans_settled(&self, people: &[Handle]) -> Result<Vec<Plan>, StoreError> {
        self.read_list(
            (ONBOARDING_PLANS_SETTLED, ONBOARDING_PLANS_SETTLED_PG),
            people.iter().map(Handle::as_str),
            plan_from_row,
        )
        .await
    }

    async fn mark_plan_reported(&self, id: PlanId) -> Result<bool, StoreError> {
        let _turn = self.pool.write_turn().await;
        let n = q("UPDATE plans SET reported = 1 WHERE id = ? AND reported = 0")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(n == 1)
    }

    async fn due_plans(&self, now: Timestamp) -> Result<Vec<Plan>, StoreError> {
        self.read_all(q(PLANS_DUE).bind(micros(now)), plan_from_row)
            .await
    }

    async fn unreported_offboardings(&self) -> Result<Vec<Plan>, StoreError> {
        self.read_all(q(PLANS_UNREPORTED_OFFBOARD), plan_from_row)
            .await
    }

    async fn start_plan(&self, id: PlanId) -> Result<bool, StoreError> {
        let _turn = self.pool.write_turn().await;
        let n = q("UPDATE plans SET started = 1 WHERE id = ? AND started = 0")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(n == 1)
    }

    async fn close_plan(
        &self,
        id: PlanId,
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
}

//! Plans: offboardings, role changes and onboardings waiting for Confirm, carried out,
//! reported.

use super::db::{Tx, q};
use super::rows::micros;
use super::store_err;
use crate::core::model::Handle;
use crate::core::ports::{NewPlan, PlanState, StoreError};

/// Inserts a plan inside a write transaction (already started when `started`); its id.
pub(super) async fn insert_plan(
    tx: &mut Tx,
    plan: NewPlan,
    started: bool,
) -> Result<i64, StoreError> {
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
    .map_err(store_err)
}

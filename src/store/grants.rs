//! Grants: who holds which app, and until when.

use async_trait::async_trait;

use super::db::q;
use super::rows::{GRANT_COLS, grant_from_row, micros};
use super::{SqlStore, store_err};
use crate::core::model::{Grant, GrantId, Handle, Timestamp};
use crate::core::ports::{Grants, StoreError};

#[async_trait]
impl Grants for SqlStore {
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
        self.read_all(q(GRANT_COLS.live_of).bind(p.as_str()), grant_from_row)
            .await
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
        self.read_all(q(GRANT_COLS.ending_by).bind(micros(t)), grant_from_row)
            .await
    }

    async fn unwarned_expiring_grants(&self, until: Timestamp) -> Result<Vec<Grant>, StoreError> {
        self.read_all(q(GRANT_COLS.unwarned).bind(micros(until)), grant_from_row)
            .await
    }
}

//! The HR feed's inbox: event ids recorded as handled, with the audit rows of their work.

use async_trait::async_trait;

use super::db::q;
use super::rows::micros;
use super::{SqlStore, audit, store_err};
use crate::core::model::{AuditEvent, Timestamp};
use crate::core::ports::{HrInbox, StoreError};

#[async_trait]
impl HrInbox for SqlStore {
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

    async fn unmark_hr_event(&self, id: &str) -> Result<(), StoreError> {
        let _turn = self.pool.write_turn().await;
        q("DELETE FROM hr_events WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn hr_event_seen(&self, id: &str) -> Result<bool, StoreError> {
        let n = q("SELECT COUNT(*) FROM hr_events WHERE id = ?")
            .bind(id)
            .fetch_i64(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(n > 0)
    }
}

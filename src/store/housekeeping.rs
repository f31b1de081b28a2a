//! Housekeeping beside the domain tables: replay protection for interaction ids (and the
//! pruning of old ids), and the named leases that let one of several instances run the
//! scheduled work.

use std::time::Duration;

use super::db::q;
use super::rows::micros;
use super::{DbError, SqlStore};
use crate::core::model::Timestamp;

impl SqlStore {
    /// Forgets the interaction ids recorded before `interactions_before` and the HR event ids
    /// recorded before `hr_before` (replays that old are refused by their timestamps anyway);
    /// returns how many of each were removed.
    pub async fn prune_seen(
        &self,
        interactions_before: Timestamp,
        hr_before: Timestamp,
    ) -> Result<(u64, u64), DbError> {
        let _turn = self.pool.write_turn().await;
        let i = q("DELETE FROM interactions_seen WHERE at < ?")
            .bind(micros(interactions_before))
            .execute(&self.pool)
            .await?;
        let h = q("DELETE FROM hr_events WHERE at < ?")
            .bind(micros(hr_before))
            .execute(&self.pool)
            .await?;
        Ok((i, h))
    }

    /// Takes or renews the named lease for `holder` until `now + ttl`; false while another
    /// holder's lease has not ended. Instances sharing a database use the `scheduler` lease so
    /// scheduled work runs in one of them at a time.
    pub async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool, DbError> {
        let now_us = micros(now);
        let until = now_us.saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX));
        let _turn = self.pool.write_turn().await;
        let n = q("INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE leases.holder = excluded.holder OR leases.until < ?")
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now_us)
        .execute(&self.pool)
        .await?;
        Ok(n == 1)
    }
}

#[async_trait::async_trait]
impl crate::core::ports::InteractionLog for SqlStore {
    /// Records an interaction id; true the first time it is seen, false on a replay.
    async fn record_interaction(
        &self,
        id: &str,
        at: Timestamp,
    ) -> Result<bool, crate::core::ports::StoreError> {
        let _turn = self.pool.write_turn().await;
        let r =
            q("INSERT INTO interactions_seen (id, at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING")
                .bind(id)
                .bind(micros(at))
                .execute(&self.pool)
                .await
                .map_err(DbError::from)?;
        Ok(r == 1)
    }
}

//! Queries for the Discord adapter and the operations endpoints: where each keyed message went
//! (so every copy can be edited later) and the counts `/metrics` reports.

use super::db::{DbRow, q};
use super::rows::{from_micros, micros};
use super::{DbError, SqlStore};
use crate::core::ports::{Health, MessageKey, OutboxCounts, SentMessages, StoreError};

pub use crate::core::ports::{OpsCounts, SentMessage};

impl SqlStore {
    /// Every message sent under `key`, oldest first.
    pub async fn discord_messages(&self, key: &str) -> Result<Vec<SentMessage>, DbError> {
        let rows = q(
            "SELECT channel_id, message_id, recipient, sent_at FROM discord_messages \
             WHERE msg_key = ? ORDER BY sent_at, message_id",
        )
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SentMessage {
                    channel_id: r.try_get("channel_id")?,
                    message_id: r.try_get("message_id")?,
                    recipient: r.try_get("recipient")?,
                    sent_at: from_micros(r.try_get("sent_at")?)?,
                })
            })
            .collect()
    }

    /// Closes the connection pool; every later query fails (shutdown, and health-check tests).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait::async_trait]
impl SentMessages for SqlStore {
    async fn remember_sent(&self, key: &MessageKey, msg: &SentMessage) -> Result<(), StoreError> {
        let _turn = self.pool.write_turn().await;
        q(
            "INSERT INTO discord_messages (msg_key, channel_id, message_id, recipient, sent_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel_id, message_id) DO NOTHING",
        )
        .bind(key.to_string())
        .bind(&msg.channel_id)
        .bind(&msg.message_id)
        .bind(&msg.recipient)
        .bind(micros(msg.sent_at))
        .execute(&self.pool)
        .await
        .map_err(DbError::from)?;
        Ok(())
    }
    async fn sent_under(&self, key: &MessageKey) -> Result<Vec<SentMessage>, StoreError> {
        Ok(self.discord_messages(&key.to_string()).await?)
    }
}

#[async_trait::async_trait]
impl Health for SqlStore {
    async fn ping(&self) -> bool {
        q("SELECT 1").execute(&self.pool).await.is_ok()
    }
    async fn ops_counts(&self) -> Result<OpsCounts, StoreError> {
        let read = async {
            let pairs = |rows: Vec<DbRow>| -> Result<Vec<(String, i64)>, DbError> {
                rows.iter()
                    .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
                    .collect()
            };
            let requests = pairs(
                q("SELECT state, COUNT(*) FROM requests GROUP BY state ORDER BY state")
                    .fetch_all(&self.pool)
                    .await?,
            )?;
            let actions = pairs(
                q("SELECT state, COUNT(*) FROM actions GROUP BY state ORDER BY state")
                    .fetch_all(&self.pool)
                    .await?,
            )?;
            let d = q(
                "SELECT COALESCE(SUM(CASE WHEN approved = 1 THEN 1 ELSE 0 END), 0), \
                        COALESCE(SUM(CASE WHEN approved = 1 THEN 0 ELSE 1 END), 0) \
                 FROM steps WHERE decided = 1",
            )
            .fetch_one(&self.pool)
            .await?;
            let queue: i64 =
                q("SELECT COUNT(*) FROM actions WHERE state IN ('pending', 'running')")
                    .fetch_one(&self.pool)
                    .await?
                    .try_get(0)?;
            Ok::<_, DbError>(OpsCounts {
                requests,
                decisions: (d.try_get(0)?, d.try_get(1)?),
                actions,
                queue_depth: queue,
                outbox: OutboxCounts::default(),
                drift: Vec::new(),
                reconciles: Vec::new(),
            })
        };
        let counts = read.await?;
        use crate::core::ports::DriftRecords;
        Ok(OpsCounts {
            outbox: self.outbox_counts_of().await?,
            drift: self.open_finding_counts().await?,
            reconciles: self.reconcile_runs().await?,
            ..counts
        })
    }
}

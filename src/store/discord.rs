//! Queries for the Discord adapter and the operations endpoints: where each keyed message went
//! (so every copy can be edited later) and the counts `/metrics` reports.

use super::db::{DbRow, q};
use super::rows::{from_micros, micros};
use super::{DbError, SqlStore};
use crate::core::model::Timestamp;

/// One Discord message sent under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The channel (a DM channel or a guild channel).
    pub channel_id: String,
    /// The message.
    pub message_id: String,
    /// The handle it was sent to, for a DM.
    pub recipient: Option<String>,
    /// When it was sent.
    pub sent_at: Timestamp,
}

/// Counts for `/metrics`, read from the database so they survive restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpsCounts {
    /// Requests by state name.
    pub requests: Vec<(String, i64)>,
    /// Decided approval steps: (approved, denied).
    pub decisions: (i64, i64),
    /// Connector actions by state name.
    pub actions: Vec<(String, i64)>,
    /// Actions pending or running.
    pub queue_depth: i64,
    /// The chat outbox.
    pub outbox: crate::core::ports::OutboxCounts,
}

impl SqlStore {
    /// Remembers that the message under `key` went to `channel_id`/`message_id`.
    pub async fn remember_discord_message(
        &self,
        key: &str,
        msg: &SentMessage,
    ) -> Result<(), DbError> {
        let _turn = self.pool.write_turn().await;
        q(
            "INSERT INTO discord_messages (msg_key, channel_id, message_id, recipient, sent_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel_id, message_id) DO NOTHING",
        )
        .bind(key)
        .bind(&msg.channel_id)
        .bind(&msg.message_id)
        .bind(&msg.recipient)
        .bind(micros(msg.sent_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

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

    /// The counts `/metrics` reports.
    pub async fn ops_counts(&self) -> Result<OpsCounts, DbError> {
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
        let queue: i64 = q("SELECT COUNT(*) FROM actions WHERE state IN ('pending', 'running')")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(OpsCounts {
            requests,
            decisions: (d.try_get(0)?, d.try_get(1)?),
            actions,
            queue_depth: queue,
            outbox: self
                .outbox_counts_of()
                .await
                .map_err(|e| DbError::Corrupt(e.to_string()))?,
        })
    }
}

impl SqlStore {
    /// Closes the connection pool; every later query fails (shutdown, and health-check tests).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

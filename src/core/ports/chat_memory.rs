//! What a chat adapter keeps about the messages it sent: where each keyed message went, so a
//! decision edits every copy later, also after a restart.

use async_trait::async_trait;

use super::{MessageKey, StoreError};
use crate::core::model::Timestamp;

/// One chat message sent under a key.
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

/// The chat adapter's memory of sent messages.
#[async_trait]
pub trait SentMessages: Send + Sync {
    /// Remembers that the message under `key` went to `msg`'s channel and id.
    async fn remember_sent(&self, key: &MessageKey, msg: &SentMessage) -> Result<(), StoreError>;
    /// Every message sent under `key`, oldest first.
    async fn sent_under(&self, key: &MessageKey) -> Result<Vec<SentMessage>, StoreError>;
}

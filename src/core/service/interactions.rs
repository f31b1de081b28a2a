//! Replay protection for chat interactions, whichever way they arrive (the gateway or the
//! signed HTTP endpoint): an interaction id is acted on once.

use super::{Result, Service};
use crate::core::model::Timestamp;

impl Service {
    /// Records interaction `id`, seen at `at` (the wall clock: the platform signs with it);
    /// true the first time, false for a replay, which must not be acted on.
    pub async fn first_sight(&self, id: &str, at: Timestamp) -> Result<bool> {
        Ok(self.store.record_interaction(id, at).await?)
    }
}

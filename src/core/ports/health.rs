//! What the operations endpoints read: whether the database answers, and the counts
//! `/metrics` reports (from the database, so they survive restarts).

use async_trait::async_trait;

use super::{OutboxCounts, StoreError};

/// Counts for `/metrics`.
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
    pub outbox: OutboxCounts,
    /// Open drift findings: (connector, class, count).
    pub drift: Vec<(String, String, i64)>,
    /// Each connector's last reconcile.
    pub reconciles: Vec<super::ReconcileRun>,
}

/// Health and counts for `/healthz` and `/metrics`.
#[async_trait]
pub trait Health: Send + Sync {
    /// Whether the database answers a trivial query.
    async fn ping(&self) -> bool;
    /// The counts `/metrics` reports.
    async fn ops_counts(&self) -> Result<OpsCounts, StoreError>;
}

//! Durable connector actions: what they do and their lifecycle.

use super::{ActionId, AppName, ConnectorName, GrantId, Handle, RequestId, Timestamp};

/// What a connector action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionOp {
    /// Make sure the account exists and is enabled, then add the entitlement.
    Grant,
    /// Remove the entitlement.
    Revoke,
    /// Disable the person's account in the target.
    Disable,
    /// Re-read what the target still holds for the person (after an offboarding), so the
    /// core can remove and flag what is left.
    Verify,
}

impl ActionOp {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Revoke => "revoke",
            Self::Disable => "disable",
            Self::Verify => "verify",
        }
    }
    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "grant" => Self::Grant,
            "revoke" => Self::Revoke,
            "disable" => Self::Disable,
            "verify" => Self::Verify,
            _ => return None,
        })
    }
}

/// Lifecycle of a connector action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionState {
    /// Queued, waiting for a worker (or for `not_before`).
    Pending,
    /// Claimed by a worker until its lease ends.
    Running,
    /// Handed to a person (manual connector); waits for Done.
    Waiting,
    /// Finished with success.
    Done,
    /// Failed for good.
    Failed,
}

impl ActionState {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "waiting" => Self::Waiting,
            "done" => Self::Done,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A durable connector action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// Row id.
    pub id: ActionId,
    /// Which connector runs it.
    pub connector: ConnectorName,
    /// What it does.
    pub op: ActionOp,
    /// On whose account.
    pub person: Handle,
    /// For which app (None for account-wide ops).
    pub app: Option<AppName>,
    /// The entitlement in the target (None for account-wide ops).
    pub entitlement: Option<String>,
    /// The grant it serves.
    pub grant: Option<GrantId>,
    /// The request it serves.
    pub request: Option<RequestId>,
    /// Lifecycle.
    pub state: ActionState,
    /// Attempts so far.
    pub attempts: u32,
    /// Last error, for people (never a secret).
    pub last_error: Option<String>,
    /// Do not start before this moment (backoff).
    pub not_before: Timestamp,
    /// Enqueued at.
    pub created_at: Timestamp,
}

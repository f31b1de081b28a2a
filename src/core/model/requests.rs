//! Stored requests, their approval steps and decisions, and grants.

use super::{AppName, ApprovalRule, GrantId, Handle, RequestId, Span, Timestamp};

/// Whether a request is for new access or to extend a time-bound grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// New access.
    New,
    /// More time on an existing grant.
    Extend(GrantId),
}

/// A decision taken on one approval step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Approved (true) or denied (false).
    pub approved: bool,
    /// Who decided.
    pub by: Handle,
    /// When.
    pub at: Timestamp,
    /// The reason given (a deny asks for one).
    pub reason: Option<String>,
}

/// One approval step of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Position, from 0.
    pub index: u32,
    /// The rule from the catalog.
    pub rule: ApprovalRule,
    /// Who may decide; resolved when the step starts (empty before).
    pub approvers: Vec<Handle>,
    /// When the step started waiting (None before its turn).
    pub started_at: Option<Timestamp>,
    /// The decision, once taken.
    pub decision: Option<Decision>,
    /// A reminder went out.
    pub reminded: bool,
    /// The step was escalated.
    pub escalated: bool,
}

/// An access request with its steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its number.
    pub id: RequestId,
    /// Who asked.
    pub requester: Handle,
    /// For which app.
    pub app: AppName,
    /// Why.
    pub reason: Option<String>,
    /// For how long (None: no end).
    pub duration: Option<Span>,
    /// New access or an extension.
    pub kind: RequestKind,
    /// Where it stands.
    pub state: crate::core::workflow::RequestState,
    /// Its approval steps.
    pub steps: Vec<Step>,
    /// The grant it produced, once approved.
    pub grant: Option<GrantId>,
    /// Submitted at.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version, bumped by every update.
    pub version: i64,
}

impl Request {
    /// The step now waiting, if the request is waiting for a decision.
    pub fn current_step(&self) -> Option<&Step> {
        self.state.step().and_then(|k| self.steps.get(k as usize))
    }
}

/// Where a grant came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantSource {
    /// Role or department birthright.
    Birthright,
    /// An approved request.
    Request(RequestId),
}

/// Lifecycle of a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantState {
    /// Being provisioned.
    Pending,
    /// Held.
    Active,
    /// Being removed, or its removal failed or could not be verified (the newest revoke
    /// action says which, and waits for IT's Retry). An offboarding removes it again.
    Revoking,
    /// Removed, as a connector saw it (or IT's Done, where nothing can be read). Never set on
    /// an answer that could not be verified.
    Revoked,
    /// Provisioning failed for good.
    Failed,
}

impl GrantState {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Revoking => "revoking",
            Self::Revoked => "revoked",
            Self::Failed => "failed",
        }
    }
    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "active" => Self::Active,
            "revoking" => Self::Revoking,
            "revoked" => Self::Revoked,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
    /// Pending or active: the person holds it or is about to.
    pub fn is_live(&self) -> bool {
        matches!(self, Self::Pending | Self::Active)
    }
}

/// Access a person holds (or is being given) to one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Row id.
    pub id: GrantId,
    /// Holder.
    pub person: Handle,
    /// App.
    pub app: AppName,
    /// Why they hold it.
    pub source: GrantSource,
    /// Lifecycle.
    pub state: GrantState,
    /// When it became active.
    pub granted_at: Option<Timestamp>,
    /// When it ends by itself (None: no end).
    pub expires_at: Option<Timestamp>,
    /// The expiry warning went out.
    pub warned: bool,
}

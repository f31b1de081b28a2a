//! Plans: an offboarding, a role change or an onboarding, made and then confirmed or
//! cancelled, carried out once and reported once.

use super::model::{ActionId, Handle, PlanId, Timestamp};

/// What a plan does when confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanKind {
    /// Take everything away from a leaver.
    Offboard,
    /// Move a person to another role.
    Role,
    /// Set up a joiner (recorded so the welcome summary goes out once everything settled).
    Onboard,
}

impl PlanKind {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Offboard => "offboard",
            Self::Role => "role",
            Self::Onboard => "onboard",
        }
    }
    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "offboard" => Some(Self::Offboard),
            "role" => Some(Self::Role),
            "onboard" => Some(Self::Onboard),
            _ => None,
        }
    }
}

/// Where a plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanState {
    /// Waiting for Confirm or Cancel.
    Open,
    /// Confirmed and carried out.
    Confirmed,
    /// Cancelled.
    Cancelled,
}

impl PlanState {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
        }
    }
    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "confirmed" => Some(Self::Confirmed),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// A plan to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPlan {
    /// What it does.
    pub kind: PlanKind,
    /// Whom it concerns.
    pub subject: Handle,
    /// Who asked for it.
    pub created_by: Handle,
    /// Who may confirm it.
    pub confirmers: Vec<Handle>,
    /// Kind-specific detail (the new role; the offboarding reason).
    pub detail: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it is to be carried out (None: as soon as it is confirmed).
    pub due_at: Option<Timestamp>,
    /// Stored as already confirmed (the HR feed is the authority; onboarding records).
    pub preconfirmed: bool,
}

/// A stored plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Its id.
    pub id: PlanId,
    /// What it does.
    pub kind: PlanKind,
    /// Whom it concerns.
    pub subject: Handle,
    /// Who asked for it.
    pub created_by: Handle,
    /// Who may confirm it.
    pub confirmers: Vec<Handle>,
    /// Kind-specific detail.
    pub detail: String,
    /// Where it stands.
    pub state: PlanState,
    /// Who confirmed or cancelled it.
    pub decided_by: Option<Handle>,
    /// When it was confirmed or cancelled.
    pub decided_at: Option<Timestamp>,
    /// Its report went out.
    pub reported: bool,
    /// Its report went out while something was not verified gone; a later report follows.
    pub report_open: bool,
    /// The first action it enqueued when carried out.
    pub first_action: Option<ActionId>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it is to be carried out (None: as soon as it is confirmed).
    pub due_at: Option<Timestamp>,
    /// It was carried out (or a scheduler claimed it to carry it out).
    pub started: bool,
}

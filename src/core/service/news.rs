//! What the request use cases tell people, as typed values: what happened, to whom, with the
//! names and zones already resolved. [`crate::core::render::requests`] turns them into words.

use super::*;
use crate::core::zone::Zone;

/// A moment as its reader sees it: the time and the zone they read it in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Moment {
    /// When.
    pub(crate) at: Timestamp,
    /// The reader's zone.
    pub(crate) zone: Zone,
}

/// Where an open request stands: whose decision it waits for.
#[derive(Debug, Clone)]
pub(crate) enum Wait {
    /// Step `k` (from 0) of `of` waits for these people (their names).
    Awaiting {
        approvers: Vec<String>,
        k: u32,
        of: usize,
    },
    /// Nobody may decide step `k` (from 0) of `of`.
    NoApprover { k: u32, of: usize },
    /// Any other state.
    Other(RequestState),
}

/// A request's prompt to the approvers of its current step.
#[derive(Debug, Clone)]
pub(crate) struct Prompt {
    pub(crate) id: RequestId,
    /// The requester's name.
    pub(crate) requester: String,
    /// The app's display name.
    pub(crate) app: String,
    /// An extension of access already held.
    pub(crate) extend: bool,
    pub(crate) reason: Option<String>,
    pub(crate) duration: Option<Span>,
    /// The current step, from 0.
    pub(crate) k: u32,
    /// How many steps.
    pub(crate) of: usize,
    /// The current step's rule, when it has one.
    pub(crate) rule: Option<ApprovalRule>,
    /// The display names of the apps the requester holds.
    pub(crate) held: Vec<String>,
}

/// What the requester of a new request is told at once.
#[derive(Debug, Clone)]
pub(crate) enum Requested {
    /// Nothing to approve: being set up (a birthright of the role, or no approval needed).
    Provisioning { birthright: bool },
    /// An extension that needed no approval: the grant's new end, if it has one.
    Extended { until: Option<Moment> },
    /// Waiting for a step.
    Waiting { extension: bool, wait: Wait },
}

/// What the requester is told of a decision on a step.
#[derive(Debug, Clone)]
pub(crate) enum DecisionNews {
    /// Denied, with the decider's reason.
    Denied { reason: Option<String> },
    /// Every step approved: being set up.
    Provisioning,
    /// An extension approved (its new end is written).
    ExtendApproved,
    /// Step `k` (from 0) approved; the request now waits as `wait` says.
    StepApproved { k: u32, wait: Wait },
}

/// What the holder of a connector action that failed for good (or was not verified) is told.
#[derive(Debug, Clone)]
pub(crate) enum FailureNews {
    /// Setting the app up failed.
    SetupFailed,
    /// The removal could not be verified, for this reason.
    RemovalUnverified(String),
    /// The removal failed.
    RemovalFailed,
}

/// How one grant shows in `/access`.
#[derive(Debug, Clone)]
pub(crate) enum GrantShown {
    Active,
    Pending,
    /// Being removed.
    Removing,
    /// Its removal failed (`unverified`: could not be verified): IT can retry.
    RemovalStalled {
        unverified: bool,
    },
    /// Any other state.
    Other(GrantState),
}

/// One grant's line in `/access`.
#[derive(Debug, Clone)]
pub(crate) struct GrantLine {
    pub(crate) app: String,
    pub(crate) state: GrantShown,
    pub(crate) source: GrantSource,
    pub(crate) until: Option<Moment>,
}

/// `/access`: what a person holds and has asked for.
#[derive(Debug, Clone)]
pub(crate) struct AccessView {
    /// Whose (their name), None for the caller's own.
    pub(crate) whose: Option<String>,
    pub(crate) grants: Vec<GrantLine>,
    /// The open requests: id, app's display name, where it stands.
    pub(crate) open: Vec<(RequestId, String, Wait)>,
}

/// One request waiting for the caller's decision in `/approvals`.
#[derive(Debug, Clone)]
pub(crate) struct WaitingLine {
    pub(crate) id: RequestId,
    pub(crate) requester: String,
    pub(crate) app: String,
    pub(crate) reason: Option<String>,
    /// The step, from 0.
    pub(crate) k: u32,
    pub(crate) of: usize,
    pub(crate) since: Option<Moment>,
}

/// One plan waiting for the caller's Confirm in `/approvals`.
#[derive(Debug, Clone)]
pub(crate) struct PlanLine {
    pub(crate) id: PlanId,
    pub(crate) kind: PlanKind,
    pub(crate) subject: String,
    pub(crate) by: String,
    pub(crate) at: Moment,
}

//! What one decision writes: a [`Change`] of new and updated requests, grants and actions
//! with its audit rows and messages, committed at once ([`super::UnitOfWork::commit`]), and
//! the ids it was given ([`Committed`]).

use crate::core::model::*;
use crate::core::outbox::{Outgoing, PlanMessage};
use crate::core::plan::NewPlan;

/// A reference to a request inside a [`Change`]: an existing one, or the one the change creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReqRef {
    /// No request.
    #[default]
    None,
    /// An existing request.
    Id(RequestId),
    /// The request this change inserts.
    New,
}

impl From<RequestId> for ReqRef {
    fn from(id: RequestId) -> Self {
        Self::Id(id)
    }
}

impl From<Option<RequestId>> for ReqRef {
    fn from(id: Option<RequestId>) -> Self {
        id.map_or(Self::None, Self::Id)
    }
}

/// A reference to a grant inside a [`Change`]: an existing one, or the n-th new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantRef {
    /// An existing grant.
    Id(GrantId),
    /// `Change::new_grants[n]`.
    New(usize),
}

/// A request to insert (its id is assigned by the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// Who asks.
    pub requester: Handle,
    /// For which app.
    pub app: AppName,
    /// Why.
    pub reason: Option<String>,
    /// For how long.
    pub duration: Option<Span>,
    /// New or extension.
    pub kind: RequestKind,
    /// Initial state.
    pub state: crate::core::workflow::RequestState,
    /// All steps.
    pub steps: Vec<Step>,
    /// The grant it produced, if already known.
    pub grant: Option<GrantRef>,
    /// Submitted at.
    pub created_at: Timestamp,
}

/// An update of an existing request, applied only if nobody changed it since it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUpdate {
    /// Which request.
    pub id: RequestId,
    /// The version read; the update fails with [`StoreError::Conflict`](super::StoreError::Conflict) if it moved.
    pub expected_version: i64,
    /// New state.
    pub state: crate::core::workflow::RequestState,
    /// All steps, as they now stand (rows are replaced).
    pub steps: Vec<Step>,
    /// The grant it produced.
    pub grant: Option<GrantRef>,
    /// Changed at.
    pub updated_at: Timestamp,
}

impl RequestUpdate {
    /// Moves `r` to `state` at `now`, keeping its steps and grant; conditional on the version
    /// read.
    pub fn to_state(
        r: &Request,
        state: crate::core::workflow::RequestState,
        now: Timestamp,
    ) -> Self {
        Self::with_steps(r, state, r.steps.clone(), now)
    }

    /// Moves `r` to `state` with its steps replaced by `steps`; conditional on the version read.
    pub fn with_steps(
        r: &Request,
        state: crate::core::workflow::RequestState,
        steps: Vec<Step>,
        now: Timestamp,
    ) -> Self {
        Self {
            id: r.id,
            expected_version: r.version,
            state,
            steps,
            grant: r.grant.map(GrantRef::Id),
            updated_at: now,
        }
    }
}

/// A grant to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGrant {
    /// Holder.
    pub person: Handle,
    /// App.
    pub app: AppName,
    /// Birthright, or the request (maybe the new one).
    pub source: NewGrantSource,
    /// Initial state.
    pub state: GrantState,
    /// Active since.
    pub granted_at: Option<Timestamp>,
    /// Ends at.
    pub expires_at: Option<Timestamp>,
}

/// Source of a grant being inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewGrantSource {
    /// Birthright.
    Birthright,
    /// A request (existing or new).
    Request(ReqRef),
}

/// An update of an existing grant, applied only if the grant is still in the state it was
/// read in (`from`); otherwise the whole change fails with [`StoreError::Conflict`](super::StoreError::Conflict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantUpdate {
    /// Which grant.
    pub id: GrantId,
    /// The state it leaves (as read).
    pub from: GrantState,
    /// New state.
    pub state: GrantState,
    /// Active since.
    pub granted_at: Option<Timestamp>,
    /// Ends at.
    pub expires_at: Option<Timestamp>,
    /// Warning sent.
    pub warned: bool,
}

/// A connector action to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAction {
    /// Connector.
    pub connector: ConnectorName,
    /// Operation.
    pub op: ActionOp,
    /// Whose account.
    pub person: Handle,
    /// App, for entitlement ops.
    pub app: Option<AppName>,
    /// Entitlement, for entitlement ops.
    pub entitlement: Option<String>,
    /// The grant it serves.
    pub grant: Option<GrantRef>,
    /// The request it serves.
    pub request: ReqRef,
    /// Enqueued at (and earliest start).
    pub at: Timestamp,
}

/// An update of an action (after a worker ran it, or a click), applied only if the action
/// is still in the state it was read in (`from`); otherwise the whole change fails with
/// [`StoreError::Conflict`](super::StoreError::Conflict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionUpdate {
    /// Which action.
    pub id: ActionId,
    /// The state it leaves (as read).
    pub from: ActionState,
    /// New state.
    pub state: ActionState,
    /// Error text for people, if any.
    pub last_error: Option<String>,
    /// Earliest next attempt (for retries).
    pub not_before: Timestamp,
    /// Start counting attempts from zero again (IT pressed Retry).
    pub reset_attempts: bool,
}

impl ActionUpdate {
    /// The action, read in state `from`, succeeded at `now`.
    pub fn done(id: ActionId, from: ActionState, now: Timestamp) -> Self {
        Self {
            id,
            from,
            state: ActionState::Done,
            last_error: None,
            not_before: now,
            reset_attempts: false,
        }
    }
}

/// A write to a person's step-up enrolment or to its page link; each conditional one fails
/// the whole change with [`StoreError::Conflict`](super::StoreError::Conflict) when the
/// stored state moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MfaWrite {
    /// A new enrolment, or a new secret for one not yet confirmed (never over a confirmed one).
    Enrol {
        /// Whose.
        person: Handle,
        /// The sealed secret.
        sealed: String,
    },
    /// A one-time link to the enrolment page.
    Link {
        /// SHA-256 of the token, hex.
        token_hash: String,
        /// Whose.
        person: Handle,
        /// Valid until.
        expires_at: Timestamp,
    },
    /// The link opened (once: conditional on it being unused and unexpired at `at`).
    LinkUsed {
        /// Which link.
        token_hash: String,
        /// Opened at.
        at: Timestamp,
    },
    /// The enrolment confirmed by a code of time step `step` (conditional on it not being
    /// confirmed yet).
    Confirm {
        /// Whose.
        person: Handle,
        /// The code's time step.
        step: i64,
        /// Confirmed at.
        at: Timestamp,
    },
    /// A code of time step `step` accepted: conditional on no code of that step or a later
    /// one having been accepted (a code counts once); failures reset.
    Used {
        /// Whose.
        person: Handle,
        /// The code's time step.
        step: i64,
    },
    /// A wrong code: conditional on the failure count read (`failures`); the count goes up
    /// by one, or, with `lock_until`, step-up locks and the count starts again.
    Failed {
        /// Whose.
        person: Handle,
        /// The count as read.
        failures: u32,
        /// Lock step-up until then.
        lock_until: Option<Timestamp>,
    },
    /// The enrolment and its links removed (IT's reset).
    Reset {
        /// Whose.
        person: Handle,
    },
}

/// A break-glass grant to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBreakGlass {
    /// Who takes it.
    pub person: Handle,
    /// Which app.
    pub app: AppName,
    /// The emergency.
    pub reason: String,
    /// The request it grants (existing, or the one this change inserts).
    pub request: ReqRef,
    /// Granted at.
    pub granted_at: Timestamp,
    /// Ratification due by.
    pub ratify_by: Timestamp,
}

/// A message about the break-glass record a change creates, whose id (and maybe its
/// request's) the store learns only when it inserts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassMessage {
    /// Who gets it.
    pub to: super::Recipient,
    /// The text around the request's number (it goes between consecutive parts).
    pub text: Vec<String>,
}

impl BreakGlassMessage {
    /// The row to write once the ids are known: with Ratify and Revoke now, under the
    /// record's key.
    pub fn complete(&self, id: BreakGlassId, request: RequestId) -> Outgoing {
        Outgoing {
            kind: crate::core::outbox::OutKind::Send(self.to.clone()),
            text: self.text.join(&request.to_string()),
            buttons: ratify_buttons(id),
            key: Some(super::MessageKey::BreakGlass(id)),
            dedupe: None,
        }
    }
}

/// A break-glass record's Ratify and Revoke now.
pub fn ratify_buttons(id: BreakGlassId) -> Vec<super::Button> {
    use super::{Button, ButtonLabel};
    use crate::core::customid::ClickTarget;
    vec![
        Button {
            item: None,
            label: ButtonLabel::Ratify,
            target: ClickTarget::Ratify(id),
        },
        Button {
            item: None,
            label: ButtonLabel::RevokeNow,
            target: ClickTarget::RevokeNow(id),
        },
    ]
}

/// A break-glass record as it now stands, written only if its version is still the one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassUpdate {
    /// The record as read, with the changes applied (its `version` is the one read).
    pub after: BreakGlass,
}

/// Everything one decision changes, written in one transaction with its audit rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// A request to insert.
    pub new_request: Option<NewRequest>,
    /// Requests to update (each optimistically; any conflict fails the whole change).
    pub request_updates: Vec<RequestUpdate>,
    /// Grants to insert.
    pub new_grants: Vec<NewGrant>,
    /// Grants to update.
    pub grant_updates: Vec<GrantUpdate>,
    /// Actions to enqueue.
    pub new_actions: Vec<NewAction>,
    /// Actions to update.
    pub action_updates: Vec<ActionUpdate>,
    /// Audit rows to append, in order.
    pub audit: Vec<AuditEvent>,
    /// An offboarding plan whose re-reads this change enqueues: the plan is marked, and the
    /// whole change fails with [`StoreError::Conflict`](super::StoreError::Conflict) if it already was (enqueued once).
    pub verify_plan: Option<PlanId>,
    /// Plans whose reports this change audits: each is marked reported in the same
    /// transaction as the audit rows, and the whole change fails with
    /// [`StoreError::Conflict`](super::StoreError::Conflict) if any already was (a report is sent and audited once).
    pub report_plans: Vec<PlanId>,
    /// Plans whose report, sent by this change, stays open (something is not verified gone):
    /// marked in the same transaction, after `report_plans`.
    pub open_reports: Vec<PlanId>,
    /// A plan whose open report this change closes (its final report): the whole change
    /// fails with [`StoreError::Conflict`](super::StoreError::Conflict) if the report was not open (closed once).
    pub close_report: Option<PlanId>,
    /// A started plan whose report covers the actions this change enqueues: the first of
    /// them is recorded as the plan's first action in the same transaction (unless it has
    /// one), so no worker can finish those actions and find the plan without it.
    pub first_action_of: Option<PlanId>,
    /// A person to insert or replace first, in the same transaction (a joiner's record with
    /// their birthrights, a leaver's status with the revocations): the whole change fails
    /// with [`StoreError::Duplicate`](super::StoreError::Duplicate) when their e-mail or Discord id is someone else's.
    pub person: Option<Person>,
    /// A plan to create in the same transaction (its id is [`Committed::plan`]); the actions
    /// this change enqueues count as its first when `first_action_of` is not set.
    pub new_plan: Option<NewPlan>,
    /// Marks the new plan as started (carried out by this very change).
    pub start_new_plan: bool,
    /// An existing plan this change carries out: marked started in the same transaction, and
    /// the whole change fails with [`StoreError::Conflict`](super::StoreError::Conflict) if it already was (run once).
    pub start_plan: Option<PlanId>,
    /// An HR event id recorded as handled in the same transaction as the work it caused: the
    /// whole change fails with [`StoreError::Conflict`](super::StoreError::Conflict) if the id was recorded before.
    pub hr_event: Option<(String, Timestamp)>,
    /// Chat messages and edits this decision causes, written to the durable outbox in the
    /// same transaction (a row whose `dedupe` was written before is skipped).
    pub messages: Vec<Outgoing>,
    /// Messages about the plan this change creates (`new_plan`), completed with its id and
    /// written after `messages`; the change fails with [`StoreError::Backend`](super::StoreError::Backend) when it
    /// creates no plan.
    pub plan_messages: Vec<PlanMessage>,
    /// Requests whose current step's approvers this change prompts (`messages` holds the
    /// prompts): recorded with them, so a crash leaves both or neither.
    pub prompted: Vec<(RequestId, u32)>,
    /// Step-up enrolment writes.
    pub mfa: Vec<MfaWrite>,
    /// A break-glass grant to record.
    pub new_break_glass: Option<NewBreakGlass>,
    /// Break-glass records to update.
    pub break_glass_updates: Vec<BreakGlassUpdate>,
    /// Messages about the new break-glass record (its Ratify and Revoke now), completed with
    /// its id and its request's, and written with it.
    pub break_glass_messages: Vec<BreakGlassMessage>,
    /// Drift findings to insert (their ids are assigned by the store).
    pub new_findings: Vec<Finding>,
    /// Drift findings to update, each only if its version is still the one read.
    pub finding_updates: Vec<Finding>,
    /// A connector's reconcile run, recorded.
    pub reconciled: Option<super::ReconcileRun>,
    /// A review to create (its id is [`Committed::review`]).
    pub new_review: Option<Review>,
    /// Reviews to update, each only if its version is still the one read.
    pub review_updates: Vec<Review>,
    /// A review's snapshot: its new items and the live items of other reviews it shares.
    pub review_snapshot: Option<ReviewSnapshot>,
    /// Review items to update, each only if its version is still the one read.
    pub item_updates: Vec<ReviewItem>,
    /// Inbound SCIM resource writes (each conditional on the version read), in the
    /// transaction of the lifecycle change they cause.
    pub scim: Vec<crate::core::scim::ScimWrite>,
}

/// The items a review's launch found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewSnapshot {
    /// Which review.
    pub review: ReviewId,
    /// New items, numbered by the store in this order; each one's `page` holds the index
    /// (in this list) of its page's first item.
    pub items: Vec<ReviewItem>,
    /// Live items of overlapping reviews this one references too.
    pub shared: Vec<ReviewItemId>,
}

impl Change {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The ids a committed [`Change`] was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// The inserted request.
    pub request: Option<RequestId>,
    /// The inserted grants, in order.
    pub grants: Vec<GrantId>,
    /// The enqueued actions, in order.
    pub actions: Vec<ActionId>,
    /// The created plan.
    pub plan: Option<PlanId>,
    /// The created review.
    pub review: Option<ReviewId>,
}

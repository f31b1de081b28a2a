//! The ports the core talks through: storage, connectors, chat and the clock. Adapters
//! implement them; the core never names an adapter.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::model::*;
pub use super::outbox::{DeliveryPolicy, OutKind, OutboxCounts, Outgoing, PlanMessage, Queued};

mod chat_memory;
mod health;
pub use chat_memory::{SentMessage, SentMessages};
pub use health::{Health, OpsCounts};

// ----------------------------------------------------------------------------- clock

/// Where time comes from, so expiries and reminders can be tested by moving a clock.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// A clock that starts at a given moment and moves only when told (`:advance`).
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Mutex::new(start))
    }
    /// Moves the clock forward.
    pub fn advance(&self, by: Span) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t = by.after(*t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// ----------------------------------------------------------------------------- store

/// A storage failure, as the core sees it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else changed the row first (optimistic concurrency); reload and retry.
    #[error("the record changed under us")]
    Conflict,
    /// A uniqueness rule was broken (e.g. a second live grant of one app to one person).
    #[error("duplicate: {0}")]
    Duplicate(String),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Backend(String),
    /// A stored value could not be read back.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

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
    /// The version read; the update fails with [`StoreError::Conflict`] if it moved.
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
/// read in (`from`); otherwise the whole change fails with [`StoreError::Conflict`].
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
/// [`StoreError::Conflict`].
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
    /// whole change fails with [`StoreError::Conflict`] if it already was (enqueued once).
    pub verify_plan: Option<i64>,
    /// Plans whose reports this change audits: each is marked reported in the same
    /// transaction as the audit rows, and the whole change fails with
    /// [`StoreError::Conflict`] if any already was (a report is sent and audited once).
    pub report_plans: Vec<i64>,
    /// Plans whose report, sent by this change, stays open (something is not verified gone):
    /// marked in the same transaction, after `report_plans`.
    pub open_reports: Vec<i64>,
    /// A plan whose open report this change closes (its final report): the whole change
    /// fails with [`StoreError::Conflict`] if the report was not open (closed once).
    pub close_report: Option<i64>,
    /// A started plan whose report covers the actions this change enqueues: the first of
    /// them is recorded as the plan's first action in the same transaction (unless it has
    /// one), so no worker can finish those actions and find the plan without it.
    pub first_action_of: Option<i64>,
    /// A person to insert or replace first, in the same transaction (a joiner's record with
    /// their birthrights, a leaver's status with the revocations): the whole change fails
    /// with [`StoreError::Duplicate`] when their e-mail or Discord id is someone else's.
    pub person: Option<Person>,
    /// A plan to create in the same transaction (its id is [`Committed::plan`]); the actions
    /// this change enqueues count as its first when `first_action_of` is not set.
    pub new_plan: Option<NewPlan>,
    /// Marks the new plan as started (carried out by this very change).
    pub start_new_plan: bool,
    /// An existing plan this change carries out: marked started in the same transaction, and
    /// the whole change fails with [`StoreError::Conflict`] if it already was (run once).
    pub start_plan: Option<i64>,
    /// An HR event id recorded as handled in the same transaction as the work it caused: the
    /// whole change fails with [`StoreError::Conflict`] if the id was recorded before.
    pub hr_event: Option<(String, Timestamp)>,
    /// Chat messages and edits this decision causes, written to the durable outbox in the
    /// same transaction (a row whose `dedupe` was written before is skipped).
    pub messages: Vec<Outgoing>,
    /// Messages about the plan this change creates (`new_plan`), completed with its id and
    /// written after `messages`; the change fails with [`StoreError::Backend`] when it
    /// creates no plan.
    pub plan_messages: Vec<PlanMessage>,
    /// Requests whose current step's approvers this change prompts (`messages` holds the
    /// prompts): recorded with them, so a crash leaves both or neither.
    pub prompted: Vec<(RequestId, u32)>,
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
    pub plan: Option<i64>,
}

/// Persistence of people, requests, grants, actions and the audit chain.
#[async_trait]
pub trait Store: Send + Sync {
    /// Inserts people who are not stored yet (the config seeds the directory; then the
    /// database wins).
    async fn seed_people(&self, people: &[Person]) -> Result<(), StoreError>;
    /// Inserts or replaces a person, with audit rows, in one transaction.
    async fn upsert_person(&self, p: &Person, audit: Vec<AuditEvent>) -> Result<(), StoreError>;
    /// A person by handle.
    async fn person(&self, h: &Handle) -> Result<Option<Person>, StoreError>;
    /// The people with these handles (unknown ones are left out), in no particular order.
    async fn people_by_handle(&self, handles: &[Handle]) -> Result<Vec<Person>, StoreError>;
    /// A person by Discord user id.
    async fn person_by_discord_id(&self, id: &str) -> Result<Option<Person>, StoreError>;
    /// A person by e-mail address.
    async fn person_by_email(&self, email: &Email) -> Result<Option<Person>, StoreError>;
    /// Everyone, by handle.
    async fn people(&self) -> Result<Vec<Person>, StoreError>;

    /// A request with its steps.
    async fn request(&self, id: RequestId) -> Result<Option<Request>, StoreError>;
    /// The open (submitted, awaiting a step or without approver) request of a person for an app.
    async fn open_request(&self, p: &Handle, app: &AppName) -> Result<Option<Request>, StoreError>;
    /// All open requests, oldest first.
    async fn open_requests(&self) -> Result<Vec<Request>, StoreError>;
    /// A person's requests, newest first.
    async fn requests_by(&self, p: &Handle) -> Result<Vec<Request>, StoreError>;

    /// A grant.
    async fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError>;
    /// The grants with these ids (unknown ones are left out), in no particular order.
    async fn grants_by_id(&self, ids: &[GrantId]) -> Result<Vec<Grant>, StoreError>;
    /// A person's grants that are pending, active or being revoked, by app name.
    async fn grants_of(&self, p: &Handle) -> Result<Vec<Grant>, StoreError>;
    /// [`Store::grants_of`] for several people at once, by person.
    async fn grants_of_people(&self, people: &[Handle]) -> Result<Vec<Grant>, StoreError>;
    /// Active grants with an end at or before `t`, for the expiry scheduler.
    async fn grants_ending_by(&self, t: Timestamp) -> Result<Vec<Grant>, StoreError>;

    /// An action.
    async fn action(&self, id: ActionId) -> Result<Option<Action>, StoreError>;
    /// Actions serving a grant, oldest first.
    async fn actions_for_grant(&self, g: GrantId) -> Result<Vec<Action>, StoreError>;
    /// Claims the oldest pending action due at `now` (or a running one whose lease ended):
    /// marks it running with a lease until `now + lease`, counts the attempt, returns it.
    async fn claim_action(
        &self,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<Action>, StoreError>;
    /// Like [`Store::claim_action`], but never claims an action of a connector in `skip`
    /// (those already at their concurrency cap). A store that cannot filter claims as
    /// `claim_action` does, and the engine then waits for the connector's turn.
    async fn claim_action_except(
        &self,
        now: Timestamp,
        lease: Duration,
        skip: &[ConnectorName],
    ) -> Result<Option<Action>, StoreError> {
        let _ = skip;
        self.claim_action(now, lease).await
    }
    /// Puts a claimed action back in the queue (pending, due at `now`, lease cleared) if it
    /// is still running; false if it had already finished.
    async fn release_action(
        &self,
        id: ActionId,
        now: Timestamp,
        why: &str,
    ) -> Result<bool, StoreError>;
    /// Extends the leases of these actions, those still running, to `until` (a worker whose
    /// batch outlasts a third of its lease keeps it); returns how many were extended.
    async fn extend_leases(&self, ids: &[ActionId], until: Timestamp) -> Result<u64, StoreError>;
    /// Claims up to `limit` due actions at once (oldest first), as
    /// [`Store::claim_action_except`] claims one.
    async fn claim_actions(
        &self,
        now: Timestamp,
        lease: Duration,
        skip: &[ConnectorName],
        limit: usize,
    ) -> Result<Vec<Action>, StoreError>;
    /// Every action on a person's accounts, oldest first.
    async fn actions_of(&self, p: &Handle) -> Result<Vec<Action>, StoreError>;
    /// Every action on these people's accounts, oldest first.
    async fn actions_of_people(&self, people: &[Handle]) -> Result<Vec<Action>, StoreError>;
    /// Number of actions pending or running.
    async fn queue_depth(&self) -> Result<i64, StoreError>;
    /// Records a chat interaction's id, seen at `at` (the wall clock, which the platform's
    /// signatures use): true the first time, false for a replay.
    async fn record_interaction(&self, id: &str, at: Timestamp) -> Result<bool, StoreError>;

    /// Applies a change in one transaction: all of it with its audit rows, or none.
    async fn commit(&self, change: Change) -> Result<Committed, StoreError>;

    /// Claims up to `limit` due outbox rows, oldest first (a pending row whose time came, or
    /// a claimed one whose lease ended; never an edit while a send under its key is still
    /// undelivered): each is held for `lease` and its attempt counted.
    async fn claim_messages(
        &self,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Queued>, StoreError>;
    /// Marks a claimed row delivered (`note`: how, when not as addressed), with its audit
    /// rows, in one transaction; false when it no longer was claimed (nothing written).
    async fn message_sent(
        &self,
        id: i64,
        note: Option<&str>,
        audit: Vec<AuditEvent>,
    ) -> Result<bool, StoreError>;
    /// Puts a claimed row back, due again after `after`, with the failure's text.
    async fn message_retry(&self, id: i64, after: Duration, error: &str) -> Result<(), StoreError>;
    /// Gives a claimed row up, with its audit rows, in one transaction.
    async fn message_failed(
        &self,
        id: i64,
        error: &str,
        audit: Vec<AuditEvent>,
    ) -> Result<(), StoreError>;
    /// How the outbox stands.
    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError>;

    /// Stores a plan that waits for Confirm or Cancel, with its audit rows; returns its id.
    async fn create_plan(&self, plan: NewPlan, audit: Vec<AuditEvent>) -> Result<i64, StoreError>;
    /// A plan.
    async fn plan(&self, id: i64) -> Result<Option<Plan>, StoreError>;
    /// Plans about a person, newest first.
    async fn plans_of(&self, subject: &Handle) -> Result<Vec<Plan>, StoreError>;
    /// Of these people, each one's newest onboarding plan if its report is not sent yet and
    /// none of the person's grant actions from the plan's first action on is pending or
    /// running (one read, asked after every batch of grants; a person whose onboarding is
    /// still under way is left out), by plan id.
    async fn onboarding_plans_settled(&self, people: &[Handle]) -> Result<Vec<Plan>, StoreError>;
    /// Marks a confirmed plan's report as sent; false if it already was (send it once).
    async fn mark_plan_reported(&self, id: i64) -> Result<bool, StoreError>;
    /// Confirmed plans whose `due_at` has come and that were not started yet, oldest first.
    async fn due_plans(&self, now: Timestamp) -> Result<Vec<Plan>, StoreError>;
    /// Confirmed, started offboarding plans whose report has not gone out yet (the tick
    /// finishes those a crash cut short).
    async fn unreported_offboardings(&self) -> Result<Vec<Plan>, StoreError>;
    /// Marks a plan as started; false if it already was (carry it out once).
    async fn start_plan(&self, id: i64) -> Result<bool, StoreError>;
    /// Active time-bound grants whose expiry warning has not gone out yet, by expiry.
    async fn unwarned_expiring_grants(&self) -> Result<Vec<Grant>, StoreError>;
    /// Records an HR event id with its audit rows; false (and nothing written) if the id was
    /// seen before.
    async fn mark_hr_event(
        &self,
        id: &str,
        at: Timestamp,
        audit: Vec<AuditEvent>,
    ) -> Result<bool, StoreError>;
    /// Forgets an HR event id (its processing failed, so a retry must run it).
    async fn unmark_hr_event(&self, id: &str) -> Result<(), StoreError>;
    /// Records that the approvers of step `step` of a request were prompted.
    async fn mark_prompted(&self, id: RequestId, step: u32) -> Result<(), StoreError>;
    /// Requests awaiting (or without an approver for) a step they have not prompted for,
    /// last changed at or before `before`, oldest first.
    async fn unprompted_requests(&self, before: Timestamp) -> Result<Vec<RequestId>, StoreError>;
    /// True when an HR event id was recorded as handled.
    async fn hr_event_seen(&self, id: &str) -> Result<bool, StoreError>;
    /// Closes an open plan (confirmed or cancelled) with its audit rows and the messages the
    /// decision causes (written to the outbox); false when it was no longer open (someone
    /// else decided first), and then nothing is written.
    async fn close_plan(
        &self,
        id: i64,
        state: PlanState,
        by: &Handle,
        at: Timestamp,
        audit: Vec<AuditEvent>,
        messages: Vec<Outgoing>,
    ) -> Result<bool, StoreError>;
}

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
    pub id: i64,
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

// ----------------------------------------------------------------------------- connectors

/// The person an action is about, as a connector needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Handle (LDAP uid, directory key).
    pub handle: Handle,
    /// Full name.
    pub name: String,
    /// Email (SCIM userName).
    pub email: Email,
}

/// One operation of a bulk call ([`Connector::apply_many`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkOp {
    /// What to do.
    pub op: ActionOp,
    /// To whom.
    pub who: Subject,
    /// The entitlement, for grants and revokes.
    pub entitlement: Option<String>,
}

/// An account as a target system reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The target's id for it.
    pub id: String,
    /// Enabled or disabled.
    pub active: bool,
}

/// What an effect did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The change was made.
    Applied,
    /// It was already so; nothing was sent.
    AlreadyInState,
    /// A person must do it; the text says what.
    Manual(String),
    /// What the target holds for the person (the answer to [`ActionOp::Verify`]).
    Inventory {
        /// Entitlements the person is still a member of.
        entitlements: Vec<String>,
        /// Whether an enabled account is still there.
        active_account: bool,
    },
}

/// Why a connector call failed. Texts never carry secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// Slow down; try again after this long if known.
    #[error("rate limited")]
    RateLimited {
        /// The target's advice.
        retry_after: Option<Duration>,
    },
    /// May work if tried again.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// The target refused because of its state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The thing is not there.
    #[error("not found: {0}")]
    NotFound(String),
    /// Our credentials were refused.
    #[error("unauthorised: {0}")]
    Unauthorized(String),
    /// Will not work if tried again.
    #[error("{0}")]
    Permanent(String),
    /// The target's answer cannot be trusted to show the truth (a filter it ignores, two
    /// reads that disagree, a listing it cannot give): nothing may be reported as removed
    /// or absent on its strength. The text says why.
    #[error("could not verify: {0}")]
    Unverifiable(String),
}

impl ConnectorError {
    /// How an [`ConnectorError::Unverifiable`] reads once stored as text (an action's last
    /// error): the reports tell "could not verify" from "failed" by it.
    pub const UNVERIFIED_PREFIX: &'static str = "could not verify: ";

    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Transient(_))
    }

    /// Whether a stored error text is that of an [`ConnectorError::Unverifiable`].
    pub fn is_unverified_text(text: &str) -> bool {
        text.starts_with(Self::UNVERIFIED_PREFIX)
    }
}

/// A target system: accounts and entitlements. Every method looks before it acts, so an
/// action may be repeated safely.
#[async_trait]
pub trait Connector: Send + Sync {
    /// The account of this person, if any.
    async fn find_account(&self, who: &Subject) -> Result<Option<Account>, ConnectorError>;
    /// Creates the account (enabled).
    async fn create_account(&self, who: &Subject) -> Result<Effect, ConnectorError>;
    /// Disables the account.
    async fn disable_account(&self, who: &Subject) -> Result<Effect, ConnectorError>;
    /// Enables the account.
    async fn enable_account(&self, who: &Subject) -> Result<Effect, ConnectorError>;
    /// Deletes the account.
    async fn delete_account(&self, who: &Subject) -> Result<Effect, ConnectorError>;
    /// Adds the entitlement (group membership).
    async fn grant(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError>;
    /// Removes the entitlement.
    async fn revoke(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError>;
    /// The entitlements the person holds in the target.
    async fn list_grants(&self, who: &Subject) -> Result<Vec<String>, ConnectorError>;
    /// Checks that the target answers and accepts our credentials.
    async fn test_connection(&self) -> Result<(), ConnectorError>;

    /// Runs one queued operation, looking before acting at every step.
    async fn apply(
        &self,
        op: ActionOp,
        who: &Subject,
        entitlement: Option<&str>,
    ) -> Result<Effect, ConnectorError> {
        apply_steps(self, op, who, entitlement).await
    }

    /// Whether [`Connector::apply_many`] does better than one [`Connector::apply`] per
    /// operation (the engine then hands it a batch's operations in one call).
    fn bulk(&self) -> bool {
        false
    }

    /// Runs several operations, each person's in the given order, looking before acting as
    /// [`Connector::apply`] does; one result per operation, in order.
    async fn apply_many(&self, ops: &[BulkOp]) -> Vec<Result<Effect, ConnectorError>> {
        let mut out = Vec::with_capacity(ops.len());
        for o in ops {
            out.push(self.apply(o.op, &o.who, o.entitlement.as_deref()).await);
        }
        out
    }
}

/// The steps of [`Connector::apply`], each looking before it acts; a connector that overrides
/// `apply` for one operation runs the others through this. Every read's error, an
/// [`ConnectorError::Unverifiable`] above all, is handed on as it is: a read that cannot be
/// trusted never becomes "no account" or "no membership" here, and an
/// [`Effect::Inventory`] is only built from two reads that both answered.
pub async fn apply_steps<C: Connector + ?Sized>(
    c: &C,
    op: ActionOp,
    who: &Subject,
    entitlement: Option<&str>,
) -> Result<Effect, ConnectorError> {
    match op {
        ActionOp::Grant => {
            let mut made = false;
            match c.find_account(who).await? {
                None => made |= c.create_account(who).await? == Effect::Applied,
                Some(a) if !a.active => made |= c.enable_account(who).await? == Effect::Applied,
                Some(_) => {}
            }
            let e = match entitlement {
                Some(e) => c.grant(who, e).await?,
                None => Effect::AlreadyInState,
            };
            Ok(if made { Effect::Applied } else { e })
        }
        ActionOp::Revoke => match entitlement {
            Some(e) => c.revoke(who, e).await,
            None => Ok(Effect::AlreadyInState),
        },
        ActionOp::Disable => match c.find_account(who).await? {
            None => Ok(Effect::AlreadyInState),
            Some(a) if !a.active => Ok(Effect::AlreadyInState),
            Some(_) => c.disable_account(who).await,
        },
        ActionOp::Verify => {
            let active_account = c.find_account(who).await?.is_some_and(|a| a.active);
            let entitlements = c.list_grants(who).await?;
            Ok(Effect::Inventory {
                entitlements,
                active_account,
            })
        }
    }
}

// ----------------------------------------------------------------------------- chat

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// A direct message to a person.
    Person(Handle),
    /// A channel, by the adapter's name or id for it.
    Channel(String),
}

/// Fixed button labels (the console clicks them by label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ButtonLabel {
    /// Approve a step.
    Approve,
    /// Deny a step (opens a form asking why).
    Deny,
    /// Confirm a plan.
    Confirm,
    /// Cancel a plan.
    Cancel,
    /// A manual task is done.
    Done,
    /// Extend a time-bound grant.
    Extend,
    /// Retry a failed action.
    Retry,
}

impl ButtonLabel {
    /// The label people see.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Approve => "Approve",
            Self::Deny => "Deny",
            Self::Confirm => "Confirm",
            Self::Cancel => "Cancel",
            Self::Done => "Done",
            Self::Extend => "Extend",
            Self::Retry => "Retry",
        }
    }
    /// Every label.
    pub const ALL: [ButtonLabel; 7] = [
        Self::Approve,
        Self::Deny,
        Self::Confirm,
        Self::Cancel,
        Self::Done,
        Self::Extend,
        Self::Retry,
    ];
    /// Reads a label, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|b| b.as_str().eq_ignore_ascii_case(s))
    }
}

/// A button on a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Button {
    /// Its label.
    pub label: ButtonLabel,
    /// What a click sends back (≤ 100 chars, versioned; see `core::customid`).
    pub custom_id: String,
}

/// Groups the copies of one logical message (e.g. every copy of one approval prompt), so
/// that they can be edited together later.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageKey(pub String);

/// A message the bot sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Recipient.
    pub to: Recipient,
    /// Full text.
    pub text: String,
    /// Buttons.
    pub buttons: Vec<Button>,
    /// Key for later edits.
    pub key: Option<MessageKey>,
}

/// Why a message could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// The person does not accept direct messages from the bot (the platform's words, e.g.
    /// "Discord 50007").
    #[error("direct messages closed ({0})")]
    DmClosed(String),
    /// The person has no chat identity.
    #[error("no chat account known")]
    UnknownRecipient,
    /// The platform said "slow down"; try again after this long if it said.
    #[error("rate limited")]
    RateLimited {
        /// The platform's advice.
        retry_after: Option<Duration>,
    },
    /// Anything else.
    #[error("chat failure: {0}")]
    Other(String),
}

/// The chat platform: send and edit messages.
#[async_trait]
pub trait Chat: Send + Sync {
    /// Sends a message.
    async fn send(&self, msg: Message) -> Result<(), ChatError>;
    /// Edits every message sent under `key` to show `text` and `buttons`.
    async fn edit(&self, key: &MessageKey, text: &str, buttons: &[Button])
    -> Result<(), ChatError>;
    /// Sends a message at most once under `nonce` (the outbox row's id): a platform that can
    /// deduplicate creates (Discord's `nonce` + `enforce_nonce`) makes a retry after an
    /// ambiguous failure (a timeout after the message was made) return the first message
    /// instead of posting twice. By default, a plain [`Chat::send`].
    async fn send_once(&self, msg: Message, nonce: &str) -> Result<(), ChatError> {
        let _ = nonce;
        self.send(msg).await
    }
    /// Where a message goes when its recipient cannot be reached for long (the approvals
    /// channel), if the platform has such a place; the IT admins' DMs come after it.
    fn fallback_channel(&self) -> Option<Recipient> {
        None
    }
}

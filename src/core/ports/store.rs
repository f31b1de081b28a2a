//! The storage port, one trait per capability (people, requests, grants, the action queue,
//! the outbox, plans, the HR inbox, the unit of work), and [`Store`], all of them at once:
//! what the service holds (`Arc<dyn Store>`). A use case needs only the capabilities it
//! names; an adapter implements each trait, and [`Store`] comes with them.

use std::time::Duration;

use async_trait::async_trait;

use super::{Change, Committed, MessageKey};
use crate::core::model::*;
use crate::core::outbox::{OutboxCounts, Outgoing, Queued};
use crate::core::plan::{NewPlan, Plan, PlanState};

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

/// Step-up enrolments, their page links and break-glass grants (written through
/// [`UnitOfWork::commit`]).
#[async_trait]
pub trait StepUpRecords: Send + Sync {
    /// A person's enrolment.
    async fn mfa(&self, p: &Handle) -> Result<Option<MfaRecord>, StoreError>;
    /// An enrolment page link by its token's hash.
    async fn mfa_link(&self, token_hash: &str) -> Result<Option<MfaLink>, StoreError>;
    /// A break-glass record.
    async fn break_glass(&self, id: BreakGlassId) -> Result<Option<BreakGlass>, StoreError>;
    /// The break-glass record of a request, if it was one.
    async fn break_glass_of_request(&self, r: RequestId) -> Result<Option<BreakGlass>, StoreError>;
    /// A person's break-glass records not cleared yet, oldest first.
    async fn open_break_glass(&self, p: &Handle) -> Result<Vec<BreakGlass>, StoreError>;
    /// Records neither ratified nor cleared whose ratification was due at or before `now`
    /// and whose lateness IT has not been told of, oldest first.
    async fn overdue_break_glass(&self, now: Timestamp) -> Result<Vec<BreakGlass>, StoreError>;
}

/// How a connector's last reconcile went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileRun {
    /// Which connector.
    pub connector: ConnectorName,
    /// When it last ran.
    pub last_run: Timestamp,
    /// When it last read everything it needed.
    pub last_ok: Option<Timestamp>,
    /// Why the last run failed, when it did.
    pub last_error: Option<String>,
}

/// Drift findings, reconcile runs and the named leases that keep one reconcile of a
/// connector at a time across instances (findings are written through [`UnitOfWork::commit`]).
#[async_trait]
pub trait DriftRecords: Send + Sync {
    /// A connector's findings that are not resolved (open, ignored, service accounts).
    async fn live_findings(&self, connector: &ConnectorName) -> Result<Vec<Finding>, StoreError>;
    /// A finding.
    async fn finding(&self, id: FindingId) -> Result<Option<Finding>, StoreError>;
    /// Open findings by connector and class.
    async fn open_finding_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError>;
    /// Every connector's last reconcile.
    async fn reconcile_runs(&self) -> Result<Vec<ReconcileRun>, StoreError>;
    /// Takes or renews the named lease for `holder` until `now + ttl`; false while another
    /// holder's has not ended.
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    /// Gives the named lease up, if `holder` has it.
    async fn drop_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;
}

/// Access reviews and their items (written through [`UnitOfWork::commit`]).
#[async_trait]
pub trait ReviewRecords: Send + Sync {
    /// A review.
    async fn review(&self, id: ReviewId) -> Result<Option<Review>, StoreError>;
    /// The reviews in any of `states`, oldest first.
    async fn reviews_in(&self, states: &[ReviewState]) -> Result<Vec<Review>, StoreError>;
    /// Every item a review references (its own and those it shares), by id.
    async fn review_items(&self, id: ReviewId) -> Result<Vec<ReviewItem>, StoreError>;
    /// An item.
    async fn review_item(&self, id: ReviewItemId) -> Result<Option<ReviewItem>, StoreError>;
    /// The items shown on one page (the messages keyed by its first item), by id.
    async fn page_items(&self, page: ReviewItemId) -> Result<Vec<ReviewItem>, StoreError>;
    /// Every item not settled yet (open, revoking, unverified), by id.
    async fn live_review_items(&self) -> Result<Vec<ReviewItem>, StoreError>;
    /// The items the timers must look at without reading every live one: removals under way
    /// or not verified, and open items whose grant is no longer what was snapshotted (gone,
    /// not active, or with another end).
    async fn review_items_to_settle(&self) -> Result<Vec<ReviewItem>, StoreError>;
    /// Review `id`'s own open items (not escalated yet, with `unescalated`).
    async fn open_review_items(
        &self,
        id: ReviewId,
        unescalated: bool,
    ) -> Result<Vec<ReviewItem>, StoreError>;
    /// Open items whose reviewer of record is no longer active.
    async fn review_items_of_leavers(&self) -> Result<Vec<ReviewItem>, StoreError>;
    /// Open items of reviews launched at or before `launched`, not reminded since `since`.
    async fn review_items_to_remind(
        &self,
        launched: Timestamp,
        since: Timestamp,
    ) -> Result<Vec<ReviewItem>, StoreError>;
    /// How many items review `id` references that are not settled (open, revoking,
    /// unverified).
    async fn unsettled_review_items(&self, id: ReviewId) -> Result<i64, StoreError>;
    /// The reviews that reference an item.
    async fn item_reviews(&self, item: ReviewItemId) -> Result<Vec<ReviewId>, StoreError>;
    /// When the scheduled campaign `name` last launched a review.
    async fn last_campaign_launch(&self, name: &str) -> Result<Option<Timestamp>, StoreError>;
}

/// Inbound SCIM's resources (written through [`UnitOfWork::commit`], with the lifecycle
/// change each write causes).
#[async_trait]
pub trait ScimRecords: Send + Sync {
    /// A resource by id.
    async fn scim_resource(
        &self,
        kind: crate::core::scim::ScimKind,
        id: &str,
    ) -> Result<Option<crate::core::scim::ScimResource>, StoreError>;
    /// The resources of a kind with these ids (those that exist, in no particular order).
    async fn scim_resources(
        &self,
        kind: crate::core::scim::ScimKind,
        ids: &[String],
    ) -> Result<Vec<crate::core::scim::ScimResource>, StoreError>;
    /// A user by userName (or a group by displayName), case-insensitively.
    async fn scim_by_name(
        &self,
        kind: crate::core::scim::ScimKind,
        name: &str,
    ) -> Result<Vec<crate::core::scim::ScimResource>, StoreError>;
    /// Resources by externalId.
    async fn scim_by_external_id(
        &self,
        kind: crate::core::scim::ScimKind,
        external_id: &str,
    ) -> Result<Vec<crate::core::scim::ScimResource>, StoreError>;
    /// The users whose userName is `name` (case-insensitively) or who map to `handle`: one
    /// read for a new user's two uniqueness checks.
    async fn scim_users_holding(
        &self,
        name: Option<&str>,
        handle: Option<&Handle>,
    ) -> Result<Vec<crate::core::scim::ScimResource>, StoreError>;
    /// The user mapped to a person, if any.
    async fn scim_by_handle(
        &self,
        h: &Handle,
    ) -> Result<Option<crate::core::scim::ScimResource>, StoreError>;
    /// Every resource of a kind, oldest first.
    async fn scim_all(
        &self,
        kind: crate::core::scim::ScimKind,
    ) -> Result<Vec<crate::core::scim::ScimResource>, StoreError>;
    /// How many resources of a kind there are, and `limit` of them from `offset` (oldest
    /// first).
    async fn scim_page(
        &self,
        kind: crate::core::scim::ScimKind,
        offset: usize,
        limit: usize,
    ) -> Result<(usize, Vec<crate::core::scim::ScimResource>), StoreError>;
    /// The groups a user is a member of.
    async fn scim_groups_of(
        &self,
        user_id: &str,
    ) -> Result<Vec<crate::core::scim::resource::GroupRef>, StoreError>;
}

/// People: the directory the workflows are about.
#[async_trait]
pub trait People: Send + Sync {
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
    /// The person with a handle, and the one with an e-mail address (None when not given): a
    /// joiner's checks need both, and a store reads them with one statement (this default
    /// reads them one after the other).
    async fn person_and_email_holder(
        &self,
        h: &Handle,
        email: Option<&Email>,
    ) -> Result<(Option<Person>, Option<Person>), StoreError> {
        let by_email = match email {
            Some(e) => self.person_by_email(e).await?,
            None => None,
        };
        Ok((self.person(h).await?, by_email))
    }
    /// Everyone, by handle.
    async fn people(&self) -> Result<Vec<Person>, StoreError>;
}

/// Access requests and the prompts of their approval steps.
#[async_trait]
pub trait Requests: Send + Sync {
    /// A request with its steps.
    async fn request(&self, id: RequestId) -> Result<Option<Request>, StoreError>;
    /// The open (submitted, awaiting a step or without approver) request of a person for an app.
    async fn open_request(&self, p: &Handle, app: &AppName) -> Result<Option<Request>, StoreError>;
    /// All open requests, oldest first.
    async fn open_requests(&self) -> Result<Vec<Request>, StoreError>;
    /// The requests with these ids that exist, in id order, with their steps (one read for
    /// many: an expiry tick revokes hundreds of grants).
    async fn requests_by_ids(&self, ids: &[RequestId]) -> Result<Vec<Request>, StoreError>;
    /// A person's requests, newest first.
    async fn requests_by(&self, p: &Handle) -> Result<Vec<Request>, StoreError>;
    /// Records that the approvers of step `step` of a request were prompted.
    async fn mark_prompted(&self, id: RequestId, step: u32) -> Result<(), StoreError>;
    /// Requests awaiting (or without an approver for) a step they have not prompted for,
    /// last changed at or before `before`, oldest first.
    async fn unprompted_requests(&self, before: Timestamp) -> Result<Vec<RequestId>, StoreError>;
}

/// Grants: who holds which app, and until when.
#[async_trait]
pub trait Grants: Send + Sync {
    /// A grant.
    async fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError>;
    /// The grants with these ids (unknown ones are left out), in no particular order.
    async fn grants_by_id(&self, ids: &[GrantId]) -> Result<Vec<Grant>, StoreError>;
    /// A person's grants that are pending, active or being revoked, by app name.
    async fn grants_of(&self, p: &Handle) -> Result<Vec<Grant>, StoreError>;
    /// [`Grants::grants_of`] for several people at once, by person.
    async fn grants_of_people(&self, people: &[Handle]) -> Result<Vec<Grant>, StoreError>;
    /// Active grants with an end at or before `t`, for the expiry scheduler.
    async fn grants_ending_by(&self, t: Timestamp) -> Result<Vec<Grant>, StoreError>;
    /// Active grants ending at or before `until` whose expiry warning has not gone out yet,
    /// by expiry.
    async fn unwarned_expiring_grants(&self, until: Timestamp) -> Result<Vec<Grant>, StoreError>;
}

/// The queue of connector actions: reads, and claims with leases for the workers.
#[async_trait]
pub trait ActionQueue: Send + Sync {
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
    /// Like [`ActionQueue::claim_action`], but never claims an action of a connector in
    /// `skip` (those already at their concurrency cap). A store that cannot filter claims as
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
    /// [`ActionQueue::claim_action_except`] claims one.
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
}

/// The durable chat outbox: rows claimed by the sender, marked sent, retried or failed.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Claims up to `limit` due outbox rows, oldest first (a pending row whose time came, or
    /// a claimed one whose lease ended; never an edit or a copy while an earlier send under
    /// its key is still undelivered): each is held for `lease` and its attempt counted.
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
    /// Marks claimed rows delivered as addressed, in one statement (a delivery round's
    /// plain successes); how many were still claimed (a row another sender took over after
    /// its lease ended is left as it is).
    async fn messages_sent(&self, ids: &[i64]) -> Result<u64, StoreError>;
    /// Puts claimed rows back in one write, each due again after its wait, with the failure's
    /// text (a row another sender took over after its lease ended is left as it is).
    async fn messages_retry(&self, rows: &[(i64, Duration, String)]) -> Result<(), StoreError>;
    /// Gives a claimed row up, with its audit rows, in one transaction.
    async fn message_failed(
        &self,
        id: i64,
        error: &str,
        audit: Vec<AuditEvent>,
    ) -> Result<(), StoreError>;
    /// How the outbox stands.
    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError>;
    /// Whether every send under `key` written before row `before` reached its recipient as
    /// addressed (marked sent with no note: not through a fallback, not given up), for a
    /// [`OutKind::Copy`](crate::core::outbox::OutKind::Copy) of them.
    async fn sends_reached(&self, key: &MessageKey, before: i64) -> Result<bool, StoreError>;
}

/// Plans (offboardings, role changes, onboardings): made, confirmed or cancelled, carried
/// out once, reported once.
#[async_trait]
pub trait Plans: Send + Sync {
    /// Stores a plan that waits for Confirm or Cancel, with its audit rows; returns its id.
    async fn create_plan(
        &self,
        plan: NewPlan,
        audit: Vec<AuditEvent>,
    ) -> Result<PlanId, StoreError>;
    /// A plan.
    async fn plan(&self, id: PlanId) -> Result<Option<Plan>, StoreError>;
    /// Plans about a person, newest first.
    async fn plans_of(&self, subject: &Handle) -> Result<Vec<Plan>, StoreError>;
    /// Every plan still waiting for Confirm or Cancel, oldest first.
    async fn open_plans(&self) -> Result<Vec<Plan>, StoreError>;
    /// Of these people, each one's newest onboarding plan if its report is not sent yet and
    /// none of the person's grant actions from the plan's first action on is pending or
    /// running (one read, asked after every batch of grants; a person whose onboarding is
    /// still under way is left out), by plan id.
    async fn onboarding_plans_settled(&self, people: &[Handle]) -> Result<Vec<Plan>, StoreError>;
    /// Marks a confirmed plan's report as sent; false if it already was (send it once).
    async fn mark_plan_reported(&self, id: PlanId) -> Result<bool, StoreError>;
    /// Confirmed plans whose `due_at` has come and that were not started yet, oldest first.
    async fn due_plans(&self, now: Timestamp) -> Result<Vec<Plan>, StoreError>;
    /// Confirmed, started offboarding plans whose report has not gone out yet (the tick
    /// finishes those a crash cut short).
    async fn unreported_offboardings(&self) -> Result<Vec<Plan>, StoreError>;
    /// Marks a plan as started; false if it already was (carry it out once).
    async fn start_plan(&self, id: PlanId) -> Result<bool, StoreError>;
    /// Closes an open plan (confirmed or cancelled) with its audit rows and the messages the
    /// decision causes (written to the outbox); false when it was no longer open (someone
    /// else decided first), and then nothing is written.
    async fn close_plan(
        &self,
        id: PlanId,
        state: PlanState,
        by: &Handle,
        at: Timestamp,
        audit: Vec<AuditEvent>,
        messages: Vec<Outgoing>,
    ) -> Result<bool, StoreError>;
}

/// The HR feed's inbox: event ids recorded as handled, so each event is acted on once.
#[async_trait]
pub trait HrInbox: Send + Sync {
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
    /// True when an HR event id was recorded as handled.
    async fn hr_event_seen(&self, id: &str) -> Result<bool, StoreError>;
}

/// Chat interactions seen, so each is acted on once whichever way it arrives.
#[async_trait]
pub trait InteractionLog: Send + Sync {
    /// Records a chat interaction's id, seen at `at` (the wall clock, which the platform's
    /// signatures use): true the first time, false for a replay.
    async fn record_interaction(&self, id: &str, at: Timestamp) -> Result<bool, StoreError>;
}

/// The unit of work: everything one decision changes, written at once.
#[async_trait]
pub trait UnitOfWork: Send + Sync {
    /// Applies a change in one transaction: all of it with its audit rows, or none.
    async fn commit(&self, change: Change) -> Result<Committed, StoreError>;
    /// Applies changes in order in one transaction (one commit for many small writes): all
    /// of them with their audit rows, or none; what each created, in order. It may fail where
    /// [`UnitOfWork::commit`] would not (another process appended to the audit trail
    /// meanwhile: a conflict); its caller then commits each change on its own.
    async fn commit_group(&self, changes: Vec<Change>) -> Result<Vec<Committed>, StoreError>;
}

/// Persistence of people, requests, grants, actions, the outbox, plans, HR events and the
/// audit chain: every capability at once. Implemented for every type that implements them
/// all.
pub trait Store:
    People
    + Requests
    + Grants
    + ActionQueue
    + Outbox
    + Plans
    + HrInbox
    + InteractionLog
    + StepUpRecords
    + DriftRecords
    + ReviewRecords
    + ScimRecords
    + UnitOfWork
{
}

impl<T> Store for T where
    T: People
        + Requests
        + Grants
        + ActionQueue
        + Outbox
        + Plans
        + HrInbox
        + InteractionLog
        + StepUpRecords
        + DriftRecords
        + ReviewRecords
        + ScimRecords
        + UnitOfWork
        + ?Sized
{
}

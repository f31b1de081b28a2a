//! A crash harness: a [`Store`] (each of its capability traits) that forwards everything to a real store and "kills the
//! process" (panics the task that runs the work) right after its Nth committed write, so a
//! test can stop an intake at each of its commit boundaries, then restart on the same
//! database (a new service over the plain store) and let the sender retry.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use quartermaster::core::model::*;
use quartermaster::core::ports::*;
use quartermaster::core::scim::resource::GroupRef;
use quartermaster::core::scim::{ScimKind, ScimResource};

/// The panic message of a simulated crash.
pub const CRASH: &str = "simulated crash after a commit";

/// Forwards to `inner`; panics after the `after`-th successful write (0: never).
pub struct CrashStore {
    pub inner: Arc<dyn Store>,
    left: AtomicI64,
}

impl CrashStore {
    pub fn new(inner: Arc<dyn Store>, after: i64) -> Self {
        Self {
            inner,
            left: AtomicI64::new(if after > 0 { after } else { i64::MAX }),
        }
    }

    fn boundary(&self, what: &str, ok: bool) {
        if ok && self.left.fetch_sub(1, Ordering::SeqCst) == 1 {
            panic!("{CRASH} ({what})");
        }
    }
}

#[async_trait]
impl People for CrashStore {
    async fn seed_people(&self, people: &[Person]) -> Result<(), StoreError> {
        let r = self.inner.seed_people(people).await;
        self.boundary("seed_people", r.is_ok());
        r
    }

    async fn upsert_person(&self, p: &Person, audit: Vec<AuditEvent>) -> Result<(), StoreError> {
        let r = self.inner.upsert_person(p, audit).await;
        self.boundary("upsert_person", r.is_ok());
        r
    }

    async fn person(&self, h: &Handle) -> Result<Option<Person>, StoreError> {
        self.inner.person(h).await
    }

    async fn people_by_handle(&self, handles: &[Handle]) -> Result<Vec<Person>, StoreError> {
        self.inner.people_by_handle(handles).await
    }

    async fn person_by_discord_id(&self, id: &str) -> Result<Option<Person>, StoreError> {
        self.inner.person_by_discord_id(id).await
    }

    async fn person_by_email(&self, email: &Email) -> Result<Option<Person>, StoreError> {
        self.inner.person_by_email(email).await
    }

    async fn people(&self) -> Result<Vec<Person>, StoreError> {
        self.inner.people().await
    }
}

#[async_trait]
impl Requests for CrashStore {
    async fn request(&self, id: RequestId) -> Result<Option<Request>, StoreError> {
        self.inner.request(id).await
    }

    async fn open_request(&self, p: &Handle, app: &AppName) -> Result<Option<Request>, StoreError> {
        self.inner.open_request(p, app).await
    }

    async fn open_requests(&self) -> Result<Vec<Request>, StoreError> {
        self.inner.open_requests().await
    }

    async fn requests_by_ids(&self, ids: &[RequestId]) -> Result<Vec<Request>, StoreError> {
        self.inner.requests_by_ids(ids).await
    }

    async fn requests_by(&self, p: &Handle) -> Result<Vec<Request>, StoreError> {
        self.inner.requests_by(p).await
    }

    async fn mark_prompted(&self, id: RequestId, step: u32) -> Result<(), StoreError> {
        let r = self.inner.mark_prompted(id, step).await;
        self.boundary("mark_prompted", r.is_ok());
        r
    }

    async fn unprompted_requests(&self, before: Timestamp) -> Result<Vec<RequestId>, StoreError> {
        self.inner.unprompted_requests(before).await
    }
}

#[async_trait]
impl Grants for CrashStore {
    async fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        self.inner.grant(id).await
    }

    async fn grants_by_id(&self, ids: &[GrantId]) -> Result<Vec<Grant>, StoreError> {
        self.inner.grants_by_id(ids).await
    }

    async fn grants_of(&self, p: &Handle) -> Result<Vec<Grant>, StoreError> {
        self.inner.grants_of(p).await
    }

    async fn grants_of_people(&self, people: &[Handle]) -> Result<Vec<Grant>, StoreError> {
        self.inner.grants_of_people(people).await
    }

    async fn grants_ending_by(&self, t: Timestamp) -> Result<Vec<Grant>, StoreError> {
        self.inner.grants_ending_by(t).await
    }

    async fn unwarned_expiring_grants(&self, until: Timestamp) -> Result<Vec<Grant>, StoreError> {
        self.inner.unwarned_expiring_grants(until).await
    }
}

#[async_trait]
impl ActionQueue for CrashStore {
    async fn action(&self, id: ActionId) -> Result<Option<Action>, StoreError> {
        self.inner.action(id).await
    }

    async fn actions_for_grant(&self, g: GrantId) -> Result<Vec<Action>, StoreError> {
        self.inner.actions_for_grant(g).await
    }

    async fn claim_action(
        &self,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<Action>, StoreError> {
        let r = self.inner.claim_action(now, lease).await;
        self.boundary("claim_action", r.is_ok());
        r
    }

    async fn claim_action_except(
        &self,
        now: Timestamp,
        lease: Duration,
        skip: &[ConnectorName],
    ) -> Result<Option<Action>, StoreError> {
        let r = self.inner.claim_action_except(now, lease, skip).await;
        self.boundary("claim_action_except", r.is_ok());
        r
    }

    async fn release_action(
        &self,
        id: ActionId,
        now: Timestamp,
        why: &str,
    ) -> Result<bool, StoreError> {
        let r = self.inner.release_action(id, now, why).await;
        self.boundary("release_action", r.is_ok());
        r
    }

    async fn extend_leases(&self, ids: &[ActionId], until: Timestamp) -> Result<u64, StoreError> {
        let r = self.inner.extend_leases(ids, until).await;
        self.boundary("extend_leases", r.is_ok());
        r
    }

    async fn claim_actions(
        &self,
        now: Timestamp,
        lease: Duration,
        skip: &[ConnectorName],
        limit: usize,
    ) -> Result<Vec<Action>, StoreError> {
        let r = self.inner.claim_actions(now, lease, skip, limit).await;
        self.boundary("claim_actions", r.is_ok());
        r
    }

    async fn actions_of(&self, p: &Handle) -> Result<Vec<Action>, StoreError> {
        self.inner.actions_of(p).await
    }

    async fn actions_of_people(&self, people: &[Handle]) -> Result<Vec<Action>, StoreError> {
        self.inner.actions_of_people(people).await
    }

    async fn queue_depth(&self) -> Result<i64, StoreError> {
        self.inner.queue_depth().await
    }
}

#[async_trait]
impl DriftRecords for CrashStore {
    async fn live_findings(&self, connector: &ConnectorName) -> Result<Vec<Finding>, StoreError> {
        self.inner.live_findings(connector).await
    }

    async fn finding(&self, id: FindingId) -> Result<Option<Finding>, StoreError> {
        self.inner.finding(id).await
    }

    async fn open_finding_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.inner.open_finding_counts().await
    }

    async fn reconcile_runs(&self) -> Result<Vec<ReconcileRun>, StoreError> {
        self.inner.reconcile_runs().await
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.inner.take_lease(name, holder, now, ttl).await
    }

    async fn drop_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.inner.drop_lease(name, holder).await
    }
}

#[async_trait]
impl ReviewRecords for CrashStore {
    async fn review(&self, id: ReviewId) -> Result<Option<Review>, StoreError> {
        self.inner.review(id).await
    }

    async fn reviews_in(&self, states: &[ReviewState]) -> Result<Vec<Review>, StoreError> {
        self.inner.reviews_in(states).await
    }

    async fn review_items(&self, id: ReviewId) -> Result<Vec<ReviewItem>, StoreError> {
        self.inner.review_items(id).await
    }

    async fn review_item(&self, id: ReviewItemId) -> Result<Option<ReviewItem>, StoreError> {
        self.inner.review_item(id).await
    }

    async fn page_items(&self, page: ReviewItemId) -> Result<Vec<ReviewItem>, StoreError> {
        self.inner.page_items(page).await
    }

    async fn live_review_items(&self) -> Result<Vec<ReviewItem>, StoreError> {
        self.inner.live_review_items().await
    }

    async fn review_items_to_settle(&self) -> Result<Vec<ReviewItem>, StoreError> {
        self.inner.review_items_to_settle().await
    }

    async fn open_review_items(
        &self,
        id: ReviewId,
        unescalated: bool,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        self.inner.open_review_items(id, unescalated).await
    }

    async fn review_items_of_leavers(&self) -> Result<Vec<ReviewItem>, StoreError> {
        self.inner.review_items_of_leavers().await
    }

    async fn review_items_to_remind(
        &self,
        launched: Timestamp,
        since: Timestamp,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        self.inner.review_items_to_remind(launched, since).await
    }

    async fn unsettled_review_items(&self, id: ReviewId) -> Result<i64, StoreError> {
        self.inner.unsettled_review_items(id).await
    }

    async fn item_reviews(&self, item: ReviewItemId) -> Result<Vec<ReviewId>, StoreError> {
        self.inner.item_reviews(item).await
    }

    async fn last_campaign_launch(&self, name: &str) -> Result<Option<Timestamp>, StoreError> {
        self.inner.last_campaign_launch(name).await
    }
}

#[async_trait]
impl ScimRecords for CrashStore {
    async fn scim_resource(
        &self,
        kind: ScimKind,
        id: &str,
    ) -> Result<Option<ScimResource>, StoreError> {
        self.inner.scim_resource(kind, id).await
    }

    async fn scim_resources(
        &self,
        kind: ScimKind,
        ids: &[String],
    ) -> Result<Vec<ScimResource>, StoreError> {
        self.inner.scim_resources(kind, ids).await
    }

    async fn scim_users_holding(
        &self,
        name: Option<&str>,
        handle: Option<&Handle>,
    ) -> Result<Vec<ScimResource>, StoreError> {
        self.inner.scim_users_holding(name, handle).await
    }

    async fn scim_by_name(
        &self,
        kind: ScimKind,
        name: &str,
    ) -> Result<Vec<ScimResource>, StoreError> {
        self.inner.scim_by_name(kind, name).await
    }

    async fn scim_by_external_id(
        &self,
        kind: ScimKind,
        external_id: &str,
    ) -> Result<Vec<ScimResource>, StoreError> {
        self.inner.scim_by_external_id(kind, external_id).await
    }

    async fn scim_by_handle(&self, h: &Handle) -> Result<Option<ScimResource>, StoreError> {
        self.inner.scim_by_handle(h).await
    }

    async fn scim_all(&self, kind: ScimKind) -> Result<Vec<ScimResource>, StoreError> {
        self.inner.scim_all(kind).await
    }

    async fn scim_page(
        &self,
        kind: ScimKind,
        offset: usize,
        limit: usize,
    ) -> Result<(usize, Vec<ScimResource>), StoreError> {
        self.inner.scim_page(kind, offset, limit).await
    }

    async fn scim_groups_of(&self, user_id: &str) -> Result<Vec<GroupRef>, StoreError> {
        self.inner.scim_groups_of(user_id).await
    }
}

#[async_trait]
impl StepUpRecords for CrashStore {
    async fn mfa(&self, p: &Handle) -> Result<Option<MfaRecord>, StoreError> {
        self.inner.mfa(p).await
    }

    async fn mfa_link(&self, token_hash: &str) -> Result<Option<MfaLink>, StoreError> {
        self.inner.mfa_link(token_hash).await
    }

    async fn break_glass(&self, id: BreakGlassId) -> Result<Option<BreakGlass>, StoreError> {
        self.inner.break_glass(id).await
    }

    async fn break_glass_of_request(&self, r: RequestId) -> Result<Option<BreakGlass>, StoreError> {
        self.inner.break_glass_of_request(r).await
    }

    async fn open_break_glass(&self, p: &Handle) -> Result<Vec<BreakGlass>, StoreError> {
        self.inner.open_break_glass(p).await
    }

    async fn overdue_break_glass(&self, now: Timestamp) -> Result<Vec<BreakGlass>, StoreError> {
        self.inner.overdue_break_glass(now).await
    }
}

#[async_trait]
impl InteractionLog for CrashStore {
    async fn record_interaction(&self, id: &str, at: Timestamp) -> Result<bool, StoreError> {
        self.inner.record_interaction(id, at).await
    }
}

#[async_trait]
impl Outbox for CrashStore {
    async fn claim_messages(
        &self,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Queued>, StoreError> {
        self.inner.claim_messages(lease, limit).await
    }

    async fn message_sent(
        &self,
        id: i64,
        note: Option<&str>,
        audit: Vec<AuditEvent>,
    ) -> Result<bool, StoreError> {
        self.inner.message_sent(id, note, audit).await
    }

    async fn messages_sent(&self, ids: &[i64]) -> Result<u64, StoreError> {
        self.inner.messages_sent(ids).await
    }

    async fn messages_retry(&self, rows: &[(i64, Duration, String)]) -> Result<(), StoreError> {
        self.inner.messages_retry(rows).await
    }

    async fn message_failed(
        &self,
        id: i64,
        error: &str,
        audit: Vec<AuditEvent>,
    ) -> Result<(), StoreError> {
        self.inner.message_failed(id, error, audit).await
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.inner.outbox_counts().await
    }

    async fn sends_reached(&self, key: &MessageKey, before: i64) -> Result<bool, StoreError> {
        self.inner.sends_reached(key, before).await
    }
}

#[async_trait]
impl Plans for CrashStore {
    async fn create_plan(
        &self,
        plan: NewPlan,
        audit: Vec<AuditEvent>,
    ) -> Result<PlanId, StoreError> {
        let r = self.inner.create_plan(plan, audit).await;
        self.boundary("create_plan", r.is_ok());
        r
    }

    async fn plan(&self, id: PlanId) -> Result<Option<Plan>, StoreError> {
        self.inner.plan(id).await
    }

    async fn plans_of(&self, subject: &Handle) -> Result<Vec<Plan>, StoreError> {
        self.inner.plans_of(subject).await
    }

    async fn open_plans(&self) -> Result<Vec<Plan>, StoreError> {
        self.inner.open_plans().await
    }

    async fn onboarding_plans_settled(&self, people: &[Handle]) -> Result<Vec<Plan>, StoreError> {
        self.inner.onboarding_plans_settled(people).await
    }

    async fn mark_plan_reported(&self, id: PlanId) -> Result<bool, StoreError> {
        let r = self.inner.mark_plan_reported(id).await;
        self.boundary("mark_plan_reported", r.is_ok());
        r
    }

    async fn due_plans(&self, now: Timestamp) -> Result<Vec<Plan>, StoreError> {
        self.inner.due_plans(now).await
    }

    async fn unreported_offboardings(&self) -> Result<Vec<Plan>, StoreError> {
        self.inner.unreported_offboardings().await
    }

    async fn start_plan(&self, id: PlanId) -> Result<bool, StoreError> {
        let r = self.inner.start_plan(id).await;
        self.boundary("start_plan", r.is_ok());
        r
    }

    async fn close_plan(
        &self,
        id: PlanId,
        state: PlanState,
        by: &Handle,
        at: Timestamp,
        audit: Vec<AuditEvent>,
        messages: Vec<Outgoing>,
    ) -> Result<bool, StoreError> {
        let r = self
            .inner
            .close_plan(id, state, by, at, audit, messages)
            .await;
        self.boundary("close_plan", r.is_ok());
        r
    }
}

#[async_trait]
impl HrInbox for CrashStore {
    async fn mark_hr_event(
        &self,
        id: &str,
        at: Timestamp,
        audit: Vec<AuditEvent>,
    ) -> Result<bool, StoreError> {
        let r = self.inner.mark_hr_event(id, at, audit).await;
        self.boundary("mark_hr_event", r.is_ok());
        r
    }

    async fn unmark_hr_event(&self, id: &str) -> Result<(), StoreError> {
        let r = self.inner.unmark_hr_event(id).await;
        self.boundary("unmark_hr_event", r.is_ok());
        r
    }

    async fn hr_event_seen(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.hr_event_seen(id).await
    }
}

#[async_trait]
impl UnitOfWork for CrashStore {
    async fn commit(&self, change: Change) -> Result<Committed, StoreError> {
        let r = self.inner.commit(change).await;
        self.boundary("commit", r.is_ok());
        r
    }

    async fn commit_group(&self, changes: Vec<Change>) -> Result<Vec<Committed>, StoreError> {
        let r = self.inner.commit_group(changes).await;
        self.boundary("commit", r.is_ok());
        r
    }
}

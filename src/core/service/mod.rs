//! Use cases over the ports: the one dispatcher every chat adapter (Discord, console) calls.
//! Commands and clicks arrive here with the caller already identified; everything is
//! authorised against the database, decided by the workflow, written with its audit rows in one
//! transaction, and only then announced.
//!
//! One use case per file: `dispatch` (the entry points), `request`, `decide` and `steps` (access
//! requests and their approvals), `revoke`, `onboard`, `role`, `offboard` and `plans` (joiners,
//! movers, leavers; what they share is in `lifecycle`), `hr` (the HR feed and imports),
//! `outcomes`, `failures` and `tasks` (connector actions: what the engine reports, IT's Done and
//! Retry), `verify`, `onboarding_report` and `offboarding_report`, `timers` (`tick`), `views`
//! (`/access`, `/approvals`); `commit`, `outbox` and `zones` are how the service writes, sends and
//! tells time. What the request use cases tell people is typed in `news` and why they refuse
//! in `refusal`; [`crate::core::render::requests`] words both. This file holds the [`Service`]
//! itself and the helpers they all use.

mod break_glass;
mod break_glass_grant;
mod clicks;
mod commit;
mod decide;
mod dispatch;
mod drift;
mod drift_decide;
mod failures;
mod form;
mod hr;
mod interactions;
mod lifecycle;
mod mfa;
pub(crate) mod news;
mod offboard;
mod offboarding_report;
mod onboard;
mod onboarding_report;
mod outbox;
mod outcomes;
mod plans;
mod ratify;
pub(crate) mod refusal;
mod request;
mod review_decide;
mod review_report;
mod review_snapshot;
mod review_start;
mod review_timers;
mod revoke;
mod role;
mod scim;
mod scim_batch;
mod scim_lifecycle;
mod step_up;
mod steps;
mod tasks;
mod timers;
mod verify;
mod views;
mod zones;

pub use drift::{DriftReport, OnDrift};
pub use form::{Form, FormField};
pub use hr::{HrError, HrEvent, HrKind, HrOutcome, RecordSource};
pub use lifecycle::{PersonOutcome, PersonRefused, RecordRefusal};
pub use mfa::EnrolPage;
pub use outbox::DELIVERY_BATCH;
pub use review_report::{ReportItem, ReviewReport};
pub use scim::{ScimChange, ScimFailure, ScimQuery};
pub use step_up::StepUpSettings;

use std::collections::HashMap;
use std::sync::Arc;

use tracing::{Instrument, info_span, warn};

use super::audit::{AuditAction, AuditOutcome};
use super::command::{CommandError, Intent, Registry};
use super::customid::{ClickTarget, ReviewAction};
use super::model::*;
use super::policy::{self, PeopleByHandle};
use super::ports::*;
use super::suggest;
use super::validate;
use super::workflow::{Event, RequestState};
use commit::Attempt;
use news::*;
use refusal::*;

/// An internal failure. People see a plain sentence; logs see the cause.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record broke an invariant.
    #[error("inconsistent data: {0}")]
    Inconsistent(String),
    /// A read-decide-commit kept losing version races (others kept changing what it read).
    #[error("{0} kept conflicting; gave up after {n} tries", n = commit::CONFLICT_TRIES)]
    KeptConflicting(String),
    /// The workflow refused a transition the service asked for (a bug or a stale read).
    #[error(transparent)]
    Transition(#[from] super::workflow::TransitionError),
}

type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// A person calling from chat (a command or a click), as the chat adapter identified them:
/// the input of every command and click, and what authorisation is checked against. Three
/// words for "who", each for one job: a `Caller` comes in from chat; a use case that chat, the
/// scheduler or the HR feed can set going takes an `Initiator`; the audit trail stores an
/// [`Actor`] (a person's handle, `system` or `hr`).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The person.
    pub person: Person,
    /// Their chat id (Discord user id), when the call came from chat.
    pub chat_id: Option<String>,
}

/// The answer to the person who typed a command or clicked (ephemeral on Discord).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Text.
    pub text: String,
    /// Buttons.
    pub buttons: Vec<Button>,
    /// Key for later edits (a plan's Confirm/Cancel reply loses its buttons once decided).
    pub key: Option<MessageKey>,
    /// A form to fill instead of a message (Discord: a modal, response type 9); it is
    /// submitted through [`Service::click`] with its `custom_id`.
    pub form: Option<Form>,
}

impl Reply {
    /// A text-only reply.
    pub fn text(t: impl Into<String>) -> Self {
        Self {
            text: t.into(),
            buttons: Vec::new(),
            key: None,
            form: None,
        }
    }

    /// A reply that is a form to fill (no text).
    pub fn form(form: Form) -> Self {
        Self {
            form: Some(form),
            ..Self::text("")
        }
    }
}

/// The answer to a click: a reply, or a form to fill first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClickReply {
    /// Done; tell the clicker this.
    Reply(Reply),
    /// Fill this form first (Deny asks for a reason); submit it with its `custom_id`.
    Form(Form),
}

/// How many times a retryable connector failure is tried before it counts as failed.
pub const MAX_ATTEMPTS: u32 = 6;

/// The application: the catalog plus the ports.
pub struct Service {
    org: Arc<Org>,
    store: Arc<dyn Store>,
    chat: Arc<dyn Chat>,
    clock: Arc<dyn Clock>,
    commands: Registry,
    work: tokio::sync::Notify,
    /// Wakes the outbox worker after a commit that wrote messages.
    outbox: tokio::sync::Notify,
    /// Deliver messages in the committing task (no worker runs: the console, tests).
    inline_delivery: std::sync::atomic::AtomicBool,
    delivery: std::sync::Mutex<DeliveryPolicy>,
    /// The step-up key and the enrolment page's address.
    step_up: StepUpSettings,
    /// Reconciles `/drift` asked for (None: every connector), run by the engine.
    reconcile_requests: std::sync::Mutex<Vec<Option<ConnectorName>>>,
    /// Wakes whoever runs them.
    reconcile_wake: tokio::sync::Notify,
    /// When the review timers last read every live item, and how many there were.
    review_scan: std::sync::Mutex<Option<(std::time::Instant, usize)>>,
    /// Inbound SCIM's mapping and modes (`[scim_server]`).
    scim: crate::core::scim::ScimSettings,
    /// Inbound SCIM's group commit of plain writes.
    scim_batch: scim_batch::ScimBatcher,
}

/// `t` in UTC, for the audit trail's details (a message's reader sees their own zone:
/// [`Service::when_to`] and its siblings).
fn when(t: Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The key of the prompts of step `k` of request `r` (edited once it is decided).
fn step_key(r: RequestId, k: u32) -> MessageKey {
    MessageKey::Prompt {
        request: r,
        step: k,
    }
}

/// The key of the messages about action `a` (its task or Retry, edited once done).
fn action_key(a: ActionId) -> MessageKey {
    MessageKey::Action(a)
}

/// The Approve and Deny buttons of step `k` of request `r`.
fn decision_buttons(r: RequestId, k: u32) -> Vec<Button> {
    vec![
        Button {
            item: None,
            label: ButtonLabel::Approve,
            target: ClickTarget::Approve(r, k),
        },
        Button {
            item: None,
            label: ButtonLabel::Deny,
            target: ClickTarget::Deny(r, k),
        },
    ]
}

use crate::core::outbox::plan_key;

impl Service {
    /// Builds the service over its ports.
    pub fn new(
        org: Arc<Org>,
        store: Arc<dyn Store>,
        chat: Arc<dyn Chat>,
        clock: Arc<dyn Clock>,
        commands: Registry,
    ) -> Self {
        Self {
            org,
            store,
            chat,
            clock,
            commands,
            work: tokio::sync::Notify::new(),
            outbox: tokio::sync::Notify::new(),
            inline_delivery: std::sync::atomic::AtomicBool::new(true),
            delivery: std::sync::Mutex::new(DeliveryPolicy::default()),
            step_up: StepUpSettings::default(),
            reconcile_requests: std::sync::Mutex::new(Vec::new()),
            reconcile_wake: tokio::sync::Notify::new(),
            review_scan: std::sync::Mutex::new(None),
            scim: crate::core::scim::ScimSettings::default(),
            scim_batch: scim_batch::ScimBatcher::default(),
        }
    }

    /// The reconciles asked for since the last call (None: every connector).
    pub fn take_reconcile_requests(&self) -> Vec<Option<ConnectorName>> {
        self.reconcile_requests
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    /// Resolves when a reconcile is asked for.
    pub fn reconcile_asked(&self) -> tokio::sync::futures::Notified<'_> {
        self.reconcile_wake.notified()
    }

    /// With step-up: the key that seals TOTP secrets (`[mfa] key_env`) and the address the
    /// enrolment page is served at (`[http] public_url`).
    #[must_use]
    pub fn with_step_up(mut self, settings: StepUpSettings) -> Self {
        self.step_up = settings;
        self
    }

    /// When something of duration `d` started at `from` ends: never more than the global
    /// ceiling (`[workflow] max_duration`) later, and never an overflow (a request stored
    /// before the ceiling existed may hold any duration).
    fn ends(&self, from: Timestamp, d: Span) -> Timestamp {
        d.min(self.org.workflow.max_duration).after(from)
    }

    /// The organisation.
    pub fn org(&self) -> &Org {
        &self.org
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The slash-command registry.
    pub fn commands(&self) -> &Registry {
        &self.commands
    }

    /// An audit row for `action`, now; the builder's setters fill in the rest.
    fn audit(&self, action: AuditAction) -> AuditEvent {
        AuditEvent::new(self.clock.now(), action)
    }

    /// `c` as the audit trail names them.
    fn by(c: &Caller) -> Actor {
        Actor::Person(c.person.handle.clone())
    }

    /// Records the refusal of `what` in the audit trail (with its sentence) and returns the
    /// sentence to show.
    async fn refused(
        &self,
        c: &Caller,
        what: &str,
        subject: Option<&Handle>,
        app: Option<&AppName>,
        request: ReqRef,
        why: impl Into<Refusal>,
    ) -> Result<Reply> {
        let why = why.into().text();
        let ev = self
            .audit(AuditAction::CommandRefused)
            .by(Self::by(c))
            .chat(c.chat_id.as_deref())
            .subject(subject)
            .app(app)
            .request(request)
            .outcome(AuditOutcome::Refused)
            .detail(format!("{what}: {why}"));
        self.store
            .commit(Change {
                audit: vec![ev],
                ..Change::default()
            })
            .await?;
        Ok(Reply::text(why))
    }

    /// Everyone, by handle.
    async fn directory(&self) -> Result<PeopleByHandle> {
        Ok(self
            .store
            .people()
            .await?
            .into_iter()
            .map(|p| (p.handle.clone(), p))
            .collect())
    }

    /// The given people, in one read (unknown handles are left out).
    async fn directory_of(
        &self,
        handles: impl IntoIterator<Item = Handle>,
    ) -> Result<PeopleByHandle> {
        let mut wanted: Vec<Handle> = handles.into_iter().collect();
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(PeopleByHandle::new());
        }
        Ok(self
            .store
            .people_by_handle(&wanted)
            .await?
            .into_iter()
            .map(|p| (p.handle.clone(), p))
            .collect())
    }

    /// Everyone a request's steps can involve: the requester and their manager, the app's
    /// owners, the IT admins, people the catalog names as approvers, and everyone already on
    /// its steps. Enough for routing and for every name a message shows, without reading the
    /// whole directory on the hot path.
    async fn request_directory(
        &self,
        requester: &Handle,
        app: &AppName,
        steps: &[Step],
    ) -> Result<PeopleByHandle> {
        let mut wanted = vec![requester.clone()];
        if let Some(p) = self.store.person(requester).await?
            && let Some(m) = p.manager
        {
            wanted.push(m);
        }
        wanted.extend(self.org.it_admins.iter().cloned());
        if let Some(app) = self.org.app(app) {
            wanted.extend(app.owners.iter().cloned());
            wanted.extend(app.approvals.iter().filter_map(|r| match r {
                ApprovalRule::Person(h) => Some(h.clone()),
                _ => None,
            }));
        }
        for s in steps {
            wanted.extend(s.approvers.iter().cloned());
            wanted.extend(s.decision.iter().map(|d| d.by.clone()));
        }
        self.directory_of(wanted).await
    }

    /// A person's name, or their handle when `dir` does not hold them.
    fn name_of(dir: &PeopleByHandle, h: &Handle) -> String {
        dir.get(h).map_or_else(|| h.to_string(), |p| p.name.clone())
    }

    /// The names of `hs`, in order (a handle when `dir` does not hold them).
    fn name_list(dir: &PeopleByHandle, hs: &[Handle]) -> Vec<String> {
        hs.iter().map(|h| Self::name_of(dir, h)).collect()
    }

    /// "Ann, Bob or Cid" ("nobody" for none).
    fn names(dir: &PeopleByHandle, hs: &[Handle]) -> String {
        super::render::requests::either(&Self::name_list(dir, hs))
    }

    /// An app's display name, or its name when the catalog no longer has it.
    fn app_display(&self, a: &AppName) -> String {
        self.org
            .app(a)
            .map_or_else(|| a.to_string(), |a| a.display.clone())
    }

    /// A direct message to `to`, as an outbox row (for a [`Change::messages`]).
    fn out(
        &self,
        to: &Handle,
        text: String,
        buttons: Vec<Button>,
        key: Option<MessageKey>,
    ) -> Outgoing {
        Outgoing::to_person(to, text, buttons, key)
    }

    /// Removes the buttons of every message under `key` and shows `text`, through the
    /// outbox (after the sends under `key`).
    async fn edit(&self, key: MessageKey, text: String) {
        self.enqueue(vec![Outgoing::edit(key, text, Vec::new())])
            .await;
    }

    // ------------------------------------------------------------------ identity

    /// The caller with this handle, if known.
    pub async fn caller_by_handle(&self, h: &Handle) -> Result<Option<Caller>> {
        Ok(self.store.person(h).await?.map(|person| Caller {
            chat_id: person.discord_id.clone(),
            person,
        }))
    }

    /// The caller with this Discord id, if known.
    pub async fn caller_by_discord_id(&self, id: &str) -> Result<Option<Caller>> {
        Ok(self
            .store
            .person_by_discord_id(id)
            .await?
            .map(|person| Caller {
                person,
                chat_id: Some(id.to_owned()),
            }))
    }

    /// The catalog app typed (by name or display name); else the refusal, with a "did you
    /// mean" or the list of apps.
    fn find_app(&self, raw: &str) -> std::result::Result<&App, Refusal> {
        let t = raw.trim().to_lowercase();
        if let Some(a) = self
            .org
            .apps
            .iter()
            .find(|a| a.name.as_str() == t || a.display.to_lowercase() == t)
        {
            return Ok(a);
        }
        let names = self.org.apps.iter().map(|a| a.name.as_str());
        let hint = match suggest::did_you_mean(&t, names) {
            Some(s) => AppHint::DidYouMean(s.to_string()),
            None => AppHint::Catalog(self.org.apps.iter().map(|a| a.name.to_string()).collect()),
        };
        Err(Refusal::NoSuchApp {
            raw: raw.to_owned(),
            hint,
        })
    }
}

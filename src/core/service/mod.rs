//! Use cases over the ports: the one dispatcher every chat adapter (Discord, console) calls.
//! Commands and clicks arrive here with the caller already identified; everything is
//! authorised against the database, decided by the workflow, written with its audit rows in one
//! transaction, and only then announced.

mod actions;
mod commit;
mod hr;
mod interactions;
mod lifecycle;
mod offboarding_report;
mod outbox;
mod views;
mod zones;

pub use hr::{HrError, HrEvent, HrKind, HrOutcome, RecordSource};
pub use lifecycle::{PersonOutcome, PersonRefused};
pub use outbox::DELIVERY_BATCH;

use std::collections::HashMap;
use std::sync::Arc;

use tracing::{Instrument, info_span, warn};

use super::audit::{AuditAction, AuditOutcome};
use super::command::{CommandError, Intent, Registry};
use super::customid::ClickTarget;
use super::model::*;
use super::policy::{self, Directory};
use super::ports::*;
use super::suggest;
use super::validate;
use super::workflow::{Event, RequestState};
use commit::Attempt;

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

/// Who is acting, as identified by the adapter.
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
}

impl Reply {
    /// A text-only reply.
    pub fn text(t: impl Into<String>) -> Self {
        Self {
            text: t.into(),
            buttons: Vec::new(),
            key: None,
        }
    }
}

/// The answer to a click: a reply, or a form to fill first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClickReply {
    /// Done; tell the clicker this.
    Reply(Reply),
    /// Ask for a reason first (Deny); submit the form with the same `custom_id`.
    Modal {
        /// The id to submit the form with.
        custom_id: String,
        /// The form's title.
        title: String,
        /// The one text field's id (`reason`).
        field: String,
        /// The field's label.
        label: String,
    },
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
}

/// `t` in UTC, for the audit trail's details (a message's reader sees their own zone:
/// [`Service::when_to`] and its siblings).
fn when(t: Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn step_key(r: RequestId, k: u32) -> MessageKey {
    MessageKey(format!("req:{r}:s{k}"))
}

fn action_key(a: ActionId) -> MessageKey {
    MessageKey(format!("act:{a}"))
}

/// The Approve and Deny buttons of step `k` of request `r`.
fn decision_buttons(r: RequestId, k: u32) -> Vec<Button> {
    vec![
        Button {
            label: ButtonLabel::Approve,
            custom_id: ClickTarget::Approve(r, k).to_string(),
        },
        Button {
            label: ButtonLabel::Deny,
            custom_id: ClickTarget::Deny(r, k).to_string(),
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
        }
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

    fn by(c: &Caller) -> Actor {
        Actor::Person(c.person.handle.clone())
    }

    /// Records a refusal in the audit trail and returns the sentence to show.
    async fn refuse(
        &self,
        c: &Caller,
        what: &str,
        subject: Option<&Handle>,
        app: Option<&AppName>,
        request: ReqRef,
        why: String,
    ) -> Result<Reply> {
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

    /// Refuses an interaction from a place Quartermaster does not serve (a Discord guild
    /// outside `[discord] guilds`): audited as `command.refused`, answered politely.
    /// `why` is the adapter's words for the audit trail.
    pub async fn refuse_place(&self, chat_id: &str, why: &str) -> Reply {
        let actor = match self.caller_by_discord_id(chat_id).await {
            Ok(Some(c)) => Self::by(&c),
            _ => Actor::System,
        };
        let ev = self
            .audit(AuditAction::CommandRefused)
            .by(actor)
            .chat(Some(chat_id))
            .outcome(AuditOutcome::Refused)
            .detail(format!("interaction: {why}"));
        let change = Change {
            audit: vec![ev],
            ..Change::default()
        };
        if let Err(e) = self.commit(change).await {
            tracing::error!(error = %e, "cannot record a refused interaction");
        }
        Reply::text(
            "Sorry, Quartermaster is not set up for this server. Please use it in your company's server, or in a direct message with the bot.",
        )
    }

    async fn directory(&self) -> Result<Directory> {
        Ok(self
            .store
            .people()
            .await?
            .into_iter()
            .map(|p| (p.handle.clone(), p))
            .collect())
    }

    /// The given people, looked up one by one (unknown handles are left out).
    async fn directory_of(&self, handles: impl IntoIterator<Item = Handle>) -> Result<Directory> {
        let mut dir = Directory::new();
        for h in handles {
            if dir.contains_key(&h) {
                continue;
            }
            if let Some(p) = self.store.person(&h).await? {
                dir.insert(h, p);
            }
        }
        Ok(dir)
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
    ) -> Result<Directory> {
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

    fn name_of(dir: &Directory, h: &Handle) -> String {
        dir.get(h).map_or_else(|| h.to_string(), |p| p.name.clone())
    }

    fn names(dir: &Directory, hs: &[Handle]) -> String {
        let names: Vec<String> = hs.iter().map(|h| Self::name_of(dir, h)).collect();
        match names.len() {
            0 => "nobody".into(),
            1 => names[0].clone(),
            n => format!("{} or {}", names[..n - 1].join(", "), names[n - 1]),
        }
    }

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

    /// Apps whose name or display name matches what was typed so far, best first (for
    /// Discord's autocomplete); forgives typos.
    pub fn complete_app(&self, typed: &str) -> Vec<(String, String)> {
        let t = typed.trim().to_lowercase();
        let mut scored: Vec<(f64, &App)> = self
            .org
            .apps
            .iter()
            .filter(|a| a.requestable)
            .map(|a| {
                let n = a.name.as_str();
                let d = a.display.to_lowercase();
                let s = if t.is_empty() || n.starts_with(&t) || d.starts_with(&t) {
                    2.0
                } else if n.contains(&t) || d.contains(&t) {
                    1.5
                } else {
                    strsim::jaro_winkler(&t, n).max(strsim::jaro_winkler(&t, &d))
                };
                (s, a)
            })
            .filter(|(s, _)| *s >= 0.7)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.name.cmp(&b.1.name)));
        scored
            .into_iter()
            .take(25)
            .map(|(_, a)| (a.name.to_string(), a.display.clone()))
            .collect()
    }

    fn find_app(&self, raw: &str) -> std::result::Result<&App, String> {
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
            Some(s) => format!(" — did you mean `{s}`?"),
            None => {
                let all: Vec<&str> = self.org.apps.iter().map(|a| a.name.as_str()).collect();
                format!(". Apps in the catalog: {}.", all.join(", "))
            }
        };
        Err(format!("There is no app \"{raw}\" in the catalog{hint}"))
    }

    // ------------------------------------------------------------------ commands

    /// Runs a console line (`/request app:figma …`) for `caller`.
    pub async fn command_line(&self, caller: &Caller, line: &str) -> Reply {
        match self.commands.parse_line(line) {
            Ok(intent) => self.run(caller, intent).await,
            Err(e) => Reply::text(e.to_string()),
        }
    }

    /// Runs a slash command given as raw option pairs (the Discord adapter's entry).
    pub async fn command(&self, caller: &Caller, name: &str, raw: Vec<(String, String)>) -> Reply {
        let intent = self
            .commands
            .validate(name, raw)
            .and_then(Intent::from_invocation);
        match intent {
            Ok(intent) => self.run(caller, intent).await,
            Err(e) => Reply::text(CommandError::to_string(&e)),
        }
    }

    /// Runs a parsed command; internal failures become a plain apology.
    pub async fn run(&self, caller: &Caller, intent: Intent) -> Reply {
        let span = info_span!("command", actor = %caller.person.handle);
        let r = self.dispatch(caller, intent).instrument(span).await;
        self.deliver_leftovers().await;
        match r {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "command failed");
                Reply::text(
                    "Something went wrong on our side; nothing was changed. Please try again, or ask IT.",
                )
            }
        }
    }

    async fn dispatch(&self, c: &Caller, intent: Intent) -> Result<Reply> {
        if c.person.status != PersonStatus::Active {
            return self
                .refuse(
                    c,
                    "command",
                    Some(&c.person.handle),
                    None,
                    ReqRef::None,
                    "Your account has been offboarded; you can no longer use Quartermaster.".into(),
                )
                .await;
        }
        let reply = match intent {
            Intent::Request {
                duration: Some(d), ..
            } if d > self.org.workflow.max_duration => Reply::text(format!(
                "duration: {d} is longer than anyone may ask for (at most {}); nothing was requested.",
                self.org.workflow.max_duration
            )),
            Intent::Request {
                app,
                reason,
                duration,
            } => self.request(c, &app, reason, duration).await?,
            Intent::Access { user } => self.access(c, user).await?,
            Intent::Approvals => self.approvals(c).await?,
            Intent::Revoke { app, user, reason } => self.revoke(c, &app, user, reason).await?,
            Intent::Onboard {
                email,
                name,
                role,
                manager,
                department,
                handle,
                user,
                timezone,
            } => {
                self.onboard(
                    c, email, name, role, manager, department, handle, user, timezone,
                )
                .await?
            }
            Intent::Role { user, role } => self.role(c, user, role).await?,
            Intent::Offboard { user, reason, when } => self.offboard(c, user, reason, when).await?,
            Intent::Help { command } => Reply::text(
                self.commands
                    .help(command.as_deref())
                    .unwrap_or_else(|e| format!("{e}.")),
            ),
        };
        Ok(reply)
    }

    // ------------------------------------------------------------------ /request

    async fn request(
        &self,
        c: &Caller,
        raw_app: &str,
        reason: Option<String>,
        duration: Option<Span>,
    ) -> Result<Reply> {
        let me = &c.person;
        let app = match self.find_app(raw_app) {
            Ok(a) => a,
            Err(msg) => return Ok(Reply::text(msg)),
        };
        let birthright = self.org.is_birthright(me, &app.name);
        if !app.requestable && !birthright {
            return Ok(Reply::text(format!(
                "{} cannot be requested: it comes with a role. Ask IT if you think yours should include it.",
                app.display
            )));
        }
        if let Some(open) = self.store.open_request(&me.handle, &app.name).await? {
            self.prompt_if_missing(open.id).await?;
            let dir = self
                .request_directory(&me.handle, &app.name, &open.steps)
                .await?;
            return Ok(Reply::text(format!(
                "You already asked for {}: request #{} is {}.",
                app.display,
                open.id,
                self.describe_wait(&dir, &open)
            )));
        }
        let held = self
            .store
            .grants_of(&me.handle)
            .await?
            .into_iter()
            .find(|g| g.app == app.name);
        let mut kind = RequestKind::New;
        let held_grant = held.clone();
        if let Some(g) = held {
            match (g.state, g.expires_at) {
                (GrantState::Active, Some(_)) => kind = RequestKind::Extend(g.id),
                (GrantState::Active, None) => {
                    return Ok(Reply::text(format!(
                        "You already have {}{}.",
                        app.display,
                        g.granted_at
                            .map(|t| format!(" (since {})", self.when_to(c, t)))
                            .unwrap_or_default()
                    )));
                }
                (GrantState::Revoking, _) => {
                    return Ok(Reply::text(format!(
                        "Your {} access is being removed right now; ask again once that is done.",
                        app.display
                    )));
                }
                _ => {
                    return Ok(Reply::text(format!(
                        "{} is being set up for you already.",
                        app.display
                    )));
                }
            }
        }
        if !birthright && let Err(msg) = policy::check_reason(app, reason.as_deref()) {
            return Ok(Reply::text(msg));
        }
        let (duration, cap_note) = if birthright {
            (None, None)
        } else {
            policy::effective_duration(app, duration)
        };
        // An app's own cap or default may be longer than the global ceiling: no grant is.
        let duration = duration.map(|d| d.min(self.org.workflow.max_duration));
        let now = self.clock.now();
        let rules: Vec<ApprovalRule> = if birthright {
            Vec::new()
        } else {
            app.approvals.clone()
        };
        let mut steps: Vec<Step> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| Step {
                index: i as u32,
                rule: r.clone(),
                approvers: Vec::new(),
                started_at: None,
                decision: None,
                reminded: false,
                escalated: false,
            })
            .collect();
        let dir = self.request_directory(&me.handle, &app.name, &[]).await?;
        let mut state = RequestState::Submitted.on(Event::Route {
            steps: steps.len() as u32,
        })?;
        let mut change = Change::default();
        let who = Self::by(c);
        let chat = c.chat_id.as_deref();
        let detail = match kind {
            RequestKind::New => format!("reason: {}", reason.as_deref().unwrap_or("-")),
            RequestKind::Extend(g) => format!(
                "extension of grant {g}; reason: {}",
                reason.as_deref().unwrap_or("-")
            ),
        };
        change.audit.push(
            self.audit(AuditAction::RequestSubmitted)
                .by(who.clone())
                .chat(chat)
                .subject(&me.handle)
                .app(&app.name)
                .request(ReqRef::New)
                .detail(detail),
        );
        let mut grant = None;
        match state {
            RequestState::Approved => {
                let why = if birthright {
                    "birthright of the role"
                } else {
                    "no approval needed"
                };
                change.audit.push(
                    self.audit(AuditAction::RequestApproved)
                        .subject(&me.handle)
                        .app(&app.name)
                        .request(ReqRef::New)
                        .detail(why),
                );
                state = state.on(Event::Provision)?;
                let (g, done) = self.provision(
                    &mut change,
                    me,
                    app,
                    kind,
                    held_grant.as_ref(),
                    duration,
                    ReqRef::New,
                    now,
                );
                grant = g;
                if done {
                    state = state.on(Event::Provisioned)?;
                }
            }
            RequestState::Awaiting(0) => {
                state = self.start_step(
                    &mut change,
                    &dir,
                    me,
                    app,
                    &mut steps,
                    0,
                    ReqRef::New,
                    now,
                    state,
                );
            }
            other => return Err(ServiceError::Inconsistent(format!("routed to {other}"))),
        }
        change.new_request = Some(NewRequest {
            requester: me.handle.clone(),
            app: app.name.clone(),
            reason: reason.clone(),
            duration,
            kind,
            state,
            steps: steps.clone(),
            grant,
            created_at: now,
        });
        let committed = self.commit(change).await?;
        let id = committed
            .request
            .ok_or_else(|| ServiceError::Inconsistent("no request id".into()))?;
        let req = self
            .store
            .request(id)
            .await?
            .ok_or_else(|| ServiceError::Inconsistent(format!("request {id} vanished")))?;
        self.announce_step(&dir, &req).await;
        let mut text = match req.state {
            RequestState::Provisioning => format!(
                "Request #{id} for {} is approved ({}); setting it up now.",
                app.display,
                if birthright {
                    "it comes with your role"
                } else {
                    "no approval needed"
                }
            ),
            RequestState::Granted => format!(
                "Request #{id}: your {} access is extended{}.",
                app.display,
                self.store
                    .grants_of(&me.handle)
                    .await?
                    .iter()
                    .find(|g| g.app == app.name)
                    .and_then(|g| g.expires_at)
                    .map(|t| format!(" until {}", self.when_to(c, t)))
                    .unwrap_or_default()
            ),
            _ => format!(
                "Request #{id} for {}{} is {}.",
                app.display,
                match kind {
                    RequestKind::Extend(_) => " (an extension)",
                    RequestKind::New => "",
                },
                self.describe_wait(&dir, &req)
            ),
        };
        if let Some(note) = cap_note {
            text = format!("{text}\n{note}");
        }
        Ok(Reply::text(text))
    }

    /// "awaiting Bob Chen (step 1 of 2)" and the like.
    fn describe_wait(&self, dir: &Directory, r: &Request) -> String {
        match (r.state, r.current_step()) {
            (RequestState::Awaiting(k), Some(s)) => format!(
                "waiting for {} (step {} of {})",
                Self::names(dir, &s.approvers),
                k + 1,
                r.steps.len()
            ),
            (RequestState::NoApprover(k), _) => format!(
                "waiting: nobody is eligible to approve step {} of {}; IT has been told",
                k + 1,
                r.steps.len()
            ),
            (s, _) => s.to_string(),
        }
    }

    /// Resolves the approvers of step `k`, starts it, and returns the request's state
    /// (awaiting, or without approver).
    #[allow(clippy::too_many_arguments)]
    fn start_step(
        &self,
        change: &mut Change,
        dir: &Directory,
        requester: &Person,
        app: &App,
        steps: &mut [Step],
        k: u32,
        req: ReqRef,
        now: Timestamp,
        state: RequestState,
    ) -> RequestState {
        let earlier: Vec<Handle> = steps[..k as usize]
            .iter()
            .filter_map(|s| s.decision.as_ref().map(|d| d.by.clone()))
            .collect();
        let rule = steps[k as usize].rule.clone();
        let approvers = policy::approvers_for(&self.org, dir, &rule, requester, app, &earlier);
        let step = &mut steps[k as usize];
        step.started_at = Some(now);
        step.approvers = approvers.clone();
        if approvers.is_empty() {
            change.audit.push(
                self.audit(AuditAction::StepNoApprover)
                    .subject(&requester.handle)
                    .app(&app.name)
                    .request(req)
                    .outcome(AuditOutcome::Waiting)
                    .detail(format!("step {} ({rule}): nobody eligible", k + 1)),
            );
            state
                .on(Event::NoApprover)
                .unwrap_or(RequestState::NoApprover(k))
        } else {
            let names: Vec<&str> = approvers.iter().map(Handle::as_str).collect();
            change.audit.push(
                self.audit(AuditAction::StepStarted)
                    .subject(&requester.handle)
                    .app(&app.name)
                    .request(req)
                    .detail(format!("step {} ({rule}): {}", k + 1, names.join(", "))),
            );
            RequestState::Awaiting(k)
        }
    }

    /// Adds the grant and its connector action to `change` (or, for an extension, the grant's
    /// new end, which needs no connector); returns the grant and whether it is already done.
    #[allow(clippy::too_many_arguments)]
    fn provision(
        &self,
        change: &mut Change,
        who: &Person,
        app: &App,
        kind: RequestKind,
        extends: Option<&Grant>,
        duration: Option<Span>,
        req: ReqRef,
        now: Timestamp,
    ) -> (Option<GrantRef>, bool) {
        match (kind, extends) {
            (RequestKind::Extend(_), Some(g)) => {
                let from = g.expires_at.map_or(now, |e| e.max(now));
                let until = duration.map(|d| self.ends(from, d));
                change.grant_updates.push(GrantUpdate {
                    id: g.id,
                    from: g.state,
                    state: g.state,
                    granted_at: g.granted_at,
                    expires_at: until,
                    warned: false,
                });
                change.audit.push(
                    self.audit(AuditAction::GrantExtended)
                        .subject(&who.handle)
                        .app(&app.name)
                        .request(req)
                        .detail(format!(
                            "until {}",
                            until.map_or_else(|| "no end".into(), when)
                        )),
                );
                (Some(GrantRef::Id(g.id)), true)
            }
            _ => {
                change.new_grants.push(NewGrant {
                    person: who.handle.clone(),
                    app: app.name.clone(),
                    source: NewGrantSource::Request(req),
                    state: GrantState::Pending,
                    granted_at: None,
                    expires_at: duration.map(|d| self.ends(now, d)),
                });
                let g = GrantRef::New(change.new_grants.len() - 1);
                change.new_actions.push(NewAction {
                    connector: app.connector.clone(),
                    op: ActionOp::Grant,
                    person: who.handle.clone(),
                    app: Some(app.name.clone()),
                    entitlement: Some(app.entitlement.clone()),
                    grant: Some(g),
                    request: req,
                    at: now,
                });
                (Some(g), false)
            }
        }
    }

    fn prompt_text(&self, dir: &Directory, r: &Request, holds: &[Grant]) -> String {
        let requester = Self::name_of(dir, &r.requester);
        let k = r.state.step().unwrap_or(0);
        let rule = r
            .steps
            .get(k as usize)
            .map(|s| s.rule.to_string())
            .unwrap_or_default();
        let held: Vec<String> = holds
            .iter()
            .filter(|g| g.state == GrantState::Active)
            .map(|g| self.app_display(&g.app))
            .collect();
        let what = match r.kind {
            RequestKind::New => "asks for",
            RequestKind::Extend(_) => "asks to extend",
        };
        format!(
            "Access request #{}: {requester} {what} {}.\nReason: {}\nDuration: {}\nStep {} of {} ({rule})\n{requester} already holds: {}",
            r.id,
            self.app_display(&r.app),
            r.reason.as_deref().unwrap_or("(none given)"),
            r.duration
                .map_or_else(|| "no end".to_owned(), |d| d.to_string()),
            k + 1,
            r.steps.len(),
            if held.is_empty() {
                "nothing yet".to_owned()
            } else {
                held.join(", ")
            },
        )
    }

    /// Sends the prompts of the request's current step, or tells everyone nobody can decide it.
    /// Sends the prompts of every request whose current step was opened (its commit made)
    /// at or before `before` and never prompted for: a crash came between that commit and the
    /// prompts. How many requests were prompted.
    pub(super) async fn send_missing_prompts(&self, before: Timestamp) -> Result<usize> {
        let mut n = 0;
        for id in self.store.unprompted_requests(before).await? {
            if let Some(r) = self.store.request(id).await? {
                let dir = self
                    .request_directory(&r.requester, &r.app, &r.steps)
                    .await?;
                self.announce_step(&dir, &r).await;
                n += 1;
            }
        }
        Ok(n)
    }

    /// [`Service::send_missing_prompts`] for one request (a retried click or command).
    async fn prompt_if_missing(&self, id: RequestId) -> Result<()> {
        let now = self.clock.now();
        if self.store.unprompted_requests(now).await?.contains(&id)
            && let Some(r) = self.store.request(id).await?
        {
            let dir = self
                .request_directory(&r.requester, &r.app, &r.steps)
                .await?;
            self.announce_step(&dir, &r).await;
        }
        Ok(())
    }

    /// Prompts the approvers of a request's current step (or tells IT nobody can approve
    /// it): the prompts are written to the outbox in one transaction with the record that
    /// the step was prompted for.
    async fn announce_step(&self, dir: &Directory, r: &Request) {
        let mut change = Change::default();
        self.step_messages(&mut change, dir, r).await;
        if change.is_empty() {
            return;
        }
        match self.commit(change).await {
            Ok(_) => self.messages_committed().await,
            Err(e) => {
                warn!(error = %e, request = %r.id, "cannot queue the prompts of a step")
            }
        }
    }

    /// Adds the prompts of a request's current step (or the word that nobody can approve
    /// it) to `change`, with the record that the step was prompted for. Each prompt is
    /// written once, ever, however often the step is announced.
    async fn step_messages(&self, change: &mut Change, dir: &Directory, r: &Request) {
        match r.state {
            RequestState::Awaiting(k) => {
                let holds = self.store.grants_of(&r.requester).await.unwrap_or_default();
                let text = self.prompt_text(dir, r, &holds);
                let buttons = decision_buttons(r.id, k);
                if let Some(step) = r.current_step() {
                    for a in &step.approvers {
                        change.messages.push(
                            self.out(a, text.clone(), buttons.clone(), Some(step_key(r.id, k)))
                                .once(format!("req:{}:s{k}:prompt:{a}", r.id)),
                        );
                    }
                }
                change.prompted.push((r.id, k));
            }
            RequestState::NoApprover(k) => {
                let text = format!(
                    "Request #{} ({} for {}) has nobody eligible to approve step {} of {}. An IT admin can add an approver in the catalog, or the requester can /revoke it.",
                    r.id,
                    self.app_display(&r.app),
                    Self::name_of(dir, &r.requester),
                    k + 1,
                    r.steps.len()
                );
                let once = |h: &Handle| format!("req:{}:s{k}:noapprover:{h}", r.id);
                change.messages.push(
                    self.out(&r.requester, text.clone(), vec![], None)
                        .once(once(&r.requester)),
                );
                for a in &self.org.it_admins {
                    if a != &r.requester {
                        change
                            .messages
                            .push(self.out(a, text.clone(), vec![], None).once(once(a)));
                    }
                }
                change.prompted.push((r.id, k));
            }
            _ => {}
        }
    }

    // ------------------------------------------------------------------ clicks

    /// Handles a button click (or a submitted form: `fields` holds its values).
    pub async fn click(
        &self,
        caller: &Caller,
        custom_id: &str,
        fields: Option<&HashMap<String, String>>,
    ) -> ClickReply {
        let span = info_span!("click", actor = %caller.person.handle, custom_id);
        let r = async {
            if caller.person.status != PersonStatus::Active {
                return self
                    .refuse(
                        caller,
                        "click",
                        None,
                        None,
                        ReqRef::None,
                        "Your account has been offboarded; you can no longer use Quartermaster."
                            .into(),
                    )
                    .await
                    .map(ClickReply::Reply);
            }
            let target = match ClickTarget::parse(custom_id) {
                Ok(t) => t,
                Err(e) => return Ok(ClickReply::Reply(Reply::text(e.to_string()))),
            };
            let reply = match target {
                ClickTarget::Approve(r, k) => self.decide(caller, r, k, true, None).await?,
                ClickTarget::Deny(r, k) => match fields {
                    None => {
                        return Ok(ClickReply::Modal {
                            custom_id: custom_id.to_owned(),
                            title: format!("Deny request #{r}"),
                            field: "reason".into(),
                            label: "Why is it denied?".into(),
                        });
                    }
                    Some(f) => {
                        let reason = f
                            .get("reason")
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty());
                        self.decide(caller, r, k, false, reason).await?
                    }
                },
                ClickTarget::Done(a) => self.manual_done(caller, a).await?,
                ClickTarget::Retry(a) => self.retry(caller, a).await?,
                ClickTarget::Confirm(p) => self.close_plan(caller, p, true).await?,
                ClickTarget::Cancel(p) => self.close_plan(caller, p, false).await?,
                ClickTarget::Extend(g) => self.extend(caller, g).await?,
            };
            Ok::<_, ServiceError>(ClickReply::Reply(reply))
        }
        .instrument(span)
        .await;
        self.deliver_leftovers().await;
        r.unwrap_or_else(|e| {
            tracing::error!(error = %e, "click failed");
            ClickReply::Reply(Reply::text(
                "Something went wrong on our side; nothing was changed. Please try again.",
            ))
        })
    }

    /// Approve or deny step `k` of request `id`, as `c`. Safe under concurrent clicks: the
    /// write is conditional on the version read, and a loser re-reads and sees the decision.
    async fn decide(
        &self,
        c: &Caller,
        id: RequestId,
        k: u32,
        approve: bool,
        reason: Option<String>,
    ) -> Result<Reply> {
        let (me, reason) = (&c.person.handle, &reason);
        let decided = self.retry_on_conflict(&format!("request {id}"), || async move {
            // Someone with no part in the request learns nothing about it: not its state, not
            // its approvers, not even whether it exists.
            let r = self.store.request(id).await?;
            let Some(r) = r.filter(|r| {
                &r.requester == me
                    || r.steps.iter().any(|s| {
                        s.approvers.contains(me) || s.decision.as_ref().is_some_and(|d| &d.by == me)
                    })
                    || policy::it_admin(&self.org, &c.person).is_some()
            }) else {
                return self
                    .refuse(
                        c,
                        "decide",
                        None,
                        None,
                        ReqRef::None,
                        format!("There is nothing for you to decide on request #{id}."),
                    )
                    .await
                    .map(Attempt::Done);
            };
            let dir = self
                .request_directory(&r.requester, &r.app, &r.steps)
                .await?;
            let Some(step) = r.steps.get(k as usize) else {
                return Ok(Attempt::Done(Reply::text(format!(
                    "Request #{id} has no step {}.",
                    k + 1
                ))));
            };
            if let Some(d) = &step.decision {
                // A retried click: the decision was made, but its prompts to the next
                // approvers may have been cut short.
                self.prompt_if_missing(id).await?;
                return Ok(Attempt::Done(Reply::text(format!(
                    "Already {} by {} at {}.",
                    if d.approved { "approved" } else { "denied" },
                    Self::name_of(&dir, &d.by),
                    self.when_to(c, d.at)
                ))));
            }
            if r.state.step() != Some(k) || !r.state.is_open() {
                return Ok(Attempt::Done(Reply::text(format!(
                    "Request #{id} is {}; there is nothing to decide.",
                    r.state
                ))));
            }
            if me == &r.requester {
                return self
                    .refuse(
                        c,
                        "decide",
                        Some(&r.requester),
                        Some(&r.app),
                        id.into(),
                        "You cannot approve or deny your own request.".into(),
                    )
                    .await
                    .map(Attempt::Done);
            }
            if !step.approvers.contains(me) {
                let why = format!(
                    "Only {} can decide step {} of request #{id}.",
                    Self::names(&dir, &step.approvers),
                    k + 1
                );
                return self
                    .refuse(
                        c,
                        "decide",
                        Some(&r.requester),
                        Some(&r.app),
                        id.into(),
                        why,
                    )
                    .await
                    .map(Attempt::Done);
            }
            let Some(app) = self.org.app(&r.app) else {
                return Ok(Attempt::Done(Reply::text(format!(
                    "{} is no longer in the catalog.",
                    r.app
                ))));
            };
            let Some(requester) = dir.get(&r.requester).cloned() else {
                return Err(ServiceError::Inconsistent(format!(
                    "no person {}",
                    r.requester
                )));
            };
            let now = self.clock.now();
            let mut steps = r.steps.clone();
            steps[k as usize].decision = Some(Decision {
                approved: approve,
                by: me.clone(),
                at: now,
                reason: reason.clone(),
            });
            let n = steps.len() as u32;
            let ev = if approve {
                Event::Approve { step: k, of: n }
            } else {
                Event::Deny { step: k }
            };
            let mut state = r.state.on(ev)?;
            let mut change = Change::default();
            change.audit.push(
                self.audit(if approve {
                    AuditAction::StepApproved
                } else {
                    AuditAction::StepDenied
                })
                .by(Self::by(c))
                .chat(c.chat_id.as_deref())
                .subject(&r.requester)
                .app(&r.app)
                .request(id)
                .detail(format!(
                    "step {} of {n}{}",
                    k + 1,
                    reason
                        .as_deref()
                        .map(|r| format!("; reason: {r}"))
                        .unwrap_or_default()
                )),
            );
            let mut grant = r.grant.map(GrantRef::Id);
            match state {
                RequestState::Awaiting(next) => {
                    state = self.start_step(
                        &mut change,
                        &dir,
                        &requester,
                        app,
                        &mut steps,
                        next,
                        id.into(),
                        now,
                        state,
                    );
                }
                RequestState::Approved => {
                    change.audit.push(
                        self.audit(AuditAction::RequestApproved)
                            .subject(&r.requester)
                            .app(&r.app)
                            .request(id)
                            .detail("every step approved"),
                    );
                    state = state.on(Event::Provision)?;
                    let extends = match r.kind {
                        RequestKind::Extend(g) => self.store.grant(g).await?,
                        RequestKind::New => None,
                    };
                    let (g, done) = self.provision(
                        &mut change,
                        &requester,
                        app,
                        r.kind,
                        extends.as_ref(),
                        r.duration,
                        id.into(),
                        now,
                    );
                    grant = g;
                    if done {
                        state = state.on(Event::Provisioned)?;
                    }
                }
                RequestState::Denied => {
                    change.audit.push(
                        self.audit(AuditAction::RequestDenied)
                            .subject(&r.requester)
                            .app(&r.app)
                            .request(id)
                            .detail(format!("denied at step {}", k + 1)),
                    );
                }
                other => {
                    return Err(ServiceError::Inconsistent(format!(
                        "decision led to {other}"
                    )));
                }
            }
            // The request as this change leaves it: its messages are written with it.
            let mut after = r.clone();
            after.state = state;
            after.steps = steps.clone();
            change.request_updates.push(RequestUpdate {
                id,
                expected_version: r.version,
                state,
                steps,
                grant,
                updated_at: now,
            });
            let verdict = format!(
                "{} by {} at {}",
                if approve {
                    "✅ Approved"
                } else {
                    "❌ Denied"
                },
                c.person.name,
                self.when_shared(now)
            );
            let holds = self.store.grants_of(&r.requester).await.unwrap_or_default();
            let mut shown = r.clone();
            shown.state = RequestState::Awaiting(k);
            change.messages.push(Outgoing::edit(
                step_key(id, k),
                format!(
                    "{}\n{verdict}{}",
                    self.prompt_text(&dir, &shown, &holds),
                    reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
                Vec::new(),
            ));
            self.step_messages(&mut change, &dir, &after).await;
            let app_name = &app.display;
            let to_requester = match after.state {
                RequestState::Denied => format!(
                    "Your request #{id} for {app_name} was denied by {}{}.",
                    c.person.name,
                    reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
                RequestState::Provisioning => format!(
                    "Your request #{id} for {app_name} was approved by {}; setting it up now.",
                    c.person.name
                ),
                RequestState::Granted => format!(
                    "Your request #{id} to extend {app_name} was approved by {}.",
                    c.person.name
                ),
                _ => format!(
                    "Step {} of your request #{id} for {app_name} was approved by {}; it is now {}.",
                    k + 1,
                    c.person.name,
                    self.describe_wait(&dir, &after)
                ),
            };
            change
                .messages
                .push(self.out(&r.requester, to_requester, vec![], None));
            match self.commit(change).await {
                // The commit woke a worker for the grant's action before the chat messages
                // (round trips to Discord) go out.
                Ok(_) => {}
                Err(StoreError::Conflict) => return Ok(Attempt::Conflict),
                Err(e) => return Err(e.into()),
            }
            self.messages_committed().await;
            Ok(Attempt::Done(Reply::text(format!(
                "{} request #{id} ({} for {}).",
                if approve {
                    "You approved"
                } else {
                    "You denied"
                },
                app_name,
                Self::name_of(&dir, &r.requester)
            ))))
        })
        .await;
        match decided {
            Err(ServiceError::KeptConflicting(_)) => Ok(Reply::text(format!(
                "Request #{id} is changing too often right now; try again in a moment."
            ))),
            other => other,
        }
    }
}

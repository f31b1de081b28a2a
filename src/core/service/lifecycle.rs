//! Joiners, movers and leavers (`/onboard`, `/role`, `/offboard` and their plans), grant
//! extensions, and the timers (`tick`): expiries, reminders, escalations.

use serde::{Deserialize, Serialize};

use super::*;

/// Noted on a Verify action whose connector cannot be re-read.
pub(super) const NOT_LISTABLE: &str =
    "cannot be re-read (no API): IT's Done on each task is the evidence";

/// Noted on a Verify action that found memberships whose removal is already reported.
pub(super) const STILL_PRESENT: &str = "still present: ";

/// Detail stored with a plan.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct PlanDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Made by the HR feed (no person created or confirmed it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) hr: bool,
    /// Onboarding: the birthright apps it set up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    apps: Vec<String>,
}

impl PlanDetail {
    /// The detail stored with `plan`: stored text that does not read back is an error (a
    /// plan run on defaults could do the wrong thing), never a default.
    pub(super) fn of(plan: &Plan) -> Result<Self> {
        serde_json::from_str(&plan.detail).map_err(|e| {
            ServiceError::Inconsistent(format!(
                "plan #{}: its stored detail cannot be read: {e}",
                plan.id
            ))
        })
    }
}

/// A role change worked out as a diff of grants.
#[derive(Debug, Default)]
pub(super) struct RolePlan {
    grant: Vec<AppName>,
    revoke: Vec<Grant>,
    review: Vec<Grant>,
    keep: Vec<AppName>,
}

/// Who carries something out: a person (from chat), the scheduler, or the HR feed.
#[derive(Debug, Clone)]
pub(super) struct Doer {
    /// For the audit trail.
    pub(super) actor: Actor,
    /// Their chat id, when it came from chat.
    pub(super) chat: Option<String>,
    /// How people see them named.
    pub(super) name: String,
    /// Their handle, when a person.
    pub(super) handle: Option<Handle>,
}

impl Doer {
    pub(super) fn caller(c: &Caller) -> Self {
        Self {
            actor: Actor::Person(c.person.handle.clone()),
            chat: c.chat_id.clone(),
            name: c.person.name.clone(),
            handle: Some(c.person.handle.clone()),
        }
    }
    pub(super) fn hr() -> Self {
        Self {
            actor: Actor::Hr,
            chat: None,
            name: "HR".into(),
            handle: None,
        }
    }
    pub(super) fn system() -> Self {
        Self {
            actor: Actor::System,
            chat: None,
            name: "Quartermaster (scheduled)".into(),
            handle: None,
        }
    }
}

/// What a joiner's or mover's record changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonOutcome {
    /// A new person was created (or a leaver came back) and their birthrights queued.
    Hired(Handle),
    /// An existing person was updated (role, department, manager…), their grants moved.
    Moved(Handle),
    /// The record was unchanged, but birthrights it gives were missing and are queued.
    Repaired(Handle),
    /// Nothing changed.
    Unchanged(Handle),
}

/// Why a joiner's or mover's record was refused; the text names the field.
#[derive(Debug, thiserror::Error)]
pub enum PersonRefused {
    /// The record does not fit the directory or the catalog.
    #[error("{0}")]
    Invalid(String),
    /// An internal failure.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for PersonRefused {
    fn from(e: StoreError) -> Self {
        Self::Service(e.into())
    }
}

impl Service {
    async fn it_only(
        &self,
        c: &Caller,
        what: &str,
        subject: Option<&Handle>,
    ) -> Result<Option<Reply>> {
        if policy::it_admin(&self.org, &c.person).is_some() {
            return Ok(None);
        }
        let why = format!("{what} is for IT admins only.");
        self.refuse(c, what, subject, None, ReqRef::None, why)
            .await
            .map(Some)
    }

    fn role_or_suggest(&self, role: &RoleName) -> std::result::Result<(), String> {
        if self.org.role(role).is_some() {
            return Ok(());
        }
        let names = self.org.roles.iter().map(|r| r.name.as_str());
        Err(match suggest::did_you_mean(role.as_str(), names) {
            Some(s) => format!("There is no role \"{role}\" — did you mean `{s}`?"),
            None => format!("There is no role \"{role}\"."),
        })
    }

    /// Adds a pending grant and its action for each birthright app the person does not hold.
    fn birthright_grants(&self, change: &mut Change, p: &Person, held: &[Grant], apps: &[AppName]) {
        let now = self.clock.now();
        for a in apps {
            if held.iter().any(|g| &g.app == a) {
                continue;
            }
            let Some(app) = self.org.app(a) else { continue };
            change.new_grants.push(NewGrant {
                person: p.handle.clone(),
                app: a.clone(),
                source: NewGrantSource::Birthright,
                state: GrantState::Pending,
                granted_at: None,
                expires_at: None,
            });
            change.new_actions.push(NewAction {
                connector: app.connector.clone(),
                op: ActionOp::Grant,
                person: p.handle.clone(),
                app: Some(a.clone()),
                entitlement: Some(app.entitlement.clone()),
                grant: Some(GrantRef::New(change.new_grants.len() - 1)),
                request: ReqRef::None,
                at: now,
            });
        }
    }

    /// `/onboard`: creates (or re-activates) a person and grants their birthrights.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn onboard(
        &self,
        c: &Caller,
        email: Email,
        name: String,
        role: RoleName,
        manager: Option<Handle>,
        department: Option<String>,
        handle: Option<Handle>,
        discord: Option<String>,
        timezone: Option<Zone>,
    ) -> Result<Reply> {
        if let Some(r) = self.it_only(c, "/onboard", handle.as_ref()).await? {
            return Ok(r);
        }
        if let Err(m) = self.role_or_suggest(&role) {
            return Ok(Reply::text(m));
        }
        let handle = match handle {
            Some(h) => h,
            None => match Handle::parse(&email.local_part().to_lowercase()) {
                Ok(h) => h,
                Err(e) => return Ok(Reply::text(format!("{e}; give one with handle:"))),
            },
        };
        let dir = self.directory().await?;
        if let Some(m) = &manager
            && !dir.contains_key(m)
        {
            return Ok(Reply::text(format!(
                "There is nobody with the handle \"{m}\" to be the manager."
            )));
        }
        // /onboard adds people; it never changes one (a move is a /role plan, confirmed).
        if let Some(p) = dir
            .values()
            .find(|p| p.status == PersonStatus::Active && p.email == email)
        {
            return Ok(Reply::text(format!(
                "{} ({}, {}) is already in Quartermaster; /onboard changes nobody. To change their role, use /role user:{} role:{role}.",
                p.name, p.handle, p.email, p.handle
            )));
        }
        if let Some(other) = dir
            .values()
            .find(|p| p.email == email && p.handle != handle)
        {
            return Ok(Reply::text(format!(
                "{email} already belongs to {} ({}).",
                other.name, other.handle
            )));
        }
        if let Some(d) = &discord
            && let Some(other) = self.store.person_by_discord_id(d).await?
            && other.handle != handle
        {
            return Ok(Reply::text(format!(
                "That Discord account is already linked to {} ({}); nothing was changed.",
                other.name, other.handle
            )));
        }
        let existing = dir.get(&handle);
        if let Some(p) = existing
            && p.email != email
        {
            return Ok(Reply::text(format!(
                "The handle \"{handle}\" is taken by {} ({}); choose another with handle:",
                p.name, p.email
            )));
        }
        let department = department
            .or_else(|| existing.map(|p| p.department.clone()))
            .or_else(|| {
                manager
                    .as_ref()
                    .and_then(|m| dir.get(m))
                    .map(|m| m.department.clone())
            })
            .unwrap_or_default();
        let person = Person {
            handle: handle.clone(),
            name,
            email,
            department,
            role,
            manager,
            discord_id: discord.or_else(|| existing.and_then(|p| p.discord_id.clone())),
            status: PersonStatus::Active,
            timezone: timezone.or_else(|| existing.and_then(|p| p.timezone)),
        };
        if let Err(e) = validate::person(&person).and_then(|()| {
            validate::manager_cycle(&handle, person.manager.as_ref(), |x| {
                dir.get(x).and_then(|p| p.manager.clone())
            })
        }) {
            return Ok(Reply::text(format!("Could not onboard: {e}.")));
        }
        let verb = if existing.is_some() {
            "updated"
        } else {
            "created"
        };
        match self
            .set_up_joiner(&Doer::caller(c), &person, verb, Change::default())
            .await?
        {
            Ok(list) => Ok(Reply::text(format!(
                "{} ({handle}) {verb} as {}; birthright apps being set up: {list}. A welcome summary goes to them{} once everything is settled.",
                person.name,
                person.role,
                if person.manager.is_some() {
                    " and their manager"
                } else {
                    ""
                }
            ))),
            Err(what) => Ok(Reply::text(format!(
                "Could not onboard {}: {what} is already used by someone else.",
                person.name
            ))),
        }
    }

    /// Stores a joiner (or re-activates / updates a person) and queues every birthright they
    /// do not hold; the welcome summary follows once those actions have settled. The person,
    /// their started onboarding plan, the grants, the actions and the audit rows are one
    /// transaction, with whatever `base` holds (an HR event's replay record). Returns the
    /// apps being set up, or the value that clashes with someone else's.
    pub(super) async fn set_up_joiner(
        &self,
        by: &Doer,
        person: &Person,
        verb: &str,
        base: Change,
    ) -> Result<std::result::Result<String, String>> {
        let handle = &person.handle;
        let mut change = base;
        change.audit.push(
            self.audit(AuditAction::PersonOnboarded)
                .by(by.actor.clone())
                .chat(by.chat.as_deref())
                .subject(handle)
                .detail(format!("{verb}; role {}", person.role)),
        );
        let held = self.store.grants_of(handle).await?;
        let apps = self.org.birthrights(&person.role, &person.department);
        let before = change.new_grants.len();
        self.birthright_grants(&mut change, person, &held, &apps);
        let queued: Vec<AppName> = change.new_grants[before..]
            .iter()
            .map(|g| g.app.clone())
            .collect();
        let list = if queued.is_empty() {
            "nothing new".to_owned()
        } else {
            queued
                .iter()
                .map(|a| self.app_display(a))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let detail = serde_json::to_string(&PlanDetail {
            hr: by.actor == Actor::Hr,
            apps: apps.iter().map(ToString::to_string).collect(),
            ..PlanDetail::default()
        })
        .unwrap_or_default();
        let now = self.clock.now();
        change.person = Some(person.clone());
        change.new_plan = Some(NewPlan {
            kind: PlanKind::Onboard,
            subject: handle.clone(),
            created_by: by.handle.clone().unwrap_or_else(|| handle.clone()),
            confirmers: Vec::new(),
            detail,
            created_at: now,
            due_at: None,
            preconfirmed: true,
        });
        change.start_new_plan = true;
        match self.commit(change).await {
            Ok(_) => {}
            Err(StoreError::Duplicate(what)) => return Ok(Err(what)),
            Err(e) => return Err(e.into()),
        }
        self.maybe_report_onboarding(handle).await?;
        Ok(Ok(list))
    }

    /// True when an active person lacks a birthright their role and department give (no
    /// live grant of it) and no open plan of theirs explains it.
    pub(super) async fn missing_birthrights(&self, p: &Person) -> Result<bool> {
        let held = self.store.grants_of(&p.handle).await?;
        let missing = self
            .org
            .birthrights(&p.role, &p.department)
            .iter()
            .any(|a| self.org.app(a).is_some() && !held.iter().any(|g| &g.app == a));
        if !missing {
            return Ok(false);
        }
        let open = self
            .store
            .plans_of(&p.handle)
            .await?
            .iter()
            .any(|plan| plan.state == PlanState::Open);
        Ok(!open)
    }

    /// Sends the welcome summary (what is ready, what waits for a manual step, what failed)
    /// to the joiner and their manager once every action of their onboarding has settled.
    pub(super) async fn maybe_report_onboarding(&self, who: &Handle) -> Result<()> {
        self.maybe_report_onboardings(std::slice::from_ref(who))
            .await
    }

    /// [`Service::maybe_report_onboarding`] for several joiners at once (an engine batch):
    /// one read finds whose onboarding has settled; their reports are read together, marked
    /// sent in the transaction that audits them, then sent one by one.
    pub(super) async fn maybe_report_onboardings(&self, who: &[Handle]) -> Result<()> {
        // Another worker may report some of the same plans meanwhile: its commit makes ours
        // fail as a whole, and the next round reads only the plans still unreported.
        loop {
            match self.report_settled_onboardings(who).await {
                Err(ServiceError::Store(StoreError::Conflict)) => continue,
                other => return other,
            }
        }
    }

    /// One round of [`Service::maybe_report_onboardings`].
    async fn report_settled_onboardings(&self, who: &[Handle]) -> Result<()> {
        // One read after every batch of grants; the full look below runs for settled plans.
        let plans = self.store.onboarding_plans_settled(who).await?;
        if plans.is_empty() {
            return Ok(());
        }
        let subjects: Vec<Handle> = plans.iter().map(|p| p.subject.clone()).collect();
        let mut all_actions = self.store.actions_of_people(&subjects).await?;
        let mut settled: Vec<(Plan, Vec<Action>)> = Vec::new();
        for plan in plans {
            let detail = PlanDetail::of(&plan)?;
            let actions: Vec<Action> = match plan.first_action {
                None => Vec::new(),
                Some(first) => all_actions
                    .extract_if(.., |a| {
                        a.person == plan.subject
                            && a.id >= first
                            && a.op == ActionOp::Grant
                            && a.app
                                .as_ref()
                                .is_some_and(|x| detail.apps.iter().any(|d| d == x.as_str()))
                    })
                    .collect(),
            };
            if actions
                .iter()
                .any(|a| matches!(a.state, ActionState::Pending | ActionState::Running))
            {
                continue;
            }
            settled.push((plan, actions));
        }
        if settled.is_empty() {
            return Ok(());
        }
        let subjects: Vec<Handle> = settled.iter().map(|(p, _)| p.subject.clone()).collect();
        let people: HashMap<Handle, Person> = self
            .store
            .people_by_handle(&subjects)
            .await?
            .into_iter()
            .map(|p| (p.handle.clone(), p))
            .collect();
        let grants = self.store.grants_of_people(&subjects).await?;
        let mut audit = Vec::with_capacity(settled.len());
        let mut messages = Vec::with_capacity(settled.len());
        for (plan, actions) in &settled {
            let Some(p) = people.get(&plan.subject) else {
                continue;
            };
            let held: Vec<&Grant> = grants.iter().filter(|g| g.person == p.handle).collect();
            let (event, body) = self.onboarding_report(p, actions, &held);
            audit.push(event);
            messages.push((p, body));
        }
        // The welcome messages are written with the audit rows that mark the reports sent.
        let mut out = Vec::new();
        for (p, body) in messages {
            out.push(self.out(
                &p.handle,
                format!(
                    "Welcome to {}, {}! Your access as {}:\n{body}",
                    self.org.name, p.name, p.role
                ),
                vec![],
                None,
            ));
            if let Some(m) = &p.manager {
                out.push(self.out(
                    m,
                    format!(
                        "{} ({}) has joined as {}. Their access:\n{body}",
                        p.name, p.handle, p.role
                    ),
                    vec![],
                    None,
                ));
            }
        }
        self.store
            .commit(Change {
                audit,
                report_plans: settled.iter().map(|(p, _)| p.id).collect(),
                messages: out,
                ..Change::default()
            })
            .await?;
        self.messages_committed().await;
        Ok(())
    }

    /// A settled onboarding's audit row and the summary sent to the joiner and their
    /// manager, from the plan's actions and the person's live grants.
    fn onboarding_report(
        &self,
        p: &Person,
        actions: &[Action],
        held: &[&Grant],
    ) -> (AuditEvent, String) {
        let show = |st: &[ActionState]| -> Vec<String> {
            actions
                .iter()
                .filter(|a| st.contains(&a.state))
                .filter_map(|a| a.app.as_ref().map(|x| self.app_display(x)))
                .collect()
        };
        let ready = show(&[ActionState::Done]);
        let manual: Vec<String> = actions
            .iter()
            .filter(|a| a.state == ActionState::Waiting)
            .filter_map(|a| {
                a.app
                    .as_ref()
                    .map(|x| format!("{} (task #{} for IT)", self.app_display(x), a.id))
            })
            .collect();
        let failed = show(&[ActionState::Failed]);
        let already: Vec<String> = held
            .iter()
            .filter(|g| g.state == GrantState::Active)
            .filter(|g| !actions.iter().any(|a| a.app.as_ref() == Some(&g.app)))
            .map(|g| self.app_display(&g.app))
            .collect();
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        let mut body = vec![
            format!("- ready now: {}", list(&ready)),
            format!("- waiting for a manual step by IT: {}", list(&manual)),
        ];
        if !failed.is_empty() {
            body.push(format!(
                "- failed, IT has been told and will retry: {}",
                failed.join(", ")
            ));
        }
        if !already.is_empty() {
            body.push(format!("- already yours: {}", already.join(", ")));
        }
        let event = self
            .audit(AuditAction::OnboardingReported)
            .subject(&p.handle)
            .outcome(if manual.is_empty() && failed.is_empty() {
                AuditOutcome::Ok
            } else {
                AuditOutcome::Incomplete
            })
            .detail(format!(
                "ready: {}; manual: {}; failed: {}",
                list(&ready),
                list(&manual),
                list(&failed)
            ));
        (event, body.join("\n"))
    }

    /// After an action settled: the onboarding summary or offboarding report may be due.
    pub(super) async fn follow_up(&self, action: &Action) -> Result<()> {
        match action.op {
            ActionOp::Grant => self.maybe_report_onboarding(&action.person).await?,
            _ => {
                if self
                    .store
                    .person(&action.person)
                    .await?
                    .is_some_and(|p| p.status == PersonStatus::Offboarded)
                {
                    self.maybe_report_offboarding(&action.person).await?;
                }
            }
        }
        Ok(())
    }

    /// Works out what a move to `role` in `department` means for a person's grants.
    pub(super) async fn role_plan(
        &self,
        p: &Person,
        role: &RoleName,
        department: &str,
    ) -> Result<RolePlan> {
        let new = self.org.birthrights(role, department);
        let held = self.store.grants_of(&p.handle).await?;
        let mut plan = RolePlan::default();
        for a in &new {
            if held.iter().any(|g| &g.app == a && g.state.is_live()) {
                plan.keep.push(a.clone());
            } else {
                plan.grant.push(a.clone());
            }
        }
        for g in held {
            if new.contains(&g.app) || !g.state.is_live() {
                continue;
            }
            // A birthright still being provisioned (connector down, action queued) is
            // revoked too, or it would land once the peer returns.
            match g.source {
                GrantSource::Birthright => plan.revoke.push(g),
                GrantSource::Request(_) if g.state == GrantState::Active => plan.review.push(g),
                GrantSource::Request(_) => {}
            }
        }
        Ok(plan)
    }

    fn role_plan_text(&self, p: &Person, role: &RoleName, plan: &RolePlan) -> String {
        let list = |v: Vec<String>| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        format!(
            "Role change for {} ({}): {} → {}\n- grant: {}\n- revoke: {}\n- keep: {}\n- separately requested, flagged for review (kept): {}",
            p.name,
            p.handle,
            p.role,
            role,
            list(plan.grant.iter().map(|a| self.app_display(a)).collect()),
            list(
                plan.revoke
                    .iter()
                    .map(|g| self.app_display(&g.app))
                    .collect()
            ),
            list(plan.keep.iter().map(|a| self.app_display(a)).collect()),
            list(
                plan.review
                    .iter()
                    .map(|g| self.app_display(&g.app))
                    .collect()
            ),
        )
    }

    fn plan_buttons(id: i64) -> Vec<Button> {
        crate::core::outbox::plan_buttons(id)
    }

    /// `/role user role`: shows the plan for confirmation — to the IT admin who ran it, or,
    /// when the person's manager ran it, to the IT admins.
    pub(super) async fn role(&self, c: &Caller, user: Handle, role: RoleName) -> Result<Reply> {
        let Some(p) = self.store.person(&user).await? else {
            return Ok(Reply::text(format!(
                "There is nobody with the handle \"{user}\"."
            )));
        };
        let is_it = policy::it_admin(&self.org, &c.person).is_some();
        let is_manager = p.manager.as_ref() == Some(&c.person.handle);
        if !is_it && !is_manager {
            return self
                .refuse(
                    c,
                    "/role",
                    Some(&user),
                    None,
                    ReqRef::None,
                    "/role is for IT admins, or the person's manager.".into(),
                )
                .await;
        }
        if let Err(m) = self.role_or_suggest(&role) {
            return Ok(Reply::text(m));
        }
        if p.status != PersonStatus::Active {
            return Ok(Reply::text(format!("{} has been offboarded.", p.name)));
        }
        if p.role == role {
            return Ok(Reply::text(format!("{} is already {role}.", p.name)));
        }
        let plan = self.role_plan(&p, &role, &p.department).await?;
        // A plan about oneself always needs another IT admin.
        let alone = is_it && user != c.person.handle;
        let confirmers: Vec<Handle> = if alone {
            vec![c.person.handle.clone()]
        } else {
            self.org
                .it_admins
                .iter()
                .filter(|h| **h != user && **h != c.person.handle)
                .cloned()
                .collect()
        };
        if confirmers.is_empty() {
            return self
                .refuse(
                    c,
                    "/role",
                    Some(&user),
                    None,
                    ReqRef::None,
                    "There is no other IT admin to confirm this role change; nothing was changed."
                        .into(),
                )
                .await;
        }
        let detail = serde_json::to_string(&PlanDetail {
            role: Some(role.to_string()),
            ..PlanDetail::default()
        })
        .unwrap_or_default();
        let now = self.clock.now();
        let ev = self
            .audit(AuditAction::PlanProposed)
            .by(Self::by(c))
            .chat(c.chat_id.as_deref())
            .subject(&user)
            .detail(format!("role change to {role}"));
        let text = self.role_plan_text(&p, &role, &plan);
        // The plan and its prompts to the confirmers are one transaction (the store fills
        // the plan's id into the prompts' buttons).
        let plan_messages = if alone {
            Vec::new()
        } else {
            confirmers
                .iter()
                .map(|h| PlanMessage {
                    to: h.clone(),
                    text: vec![format!(
                        "{} asks for this role change:\n{text}",
                        c.person.name
                    )],
                    buttons: true,
                })
                .collect()
        };
        let change = Change {
            new_plan: Some(NewPlan {
                kind: PlanKind::Role,
                subject: user.clone(),
                created_by: c.person.handle.clone(),
                confirmers: confirmers.clone(),
                detail,
                created_at: now,
                due_at: None,
                preconfirmed: false,
            }),
            audit: vec![ev],
            plan_messages,
            ..Change::default()
        };
        let sent = !change.plan_messages.is_empty();
        let id = self
            .store
            .commit(change)
            .await?
            .plan
            .ok_or_else(|| ServiceError::Inconsistent("no plan id".into()))?;
        if sent {
            self.messages_committed().await;
        }
        if alone {
            return Ok(Reply {
                text,
                buttons: Self::plan_buttons(id),
                key: Some(plan_key(id)),
            });
        }
        let dir = self.directory().await?;
        Ok(Reply::text(format!(
            "{text}\nSent to {} to confirm.",
            Self::names(&dir, &confirmers)
        )))
    }

    /// `/offboard user`: shows every grant and account to remove, with Confirm and Cancel.
    pub(super) async fn offboard(
        &self,
        c: &Caller,
        user: Handle,
        reason: Option<String>,
        when_day: Option<chrono::NaiveDate>,
    ) -> Result<Reply> {
        if let Some(r) = self.it_only(c, "/offboard", Some(&user)).await? {
            return Ok(r);
        }
        let Some(p) = self.store.person(&user).await? else {
            return Ok(Reply::text(format!(
                "There is nobody with the handle \"{user}\"."
            )));
        };
        if p.status == PersonStatus::Offboarded {
            return Ok(Reply::text(format!("{} is already offboarded.", p.name)));
        }
        if user == c.person.handle {
            return Ok(Reply::text(
                "You cannot offboard yourself; ask another IT admin.",
            ));
        }
        let now = self.clock.now();
        // The last day ends in the leaver's zone (their own, else the organisation's).
        let due = when_day
            .map(|d| p.zone(&self.org).end_of_day(d))
            .filter(|e| *e > now);
        let mut text = self.offboard_plan_text(&p, reason.as_deref()).await?;
        if let (Some(d), Some(day)) = (due, when_day) {
            text.push_str(&format!(
                "\nScheduled: runs by itself at {} once confirmed; until then nothing changes.",
                self.last_day_end(c, &p, day, d)
            ));
        }
        if let Some(open) = self.open_plan(&user, PlanKind::Offboard).await? {
            // A retried /offboard (its answer lost to a crash, say) gets the plan it made,
            // never a second one; a different one waits until this one is decided.
            let same = open.due_at == due && PlanDetail::of(&open)?.reason == reason;
            let text = if same && open.created_by == c.person.handle {
                text
            } else {
                format!(
                    "An offboarding plan for {} is already open (plan #{}); Confirm or Cancel it before making another.",
                    p.name, open.id
                )
            };
            return Ok(Reply {
                text,
                buttons: Self::plan_buttons(open.id),
                key: Some(plan_key(open.id)),
            });
        }
        let detail = serde_json::to_string(&PlanDetail {
            reason,
            ..PlanDetail::default()
        })
        .unwrap_or_default();
        let ev = self
            .audit(AuditAction::PlanProposed)
            .by(Self::by(c))
            .chat(c.chat_id.as_deref())
            .subject(&user)
            .detail(match due {
                Some(d) => format!("offboarding at {}", when(d)),
                None => "offboarding".into(),
            });
        let id = self
            .store
            .create_plan(
                NewPlan {
                    kind: PlanKind::Offboard,
                    subject: user,
                    created_by: c.person.handle.clone(),
                    confirmers: vec![c.person.handle.clone()],
                    detail,
                    created_at: now,
                    due_at: due,
                    preconfirmed: false,
                },
                vec![ev],
            )
            .await?;
        Ok(Reply {
            text,
            buttons: Self::plan_buttons(id),
            key: Some(plan_key(id)),
        })
    }

    /// The plan of this kind about `who` still waiting for Confirm or Cancel, if any.
    async fn open_plan(&self, who: &Handle, kind: PlanKind) -> Result<Option<Plan>> {
        Ok(self
            .store
            .plans_of(who)
            .await?
            .into_iter()
            .find(|p| p.kind == kind && p.state == PlanState::Open))
    }

    /// Connectors where the person has (or had) an account through us.
    async fn connectors_of(&self, p: &Handle) -> Result<Vec<ConnectorName>> {
        let mut out: Vec<ConnectorName> = Vec::new();
        for g in self.store.grants_of(p).await? {
            if let Some(a) = self.org.app(&g.app)
                && !out.contains(&a.connector)
            {
                out.push(a.connector.clone());
            }
        }
        for a in self.store.actions_of(p).await? {
            if a.op == ActionOp::Grant && !out.contains(&a.connector) {
                out.push(a.connector.clone());
            }
        }
        Ok(out)
    }

    async fn offboard_plan_text(&self, p: &Person, reason: Option<&str>) -> Result<String> {
        let grants = self.grants_not_gone(&p.handle).await?;
        let mut lines = vec![format!(
            "Offboarding plan for {} ({}, {}):",
            p.name, p.handle, p.email
        )];
        if let Some(r) = reason {
            lines.push(format!("Reason: {r}"));
        }
        lines.push("Access to revoke:".into());
        if grants.is_empty() {
            lines.push("- none recorded".into());
        }
        for g in &grants {
            let (conn, ent) = self
                .org
                .app(&g.app)
                .map_or((String::from("?"), String::from("?")), |a| {
                    (a.connector.to_string(), a.entitlement.clone())
                });
            lines.push(format!(
                "- {} (connector {conn}, entitlement {ent}){}",
                self.app_display(&g.app),
                match g.state {
                    GrantState::Revoking =>
                        " — an earlier removal was not seen to finish; removed again",
                    GrantState::Failed => " — its set-up failed; removed in case part of it took",
                    _ => "",
                }
            ));
        }
        let conns: Vec<String> = self
            .connectors_of(&p.handle)
            .await?
            .iter()
            .map(ToString::to_string)
            .collect();
        lines.push(format!(
            "Accounts to disable: {}",
            if conns.is_empty() {
                "none".into()
            } else {
                conns.join(", ")
            }
        ));
        let open: Vec<String> = self
            .store
            .requests_by(&p.handle)
            .await?
            .iter()
            .filter(|r| r.state.is_open())
            .map(|r| format!("#{} {}", r.id, self.app_display(&r.app)))
            .collect();
        if !open.is_empty() {
            lines.push(format!("Pending requests to cancel: {}", open.join(", ")));
        }
        Ok(lines.join("\n"))
    }

    /// Confirm or Cancel on a plan: only its confirmers, only once. Someone with no part in
    /// the plan learns nothing about it (not even whether it exists).
    pub(super) async fn close_plan(&self, c: &Caller, id: i64, confirm: bool) -> Result<Reply> {
        let plan = self.store.plan(id).await?;
        let me = &c.person.handle;
        let Some(plan) = plan.filter(|p| {
            p.confirmers.contains(me) || &p.created_by == me || p.decided_by.as_ref() == Some(me)
        }) else {
            return self
                .refuse(
                    c,
                    "plan",
                    None,
                    None,
                    ReqRef::None,
                    format!("There is nothing for you to confirm or cancel on plan #{id}."),
                )
                .await;
        };
        let dir = self.directory().await?;
        if plan.state != PlanState::Open {
            // Confirmed but never carried out (a crash between the Confirm and the work):
            // the confirmer's retry carries it out, once.
            let now = self.clock.now();
            if confirm
                && plan.state == PlanState::Confirmed
                && !plan.started
                && plan.confirmers.contains(&c.person.handle)
                && plan.due_at.is_none_or(|d| d <= now)
            {
                let text = self.carry_out_plan(&Doer::caller(c), &plan, false).await?;
                return Ok(Reply::text(text.unwrap_or_else(|| {
                    format!("Plan #{id} is already being carried out.")
                })));
            }
            return Ok(Reply::text(format!(
                "Plan #{id} was already {} by {}{}.",
                plan.state.as_str(),
                plan.decided_by
                    .as_ref()
                    .map_or_else(|| "someone".into(), |h| Self::name_of(&dir, h)),
                plan.decided_at
                    .map(|t| format!(" at {}", self.when_to(c, t)))
                    .unwrap_or_default()
            )));
        }
        let allowed = plan.confirmers.contains(&c.person.handle)
            || (!confirm && plan.created_by == c.person.handle);
        // A plan about oneself is confirmed by someone else (also a plan stored before this
        // rule, with its subject among the confirmers).
        if confirm && plan.subject == c.person.handle {
            return self
                .refuse(
                    c,
                    "plan",
                    Some(&plan.subject),
                    None,
                    ReqRef::None,
                    format!("Plan #{id} is about you: another IT admin must confirm it."),
                )
                .await;
        }
        if !allowed {
            let why = format!(
                "Only {} can confirm or cancel plan #{id}.",
                Self::names(&dir, &plan.confirmers)
            );
            return self
                .refuse(c, "plan", Some(&plan.subject), None, ReqRef::None, why)
                .await;
        }
        let now = self.clock.now();
        let state = if confirm {
            PlanState::Confirmed
        } else {
            PlanState::Cancelled
        };
        let ev = self
            .audit(if confirm {
                AuditAction::PlanConfirmed
            } else {
                AuditAction::PlanCancelled
            })
            .by(Self::by(c))
            .chat(c.chat_id.as_deref())
            .subject(&plan.subject)
            .detail(format!("{} plan #{id}", plan.kind.as_str()));
        let verdict = format!(
            "{} by {} at {}.",
            if confirm { "Confirmed" } else { "Cancelled" },
            c.person.name,
            self.when_shared(now)
        );
        // The buttons come off the plan's messages with the decision, in its transaction.
        let edit = Outgoing::edit(
            plan_key(id),
            format!(
                "Plan #{id} ({} of {}): {verdict}",
                plan.kind.as_str(),
                Self::name_of(&dir, &plan.subject)
            ),
            Vec::new(),
        );
        if !self
            .store
            .close_plan(id, state, &c.person.handle, now, vec![ev], vec![edit])
            .await?
        {
            let again = self.store.plan(id).await?;
            let by = again.as_ref().and_then(|p| p.decided_by.clone());
            return Ok(Reply::text(format!(
                "Plan #{id} was already decided by {}.",
                by.map_or_else(|| "someone".into(), |h| Self::name_of(&dir, &h))
            )));
        }
        self.messages_committed().await;
        if !confirm {
            return Ok(Reply::text(format!(
                "Plan #{id} cancelled; nothing was changed."
            )));
        }
        if let Some(due) = plan.due_at
            && due > now
        {
            return Ok(Reply::text(format!(
                "Plan #{id} confirmed: the {} of {} runs by itself at {}.",
                if plan.kind == PlanKind::Offboard {
                    "offboarding"
                } else {
                    "change"
                },
                Self::name_of(&dir, &plan.subject),
                self.when_to(c, due)
            )));
        }
        let text = self.carry_out_plan(&Doer::caller(c), &plan, false).await?;
        Ok(Reply::text(text.unwrap_or_else(|| {
            format!("Plan #{id} is already being carried out.")
        })))
    }

    /// Carries out a confirmed plan, marking it started in the same transaction as its work
    /// (a crash before that commit leaves it to run again); None when another instance,
    /// click or tick carried it out first.
    /// With `announce`, whoever confirmed the plan is told it runs now, in the same
    /// transaction.
    pub(super) async fn carry_out_plan(
        &self,
        by: &Doer,
        plan: &Plan,
        announce: bool,
    ) -> Result<Option<String>> {
        let detail = PlanDetail::of(plan)?;
        let base = Change {
            start_plan: Some(plan.id),
            ..Change::default()
        };
        let r = match plan.kind {
            PlanKind::Offboard => {
                self.carry_out_offboarding(by, plan, detail.reason, base, announce)
                    .await
            }
            PlanKind::Onboard => {
                return Ok(Some(format!("Plan #{} needs no confirmation.", plan.id)));
            }
            PlanKind::Role => {
                let role = detail.role.as_deref().and_then(|r| RoleName::parse(r).ok());
                match role {
                    Some(role) => self.carry_out_role(by, plan, role, base, announce).await,
                    None => Err(ServiceError::Inconsistent(format!(
                        "plan {} has no role",
                        plan.id
                    ))),
                }
            }
        };
        match r {
            Ok(text) => Ok(Some(text)),
            Err(ServiceError::Store(StoreError::Conflict)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn carry_out_role(
        &self,
        by: &Doer,
        plan: &Plan,
        role: RoleName,
        base: Change,
        announce: bool,
    ) -> Result<String> {
        let Some(p) = self.store.person(&plan.subject).await? else {
            return Err(ServiceError::Inconsistent(format!(
                "no person {}",
                plan.subject
            )));
        };
        let new = Person {
            role: role.clone(),
            ..p.clone()
        };
        let (mut change, text) = self
            .move_change(by, &p, &new, Some(&plan.created_by), base)
            .await?;
        let text = format!("Done: {} is now {role}.\n{text}", p.name);
        change
            .messages
            .extend(self.running_note(plan, announce, &text));
        self.commit(change).await?;
        self.messages_committed().await;
        Ok(text)
    }

    /// "Scheduled plan #N is running now", to whoever confirmed it, when `announce` (a
    /// scheduled plan the tick runs), written with the plan's work.
    fn running_note(&self, plan: &Plan, announce: bool, text: &str) -> Option<Outgoing> {
        let h = plan.decided_by.as_ref().filter(|_| announce)?;
        Some(self.out(
            h,
            format!("Scheduled plan #{} is running now. {text}", plan.id),
            vec![],
            None,
        ))
    }

    /// Moves a person to a new record (role, department, manager…): grants the new
    /// birthrights, revokes those no longer due, flags separately requested apps for review,
    /// and tells the person, their old and new manager, whoever proposed it and IT.
    pub(super) async fn carry_out_move(
        &self,
        by: &Doer,
        old: &Person,
        new: &Person,
        proposed_by: Option<&Handle>,
        base: Change,
    ) -> Result<String> {
        let (change, text) = self.move_change(by, old, new, proposed_by, base).await?;
        self.commit(change).await?;
        self.messages_committed().await;
        Ok(text)
    }

    /// The one transaction of a move (with `base`), its messages included, and its summary.
    async fn move_change(
        &self,
        by: &Doer,
        old: &Person,
        new: &Person,
        proposed_by: Option<&Handle>,
        base: Change,
    ) -> Result<(Change, String)> {
        let work = self.role_plan(old, &new.role, &new.department).await?;
        let mut what = Vec::new();
        if old.role != new.role {
            what.push(format!("role {} → {}", old.role, new.role));
        }
        if old.department != new.department {
            what.push(format!(
                "department {} → {}",
                old.department, new.department
            ));
        }
        if old.manager != new.manager {
            what.push(format!(
                "manager {} → {}",
                old.manager.as_ref().map_or("none", |m| m.as_str()),
                new.manager.as_ref().map_or("none", |m| m.as_str())
            ));
        }
        let ev = self
            .audit(AuditAction::PersonRoleChanged)
            .by(by.actor.clone())
            .chat(by.chat.as_deref())
            .subject(&new.handle)
            .detail(if what.is_empty() {
                "record updated".to_owned()
            } else {
                what.join("; ")
            });
        // The record, the grants moved and the audit rows are one transaction (with `base`:
        // an HR event's replay record, or the plan this carries out).
        let mut change = base;
        change.person = Some(new.clone());
        change.audit.push(ev);
        self.birthright_grants(&mut change, new, &[], &work.grant);
        for g in &work.revoke {
            let mut one = Change::default();
            self.revoke_grant(
                &mut one,
                &by.actor,
                by.chat.as_deref(),
                new,
                g,
                "no longer a birthright after a role change",
            )
            .await?;
            change.grant_updates.extend(one.grant_updates);
            change.request_updates.extend(one.request_updates);
            change.new_actions.extend(one.new_actions);
            change.audit.extend(one.audit);
            if g.state == GrantState::Pending {
                // Its grant action has not run yet: it is cancelled (the revoke queued
                // above undoes anything a timed-out attempt did on the peer).
                let now = self.clock.now();
                for a in self.store.actions_for_grant(g.id).await? {
                    if a.op == ActionOp::Grant && a.state == ActionState::Pending {
                        change.action_updates.push(ActionUpdate {
                            id: a.id,
                            from: a.state,
                            state: ActionState::Failed,
                            last_error: Some(
                                "cancelled: no longer a birthright after a role change".into(),
                            ),
                            not_before: now,
                            reset_attempts: false,
                        });
                    }
                }
            }
        }
        for g in &work.review {
            change.audit.push(
                self.audit(AuditAction::GrantFlaggedForReview)
                    .by(by.actor.clone())
                    .chat(by.chat.as_deref())
                    .subject(&new.handle)
                    .app(&g.app)
                    .outcome(AuditOutcome::Review)
                    .detail("requested separately; kept after the role change"),
            );
        }
        let shown_old = Person {
            department: old.department.clone(),
            ..old.clone()
        };
        let mut text = self.role_plan_text(&shown_old, &new.role, &work);
        if old.manager != new.manager || old.department != new.department {
            text.push_str(&format!("\nChanges: {}", what.join("; ")));
        }
        let mut told: Vec<Handle> = by.handle.iter().cloned().collect();
        let mut tell = |h: &Handle| {
            if told.contains(h) {
                false
            } else {
                told.push(h.clone());
                true
            }
        };
        let mut sends: Vec<(Handle, String)> = Vec::new();
        if tell(&new.handle) {
            sends.push((
                new.handle.clone(),
                format!(
                    "Your role changed to {} (by {}).\n{text}",
                    new.role, by.name
                ),
            ));
        }
        if let Some(h) = proposed_by
            && tell(h)
        {
            sends.push((
                h.clone(),
                format!(
                    "Your role change for {} was confirmed by {}.\n{text}",
                    new.name, by.name
                ),
            ));
        }
        for m in old.manager.iter().chain(new.manager.iter()) {
            if tell(m) {
                sends.push((
                    m.clone(),
                    format!(
                        "{}'s role changed to {} (by {}).\n{text}",
                        new.name, new.role, by.name
                    ),
                ));
            }
        }
        for a in &self.org.it_admins {
            if a != &new.handle && tell(a) {
                sends.push((
                    a.clone(),
                    format!(
                        "For IT: {} moved to {} (by {}).\n{text}",
                        new.name, new.role, by.name
                    ),
                ));
            }
        }
        // Told in the move's own transaction: a crash after it cannot lose the messages.
        for (h, t) in sends {
            change.messages.push(self.out(&h, t, vec![], None));
        }
        Ok((change, text))
    }

    /// Carries out a confirmed offboarding: the person is marked offboarded, their requests
    /// are cancelled, approvals waiting on them re-routed, every grant revoked and every
    /// account disabled; the verification re-read and the report follow as actions finish.
    pub(super) async fn carry_out_offboarding(
        &self,
        by: &Doer,
        plan: &Plan,
        reason: Option<String>,
        mut base: Change,
        announce: bool,
    ) -> Result<String> {
        let Some(mut p) = self.store.person(&plan.subject).await? else {
            return Err(ServiceError::Inconsistent(format!(
                "no person {}",
                plan.subject
            )));
        };
        if p.status == PersonStatus::Offboarded {
            let text = format!("{} was already offboarded; nothing to do.", p.name);
            base.messages
                .extend(self.running_note(plan, announce, &text));
            let messages = !base.messages.is_empty();
            if !base.is_empty() {
                self.commit(base).await?;
            }
            if messages {
                self.messages_committed().await;
            }
            self.store.mark_plan_reported(plan.id).await?;
            return Ok(text);
        }
        let actor = by.actor.clone();
        let chat = by.chat.as_deref();
        let connectors = self.connectors_of(&p.handle).await?;
        p.status = PersonStatus::Offboarded;
        let ev = self
            .audit(AuditAction::PersonOffboarded)
            .by(actor.clone())
            .chat(chat)
            .subject(&p.handle)
            .detail(format!(
                "plan {}; {}",
                plan.id,
                reason.clone().unwrap_or_default()
            ));
        // Their own pending requests are cancelled (each on its own: a retry after a crash
        // finds none left open).
        for r in self.store.requests_by(&p.handle).await? {
            if r.state.is_open() {
                self.cancel_request_by(by, r, Some("requester offboarded".into()))
                    .await?;
            }
        }
        // Approvals waiting on them go to someone else.
        self.reroute_approvals_of(&p.handle).await?;
        // The status, the revocations, the disables and the plan's start are one
        // transaction: a crash before it leaves the person active and the plan to run again.
        let mut change = base;
        change.person = Some(p.clone());
        change.audit.push(ev);
        let why = reason.as_deref().unwrap_or("offboarding");
        // Every grant not yet seen gone: held, being set up, left "revoking" by a removal that
        // failed or could not be verified, or failed to set up (part of it may have taken).
        for g in self.grants_not_gone(&p.handle).await? {
            let why = match g.state {
                GrantState::Revoking => {
                    format!("{why}; again: an earlier removal was not seen to finish")
                }
                GrantState::Failed => format!("{why}; its set-up had failed"),
                _ => why.to_owned(),
            };
            let mut one = Change::default();
            self.revoke_grant(&mut one, &actor, chat, &p, &g, &why)
                .await?;
            change.grant_updates.extend(one.grant_updates);
            change.request_updates.extend(one.request_updates);
            change.new_actions.extend(one.new_actions);
            change.audit.extend(one.audit);
        }
        let now = self.clock.now();
        for conn in &connectors {
            change.new_actions.push(NewAction {
                connector: conn.clone(),
                op: ActionOp::Disable,
                person: p.handle.clone(),
                app: None,
                entitlement: None,
                grant: None,
                request: ReqRef::None,
                at: now,
            });
        }
        let n = change.new_actions.len();
        change.first_action_of = Some(plan.id);
        let text = format!(
            "Offboarding {}: {n} connector action(s) queued; every connector is then re-read to verify nothing remains, and the report follows.",
            p.name
        );
        change
            .messages
            .extend(self.running_note(plan, announce, &text));
        let messages = !change.messages.is_empty();
        self.commit(change).await?;
        if messages {
            self.messages_committed().await;
        }
        // Workers may have finished everything already; otherwise the last one reports.
        self.maybe_report_offboarding(&p.handle).await?;
        Ok(text)
    }

    /// A person's grants not yet seen gone: pending, active and revoking ones, and for each
    /// app with none of those, the newest whose set-up failed (a failure may have left part of
    /// it in place). Each app's entitlement is removed once.
    pub(super) async fn grants_not_gone(&self, p: &Handle) -> Result<Vec<Grant>> {
        let mut out = self.store.grants_of(p).await?;
        let failed: Vec<GrantId> = self
            .store
            .actions_of(p)
            .await?
            .iter()
            .filter(|a| a.op == ActionOp::Grant && a.state == ActionState::Failed)
            .filter_map(|a| a.grant)
            .collect();
        if !failed.is_empty() {
            let mut failed: Vec<Grant> = self
                .store
                .grants_by_id(&failed)
                .await?
                .into_iter()
                .filter(|g| g.state == GrantState::Failed)
                .collect();
            failed.sort_by_key(|g| std::cmp::Reverse(g.id));
            for g in failed {
                if !out.iter().any(|o| o.app == g.app) {
                    out.push(g);
                }
            }
        }
        Ok(out)
    }

    /// Every connector the catalog names, in catalog order (each is re-read after an
    /// offboarding, since a membership may exist that Quartermaster never recorded).
    fn catalog_connectors(&self) -> Vec<ConnectorName> {
        let mut out: Vec<ConnectorName> = Vec::new();
        for a in &self.org.apps {
            if !out.contains(&a.connector) {
                out.push(a.connector.clone());
            }
        }
        out
    }

    /// A connector that cannot be re-read (manual) answered a Verify: recorded as such, so
    /// the report says so instead of claiming a check.
    pub(super) async fn not_listable(&self, action: &Action) -> Result<()> {
        let now = self.clock.now();
        let ev = self
            .audit(AuditAction::OffboardingVerified)
            .subject(&action.person)
            .connector_action(action.id)
            .outcome(AuditOutcome::NotListable)
            .detail(format!(
                "connector {} cannot be re-read; IT's Done on each of its tasks is the evidence",
                action.connector
            ));
        if !self
            .commit_quietly(Change {
                action_updates: vec![ActionUpdate {
                    id: action.id,
                    from: action.state,
                    state: ActionState::Done,
                    last_error: Some(NOT_LISTABLE.into()),
                    not_before: now,
                    reset_attempts: false,
                }],
                audit: vec![ev],
                ..Change::default()
            })
            .await?
        {
            return Ok(());
        }
        self.maybe_report_offboarding(&action.person).await
    }

    /// Records what re-reading a connector found after an offboarding: leftover memberships
    /// are removed (and flagged "unrecorded" when Quartermaster never granted them), an
    /// account still enabled is disabled again.
    pub(super) async fn verified(
        &self,
        action: &Action,
        entitlements: Vec<String>,
        active_account: bool,
    ) -> Result<()> {
        let now = self.clock.now();
        let history = self.store.actions_of(&action.person).await?;
        let on_conn = |a: &&Action| a.connector == action.connector;
        let recorded = |e: &str| {
            history
                .iter()
                .filter(on_conn)
                .any(|a| a.op == ActionOp::Grant && a.entitlement.as_deref() == Some(e))
        };
        // A revoke that failed or waits for IT is already in the report; do not queue twice.
        let handled = |e: &str| {
            history.iter().filter(on_conn).any(|a| {
                a.op == ActionOp::Revoke
                    && a.entitlement.as_deref() == Some(e)
                    && matches!(
                        a.state,
                        ActionState::Failed | ActionState::Waiting | ActionState::Pending
                    )
            })
        };
        let mut change = Change::default();
        let mut found = Vec::new();
        let mut still = Vec::new();
        for e in &entitlements {
            let app = self
                .org
                .apps
                .iter()
                .find(|a| a.connector == action.connector && &a.entitlement == e)
                .map(|a| a.name.clone());
            let label = if recorded(e) {
                "still present"
            } else {
                "unrecorded"
            };
            found.push(format!("{e} ({label})"));
            if handled(e) {
                still.push(e.clone());
                continue;
            }
            let ev = self
                .audit(if label == "unrecorded" {
                    AuditAction::GrantUnrecorded
                } else {
                    AuditAction::GrantStillPresent
                })
                .subject(&action.person)
                .app(app.as_ref())
                .connector_action(action.id)
                .outcome(AuditOutcome::Flagged)
                .detail(format!(
                    "connector {}: membership of {e} found on re-reading after offboarding; removing it",
                    action.connector
                ));
            change.audit.push(ev);
            change.new_actions.push(NewAction {
                connector: action.connector.clone(),
                op: ActionOp::Revoke,
                person: action.person.clone(),
                app,
                entitlement: Some(e.clone()),
                grant: None,
                request: ReqRef::None,
                at: now,
            });
        }
        // What the re-read still found whose removal is already reported (failed, could not
        // be verified, waiting for IT): noted on the re-read, so its line never says ✔.
        change.action_updates.push(ActionUpdate {
            id: action.id,
            from: action.state,
            state: ActionState::Done,
            last_error: (!still.is_empty()).then(|| {
                format!(
                    "{STILL_PRESENT}{} (its removal is reported on its own line)",
                    still.join(", ")
                )
            }),
            not_before: now,
            reset_attempts: false,
        });
        if active_account {
            found.push("an enabled account".into());
            change.new_actions.push(NewAction {
                connector: action.connector.clone(),
                op: ActionOp::Disable,
                person: action.person.clone(),
                app: None,
                entitlement: None,
                grant: None,
                request: ReqRef::None,
                at: now,
            });
        }
        let ev = self
            .audit(AuditAction::OffboardingVerified)
            .subject(&action.person)
            .connector_action(action.id)
            .outcome(if found.is_empty() {
                AuditOutcome::Ok
            } else {
                AuditOutcome::Flagged
            })
            .detail(format!(
                "connector {}: {}",
                action.connector,
                if found.is_empty() {
                    "nothing left".to_owned()
                } else {
                    format!("found {}", found.join(", "))
                }
            ));
        change.audit.push(ev);
        if !self.commit_quietly(change).await? {
            return Ok(());
        }
        self.maybe_report_offboarding(&action.person).await
    }

    /// Gives every open step that waits on `gone` to someone else.
    async fn reroute_approvals_of(&self, gone: &Handle) -> Result<()> {
        let mut dir = self.directory().await?;
        // Seen as gone already (their status is stored with the offboarding's revocations).
        if let Some(p) = dir.get_mut(gone) {
            p.status = PersonStatus::Offboarded;
        }
        for r in self.store.open_requests().await? {
            let Some(k) = r.state.step() else { continue };
            let Some(step) = r.current_step() else {
                continue;
            };
            if !step.approvers.contains(gone) {
                continue;
            }
            let (Some(requester), Some(app)) = (dir.get(&r.requester), self.org.app(&r.app)) else {
                continue;
            };
            let mut steps = r.steps.clone();
            let rest: Vec<Handle> = step
                .approvers
                .iter()
                .filter(|h| *h != gone)
                .cloned()
                .collect();
            let mut change = Change::default();
            let state = if rest.is_empty() {
                steps[k as usize].approvers.clear();
                self.start_step(
                    &mut change,
                    &dir,
                    requester,
                    app,
                    &mut steps,
                    k,
                    r.id.into(),
                    self.clock.now(),
                    r.state,
                )
            } else {
                steps[k as usize].approvers = rest;
                r.state
            };
            change.audit.push(
                self.audit(AuditAction::StepRerouted)
                    .subject(&r.requester)
                    .app(&r.app)
                    .request(r.id)
                    .detail(format!("{gone} left")),
            );
            change.request_updates.push(RequestUpdate {
                id: r.id,
                expected_version: r.version,
                state,
                steps,
                grant: r.grant.map(GrantRef::Id),
                updated_at: self.clock.now(),
            });
            match self.commit(change).await {
                Ok(_) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
            if let Some(after) = self.store.request(r.id).await?
                && after.current_step().map(|s| &s.approvers) != Some(&step.approvers)
            {
                self.announce_step(&dir, &after).await;
            }
        }
        Ok(())
    }

    /// Once every revoke and disable of a carried-out offboarding has settled, re-reads every
    /// connector (Verify actions); once those settled too, sends the report.
    pub(super) async fn maybe_report_offboarding(&self, who: &Handle) -> Result<()> {
        let Some(plan) =
            self.store.plans_of(who).await?.into_iter().find(|p| {
                p.kind == PlanKind::Offboard && p.state == PlanState::Confirmed && p.started
            })
        else {
            return Ok(());
        };
        if plan.reported && !plan.report_open {
            return Ok(());
        }
        let all = self.store.actions_of(who).await?;
        let actions: Vec<Action> = match plan.first_action {
            Some(first) => all
                .into_iter()
                .filter(|a| a.id >= first && a.op != ActionOp::Grant)
                .collect(),
            None => Vec::new(),
        };
        if actions
            .iter()
            .any(|a| matches!(a.state, ActionState::Pending | ActionState::Running))
        {
            return Ok(());
        }
        if plan.reported {
            return self.update_offboarding_report(who, &plan, actions).await;
        }
        if !actions.iter().any(|a| a.op == ActionOp::Verify) {
            let now = self.clock.now();
            let conns = self.catalog_connectors();
            let mut change = Change::default();
            for conn in &conns {
                change.new_actions.push(NewAction {
                    connector: conn.clone(),
                    op: ActionOp::Verify,
                    person: who.clone(),
                    app: None,
                    entitlement: None,
                    grant: None,
                    request: ReqRef::None,
                    at: now,
                });
            }
            if !conns.is_empty() {
                change.audit.push(
                    self.audit(AuditAction::OffboardingVerifying)
                        .subject(who)
                        .detail(format!(
                            "plan {}: re-reading {}",
                            plan.id,
                            conns
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                );
                change.verify_plan = Some(plan.id);
                change.first_action_of = Some(plan.id);
                match self.commit(change).await {
                    Ok(_) => {}
                    // Another action's completion enqueued them a moment ago.
                    Err(StoreError::Conflict) => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
                return Ok(());
            }
        }
        self.send_offboarding_report(who, &plan, actions).await
    }

    /// Runs everything due at the clock's time: grant expiries, request expiries, reminders
    /// and escalations. Returns how many things it did.
    pub async fn tick(&self) -> Result<usize> {
        self.deliver_leftovers().await;
        let now = self.clock.now();
        let mut done = self
            .send_missing_prompts(now - chrono::TimeDelta::seconds(10))
            .await?;
        for g in self.store.grants_ending_by(now).await? {
            let Some(p) = self.store.person(&g.person).await? else {
                continue;
            };
            let mut change = Change::default();
            self.revoke_grant(
                &mut change,
                &Actor::System,
                None,
                &p,
                &g,
                "time-bound access ended",
            )
            .await?;
            change.audit.push(
                self.audit(AuditAction::GrantExpired)
                    .subject(&g.person)
                    .app(&g.app)
                    .detail(format!(
                        "ended {}",
                        g.expires_at.map_or_else(|| "-".into(), when)
                    )),
            );
            change.messages.push(self.out(
                &g.person,
                format!(
                    "Your time-bound {} access has ended and is being removed.",
                    self.app_display(&g.app)
                ),
                vec![],
                None,
            ));
            // Conditional on the grant still being active: when another instance expired it
            // first, it tells the holder, and this one neither writes nor tells.
            if !self.commit_quietly(change).await? {
                continue;
            }
            done += 1;
        }
        done += self.warn_expiring(now).await?;
        done += self.run_due_plans(now).await?;
        // An offboarding whose last step a crash cut short (its re-read not enqueued, or its
        // report not sent) goes on from where it stands.
        // One that cannot go on now must not hold up the rest of the tick.
        for plan in self.store.unreported_offboardings().await? {
            if let Err(e) = self.maybe_report_offboarding(&plan.subject).await {
                warn!(plan = plan.id, person = %plan.subject, error = %e, "offboarding not resumed");
            }
        }
        let wf = self.org.workflow;
        let dir = self.directory().await?;
        for r in self.store.open_requests().await? {
            if wf.expire_after.elapsed(r.created_at, now) {
                let Ok(next) = r.state.on(Event::Expire) else {
                    continue;
                };
                let mut change = Change::default();
                change
                    .request_updates
                    .push(RequestUpdate::to_state(&r, next, now));
                change.audit.push(
                    self.audit(AuditAction::RequestExpired)
                        .subject(&r.requester)
                        .app(&r.app)
                        .request(r.id)
                        .detail(format!("undecided after {}", wf.expire_after)),
                );
                if let Some(k) = r.state.step() {
                    let holds = self.store.grants_of(&r.requester).await.unwrap_or_default();
                    change.messages.push(Outgoing::edit(
                        step_key(r.id, k),
                        format!(
                            "{}\nExpired at {}: nobody decided in time.",
                            self.prompt_text(&dir, &r, &holds),
                            self.when_shared(now)
                        ),
                        Vec::new(),
                    ));
                }
                change.messages.push(self.out(&r.requester, format!("Your request #{} for {} expired: nobody decided within {}. Ask again if you still need it.", r.id, self.app_display(&r.app), wf.expire_after), vec![], None));
                if self.commit_quietly(change).await? {
                    done += 1;
                }
                continue;
            }
            let (RequestState::Awaiting(k), Some(step)) = (r.state, r.current_step()) else {
                continue;
            };
            let Some(started) = step.started_at else {
                continue;
            };
            if !step.escalated && wf.escalate_after.elapsed(started, now) {
                let Some(requester) = dir.get(&r.requester) else {
                    continue;
                };
                let earlier: Vec<Handle> = r.steps[..k as usize]
                    .iter()
                    .filter_map(|s| s.decision.as_ref().map(|d| d.by.clone()))
                    .collect();
                let extra = policy::escalation_targets(
                    &self.org,
                    &dir,
                    &step.approvers,
                    requester,
                    &earlier,
                );
                let mut steps = r.steps.clone();
                steps[k as usize].escalated = true;
                steps[k as usize].reminded = true;
                steps[k as usize].approvers.extend(extra.iter().cloned());
                let mut change = Change::default();
                change.request_updates.push(RequestUpdate::with_steps(
                    &r,
                    r.state,
                    steps.clone(),
                    now,
                ));
                change.audit.push(
                    self.audit(AuditAction::StepEscalated)
                        .subject(&r.requester)
                        .app(&r.app)
                        .request(r.id)
                        .detail(format!(
                            "step {} after {}: to {}",
                            k + 1,
                            wf.escalate_after,
                            Self::names(&dir, &extra)
                        )),
                );
                let mut shown = r.clone();
                shown.steps = steps;
                let holds = self.store.grants_of(&r.requester).await.unwrap_or_default();
                let text = format!(
                    "Escalated to you: nobody decided within {}.\n{}",
                    wf.escalate_after,
                    self.prompt_text(&dir, &shown, &holds)
                );
                let buttons = decision_buttons(r.id, k);
                for h in &extra {
                    change.messages.push(self.out(
                        h,
                        text.clone(),
                        buttons.clone(),
                        Some(step_key(r.id, k)),
                    ));
                }
                if self.commit_quietly(change).await? {
                    done += 1;
                }
            } else if !step.reminded && wf.remind_after.elapsed(started, now) {
                let mut steps = r.steps.clone();
                steps[k as usize].reminded = true;
                let mut change = Change::default();
                change
                    .request_updates
                    .push(RequestUpdate::with_steps(&r, r.state, steps, now));
                change.audit.push(
                    self.audit(AuditAction::StepReminded)
                        .subject(&r.requester)
                        .app(&r.app)
                        .request(r.id)
                        .detail(format!("step {} waiting since {}", k + 1, when(started))),
                );
                for h in &step.approvers {
                    let since = self.when_for(h, started).await;
                    change.messages.push(self.out(h, format!("Reminder: request #{} ({} asks for {}) is waiting for your decision since {since}. Use /approvals or the buttons on the original message.", r.id, Self::name_of(&dir, &r.requester), self.app_display(&r.app)), vec![], None));
                }
                if self.commit_quietly(change).await? {
                    done += 1;
                }
            }
        }
        Ok(done)
    }

    /// Warns holders of time-bound grants before the end — 24 h before, or a quarter of the
    /// duration before for shorter grants — with an Extend button.
    async fn warn_expiring(&self, now: Timestamp) -> Result<usize> {
        let mut done = 0;
        for g in self.store.unwarned_expiring_grants().await? {
            let Some(end) = g.expires_at else { continue };
            let start = g.granted_at.unwrap_or(end);
            let lead = ((end - start) / 4).min(chrono::TimeDelta::hours(24));
            let from = end.checked_sub_signed(lead).unwrap_or(end);
            if now < from || now >= end {
                continue;
            }
            let ends_at = self.when_for(&g.person, end).await;
            let change = Change {
                grant_updates: vec![GrantUpdate {
                    id: g.id,
                    from: g.state,
                    state: g.state,
                    granted_at: g.granted_at,
                    expires_at: g.expires_at,
                    warned: true,
                }],
                audit: vec![
                    self.audit(AuditAction::GrantExpiryWarned)
                        .subject(&g.person)
                        .app(&g.app)
                        .detail(format!("ends {}", when(end))),
                ],
                messages: vec![self.out(
                    &g.person,
                format!(
                    "Your {} access ends at {ends_at}. Click Extend to ask for more time (it goes through the usual approvals).",
                    self.app_display(&g.app),
                ),
                    vec![Button {
                        label: ButtonLabel::Extend,
                        custom_id: ClickTarget::Extend(g.id).to_string(),
                    }],
                    None,
                )],
                ..Change::default()
            };
            if !self.commit_quietly(change).await? {
                continue;
            }
            done += 1;
        }
        Ok(done)
    }

    /// Carries out confirmed plans whose time has come (a scheduled last day), once.
    async fn run_due_plans(&self, now: Timestamp) -> Result<usize> {
        let mut done = 0;
        for plan in self.store.due_plans(now).await? {
            done += usize::from(self.run_plan(&plan).await?);
        }
        Ok(done)
    }

    /// Runs a confirmed plan that is due and was not carried out; true if this call did.
    async fn run_plan(&self, plan: &Plan) -> Result<bool> {
        if plan.kind == PlanKind::Onboard {
            return Ok(false);
        }
        let detail = PlanDetail::of(plan)?;
        let by = if detail.hr {
            Doer::hr()
        } else {
            Doer::system()
        };
        // Whoever confirmed it is told, in the plan's own transaction.
        Ok(self.carry_out_plan(&by, plan, true).await?.is_some())
    }

    /// Runs the confirmed, due plans about a person that were not carried out (after a
    /// crash cut their intake short); how many ran.
    pub(super) async fn run_plans_of(&self, who: &Handle) -> Result<usize> {
        let now = self.clock.now();
        let mut done = 0;
        for plan in self.store.plans_of(who).await? {
            if plan.state == PlanState::Confirmed
                && !plan.started
                && plan.due_at.is_none_or(|d| d <= now)
            {
                done += usize::from(self.run_plan(&plan).await?);
            }
        }
        Ok(done)
    }

    /// Commits (with the messages the change writes, then delivered); a conflict (another
    /// instance or click got there first) is not an error.
    pub(super) async fn commit_quietly(&self, change: Change) -> Result<bool> {
        let messages = !change.messages.is_empty();
        match self.commit(change).await {
            Ok(_) => {
                if messages {
                    self.messages_committed().await;
                }
                Ok(true)
            }
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

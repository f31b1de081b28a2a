//! Joiners, movers and leavers (`/onboard`, `/role`, `/offboard` and their plans), grant
//! extensions, and the timers (`tick`): expiries, reminders, escalations.

use serde::{Deserialize, Serialize};

use super::*;

/// Detail stored with a plan.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PlanDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// A role change worked out as a diff of grants.
#[derive(Debug, Default)]
pub(super) struct RolePlan {
    grant: Vec<AppName>,
    revoke: Vec<Grant>,
    review: Vec<Grant>,
    keep: Vec<AppName>,
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
        Err(match policy::did_you_mean(role.as_str(), names) {
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
        if let Some(other) = dir
            .values()
            .find(|p| p.email == email && p.handle != handle)
        {
            return Ok(Reply::text(format!(
                "{email} already belongs to {} ({}).",
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
        };
        let verb = if existing.is_some() {
            "updated"
        } else {
            "created"
        };
        let ev = self.event(
            Self::by(c),
            c.chat_id.as_deref(),
            "person.onboarded",
            Some(&handle),
            None,
            ReqRef::None,
            "ok",
            format!("{verb}; role {}", person.role),
        );
        match self.store.upsert_person(&person, vec![ev]).await {
            Ok(()) => {}
            Err(StoreError::Duplicate(what)) => {
                return Ok(Reply::text(format!(
                    "Could not onboard {}: {what} is already used by someone else.",
                    person.name
                )));
            }
            Err(e) => return Err(e.into()),
        }
        let held = self.store.grants_of(&handle).await?;
        let apps = self.org.birthrights(&person.role, &person.department);
        let mut change = Change::default();
        self.birthright_grants(&mut change, &person, &held, &apps);
        let queued: Vec<String> = change
            .new_grants
            .iter()
            .map(|g| self.app_display(&g.app))
            .collect();
        if !change.is_empty() {
            self.store.commit(change).await?;
        }
        let list = if queued.is_empty() {
            "nothing new".to_owned()
        } else {
            queued.join(", ")
        };
        let welcome = format!(
            "Welcome to {}, {}! Your access is being set up: {list}. You will hear when each is ready.",
            self.org.name, person.name
        );
        self.notify(&handle, welcome, vec![], None).await;
        if let Some(m) = &person.manager {
            self.notify(
                m,
                format!(
                    "{} ({}) was onboarded as {}; being set up: {list}.",
                    person.name, handle, person.role
                ),
                vec![],
                None,
            )
            .await;
        }
        Ok(Reply::text(format!(
            "{} ({handle}) {verb} as {}; birthright apps being set up: {list}.",
            person.name, person.role
        )))
    }

    /// Works out what a move to `role` means for a person's grants.
    pub(super) async fn role_plan(&self, p: &Person, role: &RoleName) -> Result<RolePlan> {
        let new = self.org.birthrights(role, &p.department);
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
            if new.contains(&g.app) || g.state != GrantState::Active {
                continue;
            }
            match g.source {
                GrantSource::Birthright => plan.revoke.push(g),
                GrantSource::Request(_) => plan.review.push(g),
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
        vec![
            Button {
                label: ButtonLabel::Confirm,
                custom_id: ClickTarget::Confirm(id).to_string(),
            },
            Button {
                label: ButtonLabel::Cancel,
                custom_id: ClickTarget::Cancel(id).to_string(),
            },
        ]
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
        let plan = self.role_plan(&p, &role).await?;
        let confirmers: Vec<Handle> = if is_it {
            vec![c.person.handle.clone()]
        } else {
            self.org
                .it_admins
                .iter()
                .filter(|h| **h != user && **h != c.person.handle)
                .cloned()
                .collect()
        };
        let detail = serde_json::to_string(&PlanDetail {
            role: Some(role.to_string()),
            reason: None,
        })
        .unwrap_or_default();
        let now = self.clock.now();
        let ev = self.event(
            Self::by(c),
            c.chat_id.as_deref(),
            "plan.proposed",
            Some(&user),
            None,
            ReqRef::None,
            "ok",
            format!("role change to {role}"),
        );
        let id = self
            .store
            .create_plan(
                NewPlan {
                    kind: PlanKind::Role,
                    subject: user.clone(),
                    created_by: c.person.handle.clone(),
                    confirmers: confirmers.clone(),
                    detail,
                    created_at: now,
                },
                vec![ev],
            )
            .await?;
        let text = self.role_plan_text(&p, &role, &plan);
        if is_it {
            return Ok(Reply {
                text,
                buttons: Self::plan_buttons(id),
                key: Some(plan_key(id)),
            });
        }
        for h in &confirmers {
            self.notify(
                h,
                format!("{} asks for this role change:\n{text}", c.person.name),
                Self::plan_buttons(id),
                Some(plan_key(id)),
            )
            .await;
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
        if let Some(d) = when_day {
            let end = d.and_hms_opt(23, 59, 59).map(|t| t.and_utc());
            if end.is_some_and(|e| e > now) {
                return Ok(Reply::text(format!(
                    "Scheduling an offboarding for {d} is not supported yet; run /offboard on the day (without when:) to do it at once."
                )));
            }
        }
        let text = self.offboard_plan_text(&p, reason.as_deref()).await?;
        let detail = serde_json::to_string(&PlanDetail { role: None, reason }).unwrap_or_default();
        let ev = self.event(
            Self::by(c),
            c.chat_id.as_deref(),
            "plan.proposed",
            Some(&user),
            None,
            ReqRef::None,
            "ok",
            "offboarding",
        );
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
        let grants = self.store.grants_of(&p.handle).await?;
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
                "- {} (connector {conn}, entitlement {ent})",
                self.app_display(&g.app)
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

    /// Confirm or Cancel on a plan: only its confirmers, only once.
    pub(super) async fn close_plan(&self, c: &Caller, id: i64, confirm: bool) -> Result<Reply> {
        let Some(plan) = self.store.plan(id).await? else {
            return Ok(Reply::text(format!("Plan #{id} does not exist.")));
        };
        let dir = self.directory().await?;
        if plan.state != PlanState::Open {
            return Ok(Reply::text(format!(
                "Plan #{id} was already {} by {}{}.",
                plan.state.as_str(),
                plan.decided_by
                    .as_ref()
                    .map_or_else(|| "someone".into(), |h| Self::name_of(&dir, h)),
                plan.decided_at
                    .map(|t| format!(" at {}", when(t)))
                    .unwrap_or_default()
            )));
        }
        let allowed = plan.confirmers.contains(&c.person.handle)
            || (!confirm && plan.created_by == c.person.handle);
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
        let ev = self.event(
            Self::by(c),
            c.chat_id.as_deref(),
            if confirm {
                "plan.confirmed"
            } else {
                "plan.cancelled"
            },
            Some(&plan.subject),
            None,
            ReqRef::None,
            "ok",
            format!("{} plan #{id}", plan.kind.as_str()),
        );
        if !self
            .store
            .close_plan(id, state, &c.person.handle, now, vec![ev])
            .await?
        {
            let again = self.store.plan(id).await?;
            let by = again.as_ref().and_then(|p| p.decided_by.clone());
            return Ok(Reply::text(format!(
                "Plan #{id} was already decided by {}.",
                by.map_or_else(|| "someone".into(), |h| Self::name_of(&dir, &h))
            )));
        }
        let verdict = format!(
            "{} by {} at {}.",
            if confirm { "Confirmed" } else { "Cancelled" },
            c.person.name,
            when(now)
        );
        self.edit(
            plan_key(id),
            format!(
                "Plan #{id} ({} of {}): {verdict}",
                plan.kind.as_str(),
                Self::name_of(&dir, &plan.subject)
            ),
        )
        .await;
        if !confirm {
            return Ok(Reply::text(format!(
                "Plan #{id} cancelled; nothing was changed."
            )));
        }
        let detail: PlanDetail = serde_json::from_str(&plan.detail).unwrap_or_default();
        match plan.kind {
            PlanKind::Offboard => self.carry_out_offboarding(c, &plan, detail.reason).await,
            PlanKind::Role => {
                let role = detail.role.as_deref().and_then(|r| RoleName::parse(r).ok());
                match role {
                    Some(role) => self.carry_out_role(c, &plan, role).await,
                    None => Err(ServiceError::Inconsistent(format!("plan {id} has no role"))),
                }
            }
        }
    }

    async fn carry_out_role(&self, c: &Caller, plan: &Plan, role: RoleName) -> Result<Reply> {
        let Some(mut p) = self.store.person(&plan.subject).await? else {
            return Err(ServiceError::Inconsistent(format!(
                "no person {}",
                plan.subject
            )));
        };
        let work = self.role_plan(&p, &role).await?;
        let old = p.role.clone();
        p.role = role.clone();
        let ev = self.event(
            Self::by(c),
            c.chat_id.as_deref(),
            "person.role_changed",
            Some(&p.handle),
            None,
            ReqRef::None,
            "ok",
            format!("{old} → {role}"),
        );
        self.store.upsert_person(&p, vec![ev]).await?;
        let mut change = Change::default();
        self.birthright_grants(&mut change, &p, &[], &work.grant);
        for g in &work.revoke {
            let mut one = Change::default();
            self.revoke_grant(
                &mut one,
                &Self::by(c),
                c.chat_id.as_deref(),
                &p,
                g,
                "no longer a birthright after a role change",
            )
            .await?;
            change.grant_updates.extend(one.grant_updates);
            change.request_updates.extend(one.request_updates);
            change.new_actions.extend(one.new_actions);
            change.audit.extend(one.audit);
        }
        for g in &work.review {
            change.audit.push(self.event(
                Self::by(c),
                c.chat_id.as_deref(),
                "grant.flagged_for_review",
                Some(&p.handle),
                Some(&g.app),
                ReqRef::None,
                "review",
                "requested separately; kept after the role change",
            ));
        }
        if !change.is_empty() {
            self.store.commit(change).await?;
        }
        let text = self.role_plan_text(
            &Person {
                role: old,
                ..p.clone()
            },
            &role,
            &work,
        );
        self.notify(
            &p.handle,
            format!("Your role changed to {role}.\n{text}"),
            vec![],
            None,
        )
        .await;
        if let Some(m) = &p.manager
            && m != &c.person.handle
        {
            self.notify(
                m,
                format!("{}'s role changed to {role}.\n{text}", p.name),
                vec![],
                None,
            )
            .await;
        }
        if plan.created_by != c.person.handle {
            self.notify(
                &plan.created_by,
                format!(
                    "Your role change for {} was confirmed by {}.",
                    p.name, c.person.name
                ),
                vec![],
                None,
            )
            .await;
        }
        Ok(Reply::text(format!(
            "Done: {} is now {role}.\n{text}",
            p.name
        )))
    }

    async fn carry_out_offboarding(
        &self,
        c: &Caller,
        plan: &Plan,
        reason: Option<String>,
    ) -> Result<Reply> {
        let Some(mut p) = self.store.person(&plan.subject).await? else {
            return Err(ServiceError::Inconsistent(format!(
                "no person {}",
                plan.subject
            )));
        };
        let actor = Self::by(c);
        let chat = c.chat_id.as_deref();
        let connectors = self.connectors_of(&p.handle).await?;
        p.status = PersonStatus::Offboarded;
        let ev = self.event(
            actor.clone(),
            chat,
            "person.offboarded",
            Some(&p.handle),
            None,
            ReqRef::None,
            "ok",
            reason.clone().unwrap_or_default(),
        );
        self.store.upsert_person(&p, vec![ev]).await?;
        // Their own pending requests are cancelled.
        for r in self.store.requests_by(&p.handle).await? {
            if r.state.is_open() {
                self.cancel_request(c, r, Some("requester offboarded".into()))
                    .await?;
            }
        }
        // Approvals waiting on them go to someone else.
        self.reroute_approvals_of(&p.handle).await?;
        let mut change = Change::default();
        let why = reason.as_deref().unwrap_or("offboarding");
        for g in self.store.grants_of(&p.handle).await? {
            if g.state.is_live() {
                let mut one = Change::default();
                self.revoke_grant(&mut one, &actor, chat, &p, &g, why)
                    .await?;
                change.grant_updates.extend(one.grant_updates);
                change.request_updates.extend(one.request_updates);
                change.new_actions.extend(one.new_actions);
                change.audit.extend(one.audit);
            }
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
        if !change.is_empty() {
            let done = self.store.commit(change).await?;
            if let Some(first) = done.actions.first() {
                self.store.set_plan_first_action(plan.id, *first).await?;
            }
        }
        // Workers may have finished everything already; otherwise the last one reports.
        self.maybe_report_offboarding(&p.handle).await?;
        Ok(Reply::text(format!(
            "Offboarding {}: {n} connector action(s) queued; the report follows when they finish.",
            p.name
        )))
    }

    /// Gives every open step that waits on `gone` to someone else.
    async fn reroute_approvals_of(&self, gone: &Handle) -> Result<()> {
        let dir = self.directory().await?;
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
            change.audit.push(self.event(
                Actor::System,
                None,
                "step.rerouted",
                Some(&r.requester),
                Some(&r.app),
                r.id.into(),
                "ok",
                format!("{gone} left"),
            ));
            change.request_updates.push(RequestUpdate {
                id: r.id,
                expected_version: r.version,
                state,
                steps,
                grant: r.grant.map(GrantRef::Id),
                updated_at: self.clock.now(),
            });
            match self.store.commit(change).await {
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

    /// Sends the offboarding report once every action of the confirmed plan has finished.
    pub(super) async fn maybe_report_offboarding(&self, who: &Handle) -> Result<()> {
        let Some(plan) = self
            .store
            .plans_of(who)
            .await?
            .into_iter()
            .find(|p| p.kind == PlanKind::Offboard && p.state == PlanState::Confirmed)
        else {
            return Ok(());
        };
        if plan.reported {
            return Ok(());
        }
        let Some(first) = plan.first_action else {
            // Confirmed with nothing to do (or still being carried out): report only when the
            // person had nothing recorded.
            if !self.store.grants_of(who).await?.is_empty() {
                return Ok(());
            }
            return self.send_offboarding_report(who, &plan, Vec::new()).await;
        };
        let actions: Vec<Action> = self
            .store
            .actions_of(who)
            .await?
            .into_iter()
            .filter(|a| a.id >= first && a.op != ActionOp::Grant)
            .collect();
        if actions
            .iter()
            .any(|a| matches!(a.state, ActionState::Pending | ActionState::Running))
        {
            return Ok(());
        }
        self.send_offboarding_report(who, &plan, actions).await
    }

    /// Sends the report (once) to whoever confirmed the plan, and to IT when anything failed.
    async fn send_offboarding_report(
        &self,
        who: &Handle,
        plan: &Plan,
        actions: Vec<Action>,
    ) -> Result<()> {
        if !self.store.mark_plan_reported(plan.id).await? {
            return Ok(());
        }
        let dir = self.directory().await?;
        let mut lines = vec![format!(
            "Offboarding report for {} (plan #{}, confirmed by {} at {}):",
            Self::name_of(&dir, who),
            plan.id,
            plan.decided_by
                .as_ref()
                .map_or_else(|| "-".into(), |h| Self::name_of(&dir, h)),
            plan.decided_at.map_or_else(|| "-".into(), when)
        )];
        let mut problems = 0;
        for a in &actions {
            let what = match (&a.app, a.op) {
                (Some(app), _) => format!(
                    "{} (connector {}, entitlement {})",
                    self.app_display(app),
                    a.connector,
                    a.entitlement.as_deref().unwrap_or("-")
                ),
                (None, _) => format!("{} account", a.connector),
            };
            let verdict = match a.state {
                ActionState::Done if a.op == ActionOp::Disable => "disabled ✔".to_owned(),
                ActionState::Done => "revoked ✔".to_owned(),
                ActionState::Waiting => {
                    problems += 1;
                    format!("⚠ waiting for IT (task #{})", a.id)
                }
                _ => {
                    problems += 1;
                    format!(
                        "✖ FAILED: {} — IT must act",
                        a.last_error.as_deref().unwrap_or("unknown error")
                    )
                }
            };
            lines.push(format!("- {what}: {verdict}"));
        }
        if actions.is_empty() {
            lines.push("- nothing was recorded for this person".into());
        }
        lines.push(if problems == 0 {
            "Everything is removed.".into()
        } else {
            format!("{problems} item(s) need IT.")
        });
        let text = lines.join("\n");
        self.store
            .commit(Change {
                audit: vec![self.event(
                    Actor::System,
                    None,
                    "offboarding.reported",
                    Some(who),
                    None,
                    ReqRef::None,
                    if problems == 0 { "ok" } else { "incomplete" },
                    format!(
                        "plan {}: {} action(s), {problems} problem(s)",
                        plan.id,
                        actions.len()
                    ),
                )],
                ..Change::default()
            })
            .await?;
        let mut to = vec![plan.decided_by.clone().unwrap_or(plan.created_by.clone())];
        if problems > 0 {
            to.extend(self.org.it_admins.iter().cloned());
        }
        to.dedup();
        for h in to {
            self.notify(&h, text.clone(), vec![], None).await;
        }
        Ok(())
    }

    /// Extend on an expiry warning: the holder asks for the same app again.
    pub(super) async fn extend(&self, c: &Caller, g: GrantId) -> Result<Reply> {
        let Some(grant) = self.store.grant(g).await? else {
            return Ok(Reply::text("That access no longer exists."));
        };
        if grant.person != c.person.handle {
            return self
                .refuse(
                    c,
                    "extend",
                    Some(&grant.person),
                    Some(&grant.app),
                    ReqRef::None,
                    "Only the holder can extend their access.".into(),
                )
                .await;
        }
        self.request(c, grant.app.as_str(), Some("extension".into()), None)
            .await
    }

    /// Runs everything due at the clock's time: grant expiries, request expiries, reminders
    /// and escalations. Returns how many things it did.
    pub async fn tick(&self) -> Result<usize> {
        let now = self.clock.now();
        let mut done = 0;
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
            change.audit.push(self.event(
                Actor::System,
                None,
                "grant.expired",
                Some(&g.person),
                Some(&g.app),
                ReqRef::None,
                "ok",
                format!("ended {}", g.expires_at.map_or_else(|| "-".into(), when)),
            ));
            match self.store.commit(change).await {
                Ok(_) => done += 1,
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
            self.notify(
                &g.person,
                format!(
                    "Your time-bound {} access has ended and is being removed.",
                    self.app_display(&g.app)
                ),
                vec![],
                None,
            )
            .await;
        }
        let wf = self.org.workflow;
        let dir = self.directory().await?;
        for r in self.store.open_requests().await? {
            if r.created_at + wf.expire_after.as_chrono() <= now {
                let Ok(next) = r.state.on(Event::Expire) else {
                    continue;
                };
                let mut change = Change::default();
                change.request_updates.push(RequestUpdate {
                    id: r.id,
                    expected_version: r.version,
                    state: next,
                    steps: r.steps.clone(),
                    grant: r.grant.map(GrantRef::Id),
                    updated_at: now,
                });
                change.audit.push(self.event(
                    Actor::System,
                    None,
                    "request.expired",
                    Some(&r.requester),
                    Some(&r.app),
                    r.id.into(),
                    "ok",
                    format!("undecided after {}", wf.expire_after),
                ));
                if self.commit_quietly(change).await? {
                    done += 1;
                    if let Some(k) = r.state.step() {
                        let holds = self.store.grants_of(&r.requester).await.unwrap_or_default();
                        self.edit(
                            step_key(r.id, k),
                            format!(
                                "{}\nExpired at {}: nobody decided in time.",
                                self.prompt_text(&dir, &r, &holds),
                                when(now)
                            ),
                        )
                        .await;
                    }
                    self.notify(&r.requester, format!("Your request #{} for {} expired: nobody decided within {}. Ask again if you still need it.", r.id, self.app_display(&r.app), wf.expire_after), vec![], None).await;
                }
                continue;
            }
            let (RequestState::Awaiting(k), Some(step)) = (r.state, r.current_step()) else {
                continue;
            };
            let Some(started) = step.started_at else {
                continue;
            };
            if !step.escalated && started + wf.escalate_after.as_chrono() <= now {
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
                change.request_updates.push(RequestUpdate {
                    id: r.id,
                    expected_version: r.version,
                    state: r.state,
                    steps: steps.clone(),
                    grant: r.grant.map(GrantRef::Id),
                    updated_at: now,
                });
                change.audit.push(self.event(
                    Actor::System,
                    None,
                    "step.escalated",
                    Some(&r.requester),
                    Some(&r.app),
                    r.id.into(),
                    "ok",
                    format!(
                        "step {} after {}: to {}",
                        k + 1,
                        wf.escalate_after,
                        Self::names(&dir, &extra)
                    ),
                ));
                if self.commit_quietly(change).await? {
                    done += 1;
                    let mut shown = r.clone();
                    shown.steps = steps;
                    let holds = self.store.grants_of(&r.requester).await.unwrap_or_default();
                    let text = format!(
                        "Escalated to you: nobody decided within {}.\n{}",
                        wf.escalate_after,
                        self.prompt_text(&dir, &shown, &holds)
                    );
                    let buttons = vec![
                        Button {
                            label: ButtonLabel::Approve,
                            custom_id: ClickTarget::Approve(r.id, k).to_string(),
                        },
                        Button {
                            label: ButtonLabel::Deny,
                            custom_id: ClickTarget::Deny(r.id, k).to_string(),
                        },
                    ];
                    for h in &extra {
                        self.notify(h, text.clone(), buttons.clone(), Some(step_key(r.id, k)))
                            .await;
                    }
                }
            } else if !step.reminded && started + wf.remind_after.as_chrono() <= now {
                let mut steps = r.steps.clone();
                steps[k as usize].reminded = true;
                let mut change = Change::default();
                change.request_updates.push(RequestUpdate {
                    id: r.id,
                    expected_version: r.version,
                    state: r.state,
                    steps,
                    grant: r.grant.map(GrantRef::Id),
                    updated_at: now,
                });
                change.audit.push(self.event(
                    Actor::System,
                    None,
                    "step.reminded",
                    Some(&r.requester),
                    Some(&r.app),
                    r.id.into(),
                    "ok",
                    format!("step {} waiting since {}", k + 1, when(started)),
                ));
                if self.commit_quietly(change).await? {
                    done += 1;
                    for h in &step.approvers {
                        self.notify(h, format!("Reminder: request #{} ({} asks for {}) is waiting for your decision since {}. Use /approvals or the buttons on the original message.", r.id, Self::name_of(&dir, &r.requester), self.app_display(&r.app), when(started)), vec![], None).await;
                    }
                }
            }
        }
        if done > 0 {
            self.work.notify_waiters();
        }
        Ok(done)
    }

    /// Commits; a conflict (another instance or click got there first) is not an error.
    async fn commit_quietly(&self, change: Change) -> Result<bool> {
        match self.store.commit(change).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

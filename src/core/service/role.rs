//! `/role` and every other move (HR changes, imports): the plan as a diff of grants, and the
//! move carried out in one transaction with its messages.

use super::lifecycle::{Initiator, PlanDetail, RolePlan, add_revocation, refused};
use super::*;
use crate::core::render::lifecycle::PlanRefusal;
use crate::core::render::lifecycle::people::{self, Told};
use crate::core::render::lifecycle::plans::{self, MoveSummary, PlanResult, RoleSummary};

impl Service {
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

    /// A role change as shown to its confirmers and its people, apps by name.
    fn role_summary(&self, p: &Person, role: &RoleName, plan: &RolePlan) -> RoleSummary {
        let apps = |v: &[AppName]| v.iter().map(|a| self.app_display(a)).collect();
        let grants = |v: &[Grant]| v.iter().map(|g| self.app_display(&g.app)).collect();
        RoleSummary {
            name: p.name.clone(),
            handle: p.handle.clone(),
            from: p.role.clone(),
            to: role.clone(),
            grant: apps(&plan.grant),
            revoke: grants(&plan.revoke),
            keep: apps(&plan.keep),
            review: grants(&plan.review),
        }
    }

    /// `/role user role`: shows the plan for confirmation — to the IT admin who ran it, or,
    /// when the person's manager ran it, to the IT admins.
    pub(super) async fn role(&self, c: &Caller, user: Handle, role: RoleName) -> Result<Reply> {
        let Some(p) = self.store.person(&user).await? else {
            return Ok(refused(&PlanRefusal::NoSuchPerson(user)));
        };
        let is_it = policy::it_admin(&self.org, &c.person).is_some();
        let is_manager = p.manager.as_ref() == Some(&c.person.handle);
        if !is_it && !is_manager {
            return self
                .refuse_plan(c, "/role", Some(&user), &PlanRefusal::RoleNotAllowed)
                .await;
        }
        if let Err(r) = self.role_or_suggest(&role) {
            return Ok(refused(&r));
        }
        if p.status != PersonStatus::Active {
            return Ok(refused(&PlanRefusal::Offboarded(p.name)));
        }
        if p.role == role {
            return Ok(refused(&PlanRefusal::AlreadyRole { name: p.name, role }));
        }
        let plan = self.role_plan(&p, &role, &p.department).await?;
        // A plan about oneself always needs another IT admin.
        let alone = is_it && user != c.person.handle;
        let confirmers = self.role_confirmers(c, &user, alone);
        if confirmers.is_empty() {
            return self
                .refuse_plan(c, "/role", Some(&user), &PlanRefusal::NoOtherConfirmer)
                .await;
        }
        let text = plans::role_summary(&self.role_summary(&p, &role, &plan));
        let id = self
            .propose_role_change(c, &user, &role, &text, alone, &confirmers)
            .await?;
        if alone {
            return Ok(Self::plan_reply(text, id));
        }
        let dir = self.directory().await?;
        Ok(Reply::text(people::role_sent(
            &text,
            &Self::names(&dir, &confirmers),
        )))
    }

    /// Who confirms a role change of `user` asked by `c`: `c` alone (an IT admin about
    /// someone else), else every other IT admin but the subject.
    fn role_confirmers(&self, c: &Caller, user: &Handle, alone: bool) -> Vec<Handle> {
        if alone {
            return vec![c.person.handle.clone()];
        }
        self.org
            .it_admins
            .iter()
            .filter(|h| *h != user && **h != c.person.handle)
            .cloned()
            .collect()
    }

    /// Stores the role-change plan with its audit row and, unless `c` confirms it alone,
    /// its prompts to the confirmers, in one transaction; the plan's id.
    async fn propose_role_change(
        &self,
        c: &Caller,
        user: &Handle,
        role: &RoleName,
        text: &str,
        alone: bool,
        confirmers: &[Handle],
    ) -> Result<PlanId> {
        let detail = PlanDetail {
            role: Some(role.to_string()),
            ..PlanDetail::default()
        }
        .stored();
        let now = self.clock.now();
        let ev = self
            .audit(AuditAction::PlanProposed)
            .by(Self::by(c))
            .chat(c.chat_id.as_deref())
            .subject(user)
            .detail(format!("role change to {role}"));
        // The plan and its prompts to the confirmers are one transaction (the store fills
        // the plan's id into the prompts' buttons).
        let plan_messages = if alone {
            Vec::new()
        } else {
            confirmers
                .iter()
                .map(|h| PlanMessage {
                    to: h.clone(),
                    text: vec![people::role_asked(&c.person.name, text)],
                    buttons: true,
                })
                .collect()
        };
        let change = Change {
            new_plan: Some(NewPlan {
                kind: PlanKind::Role,
                subject: user.clone(),
                created_by: c.person.handle.clone(),
                confirmers: confirmers.to_vec(),
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
        Ok(id)
    }

    /// Carries out a confirmed role-change plan: the move, and whoever confirmed a scheduled
    /// one told it runs now.
    pub(super) async fn carry_out_role(
        &self,
        by: &Initiator,
        plan: &Plan,
        role: RoleName,
        base: Change,
        announce: bool,
    ) -> Result<PlanResult> {
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
        let (mut change, summary) = self
            .move_change(by, &p, &new, Some(&plan.created_by), base)
            .await?;
        let done = PlanResult::RoleChanged {
            name: p.name.clone(),
            role,
            summary: Box::new(summary),
        };
        change
            .messages
            .extend(self.running_note(plan, announce, &done));
        self.commit(change).await?;
        self.messages_committed().await;
        Ok(done)
    }

    /// Moves a person to a new record (role, department, manager…): grants the new
    /// birthrights, revokes those no longer due, flags separately requested apps for review,
    /// and tells the person, their old and new manager, whoever proposed it and IT.
    pub(super) async fn carry_out_move(
        &self,
        by: &Initiator,
        old: &Person,
        new: &Person,
        proposed_by: Option<&Handle>,
        base: Change,
    ) -> Result<MoveSummary> {
        let (change, summary) = self.move_change(by, old, new, proposed_by, base).await?;
        self.commit(change).await?;
        self.messages_committed().await;
        Ok(summary)
    }

    /// The one transaction of a move (with `base`), its messages included, and its summary.
    async fn move_change(
        &self,
        by: &Initiator,
        old: &Person,
        new: &Person,
        proposed_by: Option<&Handle>,
        base: Change,
    ) -> Result<(Change, MoveSummary)> {
        let work = self.role_plan(old, &new.role, &new.department).await?;
        let what = plans::move_changes(old, new);
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
        self.move_grants(&mut change, by, new, &work).await?;
        let shown_old = Person {
            department: old.department.clone(),
            ..old.clone()
        };
        let summary = MoveSummary {
            plan: self.role_summary(&shown_old, &new.role, &work),
            changes: (old.manager != new.manager || old.department != new.department)
                .then_some(what),
        };
        let text = plans::move_summary(&summary);
        // Told in the move's own transaction: a crash after it cannot lose the messages.
        for (h, to) in self.move_news(by, old, new, proposed_by) {
            let t = people::move_news(to, new, &by.name, &text);
            change.messages.push(self.out(&h, t, vec![], None));
        }
        Ok((change, summary))
    }

    /// Adds a move's grants to `change`: the new birthrights, the removal of those no longer
    /// due (a pending one's grant action cancelled), and the review flags.
    async fn move_grants(
        &self,
        change: &mut Change,
        by: &Initiator,
        new: &Person,
        work: &RolePlan,
    ) -> Result<()> {
        self.birthright_grants(change, new, &[], &work.grant);
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
            add_revocation(change, one);
            if g.state == GrantState::Pending {
                self.cancel_grant_actions(change, g).await?;
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
        Ok(())
    }

    /// A pending birthright's grant action has not run yet: it is cancelled (the revoke
    /// queued with it undoes anything a timed-out attempt did on the peer).
    async fn cancel_grant_actions(&self, change: &mut Change, g: &Grant) -> Result<()> {
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
        Ok(())
    }

    /// Who is told of a move, once each and never whoever carried it out: the person,
    /// whoever proposed it, their old and new manager, and IT.
    fn move_news(
        &self,
        by: &Initiator,
        old: &Person,
        new: &Person,
        proposed_by: Option<&Handle>,
    ) -> Vec<(Handle, Told)> {
        let mut told: Vec<Handle> = by.handle.iter().cloned().collect();
        let mut tell = |h: &Handle| {
            if told.contains(h) {
                false
            } else {
                told.push(h.clone());
                true
            }
        };
        let mut sends: Vec<(Handle, Told)> = Vec::new();
        if tell(&new.handle) {
            sends.push((new.handle.clone(), Told::Person));
        }
        if let Some(h) = proposed_by
            && tell(h)
        {
            sends.push((h.clone(), Told::Proposer));
        }
        for m in old.manager.iter().chain(new.manager.iter()) {
            if tell(m) {
                sends.push((m.clone(), Told::Manager));
            }
        }
        for a in &self.org.it_admins {
            if a != &new.handle && tell(a) {
                sends.push((a.clone(), Told::It));
            }
        }
        sends
    }
}

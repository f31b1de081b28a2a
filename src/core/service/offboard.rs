//! `/offboard`: the plan (every grant and account to remove), and the offboarding carried
//! out once confirmed: requests cancelled, approvals re-routed, grants revoked, accounts disabled.

use super::lifecycle::{Initiator, PlanDetail, add_revocation, refused};
use super::*;
use crate::core::render::lifecycle::plans::{self, OffboardGrant, OffboardPlan, PlanResult};
use crate::core::render::lifecycle::{PlanRefusal, refusal};

impl Service {
    /// `/offboard user` by an IT admin: shows every grant and account to remove, with Confirm
    /// and Cancel.
    pub(super) async fn offboard(
        &self,
        _admin: &policy::ItAdmin,
        c: &Caller,
        user: Handle,
        reason: Option<String>,
        when_day: Option<chrono::NaiveDate>,
    ) -> Result<Reply> {
        let Some(p) = self.store.person(&user).await? else {
            return Ok(refused(&PlanRefusal::NoSuchPerson(user)));
        };
        if p.status == PersonStatus::Offboarded {
            return Ok(refused(&PlanRefusal::AlreadyOffboarded(p.name)));
        }
        if user == c.person.handle {
            return Ok(refused(&PlanRefusal::OffboardSelf));
        }
        let now = self.clock.now();
        // The last day ends in the leaver's zone (their own, else the organisation's).
        let due = when_day
            .map(|d| p.zone(&self.org).end_of_day(d))
            .filter(|e| *e > now);
        let mut shown = self.offboard_plan(&p, reason.clone()).await?;
        if let (Some(d), Some(day)) = (due, when_day) {
            shown.scheduled = Some(self.last_day_end(c, &p, day, d));
        }
        let text = plans::offboard_plan(&shown);
        if let Some(open) = self.open_plan(&user, PlanKind::Offboard).await? {
            // A retried /offboard (its answer lost to a crash, say) gets the plan it made,
            // never a second one; a different one waits until this one is decided.
            let same = open.due_at == due && PlanDetail::of(&open)?.reason == reason;
            let text = if same && open.created_by == c.person.handle {
                text
            } else {
                refusal::text(&PlanRefusal::PlanOpen {
                    name: p.name,
                    id: open.id,
                })
            };
            return Ok(Self::plan_reply(text, open.id));
        }
        let id = self.propose_offboarding(c, user, reason, due, now).await?;
        Ok(Self::plan_reply(text, id))
    }

    /// Stores an offboarding plan (its only confirmer is `c`) with its audit row; its id.
    async fn propose_offboarding(
        &self,
        c: &Caller,
        user: Handle,
        reason: Option<String>,
        due: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<PlanId> {
        let detail = PlanDetail {
            reason,
            ..PlanDetail::default()
        }
        .stored();
        let ev = self
            .audit(AuditAction::PlanProposed)
            .by(Self::by(c))
            .chat(c.chat_id.as_deref())
            .subject(&user)
            .detail(match due {
                Some(d) => format!("offboarding at {}", when(d)),
                None => "offboarding".into(),
            });
        Ok(self
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
            .await?)
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

    /// The offboarding plan as shown for Confirm: every grant to revoke, every account to
    /// disable and every pending request to cancel.
    pub(super) async fn offboard_plan(
        &self,
        p: &Person,
        reason: Option<String>,
    ) -> Result<OffboardPlan> {
        let grants = self
            .grants_not_gone(&p.handle)
            .await?
            .iter()
            .map(|g| {
                let app = self.org.app(&g.app);
                OffboardGrant {
                    app: self.app_display(&g.app),
                    connector: app.map(|a| a.connector.to_string()),
                    entitlement: app.map(|a| a.entitlement.clone()),
                    state: g.state,
                }
            })
            .collect();
        let accounts = self
            .connectors_of(&p.handle)
            .await?
            .iter()
            .map(ToString::to_string)
            .collect();
        let pending = self
            .store
            .requests_by(&p.handle)
            .await?
            .iter()
            .filter(|r| r.state.is_open())
            .map(|r| (r.id, self.app_display(&r.app)))
            .collect();
        Ok(OffboardPlan {
            name: p.name.clone(),
            handle: p.handle.clone(),
            email: p.email.clone(),
            reason,
            grants,
            accounts,
            pending,
            scheduled: None,
        })
    }

    /// Carries out a confirmed offboarding: the person is marked offboarded, their requests
    /// are cancelled, approvals waiting on them re-routed, every grant revoked and every
    /// account disabled; the verification re-read and the report follow as actions finish.
    pub(super) async fn carry_out_offboarding(
        &self,
        by: &Initiator,
        plan: &Plan,
        reason: Option<String>,
        base: Change,
        announce: bool,
    ) -> Result<PlanResult> {
        let Some(mut p) = self.store.person(&plan.subject).await? else {
            return Err(ServiceError::Inconsistent(format!(
                "no person {}",
                plan.subject
            )));
        };
        if p.status == PersonStatus::Offboarded {
            return self.already_offboarded(&p, plan, base, announce).await;
        }
        let connectors = self.connectors_of(&p.handle).await?;
        p.status = PersonStatus::Offboarded;
        let ev = self
            .audit(AuditAction::PersonOffboarded)
            .by(by.actor.clone())
            .chat(by.chat.as_deref())
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
                self.cancel_request_by(by, r, Some(plans::REQUESTER_OFFBOARDED.into()))
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
        self.revoke_everything(
            &mut change,
            by,
            &p,
            reason.as_deref().unwrap_or("offboarding"),
        )
        .await?;
        self.disable_accounts(&mut change, &p.handle, &connectors);
        let n = change.new_actions.len();
        change.first_action_of = Some(plan.id);
        let done = PlanResult::Offboarding {
            name: p.name.clone(),
            actions: n,
        };
        change
            .messages
            .extend(self.running_note(plan, announce, &done));
        let messages = !change.messages.is_empty();
        self.commit(change).await?;
        if messages {
            self.messages_committed().await;
        }
        // Workers may have finished everything already; otherwise the last one reports.
        self.maybe_report_offboarding(&p.handle).await?;
        Ok(done)
    }

    /// A plan about someone already offboarded: nothing to do but start it (with `base`),
    /// say so, and mark it reported.
    async fn already_offboarded(
        &self,
        p: &Person,
        plan: &Plan,
        mut base: Change,
        announce: bool,
    ) -> Result<PlanResult> {
        let done = PlanResult::AlreadyOffboarded(p.name.clone());
        base.messages
            .extend(self.running_note(plan, announce, &done));
        let messages = !base.messages.is_empty();
        if !base.is_empty() {
            self.commit(base).await?;
        }
        if messages {
            self.messages_committed().await;
        }
        self.store.mark_plan_reported(plan.id).await?;
        Ok(done)
    }

    /// Adds the removal of every grant of `p` not yet seen gone to `change`: held, being set
    /// up, left "revoking" by a removal that failed or could not be verified, or failed to set
    /// up (part of it may have taken).
    async fn revoke_everything(
        &self,
        change: &mut Change,
        by: &Initiator,
        p: &Person,
        why: &str,
    ) -> Result<()> {
        for g in self.grants_not_gone(&p.handle).await? {
            let why = match g.state {
                GrantState::Revoking => {
                    format!("{why}; again: an earlier removal was not seen to finish")
                }
                GrantState::Failed => format!("{why}; its set-up had failed"),
                _ => why.to_owned(),
            };
            let mut one = Change::default();
            self.revoke_grant(&mut one, &by.actor, by.chat.as_deref(), p, &g, &why)
                .await?;
            add_revocation(change, one);
        }
        Ok(())
    }

    /// Queues the disabling of `who`'s account on each of `connectors`.
    fn disable_accounts(&self, change: &mut Change, who: &Handle, connectors: &[ConnectorName]) {
        let now = self.clock.now();
        for conn in connectors {
            change.new_actions.push(NewAction {
                connector: conn.clone(),
                op: ActionOp::Disable,
                person: who.clone(),
                app: None,
                entitlement: None,
                grant: None,
                request: ReqRef::None,
                at: now,
            });
        }
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
}

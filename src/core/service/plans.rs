//! Plans (offboardings, role changes) after they are proposed: Confirm and Cancel, carrying
//! one out once, and running the confirmed ones whose time has come.

use super::lifecycle::{Initiator, PlanDetail, refused};
use super::*;
use crate::core::render::lifecycle::PlanRefusal;
use crate::core::render::lifecycle::plans::{self, PlanClosed, PlanResult};

impl Service {
    /// The Confirm and Cancel buttons of plan `id`.
    pub(super) fn plan_buttons(id: PlanId) -> Vec<Button> {
        crate::core::outbox::plan_buttons(id)
    }

    /// A reply showing plan `id` with its Confirm and Cancel buttons.
    pub(super) fn plan_reply(text: String, id: PlanId) -> Reply {
        Reply {
            text,
            buttons: Self::plan_buttons(id),
            key: Some(plan_key(id)),
            form: None,
        }
    }

    /// The plan of this kind about `who` still waiting for Confirm or Cancel, if any.
    pub(super) async fn open_plan(&self, who: &Handle, kind: PlanKind) -> Result<Option<Plan>> {
        Ok(self
            .store
            .plans_of(who)
            .await?
            .into_iter()
            .find(|p| p.kind == kind && p.state == PlanState::Open))
    }

    /// Confirm or Cancel on a plan: only its confirmers, only once. Someone with no part in
    /// the plan learns nothing about it (not even whether it exists).
    pub(super) async fn close_plan(&self, c: &Caller, id: PlanId, confirm: bool) -> Result<Reply> {
        let plan = self.store.plan(id).await?;
        let me = &c.person.handle;
        let Some(plan) = plan.filter(|p| {
            p.confirmers.contains(me) || &p.created_by == me || p.decided_by.as_ref() == Some(me)
        }) else {
            return self
                .refuse_plan(c, "plan", None, &PlanRefusal::NotYours(id))
                .await;
        };
        let dir = self.directory().await?;
        if plan.state != PlanState::Open {
            return self.plan_already_closed(c, &plan, &dir, confirm).await;
        }
        if let Some(why) = Self::may_not_close(c, &plan, &dir, confirm) {
            return self.refuse_plan(c, "plan", Some(&plan.subject), &why).await;
        }
        let now = self.clock.now();
        if !self
            .write_plan_decision(c, &plan, &dir, confirm, now)
            .await?
        {
            let again = self.store.plan(id).await?;
            let by = again.as_ref().and_then(|p| p.decided_by.clone());
            return Ok(refused(&PlanRefusal::DecidedFirst {
                id,
                by: by.map(|h| Self::name_of(&dir, &h)),
            }));
        }
        self.messages_committed().await;
        if !confirm {
            return Ok(closed_reply(&PlanClosed::Cancelled(id)));
        }
        if let Some(due) = plan.due_at
            && due > now
        {
            return Ok(closed_reply(&PlanClosed::Scheduled {
                id,
                kind: plan.kind,
                subject: Self::name_of(&dir, &plan.subject),
                at: self.when_to(c, due),
            }));
        }
        self.carry_out_confirmed(c, &plan).await
    }

    /// Carries out a plan `c` confirmed, answering whoever got there first.
    async fn carry_out_confirmed(&self, c: &Caller, plan: &Plan) -> Result<Reply> {
        let done = self
            .carry_out_plan(&Initiator::caller(c), plan, false)
            .await?;
        Ok(closed_reply(&done.map_or(
            PlanClosed::AlreadyRunning(plan.id),
            PlanClosed::Done,
        )))
    }

    /// A click on a plan already decided: a confirmer's retry carries out a confirmed plan
    /// a crash left undone; anyone else is told who decided it.
    async fn plan_already_closed(
        &self,
        c: &Caller,
        plan: &Plan,
        dir: &PeopleByHandle,
        confirm: bool,
    ) -> Result<Reply> {
        // Confirmed but never carried out (a crash between the Confirm and the work):
        // the confirmer's retry carries it out, once.
        let now = self.clock.now();
        if confirm
            && plan.state == PlanState::Confirmed
            && !plan.started
            && plan.confirmers.contains(&c.person.handle)
            && plan.due_at.is_none_or(|d| d <= now)
        {
            return self.carry_out_confirmed(c, plan).await;
        }
        Ok(refused(&PlanRefusal::AlreadyClosed {
            id: plan.id,
            state: plan.state,
            by: plan.decided_by.as_ref().map(|h| Self::name_of(dir, h)),
            at: plan.decided_at.map(|t| self.when_to(c, t)),
        }))
    }

    /// Why `c` may not confirm (or cancel) an open plan, if so.
    fn may_not_close(
        c: &Caller,
        plan: &Plan,
        dir: &PeopleByHandle,
        confirm: bool,
    ) -> Option<PlanRefusal> {
        let id = plan.id;
        let allowed = plan.confirmers.contains(&c.person.handle)
            || (!confirm && plan.created_by == c.person.handle);
        // A plan about oneself is confirmed by someone else (also a plan stored before this
        // rule, with its subject among the confirmers).
        if confirm && plan.subject == c.person.handle {
            return Some(PlanRefusal::AboutYou(id));
        }
        (!allowed).then(|| PlanRefusal::NotConfirmer {
            id,
            confirmers: Self::names(dir, &plan.confirmers),
        })
    }

    /// Writes the Confirm or Cancel, conditional on the plan still being open, with its
    /// audit row and the buttons taken off its messages; false when someone decided first.
    async fn write_plan_decision(
        &self,
        c: &Caller,
        plan: &Plan,
        dir: &PeopleByHandle,
        confirm: bool,
        now: Timestamp,
    ) -> Result<bool> {
        let id = plan.id;
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
        let mut audit = vec![ev];
        super::step_up::mark_stepped_up(&mut audit);
        // The buttons come off the plan's messages with the decision, in its transaction.
        let edit = Outgoing::edit(
            plan_key(id),
            plans::decided(
                id,
                plan.kind,
                &Self::name_of(dir, &plan.subject),
                confirm,
                &c.person.name,
                &self.when_shared(now),
            ),
            Vec::new(),
        );
        Ok(self
            .store
            .close_plan(id, state, &c.person.handle, now, audit, vec![edit])
            .await?)
    }

    /// Carries out a confirmed plan, marking it started in the same transaction as its work
    /// (a crash before that commit leaves it to run again); None when another instance,
    /// click or tick carried it out first.
    /// With `announce`, whoever confirmed the plan is told it runs now, in the same
    /// transaction.
    pub(super) async fn carry_out_plan(
        &self,
        by: &Initiator,
        plan: &Plan,
        announce: bool,
    ) -> Result<Option<PlanResult>> {
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
            PlanKind::Onboard => match detail.scim_id {
                // A joiner the identity provider sent, confirmed by IT.
                Some(id) => self.carry_out_scim_joiner(by, plan, &id, base).await,
                None => return Ok(Some(PlanResult::NeedsNoConfirmation(plan.id))),
            },
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
            Ok(done) => Ok(Some(done)),
            Err(ServiceError::Store(StoreError::Conflict)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// "Scheduled plan #N is running now", to whoever confirmed it, when `announce` (a
    /// scheduled plan the tick runs), written with the plan's work.
    pub(super) fn running_note(
        &self,
        plan: &Plan,
        announce: bool,
        done: &PlanResult,
    ) -> Option<Outgoing> {
        let h = plan.decided_by.as_ref().filter(|_| announce)?;
        let text = plans::running_now(plan.id, &plans::result(done));
        Some(self.out(h, text, vec![], None))
    }

    /// Carries out confirmed plans whose time has come (a scheduled last day), once.
    pub(super) async fn run_due_plans(&self, now: Timestamp) -> Result<usize> {
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
            Initiator::hr()
        } else if detail.idp {
            Initiator::idp()
        } else {
            Initiator::system()
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
}

/// The answer to a Confirm or Cancel that went through.
fn closed_reply(c: &PlanClosed) -> Reply {
    Reply::text(plans::closed(c))
}

//! Plans (offboardings, role changes) after they are proposed: Confirm and Cancel, carrying
//! one out once, and running the confirmed ones whose time has come.

use super::lifecycle::{Doer, PlanDetail};
use super::*;

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
            return self.plan_already_closed(c, &plan, &dir, confirm).await;
        }
        if let Some(why) = Self::may_not_close(c, &plan, &dir, confirm) {
            return self
                .refuse(c, "plan", Some(&plan.subject), None, ReqRef::None, why)
                .await;
        }
        let now = self.clock.now();
        if !self
            .write_plan_decision(c, &plan, &dir, confirm, now)
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
        self.carry_out_confirmed(c, &plan).await
    }

    /// Carries out a plan `c` confirmed, answering whoever got there first.
    async fn carry_out_confirmed(&self, c: &Caller, plan: &Plan) -> Result<Reply> {
        let text = self.carry_out_plan(&Doer::caller(c), plan, false).await?;
        Ok(Reply::text(text.unwrap_or_else(|| {
            format!("Plan #{} is already being carried out.", plan.id)
        })))
    }

    /// A click on a plan already decided: a confirmer's retry carries out a confirmed plan
    /// a crash left undone; anyone else is told who decided it.
    async fn plan_already_closed(
        &self,
        c: &Caller,
        plan: &Plan,
        dir: &Directory,
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
        Ok(Reply::text(format!(
            "Plan #{} was already {} by {}{}.",
            plan.id,
            plan.state.as_str(),
            plan.decided_by
                .as_ref()
                .map_or_else(|| "someone".into(), |h| Self::name_of(dir, h)),
            plan.decided_at
                .map(|t| format!(" at {}", self.when_to(c, t)))
                .unwrap_or_default()
        )))
    }

    /// Why `c` may not confirm (or cancel) an open plan, if so.
    fn may_not_close(c: &Caller, plan: &Plan, dir: &Directory, confirm: bool) -> Option<String> {
        let id = plan.id;
        let allowed = plan.confirmers.contains(&c.person.handle)
            || (!confirm && plan.created_by == c.person.handle);
        // A plan about oneself is confirmed by someone else (also a plan stored before this
        // rule, with its subject among the confirmers).
        if confirm && plan.subject == c.person.handle {
            return Some(format!(
                "Plan #{id} is about you: another IT admin must confirm it."
            ));
        }
        (!allowed).then(|| {
            format!(
                "Only {} can confirm or cancel plan #{id}.",
                Self::names(dir, &plan.confirmers)
            )
        })
    }

    /// Writes the Confirm or Cancel, conditional on the plan still being open, with its
    /// audit row and the buttons taken off its messages; false when someone decided first.
    async fn write_plan_decision(
        &self,
        c: &Caller,
        plan: &Plan,
        dir: &Directory,
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
                Self::name_of(dir, &plan.subject)
            ),
            Vec::new(),
        );
        Ok(self
            .store
            .close_plan(id, state, &c.person.handle, now, vec![ev], vec![edit])
            .await?)
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

    /// "Scheduled plan #N is running now", to whoever confirmed it, when `announce` (a
    /// scheduled plan the tick runs), written with the plan's work.
    pub(super) fn running_note(&self, plan: &Plan, announce: bool, text: &str) -> Option<Outgoing> {
        let h = plan.decided_by.as_ref().filter(|_| announce)?;
        Some(self.out(
            h,
            format!("Scheduled plan #{} is running now. {text}", plan.id),
            vec![],
            None,
        ))
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
}

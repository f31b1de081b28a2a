//! The welcome summary: once every action of a joiner's onboarding has settled, what is
//! ready, what waits for IT and what failed, to the joiner and their manager.

use super::lifecycle::PlanDetail;
use super::*;
use crate::core::render::lifecycle::reports;

impl Service {
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
        let settled = self.settled_onboardings(who).await?;
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
        let mut out = Vec::new();
        for (plan, actions) in &settled {
            let Some(p) = people.get(&plan.subject) else {
                continue;
            };
            let held: Vec<&Grant> = grants.iter().filter(|g| g.person == p.handle).collect();
            let (event, body) = self.onboarding_report(p, actions, &held);
            audit.push(event);
            out.extend(self.welcome_messages(p, &body));
        }
        // The welcome messages are written with the audit rows that mark the reports sent.
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

    /// The unreported onboarding plans of `who` whose grant actions have all settled, each
    /// with those actions.
    async fn settled_onboardings(&self, who: &[Handle]) -> Result<Vec<(Plan, Vec<Action>)>> {
        // One read after every batch of grants; the full look below runs for settled plans.
        let plans = self.store.onboarding_plans_settled(who).await?;
        if plans.is_empty() {
            return Ok(Vec::new());
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
        Ok(settled)
    }

    /// The welcome summary to the joiner, and to their manager.
    fn welcome_messages(&self, p: &Person, body: &str) -> Vec<Outgoing> {
        let mut out = vec![self.out(
            &p.handle,
            reports::welcome(&self.org.name, p, body),
            vec![],
            None,
        )];
        if let Some(m) = &p.manager {
            out.push(self.out(m, reports::welcome_manager(p, body), vec![], None));
        }
        out
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
        let r = reports::OnboardingReport {
            ready: show(&[ActionState::Done]),
            manual: actions
                .iter()
                .filter(|a| a.state == ActionState::Waiting)
                .filter_map(|a| {
                    a.app
                        .as_ref()
                        .map(|x| reports::manual_step(&self.app_display(x), a.id))
                })
                .collect(),
            failed: show(&[ActionState::Failed]),
            already: held
                .iter()
                .filter(|g| g.state == GrantState::Active)
                .filter(|g| !actions.iter().any(|a| a.app.as_ref() == Some(&g.app)))
                .map(|g| self.app_display(&g.app))
                .collect(),
        };
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        let event = self
            .audit(AuditAction::OnboardingReported)
            .subject(&p.handle)
            .outcome(if r.manual.is_empty() && r.failed.is_empty() {
                AuditOutcome::Ok
            } else {
                AuditOutcome::Incomplete
            })
            .detail(format!(
                "ready: {}; manual: {}; failed: {}",
                list(&r.ready),
                list(&r.manual),
                list(&r.failed)
            ));
        (event, reports::onboarding_body(&r))
    }
}

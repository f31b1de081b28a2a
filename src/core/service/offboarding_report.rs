//! The offboarding report: each removal as **verified gone**, **could not verify (why)** or
//! **still present / failed**. "Everything is removed" is said only when every item was seen
//! gone. A report with anything else stays open: IT's Retry (or Done) settles the item, the
//! report is edited to what is now true, and the final report goes out once.

use super::lifecycle::{NOT_LISTABLE, PlanDetail};
use super::*;
use crate::core::render::lifecycle::reports::{
    self, ConfirmedBy, ItemVerdict, ItemWhat, OffboardingReport, Tally,
};

/// One item of a report: what it is about, and how it came out.
type Item = (ItemWhat, ItemVerdict);

/// The message key of a plan's report (edited as its open items settle).
fn report_key(plan: PlanId) -> MessageKey {
    MessageKey::Report(plan)
}

impl Service {
    /// The report's items and how they came out.
    fn offboarding_items(&self, actions: &[Action], history: &[Action]) -> (Vec<Item>, Tally) {
        let mut t = Tally::default();
        let mut items = Vec::new();
        for a in actions {
            let what = self.item_what(a, history, &mut t);
            let verdict = item_verdict(a, actions, &mut t);
            items.push((what, verdict));
        }
        (items, t)
    }

    /// What one item of the report is about (a leftover found on re-reading is counted as
    /// flagged).
    fn item_what(&self, a: &Action, history: &[Action], t: &mut Tally) -> ItemWhat {
        let ent = a.entitlement.as_deref().unwrap_or("-");
        match (&a.app, a.op) {
            (_, ActionOp::Verify) => ItemWhat::Reread(a.connector.clone()),
            (_, ActionOp::Revoke) if a.grant.is_none() => {
                let recorded = history.iter().any(|h| {
                    h.op == ActionOp::Grant
                        && h.connector == a.connector
                        && h.entitlement.as_deref() == Some(ent)
                });
                t.flagged += 1;
                ItemWhat::Found {
                    recorded,
                    entitlement: ent.to_owned(),
                    connector: a.connector.clone(),
                    app: a.app.as_ref().map(|x| self.app_display(x)),
                }
            }
            (Some(app), _) => ItemWhat::App {
                app: self.app_display(app),
                connector: a.connector.clone(),
                entitlement: ent.to_owned(),
            },
            (None, _) => ItemWhat::Account(a.connector.clone()),
        }
    }

    /// A plan's report, from its actions (`updated`: the moment IT's Retry or Done settled
    /// an item again).
    async fn offboarding_report(
        &self,
        who: &Handle,
        plan: &Plan,
        detail: &PlanDetail,
        actions: &[Action],
        updated: Option<Timestamp>,
    ) -> Result<OffboardingReport> {
        let dir = self.directory().await?;
        let history = self.store.actions_of(who).await?;
        let (items, tally) = self.offboarding_items(actions, &history);
        let confirmed_by = match &plan.decided_by {
            Some(h) => ConfirmedBy::Person(Self::name_of(&dir, h)),
            None if detail.hr => ConfirmedBy::Hr,
            None if detail.idp => ConfirmedBy::Idp,
            None => ConfirmedBy::Nobody,
        };
        Ok(OffboardingReport {
            name: Self::name_of(&dir, who),
            plan: plan.id,
            confirmed_by,
            confirmed_at: plan.decided_at.map(|t| self.when_shared(t)),
            updated_at: updated.map(|t| self.when_shared(t)),
            items,
            tally,
        })
    }

    /// Who receives a plan's report: whoever confirmed it, and every IT admin when HR
    /// scheduled it, when nobody confirmed it, or when anything needs IT or was flagged.
    fn offboarding_recipients(
        &self,
        plan: &Plan,
        detail: &PlanDetail,
        it_too: bool,
    ) -> Vec<Handle> {
        let mut to: Vec<Handle> = plan.decided_by.iter().cloned().collect();
        if detail.hr || it_too || to.is_empty() {
            to.extend(self.org.it_admins.iter().cloned());
        }
        let mut seen: Vec<Handle> = Vec::new();
        for h in to {
            if !seen.contains(&h) {
                seen.push(h);
            }
        }
        seen
    }

    /// Sends the evidence report (once), app by app. It stays open when anything is not
    /// verified gone.
    pub(super) async fn send_offboarding_report(
        &self,
        who: &Handle,
        plan: &Plan,
        actions: Vec<Action>,
    ) -> Result<()> {
        let detail = PlanDetail::of(plan)?;
        let report = self
            .offboarding_report(who, plan, &detail, &actions, None)
            .await?;
        let text = reports::offboarding_report(&report);
        let t = report.tally;
        let open = t.problems() > 0;
        let messages = self
            .offboarding_recipients(plan, &detail, t.problems() > 0 || t.flagged > 0)
            .iter()
            .map(|h| self.out(h, text.clone(), vec![], Some(report_key(plan.id))))
            .collect();
        // Marked in the transaction that audits it and writes its messages: sent and
        // audited once, and a crash before the commit leaves the plan unreported rather
        // than marked without its row.
        let committed = self
            .store
            .commit(Change {
                audit: vec![
                    self.audit(AuditAction::OffboardingReported)
                        .subject(who)
                        .outcome(if t.problems() == 0 && t.flagged == 0 {
                            AuditOutcome::Ok
                        } else {
                            AuditOutcome::Incomplete
                        })
                        .detail(format!(
                            "plan {}: {} action(s), {} could not be verified, {} failed, {} waiting for IT, {} flagged{}",
                            plan.id,
                            actions.len(),
                            t.unverified,
                            t.failed,
                            t.waiting,
                            t.flagged,
                            if open { "; the report stays open" } else { "" }
                        )),
                ],
                report_plans: vec![plan.id],
                open_reports: if open { vec![plan.id] } else { Vec::new() },
                messages,
                ..Change::default()
            })
            .await;
        match committed {
            Err(StoreError::Conflict) => return Ok(()),
            other => other?,
        };
        self.messages_committed().await;
        Ok(())
    }

    /// An open report after one of its items settled again (IT's Retry or Done): the report
    /// is edited to what is now true; once every item is verified gone, the final report is
    /// audited and sent, once.
    pub(super) async fn update_offboarding_report(
        &self,
        who: &Handle,
        plan: &Plan,
        actions: Vec<Action>,
    ) -> Result<()> {
        let detail = PlanDetail::of(plan)?;
        let now = self.clock.now();
        let report = self
            .offboarding_report(who, plan, &detail, &actions, Some(now))
            .await?;
        let text = reports::offboarding_report(&report);
        let t = report.tally;
        if t.problems() > 0 {
            self.edit(report_key(plan.id), text).await;
            return Ok(());
        }
        let mut messages = vec![Outgoing::edit(
            report_key(plan.id),
            text.clone(),
            Vec::new(),
        )];
        messages.extend(
            self.offboarding_recipients(plan, &detail, true)
                .iter()
                .map(|h| self.out(h, text.clone(), vec![], None)),
        );
        let committed = self
            .store
            .commit(Change {
                audit: vec![
                    self.audit(AuditAction::OffboardingReported)
                        .subject(who)
                        .outcome(if t.flagged == 0 {
                            AuditOutcome::Ok
                        } else {
                            AuditOutcome::Flagged
                        })
                        .detail(format!(
                            "plan {}: every item verified gone after IT acted; {} action(s), {} flagged",
                            plan.id,
                            actions.len(),
                            t.flagged
                        )),
                ],
                close_report: Some(plan.id),
                messages,
                ..Change::default()
            })
            .await;
        match committed {
            // Another settling action closed it a moment ago.
            Err(StoreError::Conflict) => return Ok(()),
            other => other?,
        };
        self.messages_committed().await;
        Ok(())
    }
}

/// How one item of the report came out, counted into `t`; a re-read's line counts the
/// leftovers that follow it in `actions`.
fn item_verdict(a: &Action, actions: &[Action], t: &mut Tally) -> ItemVerdict {
    let error = a.last_error.as_deref().unwrap_or("unknown error");
    match (a.state, a.op) {
        (ActionState::Done, ActionOp::Disable) => ItemVerdict::Disabled,
        (ActionState::Done, ActionOp::Verify) if error == NOT_LISTABLE => {
            t.not_listable.push(a.connector.to_string());
            ItemVerdict::NotListable
        }
        (ActionState::Done, ActionOp::Verify) => ItemVerdict::Reread {
            still: a.last_error.clone(),
            leftovers: actions
                .iter()
                .filter(|b| {
                    b.id > a.id
                        && b.connector == a.connector
                        && b.grant.is_none()
                        && b.op != ActionOp::Verify
                })
                .count(),
        },
        (ActionState::Done, _) => ItemVerdict::Removed,
        (ActionState::Waiting, _) => {
            t.waiting += 1;
            ItemVerdict::Waiting(a.id)
        }
        (ActionState::Failed, _) if ConnectorError::is_unverified_text(error) => {
            t.unverified += 1;
            ItemVerdict::Unverified {
                error: error.to_owned(),
                op: a.op,
                action: a.id,
            }
        }
        (ActionState::Failed, _) => {
            t.failed += 1;
            ItemVerdict::Failed {
                error: error.to_owned(),
                action: a.id,
            }
        }
        (ActionState::Pending | ActionState::Running, _) => {
            t.waiting += 1;
            ItemVerdict::Running(a.id)
        }
    }
}

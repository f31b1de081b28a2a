//! The offboarding report: each removal as **verified gone**, **could not verify (why)** or
//! **still present / failed**. "Everything is removed" is said only when every item was seen
//! gone. A report with anything else stays open: IT's Retry (or Done) settles the item, the
//! report is edited to what is now true, and the final report goes out once.

use super::lifecycle::{NOT_LISTABLE, PlanDetail};
use super::*;

/// The message key of a plan's report (edited as its open items settle).
fn report_key(plan: PlanId) -> MessageKey {
    MessageKey::Report(plan)
}

/// How the items of a report came out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Tally {
    /// Items whose removal could not be verified.
    unverified: usize,
    /// Items that failed for good (still present, as far as anyone knows).
    failed: usize,
    /// Manual tasks waiting for IT.
    waiting: usize,
    /// Memberships found on re-reading (removed and flagged).
    flagged: usize,
    /// Connectors that cannot be re-read.
    not_listable: Vec<String>,
}

impl Tally {
    /// Items that keep the report open.
    fn problems(&self) -> usize {
        self.unverified + self.failed + self.waiting
    }

    /// The closing line.
    fn summary(&self) -> String {
        if self.problems() > 0 {
            let mut parts = Vec::new();
            if self.unverified > 0 {
                parts.push(format!("{} could not be verified", self.unverified));
            }
            if self.failed > 0 {
                parts.push(format!("{} failed and may still be present", self.failed));
            }
            if self.waiting > 0 {
                parts.push(format!("{} waiting for IT", self.waiting));
            }
            return format!(
                "Not everything is verified gone: {}; {} flagged. This report stays open: IT's Retry (or Done) updates it.",
                parts.join(", "),
                self.flagged
            );
        }
        let unread = if self.not_listable.is_empty() {
            String::new()
        } else {
            format!(
                " ({} cannot be re-read: IT's Done is the evidence there)",
                self.not_listable.join(", ")
            )
        };
        if self.flagged == 0 {
            format!(
                "Everything is removed, and re-reading the connectors found nothing left{unread}."
            )
        } else {
            format!(
                "Everything is removed; {} membership(s) found on re-reading were removed and are flagged for IT{unread}.",
                self.flagged
            )
        }
    }
}

impl Service {
    /// The report's lines (after its heading) and how its items came out.
    fn offboarding_items(&self, actions: &[Action], history: &[Action]) -> (Vec<String>, Tally) {
        let mut t = Tally::default();
        let mut lines = Vec::new();
        for a in actions {
            let what = self.item_what(a, history, &mut t);
            let verdict = item_verdict(a, actions, &mut t);
            lines.push(format!("- {what}: {verdict}"));
        }
        if actions.is_empty() {
            lines.push("- nothing was recorded for this person".into());
        }
        (lines, t)
    }

    /// What one item of the report is about (a leftover found on re-reading is counted as
    /// flagged).
    fn item_what(&self, a: &Action, history: &[Action], t: &mut Tally) -> String {
        let ent = a.entitlement.as_deref().unwrap_or("-");
        match (&a.app, a.op) {
            (_, ActionOp::Verify) => format!("re-read of connector {}", a.connector),
            (_, ActionOp::Revoke) if a.grant.is_none() => {
                let recorded = history.iter().any(|h| {
                    h.op == ActionOp::Grant
                        && h.connector == a.connector
                        && h.entitlement.as_deref() == Some(ent)
                });
                t.flagged += 1;
                format!(
                    "⚑ {} membership {ent} in connector {} found on re-reading{}",
                    if recorded { "leftover" } else { "UNRECORDED" },
                    a.connector,
                    a.app
                        .as_ref()
                        .map(|x| format!(" ({})", self.app_display(x)))
                        .unwrap_or_default()
                )
            }
            (Some(app), _) => format!(
                "{} (connector {}, entitlement {ent})",
                self.app_display(app),
                a.connector,
            ),
            (None, _) => format!("{} account", a.connector),
        }
    }

    /// The heading of a plan's report.
    fn offboarding_heading(
        &self,
        dir: &Directory,
        who: &Handle,
        plan: &Plan,
        detail: &PlanDetail,
    ) -> String {
        let confirmed_by = match &plan.decided_by {
            Some(h) => Self::name_of(dir, h),
            None if detail.hr => "the HR feed".into(),
            None => "-".into(),
        };
        format!(
            "Offboarding report for {} (plan #{}, confirmed by {} at {})",
            Self::name_of(dir, who),
            plan.id,
            confirmed_by,
            plan.decided_at
                .map_or_else(|| "-".into(), |t| self.when_shared(t))
        )
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
        let dir = self.directory().await?;
        let history = self.store.actions_of(who).await?;
        let (items, t) = self.offboarding_items(&actions, &history);
        let mut lines = vec![format!(
            "{}:",
            self.offboarding_heading(&dir, who, plan, &detail)
        )];
        lines.extend(items);
        lines.push(t.summary());
        let text = lines.join("\n");
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
        let dir = self.directory().await?;
        let history = self.store.actions_of(who).await?;
        let (items, t) = self.offboarding_items(&actions, &history);
        let now = self.clock.now();
        let mut lines = vec![format!(
            "{}, updated at {}:",
            self.offboarding_heading(&dir, who, plan, &detail),
            self.when_shared(now)
        )];
        lines.extend(items);
        lines.push(t.summary());
        let text = lines.join("\n");
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
fn item_verdict(a: &Action, actions: &[Action], t: &mut Tally) -> String {
    let error = a.last_error.as_deref().unwrap_or("unknown error");
    match (a.state, a.op) {
        (ActionState::Done, ActionOp::Disable) => "disabled ✔".to_owned(),
        (ActionState::Done, ActionOp::Verify) if error == NOT_LISTABLE => {
            t.not_listable.push(a.connector.to_string());
            NOT_LISTABLE.to_owned()
        }
        (ActionState::Done, ActionOp::Verify) => {
            let cleanup = actions
                .iter()
                .filter(|b| {
                    b.id > a.id
                        && b.connector == a.connector
                        && b.grant.is_none()
                        && b.op != ActionOp::Verify
                })
                .count();
            match (&a.last_error, cleanup) {
                (Some(still), 0) => format!("✖ {still}"),
                (Some(still), n) => {
                    format!("✖ {still}; {n} leftover item(s), removed below")
                }
                (None, 0) => "nothing left ✔".to_owned(),
                (None, n) => format!("{n} leftover item(s), removed below"),
            }
        }
        (ActionState::Done, _) => "removed ✔".to_owned(),
        (ActionState::Waiting, _) => {
            t.waiting += 1;
            format!("⚠ waiting for IT (task #{})", a.id)
        }
        (ActionState::Failed, _) if ConnectorError::is_unverified_text(error) => {
            t.unverified += 1;
            format!(
                "? {error} — not reported as {}; IT can Retry (action #{})",
                match a.op {
                    ActionOp::Verify => "checked",
                    ActionOp::Disable => "disabled",
                    _ => "removed",
                },
                a.id
            )
        }
        (ActionState::Failed, _) => {
            t.failed += 1;
            format!(
                "✖ FAILED: {error} — IT must act (Retry on action #{})",
                a.id
            )
        }
        (ActionState::Pending | ActionState::Running, _) => {
            t.waiting += 1;
            format!("… still running (action #{})", a.id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tally;

    #[test]
    fn everything_is_removed_only_when_nothing_is_unverified_failed_or_waiting() {
        let ok = Tally::default();
        assert!(ok.summary().starts_with("Everything is removed"));
        for t in [
            Tally {
                unverified: 1,
                ..Tally::default()
            },
            Tally {
                failed: 1,
                ..Tally::default()
            },
            Tally {
                waiting: 1,
                ..Tally::default()
            },
        ] {
            let s = t.summary();
            assert!(!s.contains("Everything is removed"), "{s}");
            assert!(s.contains("stays open"), "{s}");
        }
        let unread = Tally {
            not_listable: vec!["manual".into()],
            ..Tally::default()
        };
        assert!(
            unread
                .summary()
                .contains("manual cannot be re-read: IT's Done is the evidence there"),
            "{}",
            unread.summary()
        );
    }
}

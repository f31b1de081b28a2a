//! After an offboarding's removals settled: every connector is re-read (Verify actions), what
//! the re-reads found is recorded and removed, and the report is then due.

use super::lifecycle::{NOT_LISTABLE, STILL_PRESENT};
use super::*;

impl Service {
    /// Every connector the catalog names, in catalog order (each is re-read after an
    /// offboarding, since a membership may exist that Quartermaster never recorded).
    pub(super) fn catalog_connectors(&self) -> Vec<ConnectorName> {
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
        let mut change = Change::default();
        let (mut found, still) =
            self.remove_leftovers(&mut change, action, &history, &entitlements, now);
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
        change.audit.push(self.verified_event(action, &found));
        if !self.commit_quietly(change).await? {
            return Ok(());
        }
        self.maybe_report_offboarding(&action.person).await
    }

    /// Adds the removal of each membership a re-read found to `change`, flagged, unless its
    /// removal is already reported. Returns what was found (in words) and the memberships
    /// whose removal is already reported.
    fn remove_leftovers(
        &self,
        change: &mut Change,
        action: &Action,
        history: &[Action],
        entitlements: &[String],
        now: Timestamp,
    ) -> (Vec<String>, Vec<String>) {
        let mut found = Vec::new();
        let mut still = Vec::new();
        for e in entitlements {
            let app = self
                .org
                .apps
                .iter()
                .find(|a| a.connector == action.connector && &a.entitlement == e)
                .map(|a| a.name.clone());
            let label = if recorded(history, action, e) {
                "still present"
            } else {
                "unrecorded"
            };
            found.push(format!("{e} ({label})"));
            if removal_reported(history, action, e) {
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
        (found, still)
    }

    /// The `offboarding.verified` audit row of a re-read that found `found`.
    fn verified_event(&self, action: &Action, found: &[String]) -> AuditEvent {
        self.audit(AuditAction::OffboardingVerified)
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
            ))
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
        if !actions.iter().any(|a| a.op == ActionOp::Verify)
            && self.queue_verifies(who, &plan).await?
        {
            return Ok(());
        }
        self.send_offboarding_report(who, &plan, actions).await
    }

    /// Queues a Verify (re-read) of every catalog connector for a carried-out offboarding,
    /// with its audit row; false when the catalog has no connector (the report is due now).
    async fn queue_verifies(&self, who: &Handle, plan: &Plan) -> Result<bool> {
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
                Err(StoreError::Conflict) => return Ok(true),
                Err(e) => return Err(e.into()),
            }
            return Ok(true);
        }
        Ok(false)
    }
}

/// Whether Quartermaster ever granted entitlement `e` on the re-read connector.
fn recorded(history: &[Action], verify: &Action, e: &str) -> bool {
    history.iter().any(|a| {
        a.connector == verify.connector
            && a.op == ActionOp::Grant
            && a.entitlement.as_deref() == Some(e)
    })
}

/// Whether a removal of `e` on the re-read connector failed, waits for IT or is queued: it
/// is already in the report, and is not queued twice.
fn removal_reported(history: &[Action], verify: &Action, e: &str) -> bool {
    history.iter().any(|a| {
        a.connector == verify.connector
            && a.op == ActionOp::Revoke
            && a.entitlement.as_deref() == Some(e)
            && matches!(
                a.state,
                ActionState::Failed | ActionState::Waiting | ActionState::Pending
            )
    })
}

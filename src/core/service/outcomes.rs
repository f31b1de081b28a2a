//! What the engine reports back: each connector action's outcome recorded (a batch of
//! successes in one transaction), what it means for its grant, request and people, a retry
//! later, a task handed to IT, and the follow-up reports.

use std::time::Duration;

use super::*;
use crate::core::render::requests as render;

/// How long to wait before attempt `attempts + 1`: exponential from 2 s, capped at 10 min,
/// with up to 25 % jitter; a target's `Retry-After` wins when it is longer.
pub fn backoff(attempts: u32, retry_after: Option<Duration>, jitter_seed: u64) -> Duration {
    let base = 2u64.saturating_pow(attempts.min(20)).min(600);
    let jitter = (jitter_seed % 1000) as f64 / 1000.0 * 0.25;
    let d = Duration::from_secs_f64(base as f64 * (1.0 + jitter));
    retry_after.map_or(d, |r| r.max(d))
}

impl Service {
    /// Records what happened when the engine ran one action of a batch, and everything that
    /// follows.
    async fn record_outcome(
        &self,
        action: &Action,
        result: std::result::Result<Effect, ConnectorError>,
    ) -> Result<()> {
        let span = info_span!(
            "action",
            action_id = %action.id,
            op = action.op.as_str(),
            connector = %action.connector,
            person = %action.person,
            app = action.app.as_ref().map(|a| a.as_str()),
            request = action.request.map(|r| r.0)
        );
        async {
            match result {
                Ok(Effect::Applied) => self
                    .complete_action(action, Actor::System, None, AuditOutcome::Ok)
                    .await
                    .map(drop),
                Ok(Effect::AlreadyInState) if action.op == ActionOp::Verify => {
                    self.not_listable(action).await
                }
                Ok(Effect::AlreadyInState) => self
                    .complete_action(action, Actor::System, None, AuditOutcome::Already)
                    .await
                    .map(drop),
                Ok(Effect::Manual(task)) => self.hand_to_it(action, task).await,
                Ok(Effect::Inventory {
                    entitlements,
                    active_account,
                }) => self.verified(action, entitlements, active_account).await,
                Err(e) if e.is_retryable() && action.attempts < MAX_ATTEMPTS => {
                    self.retry_later(action, e).await
                }
                Err(e) => self.fail_action(action, e).await,
            }
        }
        .instrument(span)
        .await
    }

    /// A failure that may pass, with attempts left: the action waits (backoff, or longer
    /// when the target asked) and runs again.
    async fn retry_later(&self, action: &Action, e: ConnectorError) -> Result<()> {
        let retry_after = match &e {
            ConnectorError::RateLimited { retry_after } => *retry_after,
            _ => None,
        };
        let wait = backoff(
            action.attempts,
            retry_after,
            action.id.0 as u64 * 7919 + action.attempts as u64 * 104_729,
        );
        let now = self.clock.now();
        let ev = self
            .audit(AuditAction::ActionRetrying)
            .subject(&action.person)
            .app(action.app.as_ref())
            .request(action.request)
            .connector_action(action.id)
            .outcome(AuditOutcome::Retrying)
            .detail(format!(
                "attempt {} failed: {e}; next in {}s",
                action.attempts,
                wait.as_secs()
            ));
        let not_before = chrono::TimeDelta::from_std(wait)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(now);
        // Conditional on the action still running as claimed: if it moved
        // meanwhile, whoever moved it decides what follows.
        self.commit_quietly(Change {
            action_updates: vec![ActionUpdate {
                id: action.id,
                from: action.state,
                state: ActionState::Pending,
                last_error: Some(e.to_string()),
                not_before,
                reset_attempts: false,
            }],
            audit: vec![ev],
            ..Change::default()
        })
        .await?;
        Ok(())
    }

    /// Takes the outcomes of several connector actions at once (the engine's batch). The
    /// successes of actions outside any request (birthright grants, removals) are written
    /// in one transaction with one audit append, and each person's follow-up (an onboarding
    /// or offboarding report) is looked at once; every other outcome, and the whole batch
    /// should that transaction fail, goes through [`Service::record_outcome`] one by one.
    /// The first error is returned after every outcome has been handled.
    pub async fn actions_finished(
        &self,
        outcomes: Vec<(Action, std::result::Result<Effect, ConnectorError>)>,
    ) -> Result<()> {
        let span = info_span!("actions", count = outcomes.len());
        async {
            let (simple, mut rest): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(|(a, r)| {
                a.request.is_none()
                    && a.op != ActionOp::Verify
                    && matches!(r, Ok(Effect::Applied | Effect::AlreadyInState))
            });
            let mut first_error = None;
            if simple.len() > 1 {
                match self.complete_batch(&simple).await {
                    Ok(done) => {
                        if let Err(e) = self.after_batch(done).await {
                            first_error.get_or_insert(e);
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "batch not written; writing its actions one by one");
                        rest.extend(simple);
                    }
                }
            } else {
                rest.extend(simple);
            }
            for (a, r) in rest {
                if let Err(e) = self.record_outcome(&a, r).await {
                    warn!(action_id = %a.id, error = %e, "action outcome not recorded");
                    first_error.get_or_insert(e);
                }
            }
            first_error.map_or(Ok(()), Err)
        }
        .instrument(span)
        .await
    }

    /// Writes the successes of a batch in one transaction; what each meant for its grant is
    /// returned for [`Service::after_batch`]. Nothing is written on an error.
    async fn complete_batch(
        &self,
        batch: &[(Action, std::result::Result<Effect, ConnectorError>)],
    ) -> Result<Vec<(Action, Option<Grant>, Timestamp)>> {
        let now = self.clock.now();
        let ids: Vec<GrantId> = batch.iter().filter_map(|(a, _)| a.grant).collect();
        let grants: HashMap<GrantId, Grant> = self
            .store
            .grants_by_id(&ids)
            .await?
            .into_iter()
            .map(|g| (g.id, g))
            .collect();
        let mut change = Change::default();
        let mut done = Vec::with_capacity(batch.len());
        for (action, result) in batch {
            let outcome = match result {
                Ok(Effect::Applied) => AuditOutcome::Ok,
                _ => AuditOutcome::Already,
            };
            change
                .action_updates
                .push(ActionUpdate::done(action.id, action.state, now));
            change
                .audit
                .push(self.effect_event(action, Actor::System, None, outcome));
            let grant = action.grant.and_then(|g| grants.get(&g).cloned());
            if let Some(g) = &grant {
                if activates(action.op, g) && matches!(g.source, GrantSource::Request(_)) {
                    // A request's grant settles its request: not a batch's business.
                    return Err(ServiceError::Inconsistent(format!(
                        "action {} settles a request",
                        action.id
                    )));
                }
                change
                    .grant_updates
                    .extend(settled_grant(action.op, g, now, g.expires_at));
            }
            change.messages.extend(
                self.action_messages(action, grant.clone(), None, &Actor::System, now)
                    .await?,
            );
            done.push((action.clone(), grant, now));
        }
        self.commit(change).await?;
        self.messages_committed().await;
        Ok(done)
    }

    /// Tells people what a written batch means for them, then looks at each person's
    /// follow-up once.
    async fn after_batch(&self, done: Vec<(Action, Option<Grant>, Timestamp)>) -> Result<()> {
        let mut first_error = None;
        let mut follow: Vec<Action> = Vec::new();
        for (action, _grant, _now) in done {
            let grants = action.op == ActionOp::Grant;
            if !follow
                .iter()
                .any(|f| f.person == action.person && (f.op == ActionOp::Grant) == grants)
            {
                follow.push(action);
            }
        }
        // The joiners' onboarding reports are looked at together; the rest one by one.
        let (joiners, rest): (Vec<Action>, Vec<Action>) =
            follow.into_iter().partition(|a| a.op == ActionOp::Grant);
        let joiners: Vec<Handle> = joiners.into_iter().map(|a| a.person).collect();
        if let Err(e) = self.maybe_report_onboardings(&joiners).await {
            first_error.get_or_insert(e);
        }
        for action in &rest {
            if let Err(e) = self.follow_up(action).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The audit row of an action that took effect (or found its effect in place).
    fn effect_event(
        &self,
        action: &Action,
        actor: Actor,
        chat: Option<&str>,
        outcome: AuditOutcome,
    ) -> AuditEvent {
        // A removal the connector answered for was seen gone (a connector that cannot see it
        // answers "could not verify"); one IT marked done rests on IT's word.
        let seen = match (action.op, &actor) {
            (ActionOp::Revoke, Actor::System) => ", verified gone",
            (ActionOp::Revoke, _) => ", removed by IT (no read possible)",
            _ => "",
        };
        self.audit(AuditAction::effect(action.op))
            .by(actor)
            .chat(chat)
            .subject(&action.person)
            .app(action.app.as_ref())
            .request(action.request)
            .connector_action(action.id)
            .outcome(outcome)
            .detail(format!(
                "connector {}{}{seen}",
                action.connector,
                action
                    .entitlement
                    .as_deref()
                    .map(|e| format!(", entitlement {e}"))
                    .unwrap_or_default()
            ))
    }

    /// An action succeeded (by a connector, or by a person clicking Done), written only if
    /// the action is still in the state it was read in (`action.state`). Returns false, and
    /// tells nobody, when someone else moved it first (another click, another instance).
    pub(super) async fn complete_action(
        &self,
        action: &Action,
        actor: Actor,
        chat: Option<&str>,
        outcome: AuditOutcome,
    ) -> Result<bool> {
        let actor = &actor;
        self.retry_on_conflict(&format!("action {}", action.id), || async move {
            let now = self.clock.now();
            let mut change = Change::default();
            change
                .action_updates
                .push(ActionUpdate::done(action.id, action.state, now));
            change
                .audit
                .push(self.effect_event(action, actor.clone(), chat, outcome));
            let grant = match action.grant {
                Some(g) => self.store.grant(g).await?,
                None => None,
            };
            let mut granted_request = None;
            if let Some(g) = &grant {
                let mut expires = g.expires_at;
                // A request's grant runs from now for the request's duration, and settles it.
                if activates(action.op, g)
                    && let GrantSource::Request(rid) = g.source
                    && let Some(r) = self.store.request(rid).await?
                {
                    expires = r.duration.map(|d| self.ends(now, d));
                    if let Ok(next) = r.state.on(Event::Provisioned) {
                        change
                            .request_updates
                            .push(RequestUpdate::to_state(&r, next, now));
                        granted_request = Some(r);
                    }
                }
                // The grant row says how long it runs (the audit trail answers "until when").
                if action.op == ActionOp::Grant
                    && let Some(ev) = change.audit.first_mut()
                {
                    match expires {
                        Some(t) => ev.detail.push_str(&format!(", until {}", when(t))),
                        None => ev.detail.push_str(", no end date"),
                    }
                }
                change
                    .grant_updates
                    .extend(settled_grant(action.op, g, now, expires));
            }
            // What it means for people is written with it.
            change.messages = self
                .action_messages(action, grant, granted_request, actor, now)
                .await?;
            match self.commit(change).await {
                Ok(_) => {}
                Err(StoreError::Conflict) if self.action_moved(action).await? => {
                    return Ok(Attempt::Done(false));
                }
                Err(StoreError::Conflict) => return Ok(Attempt::Conflict),
                Err(e) => return Err(e.into()),
            }
            self.messages_committed().await;
            self.follow_up(action).await?;
            Ok(Attempt::Done(true))
        })
        .await
    }

    /// What a finished action means for people: the messages its change writes.
    async fn action_messages(
        &self,
        action: &Action,
        grant: Option<Grant>,
        granted_request: Option<Request>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Vec<Outgoing>> {
        let mut out = Vec::new();
        let dir = self
            .action_directory(action, granted_request.as_ref(), actor)
            .await?;
        let app = action
            .app
            .as_ref()
            .map(|a| self.app_display(a))
            .unwrap_or_default();
        if let Actor::Person(h) = actor {
            out.push(Outgoing::edit(
                action_key(action.id),
                render::task_finished(
                    action.id,
                    action.op,
                    &app,
                    &Self::name_of(&dir, &action.person),
                    &Self::name_of(&dir, h),
                    &self.moment_shared(now),
                ),
                Vec::new(),
            ));
        }
        let offboarded = dir
            .get(&action.person)
            .is_some_and(|p| p.status == PersonStatus::Offboarded);
        match action.op {
            ActionOp::Grant => {
                out.extend(
                    self.granted_news(action, &app, granted_request.as_ref(), &dir, now)
                        .await,
                );
            }
            ActionOp::Revoke if !offboarded && grant.is_some() => {
                out.push(self.out(&action.person, render::removed(&app), vec![], None));
            }
            _ => {}
        }
        Ok(out)
    }

    /// The people whose names a finished action's messages show. Names are shown for a
    /// person's Done, for a request's people and for a removal; a birthright grant by the
    /// engine needs none (no read on the engine's busiest path).
    async fn action_directory(
        &self,
        action: &Action,
        granted_request: Option<&Request>,
        actor: &Actor,
    ) -> Result<PeopleByHandle> {
        let mut wanted = vec![action.person.clone()];
        if let Actor::Person(h) = actor {
            wanted.push(h.clone());
        }
        if let Some(r) = granted_request {
            wanted.push(r.requester.clone());
            wanted.extend(
                r.steps
                    .iter()
                    .filter_map(|s| s.decision.as_ref().map(|d| d.by.clone())),
            );
        }
        let names_needed = matches!(actor, Actor::Person(_))
            || granted_request.is_some()
            || action.op != ActionOp::Grant;
        if names_needed {
            self.directory_of(wanted).await
        } else {
            Ok(PeopleByHandle::new())
        }
    }

    /// A grant given: the holder is told (until when, for a request's), and so is each
    /// approver of the request it settles.
    async fn granted_news(
        &self,
        action: &Action,
        app: &str,
        granted_request: Option<&Request>,
        dir: &PeopleByHandle,
        now: Timestamp,
    ) -> Vec<Outgoing> {
        let until = match granted_request.and_then(|r| r.duration) {
            Some(d) => Some(self.moment_for(&action.person, self.ends(now, d)).await),
            None => None,
        };
        let mut out = vec![self.out(
            &action.person,
            render::granted(app, until.as_ref()),
            vec![],
            None,
        )];
        let Some(r) = granted_request else {
            return out;
        };
        let mut told = vec![r.requester.clone()];
        for s in &r.steps {
            if let Some(d) = &s.decision
                && !told.contains(&d.by)
            {
                out.push(self.out(
                    &d.by,
                    render::granted_to(&Self::name_of(dir, &r.requester), app, r.id),
                    vec![],
                    None,
                ));
                told.push(d.by.clone());
            }
        }
        out
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

    /// Whether the action is no longer in the state it was read in (or is gone).
    pub(super) async fn action_moved(&self, action: &Action) -> Result<bool> {
        Ok(self
            .store
            .action(action.id)
            .await?
            .is_none_or(|a| a.state != action.state))
    }

    /// Parks an action for a person (manual connector) and posts the task to IT.
    async fn hand_to_it(&self, action: &Action, task: String) -> Result<()> {
        let now = self.clock.now();
        let ev = self
            .audit(AuditAction::ActionManual)
            .subject(&action.person)
            .app(action.app.as_ref())
            .request(action.request)
            .connector_action(action.id)
            .outcome(AuditOutcome::Waiting)
            .detail(task.clone());
        let app = action.app.as_ref().map(|a| self.app_display(a));
        let text = render::it_task(action.id, app.as_deref(), &task);
        let done = vec![Button {
            item: None,
            label: ButtonLabel::Done,
            target: ClickTarget::Done(action.id),
        }];
        let messages = self
            .org
            .it_admins
            .iter()
            .map(|a| self.out(a, text.clone(), done.clone(), Some(action_key(action.id))))
            .collect();
        let parked = self
            .commit_quietly(Change {
                action_updates: vec![ActionUpdate {
                    id: action.id,
                    from: action.state,
                    state: ActionState::Waiting,
                    last_error: None,
                    not_before: now,
                    reset_attempts: false,
                }],
                audit: vec![ev],
                messages,
                ..Change::default()
            })
            .await?;
        if !parked {
            return Ok(());
        }
        self.messages_committed().await;
        self.follow_up(action).await
    }
}

/// Whether a finished action of kind `op` activates grant `g` (a grant action on a pending
/// grant).
fn activates(op: ActionOp, g: &Grant) -> bool {
    op == ActionOp::Grant && g.state == GrantState::Pending
}

/// What a finished action of kind `op` makes of its grant, written by both the batch and
/// the one-action paths: a grant action activates a pending grant (from `now`, until
/// `expires_at`), a revoke action ends a revoking one; anything else leaves it as it is.
fn settled_grant(
    op: ActionOp,
    g: &Grant,
    now: Timestamp,
    expires_at: Option<Timestamp>,
) -> Option<GrantUpdate> {
    if activates(op, g) {
        return Some(GrantUpdate {
            id: g.id,
            from: g.state,
            state: GrantState::Active,
            granted_at: Some(now),
            expires_at,
            warned: false,
        });
    }
    (op == ActionOp::Revoke && g.state == GrantState::Revoking).then_some(GrantUpdate {
        id: g.id,
        from: g.state,
        state: GrantState::Revoked,
        granted_at: g.granted_at,
        expires_at: g.expires_at,
        warned: g.warned,
    })
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        assert!(backoff(1, None, 0) < backoff(4, None, 0));
        assert!(backoff(30, None, 999) <= Duration::from_secs(750));
        assert_eq!(
            backoff(1, Some(Duration::from_secs(60)), 0),
            Duration::from_secs(60)
        );
        assert!(backoff(3, None, 999) > backoff(3, None, 0), "jitter");
    }
}

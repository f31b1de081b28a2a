//! Connector actions and their consequences: `/revoke`, outcomes reported by the engine,
//! manual tasks (Done) and retries of failed actions (Retry).

use std::time::Duration;

use super::lifecycle::Doer;
use super::*;

/// How long to wait before attempt `attempts + 1`: exponential from 2 s, capped at 10 min,
/// with up to 25 % jitter; a target's `Retry-After` wins when it is longer.
pub fn backoff(attempts: u32, retry_after: Option<Duration>, jitter_seed: u64) -> Duration {
    let base = 2u64.saturating_pow(attempts.min(20)).min(600);
    let jitter = (jitter_seed % 1000) as f64 / 1000.0 * 0.25;
    let d = Duration::from_secs_f64(base as f64 * (1.0 + jitter));
    retry_after.map_or(d, |r| r.max(d))
}

impl Service {
    /// `/revoke app [user] [reason]`: cancels a pending request, or removes access.
    pub(super) async fn revoke(
        &self,
        c: &Caller,
        raw_app: &str,
        user: Option<Handle>,
        reason: Option<String>,
    ) -> Result<Reply> {
        let target = user.unwrap_or_else(|| c.person.handle.clone());
        let own = target == c.person.handle;
        if !own && policy::it_admin(&self.org, &c.person).is_none() {
            return self
                .refuse(
                    c,
                    "/revoke",
                    Some(&target),
                    None,
                    ReqRef::None,
                    "Only IT can revoke someone else's access.".into(),
                )
                .await;
        }
        let Some(subject) = self.store.person(&target).await? else {
            return Ok(Reply::text(format!(
                "There is nobody with the handle \"{target}\"."
            )));
        };
        let app = match self.find_app(raw_app) {
            Ok(a) => a,
            Err(m) => return Ok(Reply::text(m)),
        };
        if let Some(r) = self.store.open_request(&target, &app.name).await? {
            return self.cancel_request(c, r, reason).await;
        }
        let Some(g) = self
            .store
            .grants_of(&target)
            .await?
            .into_iter()
            .find(|g| g.app == app.name)
        else {
            let who = if own { "You do" } else { "They do" };
            return Ok(Reply::text(format!("{who} not have {}.", app.display)));
        };
        match g.state {
            GrantState::Active => {}
            GrantState::Revoking => {
                if let Some(a) = self.stalled_removal(&g).await? {
                    return Ok(Reply::text(format!(
                        "The removal of {} was not seen to finish ({}); IT has a Retry on action #{}.",
                        app.display,
                        a.last_error.as_deref().unwrap_or("it failed"),
                        a.id
                    )));
                }
                return Ok(Reply::text(format!(
                    "{} is already being removed.",
                    app.display
                )));
            }
            _ => {
                return Ok(Reply::text(format!(
                    "{} is still being set up; revoke it once that is finished.",
                    app.display
                )));
            }
        }
        let mut change = Change::default();
        self.revoke_grant(
            &mut change,
            &Self::by(c),
            c.chat_id.as_deref(),
            &subject,
            &g,
            reason.as_deref().unwrap_or("revoked on request"),
        )
        .await?;
        self.commit(change).await?;
        Ok(Reply::text(format!(
            "Removing {} from {}; {} will be told when it is done.",
            app.display,
            if own {
                "you".to_owned()
            } else {
                subject.name.clone()
            },
            if own { "you" } else { "they" }
        )))
    }

    /// The newest removal of a revoking grant when it failed or could not be verified (the
    /// grant is then not "being removed": it waits for IT's Retry).
    pub(super) async fn stalled_removal(&self, g: &Grant) -> Result<Option<Action>> {
        if g.state != GrantState::Revoking {
            return Ok(None);
        }
        Ok(self
            .store
            .actions_for_grant(g.id)
            .await?
            .into_iter()
            .rev()
            .find(|a| a.op == ActionOp::Revoke)
            .filter(|a| a.state == ActionState::Failed))
    }

    /// Adds the removal of a grant not yet seen gone (active, pending, failed, or left
    /// revoking by a removal that failed or could not be verified) to `change`: the grant goes
    /// to (or stays) revoking, its request (if any) to revoked, and a revoke action is queued.
    /// The grant becomes revoked only when a connector saw the removal.
    pub(super) async fn revoke_grant(
        &self,
        change: &mut Change,
        actor: &Actor,
        chat: Option<&str>,
        subject: &Person,
        g: &Grant,
        why: &str,
    ) -> Result<()> {
        let now = self.clock.now();
        let Some(app) = self.org.app(&g.app) else {
            return Err(ServiceError::Inconsistent(format!(
                "grant {} of unknown app {}",
                g.id, g.app
            )));
        };
        change.grant_updates.push(GrantUpdate {
            id: g.id,
            from: g.state,
            state: GrantState::Revoking,
            granted_at: g.granted_at,
            expires_at: g.expires_at,
            warned: g.warned,
        });
        let mut req = ReqRef::None;
        if let GrantSource::Request(rid) = g.source
            && let Some(r) = self.store.request(rid).await?
            && let Ok(next) = r.state.on(Event::Revoke)
        {
            req = rid.into();
            change
                .request_updates
                .push(RequestUpdate::to_state(&r, next, now));
        }
        change.audit.push(
            self.audit(AuditAction::GrantRevokeRequested)
                .by(actor.clone())
                .chat(chat)
                .subject(&subject.handle)
                .app(&g.app)
                .request(req)
                .detail(why),
        );
        change.new_actions.push(NewAction {
            connector: app.connector.clone(),
            op: ActionOp::Revoke,
            person: subject.handle.clone(),
            app: Some(g.app.clone()),
            entitlement: Some(app.entitlement.clone()),
            grant: Some(GrantRef::Id(g.id)),
            request: req,
            at: now,
        });
        Ok(())
    }

    /// Cancels an open request (by its requester or IT) and closes its prompts.
    pub(super) async fn cancel_request(
        &self,
        c: &Caller,
        r: Request,
        reason: Option<String>,
    ) -> Result<Reply> {
        self.cancel_request_by(&Doer::caller(c), r, reason).await
    }

    /// Cancels an open request on behalf of a person, the system or HR.
    pub(super) async fn cancel_request_by(
        &self,
        by: &Doer,
        r: Request,
        reason: Option<String>,
    ) -> Result<Reply> {
        let now = self.clock.now();
        let Ok(next) = r.state.on(Event::Cancel) else {
            return Ok(Reply::text(format!(
                "Request #{} is {}; it cannot be cancelled.",
                r.id, r.state
            )));
        };
        let mut change = Change::default();
        change
            .request_updates
            .push(RequestUpdate::to_state(&r, next, now));
        change.audit.push(
            self.audit(AuditAction::RequestCancelled)
                .by(by.actor.clone())
                .chat(by.chat.as_deref())
                .subject(&r.requester)
                .app(&r.app)
                .request(r.id)
                .detail(reason.clone().unwrap_or_default()),
        );
        let dir = self
            .request_directory(&r.requester, &r.app, &r.steps)
            .await?;
        if let Some(k) = r.state.step() {
            let holds = self.store.grants_of(&r.requester).await.unwrap_or_default();
            change.messages.push(Outgoing::edit(
                step_key(r.id, k),
                format!(
                    "{}\nCancelled by {} at {}{}.",
                    self.prompt_text(&dir, &r, &holds),
                    by.name,
                    self.when_shared(now),
                    reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
                Vec::new(),
            ));
        }
        if by.handle.as_ref() != Some(&r.requester) {
            change.messages.push(self.out(
                &r.requester,
                format!(
                    "Your request #{} for {} was cancelled by {}.",
                    r.id,
                    self.app_display(&r.app),
                    by.name
                ),
                vec![],
                None,
            ));
        }
        match self.commit(change).await {
            Ok(_) => self.messages_committed().await,
            Err(StoreError::Conflict) => {
                return Ok(Reply::text(format!(
                    "Request #{} changed just now; look at /access and try again.",
                    r.id
                )));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Reply::text(format!(
            "Request #{} for {} is cancelled.",
            r.id,
            self.app_display(&r.app)
        )))
    }

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
                Err(e) => self.fail_action(action, e).await,
            }
        }
        .instrument(span)
        .await
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

    /// What a finished task did, in words (the audit name, like `grant.provisioned`, is for the
    /// trail, not for people).
    fn task_done(op: ActionOp, app: &str, person: &str) -> String {
        let app = if app.is_empty() { "access" } else { app };
        match op {
            ActionOp::Grant => format!("{app} given to {person}"),
            ActionOp::Revoke => format!("{app} removed from {person}"),
            ActionOp::Disable => format!("the account of {person} disabled"),
            ActionOp::Verify => format!("the removal of {person}'s access checked"),
        }
    }

    /// An action succeeded (by a connector, or by a person clicking Done), written only if
    /// the action is still in the state it was read in (`action.state`). Returns false, and
    /// tells nobody, when someone else moved it first (another click, another instance).
    async fn complete_action(
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
        let mut wanted = vec![action.person.clone()];
        if let Actor::Person(h) = actor {
            wanted.push(h.clone());
        }
        if let Some(r) = &granted_request {
            wanted.push(r.requester.clone());
            wanted.extend(
                r.steps
                    .iter()
                    .filter_map(|s| s.decision.as_ref().map(|d| d.by.clone())),
            );
        }
        // Names are shown for a person's Done, for a request's people and for a removal; a
        // birthright grant by the engine needs none (no read on the engine's busiest path).
        let names_needed = matches!(actor, Actor::Person(_))
            || granted_request.is_some()
            || action.op != ActionOp::Grant;
        let dir = if names_needed {
            self.directory_of(wanted).await?
        } else {
            Directory::new()
        };
        let app = action
            .app
            .as_ref()
            .map(|a| self.app_display(a))
            .unwrap_or_default();
        if let Actor::Person(h) = actor {
            out.push(Outgoing::edit(
                action_key(action.id),
                format!(
                    "Task #{}: {} — done by {} at {}.",
                    action.id,
                    Self::task_done(action.op, &app, &Self::name_of(&dir, &action.person)),
                    Self::name_of(&dir, h),
                    self.when_shared(now)
                ),
                Vec::new(),
            ));
        }
        let offboarded = dir
            .get(&action.person)
            .is_some_and(|p| p.status == PersonStatus::Offboarded);
        match action.op {
            ActionOp::Grant => {
                let until = match granted_request.as_ref().and_then(|r| r.duration) {
                    Some(d) => {
                        let end = self.ends(now, d);
                        format!(" until {}", self.when_for(&action.person, end).await)
                    }
                    None => String::new(),
                };
                out.push(self.out(
                    &action.person,
                    format!("✅ You now have {app}{until}."),
                    vec![],
                    None,
                ));
                if let Some(r) = &granted_request {
                    let mut told = vec![r.requester.clone()];
                    for s in &r.steps {
                        if let Some(d) = &s.decision
                            && !told.contains(&d.by)
                        {
                            out.push(self.out(
                                &d.by,
                                format!(
                                    "{} now has {app} (request #{}).",
                                    Self::name_of(&dir, &r.requester),
                                    r.id
                                ),
                                vec![],
                                None,
                            ));
                            told.push(d.by.clone());
                        }
                    }
                }
            }
            ActionOp::Revoke if !offboarded && grant.is_some() => {
                out.push(self.out(
                    &action.person,
                    format!("Your {app} access has been removed."),
                    vec![],
                    None,
                ));
            }
            _ => {}
        }
        Ok(out)
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
    async fn action_moved(&self, action: &Action) -> Result<bool> {
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
        let app = action
            .app
            .as_ref()
            .map(|a| format!(" ({})", self.app_display(a)))
            .unwrap_or_default();
        let text = format!(
            "Task #{} for IT{app}: {task}\nClick Done once it is done.",
            action.id
        );
        let done = vec![Button {
            label: ButtonLabel::Done,
            custom_id: ClickTarget::Done(action.id).to_string(),
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

    /// An action failed for good, or its outcome could not be verified (the connector's read
    /// cannot be trusted): a grant and its request fail; a removal stays "revoking" (never
    /// "revoked" on an answer nobody could check). The person is told what is true, IT is
    /// told with a Retry button.
    async fn fail_action(&self, action: &Action, e: ConnectorError) -> Result<()> {
        let unverified = matches!(e, ConnectorError::Unverifiable(_));
        let (e, cause) = (&e, &give_up_cause(action.attempts, &e));
        self.retry_on_conflict(&format!("action {}", action.id), || async move {
            let now = self.clock.now();
            let mut change = Change::default();
            change.action_updates.push(ActionUpdate {
                id: action.id,
                from: action.state,
                state: ActionState::Failed,
                last_error: Some(e.to_string()),
                not_before: now,
                reset_attempts: false,
            });
            let (name, outcome) = match (unverified, action.op) {
                (true, op) => (AuditAction::unverified(op), AuditOutcome::Unverified),
                (false, op) => (AuditAction::failed(op), AuditOutcome::Failed),
            };
            let ev = self
                .audit(name)
                .subject(&action.person)
                .app(action.app.as_ref())
                .request(action.request)
                .connector_action(action.id)
                .outcome(outcome)
                .detail(format!(
                    "connector {}{}: {cause}{}",
                    action.connector,
                    action
                        .entitlement
                        .as_deref()
                        .map(|e| format!(", entitlement {e}"))
                        .unwrap_or_default(),
                    if unverified {
                        "; not reported as done"
                    } else {
                        ""
                    }
                ));
            change.audit.push(ev);
            let mut grant = None;
            if let Some(g) = action.grant {
                grant = self.store.grant(g).await?;
            }
            if let Some(g) = &grant
                && action.op == ActionOp::Grant
            {
                change.grant_updates.push(GrantUpdate {
                    id: g.id,
                    from: g.state,
                    state: GrantState::Failed,
                    granted_at: None,
                    expires_at: g.expires_at,
                    warned: g.warned,
                });
                if let GrantSource::Request(rid) = g.source
                    && let Some(r) = self.store.request(rid).await?
                    && let Ok(next) = r.state.on(Event::ProvisionFailed)
                {
                    change
                        .request_updates
                        .push(RequestUpdate::to_state(&r, next, now));
                }
            }
            let dir = self.directory_of([action.person.clone()]).await?;
            let app = action
                .app
                .as_ref()
                .map(|a| self.app_display(a))
                .unwrap_or_else(|| format!("the {} account", action.connector));
            let offboarded = dir
                .get(&action.person)
                .is_some_and(|p| p.status == PersonStatus::Offboarded);
            match action.op {
                ActionOp::Grant => {
                    change.messages.push(self.out(
                        &action.person,
                        format!("Setting up {app} failed; IT has been told and will retry."),
                        vec![],
                        None,
                    ));
                }
                // The holder learns that the removal was not seen, never that it was done.
                ActionOp::Revoke if !offboarded && grant.is_some() => {
                    let text = if unverified {
                        format!(
                            "The removal of your {app} access could not be verified ({e}); you may still have it. IT has been told and will retry."
                        )
                    } else {
                        format!(
                            "Removing your {app} access failed; you may still have it. IT has been told and will retry."
                        )
                    };
                    change
                        .messages
                        .push(self.out(&action.person, text, vec![], None));
                }
                _ => {}
            }
            let what = format!(
                "{} {app} for {} (connector {})",
                action.op.as_str(),
                Self::name_of(&dir, &action.person),
                action.connector,
            );
            let text = if unverified {
                format!(
                    "Action #{} could not be verified: {what}: {cause}. It is not reported as done. Click Retry once the connector can be read.",
                    action.id
                )
            } else {
                format!(
                    "Action #{} failed for good: {what}: {cause}. Click Retry once the cause is fixed.",
                    action.id
                )
            };
            let retry = vec![Button {
                label: ButtonLabel::Retry,
                custom_id: ClickTarget::Retry(action.id).to_string(),
            }];
            for a in &self.org.it_admins {
                change.messages.push(self.out(
                    a,
                    text.clone(),
                    retry.clone(),
                    Some(action_key(action.id)),
                ));
            }
            match self.commit(change).await {
                Ok(_) => self.messages_committed().await,
                Err(StoreError::Conflict) if self.action_moved(action).await? => {
                    return Ok(Attempt::Done(()));
                }
                Err(StoreError::Conflict) => return Ok(Attempt::Conflict),
                Err(e) => return Err(e.into()),
            }
            self.follow_up(action).await?;
            Ok(Attempt::Done(()))
        })
        .await
    }

    /// Done on a manual task: IT only, once.
    pub(super) async fn manual_done(&self, c: &Caller, id: ActionId) -> Result<Reply> {
        let action = self.store.action(id).await?;
        if policy::it_admin(&self.org, &c.person).is_none() {
            // Said before anything about the task (whether it exists, whose it is).
            return self
                .refuse(
                    c,
                    "done",
                    action.as_ref().map(|a| &a.person),
                    action.as_ref().and_then(|a| a.app.as_ref()),
                    action.as_ref().map_or(ReqRef::None, |a| a.request.into()),
                    "Only IT admins can mark a task done.".into(),
                )
                .await;
        }
        let Some(action) = action else {
            return Ok(Reply::text(format!("Task #{id} does not exist.")));
        };
        if action.state != ActionState::Waiting {
            return Ok(Reply::text(format!(
                "Task #{id} is already {}.",
                action.state.as_str()
            )));
        }
        // One transaction, conditional on the task still waiting: of simultaneous clicks,
        // exactly one completes it; the others are told it is done.
        if !self
            .complete_action(&action, Self::by(c), c.chat_id.as_deref(), AuditOutcome::Ok)
            .await?
        {
            let now = self.store.action(id).await?.map(|a| a.state);
            return Ok(Reply::text(format!(
                "Task #{id} is already {}.",
                now.map_or("gone", |s| s.as_str())
            )));
        }
        Ok(Reply::text(format!("Thanks — task #{id} is marked done.")))
    }

    /// Retry on a failed action: IT only.
    pub(super) async fn retry(&self, c: &Caller, id: ActionId) -> Result<Reply> {
        let action = self.store.action(id).await?;
        if policy::it_admin(&self.org, &c.person).is_none() {
            return self
                .refuse(
                    c,
                    "retry",
                    action.as_ref().map(|a| &a.person),
                    action.as_ref().and_then(|a| a.app.as_ref()),
                    action.as_ref().map_or(ReqRef::None, |a| a.request.into()),
                    "Only IT admins can retry an action.".into(),
                )
                .await;
        }
        let Some(action) = action else {
            return Ok(Reply::text(format!("Action #{id} does not exist.")));
        };
        if action.state != ActionState::Failed {
            return Ok(Reply::text(format!(
                "Action #{id} is {}; there is nothing to retry.",
                action.state.as_str()
            )));
        }
        let grant = match action.grant {
            Some(g) => self.store.grant(g).await?,
            None => None,
        };
        // A failed set-up is not retried once the access is being taken away (an
        // offboarding or /revoke moved its grant on): that would give it back.
        if action.op == ActionOp::Grant
            && (grant
                .as_ref()
                .is_some_and(|g| g.state != GrantState::Failed)
                || self
                    .store
                    .person(&action.person)
                    .await?
                    .is_some_and(|p| p.status == PersonStatus::Offboarded))
        {
            return Ok(Reply::text(format!(
                "Action #{id} would give {} to {}, whose access is being removed; nothing was retried.",
                action
                    .app
                    .as_ref()
                    .map_or_else(|| "access".to_owned(), |a| self.app_display(a)),
                action.person
            )));
        }
        let now = self.clock.now();
        let mut change = Change::default();
        change.action_updates.push(ActionUpdate {
            id,
            from: ActionState::Failed,
            state: ActionState::Pending,
            last_error: None,
            not_before: now,
            reset_attempts: true,
        });
        change.audit.push(
            self.audit(AuditAction::ActionRetried)
                .by(Self::by(c))
                .chat(c.chat_id.as_deref())
                .subject(&action.person)
                .app(action.app.as_ref())
                .request(action.request)
                .detail(format!("action {id}")),
        );
        if let Some(g) = grant
            && g.state == GrantState::Failed
        {
            change.grant_updates.push(GrantUpdate {
                id: g.id,
                from: GrantState::Failed,
                state: GrantState::Pending,
                granted_at: None,
                expires_at: g.expires_at,
                warned: g.warned,
            });
            if let GrantSource::Request(rid) = g.source
                && let Some(r) = self.store.request(rid).await?
                && let Ok(next) = r.state.on(Event::Retry)
            {
                change
                    .request_updates
                    .push(RequestUpdate::to_state(&r, next, now));
            }
        }
        // The Retry buttons come off with the retry, in its transaction.
        change.messages.push(Outgoing::edit(
            action_key(id),
            format!(
                "Action #{id} was retried by {} at {}.",
                c.person.name,
                self.when_shared(now)
            ),
            Vec::new(),
        ));
        if !self.commit_quietly(change).await? {
            return Ok(Reply::text(format!(
                "Action #{id} changed just now; nothing was retried."
            )));
        }
        Ok(Reply::text(format!("Action #{id} is queued again.")))
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

/// Why an action was given up, in words: for a failure that may pass, what was tried, how
/// often, and the last cause (never a bare "temporary failure").
fn give_up_cause(attempts: u32, e: &ConnectorError) -> String {
    match e {
        ConnectorError::Transient(cause) => {
            format!("gave up after {attempts} attempt(s); last cause: {cause}")
        }
        ConnectorError::RateLimited { .. } => {
            format!("gave up after {attempts} attempt(s); the target was still rate limiting")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod give_up_tests {
    use super::*;

    #[test]
    fn a_given_up_transient_failure_says_what_was_tried_and_the_last_cause() {
        let t = give_up_cause(
            6,
            &ConnectorError::Transient("POST http://hr.test/x: connection refused".into()),
        );
        assert_eq!(
            t,
            "gave up after 6 attempt(s); last cause: POST http://hr.test/x: connection refused"
        );
        assert!(!t.contains("temporary failure"));
        assert_eq!(
            give_up_cause(1, &ConnectorError::Permanent("HTTP 400".into())),
            "HTTP 400"
        );
    }
}

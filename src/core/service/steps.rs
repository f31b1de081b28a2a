//! A request's approval steps: starting one (its approvers), the prompts that ask them, and
//! the grant once every step approved.

use super::*;
use crate::core::render::requests as render;

impl Service {
    /// Where `r` stands: whose decision it waits for.
    pub(super) fn wait_of(dir: &PeopleByHandle, r: &Request) -> Wait {
        match (r.state, r.current_step()) {
            (RequestState::Awaiting(k), Some(s)) => Wait::Awaiting {
                approvers: Self::name_list(dir, &s.approvers),
                k,
                of: r.steps.len(),
            },
            (RequestState::NoApprover(k), _) => Wait::NoApprover {
                k,
                of: r.steps.len(),
            },
            (s, _) => Wait::Other(s),
        }
    }

    /// Resolves the approvers of step `k`, starts it, and returns the request's state
    /// (awaiting, or without approver).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start_step(
        &self,
        change: &mut Change,
        dir: &PeopleByHandle,
        requester: &Person,
        app: &App,
        steps: &mut [Step],
        k: u32,
        req: ReqRef,
        now: Timestamp,
        state: RequestState,
    ) -> RequestState {
        let earlier: Vec<Handle> = steps[..k as usize]
            .iter()
            .filter_map(|s| s.decision.as_ref().map(|d| d.by.clone()))
            .collect();
        let rule = steps[k as usize].rule.clone();
        let approvers = policy::approvers_for(&self.org, dir, &rule, requester, app, &earlier);
        let step = &mut steps[k as usize];
        step.started_at = Some(now);
        step.approvers = approvers.clone();
        if approvers.is_empty() {
            change.audit.push(
                self.audit(AuditAction::StepNoApprover)
                    .subject(&requester.handle)
                    .app(&app.name)
                    .request(req)
                    .outcome(AuditOutcome::Waiting)
                    .detail(format!("step {} ({rule}): nobody eligible", k + 1)),
            );
            state
                .on(Event::NoApprover)
                .unwrap_or(RequestState::NoApprover(k))
        } else {
            let names: Vec<&str> = approvers.iter().map(Handle::as_str).collect();
            change.audit.push(
                self.audit(AuditAction::StepStarted)
                    .subject(&requester.handle)
                    .app(&app.name)
                    .request(req)
                    .detail(format!("step {} ({rule}): {}", k + 1, names.join(", "))),
            );
            RequestState::Awaiting(k)
        }
    }

    /// Adds the grant and its connector action to `change` (or, for an extension, the grant's
    /// new end, which needs no connector); returns the grant and whether it is already done.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn provision(
        &self,
        change: &mut Change,
        who: &Person,
        app: &App,
        kind: RequestKind,
        extends: Option<&Grant>,
        duration: Option<Span>,
        req: ReqRef,
        now: Timestamp,
    ) -> (Option<GrantRef>, bool) {
        match (kind, extends) {
            (RequestKind::Extend(_), Some(g)) => {
                let from = g.expires_at.map_or(now, |e| e.max(now));
                let until = duration.map(|d| self.ends(from, d));
                change.grant_updates.push(GrantUpdate {
                    id: g.id,
                    from: g.state,
                    state: g.state,
                    granted_at: g.granted_at,
                    expires_at: until,
                    warned: false,
                });
                change.audit.push(
                    self.audit(AuditAction::GrantExtended)
                        .subject(&who.handle)
                        .app(&app.name)
                        .request(req)
                        .detail(format!(
                            "until {}",
                            until.map_or_else(|| "no end".into(), when)
                        )),
                );
                (Some(GrantRef::Id(g.id)), true)
            }
            _ => {
                change.new_grants.push(NewGrant {
                    person: who.handle.clone(),
                    app: app.name.clone(),
                    source: NewGrantSource::Request(req),
                    state: GrantState::Pending,
                    granted_at: None,
                    expires_at: duration.map(|d| self.ends(now, d)),
                });
                let g = GrantRef::New(change.new_grants.len() - 1);
                change.new_actions.push(NewAction {
                    connector: app.connector.clone(),
                    op: ActionOp::Grant,
                    person: who.handle.clone(),
                    app: Some(app.name.clone()),
                    entitlement: Some(app.entitlement.clone()),
                    grant: Some(g),
                    request: req,
                    at: now,
                });
                (Some(g), false)
            }
        }
    }

    /// The prompt of a request's current step: who asks for what, why, for how long, which
    /// step, and what they already hold.
    pub(super) fn prompt_of(&self, dir: &PeopleByHandle, r: &Request, holds: &[Grant]) -> Prompt {
        let k = r.state.step().unwrap_or(0);
        Prompt {
            id: r.id,
            requester: Self::name_of(dir, &r.requester),
            app: self.app_display(&r.app),
            extend: matches!(r.kind, RequestKind::Extend(_)),
            reason: r.reason.clone(),
            duration: r.duration,
            k,
            of: r.steps.len(),
            rule: r.steps.get(k as usize).map(|s| s.rule.clone()),
            held: holds
                .iter()
                .filter(|g| g.state == GrantState::Active)
                .map(|g| self.app_display(&g.app))
                .collect(),
        }
    }

    /// Sends the prompts of every request whose current step was opened (its commit made)
    /// at or before `before` and never prompted for: a crash came between that commit and the
    /// prompts. How many requests were prompted.
    pub(super) async fn send_missing_prompts(&self, before: Timestamp) -> Result<usize> {
        let mut n = 0;
        for id in self.store.unprompted_requests(before).await? {
            if let Some(r) = self.store.request(id).await? {
                let dir = self
                    .request_directory(&r.requester, &r.app, &r.steps)
                    .await?;
                self.announce_step(&dir, &r).await;
                n += 1;
            }
        }
        Ok(n)
    }

    /// [`Service::send_missing_prompts`] for one request (a retried click or command).
    pub(super) async fn prompt_if_missing(&self, id: RequestId) -> Result<()> {
        let now = self.clock.now();
        if self.store.unprompted_requests(now).await?.contains(&id)
            && let Some(r) = self.store.request(id).await?
        {
            let dir = self
                .request_directory(&r.requester, &r.app, &r.steps)
                .await?;
            self.announce_step(&dir, &r).await;
        }
        Ok(())
    }

    /// Prompts the approvers of a request's current step (or tells IT nobody can approve
    /// it): the prompts are written to the outbox in one transaction with the record that
    /// the step was prompted for.
    pub(super) async fn announce_step(&self, dir: &PeopleByHandle, r: &Request) {
        let mut change = Change::default();
        self.step_messages(&mut change, dir, r).await;
        if change.is_empty() {
            return;
        }
        match self.commit(change).await {
            Ok(_) => self.messages_committed().await,
            Err(e) => {
                warn!(error = %e, request = %r.id, "cannot queue the prompts of a step")
            }
        }
    }

    /// Adds the prompts of a request's current step (or the word that nobody can approve
    /// it) to `change`, with the record that the step was prompted for. Each prompt is
    /// written once, ever, however often the step is announced.
    pub(super) async fn step_messages(
        &self,
        change: &mut Change,
        dir: &PeopleByHandle,
        r: &Request,
    ) {
        match r.state {
            RequestState::Awaiting(k) => {
                let holds = self.store.grants_of(&r.requester).await.unwrap_or_default();
                let text = render::prompt(&self.prompt_of(dir, r, &holds));
                let buttons = decision_buttons(r.id, k);
                if let Some(step) = r.current_step() {
                    for a in &step.approvers {
                        change.messages.push(
                            self.out(a, text.clone(), buttons.clone(), Some(step_key(r.id, k)))
                                .once(format!("req:{}:s{k}:prompt:{a}", r.id)),
                        );
                    }
                }
                change.prompted.push((r.id, k));
            }
            RequestState::NoApprover(k) => {
                let text = render::no_approver(
                    r.id,
                    &self.app_display(&r.app),
                    &Self::name_of(dir, &r.requester),
                    k,
                    r.steps.len(),
                );
                let once = |h: &Handle| format!("req:{}:s{k}:noapprover:{h}", r.id);
                change.messages.push(
                    self.out(&r.requester, text.clone(), vec![], None)
                        .once(once(&r.requester)),
                );
                for a in &self.org.it_admins {
                    if a != &r.requester {
                        change
                            .messages
                            .push(self.out(a, text.clone(), vec![], None).once(once(a)));
                    }
                }
                change.prompted.push((r.id, k));
            }
            _ => {}
        }
    }
}

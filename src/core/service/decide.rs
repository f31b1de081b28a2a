//! Approve and Deny on a step of a request: the decision, the next step or the grant, and
//! what everyone involved is told.

use super::*;
use crate::core::render::requests as render;

/// One click's decision on step `k` of a request.
#[derive(Clone, Copy)]
struct Verdict<'a> {
    k: u32,
    approve: bool,
    reason: Option<&'a str>,
}

impl Service {
    /// Approve or deny step `k` of request `id`, as `c`. Safe under concurrent clicks: the
    /// write is conditional on the version read, and a loser re-reads and sees the decision.
    pub(super) async fn decide(
        &self,
        c: &Caller,
        id: RequestId,
        k: u32,
        approve: bool,
        reason: Option<String>,
    ) -> Result<Reply> {
        let v = Verdict {
            k,
            approve,
            reason: reason.as_deref(),
        };
        let decided = self
            .retry_on_conflict(&format!("request {id}"), || self.decide_once(c, id, v))
            .await;
        match decided {
            Err(ServiceError::KeptConflicting(_)) => Ok(DecisionRefusal::Busy(id).into()),
            other => other,
        }
    }

    /// One read-decide-commit of [`Service::decide`].
    async fn decide_once(
        &self,
        c: &Caller,
        id: RequestId,
        v: Verdict<'_>,
    ) -> Result<Attempt<Reply>> {
        let me = &c.person.handle;
        // Someone with no part in the request learns nothing about it: not its state, not
        // its approvers, not even whether it exists.
        let r = self.store.request(id).await?;
        let Some(r) = r.filter(|r| {
            &r.requester == me
                || r.steps.iter().any(|s| {
                    s.approvers.contains(me) || s.decision.as_ref().is_some_and(|d| &d.by == me)
                })
                || policy::it_admin(&self.org, &c.person).is_some()
        }) else {
            return self
                .refused(
                    c,
                    "decide",
                    None,
                    None,
                    ReqRef::None,
                    DecisionRefusal::NothingToDecide(id),
                )
                .await
                .map(Attempt::Done);
        };
        let dir = self
            .request_directory(&r.requester, &r.app, &r.steps)
            .await?;
        let app = match self.check_decision(c, &r, &dir, v.k).await? {
            Ok(app) => app,
            Err(reply) => return Ok(Attempt::Done(reply)),
        };
        let Some(requester) = dir.get(&r.requester).cloned() else {
            return Err(ServiceError::Inconsistent(format!(
                "no person {}",
                r.requester
            )));
        };
        let change = self.decided_change(c, &r, &dir, &requester, app, v).await?;
        match self.commit(change).await {
            // The commit woke a worker for the grant's action before the chat messages
            // (round trips to Discord) go out.
            Ok(_) => {}
            Err(StoreError::Conflict) => return Ok(Attempt::Conflict),
            Err(e) => return Err(e.into()),
        }
        self.messages_committed().await;
        Ok(Attempt::Done(Reply::text(render::decided(
            v.approve,
            id,
            &app.display,
            &Self::name_of(&dir, &r.requester),
        ))))
    }

    /// Whether `c` may decide step `k` of `r` now: the app when so, else (Err) the answer,
    /// refusals audited.
    async fn check_decision(
        &self,
        c: &Caller,
        r: &Request,
        dir: &PeopleByHandle,
        k: u32,
    ) -> Result<std::result::Result<&App, Reply>> {
        let (me, id) = (&c.person.handle, r.id);
        let Some(step) = r.steps.get(k as usize) else {
            return Ok(Err(DecisionRefusal::NoSuchStep { id, k }.into()));
        };
        if let Some(d) = &step.decision {
            // A retried click: the decision was made, but its prompts to the next
            // approvers may have been cut short.
            self.prompt_if_missing(id).await?;
            return Ok(Err(DecisionRefusal::AlreadyDecided {
                approved: d.approved,
                by: Self::name_of(dir, &d.by),
                at: self.moment_to(c, d.at),
            }
            .into()));
        }
        if r.state.step() != Some(k) || !r.state.is_open() {
            return Ok(Err(DecisionRefusal::NotOpen { id, state: r.state }.into()));
        }
        let why = if me == &r.requester {
            DecisionRefusal::OwnRequest
        } else if !step.approvers.contains(me) {
            DecisionRefusal::NotApprover {
                id,
                k,
                approvers: Self::name_list(dir, &step.approvers),
            }
        } else {
            return Ok(self
                .org
                .app(&r.app)
                .ok_or_else(|| DecisionRefusal::AppGone(r.app.clone()).into()));
        };
        self.refused(
            c,
            "decide",
            Some(&r.requester),
            Some(&r.app),
            id.into(),
            why,
        )
        .await
        .map(Err)
    }

    /// The one transaction of a decision: the step decided, the request's next state (the
    /// next step, its grant, or denied), the prompt's buttons taken off and everyone told.
    async fn decided_change(
        &self,
        c: &Caller,
        r: &Request,
        dir: &PeopleByHandle,
        requester: &Person,
        app: &App,
        v: Verdict<'_>,
    ) -> Result<Change> {
        let (id, k) = (r.id, v.k);
        let now = self.clock.now();
        let mut steps = r.steps.clone();
        steps[k as usize].decision = Some(Decision {
            approved: v.approve,
            by: c.person.handle.clone(),
            at: now,
            reason: v.reason.map(str::to_owned),
        });
        let n = steps.len() as u32;
        let ev = if v.approve {
            Event::Approve { step: k, of: n }
        } else {
            Event::Deny { step: k }
        };
        let state = r.state.on(ev)?;
        let mut change = Change::default();
        change.audit.push(self.step_decided_event(c, r, v, n));
        let (state, grant) = self
            .after_decision(
                &mut change,
                r,
                dir,
                requester,
                app,
                &mut steps,
                k,
                state,
                now,
            )
            .await?;
        // The request as this change leaves it: its messages are written with it.
        let mut after = r.clone();
        after.state = state;
        after.steps = steps.clone();
        change.request_updates.push(RequestUpdate {
            id,
            expected_version: r.version,
            state,
            steps,
            grant,
            updated_at: now,
        });
        change
            .messages
            .push(self.decided_prompt(c, r, dir, v, now).await);
        self.step_messages(&mut change, dir, &after).await;
        let news = self.requester_news(c, dir, app, &after, v);
        change
            .messages
            .push(self.out(&r.requester, news, vec![], None));
        Ok(change)
    }

    /// The `step.approved` or `step.denied` audit row.
    fn step_decided_event(&self, c: &Caller, r: &Request, v: Verdict<'_>, n: u32) -> AuditEvent {
        self.audit(if v.approve {
            AuditAction::StepApproved
        } else {
            AuditAction::StepDenied
        })
        .by(Self::by(c))
        .chat(c.chat_id.as_deref())
        .subject(&r.requester)
        .app(&r.app)
        .request(r.id)
        .detail(format!(
            "step {} of {n}{}",
            v.k + 1,
            v.reason
                .map(|r| format!("; reason: {r}"))
                .unwrap_or_default()
        ))
    }

    /// What the decision on step `k` leads to: the next step started, the grant provisioned once every
    /// step approved, or the request denied. Returns the request's state and grant.
    #[allow(clippy::too_many_arguments)]
    async fn after_decision(
        &self,
        change: &mut Change,
        r: &Request,
        dir: &PeopleByHandle,
        requester: &Person,
        app: &App,
        steps: &mut [Step],
        k: u32,
        mut state: RequestState,
        now: Timestamp,
    ) -> Result<(RequestState, Option<GrantRef>)> {
        let id = r.id;
        let mut grant = r.grant.map(GrantRef::Id);
        match state {
            RequestState::Awaiting(next) => {
                state = self.start_step(
                    change,
                    dir,
                    requester,
                    app,
                    steps,
                    next,
                    id.into(),
                    now,
                    state,
                );
            }
            RequestState::Approved => {
                (state, grant) = self
                    .provision_approved(change, r, requester, app, state, now)
                    .await?;
            }
            RequestState::Denied => {
                change.audit.push(
                    self.audit(AuditAction::RequestDenied)
                        .subject(&r.requester)
                        .app(&r.app)
                        .request(id)
                        .detail(format!("denied at step {}", k + 1)),
                );
            }
            other => {
                return Err(ServiceError::Inconsistent(format!(
                    "decision led to {other}"
                )));
            }
        }
        Ok((state, grant))
    }

    /// Every step approved: the request is provisioned (its grant and connector action, or
    /// an extension's new end). Returns its state and grant.
    async fn provision_approved(
        &self,
        change: &mut Change,
        r: &Request,
        requester: &Person,
        app: &App,
        state: RequestState,
        now: Timestamp,
    ) -> Result<(RequestState, Option<GrantRef>)> {
        change.audit.push(
            self.audit(AuditAction::RequestApproved)
                .subject(&r.requester)
                .app(&r.app)
                .request(r.id)
                .detail("every step approved"),
        );
        let mut state = state.on(Event::Provision)?;
        let extends = match r.kind {
            RequestKind::Extend(g) => self.store.grant(g).await?,
            RequestKind::New => None,
        };
        let (grant, done) = self.provision(
            change,
            requester,
            app,
            r.kind,
            extends.as_ref(),
            r.duration,
            r.id.into(),
            now,
        );
        if done {
            state = state.on(Event::Provisioned)?;
        }
        Ok((state, grant))
    }

    /// The decided step's prompt as everyone who got it now sees it: the verdict, no buttons.
    async fn decided_prompt(
        &self,
        c: &Caller,
        r: &Request,
        dir: &PeopleByHandle,
        v: Verdict<'_>,
        now: Timestamp,
    ) -> Outgoing {
        let holds = self.store.grants_of(&r.requester).await.unwrap_or_default();
        let mut shown = r.clone();
        shown.state = RequestState::Awaiting(v.k);
        Outgoing::edit(
            step_key(r.id, v.k),
            render::prompt_decided(
                &self.prompt_of(dir, &shown, &holds),
                v.approve,
                &c.person.name,
                &self.moment_shared(now),
                v.reason,
            ),
            Vec::new(),
        )
    }

    /// What the requester is told of the decision, from the request as it leaves it.
    fn requester_news(
        &self,
        c: &Caller,
        dir: &PeopleByHandle,
        app: &App,
        after: &Request,
        v: Verdict<'_>,
    ) -> String {
        let news = match after.state {
            RequestState::Denied => DecisionNews::Denied {
                reason: v.reason.map(str::to_owned),
            },
            RequestState::Provisioning => DecisionNews::Provisioning,
            RequestState::Granted => DecisionNews::ExtendApproved,
            _ => DecisionNews::StepApproved {
                k: v.k,
                wait: Self::wait_of(dir, after),
            },
        };
        render::decision_news(after.id, &app.display, &c.person.name, &news)
    }
}

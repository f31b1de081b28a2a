//! `/request app [reason] [duration]`: asking for an app, routed to its approval steps (or
//! provisioned at once when none are needed); and Extend on an expiry warning, which asks again.

use super::*;
use crate::core::render::requests as render;

/// A request that passed every check, about to be written.
struct Asked<'a> {
    me: &'a Person,
    app: &'a App,
    reason: Option<String>,
    /// The duration granted (capped), none for a birthright.
    duration: Option<Span>,
    /// How the app's cap shortened what was asked for, if it did.
    cap_note: Option<policy::Shortened>,
    kind: RequestKind,
    /// The grant an extension extends.
    held: Option<Grant>,
    birthright: bool,
}

impl Service {
    /// `/request`: checks what is asked for, writes the request with its first step (or its
    /// grant, when no approval is needed) in one transaction, then prompts its approvers.
    pub(super) async fn request(
        &self,
        c: &Caller,
        raw_app: &str,
        reason: Option<String>,
        duration: Option<Span>,
        emergency: bool,
    ) -> Result<Reply> {
        if emergency {
            // Boxed: break-glass's future would swell every /request's.
            return Box::pin(self.emergency(c, raw_app, reason, duration)).await;
        }
        let asked = match self.check_request(c, raw_app, reason, duration).await? {
            Ok(a) => a,
            Err(refusal) => return Ok(refusal.into()),
        };
        let (me, app) = (asked.me, asked.app);
        let now = self.clock.now();
        let dir = self.request_directory(&me.handle, &app.name, &[]).await?;
        let change = self.new_request_change(c, &asked, &dir, now)?;
        let committed = self.commit(change).await?;
        let id = committed
            .request
            .ok_or_else(|| ServiceError::Inconsistent("no request id".into()))?;
        let req = self
            .store
            .request(id)
            .await?
            .ok_or_else(|| ServiceError::Inconsistent(format!("request {id} vanished")))?;
        self.announce_step(&dir, &req).await;
        self.requested_reply(c, &asked, &dir, &req).await
    }

    /// Extend on an expiry warning: the holder asks for the same app again.
    pub(super) async fn extend(&self, c: &Caller, g: GrantId) -> Result<Reply> {
        let grant = self.store.grant(g).await?;
        let Some(grant) = grant.filter(|g| g.person == c.person.handle) else {
            return self
                .refused(
                    c,
                    "extend",
                    None,
                    None,
                    ReqRef::None,
                    RequestRefusal::NothingToExtend,
                )
                .await;
        };
        if let GrantSource::Request(rid) = grant.source
            && self.store.break_glass_of_request(rid).await?.is_some()
        {
            let why = crate::core::render::step_up::BreakGlassRefusal::NotExtendable {
                app: self.app_display(&grant.app),
            };
            return self
                .refused(
                    c,
                    "extend",
                    Some(&grant.person),
                    Some(&grant.app),
                    rid.into(),
                    why,
                )
                .await;
        }
        let span = match (grant.granted_at, grant.expires_at) {
            (Some(from), Some(to)) => (to - from).to_std().ok().filter(|d| !d.is_zero()),
            _ => None,
        };
        self.request(
            c,
            grant.app.as_str(),
            Some("extension".into()),
            span.map(Span::from_std),
            false,
        )
        .await
    }

    /// Everything checked before a request is written: the app, an open request for it, the
    /// access already held, the reason and the duration. Err is the refusal when it stops.
    async fn check_request<'a>(
        &'a self,
        c: &'a Caller,
        raw_app: &str,
        reason: Option<String>,
        duration: Option<Span>,
    ) -> Result<std::result::Result<Asked<'a>, Refusal>> {
        let me = &c.person;
        let app = match self.find_app(raw_app) {
            Ok(a) => a,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let birthright = self.org.is_birthright(me, &app.name);
        if !app.requestable && !birthright {
            return Ok(Err(RequestRefusal::NotRequestable {
                app: app.display.clone(),
            }
            .into()));
        }
        if let Some(open) = self.store.open_request(&me.handle, &app.name).await? {
            self.prompt_if_missing(open.id).await?;
            let dir = self
                .request_directory(&me.handle, &app.name, &open.steps)
                .await?;
            return Ok(Err(RequestRefusal::AlreadyAsked {
                app: app.display.clone(),
                id: open.id,
                wait: Self::wait_of(&dir, &open),
            }
            .into()));
        }
        let held = self
            .store
            .grants_of(&me.handle)
            .await?
            .into_iter()
            .find(|g| g.app == app.name);
        let kind = match self.request_kind(c, app, held.as_ref()) {
            Ok(k) => k,
            Err(refusal) => return Ok(Err(refusal.into())),
        };
        if !birthright && let Err(mismatch) = policy::check_reason(app, reason.as_deref()) {
            return Ok(Err(RequestRefusal::Reason {
                app: app.display.clone(),
                mismatch,
            }
            .into()));
        }
        let (duration, cap_note) = if birthright {
            (None, None)
        } else {
            policy::effective_duration(app, duration)
        };
        // An app's own cap or default may be longer than the global ceiling: no grant is.
        let duration = duration.map(|d| d.min(self.org.workflow.max_duration));
        Ok(Ok(Asked {
            me,
            app,
            reason,
            duration,
            cap_note,
            kind,
            held,
            birthright,
        }))
    }

    /// What holding `held` makes of a request for `app`: a new one, an extension of a
    /// time-bound grant, or (Err) the refusal: there is nothing to ask for now.
    fn request_kind(
        &self,
        c: &Caller,
        app: &App,
        held: Option<&Grant>,
    ) -> std::result::Result<RequestKind, RequestRefusal> {
        let Some(g) = held else {
            return Ok(RequestKind::New);
        };
        match (g.state, g.expires_at) {
            (GrantState::Active, Some(_)) => Ok(RequestKind::Extend(g.id)),
            (GrantState::Active, None) => Err(RequestRefusal::AlreadyHave {
                app: app.display.clone(),
                since: g.granted_at.map(|t| self.moment_to(c, t)),
            }),
            (GrantState::Revoking, _) => Err(RequestRefusal::BeingRemoved {
                app: app.display.clone(),
            }),
            _ => Err(RequestRefusal::BeingSetUp {
                app: app.display.clone(),
            }),
        }
    }

    /// The one transaction of a new request: its audit rows, its first step started (or its
    /// grant and connector action, when nothing needs approval) and the request itself.
    fn new_request_change(
        &self,
        c: &Caller,
        asked: &Asked<'_>,
        dir: &PeopleByHandle,
        now: Timestamp,
    ) -> Result<Change> {
        let (me, app) = (asked.me, asked.app);
        let rules: Vec<ApprovalRule> = if asked.birthright {
            Vec::new()
        } else {
            app.approvals.clone()
        };
        let mut steps = fresh_steps(&rules);
        let state = RequestState::Submitted.on(Event::Route {
            steps: steps.len() as u32,
        })?;
        let mut change = Change::default();
        change.audit.push(self.submitted_event(c, asked));
        let (state, grant) = self.route_new(&mut change, asked, dir, &mut steps, state, now)?;
        change.new_request = Some(NewRequest {
            requester: me.handle.clone(),
            app: app.name.clone(),
            reason: asked.reason.clone(),
            duration: asked.duration,
            kind: asked.kind,
            state,
            steps: steps.clone(),
            grant,
            created_at: now,
        });
        Ok(change)
    }

    /// The `request.submitted` audit row.
    fn submitted_event(&self, c: &Caller, asked: &Asked<'_>) -> AuditEvent {
        let reason = asked.reason.as_deref().unwrap_or("-");
        let detail = match asked.kind {
            RequestKind::New => format!("reason: {reason}"),
            RequestKind::Extend(g) => format!("extension of grant {g}; reason: {reason}"),
        };
        self.audit(AuditAction::RequestSubmitted)
            .by(Self::by(c))
            .chat(c.chat_id.as_deref())
            .subject(&asked.me.handle)
            .app(&asked.app.name)
            .request(ReqRef::New)
            .detail(detail)
    }

    /// Routes a new request as its state says: approved at once (provisioned) or waiting
    /// for its first step. Returns its state and its grant.
    fn route_new(
        &self,
        change: &mut Change,
        asked: &Asked<'_>,
        dir: &PeopleByHandle,
        steps: &mut [Step],
        state: RequestState,
        now: Timestamp,
    ) -> Result<(RequestState, Option<GrantRef>)> {
        let (me, app) = (asked.me, asked.app);
        match state {
            RequestState::Approved => {
                let why = if asked.birthright {
                    "birthright of the role"
                } else {
                    "no approval needed"
                };
                change.audit.push(
                    self.audit(AuditAction::RequestApproved)
                        .subject(&me.handle)
                        .app(&app.name)
                        .request(ReqRef::New)
                        .detail(why),
                );
                let mut state = state.on(Event::Provision)?;
                let (grant, done) = self.provision(
                    change,
                    me,
                    app,
                    asked.kind,
                    asked.held.as_ref(),
                    asked.duration,
                    ReqRef::New,
                    now,
                );
                if done {
                    state = state.on(Event::Provisioned)?;
                }
                Ok((state, grant))
            }
            RequestState::Awaiting(0) => {
                let state =
                    self.start_step(change, dir, me, app, steps, 0, ReqRef::New, now, state);
                Ok((state, None))
            }
            other => Err(ServiceError::Inconsistent(format!("routed to {other}"))),
        }
    }

    /// The requester's answer, from the request as written.
    async fn requested_reply(
        &self,
        c: &Caller,
        asked: &Asked<'_>,
        dir: &PeopleByHandle,
        req: &Request,
    ) -> Result<Reply> {
        let (me, app) = (asked.me, asked.app);
        let said = match req.state {
            RequestState::Provisioning => Requested::Provisioning {
                birthright: asked.birthright,
            },
            RequestState::Granted => Requested::Extended {
                until: self
                    .store
                    .grants_of(&me.handle)
                    .await?
                    .iter()
                    .find(|g| g.app == app.name)
                    .and_then(|g| g.expires_at)
                    .map(|t| self.moment_to(c, t)),
            },
            _ => Requested::Waiting {
                extension: matches!(asked.kind, RequestKind::Extend(_)),
                wait: Self::wait_of(dir, req),
            },
        };
        let mut reply = Reply::text(render::requested(
            req.id,
            &app.display,
            &said,
            asked.cap_note.as_ref(),
        ));
        // Someone who may use break-glass on the app can escalate while it waits.
        if req.state.is_open()
            && asked.kind == RequestKind::New
            && app
                .break_glass
                .as_ref()
                .is_some_and(|t| super::break_glass::eligible(me, &t.who))
        {
            reply.buttons.push(Button {
                item: None,
                label: ButtonLabel::Escalate,
                target: ClickTarget::Escalate(req.id),
            });
        }
        Ok(reply)
    }
}

/// The steps of a new request, one per approval rule, none started.
fn fresh_steps(rules: &[ApprovalRule]) -> Vec<Step> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| Step {
            index: i as u32,
            rule: r.clone(),
            approvers: Vec::new(),
            started_at: None,
            decision: None,
            reminded: false,
            escalated: false,
        })
        .collect()
}

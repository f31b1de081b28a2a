//! The grant of a break-glass: one transaction with the request (new, or the pending one it
//! escalates), its grant and connector action, the record awaiting ratification, and the
//! Ratify / Revoke now prompts to everyone it skipped.

use super::*;
use crate::core::render::step_up as words;

/// A checked break-glass, ready to grant.
pub(super) struct Emergency<'a> {
    /// The app.
    pub(super) app: &'a App,
    /// Its terms.
    pub(super) terms: &'a BreakGlassPolicy,
    /// The emergency.
    pub(super) reason: String,
    /// How long (capped).
    pub(super) span: Span,
}

impl Service {
    /// Grants `e` to `c` at once (escalating `open`, their pending request, when given).
    pub(super) async fn grant_break_glass(
        &self,
        c: &Caller,
        e: &Emergency<'_>,
        open: Option<&Request>,
    ) -> Result<Reply> {
        let me = &c.person;
        let now = self.clock.now();
        let (skipped, dir) = self.skipped_approvers(me, e.app, open).await?;
        let mut change = Change::default();
        let req = open.map_or(ReqRef::New, |r| ReqRef::Id(r.id));
        if open.is_none() {
            let submitted = self
                .audit(AuditAction::RequestSubmitted)
                .by(Self::by(c))
                .chat(c.chat_id.as_deref())
                .subject(&me.handle)
                .app(&e.app.name)
                .request(ReqRef::New)
                .detail(format!("break-glass; reason: {}", e.reason));
            change.audit.push(submitted);
        }
        let from = open.map_or(RequestState::Submitted, |r| r.state);
        let mut state = from.on(Event::BreakGlass)?.on(Event::Provision)?;
        let (grant, done) = self.provision(
            &mut change,
            me,
            e.app,
            RequestKind::New,
            None,
            Some(e.span),
            req,
            now,
        );
        if done {
            state = state.on(Event::Provisioned)?;
        }
        let ratify_by = e.terms.review_within.after(now);
        let ends = e.span.after(now);
        let names = Self::name_list(&dir, &skipped);
        change
            .audit
            .push(self.granted_event(c, e, req, &names, ends, ratify_by));
        let steps = self.skipped_steps(me, e.app, &dir);
        self.write_request(&mut change, c, e, (open, steps), state, grant, now);
        change.new_break_glass = Some(NewBreakGlass {
            person: me.handle.clone(),
            app: e.app.name.clone(),
            reason: e.reason.clone(),
            request: req,
            granted_at: now,
            ratify_by,
        });
        self.ask_to_ratify(&mut change, me, e, &skipped, (ends, ratify_by));
        let mut told = names;
        told.push(self.ratifiers_word());
        match self.commit(change).await {
            Ok(_) => {}
            Err(StoreError::Conflict) => {
                return Ok(DecisionRefusal::Busy(open.map_or(RequestId(0), |r| r.id)).into());
            }
            Err(e) => return Err(e.into()),
        }
        self.messages_committed().await;
        Ok(Reply::text(words::break_glass_granted(
            &e.app.display,
            &self.when_to(c, ends),
            &crate::core::render::requests::all_of(&told),
        )))
    }

    /// The `break_glass.granted` row: how long, why, whom it skipped, when it must be ratified.
    fn granted_event(
        &self,
        c: &Caller,
        e: &Emergency<'_>,
        req: ReqRef,
        skipped: &[String],
        ends: Timestamp,
        ratify_by: Timestamp,
    ) -> AuditEvent {
        let skipped = if skipped.is_empty() {
            "none".to_owned()
        } else {
            skipped.join(", ")
        };
        self.audit(AuditAction::BreakGlassGranted)
            .by(Self::by(c))
            .chat(c.chat_id.as_deref())
            .subject(&c.person.handle)
            .app(&e.app.name)
            .request(req)
            .outcome(AuditOutcome::Waiting)
            .detail(format!(
                "for {} until {}; reason: {}; approvers skipped: {skipped}; ratify by {}",
                e.span,
                when(ends),
                e.reason,
                when(ratify_by)
            ))
    }

    /// The request of a break-glass: inserted, or the escalated one updated (its pending
    /// prompts closed).
    #[allow(clippy::too_many_arguments)]
    fn write_request(
        &self,
        change: &mut Change,
        c: &Caller,
        e: &Emergency<'_>,
        (open, steps): (Option<&Request>, Vec<Step>),
        state: RequestState,
        grant: Option<GrantRef>,
        now: Timestamp,
    ) {
        match open {
            None => {
                change.new_request = Some(NewRequest {
                    requester: c.person.handle.clone(),
                    app: e.app.name.clone(),
                    reason: Some(e.reason.clone()),
                    duration: Some(e.span),
                    kind: RequestKind::New,
                    state,
                    steps,
                    grant,
                    created_at: now,
                });
            }
            Some(r) => {
                let mut u = RequestUpdate::to_state(r, state, now);
                u.grant = grant;
                change.request_updates.push(u);
                if let Some(k) = r.state.step() {
                    change.messages.push(Outgoing::edit(
                        step_key(r.id, k),
                        words::escalated_prompt(&c.person.name),
                        Vec::new(),
                    ));
                }
            }
        }
    }

    /// The steps a new break-glass request skips: each approval rule with the people it would
    /// have asked (they may ratify), none started.
    fn skipped_steps(&self, me: &Person, app: &App, dir: &PeopleByHandle) -> Vec<Step> {
        app.approvals
            .iter()
            .enumerate()
            .map(|(i, rule)| Step {
                index: i as u32,
                rule: rule.clone(),
                approvers: policy::approvers_for(&self.org, dir, rule, me, app, &[]),
                started_at: None,
                decision: None,
                reminded: false,
                escalated: false,
            })
            .collect()
    }

    /// The Ratify / Revoke now prompts to the skipped approvers and the ratifiers.
    fn ask_to_ratify(
        &self,
        change: &mut Change,
        me: &Person,
        e: &Emergency<'_>,
        skipped: &[Handle],
        (ends, ratify_by): (Timestamp, Timestamp),
    ) {
        let text = words::ratify_prompt(
            &me.name,
            &e.app.display,
            &e.reason,
            &self.org.timezone.show(ends),
            &self.org.timezone.show(ratify_by),
        );
        for to in self.reviewers_of(skipped) {
            change.break_glass_messages.push(BreakGlassMessage {
                to,
                text: text.clone(),
            });
        }
    }

    /// Who, besides the skipped approvers, is asked to ratify, in words.
    pub(super) fn ratifiers_word(&self) -> String {
        if self.chat.fallback_channel().is_some() {
            "the approvals channel".into()
        } else {
            "IT".into()
        }
    }

    /// Who gets a break-glass's Ratify / Revoke now: the skipped approvers, and the
    /// approvals channel (or, without one, the IT admins).
    pub(super) fn reviewers_of(&self, skipped: &[Handle]) -> Vec<Recipient> {
        let mut to: Vec<Recipient> = skipped.iter().cloned().map(Recipient::Person).collect();
        for r in self.it_recipients() {
            if !to.contains(&r) {
                to.push(r);
            }
        }
        to
    }
}

//! The timers (`tick`): grant expiries and their warnings, request expiries, reminders and
//! escalations, and scheduled plans.

use super::*;
use crate::core::render::requests as render;

/// How many ended grants one transaction removes.
const EXPIRY_CHUNK: usize = 200;

impl Service {
    /// Runs everything due at the clock's time: grant expiries, request expiries, reminders
    /// and escalations. Returns how many things it did.
    pub async fn tick(&self) -> Result<usize> {
        self.deliver_leftovers().await;
        let now = self.clock.now();
        let mut done = self
            .send_missing_prompts(now - chrono::TimeDelta::seconds(10))
            .await?;
        done += self.expire_grants(now).await?;
        done += self.warn_expiring(now).await?;
        done += self.run_due_plans(now).await?;
        self.resume_offboardings().await?;
        done += self.request_timers(now).await?;
        done += self.break_glass_overdue(now).await?;
        done += self.review_tick(now).await?;
        Ok(done)
    }

    /// Removes every time-bound grant that has ended, telling its holder; how many. Grants
    /// go by chunks, each one transaction; a chunk another instance or click changed
    /// meanwhile goes again grant by grant, each conditional on its own state.
    async fn expire_grants(&self, now: Timestamp) -> Result<usize> {
        let mut done = 0;
        for chunk in self.store.grants_ending_by(now).await?.chunks(EXPIRY_CHUNK) {
            let people = self
                .directory_of(chunk.iter().map(|g| g.person.clone()))
                .await?;
            let requests = self.requests_of(chunk).await?;
            let request_of = |g: &Grant| match g.source {
                GrantSource::Request(rid) => requests.get(&rid),
                _ => None,
            };
            let mut change = Change::default();
            let mut n = 0;
            for g in chunk {
                if let Some(p) = people.get(&g.person) {
                    self.add_expiry(&mut change, p, g, request_of(g))?;
                    n += 1;
                }
            }
            if n == 0 {
                continue;
            }
            if self.commit_quietly(change).await? {
                done += n;
                continue;
            }
            for g in chunk {
                if let Some(p) = people.get(&g.person) {
                    let mut change = Change::default();
                    let request = match g.source {
                        GrantSource::Request(rid) => self.store.request(rid).await?,
                        _ => None,
                    };
                    self.add_expiry(&mut change, p, g, request.as_ref())?;
                    // Conditional on the grant still being active: when another instance
                    // expired it first, it tells the holder, and this one neither writes
                    // nor tells.
                    done += usize::from(self.commit_quietly(change).await?);
                }
            }
        }
        Ok(done)
    }

    /// The requests the grants came from, read at once, by id.
    async fn requests_of(&self, grants: &[Grant]) -> Result<HashMap<RequestId, Request>> {
        let ids: Vec<RequestId> = grants
            .iter()
            .filter_map(|g| match g.source {
                GrantSource::Request(rid) => Some(rid),
                _ => None,
            })
            .collect();
        Ok(self
            .store
            .requests_by_ids(&ids)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect())
    }

    /// Adds the removal of one ended grant (with its request, if any) to `change`, with its
    /// audit row and the holder's news.
    fn add_expiry(
        &self,
        change: &mut Change,
        p: &Person,
        g: &Grant,
        request: Option<&Request>,
    ) -> Result<()> {
        self.add_revoke(
            change,
            (&Actor::System, None),
            p,
            g,
            request,
            "time-bound access ended",
        )?;
        change.audit.push(
            self.audit(AuditAction::GrantExpired)
                .subject(&g.person)
                .app(&g.app)
                .detail(format!(
                    "ended {}",
                    g.expires_at.map_or_else(|| "-".into(), when)
                )),
        );
        change.messages.push(self.out(
            &g.person,
            render::access_ended(&self.app_display(&g.app)),
            vec![],
            None,
        ));
        Ok(())
    }

    /// An offboarding whose last step a crash cut short (its re-read not enqueued, or its
    /// report not sent) goes on from where it stands.
    async fn resume_offboardings(&self) -> Result<()> {
        // One that cannot go on now must not hold up the rest of the tick.
        for plan in self.store.unreported_offboardings().await? {
            if let Err(e) = self.maybe_report_offboarding(&plan.subject).await {
                warn!(plan = %plan.id, person = %plan.subject, error = %e, "offboarding not resumed");
            }
        }
        Ok(())
    }

    /// The open requests' timers: expiry, then escalation, then a reminder; how many acted.
    /// Only a request with a timer due reads the people it names.
    async fn request_timers(&self, now: Timestamp) -> Result<usize> {
        let mut done = 0;
        for r in self.store.open_requests().await? {
            let Some(timer) = self.timer_due(&r, now) else {
                continue;
            };
            let dir = self.timer_directory(&r).await?;
            let acted = match timer {
                Timer::Expire => self.expire_request(&dir, &r, now).await?,
                Timer::Escalate(k) => {
                    let Some(requester) = dir.get(&r.requester) else {
                        continue;
                    };
                    self.escalate(&dir, &r, requester, k, now).await?
                }
                Timer::Remind(k, started) => self.remind(&dir, &r, k, started, now).await?,
            };
            done += usize::from(acted);
        }
        Ok(done)
    }

    /// Which of an open request's timers is due at `now`, if any.
    fn timer_due(&self, r: &Request, now: Timestamp) -> Option<Timer> {
        let wf = self.org.workflow;
        if wf.expire_after.elapsed(r.created_at, now) {
            return Some(Timer::Expire);
        }
        let (RequestState::Awaiting(k), Some(step)) = (r.state, r.current_step()) else {
            return None;
        };
        let started = step.started_at?;
        if !step.escalated && wf.escalate_after.elapsed(started, now) {
            Some(Timer::Escalate(k))
        } else if !step.reminded && wf.remind_after.elapsed(started, now) {
            Some(Timer::Remind(k, started))
        } else {
            None
        }
    }

    /// Everyone a request's timers can name: its own people ([`Service::request_directory`])
    /// and the managers of its current approvers (an escalation goes to them).
    async fn timer_directory(&self, r: &Request) -> Result<PeopleByHandle> {
        let mut dir = self
            .request_directory(&r.requester, &r.app, &r.steps)
            .await?;
        let managers: Vec<Handle> = r
            .current_step()
            .map(|s| {
                s.approvers
                    .iter()
                    .filter_map(|h| dir.get(h).and_then(|p| p.manager.clone()))
                    .filter(|m| !dir.contains_key(m))
                    .collect()
            })
            .unwrap_or_default();
        dir.extend(self.directory_of(managers).await?);
        Ok(dir)
    }

    /// Expires a request nobody decided in time: its prompt says so, its requester is told.
    /// False when it cannot expire or another instance got there first.
    async fn expire_request(
        &self,
        dir: &PeopleByHandle,
        r: &Request,
        now: Timestamp,
    ) -> Result<bool> {
        let wf = self.org.workflow;
        let Ok(next) = r.state.on(Event::Expire) else {
            return Ok(false);
        };
        let mut change = Change::default();
        change
            .request_updates
            .push(RequestUpdate::to_state(r, next, now));
        change.audit.push(
            self.audit(AuditAction::RequestExpired)
                .subject(&r.requester)
                .app(&r.app)
                .request(r.id)
                .detail(format!("undecided after {}", wf.expire_after)),
        );
        if let Some(k) = r.state.step() {
            let holds = self.store.grants_of(&r.requester).await.unwrap_or_default();
            change.messages.push(Outgoing::edit(
                step_key(r.id, k),
                render::prompt_expired(&self.prompt_of(dir, r, &holds), &self.moment_shared(now)),
                Vec::new(),
            ));
        }
        change.messages.push(self.out(
            &r.requester,
            render::request_expired(r.id, &self.app_display(&r.app), wf.expire_after),
            vec![],
            None,
        ));
        self.commit_quietly(change).await
    }

    /// Adds the escalation targets to step `k` of a request nobody decided in time, and
    /// prompts them. False when another instance got there first.
    async fn escalate(
        &self,
        dir: &PeopleByHandle,
        r: &Request,
        requester: &Person,
        k: u32,
        now: Timestamp,
    ) -> Result<bool> {
        let wf = self.org.workflow;
        let step = &r.steps[k as usize];
        let earlier: Vec<Handle> = r.steps[..k as usize]
            .iter()
            .filter_map(|s| s.decision.as_ref().map(|d| d.by.clone()))
            .collect();
        let extra =
            policy::escalation_targets(&self.org, dir, &step.approvers, requester, &earlier);
        let mut steps = r.steps.clone();
        steps[k as usize].escalated = true;
        steps[k as usize].reminded = true;
        steps[k as usize].approvers.extend(extra.iter().cloned());
        let mut change = Change::default();
        change
            .request_updates
            .push(RequestUpdate::with_steps(r, r.state, steps.clone(), now));
        change.audit.push(
            self.audit(AuditAction::StepEscalated)
                .subject(&r.requester)
                .app(&r.app)
                .request(r.id)
                .detail(format!(
                    "step {} after {}: to {}",
                    k + 1,
                    wf.escalate_after,
                    Self::names(dir, &extra)
                )),
        );
        let mut shown = r.clone();
        shown.steps = steps;
        let holds = self.store.grants_of(&r.requester).await.unwrap_or_default();
        let text = render::escalated(wf.escalate_after, &self.prompt_of(dir, &shown, &holds));
        let buttons = decision_buttons(r.id, k);
        for h in &extra {
            change.messages.push(self.out(
                h,
                text.clone(),
                buttons.clone(),
                Some(step_key(r.id, k)),
            ));
        }
        self.commit_quietly(change).await
    }

    /// Reminds the approvers of step `k`, waiting since `started`. False when another
    /// instance got there first.
    async fn remind(
        &self,
        dir: &PeopleByHandle,
        r: &Request,
        k: u32,
        started: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        let mut steps = r.steps.clone();
        steps[k as usize].reminded = true;
        let mut change = Change::default();
        change
            .request_updates
            .push(RequestUpdate::with_steps(r, r.state, steps, now));
        change.audit.push(
            self.audit(AuditAction::StepReminded)
                .subject(&r.requester)
                .app(&r.app)
                .request(r.id)
                .detail(format!("step {} waiting since {}", k + 1, when(started))),
        );
        for h in &r.steps[k as usize].approvers {
            let text = render::reminder(
                r.id,
                &Self::name_of(dir, &r.requester),
                &self.app_display(&r.app),
                &self.moment_for(h, started).await,
            );
            change.messages.push(self.out(h, text, vec![], None));
        }
        self.commit_quietly(change).await
    }

    /// Warns holders of time-bound grants before the end — 24 h before, or a quarter of the
    /// duration before for shorter grants — with an Extend button.
    async fn warn_expiring(&self, now: Timestamp) -> Result<usize> {
        let mut done = 0;
        // A warning goes out at most a day before the end (a quarter of the grant's length
        // when shorter): grants ending later are not read.
        let until = now + chrono::TimeDelta::hours(24);
        for g in self.store.unwarned_expiring_grants(until).await? {
            let Some(end) = g.expires_at else { continue };
            let start = g.granted_at.unwrap_or(end);
            let lead = ((end - start) / 4).min(chrono::TimeDelta::hours(24));
            let from = end.checked_sub_signed(lead).unwrap_or(end);
            if now < from || now >= end {
                continue;
            }
            let ends_at = self.moment_for(&g.person, end).await;
            // Break-glass access cannot be extended: its warning has no Extend.
            let extendable = match g.source {
                GrantSource::Request(rid) => {
                    self.store.break_glass_of_request(rid).await?.is_none()
                }
                _ => true,
            };
            let extend = if extendable {
                vec![Button {
                    item: None,
                    label: ButtonLabel::Extend,
                    target: ClickTarget::Extend(g.id),
                }]
            } else {
                Vec::new()
            };
            let change = Change {
                grant_updates: vec![GrantUpdate {
                    id: g.id,
                    from: g.state,
                    state: g.state,
                    granted_at: g.granted_at,
                    expires_at: g.expires_at,
                    warned: true,
                }],
                audit: vec![
                    self.audit(AuditAction::GrantExpiryWarned)
                        .subject(&g.person)
                        .app(&g.app)
                        .detail(format!("ends {}", when(end))),
                ],
                messages: vec![self.out(
                    &g.person,
                    render::access_ending(&self.app_display(&g.app), &ends_at),
                    extend,
                    None,
                )],
                ..Change::default()
            };
            if !self.commit_quietly(change).await? {
                continue;
            }
            done += 1;
        }
        Ok(done)
    }
}

/// A request timer that is due.
enum Timer {
    /// Nobody decided in time.
    Expire,
    /// Step `k` waited long enough to go to someone else too.
    Escalate(u32),
    /// Step `k`, started then, waited long enough for a reminder.
    Remind(u32, Timestamp),
}

//! Read-only commands: `/access` and `/approvals`.

use super::*;
use crate::core::render::requests as render;

impl Service {
    /// `/access [user]`: what a person holds and has asked for. Others' access is shown only to
    /// their manager and to IT.
    pub(super) async fn access(&self, c: &Caller, user: Option<Handle>) -> Result<Reply> {
        let subject = match &user {
            None => c.person.clone(),
            Some(h) => match self.store.person(h).await? {
                Some(p) => p,
                None => return Ok(Refusal::NoSuchPerson(h.clone()).into()),
            },
        };
        if !policy::may_view_access(&self.org, &c.person, &subject) {
            let why = Refusal::AccessHidden {
                name: subject.name.clone(),
            };
            return self
                .refused(c, "/access", Some(&subject.handle), None, ReqRef::None, why)
                .await;
        }
        let grants = self.store.grants_of(&subject.handle).await?;
        let requests = self.store.requests_by(&subject.handle).await?;
        let open: Vec<&Request> = requests.iter().filter(|r| r.state.is_open()).collect();
        // Only the names the lines show: the open requests' current approvers.
        let dir = self
            .directory_of(
                open.iter()
                    .filter_map(|r| r.current_step())
                    .flat_map(|s| s.approvers.iter().cloned()),
            )
            .await?;
        let mut view = AccessView {
            whose: (subject.handle != c.person.handle).then(|| subject.name.clone()),
            grants: Vec::with_capacity(grants.len()),
            open: open
                .iter()
                .map(|r| (r.id, self.app_display(&r.app), Self::wait_of(&dir, r)))
                .collect(),
        };
        for g in &grants {
            view.grants.push(self.grant_line(c, g).await?);
        }
        Ok(Reply::text(render::access(&view)))
    }

    /// One grant's line in `/access`: its app, its state, where it came from, its end.
    async fn grant_line(&self, c: &Caller, g: &Grant) -> Result<GrantLine> {
        let state = match g.state {
            GrantState::Active => GrantShown::Active,
            GrantState::Pending => GrantShown::Pending,
            GrantState::Revoking => match self.stalled_removal(g).await? {
                Some(a) => GrantShown::RemovalStalled {
                    unverified: a
                        .last_error
                        .as_deref()
                        .is_some_and(ConnectorError::is_unverified_text),
                },
                None => GrantShown::Removing,
            },
            other => GrantShown::Other(other),
        };
        Ok(GrantLine {
            app: self.app_display(&g.app),
            state,
            source: g.source,
            until: g.expires_at.map(|t| self.moment_to(c, t)),
        })
    }

    /// `/approvals`: the requests waiting for the caller's decision, with their buttons.
    pub(super) async fn approvals(&self, c: &Caller) -> Result<Reply> {
        let me = &c.person.handle;
        let waiting: Vec<(Request, u32)> = self
            .store
            .open_requests()
            .await?
            .into_iter()
            .filter_map(|r| match (r.state, r.current_step()) {
                (RequestState::Awaiting(k), Some(step)) if step.approvers.contains(me) => {
                    Some((r, k))
                }
                _ => None,
            })
            .collect();
        // Plans (offboardings, role changes) waiting for the caller's Confirm. Confirmers are
        // IT admins, so only they pay for the look-up.
        let plans: Vec<Plan> = if self.org.it_admins.contains(me) {
            self.store
                .open_plans()
                .await?
                .into_iter()
                .filter(|p| p.confirmers.contains(me))
                .collect()
        } else {
            Vec::new()
        };
        // Only the names the lines show.
        let dir = self
            .directory_of(
                waiting.iter().map(|(r, _)| r.requester.clone()).chain(
                    plans
                        .iter()
                        .flat_map(|p| [p.subject.clone(), p.created_by.clone()]),
                ),
            )
            .await?;
        let mut buttons = match waiting.first() {
            Some((r, k)) => decision_buttons(r.id, *k),
            None => Vec::new(),
        };
        if let Some(p) = plans.first()
            && buttons.is_empty()
        {
            buttons = Self::plan_buttons(p.id);
        }
        let requests: Vec<WaitingLine> = waiting
            .iter()
            .map(|(r, k)| self.waiting_line(c, &dir, r, *k))
            .collect();
        let plans: Vec<PlanLine> = plans.iter().map(|p| self.plan_line(c, &dir, p)).collect();
        Ok(Reply {
            text: render::approvals(&requests, &plans),
            buttons,
            key: None,
            form: None,
        })
    }

    /// One request's line in `/approvals`: step `k` waits for the caller.
    fn waiting_line(&self, c: &Caller, dir: &PeopleByHandle, r: &Request, k: u32) -> WaitingLine {
        WaitingLine {
            id: r.id,
            requester: Self::name_of(dir, &r.requester),
            app: self.app_display(&r.app),
            reason: r.reason.clone(),
            k,
            of: r.steps.len(),
            since: r
                .current_step()
                .and_then(|s| s.started_at)
                .map(|t| self.moment_to(c, t)),
        }
    }

    /// One open plan's line in `/approvals`: it waits for `c`'s Confirm.
    fn plan_line(&self, c: &Caller, dir: &PeopleByHandle, p: &Plan) -> PlanLine {
        PlanLine {
            id: p.id,
            kind: p.kind,
            subject: Self::name_of(dir, &p.subject),
            by: Self::name_of(dir, &p.created_by),
            at: self.moment_to(c, p.created_at),
        }
    }
}

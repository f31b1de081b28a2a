//! Read-only commands: `/access` and `/approvals`.

use super::*;

impl Service {
    /// `/access [user]`: what a person holds and has asked for. Others' access is shown only to
    /// their manager and to IT.
    pub(super) async fn access(&self, c: &Caller, user: Option<Handle>) -> Result<Reply> {
        let subject = match &user {
            None => c.person.clone(),
            Some(h) => match self.store.person(h).await? {
                Some(p) => p,
                None => {
                    return Ok(Reply::text(format!(
                        "There is nobody with the handle \"{h}\"."
                    )));
                }
            },
        };
        if !policy::may_view_access(&self.org, &c.person, &subject) {
            let why = format!(
                "Only {}'s manager or IT can see their access.",
                subject.name
            );
            return self
                .refuse(c, "/access", Some(&subject.handle), None, ReqRef::None, why)
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
        let whose = if subject.handle == c.person.handle {
            "Your access".to_owned()
        } else {
            format!("Access of {}", subject.name)
        };
        let mut lines = vec![format!("{whose}:")];
        if grants.is_empty() {
            lines.push("- no apps yet".into());
        }
        for g in &grants {
            lines.push(self.grant_line(c, g).await?);
        }
        if !open.is_empty() {
            lines.push("Pending requests:".into());
            for r in open {
                lines.push(format!(
                    "- #{} {}: {}",
                    r.id,
                    self.app_display(&r.app),
                    self.describe_wait(&dir, r)
                ));
            }
        }
        Ok(Reply::text(lines.join("\n")))
    }

    /// One grant's line in `/access`: its app, its state, where it came from, its end.
    async fn grant_line(&self, c: &Caller, g: &Grant) -> Result<String> {
        let state = match g.state {
            GrantState::Active => String::new(),
            GrantState::Pending => " (being set up)".into(),
            GrantState::Revoking => match self.stalled_removal(g).await? {
                Some(a)
                    if a.last_error
                        .as_deref()
                        .is_some_and(ConnectorError::is_unverified_text) =>
                {
                    " (removal not verified: IT can retry)".into()
                }
                Some(_) => " (removal failed: IT can retry)".into(),
                None => " (being removed)".into(),
            },
            other => format!(" ({})", other.as_str()),
        };
        let source = match g.source {
            GrantSource::Birthright => "birthright".to_owned(),
            GrantSource::Request(r) => format!("request #{r}"),
        };
        let until = g
            .expires_at
            .map(|t| format!(", until {}", self.when_to(c, t)))
            .unwrap_or_default();
        Ok(format!(
            "- {}{state} — {source}{until}",
            self.app_display(&g.app)
        ))
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
        let mut lines = Vec::new();
        let mut buttons = Vec::new();
        for (r, k) in &waiting {
            lines.push(self.waiting_line(c, &dir, r, *k));
            if buttons.is_empty() {
                buttons = decision_buttons(r.id, *k);
            }
        }
        self.plan_lines(c, &dir, &plans, &mut lines);
        if let Some(p) = plans.first()
            && buttons.is_empty()
        {
            buttons = Self::plan_buttons(p.id);
        }
        if lines.is_empty() {
            return Ok(Reply::text("Nothing is waiting for your decision."));
        }
        lines.insert(0, format!("Waiting for your decision ({}):", lines.len()));
        if lines.len() > 2 {
            lines.push("The buttons decide the first one; each one's message has its own.".into());
        }
        Ok(Reply {
            text: lines.join("\n"),
            buttons,
            key: None,
        })
    }

    /// One request's line in `/approvals`: step `k` waits for the caller.
    fn waiting_line(&self, c: &Caller, dir: &Directory, r: &Request, k: u32) -> String {
        let started = r.current_step().and_then(|s| s.started_at);
        format!(
            "- #{} {} asks for {} — {} (step {} of {}), waiting since {}",
            r.id,
            Self::name_of(dir, &r.requester),
            self.app_display(&r.app),
            r.reason.as_deref().unwrap_or("no reason given"),
            k + 1,
            r.steps.len(),
            started.map_or_else(|| "-".into(), |t| self.when_to(c, t))
        )
    }

    /// Adds a line to `lines` for each open plan (oldest first) waiting for `c`'s Confirm.
    fn plan_lines(&self, c: &Caller, dir: &Directory, plans: &[Plan], lines: &mut Vec<String>) {
        for p in plans {
            let what = match p.kind {
                PlanKind::Offboard => "offboarding",
                PlanKind::Role => "role change",
                PlanKind::Onboard => "onboarding",
            };
            lines.push(format!(
                "- Plan #{}: {what} of {}, asked by {} at {} — waiting for your Confirm",
                p.id,
                Self::name_of(dir, &p.subject),
                Self::name_of(dir, &p.created_by),
                self.when_to(c, p.created_at)
            ));
        }
    }
}

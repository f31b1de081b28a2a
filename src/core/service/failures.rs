//! An action given up (failed for good) or whose outcome could not be verified: what is true
//! is recorded, the person is told it, and IT gets a Retry.

use super::*;
use crate::core::render::requests as render;

impl Service {
    /// An action failed for good, or its outcome could not be verified (the connector's read
    /// cannot be trusted): a grant and its request fail; a removal stays "revoking" (never
    /// "revoked" on an answer nobody could check). The person is told what is true, IT is
    /// told with a Retry button.
    pub(super) async fn fail_action(&self, action: &Action, e: ConnectorError) -> Result<()> {
        let unverified = matches!(e, ConnectorError::Unverifiable(_));
        let (e, cause) = (&e, &render::engine::give_up_cause(action.attempts, &e));
        self.retry_on_conflict(&format!("action {}", action.id), || {
            self.fail_once(action, e, cause, unverified)
        })
        .await
    }

    /// One read-decide-commit of [`Service::fail_action`].
    async fn fail_once(
        &self,
        action: &Action,
        e: &ConnectorError,
        cause: &str,
        unverified: bool,
    ) -> Result<Attempt<()>> {
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
        change
            .audit
            .push(self.failed_event(action, cause, unverified));
        let mut grant = None;
        if let Some(g) = action.grant {
            grant = self.store.grant(g).await?;
        }
        if let Some(g) = &grant
            && action.op == ActionOp::Grant
        {
            self.fail_grant(&mut change, g, now).await?;
        }
        let dir = self.directory_of([action.person.clone()]).await?;
        let app = action
            .app
            .as_ref()
            .map(|a| self.app_display(a))
            .unwrap_or_else(|| render::connector_account(&action.connector));
        let offboarded = dir
            .get(&action.person)
            .is_some_and(|p| p.status == PersonStatus::Offboarded);
        let told = grant.is_some() && !offboarded;
        if let Some(news) = holder_news(action.op, e, unverified, told) {
            let text = render::failure_news(&app, &news);
            change
                .messages
                .push(self.out(&action.person, text, vec![], None));
        }
        change
            .messages
            .extend(self.retry_prompts(action, &dir, &app, cause, unverified));
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
    }

    /// The audit row of an action given up or unverified.
    fn failed_event(&self, action: &Action, cause: &str, unverified: bool) -> AuditEvent {
        let (name, outcome) = match (unverified, action.op) {
            (true, op) => (AuditAction::unverified(op), AuditOutcome::Unverified),
            (false, op) => (AuditAction::failed(op), AuditOutcome::Failed),
        };
        self.audit(name)
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
            ))
    }

    /// A grant whose set-up failed fails, and its request with it.
    async fn fail_grant(&self, change: &mut Change, g: &Grant, now: Timestamp) -> Result<()> {
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
        Ok(())
    }

    /// The task for every IT admin, with a Retry button.
    fn retry_prompts(
        &self,
        action: &Action,
        dir: &PeopleByHandle,
        app: &str,
        cause: &str,
        unverified: bool,
    ) -> Vec<Outgoing> {
        let text = render::retry_prompt(
            action.id,
            action.op,
            app,
            &Self::name_of(dir, &action.person),
            &action.connector,
            cause,
            unverified,
        );
        let retry = vec![Button {
            item: None,
            label: ButtonLabel::Retry,
            target: ClickTarget::Retry(action.id),
        }];
        self.org
            .it_admins
            .iter()
            .map(|a| self.out(a, text.clone(), retry.clone(), Some(action_key(action.id))))
            .collect()
    }
}

/// What the person is told of a failed action, if anything: a set-up failed; a removal
/// (told only when `told`: a grant of theirs, still here) not seen done.
fn holder_news(
    op: ActionOp,
    e: &ConnectorError,
    unverified: bool,
    told: bool,
) -> Option<FailureNews> {
    match op {
        ActionOp::Grant => Some(FailureNews::SetupFailed),
        // The holder learns that the removal was not seen, never that it was done.
        ActionOp::Revoke if told => Some(if unverified {
            FailureNews::RemovalUnverified(e.to_string())
        } else {
            FailureNews::RemovalFailed
        }),
        _ => None,
    }
}

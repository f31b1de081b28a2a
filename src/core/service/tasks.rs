//! IT's buttons on connector actions: Done on a manual task, Retry on a failed action.

use super::*;
use crate::core::render::requests as render;

impl Service {
    /// IT's buttons on an action (`what`: done, retry) need the IT-admin capability: it, with
    /// the action as read, or the refusal `why` (audited), said before anything about the
    /// action (whether it exists, whose it is).
    pub(super) async fn it_only_for_action(
        &self,
        c: &Caller,
        id: ActionId,
        what: &str,
        why: ActionRefusal,
    ) -> Result<std::result::Result<(policy::ItAdmin, Option<Action>), Reply>> {
        let action = self.store.action(id).await?;
        if let Some(admin) = policy::it_admin(&self.org, &c.person) {
            return Ok(Ok((admin, action)));
        }
        self.refused(
            c,
            what,
            action.as_ref().map(|a| &a.person),
            action.as_ref().and_then(|a| a.app.as_ref()),
            action.as_ref().map_or(ReqRef::None, |a| a.request.into()),
            why,
        )
        .await
        .map(Err)
    }

    /// Done on a manual task, by an IT admin: once.
    pub(super) async fn manual_done(
        &self,
        _admin: &policy::ItAdmin,
        c: &Caller,
        id: ActionId,
        action: Option<Action>,
    ) -> Result<Reply> {
        let Some(action) = action else {
            return Ok(ActionRefusal::NoSuchTask(id).into());
        };
        if action.state != ActionState::Waiting {
            return Ok(ActionRefusal::TaskAlready {
                id,
                state: Some(action.state),
            }
            .into());
        }
        // One transaction, conditional on the task still waiting: of simultaneous clicks,
        // exactly one completes it; the others are told it is done.
        if !self
            .complete_action(&action, Self::by(c), c.chat_id.as_deref(), AuditOutcome::Ok)
            .await?
        {
            let state = self.store.action(id).await?.map(|a| a.state);
            return Ok(ActionRefusal::TaskAlready { id, state }.into());
        }
        Ok(Reply::text(render::task_marked_done(id)))
    }

    /// Retry on a failed action, by an IT admin.
    pub(super) async fn retry(
        &self,
        _admin: &policy::ItAdmin,
        c: &Caller,
        id: ActionId,
        action: Option<Action>,
    ) -> Result<Reply> {
        let Some(action) = action else {
            return Ok(ActionRefusal::NoSuchAction(id).into());
        };
        if action.state != ActionState::Failed {
            return Ok(ActionRefusal::NothingToRetry {
                id,
                state: action.state,
            }
            .into());
        }
        let grant = match action.grant {
            Some(g) => self.store.grant(g).await?,
            None => None,
        };
        if self.would_give_back(&action, grant.as_ref()).await? {
            return Ok(ActionRefusal::WouldGiveBack {
                id,
                app: action.app.as_ref().map(|a| self.app_display(a)),
                person: action.person.clone(),
            }
            .into());
        }
        let change = self.retry_change(c, &action, grant).await?;
        if !self.commit_quietly(change).await? {
            return Ok(ActionRefusal::Changed(id).into());
        }
        Ok(Reply::text(render::queued_again(id)))
    }

    /// A failed set-up is not retried once the access is being taken away (an offboarding
    /// or /revoke moved its grant on): that would give it back.
    async fn would_give_back(&self, action: &Action, grant: Option<&Grant>) -> Result<bool> {
        Ok(action.op == ActionOp::Grant
            && (grant.is_some_and(|g| g.state != GrantState::Failed)
                || self
                    .store
                    .person(&action.person)
                    .await?
                    .is_some_and(|p| p.status == PersonStatus::Offboarded)))
    }

    /// The retry's one transaction: the action queued again (attempts reset), a failed grant
    /// and its request back to pending, the audit row, and the Retry buttons taken off.
    async fn retry_change(
        &self,
        c: &Caller,
        action: &Action,
        grant: Option<Grant>,
    ) -> Result<Change> {
        let (id, now) = (action.id, self.clock.now());
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
            render::retried(id, &c.person.name, &self.moment_shared(now)),
            Vec::new(),
        ));
        Ok(change)
    }
}

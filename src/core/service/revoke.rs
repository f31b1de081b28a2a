//! `/revoke`: cancelling an open request or removing access; and the removal of a grant and
//! the cancelling of a request every other use case (expiry, a move, an offboarding) shares.

use super::lifecycle::Initiator;
use super::*;
use crate::core::render::requests as render;

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
                .refused(
                    c,
                    "/revoke",
                    Some(&target),
                    None,
                    ReqRef::None,
                    RevokeRefusal::ItOnly,
                )
                .await;
        }
        let Some(subject) = self.store.person(&target).await? else {
            return Ok(Refusal::NoSuchPerson(target).into());
        };
        let app = match self.find_app(raw_app) {
            Ok(a) => a,
            Err(refusal) => return Ok(refusal.into()),
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
            return Ok(RevokeRefusal::NotHeld {
                own,
                app: app.display.clone(),
            }
            .into());
        };
        if let Some(busy) = self.not_revocable(&g, app).await? {
            return Ok(busy.into());
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
        Ok(Reply::text(render::removing(
            &app.display,
            own,
            &subject.name,
        )))
    }

    /// The refusal when grant `g` of `app` cannot be revoked now (it is being removed, or
    /// still being set up); None when it is active.
    async fn not_revocable(&self, g: &Grant, app: &App) -> Result<Option<RevokeRefusal>> {
        let app = app.display.clone();
        match g.state {
            GrantState::Active => Ok(None),
            GrantState::Revoking => Ok(Some(match self.stalled_removal(g).await? {
                Some(a) => RevokeRefusal::RemovalStalled {
                    app,
                    error: a.last_error,
                    action: a.id,
                },
                None => RevokeRefusal::AlreadyBeingRemoved { app },
            })),
            _ => Ok(Some(RevokeRefusal::StillBeingSetUp { app })),
        }
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
        let request = match g.source {
            GrantSource::Request(rid) => self.store.request(rid).await?,
            _ => None,
        };
        self.add_revoke(change, (actor, chat), subject, g, request.as_ref(), why)
    }

    /// [`Self::revoke_grant`] with the grant's request already read (`None` for a
    /// birthright, or a request that no longer exists).
    pub(super) fn add_revoke(
        &self,
        change: &mut Change,
        (actor, chat): (&Actor, Option<&str>),
        subject: &Person,
        g: &Grant,
        request: Option<&Request>,
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
        if let Some(r) = request
            && let Ok(next) = r.state.on(Event::Revoke)
        {
            req = r.id.into();
            change
                .request_updates
                .push(RequestUpdate::to_state(r, next, now));
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
        self.cancel_request_by(&Initiator::caller(c), r, reason)
            .await
    }

    /// Cancels an open request on behalf of a person, the system or HR.
    pub(super) async fn cancel_request_by(
        &self,
        by: &Initiator,
        r: Request,
        reason: Option<String>,
    ) -> Result<Reply> {
        let now = self.clock.now();
        let Ok(next) = r.state.on(Event::Cancel) else {
            return Ok(RevokeRefusal::CannotCancel {
                id: r.id,
                state: r.state,
            }
            .into());
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
            let edit = self
                .cancelled_prompt(&dir, &r, k, by, reason.as_deref(), now)
                .await;
            change.messages.push(edit);
        }
        if by.handle.as_ref() != Some(&r.requester) {
            change.messages.push(self.out(
                &r.requester,
                render::cancelled_news(r.id, &self.app_display(&r.app), &by.name),
                vec![],
                None,
            ));
        }
        match self.commit(change).await {
            Ok(_) => self.messages_committed().await,
            Err(StoreError::Conflict) => {
                return Ok(RevokeRefusal::Changed(r.id).into());
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Reply::text(render::cancelled(
            r.id,
            &self.app_display(&r.app),
        )))
    }

    /// Step `k`'s prompt as its approvers now see it: cancelled, by whom and why, no buttons.
    async fn cancelled_prompt(
        &self,
        dir: &PeopleByHandle,
        r: &Request,
        k: u32,
        by: &Initiator,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Outgoing {
        let holds = self.store.grants_of(&r.requester).await.unwrap_or_default();
        Outgoing::edit(
            step_key(r.id, k),
            render::prompt_cancelled(
                &self.prompt_of(dir, r, &holds),
                &by.name,
                &self.moment_shared(now),
                reason,
            ),
            Vec::new(),
        )
    }
}

//! After a break-glass: Ratify and Revoke now by a skipped approver or IT, and the timer that
//! tells IT when nobody ratified in time (revoking the access under `auto_revoke`).

use super::*;
use crate::core::render::step_up::{self as words, BreakGlassRefusal};

impl Service {
    /// Ratify (`ratify`) or Revoke now on break-glass `id`, as `c`. Conditional on the
    /// record's version: of simultaneous clicks one decides, the others are told.
    pub(super) async fn ratify(&self, c: &Caller, id: BreakGlassId, ratify: bool) -> Result<Reply> {
        self.retry_on_conflict(&format!("break-glass {id}"), || {
            self.ratify_once(c, id, ratify)
        })
        .await
    }

    /// One read-decide-commit of [`Service::ratify`].
    async fn ratify_once(
        &self,
        c: &Caller,
        id: BreakGlassId,
        ratify: bool,
    ) -> Result<Attempt<Reply>> {
        let (b, req, is_it) = match self.ratify_check(c, id, ratify).await? {
            Ok(ok) => ok,
            Err(refused) => return Ok(Attempt::Done(refused)),
        };
        let now = self.clock.now();
        let me = &c.person.handle;
        let holder = self.store.person(&b.person).await?;
        let mut after = b.clone();
        let mut change = Change::default();
        let at = self.org.timezone.show(now);
        let mut revoking = false;
        let how = if ratify && after.revoked.is_some() {
            // IT settles a revoked one: the holder may use break-glass again.
            words::settled_by(&c.person.name, &at)
        } else if ratify {
            if after.ratified.is_none() {
                after.ratified = Some((me.clone(), now));
            }
            words::ratified_by(&c.person.name, &at)
        } else {
            if after.revoked.is_none() {
                after.revoked = Some((me.to_string(), now));
                if let (Some(h), Some(g)) = (&holder, req.grant) {
                    revoking = self.revoke_live(&mut change, c, h, g, &b).await?;
                }
            }
            words::revoke_requested_by(&c.person.name, &at)
        };
        // Ratified by anyone allowed, or settled by IT: the holder may use break-glass again.
        if ratify || is_it {
            after.cleared = Some((me.clone(), now));
        }
        let settled = after.cleared.is_some();
        change.break_glass_updates.push(BreakGlassUpdate { after });
        // A revoke queued above wrote its own audit row.
        let audited = revoking;
        self.ratified_messages(&mut change, c, &b, holder.as_ref(), (ratify, audited), &how);
        if !ratify && !is_it && !settled {
            self.tell_it_revoked(&mut change, c, &b, holder.as_ref());
        }
        match self.commit(change).await {
            Ok(_) => {}
            Err(StoreError::Conflict) => return Ok(Attempt::Conflict),
            Err(e) => return Err(e.into()),
        }
        self.messages_committed().await;
        Ok(Attempt::Done(Reply::text(format!(
            "Break-glass #{id}: {how}."
        ))))
    }

    /// Whether `c` may ratify (or revoke) break-glass `id` now: the record, its request and
    /// whether `c` is IT; else the refusal (audited), which reveals nothing to outsiders.
    async fn ratify_check(
        &self,
        c: &Caller,
        id: BreakGlassId,
        ratify: bool,
    ) -> Result<std::result::Result<(BreakGlass, Request, bool), Reply>> {
        let me = &c.person.handle;
        let what = if ratify { "ratify" } else { "revoke now" };
        let b = self.store.break_glass(id).await?;
        let req = match &b {
            Some(b) => self.store.request(b.request).await?,
            None => None,
        };
        let is_it = policy::it_admin(&self.org, &c.person).is_some();
        let (Some(b), Some(req)) = (b, req) else {
            let why = BreakGlassRefusal::Unknown(id);
            return self
                .refused(c, what, None, None, ReqRef::None, why)
                .await
                .map(Err);
        };
        let skipped = req.steps.iter().any(|s| s.approvers.contains(me));
        if !is_it && !skipped {
            let why = BreakGlassRefusal::NotReviewer(id);
            return self
                .refused(c, what, None, None, ReqRef::None, why)
                .await
                .map(Err);
        }
        if let Err(why) = ratify_allowed(&b, me, is_it, ratify, self.clock.now()) {
            return self
                .refused(
                    c,
                    what,
                    Some(&b.person),
                    Some(&b.app),
                    b.request.into(),
                    why,
                )
                .await
                .map(Err);
        }
        Ok(Ok((b, req, is_it)))
    }

    /// The decision's audit row, its prompts edited to show it, and the holder told.
    fn ratified_messages(
        &self,
        change: &mut Change,
        c: &Caller,
        b: &BreakGlass,
        holder: Option<&Person>,
        (ratify, audited): (bool, bool),
        how: &str,
    ) {
        if !audited {
            change.audit.push(
                self.audit(if ratify {
                    AuditAction::BreakGlassRatified
                } else {
                    AuditAction::GrantRevokeRequested
                })
                .by(Self::by(c))
                .chat(c.chat_id.as_deref())
                .subject(&b.person)
                .app(&b.app)
                .request(b.request)
                .detail(format!("break-glass {}: {how}", b.id)),
            );
        }
        change.messages.push(Outgoing::edit(
            MessageKey::BreakGlass(b.id),
            words::ratify_decided(&self.break_glass_text(b, holder), how),
            Vec::new(),
        ));
        let app = self.app_display(&b.app);
        let news = if ratify {
            words::ratified_news(&app, &c.person.name)
        } else {
            words::revoked_news(&app, &c.person.name)
        };
        change
            .messages
            .push(self.out(&b.person, news, vec![], None));
    }

    /// Revoked by an approver: IT settles it (Ratify: the emergency was real).
    fn tell_it_revoked(
        &self,
        change: &mut Change,
        c: &Caller,
        b: &BreakGlass,
        holder: Option<&Person>,
    ) {
        let name = holder.map_or_else(|| b.person.to_string(), |p| p.name.clone());
        let text = words::revoked_to_it(b.id, &c.person.name, &name, &self.app_display(&b.app));
        for to in self.reviewers_of(&[]) {
            change.messages.push(Outgoing {
                kind: crate::core::outbox::OutKind::Send(to),
                text: text.clone(),
                buttons: ratify_buttons(b.id),
                key: Some(MessageKey::BreakGlass(b.id)),
                dedupe: Some(format!("bg:{}:revoked", b.id)),
            });
        }
    }

    /// Queues the removal of a break-glass's grant, when it is still held (audited as
    /// `grant.revoke_requested`); whether it did.
    async fn revoke_live(
        &self,
        change: &mut Change,
        c: &Caller,
        holder: &Person,
        g: GrantId,
        b: &BreakGlass,
    ) -> Result<bool> {
        let Some(g) = self.store.grant(g).await? else {
            return Ok(false);
        };
        if !matches!(
            g.state,
            GrantState::Active | GrantState::Pending | GrantState::Failed
        ) {
            return Ok(false);
        }
        let why = format!("break-glass {} revoked now by {}", b.id, c.person.name);
        self.revoke_grant(change, &Self::by(c), c.chat_id.as_deref(), holder, &g, &why)
            .await?;
        Ok(true)
    }

    /// The ratification prompt's text, rebuilt from the record.
    fn break_glass_text(&self, b: &BreakGlass, holder: Option<&Person>) -> String {
        let name = holder.map_or_else(|| b.person.to_string(), |p| p.name.clone());
        words::ratify_prompt(
            &name,
            &self.app_display(&b.app),
            &b.reason,
            &self.org.timezone.show(b.granted_at),
            &self.org.timezone.show(b.ratify_by),
        )
        .join(&b.request.to_string())
    }

    /// Break-glass grants nobody ratified in time: IT is told (with Ratify / Revoke now),
    /// and under `auto_revoke` the access is revoked. How many.
    pub(super) async fn break_glass_overdue(&self, now: Timestamp) -> Result<usize> {
        let mut done = 0;
        for b in self.store.overdue_break_glass(now).await? {
            // A grant that moved meanwhile (its provisioning finished) is read again.
            let overdue = self
                .retry_on_conflict(&format!("break-glass {}", b.id), || {
                    self.overdue_once(b.id, now)
                })
                .await?;
            if overdue {
                done += 1;
            }
        }
        Ok(done)
    }

    /// One read-decide-commit of one overdue break-glass: IT told (and, under
    /// `auto_revoke`, the access revoked); false when it was settled meanwhile.
    async fn overdue_once(&self, id: BreakGlassId, now: Timestamp) -> Result<Attempt<bool>> {
        let Some(b) = self.store.break_glass(id).await? else {
            return Ok(Attempt::Done(false));
        };
        if b.ratified.is_some() || b.cleared.is_some() || b.overdue_at.is_some() {
            return Ok(Attempt::Done(false));
        }
        let auto = self
            .org
            .app(&b.app)
            .and_then(|a| a.break_glass.as_ref())
            .is_some_and(|t| t.auto_revoke);
        let holder = self.store.person(&b.person).await?;
        let mut change = Change::default();
        let mut after = b.clone();
        after.overdue_at = Some(now);
        let mut revoking = false;
        if auto
            && b.revoked.is_none()
            && let Some(h) = &holder
            && let Some(g) = self.store.request(b.request).await?.and_then(|r| r.grant)
            && let Some(g) = self.store.grant(g).await?
            && matches!(
                g.state,
                GrantState::Active | GrantState::Pending | GrantState::Failed
            )
        {
            let why = format!("break-glass {} not ratified in time (auto_revoke)", b.id);
            self.revoke_grant(&mut change, &Actor::System, None, h, &g, &why)
                .await?;
            after.revoked = Some(("system".into(), now));
            revoking = true;
        }
        let name = holder
            .as_ref()
            .map_or_else(|| b.person.to_string(), |p| p.name.clone());
        let app = self.app_display(&b.app);
        change.audit.push(
            self.audit(AuditAction::BreakGlassOverdue)
                .subject(&b.person)
                .app(&b.app)
                .request(b.request)
                .outcome(AuditOutcome::Waiting)
                .detail(format!(
                    "break-glass {}: not ratified by {}{}",
                    b.id,
                    when(b.ratify_by),
                    if revoking {
                        "; revoking (auto_revoke)"
                    } else {
                        ""
                    }
                )),
        );
        change.break_glass_updates.push(BreakGlassUpdate { after });
        let text = words::overdue_to_it(b.id, &name, &app, &b.reason, revoking);
        for to in self.reviewers_of(&[]) {
            change.messages.push(Outgoing {
                kind: crate::core::outbox::OutKind::Send(to),
                text: text.clone(),
                buttons: ratify_buttons(b.id),
                key: Some(MessageKey::BreakGlass(b.id)),
                dedupe: Some(format!("bg:{}:overdue", b.id)),
            });
        }
        match self.commit(change).await {
            Ok(_) => {}
            Err(StoreError::Conflict) => return Ok(Attempt::Conflict),
            Err(e) => return Err(e.into()),
        }
        self.messages_committed().await;
        Ok(Attempt::Done(true))
    }
}

/// Whether `me` (IT or not) may ratify (or revoke now) `b` at `now`.
fn ratify_allowed(
    b: &BreakGlass,
    me: &Handle,
    is_it: bool,
    ratify: bool,
    now: Timestamp,
) -> std::result::Result<(), BreakGlassRefusal> {
    let settled = |how: String| BreakGlassRefusal::Settled { id: b.id, how };
    if ratify && &b.person == me {
        return Err(BreakGlassRefusal::OwnRatify);
    }
    if let Some((by, _)) = &b.cleared {
        let how = match (&b.ratified, &b.revoked) {
            (Some(_), _) => format!("ratified by {by}"),
            (None, Some((r, _))) => format!("revoke requested by {r}, cleared by {by}"),
            (None, None) => format!("cleared by {by}"),
        };
        return Err(settled(how));
    }
    if let Some((r, _)) = &b.revoked
        && !is_it
    {
        return Err(settled(format!("revoke requested by {r}")));
    }
    if ratify && !is_it && now > b.ratify_by {
        return Err(BreakGlassRefusal::LateRatifyItOnly(b.id));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Handle {
        Handle::parse(s).unwrap()
    }

    #[test]
    fn who_may_ratify_or_revoke_and_when() {
        let t = |m: i64| chrono::DateTime::from_timestamp(m * 60, 0).unwrap();
        let b = BreakGlass {
            id: BreakGlassId(1),
            request: RequestId(1),
            person: h("carol"),
            app: AppName::parse("github").unwrap(),
            reason: "INC-1".into(),
            granted_at: t(0),
            ratify_by: t(60),
            ratified: None,
            overdue_at: None,
            revoked: None,
            cleared: None,
            version: 1,
        };
        assert!(ratify_allowed(&b, &h("grace"), false, true, t(30)).is_ok());
        assert_eq!(
            ratify_allowed(&b, &h("carol"), true, true, t(30)),
            Err(BreakGlassRefusal::OwnRatify)
        );
        assert_eq!(
            ratify_allowed(&b, &h("grace"), false, true, t(61)),
            Err(BreakGlassRefusal::LateRatifyItOnly(b.id))
        );
        assert!(ratify_allowed(&b, &h("dana"), true, true, t(61)).is_ok());
        assert!(ratify_allowed(&b, &h("grace"), false, false, t(61)).is_ok());
        let revoked = BreakGlass {
            revoked: Some(("grace".into(), t(10))),
            ..b.clone()
        };
        assert!(ratify_allowed(&revoked, &h("bob"), false, true, t(20)).is_err());
        assert!(ratify_allowed(&revoked, &h("dana"), true, true, t(20)).is_ok());
        let cleared = BreakGlass {
            ratified: Some((h("grace"), t(5))),
            cleared: Some((h("grace"), t(5))),
            ..b
        };
        assert!(matches!(
            ratify_allowed(&cleared, &h("dana"), true, false, t(20)),
            Err(BreakGlassRefusal::Settled { .. })
        ));
    }
}

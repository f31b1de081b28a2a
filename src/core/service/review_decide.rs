//! A reviewer's Keep, Revoke or Keep all on a review page: only the item's reviewers, never
//! the holder; Revoke (and Keep on a `privileged` app) asks why; behind step-up when
//! `step_up_for` names `review`; conditional on the item (and its page) as read, so ten
//! simultaneous clicks make one decision; audited as `review.decided`; the page edited.

use super::step_up::Gate;
use super::*;
use crate::core::customid::ReviewAction;

/// How often a decision is tried again when another decision on its page came first.
const PAGE_RETRIES: usize = 5;

impl Service {
    /// A click on a review page's button (or its submitted form).
    pub(super) async fn review_click(
        &self,
        c: &Caller,
        custom_id: &str,
        id: ReviewItemId,
        action: ReviewAction,
        fields: Option<&HashMap<String, String>>,
    ) -> Result<ClickReply> {
        let me = &c.person.handle;
        let item = self.store.review_item(id).await?;
        let Some(item) = item.filter(|i| i.reviewed_by(me) && &i.person != me) else {
            // Whatever the item is (or whether it exists), a stranger learns nothing of it.
            let why = Refusal::NotYourButton;
            let reply = self
                .refused(c, "review", None, None, ReqRef::None, why)
                .await?;
            return Ok(ClickReply::Reply(reply));
        };
        let Some(review) = self.store.review(item.review).await? else {
            return Err(ServiceError::Inconsistent(format!(
                "item {id} of no review"
            )));
        };
        if review.state != ReviewState::Open {
            return Ok(ClickReply::Reply(Reply::text(format!(
                "Review #{} is {}; nothing more is needed.",
                review.id,
                review.state.as_str()
            ))));
        }
        let targets = self.review_targets(&item, action, me).await?;
        if targets.is_empty() {
            return Ok(ClickReply::Reply(Reply::text(already(&item))));
        }
        let reason = fields
            .and_then(|m| m.get("reason"))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        let privileged = targets
            .iter()
            .any(|i| self.org.app(&i.app).is_some_and(|a| a.privileged));
        let needs_reason = action == ReviewAction::Revoke || privileged;
        if needs_reason && reason.is_none() {
            return Ok(ClickReply::Form(
                self.reason_form(custom_id, &review, &targets, action),
            ));
        }
        if self.org.workflow.step_up_for.contains(Confirmable::Review) {
            let title = format!("Review #{}: step-up code", review.id);
            match self.step_up(c, custom_id, title, fields).await? {
                Gate::Pass => {}
                Gate::Answer(a) => return Ok(a),
            }
        }
        let reason = reason.unwrap_or_default();
        let work = self.review_decide_retrying(c, &review, item, action, &reason);
        Ok(ClickReply::Reply(self.as_stepped_up(c, work).await?))
    }

    /// The items a click decides: the one clicked, or each open item on its page that the
    /// clicker reviews (an unrecorded account is kept one by one: keeping it records a grant).
    async fn review_targets(
        &self,
        item: &ReviewItem,
        action: ReviewAction,
        me: &Handle,
    ) -> Result<Vec<ReviewItem>> {
        Ok(match action {
            ReviewAction::KeepAll => self
                .store
                .page_items(item.page)
                .await?
                .into_iter()
                .filter(|i| {
                    i.state == ItemState::Open
                        && i.reviewed_by(me)
                        && &i.person != me
                        && i.grant.is_some()
                })
                .collect(),
            _ if item.state == ItemState::Open => vec![item.clone()],
            _ => Vec::new(),
        })
    }

    /// The form asking why.
    fn reason_form(
        &self,
        custom_id: &str,
        r: &Review,
        targets: &[ReviewItem],
        action: ReviewAction,
    ) -> Form {
        let apps: Vec<String> = targets.iter().map(|i| self.app_display(&i.app)).collect();
        let what = match action {
            ReviewAction::Revoke => "Why remove it",
            _ => "Why this access is still needed (privileged)",
        };
        Form::one(
            custom_id,
            format!(
                "Review #{}: {} of {}",
                r.id,
                crate::core::render::requests::all_of(&apps),
                targets.first().map_or("", |i| i.person.as_str())
            )
            .chars()
            .take(45)
            .collect::<String>(),
            FormField::reason(what),
        )
    }

    /// [`Self::review_decide`], read again and retried while another decision on the same
    /// page came first (the item itself still open).
    async fn review_decide_retrying(
        &self,
        c: &Caller,
        r: &Review,
        mut item: ReviewItem,
        action: ReviewAction,
        reason: &str,
    ) -> Result<Reply> {
        for _ in 0..PAGE_RETRIES {
            let targets = self.review_targets(&item, action, &c.person.handle).await?;
            if targets.is_empty() {
                return Ok(Reply::text(already(&item)));
            }
            match self
                .review_decide(c, r, &item, &targets, action, reason)
                .await?
            {
                Some(reply) => return Ok(reply),
                None => match self.store.review_item(item.id).await? {
                    Some(i) => item = i,
                    None => break,
                },
            }
        }
        Ok(Reply::text(
            "Others were deciding on this page at the same moment; please click again.",
        ))
    }

    /// Decides `targets` (conditional on them and the rest of their page as read); None on a
    /// conflict.
    async fn review_decide(
        &self,
        c: &Caller,
        r: &Review,
        clicked: &ReviewItem,
        targets: &[ReviewItem],
        action: ReviewAction,
        reason: &str,
    ) -> Result<Option<Reply>> {
        let now = self.clock.now();
        let mut change = Change::default();
        let mut decided = Vec::new();
        let mut notes = Vec::new();
        for t in targets {
            let (d, note) = self
                .decide_one(&mut change, c, r, t, action, reason, now)
                .await?;
            notes.extend(note);
            decided.push(d);
        }
        // The rest of the page as read: a concurrent decision on it conflicts, so each edit
        // shows every decision.
        let page = self.store.page_items(clicked.page).await?;
        for p in page
            .iter()
            .filter(|p| !decided.iter().any(|d| d.id == p.id))
        {
            change.item_updates.push(p.clone());
        }
        change.item_updates.extend(decided.iter().cloned());
        let updated: Vec<ReviewItem> = change.item_updates.clone();
        change
            .messages
            .extend(self.page_edits(r, &[clicked.page], &updated).await?);
        match self.commit(change).await {
            Ok(_) => {
                self.messages_committed().await;
                let n = decided.len();
                let what = match action {
                    ReviewAction::Revoke => "Revoke recorded: the removal is queued; the review \
                                             counts it once a re-read shows it gone."
                        .to_owned(),
                    _ => format!("Kept ({n} access{}).", if n == 1 { "" } else { "es" }),
                };
                let text = if notes.is_empty() {
                    what
                } else {
                    format!("{what} {}", notes.join(" "))
                };
                Ok(Some(Reply::text(text)))
            }
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// One item decided: its new state (closed when its grant is not active any more, with
    /// a note saying so), the removal or the adoption it queues, its audit row.
    #[allow(clippy::too_many_arguments)]
    async fn decide_one(
        &self,
        change: &mut Change,
        c: &Caller,
        r: &Review,
        t: &ReviewItem,
        action: ReviewAction,
        reason: &str,
        now: Timestamp,
    ) -> Result<(ReviewItem, Option<String>)> {
        let by = Self::by(c);
        let mut d = t.clone();
        let mut note = None;
        d.decided = Some((c.person.handle.to_string(), now, reason.to_owned()));
        let how = match action {
            ReviewAction::Revoke => {
                d.state = ItemState::Revoking;
                match self.review_revoke(change, &by, c, t, reason).await? {
                    Ok(()) => "revoke".to_owned(),
                    Err(why) => {
                        d.state = ItemState::Closed;
                        d.decided = Some(("system".into(), now, why.clone()));
                        note = Some(format!("Closed instead: {why}."));
                        format!("closed: {why}")
                    }
                }
            }
            _ => {
                d.state = ItemState::Kept;
                if t.grant.is_none() {
                    self.adopt_unrecorded(change, t, reason, now);
                    "keep (recorded as a grant)".to_owned()
                } else {
                    "keep".to_owned()
                }
            }
        };
        let why = if reason.is_empty() {
            String::new()
        } else {
            format!(" — {reason}")
        };
        change.audit.push(
            self.audit(AuditAction::ReviewDecided)
                .by(by)
                .chat(c.chat_id.as_deref())
                .subject(&t.person)
                .app(&t.app)
                .detail(format!(
                    "review {} item {}: {how}{why}; reviewer of record {}",
                    r.id, t.id, t.of_record
                )),
        );
        Ok((d, note))
    }

    /// The removal an item's Revoke queues: its grant's (verified by re-read like any), or
    /// the unrecorded account's membership; Err(why) when the grant is not active any more.
    pub(super) async fn review_revoke(
        &self,
        change: &mut Change,
        by: &Actor,
        c: &Caller,
        t: &ReviewItem,
        reason: &str,
    ) -> Result<std::result::Result<(), String>> {
        let why = format!("access review: {reason}");
        let Some(subject) = self.store.person(&t.person).await? else {
            return Ok(Err(format!(
                "{} is not in the directory any more",
                t.person
            )));
        };
        match t.grant {
            Some(gid) => {
                let Some(g) = self.store.grant(gid).await? else {
                    return Ok(Err("its grant no longer exists".into()));
                };
                if g.state != GrantState::Active {
                    return Ok(Err(format!("its grant is {} already", g.state.as_str())));
                }
                self.revoke_grant(change, by, c.chat_id.as_deref(), &subject, &g, &why)
                    .await?;
            }
            None => {
                let Some(app) = self.org.app(&t.app) else {
                    return Ok(Err("its app is no longer in the catalog".into()));
                };
                change.new_actions.push(NewAction {
                    connector: app.connector.clone(),
                    op: ActionOp::Revoke,
                    person: t.person.clone(),
                    app: Some(app.name.clone()),
                    entitlement: Some(app.entitlement.clone()),
                    grant: None,
                    request: ReqRef::None,
                    at: self.clock.now(),
                });
                change.audit.push(
                    self.audit(AuditAction::GrantRevokeRequested)
                        .by(by.clone())
                        .chat(c.chat_id.as_deref())
                        .subject(&t.person)
                        .app(&t.app)
                        .detail(why),
                );
            }
        }
        Ok(Ok(()))
    }

    /// Keep on an unrecorded account: a request granted at once (its reason the review's)
    /// and its active grant.
    fn adopt_unrecorded(&self, change: &mut Change, t: &ReviewItem, reason: &str, now: Timestamp) {
        change.new_request = Some(NewRequest {
            requester: t.person.clone(),
            app: t.app.clone(),
            reason: Some(format!(
                "kept in access review {} (account {}): {reason}",
                t.review,
                t.account.as_deref().unwrap_or("?")
            )),
            duration: None,
            kind: RequestKind::New,
            state: RequestState::Granted,
            steps: Vec::new(),
            grant: Some(GrantRef::New(0)),
            created_at: now,
        });
        change.new_grants.push(NewGrant {
            person: t.person.clone(),
            app: t.app.clone(),
            source: NewGrantSource::Request(ReqRef::New),
            state: GrantState::Active,
            granted_at: Some(now),
            expires_at: None,
        });
    }
}

/// The answer when the item was decided first by someone else.
fn already(i: &ReviewItem) -> String {
    match &i.decided {
        Some((by, _, _)) => format!(
            "That access was decided already ({} by {by}).",
            crate::core::render::review::state_word(i.state)
        ),
        None => "That access was decided already.".to_owned(),
    }
}

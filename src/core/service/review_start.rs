//! `/review start|status|cancel` (IT) and the scheduled campaigns (`[[review]]`): a review is
//! created at once (its snapshot follows: the engine re-reads the connectors in scope and
//! calls [`Service::snapshot_review`]).

use super::*;
use crate::core::command::ReviewIntent;
use crate::core::render::review as words;
use crate::core::review::covers;

impl Service {
    /// `/review …`: IT's alone (a refusal is audited).
    pub(super) async fn review_command(&self, c: &Caller, r: ReviewIntent) -> Result<Reply> {
        if let Err(refused) = self.it_only(c, "/review", None).await? {
            return Ok(refused);
        }
        match r {
            ReviewIntent::Start {
                scope,
                reviewer,
                due,
                default,
            } => {
                let terms = match self.review_terms(&scope, reviewer, due, default).await? {
                    Ok(t) => t,
                    Err(why) => return Ok(Reply::text(why)),
                };
                self.launch_review(terms, c.person.handle.as_str(), None)
                    .await
                    .map(Reply::text)
            }
            ReviewIntent::Status { id } => self.review_status(c, id.as_deref()).await,
            ReviewIntent::Cancel { id } => self.review_cancel(c, &id).await,
        }
    }

    /// The terms typed, checked against the catalog and the directory ("did you mean").
    async fn review_terms(
        &self,
        scope: &str,
        reviewer: Option<String>,
        due: Option<Span>,
        default: Option<String>,
    ) -> Result<std::result::Result<ReviewTerms, String>> {
        let scope = match ReviewScope::parse(scope) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(why) = self.unknown_in_scope(&scope).await? {
            return Ok(Err(why));
        }
        let reviewer = match reviewer.as_deref().map(ReviewerRule::parse) {
            None => ReviewerRule::Manager,
            Some(Ok(r)) => r,
            Some(Err(e)) => return Ok(Err(e)),
        };
        if let ReviewerRule::Person(h) = &reviewer
            && self.store.person(h).await?.is_none()
        {
            return Ok(Err(Refusal::NoSuchPerson(h.clone()).text()));
        }
        let due = due.unwrap_or_else(crate::core::review::default_due);
        if due > self.org.workflow.max_duration {
            return Ok(Err(format!(
                "A review cannot run longer than the ceiling ({}).",
                self.org.workflow.max_duration
            )));
        }
        let default = match default.as_deref() {
            None => ReviewDefault::Escalate,
            Some(d) => match ReviewDefault::parse(d) {
                Some(d) => d,
                None => {
                    return Ok(Err(format!(
                        "\"{d}\" is not a default: keep, revoke or escalate."
                    )));
                }
            },
        };
        Ok(Ok(ReviewTerms {
            scope,
            reviewer,
            escalate_after: Span::from_std(due.as_std() / 2),
            due,
            default,
        }))
    }

    /// Why the scope names nothing known, with a "did you mean"; None when it is fine.
    async fn unknown_in_scope(&self, scope: &ReviewScope) -> Result<Option<String>> {
        let hint = |raw: &str, known: Vec<String>| {
            let s = crate::core::suggest::did_you_mean(raw, known.iter().map(String::as_str))
                .map(|s| format!(" — did you mean `{s}`?"))
                .unwrap_or_default();
            (s, known.join(", "))
        };
        Ok(match scope {
            ReviewScope::App(a) => self.find_app(a.as_str()).err().map(|r| r.text()),
            ReviewScope::Role(r) => self
                .role_or_suggest(r)
                .err()
                .map(|e| crate::core::render::lifecycle::refusal::text(&e)),
            ReviewScope::Connector(c) => {
                let known: Vec<String> = self
                    .catalog_connectors()
                    .iter()
                    .map(|c| c.to_string())
                    .collect();
                (!known.iter().any(|k| k == c.as_str())).then(|| {
                    let (s, all) = hint(c.as_str(), known);
                    format!("No app is provisioned through a connector \"{c}\"{s} (known: {all})")
                })
            }
            ReviewScope::Department(d) => {
                let mut known: Vec<String> = self
                    .org
                    .departments
                    .iter()
                    .map(|x| x.name.clone())
                    .collect();
                for p in self.store.people().await? {
                    if !known.contains(&p.department) {
                        known.push(p.department);
                    }
                }
                (!known.iter().any(|k| k.eq_ignore_ascii_case(d))).then(|| {
                    let (s, all) = hint(d, known);
                    format!("No department is called \"{d}\"{s} (known: {all})")
                })
            }
            ReviewScope::All => None,
        })
    }

    /// The active grants `scope` covers, every live grant of the active people, and everyone
    /// (by handle).
    pub(super) async fn grants_in_scope(
        &self,
        scope: &ReviewScope,
    ) -> Result<(Vec<Grant>, Vec<Grant>, policy::PeopleByHandle)> {
        let dir = self.directory().await?;
        let handles: Vec<Handle> = dir
            .values()
            .filter(|p| p.status == PersonStatus::Active)
            .map(|p| p.handle.clone())
            .collect();
        let all = self.store.grants_of_people(&handles).await?;
        let grants = all
            .iter()
            .filter(|g| g.state == GrantState::Active)
            .filter(|g| match (dir.get(&g.person), self.org.app(&g.app)) {
                (Some(p), Some(a)) => covers(scope, p, a),
                _ => false,
            })
            .cloned()
            .collect();
        Ok((grants, all, dir))
    }

    /// Creates a review of `terms` (its snapshot follows) and asks the engine for it; the
    /// answer for whoever launched it. Nothing is created when the scope holds nothing.
    pub(super) async fn launch_review(
        &self,
        terms: ReviewTerms,
        by: &str,
        campaign: Option<String>,
    ) -> Result<String> {
        let (grants, _, _) = self.grants_in_scope(&terms.scope).await?;
        // A scheduled campaign runs even when empty (it completes at once, and its next run
        // counts from it); IT typing one hears so at once.
        if grants.is_empty() && campaign.is_none() {
            return Ok(words::nothing_to_review(&terms.scope.to_string()));
        }
        let now = self.clock.now();
        let mut review = Review {
            id: ReviewId(0),
            due_at: terms.due.after(now),
            terms,
            state: ReviewState::Snapshot,
            launched_by: by.to_owned(),
            launched_at: now,
            campaign,
            snapshot: None,
            closed_at: None,
            version: 1,
        };
        let done = self
            .commit(Change {
                new_review: Some(review.clone()),
                ..Change::default()
            })
            .await?;
        review.id = done
            .review
            .ok_or_else(|| ServiceError::Inconsistent("a new review was given no id".into()))?;
        self.ask_reconcile(None);
        Ok(words::launching(
            &review,
            grants.len(),
            &self.when_shared(review.due_at),
        ))
    }

    /// Wakes the engine's reconciler (which also takes reviews' snapshots).
    pub(super) fn ask_reconcile(&self, connector: Option<ConnectorName>) {
        if connector.is_some()
            && let Ok(mut r) = self.reconcile_requests.lock()
        {
            r.push(connector);
        }
        self.reconcile_wake.notify_one();
    }

    /// `/review status [id]`.
    async fn review_status(&self, c: &Caller, id: Option<&str>) -> Result<Reply> {
        let reviews = match id {
            Some(raw) => match self.review_by_number(raw).await? {
                Ok(r) => vec![r],
                Err(why) => return Ok(Reply::text(why)),
            },
            None => {
                self.store
                    .reviews_in(&[ReviewState::Snapshot, ReviewState::Open])
                    .await?
            }
        };
        if reviews.is_empty() {
            return Ok(Reply::text("No review is open."));
        }
        let mut lines = Vec::new();
        for r in &reviews {
            let items = self.store.review_items(r.id).await?;
            lines.push(words::status(r, &items, &self.when_to(c, r.due_at)));
        }
        Ok(Reply::text(lines.join("\n")))
    }

    /// A review by the number typed, or why not.
    async fn review_by_number(&self, raw: &str) -> Result<std::result::Result<Review, String>> {
        let Ok(n) = raw.trim().trim_start_matches('#').parse::<i64>() else {
            return Ok(Err(format!("\"{raw}\" is not a review number.")));
        };
        Ok(self
            .store
            .review(ReviewId(n))
            .await?
            .ok_or_else(|| format!("There is no review #{n}.")))
    }

    /// `/review cancel id`: undecided items close (their messages lose their buttons);
    /// decisions already made, and removals under way, stand.
    async fn review_cancel(&self, c: &Caller, raw: &str) -> Result<Reply> {
        let r = match self.review_by_number(raw).await? {
            Ok(r) => r,
            Err(why) => return Ok(Reply::text(why)),
        };
        if matches!(r.state, ReviewState::Complete | ReviewState::Cancelled) {
            return Ok(Reply::text(format!(
                "Review #{} is {} already.",
                r.id,
                r.state.as_str()
            )));
        }
        let now = self.clock.now();
        let items = self.store.review_items(r.id).await?;
        let mut change = Change::default();
        let by = Self::by(c).to_string();
        let why = format!("review #{} cancelled", r.id);
        let mut closed = Vec::new();
        let open: Vec<ReviewId> = self
            .store
            .reviews_in(&[ReviewState::Snapshot, ReviewState::Open])
            .await?
            .into_iter()
            .map(|x| x.id)
            .filter(|x| *x != r.id)
            .collect();
        for i in items.iter().filter(|i| i.state == ItemState::Open) {
            // An item another open review references stays open for it.
            let others = self.store.item_reviews(i.id).await?;
            if others.iter().any(|x| open.contains(x)) {
                continue;
            }
            let mut j = i.clone();
            j.state = ItemState::Closed;
            j.decided = Some((by.clone(), now, why.clone()));
            closed.push(j.clone());
            change.item_updates.push(j);
        }
        let mut after = r.clone();
        after.state = ReviewState::Cancelled;
        after.closed_at = Some(now);
        change.review_updates.push(after.clone());
        change.audit.push(
            self.audit(AuditAction::ReviewCompleted)
                .by(Self::by(c))
                .chat(c.chat_id.as_deref())
                .outcome(AuditOutcome::Incomplete)
                .detail(format!(
                    "review {} of {} cancelled; {} undecided item(s) closed",
                    r.id,
                    r.terms.scope,
                    closed.len()
                )),
        );
        let mut pages: Vec<ReviewItemId> = closed.iter().map(|i| i.page).collect();
        pages.dedup();
        change
            .messages
            .extend(self.page_edits(&after, &pages, &closed).await?);
        match self.commit(change).await {
            Ok(_) => {
                self.messages_committed().await;
                Ok(Reply::text(format!(
                    "Review #{} cancelled: {} undecided item(s) closed; decisions already made stand.",
                    r.id,
                    closed.len()
                )))
            }
            Err(StoreError::Conflict) => Ok(Reply::text(format!(
                "Review #{} changed while cancelling it; try again.",
                r.id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Launches each scheduled campaign whose time has come (`starts`, then every `every`
    /// after its last launch); how many.
    pub(super) async fn due_campaigns(&self, now: Timestamp) -> Result<usize> {
        let mut done = 0;
        for c in &self.org.reviews {
            if c.starts > now {
                continue;
            }
            let last = self.store.last_campaign_launch(&c.name()).await?;
            if last.is_some_and(|t| c.every.after(t) > now) {
                continue;
            }
            let answer = self
                .launch_review(c.terms.clone(), "system", Some(c.name()))
                .await?;
            tracing::info!(campaign = %c.name(), "{answer}");
            done += 1;
        }
        Ok(done)
    }
}

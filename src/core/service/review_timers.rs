//! The reviews' timers (part of `tick`): scheduled campaigns; items whose grant changed
//! meanwhile; removals seen gone (or not); reviewers who left; escalation to the reviewer's
//! manager after `escalate_after`; the default at `due`; one reminder a day; completion.

use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::core::render::review as words;
use crate::core::review::replacement;

/// A reviewer is reminded at most this often.
const REMIND_EVERY: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Past this many open items, the items of a review past its escalation or due date are
/// read at most every [`LARGE_SCAN_EVERY`] (real time) rather than every tick: a read of
/// 100,000 items holds a CPU for over half a second, which clicks meanwhile would feel
/// (figure 10). The review timers count in hours and days.
const LARGE_SCAN: usize = 10_000;
const LARGE_SCAN_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Service {
    /// Everything due about reviews at `now`; how many things it did. Each step reads only
    /// the items it may act on (the database picks them), never every live item.
    pub(super) async fn review_tick(&self, now: Timestamp) -> Result<usize> {
        let mut done = self.due_campaigns(now).await?;
        let open = self.store.reviews_in(&[ReviewState::Open]).await?;
        if open.is_empty() {
            return Ok(done);
        }
        let reviews: HashMap<ReviewId, Review> = open.iter().map(|r| (r.id, r.clone())).collect();
        let settle = self.store.review_items_to_settle().await?;
        done += self.review_changes(&reviews, &settle, now).await?;
        let candidates = self.escalation_candidates(&open, now).await?;
        done += self.review_escalations(&reviews, &candidates, now).await?;
        let day = now - REMIND_EVERY;
        let to_remind = self.store.review_items_to_remind(day, day).await?;
        done += self.review_reminders(&reviews, &to_remind, now).await?;
        done += self.review_completions(&open, now).await?;
        Ok(done)
    }

    /// The open items a reviewer change may concern: those whose reviewer of record left,
    /// and those of reviews past their escalation date (not escalated yet) or their due date.
    async fn escalation_candidates(
        &self,
        open: &[Review],
        now: Timestamp,
    ) -> Result<Vec<ReviewItem>> {
        let mut out = self.store.review_items_of_leavers().await?;
        let recent_large = self
            .review_scan
            .lock()
            .ok()
            .and_then(|l| *l)
            .is_some_and(|(at, n)| n >= LARGE_SCAN && at.elapsed() < LARGE_SCAN_EVERY);
        if recent_large {
            return Ok(out);
        }
        let mut read = 0;
        for r in open {
            let due = now >= r.due_at;
            let escalate = r.terms.escalate_after.after(r.launched_at) <= now;
            if !due && !escalate {
                continue;
            }
            let items = self.store.open_review_items(r.id, !due).await?;
            read += items.len();
            out.extend(items);
        }
        if let Ok(mut l) = self.review_scan.lock() {
            *l = Some((std::time::Instant::now(), read));
        }
        out.sort_by_key(|i| i.id);
        out.dedup_by_key(|i| i.id);
        Ok(out)
    }

    /// Open items whose grant was revoked, expired or extended meanwhile close with that
    /// reason; removals a connector saw done settle as revoked, those that failed or could
    /// not be verified wait for IT (who is told why).
    async fn review_changes(
        &self,
        reviews: &HashMap<ReviewId, Review>,
        live: &[ReviewItem],
        now: Timestamp,
    ) -> Result<usize> {
        let ids: Vec<GrantId> = live.iter().filter_map(|i| i.grant).collect();
        let grants: HashMap<GrantId, Grant> = self
            .store
            .grants_by_id(&ids)
            .await?
            .into_iter()
            .map(|g| (g.id, g))
            .collect();
        let mut done = 0;
        for i in live {
            let Some(r) = reviews.get(&i.review) else {
                continue;
            };
            let mut j = i.clone();
            let mut messages = Vec::new();
            match i.state {
                ItemState::Open => {
                    let Some(why) = changed_meanwhile(i, i.grant.and_then(|g| grants.get(&g)), now)
                    else {
                        continue;
                    };
                    j.state = ItemState::Closed;
                    j.decided = Some(("system".into(), now, why));
                }
                ItemState::Revoking | ItemState::Unverified => {
                    match self.removal_outcome(i).await? {
                        Removal::Gone(a, proof) => {
                            j.state = ItemState::Revoked;
                            j.removal = Some((a, proof));
                        }
                        Removal::Failed(a, why) if i.state == ItemState::Revoking => {
                            j.state = ItemState::Unverified;
                            j.removal = Some((a, why.clone()));
                            let app = self.app_display(&i.app);
                            let text = words::unverified(r, i.person.as_str(), &app, &why);
                            messages
                                .extend(self.to_it(text, &format!("review-unverified:{}", i.id)));
                        }
                        _ => continue,
                    }
                }
                _ => continue,
            }
            if self.settle_item(r, j, messages).await? {
                done += 1;
            }
        }
        Ok(done)
    }

    /// Writes one item's new state (conditional on it as read), audited, its page edited.
    async fn settle_item(
        &self,
        r: &Review,
        j: ReviewItem,
        mut messages: Vec<Outgoing>,
    ) -> Result<bool> {
        let detail = format!(
            "review {} item {}: {}{}",
            r.id,
            j.id,
            words::state_word(j.state),
            match (&j.state, &j.decided, &j.removal) {
                (ItemState::Closed, Some((_, _, why)), _) => format!(" — {why}"),
                (_, _, Some((a, proof))) => format!(" — action {a}: {proof}"),
                _ => String::new(),
            }
        );
        let outcome = match j.state {
            ItemState::Unverified => AuditOutcome::Unverified,
            _ => AuditOutcome::Ok,
        };
        messages.extend(
            self.page_edits(r, &[j.page], std::slice::from_ref(&j))
                .await?,
        );
        let ev = self
            .audit(AuditAction::ReviewDecided)
            .subject(&j.person)
            .app(&j.app)
            .outcome(outcome)
            .detail(detail);
        self.commit_quietly(Change {
            item_updates: vec![j],
            audit: vec![ev],
            messages,
            ..Change::default()
        })
        .await
    }

    /// What became of a revoke decision's removal.
    async fn removal_outcome(&self, i: &ReviewItem) -> Result<Removal> {
        let decided_at = i.decided.as_ref().map(|d| d.1);
        let actions = match i.grant {
            Some(g) => self.store.actions_for_grant(g).await?,
            None => self
                .store
                .actions_of(&i.person)
                .await?
                .into_iter()
                .filter(|a| a.app.as_ref() == Some(&i.app))
                .filter(|a| decided_at.is_none_or(|t| a.created_at >= t))
                .collect(),
        };
        let Some(a) = actions.into_iter().rev().find(|a| a.op == ActionOp::Revoke) else {
            return Ok(Removal::Pending);
        };
        Ok(match a.state {
            ActionState::Done => Removal::Gone(
                a.id,
                // Done is what the connector saw (SCIM and LDAP read the removal back), or
                // IT's Done where the connector cannot be read; the connector is named.
                format!(
                    "removal done on {}: the connector reports it gone",
                    a.connector
                ),
            ),
            ActionState::Failed => Removal::Failed(
                a.id,
                a.last_error
                    .unwrap_or_else(|| "the removal failed".to_owned()),
            ),
            _ => Removal::Pending,
        })
    }

    /// Reviewers who left are replaced by their manager; after `escalate_after` the
    /// reviewer's manager gets the items too; at `due` the review's default applies.
    async fn review_escalations(
        &self,
        reviews: &HashMap<ReviewId, Review>,
        live: &[ReviewItem],
        now: Timestamp,
    ) -> Result<usize> {
        let dir = self.directory().await?;
        let mut by_page: BTreeMap<ReviewItemId, Vec<ReviewItem>> = BTreeMap::new();
        for i in live.iter().filter(|i| i.state == ItemState::Open) {
            by_page.entry(i.page).or_default().push(i.clone());
        }
        let mut done = 0;
        for (page, items) in by_page {
            let Some(r) = items.first().and_then(|i| reviews.get(&i.review)) else {
                continue;
            };
            let due = now >= r.due_at;
            let escalate = r.terms.escalate_after.after(r.launched_at) <= now;
            if due && r.terms.default != ReviewDefault::Escalate {
                done += self.default_at_due(r, page, &items, now).await?;
                continue;
            }
            let mut changed = Vec::new();
            for i in &items {
                let (Some(holder), Some(app)) = (dir.get(&i.person), self.org.app(&i.app)) else {
                    continue;
                };
                let mut j = i.clone();
                let active =
                    |h: &Handle| dir.get(h).is_some_and(|p| p.status == PersonStatus::Active);
                if !j.reviewers.iter().any(active) {
                    let gone = j.reviewers.first().cloned().unwrap_or(j.of_record.clone());
                    add(
                        &mut j.reviewers,
                        replacement(&self.org, &dir, &gone, holder, app),
                    );
                }
                if escalate && !j.escalated {
                    j.escalated = true;
                    add(
                        &mut j.reviewers,
                        replacement(&self.org, &dir, &j.of_record, holder, app),
                    );
                }
                if due {
                    let it = self
                        .org
                        .it_admins
                        .iter()
                        .filter(|h| **h != j.person && active(h));
                    add(&mut j.reviewers, it.cloned().collect());
                }
                if j != *i {
                    changed.push((i.reviewers.clone(), j));
                }
            }
            if !changed.is_empty() && self.escalate_page(r, page, changed, due).await? {
                done += 1;
            }
        }
        Ok(done)
    }

    /// Writes a page's new reviewers and sends them the page (once each) with a note.
    async fn escalate_page(
        &self,
        r: &Review,
        page: ReviewItemId,
        changed: Vec<(Vec<Handle>, ReviewItem)>,
        to_it: bool,
    ) -> Result<bool> {
        let updated: Vec<ReviewItem> = changed.iter().map(|(_, j)| j.clone()).collect();
        let items: Vec<ReviewItem> = self
            .store
            .page_items(page)
            .await?
            .into_iter()
            .map(|i| updated.iter().find(|u| u.id == i.id).cloned().unwrap_or(i))
            .collect();
        let (text, buttons) = self.page_view(r, &items).await?;
        let mut new: Vec<Handle> = changed
            .iter()
            .flat_map(|(before, j)| j.reviewers.iter().filter(|h| !before.contains(h)).cloned())
            .collect();
        new.sort();
        new.dedup();
        let mut messages = Vec::new();
        for h in &new {
            messages.push(
                Outgoing::to_person(
                    h,
                    words::escalated(to_it, changed.len(), r),
                    Vec::new(),
                    None,
                )
                .once(format!("review:{page}:note:{h}")),
            );
            messages.push(
                Outgoing::to_person(
                    h,
                    text.clone(),
                    buttons.clone(),
                    Some(MessageKey::ReviewPage(page)),
                )
                .once(format!("review:{page}:to:{h}")),
            );
        }
        let audit = updated
            .iter()
            .map(|j| {
                self.audit(AuditAction::ReviewDecided)
                    .subject(&j.person)
                    .app(&j.app)
                    .outcome(AuditOutcome::Waiting)
                    .detail(format!(
                        "review {} item {}: now also with {}",
                        r.id,
                        j.id,
                        j.reviewers
                            .iter()
                            .map(Handle::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
            })
            .collect();
        self.commit_quietly(Change {
            item_updates: updated,
            audit,
            messages,
            ..Change::default()
        })
        .await
    }

    /// At `due`, a page's undecided items kept or revoked by the review's default.
    async fn default_at_due(
        &self,
        r: &Review,
        page: ReviewItemId,
        items: &[ReviewItem],
        now: Timestamp,
    ) -> Result<usize> {
        let mut change = Change::default();
        let why = format!(
            "no decision by the due date: default {}",
            r.terms.default.as_str()
        );
        let mut decided = Vec::new();
        for i in items {
            let mut j = i.clone();
            j.decided = Some(("system".into(), now, why.clone()));
            j.state = ItemState::Kept;
            if r.terms.default == ReviewDefault::Revoke {
                j.state = ItemState::Revoking;
                if let Err(closed) = self.system_revoke(&mut change, i, &why).await? {
                    j.state = ItemState::Closed;
                    j.decided = Some(("system".into(), now, closed));
                }
            } else if i.grant.is_none() {
                // An unrecorded account is never adopted by default: the item closes saying
                // so, and drift keeps reporting the account until IT settles it.
                j.state = ItemState::Closed;
                j.decided = Some((
                    "system".into(),
                    now,
                    "not adopted by default: the account stays unrecorded (drift reports it)"
                        .into(),
                ));
            }
            change.audit.push(
                self.audit(AuditAction::ReviewDecided)
                    .subject(&j.person)
                    .app(&j.app)
                    .detail(format!(
                        "review {} item {}: {} — {why}; reviewer of record {} never answered",
                        r.id,
                        j.id,
                        words::state_word(j.state),
                        j.of_record
                    )),
            );
            decided.push(j);
        }
        if decided.is_empty() {
            return Ok(0);
        }
        change
            .messages
            .extend(self.page_edits(r, &[page], &decided).await?);
        let n = decided.len();
        change.item_updates = decided;
        Ok(if self.commit_quietly(change).await? {
            n
        } else {
            0
        })
    }

    /// The removal the due date's default queues, by the system.
    async fn system_revoke(
        &self,
        change: &mut Change,
        i: &ReviewItem,
        why: &str,
    ) -> Result<std::result::Result<(), String>> {
        let Some(subject) = self.store.person(&i.person).await? else {
            return Ok(Err("not in the directory any more".into()));
        };
        let caller = Caller {
            person: subject,
            chat_id: None,
        };
        self.review_revoke(change, &Actor::System, &caller, i, why)
            .await
    }

    /// One reminder a day to each reviewer with items waiting (launched a day ago or more).
    async fn review_reminders(
        &self,
        reviews: &HashMap<ReviewId, Review>,
        live: &[ReviewItem],
        now: Timestamp,
    ) -> Result<usize> {
        let mut by_reviewer: BTreeMap<Handle, Vec<ReviewItem>> = BTreeMap::new();
        for i in live.iter().filter(|i| i.state == ItemState::Open) {
            let Some(r) = reviews.get(&i.review) else {
                continue;
            };
            if r.launched_at + REMIND_EVERY > now
                || i.reminded_at.is_some_and(|t| t + REMIND_EVERY > now)
            {
                continue;
            }
            for h in &i.reviewers {
                by_reviewer.entry(h.clone()).or_default().push(i.clone());
            }
        }
        let mut done = 0;
        let mut reminded: HashMap<ReviewItemId, ReviewItem> = HashMap::new();
        let mut change = Change::default();
        for (h, items) in by_reviewer {
            let mut ids: Vec<String> = items.iter().map(|i| format!("#{}", i.review)).collect();
            ids.dedup();
            let due = items
                .iter()
                .filter_map(|i| reviews.get(&i.review).map(|r| r.due_at))
                .min()
                .unwrap_or(now);
            change.messages.push(
                Outgoing::to_person(
                    &h,
                    words::reminder(items.len(), &ids, &self.when_for(&h, due).await),
                    Vec::new(),
                    None,
                )
                .once(format!("review-remind:{h}:{}", now.date_naive())),
            );
            for i in items {
                reminded.entry(i.id).or_insert(i).reminded_at = Some(now);
            }
            done += 1;
        }
        change.item_updates = reminded.into_values().collect();
        if done > 0 && !self.commit_quietly(change).await? {
            return Ok(0);
        }
        Ok(done)
    }

    /// Reviews whose every item is settled complete: audited, and IT and whoever launched
    /// them told.
    async fn review_completions(&self, open: &[Review], now: Timestamp) -> Result<usize> {
        let mut done = 0;
        for r in open {
            if self.store.unsettled_review_items(r.id).await? > 0 {
                continue;
            }
            let items = self.store.review_items(r.id).await?;
            let mut after = r.clone();
            after.state = ReviewState::Complete;
            after.closed_at = Some(now);
            let text = words::completed(r, &items);
            let mut messages = self.to_it(text.clone(), &format!("review-complete:{}", r.id));
            if let Ok(h) = Handle::parse(&r.launched_by)
                && !self.org.it_admins.contains(&h)
            {
                messages.push(
                    Outgoing::to_person(&h, text, Vec::new(), None)
                        .once(format!("review-complete:{}:{h}", r.id)),
                );
            }
            let ev = self.audit(AuditAction::ReviewCompleted).detail(format!(
                "review {} of {} complete: {}",
                r.id,
                r.terms.scope,
                words::counts(&items)
            ));
            if self
                .commit_quietly(Change {
                    review_updates: vec![after],
                    audit: vec![ev],
                    messages,
                    ..Change::default()
                })
                .await?
            {
                done += 1;
            }
        }
        Ok(done)
    }

    /// Where IT is told: the approvals channel, else each IT admin.
    pub(super) fn it_recipients(&self) -> Vec<Recipient> {
        match self.chat.fallback_channel() {
            Some(ch) => vec![ch],
            None => self
                .org
                .it_admins
                .iter()
                .cloned()
                .map(Recipient::Person)
                .collect(),
        }
    }

    /// A message to IT: the approvals channel, else each IT admin.
    pub(super) fn to_it(&self, text: String, dedupe: &str) -> Vec<Outgoing> {
        self.it_recipients()
            .into_iter()
            .map(|r| Outgoing {
                dedupe: Some(format!("{dedupe}:{r:?}")),
                kind: crate::core::outbox::OutKind::Send(r),
                text: text.clone(),
                buttons: Vec::new(),
                key: None,
            })
            .collect()
    }
}

/// What became of a removal.
enum Removal {
    /// Not settled yet.
    Pending,
    /// Done, and the connector saw it gone.
    Gone(ActionId, String),
    /// Failed, or could not be verified: why.
    Failed(ActionId, String),
}

/// Why an open item's grant no longer is what was snapshotted, if it changed.
fn changed_meanwhile(i: &ReviewItem, g: Option<&Grant>, now: Timestamp) -> Option<String> {
    let gid = i.grant?;
    let Some(g) = g else {
        return Some(format!("grant {gid} no longer exists"));
    };
    match g.state {
        GrantState::Active if g.expires_at != i.expires_at => {
            Some("its end changed meanwhile (extended: a new approval decided it)".into())
        }
        GrantState::Active => None,
        GrantState::Revoked | GrantState::Revoking if g.expires_at.is_some_and(|e| e <= now) => {
            Some("the grant expired meanwhile".into())
        }
        GrantState::Revoked | GrantState::Revoking => {
            Some("the grant was revoked meanwhile".into())
        }
        _ => Some(format!("the grant is {} now", g.state.as_str())),
    }
}

/// Adds `more` to `to`, each once.
fn add(to: &mut Vec<Handle>, more: Vec<Handle>) {
    for h in more {
        if !to.contains(&h) {
            to.push(h);
        }
    }
}

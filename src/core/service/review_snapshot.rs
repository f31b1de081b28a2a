//! A review's snapshot: every grant in scope, what a re-read of each connector in scope
//! shows (accounts with no grant become items too), each item's reviewers and page, the
//! digest in the audit chain (`review.launched`); then each reviewer's pages in the outbox.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::*;
use crate::core::drift::{Listing, Records, findings, members_by_entitlement};
use crate::core::render::review as words;
use crate::core::review::{covers, digest, paginate, reviewers};

impl Service {
    /// The reviews waiting for their snapshot, each with the connectors to re-read.
    pub async fn reviews_to_snapshot(&self) -> Result<Vec<(ReviewId, Vec<ConnectorName>)>> {
        let mut out = Vec::new();
        for r in self.store.reviews_in(&[ReviewState::Snapshot]).await? {
            if r.snapshot.is_some() {
                out.push((r.id, Vec::new()));
                continue;
            }
            // Every app the scope covers, held or not (a grant in scope is of one of them):
            // no need to read the grants here.
            let dir = self.directory().await?;
            let mut names: BTreeSet<ConnectorName> = BTreeSet::new();
            for a in &self.org.apps {
                let named = match &r.terms.scope {
                    ReviewScope::App(x) => &a.name == x,
                    ReviewScope::Connector(c) => &a.connector == c,
                    ReviewScope::All => true,
                    _ => dir.values().any(|p| covers(&r.terms.scope, p, a)),
                };
                if named {
                    names.insert(a.connector.clone());
                }
            }
            out.push((r.id, names.into_iter().collect()));
        }
        Ok(out)
    }

    /// Takes review `id`'s snapshot from `listings` (one per connector in scope) and sends
    /// its pages; a review whose snapshot is taken already only has its pages sent.
    pub async fn snapshot_review(&self, id: ReviewId, listings: &[Listing]) -> Result<()> {
        let Some(r) = self.store.review(id).await? else {
            return Ok(());
        };
        if r.state != ReviewState::Snapshot {
            return Ok(());
        }
        let r = match r.snapshot {
            Some(_) => r,
            None => match self.take_snapshot(&r, listings).await? {
                Some(r) => r,
                None => return Ok(()),
            },
        };
        self.announce_review(&r).await
    }

    /// Writes the items and the snapshot (conditional on the review still waiting for it);
    /// the review as written, None when someone else took it first.
    async fn take_snapshot(&self, r: &Review, listings: &[Listing]) -> Result<Option<Review>> {
        let now = self.clock.now();
        let (grants, all, dir) = self.grants_in_scope(&r.terms.scope).await?;
        let people: Vec<Person> = dir.values().cloned().collect();
        let live = self.store.live_review_items().await?;
        let shared_by_grant: HashMap<GrantId, ReviewItemId> = live
            .iter()
            .filter(|i| i.state == ItemState::Open)
            .filter_map(|i| i.grant.map(|g| (g, i.id)))
            .collect();
        let (seen, reads) = reads_of(listings, &people);
        let mut items = Vec::new();
        let mut shared = Vec::new();
        for g in &grants {
            if let Some(i) = shared_by_grant.get(&g.id) {
                shared.push(*i);
                continue;
            }
            let (Some(holder), Some(app)) = (dir.get(&g.person), self.org.app(&g.app)) else {
                continue;
            };
            let what = match seen.get(&(app.connector.clone(), app.entitlement.clone())) {
                Some(Ok(who)) if who.contains(&g.person) => "present".to_owned(),
                Some(Ok(_)) => "absent".to_owned(),
                Some(Err(why)) => format!("not re-read: {why}"),
                None => "not re-read: its connector cannot be listed".to_owned(),
            };
            items.push(self.new_item(r, &dir, holder, app, Some(g), None, what));
        }
        let unrecorded = self.unrecorded_items(r, listings, &people, &all, &dir);
        let n_unrecorded = unrecorded.len();
        items.extend(unrecorded);
        let items = paginate(items);
        let snapshot = Snapshot {
            digest: digest(&items),
            grants: grants.len() as u64,
            unrecorded: n_unrecorded as u64,
            reads,
        };
        let mut after = r.clone();
        after.snapshot = Some(snapshot.clone());
        let empty = items.is_empty() && shared.is_empty();
        if empty {
            after.state = ReviewState::Complete;
            after.closed_at = Some(now);
        }
        let mut change = Change {
            review_updates: vec![after.clone()],
            audit: vec![self.launched_event(r, &snapshot, items.len(), shared.len())],
            ..Change::default()
        };
        if empty {
            change.audit.push(
                self.audit(AuditAction::ReviewCompleted)
                    .detail(format!("review {}: nothing to review", r.id)),
            );
        } else {
            change.review_snapshot = Some(ReviewSnapshot {
                review: r.id,
                items,
                shared,
            });
        }
        match self.commit(change).await {
            Ok(_) => {
                after.version += 1;
                Ok((!empty).then_some(after))
            }
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `review.launched`: who, the terms, the counts, the digest and each re-read.
    fn launched_event(
        &self,
        r: &Review,
        s: &Snapshot,
        new_items: usize,
        shared: usize,
    ) -> AuditEvent {
        let by = Handle::parse(&r.launched_by).map_or(Actor::System, Actor::Person);
        let reads: Vec<String> = s.reads.iter().map(|(c, w)| format!("{c}: {w}")).collect();
        self.audit(AuditAction::ReviewLaunched)
            .by(by)
            .detail(format!(
                "review {} of {}: reviewer {}, due {}, escalate after {}, default {}; {} grant(s), \
             {} unrecorded account(s), {new_items} new item(s), {shared} shared with another \
             review; snapshot sha256 {}; re-reads: {}",
                r.id,
                r.terms.scope,
                r.terms.reviewer,
                when(r.due_at),
                r.terms.escalate_after,
                r.terms.default.as_str(),
                s.grants,
                s.unrecorded,
                s.digest,
                if reads.is_empty() {
                    "none".to_owned()
                } else {
                    reads.join("; ")
                }
            ))
    }

    /// The accounts the re-reads found in scope with no grant, each an item.
    fn unrecorded_items(
        &self,
        r: &Review,
        listings: &[Listing],
        people: &[Person],
        grants: &[Grant],
        dir: &policy::PeopleByHandle,
    ) -> Vec<ReviewItem> {
        let mut out = Vec::new();
        let none = HashSet::new();
        for l in listings {
            let apps: Vec<&App> = self
                .org
                .apps
                .iter()
                .filter(|a| a.connector == l.connector)
                .collect();
            let records = Records {
                apps,
                people,
                grants,
                in_flight: &none,
            };
            for s in findings(l, &records) {
                let (DriftClass::Unrecorded, Some(h), Some(app)) = (s.class, &s.person, &s.app)
                else {
                    continue;
                };
                let (Some(holder), Some(app)) = (dir.get(h), self.org.app(app)) else {
                    continue;
                };
                if holder.status == PersonStatus::Active && covers(&r.terms.scope, holder, app) {
                    let what = "present (unrecorded)".to_owned();
                    out.push(self.new_item(r, dir, holder, app, None, Some(s.account), what));
                }
            }
        }
        out
    }

    /// One item, its reviewers found by the review's rule.
    #[allow(clippy::too_many_arguments)]
    fn new_item(
        &self,
        r: &Review,
        dir: &policy::PeopleByHandle,
        holder: &Person,
        app: &App,
        grant: Option<&Grant>,
        account: Option<String>,
        seen: String,
    ) -> ReviewItem {
        let who = reviewers(&self.org, dir, &r.terms.reviewer, holder, app);
        ReviewItem {
            id: ReviewItemId(0),
            review: r.id,
            person: holder.handle.clone(),
            app: app.name.clone(),
            grant: grant.map(|g| g.id),
            account,
            expires_at: grant.and_then(|g| g.expires_at),
            seen,
            of_record: who
                .first()
                .cloned()
                .unwrap_or_else(|| holder.handle.clone()),
            reviewers: who,
            page: ReviewItemId(0),
            state: ItemState::Open,
            decided: None,
            removal: None,
            escalated: false,
            reminded_at: None,
            version: 1,
        }
    }

    /// Sends each page to each of its reviewers (once: a page re-announced after a crash is
    /// deduplicated) and opens the review.
    async fn announce_review(&self, r: &Review) -> Result<()> {
        let items = self.store.review_items(r.id).await?;
        let mut pages: BTreeMap<ReviewItemId, Vec<ReviewItem>> = BTreeMap::new();
        for i in items.into_iter().filter(|i| i.review == r.id) {
            pages.entry(i.page).or_default().push(i);
        }
        let mut opened = r.clone();
        opened.state = ReviewState::Open;
        let mut change = Change::default();
        // The holders in one read, not one per page.
        let dir = self.directory().await?;
        for (page, its) in &pages {
            let Some(holder) = its.first().and_then(|i| dir.get(&i.person)) else {
                continue;
            };
            let (text, buttons) = self.page_view_of(&opened, holder, its);
            let mut to: Vec<&Handle> = its.iter().flat_map(|i| i.reviewers.iter()).collect();
            to.sort();
            to.dedup();
            for h in to {
                change.messages.push(
                    Outgoing::to_person(
                        h,
                        text.clone(),
                        buttons.clone(),
                        Some(MessageKey::ReviewPage(*page)),
                    )
                    .once(format!("review:{page}:to:{h}")),
                );
            }
        }
        change.review_updates.push(opened);
        match self.commit(change).await {
            Ok(_) => {
                self.messages_committed().await;
                Ok(())
            }
            Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A page's text and buttons, as it stands: Keep and Revoke on each open item (with the
    /// app's name when the page has several), and Keep all when more than one is open.
    pub(super) async fn page_view(
        &self,
        r: &Review,
        items: &[ReviewItem],
    ) -> Result<(String, Vec<Button>)> {
        let Some(first) = items.first() else {
            return Ok((String::new(), Vec::new()));
        };
        let holder = match self.store.person(&first.person).await? {
            Some(p) => p,
            None => {
                return Err(ServiceError::Inconsistent(format!(
                    "no person {}",
                    first.person
                )));
            }
        };
        Ok(self.page_view_of(r, &holder, items))
    }

    /// [`Self::page_view`] of `holder`'s items.
    fn page_view_of(
        &self,
        r: &Review,
        holder: &Person,
        items: &[ReviewItem],
    ) -> (String, Vec<Button>) {
        let Some(first) = items.first() else {
            return (String::new(), Vec::new());
        };
        let named: Vec<(ReviewItem, String)> = items
            .iter()
            .map(|i| (i.clone(), self.app_display(&i.app)))
            .collect();
        let show = |t| self.when_shared(t);
        let text = words::page(r, holder, &named, &self.when_shared(r.due_at), &show);
        let open: Vec<&(ReviewItem, String)> = named
            .iter()
            .filter(|(i, _)| i.state == ItemState::Open)
            .collect();
        let mut buttons = Vec::new();
        if matches!(r.state, ReviewState::Open | ReviewState::Snapshot) {
            let several = items.len() > 1;
            for (i, app) in &open {
                for (label, action) in [
                    (ButtonLabel::Keep, ReviewAction::Keep),
                    (ButtonLabel::Revoke, ReviewAction::Revoke),
                ] {
                    let mut b = Button::new(label, ClickTarget::Review(i.id, action));
                    if several {
                        b.item = Some(app.clone());
                    }
                    buttons.push(b);
                }
            }
            if open.len() > 1 {
                buttons.push(Button::new(
                    ButtonLabel::KeepAll,
                    ClickTarget::Review(first.page, ReviewAction::KeepAll),
                ));
            }
        }
        (text, buttons)
    }

    /// The edits of `pages` after `updated` (items as they now stand; the rest as stored).
    pub(super) async fn page_edits(
        &self,
        r: &Review,
        pages: &[ReviewItemId],
        updated: &[ReviewItem],
    ) -> Result<Vec<Outgoing>> {
        let mut out = Vec::new();
        for page in pages {
            let items: Vec<ReviewItem> = self
                .store
                .page_items(*page)
                .await?
                .into_iter()
                .map(|i| updated.iter().find(|u| u.id == i.id).cloned().unwrap_or(i))
                .collect();
            let (text, buttons) = self.page_view(r, &items).await?;
            out.push(Outgoing::edit(MessageKey::ReviewPage(*page), text, buttons));
        }
        Ok(out)
    }
}

/// Who each listing shows in each entitlement (by connector and entitlement), and what came
/// of each connector's re-read.
#[allow(clippy::type_complexity)]
fn reads_of(
    listings: &[Listing],
    people: &[Person],
) -> (
    HashMap<(ConnectorName, String), std::result::Result<HashSet<Handle>, String>>,
    Vec<(ConnectorName, String)>,
) {
    let mut seen = HashMap::new();
    let mut reads = Vec::new();
    for l in listings {
        for (e, m) in members_by_entitlement(l, people) {
            seen.insert((l.connector.clone(), e), m);
        }
        let unread = l.unread();
        reads.push((
            l.connector.clone(),
            if unread.is_empty() {
                "read".to_owned()
            } else {
                format!("not read in full: {}", unread.join("; "))
            },
        ));
    }
    (seen, reads)
}

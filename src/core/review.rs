//! Access reviews, the pure part: what a scope covers, who reviews an access, how items are
//! paged into messages, and the snapshot's digest.

use sha2::{Digest, Sha256};

use super::model::*;
use super::policy::{self, PeopleByHandle};

/// At most this many accesses on one review message: a row of Keep and Revoke each, and a row
/// for Keep all, stay within Discord's 5 action rows; the text well within 2,000 characters.
pub const PAGE: usize = 4;

/// How long reviewers have when nobody says.
pub fn default_due() -> Span {
    Span::from_std(std::time::Duration::from_secs(14 * 86_400))
}

/// Whether `scope` covers `app` held by `p`.
pub fn covers(scope: &ReviewScope, p: &Person, app: &App) -> bool {
    match scope {
        ReviewScope::App(a) => &app.name == a,
        ReviewScope::Role(r) => &p.role == r,
        ReviewScope::Department(d) => p.department.eq_ignore_ascii_case(d),
        ReviewScope::Connector(c) => &app.connector == c,
        ReviewScope::All => true,
    }
}

/// Who reviews `app` held by `holder` under `rule`: the manager, the owners or the named
/// person; never the holder; when none of them can (absent, left, the holder), the approval
/// fallback: the other IT admins, then the holder's manager. Empty when nobody can.
pub fn reviewers(
    org: &Org,
    dir: &PeopleByHandle,
    rule: &ReviewerRule,
    holder: &Person,
    app: &App,
) -> Vec<Handle> {
    let as_approval = match rule {
        ReviewerRule::Manager => ApprovalRule::Manager,
        ReviewerRule::Owner => ApprovalRule::Owner,
        ReviewerRule::Person(h) => ApprovalRule::Person(h.clone()),
    };
    policy::approvers_for(org, dir, &as_approval, holder, app, &[])
}

/// Who takes over from `gone` (a reviewer who left, or one whose items escalate): their
/// manager when active and not the holder; else the fallback (IT admins, then the holder's
/// manager), never the holder.
pub fn replacement(
    org: &Org,
    dir: &PeopleByHandle,
    gone: &Handle,
    holder: &Person,
    app: &App,
) -> Vec<Handle> {
    let manager = dir
        .get(gone)
        .and_then(|p| p.manager.clone())
        .filter(|m| m != &holder.handle);
    if let Some(m) = manager
        && dir
            .get(&m)
            .is_some_and(|p| p.status == PersonStatus::Active)
    {
        return vec![m];
    }
    reviewers(org, dir, &ReviewerRule::Manager, holder, app)
        .into_iter()
        .filter(|h| h != gone)
        .collect()
}

/// Pages `items` (in the order given): one run per reviewer of record and holder, cut every
/// [`PAGE`] items; each item's `page` becomes the index of its page's first item. The items
/// come back sorted by reviewer, holder and app.
pub fn paginate(mut items: Vec<ReviewItem>) -> Vec<ReviewItem> {
    items.sort_by(|a, b| (&a.of_record, &a.person, &a.app).cmp(&(&b.of_record, &b.person, &b.app)));
    let mut first = 0usize;
    let mut on_page = 0usize;
    for i in 0..items.len() {
        let same = i > 0
            && items[i].of_record == items[i - 1].of_record
            && items[i].person == items[i - 1].person
            && on_page < PAGE;
        if !same {
            first = i;
            on_page = 0;
        }
        on_page += 1;
        items[i].page = ReviewItemId(i64::try_from(first).unwrap_or(i64::MAX));
    }
    items
}

/// SHA-256 (hex) of the items as snapshotted: one line per item (holder, app, grant or
/// account, end, what the re-read saw, reviewers), in the order given.
pub fn digest(items: &[ReviewItem]) -> String {
    let mut h = Sha256::new();
    for i in items {
        let line = format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            i.person,
            i.app,
            i.grant.map(|g| g.0.to_string()).unwrap_or_default(),
            i.account.as_deref().unwrap_or_default(),
            i.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            i.seen,
            i.reviewers
                .iter()
                .map(Handle::as_str)
                .collect::<Vec<_>>()
                .join(",")
        );
        h.update(line.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Handle {
        Handle::parse(s).unwrap()
    }

    fn item(reviewer: &str, person: &str, app: &str) -> ReviewItem {
        ReviewItem {
            id: ReviewItemId(0),
            review: ReviewId(1),
            person: h(person),
            app: AppName::parse(app).unwrap(),
            grant: None,
            account: None,
            expires_at: None,
            seen: "present".into(),
            reviewers: vec![h(reviewer)],
            of_record: h(reviewer),
            page: ReviewItemId(0),
            state: ItemState::Open,
            decided: None,
            removal: None,
            escalated: false,
            reminded_at: None,
            version: 1,
        }
    }

    #[test]
    fn pages_group_by_reviewer_and_holder_and_cut_at_the_limit() {
        let mut items: Vec<ReviewItem> = (0..6)
            .map(|n| item("bob", "alice", &format!("app{n:02}")))
            .collect();
        items.push(item("bob", "carol", "figma"));
        items.push(item("dana", "alice", "figma"));
        let paged = paginate(items);
        let pages: Vec<i64> = paged.iter().map(|i| i.page.0).collect();
        assert_eq!(pages, [0, 0, 0, 0, 4, 4, 6, 7]);
    }

    #[test]
    fn the_digest_changes_with_any_item() {
        let a = vec![item("bob", "alice", "figma")];
        let mut b = a.clone();
        assert_eq!(digest(&a), digest(&b));
        b[0].seen = "absent".into();
        assert_ne!(digest(&a), digest(&b));
        assert_eq!(digest(&a).len(), 64);
    }
}

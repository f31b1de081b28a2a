//! The sentences of access reviews: the launch, each page a reviewer decides on, reminders,
//! escalations, status, completion.

use crate::core::model::{ItemState, Person, Review, ReviewItem, ReviewState, Timestamp};

/// The answer to `/review start`.
pub fn launching(r: &Review, grants: usize, due: &str) -> String {
    format!(
        "🗂️ Review #{} of {} launched: {grants} access{} in scope, reviewer: {}, due {due}, \
         default at due: {}. The connectors in scope are re-read now; each reviewer gets a \
         direct message per person reviewed.",
        r.id,
        r.terms.scope,
        if grants == 1 { "" } else { "es" },
        r.terms.reviewer,
        r.terms.default.as_str(),
    )
}

/// A scope with no recorded access. Only the records were read: what the connectors hold
/// beyond them is `/drift`'s to find.
pub fn nothing_to_review(scope: &str) -> String {
    format!(
        "Nothing to review: no access is recorded in {scope}. Accounts on its connectors that \
         nobody recorded are found by `/drift`."
    )
}

/// A page's item, in one line.
fn line(i: &ReviewItem, app: &str, show: &dyn Fn(Timestamp) -> String) -> String {
    let what = match (&i.grant, &i.account) {
        (None, Some(a)) => format!("**{app}** — account `{a}` found with no grant (unrecorded)"),
        _ => {
            let ends = i
                .expires_at
                .map_or_else(|| "no end".to_owned(), |t| format!("ends {}", show(t)));
            format!("**{app}** — {ends}")
        }
    };
    let seen = match i.seen.as_str() {
        "present" => " · seen on the target".to_owned(),
        "absent" => " · ⚠️ not seen on the target".to_owned(),
        other => format!(" · {other}"),
    };
    let state = match (&i.state, &i.decided) {
        (ItemState::Open, _) => String::new(),
        (s, Some((by, _, why))) => {
            let why = if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            };
            format!(" → {} (decided by {by}{why})", state_word(*s))
        }
        (s, None) => format!(" → {}", state_word(*s)),
    };
    format!("• {what}{seen}{state}")
}

/// An item's state in words.
pub fn state_word(s: ItemState) -> &'static str {
    match s {
        ItemState::Open => "waiting",
        ItemState::Kept => "kept",
        ItemState::Revoking => "revoke decided, removal under way",
        ItemState::Revoked => "revoked, verified gone",
        ItemState::Unverified => "revoke decided, removal NOT verified",
        ItemState::Closed => "closed",
    }
}

/// A review page: whose access, each app with its state, and what to do.
pub fn page(
    r: &Review,
    holder: &Person,
    items: &[(ReviewItem, String)],
    due: &str,
    show: &dyn Fn(Timestamp) -> String,
) -> String {
    let open = items
        .iter()
        .filter(|(i, _)| i.state == ItemState::Open)
        .count();
    let mut s = format!(
        "🗂️ Access review #{} — {} (@{}, {}, {})\n",
        r.id, holder.name, holder.handle, holder.department, holder.role
    );
    for (i, app) in items {
        s.push_str(&line(i, app, show));
        s.push('\n');
    }
    if open > 0 && r.state == ReviewState::Open {
        s.push_str(&format!(
            "Keep or Revoke each by {due} (Revoke asks why). Undecided at the due date: {}.",
            r.terms.default.as_str()
        ));
    } else if open > 0 {
        s.push_str("This review is closed; nothing more is needed.");
    } else {
        s.push_str("All decided — thank you.");
    }
    s
}

/// The once-a-day reminder.
pub fn reminder(waiting: usize, reviews: &[String], due: &str) -> String {
    format!(
        "⏰ {waiting} access{} still wait{} for your review ({}), due {due}. The buttons are on \
         the review messages above.",
        if waiting == 1 { "" } else { "es" },
        if waiting == 1 { "s" } else { "" },
        reviews.join(", ")
    )
}

/// The note that comes with pages escalated to someone.
pub fn escalated(to_it: bool, n: usize, review: &Review) -> String {
    if to_it {
        format!(
            "⬆️ Review #{}: {n} access{} nobody decided by the due date — IT decides now.",
            review.id,
            if n == 1 { "" } else { "es" }
        )
    } else {
        format!(
            "⬆️ Review #{}: {n} access{} your report has not decided yet — you may decide \
             them too.",
            review.id,
            if n == 1 { "" } else { "es" }
        )
    }
}

/// Counts of a review's items, in words.
pub fn counts(items: &[ReviewItem]) -> String {
    let n = |s: ItemState| items.iter().filter(|i| i.state == s).count();
    format!(
        "{} item{}: {} waiting, {} kept, {} revoking, {} revoked (verified), {} unverified, {} closed",
        items.len(),
        if items.len() == 1 { "" } else { "s" },
        n(ItemState::Open),
        n(ItemState::Kept),
        n(ItemState::Revoking),
        n(ItemState::Revoked),
        n(ItemState::Unverified),
        n(ItemState::Closed),
    )
}

/// One review's status line.
pub fn status(r: &Review, items: &[ReviewItem], due: &str) -> String {
    format!(
        "Review #{} of {} ({}; due {due}): {}.",
        r.id,
        r.terms.scope,
        r.state.as_str(),
        counts(items)
    )
}

/// The message to IT and the launcher when a review completes.
pub fn completed(r: &Review, items: &[ReviewItem]) -> String {
    format!(
        "✅ Review #{} of {} is complete: every access decided and every removal verified gone \
         by a re-read. {}. Evidence: `quartermaster review report --id {}`.",
        r.id,
        r.terms.scope,
        counts(items),
        r.id
    )
}

/// The message to IT about removals that could not be verified.
pub fn unverified(r: &Review, holder: &str, app: &str, why: &str) -> String {
    format!(
        "⚠️ Review #{}: the removal of {holder}'s {app} could not be verified ({why}). The \
         review stays open until a re-read shows it gone: use Retry on the failed removal, or \
         remove it by hand and retry.",
        r.id
    )
}

//! A review's evidence report in Markdown, CSV (one row per access) and JSON.

use serde_json::{Value, json};

use crate::core::model::{ItemState, Timestamp};
use crate::core::service::{ReportItem, ReviewReport};

fn at(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Who decided an item, when and why (empty parts when nobody did).
fn decision(i: &ReportItem) -> (String, String, String) {
    i.item.decided.as_ref().map_or_else(
        || (String::new(), String::new(), String::new()),
        |(by, t, why)| (by.clone(), at(*t), why.clone()),
    )
}

/// What a removal came to: its action and proof, or why it is not verified.
fn removal(i: &ReportItem) -> String {
    match (&i.item.state, &i.item.removal) {
        (ItemState::Revoked, Some((a, proof))) => format!("verified: action {a}: {proof}"),
        (ItemState::Unverified, Some((a, why))) => format!("unverified: action {a}: {why}"),
        (ItemState::Revoking, _) => "removal under way".to_owned(),
        _ => String::new(),
    }
}

/// The report as Markdown.
pub fn markdown(r: &ReviewReport) -> String {
    let rv = &r.review;
    let mut s = format!(
        "# Access review #{} — {}\n\n\
         - State: {}\n- Launched by {} at {}; due {}; default at due: {}; reviewer: {}\n",
        rv.id,
        rv.terms.scope,
        rv.state.as_str(),
        rv.launched_by,
        at(rv.launched_at),
        at(rv.due_at),
        rv.terms.default.as_str(),
        rv.terms.reviewer,
    );
    if let Some(c) = rv.closed_at {
        s.push_str(&format!("- Closed at {}\n", at(c)));
    }
    if let Some(snap) = &rv.snapshot {
        s.push_str(&format!(
            "- Snapshot at launch: {} grant(s), {} unrecorded account(s); SHA-256 `{}`\n",
            snap.grants, snap.unrecorded, snap.digest
        ));
        for (c, what) in &snap.reads {
            s.push_str(&format!("  - re-read of {c}: {what}\n"));
        }
    }
    s.push_str(&format!(
        "- Report produced at {}\n\n## Decisions\n\n",
        at(r.at)
    ));
    s.push_str(
        "| item | holder | app | seen at launch | reviewer of record | decided by | at | decision \
         | reason | removal | access now |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for i in &r.items {
        let (by, when, why) = decision(i);
        s.push_str(&format!(
            "| {} | {} (@{}) | {}{} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            i.item.id,
            cell(&i.holder),
            i.item.person,
            cell(&i.app),
            i.item
                .account
                .as_ref()
                .map(|a| format!(" (unrecorded account `{}`)", cell(a)))
                .unwrap_or_default(),
            cell(&i.item.seen),
            i.item.of_record,
            cell(&by),
            when,
            i.item.state.as_str(),
            cell(&why),
            cell(&removal(i)),
            cell(&i.now),
        ));
    }
    s.push_str("\n## Never answered\n\n");
    if r.never_answered.is_empty() {
        s.push_str("Every reviewer of record decided their items.\n");
    }
    for (h, n) in &r.never_answered {
        s.push_str(&format!("- {h}: {n} item(s)\n"));
    }
    s
}

/// A Markdown table cell: no pipes or line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The report as CSV, one row per access.
pub fn csv(r: &ReviewReport) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "review",
        "item",
        "holder",
        "app",
        "grant",
        "account",
        "seen_at_launch",
        "reviewer_of_record",
        "reviewers",
        "decided_by",
        "decided_at",
        "decision",
        "reason",
        "removal",
        "access_now",
    ])?;
    for i in &r.items {
        let (by, when, why) = decision(i);
        w.write_record([
            r.review.id.to_string(),
            i.item.id.to_string(),
            i.item.person.to_string(),
            i.item.app.to_string(),
            i.item.grant.map(|g| g.to_string()).unwrap_or_default(),
            i.item.account.clone().unwrap_or_default(),
            i.item.seen.clone(),
            i.item.of_record.to_string(),
            i.item
                .reviewers
                .iter()
                .map(|h| h.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            by,
            when,
            i.item.state.as_str().to_owned(),
            why,
            removal(i),
            i.now.clone(),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The report as JSON.
pub fn json(r: &ReviewReport) -> Value {
    let rv = &r.review;
    json!({
        "review": rv.id.0,
        "scope": rv.terms.scope.to_string(),
        "reviewer": rv.terms.reviewer.to_string(),
        "default": rv.terms.default.as_str(),
        "state": rv.state.as_str(),
        "launched_by": rv.launched_by,
        "launched_at": at(rv.launched_at),
        "due_at": at(rv.due_at),
        "closed_at": rv.closed_at.map(at),
        "snapshot": rv.snapshot.as_ref().map(|s| json!({
            "sha256": s.digest,
            "grants": s.grants,
            "unrecorded": s.unrecorded,
            "reads": s.reads.iter().map(|(c, w)| json!({"connector": c.as_str(), "result": w})).collect::<Vec<_>>(),
        })),
        "items": r.items.iter().map(|i| {
            let (by, when, why) = decision(i);
            json!({
                "item": i.item.id.0,
                "holder": i.item.person.as_str(),
                "holder_name": i.holder,
                "app": i.item.app.as_str(),
                "grant": i.item.grant.map(|g| g.0),
                "account": i.item.account,
                "seen_at_launch": i.item.seen,
                "reviewer_of_record": i.item.of_record.as_str(),
                "reviewers": i.item.reviewers.iter().map(|h| h.as_str()).collect::<Vec<_>>(),
                "decided_by": (!by.is_empty()).then_some(by),
                "decided_at": (!when.is_empty()).then_some(when),
                "decision": i.item.state.as_str(),
                "reason": (!why.is_empty()).then_some(why),
                "removal": i.item.removal.as_ref().map(|(a, p)| json!({"action": a.0, "proof": p, "verified": i.item.state == ItemState::Revoked})),
                "access_now": i.now,
            })
        }).collect::<Vec<_>>(),
        "never_answered": r.never_answered.iter().map(|(h, n)| json!({"reviewer": h.as_str(), "items": n})).collect::<Vec<_>>(),
        "produced_at": at(r.at),
    })
}

//! The sentences of drift: the digest to IT, each finding, and what was decided.

use crate::core::model::{DriftClass, Finding};
use crate::core::service::DriftReport;

/// The digest's first message.
pub fn digest_head(r: &DriftReport, at: &str) -> String {
    let count = |c: DriftClass| r.open.iter().filter(|f| f.class == c).count();
    let mut s = format!(
        "🔎 Drift on {} (reconciled {at}): {} open finding{} — {} unrecorded, {} missing, {} orphan, {} ambiguous.",
        r.connector,
        r.open.len(),
        if r.open.len() == 1 { "" } else { "s" },
        count(DriftClass::Unrecorded),
        count(DriftClass::Missing),
        count(DriftClass::Orphan),
        count(DriftClass::Ambiguous),
    );
    if r.new > 0 {
        s.push_str(&format!(" New this run: {}.", r.new));
    }
    if r.gone > 0 {
        s.push_str(&format!(" No longer seen: {}.", r.gone));
    }
    if r.revoked > 0 {
        s.push_str(&format!(
            " Revoke queued automatically (seen twice): {}.",
            r.revoked
        ));
    }
    for u in &r.unread {
        s.push_str(&format!(
            "\n⚠️ Cannot be read: {u} — nothing is concluded from it."
        ));
    }
    s
}

/// One finding, as IT reads it.
pub fn finding(f: &Finding) -> String {
    let what = match f.class {
        DriftClass::Unrecorded => "Unrecorded access",
        DriftClass::Missing => "Missing access",
        DriftClass::Orphan => "Orphan account",
        DriftClass::Ambiguous => "Ambiguous match",
    };
    let runs = if f.runs > 1 {
        format!(" (seen by {} runs in a row)", f.runs)
    } else {
        String::new()
    };
    format!(
        "Finding #{} on {} — {what}: {}{runs}",
        f.id, f.connector, f.detail
    )
}

/// A finding once decided.
pub fn decided(f: &Finding, how: &str) -> String {
    format!("{}\n→ {how}", finding(f))
}

/// Revoked, in words.
pub fn revoked(by: &str, why: &str) -> String {
    format!("revoke queued by {by} ({why}); it counts as gone only once a re-read shows it")
}

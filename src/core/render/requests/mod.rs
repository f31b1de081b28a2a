//! The words of requests, approvals, revokes, expiries, views and the engine's outcomes.
//!
//! - [`refusals`]: every reason a request, a decision, a revoke, a view or IT's button is
//!   refused;
//! - [`asking`]: a request's answer, its prompts, decisions, cancels and revokes;
//! - [`timers`]: expiries, their warnings, reminders and escalations;
//! - [`views`]: `/access` and `/approvals`;
//! - [`engine`]: what connector actions did (granted, removed, failed, not verified), IT's
//!   tasks and Retry, and the outbox's fallback copies.

pub mod asking;
pub mod engine;
pub mod refusals;
pub mod timers;
pub mod views;

pub(crate) use asking::*;
pub(crate) use engine::*;
pub(crate) use refusals::refusal;
pub(crate) use timers::*;
pub(crate) use views::*;

use crate::core::service::news::{Moment, Prompt, Wait};

/// A moment in its reader's zone: `2026-12-31 23:59 PST`.
pub(crate) fn show(t: &Moment) -> String {
    t.zone.show(t.at)
}

/// "Ann, Bob or Cid" ("nobody" for none).
pub(crate) fn either(names: &[String]) -> String {
    match names.len() {
        0 => "nobody".into(),
        1 => names[0].clone(),
        n => format!("{} or {}", names[..n - 1].join(", "), names[n - 1]),
    }
}

/// "waiting for Bob Chen (step 1 of 2)" and the like.
pub(crate) fn wait(w: &Wait) -> String {
    match w {
        Wait::Awaiting { approvers, k, of } => {
            format!("waiting for {} (step {} of {of})", either(approvers), k + 1)
        }
        Wait::NoApprover { k, of } => format!(
            "waiting: nobody is eligible to approve step {} of {of}; IT has been told",
            k + 1
        ),
        Wait::Other(s) => s.to_string(),
    }
}

/// The prompt of a request's current step: who asks for what, why, for how long, which step,
/// and what they already hold.
pub(crate) fn prompt(p: &Prompt) -> String {
    let what = if p.extend {
        "asks to extend"
    } else {
        "asks for"
    };
    format!(
        "Access request #{}: {requester} {what} {}.\nReason: {}\nDuration: {}\nStep {} of {} ({})\n{requester} already holds: {}",
        p.id,
        p.app,
        p.reason.as_deref().unwrap_or("(none given)"),
        p.duration
            .map_or_else(|| "no end".to_owned(), |d| d.to_string()),
        p.k + 1,
        p.of,
        p.rule.as_ref().map(ToString::to_string).unwrap_or_default(),
        if p.held.is_empty() {
            "nothing yet".to_owned()
        } else {
            p.held.join(", ")
        },
        requester = p.requester,
    )
}

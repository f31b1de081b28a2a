//! The words of the timers: a grant's end and its warning, a request nobody decided in time,
//! reminders and escalations.

use crate::core::model::{RequestId, Span};
use crate::core::service::news::{Moment, Prompt};

use super::{prompt, show};

/// To the holder: their time-bound access to `app` ended.
pub(crate) fn access_ended(app: &str) -> String {
    format!("Your time-bound {app} access has ended and is being removed.")
}

/// To the holder: their access to `app` ends soon (with an Extend button).
pub(crate) fn access_ending(app: &str, ends: &Moment) -> String {
    format!(
        "Your {app} access ends at {}. Click Extend to ask for more time (it goes through the usual approvals).",
        show(ends)
    )
}

/// An expired request's prompt as its approvers now see it.
pub(crate) fn prompt_expired(p: &Prompt, at: &Moment) -> String {
    format!(
        "{}\nExpired at {}: nobody decided in time.",
        prompt(p),
        show(at)
    )
}

/// To the requester: nobody decided request `id` within `after`.
pub(crate) fn request_expired(id: RequestId, app: &str, after: Span) -> String {
    format!(
        "Your request #{id} for {app} expired: nobody decided within {after}. Ask again if you still need it."
    )
}

/// To the people a step was escalated to after `after`.
pub(crate) fn escalated(after: Span, p: &Prompt) -> String {
    format!(
        "Escalated to you: nobody decided within {after}.\n{}",
        prompt(p)
    )
}

/// To an approver: request `id` still waits for them, since then.
pub(crate) fn reminder(id: RequestId, requester: &str, app: &str, since: &Moment) -> String {
    format!(
        "Reminder: request #{id} ({requester} asks for {app}) is waiting for your decision since {}. Use /approvals or the buttons on the original message.",
        show(since)
    )
}

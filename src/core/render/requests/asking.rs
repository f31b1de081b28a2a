//! The words of asking: a request's answer, its prompts and their decisions, the requester's
//! news, cancels and revokes, and the dispatcher's own sentences.

use crate::core::model::RequestId;
use crate::core::policy::Shortened;
use crate::core::service::news::{DecisionNews, Moment, Prompt, Requested};

use super::{prompt, show, wait};

/// ": reason", or nothing.
fn because(reason: Option<&str>) -> String {
    reason.map(|r| format!(": {r}")).unwrap_or_default()
}

/// The requester's answer to `/request` (with a note when the app's cap shortened it).
pub(crate) fn requested(
    id: RequestId,
    app: &str,
    r: &Requested,
    shortened: Option<&Shortened>,
) -> String {
    let text = match r {
        Requested::Provisioning { birthright } => format!(
            "Request #{id} for {app} is approved ({}); setting it up now.",
            if *birthright {
                "it comes with your role"
            } else {
                "no approval needed"
            }
        ),
        Requested::Extended { until } => format!(
            "Request #{id}: your {app} access is extended{}.",
            until
                .map(|t| format!(" until {}", show(&t)))
                .unwrap_or_default()
        ),
        Requested::Waiting { extension, wait: w } => format!(
            "Request #{id} for {app}{} is {}.",
            if *extension { " (an extension)" } else { "" },
            wait(w)
        ),
    };
    match shortened {
        Some(Shortened { asked, max }) => format!(
            "{text}\n{app} can be granted for at most {max}; your request was shortened from {asked} to {max}."
        ),
        None => text,
    }
}

/// The decider's answer: "You approved request #1 (Figma for Alice Kim)."
pub(crate) fn decided(approved: bool, id: RequestId, app: &str, requester: &str) -> String {
    format!(
        "{} request #{id} ({app} for {requester}).",
        if approved {
            "You approved"
        } else {
            "You denied"
        }
    )
}

/// A decided step's prompt as everyone who got it now sees it.
pub(crate) fn prompt_decided(
    p: &Prompt,
    approved: bool,
    by: &str,
    at: &Moment,
    reason: Option<&str>,
) -> String {
    format!(
        "{}\n{} by {by} at {}{}",
        prompt(p),
        if approved {
            "✅ Approved"
        } else {
            "❌ Denied"
        },
        show(at),
        because(reason)
    )
}

/// What the requester is told of a decision by `by` on request `id` for `app`.
pub(crate) fn decision_news(id: RequestId, app: &str, by: &str, news: &DecisionNews) -> String {
    match news {
        DecisionNews::Denied { reason } => format!(
            "Your request #{id} for {app} was denied by {by}{}.",
            because(reason.as_deref())
        ),
        DecisionNews::Provisioning => {
            format!("Your request #{id} for {app} was approved by {by}; setting it up now.")
        }
        DecisionNews::ExtendApproved => {
            format!("Your request #{id} to extend {app} was approved by {by}.")
        }
        DecisionNews::StepApproved { k, wait: w } => format!(
            "Step {} of your request #{id} for {app} was approved by {by}; it is now {}.",
            k + 1,
            wait(w)
        ),
    }
}

/// To the requester and IT: nobody may decide step `k` (from 0) of `of`.
pub(crate) fn no_approver(id: RequestId, app: &str, requester: &str, k: u32, of: usize) -> String {
    format!(
        "Request #{id} ({app} for {requester}) has nobody eligible to approve step {} of {of}. An IT admin can add an approver in the catalog, or the requester can /revoke it.",
        k + 1
    )
}

/// The answer to `/revoke` that removes access (`own`: the caller's; else `subject`'s).
pub(crate) fn removing(app: &str, own: bool, subject: &str) -> String {
    format!(
        "Removing {app} from {}; {} will be told when it is done.",
        if own { "you" } else { subject },
        if own { "you" } else { "they" }
    )
}

/// To the requester: someone else (`by`) cancelled their request.
pub(crate) fn cancelled_news(id: RequestId, app: &str, by: &str) -> String {
    format!("Your request #{id} for {app} was cancelled by {by}.")
}

/// The answer to the cancel of a request.
pub(crate) fn cancelled(id: RequestId, app: &str) -> String {
    format!("Request #{id} for {app} is cancelled.")
}

/// A cancelled step's prompt as its approvers now see it.
pub(crate) fn prompt_cancelled(p: &Prompt, by: &str, at: &Moment, reason: Option<&str>) -> String {
    format!(
        "{}\nCancelled by {by} at {}{}.",
        prompt(p),
        show(at),
        because(reason)
    )
}

/// The title of Deny's form.
pub(crate) fn deny_title(id: RequestId) -> String {
    format!("Deny request #{id}")
}

/// The label of Deny's one field.
pub(crate) fn deny_label() -> String {
    "Why is it denied?".into()
}

/// The answer when a command failed on our side.
pub(crate) fn command_failed() -> String {
    "Something went wrong on our side; nothing was changed. Please try again, or ask IT.".into()
}

/// The answer when a click failed on our side.
pub(crate) fn click_failed() -> String {
    "Something went wrong on our side; nothing was changed. Please try again.".into()
}

/// The answer to `/help` for something that is no command.
pub(crate) fn help_refused(e: &impl std::fmt::Display) -> String {
    format!("{e}.")
}

/// The answer to an interaction from a place Quartermaster does not serve.
pub(crate) fn not_served() -> String {
    "Sorry, Quartermaster is not set up for this server. Please use it in your company's server, or in a direct message with the bot.".into()
}

//! The words of what connector actions did: a grant given, access removed, a set-up or a
//! removal that failed or could not be verified; IT's tasks, Done and Retry; and the copy of
//! a message the outbox could not deliver.

use crate::core::model::{ActionId, ActionOp, ConnectorName, RequestId};
use crate::core::ports::ConnectorError;
use crate::core::service::news::{FailureNews, Moment};

use super::show;

/// What a finished task did, in words (the audit name, like `grant.provisioned`, is for the
/// trail, not for people).
fn task_words(op: ActionOp, app: &str, person: &str) -> String {
    let app = if app.is_empty() { "access" } else { app };
    match op {
        ActionOp::Grant => format!("{app} given to {person}"),
        ActionOp::Revoke => format!("{app} removed from {person}"),
        ActionOp::Disable => format!("the account of {person} disabled"),
        ActionOp::Verify => format!("the removal of {person}'s access checked"),
    }
}

/// A task as IT sees it once someone (`by`) clicked Done.
pub(crate) fn task_finished(
    id: ActionId,
    op: ActionOp,
    app: &str,
    person: &str,
    by: &str,
    at: &Moment,
) -> String {
    format!(
        "Task #{id}: {} — done by {by} at {}.",
        task_words(op, app, person),
        show(at)
    )
}

/// To the holder: they now have `app` (until then, for a request's grant with an end).
pub(crate) fn granted(app: &str, until: Option<&Moment>) -> String {
    let until = until
        .map(|t| format!(" until {}", show(t)))
        .unwrap_or_default();
    format!("✅ You now have {app}{until}.")
}

/// To an approver of request `id`: the requester now has `app`.
pub(crate) fn granted_to(requester: &str, app: &str, id: RequestId) -> String {
    format!("{requester} now has {app} (request #{id}).")
}

/// To the holder: their access to `app` is gone.
pub(crate) fn removed(app: &str) -> String {
    format!("Your {app} access has been removed.")
}

/// A manual connector's task for IT (`app`: the display name, when the task is about one).
pub(crate) fn it_task(id: ActionId, app: Option<&str>, task: &str) -> String {
    let app = app.map(|a| format!(" ({a})")).unwrap_or_default();
    format!("Task #{id} for IT{app}: {task}\nClick Done once it is done.")
}

/// What an action without an app is about: a connector's account.
pub(crate) fn connector_account(connector: &ConnectorName) -> String {
    format!("the {connector} account")
}

/// To the holder of a failed action on `app`.
pub(crate) fn failure_news(app: &str, news: &FailureNews) -> String {
    match news {
        FailureNews::SetupFailed => {
            format!("Setting up {app} failed; IT has been told and will retry.")
        }
        FailureNews::RemovalUnverified(e) => format!(
            "The removal of your {app} access could not be verified ({e}); you may still have it. IT has been told and will retry."
        ),
        FailureNews::RemovalFailed => format!(
            "Removing your {app} access failed; you may still have it. IT has been told and will retry."
        ),
    }
}

/// IT's task with a Retry button: action `id` (`op` on `app` for `person`, through
/// `connector`) failed for good, or (`unverified`) its outcome could not be verified.
pub(crate) fn retry_prompt(
    id: ActionId,
    op: ActionOp,
    app: &str,
    person: &str,
    connector: &ConnectorName,
    cause: &str,
    unverified: bool,
) -> String {
    let what = format!("{} {app} for {person} (connector {connector})", op.as_str());
    if unverified {
        format!(
            "Action #{id} could not be verified: {what}: {cause}. It is not reported as done. Click Retry once the connector can be read."
        )
    } else {
        format!(
            "Action #{id} failed for good: {what}: {cause}. Click Retry once the cause is fixed."
        )
    }
}

/// The Retry task as IT sees it once someone (`by`) clicked Retry.
pub(crate) fn retried(id: ActionId, by: &str, at: &Moment) -> String {
    format!("Action #{id} was retried by {by} at {}.", show(at))
}

/// The answer to Done.
pub(crate) fn task_marked_done(id: ActionId) -> String {
    format!("Thanks — task #{id} is marked done.")
}

/// The answer to Retry.
pub(crate) fn queued_again(id: ActionId) -> String {
    format!("Action #{id} is queued again.")
}

/// The copy of a message for `name` that went elsewhere: they refuse direct messages
/// (`closed`), or it could not be delivered (`tried`: how it was tried).
pub(crate) fn fallback_copy(name: &str, tried: &str, closed: bool, text: &str) -> String {
    if closed {
        format!(
            "{name} does not accept direct messages from Quartermaster, so this message for them comes here:\n\n{text}"
        )
    } else {
        format!(
            "Quartermaster could not deliver this message to {name} ({tried}), so it comes here:\n\n{text}"
        )
    }
}

/// How a message was tried before it went elsewhere (also the audit trail's words).
pub(crate) fn delivery_tries(attempts: u32, secs: u64, why: &str) -> String {
    format!(
        "tried {attempts} time{} over {secs}s; last error: {why}",
        if attempts == 1 { "" } else { "s" }
    )
}

/// The approvals channel's copy of an approval prompt sent to `name`.
pub(crate) fn prompt_copy(name: &str, prompt: &str) -> String {
    format!("Approval prompt sent to {name}:\n\n{prompt}")
}

/// Why an action was given up, in words: for a failure that may pass, what was tried, how
/// often, and the last cause (never a bare "temporary failure").
pub(crate) fn give_up_cause(attempts: u32, e: &ConnectorError) -> String {
    match e {
        ConnectorError::Transient(cause) => {
            format!("gave up after {attempts} attempt(s); last cause: {cause}")
        }
        ConnectorError::RateLimited { .. } => {
            format!("gave up after {attempts} attempt(s); the target was still rate limiting")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod give_up_tests {
    use super::*;

    #[test]
    fn a_given_up_transient_failure_says_what_was_tried_and_the_last_cause() {
        let t = give_up_cause(
            6,
            &ConnectorError::Transient("POST http://hr.test/x: connection refused".into()),
        );
        assert_eq!(
            t,
            "gave up after 6 attempt(s); last cause: POST http://hr.test/x: connection refused"
        );
        assert!(!t.contains("temporary failure"));
        assert_eq!(
            give_up_cause(1, &ConnectorError::Permanent("HTTP 400".into())),
            "HTTP 400"
        );
    }
}

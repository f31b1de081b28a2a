//! The words of every refusal of the request use cases.

use crate::core::service::refusal::{
    ActionRefusal, AppHint, DecisionRefusal, Refusal, RequestRefusal, RevokeRefusal,
};

use super::{either, show, wait};

/// The sentence a refusal is answered with.
pub(crate) fn refusal(r: &Refusal) -> String {
    match r {
        Refusal::Offboarded => {
            "Your account has been offboarded; you can no longer use Quartermaster.".into()
        }
        Refusal::NoSuchApp { raw, hint } => no_such_app(raw, hint),
        Refusal::NoSuchPerson(h) => format!("There is nobody with the handle \"{h}\"."),
        Refusal::AccessHidden { name } => {
            format!("Only {name}'s manager or IT can see their access.")
        }
        Refusal::Request(r) => request(r),
        Refusal::Decision(r) => decision(r),
        Refusal::Revoke(r) => revoke(r),
        Refusal::Plan(r) => crate::core::render::lifecycle::refusal::text(r),
        Refusal::Action(r) => action(r),
        Refusal::StepUp(r) => crate::core::render::step_up::step_up_refusal(r),
        Refusal::BreakGlass(r) => crate::core::render::step_up::break_glass_refusal(r),
        Refusal::NotYourButton => "This button is not for you.".into(),
    }
}

/// "There is no app …", with a "did you mean" or the catalog.
fn no_such_app(raw: &str, hint: &AppHint) -> String {
    let hint = match hint {
        AppHint::DidYouMean(s) => format!(" — did you mean `{s}`?"),
        AppHint::Catalog(all) => format!(". Apps in the catalog: {}.", all.join(", ")),
    };
    format!("There is no app \"{raw}\" in the catalog{hint}")
}

/// Why `/request` or Extend asks for nothing.
fn request(r: &RequestRefusal) -> String {
    match r {
        RequestRefusal::Reason { app, mismatch } => format!(
            "{app} needs a reason that matches `{}`{}. Try again with reason:\"…\".",
            mismatch.pattern,
            mismatch
                .hint
                .as_deref()
                .map(|h| format!(": {h}"))
                .unwrap_or_default()
        ),
        RequestRefusal::TooLong { asked, max } => format!(
            "duration: {asked} is longer than anyone may ask for (at most {max}); nothing was requested."
        ),
        RequestRefusal::NotRequestable { app } => format!(
            "{app} cannot be requested: it comes with a role. Ask IT if you think yours should include it."
        ),
        RequestRefusal::AlreadyAsked { app, id, wait: w } => {
            format!("You already asked for {app}: request #{id} is {}.", wait(w))
        }
        RequestRefusal::AlreadyHave { app, since } => format!(
            "You already have {app}{}.",
            since
                .map(|t| format!(" (since {})", show(&t)))
                .unwrap_or_default()
        ),
        RequestRefusal::BeingRemoved { app } => {
            format!("Your {app} access is being removed right now; ask again once that is done.")
        }
        RequestRefusal::BeingSetUp { app } => format!("{app} is being set up for you already."),
        RequestRefusal::NothingToExtend => "There is no access of yours to extend there.".into(),
    }
}

/// Why Approve or Deny decides nothing.
fn decision(r: &DecisionRefusal) -> String {
    match r {
        DecisionRefusal::Busy(id) => {
            format!("Request #{id} is changing too often right now; try again in a moment.")
        }
        DecisionRefusal::NothingToDecide(id) => {
            format!("There is nothing for you to decide on request #{id}.")
        }
        DecisionRefusal::NoSuchStep { id, k } => format!("Request #{id} has no step {}.", k + 1),
        DecisionRefusal::AlreadyDecided { approved, by, at } => format!(
            "Already {} by {by} at {}.",
            if *approved { "approved" } else { "denied" },
            show(at)
        ),
        DecisionRefusal::NotOpen { id, state } => {
            format!("Request #{id} is {state}; there is nothing to decide.")
        }
        DecisionRefusal::OwnRequest => "You cannot approve or deny your own request.".into(),
        DecisionRefusal::NotApprover { id, k, approvers } => format!(
            "Only {} can decide step {} of request #{id}.",
            either(approvers),
            k + 1
        ),
        DecisionRefusal::AppGone(app) => format!("{app} is no longer in the catalog."),
    }
}

/// Why `/revoke` removes or cancels nothing.
fn revoke(r: &RevokeRefusal) -> String {
    match r {
        RevokeRefusal::ItOnly => "Only IT can revoke someone else's access.".into(),
        RevokeRefusal::NotHeld { own, app } => {
            format!(
                "{} not have {app}.",
                if *own { "You do" } else { "They do" }
            )
        }
        RevokeRefusal::RemovalStalled { app, error, action } => format!(
            "The removal of {app} was not seen to finish ({}); IT has a Retry on action #{action}.",
            error.as_deref().unwrap_or("it failed")
        ),
        RevokeRefusal::AlreadyBeingRemoved { app } => format!("{app} is already being removed."),
        RevokeRefusal::StillBeingSetUp { app } => {
            format!("{app} is still being set up; revoke it once that is finished.")
        }
        RevokeRefusal::CannotCancel { id, state } => {
            format!("Request #{id} is {state}; it cannot be cancelled.")
        }
        RevokeRefusal::Changed(id) => {
            format!("Request #{id} changed just now; look at /access and try again.")
        }
    }
}

/// Why IT's Done or Retry does nothing.
fn action(r: &ActionRefusal) -> String {
    match r {
        ActionRefusal::DoneItOnly => "Only IT admins can mark a task done.".into(),
        ActionRefusal::RetryItOnly => "Only IT admins can retry an action.".into(),
        ActionRefusal::NoSuchTask(id) => format!("Task #{id} does not exist."),
        ActionRefusal::TaskAlready { id, state } => format!(
            "Task #{id} is already {}.",
            state.map_or("gone", |s| s.as_str())
        ),
        ActionRefusal::NoSuchAction(id) => format!("Action #{id} does not exist."),
        ActionRefusal::NothingToRetry { id, state } => format!(
            "Action #{id} is {}; there is nothing to retry.",
            state.as_str()
        ),
        ActionRefusal::WouldGiveBack { id, app, person } => format!(
            "Action #{id} would give {} to {person}, whose access is being removed; nothing was retried.",
            app.as_deref().unwrap_or("access")
        ),
        ActionRefusal::Changed(id) => {
            format!("Action #{id} changed just now; nothing was retried.")
        }
    }
}

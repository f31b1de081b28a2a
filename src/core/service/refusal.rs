//! Why a request, a decision, a revoke, a view, IT's button on an action or a lifecycle
//! command is refused, as a typed value carrying what the sentence needs;
//! [`crate::core::render::requests::refusal`] words it.

use super::news::{Moment, Wait};
use super::*;
use crate::core::render::lifecycle::PlanRefusal;

/// What an app typed that is not in the catalog comes closest to.
#[derive(Debug, Clone)]
pub(crate) enum AppHint {
    /// The name meant, most likely.
    DidYouMean(String),
    /// Nothing close: every app's name.
    Catalog(Vec<String>),
}

/// One reason a command or a click of the request use cases is refused.
#[derive(Debug, Clone)]
pub(crate) enum Refusal {
    /// The caller was offboarded.
    Offboarded,
    /// No catalog app is called `raw`.
    NoSuchApp { raw: String, hint: AppHint },
    /// Nobody has this handle.
    NoSuchPerson(Handle),
    /// Someone not their manager nor IT asked for this person's access (their name).
    AccessHidden { name: String },
    /// `/request` and Extend.
    Request(RequestRefusal),
    /// Approve and Deny.
    Decision(DecisionRefusal),
    /// `/revoke`.
    Revoke(RevokeRefusal),
    /// IT's Done and Retry on connector actions.
    Action(ActionRefusal),
    /// Joiners, movers and leavers: `/onboard`, `/role`, `/offboard`, a plan's buttons.
    Plan(PlanRefusal),
    /// Step-up and `/mfa`.
    StepUp(crate::core::render::step_up::StepUpRefusal),
    /// Break-glass, Escalate, Ratify and Revoke now.
    BreakGlass(crate::core::render::step_up::BreakGlassRefusal),
    /// A review button clicked by someone who is not its reviewer (nothing more is said).
    NotYourButton,
}

/// Why `/request` (or Extend) asks for nothing.
#[derive(Debug, Clone)]
pub(crate) enum RequestRefusal {
    /// The reason does not fit the app's rule.
    Reason {
        /// The app's display name.
        app: String,
        /// The rule it does not match.
        mismatch: crate::core::policy::ReasonMismatch,
    },
    /// A duration over the global ceiling.
    TooLong { asked: Span, max: Span },
    /// The app (display name) comes with a role only.
    NotRequestable { app: String },
    /// An open request for the app already exists.
    AlreadyAsked {
        app: String,
        id: RequestId,
        wait: Wait,
    },
    /// Access without end already held (since then, when known).
    AlreadyHave { app: String, since: Option<Moment> },
    /// The caller's access to the app is being removed.
    BeingRemoved { app: String },
    /// The app is being set up for the caller.
    BeingSetUp { app: String },
    /// Extend on a grant that is not the caller's (or gone).
    NothingToExtend,
}

/// Why a click on Approve or Deny decides nothing.
#[derive(Debug, Clone)]
pub(crate) enum DecisionRefusal {
    /// A decision kept losing version races.
    Busy(RequestId),
    /// The caller has no part in the request (nothing more is said).
    NothingToDecide(RequestId),
    /// The request has no step `k` (from 0).
    NoSuchStep { id: RequestId, k: u32 },
    /// The step was decided already, by `by` (a name).
    AlreadyDecided {
        approved: bool,
        by: String,
        at: Moment,
    },
    /// The request is no longer waiting for that step.
    NotOpen { id: RequestId, state: RequestState },
    /// The requester clicked on their own request.
    OwnRequest,
    /// Only these people (names) decide step `k` (from 0).
    NotApprover {
        id: RequestId,
        k: u32,
        approvers: Vec<String>,
    },
    /// The request's app left the catalog.
    AppGone(AppName),
}

/// Why `/revoke` removes or cancels nothing.
#[derive(Debug, Clone)]
pub(crate) enum RevokeRefusal {
    /// Someone not IT revoking another's access.
    ItOnly,
    /// The subject does not hold the app (`own`: the caller).
    NotHeld { own: bool, app: String },
    /// The removal of the app failed or was not verified (`action`, its last error).
    RemovalStalled {
        app: String,
        error: Option<String>,
        action: ActionId,
    },
    /// The app is already being removed.
    AlreadyBeingRemoved { app: String },
    /// The app is still being set up.
    StillBeingSetUp { app: String },
    /// The request cannot be cancelled in its state.
    CannotCancel { id: RequestId, state: RequestState },
    /// The request changed while being cancelled.
    Changed(RequestId),
}

/// Why IT's Done or Retry does nothing.
#[derive(Debug, Clone)]
pub(crate) enum ActionRefusal {
    /// Done by someone not an IT admin.
    DoneItOnly,
    /// Retry by someone not an IT admin.
    RetryItOnly,
    /// No task has this id.
    NoSuchTask(ActionId),
    /// The task is no longer waiting (its state, None when gone).
    TaskAlready {
        id: ActionId,
        state: Option<ActionState>,
    },
    /// No action has this id.
    NoSuchAction(ActionId),
    /// The action has not failed.
    NothingToRetry { id: ActionId, state: ActionState },
    /// Retrying would give the app (display name, None for access) back to someone whose
    /// access is being removed.
    WouldGiveBack {
        id: ActionId,
        app: Option<String>,
        person: Handle,
    },
    /// The action changed while being retried.
    Changed(ActionId),
}

/// A use case's refusal is a [`Refusal`], and answers as a [`Reply`].
macro_rules! refusal_of {
    ($($t:ident => $v:ident),*) => {$(
        impl From<$t> for Refusal {
            fn from(r: $t) -> Self {
                Refusal::$v(r)
            }
        }
        impl From<$t> for Reply {
            fn from(r: $t) -> Self {
                Refusal::$v(r).into()
            }
        }
    )*};
}

use crate::core::render::step_up::{BreakGlassRefusal, StepUpRefusal};

refusal_of!(
    StepUpRefusal => StepUp,
    BreakGlassRefusal => BreakGlass,
    RequestRefusal => Request,
    DecisionRefusal => Decision,
    RevokeRefusal => Revoke,
    ActionRefusal => Action,
    PlanRefusal => Plan
);

impl Refusal {
    /// The words of this refusal.
    pub(crate) fn text(&self) -> String {
        crate::core::render::requests::refusal(self)
    }
}

impl From<Refusal> for Reply {
    fn from(r: Refusal) -> Self {
        Reply::text(r.text())
    }
}

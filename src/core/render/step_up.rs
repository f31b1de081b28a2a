//! The sentences of step-up (TOTP enrolment, codes asked for before a high-risk click) and
//! of break-glass (emergency access, its ratification), and why each is refused.

use crate::core::model::{BreakGlassId, RequestId};

/// Wrong codes in a row before step-up locks.
pub const MAX_FAILURES: u32 = 5;

/// Why a step-up or an `/mfa` command asks for nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepUpRefusal {
    /// `[mfa] key_env` is not configured.
    NotConfigured,
    /// The person has no confirmed enrolment (`started`: one waits for its first code).
    NotEnrolled {
        /// An enrolment waits for `/mfa confirm`.
        started: bool,
    },
    /// Too many wrong codes; locked until then (in the reader's zone).
    Locked {
        /// Until when.
        until: String,
    },
    /// A wrong code; this many tries are left before the lock.
    WrongCode {
        /// Tries left.
        left: u32,
    },
    /// The fifth wrong code: locked until then; IT was told.
    NowLocked {
        /// Until when.
        until: String,
    },
    /// The code was accepted once already.
    Reused,
    /// `/mfa enroll` by someone enrolled (since then).
    AlreadyEnrolled {
        /// Since when.
        since: String,
    },
    /// `/mfa confirm` with no enrolment started.
    NothingToConfirm,
    /// `/mfa confirm` with a wrong code.
    ConfirmWrong,
    /// `/mfa reset` of someone not enrolled (their name).
    NoEnrolment {
        /// Their name.
        name: String,
    },
    /// `/mfa reset` of oneself.
    OwnReset,
    /// The enrolment page link is unknown, used or expired.
    LinkGone,
}

/// Why break-glass, Escalate, Ratify or Revoke now does nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakGlassRefusal {
    /// The app has no break-glass.
    NotOffered {
        /// The app's display name.
        app: String,
    },
    /// The person is not among `who`.
    NotEligible {
        /// The app's display name.
        app: String,
        /// Who may, in words.
        who: String,
    },
    /// An earlier break-glass of theirs is neither ratified nor cleared by IT.
    Unratified {
        /// Its number.
        id: BreakGlassId,
        /// Its app's display name.
        app: String,
    },
    /// No reason, or one that does not match `reason_pattern`.
    Reason {
        /// The app's display name.
        app: String,
        /// The pattern.
        pattern: Option<String>,
    },
    /// A duration longer than `max`.
    TooLong {
        /// The app's display name.
        app: String,
        /// The cap.
        max: String,
    },
    /// They hold the app already.
    AlreadyHeld {
        /// The app's display name.
        app: String,
    },
    /// Escalate on a request that is not the caller's own, pending one.
    NotYourPending(RequestId),
    /// Ratify or Revoke now by someone who is neither a skipped approver nor IT.
    NotReviewer(BreakGlassId),
    /// Ratify by the holder.
    OwnRatify,
    /// Ratify past the window by someone other than IT.
    LateRatifyItOnly(BreakGlassId),
    /// Already ratified (by, at) or revoked.
    Settled {
        /// Its number.
        id: BreakGlassId,
        /// What happened, in words.
        how: String,
    },
    /// No such break-glass record.
    Unknown(BreakGlassId),
    /// Extend on a break-glass grant.
    NotExtendable {
        /// The app's display name.
        app: String,
    },
}

/// A step-up refusal in words.
pub fn step_up_refusal(r: &StepUpRefusal) -> String {
    match r {
        StepUpRefusal::NotConfigured => "Step-up verification is not set up on this server \
             (IT has to configure `[mfa] key_env`)."
            .into(),
        StepUpRefusal::NotEnrolled { started: false } => "This needs a code from an \
             authenticator app, and you have not set one up: run /mfa enroll, then /mfa confirm \
             with the code it shows. Nothing was decided."
            .into(),
        StepUpRefusal::NotEnrolled { started: true } => "This needs a code from an \
             authenticator app, and your enrolment is not finished: run /mfa confirm with the \
             code your app shows. Nothing was decided."
            .into(),
        StepUpRefusal::Locked { until } => format!(
            "Step-up is locked after {MAX_FAILURES} wrong codes, until {until}. Nothing was decided."
        ),
        StepUpRefusal::WrongCode { left } => format!(
            "That code is not right (check your phone's clock). Nothing was decided; {left} \
             {} left before step-up locks for 15 minutes.",
            if *left == 1 { "try" } else { "tries" }
        ),
        StepUpRefusal::NowLocked { until } => format!(
            "That code is not right either: step-up is locked until {until}, and IT has been \
             told. Nothing was decided."
        ),
        StepUpRefusal::Reused => "That code was used already; wait for your app to show the \
             next one. Nothing was decided."
            .into(),
        StepUpRefusal::AlreadyEnrolled { since } => format!(
            "You are enrolled already (since {since}). If you lost your authenticator, ask IT \
             for /mfa reset."
        ),
        StepUpRefusal::NothingToConfirm => {
            "There is no enrolment to confirm: run /mfa enroll first.".into()
        }
        StepUpRefusal::ConfirmWrong => "That code does not match: check that your app added \
             the right account and that your phone's clock is right, then try the next code."
            .into(),
        StepUpRefusal::NoEnrolment { name } => format!("{name} is not enrolled; nothing to reset."),
        StepUpRefusal::OwnReset => {
            "You cannot reset your own enrolment; ask another IT admin.".into()
        }
        StepUpRefusal::LinkGone => "This enrolment link is not valid: it works once, for 10 \
             minutes. Run /mfa enroll again for a new one."
            .into(),
    }
}

/// A break-glass refusal in words.
pub fn break_glass_refusal(r: &BreakGlassRefusal) -> String {
    match r {
        BreakGlassRefusal::NotOffered { app } => {
            format!("{app} has no break-glass; ask for it with /request (without emergency).")
        }
        BreakGlassRefusal::NotEligible { app, who } => {
            format!("Break-glass on {app} is only for {who}. Ask for it with /request.")
        }
        BreakGlassRefusal::Unratified { id, app } => format!(
            "Your break-glass #{id} on {app} is not ratified yet, so you cannot use break-glass \
             again until IT clears it."
        ),
        BreakGlassRefusal::Reason {
            app,
            pattern: Some(p),
        } => {
            format!("Break-glass on {app} needs a reason that matches `{p}` (an incident number).")
        }
        BreakGlassRefusal::Reason { app, pattern: None } => {
            format!("Break-glass on {app} needs a reason: say what the emergency is.")
        }
        BreakGlassRefusal::TooLong { app, max } => {
            format!("Break-glass on {app} lasts at most {max}.")
        }
        BreakGlassRefusal::AlreadyHeld { app } => format!("You have {app} already."),
        BreakGlassRefusal::NotYourPending(id) => {
            format!("Only the requester can escalate request #{id}, while it waits for approval.")
        }
        BreakGlassRefusal::NotReviewer(_) | BreakGlassRefusal::Unknown(_) => {
            "There is nothing here for you to ratify or revoke.".into()
        }
        BreakGlassRefusal::OwnRatify => {
            "You cannot ratify your own break-glass; someone else must.".into()
        }
        BreakGlassRefusal::LateRatifyItOnly(id) => {
            format!("Break-glass #{id} was not ratified in time; only IT can ratify it now.")
        }
        BreakGlassRefusal::Settled { id, how } => format!("Break-glass #{id} is settled: {how}."),
        BreakGlassRefusal::NotExtendable { app } => format!(
            "Break-glass access to {app} cannot be extended; ask for it again with /request."
        ),
    }
}

/// The code field's label.
pub fn code_label() -> String {
    "Code from your authenticator app".into()
}

/// `/mfa enroll` with a public URL: the one-time link.
pub fn enroll_link(url: &str) -> String {
    format!(
        "Open this link within 10 minutes (it works once) and scan the QR code with your \
         authenticator app: {url}\nThen finish with /mfa confirm code:123456 (the code your app \
         shows)."
    )
}

/// `/mfa enroll` without a public URL: the secret itself (this answer is only for them).
pub fn enroll_secret(secret: &str, uri: &str) -> String {
    format!(
        "Add Quartermaster to your authenticator app (only you can see this message):\n\
         • secret: {secret}\n• or this URI: {uri}\nThen finish with /mfa confirm code:123456 \
         (the code your app shows)."
    )
}

/// `/mfa confirm` worked.
pub fn enrolled() -> String {
    "Enrolled: from now on, approvals that need step-up ask for a code from your app.".into()
}

/// `/mfa status`.
pub fn status(confirmed: Option<&str>, started: bool, locked: Option<&str>) -> String {
    let mut s = match (confirmed, started) {
        (Some(since), _) => format!("You are enrolled for step-up (since {since})."),
        (None, true) => {
            "Your enrolment is started but not confirmed: run /mfa confirm code:123456.".into()
        }
        (None, false) => "You are not enrolled for step-up: run /mfa enroll.".to_owned(),
    };
    if let Some(u) = locked {
        s.push_str(&format!(
            " Step-up is locked until {u} after too many wrong codes."
        ));
    }
    s
}

/// The IT admin's form title for `/mfa reset`.
pub fn reset_title(name: &str) -> String {
    format!("Reset {name}'s step-up")
}

/// `/mfa reset` done.
pub fn reset_done(name: &str) -> String {
    format!("{name}'s step-up enrolment is removed; they can run /mfa enroll again.")
}

/// What the reset person is told.
pub fn reset_news(by: &str) -> String {
    format!("{by} (IT) reset your step-up enrolment. Run /mfa enroll to set up your app again.")
}

/// IT is told of a lockout.
pub fn locked_to_it(name: &str, until: &str) -> String {
    format!(
        "⚠️ Step-up for {name} locked until {until} after {MAX_FAILURES} wrong codes in a row. \
         If that was not them, their chat account may be in someone else's hands."
    )
}

/// The title of the Approve form when a code is needed.
pub fn approve_title(id: RequestId) -> String {
    format!("Approve request #{id}")
}

/// The title of an IT confirm's form when a code is needed.
pub fn confirm_title(what: &str) -> String {
    format!("{what}: step-up code")
}

/// The break-glass form's title.
pub fn break_glass_title(app: &str) -> String {
    format!("Break-glass: {app}")
}

/// The break-glass form's reason label.
pub fn break_glass_reason_label() -> String {
    "The emergency (e.g. INC-1234)".into()
}

/// The hint under the reason: who will be told.
pub fn break_glass_who(told: &str, within: &str) -> String {
    format!("Tells {told}, who must ratify it within {within}.")
}

/// The requester's answer once break-glass is granted.
pub fn break_glass_granted(app: &str, until: &str, told: &str) -> String {
    format!(
        "🚨 Break-glass: {app} is being granted now, until {until} (it cannot be extended). \
         {told} have been told and must ratify it."
    )
}

/// The prompt to the skipped approvers and the approvals channel (the request's number
/// goes between the two parts).
pub fn ratify_prompt(name: &str, app: &str, reason: &str, until: &str, by: &str) -> Vec<String> {
    vec![
        format!("🚨 Break-glass (request #"),
        format!(
            "): {name} took {app} at once, until {until}, without approval. Reason: {reason}. \
             Please ratify it by {by}, or revoke it now."
        ),
    ]
}

/// The ratification prompt once decided.
pub fn ratify_decided(original: &str, how: &str) -> String {
    format!("{original}\n→ {how}")
}

/// Ratified, in words.
pub fn ratified_by(name: &str, at: &str) -> String {
    format!("ratified by {name} at {at}")
}

/// Settled by IT after a revoke, in words.
pub fn settled_by(name: &str, at: &str) -> String {
    format!("settled by {name} (IT) at {at}")
}

/// Revoke now, in words: a removal asked for, not yet seen done.
pub fn revoke_requested_by(name: &str, at: &str) -> String {
    format!("revoke requested by {name} at {at}; the access counts as gone once a re-read shows it")
}

/// What the holder is told when it is ratified.
pub fn ratified_news(app: &str, by: &str) -> String {
    format!("{by} ratified your break-glass on {app}.")
}

/// What the holder is told when it is revoked.
pub fn revoked_news(app: &str, by: &str) -> String {
    format!(
        "{by} revoked your break-glass on {app}; the access is being removed. IT must clear \
         you before you can use break-glass again."
    )
}

/// IT is told that nobody ratified a break-glass in time.
pub fn overdue_to_it(
    id: BreakGlassId,
    name: &str,
    app: &str,
    reason: &str,
    revoking: bool,
) -> String {
    let then = if revoking {
        "The access is being revoked (auto_revoke)."
    } else {
        "The access stays until it ends."
    };
    format!(
        "⚠️ Break-glass #{id}: nobody ratified {name}'s emergency access to {app} in time \
         (reason: {reason}). {then} {name} cannot use break-glass again until IT ratifies or \
         revokes it here."
    )
}

/// An approval prompt once its request was escalated to break-glass.
pub fn escalated_prompt(name: &str) -> String {
    format!(
        "{name} escalated this request to break-glass: no decision is needed here; you are \
         asked to ratify it instead."
    )
}

/// IT is told that an approver revoked a break-glass: IT settles it.
pub fn revoked_to_it(id: BreakGlassId, by: &str, name: &str, app: &str) -> String {
    format!(
        "⚠️ Break-glass #{id}: {by} asked to revoke {name}'s emergency access to {app} (the removal \
         is queued). {name} cannot use \
         break-glass again until IT settles it here: Ratify if the emergency was real."
    )
}

//! Why a lifecycle command or click is refused, and the sentence that says so.

use crate::core::model::{Email, Handle, PlanId, RoleName};
use crate::core::plan::PlanState;

/// One reason a joiner's, mover's or leaver's command (or a plan's Confirm or Cancel) is
/// refused, with what its sentence needs (names already resolved, times already shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PlanRefusal {
    /// The command is for IT admins only.
    ItOnly {
        /// The command (`/onboard`, …).
        what: String,
    },
    /// `/role` by someone neither IT nor the person's manager.
    RoleNotAllowed,
    /// The catalog has no such role.
    NoRole {
        /// The role asked for.
        role: RoleName,
        /// The nearest role the catalog has, if any is near.
        suggestion: Option<String>,
    },
    /// Nobody has this handle.
    NoSuchPerson(Handle),
    /// The manager named does not exist.
    NoManager(Handle),
    /// An email's local part is not a handle.
    BadHandle(String),
    /// `/onboard` for someone already active.
    AlreadyHere {
        /// Their name.
        name: String,
        /// Their handle.
        handle: Handle,
        /// Their email.
        email: Email,
        /// The role asked for.
        role: RoleName,
    },
    /// The email belongs to someone else.
    EmailTaken {
        /// The email.
        email: Email,
        /// Whose it is.
        name: String,
        /// Their handle.
        handle: Handle,
    },
    /// The Discord account is linked to someone else.
    DiscordTaken {
        /// Whose it is.
        name: String,
        /// Their handle.
        handle: Handle,
    },
    /// The handle belongs to someone else.
    HandleTaken {
        /// The handle.
        handle: Handle,
        /// Whose it is.
        name: String,
        /// Their email.
        email: Email,
    },
    /// The joiner's record does not fit (the check's own words).
    InvalidJoiner(String),
    /// A value of the joiner's is already someone else's (found at commit).
    AlreadyUsed {
        /// The joiner's name.
        name: String,
        /// The value.
        what: String,
    },
    /// The person was offboarded already (`/offboard`).
    AlreadyOffboarded(String),
    /// The person has been offboarded (`/role`).
    Offboarded(String),
    /// `/offboard` about oneself.
    OffboardSelf,
    /// The person already has the role.
    AlreadyRole {
        /// Their name.
        name: String,
        /// The role.
        role: RoleName,
    },
    /// Nobody else may confirm the role change.
    NoOtherConfirmer,
    /// Another offboarding plan for the person waits for Confirm or Cancel.
    PlanOpen {
        /// The person's name.
        name: String,
        /// The open plan.
        id: PlanId,
    },
    /// The clicker has no part in the plan.
    NotYours(PlanId),
    /// A plan about the clicker, which someone else must confirm.
    AboutYou(PlanId),
    /// Only these people may confirm or cancel the plan.
    NotConfirmer {
        /// The plan.
        id: PlanId,
        /// Its confirmers' names, as one phrase ("Ann or Bob").
        confirmers: String,
    },
    /// Someone decided the plan between the read and the write.
    DecidedFirst {
        /// The plan.
        id: PlanId,
        /// Whoever did, if known.
        by: Option<String>,
    },
    /// The plan was decided before.
    AlreadyClosed {
        /// The plan.
        id: PlanId,
        /// Its state.
        state: PlanState,
        /// Whoever decided it, if known.
        by: Option<String>,
        /// When, as the clicker reads it.
        at: Option<String>,
    },
}

/// The sentence that says why.
pub(crate) fn text(r: &PlanRefusal) -> String {
    use PlanRefusal as R;
    match r {
        R::ItOnly { what } => format!("{what} is for IT admins only."),
        R::RoleNotAllowed => "/role is for IT admins, or the person's manager.".into(),
        R::NoRole {
            role,
            suggestion: Some(s),
        } => format!("There is no role \"{role}\" — did you mean `{s}`?"),
        R::NoRole {
            role,
            suggestion: None,
        } => format!("There is no role \"{role}\"."),
        R::NoSuchPerson(h) => format!("There is nobody with the handle \"{h}\"."),
        R::NoManager(m) => format!("There is nobody with the handle \"{m}\" to be the manager."),
        R::BadHandle(e) => format!("{e}; give one with handle:"),
        R::AlreadyHere {
            name,
            handle,
            email,
            role,
        } => format!(
            "{name} ({handle}, {email}) is already in Quartermaster; /onboard changes nobody. To change their role, use /role user:{handle} role:{role}."
        ),
        R::EmailTaken {
            email,
            name,
            handle,
        } => format!("{email} already belongs to {name} ({handle})."),
        R::DiscordTaken { name, handle } => format!(
            "That Discord account is already linked to {name} ({handle}); nothing was changed."
        ),
        R::HandleTaken {
            handle,
            name,
            email,
        } => format!(
            "The handle \"{handle}\" is taken by {name} ({email}); choose another with handle:"
        ),
        R::InvalidJoiner(e) => format!("Could not onboard: {e}."),
        R::AlreadyUsed { name, what } => {
            format!("Could not onboard {name}: {what} is already used by someone else.")
        }
        R::AlreadyOffboarded(name) => format!("{name} is already offboarded."),
        R::Offboarded(name) => format!("{name} has been offboarded."),
        R::OffboardSelf => "You cannot offboard yourself; ask another IT admin.".into(),
        R::AlreadyRole { name, role } => format!("{name} is already {role}."),
        R::NoOtherConfirmer => {
            "There is no other IT admin to confirm this role change; nothing was changed.".into()
        }
        R::PlanOpen { name, id } => format!(
            "An offboarding plan for {name} is already open (plan #{id}); Confirm or Cancel it before making another."
        ),
        R::NotYours(id) => format!("There is nothing for you to confirm or cancel on plan #{id}."),
        R::AboutYou(id) => format!("Plan #{id} is about you: another IT admin must confirm it."),
        R::NotConfirmer { id, confirmers } => {
            format!("Only {confirmers} can confirm or cancel plan #{id}.")
        }
        R::DecidedFirst { id, by } => format!(
            "Plan #{id} was already decided by {}.",
            by.as_deref().unwrap_or("someone")
        ),
        R::AlreadyClosed { id, state, by, at } => format!(
            "Plan #{id} was already {} by {}{}.",
            state.as_str(),
            by.as_deref().unwrap_or("someone"),
            at.as_ref().map(|t| format!(" at {t}")).unwrap_or_default()
        ),
    }
}

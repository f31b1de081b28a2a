//! A plan's summary (what it grants, revokes, reviews or removes), its Confirm and Cancel,
//! and its result.

use super::list_or_none;
use crate::core::model::{Email, GrantState, Handle, Person, PlanId, RequestId, RoleName};
use crate::core::plan::PlanKind;

/// A role change worked out as a diff of grants, with apps already shown by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoleSummary {
    /// The person's name.
    pub(crate) name: String,
    /// Their handle.
    pub(crate) handle: Handle,
    /// Their role now.
    pub(crate) from: RoleName,
    /// The role they move to.
    pub(crate) to: RoleName,
    /// Apps granted.
    pub(crate) grant: Vec<String>,
    /// Apps revoked.
    pub(crate) revoke: Vec<String>,
    /// Apps kept.
    pub(crate) keep: Vec<String>,
    /// Separately requested apps flagged for review (kept).
    pub(crate) review: Vec<String>,
}

/// A role change as shown to its confirmers and its people.
pub(crate) fn role_summary(s: &RoleSummary) -> String {
    format!(
        "Role change for {} ({}): {} → {}\n- grant: {}\n- revoke: {}\n- keep: {}\n- separately requested, flagged for review (kept): {}",
        s.name,
        s.handle,
        s.from,
        s.to,
        list_or_none(&s.grant),
        list_or_none(&s.revoke),
        list_or_none(&s.keep),
        list_or_none(&s.review),
    )
}

/// A move carried out: its grants, and what else of the record changed when the manager or
/// department did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MoveSummary {
    /// The grants moved.
    pub(crate) plan: RoleSummary,
    /// The record's changes, when more than the role changed.
    pub(crate) changes: Option<Vec<String>>,
}

/// A move as told to its people.
pub(crate) fn move_summary(s: &MoveSummary) -> String {
    let mut text = role_summary(&s.plan);
    if let Some(what) = &s.changes {
        text.push_str(&format!("\nChanges: {}", what.join("; ")));
    }
    text
}

/// What a move changes in a person's record, in words ("role a → b", …).
pub(crate) fn move_changes(old: &Person, new: &Person) -> Vec<String> {
    let mut what = Vec::new();
    if old.role != new.role {
        what.push(format!("role {} → {}", old.role, new.role));
    }
    if old.department != new.department {
        what.push(format!(
            "department {} → {}",
            old.department, new.department
        ));
    }
    if old.manager != new.manager {
        what.push(format!(
            "manager {} → {}",
            old.manager.as_ref().map_or("none", |m| m.as_str()),
            new.manager.as_ref().map_or("none", |m| m.as_str())
        ));
    }
    what
}

/// Why a leaver's pending requests are cancelled, as their approvers read it.
pub(crate) const REQUESTER_OFFBOARDED: &str = "requester offboarded";

/// One grant an offboarding removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffboardGrant {
    /// The app, by name.
    pub(crate) app: String,
    /// Its connector (None when the catalog no longer has the app).
    pub(crate) connector: Option<String>,
    /// Its entitlement (None likewise).
    pub(crate) entitlement: Option<String>,
    /// The grant's state (a revoking or failed one is removed again).
    pub(crate) state: GrantState,
}

/// The offboarding plan as shown for Confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffboardPlan {
    /// The leaver's name.
    pub(crate) name: String,
    /// Their handle.
    pub(crate) handle: Handle,
    /// Their email.
    pub(crate) email: Email,
    /// Why, when given.
    pub(crate) reason: Option<String>,
    /// Every grant to revoke.
    pub(crate) grants: Vec<OffboardGrant>,
    /// Every connector whose account is disabled.
    pub(crate) accounts: Vec<String>,
    /// Their pending requests, each with its app by name.
    pub(crate) pending: Vec<(RequestId, String)>,
    /// When it runs by itself once confirmed (the end of the last day, as shown).
    pub(crate) scheduled: Option<String>,
}

/// The offboarding plan: every grant to revoke, every account to disable and every pending
/// request to cancel.
pub(crate) fn offboard_plan(p: &OffboardPlan) -> String {
    let mut lines = vec![format!(
        "Offboarding plan for {} ({}, {}):",
        p.name, p.handle, p.email
    )];
    if let Some(r) = &p.reason {
        lines.push(format!("Reason: {r}"));
    }
    lines.push("Access to revoke:".into());
    if p.grants.is_empty() {
        lines.push("- none recorded".into());
    }
    for g in &p.grants {
        lines.push(format!(
            "- {} (connector {}, entitlement {}){}",
            g.app,
            g.connector.as_deref().unwrap_or("?"),
            g.entitlement.as_deref().unwrap_or("?"),
            match g.state {
                GrantState::Revoking =>
                    " — an earlier removal was not seen to finish; removed again",
                GrantState::Failed => " — its set-up failed; removed in case part of it took",
                _ => "",
            }
        ));
    }
    lines.push(format!(
        "Accounts to disable: {}",
        list_or_none(&p.accounts)
    ));
    if !p.pending.is_empty() {
        let open: Vec<String> = p
            .pending
            .iter()
            .map(|(id, app)| format!("#{id} {app}"))
            .collect();
        lines.push(format!("Pending requests to cancel: {}", open.join(", ")));
    }
    let mut text = lines.join("\n");
    if let Some(at) = &p.scheduled {
        text.push_str(&format!(
            "\nScheduled: runs by itself at {at} once confirmed; until then nothing changes."
        ));
    }
    text
}

/// What carrying out a confirmed plan did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PlanResult {
    /// An offboarding queued its connector actions.
    Offboarding {
        /// The leaver's name.
        name: String,
        /// How many actions were queued.
        actions: usize,
    },
    /// The person was offboarded before: nothing to do.
    AlreadyOffboarded(String),
    /// A role change was made.
    RoleChanged {
        /// The person's name.
        name: String,
        /// Their new role.
        role: RoleName,
        /// The move (boxed: it is far larger than the other results).
        summary: Box<MoveSummary>,
    },
    /// An onboarding plan, which is never confirmed.
    NeedsNoConfirmation(PlanId),
    /// A joiner the identity provider sent was onboarded (their birthrights queued).
    Onboarded {
        /// Their name.
        name: String,
        /// The birthright apps being set up.
        apps: Vec<String>,
    },
    /// The identity provider's joiner is no longer active (deactivated or deleted since the
    /// plan was proposed): nothing was done.
    JoinerGone(String),
}

/// What carrying out a plan did, in words.
pub(crate) fn result(r: &PlanResult) -> String {
    match r {
        PlanResult::Offboarding { name, actions } => format!(
            "Offboarding {name}: {actions} connector action(s) queued; every connector is then re-read to verify nothing remains, and the report follows."
        ),
        PlanResult::AlreadyOffboarded(name) => {
            format!("{name} was already offboarded; nothing to do.")
        }
        PlanResult::RoleChanged {
            name,
            role,
            summary,
        } => format!("Done: {name} is now {role}.\n{}", move_summary(summary)),
        PlanResult::NeedsNoConfirmation(id) => format!("Plan #{id} needs no confirmation."),
        PlanResult::Onboarded { name, apps } if apps.is_empty() => {
            format!("Done: {name} is onboarded (no birthright apps).")
        }
        PlanResult::Onboarded { name, apps } => {
            format!("Done: {name} is onboarded; setting up {}.", apps.join(", "))
        }
        PlanResult::JoinerGone(name) => {
            format!("Nothing to do: the identity provider no longer has {name} as an active user.")
        }
    }
}

/// "Scheduled plan #N is running now", to whoever confirmed it.
pub(crate) fn running_now(id: PlanId, result: &str) -> String {
    format!("Scheduled plan #{id} is running now. {result}")
}

/// The answer to a Confirm or Cancel that went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PlanClosed {
    /// Cancelled: nothing changes.
    Cancelled(PlanId),
    /// Confirmed, to run by itself later.
    Scheduled {
        /// The plan.
        id: PlanId,
        /// Its kind.
        kind: PlanKind,
        /// Whom it is about, by name.
        subject: String,
        /// When it runs, as the clicker reads it.
        at: String,
    },
    /// Confirmed and carried out now.
    Done(PlanResult),
    /// Confirmed, but another click or tick is carrying it out.
    AlreadyRunning(PlanId),
}

/// The answer to a Confirm or Cancel.
pub(crate) fn closed(c: &PlanClosed) -> String {
    match c {
        PlanClosed::Cancelled(id) => format!("Plan #{id} cancelled; nothing was changed."),
        PlanClosed::Scheduled {
            id,
            kind,
            subject,
            at,
        } => format!(
            "Plan #{id} confirmed: the {} of {subject} runs by itself at {at}.",
            if *kind == PlanKind::Offboard {
                "offboarding"
            } else {
                "change"
            },
        ),
        PlanClosed::Done(r) => result(r),
        PlanClosed::AlreadyRunning(id) => format!("Plan #{id} is already being carried out."),
    }
}

/// A plan's messages once decided (their buttons taken off).
pub(crate) fn decided(
    id: PlanId,
    kind: PlanKind,
    subject: &str,
    confirm: bool,
    by: &str,
    at: &str,
) -> String {
    let verdict = format!(
        "{} by {by} at {at}.",
        if confirm { "Confirmed" } else { "Cancelled" },
    );
    format!("Plan #{id} ({} of {subject}): {verdict}", kind.as_str())
}

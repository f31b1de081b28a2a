//! `/onboard`'s answer, a role change's prompts, a move's news and the HR feed's answers.

use super::plans::{PlanResult, result};
use crate::core::model::{Handle, Person};
use crate::core::service::{PersonOutcome, RecordRefusal};

/// How people see the HR feed named when it acts ("by HR").
pub(crate) const BY_HR: &str = "HR";
/// The identity provider (inbound SCIM), as messages and audit details name it.
pub(crate) const BY_IDP: &str = "the identity provider";

/// How people see the scheduler named when it runs a plan.
pub(crate) const BY_SCHEDULER: &str = "Quartermaster (scheduled)";

/// How people see `quartermaster import people` named when it moves someone.
pub(crate) const BY_IMPORT: &str = "the people import";

/// The answer to `/onboard`: `verb` ("created", "updated"), the apps being set up by name.
pub(crate) fn onboarded(p: &Person, verb: &str, apps: &[String]) -> String {
    let list = if apps.is_empty() {
        "nothing new".to_owned()
    } else {
        apps.join(", ")
    };
    format!(
        "{} ({}) {verb} as {}; birthright apps being set up: {list}. A welcome summary goes to them{} once everything is settled.",
        p.name,
        p.handle,
        p.role,
        if p.manager.is_some() {
            " and their manager"
        } else {
            ""
        }
    )
}

/// A role change sent to others to confirm (`confirmers`: their names as one phrase).
pub(crate) fn role_sent(summary: &str, confirmers: &str) -> String {
    format!("{summary}\nSent to {confirmers} to confirm.")
}

/// The prompt to a confirmer of a role change `asker` proposed.
pub(crate) fn role_asked(asker: &str, summary: &str) -> String {
    format!("{asker} asks for this role change:\n{summary}")
}

/// Who is told of a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Told {
    /// The person moved.
    Person,
    /// Whoever proposed it.
    Proposer,
    /// Their old or new manager.
    Manager,
    /// An IT admin.
    It,
}

/// A move's news to `to`: `new` is the person's new record, `by` who carried it out.
pub(crate) fn move_news(to: Told, new: &Person, by: &str, summary: &str) -> String {
    match to {
        Told::Person => format!("Your role changed to {} (by {by}).\n{summary}", new.role),
        Told::Proposer => format!(
            "Your role change for {} was confirmed by {by}.\n{summary}",
            new.name
        ),
        Told::Manager => format!(
            "{}'s role changed to {} (by {by}).\n{summary}",
            new.name, new.role
        ),
        Told::It => format!(
            "For IT: {} moved to {} (by {by}).\n{summary}",
            new.name, new.role
        ),
    }
}

/// HR's answer to a hire or change.
pub(crate) fn hr_person(o: &PersonOutcome) -> String {
    match o {
        PersonOutcome::Hired(h) => format!("{h} hired; birthrights queued"),
        PersonOutcome::Moved(h) => format!("{h} updated; grants moved"),
        PersonOutcome::Repaired(h) => format!("{h} unchanged; missing birthrights queued"),
        PersonOutcome::Unchanged(h) => format!("{h} unchanged"),
    }
}

/// Why a joiner's or mover's record was refused, naming the field (HR's 422, an import's
/// line).
pub(crate) fn record_refused(r: &RecordRefusal) -> String {
    match r {
        RecordRefusal::Field(e) | RecordRefusal::EventId(e) => e.to_string(),
        RecordRefusal::EventField(e) => format!("person.{e}"),
        RecordRefusal::NoRole { role, suggestion } => {
            let hint = suggestion
                .as_ref()
                .map(|s| format!(" — did you mean \"{s}\"?"))
                .unwrap_or_default();
            format!("role: there is no role \"{role}\"{hint}")
        }
        RecordRefusal::OwnManager => "manager: a person cannot be their own manager".into(),
        RecordRefusal::NoManager(m) => format!("manager: there is nobody with the handle \"{m}\""),
        RecordRefusal::NoSuchPerson(h) => {
            format!("person.handle: there is nobody with the handle \"{h}\"")
        }
        RecordRefusal::EmailTaken { email, holder } => {
            format!("email: {email} already belongs to {holder}")
        }
        RecordRefusal::DiscordTaken { discord_id, holder } => {
            format!("discord_id: {discord_id} already belongs to {holder}")
        }
        RecordRefusal::AlreadyUsed(what) => format!("{what} is already used by someone else"),
    }
}

/// What a leave from HR did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HrLeave {
    /// The person was offboarded before.
    AlreadyOffboarded(Handle),
    /// The offboarding runs by itself at this moment (as the API shows it).
    Scheduled {
        /// The leaver.
        handle: Handle,
        /// When.
        at: String,
    },
    /// Another delivery is carrying out the offboarding.
    Running(Handle),
    /// The offboarding was carried out now.
    Done(PlanResult),
}

/// HR's answer to a leave.
pub(crate) fn hr_leave(l: &HrLeave) -> String {
    match l {
        HrLeave::AlreadyOffboarded(h) => format!("{h} is already offboarded"),
        HrLeave::Scheduled { handle, at } => format!("offboarding of {handle} scheduled at {at}"),
        HrLeave::Running(h) => format!("offboarding of {h} already running"),
        HrLeave::Done(r) => result(r),
    }
}

/// IT's notice of a leave HR scheduled, in the two parts around the plan's number (the
/// store fills it in).
pub(crate) fn hr_scheduled(p: &Person, at: &str) -> Vec<String> {
    vec![
        format!(
            "HR scheduled the offboarding of {} ({}) at {at} (plan #",
            p.name, p.handle
        ),
        "); it runs by itself then, and the report comes to IT.".into(),
    ]
}

/// IT's prompt for a joiner the identity provider sent (`joiner = "plan"`), in the two parts
/// around the plan's number.
pub(crate) fn idp_joiner(p: &Person, apps: &[String]) -> Vec<String> {
    let dept = if p.department.is_empty() {
        String::new()
    } else {
        format!(", {}", p.department)
    };
    let apps = if apps.is_empty() {
        "no birthright apps".to_owned()
    } else {
        apps.join(", ")
    };
    vec![
        format!(
            "The identity provider added {} ({}, {}), role {}{dept}. Onboarding plan #",
            p.name, p.handle, p.email, p.role
        ),
        format!(" sets up: {apps}. Confirm to onboard them, or Cancel."),
    ]
}

/// IT's prompt for a leaver the identity provider deactivated or deleted (`leaver = "plan"`),
/// in the two parts around the plan's number, with the plan as shown for `/offboard`.
pub(crate) fn idp_leaver(p: &Person, plan: &str) -> Vec<String> {
    vec![
        format!(
            "The identity provider deactivated {} ({}). Offboarding plan #",
            p.name, p.handle
        ),
        format!(":\n{plan}\nConfirm to offboard them, or Cancel."),
    ]
}

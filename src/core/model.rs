//! Newtypes and entities of the domain. Parse, don't validate: every identifier is checked once,
//! when it is built, and carried as its own type from then on.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use super::audit::AuditEvent;
pub use super::zone::Zone;

/// A moment in time, always UTC.
pub type Timestamp = DateTime<Utc>;

/// Why an identifier, email or duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn check_slug(kind: &str, s: &str, allow_upper: bool) -> Result<(), ParseError> {
    if s.is_empty() {
        return Err(ParseError(format!("{kind} must not be empty")));
    }
    if s.len() > 64 {
        return Err(ParseError(format!(
            "{kind} \"{s}\" is longer than 64 characters"
        )));
    }
    let ok = s.chars().all(|c| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || matches!(c, '-' | '_' | '.')
            || (allow_upper && c.is_ascii_uppercase())
    });
    if !ok {
        return Err(ParseError(format!(
            "{kind} \"{s}\" may hold only lowercase letters, digits, '-', '_' and '.'"
        )));
    }
    // "." and ".." would be path segments of their own in a URL (a webhook's template).
    if s.chars().all(|c| c == '.') {
        return Err(ParseError(format!(
            "{kind} \"{s}\" must hold a letter, a digit, '-' or '_', not only dots"
        )));
    }
    Ok(())
}

macro_rules! slug_newtype {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks and wraps a string.
            pub fn parse(s: &str) -> Result<Self, ParseError> {
                check_slug($kind, s, false)?;
                Ok(Self(s.to_owned()))
            }
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                Self::parse(s)
            }
        }
    };
}

slug_newtype!(
    /// A person's short name in Quartermaster (`alice`).
    Handle,
    "a handle"
);
slug_newtype!(
    /// An app's catalog name (`figma`).
    AppName,
    "an app name"
);
slug_newtype!(
    /// A role's name (`engineer`).
    RoleName,
    "a role name"
);
slug_newtype!(
    /// A connector's configured name (`design`).
    ConnectorName,
    "a connector name"
);

/// An email address, minimally checked (one `@`, something on each side, no spaces).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Checks and wraps an address.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        let mut parts = s.split('@');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(l), Some(d), None)
                if !l.is_empty() && d.contains('.') && !s.contains(char::is_whitespace) =>
            {
                Ok(Self(s.to_owned()))
            }
            _ => Err(ParseError(format!("\"{s}\" is not an email address"))),
        }
    }
    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}
impl TryFrom<String> for Email {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}
impl From<Email> for String {
    fn from(v: Email) -> String {
        v.0
    }
}
impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub i64);
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}
id_newtype!(
    /// An access request's number (`#42`).
    RequestId
);
id_newtype!(
    /// A grant's row id.
    GrantId
);
id_newtype!(
    /// A queued connector action's row id.
    ActionId
);

/// A span of time as people write it: `90m`, `8h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(Duration);

impl Span {
    /// Parses `90m`, `8h`, `7d`, `2w`, `1y`, or anything humantime accepts (`1h 30m`). A year
    /// is 365 days and a month 30 days, as people mean them (humantime's are 365.25 and
    /// 30.44 days).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let t = s.trim();
        let d = calendar_units(t)
            .or_else(|| humantime::parse_duration(t).ok())
            .ok_or_else(|| {
                ParseError(format!(
                    "\"{t}\" is not a duration; write it like 90m, 8h or 7d"
                ))
            })?;
        if d.is_zero() {
            return Err(ParseError("a duration must be longer than zero".into()));
        }
        Ok(Self(d))
    }
    /// Wraps a std duration.
    pub fn from_std(d: Duration) -> Self {
        Self(d)
    }
    /// The std duration.
    pub fn as_std(&self) -> Duration {
        self.0
    }
    /// As a chrono duration, for arithmetic on timestamps.
    pub fn as_chrono(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::from_std(self.0).unwrap_or(chrono::TimeDelta::MAX)
    }
    /// Seconds in the span.
    pub fn secs(&self) -> u64 {
        self.0.as_secs()
    }
    /// `t` plus the span, or `None` past the last time chrono can hold (never a panic).
    pub fn checked_after(&self, t: Timestamp) -> Option<Timestamp> {
        chrono::TimeDelta::from_std(self.0)
            .ok()
            .and_then(|d| t.checked_add_signed(d))
    }
    /// `t` plus the span, saturating at the last time chrono can hold.
    pub fn after(&self, t: Timestamp) -> Timestamp {
        self.checked_after(t).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
    /// Whether the span, counted from `t`, has run out by `now`.
    pub fn elapsed(&self, t: Timestamp, now: Timestamp) -> bool {
        self.checked_after(t).is_some_and(|end| end <= now)
    }
}

/// `1y`, `2 years`, `6M`, `1y 30d`…: whole years and months, optionally with days, hours,
/// minutes and seconds, counted as 365 and 30 days; `None` for anything else (humantime then
/// reads it).
fn calendar_units(t: &str) -> Option<Duration> {
    let mut total: u64 = 0;
    let mut calendar = false;
    let mut rest = t.trim();
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_end] {
            "y" | "year" | "years" => {
                calendar = true;
                365 * 86_400
            }
            "M" | "month" | "months" => {
                calendar = true;
                30 * 86_400
            }
            "w" | "week" | "weeks" => 7 * 86_400,
            "d" | "day" | "days" => 86_400,
            "h" | "hour" | "hours" => 3_600,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(secs)?)?;
        rest = rest[unit_end..].trim_start();
    }
    calendar.then(|| Duration::from_secs(total))
}

impl fmt::Display for Span {
    /// The shortest exact form: `30d`, `8h`, `90m`, `45s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        if s != 0 && s.is_multiple_of(86_400) {
            write!(f, "{}d", s / 86_400)
        } else if s != 0 && s.is_multiple_of(3_600) {
            write!(f, "{}h", s / 3_600)
        } else if s != 0 && s.is_multiple_of(60) {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

/// Whether a person is employed or has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersonStatus {
    /// Works here; may request and approve.
    Active,
    /// Has left: may neither request nor approve.
    Offboarded,
}

impl PersonStatus {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Offboarded => "offboarded",
        }
    }
    /// Reads the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "offboarded" => Some(Self::Offboarded),
            _ => None,
        }
    }
}

/// Someone in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Short name, unique.
    pub handle: Handle,
    /// Full name as shown in chat.
    pub name: String,
    /// Work email; the account name in most targets.
    pub email: Email,
    /// Department name (birthrights may hang on it).
    pub department: String,
    /// Role name (birthrights hang on it).
    pub role: RoleName,
    /// Their manager, if any.
    pub manager: Option<Handle>,
    /// Their Discord user id, once known.
    pub discord_id: Option<String>,
    /// Employed or gone.
    pub status: PersonStatus,
    /// Their own time zone (None: the organisation's).
    pub timezone: Option<Zone>,
}

impl Person {
    /// The zone this person reads times in and types dates in: their own, else `org`'s.
    pub fn zone(&self, org: &Org) -> Zone {
        self.timezone.unwrap_or(org.timezone)
    }
}

/// One approval step as the catalog writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ApprovalRule {
    /// The requester's manager.
    Manager,
    /// Any of the app's owners.
    Owner,
    /// Any IT admin.
    ItAdmin,
    /// A named person.
    Person(Handle),
}

impl ApprovalRule {
    /// Reads `manager`, `owner`, `it-admin` or a handle.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Ok(match s {
            "manager" => Self::Manager,
            "owner" => Self::Owner,
            "it-admin" => Self::ItAdmin,
            other => Self::Person(Handle::parse(other)?),
        })
    }
}

impl fmt::Display for ApprovalRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Manager => f.write_str("manager"),
            Self::Owner => f.write_str("owner"),
            Self::ItAdmin => f.write_str("it-admin"),
            Self::Person(h) => write!(f, "{h}"),
        }
    }
}

/// An app in the catalog.
#[derive(Debug, Clone)]
pub struct App {
    /// Catalog name.
    pub name: AppName,
    /// Name shown to people.
    pub display: String,
    /// Connector that provisions it.
    pub connector: ConnectorName,
    /// Group or entitlement in the target system.
    pub entitlement: String,
    /// The app's owners.
    pub owners: Vec<Handle>,
    /// Ordered approval steps; empty means auto-approved.
    pub approvals: Vec<ApprovalRule>,
    /// Longest a request may ask for.
    pub max_duration: Option<Span>,
    /// Duration when a request names none.
    pub default_duration: Option<Span>,
    /// False: birthright only.
    pub requestable: bool,
    /// A reason must match this, when set.
    pub reason_pattern: Option<regex::Regex>,
    /// Shown when the reason does not match.
    pub reason_hint: Option<String>,
}

/// A role and its birthright apps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Role name.
    pub name: RoleName,
    /// Apps everyone in the role gets.
    pub apps: Vec<AppName>,
}

/// A department and its birthright apps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    /// Department name.
    pub name: String,
    /// Apps everyone in the department gets.
    pub apps: Vec<AppName>,
}

/// Timers of the approval workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkflowSettings {
    /// Remind an approver after this long.
    pub remind_after: Span,
    /// Escalate a step after this long (from the step's start).
    pub escalate_after: Span,
    /// Expire an undecided request after this long (from submission).
    pub expire_after: Span,
    /// The longest duration anyone may ask for (`[workflow] max_duration`, one year by
    /// default); a longer one is refused, and no grant runs longer.
    pub max_duration: Span,
}

impl Default for WorkflowSettings {
    fn default() -> Self {
        Self {
            remind_after: Span::from_std(Duration::from_secs(24 * 3600)),
            escalate_after: Span::from_std(Duration::from_secs(72 * 3600)),
            expire_after: Span::from_std(Duration::from_secs(7 * 86_400)),
            max_duration: Span::from_std(Duration::from_secs(365 * 86_400)),
        }
    }
}

/// The organisation as configured: who is IT, the catalog, roles and workflow timers.
#[derive(Debug, Clone)]
pub struct Org {
    /// Company name.
    pub name: String,
    /// IT admins, by handle (being IT comes from this list alone).
    pub it_admins: Vec<Handle>,
    /// Workflow timers.
    pub workflow: WorkflowSettings,
    /// The catalog.
    pub apps: Vec<App>,
    /// Roles and their birthrights.
    pub roles: Vec<Role>,
    /// Departments and their birthrights.
    pub departments: Vec<Department>,
    /// The organisation's time zone (`[organization] timezone`; UTC when absent).
    pub timezone: Zone,
}

impl Org {
    /// The app with that name.
    pub fn app(&self, name: &AppName) -> Option<&App> {
        self.apps.iter().find(|a| &a.name == name)
    }
    /// Whether `h` is an IT admin.
    pub fn is_it_admin(&self, h: &Handle) -> bool {
        self.it_admins.contains(h)
    }
    /// The role with that name.
    pub fn role(&self, name: &RoleName) -> Option<&Role> {
        self.roles.iter().find(|r| &r.name == name)
    }
    /// Birthright apps for a role and department, in catalog order, without repeats.
    pub fn birthrights(&self, role: &RoleName, department: &str) -> Vec<AppName> {
        let mut wanted: Vec<&AppName> = Vec::new();
        if let Some(r) = self.role(role) {
            wanted.extend(r.apps.iter());
        }
        if let Some(d) = self.departments.iter().find(|d| d.name == department) {
            wanted.extend(d.apps.iter());
        }
        self.apps
            .iter()
            .filter(|a| wanted.contains(&&a.name))
            .map(|a| a.name.clone())
            .collect()
    }
    /// Whether `app` is a birthright of this person.
    pub fn is_birthright(&self, p: &Person, app: &AppName) -> bool {
        self.birthrights(&p.role, &p.department).contains(app)
    }
}

/// Who did something: a person, the system itself, or the HR feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person, by handle.
    Person(Handle),
    /// Quartermaster (timers, workers).
    System,
    /// The HR feed.
    Hr,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Person(h) => write!(f, "{h}"),
            Self::System => f.write_str("system"),
            Self::Hr => f.write_str("hr"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_checked() {
        assert!(Handle::parse("alice").is_ok());
        assert!(Handle::parse("a.b-c_1").is_ok());
        assert!(Handle::parse("").is_err());
        assert!(Handle::parse("Alice").is_err());
        assert!(Handle::parse("al ice").is_err());
        for dots in [".", "..", "..."] {
            let e = Handle::parse(dots).unwrap_err().to_string();
            assert!(e.contains("not only dots"), "{e}");
        }
        assert!(Handle::parse(".a.").is_ok());
    }

    #[test]
    fn spans_parse_and_print() {
        assert_eq!(Span::parse("90m").unwrap().secs(), 5400);
        assert_eq!(Span::parse("8h").unwrap().to_string(), "8h");
        assert_eq!(Span::parse("7d").unwrap().to_string(), "7d");
        assert_eq!(Span::parse("30d").unwrap().secs(), 30 * 86400);
        assert!(Span::parse("soon").is_err());
        // A year is 365 days, not 365 days and six hours.
        assert_eq!(Span::parse("1y").unwrap().to_string(), "365d");
        assert_eq!(Span::parse("2 years").unwrap().to_string(), "730d");
        assert_eq!(Span::parse("1M").unwrap().to_string(), "30d");
        assert_eq!(Span::parse("1y 2d").unwrap().to_string(), "367d");
        assert_eq!(Span::parse("1h 30m").unwrap().to_string(), "90m");
        assert!(Span::parse("0m").is_err());
    }

    #[test]
    fn emails_are_checked() {
        assert_eq!(Email::parse("lena@acme.test").unwrap().local_part(), "lena");
        assert!(Email::parse("lena").is_err());
        assert!(Email::parse("a@b@c.d").is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// Stored records: requests, approval steps, grants, connector actions, audit events.
// ---------------------------------------------------------------------------------------------

/// Whether a request is for new access or to extend a time-bound grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// New access.
    New,
    /// More time on an existing grant.
    Extend(GrantId),
}

/// A decision taken on one approval step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Approved (true) or denied (false).
    pub approved: bool,
    /// Who decided.
    pub by: Handle,
    /// When.
    pub at: Timestamp,
    /// The reason given (a deny asks for one).
    pub reason: Option<String>,
}

/// One approval step of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Position, from 0.
    pub index: u32,
    /// The rule from the catalog.
    pub rule: ApprovalRule,
    /// Who may decide; resolved when the step starts (empty before).
    pub approvers: Vec<Handle>,
    /// When the step started waiting (None before its turn).
    pub started_at: Option<Timestamp>,
    /// The decision, once taken.
    pub decision: Option<Decision>,
    /// A reminder went out.
    pub reminded: bool,
    /// The step was escalated.
    pub escalated: bool,
}

/// An access request with its steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its number.
    pub id: RequestId,
    /// Who asked.
    pub requester: Handle,
    /// For which app.
    pub app: AppName,
    /// Why.
    pub reason: Option<String>,
    /// For how long (None: no end).
    pub duration: Option<Span>,
    /// New access or an extension.
    pub kind: RequestKind,
    /// Where it stands.
    pub state: crate::core::workflow::RequestState,
    /// Its approval steps.
    pub steps: Vec<Step>,
    /// The grant it produced, once approved.
    pub grant: Option<GrantId>,
    /// Submitted at.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version, bumped by every update.
    pub version: i64,
}

impl Request {
    /// The step now waiting, if the request is waiting for a decision.
    pub fn current_step(&self) -> Option<&Step> {
        self.state.step().and_then(|k| self.steps.get(k as usize))
    }
}

/// Where a grant came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantSource {
    /// Role or department birthright.
    Birthright,
    /// An approved request.
    Request(RequestId),
}

/// Lifecycle of a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantState {
    /// Being provisioned.
    Pending,
    /// Held.
    Active,
    /// Being removed, or its removal failed or could not be verified (the newest revoke
    /// action says which, and waits for IT's Retry). An offboarding removes it again.
    Revoking,
    /// Removed, as a connector saw it (or IT's Done, where nothing can be read). Never set on
    /// an answer that could not be verified.
    Revoked,
    /// Provisioning failed for good.
    Failed,
}

impl GrantState {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Revoking => "revoking",
            Self::Revoked => "revoked",
            Self::Failed => "failed",
        }
    }
    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "active" => Self::Active,
            "revoking" => Self::Revoking,
            "revoked" => Self::Revoked,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
    /// Pending or active: the person holds it or is about to.
    pub fn is_live(&self) -> bool {
        matches!(self, Self::Pending | Self::Active)
    }
}

/// Access a person holds (or is being given) to one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Row id.
    pub id: GrantId,
    /// Holder.
    pub person: Handle,
    /// App.
    pub app: AppName,
    /// Why they hold it.
    pub source: GrantSource,
    /// Lifecycle.
    pub state: GrantState,
    /// When it became active.
    pub granted_at: Option<Timestamp>,
    /// When it ends by itself (None: no end).
    pub expires_at: Option<Timestamp>,
    /// The expiry warning went out.
    pub warned: bool,
}

/// What a connector action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionOp {
    /// Make sure the account exists and is enabled, then add the entitlement.
    Grant,
    /// Remove the entitlement.
    Revoke,
    /// Disable the person's account in the target.
    Disable,
    /// Re-read what the target still holds for the person (after an offboarding), so the
    /// core can remove and flag what is left.
    Verify,
}

impl ActionOp {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Revoke => "revoke",
            Self::Disable => "disable",
            Self::Verify => "verify",
        }
    }
    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "grant" => Self::Grant,
            "revoke" => Self::Revoke,
            "disable" => Self::Disable,
            "verify" => Self::Verify,
            _ => return None,
        })
    }
}

/// Lifecycle of a connector action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionState {
    /// Queued, waiting for a worker (or for `not_before`).
    Pending,
    /// Claimed by a worker until its lease ends.
    Running,
    /// Handed to a person (manual connector); waits for Done.
    Waiting,
    /// Finished with success.
    Done,
    /// Failed for good.
    Failed,
}

impl ActionState {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "waiting" => Self::Waiting,
            "done" => Self::Done,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A durable connector action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// Row id.
    pub id: ActionId,
    /// Which connector runs it.
    pub connector: ConnectorName,
    /// What it does.
    pub op: ActionOp,
    /// On whose account.
    pub person: Handle,
    /// For which app (None for account-wide ops).
    pub app: Option<AppName>,
    /// The entitlement in the target (None for account-wide ops).
    pub entitlement: Option<String>,
    /// The grant it serves.
    pub grant: Option<GrantId>,
    /// The request it serves.
    pub request: Option<RequestId>,
    /// Lifecycle.
    pub state: ActionState,
    /// Attempts so far.
    pub attempts: u32,
    /// Last error, for people (never a secret).
    pub last_error: Option<String>,
    /// Do not start before this moment (backoff).
    pub not_before: Timestamp,
    /// Enqueued at.
    pub created_at: Timestamp,
}

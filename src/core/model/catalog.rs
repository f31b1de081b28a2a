//! The organisation as configured: the app catalog, roles, departments and workflow timers.

use super::step_up::{BreakGlassPolicy, StepUpFor};
use std::fmt;
use std::time::Duration;

use super::{AppName, ConnectorName, Handle, ParseError, Person, RoleName, Span, Zone};

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
    /// Its approvers must pass step-up (a TOTP code) to Approve (`step_up = "totp"`).
    pub step_up: bool,
    /// Who may take it at once in an emergency, and on what terms (`break_glass`).
    pub break_glass: Option<BreakGlassPolicy>,
    /// A reason is needed on Keep in access reviews (`privileged`).
    pub privileged: bool,
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
    /// IT's confirms that need step-up (`[workflow] step_up_for`).
    pub step_up_for: StepUpFor,
}

impl Default for WorkflowSettings {
    fn default() -> Self {
        Self {
            remind_after: Span::from_std(Duration::from_secs(24 * 3600)),
            escalate_after: Span::from_std(Duration::from_secs(72 * 3600)),
            expire_after: Span::from_std(Duration::from_secs(7 * 86_400)),
            max_duration: Span::from_std(Duration::from_secs(365 * 86_400)),
            step_up_for: StepUpFor::default(),
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
    /// Scheduled access-review campaigns (`[[review]]`).
    pub reviews: Vec<super::Campaign>,
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

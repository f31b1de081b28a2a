//! The typed [`Intent`] the service acts on, made from a validated invocation.

use chrono::NaiveDate;

use super::{CommandError, Invocation};
use crate::core::model::{Email, Handle, RoleName, Span, Zone};

/// What a person asked for, typed: the service's input, whichever adapter it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// `/request`: ask for access to an app.
    Request {
        /// The app as typed (the service answers unknown apps with "did you mean").
        app: String,
        /// Why.
        reason: Option<String>,
        /// For how long (None: the app's default).
        duration: Option<Span>,
        /// `emergency:true`: break-glass, access at once and ratified afterwards (where the
        /// app allows it).
        emergency: bool,
    },
    /// `/access`: show what someone holds.
    Access {
        /// Whose (None: the caller's).
        user: Option<Handle>,
    },
    /// `/approvals`: list what waits for the caller.
    Approvals,
    /// `/revoke`: remove access or cancel a pending request.
    Revoke {
        /// The app as typed.
        app: String,
        /// Whose (None: the caller's).
        user: Option<Handle>,
        /// Why.
        reason: Option<String>,
    },
    /// `/onboard`: add a joiner.
    Onboard {
        /// Work email.
        email: Email,
        /// Full name.
        name: String,
        /// Role.
        role: RoleName,
        /// Their manager.
        manager: Option<Handle>,
        /// Department.
        department: Option<String>,
        /// Handle (None: the email's local part).
        handle: Option<Handle>,
        /// Their chat account as the adapter passed it (on Discord their user id, since a
        /// joiner has no handle yet; in the console what was typed).
        user: Option<String>,
        /// Their own time zone (None: the organisation's).
        timezone: Option<Zone>,
    },
    /// `/role`: change someone's role.
    Role {
        /// Whose.
        user: Handle,
        /// The new role.
        role: RoleName,
    },
    /// `/help`: what the commands do.
    Help {
        /// One command to explain (None: all of them, briefly).
        command: Option<String>,
    },
    /// `/offboard`: remove a leaver's access.
    Offboard {
        /// Who leaves.
        user: Handle,
        /// Why.
        reason: Option<String>,
        /// Access ends at the end of this day (None: now).
        when: Option<NaiveDate>,
    },
    /// `/mfa …`: two-step verification (step-up) for high-risk approvals.
    Mfa(MfaIntent),
    /// `/drift`: reconcile now (IT).
    Drift {
        /// One connector (None: every connector).
        connector: Option<String>,
    },
    /// `/review …`: access reviews (IT).
    Review(ReviewIntent),
}

/// `/review`'s subcommands (the values as typed; the service checks them against the
/// catalog, with "did you mean").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewIntent {
    /// `/review start scope:S [reviewer:R] [due:D] [default:X]`.
    Start {
        /// The scope as typed.
        scope: String,
        /// The reviewer rule as typed.
        reviewer: Option<String>,
        /// How long reviewers have.
        due: Option<Span>,
        /// The default at the due date, as typed.
        default: Option<String>,
    },
    /// `/review status [id]`.
    Status {
        /// One review (None: every open one).
        id: Option<String>,
    },
    /// `/review cancel id`.
    Cancel {
        /// Which.
        id: String,
    },
}

/// `/mfa`'s subcommands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MfaIntent {
    /// `/mfa enroll`: set up an authenticator app.
    Enroll,
    /// `/mfa confirm code:C`: confirm the enrolment with a code from the app.
    Confirm {
        /// The code as typed (6 to 8 characters).
        code: String,
    },
    /// `/mfa status`: whether the caller is enrolled.
    Status,
    /// `/mfa reset user:U` (IT): remove someone's enrolment so they can enrol again.
    Reset {
        /// Whose.
        user: Handle,
    },
}

impl Intent {
    /// Types a validated invocation. Every failure names the option at fault.
    pub fn from_invocation(inv: Invocation) -> Result<Self, CommandError> {
        Ok(match inv.name.as_str() {
            "request" => Self::Request {
                app: inv.require("app")?.to_owned(),
                reason: inv.text("reason"),
                duration: inv.span("duration")?,
                emergency: inv.flag("emergency")?,
            },
            "access" => Self::Access {
                user: inv.handle("user")?,
            },
            "approvals" => Self::Approvals,
            "revoke" => Self::Revoke {
                app: inv.require("app")?.to_owned(),
                user: inv.handle("user")?,
                reason: inv.text("reason"),
            },
            "onboard" => Self::onboard(inv)?,
            "role" => {
                let user = inv.handle("user")?;
                let role = inv.role("role")?;
                Self::Role {
                    user: inv.need("user", user)?,
                    role: inv.need("role", role)?,
                }
            }
            "offboard" => {
                let user = inv.handle("user")?;
                Self::Offboard {
                    user: inv.need("user", user)?,
                    reason: inv.text("reason"),
                    when: inv.date("when")?,
                }
            }
            "help" => Self::Help {
                command: inv.text("command"),
            },
            "mfa enroll" => Self::Mfa(MfaIntent::Enroll),
            "mfa confirm" => Self::Mfa(MfaIntent::Confirm {
                code: inv.require("code")?.to_owned(),
            }),
            "mfa status" => Self::Mfa(MfaIntent::Status),
            "drift" => Self::Drift {
                connector: inv.text("connector"),
            },
            "review start" => Self::Review(ReviewIntent::Start {
                scope: inv.require("scope")?.to_owned(),
                reviewer: inv.text("reviewer"),
                due: inv.span("due")?,
                default: inv.text("default"),
            }),
            "review status" => Self::Review(ReviewIntent::Status { id: inv.text("id") }),
            "review cancel" => Self::Review(ReviewIntent::Cancel {
                id: inv.require("id")?.to_owned(),
            }),
            "mfa reset" => {
                let user = inv.handle("user")?;
                Self::Mfa(MfaIntent::Reset {
                    user: inv.need("user", user)?,
                })
            }
            _ => {
                return Err(CommandError::UnknownCommand {
                    name: inv.name,
                    suggestion: None,
                    known: INTENT_NAMES.iter().map(|s| (*s).to_owned()).collect(),
                });
            }
        })
    }

    /// `/onboard`: every required option left out is named at once.
    fn onboard(inv: Invocation) -> Result<Self, CommandError> {
        let email = inv.email("email")?;
        let name = inv.text("name");
        let role = inv.role("role")?;
        let missing: Vec<String> = [
            ("email", email.is_none()),
            ("name", name.is_none()),
            ("role", role.is_none()),
        ]
        .iter()
        .filter(|(_, absent)| *absent)
        .map(|(o, _)| (*o).to_owned())
        .collect();
        match (email, name, role) {
            (Some(email), Some(name), Some(role)) => Ok(Self::Onboard {
                email,
                name,
                role,
                manager: inv.handle("manager")?,
                department: inv.text("department"),
                handle: inv.handle("handle")?,
                user: inv.text("user"),
                timezone: inv.parsed("timezone", Zone::parse)?,
            }),
            _ => Err(CommandError::MissingOptions {
                command: inv.name,
                options: missing,
            }),
        }
    }

    /// The command's name, without `/`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Request { .. } => "request",
            Self::Access { .. } => "access",
            Self::Approvals => "approvals",
            Self::Revoke { .. } => "revoke",
            Self::Onboard { .. } => "onboard",
            Self::Role { .. } => "role",
            Self::Offboard { .. } => "offboard",
            Self::Help { .. } => "help",
            Self::Mfa(_) => "mfa",
            Self::Drift { .. } => "drift",
            Self::Review(_) => "review",
        }
    }
}

pub(super) const INTENT_NAMES: [&str; 11] = [
    "request",
    "access",
    "approvals",
    "revoke",
    "onboard",
    "role",
    "offboard",
    "help",
    "mfa",
    "drift",
    "review",
];

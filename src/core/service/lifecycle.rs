//! What joiners, movers and leavers share: a plan's stored detail, who carries a change out,
//! the outcomes of a person's record, and the birthright grants a role gives. The use cases
//! are in `onboard`, `role`, `offboard`, `plans` and `hr`.

use serde::{Deserialize, Serialize};

use super::*;
use crate::core::render::lifecycle::{PlanRefusal, people, refusal};

/// The notes a Verify action stores, shown in the offboarding report as they are.
pub(super) use crate::core::render::lifecycle::reports::{NOT_LISTABLE, STILL_PRESENT};

/// Detail stored with a plan.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct PlanDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) reason: Option<String>,
    /// Made by the HR feed (no person created or confirmed it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) hr: bool,
    /// Made by the identity provider over inbound SCIM.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) idp: bool,
    /// The SCIM user a joiner plan of the identity provider's onboards (read again when IT
    /// confirms, so the plan onboards the user as they then stand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) scim_id: Option<String>,
    /// Onboarding: the birthright apps it set up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) apps: Vec<String>,
}

impl PlanDetail {
    /// The text stored with a plan (a struct of strings and flags always serialises).
    pub(super) fn stored(&self) -> String {
        serde_json::to_string(self).expect("a plan's detail serialises")
    }

    /// The detail stored with `plan`: stored text that does not read back is an error (a
    /// plan run on defaults could do the wrong thing), never a default.
    pub(super) fn of(plan: &Plan) -> Result<Self> {
        serde_json::from_str(&plan.detail).map_err(|e| {
            ServiceError::Inconsistent(format!(
                "plan #{}: its stored detail cannot be read: {e}",
                plan.id
            ))
        })
    }
}

/// A role change worked out as a diff of grants.
#[derive(Debug, Default)]
pub(super) struct RolePlan {
    pub(super) grant: Vec<AppName>,
    pub(super) revoke: Vec<Grant>,
    pub(super) review: Vec<Grant>,
    pub(super) keep: Vec<AppName>,
}

/// Who set a change going, as its audit rows and messages name them: a [`Caller`] (a person
/// from chat), the scheduler, or the HR feed (or the people import). Its `actor` is the
/// audit trail's [`Actor`].
#[derive(Debug, Clone)]
pub(super) struct Initiator {
    /// For the audit trail.
    pub(super) actor: Actor,
    /// Their chat id, when it came from chat.
    pub(super) chat: Option<String>,
    /// How people see them named.
    pub(super) name: String,
    /// Their handle, when a person.
    pub(super) handle: Option<Handle>,
}

impl Initiator {
    /// A person acting from chat.
    pub(super) fn caller(c: &Caller) -> Self {
        Self {
            actor: Actor::Person(c.person.handle.clone()),
            chat: c.chat_id.clone(),
            name: c.person.name.clone(),
            handle: Some(c.person.handle.clone()),
        }
    }
    /// `quartermaster import people`.
    pub(super) fn import() -> Self {
        Self {
            actor: Actor::System,
            chat: None,
            name: people::BY_IMPORT.into(),
            handle: None,
        }
    }
    /// The HR feed.
    pub(super) fn hr() -> Self {
        Self {
            actor: Actor::Hr,
            chat: None,
            name: people::BY_HR.into(),
            handle: None,
        }
    }
    /// The identity provider over inbound SCIM.
    pub(super) fn idp() -> Self {
        Self {
            actor: Actor::Idp,
            chat: None,
            name: people::BY_IDP.into(),
            handle: None,
        }
    }
    /// The scheduler (a plan whose time came).
    pub(super) fn system() -> Self {
        Self {
            actor: Actor::System,
            chat: None,
            name: people::BY_SCHEDULER.into(),
            handle: None,
        }
    }
}

/// What a joiner's or mover's record changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonOutcome {
    /// A new person was created (or a leaver came back) and their birthrights queued.
    Hired(Handle),
    /// An existing person was updated (role, department, manager…), their grants moved.
    Moved(Handle),
    /// The record was unchanged, but birthrights it gives were missing and are queued.
    Repaired(Handle),
    /// Nothing changed.
    Unchanged(Handle),
}

/// Why a joiner's or mover's record (HR feed, `import people`) does not fit the directory or
/// the catalog; its sentence (in the rendering module) names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordRefusal {
    /// A field breaks the record rules (length, characters, a manager cycle…).
    Field(validate::Invalid),
    /// The same, for a field of an HR event's `person`.
    EventField(validate::Invalid),
    /// The HR event's id breaks the rules.
    EventId(validate::Invalid),
    /// The catalog has no such role.
    NoRole {
        /// The role asked for.
        role: RoleName,
        /// The nearest role the catalog has, if any is near.
        suggestion: Option<String>,
    },
    /// The record names its own person as manager.
    OwnManager,
    /// Nobody has the manager's handle.
    NoManager(Handle),
    /// A change or leave for a handle nobody has.
    NoSuchPerson(Handle),
    /// The email belongs to someone else.
    EmailTaken {
        /// The email.
        email: Email,
        /// Whose it is.
        holder: Handle,
    },
    /// The Discord account is linked to someone else.
    DiscordTaken {
        /// The Discord id.
        discord_id: String,
        /// Whose it is.
        holder: Handle,
    },
    /// A value of the record is already someone else's (found at commit).
    AlreadyUsed(String),
}

impl RecordRefusal {
    /// Whether the refusal is about the record's manager (an import retries those rows once
    /// the rest of the file is in: the manager may be further down).
    pub fn is_about_manager(&self) -> bool {
        match self {
            Self::OwnManager | Self::NoManager(_) => true,
            Self::Field(f) => f.field == "manager",
            _ => false,
        }
    }
}

impl std::fmt::Display for RecordRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&people::record_refused(self))
    }
}

/// Why a joiner's or mover's record was refused; the text names the field.
#[derive(Debug, thiserror::Error)]
pub enum PersonRefused {
    /// The record does not fit the directory or the catalog.
    #[error("{0}")]
    Invalid(RecordRefusal),
    /// An internal failure.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for PersonRefused {
    fn from(e: StoreError) -> Self {
        Self::Service(e.into())
    }
}

impl Service {
    /// The IT-admin capability when `c` is an IT admin (the only way to reach an admin use
    /// case); else the refusal of `what` (audited).
    pub(super) async fn it_only(
        &self,
        c: &Caller,
        what: &str,
        subject: Option<&Handle>,
    ) -> Result<std::result::Result<policy::ItAdmin, Reply>> {
        if let Some(admin) = policy::it_admin(&self.org, &c.person) {
            return Ok(Ok(admin));
        }
        let why = PlanRefusal::ItOnly { what: what.into() };
        self.refused(c, what, subject, None, ReqRef::None, why)
            .await
            .map(Err)
    }

    /// Records the refusal of `what` for `r` in the audit trail; the answer saying why.
    pub(super) async fn refuse_plan(
        &self,
        c: &Caller,
        what: &str,
        subject: Option<&Handle>,
        r: &PlanRefusal,
    ) -> Result<Reply> {
        self.refused(c, what, subject, None, ReqRef::None, r.clone())
            .await
    }

    /// Ok when the catalog has `role`; else the refusal saying so, with a "did you mean".
    pub(super) fn role_or_suggest(&self, role: &RoleName) -> std::result::Result<(), PlanRefusal> {
        if self.org.role(role).is_some() {
            return Ok(());
        }
        let names = self.org.roles.iter().map(|r| r.name.as_str());
        Err(PlanRefusal::NoRole {
            role: role.clone(),
            suggestion: suggest::did_you_mean(role.as_str(), names).map(|s| s.to_string()),
        })
    }

    /// Adds a pending grant and its action for each birthright app the person does not hold.
    pub(super) fn birthright_grants(
        &self,
        change: &mut Change,
        p: &Person,
        held: &[Grant],
        apps: &[AppName],
    ) {
        let now = self.clock.now();
        for a in apps {
            if held.iter().any(|g| &g.app == a) {
                continue;
            }
            let Some(app) = self.org.app(a) else { continue };
            change.new_grants.push(NewGrant {
                person: p.handle.clone(),
                app: a.clone(),
                source: NewGrantSource::Birthright,
                state: GrantState::Pending,
                granted_at: None,
                expires_at: None,
            });
            change.new_actions.push(NewAction {
                connector: app.connector.clone(),
                op: ActionOp::Grant,
                person: p.handle.clone(),
                app: Some(a.clone()),
                entitlement: Some(app.entitlement.clone()),
                grant: Some(GrantRef::New(change.new_grants.len() - 1)),
                request: ReqRef::None,
                at: now,
            });
        }
    }
}

/// The answer refusing a command for `r` (not audited: a mistake in what was asked).
pub(super) fn refused(r: &PlanRefusal) -> Reply {
    Reply::text(refusal::text(r))
}

/// Adds one grant's removal (built by [`Service::revoke_grant`] in a change of its own) to
/// `change`.
pub(super) fn add_revocation(change: &mut Change, one: Change) {
    change.grant_updates.extend(one.grant_updates);
    change.request_updates.extend(one.request_updates);
    change.new_actions.extend(one.new_actions);
    change.audit.extend(one.audit);
}

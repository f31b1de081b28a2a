//! People in the directory and who did something.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Email, Handle, Org, RoleName, Zone};

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

/// Who did something: a person, the system itself, or the HR feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person, by handle.
    Person(Handle),
    /// Quartermaster (timers, workers).
    System,
    /// The HR feed.
    Hr,
    /// The identity provider (Okta, Entra ID…) over inbound SCIM (`/scim/v2/`).
    Idp,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Person(h) => write!(f, "{h}"),
            Self::System => f.write_str("system"),
            Self::Hr => f.write_str("hr"),
            Self::Idp => f.write_str("idp"),
        }
    }
}

//! Step-up and break-glass: a person's TOTP enrolment, the one-time link to its page, the
//! catalog's break-glass terms and a break-glass grant awaiting ratification.

use super::{AppName, Handle, RequestId, RoleName, Span, Timestamp};
use crate::core::model::BreakGlassId;

/// IT's confirms that can require step-up (`[workflow] step_up_for`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Confirmable {
    /// Confirm an offboarding plan.
    Offboard,
    /// Confirm a role change plan.
    Role,
    /// Confirm an onboarding plan.
    Onboard,
    /// Retry a failed connector action.
    Retry,
    /// Mark a manual task done.
    Done,
    /// Decide an access review item.
    Review,
    /// Decide a drift finding.
    Drift,
}

impl Confirmable {
    /// Every confirm, as `step_up_for` spells it.
    pub const ALL: [Confirmable; 7] = [
        Self::Offboard,
        Self::Role,
        Self::Onboard,
        Self::Retry,
        Self::Done,
        Self::Review,
        Self::Drift,
    ];

    /// The word `step_up_for` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offboard => "offboard",
            Self::Role => "role",
            Self::Onboard => "onboard",
            Self::Retry => "retry",
            Self::Done => "done",
            Self::Review => "review",
            Self::Drift => "drift",
        }
    }

    /// Reads a word of `step_up_for`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The set of confirms that need step-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepUpFor(u8);

impl StepUpFor {
    /// With `c` added.
    #[must_use]
    pub fn with(self, c: Confirmable) -> Self {
        Self(self.0 | (1 << c as u8))
    }

    /// Whether `c` needs step-up.
    pub fn contains(self, c: Confirmable) -> bool {
        self.0 & (1 << c as u8) != 0
    }
}

/// Who may use an app's break-glass (`who = ["role:sre", "department:ops", "dana"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eligible {
    /// Everyone in a role.
    Role(RoleName),
    /// Everyone in a department.
    Department(String),
    /// One person.
    Person(Handle),
}

/// An app's break-glass terms.
#[derive(Debug, Clone)]
pub struct BreakGlassPolicy {
    /// The longest an emergency grant lasts (it cannot be extended).
    pub max: Span,
    /// Who may use it.
    pub who: Vec<Eligible>,
    /// The reason must match this (an incident number).
    pub reason_pattern: Option<regex::Regex>,
    /// Someone other than the holder must ratify it within this long.
    pub review_within: Span,
    /// Revoke it when nobody ratified it in time.
    pub auto_revoke: bool,
}

/// A person's TOTP enrolment, as stored. The secret is sealed (AEAD) and only ever opened
/// to check a code or to show the enrolment page once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaRecord {
    /// Whose.
    pub person: Handle,
    /// The sealed secret (nonce and ciphertext, hex).
    pub sealed: String,
    /// When a first code confirmed it (None: enrolment not finished).
    pub confirmed_at: Option<Timestamp>,
    /// The last time step whose code was accepted (a code counts once).
    pub last_step: i64,
    /// Wrong codes since the last good one.
    pub failures: u32,
    /// Step-up refused until then (too many wrong codes).
    pub locked_until: Option<Timestamp>,
}

/// The one-time link to an enrolment page (only the token's hash is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaLink {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// Whose enrolment it shows.
    pub person: Handle,
    /// Valid until.
    pub expires_at: Timestamp,
    /// When it was opened (it opens once).
    pub used_at: Option<Timestamp>,
}

/// A break-glass grant and where its ratification stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlass {
    /// Its number.
    pub id: BreakGlassId,
    /// The request it granted.
    pub request: RequestId,
    /// Who took it.
    pub person: Handle,
    /// Which app.
    pub app: AppName,
    /// The emergency, as given.
    pub reason: String,
    /// Granted at.
    pub granted_at: Timestamp,
    /// Ratification due by.
    pub ratify_by: Timestamp,
    /// Who ratified it, and when.
    pub ratified: Option<(Handle, Timestamp)>,
    /// When IT was told nobody ratified it in time.
    pub overdue_at: Option<Timestamp>,
    /// Who revoked it (a handle, or `system`), and when.
    pub revoked: Option<(String, Timestamp)>,
    /// Who cleared the holder to use break-glass again, and when.
    pub cleared: Option<(Handle, Timestamp)>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl BreakGlass {
    /// Still waiting for ratification or IT's clearance: its holder cannot use break-glass
    /// again meanwhile.
    pub fn is_open(&self) -> bool {
        self.cleared.is_none()
    }
}

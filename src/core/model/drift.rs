//! Drift: what a reconcile found that the records and the target disagree on, and what IT
//! decided about it.

use super::{AppName, ConnectorName, Handle, Timestamp};

/// A drift finding's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FindingId(pub i64);

impl std::fmt::Display for FindingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The kinds of disagreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DriftClass {
    /// (a) A membership with no grant.
    Unrecorded,
    /// (b) A grant recorded active that the target does not hold.
    Missing,
    /// (c) An account of nobody, or of someone who has left.
    Orphan,
    /// (d) Two accounts for one person.
    Ambiguous,
}

impl DriftClass {
    /// Every class.
    pub const ALL: [DriftClass; 4] = [
        Self::Unrecorded,
        Self::Missing,
        Self::Orphan,
        Self::Ambiguous,
    ];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unrecorded => "unrecorded",
            Self::Missing => "missing",
            Self::Orphan => "orphan",
            Self::Ambiguous => "ambiguous",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Where a finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingState {
    /// Waiting for IT.
    Open,
    /// IT ignores it until `until`.
    Ignored,
    /// A service account: exempt from then on.
    Service,
    /// Settled (adopted, revoked, re-provisioned, or no longer seen).
    Resolved,
}

impl FindingState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Ignored => "ignored",
            Self::Service => "service",
            Self::Resolved => "resolved",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Open, Self::Ignored, Self::Service, Self::Resolved]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// A finding as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Its number (0 until stored).
    pub id: FindingId,
    /// Which connector.
    pub connector: ConnectorName,
    /// What kind.
    pub class: DriftClass,
    /// The target's id of the account (or member) it is about.
    pub account: String,
    /// The person it is about, when one matched.
    pub person: Option<Handle>,
    /// The app it is about, when any.
    pub app: Option<AppName>,
    /// What was seen, in words.
    pub detail: String,
    /// First seen.
    pub first_seen: Timestamp,
    /// Last seen.
    pub last_seen: Timestamp,
    /// Consecutive runs that saw it.
    pub runs: u32,
    /// Where it stands.
    pub state: FindingState,
    /// Ignored until then.
    pub until: Option<Timestamp>,
    /// A service account's owner.
    pub owner: Option<Handle>,
    /// Who decided, when, and why.
    pub decided: Option<(String, Timestamp, String)>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Finding {
    /// The key a finding keeps across runs.
    pub fn key(&self) -> String {
        finding_key(
            &self.connector,
            self.class,
            &self.account,
            self.app.as_ref(),
        )
    }
}

/// The key of a finding: connector, class, account and app.
pub fn finding_key(
    connector: &ConnectorName,
    class: DriftClass,
    account: &str,
    app: Option<&AppName>,
) -> String {
    format!(
        "{connector}|{}|{account}|{}",
        class.as_str(),
        app.map_or("", |a| a.as_str())
    )
}

//! Access reviews: a campaign over the grants in a scope, one item per access reviewed, each
//! decided Keep or Revoke by its reviewer, closed only when every removal is verified.

use std::fmt;

use super::{AppName, ConnectorName, GrantId, Handle, RoleName, Span, Timestamp};

/// A review's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReviewId(pub i64);

/// A review item's number (one access of one person, shared by overlapping reviews).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReviewItemId(pub i64);

impl fmt::Display for ReviewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for ReviewItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a review covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewScope {
    /// Every grant of one app.
    App(AppName),
    /// Every grant of the people in one role.
    Role(RoleName),
    /// Every grant of the people in one department.
    Department(String),
    /// Every grant of the apps one connector provisions.
    Connector(ConnectorName),
    /// Every grant.
    All,
}

impl ReviewScope {
    /// Reads `app:NAME`, `role:NAME`, `department:NAME`, `connector:NAME` or `all`; the
    /// names are checked against the catalog by the caller.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(Self::All);
        }
        let Some((kind, name)) = s.split_once(':') else {
            return Err(format!(
                "\"{s}\" is not a scope: use app:NAME, role:NAME, department:NAME, \
                 connector:NAME or all"
            ));
        };
        let name = name.trim();
        let bad = |e: String| format!("\"{name}\": {e}");
        match kind.trim().to_ascii_lowercase().as_str() {
            "app" => AppName::parse(name)
                .map(Self::App)
                .map_err(|e| bad(e.to_string())),
            "role" => RoleName::parse(name)
                .map(Self::Role)
                .map_err(|e| bad(e.to_string())),
            "department" | "dept" if !name.is_empty() => Ok(Self::Department(name.to_owned())),
            "connector" => ConnectorName::parse(name)
                .map(Self::Connector)
                .map_err(|e| bad(e.to_string())),
            other => Err(format!(
                "\"{other}\" is not a kind of scope: use app, role, department, connector or all"
            )),
        }
    }
}

impl fmt::Display for ReviewScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::App(a) => write!(f, "app:{a}"),
            Self::Role(r) => write!(f, "role:{r}"),
            Self::Department(d) => write!(f, "department:{d}"),
            Self::Connector(c) => write!(f, "connector:{c}"),
            Self::All => f.write_str("all"),
        }
    }
}

/// Who reviews an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewerRule {
    /// The holder's manager.
    Manager,
    /// The app's owners.
    Owner,
    /// One named person.
    Person(Handle),
}

impl ReviewerRule {
    /// Reads `manager`, `owner` or a handle (an `@` is dropped).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "manager" => Ok(Self::Manager),
            "owner" | "owners" => Ok(Self::Owner),
            other => Handle::parse(other.trim_start_matches('@'))
                .map(Self::Person)
                .map_err(|e| format!("\"{s}\" is not manager, owner or a handle: {e}")),
        }
    }
}

impl fmt::Display for ReviewerRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Manager => f.write_str("manager"),
            Self::Owner => f.write_str("owner"),
            Self::Person(h) => write!(f, "{h}"),
        }
    }
}

/// What happens to an item nobody decided by the due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewDefault {
    /// It is kept.
    Keep,
    /// It is revoked.
    Revoke,
    /// IT gets it.
    Escalate,
}

impl ReviewDefault {
    /// Its word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Revoke => "revoke",
            Self::Escalate => "escalate",
        }
    }

    /// Reads its word.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Keep, Self::Revoke, Self::Escalate]
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// Where a review stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewState {
    /// Launched: the snapshot (grants and connector re-reads) is being taken.
    Snapshot,
    /// Items are with their reviewers.
    Open,
    /// Complete: every item decided and every removal verified.
    Complete,
    /// Cancelled by IT.
    Cancelled,
}

impl ReviewState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Open => "open",
            Self::Complete => "complete",
            Self::Cancelled => "cancelled",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Snapshot, Self::Open, Self::Complete, Self::Cancelled]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// A campaign's terms, from `/review start` or a `[[review]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewTerms {
    /// What it covers.
    pub scope: ReviewScope,
    /// Who reviews.
    pub reviewer: ReviewerRule,
    /// How long reviewers have.
    pub due: Span,
    /// When the reviewer's manager gets the items too (from launch).
    pub escalate_after: Span,
    /// What happens at `due` to what nobody decided.
    pub default: ReviewDefault,
}

/// A scheduled campaign (`[[review]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    /// Its terms.
    pub terms: ReviewTerms,
    /// How often it runs.
    pub every: Span,
    /// Its first run.
    pub starts: Timestamp,
}

impl Campaign {
    /// A stable name for it (its scope), recorded on the reviews it launches.
    pub fn name(&self) -> String {
        self.terms.scope.to_string()
    }
}

/// An access review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// Number.
    pub id: ReviewId,
    /// Its terms.
    pub terms: ReviewTerms,
    /// Where it stands.
    pub state: ReviewState,
    /// Who launched it (a handle, or `system` for a scheduled campaign).
    pub launched_by: String,
    /// Launched at.
    pub launched_at: Timestamp,
    /// Decisions due by.
    pub due_at: Timestamp,
    /// The scheduled campaign it belongs to, if any.
    pub campaign: Option<String>,
    /// The snapshot: SHA-256 (hex) of its items as taken at launch, and what it saw.
    pub snapshot: Option<Snapshot>,
    /// When it completed or was cancelled.
    pub closed_at: Option<Timestamp>,
    /// Optimistic version.
    pub version: i64,
}

/// What a review's launch saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// SHA-256 (hex) of the items, in id order, as taken.
    pub digest: String,
    /// Grants in scope.
    pub grants: u64,
    /// Accounts the re-read found with no grant.
    pub unrecorded: u64,
    /// Each connector re-read, and what came of it (`read`, or why not).
    pub reads: Vec<(ConnectorName, String)>,
}

/// Where a review item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState {
    /// Waiting for a decision.
    Open,
    /// Kept.
    Kept,
    /// Revoke decided: the removal is queued or running.
    Revoking,
    /// Removed, and a re-read saw it gone.
    Revoked,
    /// The removal could not be verified (IT's, with the reason).
    Unverified,
    /// Closed without a decision: the grant was revoked, expired or changed meanwhile, or the
    /// review was cancelled.
    Closed,
}

impl ItemState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Kept => "kept",
            Self::Revoking => "revoking",
            Self::Revoked => "revoked",
            Self::Unverified => "unverified",
            Self::Closed => "closed",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Open,
            Self::Kept,
            Self::Revoking,
            Self::Revoked,
            Self::Unverified,
            Self::Closed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// Whether nothing more will happen to it.
    pub fn settled(self) -> bool {
        matches!(self, Self::Kept | Self::Revoked | Self::Closed)
    }
}

/// One access under review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewItem {
    /// Number.
    pub id: ReviewItemId,
    /// The review that created it (others may reference it too).
    pub review: ReviewId,
    /// Whose access.
    pub person: Handle,
    /// To which app.
    pub app: AppName,
    /// The grant (None: an account the re-read found with no grant, "unrecorded").
    pub grant: Option<GrantId>,
    /// For an unrecorded account: its login on the target.
    pub account: Option<String>,
    /// The grant's end as snapshotted (a change means it was extended meanwhile).
    pub expires_at: Option<Timestamp>,
    /// What the launch's re-read saw of it (`present`, `absent`, or why it could not tell).
    pub seen: String,
    /// Who may decide it now.
    pub reviewers: Vec<Handle>,
    /// The reviewer of record (the first assigned).
    pub of_record: Handle,
    /// Its page (the messages that show it are keyed by the page's first item).
    pub page: ReviewItemId,
    /// Where it stands.
    pub state: ItemState,
    /// Who decided, when, and why.
    pub decided: Option<(String, Timestamp, String)>,
    /// The removal's action and its outcome (proof, or why it could not be verified).
    pub removal: Option<(super::ActionId, String)>,
    /// Escalated to the reviewer's manager, or to IT.
    pub escalated: bool,
    /// Reminded last at.
    pub reminded_at: Option<Timestamp>,
    /// Optimistic version.
    pub version: i64,
}

impl ReviewItem {
    /// Whether `who` may decide it.
    pub fn reviewed_by(&self, who: &Handle) -> bool {
        self.reviewers.contains(who)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_reviewers_read_back() {
        for s in [
            "app:figma",
            "role:engineer",
            "department:Engineering",
            "connector:scim",
            "all",
        ] {
            assert_eq!(ReviewScope::parse(s).unwrap().to_string(), s);
        }
        assert!(ReviewScope::parse("figma").is_err());
        assert!(ReviewScope::parse("team:x").is_err());
        assert_eq!(ReviewerRule::parse("Manager"), Ok(ReviewerRule::Manager));
        assert_eq!(
            ReviewerRule::parse("@alice").unwrap().to_string(),
            "alice".to_owned()
        );
        assert_eq!(ReviewDefault::parse("REVOKE"), Some(ReviewDefault::Revoke));
        assert_eq!(ReviewDefault::parse("maybe"), None);
    }
}

//! The short, versioned `custom_id` a button carries (`v1:req:42:s2:approve`). It names the
//! thing clicked, never grants anything: every click is re-authorised against the database.

use std::fmt;

use super::model::{
    ActionId, AppName, BreakGlassId, FindingId, GrantId, Handle, PlanId, RequestId, ReviewItemId,
};

/// What a reviewer decides about access under review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewAction {
    /// Keep this access.
    Keep,
    /// Remove this access.
    Revoke,
    /// Keep every open access on this page (the item is the page's first).
    KeepAll,
}

impl ReviewAction {
    const ALL: [ReviewAction; 3] = [Self::Keep, Self::Revoke, Self::KeepAll];

    /// Its word in a `custom_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Revoke => "revoke",
            Self::KeepAll => "keepall",
        }
    }
}

/// What IT decides about a drift finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriftAction {
    /// Record it as a grant.
    Adopt,
    /// Remove it.
    Revoke,
    /// Put the recorded access back.
    Reprovision,
    /// Leave it for 30 days.
    Ignore,
    /// A service account: exempt from then on.
    Service,
}

impl DriftAction {
    const ALL: [DriftAction; 5] = [
        Self::Adopt,
        Self::Revoke,
        Self::Reprovision,
        Self::Ignore,
        Self::Service,
    ];

    /// Its word in a `custom_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Adopt => "adopt",
            Self::Revoke => "revoke",
            Self::Reprovision => "reprovision",
            Self::Ignore => "ignore",
            Self::Service => "service",
        }
    }
}

/// What a button click (or a submitted form) asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClickTarget {
    /// Approve step `step` of a request.
    Approve(RequestId, u32),
    /// Deny step `step` of a request.
    Deny(RequestId, u32),
    /// A manual task is done.
    Done(ActionId),
    /// Retry a failed action.
    Retry(ActionId),
    /// Confirm a plan.
    Confirm(PlanId),
    /// Cancel a plan.
    Cancel(PlanId),
    /// Ask to extend a time-bound grant.
    Extend(GrantId),
    /// Turn one's own pending request into break-glass.
    Escalate(RequestId),
    /// Break-glass on an app (the confirm form of `/request … emergency:true`).
    BreakGlass(AppName),
    /// Ratify a break-glass grant.
    Ratify(BreakGlassId),
    /// Revoke a break-glass grant now.
    RevokeNow(BreakGlassId),
    /// IT's reset of a person's step-up enrolment (the form asking for IT's own code).
    MfaReset(Handle),
    /// IT's decision on a drift finding.
    Drift(FindingId, DriftAction),
    /// A reviewer's decision on a review item.
    Review(ReviewItemId, ReviewAction),
}

/// A `custom_id` that is not one of ours (or of an older, unsupported version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this button is not recognised (it may come from an older version of the bot)")]
pub struct UnknownButton;

impl ClickTarget {
    /// Reads a `custom_id`.
    pub fn parse(s: &str) -> Result<Self, UnknownButton> {
        let parts: Vec<&str> = s.split(':').collect();
        let num = |p: &str| p.parse::<i64>().map_err(|_| UnknownButton);
        let step = |p: &str| {
            p.strip_prefix('s')
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or(UnknownButton)
        };
        match parts.as_slice() {
            ["v1", "req", id, s, "approve"] => Ok(Self::Approve(RequestId(num(id)?), step(s)?)),
            ["v1", "req", id, s, "deny"] => Ok(Self::Deny(RequestId(num(id)?), step(s)?)),
            ["v1", "act", id, "done"] => Ok(Self::Done(ActionId(num(id)?))),
            ["v1", "act", id, "retry"] => Ok(Self::Retry(ActionId(num(id)?))),
            ["v1", "plan", id, "confirm"] => Ok(Self::Confirm(PlanId(num(id)?))),
            ["v1", "plan", id, "cancel"] => Ok(Self::Cancel(PlanId(num(id)?))),
            ["v1", "grant", id, "extend"] => Ok(Self::Extend(GrantId(num(id)?))),
            ["v1", "req", id, "escalate"] => Ok(Self::Escalate(RequestId(num(id)?))),
            ["v1", "bg", "app", app] => AppName::parse(app)
                .map(Self::BreakGlass)
                .map_err(|_| UnknownButton),
            ["v1", "bg", id, "ratify"] => Ok(Self::Ratify(BreakGlassId(num(id)?))),
            ["v1", "bg", id, "revoke"] => Ok(Self::RevokeNow(BreakGlassId(num(id)?))),
            ["v1", "drift", id, what] => {
                let id = FindingId(num(id)?);
                DriftAction::ALL
                    .into_iter()
                    .find(|a| a.as_str() == *what)
                    .map(|a| Self::Drift(id, a))
                    .ok_or(UnknownButton)
            }
            ["v1", "rev", id, what] => {
                let id = ReviewItemId(num(id)?);
                ReviewAction::ALL
                    .into_iter()
                    .find(|a| a.as_str() == *what)
                    .map(|a| Self::Review(id, a))
                    .ok_or(UnknownButton)
            }
            ["v1", "mfa", h, "reset"] => Handle::parse(h)
                .map(Self::MfaReset)
                .map_err(|_| UnknownButton),
            _ => Err(UnknownButton),
        }
    }
}

impl fmt::Display for ClickTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Approve(r, s) => write!(f, "v1:req:{r}:s{s}:approve"),
            Self::Deny(r, s) => write!(f, "v1:req:{r}:s{s}:deny"),
            Self::Done(a) => write!(f, "v1:act:{a}:done"),
            Self::Retry(a) => write!(f, "v1:act:{a}:retry"),
            Self::Confirm(p) => write!(f, "v1:plan:{p}:confirm"),
            Self::Cancel(p) => write!(f, "v1:plan:{p}:cancel"),
            Self::Extend(g) => write!(f, "v1:grant:{g}:extend"),
            Self::Escalate(r) => write!(f, "v1:req:{r}:escalate"),
            Self::BreakGlass(a) => write!(f, "v1:bg:app:{a}"),
            Self::Ratify(b) => write!(f, "v1:bg:{b}:ratify"),
            Self::RevokeNow(b) => write!(f, "v1:bg:{b}:revoke"),
            Self::MfaReset(h) => write!(f, "v1:mfa:{h}:reset"),
            Self::Drift(d, a) => write!(f, "v1:drift:{d}:{}", a.as_str()),
            Self::Review(i, a) => write!(f, "v1:rev:{i}:{}", a.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_stays_short() {
        let all = [
            ClickTarget::Approve(RequestId(i64::MAX), u32::MAX),
            ClickTarget::Deny(RequestId(42), 1),
            ClickTarget::Done(ActionId(7)),
            ClickTarget::Retry(ActionId(7)),
            ClickTarget::Confirm(PlanId(3)),
            ClickTarget::Cancel(PlanId(3)),
            ClickTarget::Extend(GrantId(9)),
            ClickTarget::Escalate(RequestId(4)),
            ClickTarget::BreakGlass(AppName::parse(&"a".repeat(64)).unwrap()),
            ClickTarget::Ratify(BreakGlassId(i64::MAX)),
            ClickTarget::RevokeNow(BreakGlassId(2)),
            ClickTarget::Drift(FindingId(i64::MAX), DriftAction::Reprovision),
            ClickTarget::Review(ReviewItemId(i64::MAX), ReviewAction::KeepAll),
            ClickTarget::Review(ReviewItemId(3), ReviewAction::Revoke),
            ClickTarget::MfaReset(Handle::parse(&"h".repeat(64)).unwrap()),
        ];
        for t in all {
            let s = t.to_string();
            assert!(s.len() <= 100, "{s}");
            assert_eq!(ClickTarget::parse(&s), Ok(t.clone()));
        }
        assert_eq!(
            ClickTarget::Approve(RequestId(42), 2).to_string(),
            "v1:req:42:s2:approve"
        );
    }

    #[test]
    fn foreign_ids_are_refused() {
        for s in [
            "",
            "v2:req:1:s0:approve",
            "v1:req:x:s0:approve",
            "v1:req:1:0:approve",
            "v1:req:1:s0:maybe",
            "v1:act:1",
        ] {
            assert_eq!(ClickTarget::parse(s), Err(UnknownButton), "{s}");
        }
    }
}

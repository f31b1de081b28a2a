//! The short, versioned `custom_id` a button carries (`v1:req:42:s2:approve`). It names the
//! thing clicked, never grants anything: every click is re-authorised against the database.

use std::fmt;

use super::model::{ActionId, GrantId, PlanId, RequestId};

/// What a button click asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
        ];
        for t in all {
            let s = t.to_string();
            assert!(s.len() <= 100, "{s}");
            assert_eq!(ClickTarget::parse(&s), Ok(t));
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

//! The request lifecycle as an explicit state machine.
//!
//! ```text
//! submitted ─route─> awaiting(0) ─approve─> awaiting(1) … ─approve(last)─> approved
//!     │  └─route(no steps)─> approved ─provision─> provisioning ─ok─> granted ─revoke─> revoked
//!     │                                                  └─fail─> failed ─retry─> provisioning
//! awaiting(k) ─deny─> denied      awaiting(k) ─nobody─> no_approver(k) ─reroute─> awaiting(k)
//! submitted | awaiting | no_approver ─cancel─> cancelled, ─expire─> expired,
//!                                     ─break_glass─> approved (ratified afterwards)
//! ```

use std::fmt;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestState {
    /// Stored; approvers not yet worked out.
    Submitted,
    /// Waiting for the decision of step k (from 0).
    Awaiting(u32),
    /// Step k has nobody eligible to decide it.
    NoApprover(u32),
    /// Every step approved; provisioning not started.
    Approved,
    /// Connector actions are running.
    Provisioning,
    /// Access is in place.
    Granted,
    /// Provisioning failed for good (IT may retry).
    Failed,
    /// A step was denied.
    Denied,
    /// Withdrawn before a decision.
    Cancelled,
    /// Nobody decided in time.
    Expired,
    /// Access was taken away after it was granted.
    Revoked,
}

/// Something that happens to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Approvers worked out: `steps` steps (0 means auto-approved).
    Route {
        /// Number of steps.
        steps: u32,
    },
    /// Step `step` of `of` approved.
    Approve {
        /// Which step.
        step: u32,
        /// How many steps in all.
        of: u32,
    },
    /// Step `step` denied.
    Deny {
        /// Which step.
        step: u32,
    },
    /// Nobody can decide the current step.
    NoApprover,
    /// Someone became eligible for a step that had nobody.
    Reroute,
    /// The requester (or IT) withdrew it.
    Cancel,
    /// Nobody decided in time.
    Expire,
    /// Connector actions enqueued.
    Provision,
    /// Every action succeeded.
    Provisioned,
    /// An action failed for good.
    ProvisionFailed,
    /// IT retries a failed provisioning.
    Retry,
    /// The access was removed.
    Revoke,
    /// Break-glass: granted at once, its approvals skipped (ratified afterwards).
    BreakGlass,
}

/// A transition the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a request that is {from} cannot take {event:?}")]
pub struct TransitionError {
    /// The state it was in.
    pub from: RequestState,
    /// The event refused.
    pub event: Event,
}

impl RequestState {
    /// The next state after `event`, or why not.
    pub fn on(self, event: Event) -> Result<RequestState, TransitionError> {
        use Event as E;
        use RequestState as S;
        let next = match (self, event) {
            (S::Submitted, E::Route { steps: 0 }) => S::Approved,
            (S::Submitted, E::Route { .. }) => S::Awaiting(0),
            (S::Awaiting(k), E::Approve { step, of }) if k == step && step + 1 < of => {
                S::Awaiting(k + 1)
            }
            (S::Awaiting(k), E::Approve { step, of }) if k == step && step + 1 == of => S::Approved,
            (S::Awaiting(k), E::Deny { step }) if k == step => S::Denied,
            (S::Awaiting(k), E::NoApprover) => S::NoApprover(k),
            (S::NoApprover(k), E::Reroute) => S::Awaiting(k),
            (S::Submitted | S::Awaiting(_) | S::NoApprover(_), E::Cancel) => S::Cancelled,
            (S::Submitted | S::Awaiting(_) | S::NoApprover(_), E::BreakGlass) => S::Approved,
            (S::Submitted | S::Awaiting(_) | S::NoApprover(_), E::Expire) => S::Expired,
            (S::Approved, E::Provision) => S::Provisioning,
            (S::Provisioning, E::Provisioned) => S::Granted,
            (S::Provisioning, E::ProvisionFailed) => S::Failed,
            (S::Failed, E::Retry) => S::Provisioning,
            (S::Granted | S::Provisioning | S::Failed, E::Revoke) => S::Revoked,
            (from, event) => return Err(TransitionError { from, event }),
        };
        Ok(next)
    }

    /// The step waiting for a decision (or for an approver).
    pub fn step(self) -> Option<u32> {
        match self {
            Self::Awaiting(k) | Self::NoApprover(k) => Some(k),
            _ => None,
        }
    }

    /// Still waiting on people: submitted, awaiting a step, or without approver.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Self::Submitted | Self::Awaiting(_) | Self::NoApprover(_)
        )
    }

    /// Stored name (the step index is stored beside it).
    pub fn name(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Awaiting(_) => "awaiting",
            Self::NoApprover(_) => "no_approver",
            Self::Approved => "approved",
            Self::Provisioning => "provisioning",
            Self::Granted => "granted",
            Self::Failed => "failed",
            Self::Denied => "denied",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    /// Reads a stored name and step index.
    pub fn from_parts(name: &str, step: u32) -> Option<Self> {
        Some(match name {
            "submitted" => Self::Submitted,
            "awaiting" => Self::Awaiting(step),
            "no_approver" => Self::NoApprover(step),
            "approved" => Self::Approved,
            "provisioning" => Self::Provisioning,
            "granted" => Self::Granted,
            "failed" => Self::Failed,
            "denied" => Self::Denied,
            "cancelled" => Self::Cancelled,
            "expired" => Self::Expired,
            "revoked" => Self::Revoked,
            _ => return None,
        })
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Awaiting(k) => write!(f, "awaiting step {}", k + 1),
            Self::NoApprover(k) => write!(f, "without an eligible approver for step {}", k + 1),
            other => f.write_str(other.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Event as E;
    use super::RequestState as S;
    use super::*;

    fn all_states() -> Vec<S> {
        vec![
            S::Submitted,
            S::Awaiting(0),
            S::Awaiting(1),
            S::NoApprover(0),
            S::NoApprover(1),
            S::Approved,
            S::Provisioning,
            S::Granted,
            S::Failed,
            S::Denied,
            S::Cancelled,
            S::Expired,
            S::Revoked,
        ]
    }

    fn all_events() -> Vec<E> {
        vec![
            E::Route { steps: 0 },
            E::Route { steps: 2 },
            E::Approve { step: 0, of: 1 },
            E::Approve { step: 0, of: 2 },
            E::Approve { step: 1, of: 2 },
            E::Deny { step: 0 },
            E::Deny { step: 1 },
            E::NoApprover,
            E::Reroute,
            E::Cancel,
            E::Expire,
            E::Provision,
            E::Provisioned,
            E::ProvisionFailed,
            E::Retry,
            E::Revoke,
        ]
    }

    /// The complete table of allowed transitions; everything else must be refused.
    fn allowed() -> Vec<(S, E, S)> {
        vec![
            (S::Submitted, E::Route { steps: 0 }, S::Approved),
            (S::Submitted, E::Route { steps: 2 }, S::Awaiting(0)),
            (S::Awaiting(0), E::Approve { step: 0, of: 1 }, S::Approved),
            (
                S::Awaiting(0),
                E::Approve { step: 0, of: 2 },
                S::Awaiting(1),
            ),
            (S::Awaiting(1), E::Approve { step: 1, of: 2 }, S::Approved),
            (S::Awaiting(0), E::Deny { step: 0 }, S::Denied),
            (S::Awaiting(1), E::Deny { step: 1 }, S::Denied),
            (S::Awaiting(0), E::NoApprover, S::NoApprover(0)),
            (S::Awaiting(1), E::NoApprover, S::NoApprover(1)),
            (S::NoApprover(0), E::Reroute, S::Awaiting(0)),
            (S::NoApprover(1), E::Reroute, S::Awaiting(1)),
            (S::Submitted, E::Cancel, S::Cancelled),
            (S::Awaiting(0), E::Cancel, S::Cancelled),
            (S::Awaiting(1), E::Cancel, S::Cancelled),
            (S::NoApprover(0), E::Cancel, S::Cancelled),
            (S::NoApprover(1), E::Cancel, S::Cancelled),
            (S::Submitted, E::Expire, S::Expired),
            (S::Awaiting(0), E::Expire, S::Expired),
            (S::Awaiting(1), E::Expire, S::Expired),
            (S::NoApprover(0), E::Expire, S::Expired),
            (S::NoApprover(1), E::Expire, S::Expired),
            (S::Approved, E::Provision, S::Provisioning),
            (S::Provisioning, E::Provisioned, S::Granted),
            (S::Provisioning, E::ProvisionFailed, S::Failed),
            (S::Failed, E::Retry, S::Provisioning),
            (S::Granted, E::Revoke, S::Revoked),
            (S::Provisioning, E::Revoke, S::Revoked),
            (S::Failed, E::Revoke, S::Revoked),
        ]
    }

    #[test]
    fn every_allowed_transition_lands_where_the_table_says() {
        for (from, ev, to) in allowed() {
            assert_eq!(from.on(ev), Ok(to), "{from:?} --{ev:?}-->");
        }
    }

    #[test]
    fn every_other_transition_is_refused() {
        let table = allowed();
        let mut refused = 0;
        for from in all_states() {
            for ev in all_events() {
                if table.iter().any(|(f, e, _)| *f == from && *e == ev) {
                    continue;
                }
                assert_eq!(
                    from.on(ev),
                    Err(TransitionError { from, event: ev }),
                    "{from:?} --{ev:?}--> should be refused"
                );
                refused += 1;
            }
        }
        assert!(refused > 150, "only {refused} refusals checked");
    }

    #[test]
    fn a_stale_step_cannot_decide_a_later_one() {
        assert!(S::Awaiting(1).on(E::Approve { step: 0, of: 2 }).is_err());
        assert!(S::Awaiting(0).on(E::Deny { step: 1 }).is_err());
    }

    #[test]
    fn stored_names_round_trip() {
        for s in all_states() {
            assert_eq!(S::from_parts(s.name(), s.step().unwrap_or(0)), Some(s));
        }
        assert_eq!(S::from_parts("bogus", 0), None);
    }
}

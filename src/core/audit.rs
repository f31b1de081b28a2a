//! The audit trail's closed vocabulary and its events.
//!
//! Every audit row names what happened with one [`AuditAction`] and how it ended with one
//! [`AuditOutcome`]. Both are closed: a name is written only through its variant, and each
//! variant's text ([`AuditAction::as_str`]) is the stable name stored in the `audit` table —
//! the hash chain covers that text, so a name never changes once written. `docs/AUDIT.md`
//! lists them all (a test below keeps it in step).
//!
//! An [`AuditEvent`] is built with [`AuditEvent::new`] and chained setters:
//!
//! ```
//! # use quartermaster::core::audit::{AuditAction, AuditEvent, AuditOutcome};
//! # use quartermaster::core::model::{Actor, Handle};
//! let who = Handle::parse("alice").unwrap();
//! let ev = AuditEvent::new(chrono::Utc::now(), AuditAction::CommandRefused)
//!     .by(Actor::Person(who.clone()))
//!     .subject(&who)
//!     .outcome(AuditOutcome::Refused)
//!     .detail("revoke: only IT may do that");
//! assert_eq!(ev.action.as_str(), "command.refused");
//! ```

use std::fmt;
use std::str::FromStr;

use super::model::{ActionId, ActionOp, Actor, AppName, Handle, Timestamp};
use super::ports::ReqRef;

/// A name that is not in the vocabulary (corrupt or foreign data; never defaulted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{name}\" is not a known audit {kind}")]
pub struct UnknownName {
    /// `action` or `outcome`.
    pub kind: &'static str,
    /// The text read.
    pub name: String,
}

/// Declares a closed vocabulary: the enum, `as_str`, `ALL`, `Display` and `FromStr`, from one
/// list of `Variant = "stored text"`, so no variant can miss its name or its place in `ALL`.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident ($kind:literal) {
            $( $(#[doc = $doc:literal])+ $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl $name {
            /// Every member, in declaration order.
            pub const ALL: &'static [Self] = &[ $( Self::$variant, )+ ];

            /// The stable stored name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok(Self::$variant), )+
                    _ => Err(UnknownName {
                        kind: $kind,
                        name: s.to_owned(),
                    }),
                }
            }
        }
    };
}

vocabulary! {
    /// What an audit row records: the dotted name in the `action` column.
    AuditAction ("action") {
        /// A person asked for an app.
        RequestSubmitted = "request.submitted",
        /// A request got every approval it needs (or needed none).
        RequestApproved = "request.approved",
        /// A request was denied.
        RequestDenied = "request.denied",
        /// A request was cancelled (by its requester, IT, HR or the system).
        RequestCancelled = "request.cancelled",
        /// A request stayed undecided past `expire_after`.
        RequestExpired = "request.expired",
        /// An approval step began; the detail names its approvers.
        StepStarted = "step.started",
        /// An approver approved a step.
        StepApproved = "step.approved",
        /// An approver denied a step.
        StepDenied = "step.denied",
        /// A step's approvers were reminded.
        StepReminded = "step.reminded",
        /// A step was escalated.
        StepEscalated = "step.escalated",
        /// An approver left, so the step went to the others (or to the fallback).
        StepRerouted = "step.rerouted",
        /// A step has nobody who may approve it; IT is asked.
        StepNoApprover = "step.no_approver",
        /// A connector granted access.
        GrantProvisioned = "grant.provisioned",
        /// A connector removed access (verified gone, or removed by IT).
        GrantRevoked = "grant.revoked",
        /// Someone asked for a grant to be revoked.
        GrantRevokeRequested = "grant.revoke_requested",
        /// A time-bound grant reached its end.
        GrantExpired = "grant.expired",
        /// A time-bound grant's holder was warned of its end.
        GrantExpiryWarned = "grant.expiry_warned",
        /// A time-bound grant was extended.
        GrantExtended = "grant.extended",
        /// A requested grant was kept after a role change, for someone to review.
        GrantFlaggedForReview = "grant.flagged_for_review",
        /// An offboarding's re-read found access Quartermaster never recorded.
        GrantUnrecorded = "grant.unrecorded",
        /// An offboarding's re-read found removed access still there.
        GrantStillPresent = "grant.still_present",
        /// Granting failed for good.
        GrantFailed = "grant.failed",
        /// A grant's outcome could not be verified.
        GrantUnverified = "grant.unverified",
        /// Revoking failed for good.
        RevokeFailed = "revoke.failed",
        /// A removal could not be verified gone.
        RevokeUnverified = "revoke.unverified",
        /// A connector disabled an account.
        AccountDisabled = "account.disabled",
        /// Disabling an account failed for good.
        DisableFailed = "disable.failed",
        /// A disabled account could not be verified disabled.
        DisableUnverified = "disable.unverified",
        /// An offboarding's re-read of a connector failed for good.
        VerifyFailed = "verify.failed",
        /// A connector action failed and will be tried again.
        ActionRetrying = "action.retrying",
        /// IT asked for a failed connector action to be tried again.
        ActionRetried = "action.retried",
        /// A connector action was handed to IT as a manual task.
        ActionManual = "action.manual",
        /// A joiner was set up: stored, their birthrights queued.
        PersonOnboarded = "person.onboarded",
        /// A person's role, department or manager changed.
        PersonRoleChanged = "person.role_changed",
        /// A leaver was offboarded: their access removals queued.
        PersonOffboarded = "person.offboarded",
        /// A plan (onboarding, move, offboarding) awaits IT's Confirm.
        PlanProposed = "plan.proposed",
        /// IT confirmed a plan.
        PlanConfirmed = "plan.confirmed",
        /// IT cancelled a plan.
        PlanCancelled = "plan.cancelled",
        /// A settled onboarding was reported to the joiner and their manager.
        OnboardingReported = "onboarding.reported",
        /// An offboarding re-reads every connector to check the leaver's access is gone.
        OffboardingVerifying = "offboarding.verifying",
        /// One connector's re-read after an offboarding (`outcome` says what it found).
        OffboardingVerified = "offboarding.verified",
        /// A settled offboarding was reported to IT.
        OffboardingReported = "offboarding.reported",
        /// An HR event was received (hire, change or leave).
        HrEventReceived = "hr.event_received",
        /// The identity provider created a user over inbound SCIM.
        ScimUserCreated = "scim.user_created",
        /// The identity provider replaced or patched a user over inbound SCIM.
        ScimUserUpdated = "scim.user_updated",
        /// The identity provider deleted a user over inbound SCIM.
        ScimUserDeleted = "scim.user_deleted",
        /// The identity provider created a group over inbound SCIM.
        ScimGroupCreated = "scim.group_created",
        /// The identity provider replaced or patched a group (its members) over inbound SCIM.
        ScimGroupUpdated = "scim.group_updated",
        /// The identity provider deleted a group over inbound SCIM.
        ScimGroupDeleted = "scim.group_deleted",
        /// A command or click was refused; the detail says why.
        CommandRefused = "command.refused",
        /// A direct message could not be delivered, so it went to the fallback.
        MessageFallback = "message.fallback",
        /// A message could not be delivered at all.
        MessageFailed = "message.failed",
        /// The audit chain's seals started to be appended to an anchor file.
        AuditAnchored = "audit.anchored",
        /// A person began TOTP enrolment (`waiting`) or confirmed it with a first code (`ok`).
        MfaEnrolled = "mfa.enrolled",
        /// IT removed a person's TOTP enrolment.
        MfaReset = "mfa.reset",
        /// A step-up was refused: not enrolled, locked, a wrong or reused code (never the code).
        StepUpFailed = "step_up.failed",
        /// An emergency grant was given at once, its approvers skipped.
        BreakGlassGranted = "break_glass.granted",
        /// Someone other than its holder ratified a break-glass grant (or IT cleared it).
        BreakGlassRatified = "break_glass.ratified",
        /// Nobody ratified a break-glass grant in time; IT was told.
        BreakGlassOverdue = "break_glass.overdue",
        /// A reconcile found access the records and the target disagree on.
        DriftFound = "drift.found",
        /// A drift finding was settled: adopted, revoked, re-provisioned, ignored, or marked
        /// a service account.
        DriftResolved = "drift.resolved",
        /// An access review was launched: its scope, terms and the snapshot's digest.
        ReviewLaunched = "review.launched",
        /// A reviewer (or the due date's default) decided an access under review, or it
        /// closed without a decision (revoked, expired or extended meanwhile).
        ReviewDecided = "review.decided",
        /// A review completed (every access decided, every removal verified) or was
        /// cancelled (`outcome` says which).
        ReviewCompleted = "review.completed",
        /// A review's evidence report was produced.
        ReviewReported = "review.reported",
    }
}

impl AuditAction {
    /// The row of a connector action that took effect (or found its effect in place).
    pub const fn effect(op: ActionOp) -> Self {
        match op {
            ActionOp::Grant => Self::GrantProvisioned,
            ActionOp::Revoke => Self::GrantRevoked,
            ActionOp::Disable => Self::AccountDisabled,
            ActionOp::Verify => Self::OffboardingVerified,
        }
    }

    /// The row of a connector action that failed for good: `<op>.failed`.
    pub const fn failed(op: ActionOp) -> Self {
        match op {
            ActionOp::Grant => Self::GrantFailed,
            ActionOp::Revoke => Self::RevokeFailed,
            ActionOp::Disable => Self::DisableFailed,
            ActionOp::Verify => Self::VerifyFailed,
        }
    }

    /// The row of a connector action whose outcome could not be verified: `<op>.unverified`
    /// (an unverifiable re-read is itself an `offboarding.verified` row).
    pub const fn unverified(op: ActionOp) -> Self {
        match op {
            ActionOp::Grant => Self::GrantUnverified,
            ActionOp::Revoke => Self::RevokeUnverified,
            ActionOp::Disable => Self::DisableUnverified,
            ActionOp::Verify => Self::OffboardingVerified,
        }
    }
}

vocabulary! {
    /// How an audited event ended: the `outcome` column.
    AuditOutcome ("outcome") {
        /// Done.
        Ok = "ok",
        /// Nothing to do: the effect was already in place.
        Already = "already",
        /// Refused (a command or click).
        Refused = "refused",
        /// Failed for good.
        Failed = "failed",
        /// Failed for now; will be tried again.
        Retrying = "retrying",
        /// Waiting for a person (a manual task, an approver to be found).
        Waiting = "waiting",
        /// Settled with parts manual or failed.
        Incomplete = "incomplete",
        /// Access found that should not be there.
        Flagged = "flagged",
        /// Kept for someone to review.
        Review = "review",
        /// The effect could not be verified.
        Unverified = "unverified",
        /// The connector cannot be re-read (manual).
        NotListable = "not-listable",
        /// A message was delivered (to a fallback).
        Delivered = "delivered",
    }
}

/// An audit event before it is chained and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// The actor's chat id, when the event came from chat.
    pub actor_chat_id: Option<String>,
    /// What happened.
    pub action: AuditAction,
    /// Whom it concerns.
    pub subject: Option<Handle>,
    /// Which app.
    pub app: Option<AppName>,
    /// Which request (a new one: see [`ReqRef`]).
    pub request: ReqRef,
    /// Which connector action.
    pub connector_action: Option<ActionId>,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// Free text for people; never a secret.
    pub detail: String,
}

impl AuditEvent {
    /// An event at `at`: by the system, about nobody and no app or request, outcome `ok`,
    /// no detail, until the setters say otherwise.
    pub fn new(at: Timestamp, action: AuditAction) -> Self {
        Self {
            at,
            actor: Actor::System,
            actor_chat_id: None,
            action,
            subject: None,
            app: None,
            request: ReqRef::None,
            connector_action: None,
            outcome: AuditOutcome::Ok,
            detail: String::new(),
        }
    }

    /// Who did it.
    #[must_use]
    pub fn by(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }

    /// The actor's chat id, when the event came from chat.
    #[must_use]
    pub fn chat(mut self, id: Option<&str>) -> Self {
        self.actor_chat_id = id.map(str::to_owned);
        self
    }

    /// Whom it concerns.
    #[must_use]
    pub fn subject<'a>(mut self, who: impl Into<Option<&'a Handle>>) -> Self {
        self.subject = who.into().cloned();
        self
    }

    /// Which app.
    #[must_use]
    pub fn app<'a>(mut self, app: impl Into<Option<&'a AppName>>) -> Self {
        self.app = app.into().cloned();
        self
    }

    /// Which request.
    #[must_use]
    pub fn request(mut self, request: impl Into<ReqRef>) -> Self {
        self.request = request.into();
        self
    }

    /// Which connector action.
    #[must_use]
    pub fn connector_action(mut self, id: ActionId) -> Self {
        self.connector_action = Some(id);
        self
    }

    /// How it ended.
    #[must_use]
    pub fn outcome(mut self, outcome: AuditOutcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Free text for people; never a secret.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The audit documentation, whose tables list the vocabulary.
    const DOC: &str = include_str!("../../docs/AUDIT.md");

    /// The names in the first column of the doc's table under `heading` (`| \`name\` | …`).
    fn documented(heading: &str) -> BTreeSet<String> {
        let section = DOC
            .split("\n## ")
            .find(|s| s.starts_with(heading))
            .unwrap_or_else(|| panic!("docs/AUDIT.md has no section \"## {heading}\""));
        section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`').map(|(name, _)| name.to_owned()))
            .collect()
    }

    fn names<T: Copy>(all: &[T], text: fn(T) -> &'static str) -> BTreeSet<String> {
        all.iter().map(|&a| text(a).to_owned()).collect()
    }

    #[test]
    fn the_doc_lists_every_action_and_no_other() {
        assert_eq!(
            documented("Actions"),
            names(AuditAction::ALL, AuditAction::as_str),
            "docs/AUDIT.md and AuditAction::ALL differ"
        );
    }

    #[test]
    fn the_doc_lists_every_outcome_and_no_other() {
        assert_eq!(
            documented("Outcomes"),
            names(AuditOutcome::ALL, AuditOutcome::as_str),
            "docs/AUDIT.md and AuditOutcome::ALL differ"
        );
    }

    #[test]
    fn names_are_distinct_and_read_back() {
        assert_eq!(
            names(AuditAction::ALL, AuditAction::as_str).len(),
            AuditAction::ALL.len()
        );
        for &a in AuditAction::ALL {
            assert_eq!(a.as_str().parse::<AuditAction>(), Ok(a));
            assert_eq!(a.to_string(), a.as_str());
            let (area, what) = a.as_str().split_once('.').expect("a dotted name");
            assert!(!area.is_empty() && !what.is_empty() && !what.contains('.'));
        }
        for &o in AuditOutcome::ALL {
            assert_eq!(o.as_str().parse::<AuditOutcome>(), Ok(o));
        }
    }

    #[test]
    fn unknown_names_are_errors() {
        let e = "grant.applied".parse::<AuditAction>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"grant.applied\" is not a known audit action"
        );
        assert!("".parse::<AuditAction>().is_err());
        assert!("Request.Submitted".parse::<AuditAction>().is_err());
        assert!("OK".parse::<AuditOutcome>().is_err());
    }

    #[test]
    fn connector_rows_keep_their_derived_names() {
        for op in [
            ActionOp::Grant,
            ActionOp::Revoke,
            ActionOp::Disable,
            ActionOp::Verify,
        ] {
            assert_eq!(
                AuditAction::failed(op).as_str(),
                format!("{}.failed", op.as_str())
            );
            if op != ActionOp::Verify {
                assert_eq!(
                    AuditAction::unverified(op).as_str(),
                    format!("{}.unverified", op.as_str())
                );
            }
        }
        assert_eq!(
            AuditAction::unverified(ActionOp::Verify),
            AuditAction::OffboardingVerified
        );
        assert_eq!(
            AuditAction::effect(ActionOp::Revoke).as_str(),
            "grant.revoked"
        );
    }
}

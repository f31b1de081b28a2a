//! The welcome summary of a joiner, and the offboarding report: each removal as **verified
//! gone**, **could not verify (why)** or **still present / failed**, and its closing line.

use super::list_or_none;
use crate::core::model::{ActionId, ActionOp, ConnectorName, Person, PlanId};

/// Noted on a Verify action whose connector cannot be re-read (the report shows it as is).
pub(crate) const NOT_LISTABLE: &str =
    "cannot be re-read (no API): IT's Done on each task is the evidence";

/// Noted on a Verify action that found memberships whose removal is already reported.
pub(crate) const STILL_PRESENT: &str = "still present: ";

/// How a joiner's birthrights came out, apps by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OnboardingReport {
    /// Ready now.
    pub(crate) ready: Vec<String>,
    /// Waiting for a manual step by IT (each from [`manual_step`]).
    pub(crate) manual: Vec<String>,
    /// Failed.
    pub(crate) failed: Vec<String>,
    /// Held before the onboarding.
    pub(crate) already: Vec<String>,
}

/// An app waiting for IT's task.
pub(crate) fn manual_step(app: &str, task: ActionId) -> String {
    format!("{app} (task #{task} for IT)")
}

/// The body of the welcome summary.
pub(crate) fn onboarding_body(r: &OnboardingReport) -> String {
    let mut body = vec![
        format!("- ready now: {}", list_or_none(&r.ready)),
        format!(
            "- waiting for a manual step by IT: {}",
            list_or_none(&r.manual)
        ),
    ];
    if !r.failed.is_empty() {
        body.push(format!(
            "- failed, IT has been told and will retry: {}",
            r.failed.join(", ")
        ));
    }
    if !r.already.is_empty() {
        body.push(format!("- already yours: {}", r.already.join(", ")));
    }
    body.join("\n")
}

/// The welcome summary to the joiner, in organisation `org`.
pub(crate) fn welcome(org: &str, p: &Person, body: &str) -> String {
    format!(
        "Welcome to {org}, {}! Your access as {}:\n{body}",
        p.name, p.role
    )
}

/// The welcome summary to the joiner's manager.
pub(crate) fn welcome_manager(p: &Person, body: &str) -> String {
    format!(
        "{} ({}) has joined as {}. Their access:\n{body}",
        p.name, p.handle, p.role
    )
}

/// How the items of an offboarding report came out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Items whose removal could not be verified.
    pub(crate) unverified: usize,
    /// Items that failed for good (still present, as far as anyone knows).
    pub(crate) failed: usize,
    /// Manual tasks waiting for IT.
    pub(crate) waiting: usize,
    /// Memberships found on re-reading (removed and flagged).
    pub(crate) flagged: usize,
    /// Connectors that cannot be re-read.
    pub(crate) not_listable: Vec<String>,
}

impl Tally {
    /// Items that keep the report open.
    pub(crate) fn problems(&self) -> usize {
        self.unverified + self.failed + self.waiting
    }
}

/// The report's closing line.
pub(crate) fn summary(t: &Tally) -> String {
    if t.problems() > 0 {
        let mut parts = Vec::new();
        if t.unverified > 0 {
            parts.push(format!("{} could not be verified", t.unverified));
        }
        if t.failed > 0 {
            parts.push(format!("{} failed and may still be present", t.failed));
        }
        if t.waiting > 0 {
            parts.push(format!("{} waiting for IT", t.waiting));
        }
        return format!(
            "Not everything is verified gone: {}; {} flagged. This report stays open: IT's Retry (or Done) updates it.",
            parts.join(", "),
            t.flagged
        );
    }
    let unread = if t.not_listable.is_empty() {
        String::new()
    } else {
        format!(
            " ({} cannot be re-read: IT's Done is the evidence there)",
            t.not_listable.join(", ")
        )
    };
    if t.flagged == 0 {
        format!("Everything is removed, and re-reading the connectors found nothing left{unread}.")
    } else {
        format!(
            "Everything is removed; {} membership(s) found on re-reading were removed and are flagged for IT{unread}.",
            t.flagged
        )
    }
}

/// What one item of the report is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ItemWhat {
    /// The re-read of a connector.
    Reread(ConnectorName),
    /// A membership found on re-reading.
    Found {
        /// Whether a grant of it was ever recorded.
        recorded: bool,
        /// The entitlement.
        entitlement: String,
        /// The connector.
        connector: ConnectorName,
        /// Its app by name, when known.
        app: Option<String>,
    },
    /// An app's removal.
    App {
        /// The app by name.
        app: String,
        /// The connector.
        connector: ConnectorName,
        /// The entitlement.
        entitlement: String,
    },
    /// An account's disabling.
    Account(ConnectorName),
}

/// How one item of the report came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ItemVerdict {
    /// The account was disabled.
    Disabled,
    /// The connector cannot be re-read.
    NotListable,
    /// A re-read: what it found still present, and how many leftovers follow.
    Reread {
        /// What the re-read found still present, if anything.
        still: Option<String>,
        /// Leftover items removed below.
        leftovers: usize,
    },
    /// Removed.
    Removed,
    /// Waiting for IT's task.
    Waiting(ActionId),
    /// Could not be verified.
    Unverified {
        /// Why.
        error: String,
        /// What the action did.
        op: ActionOp,
        /// The action (IT can Retry it).
        action: ActionId,
    },
    /// Failed for good.
    Failed {
        /// Why.
        error: String,
        /// The action (IT can Retry it).
        action: ActionId,
    },
    /// Still running.
    Running(ActionId),
}

fn what_text(w: &ItemWhat) -> String {
    match w {
        ItemWhat::Reread(c) => format!("re-read of connector {c}"),
        ItemWhat::Found {
            recorded,
            entitlement,
            connector,
            app,
        } => format!(
            "⚑ {} membership {entitlement} in connector {connector} found on re-reading{}",
            if *recorded { "leftover" } else { "UNRECORDED" },
            app.as_ref().map(|x| format!(" ({x})")).unwrap_or_default()
        ),
        ItemWhat::App {
            app,
            connector,
            entitlement,
        } => format!("{app} (connector {connector}, entitlement {entitlement})"),
        ItemWhat::Account(c) => format!("{c} account"),
    }
}

fn verdict_text(v: &ItemVerdict) -> String {
    match v {
        ItemVerdict::Disabled => "disabled ✔".to_owned(),
        ItemVerdict::NotListable => NOT_LISTABLE.to_owned(),
        ItemVerdict::Reread { still, leftovers } => match (still, leftovers) {
            (Some(still), 0) => format!("✖ {still}"),
            (Some(still), n) => format!("✖ {still}; {n} leftover item(s), removed below"),
            (None, 0) => "nothing left ✔".to_owned(),
            (None, n) => format!("{n} leftover item(s), removed below"),
        },
        ItemVerdict::Removed => "removed ✔".to_owned(),
        ItemVerdict::Waiting(id) => format!("⚠ waiting for IT (task #{id})"),
        ItemVerdict::Unverified { error, op, action } => format!(
            "? {error} — not reported as {}; IT can Retry (action #{action})",
            match op {
                ActionOp::Verify => "checked",
                ActionOp::Disable => "disabled",
                _ => "removed",
            },
        ),
        ItemVerdict::Failed { error, action } => {
            format!("✖ FAILED: {error} — IT must act (Retry on action #{action})")
        }
        ItemVerdict::Running(id) => format!("… still running (action #{id})"),
    }
}

/// Who confirmed an offboarding, for its report's heading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConfirmedBy {
    /// A person, by name.
    Person(String),
    /// The HR feed (no person confirmed it).
    Hr,
    /// The identity provider over inbound SCIM (`leaver = "immediate"`).
    Idp,
    /// Nobody known.
    Nobody,
}

/// An offboarding report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffboardingReport {
    /// The leaver's name.
    pub(crate) name: String,
    /// The plan.
    pub(crate) plan: PlanId,
    /// Who confirmed it.
    pub(crate) confirmed_by: ConfirmedBy,
    /// When, as shown to everyone.
    pub(crate) confirmed_at: Option<String>,
    /// When it was last updated (IT's Retry or Done), as shown to everyone.
    pub(crate) updated_at: Option<String>,
    /// Its items.
    pub(crate) items: Vec<(ItemWhat, ItemVerdict)>,
    /// How they came out.
    pub(crate) tally: Tally,
}

/// The offboarding report: heading, one line per item, the closing line.
pub(crate) fn offboarding_report(r: &OffboardingReport) -> String {
    let heading = format!(
        "Offboarding report for {} (plan #{}, confirmed by {} at {})",
        r.name,
        r.plan,
        match &r.confirmed_by {
            ConfirmedBy::Person(n) => n.as_str(),
            ConfirmedBy::Hr => "the HR feed",
            ConfirmedBy::Idp => "the identity provider",
            ConfirmedBy::Nobody => "-",
        },
        r.confirmed_at.as_deref().unwrap_or("-")
    );
    let mut lines = vec![match &r.updated_at {
        None => format!("{heading}:"),
        Some(t) => format!("{heading}, updated at {t}:"),
    }];
    for (what, verdict) in &r.items {
        lines.push(format!("- {}: {}", what_text(what), verdict_text(verdict)));
    }
    if r.items.is_empty() {
        lines.push("- nothing was recorded for this person".into());
    }
    lines.push(summary(&r.tally));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::{Tally, summary};

    #[test]
    fn everything_is_removed_only_when_nothing_is_unverified_failed_or_waiting() {
        let ok = Tally::default();
        assert!(summary(&ok).starts_with("Everything is removed"));
        for t in [
            Tally {
                unverified: 1,
                ..Tally::default()
            },
            Tally {
                failed: 1,
                ..Tally::default()
            },
            Tally {
                waiting: 1,
                ..Tally::default()
            },
        ] {
            let s = summary(&t);
            assert!(!s.contains("Everything is removed"), "{s}");
            assert!(s.contains("stays open"), "{s}");
        }
        let unread = Tally {
            not_listable: vec!["manual".into()],
            ..Tally::default()
        };
        assert!(
            summary(&unread).contains("manual cannot be re-read: IT's Done is the evidence there"),
            "{}",
            summary(&unread)
        );
    }
}

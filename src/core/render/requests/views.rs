//! The words of the read-only commands: `/access` and `/approvals`.

use crate::core::model::GrantSource;
use crate::core::plan::PlanKind;
use crate::core::service::news::{AccessView, GrantLine, GrantShown, PlanLine, WaitingLine};

use super::{show, wait};

/// `/access`: what a person holds and has asked for.
pub(crate) fn access(v: &AccessView) -> String {
    let whose = match &v.whose {
        None => "Your access".to_owned(),
        Some(name) => format!("Access of {name}"),
    };
    let mut lines = vec![format!("{whose}:")];
    if v.grants.is_empty() {
        lines.push("- no apps yet".into());
    }
    lines.extend(v.grants.iter().map(grant_line));
    if !v.open.is_empty() {
        lines.push("Pending requests:".into());
        for (id, app, w) in &v.open {
            lines.push(format!("- #{id} {app}: {}", wait(w)));
        }
    }
    lines.join("\n")
}

/// One grant's line in `/access`: its app, its state, where it came from, its end.
fn grant_line(g: &GrantLine) -> String {
    let state = match &g.state {
        GrantShown::Active => String::new(),
        GrantShown::Pending => " (being set up)".into(),
        GrantShown::RemovalStalled { unverified: true } => {
            " (removal not verified: IT can retry)".into()
        }
        GrantShown::RemovalStalled { unverified: false } => {
            " (removal failed: IT can retry)".into()
        }
        GrantShown::Removing => " (being removed)".into(),
        GrantShown::Other(other) => format!(" ({})", other.as_str()),
    };
    let source = match g.source {
        GrantSource::Birthright => "birthright".to_owned(),
        GrantSource::Request(r) => format!("request #{r}"),
    };
    let until = g
        .until
        .map(|t| format!(", until {}", show(&t)))
        .unwrap_or_default();
    format!("- {}{state} — {source}{until}", g.app)
}

/// `/approvals`: the requests, then the plans, waiting for the caller's decision.
pub(crate) fn approvals(requests: &[WaitingLine], plans: &[PlanLine]) -> String {
    let mut lines: Vec<String> = requests.iter().map(waiting_line).collect();
    lines.extend(plans.iter().map(plan_line));
    if lines.is_empty() {
        return "Nothing is waiting for your decision.".into();
    }
    lines.insert(0, format!("Waiting for your decision ({}):", lines.len()));
    if lines.len() > 2 {
        lines.push("The buttons decide the first one; each one's message has its own.".into());
    }
    lines.join("\n")
}

/// One request's line in `/approvals`.
fn waiting_line(w: &WaitingLine) -> String {
    format!(
        "- #{} {} asks for {} — {} (step {} of {}), waiting since {}",
        w.id,
        w.requester,
        w.app,
        w.reason.as_deref().unwrap_or("no reason given"),
        w.k + 1,
        w.of,
        w.since.map_or_else(|| "-".into(), |t| show(&t))
    )
}

/// One plan's line in `/approvals`.
fn plan_line(p: &PlanLine) -> String {
    let what = match p.kind {
        PlanKind::Offboard => "offboarding",
        PlanKind::Role => "role change",
        PlanKind::Onboard => "onboarding",
    };
    format!(
        "- Plan #{}: {what} of {}, asked by {} at {} — waiting for your Confirm",
        p.id,
        p.subject,
        p.by,
        show(&p.at)
    )
}

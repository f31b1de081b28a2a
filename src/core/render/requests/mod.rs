//! The words of requests, approvals, revokes, expiries, views and the engine's outcomes.
//!
//! - [`refusals`]: every reason a request, a decision, a revoke, a view or IT's button is
//!   refused;
//! - [`asking`]: a request's answer, its prompts, decisions, cancels and revokes;
//! - [`timers`]: expiries, their warnings, reminders and escalations;
//! - [`views`]: `/access` and `/approvals`;
//! - [`engine`]: what connector actions did (granted, removed, failed, not verified), IT's
//!   tasks and Retry, and the outbox's fallback copies.

pub mod asking;
pub mod engine;
pub mod refusals;
pub mod timers;
pub mod views;

pub(crate) use asking::*;
pub(crate) use engine::*;
pub(crate) use refusals::refusal;
pub(crate) use timers::*;
pub(crate) use views::*;

use crate::core::service::news::{Moment, Prompt, Wait};

/// A moment in its reader's zone: `2026-12-31 23:59 PST`.
pub(crate) fn show(t: &Moment) -> String {
    t.zone.show(t.at)
}

/// "Ann, Bob or Cid" ("nobody" for none).
pub(crate) fn either(names: &[String]) -> String {
    match names.len() {
        0 => "nobody".into(),
        1 => names[0].clone(),
        n => format!("{} or {}", names[..n - 1].join(", "), names[n - 1]),
    }
}

/// "Ann", "Ann and Bob", "Ann, Bob and Cid".
pub(crate) fn all_of(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// "waiting for Bob Chen (step 1 of 2)" and the like.
pub(crate) fn wait(w: &Wait) -> String {
    match w {
        Wait::Awaiting { approvers, k, of } => {
            format!("waiting for {} (step {} of {of})", either(approvers), k + 1)
        }
        Wait::NoApprover { k, of } => format!(
            "waiting: nobody is eligible to approve step {} of {of}; IT has been told",
            k + 1
        ),
        Wait::Other(s) => s.to_string(),
    }
}

/// The prompt of a request's current step: who asks for what, why, for how long, which step,
/// and what they already hold.
pub(crate) fn prompt(p: &Prompt) -> String {
    let what = if p.extend {
        "asks to extend"
    } else {
        "asks for"
    };
    format!(
        "Access request #{}: {requester} {what} {}.\nReason: {}\nDuration: {}\nStep {} of {} ({})\n{requester} already holds: {}",
        p.id,
        p.app,
        p.reason.as_deref().unwrap_or("(none given)"),
        p.duration
            .map_or_else(|| "no end".to_owned(), |d| d.to_string()),
        p.k + 1,
        p.of,
        p.rule.as_ref().map(ToString::to_string).unwrap_or_default(),
        if p.held.is_empty() {
            "nothing yet".to_owned()
        } else {
            p.held.join(", ")
        },
        requester = p.requester,
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;
    use crate::core::model::{ApprovalRule, RequestId, Span};
    use crate::core::service::news::{PlanLine, WaitingLine};
    use crate::core::zone::Zone;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_list_of_people_reads_as_one_or_the_other() {
        assert_eq!(either(&[]), "nobody");
        assert_eq!(either(&names(&["Ann"])), "Ann");
        assert_eq!(either(&names(&["Ann", "Bob", "Cid"])), "Ann, Bob or Cid");
        let w = Wait::Awaiting {
            approvers: names(&["Bob Chen"]),
            k: 0,
            of: 2,
        };
        assert_eq!(wait(&w), "waiting for Bob Chen (step 1 of 2)");
    }

    #[test]
    fn a_prompt_reads_as_the_readme_shows_it() {
        let p = Prompt {
            id: RequestId(1),
            requester: "Alice Kim".into(),
            app: "Figma".into(),
            extend: false,
            reason: Some("landing page mock-ups".into()),
            duration: Some(Span::parse("30d").expect("a span")),
            k: 0,
            of: 2,
            rule: Some(ApprovalRule::Manager),
            held: Vec::new(),
        };
        assert_eq!(
            prompt(&p),
            "Access request #1: Alice Kim asks for Figma.\nReason: landing page mock-ups\n\
             Duration: 30d\nStep 1 of 2 (manager)\nAlice Kim already holds: nothing yet"
        );
    }

    #[test]
    fn approvals_count_their_lines_and_explain_the_buttons_only_for_several() {
        assert_eq!(approvals(&[], &[]), "Nothing is waiting for your decision.");
        let at = Moment {
            at: chrono::Utc
                .with_ymd_and_hms(2026, 11, 25, 9, 0, 0)
                .single()
                .expect("a time"),
            zone: Zone::UTC,
        };
        let line = WaitingLine {
            id: RequestId(2),
            requester: "Frank Li".into(),
            app: "Zoho Books".into(),
            reason: None,
            k: 0,
            of: 2,
            since: Some(at),
        };
        let one = approvals(std::slice::from_ref(&line), &[]);
        assert_eq!(
            one,
            "Waiting for your decision (1):\n- #2 Frank Li asks for Zoho Books — no reason \
             given (step 1 of 2), waiting since 2026-11-25 09:00 UTC"
        );
        let plan = PlanLine {
            id: crate::core::model::PlanId(1),
            kind: crate::core::plan::PlanKind::Offboard,
            subject: "Alice Kim".into(),
            by: "Dana Ortiz".into(),
            at,
        };
        let two = approvals(&[line], &[plan]);
        assert!(two.starts_with("Waiting for your decision (2):"), "{two}");
        assert!(two.ends_with("each one's message has its own."), "{two}");
    }
}

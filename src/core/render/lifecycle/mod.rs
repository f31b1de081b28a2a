//! The words of joiners, movers and leavers: plans, the HR feed and the reports.
//!
//! - [`refusal`]: why a command or click of theirs is refused ([`PlanRefusal`]);
//! - [`plans`]: a plan's summary (what will be granted, revoked, reviewed, removed), its
//!   Confirm and Cancel, and its result;
//! - [`people`]: `/onboard`'s answer, a move's news, a role change's prompts, HR's answers;
//! - [`reports`]: the welcome summary and the offboarding report.

pub(crate) mod people;
pub(crate) mod plans;
pub(crate) mod refusal;
pub(crate) mod reports;

pub(crate) use refusal::PlanRefusal;

/// `v` joined with ", ", or "none".
fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

//! The words of joiners, movers and leavers: plans, the HR feed and the reports.
//!
//! - [`reports`]: the welcome summary and the offboarding report.

pub(crate) mod reports;

/// `v` joined with ", ", or "none".
fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}

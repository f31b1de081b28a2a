//! `[workflow]`: the timers of approval requests.

use super::walker::Walker;
use super::{Rec, keys};
use crate::core::model::WorkflowSettings;

impl Walker<'_, '_> {
    /// `[workflow]` (each timer has a default).
    pub(super) fn workflow(&mut self, root: &Rec) -> WorkflowSettings {
        let cx = &mut *self.cx;
        let mut workflow = WorkflowSettings::default();
        if let Some(w) = root.table(cx, "workflow") {
            w.check_keys(cx, &keys::keys("workflow"));
            if let Some(s) = w.span(cx, "remind_after") {
                workflow.remind_after = s;
            }
            if let Some(s) = w.span(cx, "escalate_after") {
                workflow.escalate_after = s;
            }
            if let Some(s) = w.span(cx, "expire_after") {
                workflow.expire_after = s;
            }
            if let Some(s) = w.span(cx, "max_duration") {
                workflow.max_duration = s;
            }
            workflow.step_up_for = super::step_up::step_up_for(cx, &w);
        }
        workflow
    }
}

//! Where a click goes: each button's use case, behind step-up where the catalog or
//! `[workflow] step_up_for` asks for it (the click then opens a form asking for the code,
//! and the submitted form comes back here).

use super::step_up::Gate;
use super::*;
use crate::core::render::requests as render;
use crate::core::render::step_up as words;

impl Service {
    /// Routes a parsed click (or submitted form) to its use case.
    pub(super) async fn route_click(
        &self,
        c: &Caller,
        custom_id: &str,
        target: ClickTarget,
        fields: Option<&HashMap<String, String>>,
    ) -> Result<ClickReply> {
        let reply = match target {
            ClickTarget::Approve(r, k) => {
                return Box::pin(self.approve(c, custom_id, r, k, fields)).await;
            }
            ClickTarget::Deny(r, k) => match fields {
                None => {
                    return Ok(ClickReply::Form(Form::one(
                        custom_id,
                        render::deny_title(r),
                        FormField::reason(render::deny_label()),
                    )));
                }
                Some(f) => {
                    let reason = f
                        .get("reason")
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty());
                    self.decide(c, r, k, false, reason).await?
                }
            },
            ClickTarget::Done(_) | ClickTarget::Retry(_) => {
                return Box::pin(self.action_click(c, custom_id, target, fields)).await;
            }
            ClickTarget::Confirm(p) => {
                return Box::pin(self.confirm_plan(c, custom_id, p, fields)).await;
            }
            ClickTarget::Cancel(p) => self.close_plan(c, p, false).await?,
            ClickTarget::Extend(g) => self.extend(c, g).await?,
            ClickTarget::Escalate(_) | ClickTarget::BreakGlass(_) => {
                Box::pin(self.break_glass_click(c, target, fields)).await?
            }
            ClickTarget::Ratify(b) => Box::pin(self.ratify(c, b, true)).await?,
            ClickTarget::RevokeNow(b) => Box::pin(self.ratify(c, b, false)).await?,
            ClickTarget::MfaReset(h) => Box::pin(self.mfa_reset(c, h, fields)).await?,
            ClickTarget::Drift(f, a) => {
                return Box::pin(self.drift_click(c, custom_id, f, a, fields)).await;
            }
            ClickTarget::Review(i, a) => {
                return Box::pin(self.review_click(c, custom_id, i, a, fields)).await;
            }
        };
        Ok(ClickReply::Reply(reply))
    }

    /// Approve: behind step-up when the app asks for it and the clicker is one of the step's
    /// approvers (anyone else is refused by [`Service::decide`] without being asked a code).
    async fn approve(
        &self,
        c: &Caller,
        custom_id: &str,
        r: RequestId,
        k: u32,
        fields: Option<&HashMap<String, String>>,
    ) -> Result<ClickReply> {
        let me = &c.person.handle;
        // Only a catalog with step-up somewhere pays for the extra read.
        let any = self.org.apps.iter().any(|a| a.step_up);
        let needs = match any.then_some(()) {
            None => None,
            Some(()) => self.store.request(r).await?,
        };
        let needs = match needs {
            Some(req) => {
                self.org.app(&req.app).is_some_and(|a| a.step_up)
                    && req.requester != *me
                    && req.state == RequestState::Awaiting(k)
                    && req
                        .steps
                        .get(k as usize)
                        .is_some_and(|s| s.decision.is_none() && s.approvers.contains(me))
            }
            None => false,
        };
        if needs {
            match self
                .step_up(c, custom_id, words::approve_title(r), fields)
                .await?
            {
                Gate::Pass => {}
                Gate::Answer(a) => return Ok(a),
            }
            let reply = self
                .as_stepped_up(c, self.decide(c, r, k, true, None))
                .await?;
            return Ok(ClickReply::Reply(reply));
        }
        Ok(ClickReply::Reply(self.decide(c, r, k, true, None).await?))
    }

    /// IT's Done and Retry on a connector action, behind step-up when `step_up_for` names them.
    async fn action_click(
        &self,
        c: &Caller,
        custom_id: &str,
        target: ClickTarget,
        fields: Option<&HashMap<String, String>>,
    ) -> Result<ClickReply> {
        let (a, what, why, confirm) = match target {
            ClickTarget::Done(a) => (a, "done", ActionRefusal::DoneItOnly, Confirmable::Done),
            ClickTarget::Retry(a) => (a, "retry", ActionRefusal::RetryItOnly, Confirmable::Retry),
            _ => return Err(ServiceError::Inconsistent("not an action click".into())),
        };
        let (admin, action) = match self.it_only_for_action(c, a, what, why).await? {
            Ok(ok) => ok,
            Err(refused) => return Ok(ClickReply::Reply(refused)),
        };
        if self.org.workflow.step_up_for.contains(confirm) {
            let title = words::confirm_title(&format!("{} on action #{a}", capitalised(what)));
            match self.step_up(c, custom_id, title, fields).await? {
                Gate::Pass => {}
                Gate::Answer(ans) => return Ok(ans),
            }
        }
        let work = async {
            match confirm {
                Confirmable::Done => self.manual_done(&admin, c, a, action).await,
                _ => self.retry(&admin, c, a, action).await,
            }
        };
        Ok(ClickReply::Reply(self.as_stepped_up(c, work).await?))
    }

    /// Confirm on a plan, behind step-up when `step_up_for` names its kind and the clicker
    /// is IT (anyone else is refused by [`Service::close_plan`]).
    async fn confirm_plan(
        &self,
        c: &Caller,
        custom_id: &str,
        p: PlanId,
        fields: Option<&HashMap<String, String>>,
    ) -> Result<ClickReply> {
        let kind = match self.store.plan(p).await? {
            Some(plan) if policy::it_admin(&self.org, &c.person).is_some() => Some(plan.kind),
            _ => None,
        };
        let confirm = kind.map(|k| match k {
            PlanKind::Offboard => Confirmable::Offboard,
            PlanKind::Role => Confirmable::Role,
            PlanKind::Onboard => Confirmable::Onboard,
        });
        if confirm.is_some_and(|k| self.org.workflow.step_up_for.contains(k)) {
            let title = words::confirm_title(&format!("Confirm plan #{p}"));
            match self.step_up(c, custom_id, title, fields).await? {
                Gate::Pass => {}
                Gate::Answer(ans) => return Ok(ans),
            }
            let reply = self.as_stepped_up(c, self.close_plan(c, p, true)).await?;
            return Ok(ClickReply::Reply(reply));
        }
        Ok(ClickReply::Reply(self.close_plan(c, p, true).await?))
    }
}

/// `what` with a capital first letter.
fn capitalised(what: &str) -> String {
    let mut ch = what.chars();
    ch.next()
        .map(|f| f.to_uppercase().chain(ch).collect())
        .unwrap_or_default()
}

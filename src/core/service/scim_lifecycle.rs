//! What a SCIM user's change means for the person it maps to, on the joiner/mover/leaver
//! path the HR feed takes ([`Service::person_record_with`], [`Service::leave_person`]): a new
//! active user is a joiner (an onboarding plan IT confirms, or at once with `joiner =
//! "auto"`); a change of what the person holds (role, department, manager…) a move; `active:
//! false` or DELETE a leaver (an offboarding plan IT confirms, or at once with `leaver =
//! "immediate"`). A write that changes nothing the person holds commits only the resource.

use std::collections::BTreeSet;

use super::hr::RecordSource;
use super::lifecycle::{Initiator, PersonRefused, PlanDetail};
use super::scim::ScimFailure;
use super::*;
use crate::core::render::lifecycle::people;
use crate::core::render::lifecycle::plans::{self as plan_text, PlanResult};
use crate::core::scim::{Mode, ScimError, ScimKind, ScimResource, ScimType, mapping};

impl Service {
    /// Acts on a user's write (`old` as stored, `new` as it will stand; None when deleted),
    /// committing `intake` (the resource write and its audit row) with the work.
    pub(super) async fn scim_user_lifecycle(
        &self,
        old: Option<&ScimResource>,
        new: Option<&ScimResource>,
        intake: Change,
    ) -> Result<(), ScimFailure> {
        let Some(handle) = new.or(old).and_then(|r| r.handle.clone()) else {
            self.commit_scim(intake).await?;
            return Ok(());
        };
        if self.maps_alike(old, new) {
            // Active before and after, and nothing a person takes from the user changed (a
            // phone number, a nickname, a title no rule reads): only the resource is stored.
            self.commit_scim(intake).await?;
            return Ok(());
        }
        let (live, known) = self.scim_people_of(&handle, new).await?;
        match (new.filter(|n| n.active), live) {
            (Some(n), Some(p)) => {
                let Some(mut rec) = self.scim_person(n).await? else {
                    // No e-mail any more: the person keeps what they hold.
                    self.commit_scim(intake).await?;
                    return Ok(());
                };
                if rec.discord_id.is_none() {
                    rec.discord_id = p.discord_id.clone();
                }
                if rec.timezone.is_none() {
                    rec.timezone = p.timezone;
                }
                if rec == p {
                    // Nothing the person holds changed: no plan, no move.
                    self.commit_scim(intake).await?;
                } else {
                    self.person_record_with(RecordSource::Scim, rec, intake)
                        .await?;
                }
            }
            (Some(n), None) => {
                let Some(rec) = self.scim_person(n).await? else {
                    // Not a person until the user has an e-mail address.
                    self.commit_scim(intake).await?;
                    return Ok(());
                };
                match self.scim.joiner {
                    Mode::Now => {
                        self.person_record_with(RecordSource::Scim, rec, intake)
                            .await?;
                    }
                    Mode::Plan => self.scim_joiner_plan(n, rec, intake, known).await?,
                }
            }
            (None, Some(p)) => {
                let reason = if new.is_none() {
                    "deleted in the identity provider"
                } else {
                    "deactivated in the identity provider"
                };
                match self.scim.leaver {
                    Mode::Now => {
                        let now = self.clock.now();
                        let by = Initiator::idp();
                        self.leave_person(&by, p, reason.into(), None, now, intake)
                            .await?;
                    }
                    Mode::Plan => self.scim_leaver_plan(p, reason, intake).await?,
                }
            }
            (None, None) => {
                self.commit_scim(intake).await?;
            }
        }
        Ok(())
    }

    /// The active person with `handle`, and the e-mail address a user active after the write
    /// maps to with whoever holds it, read together (a joiner's checks need both).
    async fn scim_people_of(
        &self,
        handle: &Handle,
        new: Option<&ScimResource>,
    ) -> Result<(Option<Person>, Option<(Email, Option<Person>)>), ScimFailure> {
        let email = new
            .filter(|n| n.active)
            .and_then(|n| mapping::email_of(&n.body));
        let (live, holder) = self
            .store
            .person_and_email_holder(handle, email.as_ref())
            .await?;
        let live = live.filter(|p| p.status == PersonStatus::Active);
        Ok((live, email.map(|e| (e, holder))))
    }

    /// Whether a user active before and after a write maps to the same person record (same
    /// manager id, no rule reading groups), read from the two bodies alone.
    fn maps_alike(&self, old: Option<&ScimResource>, new: Option<&ScimResource>) -> bool {
        let (Some(o), Some(n)) = (old, new) else {
            return false;
        };
        let (Some(h), true) = (&n.handle, o.active && n.active) else {
            return false;
        };
        // A rule reading group membership could read a changed title with it: map in full.
        if self.scim.rules.iter().any(|r| r.group.is_some()) {
            return false;
        }
        let map = |r: &ScimResource| mapping::person(&self.scim, h, &r.body, &[], None);
        mapping::manager_id(&o.body) == mapping::manager_id(&n.body)
            && matches!((map(o), map(n)), (Ok(Some(a)), Ok(Some(b))) if a == b)
    }

    /// The person an active user maps to (None: no e-mail address yet): the groups read with
    /// the user, the manager resolved from `manager.value` (a user's id, else a
    /// handle) when they are a person.
    pub(super) async fn scim_person(
        &self,
        r: &ScimResource,
    ) -> Result<Option<Person>, ScimFailure> {
        let handle = r
            .handle
            .clone()
            .ok_or_else(|| ScimError::bad(ScimType::InvalidValue, "the user maps to no handle"))?;
        // Read with the user (a user's own write leaves them as they were).
        let groups: Vec<String> = r.groups.iter().map(|g| g.display.clone()).collect();
        let manager = match mapping::manager_id(&r.body) {
            None => None,
            Some(mid) => match self.store.scim_resource(ScimKind::User, &mid).await? {
                Some(m) => m.handle,
                None => Handle::parse(&mid).ok(),
            },
        };
        // A manager who is not a person (yet) is left out: the identity provider may send a
        // report before their manager.
        let manager = match manager {
            Some(m) if self.store.person(&m).await?.is_some() => Some(m),
            _ => None,
        };
        Ok(mapping::person(
            &self.scim, &handle, &r.body, &groups, manager,
        )?)
    }

    /// `joiner = "plan"`: an onboarding plan IT confirms (one per joiner: a repeated write
    /// while it is open adds none), proposed with the resource write. `known`: an e-mail
    /// address and who held it, as read with the person.
    async fn scim_joiner_plan(
        &self,
        r: &ScimResource,
        p: Person,
        mut intake: Change,
        known: Option<(Email, Option<Person>)>,
    ) -> Result<(), ScimFailure> {
        self.check_record_knowing(&p, known).await?;
        if self
            .open_plan(&p.handle, PlanKind::Onboard)
            .await?
            .is_some()
        {
            self.commit_scim(intake).await?;
            return Ok(());
        }
        let apps: Vec<String> = self
            .org
            .birthrights(&p.role, &p.department)
            .iter()
            .map(|a| self.app_display(a))
            .collect();
        let text = people::idp_joiner(&p, &apps);
        let detail = PlanDetail {
            role: Some(p.role.to_string()),
            idp: true,
            scim_id: Some(r.id.clone()),
            ..PlanDetail::default()
        };
        let what = format!("onboarding, role {} ({})", p.role, people::BY_IDP);
        self.propose_to_it(&mut intake, PlanKind::Onboard, &p, detail, what, &text);
        self.commit_scim(intake).await?;
        self.messages_committed().await;
        Ok(())
    }

    /// `leaver = "plan"`: an offboarding plan IT confirms (one at a time), proposed with the
    /// resource write.
    async fn scim_leaver_plan(
        &self,
        p: Person,
        reason: &str,
        mut intake: Change,
    ) -> Result<(), ScimFailure> {
        if self
            .open_plan(&p.handle, PlanKind::Offboard)
            .await?
            .is_some()
        {
            self.commit_scim(intake).await?;
            return Ok(());
        }
        let shown = self.offboard_plan(&p, Some(reason.into())).await?;
        let text = people::idp_leaver(&p, &plan_text::offboard_plan(&shown));
        let detail = PlanDetail {
            reason: Some(reason.into()),
            idp: true,
            ..PlanDetail::default()
        };
        let what = format!("offboarding ({reason})");
        self.propose_to_it(&mut intake, PlanKind::Offboard, &p, detail, what, &text);
        self.commit_scim(intake).await?;
        self.messages_committed().await;
        Ok(())
    }

    /// Adds to `intake` a plan of the identity provider's for IT to confirm: its
    /// `plan.proposed` row (`what`), `text` with Confirm to each IT admin, the plan itself.
    fn propose_to_it(
        &self,
        intake: &mut Change,
        kind: PlanKind,
        p: &Person,
        detail: PlanDetail,
        what: String,
        text: &[String],
    ) {
        intake.audit.push(
            self.audit(AuditAction::PlanProposed)
                .by(Actor::Idp)
                .subject(&p.handle)
                .detail(what),
        );
        for a in &self.org.it_admins {
            intake.plan_messages.push(PlanMessage {
                to: a.clone(),
                text: text.to_owned(),
                buttons: true,
            });
        }
        intake.new_plan = Some(NewPlan {
            kind,
            subject: p.handle.clone(),
            created_by: p.handle.clone(),
            confirmers: self.org.it_admins.clone(),
            detail: detail.stored(),
            created_at: self.clock.now(),
            due_at: None,
            preconfirmed: false,
        });
    }

    /// IT confirmed a joiner plan of the identity provider's: the user is read again and
    /// onboarded as they now stand, on the HR feed's path (`base` marks the plan started).
    pub(super) async fn carry_out_scim_joiner(
        &self,
        _by: &Initiator,
        plan: &Plan,
        id: &str,
        base: Change,
    ) -> Result<PlanResult> {
        let r = self.store.scim_resource(ScimKind::User, id).await?;
        let Some(r) = r.filter(|r| r.active) else {
            self.commit(base).await?;
            return Ok(PlanResult::JoinerGone(plan.subject.to_string()));
        };
        let rec = match self.scim_person(&r).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                self.commit(base).await?;
                return Ok(PlanResult::JoinerGone(plan.subject.to_string()));
            }
            Err(ScimFailure::Protocol(e)) => return Err(ServiceError::Inconsistent(e.detail)),
            Err(ScimFailure::Service(e)) => return Err(e),
        };
        let apps = self
            .org
            .birthrights(&rec.role, &rec.department)
            .iter()
            .map(|a| self.app_display(a))
            .collect();
        let name = rec.name.clone();
        match self.person_record_with(RecordSource::Scim, rec, base).await {
            Ok(_) => Ok(PlanResult::Onboarded { name, apps }),
            Err(PersonRefused::Invalid(why)) => Err(ServiceError::Inconsistent(why.to_string())),
            Err(PersonRefused::Service(e)) => Err(e),
        }
    }

    /// A group's write: committed, then (when a rule reads group membership) each user whose
    /// membership changed is mapped again and moved when what they hold changed. A member
    /// whose new mapping is refused keeps what they hold (logged).
    pub(super) async fn scim_group_written(
        &self,
        old: Option<&ScimResource>,
        new: Option<&ScimResource>,
        intake: Change,
    ) -> Result<(), ScimFailure> {
        self.commit_scim(intake).await?;
        if !self.scim.rules.iter().any(|r| r.group.is_some()) {
            return Ok(());
        }
        let before: BTreeSet<String> = old
            .map(|o| o.member_ids())
            .unwrap_or_default()
            .into_iter()
            .collect();
        let after: BTreeSet<String> = new
            .map(|n| n.member_ids())
            .unwrap_or_default()
            .into_iter()
            .collect();
        let renamed = old.map(|o| &o.name) != new.map(|n| &n.name);
        let touched: BTreeSet<&String> = if renamed {
            before.union(&after).collect()
        } else {
            before.symmetric_difference(&after).collect()
        };
        for id in touched {
            if let Err(e) = self.scim_remap(id).await {
                warn!(user = %id, error = %e, "a group change could not move its member");
            }
        }
        Ok(())
    }

    /// Maps an active user who is a person again; moves them when what they hold changed.
    async fn scim_remap(&self, id: &str) -> Result<(), ScimFailure> {
        let Some(r) = self.store.scim_resource(ScimKind::User, id).await? else {
            return Ok(());
        };
        let Some(h) = r.handle.clone().filter(|_| r.active) else {
            return Ok(());
        };
        let Some(p) = self
            .store
            .person(&h)
            .await?
            .filter(|p| p.status == PersonStatus::Active)
        else {
            return Ok(());
        };
        let Some(mut rec) = self.scim_person(&r).await? else {
            return Ok(());
        };
        rec.discord_id = rec.discord_id.or(p.discord_id.clone());
        rec.timezone = rec.timezone.or(p.timezone);
        if rec != p {
            self.person_record_with(RecordSource::Scim, rec, Change::default())
                .await?;
        }
        Ok(())
    }
}

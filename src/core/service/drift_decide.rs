//! IT's buttons on a drift finding: Adopt (a form: until when, why; it becomes a recorded
//! grant), Revoke, Re-provision, Ignore 30 days (why), Service account (its owner). Each is
//! IT's alone, behind step-up when `step_up_for` names `drift`, conditional on the finding
//! still being open, audited as `drift.resolved`, and shown on the finding's messages.

use super::step_up::Gate;
use super::*;
use crate::core::customid::DriftAction;
use crate::core::render::drift as words;

/// How long Ignore leaves a finding alone.
const IGNORE_FOR: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

impl Service {
    /// A click on a finding's button (or its submitted form).
    pub(super) async fn drift_click(
        &self,
        c: &Caller,
        custom_id: &str,
        id: FindingId,
        action: DriftAction,
        fields: Option<&HashMap<String, String>>,
    ) -> Result<ClickReply> {
        if let Err(refused) = self.it_only(c, "drift", None).await? {
            return Ok(ClickReply::Reply(refused));
        }
        let Some(f) = self.store.finding(id).await? else {
            return Ok(ClickReply::Reply(Reply::text(format!(
                "There is no finding #{id}."
            ))));
        };
        if f.state != FindingState::Open {
            let by = f.decided.as_ref().map_or("someone", |d| d.0.as_str());
            return Ok(ClickReply::Reply(Reply::text(format!(
                "Finding #{id} is {} already (by {by}).",
                f.state.as_str()
            ))));
        }
        if let Some(form) = drift_form(custom_id, &f, action, fields) {
            return Ok(ClickReply::Form(form));
        }
        if self.org.workflow.step_up_for.contains(Confirmable::Drift) {
            let title = format!("Finding #{id}: step-up code");
            match self.step_up(c, custom_id, title, fields).await? {
                Gate::Pass => {}
                Gate::Answer(a) => return Ok(a),
            }
        }
        let work = self.drift_decide(c, &f, action, fields);
        Ok(ClickReply::Reply(self.as_stepped_up(c, work).await?))
    }

    /// Carries out IT's decision on an open finding.
    async fn drift_decide(
        &self,
        c: &Caller,
        f: &Finding,
        action: DriftAction,
        fields: Option<&HashMap<String, String>>,
    ) -> Result<Reply> {
        let field = |k: &str| {
            fields
                .and_then(|m| m.get(k))
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let by = Self::by(c);
        let now = self.clock.now();
        let mut settled = f.clone();
        let reason = field("reason").unwrap_or_default();
        let (change, how) = match action {
            DriftAction::Revoke if f.person.is_some() && f.app.is_some() => {
                let why = if reason.is_empty() {
                    "IT's decision".to_owned()
                } else {
                    reason.clone()
                };
                let change = self.revoke_finding_change(f, &by, c.chat_id.as_deref(), &why)?;
                return self.commit_decision(change, f, "Revoke queued").await;
            }
            DriftAction::Reprovision if f.class == DriftClass::Missing => {
                match self.reprovision_change(f).await? {
                    Some(ch) => (ch, "re-provision queued".to_owned()),
                    None => {
                        return Ok(Reply::text(format!(
                            "Finding #{}: the grant is no longer active; nothing to re-provision.",
                            f.id
                        )));
                    }
                }
            }
            DriftAction::Ignore => {
                settled.state = FindingState::Ignored;
                settled.until = Some(now + IGNORE_FOR);
                (Change::default(), format!("ignored for 30 days: {reason}"))
            }
            DriftAction::Service => {
                let owner =
                    field("owner").and_then(|o| Handle::parse(o.trim_start_matches('@')).ok());
                let Some(owner) = owner else {
                    return Ok(Reply::text("A service account needs its owner's handle."));
                };
                if self.store.person(&owner).await?.is_none() {
                    return Ok(Refusal::NoSuchPerson(owner).into());
                }
                settled.state = FindingState::Service;
                settled.owner = Some(owner.clone());
                (
                    Change::default(),
                    format!("service account, owned by {owner}"),
                )
            }
            DriftAction::Adopt if f.class == DriftClass::Unrecorded => {
                match self.adopt_change(f, field("until").as_deref(), &reason, now)? {
                    Ok(ch) => (ch, format!("adopted as a recorded grant: {reason}")),
                    Err(why) => return Ok(Reply::text(why)),
                }
            }
            _ => {
                return Ok(Reply::text(format!(
                    "That does not apply to finding #{}.",
                    f.id
                )));
            }
        };
        self.finish_decision(c, f, settled, change, &how).await
    }

    /// The finding settled as `how` says (resolved, unless ignored or a service account),
    /// audited, its messages edited, committed.
    async fn finish_decision(
        &self,
        c: &Caller,
        f: &Finding,
        mut settled: Finding,
        mut change: Change,
        how: &str,
    ) -> Result<Reply> {
        let by = Self::by(c);
        let now = self.clock.now();
        if settled.state == FindingState::Open {
            settled.state = FindingState::Resolved;
        }
        settled.decided = Some((by.to_string(), now, how.to_owned()));
        change.finding_updates.push(settled);
        change.audit.push(
            self.audit(AuditAction::DriftResolved)
                .by(by)
                .chat(c.chat_id.as_deref())
                .subject(f.person.as_ref())
                .app(f.app.as_ref())
                .detail(format!("finding {} ({}): {how}", f.id, f.class.as_str())),
        );
        change.messages.push(Outgoing::edit(
            MessageKey::Finding(f.id),
            words::decided(f, &format!("{how} — {}", c.person.name)),
            Vec::new(),
        ));
        self.commit_decision(change, f, how).await
    }

    /// Commits a decision; a finding someone decided first answers so.
    async fn commit_decision(&self, change: Change, f: &Finding, how: &str) -> Result<Reply> {
        match self.commit(change).await {
            Ok(_) => {
                self.messages_committed().await;
                Ok(Reply::text(format!("Finding #{}: {how}.", f.id)))
            }
            Err(StoreError::Conflict) => Ok(Reply::text(format!(
                "Finding #{} was decided by someone else first.",
                f.id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The grant a missing finding is about, provisioned again.
    async fn reprovision_change(&self, f: &Finding) -> Result<Option<Change>> {
        let (Some(p), Some(app)) = (&f.person, &f.app) else {
            return Ok(None);
        };
        let Some(a) = self.org.app(app) else {
            return Ok(None);
        };
        let g = self
            .store
            .grants_of(p)
            .await?
            .into_iter()
            .find(|g| &g.app == app && g.state == GrantState::Active);
        Ok(g.map(|g| Change {
            new_actions: vec![NewAction {
                connector: a.connector.clone(),
                op: ActionOp::Grant,
                person: p.clone(),
                app: Some(app.clone()),
                entitlement: Some(a.entitlement.clone()),
                grant: Some(GrantRef::Id(g.id)),
                request: match g.source {
                    GrantSource::Request(r) => ReqRef::Id(r),
                    GrantSource::Birthright => ReqRef::None,
                },
                at: self.clock.now(),
            }],
            ..Change::default()
        }))
    }

    /// An unrecorded membership recorded: a request (granted at once, its reason the
    /// adoption's) and its active grant, ending `until` when given.
    fn adopt_change(
        &self,
        f: &Finding,
        until: Option<&str>,
        reason: &str,
        now: Timestamp,
    ) -> Result<std::result::Result<Change, String>> {
        let (Some(p), Some(app)) = (&f.person, &f.app) else {
            return Ok(Err(
                "Only a membership of a known person can be adopted.".into()
            ));
        };
        let ends = match until {
            None => None,
            Some(u) => match Span::parse(u) {
                Ok(s) if s <= self.org.workflow.max_duration => Some(s.after(now)),
                Ok(_) => {
                    return Ok(Err(format!(
                        "Longer than the ceiling ({}).",
                        self.org.workflow.max_duration
                    )));
                }
                Err(_) => match chrono::NaiveDate::parse_from_str(u, "%Y-%m-%d") {
                    Ok(d) => d.and_hms_opt(23, 59, 59).map(|t| t.and_utc()),
                    Err(_) => {
                        return Ok(Err(format!(
                            "\"{u}\" is not a duration (30d) or a date (2027-03-31)."
                        )));
                    }
                },
            },
        };
        if ends.is_some_and(|e| e <= now) {
            return Ok(Err("That end is in the past.".into()));
        }
        Ok(Ok(Change {
            new_request: Some(NewRequest {
                requester: p.clone(),
                app: app.clone(),
                reason: Some(format!("adopted from drift finding {}: {reason}", f.id)),
                duration: None,
                kind: RequestKind::New,
                state: RequestState::Granted,
                steps: Vec::new(),
                grant: Some(GrantRef::New(0)),
                created_at: now,
            }),
            new_grants: vec![NewGrant {
                person: p.clone(),
                app: app.clone(),
                source: NewGrantSource::Request(ReqRef::New),
                state: GrantState::Active,
                granted_at: Some(now),
                expires_at: ends,
            }],
            ..Change::default()
        }))
    }
}

/// The form a decision needs before it can go on (Adopt: until and why; Ignore: why;
/// Service account: its owner), unless the submitted `fields` hold it.
fn drift_form(
    custom_id: &str,
    f: &Finding,
    action: DriftAction,
    fields: Option<&HashMap<String, String>>,
) -> Option<Form> {
    let has = |k: &str| {
        fields
            .and_then(|m| m.get(k))
            .is_some_and(|v| !v.trim().is_empty())
    };
    let line = |id: &str, label: &str, required: bool| FormField {
        id: id.into(),
        label: label.into(),
        value: None,
        required,
        max_len: 100,
        long: false,
        hint: None,
    };
    let title = format!("Finding #{}", f.id);
    match action {
        DriftAction::Adopt if !has("reason") => Some(Form {
            custom_id: custom_id.into(),
            title,
            fields: vec![
                line("until", "Until (30d or 2027-03-31; empty: no end)", false),
                FormField::reason("Why this access is right"),
            ],
        }),
        DriftAction::Ignore if !has("reason") => Some(Form::one(
            custom_id,
            title,
            FormField::reason("Why it can be ignored for 30 days"),
        )),
        DriftAction::Service if !has("owner") => Some(Form {
            custom_id: custom_id.into(),
            title,
            fields: vec![line("owner", "Owner (a handle)", true)],
        }),
        _ => None,
    }
}

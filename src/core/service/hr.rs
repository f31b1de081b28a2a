//! Joiners, movers and leavers from the HR feed (`POST /hr/events`) and from bulk imports
//! (`quartermaster import people`). HR is the authority: nothing here waits for a Confirm.

use super::lifecycle::{Initiator, PersonOutcome, PersonRefused, PlanDetail, RecordRefusal};
use super::*;
use crate::core::render::lifecycle::people::{self, HrLeave};

/// What an HR event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HrKind {
    /// A joiner: provisioned at once (a hire for an existing handle updates it).
    Hire,
    /// A mover: new role, department or manager.
    Change,
    /// A leaver: offboarded at `effective_at`, else at the end of `last_day`, else at once.
    Leave,
}

impl HrKind {
    /// Reads the wire name (`hire`, `change`, `leave`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hire" => Some(Self::Hire),
            "change" => Some(Self::Change),
            "leave" => Some(Self::Leave),
            _ => None,
        }
    }
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Hire => "hire",
            Self::Change => "change",
            Self::Leave => "leave",
        }
    }
}

/// One HR event, decoded and checked by the adapter.
#[derive(Debug, Clone)]
pub struct HrEvent {
    /// The sender's event id (a repeated id changes nothing).
    pub id: String,
    /// What happened.
    pub kind: HrKind,
    /// The whole person record (status is ignored: HR says who works here by the kind).
    pub person: Person,
    /// A leaver's last day (access ends at 23:59:59 that day in the leaver's time zone).
    pub last_day: Option<chrono::NaiveDate>,
    /// The exact moment a leave takes effect, when given (wins over `last_day`).
    pub effective_at: Option<Timestamp>,
}

/// The answer to an HR event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HrOutcome {
    /// Stored and acted on; the text says what was done.
    Accepted(String),
    /// The event id was seen before; nothing changed.
    Duplicate,
}

/// Why an HR event was not acted on.
#[derive(Debug, thiserror::Error)]
pub enum HrError {
    /// The event does not fit the directory or the catalog (unknown person, role, manager…).
    #[error("{0}")]
    Unprocessable(RecordRefusal),
    /// An internal failure.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<PersonRefused> for HrError {
    fn from(e: PersonRefused) -> Self {
        match e {
            PersonRefused::Invalid(m) => Self::Unprocessable(m),
            PersonRefused::Service(s) => Self::Service(s),
        }
    }
}

impl From<StoreError> for HrError {
    fn from(e: StoreError) -> Self {
        Self::Service(e.into())
    }
}

/// Where a person record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordSource {
    /// The HR feed.
    Hr,
    /// `quartermaster import people`.
    Import,
    /// The identity provider over inbound SCIM.
    Scim,
}

impl Service {
    /// Acts on an HR event: a hire or change drives the same plans as `/onboard` and `/role`
    /// (without confirmation), a leave schedules or runs the offboarding. A repeated event id
    /// changes nothing.
    pub async fn hr_event(&self, ev: HrEvent) -> Result<HrOutcome, HrError> {
        // Before anything logs or stores the id or the record.
        validate::event_id(&ev.id)
            .map_err(|e| HrError::Unprocessable(RecordRefusal::EventId(e)))?;
        validate::person(&ev.person)
            .map_err(|e| HrError::Unprocessable(RecordRefusal::EventField(e)))?;
        let span = info_span!("hr_event", event_id = %ev.id, kind = ev.kind.as_str(), subject = %ev.person.handle);
        async {
            let existing = self.store.person(&ev.person.handle).await?;
            if ev.kind != HrKind::Hire && existing.is_none() {
                return Err(HrError::Unprocessable(RecordRefusal::NoSuchPerson(
                    ev.person.handle.clone(),
                )));
            }
            if ev.kind != HrKind::Leave {
                self.check_record(&ev.person).await?;
            }
            if self.store.hr_event_seen(&ev.id).await? {
                self.resume_after_replay(&ev).await?;
                return Ok(HrOutcome::Duplicate);
            }
            // The event id is recorded in the same transaction as the work it causes: a
            // crash before that commit leaves nothing behind, and the sender's retry (the
            // same id: it never got an answer) runs it in full.
            let ev = &ev;
            self.retry_on_conflict(&format!("HR event {}", ev.id), || async move {
                let now = self.clock.now();
                let received = self
                    .audit(AuditAction::HrEventReceived)
                    .by(Actor::Hr)
                    .subject(&ev.person.handle)
                    .detail(format!("event {} ({})", ev.id, ev.kind.as_str()));
                let intake = Change {
                    hr_event: Some((ev.id.clone(), now)),
                    audit: vec![received],
                    ..Change::default()
                };
                let result = match ev.kind {
                    HrKind::Hire | HrKind::Change => self
                        .person_record_with(RecordSource::Hr, ev.person.clone(), intake)
                        .await
                        .map(|o| people::hr_person(&o))
                        .map_err(HrError::from),
                    HrKind::Leave => self
                        .hr_leave(ev, now, intake)
                        .await
                        .map(|l| people::hr_leave(&l)),
                };
                match result {
                    Ok(text) => Ok(Attempt::Done(HrOutcome::Accepted(text))),
                    Err(HrError::Service(ServiceError::Store(StoreError::Conflict))) => {
                        // Another delivery of this id committed first, or a record we read
                        // changed under us: look again.
                        if self.store.hr_event_seen(&ev.id).await? {
                            return Ok(Attempt::Done(HrOutcome::Duplicate));
                        }
                        Ok(Attempt::Conflict)
                    }
                    Err(e) => Err(e),
                }
            })
            .await
        }
        .instrument(span)
        .await
    }

    /// Checks a joiner's or mover's record against the catalog and the directory.
    pub(super) async fn check_record(&self, p: &Person) -> Result<(), PersonRefused> {
        self.check_record_knowing(p, None).await
    }

    /// [`Service::check_record`], with who holds an e-mail address when already read (used
    /// when it is the record's).
    pub(super) async fn check_record_knowing(
        &self,
        p: &Person,
        known: Option<(Email, Option<Person>)>,
    ) -> Result<(), PersonRefused> {
        use RecordRefusal as R;
        let invalid = |r: RecordRefusal| Err(PersonRefused::Invalid(r));
        validate::person(p).map_err(|e| PersonRefused::Invalid(R::Field(e)))?;
        if self.org.role(&p.role).is_none() {
            let names = self.org.roles.iter().map(|r| r.name.as_str());
            return invalid(R::NoRole {
                role: p.role.clone(),
                suggestion: suggest::did_you_mean(p.role.as_str(), names).map(str::to_owned),
            });
        }
        // Only the people this record names are read, not the whole directory.
        if let Some(m) = &p.manager {
            if m == &p.handle {
                return invalid(R::OwnManager);
            }
            if self.store.person(m).await?.is_none() {
                return invalid(R::NoManager(m.clone()));
            }
            // The chain above the new manager, read one person at a time.
            let mut ups: HashMap<Handle, Option<Handle>> = HashMap::new();
            let mut cur = m.clone();
            while cur != p.handle
                && !ups.contains_key(&cur)
                && ups.len() <= validate::MAX_MANAGER_CHAIN
            {
                let next = self.store.person(&cur).await?.and_then(|x| x.manager);
                ups.insert(cur.clone(), next.clone());
                match next {
                    Some(n) => cur = n,
                    None => break,
                }
            }
            validate::manager_cycle(&p.handle, Some(m), |x| ups.get(x).cloned().flatten())
                .map_err(|e| PersonRefused::Invalid(R::Field(e)))?;
        }
        let holder = match known {
            Some((email, holder)) if email == p.email => holder,
            _ => self.store.person_by_email(&p.email).await?,
        };
        if let Some(other) = holder
            && other.handle != p.handle
        {
            return invalid(R::EmailTaken {
                email: p.email.clone(),
                holder: other.handle,
            });
        }
        if let Some(d) = &p.discord_id
            && let Some(other) = self.store.person_by_discord_id(d).await?
            && other.handle != p.handle
        {
            return invalid(R::DiscordTaken {
                discord_id: d.clone(),
                holder: other.handle,
            });
        }
        Ok(())
    }

    /// A joiner or mover from HR or an import: a new (or returning) person is created and
    /// gets their birthrights; an existing one is moved (grants diffed, separately requested
    /// apps flagged for review, old and new manager told).
    pub async fn person_record(
        &self,
        source: RecordSource,
        p: Person,
    ) -> Result<PersonOutcome, PersonRefused> {
        self.person_record_with(source, p, Change::default()).await
    }

    /// [`Service::person_record`], committing `intake` (an HR event's replay record and
    /// audit rows) in the same transaction as the work.
    pub(super) async fn person_record_with(
        &self,
        source: RecordSource,
        mut p: Person,
        intake: Change,
    ) -> Result<PersonOutcome, PersonRefused> {
        self.check_record(&p).await?;
        let by = match source {
            RecordSource::Hr => Initiator::hr(),
            RecordSource::Import => Initiator::import(),
            RecordSource::Scim => Initiator::idp(),
        };
        let existing = self.store.person(&p.handle).await?;
        p.status = PersonStatus::Active;
        match existing {
            Some(old) if old.status == PersonStatus::Active => {
                if p.discord_id.is_none() {
                    p.discord_id = old.discord_id.clone();
                }
                if p.timezone.is_none() {
                    p.timezone = old.timezone;
                }
                self.update_person(&by, &old, p, intake).await
            }
            old => {
                if p.discord_id.is_none() {
                    p.discord_id = old.as_ref().and_then(|o| o.discord_id.clone());
                }
                if p.timezone.is_none() {
                    p.timezone = old.as_ref().and_then(|o| o.timezone);
                }
                let verb = if old.is_some() {
                    "re-activated"
                } else {
                    "created"
                };
                match self.set_up_joiner(&by, &p, verb, intake).await? {
                    Ok(_) => Ok(PersonOutcome::Hired(p.handle)),
                    Err(what) => Err(PersonRefused::Invalid(RecordRefusal::AlreadyUsed(what))),
                }
            }
        }
    }

    /// An active person's new record `p` (`old` as stored): unchanged (missing birthrights
    /// repaired), only the time zone changed, or a move.
    async fn update_person(
        &self,
        by: &Initiator,
        old: &Person,
        p: Person,
        intake: Change,
    ) -> Result<PersonOutcome, PersonRefused> {
        if old == &p {
            // "Unchanged" never hides missing birthrights (a hire cut short by a crash in an
            // older version, a birthright grant that failed): the joiner path queues what the
            // role and department give and is missing.
            if self.missing_birthrights(&p).await? {
                return match self.set_up_joiner(by, &p, "repaired", intake).await? {
                    Ok(_) => Ok(PersonOutcome::Repaired(p.handle)),
                    Err(what) => Err(PersonRefused::Invalid(RecordRefusal::AlreadyUsed(what))),
                };
            }
            if !intake.is_empty() {
                self.commit(intake).await?;
            }
            return Ok(PersonOutcome::Unchanged(p.handle));
        }
        let zone_only = &Person {
            timezone: old.timezone,
            ..p.clone()
        } == old;
        if zone_only && !self.missing_birthrights(&p).await? {
            // Only the time zone changed (and no birthright is missing): stored and
            // audited; no grants move and nobody is told of a role change.
            let name = |z: Option<Zone>| z.map_or("none", |z| z.name());
            let mut change = intake;
            change.audit.push(
                self.audit(AuditAction::PersonRoleChanged)
                    .by(by.actor.clone())
                    .chat(by.chat.as_deref())
                    .subject(&p.handle)
                    .detail(format!(
                        "time zone {} → {}",
                        name(old.timezone),
                        name(p.timezone)
                    )),
            );
            change.person = Some(p.clone());
            self.commit(change).await?;
            return Ok(PersonOutcome::Moved(p.handle));
        }
        self.carry_out_move(by, old, &p, None, intake).await?;
        Ok(PersonOutcome::Moved(p.handle))
    }

    /// An HR leave: offboarding at once, or a confirmed plan the scheduler runs on time (the
    /// path inbound SCIM's `leaver = "immediate"` shares: [`Service::leave_person`]).
    async fn hr_leave(
        &self,
        ev: &HrEvent,
        now: Timestamp,
        intake: Change,
    ) -> Result<HrLeave, HrError> {
        let Some(p) = self.store.person(&ev.person.handle).await? else {
            return Err(HrError::Unprocessable(RecordRefusal::NoSuchPerson(
                ev.person.handle.clone(),
            )));
        };
        // The last day ends in the leaver's zone: the event's, else the stored one, else
        // the organisation's.
        let zone = ev.person.timezone.unwrap_or_else(|| p.zone(&self.org));
        let due = ev
            .effective_at
            .or_else(|| ev.last_day.map(|d| zone.end_of_day(d)))
            .filter(|t| *t > now);
        let reason = format!("left (HR event {})", ev.id);
        Ok(self
            .leave_person(&Initiator::hr(), p, reason, due, now, intake)
            .await?)
    }

    /// A leaver the HR feed or the identity provider reports: offboarding at once (`due`
    /// None), or a confirmed plan the scheduler runs at `due`. The plan is stored with the
    /// intake (an HR event's replay record, a SCIM write), due now when the leave is
    /// immediate, so a crash before it runs leaves it to the scheduler or the sender's retry.
    pub(super) async fn leave_person(
        &self,
        by: &Initiator,
        p: Person,
        reason: String,
        due: Option<Timestamp>,
        now: Timestamp,
        intake: Change,
    ) -> Result<HrLeave> {
        if p.status == PersonStatus::Offboarded {
            self.commit(intake).await?;
            return Ok(HrLeave::AlreadyOffboarded(p.handle));
        }
        let mut change = intake;
        let told = self
            .leave_plan(&mut change, by, &reason, &p, due, now)
            .await;
        let id = self
            .store
            .commit(change)
            .await?
            .plan
            .ok_or_else(|| ServiceError::Inconsistent("no plan id".into()))?;
        let Some(plan) = self.store.plan(id).await? else {
            return Err(ServiceError::Inconsistent(format!("plan {id} vanished")));
        };
        if told {
            self.messages_committed().await;
        }
        if let Some(d) = due {
            return Ok(HrLeave::Scheduled {
                handle: p.handle,
                at: when(d),
            });
        }
        match self
            .carry_out_offboarding(
                by,
                &plan,
                Some(reason),
                Change {
                    start_plan: Some(id),
                    ..Change::default()
                },
                false,
            )
            .await
        {
            Ok(done) => Ok(HrLeave::Done(done)),
            Err(ServiceError::Store(StoreError::Conflict)) => Ok(HrLeave::Running(p.handle)),
            Err(e) => Err(e),
        }
    }

    /// Adds a leave's offboarding plan (confirmed, due at `due` or now) to `change` with its
    /// audit row and, when scheduled, IT's notice; whether IT is told.
    async fn leave_plan(
        &self,
        change: &mut Change,
        by: &Initiator,
        reason: &str,
        p: &Person,
        due: Option<Timestamp>,
        now: Timestamp,
    ) -> bool {
        let detail = PlanDetail {
            reason: Some(reason.to_owned()),
            hr: by.actor == Actor::Hr,
            idp: by.actor == Actor::Idp,
            ..PlanDetail::default()
        }
        .stored();
        let ev_row = self
            .audit(AuditAction::PlanProposed)
            .by(by.actor.clone())
            .subject(&p.handle)
            .detail(match due {
                Some(d) => format!("offboarding at {} ({})", when(d), by.name),
                None => format!("offboarding now ({})", by.name),
            });
        change.audit.push(ev_row);
        // A scheduled leave tells IT in the plan's own transaction (the store fills in the
        // plan's id).
        if let Some(d) = due {
            for a in &self.org.it_admins {
                change.plan_messages.push(PlanMessage {
                    to: a.clone(),
                    text: people::hr_scheduled(p, &self.when_for(a, d).await),
                    buttons: false,
                });
            }
        }
        change.new_plan = Some(NewPlan {
            kind: PlanKind::Offboard,
            subject: p.handle.clone(),
            created_by: p.handle.clone(),
            confirmers: Vec::new(),
            detail,
            created_at: now,
            due_at: Some(due.unwrap_or(now)),
            preconfirmed: true,
        });
        !change.plan_messages.is_empty()
    }

    /// A replayed HR event (its sender never heard the answer): whatever the event
    /// started and a crash cut short, an offboarding due now, is carried out.
    async fn resume_after_replay(&self, ev: &HrEvent) -> Result<(), HrError> {
        if ev.kind == HrKind::Leave {
            self.run_plans_of(&ev.person.handle).await?;
        }
        Ok(())
    }
}

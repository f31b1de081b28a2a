//! `/onboard`: a joiner (or a returning leaver) stored and their birthrights queued, as one
//! transaction with their onboarding plan; shared with the HR feed and imports.

use super::lifecycle::{Initiator, PlanDetail, refused};
use super::*;
use crate::core::render::lifecycle::{PlanRefusal, people};

impl Service {
    /// `/onboard` by an IT admin: creates (or re-activates) a person and grants their
    /// birthrights.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn onboard(
        &self,
        _admin: &policy::ItAdmin,
        c: &Caller,
        email: Email,
        name: String,
        role: RoleName,
        manager: Option<Handle>,
        department: Option<String>,
        handle: Option<Handle>,
        discord: Option<String>,
        timezone: Option<Zone>,
    ) -> Result<Reply> {
        if let Err(r) = self.role_or_suggest(&role) {
            return Ok(refused(&r));
        }
        let handle = match handle {
            Some(h) => h,
            None => match Handle::parse(&email.local_part().to_lowercase()) {
                Ok(h) => h,
                Err(e) => return Ok(refused(&PlanRefusal::BadHandle(e.to_string()))),
            },
        };
        let dir = self.directory().await?;
        if let Some(clash) = self
            .onboard_clash(
                &dir,
                &email,
                &handle,
                &role,
                manager.as_ref(),
                discord.as_ref(),
            )
            .await?
        {
            return Ok(refused(&clash));
        }
        let existing = dir.get(&handle);
        let department = department
            .or_else(|| existing.map(|p| p.department.clone()))
            .or_else(|| {
                manager
                    .as_ref()
                    .and_then(|m| dir.get(m))
                    .map(|m| m.department.clone())
            })
            .unwrap_or_default();
        let person = Person {
            handle: handle.clone(),
            name,
            email,
            department,
            role,
            manager,
            discord_id: discord.or_else(|| existing.and_then(|p| p.discord_id.clone())),
            status: PersonStatus::Active,
            timezone: timezone.or_else(|| existing.and_then(|p| p.timezone)),
        };
        if let Err(e) = valid_joiner(&dir, &person) {
            return Ok(refused(&PlanRefusal::InvalidJoiner(e.to_string())));
        }
        let verb = if existing.is_some() {
            "updated"
        } else {
            "created"
        };
        let set_up = self
            .set_up_joiner(&Initiator::caller(c), &person, verb, Change::default())
            .await?;
        Ok(onboarded_reply(&person, verb, set_up))
    }

    /// Why `/onboard` with these values would clash with the directory (an unknown manager,
    /// a person already here, an email, Discord account or handle someone else has), if so.
    async fn onboard_clash(
        &self,
        dir: &PeopleByHandle,
        email: &Email,
        handle: &Handle,
        role: &RoleName,
        manager: Option<&Handle>,
        discord: Option<&String>,
    ) -> Result<Option<PlanRefusal>> {
        if let Some(m) = manager
            && !dir.contains_key(m)
        {
            return Ok(Some(PlanRefusal::NoManager(m.clone())));
        }
        // /onboard adds people; it never changes one (a move is a /role plan, confirmed).
        if let Some(p) = dir
            .values()
            .find(|p| p.status == PersonStatus::Active && &p.email == email)
        {
            return Ok(Some(PlanRefusal::AlreadyHere {
                name: p.name.clone(),
                handle: p.handle.clone(),
                email: p.email.clone(),
                role: role.clone(),
            }));
        }
        if let Some(other) = dir
            .values()
            .find(|p| &p.email == email && &p.handle != handle)
        {
            return Ok(Some(PlanRefusal::EmailTaken {
                email: email.clone(),
                name: other.name.clone(),
                handle: other.handle.clone(),
            }));
        }
        if let Some(d) = discord
            && let Some(other) = self.store.person_by_discord_id(d).await?
            && &other.handle != handle
        {
            return Ok(Some(PlanRefusal::DiscordTaken {
                name: other.name,
                handle: other.handle,
            }));
        }
        if let Some(p) = dir.get(handle)
            && &p.email != email
        {
            return Ok(Some(PlanRefusal::HandleTaken {
                handle: handle.clone(),
                name: p.name.clone(),
                email: p.email.clone(),
            }));
        }
        Ok(None)
    }

    /// Stores a joiner (or re-activates / updates a person) and queues every birthright they
    /// do not hold; the welcome summary follows once those actions have settled. The person,
    /// their started onboarding plan, the grants, the actions and the audit rows are one
    /// transaction, with whatever `base` holds (an HR event's replay record). Returns the
    /// apps being set up (by name), or the value that clashes with someone else's.
    pub(super) async fn set_up_joiner(
        &self,
        by: &Initiator,
        person: &Person,
        verb: &str,
        base: Change,
    ) -> Result<std::result::Result<Vec<String>, String>> {
        let handle = &person.handle;
        let mut change = base;
        change.audit.push(
            self.audit(AuditAction::PersonOnboarded)
                .by(by.actor.clone())
                .chat(by.chat.as_deref())
                .subject(handle)
                .detail(format!("{verb}; role {}", person.role)),
        );
        let held = self.store.grants_of(handle).await?;
        let apps = self.org.birthrights(&person.role, &person.department);
        let before = change.new_grants.len();
        self.birthright_grants(&mut change, person, &held, &apps);
        let queued: Vec<AppName> = change.new_grants[before..]
            .iter()
            .map(|g| g.app.clone())
            .collect();
        let list: Vec<String> = queued.iter().map(|a| self.app_display(a)).collect();
        let detail = PlanDetail {
            hr: by.actor == Actor::Hr,
            idp: by.actor == Actor::Idp,
            apps: apps.iter().map(ToString::to_string).collect(),
            ..PlanDetail::default()
        }
        .stored();
        let now = self.clock.now();
        change.person = Some(person.clone());
        change.new_plan = Some(NewPlan {
            kind: PlanKind::Onboard,
            subject: handle.clone(),
            created_by: by.handle.clone().unwrap_or_else(|| handle.clone()),
            confirmers: Vec::new(),
            detail,
            created_at: now,
            due_at: None,
            preconfirmed: true,
        });
        change.start_new_plan = true;
        match self.commit(change).await {
            Ok(_) => {}
            Err(StoreError::Duplicate(what)) => return Ok(Err(what)),
            Err(e) => return Err(e.into()),
        }
        self.maybe_report_onboarding(handle).await?;
        Ok(Ok(list))
    }

    /// True when an active person lacks a birthright their role and department give (no
    /// live grant of it) and no open plan of theirs explains it.
    pub(super) async fn missing_birthrights(&self, p: &Person) -> Result<bool> {
        let held = self.store.grants_of(&p.handle).await?;
        let missing = self
            .org
            .birthrights(&p.role, &p.department)
            .iter()
            .any(|a| self.org.app(a).is_some() && !held.iter().any(|g| &g.app == a));
        if !missing {
            return Ok(false);
        }
        let open = self
            .store
            .plans_of(&p.handle)
            .await?
            .iter()
            .any(|plan| plan.state == PlanState::Open);
        Ok(!open)
    }
}

/// The answer to `/onboard`: what is being set up, or the value someone else already uses.
fn onboarded_reply(
    person: &Person,
    verb: &str,
    set_up: std::result::Result<Vec<String>, String>,
) -> Reply {
    match set_up {
        Ok(apps) => Reply::text(people::onboarded(person, verb, &apps)),
        Err(what) => refused(&PlanRefusal::AlreadyUsed {
            name: person.name.clone(),
            what,
        }),
    }
}

/// A joiner's record checked on its own and for a manager cycle in the directory.
fn valid_joiner(
    dir: &PeopleByHandle,
    person: &Person,
) -> std::result::Result<(), validate::Invalid> {
    validate::person(person).and_then(|()| {
        validate::manager_cycle(&person.handle, person.manager.as_ref(), |x| {
            dir.get(x).and_then(|p| p.manager.clone())
        })
    })
}

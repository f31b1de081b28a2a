//! Inbound SCIM (`/scim/v2/`): the identity provider's reads and writes of Users and Groups.
//! A write is worked out in memory first (a PATCH that fails half-way changes nothing), then
//! committed with the lifecycle change it causes in one transaction; what a user's change
//! means for the person (joiner, mover, leaver) is in `scim_lifecycle`, on the path the HR
//! feed takes.

use serde_json::Value;

use super::lifecycle::{PersonRefused, RecordRefusal};
use super::*;
use crate::core::scim::filter::Filter;
use crate::core::scim::resource::{self as wire_form, GroupRef};
use crate::core::scim::{
    ScimError, ScimKind, ScimResource, ScimSettings, ScimType, ScimWrite, mapping, patch,
};

/// Why a SCIM request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ScimFailure {
    /// The request broke the protocol or the mapping (the status and `scimType` say how).
    #[error("{0}")]
    Protocol(ScimError),
    /// An internal failure.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<ScimError> for ScimFailure {
    fn from(e: ScimError) -> Self {
        Self::Protocol(e)
    }
}

impl From<StoreError> for ScimFailure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(_) => {
                Self::Protocol(ScimError::uniqueness("a unique value is someone else's"))
            }
            e => Self::Service(e.into()),
        }
    }
}

impl From<PersonRefused> for ScimFailure {
    fn from(e: PersonRefused) -> Self {
        match e {
            PersonRefused::Invalid(
                r @ (RecordRefusal::EmailTaken { .. }
                | RecordRefusal::DiscordTaken { .. }
                | RecordRefusal::AlreadyUsed(_)),
            ) => Self::Protocol(ScimError::uniqueness(r.to_string())),
            PersonRefused::Invalid(r) => {
                Self::Protocol(ScimError::bad(ScimType::InvalidValue, r.to_string()))
            }
            PersonRefused::Service(s) => Self::Service(s),
        }
    }
}

/// A list request: filter, 1-based `startIndex`, `count`.
#[derive(Debug, Clone)]
pub struct ScimQuery {
    /// The parsed filter.
    pub filter: Option<Filter>,
    /// 1-based index of the first result.
    pub start: usize,
    /// How many results at most.
    pub count: usize,
}

/// What a write does.
#[derive(Debug, Clone, Copy)]
pub enum ScimChange<'a> {
    /// POST.
    Create(&'a Value),
    /// PUT.
    Replace(&'a Value),
    /// PATCH (a PatchOp message).
    Patch(&'a Value),
    /// DELETE.
    Delete,
}

impl ScimChange<'_> {
    fn verb(&self) -> &'static str {
        match self {
            Self::Create(_) => "created",
            Self::Replace(_) => "replaced",
            Self::Patch(_) => "patched",
            Self::Delete => "deleted",
        }
    }
}

/// A new resource id: 128 bits from the moment, the process and a counter, hashed, written
/// as a UUID.
fn new_id(kind: ScimKind, name: &str) -> String {
    use sha2::Digest;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let h = sha2::Sha256::digest(format!(
        "{}|{name}|{t}|{}|{n}",
        kind.as_str(),
        std::process::id()
    ));
    let x = hex::encode(&h[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

impl Service {
    /// With inbound SCIM's mapping and modes (`[scim_server]`).
    #[must_use]
    pub fn with_scim(mut self, s: ScimSettings) -> Self {
        self.scim = s;
        self
    }

    /// The groups a user is a member of.
    pub async fn scim_groups(&self, r: &ScimResource) -> Result<Vec<GroupRef>, ScimFailure> {
        // Read with the resource (a user's write leaves them as they were).
        Ok(r.groups.clone())
    }

    /// A resource by id, in its wire form (`base` is the service's URL).
    pub async fn scim_get(
        &self,
        kind: ScimKind,
        id: &str,
        base: &str,
    ) -> Result<(ScimResource, Value), ScimFailure> {
        let r = self
            .store
            .scim_resource(kind, id)
            .await?
            .ok_or_else(|| ScimError::not_found(kind, id))?;
        let groups = self.scim_groups(&r).await?;
        let w = wire_form::wire(&r, base, &groups);
        Ok((r, w))
    }

    /// The resources a query selects, in their wire forms, with how many match in all.
    /// A filter that pins `id`, `userName` (`displayName`) or `externalId` with `eq` reads
    /// by index; any other reads every resource of the kind.
    pub async fn scim_search(
        &self,
        kind: ScimKind,
        q: &ScimQuery,
        base: &str,
    ) -> Result<(usize, Vec<Value>), ScimFailure> {
        let skip = q.start.saturating_sub(1);
        let Some(f) = &q.filter else {
            let (total, page) = self.store.scim_page(kind, skip, q.count).await?;
            let mut out = Vec::with_capacity(page.len());
            for r in &page {
                out.push(wire_form::wire(r, base, &self.scim_groups(r).await?));
            }
            return Ok((total, out));
        };
        let name_attr = match kind {
            ScimKind::User => "userName",
            ScimKind::Group => "displayName",
        };
        let candidates = if let Some(id) = f.pinned("id") {
            self.store
                .scim_resource(kind, id)
                .await?
                .into_iter()
                .collect()
        } else if let Some(n) = f.pinned(name_attr) {
            self.store.scim_by_name(kind, n).await?
        } else if let Some(x) = f.pinned("externalId") {
            self.store.scim_by_external_id(kind, x).await?
        } else {
            self.store.scim_all(kind).await?
        };
        let with_groups = kind == ScimKind::User && f.mentions("groups");
        let mut hits = Vec::new();
        for r in &candidates {
            let groups = if with_groups {
                self.scim_groups(r).await?
            } else {
                Vec::new()
            };
            let w = wire_form::wire(r, base, &groups);
            if f.matches(&w) {
                hits.push((r, w));
            }
        }
        let total = hits.len();
        let mut out = Vec::new();
        for (r, w) in hits.into_iter().skip(skip).take(q.count) {
            if with_groups || kind == ScimKind::Group {
                out.push(w);
            } else {
                out.push(wire_form::wire(r, base, &self.scim_groups(r).await?));
            }
        }
        Ok((total, out))
    }

    /// Carries out a write of the identity provider's (`id` None for a POST), checked against
    /// `If-Match` when given; the resource as it now stands (None after a DELETE).
    pub async fn scim_write(
        &self,
        kind: ScimKind,
        id: Option<&str>,
        how: ScimChange<'_>,
        if_match: Option<&str>,
    ) -> Result<Option<ScimResource>, ScimFailure> {
        let span = info_span!(
            "scim_write",
            kind = kind.as_str(),
            id = id.unwrap_or("new"),
            op = how.verb()
        );
        async {
            let what = format!("SCIM {} {}", kind.as_str(), id.unwrap_or("new"));
            // The id of a POST is chosen once, so a retried attempt creates the same resource.
            let fresh = match how {
                ScimChange::Create(b) => Some(new_id(kind, &b.to_string())),
                _ => None,
            };
            // A POST first leaves its userName's and handle's uniqueness to the database's
            // unique indexes (no read before it); when they refuse it, it is tried again with
            // the read, whose answer names what is taken.
            let mut checked = fresh.is_none();
            loop {
                let done = self
                    .retry_on_conflict(&what, || async {
                        match self
                            .scim_attempt(kind, id, fresh.as_deref(), how, if_match, checked)
                            .await
                        {
                            Err(ScimFailure::Service(ServiceError::Store(
                                StoreError::Conflict,
                            ))) => Ok(Attempt::Conflict),
                            Err(e) => Err(e),
                            Ok(r) => Ok(Attempt::Done(r)),
                        }
                    })
                    .await;
                let refused = match &done {
                    Err(ScimFailure::Protocol(e)) => e.scim_type == Some(ScimType::Uniqueness),
                    Err(ScimFailure::Service(ServiceError::Store(StoreError::Duplicate(_)))) => {
                        true
                    }
                    _ => false,
                };
                if checked || !refused {
                    return done;
                }
                checked = true;
            }
        }
        .instrument(span)
        .await
    }

    /// One read-decide-commit of [`Service::scim_write`] (`checked`: a user's userName and
    /// handle are read for their holders before the commit, not left to the unique indexes).
    async fn scim_attempt(
        &self,
        kind: ScimKind,
        id: Option<&str>,
        fresh: Option<&str>,
        how: ScimChange<'_>,
        if_match: Option<&str>,
        checked: bool,
    ) -> Result<Option<ScimResource>, ScimFailure> {
        let old = match id {
            None => None,
            Some(i) => Some(
                self.scim_read(kind, i)
                    .await?
                    .ok_or_else(|| ScimError::not_found(kind, i))?,
            ),
        };
        if let (Some(o), Some(m)) = (&old, if_match)
            && !crate::core::scim::if_match_admits(m, o.version)
        {
            return Err(ScimError::precondition(o.version).into());
        }
        let body = match how {
            ScimChange::Create(b) | ScimChange::Replace(b) => Some(patch::canonical_body(kind, b)?),
            ScimChange::Patch(msg) => {
                let mut b = old.as_ref().map(|o| o.body.clone()).unwrap_or_default();
                patch::apply(kind, &mut b, msg)?;
                Some(b)
            }
            ScimChange::Delete => None,
        };
        let new = match body {
            None => None,
            Some(b) => Some(
                self.scim_resource_of(kind, old.as_ref(), fresh, b, checked)
                    .await?,
            ),
        };
        // A write that leaves the resource as it was (a retried PUT, a replace with the value
        // it holds) changes nothing: no new version, no audit row.
        if let (Some(n), Some(o)) = (&new, &old)
            && n.body == o.body
            && n.name == o.name
        {
            return Ok(Some(o.clone()));
        }
        let write = match (&new, &old) {
            (Some(n), o) => ScimWrite::Put {
                resource: n.clone(),
                expected: o.as_ref().map(|o| o.version),
                same_keys: o.as_ref().is_some_and(|o| {
                    (&o.name, &o.external_id, &o.handle, o.active)
                        == (&n.name, &n.external_id, &n.handle, n.active)
                }),
            },
            (None, Some(o)) => ScimWrite::Delete {
                kind,
                id: o.id.clone(),
                expected: o.version,
            },
            (None, None) => return Ok(None),
        };
        let intake = Change {
            scim: vec![write],
            audit: vec![self.scim_audit(kind, &how, new.as_ref().or(old.as_ref()))],
            ..Change::default()
        };
        match kind {
            ScimKind::User => {
                self.scim_user_lifecycle(old.as_ref(), new.as_ref(), intake)
                    .await?
            }
            ScimKind::Group => {
                self.scim_group_written(old.as_ref(), new.as_ref(), intake)
                    .await?
            }
        }
        Ok(new)
    }

    /// The audit row of a write.
    fn scim_audit(
        &self,
        kind: ScimKind,
        how: &ScimChange<'_>,
        r: Option<&ScimResource>,
    ) -> AuditEvent {
        use AuditAction as A;
        let action = match (kind, how) {
            (ScimKind::User, ScimChange::Create(_)) => A::ScimUserCreated,
            (ScimKind::User, ScimChange::Delete) => A::ScimUserDeleted,
            (ScimKind::User, _) => A::ScimUserUpdated,
            (ScimKind::Group, ScimChange::Create(_)) => A::ScimGroupCreated,
            (ScimKind::Group, ScimChange::Delete) => A::ScimGroupDeleted,
            (ScimKind::Group, _) => A::ScimGroupUpdated,
        };
        let mut ev = self.audit(action).by(Actor::Idp);
        if let Some(r) = r {
            if let Some(h) = &r.handle {
                ev = ev.subject(h);
            }
            ev = ev.detail(format!(
                "{} {} ({}, version {})",
                kind.as_str(),
                r.id,
                r.name,
                r.version
            ));
        }
        ev
    }

    /// Checks that a user's userName (when `check_name`) is nobody else's and, when
    /// `map_handle`, maps the user to a handle nobody else has (one read for both; none
    /// unless `checked`, leaving both to the unique indexes); the handle mapped.
    async fn scim_user_free(
        &self,
        id: &str,
        name: &str,
        check_name: bool,
        body: &Value,
        map_handle: bool,
        checked: bool,
    ) -> Result<Option<Handle>, ScimFailure> {
        let mapped = map_handle.then(|| mapping::handle_of(&self.scim, body));
        let h = mapped.as_ref().and_then(|m| m.as_ref().ok());
        let holders = if checked && (check_name || h.is_some()) {
            self.store
                .scim_users_holding(check_name.then_some(name), h)
                .await?
        } else {
            Vec::new()
        };
        let key = name.to_lowercase();
        if check_name
            && holders
                .iter()
                .any(|t| t.name.to_lowercase() == key && t.id != id)
        {
            return Err(ScimError::uniqueness(format!("userName \"{name}\" is taken")).into());
        }
        let Some(mapped) = mapped else {
            return Ok(None);
        };
        let h = mapped?;
        if let Some(other) = holders
            .iter()
            .find(|t| t.handle.as_ref() == Some(&h) && t.id != id)
        {
            return Err(ScimError::uniqueness(format!(
                "this user maps to the handle {h}, which user {} has",
                other.name
            ))
            .into());
        }
        Ok(Some(h))
    }

    /// The stored resource a body makes: its name checked and unique (users; read unless
    /// `checked` is false), the handle of a new user mapped and free, the version moved on.
    async fn scim_resource_of(
        &self,
        kind: ScimKind,
        old: Option<&ScimResource>,
        fresh: Option<&str>,
        body: Value,
        checked: bool,
    ) -> Result<ScimResource, ScimFailure> {
        let name_attr = match kind {
            ScimKind::User => "userName",
            ScimKind::Group => "displayName",
        };
        let name = crate::core::scim::filter::get_ci(&body, name_attr)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ScimError::bad(ScimType::InvalidValue, format!("{name_attr} is required"))
            })?
            .to_owned();
        if name.chars().any(char::is_control) {
            return Err(ScimError::bad(
                ScimType::InvalidValue,
                format!("{name_attr} holds a control character"),
            )
            .into());
        }
        if name.len() > 256 {
            return Err(
                ScimError::bad(ScimType::InvalidValue, format!("{name_attr} is too long")).into(),
            );
        }
        let id = old
            .map(|o| o.id.clone())
            .or(fresh.map(str::to_owned))
            .unwrap_or_default();
        let mut handle = old.and_then(|o| o.handle.clone());
        if kind == ScimKind::User {
            // A userName is checked when it is new or changes (beyond its case).
            let renamed = old.is_none_or(|o| o.name.to_lowercase() != name.to_lowercase());
            let mapped = self
                .scim_user_free(&id, &name, renamed, &body, handle.is_none(), checked)
                .await?;
            handle = handle.or(mapped);
        }
        let now = self.clock.now();
        Ok(ScimResource {
            id,
            kind,
            external_id: crate::core::scim::filter::get_ci(&body, "externalId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            handle,
            active: kind == ScimKind::Group || mapping::active(&body),
            version: old.map_or(1, |o| o.version + 1),
            created: old.map_or(now, |o| o.created),
            modified: now,
            name,
            body,
            groups: old.map(|o| o.groups.clone()).unwrap_or_default(),
        })
    }
}

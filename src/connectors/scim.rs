//! The `scim` connector: a SCIM 2.0 service provider (RFC 7643/7644).
//!
//! People are Users whose `userName` is their email (matched case-insensitively), with
//! `externalId` our handle; an entitlement is the Group whose `displayName` equals it, created
//! when a grant first needs it. Every operation looks before it acts; a create is never re-sent
//! blindly — after a timeout the next attempt looks the user up first, and a 409 `uniqueness`
//! leads to a listing that finds the existing user (whatever the case of its `userName`) and
//! adopts it.
//!
//! What the provider can do is read once, when the connector first acts
//! ([`caps`]: `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`). Filters are used only
//! where supported, and an empty filter answer never proves absence: before anything is
//! reported gone (a revoke, a disable, the offboarding re-read) absence is confirmed by a read
//! that shows it — a paged listing matched here, `GET /Groups/{id}` with its members, or the
//! user's `groups`, where a search of the groups' members agrees with it — or the action fails
//! with "could not verify" ([`ConnectorError::Unverifiable`]).
//! A member removal is confirmed by reading the group (and the user's `groups`) again. The
//! groups a user is in come from a complete listing until a search of the groups' members
//! was seen to agree with one ([`search`]).
//!
//! Request forms a provider refuses (501, 405, 400 `invalidPath`/`invalidFilter`/
//! `invalidSyntax`/`noTarget`) switch to the next form, remembered per connector: a member
//! removal by `members[value eq "…"]`, then by `"path": "members", "value": [{…}]` (Entra's
//! form), then by PUT of the whole group (also used from the start when `patch.supported` is
//! false). `If-Match` is sent only where `etag.supported` is true; adding or removing a
//! group member carries none (the peer applies it to the group as it is). A group's id, once
//! found, is used for a minute; an id whose group is gone (404) is looked up afresh.

pub mod caps;
mod listing;
mod members;
mod reads;
mod search;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tracing::debug;

use super::outbound;
use crate::core::model::ActionOp;
use crate::core::ports::{
    Account, Connector, ConnectorError, Effect, Listed, Subject, apply_steps,
};
use caps::Caps;

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SCIM_JSON: &str = "application/scim+json";
/// How often an update is tried when the resource keeps changing under us (412).
const PRECONDITION_TRIES: usize = 4;
/// Most pages read in one listing (a guard against a peer that never ends).
const MAX_PAGES: usize = 10_000;
/// How long a group's id, once found, is used without looking the group up again.
const GROUP_ID_TTL: Duration = Duration::from_secs(60);
/// Locks that creations of one user take (a user's email picks one).
const CREATE_STRIPES: usize = 64;

/// A SCIM 2.0 target.
pub struct Scim {
    name: String,
    base: String,
    token: SecretString,
    http: reqwest::Client,
    page_size: usize,
    /// Held while a group is looked up and perhaps created, so that two grants running at
    /// once do not both create it (peers rarely enforce unique group names).
    group_lock: tokio::sync::Mutex<()>,
    /// Group ids by `displayName`, as last found or created, for [`GROUP_ID_TTL`]; an id
    /// whose group turns out to be gone is dropped and looked up again.
    group_ids: std::sync::Mutex<HashMap<String, (String, Instant)>>,
    /// Held while a grant creates its user: the grants of a new hire start together, and
    /// each would POST the user (one created, the others answered 409 and looked up again).
    /// Striped by e-mail; each stripe counts the creations tried under it, so a grant that
    /// looked the user up before another's creation finished looks again instead of POSTing.
    creating: Vec<tokio::sync::Mutex<()>>,
    /// Creations tried under each stripe of `creating`.
    creations: Vec<std::sync::atomic::AtomicU64>,
    /// What the provider says it can do, read when the connector first acts.
    caps: tokio::sync::OnceCell<Caps>,
    /// A filter on Users (on Groups) missed what a listing then showed: not used again.
    user_filter_lies: AtomicBool,
    group_filter_lies: AtomicBool,
    /// Whether a search of the groups' members may stand in for listing every group
    /// ([`search`]).
    member_search: AtomicU8,
    /// A read of a user was seen without `groups`: the provider does not serve them, so the
    /// re-read does not ask for the user again to find them.
    user_groups_unserved: AtomicBool,
    /// Which member-change and update forms the provider took or refused.
    forms: members::Forms,
}

impl std::fmt::Debug for Scim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scim")
            .field("name", &self.name)
            .field("base", &self.base)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

/// Whether a PATCH carries the ETag of the read before it.
#[derive(Clone, Copy)]
enum Guard {
    /// `If-Match`: the operation is only right for the state that was read (a `replace`).
    IfMatch,
    /// No precondition: the peer applies the operation to the resource as it is. Adding or
    /// removing one member value (RFC 7644 §3.5.2.1, §3.5.2.2) stays right whatever else
    /// changed in the group meanwhile, and with `If-Match` concurrent grants to one group
    /// turned into 412 retries (1,534 in 5,000 grants at 16 in flight).
    None,
}

/// A response the peer gave.
struct Reply {
    status: StatusCode,
    etag: Option<String>,
    body: Option<Value>,
}

/// A resource as read, with its version.
#[derive(Debug, Clone)]
struct Found {
    id: String,
    etag: Option<String>,
    body: Value,
}

/// What a lookup by name saw.
enum Lookup {
    /// There it is.
    Found(Found),
    /// Not there, by a read that shows everything (a complete listing).
    Absent,
    /// A filter found nothing: proves nothing (the peer may ignore the filter, or compare
    /// case-sensitively).
    NotShown,
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A SCIM boolean, also as Entra's `"True"`/`"False"` strings.
fn scim_bool(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn etag_of(body: &Value) -> Option<String> {
    body.pointer("/meta/version")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn found(body: Value, etag: Option<String>) -> Option<Found> {
    let id = body.get("id")?.as_str()?.to_owned();
    let etag = etag.or_else(|| etag_of(&body));
    Some(Found { id, etag, body })
}

fn is_member(group: &Value, user_id: &str) -> bool {
    group
        .get("members")
        .and_then(Value::as_array)
        .is_some_and(|m| {
            m.iter()
                .any(|x| x.get("value").and_then(Value::as_str) == Some(user_id))
        })
}

fn user_name_is(u: &Value, email: &str) -> bool {
    u.get("userName")
        .and_then(Value::as_str)
        .is_some_and(|n| n.eq_ignore_ascii_case(email))
}

fn display_name_is(g: &Value, name: &str) -> bool {
    g.get("displayName").and_then(Value::as_str) == Some(name)
}

fn changed(applied: bool) -> Effect {
    if applied {
        Effect::Applied
    } else {
        Effect::AlreadyInState
    }
}

impl Scim {
    /// A connector named `name` for the service provider at `base_url` (e.g.
    /// `https://api.example.com/scim/v2`), authenticating with a bearer token.
    pub fn new(
        name: impl Into<String>,
        base_url: &str,
        token: SecretString,
        page_size: usize,
        timeout: Duration,
    ) -> Result<Self, ConnectorError> {
        Ok(Self {
            name: name.into(),
            base: base_url.trim_end_matches('/').to_owned(),
            token,
            http: outbound::client(timeout)?,
            page_size: page_size.max(1),
            group_lock: tokio::sync::Mutex::new(()),
            group_ids: std::sync::Mutex::new(HashMap::new()),
            creating: (0..CREATE_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            creations: (0..CREATE_STRIPES)
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
            caps: tokio::sync::OnceCell::new(),
            user_filter_lies: AtomicBool::new(false),
            group_filter_lies: AtomicBool::new(false),
            member_search: AtomicU8::new(search::UNTRIED),
            user_groups_unserved: AtomicBool::new(false),
            forms: members::Forms::default(),
        })
    }

    /// Sends one request; any HTTP answer is returned, only transport failures are errors.
    async fn send(
        &self,
        what: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<(Reply, reqwest::header::HeaderMap, String), ConnectorError> {
        let url = format!("{}/{}", self.base, path);
        let mut rq = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(self.token.expose_secret())
            .header(reqwest::header::ACCEPT, SCIM_JSON);
        if !query.is_empty() {
            rq = rq.query(query);
        }
        if let Some(b) = body {
            rq = rq
                .header(reqwest::header::CONTENT_TYPE, SCIM_JSON)
                .body(b.to_string());
        }
        if let Some(tag) = if_match {
            rq = rq.header(reqwest::header::IF_MATCH, tag);
        }
        let resp = rq
            .send()
            .await
            .map_err(|e| outbound::transport_error(what, &e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp
            .text()
            .await
            .map_err(|e| outbound::transport_error(what, &e))?;
        debug!(connector = %self.name, %method, path, status = status.as_u16(), "scim call");
        let etag = headers
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = if text.trim().is_empty() {
            None
        } else {
            serde_json::from_str(&text).ok()
        };
        Ok((Reply { status, etag, body }, headers, text))
    }

    /// The error for a non-2xx answer (the token removed from its text).
    fn failure(
        &self,
        what: &str,
        reply: &Reply,
        headers: &reqwest::header::HeaderMap,
        text: &str,
    ) -> ConnectorError {
        let secret = self.token.expose_secret();
        let e =
            outbound::status_error(what, reply.status, headers, text, SystemTime::now(), secret);
        outbound::redact_error(e, secret)
    }

    /// Sends one request and maps any non-2xx answer to an error.
    async fn call(
        &self,
        what: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Reply, ConnectorError> {
        let (reply, headers, text) = self.send(what, method, path, query, body, if_match).await?;
        if reply.status.is_success() {
            Ok(reply)
        } else {
            Err(self.failure(what, &reply, &headers, &text))
        }
    }

    /// Like [`Scim::call`], but `Ok(None)` when the provider refuses the form of the request
    /// ([`caps::form_refused`]: 501, 405, 400 `invalidPath`…), so that the next form is tried.
    async fn call_form(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Option<Reply>, ConnectorError> {
        let (reply, headers, text) = self.send(what, method, path, &[], body, if_match).await?;
        if reply.status.is_success() {
            Ok(Some(reply))
        } else if caps::form_refused(reply.status.as_u16(), &text) {
            let e = self.failure(what, &reply, &headers, &text);
            debug!(connector = %self.name, what, error = %e, "request form refused; next form");
            Ok(None)
        } else {
            Err(self.failure(what, &reply, &headers, &text))
        }
    }

    /// The id of group `name` as remembered, if found less than [`GROUP_ID_TTL`] ago.
    fn remembered_group(&self, name: &str) -> Option<String> {
        let ids = self.group_ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.get(name)
            .filter(|(_, at)| at.elapsed() < GROUP_ID_TTL)
            .map(|(id, _)| id.clone())
    }

    fn remember_group(&self, name: &str, id: &str) {
        let mut ids = self.group_ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.insert(name.to_owned(), (id.to_owned(), Instant::now()));
    }

    fn forget_group(&self, name: &str) {
        let mut ids = self.group_ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.remove(name);
    }

    /// The id of group `name` (created when missing and `create`), and whether it came from
    /// memory rather than from the peer just now (a remembered id may be stale). `None` only
    /// when a complete listing shows no such group.
    async fn group_id(
        &self,
        name: &str,
        create: bool,
    ) -> Result<Option<(String, bool)>, ConnectorError> {
        if let Some(id) = self.remembered_group(name) {
            return Ok(Some((id, true)));
        }
        let id = if create {
            Some(self.ensure_group(name).await?)
        } else {
            self.find_group(name).await?.map(|g| g.id)
        };
        if let Some(id) = &id {
            self.remember_group(name, id);
        }
        Ok(id.map(|id| (id, false)))
    }

    /// The group `name`, created when missing (a 409 means it exists: it is then found by
    /// the complete listing).
    async fn ensure_group(&self, name: &str) -> Result<String, ConnectorError> {
        let _one_at_a_time = self.group_lock.lock().await;
        // Another grant may have found or made it while this one waited for the lock.
        if let Some(id) = self.remembered_group(name) {
            return Ok(id);
        }
        if let Lookup::Found(g) = self.lookup_group(name).await? {
            return Ok(g.id);
        }
        let body = json!({ "schemas": [GROUP_SCHEMA], "displayName": name });
        match self
            .call(
                "create group",
                Method::POST,
                "Groups",
                &[],
                Some(&body),
                None,
            )
            .await
        {
            Ok(r) => {
                if let Some(id) = r.body.as_ref().and_then(|b| b.get("id")?.as_str()) {
                    return Ok(id.to_owned());
                }
            }
            Err(ConnectorError::Conflict(m)) if !m.contains("HTTP 412") => {
                debug!(connector = %self.name, group = name, "409 on create: the group exists");
            }
            Err(e) => return Err(e),
        }
        match self.listed("Groups", |g| display_name_is(g, name)).await? {
            Lookup::Found(g) => Ok(g.id),
            _ => Err(ConnectorError::Transient(format!(
                "group {name:?}: the peer says it exists (or created it without an id), but \
                 its listing does not show it yet"
            ))),
        }
    }

    /// Reads a resource (or takes `read`, the caller's read of it), and unless `done` says it
    /// already is as wanted, PATCHes it (with
    /// `If-Match` under [`Guard::IfMatch`] where the peer supports ETags); a 412 (changed
    /// meanwhile) reads it again and retries. `Ok(None)`: the peer refused the form.
    async fn patch(
        &self,
        what: &str,
        (resource, id): (&str, &str),
        ops: Value,
        guard: Guard,
        done: impl Fn(&Value) -> bool,
        mut read: Option<Found>,
    ) -> Result<Option<Effect>, ConnectorError> {
        let body = json!({ "schemas": [PATCH_SCHEMA], "Operations": ops });
        let path = format!("{resource}/{id}");
        for _ in 0..PRECONDITION_TRIES {
            // The caller's read of a moment ago is used once; after a 412, a fresh one.
            let cur = match read.take() {
                Some(cur) => cur,
                None => self.get(resource, id).await?.ok_or_else(|| {
                    ConnectorError::NotFound(format!("{what}: {resource} {id} is gone"))
                })?,
            };
            if done(&cur.body) {
                return Ok(Some(Effect::AlreadyInState));
            }
            let tag = self.if_match(guard, cur.etag.as_deref()).await?;
            match self
                .call_form(what, Method::PATCH, &path, Some(&body), tag)
                .await
            {
                Ok(Some(_)) => return Ok(Some(Effect::Applied)),
                Ok(None) => return Ok(None),
                Err(ConnectorError::Conflict(m)) if m.contains("HTTP 412") => {
                    debug!(connector = %self.name, what, "412: changed meanwhile; reading again");
                }
                Err(e) => return Err(e),
            }
        }
        Err(ConnectorError::Transient(format!(
            "{what}: the {resource} kept changing (412 {PRECONDITION_TRIES} times)"
        )))
    }

    /// Replaces a resource with its current state as `edit` changes it (PUT, with `If-Match`
    /// where supported; a 412 reads it again). For peers without PATCH.
    async fn put(
        &self,
        what: &str,
        resource: &str,
        id: &str,
        edit: impl Fn(&mut Value) -> Result<(), ConnectorError>,
    ) -> Result<(), ConnectorError> {
        let path = format!("{resource}/{id}");
        for _ in 0..PRECONDITION_TRIES {
            let Some(cur) = self.get(resource, id).await? else {
                return Err(ConnectorError::NotFound(format!(
                    "{what}: {resource} {id} is gone"
                )));
            };
            let mut body = cur.body.clone();
            if let Some(o) = body.as_object_mut() {
                o.remove("meta");
                o.remove("groups");
            }
            edit(&mut body)?;
            let tag = self.if_match(Guard::IfMatch, cur.etag.as_deref()).await?;
            match self
                .call_form(what, Method::PUT, &path, Some(&body), tag)
                .await
            {
                Ok(Some(_)) => return Ok(()),
                Ok(None) => {
                    return Err(ConnectorError::Permanent(format!(
                        "{what}: the peer refuses both PATCH and PUT of a {resource}"
                    )));
                }
                Err(ConnectorError::Conflict(m)) if m.contains("HTTP 412") => {
                    debug!(connector = %self.name, what, "412: changed meanwhile; reading again");
                }
                Err(e) => return Err(e),
            }
        }
        Err(ConnectorError::Transient(format!(
            "{what}: the {resource} kept changing (412 {PRECONDITION_TRIES} times)"
        )))
    }

    async fn set_active(&self, who: &Subject, active: bool) -> Result<Effect, ConnectorError> {
        let Some(u) = self.find_user(who.email.as_str()).await? else {
            return if active {
                Err(ConnectorError::NotFound(format!(
                    "no SCIM user {}",
                    who.email
                )))
            } else {
                Ok(Effect::AlreadyInState)
            };
        };
        self.switch_active(&u, active).await
    }

    /// Sets a found user's `active`, unless it already is so (by PATCH, or PUT where the
    /// peer has no PATCH).
    async fn switch_active(&self, u: &Found, active: bool) -> Result<Effect, ConnectorError> {
        if scim_bool(u.body.get("active")).unwrap_or(true) == active {
            return Ok(Effect::AlreadyInState);
        }
        let what = if active {
            "enable user"
        } else {
            "disable user"
        };
        if !self.forms.patch_refused(self.caps().await?) {
            let done = |b: &Value| scim_bool(b.get("active")).unwrap_or(true) == active;
            let ops = json!([{ "op": "replace", "path": "active", "value": active }]);
            match self
                .patch(
                    what,
                    ("Users", &u.id),
                    ops,
                    Guard::IfMatch,
                    done,
                    Some(u.clone()),
                )
                .await?
            {
                Some(e) => return Ok(e),
                None => self.forms.refuse_patch(),
            }
        }
        self.put(what, "Users", &u.id, |b| {
            b["active"] = Value::Bool(active);
            Ok(())
        })
        .await?;
        Ok(Effect::Applied)
    }

    /// POSTs the user: `Applied` with the new id, or `AlreadyInState` when the peer says it
    /// exists (409 `uniqueness`).
    async fn post_user(&self, who: &Subject) -> Result<(Effect, Option<String>), ConnectorError> {
        let (given, family) = match who.name.rsplit_once(' ') {
            Some((g, f)) => (g, f),
            None => (who.name.as_str(), ""),
        };
        let body = json!({
            "schemas": [USER_SCHEMA],
            "userName": who.email.as_str(),
            "externalId": who.handle.as_str(),
            "displayName": who.name,
            "name": { "formatted": who.name, "givenName": given, "familyName": family },
            "emails": [{ "value": who.email.as_str(), "type": "work", "primary": true }],
            "active": true,
        });
        match self
            .call("create user", Method::POST, "Users", &[], Some(&body), None)
            .await
        {
            Ok(r) => {
                let id = r.body.as_ref().and_then(|b| b.get("id")?.as_str());
                Ok((Effect::Applied, id.map(str::to_owned)))
            }
            Err(ConnectorError::Conflict(m)) if !m.contains("HTTP 412") => {
                debug!(connector = %self.name, "409 on create: the user exists");
                Ok((Effect::AlreadyInState, None))
            }
            Err(e) => Err(e),
        }
    }

    /// The existing user a 409 on create spoke of, found by the complete listing (whatever
    /// the case of its `userName`), or an error that says what is true.
    async fn existing_user(&self, email: &str) -> Result<Found, ConnectorError> {
        match self.listed("Users", |u| user_name_is(u, email)).await? {
            Lookup::Found(u) => Ok(u),
            _ => Err(ConnectorError::Permanent(format!(
                "SCIM user {email} was not created: the peer answered 409 (a user with this \
                 userName exists), but its listing shows no such user (one it hides, such as \
                 a deactivated user?)"
            ))),
        }
    }

    /// A queued grant in one pass: the user is looked up once, created or re-enabled when
    /// needed, and its id carried to the group membership (the generic steps look the user
    /// up again for each step: one to two requests more per grant). Grants creating the same
    /// user take turns; one whose look-up came before another's creation looks again
    /// instead of POSTing.
    async fn provision(
        &self,
        who: &Subject,
        entitlement: Option<&str>,
    ) -> Result<Effect, ConnectorError> {
        use std::sync::atomic::Ordering::SeqCst;
        let email = who.email.as_str();
        let stripe = self.creation_stripe(email);
        let tried_before = self.creations[stripe].load(SeqCst);
        let (uid, made) = match self.lookup_user(email).await? {
            Lookup::Found(u) => self.activated(u).await?,
            _ => {
                let _one_create = self.creating[stripe].lock().await;
                let again = if self.creations[stripe].load(SeqCst) != tried_before {
                    self.lookup_user(email).await?
                } else {
                    Lookup::NotShown
                };
                match again {
                    Lookup::Found(u) => self.activated(u).await?,
                    _ => {
                        let made = self.created(who).await;
                        self.creations[stripe].fetch_add(1, SeqCst);
                        made?
                    }
                }
            }
        };
        let e = match entitlement {
            Some(name) => self.add_to_group(name, &uid).await?,
            None => Effect::AlreadyInState,
        };
        Ok(changed(made || e == Effect::Applied))
    }

    /// The stripe of `creating` a creation of the user with this email takes.
    fn creation_stripe(&self, email: &str) -> usize {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        email.to_ascii_lowercase().hash(&mut h);
        (h.finish() as usize) % self.creating.len()
    }

    /// A found user's id, re-enabled if it was disabled (and whether it had to be).
    async fn activated(&self, u: Found) -> Result<(String, bool), ConnectorError> {
        let made = self.switch_active(&u, true).await? == Effect::Applied;
        Ok((u.id, made))
    }

    /// Creates the user: its id, and whether this call made it. A 409 means the user exists
    /// (made a moment ago by someone else, or there all along under another case of its
    /// `userName`): it is found by the listing and adopted (re-enabled if disabled).
    async fn created(&self, who: &Subject) -> Result<(String, bool), ConnectorError> {
        let email = who.email.as_str();
        match self.post_user(who).await? {
            (Effect::Applied, Some(id)) => Ok((id, true)),
            (Effect::Applied, None) => match self.find_user(email).await? {
                Some(u) => Ok((u.id, true)),
                None => Err(ConnectorError::Transient(format!(
                    "SCIM user {email} was created (201 without an id) but is not listed yet"
                ))),
            },
            _ => {
                let u = self.existing_user(email).await?;
                self.activated(u).await
            }
        }
    }
}

#[async_trait]
impl Connector for Scim {
    async fn find_account(&self, who: &Subject) -> Result<Option<Account>, ConnectorError> {
        Ok(self.find_user(who.email.as_str()).await?.map(|u| Account {
            active: scim_bool(u.body.get("active")).unwrap_or(true),
            id: u.id,
        }))
    }

    async fn create_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        let email = who.email.as_str();
        if let Lookup::Found(_) = self.lookup_user(email).await? {
            return Ok(Effect::AlreadyInState);
        }
        match self.post_user(who).await? {
            (Effect::Applied, _) => Ok(Effect::Applied),
            _ => self
                .existing_user(email)
                .await
                .map(|_| Effect::AlreadyInState),
        }
    }

    async fn disable_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.set_active(who, false).await
    }

    async fn enable_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.set_active(who, true).await
    }

    async fn delete_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        let Some(u) = self.find_user(who.email.as_str()).await? else {
            return Ok(Effect::AlreadyInState);
        };
        match self
            .call(
                "delete user",
                Method::DELETE,
                &format!("Users/{}", u.id),
                &[],
                None,
                None,
            )
            .await
        {
            Ok(_) => Ok(Effect::Applied),
            Err(ConnectorError::NotFound(_)) => Ok(Effect::AlreadyInState),
            Err(e) => Err(e),
        }
    }

    async fn grant(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError> {
        let Some(u) = self.find_user(who.email.as_str()).await? else {
            return Err(ConnectorError::NotFound(format!(
                "no SCIM user {}",
                who.email
            )));
        };
        self.add_to_group(entitlement, &u.id)
            .await
            .map(|e| changed(e == Effect::Applied))
    }

    /// Removes the membership; "already" only when a trusted read shows it absent (no such
    /// user or group in the complete listing, or the group's members and the user's
    /// `groups` without it).
    async fn revoke(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError> {
        let Some(u) = self.find_user(who.email.as_str()).await? else {
            return Ok(Effect::AlreadyInState);
        };
        self.remove_from_group(entitlement, &u).await
    }

    /// The groups the user is in, as the groups' members and the user's `groups` show them
    /// (both, where served); "could not verify" when neither can be seen.
    async fn list_grants(&self, who: &Subject) -> Result<Vec<String>, ConnectorError> {
        let Some(u) = self.find_user(who.email.as_str()).await? else {
            return Ok(Vec::new());
        };
        self.groups_of(&u).await
    }

    async fn apply(
        &self,
        op: ActionOp,
        who: &Subject,
        entitlement: Option<&str>,
    ) -> Result<Effect, ConnectorError> {
        match op {
            ActionOp::Grant => self.provision(who, entitlement).await,
            _ => apply_steps(self, op, who, entitlement).await,
        }
    }

    async fn list_members(&self, entitlement: &str) -> Result<Vec<Listed>, ConnectorError> {
        self.listed_members(entitlement).await
    }

    async fn list_accounts(&self) -> Result<Option<Vec<Listed>>, ConnectorError> {
        self.listed_accounts().await.map(Some)
    }

    /// Reads the capabilities (`ServiceProviderConfig`, often public), then one user (which
    /// needs the token).
    async fn test_connection(&self) -> Result<(), ConnectorError> {
        self.caps().await?;
        let q = [("startIndex", "1".to_owned()), ("count", "1".to_owned())];
        self.call("list Users", Method::GET, "Users", &q, None, None)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests;

//! The `ldap` connector, for the directories people run: OpenLDAP, 389 Directory Server and
//! Active Directory (tested on slapd, 389 DS and Samba AD DC), each through its own settings
//! (see [`settings`]) or a preset.
//!
//! A person is the one entry `user_filter` matches under `user_base` (two matches is an error
//! that names both, never a second account); an entitlement is a group, by name anywhere under
//! `group_base` or by full DN, whose members are listed in `member`, `uniqueMember` (DNs) or
//! `memberUid` (uids); an account is disabled by ppolicy, `nsAccountLock` or AD's
//! `userAccountControl`, and read back through the same attribute.
//!
//! Every operation opens its own connection (TLS as configured), binds, looks before it changes
//! anything, and unbinds; so a repeated action finds the target already in state and sends
//! nothing. A removal is reported as already done only when the server itself said so (an LDAP
//! Compare on the group, or a read of the group's DN answering "no such object"); a read that
//! cannot be trusted is [`ConnectorError::Unverifiable`].

mod conn;
mod dir;
pub mod probe;
pub mod settings;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use ldap3::{Ldap as Conn, LdapError, LdapResult, Mod, dn_escape};
use tracing::Instrument;

use crate::core::model::{ActionOp, ConnectorName};
use crate::core::ports::{Account, Connector, ConnectorError, Effect, Subject, apply_steps};
use dir::{Group, User};
pub use settings::{
    DisableMethod, LdapSettings, MemberAttribute, Preset, Template, UserScope, is_loopback,
};

/// The `pwdAccountLockedTime` value that locks an account until an administrator unlocks it.
pub const LOCKED_FOREVER: &str = "000001010000Z";

/// How long one whole operation (connect, bind, look, change) may take.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

// LDAP result codes (RFC 4511, appendix A).
const RC_SUCCESS: u32 = 0;
const RC_TIME_LIMIT: u32 = 3;
const RC_ADMIN_LIMIT: u32 = 11;
const RC_NO_SUCH_ATTRIBUTE: u32 = 16;
const RC_VALUE_EXISTS: u32 = 20;
const RC_NO_SUCH_OBJECT: u32 = 32;
const RC_INVALID_CREDENTIALS: u32 = 49;
const RC_INSUFFICIENT_ACCESS: u32 = 50;
const RC_BUSY: u32 = 51;
const RC_UNAVAILABLE: u32 = 52;
const RC_UNWILLING: u32 = 53;
const RC_OBJECT_CLASS_VIOLATION: u32 = 65;
const RC_ALREADY_EXISTS: u32 = 68;

/// Why an LDAP connector cannot be built from its settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdapSetupError {
    /// Not an `ldap://` or `ldaps://` URL with a host.
    #[error("url {0:?} is not an ldap://host[:port] or ldaps://host[:port] URL")]
    BadUrl(String),
    /// The bind password would cross the network in clear text.
    #[error(
        "url {0:?}: plain ldap:// to a host other than loopback would send the bind password \
         in clear text; use ldaps://, set starttls = true, or set allow_plaintext = true"
    )]
    Plaintext(String),
    /// The TLS settings cannot be used (e.g. an unreadable `ca_file`).
    #[error("{0}")]
    Tls(String),
}

/// A connector to an LDAP directory.
#[derive(Debug, Clone)]
pub struct LdapConnector {
    name: ConnectorName,
    settings: LdapSettings,
    timeout: Duration,
}

impl LdapConnector {
    /// A connector named `name` over `settings`; refuses URLs it cannot use safely.
    pub fn new(name: ConnectorName, settings: LdapSettings) -> Result<Self, LdapSetupError> {
        let url = settings.url.as_str();
        if settings.host().is_none() {
            return Err(LdapSetupError::BadUrl(url.to_owned()));
        }
        if settings.plaintext_off_loopback() && !settings.allow_plaintext {
            return Err(LdapSetupError::Plaintext(url.to_owned()));
        }
        conn::tls_config(&settings).map_err(LdapSetupError::Tls)?;
        Ok(Self {
            name,
            settings,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same connector with another limit on each whole operation.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Its settings.
    pub fn settings(&self) -> &LdapSettings {
        &self.settings
    }

    /// Runs `body` on a fresh, bound connection within the time limit, then unbinds.
    async fn with_conn<T, F, Fut>(&self, op: &'static str, body: F) -> Result<T, ConnectorError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = (Conn, Result<T, ConnectorError>)>,
    {
        let span = tracing::debug_span!("ldap", connector = %self.name, op);
        let work = async {
            let conn = conn::bind(&self.settings, self.timeout).await?;
            let (mut conn, out) = body(conn).await;
            if let Err(e) = conn.unbind().await {
                tracing::debug!(error = %e, "unbind failed");
            }
            if let Err(e) = &out {
                tracing::warn!(error = %e, "ldap operation failed");
            }
            out
        };
        match tokio::time::timeout(self.timeout, work.instrument(span)).await {
            Ok(out) => out,
            Err(_) => Err(ConnectorError::Transient(format!(
                "{op}: no answer from {} within {:?}",
                self.settings.url, self.timeout
            ))),
        }
    }

    /// Grant as one sequence: the group is found first (a missing group fails before any
    /// account is created), then the person is found, created or enabled, then added.
    async fn provision(
        &self,
        who: &Subject,
        entitlement: Option<&str>,
    ) -> Result<Effect, ConnectorError> {
        let s = &self.settings;
        self.with_conn("grant", |mut c| async move {
            let r = async {
                let group = match entitlement {
                    Some(e) => Some(group_for_grant(&mut c, s, e).await?),
                    None => None,
                };
                let (user, mut made) = match dir::find_user(&mut c, s, who).await? {
                    None => {
                        let (u, e) = create_user(&mut c, s, who).await?;
                        (u, e == Effect::Applied)
                    }
                    Some(u) => {
                        let enabled = set_lock(&mut c, s, &u, false).await? == Effect::Applied;
                        (u, enabled)
                    }
                };
                if let Some(g) = group {
                    made |= add_to_group(&mut c, s, who, &user, g).await? == Effect::Applied;
                }
                Ok(if made {
                    Effect::Applied
                } else {
                    Effect::AlreadyInState
                })
            }
            .await;
            (c, r)
        })
        .await
    }
}

/// The group to add to: found, or (with `create_groups`) to be created at `cn=NAME,group_base`.
enum GrantTarget {
    Existing(String),
    Create { dn: String, cn: String },
}

async fn group_for_grant(
    c: &mut Conn,
    s: &LdapSettings,
    entitlement: &str,
) -> Result<GrantTarget, ConnectorError> {
    let missing = match dir::find_group(c, s, entitlement, false).await? {
        Group::Found(dn) => return Ok(GrantTarget::Existing(dn)),
        Group::Absent(dn) => format!("there is no group {dn}"),
        Group::NotFound(why) => why,
    };
    if !s.create_groups {
        return Err(ConnectorError::Permanent(format!(
            "grant {entitlement:?}: {missing}, and create_groups is off: create the group in \
             the directory (or set create_groups = true)"
        )));
    }
    if s.group_object_class.eq_ignore_ascii_case("posixGroup") {
        return Err(ConnectorError::Permanent(format!(
            "grant {entitlement:?}: {missing}; a posixGroup needs a gidNumber, which \
             Quartermaster does not allocate: create the group in the directory"
        )));
    }
    if dir::is_dn(entitlement) {
        let cn = entitlement
            .split_once('=')
            .map(|(_, v)| v.split(',').next().unwrap_or(v).to_owned())
            .unwrap_or_default();
        return Ok(GrantTarget::Create {
            dn: entitlement.to_owned(),
            cn,
        });
    }
    Ok(GrantTarget::Create {
        dn: format!("cn={},{}", dn_escape(entitlement), s.group_base),
        cn: entitlement.to_owned(),
    })
}

/// Adds `user` to the group (creating it when that was decided).
async fn add_to_group(
    c: &mut Conn,
    s: &LdapSettings,
    who: &Subject,
    user: &User,
    target: GrantTarget,
) -> Result<Effect, ConnectorError> {
    let attr = s.member_attribute;
    let value = user.member_value(attr, who);
    match target {
        GrantTarget::Existing(group) => {
            if dir::is_member(c, &group, attr, &value).await? {
                return Ok(Effect::AlreadyInState);
            }
            add_member(c, &group, attr, &value).await
        }
        GrantTarget::Create { dn, cn } => {
            let mut members = vec![value.clone()];
            members.extend(s.placeholder_member.clone());
            let mut attrs = vec![
                (
                    "objectClass".to_owned(),
                    set(&["top", s.group_object_class.as_str()]),
                ),
                ("cn".to_owned(), set(&[cn.as_str()])),
                (
                    attr.name().to_owned(),
                    members.iter().cloned().collect::<HashSet<_>>(),
                ),
            ];
            if s.group_object_class.eq_ignore_ascii_case("group") {
                attrs.push(("sAMAccountName".to_owned(), set(&[cn.as_str()])));
            }
            let r = c
                .add(&dn, attrs)
                .await
                .map_err(|e| ldap_error("create group", e))?;
            match r.rc {
                RC_SUCCESS => {
                    tracing::info!(group = %dn, "created missing group");
                    Ok(Effect::Applied)
                }
                // Someone created it meanwhile: add the member to theirs.
                RC_ALREADY_EXISTS => add_member(c, &dn, attr, &value).await,
                _ => Err(rc_error("create group", &r)),
            }
        }
    }
}

/// Creates `who`'s entry at `RDN,user_base` (refused when `create_users` is off) and returns it,
/// with `Applied`, or `AlreadyInState` when a racing repeat created it first.
async fn create_user(
    c: &mut Conn,
    s: &LdapSettings,
    who: &Subject,
) -> Result<(User, Effect), ConnectorError> {
    if !s.create_users {
        return Err(ConnectorError::Permanent(format!(
            "no entry matches {} under {}, and create_users is off: the person must be \
             created in the directory first",
            dir::user_filter(s, who),
            s.user_base
        )));
    }
    let dn = format!(
        "{},{}",
        s.rdn.render(who, |v| dn_escape(v).into_owned()),
        s.user_base
    );
    let r = c
        .add(&dn, user_attributes(s, who))
        .await
        .map_err(|e| ldap_error("create account", e))?;
    let effect = match r.rc {
        RC_SUCCESS => Effect::Applied,
        // Created meanwhile (a racing repeat): it is the one we would have made.
        RC_ALREADY_EXISTS => Effect::AlreadyInState,
        _ => return Err(rc_error("create account", &r)),
    };
    let user = User {
        dn,
        uid: Some(who.handle.as_str().to_owned()),
        lock: Vec::new(),
    };
    Ok((user, effect))
}

/// The attributes of a new person: the RDN's, and what the object classes ask for.
fn user_attributes(s: &LdapSettings, who: &Subject) -> Vec<(String, HashSet<String>)> {
    let handle = who.handle.as_str();
    let name = if who.name.trim().is_empty() {
        handle
    } else {
        who.name.trim()
    };
    let mail = who.email.as_str();
    let has = |c: &str| {
        s.user_object_classes
            .iter()
            .any(|o| o.eq_ignore_ascii_case(c))
    };
    let mut attrs: Vec<(String, HashSet<String>)> = Vec::new();
    let mut put = |k: &str, v: &str| match attrs.iter_mut().find(|(a, _)| a.eq_ignore_ascii_case(k))
    {
        Some((_, vals)) => {
            vals.insert(v.to_owned());
        }
        None => attrs.push((k.to_owned(), HashSet::from([v.to_owned()]))),
    };
    for oc in &s.user_object_classes {
        put("objectClass", oc);
    }
    let rdn = s.rdn.render(who, str::to_owned);
    if let Some((k, v)) = rdn.split_once('=') {
        put(k.trim(), v);
    }
    if has("person") || has("user") {
        put("cn", name);
        put("sn", surname(name, handle));
    }
    if has("inetOrgPerson") {
        put("uid", handle);
        put("displayName", name);
        put("mail", mail);
    }
    if has("user") {
        put("sAMAccountName", handle);
        put("userPrincipalName", mail);
        put("displayName", name);
        put("mail", mail);
    }
    attrs
}

/// Locks (`lock`) or unlocks an account by the configured method.
async fn set_lock(
    c: &mut Conn,
    s: &LdapSettings,
    user: &User,
    lock: bool,
) -> Result<Effect, ConnectorError> {
    let (what, mods) = if lock {
        ("disable account", dir::disable_mods(s.disable, user))
    } else {
        ("enable account", dir::enable_mods(s.disable, user))
    };
    let Some(mods) = mods else {
        return Ok(Effect::AlreadyInState);
    };
    let r = c
        .modify(&user.dn, mods)
        .await
        .map_err(|e| ldap_error(what, e))?;
    match (r.rc, s.disable) {
        (RC_SUCCESS, _) => Ok(Effect::Applied),
        (RC_NO_SUCH_ATTRIBUTE, DisableMethod::ActiveDirectory) => {
            Err(ConnectorError::Transient(format!(
                "{what}: userAccountControl of {} changed meanwhile",
                user.dn
            )))
        }
        (RC_VALUE_EXISTS | RC_NO_SUCH_ATTRIBUTE, _) => Ok(Effect::AlreadyInState),
        _ => Err(rc_error(what, &r)),
    }
}

fn set(v: &[&str]) -> HashSet<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// The surname to store: the name's last word, or the handle for an empty name.
fn surname<'a>(name: &'a str, handle: &'a str) -> &'a str {
    name.split_whitespace().last().unwrap_or(handle)
}

/// Adds a member; "already a member" (20, or 68 from Active Directory) is success.
async fn add_member(
    c: &mut Conn,
    group: &str,
    attr: MemberAttribute,
    value: &str,
) -> Result<Effect, ConnectorError> {
    let m = Mod::Add(attr.name(), HashSet::from([value]));
    let r = c
        .modify(group, vec![m])
        .await
        .map_err(|e| ldap_error("add member", e))?;
    match r.rc {
        RC_SUCCESS => Ok(Effect::Applied),
        RC_VALUE_EXISTS | RC_ALREADY_EXISTS => Ok(Effect::AlreadyInState),
        _ => Err(rc_error(&format!("add member to {group}"), &r)),
    }
}

/// Removes a member. "Not a member" counts as already done only when the server says so (16,
/// or a Compare after Active Directory's 53). If the schema refuses an empty group (65), the
/// configured placeholder takes the member's place in the same operation.
async fn remove_member(
    c: &mut Conn,
    group: &str,
    attr: MemberAttribute,
    value: &str,
    placeholder: Option<&str>,
) -> Result<Effect, ConnectorError> {
    let r = c
        .modify(
            group,
            vec![Mod::Delete(attr.name(), HashSet::from([value]))],
        )
        .await
        .map_err(|e| ldap_error("remove member", e))?;
    match r.rc {
        RC_SUCCESS => Ok(Effect::Applied),
        RC_NO_SUCH_ATTRIBUTE => Ok(Effect::AlreadyInState),
        RC_UNWILLING if !dir::is_member(c, group, attr, value).await? => Ok(Effect::AlreadyInState),
        RC_OBJECT_CLASS_VIOLATION => match placeholder {
            Some(p) if p != value => {
                let mods = vec![
                    Mod::Add(attr.name(), HashSet::from([p])),
                    Mod::Delete(attr.name(), HashSet::from([value])),
                ];
                let r = c
                    .modify(group, mods)
                    .await
                    .map_err(|e| ldap_error("remove last member", e))?;
                match r.rc {
                    RC_SUCCESS => Ok(Effect::Applied),
                    RC_NO_SUCH_ATTRIBUTE => Ok(Effect::AlreadyInState),
                    _ => Err(rc_error("remove last member", &r)),
                }
            }
            _ => Err(ConnectorError::Permanent(format!(
                "remove member from {group}: it is the group's last member and its schema \
                 requires one (objectClassViolation); set placeholder_member to a DN that may \
                 stay in emptied groups"
            ))),
        },
        _ => Err(rc_error(&format!("remove member from {group}"), &r)),
    }
}

/// A read whose failure means "we do not know", not "it is not there".
fn unverifiable(e: ConnectorError) -> ConnectorError {
    match e {
        ConnectorError::Permanent(m)
        | ConnectorError::NotFound(m)
        | ConnectorError::Conflict(m)
        | ConnectorError::Unauthorized(m) => ConnectorError::Unverifiable(m),
        other => other,
    }
}

/// A human name for the result codes people meet.
fn rc_name(rc: u32) -> &'static str {
    match rc {
        1 => "operationsError",
        2 => "protocolError",
        RC_TIME_LIMIT => "timeLimitExceeded",
        RC_ADMIN_LIMIT => "adminLimitExceeded",
        RC_NO_SUCH_ATTRIBUTE => "noSuchAttribute",
        17 => "undefinedAttributeType",
        19 => "constraintViolation",
        RC_VALUE_EXISTS => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        RC_NO_SUCH_OBJECT => "noSuchObject",
        34 => "invalidDNSyntax",
        RC_INVALID_CREDENTIALS => "invalidCredentials",
        RC_INSUFFICIENT_ACCESS => "insufficientAccessRights",
        RC_BUSY => "busy",
        RC_UNAVAILABLE => "unavailable",
        53 => "unwillingToPerform",
        64 => "namingViolation",
        RC_OBJECT_CLASS_VIOLATION => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        RC_ALREADY_EXISTS => "entryAlreadyExists",
        _ => "other",
    }
}

/// Maps an LDAP result code to the port's error kinds.
fn rc_error(what: &str, r: &LdapResult) -> ConnectorError {
    let mut msg = format!("{what}: LDAP result {} {}", r.rc, rc_name(r.rc));
    if !r.text.is_empty() {
        msg.push_str(&format!(" ({})", r.text));
    }
    match r.rc {
        RC_INVALID_CREDENTIALS | RC_INSUFFICIENT_ACCESS => ConnectorError::Unauthorized(msg),
        RC_NO_SUCH_OBJECT => ConnectorError::NotFound(msg),
        RC_BUSY | RC_UNAVAILABLE | RC_TIME_LIMIT | RC_ADMIN_LIMIT => ConnectorError::Transient(msg),
        RC_ALREADY_EXISTS => ConnectorError::Conflict(msg),
        _ => ConnectorError::Permanent(msg),
    }
}

/// Maps a client-side failure: the network and timeouts are transient, the rest permanent.
fn ldap_error(what: &str, e: LdapError) -> ConnectorError {
    // A certificate the settings do not trust stays untrusted however often it is tried.
    let text = e.to_string();
    if text.contains("certificate") || text.contains("Certificate") {
        return ConnectorError::Permanent(format!("{what}: {text}"));
    }
    match e {
        LdapError::LdapResult { result } => rc_error(what, &result),
        LdapError::Io { .. }
        | LdapError::Timeout { .. }
        | LdapError::OpSend { .. }
        | LdapError::ResultRecv { .. }
        | LdapError::IdScrubSend { .. }
        | LdapError::MiscSend { .. }
        | LdapError::EndOfStream => ConnectorError::Transient(format!("{what}: {e}")),
        other => ConnectorError::Permanent(format!("{what}: {other}")),
    }
}

#[async_trait]
impl Connector for LdapConnector {
    async fn find_account(&self, who: &Subject) -> Result<Option<Account>, ConnectorError> {
        let s = &self.settings;
        self.with_conn("find_account", |mut c| async move {
            let r = dir::find_user(&mut c, s, who).await.map(|u| {
                u.map(|u| Account {
                    active: u.active(s.disable),
                    id: u.dn,
                })
            });
            (c, r)
        })
        .await
    }

    async fn create_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        let s = &self.settings;
        self.with_conn("create_account", |mut c| async move {
            let r = async {
                if dir::find_user(&mut c, s, who).await?.is_some() {
                    return Ok(Effect::AlreadyInState);
                }
                create_user(&mut c, s, who).await.map(|(_, e)| e)
            }
            .await;
            (c, r)
        })
        .await
    }

    async fn disable_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        let s = &self.settings;
        if s.disable == DisableMethod::None {
            return Err(ConnectorError::Permanent(
                "disable = \"none\": this connector manages memberships only; disable the \
                 account in the directory yourself"
                    .into(),
            ));
        }
        self.with_conn("disable_account", |mut c| async move {
            let r = async {
                match dir::find_user(&mut c, s, who).await? {
                    // Nobody can log in to an account that is not there.
                    None => Ok(Effect::AlreadyInState),
                    Some(u) => set_lock(&mut c, s, &u, true).await,
                }
            }
            .await;
            (c, r)
        })
        .await
    }

    async fn enable_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        let s = &self.settings;
        self.with_conn("enable_account", |mut c| async move {
            let r = async {
                match dir::find_user(&mut c, s, who).await? {
                    None => Err(ConnectorError::NotFound(format!(
                        "enable account: no entry matches {} under {}",
                        dir::user_filter(s, who),
                        s.user_base
                    ))),
                    Some(u) => set_lock(&mut c, s, &u, false).await,
                }
            }
            .await;
            (c, r)
        })
        .await
    }

    async fn delete_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        let s = &self.settings;
        self.with_conn("delete_account", |mut c| async move {
            let r = async {
                let Some(user) = dir::find_user(&mut c, s, who).await? else {
                    return Ok(Effect::AlreadyInState);
                };
                // Leave no dangling member values behind, whether or not the server runs a
                // referential-integrity plug-in.
                for g in dir::groups_of(&mut c, s, Some(&user), who).await? {
                    for attr in MemberAttribute::ALL {
                        let value = user.member_value(attr, who);
                        if dir::is_member(&mut c, &g.dn, attr, &value)
                            .await
                            .unwrap_or(false)
                        {
                            remove_member(
                                &mut c,
                                &g.dn,
                                attr,
                                &value,
                                s.placeholder_member.as_deref(),
                            )
                            .await?;
                        }
                    }
                }
                let r = c
                    .delete(&user.dn)
                    .await
                    .map_err(|e| ldap_error("delete account", e))?;
                match r.rc {
                    RC_SUCCESS => Ok(Effect::Applied),
                    RC_NO_SUCH_OBJECT => Ok(Effect::AlreadyInState),
                    _ => Err(rc_error("delete account", &r)),
                }
            }
            .await;
            (c, r)
        })
        .await
    }

    async fn grant(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError> {
        let s = &self.settings;
        self.with_conn("grant", |mut c| async move {
            let r = async {
                let target = group_for_grant(&mut c, s, entitlement).await?;
                let Some(user) = dir::find_user(&mut c, s, who).await? else {
                    return Err(ConnectorError::NotFound(format!(
                        "grant {entitlement:?}: no entry matches {} under {}",
                        dir::user_filter(s, who),
                        s.user_base
                    )));
                };
                add_to_group(&mut c, s, who, &user, target).await
            }
            .await;
            (c, r)
        })
        .await
    }

    async fn revoke(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError> {
        let s = &self.settings;
        self.with_conn("revoke", |mut c| async move {
            let r = async {
                let attr = s.member_attribute;
                let user = dir::find_user(&mut c, s, who).await.map_err(unverifiable)?;
                let value = match (&user, attr.by_dn()) {
                    (Some(u), _) => u.member_value(attr, who),
                    (None, false) => who.handle.as_str().to_owned(),
                    (None, true) => {
                        return Err(ConnectorError::Unverifiable(format!(
                            "revoke {entitlement:?}: no entry matches {} under {}, so its \
                             membership cannot be read",
                            dir::user_filter(s, who),
                            s.user_base
                        )));
                    }
                };
                let group = match dir::find_group(&mut c, s, entitlement, true)
                    .await
                    .map_err(unverifiable)?
                {
                    Group::Found(dn) => dn,
                    // The server read the DN and says there is no such group.
                    Group::Absent(_) => return Ok(Effect::AlreadyInState),
                    Group::NotFound(why) => {
                        return Err(ConnectorError::Unverifiable(format!(
                            "revoke {entitlement:?}: {why}, so the membership cannot be read"
                        )));
                    }
                };
                // The configured attribute first, then the others the re-read also counts,
                // so a membership the re-read reports can be taken away here.
                let mut effect = Effect::AlreadyInState;
                for a in std::iter::once(attr)
                    .chain(MemberAttribute::ALL.into_iter().filter(|a| *a != attr))
                {
                    let v = match &user {
                        Some(u) => u.member_value(a, who),
                        None if !a.by_dn() => value.clone(),
                        None => continue,
                    };
                    let member = dir::is_member(&mut c, &group, a, &v)
                        .await
                        .map_err(unverifiable)?;
                    if member
                        && remove_member(&mut c, &group, a, &v, s.placeholder_member.as_deref())
                            .await?
                            == Effect::Applied
                    {
                        effect = Effect::Applied;
                    }
                }
                Ok(effect)
            }
            .await;
            (c, r)
        })
        .await
    }

    async fn list_grants(&self, who: &Subject) -> Result<Vec<String>, ConnectorError> {
        let s = &self.settings;
        self.with_conn("list_grants", |mut c| async move {
            let r = async {
                let user = dir::find_user(&mut c, s, who).await.map_err(unverifiable)?;
                let groups = dir::groups_of(&mut c, s, user.as_ref(), who).await?;
                // A name shared by two of the groups is reported by DN, so each stays unique.
                let mut count: HashMap<String, usize> = HashMap::new();
                for g in &groups {
                    *count.entry(dir::group_name(g).to_lowercase()).or_default() += 1;
                }
                let mut names: Vec<String> = groups
                    .iter()
                    .map(|g| {
                        let n = dir::group_name(g);
                        if count.get(&n.to_lowercase()).copied().unwrap_or(0) > 1 {
                            g.dn.clone()
                        } else {
                            n
                        }
                    })
                    .collect();
                names.sort();
                names.dedup();
                Ok(names)
            }
            .await;
            (c, r)
        })
        .await
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        let s = &self.settings;
        self.with_conn("test_connection", |mut c| async move {
            let r = async {
                for (key, dn) in [("user_base", &s.user_base), ("group_base", &s.group_base)] {
                    let res = c
                        .search(dn, ldap3::Scope::Base, "(objectClass=*)", vec!["1.1"])
                        .await
                        .map_err(|e| ldap_error("test connection", e))?;
                    if res.1.rc != RC_SUCCESS {
                        return Err(rc_error(&format!("{key} {dn}"), &res.1));
                    }
                }
                Ok(())
            }
            .await;
            (c, r)
        })
        .await
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_and_plaintext_off_loopback_are_refused_at_construction() {
        let s = |url: &str| {
            LdapSettings::preset(
                Preset::OpenLdap,
                url,
                "cn=admin,dc=x",
                secrecy::SecretString::from("pw"),
                "ou=people,dc=x",
                "ou=groups,dc=x",
            )
        };
        let name = ConnectorName::parse("corp").unwrap();
        let new = |st: LdapSettings| LdapConnector::new(name.clone(), st);
        assert!(matches!(new(s("ldap:///")), Err(LdapSetupError::BadUrl(_))));
        assert!(matches!(
            new(s("ldap://ldap.acme.test")),
            Err(LdapSetupError::Plaintext(_))
        ));
        let mut allowed = s("ldap://ldap.acme.test");
        allowed.allow_plaintext = true;
        assert!(new(allowed).is_ok());
        let mut tls = s("ldap://ldap.acme.test");
        tls.starttls = true;
        assert!(new(tls).is_ok());
        assert!(new(s("ldaps://ldap.acme.test:636")).is_ok());
        assert!(new(s("ldap://127.0.0.1:389")).is_ok());
        let mut ca = s("ldaps://ldap.acme.test");
        ca.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(matches!(new(ca), Err(LdapSetupError::Tls(_))));
    }

    #[test]
    fn result_codes_map_to_error_kinds() {
        let r = |rc| LdapResult {
            rc,
            matched: String::new(),
            text: String::new(),
            refs: vec![],
            ctrls: vec![],
        };
        assert!(matches!(
            rc_error("x", &r(49)),
            ConnectorError::Unauthorized(_)
        ));
        assert!(matches!(rc_error("x", &r(32)), ConnectorError::NotFound(_)));
        assert!(matches!(
            rc_error("x", &r(52)),
            ConnectorError::Transient(_)
        ));
        assert!(matches!(rc_error("x", &r(68)), ConnectorError::Conflict(_)));
        assert!(matches!(
            rc_error("x", &r(65)),
            ConnectorError::Permanent(_)
        ));
    }
}

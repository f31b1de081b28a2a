//! The `ldap` connector: people are `inetOrgPerson` entries `uid=<handle>,<people_dn>`, an
//! entitlement is the `groupOfNames` `cn=<entitlement>,<groups_dn>`, and an account is disabled
//! by the password-policy lock `pwdAccountLockedTime: 000001010000Z` (OpenLDAP ppolicy).
//!
//! Every operation opens its own connection, binds, looks at the entry before it changes
//! anything, and unbinds; so a repeated action finds the target already in state and sends
//! nothing. The result codes a race can still produce (68 entry exists, 20 value exists, 16 no
//! such value, 32 no such object on delete) also count as "already in state".

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use ldap3::{
    Ldap as Conn, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Mod, Scope, SearchEntry,
    dn_escape, ldap_escape,
};
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use crate::core::model::ConnectorName;
use crate::core::ports::{Account, Connector, ConnectorError, Effect, Subject};

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
const RC_OBJECT_CLASS_VIOLATION: u32 = 65;
const RC_ALREADY_EXISTS: u32 = 68;

/// The settings of one LDAP connector (the `[[connector]]` keys of kind `ldap`).
#[derive(Debug, Clone)]
pub struct LdapSettings {
    /// `ldap://host:port` (this build speaks plain LDAP; see [`LdapSetupError::NoTls`]).
    pub url: String,
    /// The DN to bind as; also the placeholder member of every group this connector creates.
    pub bind_dn: String,
    /// The bind password. Never logged, never part of an error.
    pub password: SecretString,
    /// Where people live: entries are `uid=<handle>,<people_dn>`.
    pub people_dn: String,
    /// Where groups live: entitlements are `cn=<entitlement>,<groups_dn>`.
    pub groups_dn: String,
}

/// Why an LDAP connector cannot be built from its settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdapSetupError {
    /// `ldaps://` needs TLS, which this build leaves out.
    #[error(
        "url {0:?}: this build has no TLS support, so ldaps:// is not available; use ldap:// \
         (on loopback or a trusted network) or build ldap3 with its `tls-rustls-ring` feature"
    )]
    NoTls(String),
    /// Not an `ldap://` URL with a host.
    #[error("url {0:?} is not an ldap://host[:port] URL")]
    BadUrl(String),
}

/// A connector to an LDAP directory (tested against OpenLDAP slapd with the ppolicy overlay).
#[derive(Debug, Clone)]
pub struct LdapConnector {
    name: ConnectorName,
    settings: LdapSettings,
    timeout: Duration,
}

impl LdapConnector {
    /// A connector named `name` over `settings`; refuses URLs this build cannot reach.
    pub fn new(name: ConnectorName, settings: LdapSettings) -> Result<Self, LdapSetupError> {
        let url = settings.url.as_str();
        if url.starts_with("ldaps://") {
            return Err(LdapSetupError::NoTls(url.to_owned()));
        }
        match url.strip_prefix("ldap://") {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
            _ => return Err(LdapSetupError::BadUrl(url.to_owned())),
        }
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

    /// The DN of a person's entry.
    pub fn user_dn(&self, handle: &str) -> String {
        format!("uid={},{}", dn_escape(handle), self.settings.people_dn)
    }

    /// The DN of an entitlement's group.
    pub fn group_dn(&self, entitlement: &str) -> String {
        format!("cn={},{}", dn_escape(entitlement), self.settings.groups_dn)
    }

    /// Runs `body` on a fresh, bound connection within the time limit, then unbinds.
    async fn with_conn<T, F, Fut>(&self, op: &'static str, body: F) -> Result<T, ConnectorError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = (Conn, Result<T, ConnectorError>)>,
    {
        let span = tracing::debug_span!("ldap", connector = %self.name, op);
        let work = async {
            let conn = self.bind().await?;
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

    /// Connects and binds as the configured DN.
    async fn bind(&self) -> Result<Conn, ConnectorError> {
        let s = LdapConnSettings::new().set_conn_timeout(self.timeout);
        let (driver, mut conn) = LdapConnAsync::with_settings(s, &self.settings.url)
            .await
            .map_err(|e| ldap_error("connect", e))?;
        tokio::spawn(async move {
            if let Err(e) = driver.drive().await {
                tracing::debug!(error = %e, "ldap connection ended with an error");
            }
        });
        conn.simple_bind(
            &self.settings.bind_dn,
            self.settings.password.expose_secret(),
        )
        .await
        .and_then(LdapResult::success)
        .map_err(|e| ldap_error("bind", e))?;
        Ok(conn)
    }
}

/// A person's entry as found: its DN and its lock, if any.
struct Found {
    dn: String,
    locked: Option<String>,
}

impl Found {
    fn active(&self) -> bool {
        self.locked.as_deref() != Some(LOCKED_FOREVER)
    }
}

/// Reads a person's entry; `None` when there is none.
async fn find(conn: &mut Conn, dn: &str) -> Result<Option<Found>, ConnectorError> {
    let res = conn
        .search(
            dn,
            Scope::Base,
            "(objectClass=*)",
            vec!["uid", "pwdAccountLockedTime"],
        )
        .await
        .map_err(|e| ldap_error("look up account", e))?;
    let (entries, result) = (res.0, res.1);
    if result.rc == RC_NO_SUCH_OBJECT {
        return Ok(None);
    }
    if result.rc != RC_SUCCESS {
        return Err(rc_error("look up account", &result));
    }
    Ok(entries.into_iter().next().map(|e| {
        let e = SearchEntry::construct(e);
        let locked = e
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("pwdAccountLockedTime"))
            .and_then(|(_, v)| v.first().cloned());
        Found { dn: e.dn, locked }
    }))
}

/// Whether `user` is a member of `group`; `None` when the group does not exist.
async fn is_member(
    conn: &mut Conn,
    group: &str,
    user: &str,
) -> Result<Option<bool>, ConnectorError> {
    let filter = format!("(member={})", ldap_escape(user));
    let res = conn
        .search(group, Scope::Base, &filter, vec!["1.1"])
        .await
        .map_err(|e| ldap_error("look up group", e))?;
    match res.1.rc {
        RC_SUCCESS => Ok(Some(!res.0.is_empty())),
        RC_NO_SUCH_OBJECT => Ok(None),
        _ => Err(rc_error("look up group", &res.1)),
    }
}

/// Sends a modification; `tolerated` result codes mean "already so".
async fn modify(
    conn: &mut Conn,
    what: &str,
    dn: &str,
    mods: Vec<Mod<&str>>,
    tolerated: &[u32],
) -> Result<Effect, ConnectorError> {
    let r = conn
        .modify(dn, mods)
        .await
        .map_err(|e| ldap_error(what, e))?;
    if r.rc == RC_SUCCESS {
        Ok(Effect::Applied)
    } else if tolerated.contains(&r.rc) {
        Ok(Effect::AlreadyInState)
    } else {
        Err(rc_error(what, &r))
    }
}

fn set(v: &[&str]) -> HashSet<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// The surname to store: the name's last word, or the handle for an empty name.
fn surname<'a>(name: &'a str, handle: &'a str) -> &'a str {
    name.split_whitespace().last().unwrap_or(handle)
}

/// The value of a DN's first RDN (`cn=a\,b,ou=x` → `a,b`), unescaped.
fn first_rdn_value(dn: &str) -> Option<String> {
    let mut out = Vec::new();
    let mut chars = dn.char_indices().peekable();
    let eq = dn.find('=')?;
    while let Some((i, c)) = chars.next() {
        if i <= eq {
            continue;
        }
        match c {
            ',' | '+' => break,
            '\\' => {
                let rest = &dn[i + 1..];
                let hex = rest.get(..2).and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        chars.next();
                        chars.next();
                    }
                    None => {
                        if let Some((_, n)) = chars.next() {
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(n.encode_utf8(&mut buf).as_bytes());
                        }
                    }
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    String::from_utf8(out).ok()
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
        let dn = self.user_dn(who.handle.as_str());
        self.with_conn("find_account", |mut c| async move {
            let r = find(&mut c, &dn).await.map(|f| {
                f.map(|f| Account {
                    active: f.active(),
                    id: f.dn,
                })
            });
            (c, r)
        })
        .await
    }

    async fn create_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        let dn = self.user_dn(who.handle.as_str());
        let handle = who.handle.as_str();
        let cn = if who.name.trim().is_empty() {
            handle
        } else {
            who.name.trim()
        };
        let sn = surname(cn, handle);
        let mail = who.email.as_str();
        self.with_conn("create_account", |mut c| async move {
            let r = async {
                if find(&mut c, &dn).await?.is_some() {
                    return Ok(Effect::AlreadyInState);
                }
                let attrs = vec![
                    (
                        "objectClass".to_owned(),
                        set(&["top", "person", "organizationalPerson", "inetOrgPerson"]),
                    ),
                    ("uid".to_owned(), set(&[handle])),
                    ("cn".to_owned(), set(&[cn])),
                    ("sn".to_owned(), set(&[sn])),
                    ("displayName".to_owned(), set(&[cn])),
                    ("mail".to_owned(), set(&[mail])),
                ];
                let r = c
                    .add(&dn, attrs)
                    .await
                    .map_err(|e| ldap_error("create account", e))?;
                match r.rc {
                    RC_SUCCESS => Ok(Effect::Applied),
                    RC_ALREADY_EXISTS => Ok(Effect::AlreadyInState),
                    _ => Err(rc_error("create account", &r)),
                }
            }
            .await;
            (c, r)
        })
        .await
    }

    async fn disable_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        let dn = self.user_dn(who.handle.as_str());
        self.with_conn("disable_account", |mut c| async move {
            let r = async {
                match find(&mut c, &dn).await? {
                    // Nobody can log in to an account that is not there.
                    None => Ok(Effect::AlreadyInState),
                    Some(f) if !f.active() => Ok(Effect::AlreadyInState),
                    Some(f) => {
                        // A temporary lock (failed logins) is replaced by the permanent one.
                        let m = if f.locked.is_some() {
                            Mod::Replace("pwdAccountLockedTime", HashSet::from([LOCKED_FOREVER]))
                        } else {
                            Mod::Add("pwdAccountLockedTime", HashSet::from([LOCKED_FOREVER]))
                        };
                        modify(
                            &mut c,
                            "disable account",
                            &f.dn,
                            vec![m],
                            &[RC_VALUE_EXISTS],
                        )
                        .await
                    }
                }
            }
            .await;
            (c, r)
        })
        .await
    }

    async fn enable_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        let dn = self.user_dn(who.handle.as_str());
        self.with_conn("enable_account", |mut c| async move {
            let r = async {
                match find(&mut c, &dn).await? {
                    None => Err(ConnectorError::NotFound(format!(
                        "enable account: no entry {dn}"
                    ))),
                    Some(f) if f.active() => Ok(Effect::AlreadyInState),
                    Some(f) => {
                        let m = Mod::Delete("pwdAccountLockedTime", HashSet::new());
                        modify(
                            &mut c,
                            "enable account",
                            &f.dn,
                            vec![m],
                            &[RC_NO_SUCH_ATTRIBUTE],
                        )
                        .await
                    }
                }
            }
            .await;
            (c, r)
        })
        .await
    }

    async fn delete_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        let dn = self.user_dn(who.handle.as_str());
        let groups_dn = self.settings.groups_dn.clone();
        let placeholder = self.settings.bind_dn.clone();
        self.with_conn("delete_account", |mut c| async move {
            let r = async {
                let Some(found) = find(&mut c, &dn).await? else {
                    return Ok(Effect::AlreadyInState);
                };
                // Leave no dangling member values behind, whether or not the server runs the
                // referential-integrity overlay.
                for g in groups_of(&mut c, &groups_dn, &found.dn).await? {
                    remove_member(&mut c, &g, &found.dn, &placeholder).await?;
                }
                let r = c
                    .delete(&found.dn)
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
        let user = self.user_dn(who.handle.as_str());
        let group = self.group_dn(entitlement);
        let placeholder = self.settings.bind_dn.clone();
        self.with_conn("grant", |mut c| async move {
            let r = async {
                match is_member(&mut c, &group, &user).await? {
                    Some(true) => Ok(Effect::AlreadyInState),
                    Some(false) => add_member(&mut c, &group, &user).await,
                    None => {
                        // The group is missing: create it with the placeholder member, which
                        // is never removed, so groupOfNames always keeps one member.
                        let attrs = vec![
                            ("objectClass".to_owned(), set(&["top", "groupOfNames"])),
                            ("cn".to_owned(), set(&[entitlement])),
                            ("member".to_owned(), set(&[&placeholder, &user])),
                        ];
                        let r = c
                            .add(&group, attrs)
                            .await
                            .map_err(|e| ldap_error("create group", e))?;
                        match r.rc {
                            RC_SUCCESS => {
                                tracing::info!(group = %group, "created missing group");
                                Ok(Effect::Applied)
                            }
                            // Someone created it meanwhile: add the member to theirs.
                            RC_ALREADY_EXISTS => add_member(&mut c, &group, &user).await,
                            _ => Err(rc_error("create group", &r)),
                        }
                    }
                }
            }
            .await;
            (c, r)
        })
        .await
    }

    async fn revoke(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError> {
        let user = self.user_dn(who.handle.as_str());
        let group = self.group_dn(entitlement);
        let placeholder = self.settings.bind_dn.clone();
        self.with_conn("revoke", |mut c| async move {
            let r = async {
                match is_member(&mut c, &group, &user).await? {
                    None | Some(false) => Ok(Effect::AlreadyInState),
                    Some(true) => remove_member(&mut c, &group, &user, &placeholder).await,
                }
            }
            .await;
            (c, r)
        })
        .await
    }

    async fn list_grants(&self, who: &Subject) -> Result<Vec<String>, ConnectorError> {
        let user = self.user_dn(who.handle.as_str());
        let groups_dn = self.settings.groups_dn.clone();
        self.with_conn("list_grants", |mut c| async move {
            let r = groups_of(&mut c, &groups_dn, &user).await.map(|dns| {
                let mut names: Vec<String> =
                    dns.iter().filter_map(|d| first_rdn_value(d)).collect();
                names.sort();
                names
            });
            (c, r)
        })
        .await
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        let people = self.settings.people_dn.clone();
        let groups = self.settings.groups_dn.clone();
        self.with_conn("test_connection", |mut c| async move {
            let r = async {
                for (key, dn) in [("people_dn", &people), ("groups_dn", &groups)] {
                    let res = c
                        .search(dn, Scope::Base, "(objectClass=*)", vec!["1.1"])
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
}

/// The DNs of the groups directly under `groups_dn` that list `user` as a member.
async fn groups_of(
    conn: &mut Conn,
    groups_dn: &str,
    user: &str,
) -> Result<Vec<String>, ConnectorError> {
    let filter = format!(
        "(&(objectClass=groupOfNames)(member={}))",
        ldap_escape(user)
    );
    let res = conn
        .search(groups_dn, Scope::OneLevel, &filter, vec!["1.1"])
        .await
        .map_err(|e| ldap_error("list groups", e))?;
    if res.1.rc != RC_SUCCESS {
        return Err(rc_error("list groups", &res.1));
    }
    Ok(res
        .0
        .into_iter()
        .map(|e| SearchEntry::construct(e).dn)
        .collect())
}

/// Adds a member; "already a member" (20) is success.
async fn add_member(conn: &mut Conn, group: &str, user: &str) -> Result<Effect, ConnectorError> {
    let m = Mod::Add("member", HashSet::from([user]));
    modify(conn, "add member", group, vec![m], &[RC_VALUE_EXISTS]).await
}

/// Removes a member; "not a member" (16) is success. If the server refuses because the group
/// would be left empty (65), the placeholder takes the member's place in the same operation.
async fn remove_member(
    conn: &mut Conn,
    group: &str,
    user: &str,
    placeholder: &str,
) -> Result<Effect, ConnectorError> {
    let r = conn
        .modify(group, vec![Mod::Delete("member", HashSet::from([user]))])
        .await
        .map_err(|e| ldap_error("remove member", e))?;
    match r.rc {
        RC_SUCCESS => Ok(Effect::Applied),
        RC_NO_SUCH_ATTRIBUTE => Ok(Effect::AlreadyInState),
        RC_OBJECT_CLASS_VIOLATION if user != placeholder => {
            let mods = vec![
                Mod::Add("member", HashSet::from([placeholder])),
                Mod::Delete("member", HashSet::from([user])),
            ];
            modify(
                conn,
                "remove last member",
                group,
                mods,
                &[RC_NO_SUCH_ATTRIBUTE],
            )
            .await
        }
        _ => Err(rc_error("remove member", &r)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_rdn_values_are_unescaped() {
        assert_eq!(
            first_rdn_value("cn=figma,ou=groups,dc=acme,dc=test").as_deref(),
            Some("figma")
        );
        assert_eq!(
            first_rdn_value("cn=a\\,b,ou=groups").as_deref(),
            Some("a,b")
        );
        assert_eq!(first_rdn_value("cn=a\\2Cb,ou=x").as_deref(), Some("a,b"));
        assert_eq!(first_rdn_value("cn=\\20x").as_deref(), Some(" x"));
    }

    #[test]
    fn ldaps_and_bad_urls_are_refused_at_construction() {
        let s = |url: &str| LdapSettings {
            url: url.into(),
            bind_dn: "cn=admin,dc=x".into(),
            password: SecretString::from("pw"),
            people_dn: "ou=people,dc=x".into(),
            groups_dn: "ou=groups,dc=x".into(),
        };
        let name = ConnectorName::parse("corp").unwrap();
        assert!(matches!(
            LdapConnector::new(name.clone(), s("ldaps://h:636")),
            Err(LdapSetupError::NoTls(_))
        ));
        assert!(matches!(
            LdapConnector::new(name.clone(), s("ldap:///")),
            Err(LdapSetupError::BadUrl(_))
        ));
        assert!(LdapConnector::new(name, s("ldap://127.0.0.1:389")).is_ok());
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

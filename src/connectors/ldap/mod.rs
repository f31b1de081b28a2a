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

mod change;
mod codes;
mod conn;
mod dir;
pub mod listing;
pub mod probe;
pub mod settings;

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use ldap3::Ldap as Conn;
use tracing::Instrument;

use crate::core::model::{ActionOp, ConnectorName};
use crate::core::ports::{
    Account, Connector, ConnectorError, Effect, Listed, Subject, apply_steps,
};
use change::{add_to_group, create_user, group_for_grant, remove_member, set_lock};
use codes::{RC_NO_SUCH_OBJECT, RC_SUCCESS, ldap_error, rc_error, unverifiable};
use dir::Group;
pub use settings::{
    DisableMethod, LdapSettings, MemberAttribute, Preset, Template, UserScope, is_loopback,
};

/// The `pwdAccountLockedTime` value that locks an account until an administrator unlocks it.
pub const LOCKED_FOREVER: &str = "000001010000Z";

/// How long one whole operation (connect, bind, look, change) may take.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

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
    page_size: i32,
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
            page_size: listing::PAGE_SIZE,
        })
    }

    /// The same connector with another limit on each whole operation.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same connector asking for pages of `size` entries when it lists accounts (at
    /// least 1; [`listing::PAGE_SIZE`] by default).
    pub fn with_page_size(mut self, size: i32) -> Self {
        self.page_size = size.max(1);
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

    async fn list_members(&self, entitlement: &str) -> Result<Vec<Listed>, ConnectorError> {
        let s = &self.settings;
        self.with_conn("list_members", |mut c| async move {
            let r = listing::members(&mut c, s, entitlement).await;
            (c, r)
        })
        .await
    }

    async fn list_accounts(&self) -> Result<Option<Vec<Listed>>, ConnectorError> {
        let s = &self.settings;
        let page = self.page_size;
        self.with_conn("list_accounts", |mut c| async move {
            let r = listing::accounts(&mut c, s, page).await.map(Some);
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
}

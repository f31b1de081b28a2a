//! The directory layout the LDAP directory tests share: `ou=users` with Alice as
//! `cn=Alice Kim` (uid `akim`, found by her mail) and Bob, groups in `ou=apps,ou=groups`, and
//! an administrator's view of either server (slapd or 389 DS) for independent reads.
#![allow(clippy::unwrap_used)]

use ldap3::{Scope, SearchEntry};

use super::ds389::Ds389;
use super::ldap::{ADMIN_DN, Slapd};
use super::samba::Samba;

pub const USERS: &str = "ou=users,dc=acme,dc=test";
pub const GROUPS: &str = "ou=groups,dc=acme,dc=test";
pub const APPS: &str = "ou=apps,ou=groups,dc=acme,dc=test";
/// Alice as she already is in the directory: not `uid=alice`, found by her mail.
pub const ALICE: &str = "cn=Alice Kim,ou=users,dc=acme,dc=test";
pub const BOB: &str = "cn=Bob Chen,ou=users,dc=acme,dc=test";
pub const ALICE_PW: &str = "alice-Pw-1234";

/// An administrator's view of either server, for the independent reads.
pub enum Peer<'a> {
    Slapd(&'a Slapd),
    Ds(&'a Ds389),
    Samba(&'a Samba),
}

impl Peer<'_> {
    pub fn url(&self) -> &str {
        match self {
            Peer::Slapd(s) => &s.url,
            Peer::Ds(d) => &d.url,
            Peer::Samba(a) => &a.url,
        }
    }
    pub fn admin_dn(&self) -> &str {
        match self {
            Peer::Slapd(_) => ADMIN_DN,
            Peer::Ds(_) => super::ds389::ADMIN_DN,
            Peer::Samba(_) => super::samba::ADMIN_DN,
        }
    }
    pub fn password(&self) -> String {
        match self {
            Peer::Slapd(s) => s.admin_password.clone(),
            Peer::Ds(d) => d.admin_password.clone(),
            Peer::Samba(a) => a.admin_password.clone(),
        }
    }
    pub async fn add(&self, dn: &str, attrs: &[(&str, &[&str])]) {
        match self {
            Peer::Slapd(s) => s.add(dn, attrs).await,
            Peer::Ds(d) => d.add(dn, attrs).await,
            Peer::Samba(a) => a.add(dn, attrs).await,
        }
    }
    pub async fn values(&self, dn: &str, attr: &str) -> Vec<String> {
        match self {
            Peer::Slapd(s) => s.values(dn, attr).await,
            Peer::Ds(d) => d.values(dn, attr).await,
            Peer::Samba(a) => a.values(dn, attr).await,
        }
    }
    pub async fn bind_rc(&self, dn: &str, pw: &str) -> u32 {
        match self {
            Peer::Slapd(s) => s.bind_rc(dn, pw).await,
            Peer::Ds(d) => d.bind_rc(dn, pw).await,
            Peer::Samba(a) => a.bind_rc(dn, pw).await,
        }
    }
    /// The DNs of every entry under the suffix matching `filter` (subtree, as administrator).
    pub async fn search(&self, filter: &str) -> Vec<String> {
        let mut l = match self {
            Peer::Slapd(s) => s.admin().await,
            Peer::Ds(d) => d.admin().await,
            Peer::Samba(a) => a.admin().await,
        };
        let (rs, _) = l
            .search("dc=acme,dc=test", Scope::Subtree, filter, vec!["1.1"])
            .await
            .unwrap()
            .success()
            .unwrap();
        let _ = l.unbind().await;
        let mut v: Vec<String> = rs
            .into_iter()
            .filter(|e| !e.is_ref())
            .map(|e| SearchEntry::construct(e).dn.to_ascii_lowercase())
            .collect();
        v.sort();
        v
    }
}

/// `ou=users`, `ou=apps,ou=groups`, Alice as `cn=Alice Kim` (uid `akim`, mail
/// alice@acme.test, a password) and Bob.
pub async fn seed_people(p: &Peer<'_>, person_classes: &[&str], extra: &[(&str, &[&str])]) {
    p.add(
        USERS,
        &[
            ("objectClass", &["top", "organizationalUnit"]),
            ("ou", &["users"]),
        ],
    )
    .await;
    p.add(
        APPS,
        &[
            ("objectClass", &["top", "organizationalUnit"]),
            ("ou", &["apps"]),
        ],
    )
    .await;
    for (dn, cn, sn, uid, mail) in [
        (ALICE, "Alice Kim", "Kim", "akim", "alice@acme.test"),
        (BOB, "Bob Chen", "Chen", "bchen", "bob@acme.test"),
    ] {
        let (cn, sn, mail, uid) = ([cn], [sn], [mail], [uid]);
        let mut attrs: Vec<(&str, &[&str])> = vec![
            ("objectClass", person_classes),
            ("cn", &cn),
            ("sn", &sn),
            ("mail", &mail),
            ("userPassword", &[ALICE_PW]),
        ];
        if person_classes.contains(&"inetOrgPerson") {
            attrs.push(("uid", &uid));
        }
        attrs.extend_from_slice(extra);
        p.add(dn, &attrs).await;
    }
}

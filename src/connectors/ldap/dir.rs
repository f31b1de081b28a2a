//! The reads and writes the connector is made of: finding one person by the configured filter,
//! finding a group by name or DN, asking the server whether a value is a member (LDAP
//! Compare, so the server's own matching rules decide), and the account lock of each
//! disable method.

use std::collections::HashSet;

use ldap3::{Ldap as Conn, Mod, Scope, SearchEntry, ldap_escape};

use super::LOCKED_FOREVER;
use super::codes::{RC_NO_SUCH_ATTRIBUTE, RC_NO_SUCH_OBJECT, RC_SUCCESS, ldap_error, rc_error};
use super::settings::{DisableMethod, LdapSettings, MemberAttribute, UserScope};
use crate::core::ports::{ConnectorError, Subject};

/// `userAccountControl` ACCOUNTDISABLE.
pub const UAC_DISABLED: u32 = 0x2;

const RC_SIZE_LIMIT: u32 = 4;
const RC_COMPARE_FALSE: u32 = 5;
const RC_COMPARE_TRUE: u32 = 6;
const RC_REFERRAL: u32 = 10;
const RC_UNDEFINED_TYPE: u32 = 17;

/// The group object classes of the common schemas (a group may be empty, so listing members
/// is not the only sign of one).
const GROUP_CLASSES: [&str; 4] = ["groupOfNames", "groupOfUniqueNames", "posixGroup", "group"];

/// A person's entry as found.
#[derive(Debug, Clone)]
pub struct User {
    /// Its DN, as the server spells it.
    pub dn: String,
    /// Its `uid`, if it has one (the `memberUid` value).
    pub uid: Option<String>,
    /// The values of the disable method's attribute.
    pub lock: Vec<String>,
}

impl User {
    /// Whether the account can log in, judged by `method`'s attribute.
    pub fn active(&self, method: DisableMethod) -> bool {
        let first = self.lock.first().map(String::as_str);
        match method {
            DisableMethod::Ppolicy => first != Some(LOCKED_FOREVER),
            DisableMethod::NsAccountLock => !first.is_some_and(|v| v.eq_ignore_ascii_case("true")),
            DisableMethod::ActiveDirectory => uac(first) & UAC_DISABLED == 0,
            DisableMethod::None => true,
        }
    }

    /// The value a group of `attr` lists this person by.
    pub fn member_value(&self, attr: MemberAttribute, who: &Subject) -> String {
        if attr.by_dn() {
            self.dn.clone()
        } else {
            self.uid
                .clone()
                .unwrap_or_else(|| who.handle.as_str().to_owned())
        }
    }
}

/// A `userAccountControl` value (0 when absent or unreadable).
pub fn uac(v: Option<&str>) -> u32 {
    v.and_then(|v| v.trim().parse::<i64>().ok())
        .map_or(0, |n| n as u32)
}

fn attr<'a>(e: &'a SearchEntry, name: &str) -> Option<&'a Vec<String>> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The entries of a search result, referrals left out.
fn entries(rs: Vec<ldap3::ResultEntry>) -> Vec<SearchEntry> {
    rs.into_iter()
        .filter(|e| !e.is_ref())
        .map(SearchEntry::construct)
        .collect()
}

/// The filter that finds `who`.
pub fn user_filter(s: &LdapSettings, who: &Subject) -> String {
    s.user_filter.render(who, |v| ldap_escape(v).into_owned())
}

/// Finds the one entry `user_filter` matches under `user_base`; two matches is an error that
/// names both, never a guess.
pub async fn find_user(
    c: &mut Conn,
    s: &LdapSettings,
    who: &Subject,
) -> Result<Option<User>, ConnectorError> {
    let filter = user_filter(s, who);
    let scope = match s.user_scope {
        UserScope::One => Scope::OneLevel,
        UserScope::Sub => Scope::Subtree,
    };
    let mut attrs = vec!["uid"];
    if let Some(a) = s.disable.attribute() {
        attrs.push(a);
    }
    let res = c
        .search(&s.user_base, scope, &filter, attrs)
        .await
        .map_err(|e| ldap_error("look up account", e))?;
    match res.1.rc {
        RC_SUCCESS => {}
        RC_NO_SUCH_OBJECT => {
            return Err(ConnectorError::Permanent(format!(
                "look up account: user_base {:?} does not exist",
                s.user_base
            )));
        }
        _ => return Err(rc_error("look up account", &res.1)),
    }
    let found = entries(res.0);
    match found.as_slice() {
        [] => Ok(None),
        [e] => Ok(Some(User {
            dn: e.dn.clone(),
            uid: attr(e, "uid").and_then(|v| v.first().cloned()),
            lock: s
                .disable
                .attribute()
                .and_then(|a| attr(e, a).cloned())
                .unwrap_or_default(),
        })),
        [a, b, ..] => Err(ConnectorError::Permanent(format!(
            "look up account: {} entries match {filter} under {}: {:?} and {:?}{}; \
             make user_filter match one person",
            found.len(),
            s.user_base,
            a.dn,
            b.dn,
            if found.len() > 2 { " and more" } else { "" }
        ))),
    }
}

/// A group as looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Group {
    /// Found, at this DN.
    Found(String),
    /// The entitlement's DN was read and the server says there is no such entry.
    Absent(String),
    /// A search by name found nothing: absent, or hidden from us.
    NotFound(String),
}

/// Whether an entitlement is written as a DN rather than a name.
pub fn is_dn(entitlement: &str) -> bool {
    entitlement.contains('=') && entitlement.contains(',')
}

/// `dn` lies under `base` (compared case-insensitively, spaces after commas ignored).
pub fn under(dn: &str, base: &str) -> bool {
    let norm = |s: &str| {
        s.split(',')
            .map(|p| p.trim().to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    let (d, b) = (norm(dn), norm(base));
    d.len() > b.len() && d[d.len() - b.len()..] == b[..]
}

/// Finds an entitlement's group: a DN is read (base object), a name is searched as
/// `cn=NAME` among `group_object_class` entries anywhere under `group_base`. With
/// `any_kind` (revoking), any entry listing members counts too — the groups the re-read
/// reports — so what the re-read finds can be taken away.
pub async fn find_group(
    c: &mut Conn,
    s: &LdapSettings,
    entitlement: &str,
    any_kind: bool,
) -> Result<Group, ConnectorError> {
    let mut oc_filter = format!("(objectClass={})", ldap_escape(&s.group_object_class));
    if any_kind {
        let listed: String = MemberAttribute::ALL
            .iter()
            .map(|a| format!("({}=*)", a.name()))
            .chain(GROUP_CLASSES.iter().map(|c| format!("(objectClass={c})")))
            .collect();
        oc_filter = format!("(|{oc_filter}{listed})");
    }
    if is_dn(entitlement) {
        if !under(entitlement, &s.group_base) {
            return Err(ConnectorError::Permanent(format!(
                "group {entitlement:?} is not under group_base {:?}, where the re-read looks",
                s.group_base
            )));
        }
        let res = c
            .search(entitlement, Scope::Base, &oc_filter, vec!["1.1"])
            .await
            .map_err(|e| ldap_error("look up group", e))?;
        return match res.1.rc {
            RC_NO_SUCH_OBJECT => Ok(Group::Absent(entitlement.to_owned())),
            RC_SUCCESS => match entries(res.0).into_iter().next() {
                Some(e) => Ok(Group::Found(e.dn)),
                None => Err(ConnectorError::Permanent(format!(
                    "group {entitlement:?} exists but is not a {}",
                    s.group_object_class
                ))),
            },
            _ => Err(rc_error("look up group", &res.1)),
        };
    }
    let filter = format!("(&{oc_filter}(cn={}))", ldap_escape(entitlement));
    let res = c
        .search(&s.group_base, Scope::Subtree, &filter, vec!["1.1"])
        .await
        .map_err(|e| ldap_error("look up group", e))?;
    match res.1.rc {
        RC_SUCCESS => {}
        RC_NO_SUCH_OBJECT => {
            return Err(ConnectorError::Permanent(format!(
                "look up group: group_base {:?} does not exist",
                s.group_base
            )));
        }
        _ => return Err(rc_error("look up group", &res.1)),
    }
    let found = entries(res.0);
    match found.as_slice() {
        [] => Ok(Group::NotFound(format!(
            "no {} named {entitlement:?} under {}",
            s.group_object_class, s.group_base
        ))),
        [e] => Ok(Group::Found(e.dn.clone())),
        [a, b, ..] => Err(ConnectorError::Permanent(format!(
            "{} groups are named {entitlement:?} under {}: {:?} and {:?}; give the \
             entitlement as a full DN",
            found.len(),
            s.group_base,
            a.dn,
            b.dn
        ))),
    }
}

/// Asks the server whether `group` lists `value` in `attr` (LDAP Compare: the answer is the
/// server's, by its matching rules; an entry without the attribute has no members).
pub async fn is_member(
    c: &mut Conn,
    group: &str,
    attr: MemberAttribute,
    value: &str,
) -> Result<bool, ConnectorError> {
    let r = c
        .compare(group, attr.name(), value)
        .await
        .map_err(|e| ldap_error("read group", e))?;
    match r.0.rc {
        RC_COMPARE_TRUE => Ok(true),
        // No such attribute in the entry, or in the schema: it lists nobody.
        RC_COMPARE_FALSE | RC_NO_SUCH_ATTRIBUTE | RC_UNDEFINED_TYPE => Ok(false),
        _ => Err(rc_error(&format!("read group {group}"), &r.0)),
    }
}

/// The groups under `group_base` (subtree) that list `user` through any membership attribute:
/// `member` and `uniqueMember` by DN, `memberUid` by uid. A result the server cut short or
/// a base it cannot find is not a trusted "none".
pub async fn groups_of(
    c: &mut Conn,
    s: &LdapSettings,
    user: Option<&User>,
    who: &Subject,
) -> Result<Vec<SearchEntry>, ConnectorError> {
    let mut terms = Vec::new();
    for a in MemberAttribute::ALL {
        match (a.by_dn(), user) {
            (true, Some(u)) => terms.push(format!("({}={})", a.name(), ldap_escape(&u.dn))),
            (true, None) => {}
            (false, _) => {
                let uid = user
                    .and_then(|u| u.uid.clone())
                    .unwrap_or_else(|| who.handle.as_str().to_owned());
                terms.push(format!("({}={})", a.name(), ldap_escape(&uid)));
            }
        }
    }
    let filter = format!("(|{})", terms.concat());
    let res = c
        .search(&s.group_base, Scope::Subtree, &filter, vec!["cn"])
        .await
        .map_err(|e| ldap_error("list groups", e))?;
    match res.1.rc {
        RC_SUCCESS | RC_REFERRAL => Ok(entries(res.0)),
        RC_NO_SUCH_OBJECT => Err(ConnectorError::Unverifiable(format!(
            "group_base {:?} does not exist, so no membership can be read",
            s.group_base
        ))),
        RC_SIZE_LIMIT => Err(ConnectorError::Unverifiable(format!(
            "the server cut the list of groups short (sizeLimitExceeded) under {}",
            s.group_base
        ))),
        _ => Err(ConnectorError::Unverifiable(
            rc_error("list groups", &res.1).to_string(),
        )),
    }
}

/// The name a listed group is reported by: its `cn` (what an entitlement names), or its DN
/// when it has none.
pub fn group_name(e: &SearchEntry) -> String {
    attr(e, "cn")
        .and_then(|v| v.first().cloned())
        .unwrap_or_else(|| e.dn.clone())
}

/// The modification that disables `user` by `method`; `None` when already disabled.
pub fn disable_mods(method: DisableMethod, user: &User) -> Option<Vec<Mod<String>>> {
    if !user.active(method) {
        return None;
    }
    let one = |v: &str| HashSet::from([v.to_owned()]);
    Some(match method {
        // A temporary lock (failed logins) is replaced by the permanent one.
        DisableMethod::Ppolicy if !user.lock.is_empty() => vec![Mod::Replace(
            "pwdAccountLockedTime".into(),
            one(LOCKED_FOREVER),
        )],
        DisableMethod::Ppolicy => {
            vec![Mod::Add("pwdAccountLockedTime".into(), one(LOCKED_FOREVER))]
        }
        DisableMethod::NsAccountLock => {
            vec![Mod::Replace("nsAccountLock".into(), one("TRUE"))]
        }
        DisableMethod::ActiveDirectory => uac_swap(user, |v| v | UAC_DISABLED),
        DisableMethod::None => return None,
    })
}

/// The modification that enables `user` by `method`; `None` when already enabled.
pub fn enable_mods(method: DisableMethod, user: &User) -> Option<Vec<Mod<String>>> {
    if user.active(method) {
        return None;
    }
    Some(match method {
        DisableMethod::Ppolicy => vec![Mod::Delete("pwdAccountLockedTime".into(), HashSet::new())],
        DisableMethod::NsAccountLock => vec![Mod::Delete("nsAccountLock".into(), HashSet::new())],
        DisableMethod::ActiveDirectory => uac_swap(user, |v| v & !UAC_DISABLED),
        DisableMethod::None => return None,
    })
}

/// Read-modify-write of `userAccountControl` as one conditional change: deleting the value
/// read fails (noSuchAttribute) if someone changed it meanwhile, so no other bit is lost.
fn uac_swap(user: &User, f: impl Fn(u32) -> u32) -> Vec<Mod<String>> {
    let old = user.lock.first().cloned();
    let new = f(uac(old.as_deref())).to_string();
    match old {
        Some(old) => vec![
            Mod::Delete("userAccountControl".into(), HashSet::from([old])),
            Mod::Add("userAccountControl".into(), HashSet::from([new])),
        ],
        None => vec![Mod::Add("userAccountControl".into(), HashSet::from([new]))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(lock: &[&str]) -> User {
        User {
            dn: "cn=Frank Li,ou=users,dc=x".into(),
            uid: Some("frank".into()),
            lock: lock.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn each_method_reads_its_own_attribute() {
        use DisableMethod::*;
        assert!(user(&[]).active(Ppolicy));
        assert!(user(&["20260101000000Z"]).active(Ppolicy));
        assert!(!user(&[LOCKED_FOREVER]).active(Ppolicy));
        assert!(!user(&["true"]).active(NsAccountLock));
        assert!(user(&["FALSE"]).active(NsAccountLock));
        assert!(user(&["512"]).active(ActiveDirectory));
        assert!(!user(&["514"]).active(ActiveDirectory));
        assert!(user(&["514"]).active(None));
    }

    #[test]
    fn active_directory_keeps_every_other_bit() {
        let u = user(&["66048"]); // NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD
        let m = disable_mods(DisableMethod::ActiveDirectory, &u).unwrap();
        assert_eq!(
            m,
            vec![
                Mod::Delete("userAccountControl".into(), HashSet::from(["66048".into()])),
                Mod::Add("userAccountControl".into(), HashSet::from(["66050".into()])),
            ]
        );
        let d = user(&["66050"]);
        let m = enable_mods(DisableMethod::ActiveDirectory, &d).unwrap();
        assert_eq!(
            m[1],
            Mod::Add("userAccountControl".into(), HashSet::from(["66048".into()]))
        );
    }

    #[test]
    fn dns_under_a_base() {
        assert!(under("cn=wiki,ou=apps,ou=groups,dc=x", "ou=groups, dc=X"));
        assert!(!under("ou=groups,dc=x", "ou=groups,dc=x"));
        assert!(!under("cn=wiki,ou=other,dc=x", "ou=groups,dc=x"));
        assert!(is_dn("cn=wiki,ou=groups,dc=x") && !is_dn("wiki-editors"));
    }
}

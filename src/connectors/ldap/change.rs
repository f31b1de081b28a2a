//! The changes the connector makes: groups found or created, members added and removed,
//! people created, accounts locked and unlocked.

use std::collections::HashSet;

use ldap3::{Ldap as Conn, Mod, dn_escape};

use super::codes::{
    RC_ALREADY_EXISTS, RC_NO_SUCH_ATTRIBUTE, RC_OBJECT_CLASS_VIOLATION, RC_SUCCESS, RC_UNWILLING,
    RC_VALUE_EXISTS, ldap_error, rc_error,
};
use super::dir::{self, Group, User};
use super::{DisableMethod, LdapSettings, MemberAttribute};
use crate::core::ports::{ConnectorError, Effect, Subject};

/// The group to add to: found, or (with `create_groups`) to be created at `cn=NAME,group_base`.
pub(super) enum GrantTarget {
    Existing(String),
    Create { dn: String, cn: String },
}

pub(super) async fn group_for_grant(
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
pub(super) async fn add_to_group(
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
pub(super) async fn create_user(
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
pub(super) async fn set_lock(
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
pub(super) async fn remove_member(
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

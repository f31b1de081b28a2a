//! Listing what the directory holds (drift, issue 20): every account under `user_base`, read
//! with the paged-results control (RFC 2696) so that no server size limit cuts it short, and
//! every member of a group, following Active Directory's ranged retrieval
//! (`member;range=N-*`) until the last range.
//!
//! A listing is never partial: any page that fails, a result code other than success on any
//! page (sizeLimitExceeded above all), a range the server stops answering, or a dropped
//! connection fails the whole listing, so nothing is ever reported absent on the strength of
//! a list that was cut short.

use ldap3::controls::{Control, ControlType, PagedResults};
use ldap3::{Ldap as Conn, Scope, SearchEntry, ldap_escape};

use super::codes::{RC_NO_SUCH_OBJECT, RC_SUCCESS, ldap_error, rc_error};
use super::dir::{self, Group, User};
use super::settings::{LdapSettings, MemberAttribute, UserScope};
use crate::core::ports::{ConnectorError, Listed};

/// How many entries each page of an account listing asks for (under every common server's
/// default size limit: slapd 500, 389 DS 2000, Active Directory 1000).
pub const PAGE_SIZE: i32 = 500;

const RC_SIZE_LIMIT: u32 = 4;

/// The most ranged reads a group's members may take (AD gives 1500 values a range, so this
/// is millions of members); a server that keeps answering beyond it is not trusted.
const MAX_RANGES: usize = 10_000;

/// The filter that lists every account: an entry of each object class the connector creates
/// people with (`top` left out), so the listing finds the kind of entry `user_filter` looks
/// for, whatever the person. `user_filter` itself is a per-person template and is not used.
pub fn account_filter(s: &LdapSettings) -> String {
    let classes: Vec<String> = s
        .user_object_classes
        .iter()
        .filter(|c| !c.eq_ignore_ascii_case("top"))
        .map(|c| format!("(objectClass={})", ldap_escape(c)))
        .collect();
    match classes.as_slice() {
        [] => "(objectClass=*)".to_owned(),
        [one] => one.clone(),
        _ => format!("(&{})", classes.concat()),
    }
}

/// The attribute a person's login is kept in: the one `user_filter` compares `{handle}` with
/// (`uid`, AD's `sAMAccountName`); `uid` when the filter does not say.
pub fn login_attribute(s: &LdapSettings) -> String {
    let t = s.user_filter.as_str();
    t.find("={handle}")
        .map(|end| {
            let head = &t[..end];
            let start = head.rfind(['(', '|', '&', '!']).map_or(0, |i| i + 1);
            head[start..].trim().to_owned()
        })
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "uid".to_owned())
}

fn values<'a>(e: &'a SearchEntry, name: &str) -> &'a [String] {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or(&[], |(_, v)| v.as_slice())
}

fn has_value(e: &SearchEntry, name: &str, value: &str) -> bool {
    values(e, name)
        .iter()
        .any(|v| v.eq_ignore_ascii_case(value))
}

/// One account entry as listed.
fn listed_account(s: &LdapSettings, login_attr: &str, e: &SearchEntry) -> Listed {
    let login = values(e, login_attr)
        .first()
        .or_else(|| values(e, "uid").first())
        .cloned();
    // `disable = "none"` reads no attribute and says nothing about whether it is enabled.
    let active = s.disable.attribute().map(|a| {
        User {
            dn: e.dn.clone(),
            uid: None,
            lock: values(e, a).to_vec(),
        }
        .active(s.disable)
    });
    Listed {
        id: e.dn.clone(),
        login,
        emails: values(e, "mail").to_vec(),
        active,
    }
}

/// The paged-results cookie of a page's result; empty when it was the last page (or the
/// server did not page at all, having then sent everything or failed with a result code).
fn next_cookie(res: &ldap3::LdapResult) -> Result<Vec<u8>, ConnectorError> {
    for c in &res.ctrls {
        if let Control(Some(ControlType::PagedResults), raw) = c {
            if raw.val.is_none() {
                return Err(ConnectorError::Unverifiable(
                    "list accounts: the server's paged-results answer has no value".into(),
                ));
            }
            return Ok(raw.parse::<PagedResults>().cookie);
        }
    }
    Ok(Vec::new())
}

/// A page's result code as the listing reads it: anything but success fails the listing.
fn page_error(s: &LdapSettings, r: &ldap3::LdapResult) -> ConnectorError {
    match r.rc {
        RC_SIZE_LIMIT => ConnectorError::Unverifiable(format!(
            "list accounts: the server cut the listing under {} short (sizeLimitExceeded), so \
             it is not the whole list",
            s.user_base
        )),
        RC_NO_SUCH_OBJECT => ConnectorError::Permanent(format!(
            "list accounts: user_base {:?} does not exist",
            s.user_base
        )),
        _ => rc_error("list accounts", r),
    }
}

/// Every account under `user_base` (with `user_scope`), in pages of `page_size` entries;
/// Active Directory's computer accounts (a kind of `user`) left out.
pub async fn accounts(
    c: &mut Conn,
    s: &LdapSettings,
    page_size: i32,
) -> Result<Vec<Listed>, ConnectorError> {
    let filter = account_filter(s);
    let scope = match s.user_scope {
        UserScope::One => Scope::OneLevel,
        UserScope::Sub => Scope::Subtree,
    };
    let login_attr = login_attribute(s);
    let mut attrs = vec![login_attr.clone(), "uid".into(), "mail".into()];
    attrs.push("objectClass".into());
    attrs.extend(s.disable.attribute().map(str::to_owned));
    let mut out = Vec::new();
    let mut cookie = Vec::new();
    loop {
        let control = PagedResults {
            size: page_size,
            cookie: std::mem::take(&mut cookie),
        };
        let ldap3::SearchResult(rs, res) = c
            .with_controls(control)
            .search(&s.user_base, scope, &filter, attrs.clone())
            .await
            .map_err(|e| ldap_error("list accounts", e))?;
        if res.rc != RC_SUCCESS {
            return Err(page_error(s, &res));
        }
        for e in rs.into_iter().filter(|e| !e.is_ref()) {
            let e = SearchEntry::construct(e);
            if has_value(&e, "objectClass", "computer") {
                continue;
            }
            out.push(listed_account(s, &login_attr, &e));
        }
        cookie = next_cookie(&res)?;
        if cookie.is_empty() {
            return Ok(out);
        }
    }
}

/// The group an entitlement names, found as grants find it; absent is `NotFound`.
async fn group_dn(
    c: &mut Conn,
    s: &LdapSettings,
    entitlement: &str,
) -> Result<String, ConnectorError> {
    match dir::find_group(c, s, entitlement, false).await? {
        Group::Found(dn) => Ok(dn),
        Group::Absent(dn) => Err(ConnectorError::NotFound(format!(
            "list members: there is no group {dn}"
        ))),
        Group::NotFound(why) => Err(ConnectorError::NotFound(format!("list members: {why}"))),
    }
}

/// One range of a ranged attribute: its values, and where the next range starts (`None`
/// after the last).
type Range = (Vec<String>, Option<u64>);

/// A ranged attribute of `e` (`member;range=LO-HI`): its values, and the start of the next
/// range (`None` when HI is `*`, the last range).
fn ranged(e: &SearchEntry, attr: &str) -> Option<Result<Range, String>> {
    let prefix = format!("{};range=", attr.to_ascii_lowercase());
    let (key, vals) = e
        .attrs
        .iter()
        .find(|(k, _)| k.to_ascii_lowercase().starts_with(&prefix))?;
    let range = &key[prefix.len()..];
    let Some((lo, hi)) = range.split_once('-') else {
        return Some(Err(format!("unreadable range {key:?}")));
    };
    if hi == "*" {
        return Some(Ok((vals.clone(), None)));
    }
    match (lo.parse::<u64>(), hi.parse::<u64>()) {
        (Ok(lo), Ok(hi)) if hi >= lo => Some(Ok((vals.clone(), Some(hi + 1)))),
        _ => Some(Err(format!("unreadable range {key:?}"))),
    }
}

/// Reads `attrs` of the group entry; `NotFound` if it went away meanwhile.
async fn read_group(
    c: &mut Conn,
    group: &str,
    attrs: Vec<String>,
) -> Result<SearchEntry, ConnectorError> {
    let ldap3::SearchResult(rs, res) = c
        .search(group, Scope::Base, "(objectClass=*)", attrs)
        .await
        .map_err(|e| ldap_error("list members", e))?;
    match res.rc {
        RC_SUCCESS => {}
        RC_NO_SUCH_OBJECT => {
            return Err(ConnectorError::NotFound(format!(
                "list members: there is no group {group}"
            )));
        }
        _ => return Err(rc_error(&format!("list members of {group}"), &res)),
    }
    rs.into_iter()
        .find(|e| !e.is_ref())
        .map(SearchEntry::construct)
        .ok_or_else(|| {
            ConnectorError::Unverifiable(format!("list members: the server did not return {group}"))
        })
}

/// Every value of `attr` in the group: the plain attribute, or every range of it.
async fn attr_values(
    c: &mut Conn,
    group: &str,
    first: &SearchEntry,
    attr: &str,
) -> Result<Vec<String>, ConnectorError> {
    let mut out = values(first, attr).to_vec();
    let broken = |why: String| {
        ConnectorError::Unverifiable(format!("list members of {group}: {attr}: {why}"))
    };
    let mut next = match ranged(first, attr) {
        None => return Ok(out),
        Some(r) => {
            let (vals, next) = r.map_err(broken)?;
            out.extend(vals);
            next
        }
    };
    let mut reads = 0;
    while let Some(lo) = next {
        reads += 1;
        if reads > MAX_RANGES {
            return Err(broken(format!("more than {MAX_RANGES} ranges")));
        }
        let e = read_group(c, group, vec![format!("{attr};range={lo}-*")]).await?;
        let Some(r) = ranged(&e, attr) else {
            return Err(broken(format!("no answer for the range from {lo}")));
        };
        let (vals, after) = r.map_err(broken)?;
        if after.is_some_and(|a| a <= lo) {
            return Err(broken(format!("the range from {lo} does not advance")));
        }
        out.extend(vals);
        next = after;
    }
    Ok(out)
}

/// A DN compared loosely: lower case, no spaces around the commas.
fn norm_dn(dn: &str) -> String {
    dn.split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

/// The value of a DN's first RDN when its attribute is `attr` (a single-valued RDN), with
/// the DN escapes (`\,`, `\2C`) undone.
pub fn rdn_value(dn: &str, attr: &str) -> Option<String> {
    let (k, rest) = dn.split_once('=')?;
    if !k.trim().eq_ignore_ascii_case(attr) {
        return None;
    }
    let mut out = Vec::new();
    let mut bytes = rest.trim_start().bytes();
    while let Some(b) = bytes.next() {
        match b {
            b',' | b';' => break,
            b'+' => return None,
            b'\\' => {
                let a = bytes.next()?;
                if a.is_ascii_hexdigit() {
                    let lo = bytes.next()?;
                    let hex = [a, lo];
                    let s = std::str::from_utf8(&hex).ok()?;
                    out.push(u8::from_str_radix(s, 16).ok()?);
                } else {
                    out.push(a);
                }
            }
            _ => out.push(b),
        }
    }
    let v = String::from_utf8(out).ok()?.trim_end().to_owned();
    (!v.is_empty()).then_some(v)
}

/// Every member of the entitlement's group, through each membership attribute (`member` and
/// `uniqueMember` by DN, `memberUid` by uid), the placeholder member left out.
pub async fn members(
    c: &mut Conn,
    s: &LdapSettings,
    entitlement: &str,
) -> Result<Vec<Listed>, ConnectorError> {
    let group = group_dn(c, s, entitlement).await?;
    let names: Vec<String> = MemberAttribute::ALL
        .iter()
        .map(|a| a.name().to_owned())
        .collect();
    let first = read_group(c, &group, names).await?;
    let login_attr = login_attribute(s);
    let placeholder = s.placeholder_member.as_deref().map(norm_dn);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for a in MemberAttribute::ALL {
        for v in attr_values(c, &group, &first, a.name()).await? {
            let key = if a.by_dn() {
                norm_dn(&v)
            } else {
                v.to_lowercase()
            };
            if placeholder.as_deref() == Some(key.as_str()) || !seen.insert(key) {
                continue;
            }
            let login = if a.by_dn() {
                rdn_value(&v, &login_attr)
            } else {
                Some(v.clone())
            };
            out.push(Listed {
                id: v,
                login,
                emails: Vec::new(),
                active: None,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::ldap::Preset;

    fn preset(p: Preset) -> LdapSettings {
        LdapSettings::preset(
            p,
            "ldap://127.0.0.1",
            "cn=a",
            secrecy::SecretString::from("p"),
            "ou=p",
            "ou=g",
        )
    }

    #[test]
    fn listing_filters_and_login_attributes_follow_the_settings() {
        let o = preset(Preset::OpenLdap);
        assert_eq!(
            account_filter(&o),
            "(&(objectClass=person)(objectClass=organizationalPerson)(objectClass=inetOrgPerson))"
        );
        assert_eq!(login_attribute(&o), "uid");
        let ad = preset(Preset::ActiveDirectory);
        assert_eq!(login_attribute(&ad), "sAMAccountName");
        let mut mail_only = o.clone();
        mail_only.user_filter = super::super::Template::parse("(mail={email})").unwrap();
        assert_eq!(login_attribute(&mail_only), "uid");
    }

    #[test]
    fn rdn_values_are_unescaped_and_only_for_the_login_attribute() {
        assert_eq!(
            rdn_value("uid=alice,ou=people,dc=x", "uid").as_deref(),
            Some("alice")
        );
        assert_eq!(
            rdn_value("UID=a\\2Cb\\+c,ou=people", "uid").as_deref(),
            Some("a,b+c")
        );
        assert_eq!(rdn_value("cn=Alice Kim,ou=users", "uid"), None);
        assert_eq!(rdn_value("uid=a+cn=b,ou=users", "uid"), None);
    }

    #[test]
    fn ranges_are_read_to_the_last() {
        let e = |k: &str| SearchEntry {
            dn: "cn=g".into(),
            attrs: [(k.to_owned(), vec!["a".to_owned()])].into(),
            bin_attrs: Default::default(),
        };
        assert_eq!(
            ranged(&e("member;range=0-1499"), "member"),
            Some(Ok((vec!["a".into()], Some(1500))))
        );
        assert_eq!(
            ranged(&e("member;range=1500-*"), "member"),
            Some(Ok((vec!["a".into()], None)))
        );
        assert_eq!(ranged(&e("member"), "member"), None);
        assert!(matches!(
            ranged(&e("member;range=x"), "member"),
            Some(Err(_))
        ));
    }
}

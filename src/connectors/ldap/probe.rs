//! `check --probe` for an LDAP connector: bind (TLS as configured), read the root DSE (vendor,
//! naming contexts, StartTLS), look for both bases, and read the schema to see which disable
//! methods, group classes and member attributes it knows; every disagreement with the
//! settings is a warning. It reads; it changes nothing.

use std::time::Duration;

use ldap3::{Ldap, Scope, SearchEntry};

use super::settings::{DisableMethod, LdapSettings};

const STARTTLS_OID: &str = "1.3.6.1.4.1.1466.20037";
const AD_CAPABILITY_OID: &str = "1.2.840.113556.1.4.800";

/// What the probe found.
#[derive(Debug, Clone, Default)]
pub struct LdapProbe {
    /// One line per fact seen.
    pub facts: Vec<String>,
    /// Where the settings and the server disagree.
    pub warnings: Vec<String>,
    /// What does not work.
    pub failures: Vec<String>,
}

fn get<'a>(e: &'a SearchEntry, name: &str) -> &'a [String] {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or(&[], |(_, v)| v.as_slice())
}

/// The product a root DSE belongs to.
pub fn vendor(dse: &SearchEntry) -> String {
    let caps = get(dse, "supportedCapabilities");
    if caps.iter().any(|c| c == AD_CAPABILITY_OID) || !get(dse, "forestFunctionality").is_empty() {
        return "Active Directory".into();
    }
    if let Some(v) = get(dse, "vendorName").first() {
        let version = get(dse, "vendorVersion")
            .first()
            .cloned()
            .unwrap_or_default();
        return format!("{v} {version}").trim().to_owned();
    }
    if get(dse, "structuralObjectClass")
        .iter()
        .any(|c| c.eq_ignore_ascii_case("OpenLDAProotDSE"))
    {
        return "OpenLDAP".into();
    }
    "an unnamed server".into()
}

/// The names a schema's `attributeTypes` or `objectClasses` values define (`( OID NAME 'a' …`
/// or `NAME ( 'a' 'b' )`), lower-cased.
pub fn schema_names(defs: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for d in defs {
        let Some(i) = d.find(" NAME ") else { continue };
        let rest = d[i + 6..].trim_start();
        let names = if let Some(list) = rest.strip_prefix('(') {
            list.split(')').next().unwrap_or("")
        } else {
            rest.split_whitespace().next().unwrap_or("")
        };
        out.extend(
            names
                .split_whitespace()
                .map(|n| n.trim_matches('\'').to_ascii_lowercase()),
        );
    }
    out
}

/// Runs the probe on a bound connection.
pub async fn run(conn: &mut Ldap, s: &LdapSettings) -> LdapProbe {
    let mut p = LdapProbe::default();
    let dse = root_dse(conn, &mut p).await;
    let contexts = match &dse {
        Some(dse) => check_root_dse(dse, s, &mut p),
        None => Vec::new(),
    };
    check_bases(conn, s, &contexts, &mut p).await;
    schema(conn, s, dse.as_ref(), &mut p).await;
    p
}

/// Reads the root DSE; a failure to read it is a probe failure.
async fn root_dse(conn: &mut Ldap, p: &mut LdapProbe) -> Option<SearchEntry> {
    match conn
        .search(
            "",
            Scope::Base,
            "(objectClass=*)",
            vec![
                "+",
                "*",
                "namingContexts",
                "vendorName",
                "vendorVersion",
                "supportedExtension",
                "supportedCapabilities",
                "subschemaSubentry",
                "forestFunctionality",
            ],
        )
        .await
        .and_then(ldap3::SearchResult::success)
    {
        Ok((rs, _)) => rs.into_iter().next().map(SearchEntry::construct),
        Err(e) => {
            p.failures.push(format!("root DSE: {e}"));
            None
        }
    }
}

/// The vendor and naming contexts the root DSE shows, and warnings where StartTLS or the
/// disable method disagree with it; returns the naming contexts.
fn check_root_dse(dse: &SearchEntry, s: &LdapSettings, p: &mut LdapProbe) -> Vec<String> {
    let v = vendor(dse);
    let contexts = get(dse, "namingContexts").to_vec();
    p.facts.push(format!(
        "root DSE: {v}; naming contexts {}",
        if contexts.is_empty() {
            "(none shown)".to_owned()
        } else {
            contexts.join(", ")
        }
    ));
    let starttls = get(dse, "supportedExtension")
        .iter()
        .any(|x| x == STARTTLS_OID);
    if s.starttls && !starttls {
        p.warnings
            .push("starttls = true, but the server does not list the StartTLS extension".into());
    }
    let expected = match v.as_str() {
        "Active Directory" => Some(DisableMethod::ActiveDirectory),
        x if x.starts_with("389") => Some(DisableMethod::NsAccountLock),
        "OpenLDAP" => Some(DisableMethod::Ppolicy),
        _ => None,
    };
    if let Some(m) = expected
        && s.disable != m
        && s.disable != DisableMethod::None
    {
        p.warnings.push(format!(
            "the server is {v}, whose accounts are disabled by {:?}, but disable = {:?}",
            m.as_str(),
            s.disable.as_str()
        ));
    }
    contexts
}

/// Whether `user_base` and `group_base` exist, and lie under one of the naming `contexts`.
async fn check_bases(conn: &mut Ldap, s: &LdapSettings, contexts: &[String], p: &mut LdapProbe) {
    for (key, base) in [("user_base", &s.user_base), ("group_base", &s.group_base)] {
        let found = conn
            .search(base, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await
            .and_then(ldap3::SearchResult::success)
            .map(|(rs, _)| !rs.is_empty())
            .unwrap_or(false);
        if found {
            p.facts.push(format!("{key} {base:?} exists"));
        } else {
            p.failures.push(format!("{key} {base:?} does not exist"));
        }
        if !contexts.is_empty()
            && !contexts
                .iter()
                .any(|c| c.eq_ignore_ascii_case(base) || super::dir::under(base, c))
        {
            p.warnings.push(format!(
                "{key} {base:?} is under none of the server's naming contexts"
            ));
        }
    }
}

/// Reads the subschema entry: which disable methods it can express, and whether the group
/// class and member attribute exist.
async fn schema(conn: &mut Ldap, s: &LdapSettings, dse: Option<&SearchEntry>, p: &mut LdapProbe) {
    let sub = dse
        .and_then(|d| get(d, "subschemaSubentry").first().cloned())
        .unwrap_or_else(|| "cn=Subschema".to_owned());
    let res = conn
        .search(
            &sub,
            Scope::Base,
            "(objectClass=subschema)",
            vec!["attributeTypes", "objectClasses"],
        )
        .await
        .and_then(ldap3::SearchResult::success);
    let Some(e) = res
        .ok()
        .and_then(|(rs, _)| rs.into_iter().next())
        .map(SearchEntry::construct)
    else {
        p.warnings.push(format!(
            "the schema ({sub}) cannot be read; nothing checked against it"
        ));
        return;
    };
    let attrs = schema_names(get(&e, "attributeTypes"));
    let classes = schema_names(get(&e, "objectClasses"));
    let has = |n: &str| attrs.iter().any(|a| a == &n.to_ascii_lowercase());
    let supported: Vec<&str> = [
        DisableMethod::Ppolicy,
        DisableMethod::NsAccountLock,
        DisableMethod::ActiveDirectory,
    ]
    .into_iter()
    .filter(|m| m.attribute().is_some_and(has))
    .map(DisableMethod::as_str)
    .collect();
    p.facts.push(format!(
        "the schema supports disable = {}",
        if supported.is_empty() {
            "none of ppolicy, nsaccountlock, active-directory".to_owned()
        } else {
            supported.join(", ")
        }
    ));
    if let Some(a) = s.disable.attribute()
        && !has(a)
    {
        p.warnings.push(format!(
            "disable = {:?} writes {a}, which the server's schema does not define",
            s.disable.as_str()
        ));
    }
    if !has(s.member_attribute.name()) {
        p.warnings.push(format!(
            "member_attribute {:?} is not in the server's schema",
            s.member_attribute.name()
        ));
    }
    if !classes
        .iter()
        .any(|c| c.eq_ignore_ascii_case(&s.group_object_class))
    {
        p.warnings.push(format!(
            "group_object_class {:?} is not in the server's schema",
            s.group_object_class
        ));
    }
}

/// Binds with `s` and probes, within `timeout`: `Ok` with what was seen (warnings included),
/// or `Err` saying what does not work.
pub async fn probe(s: &LdapSettings, timeout: Duration) -> Result<String, String> {
    let work = async {
        let mut conn = super::conn::bind(s, timeout)
            .await
            .map_err(|e| format!("bind as {}: {e}", s.bind_dn))?;
        let p = run(&mut conn, s).await;
        let _ = conn.unbind().await;
        let mut text = format!("bound as {}; {}", s.bind_dn, p.facts.join("; "));
        for w in &p.warnings {
            text.push_str(&format!("\n     WARN {w}"));
        }
        if p.failures.is_empty() {
            Ok(text)
        } else {
            Err(format!("{text}; but {}", p.failures.join("; ")))
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("{}: no answer within {timeout:?}", s.url))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_read_single_and_listed_names() {
        let defs = vec![
            "( 2.5.4.31 NAME 'member' SUP distinguishedName )".to_owned(),
            "( 2.5.4.3 NAME ( 'cn' 'commonName' ) SUP name )".to_owned(),
        ];
        assert_eq!(schema_names(&defs), ["member", "cn", "commonname"]);
    }
}

//! The keys of a `[[connector]]` of kind `ldap`: a preset fills the defaults, each key may
//! override one. `people_dn` / `groups_dn` (the first keys) still work, as `user_base` /
//! `group_base`.

use std::path::Path;

use super::{Cx, Rec};
use crate::connectors::ldap::{
    DisableMethod, LdapSettings, MemberAttribute, Preset, Template, UserScope,
};

/// Reads and checks an LDAP connector's settings; every problem is reported on its key.
pub(super) fn settings(cx: &mut Cx, rec: &Rec, base_dir: &Path) -> Option<LdapSettings> {
    let preset = match rec.string(cx, "preset") {
        None => Some(Preset::OpenLdap),
        Some(p) => Preset::parse(p).or_else(|| {
            cx.err(
                rec.at("preset"),
                format!(
                    "unknown preset {p:?} (use one of {})",
                    Preset::NAMES.join(", ")
                ),
            );
            None
        }),
    };
    let url = rec.req_string(cx, "url").and_then(|u| {
        let rest = u
            .strip_prefix("ldap://")
            .or_else(|| u.strip_prefix("ldaps://"));
        match rest {
            Some(r) if !r.is_empty() && !r.starts_with('/') => Some(u.to_owned()),
            _ => {
                cx.err(
                    rec.at("url"),
                    format!("{u:?} is not an ldap://host or ldaps://host URL"),
                );
                None
            }
        }
    });
    let bind_dn = non_empty(cx, rec, "bind_dn", None);
    let password = rec.secret(cx, "password_env");
    let user_base = non_empty(cx, rec, "user_base", Some("people_dn"));
    let group_base = non_empty(cx, rec, "group_base", Some("groups_dn"));
    let ok = preset.is_some();
    let preset = preset.unwrap_or(Preset::OpenLdap);
    let mut s = LdapSettings::preset(preset, url?, bind_dn?, password?, user_base?, group_base?);
    let users_ok = users(cx, rec, &mut s);
    let groups_ok = groups(cx, rec, &mut s);
    let transport_ok = transport(cx, rec, base_dir, &mut s);
    (ok && users_ok && groups_ok && transport_ok).then_some(s)
}

/// How user entries are found and written: `user_scope`, `user_filter`, `rdn`,
/// `user_object_classes`. `false` when one of them is wrong (reported).
fn users(cx: &mut Cx, rec: &Rec, s: &mut LdapSettings) -> bool {
    let mut ok = true;
    if let Some(v) = rec.string(cx, "user_scope") {
        match UserScope::parse(v) {
            Some(sc) => s.user_scope = sc,
            None => {
                ok = false;
                cx.err(
                    rec.at("user_scope"),
                    format!("{v:?}: use \"one\" or \"sub\""),
                );
            }
        }
    }
    for (key, slot) in [("user_filter", &mut s.user_filter), ("rdn", &mut s.rdn)] {
        if let Some(v) = rec.string(cx, key) {
            match Template::parse(v) {
                Ok(t) => *slot = t,
                Err(e) => {
                    ok = false;
                    cx.err(rec.at(key), e);
                }
            }
        }
    }
    if let Some(f) = rec.string(cx, "user_filter")
        && !(f.trim_start().starts_with('(') && f.trim_end().ends_with(')'))
    {
        ok = false;
        cx.err(
            rec.at("user_filter"),
            format!("{f:?} is not an LDAP filter (write it in parentheses)"),
        );
    }
    if let Some(r) = rec.string(cx, "rdn")
        && (!r.contains('=') || r.contains(','))
    {
        ok = false;
        cx.err(
            rec.at("rdn"),
            format!("{r:?} is not one RDN like \"uid={{handle}}\" or \"cn={{name}}\""),
        );
    }
    if let Some(v) = rec.strings(cx, "user_object_classes") {
        s.user_object_classes = v.into_iter().map(|(_, c)| c.to_owned()).collect();
    }
    ok
}

/// Groups, and what offboarding does: `group_object_class`, `member_attribute`, `disable`,
/// `create_users`, `create_groups`, `placeholder_member`. `false` when one is wrong.
fn groups(cx: &mut Cx, rec: &Rec, s: &mut LdapSettings) -> bool {
    let mut ok = true;
    if let Some(v) = non_empty_opt(cx, rec, "group_object_class") {
        s.group_object_class = v;
    }
    if let Some(v) = rec.string(cx, "member_attribute") {
        match MemberAttribute::parse(v) {
            Some(a) => s.member_attribute = a,
            None => {
                ok = false;
                cx.err(
                    rec.at("member_attribute"),
                    format!("{v:?}: use \"member\", \"uniqueMember\" or \"memberUid\""),
                );
            }
        }
    }
    if let Some(v) = rec.string(cx, "disable") {
        match DisableMethod::parse(v) {
            Some(d) => s.disable = d,
            None => {
                ok = false;
                cx.err(
                    rec.at("disable"),
                    format!(
                        "unknown method {v:?} (use one of {})",
                        DisableMethod::NAMES.join(", ")
                    ),
                );
            }
        }
    }
    if let Some(b) = rec.bool(cx, "create_users") {
        s.create_users = b;
    }
    if let Some(b) = rec.bool(cx, "create_groups") {
        s.create_groups = b;
    }
    s.placeholder_member = non_empty_opt(cx, rec, "placeholder_member");
    ok
}

/// How the connection is made safe: `starttls`, `allow_plaintext`, `ca_file` (resolved
/// against `base_dir`), and no bind password in clear text off loopback. `false` when wrong.
fn transport(cx: &mut Cx, rec: &Rec, base_dir: &Path, s: &mut LdapSettings) -> bool {
    let mut ok = true;
    if let Some(b) = rec.bool(cx, "starttls") {
        s.starttls = b;
    }
    if let Some(b) = rec.bool(cx, "allow_plaintext") {
        s.allow_plaintext = b;
    }
    if let Some(f) = non_empty_opt(cx, rec, "ca_file") {
        let path = base_dir.join(f);
        if !path.is_file() {
            ok = false;
            cx.err(
                rec.at("ca_file"),
                format!("{} is not a readable file", path.display()),
            );
        }
        s.ca_file = Some(path);
    }
    if s.starttls && s.url.starts_with("ldaps://") {
        ok = false;
        cx.err(
            rec.at("starttls"),
            "starttls is for ldap:// URLs; an ldaps:// URL is TLS from the start",
        );
    }
    if s.plaintext_off_loopback() && !s.allow_plaintext {
        ok = false;
        cx.err(
            rec.at("url"),
            format!(
                "{:?}: plain ldap:// to a host other than loopback would send the bind \
                 password in clear text; use ldaps://, set starttls = true, or set \
                 allow_plaintext = true",
                s.url
            ),
        );
    }
    ok
}

/// A required non-empty string, also accepted under its older name `alias`.
fn non_empty(cx: &mut Cx, rec: &Rec, key: &str, alias: Option<&str>) -> Option<String> {
    let used = match alias {
        Some(a) if !rec.has(key) && rec.has(a) => a,
        Some(a) if !rec.has(key) => {
            cx.err(
                rec.at(key),
                format!("required key is missing (a string; the older name {a} also works)"),
            );
            return None;
        }
        _ => key,
    };
    if alias.is_some_and(|a| rec.has(a) && rec.has(key)) {
        cx.err(
            rec.at(alias.unwrap_or_default()),
            format!("set either {key} or its older name, not both"),
        );
        return None;
    }
    let v = rec.req_string(cx, used)?;
    if v.trim().is_empty() {
        cx.err(rec.at(used), "must not be empty");
        None
    } else {
        Some(v.to_owned())
    }
}

/// An optional non-empty string.
fn non_empty_opt(cx: &mut Cx, rec: &Rec, key: &str) -> Option<String> {
    let v = rec.string(cx, key)?;
    if v.trim().is_empty() {
        cx.err(rec.at(key), "must not be empty");
        None
    } else {
        Some(v.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{ConnectorKind, parse};
    use crate::connectors::ldap::{DisableMethod, MemberAttribute, UserScope};

    const ORG: &str = r#"
[organization]
name = "T"
it_admins = ["dana"]

[[person]]
handle = "dana"
name = "Dana"
email = "dana@t.test"
role = "it-admin"

[[role]]
name = "it-admin"
apps = []

[[connector]]
name = "dir"
kind = "ldap"
bind_dn = "cn=qm,dc=t"
password_env = "PW"
"#;

    fn env(k: &str) -> Option<String> {
        (k == "PW").then(|| "pw".to_owned())
    }

    fn settings(keys: &str) -> Result<crate::connectors::ldap::LdapSettings, String> {
        let text = format!("{ORG}{keys}");
        let c = parse(&text, Path::new("."), &env).map_err(|e| e.to_string())?;
        match &c.connectors[0].kind {
            ConnectorKind::Ldap(s) => Ok((**s).clone()),
            other => Err(format!("not ldap: {other:?}")),
        }
    }

    #[test]
    fn the_first_keys_still_work_with_the_openldap_defaults() {
        let s = settings(
            "url = \"ldap://127.0.0.1:389\"\npeople_dn = \"ou=people,dc=t\"\n\
             groups_dn = \"ou=groups,dc=t\"\n",
        )
        .unwrap();
        assert_eq!(s.user_base, "ou=people,dc=t");
        assert_eq!(s.group_base, "ou=groups,dc=t");
        assert_eq!(s.user_filter.as_str(), "(|(uid={handle})(mail={email}))");
        assert_eq!(s.user_scope, UserScope::Sub);
        assert_eq!(s.disable, DisableMethod::Ppolicy);
        assert_eq!(s.member_attribute, MemberAttribute::Member);
        assert!(s.create_users && !s.create_groups && s.placeholder_member.is_none());
    }

    #[test]
    fn presets_fill_the_defaults_and_keys_override_them() {
        let base = "url = \"ldaps://dc1.corp.test\"\nuser_base = \"OU=Staff,DC=corp\"\n\
                    group_base = \"OU=Groups,DC=corp\"\n";
        let ad = settings(&format!("preset = \"active-directory\"\n{base}")).unwrap();
        assert_eq!(ad.disable, DisableMethod::ActiveDirectory);
        assert_eq!(ad.group_object_class, "group");
        assert!(!ad.create_users);
        let ds = settings(&format!(
            "preset = \"389ds\"\n{base}member_attribute = \"uniqueMember\"\n\
             group_object_class = \"groupOfUniqueNames\"\nuser_scope = \"one\"\n"
        ))
        .unwrap();
        assert_eq!(ds.disable, DisableMethod::NsAccountLock);
        assert_eq!(ds.member_attribute, MemberAttribute::UniqueMember);
        assert_eq!(ds.user_scope, UserScope::One);
    }

    #[test]
    fn plaintext_to_another_host_and_bad_values_are_refused_on_their_keys() {
        let e = settings(
            "url = \"ldap://ldap.t.test\"\nuser_base = \"ou=p,dc=t\"\ngroup_base = \"ou=g,dc=t\"\n",
        )
        .unwrap_err();
        assert!(
            e.contains("connector.dir.url") && e.contains("allow_plaintext = true"),
            "{e}"
        );
        for ok in ["starttls = true", "allow_plaintext = true"] {
            settings(&format!(
                "url = \"ldap://ldap.t.test\"\nuser_base = \"ou=p,dc=t\"\n\
                 group_base = \"ou=g,dc=t\"\n{ok}\n"
            ))
            .unwrap();
        }
        let e = settings(
            "url = \"ldaps://h\"\nuser_base = \"ou=p,dc=t\"\ngroup_base = \"ou=g,dc=t\"\n\
             preset = \"novell\"\nmember_attribute = \"members\"\ndisable = \"lock\"\n\
             user_filter = \"(uid={user})\"\nca_file = \"/nonexistent/ca.pem\"\n",
        )
        .unwrap_err();
        for want in [
            "connector.dir.preset: unknown preset \"novell\"",
            "connector.dir.member_attribute",
            "connector.dir.disable: unknown method \"lock\"",
            "connector.dir.user_filter",
            "{user}",
            "connector.dir.ca_file",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
        let e = settings(
            "url = \"ldaps://h\"\nuser_base = \"ou=p,dc=t\"\npeople_dn = \"ou=p,dc=t\"\n\
             group_base = \"ou=g,dc=t\"\n",
        )
        .unwrap_err();
        assert!(e.contains("not both"), "{e}");
    }
}

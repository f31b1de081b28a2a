//! The settings of one LDAP connector: how people and groups are found, how an account is
//! disabled, how the connection is secured, and the presets that fill them for the common
//! directories (`openldap`, `389ds`, `active-directory`).

use std::path::PathBuf;

use secrecy::SecretString;

use crate::core::ports::Subject;

/// How deep under `user_base` people are searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserScope {
    /// Directly under the base.
    One,
    /// Anywhere under the base.
    Sub,
}

impl UserScope {
    /// Reads `one` / `sub`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "one" | "onelevel" => Some(Self::One),
            "sub" | "subtree" => Some(Self::Sub),
            _ => None,
        }
    }
}

/// Which attribute of a group lists its members, and with which value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAttribute {
    /// `member: <user DN>` (`groupOfNames`, Active Directory `group`).
    Member,
    /// `uniqueMember: <user DN>` (`groupOfUniqueNames`).
    UniqueMember,
    /// `memberUid: <uid>` (`posixGroup`).
    MemberUid,
}

impl MemberAttribute {
    /// Every kind, in the order the re-read searches them.
    pub const ALL: [Self; 3] = [Self::Member, Self::UniqueMember, Self::MemberUid];

    /// Reads `member` / `uniqueMember` / `memberUid` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
    }

    /// The attribute's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::UniqueMember => "uniqueMember",
            Self::MemberUid => "memberUid",
        }
    }

    /// Whether its values are DNs (otherwise uids).
    pub fn by_dn(self) -> bool {
        !matches!(self, Self::MemberUid)
    }
}

/// How an account is disabled, and so how `active` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisableMethod {
    /// OpenLDAP ppolicy: `pwdAccountLockedTime: 000001010000Z`.
    Ppolicy,
    /// 389 DS / Red Hat IdM: `nsAccountLock: TRUE`.
    NsAccountLock,
    /// Active Directory: bit 2 (ACCOUNTDISABLE) of `userAccountControl`.
    ActiveDirectory,
    /// Memberships only: this connector never disables accounts.
    None,
}

impl DisableMethod {
    /// Every method, as written in the file.
    pub const NAMES: [&'static str; 4] = ["ppolicy", "nsaccountlock", "active-directory", "none"];

    /// Reads a method as written in the file.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ppolicy" => Some(Self::Ppolicy),
            "nsaccountlock" => Some(Self::NsAccountLock),
            "active-directory" | "ad" | "useraccountcontrol" => Some(Self::ActiveDirectory),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    /// As written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ppolicy => "ppolicy",
            Self::NsAccountLock => "nsaccountlock",
            Self::ActiveDirectory => "active-directory",
            Self::None => "none",
        }
    }

    /// The attribute it reads and writes (`None` for `none`).
    pub fn attribute(self) -> Option<&'static str> {
        match self {
            Self::Ppolicy => Some("pwdAccountLockedTime"),
            Self::NsAccountLock => Some("nsAccountLock"),
            Self::ActiveDirectory => Some("userAccountControl"),
            Self::None => None,
        }
    }
}

/// A directory product whose usual layout fills the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// OpenLDAP slapd with the ppolicy overlay (the default).
    OpenLdap,
    /// 389 Directory Server / Red Hat IdM.
    Ds389,
    /// Microsoft Active Directory (and Samba AD).
    ActiveDirectory,
}

impl Preset {
    /// Every preset, as written in the file.
    pub const NAMES: [&'static str; 3] = ["openldap", "389ds", "active-directory"];

    /// Reads a preset as written in the file.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "openldap" => Some(Self::OpenLdap),
            "389ds" | "389-ds" | "freeipa" | "idm" => Some(Self::Ds389),
            "active-directory" | "ad" | "samba" => Some(Self::ActiveDirectory),
            _ => None,
        }
    }
}

/// A template over a person's `{handle}`, `{email}` and `{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(String);

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 3] = ["handle", "email", "name"];

impl Template {
    /// Checks that every `{…}` is a known placeholder and braces balance.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(format!("{s:?}: a '{{' is never closed"));
            };
            let name = &after[..close];
            if !PLACEHOLDERS.contains(&name) {
                let hint = if name == "employee_id" {
                    " (Quartermaster keeps no employee ids yet)"
                } else {
                    ""
                };
                return Err(format!(
                    "{s:?}: unknown placeholder {{{name}}}{hint}; use {{handle}}, {{email}} or \
                     {{name}}"
                ));
            }
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("{s:?}: a '}}' has no '{{'"));
        }
        Ok(Self(s.to_owned()))
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Fills the placeholders with `who`'s values, each passed through `escape`.
    pub fn render(&self, who: &Subject, escape: impl Fn(&str) -> String) -> String {
        let name = if who.name.trim().is_empty() {
            who.handle.as_str()
        } else {
            who.name.trim()
        };
        self.0
            .replace("{handle}", &escape(who.handle.as_str()))
            .replace("{email}", &escape(who.email.as_str()))
            .replace("{name}", &escape(name))
    }
}

/// The settings of one LDAP connector (the `[[connector]]` keys of kind `ldap`).
#[derive(Debug, Clone)]
pub struct LdapSettings {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// The DN to bind as.
    pub bind_dn: String,
    /// The bind password. Never logged, never part of an error.
    pub password: SecretString,
    /// StartTLS on an `ldap://` URL before binding.
    pub starttls: bool,
    /// A PEM file of the CA certificates to trust (otherwise the system's).
    pub ca_file: Option<PathBuf>,
    /// Plain `ldap://` without StartTLS to a host other than loopback is allowed.
    pub allow_plaintext: bool,
    /// Where people are searched.
    pub user_base: String,
    /// How deep under `user_base`.
    pub user_scope: UserScope,
    /// The filter that finds one person, e.g. `(|(uid={handle})(mail={email}))`.
    pub user_filter: Template,
    /// Whether a person not found is created (`false`: a clear error instead).
    pub create_users: bool,
    /// The RDN of a created person, e.g. `uid={handle}`.
    pub rdn: Template,
    /// The object classes of a created person.
    pub user_object_classes: Vec<String>,
    /// Where groups are searched (subtree-wide); a created group is `cn=NAME,group_base`.
    pub group_base: String,
    /// The object class of a group.
    pub group_object_class: String,
    /// The attribute that lists a group's members.
    pub member_attribute: MemberAttribute,
    /// Whether a missing group is created (default off: a clear error).
    pub create_groups: bool,
    /// A value kept in every group this connector creates or empties (for schemas such as
    /// `groupOfNames` that demand one member).
    pub placeholder_member: Option<String>,
    /// How accounts are disabled.
    pub disable: DisableMethod,
}

impl LdapSettings {
    /// The defaults of `preset` for a directory at `url` with people under `user_base` and
    /// groups under `group_base`.
    pub fn preset(
        preset: Preset,
        url: impl Into<String>,
        bind_dn: impl Into<String>,
        password: SecretString,
        user_base: impl Into<String>,
        group_base: impl Into<String>,
    ) -> Self {
        let t = |s: &str| Template(s.to_owned());
        let classes = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        let inet = ["top", "person", "organizationalPerson", "inetOrgPerson"];
        let (filter, create_users, rdn, user_classes, group_oc, disable) = match preset {
            Preset::OpenLdap => (
                "(|(uid={handle})(mail={email}))",
                true,
                "uid={handle}",
                classes(&inet),
                "groupOfNames",
                DisableMethod::Ppolicy,
            ),
            Preset::Ds389 => (
                "(|(uid={handle})(mail={email}))",
                true,
                "uid={handle}",
                classes(&inet),
                "groupOfNames",
                DisableMethod::NsAccountLock,
            ),
            Preset::ActiveDirectory => (
                "(|(sAMAccountName={handle})(mail={email})(userPrincipalName={email}))",
                false,
                "cn={name}",
                classes(&["top", "person", "organizationalPerson", "user"]),
                "group",
                DisableMethod::ActiveDirectory,
            ),
        };
        Self {
            url: url.into(),
            bind_dn: bind_dn.into(),
            password,
            starttls: false,
            ca_file: None,
            allow_plaintext: false,
            user_base: user_base.into(),
            user_scope: UserScope::Sub,
            user_filter: t(filter),
            create_users,
            rdn: t(rdn),
            user_object_classes: user_classes,
            group_base: group_base.into(),
            group_object_class: group_oc.to_owned(),
            member_attribute: MemberAttribute::Member,
            create_groups: false,
            placeholder_member: None,
            disable,
        }
    }

    /// The host of the URL (without port), if it has one.
    pub fn host(&self) -> Option<&str> {
        let rest = self
            .url
            .strip_prefix("ldaps://")
            .or_else(|| self.url.strip_prefix("ldap://"))?;
        let hostport = rest.split('/').next().unwrap_or(rest);
        let host = if let Some(v6) = hostport.strip_prefix('[') {
            v6.split(']').next().unwrap_or(v6)
        } else {
            hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
        };
        (!host.is_empty()).then_some(host)
    }

    /// Whether the bind password would cross the network in clear text to another machine.
    pub fn plaintext_off_loopback(&self) -> bool {
        if self.url.starts_with("ldaps://") || self.starttls {
            return false;
        }
        !self.host().is_some_and(is_loopback)
    }
}

/// `localhost`, `127.x.y.z` or `::1`.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{Email, Handle};

    #[test]
    fn templates_escape_values_and_refuse_unknown_placeholders() {
        let t = Template::parse("(|(mail={email})(uid={handle}))").unwrap();
        let who = Subject {
            handle: Handle::parse("frank").unwrap(),
            name: "Frank Li".into(),
            email: Email::parse("frank@acme.test").unwrap(),
        };
        assert_eq!(
            t.render(&who, |v| ldap3::ldap_escape(v).into_owned()),
            "(|(mail=frank@acme.test)(uid=frank))"
        );
        let cn = Template::parse("cn={name}").unwrap();
        assert_eq!(
            cn.render(&who, |v| ldap3::dn_escape(v).into_owned()),
            "cn=Frank Li"
        );
        assert!(Template::parse("(uid={user})").is_err());
        assert!(
            Template::parse("(employeeNumber={employee_id})")
                .unwrap_err()
                .contains("employee ids")
        );
        assert!(Template::parse("(uid={handle)").is_err());
    }

    #[test]
    fn plaintext_is_judged_by_host_and_tls() {
        let mut s = LdapSettings::preset(
            Preset::OpenLdap,
            "ldap://127.0.0.1:389",
            "cn=a",
            SecretString::from("p"),
            "ou=p",
            "ou=g",
        );
        assert!(!s.plaintext_off_loopback());
        s.url = "ldap://ldap.acme.test".into();
        assert!(s.plaintext_off_loopback());
        s.starttls = true;
        assert!(!s.plaintext_off_loopback());
        s.starttls = false;
        s.url = "ldaps://ldap.acme.test:636".into();
        assert!(!s.plaintext_off_loopback());
        s.url = "ldap://[::1]:389".into();
        assert!(!s.plaintext_off_loopback());
    }
}

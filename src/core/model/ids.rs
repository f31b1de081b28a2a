//! Checked identifiers: handles, app, role and connector names, emails and row ids.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an identifier, email or duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn check_slug(kind: &str, s: &str, allow_upper: bool) -> Result<(), ParseError> {
    if s.is_empty() {
        return Err(ParseError(format!("{kind} must not be empty")));
    }
    if s.len() > 64 {
        return Err(ParseError(format!(
            "{kind} \"{s}\" is longer than 64 characters"
        )));
    }
    let ok = s.chars().all(|c| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || matches!(c, '-' | '_' | '.')
            || (allow_upper && c.is_ascii_uppercase())
    });
    if !ok {
        return Err(ParseError(format!(
            "{kind} \"{s}\" may hold only lowercase letters, digits, '-', '_' and '.'"
        )));
    }
    // "." and ".." would be path segments of their own in a URL (a webhook's template).
    if s.chars().all(|c| c == '.') {
        return Err(ParseError(format!(
            "{kind} \"{s}\" must hold a letter, a digit, '-' or '_', not only dots"
        )));
    }
    Ok(())
}

macro_rules! slug_newtype {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks and wraps a string.
            pub fn parse(s: &str) -> Result<Self, ParseError> {
                check_slug($kind, s, false)?;
                Ok(Self(s.to_owned()))
            }
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                Self::parse(s)
            }
        }
    };
}

slug_newtype!(
    /// A person's short name in Quartermaster (`alice`).
    Handle,
    "a handle"
);
slug_newtype!(
    /// An app's catalog name (`figma`).
    AppName,
    "an app name"
);
slug_newtype!(
    /// A role's name (`engineer`).
    RoleName,
    "a role name"
);
slug_newtype!(
    /// A connector's configured name (`design`).
    ConnectorName,
    "a connector name"
);

/// An email address, minimally checked (one `@`, something on each side, no spaces).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Checks and wraps an address.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        let mut parts = s.split('@');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(l), Some(d), None)
                if !l.is_empty() && d.contains('.') && !s.contains(char::is_whitespace) =>
            {
                Ok(Self(s.to_owned()))
            }
            _ => Err(ParseError(format!("\"{s}\" is not an email address"))),
        }
    }
    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}
impl TryFrom<String> for Email {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}
impl From<Email> for String {
    fn from(v: Email) -> String {
        v.0
    }
}
impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub i64);
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}
id_newtype!(
    /// An access request's number (`#42`).
    RequestId
);
id_newtype!(
    /// A grant's row id.
    GrantId
);
id_newtype!(
    /// A queued connector action's row id.
    ActionId
);
id_newtype!(
    /// A plan's number (an offboarding, a role change, an onboarding).
    PlanId
);
id_newtype!(
    /// A break-glass grant's number.
    BreakGlassId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_checked() {
        assert!(Handle::parse("alice").is_ok());
        assert!(Handle::parse("a.b-c_1").is_ok());
        assert!(Handle::parse("").is_err());
        assert!(Handle::parse("Alice").is_err());
        assert!(Handle::parse("al ice").is_err());
        for dots in [".", "..", "..."] {
            let e = Handle::parse(dots).unwrap_err().to_string();
            assert!(e.contains("not only dots"), "{e}");
        }
        assert!(Handle::parse(".a.").is_ok());
    }

    #[test]
    fn emails_are_checked() {
        assert_eq!(Email::parse("lena@acme.test").unwrap().local_part(), "lena");
        assert!(Email::parse("lena").is_err());
        assert!(Email::parse("a@b@c.d").is_err());
    }
}

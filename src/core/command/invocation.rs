//! A validated command: its options' values, read as typed values.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;

use super::CommandError;
use super::error::invalid;
use crate::core::model::{Email, Handle, ParseError, RoleName, Span};

/// A command that passed [`Registry::validate`](super::Registry::validate): its name and its
/// options' values (trimmed; USER options hold handles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The command's name, without `/` (with its subcommand after one space: `mfa enroll`).
    pub name: String,
    /// Option name → value.
    pub options: BTreeMap<String, String>,
}

impl Invocation {
    /// The raw value of an option, if given.
    pub fn get(&self, option: &str) -> Option<&str> {
        self.options.get(option).map(String::as_str)
    }

    /// The value of an option as owned text, if given.
    pub fn text(&self, option: &str) -> Option<String> {
        self.get(option).map(str::to_owned)
    }

    /// The value of a required option; an error names it when it is absent.
    pub fn require(&self, option: &str) -> Result<&str, CommandError> {
        self.get(option)
            .ok_or_else(|| CommandError::MissingOptions {
                command: self.name.clone(),
                options: vec![option.to_owned()],
            })
    }

    /// An option read with `parse`; a refusal becomes an error that names the option.
    pub fn parsed<T>(
        &self,
        option: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, CommandError> {
        self.get(option)
            .map(|v| parse(v).map_err(|e| invalid(option, e.0)))
            .transpose()
    }

    /// A handle (USER options, or a STRING that names a handle), if given.
    pub fn handle(&self, option: &str) -> Result<Option<Handle>, CommandError> {
        self.parsed(option, |v| Handle::parse(v.strip_prefix('@').unwrap_or(v)))
    }

    /// A BOOLEAN option: `true` when given as true, `false` when false or absent.
    pub fn flag(&self, option: &str) -> Result<bool, CommandError> {
        self.parsed(option, |v| match v {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(ParseError(format!("\"{other}\" is neither true nor false"))),
        })
        .map(|b| b.unwrap_or(false))
    }

    /// A duration like `90m`, `8h` or `7d`, if given.
    pub fn span(&self, option: &str) -> Result<Option<Span>, CommandError> {
        self.parsed(option, Span::parse)
    }

    /// A date written `YYYY-MM-DD`, if given.
    pub fn date(&self, option: &str) -> Result<Option<NaiveDate>, CommandError> {
        self.parsed(option, |v| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                ParseError(format!(
                    "\"{v}\" is not a date; write it as YYYY-MM-DD, like 2026-12-31"
                ))
            })
        })
    }

    /// An email address, if given.
    pub fn email(&self, option: &str) -> Result<Option<Email>, CommandError> {
        self.parsed(option, Email::parse)
    }

    /// A role name, if given.
    pub fn role(&self, option: &str) -> Result<Option<RoleName>, CommandError> {
        self.parsed(option, RoleName::parse)
    }

    pub(super) fn need<T>(&self, option: &str, v: Option<T>) -> Result<T, CommandError> {
        v.ok_or_else(|| CommandError::MissingOptions {
            command: self.name.clone(),
            options: vec![option.to_owned()],
        })
    }
}

impl fmt::Display for Invocation {
    /// The command as a console line would write it: `/request app:figma reason:"two words"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.name)?;
        for (k, v) in &self.options {
            if v.is_empty() || v.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') {
                let escaped = v.replace('\\', "\\\\").replace('"', "\\\"");
                write!(f, " {k}:\"{escaped}\"")?;
            } else {
                write!(f, " {k}:{v}")?;
            }
        }
        Ok(())
    }
}

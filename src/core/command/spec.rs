//! The command files' schema (Discord's application-command JSON) and the rules it must follow.

use serde::{Deserialize, Serialize};

use super::CommandError;

/// Discord's option types that Quartermaster's commands use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum OptionType {
    /// `1` SUB_COMMAND: a subcommand (`/mfa enroll`) with options of its own.
    SubCommand,
    /// `3` STRING: free text, taken as typed (trimmed).
    String,
    /// `5` BOOLEAN: `true` or `false` (the console also takes `yes` and `no`).
    Boolean,
    /// `6` USER: a person; the value is their handle.
    User,
}

impl TryFrom<u8> for OptionType {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            1 => Ok(Self::SubCommand),
            3 => Ok(Self::String),
            5 => Ok(Self::Boolean),
            6 => Ok(Self::User),
            other => Err(format!(
                "option type {other} is not supported (only 1 SUB_COMMAND, 3 STRING, 5 BOOLEAN and 6 USER)"
            )),
        }
    }
}

impl From<OptionType> for u8 {
    fn from(t: OptionType) -> u8 {
        match t {
            OptionType::SubCommand => 1,
            OptionType::String => 3,
            OptionType::Boolean => 5,
            OptionType::User => 6,
        }
    }
}

/// One fixed choice of a STRING option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// What Discord shows (1..=100 characters).
    pub name: String,
    /// What the command receives.
    pub value: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One option of a slash command, as Discord's application-command schema writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionSpec {
    /// SUB_COMMAND, STRING, BOOLEAN or USER.
    #[serde(rename = "type")]
    pub kind: OptionType,
    /// Lowercase name, 1..=32 characters.
    pub name: String,
    /// Shown in Discord's picker, 1..=100 characters.
    pub description: String,
    /// Whether the command needs it.
    #[serde(default)]
    pub required: bool,
    /// Whether Discord asks the bot for suggestions as the person types.
    #[serde(default, skip_serializing_if = "is_false")]
    pub autocomplete: bool,
    /// Fixed values to pick from (none: free text).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
    /// Shortest value allowed, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u16>,
    /// Longest value allowed, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u16>,
    /// A SUB_COMMAND's own options (never subcommands themselves); empty for other kinds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<OptionSpec>,
    /// Any other Discord field (localisations…), passed through to registration untouched.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn chat_input() -> u8 {
    1
}

/// One slash command, as Discord's application-command schema writes it (`commands/NAME.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandSpec {
    /// Application-command type; always `1` (CHAT_INPUT).
    #[serde(rename = "type", default = "chat_input")]
    pub kind: u8,
    /// Lowercase name, 1..=32 characters, without `/`.
    pub name: String,
    /// Shown in Discord's picker, 1..=100 characters.
    pub description: String,
    /// The options, required ones first; either all SUB_COMMANDs or none.
    #[serde(default)]
    pub options: Vec<OptionSpec>,
    /// Any other Discord field (`contexts`, `dm_permission`, localisations…), passed through to
    /// registration untouched.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn check_name(what: &str, name: &str) -> Result<(), CommandError> {
    let ok = (1..=32).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(CommandError::Spec(format!(
            "{what} name \"{name}\" must be 1 to 32 lowercase letters, digits, '-' or '_'"
        )))
    }
}

fn check_description(what: &str, description: &str) -> Result<(), CommandError> {
    if (1..=100).contains(&description.chars().count()) {
        Ok(())
    } else {
        Err(CommandError::Spec(format!(
            "{what}'s description must be 1 to 100 characters long"
        )))
    }
}

impl CommandSpec {
    /// The option with that name.
    pub fn option(&self, name: &str) -> Option<&OptionSpec> {
        self.options.iter().find(|o| o.name == name)
    }

    /// Whether the command's options are subcommands (`/mfa enroll`).
    pub fn has_subcommands(&self) -> bool {
        self.options
            .iter()
            .any(|o| o.kind == OptionType::SubCommand)
    }

    /// The subcommand with that name.
    pub fn subcommand(&self, name: &str) -> Option<&OptionSpec> {
        self.options
            .iter()
            .find(|o| o.kind == OptionType::SubCommand && o.name == name)
    }

    /// Checks the rules Discord enforces at registration (names, description lengths, required
    /// options first, at most 25 options, subcommands all or none and not nested…) plus ours
    /// (only SUB_COMMAND, STRING, BOOLEAN and USER options).
    pub fn check(&self) -> Result<(), CommandError> {
        let cmd = format!("/{}", self.name);
        if self.kind != 1 {
            return Err(CommandError::Spec(format!(
                "{cmd} has type {}; slash commands are type 1",
                self.kind
            )));
        }
        check_name("command", &self.name)?;
        check_description(&cmd, &self.description)?;
        let subs = self
            .options
            .iter()
            .filter(|o| o.kind == OptionType::SubCommand)
            .count();
        if subs != 0 && subs != self.options.len() {
            return Err(CommandError::Spec(format!(
                "{cmd} mixes subcommands with other options; its options are either all subcommands or none"
            )));
        }
        check_options(&cmd, &self.options, true)
    }
}

/// The rules a list of options follows (a command's, or a subcommand's when `top` is false):
/// at most 25, named once each, required ones first, and each option's own rules.
fn check_options(cmd: &str, options: &[OptionSpec], top: bool) -> Result<(), CommandError> {
    if options.len() > 25 {
        return Err(CommandError::Spec(format!(
            "{cmd} has more than 25 options"
        )));
    }
    let mut seen_optional = false;
    for (i, o) in options.iter().enumerate() {
        let what = format!("{cmd} option `{}`", o.name);
        check_name(&format!("{cmd} option"), &o.name)?;
        check_description(&what, &o.description)?;
        if options[..i].iter().any(|p| p.name == o.name) {
            return Err(CommandError::Spec(format!("{what} appears twice")));
        }
        if o.required && seen_optional {
            return Err(CommandError::Spec(format!(
                "{what} is required but comes after an optional one; required options go first"
            )));
        }
        seen_optional |= !o.required;
        if o.kind == OptionType::SubCommand {
            if !top {
                return Err(CommandError::Spec(format!(
                    "{what}: a subcommand's options may not be subcommands themselves"
                )));
            }
            if o.required {
                return Err(CommandError::Spec(format!(
                    "{what}: a subcommand cannot be required"
                )));
            }
            check_options(&format!("{cmd} {}", o.name), &o.options, false)?;
        } else if !o.options.is_empty() {
            return Err(CommandError::Spec(format!(
                "{what}: only a subcommand has options of its own"
            )));
        }
        check_option(&what, o)?;
    }
    Ok(())
}

/// The rules one option must follow on its own (`what` names it): which kinds may have
/// autocomplete, choices and lengths, and their limits.
fn check_option(what: &str, o: &OptionSpec) -> Result<(), CommandError> {
    let is_string = o.kind == OptionType::String;
    if !is_string && (o.autocomplete || !o.choices.is_empty()) {
        return Err(CommandError::Spec(format!(
            "{what}: only STRING options may have autocomplete or choices here"
        )));
    }
    if !is_string && (o.min_length.is_some() || o.max_length.is_some()) {
        return Err(CommandError::Spec(format!(
            "{what}: only STRING options may have min_length or max_length"
        )));
    }
    if o.autocomplete && !o.choices.is_empty() {
        return Err(CommandError::Spec(format!(
            "{what} may have autocomplete or choices, not both"
        )));
    }
    if o.choices.len() > 25 {
        return Err(CommandError::Spec(format!(
            "{what} has more than 25 choices"
        )));
    }
    if let Some(c) = o.choices.iter().find(|c| {
        !(1..=100).contains(&c.name.chars().count())
            || !(1..=100).contains(&c.value.chars().count())
    }) {
        return Err(CommandError::Spec(format!(
            "{what}: choice \"{}\" must have a name and a value of 1 to 100 characters",
            c.name
        )));
    }
    if o.min_length.is_some_and(|n| n > 6000)
        || o.max_length.is_some_and(|n| !(1..=6000).contains(&n))
    {
        return Err(CommandError::Spec(format!(
            "{what}: min_length must be 0..=6000 and max_length 1..=6000"
        )));
    }
    if let (Some(min), Some(max)) = (o.min_length, o.max_length)
        && min > max
    {
        return Err(CommandError::Spec(format!(
            "{what}: min_length is larger than max_length"
        )));
    }
    Ok(())
}

//! Slash commands: the `commands/*.json` files, a console line tokenizer, validation shared by
//! every adapter, and the typed [`Intent`] the service acts on.
//!
//! The same files drive Discord registration and the console parser, so a command is checked
//! the same way whichever face it came through:
//!
//! ```text
//! console line ──tokenize──┐
//!                          ├─> Registry::validate ─> Invocation ─> Intent::from_invocation ─> Intent
//! Discord interaction ─────┘   (the Discord adapter maps user ids to handles first)
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::model::{Email, Handle, ParseError, RoleName, Span, Zone};

// ----------------------------------------------------------------------------- errors

/// Why a command line or a command could not be understood. Its `Display` is a sentence meant
/// for the person who typed the command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The line does not start with `/`.
    #[error("\"{line}\" is not a command; a command starts with /, like /request app:figma")]
    NotACommand {
        /// The line as typed.
        line: String,
    },
    /// A word that is not written as `name:value`.
    #[error(
        "\"{token}\" is not an option; write options as name:value, like app:figma or reason:\"two words\""
    )]
    BareToken {
        /// The word as typed.
        token: String,
    },
    /// `name:` with nothing after it (or `name:""`).
    #[error("option `{option}` has no value; write {option}:value, or leave it out")]
    EmptyValue {
        /// The option's name.
        option: String,
    },
    /// A quoted value that never closes.
    #[error("the value of `{option}` opens a quote (\") that is never closed")]
    UnterminatedQuote {
        /// The option's name.
        option: String,
    },
    /// Text glued to a closing quote, like `reason:"a"b`.
    #[error("the value of `{option}` goes on after its closing quote; put a space between options")]
    AfterQuote {
        /// The option's name.
        option: String,
    },
    /// No command of that name.
    #[error("there is no command /{name}{}", unknown_command_hint(.suggestion, .known))]
    UnknownCommand {
        /// The name as typed, without `/`.
        name: String,
        /// The closest known command, if one is close.
        suggestion: Option<String>,
        /// Every known command.
        known: Vec<String>,
    },
    /// The command has no option of that name.
    #[error("/{command} has no option `{option}`{}", unknown_option_hint(.command, .suggestion, .options))]
    UnknownOption {
        /// The command.
        command: String,
        /// The option as typed.
        option: String,
        /// The closest option, if one is close.
        suggestion: Option<String>,
        /// The command's options.
        options: Vec<String>,
    },
    /// The same option given twice.
    #[error("option `{option}` is given twice; give it once")]
    RepeatedOption {
        /// The command.
        command: String,
        /// The option.
        option: String,
    },
    /// Required options left out.
    #[error(
        "/{command} is missing {} {}; write {} as name:value",
        if .options.len() == 1 { "the required option" } else { "the required options" },
        and_list(.options),
        if .options.len() == 1 { "it" } else { "them" }
    )]
    MissingOptions {
        /// The command.
        command: String,
        /// The missing options, in the command's order.
        options: Vec<String>,
    },
    /// A value that is not what the option takes.
    #[error("{option}: {message}")]
    InvalidValue {
        /// The option.
        option: String,
        /// What is wrong with the value, as a sentence.
        message: String,
    },
    /// A command file breaks Discord's rules or ours (a bug in `commands/*.json`).
    #[error("command file: {0}")]
    Spec(String),
}

fn backticked(items: &[String]) -> Vec<String> {
    items.iter().map(|s| format!("`{s}`")).collect()
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    let items = backticked(items);
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

fn unknown_command_hint(suggestion: &Option<String>, known: &[String]) -> String {
    let list = known
        .iter()
        .map(|k| format!("/{k}"))
        .collect::<Vec<_>>()
        .join(", ");
    match suggestion {
        Some(s) => format!(" — did you mean /{s}?"),
        None => format!("; the commands are {list}"),
    }
}

fn unknown_option_hint(command: &str, suggestion: &Option<String>, options: &[String]) -> String {
    if options.is_empty() {
        return format!("; /{command} takes no options");
    }
    let list = backticked(options).join(", ");
    match suggestion {
        Some(s) => format!(" — did you mean `{s}`? Its options are {list}"),
        None => format!("; its options are {list}"),
    }
}

fn invalid(option: &str, message: impl Into<String>) -> CommandError {
    CommandError::InvalidValue {
        option: option.to_owned(),
        message: message.into(),
    }
}

/// The candidate closest to `typed`, if it is close enough to be what was meant.
fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    super::suggest::did_you_mean(typed, candidates).map(str::to_owned)
}

// ----------------------------------------------------------------------------- specs

/// Discord's option types that Quartermaster's commands use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum OptionType {
    /// `3` STRING: free text, taken as typed (trimmed).
    String,
    /// `6` USER: a person; the value is their handle.
    User,
}

impl TryFrom<u8> for OptionType {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            3 => Ok(Self::String),
            6 => Ok(Self::User),
            other => Err(format!(
                "option type {other} is not supported (only 3 STRING and 6 USER)"
            )),
        }
    }
}

impl From<OptionType> for u8 {
    fn from(t: OptionType) -> u8 {
        match t {
            OptionType::String => 3,
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
    /// STRING or USER.
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
    /// The options, required ones first.
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

    /// Checks the rules Discord enforces at registration (names, description lengths, required
    /// options first, at most 25 options…) plus ours (only STRING and USER options).
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
        if self.options.len() > 25 {
            return Err(CommandError::Spec(format!(
                "{cmd} has more than 25 options"
            )));
        }
        let mut seen_optional = false;
        for (i, o) in self.options.iter().enumerate() {
            let what = format!("{cmd} option `{}`", o.name);
            check_name(&format!("{cmd} option"), &o.name)?;
            check_description(&what, &o.description)?;
            if self.options[..i].iter().any(|p| p.name == o.name) {
                return Err(CommandError::Spec(format!("{what} appears twice")));
            }
            if o.required && seen_optional {
                return Err(CommandError::Spec(format!(
                    "{what} is required but comes after an optional one; required options go first"
                )));
            }
            seen_optional |= !o.required;
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
        }
        Ok(())
    }
}

// ----------------------------------------------------------------------------- registry

const BUILTIN_FILES: [&str; 8] = [
    include_str!("../../commands/request.json"),
    include_str!("../../commands/access.json"),
    include_str!("../../commands/approvals.json"),
    include_str!("../../commands/revoke.json"),
    include_str!("../../commands/onboard.json"),
    include_str!("../../commands/role.json"),
    include_str!("../../commands/offboard.json"),
    include_str!("../../commands/help.json"),
];

static BUILTIN: LazyLock<Result<Registry, CommandError>> =
    LazyLock::new(|| Registry::from_json(&BUILTIN_FILES));

/// The known slash commands, and the validation every adapter runs a command through.
#[derive(Debug, Clone, PartialEq)]
pub struct Registry {
    specs: Vec<CommandSpec>,
}

impl Registry {
    /// The commands of `commands/*.json`, built into the binary.
    ///
    /// # Panics
    /// Only if a built-in command file is malformed, which the unit tests of this module rule
    /// out.
    pub fn builtin() -> Self {
        match &*BUILTIN {
            Ok(r) => r.clone(),
            Err(e) => panic!("a built-in command file is malformed: {e}"),
        }
    }

    /// Reads commands from JSON texts (one command each) and checks each against Discord's rules.
    pub fn from_json(files: &[&str]) -> Result<Self, CommandError> {
        let mut specs: Vec<CommandSpec> = Vec::with_capacity(files.len());
        for (i, text) in files.iter().enumerate() {
            let spec: CommandSpec = serde_json::from_str(text).map_err(|e| {
                CommandError::Spec(format!("command file number {} is not valid: {e}", i + 1))
            })?;
            spec.check()?;
            if specs.iter().any(|s| s.name == spec.name) {
                return Err(CommandError::Spec(format!(
                    "/{} is defined twice",
                    spec.name
                )));
            }
            specs.push(spec);
        }
        Ok(Self { specs })
    }

    /// Every command, in the order given (for registration with Discord).
    pub fn specs(&self) -> &[CommandSpec] {
        &self.specs
    }

    /// The command with that name (without `/`).
    pub fn get(&self, name: &str) -> Option<&CommandSpec> {
        self.specs.iter().find(|s| s.name == name)
    }

    /// Checks a command and its raw options as Discord would: the command and every option
    /// exist, no option is repeated, required options are present, values fit their type,
    /// choices and lengths. USER options take a handle (a leading `@` is dropped); STRING
    /// values are trimmed and must not be empty.
    pub fn validate(
        &self,
        name: &str,
        raw: Vec<(String, String)>,
    ) -> Result<Invocation, CommandError> {
        let spec = self.get(name).ok_or_else(|| CommandError::UnknownCommand {
            name: name.to_owned(),
            suggestion: closest(name, self.specs.iter().map(|s| s.name.as_str())),
            known: self.specs.iter().map(|s| s.name.clone()).collect(),
        })?;
        let mut options = BTreeMap::new();
        for (key, value) in raw {
            let Some(opt) = spec.option(&key) else {
                return Err(CommandError::UnknownOption {
                    command: spec.name.clone(),
                    suggestion: closest(&key, spec.options.iter().map(|o| o.name.as_str())),
                    option: key,
                    options: spec.options.iter().map(|o| o.name.clone()).collect(),
                });
            };
            if options.contains_key(&key) {
                return Err(CommandError::RepeatedOption {
                    command: spec.name.clone(),
                    option: key,
                });
            }
            let value = check_value(opt, &value)?;
            options.insert(key, value);
        }
        let missing: Vec<String> = spec
            .options
            .iter()
            .filter(|o| o.required && !options.contains_key(&o.name))
            .map(|o| o.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(CommandError::MissingOptions {
                command: spec.name.clone(),
                options: missing,
            });
        }
        Ok(Invocation {
            name: spec.name.clone(),
            options,
        })
    }

    /// `/help`'s text: every command with its description, or one command's options (`name`
    /// with or without `/`).
    pub fn help(&self, name: Option<&str>) -> Result<String, CommandError> {
        let Some(name) = name else {
            let mut out = String::from("Commands (type /help COMMAND for its options):");
            for s in &self.specs {
                out.push_str(&format!("\n/{} — {}", s.name, s.description));
            }
            return Ok(out);
        };
        let name = name.trim().trim_start_matches('/').to_lowercase();
        let spec = self
            .get(&name)
            .ok_or_else(|| CommandError::UnknownCommand {
                suggestion: closest(&name, self.specs.iter().map(|s| s.name.as_str())),
                name,
                known: self.specs.iter().map(|s| s.name.clone()).collect(),
            })?;
        let mut out = format!("/{} — {}", spec.name, spec.description);
        if spec.options.is_empty() {
            out.push_str("\nIt takes no options.");
        }
        for o in &spec.options {
            let kind = match o.kind {
                OptionType::String => "text",
                OptionType::User => "a person",
            };
            let need = if o.required { "required" } else { "optional" };
            out.push_str(&format!(
                "\n  {}: {} ({kind}, {need})",
                o.name, o.description
            ));
        }
        let example: Vec<String> = spec
            .options
            .iter()
            .filter(|o| o.required)
            .map(|o| format!("{}:…", o.name))
            .collect();
        out.push_str(&format!(
            "\nExample: /{}{}{}",
            spec.name,
            if example.is_empty() { "" } else { " " },
            example.join(" ")
        ));
        Ok(out)
    }

    /// Tokenizes, validates and types a console line in one go.
    pub fn parse_line(&self, line: &str) -> Result<Intent, CommandError> {
        let (name, raw) = tokenize(line)?;
        Intent::from_invocation(self.validate(&name, raw)?)
    }
}

fn check_value(opt: &OptionSpec, value: &str) -> Result<String, CommandError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(CommandError::EmptyValue {
            option: opt.name.clone(),
        });
    }
    match opt.kind {
        OptionType::User => {
            let h = value.strip_prefix('@').unwrap_or(value);
            Handle::parse(h)
                .map(|h| h.as_str().to_owned())
                .map_err(|e| invalid(&opt.name, e.0))
        }
        OptionType::String => {
            let len = value.chars().count();
            if let Some(max) = opt.max_length
                && len > usize::from(max)
            {
                return Err(invalid(
                    &opt.name,
                    format!("{len} characters is too long; at most {max} are allowed"),
                ));
            }
            if let Some(min) = opt.min_length
                && len < usize::from(min)
            {
                return Err(invalid(
                    &opt.name,
                    format!("\"{value}\" is too short; at least {min} characters are needed"),
                ));
            }
            if opt.choices.is_empty() {
                return Ok(value.to_owned());
            }
            opt.choices
                .iter()
                .find(|c| c.value == value || c.name.eq_ignore_ascii_case(value))
                .map(|c| c.value.clone())
                .ok_or_else(|| {
                    let list: Vec<String> = opt.choices.iter().map(|c| c.value.clone()).collect();
                    invalid(
                        &opt.name,
                        format!("\"{value}\" is not one of the choices: {}", and_list(&list)),
                    )
                })
        }
    }
}

// ----------------------------------------------------------------------------- tokenizer

/// Splits a console line such as `/request app:figma reason:"landing page mock-ups"` into the
/// command's name (without `/`) and its `name:value` pairs, in the order typed.
///
/// A value is either bare (up to the next whitespace) or double-quoted, where `\"` stands for
/// a quote and `\\` for a backslash (any other backslash is kept as typed). Nothing is checked
/// against the command files here; [`Registry::validate`] does that.
pub fn tokenize(line: &str) -> Result<(String, Vec<(String, String)>), CommandError> {
    let line = line.trim();
    let Some(rest) = line.strip_prefix('/') else {
        return Err(CommandError::NotACommand {
            line: line.to_owned(),
        });
    };
    let (name, mut rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if name.is_empty() {
        return Err(CommandError::NotACommand {
            line: line.to_owned(),
        });
    }
    let mut pairs = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let Some(colon) = rest[..word_end].find(':').filter(|&i| i > 0) else {
            return Err(CommandError::BareToken {
                token: rest[..word_end].to_owned(),
            });
        };
        let key = rest[..colon].to_owned();
        let after = &rest[colon + 1..];
        if let Some(quoted) = after.strip_prefix('"') {
            let (value, used) =
                read_quoted(quoted).ok_or_else(|| CommandError::UnterminatedQuote {
                    option: key.clone(),
                })?;
            rest = &quoted[used..];
            if rest.starts_with(|c: char| !c.is_whitespace()) {
                return Err(CommandError::AfterQuote { option: key });
            }
            pairs.push((key, value));
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            if end == 0 {
                return Err(CommandError::EmptyValue { option: key });
            }
            pairs.push((key, after[..end].to_owned()));
            rest = &after[end..];
        }
    }
    Ok((name.to_owned(), pairs))
}

/// Reads a quoted value just after its opening quote; returns it unescaped and the number of
/// bytes used (closing quote included), or `None` when the quote never closes.
fn read_quoted(s: &str) -> Option<(String, usize)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, i + 1)),
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => value.push(e),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => return None,
            },
            other => value.push(other),
        }
    }
    None
}

// ----------------------------------------------------------------------------- invocation

/// A command that passed [`Registry::validate`]: its name and its options' values (trimmed;
/// USER options hold handles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The command's name, without `/`.
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

    fn need<T>(&self, option: &str, v: Option<T>) -> Result<T, CommandError> {
        v.ok_or_else(|| CommandError::MissingOptions {
            command: self.name.clone(),
            options: vec![option.to_owned()],
        })
    }
}

// ----------------------------------------------------------------------------- intents

/// What a person asked for, typed: the service's input, whichever adapter it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// `/request`: ask for access to an app.
    Request {
        /// The app as typed (the service answers unknown apps with "did you mean").
        app: String,
        /// Why.
        reason: Option<String>,
        /// For how long (None: the app's default).
        duration: Option<Span>,
    },
    /// `/access`: show what someone holds.
    Access {
        /// Whose (None: the caller's).
        user: Option<Handle>,
    },
    /// `/approvals`: list what waits for the caller.
    Approvals,
    /// `/revoke`: remove access or cancel a pending request.
    Revoke {
        /// The app as typed.
        app: String,
        /// Whose (None: the caller's).
        user: Option<Handle>,
        /// Why.
        reason: Option<String>,
    },
    /// `/onboard`: add a joiner.
    Onboard {
        /// Work email.
        email: Email,
        /// Full name.
        name: String,
        /// Role.
        role: RoleName,
        /// Their manager.
        manager: Option<Handle>,
        /// Department.
        department: Option<String>,
        /// Handle (None: the email's local part).
        handle: Option<Handle>,
        /// Their chat account as the adapter passed it (on Discord their user id, since a
        /// joiner has no handle yet; in the console what was typed).
        user: Option<String>,
        /// Their own time zone (None: the organisation's).
        timezone: Option<Zone>,
    },
    /// `/role`: change someone's role.
    Role {
        /// Whose.
        user: Handle,
        /// The new role.
        role: RoleName,
    },
    /// `/help`: what the commands do.
    Help {
        /// One command to explain (None: all of them, briefly).
        command: Option<String>,
    },
    /// `/offboard`: remove a leaver's access.
    Offboard {
        /// Who leaves.
        user: Handle,
        /// Why.
        reason: Option<String>,
        /// Access ends at the end of this day (None: now).
        when: Option<NaiveDate>,
    },
}

impl Intent {
    /// Types a validated invocation. Every failure names the option at fault.
    pub fn from_invocation(inv: Invocation) -> Result<Self, CommandError> {
        Ok(match inv.name.as_str() {
            "request" => Self::Request {
                app: inv.require("app")?.to_owned(),
                reason: inv.text("reason"),
                duration: inv.span("duration")?,
            },
            "access" => Self::Access {
                user: inv.handle("user")?,
            },
            "approvals" => Self::Approvals,
            "revoke" => Self::Revoke {
                app: inv.require("app")?.to_owned(),
                user: inv.handle("user")?,
                reason: inv.text("reason"),
            },
            "onboard" => {
                let email = inv.email("email")?;
                let name = inv.text("name");
                let role = inv.role("role")?;
                let missing: Vec<String> = [
                    ("email", email.is_none()),
                    ("name", name.is_none()),
                    ("role", role.is_none()),
                ]
                .iter()
                .filter(|(_, absent)| *absent)
                .map(|(o, _)| (*o).to_owned())
                .collect();
                match (email, name, role) {
                    (Some(email), Some(name), Some(role)) => Self::Onboard {
                        email,
                        name,
                        role,
                        manager: inv.handle("manager")?,
                        department: inv.text("department"),
                        handle: inv.handle("handle")?,
                        user: inv.text("user"),
                        timezone: inv.parsed("timezone", Zone::parse)?,
                    },
                    _ => {
                        return Err(CommandError::MissingOptions {
                            command: inv.name,
                            options: missing,
                        });
                    }
                }
            }
            "role" => {
                let user = inv.handle("user")?;
                let role = inv.role("role")?;
                Self::Role {
                    user: inv.need("user", user)?,
                    role: inv.need("role", role)?,
                }
            }
            "offboard" => {
                let user = inv.handle("user")?;
                Self::Offboard {
                    user: inv.need("user", user)?,
                    reason: inv.text("reason"),
                    when: inv.date("when")?,
                }
            }
            "help" => Self::Help {
                command: inv.text("command"),
            },
            _ => {
                return Err(CommandError::UnknownCommand {
                    name: inv.name,
                    suggestion: None,
                    known: INTENT_NAMES.iter().map(|s| (*s).to_owned()).collect(),
                });
            }
        })
    }

    /// The command's name, without `/`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Request { .. } => "request",
            Self::Access { .. } => "access",
            Self::Approvals => "approvals",
            Self::Revoke { .. } => "revoke",
            Self::Onboard { .. } => "onboard",
            Self::Role { .. } => "role",
            Self::Offboard { .. } => "offboard",
            Self::Help { .. } => "help",
        }
    }
}

const INTENT_NAMES: [&str; 8] = [
    "request",
    "access",
    "approvals",
    "revoke",
    "onboard",
    "role",
    "offboard",
    "help",
];

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

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Registry {
        Registry::builtin()
    }

    fn err(line: &str) -> String {
        reg().parse_line(line).unwrap_err().to_string()
    }

    fn h(s: &str) -> Handle {
        Handle::parse(s).unwrap()
    }

    // ------------------------------------------------------------------ command files

    #[test]
    fn every_command_file_parses_and_follows_discord_rules() {
        let r = reg();
        let names: Vec<&str> = r.specs().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, INTENT_NAMES);
        let name_ok = |n: &str| {
            (1..=32).contains(&n.len())
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        };
        for s in r.specs() {
            assert_eq!(s.kind, 1, "/{} must be CHAT_INPUT", s.name);
            assert!(name_ok(&s.name), "/{}", s.name);
            assert!(
                (1..=100).contains(&s.description.chars().count()),
                "/{}",
                s.name
            );
            let first_optional = s
                .options
                .iter()
                .position(|o| !o.required)
                .unwrap_or(s.options.len());
            assert!(
                s.options[first_optional..].iter().all(|o| !o.required),
                "/{}: required options must come first",
                s.name
            );
            for o in &s.options {
                assert!(name_ok(&o.name), "/{} {}", s.name, o.name);
                assert!(
                    (1..=100).contains(&o.description.chars().count()),
                    "/{} {}",
                    s.name,
                    o.name
                );
            }
            s.check().unwrap();
        }
    }

    #[test]
    fn command_files_match_the_contract() {
        let r = reg();
        let shape = |cmd: &str| -> Vec<(String, OptionType, bool)> {
            r.get(cmd)
                .unwrap()
                .options
                .iter()
                .map(|o| (o.name.clone(), o.kind, o.required))
                .collect()
        };
        use OptionType::{String as S, User as U};
        let o = |n: &str, t, req| (n.to_owned(), t, req);
        assert_eq!(
            shape("request"),
            [
                o("app", S, true),
                o("reason", S, false),
                o("duration", S, false)
            ]
        );
        assert_eq!(shape("access"), [o("user", U, false)]);
        assert_eq!(shape("approvals"), []);
        assert_eq!(
            shape("revoke"),
            [
                o("app", S, true),
                o("user", U, false),
                o("reason", S, false)
            ]
        );
        assert_eq!(
            shape("onboard"),
            [
                o("email", S, true),
                o("name", S, true),
                o("role", S, true),
                o("manager", U, false),
                o("department", S, false),
                o("handle", S, false),
                o("user", U, false),
                o("timezone", S, false),
            ]
        );
        assert_eq!(shape("role"), [o("user", U, true), o("role", S, true)]);
        assert_eq!(
            shape("offboard"),
            [
                o("user", U, true),
                o("reason", S, false),
                o("when", S, false)
            ]
        );
        assert!(
            r.get("request")
                .unwrap()
                .option("app")
                .unwrap()
                .autocomplete
        );
        assert!(r.get("revoke").unwrap().option("app").unwrap().autocomplete);
    }

    #[test]
    fn specs_serialize_back_to_discord_json() {
        let r = reg();
        let v = serde_json::to_value(r.get("request").unwrap()).unwrap();
        assert_eq!(v["type"], 1);
        assert_eq!(v["contexts"], serde_json::json!([0, 1]));
        assert_eq!(v["options"][0]["type"], 3);
        assert_eq!(v["options"][0]["autocomplete"], true);
        assert_eq!(v["options"][0]["required"], true);
        let again: CommandSpec = serde_json::from_value(v).unwrap();
        assert_eq!(&again, r.get("request").unwrap());
    }

    #[test]
    fn bad_command_files_are_refused() {
        let bad = |json: &str| Registry::from_json(&[json]).unwrap_err().to_string();
        assert!(bad(r#"{"name":"Request","description":"x"}"#).contains("lowercase"));
        assert!(bad(r#"{"name":"request","description":""}"#).contains("1 to 100"));
        let late_required = r#"{"name":"x","description":"x","options":[
            {"type":3,"name":"a","description":"a"},
            {"type":3,"name":"b","description":"b","required":true}]}"#;
        assert!(bad(late_required).contains("required options go first"));
        assert!(bad(r#"{"name":"x","description":"x","options":[{"type":4,"name":"n","description":"n"}]}"#)
            .contains("not supported"));
        let one = r#"{"name":"x","description":"x"}"#;
        assert!(
            Registry::from_json(&[one, one])
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }

    // ------------------------------------------------------------------ README lines

    #[test]
    fn readme_request_line() {
        assert_eq!(
            reg()
                .parse_line(r#"/request app:figma reason:"landing page mock-ups" duration:30d"#)
                .unwrap(),
            Intent::Request {
                app: "figma".into(),
                reason: Some("landing page mock-ups".into()),
                duration: Some(Span::parse("30d").unwrap()),
            }
        );
    }

    #[test]
    fn readme_offboard_line() {
        assert_eq!(
            reg().parse_line("/offboard user:alice").unwrap(),
            Intent::Offboard {
                user: h("alice"),
                reason: None,
                when: None
            }
        );
    }

    #[test]
    fn readme_break_glass_line() {
        let i = reg()
            .parse_line(r#"/request app:prod-db reason:"INC-1234 hotfix" duration:2h"#)
            .unwrap();
        assert_eq!(
            i,
            Intent::Request {
                app: "prod-db".into(),
                reason: Some("INC-1234 hotfix".into()),
                duration: Some(Span::parse("2h").unwrap()),
            }
        );
        assert_eq!(i.name(), "request");
    }

    #[test]
    fn readme_onboard_line() {
        assert_eq!(
            reg()
                .parse_line(
                    r#"/onboard email:lena@acme.test name:"Lena Roy" role:engineer manager:bob"#
                )
                .unwrap(),
            Intent::Onboard {
                email: Email::parse("lena@acme.test").unwrap(),
                name: "Lena Roy".into(),
                role: RoleName::parse("engineer").unwrap(),
                manager: Some(h("bob")),
                department: None,
                handle: None,
                user: None,
                timezone: None,
            }
        );
        assert_eq!(
            err("/onboard email:l@acme.test name:L role:engineer timezone:Mars/Olympus"),
            "timezone: \"Mars/Olympus\" is not a time zone of the IANA database — write an \
             IANA name such as \"Europe/Berlin\", \"America/Los_Angeles\" or \"UTC\""
        );
    }

    #[test]
    fn every_other_command_types() {
        let r = reg();
        assert_eq!(r.parse_line("/approvals").unwrap(), Intent::Approvals);
        assert_eq!(
            r.parse_line("/access").unwrap(),
            Intent::Access { user: None }
        );
        assert_eq!(
            r.parse_line("/access user:@carol").unwrap(),
            Intent::Access {
                user: Some(h("carol"))
            }
        );
        assert_eq!(
            r.parse_line("/revoke app:figma user:alice reason:left")
                .unwrap(),
            Intent::Revoke {
                app: "figma".into(),
                user: Some(h("alice")),
                reason: Some("left".into())
            }
        );
        assert_eq!(
            r.parse_line("/role role:designer user:erin").unwrap(),
            Intent::Role {
                user: h("erin"),
                role: RoleName::parse("designer").unwrap()
            }
        );
        assert_eq!(
            r.parse_line(r#"/offboard user:alice when:2026-12-31 reason:"last day""#)
                .unwrap(),
            Intent::Offboard {
                user: h("alice"),
                reason: Some("last day".into()),
                when: NaiveDate::from_ymd_opt(2026, 12, 31),
            }
        );
        let Intent::Onboard { handle, department, user, .. } = r
            .parse_line("/onboard email:l@acme.test name:L role:engineer department:Engineering handle:lena user:100000000000000011")
            .unwrap()
        else {
            panic!("not an onboard");
        };
        assert_eq!(handle, Some(h("lena")));
        assert_eq!(department.as_deref(), Some("Engineering"));
        assert_eq!(user.as_deref(), Some("100000000000000011"));
    }

    // ------------------------------------------------------------------ tokenizer

    #[test]
    fn tokenizer_reads_bare_and_quoted_values() {
        let (name, pairs) =
            tokenize(r#"  /request   app:figma	reason:"say \"hi\" to C:\\temp"  duration:7d "#)
                .unwrap();
        assert_eq!(name, "request");
        assert_eq!(
            pairs,
            [
                ("app".to_owned(), "figma".to_owned()),
                ("reason".to_owned(), r#"say "hi" to C:\temp"#.to_owned()),
                ("duration".to_owned(), "7d".to_owned()),
            ]
        );
        // A colon inside a bare value belongs to the value; other backslashes stay as typed.
        let (_, pairs) = tokenize(r#"/request app:a:b reason:"a\nb""#).unwrap();
        assert_eq!(pairs[0].1, "a:b");
        assert_eq!(pairs[1].1, r"a\nb");
    }

    #[test]
    fn escaped_quotes_survive_to_the_intent() {
        let Intent::Request { reason, .. } = reg()
            .parse_line(r#"/request app:figma reason:"the \"new\" brand""#)
            .unwrap()
        else {
            panic!("not a request");
        };
        assert_eq!(reason.as_deref(), Some(r#"the "new" brand"#));
    }

    #[test]
    fn unterminated_quote_names_the_option() {
        assert_eq!(
            err(r#"/request app:figma reason:"landing page"#),
            "the value of `reason` opens a quote (\") that is never closed"
        );
        // An escaped quote does not close it either.
        assert!(err(r#"/request app:figma reason:"a\""#).contains("`reason`"));
    }

    #[test]
    fn empty_value_is_refused() {
        assert_eq!(
            err("/request app: reason:x"),
            "option `app` has no value; write app:value, or leave it out"
        );
        assert_eq!(
            err("/request app:figma reason:"),
            "option `reason` has no value; write reason:value, or leave it out"
        );
        assert_eq!(
            err(r#"/request app:figma reason:"  ""#),
            "option `reason` has no value; write reason:value, or leave it out"
        );
    }

    #[test]
    fn bare_token_says_how_to_write_options() {
        assert_eq!(
            err("/request figma"),
            "\"figma\" is not an option; write options as name:value, like app:figma or reason:\"two words\""
        );
        assert!(err("/request :figma").contains("write options as name:value"));
    }

    #[test]
    fn text_glued_to_a_closing_quote_is_refused() {
        assert!(err(r#"/request app:"figma"x"#).contains("put a space between options"));
    }

    #[test]
    fn not_a_command() {
        assert_eq!(
            err("hello"),
            "\"hello\" is not a command; a command starts with /, like /request app:figma"
        );
        assert!(err("/").contains("is not a command"));
    }

    // ------------------------------------------------------------------ validation

    #[test]
    fn unknown_command_suggests() {
        assert_eq!(
            err("/reqest app:figma"),
            "there is no command /reqest — did you mean /request?"
        );
        assert_eq!(
            err("/offbaord user:alice"),
            "there is no command /offbaord — did you mean /offboard?"
        );
        assert_eq!(
            err("/frobnicate"),
            "there is no command /frobnicate; the commands are /request, /access, /approvals, /revoke, /onboard, /role, /offboard, /help"
        );
    }

    #[test]
    fn unknown_option_suggests_and_lists() {
        assert_eq!(
            err("/request app:figma resaon:x"),
            "/request has no option `resaon` — did you mean `reason`? Its options are `app`, `reason`, `duration`"
        );
        assert_eq!(
            err("/request app:figma colour:red"),
            "/request has no option `colour`; its options are `app`, `reason`, `duration`"
        );
        assert_eq!(
            err("/approvals user:bob"),
            "/approvals has no option `user`; /approvals takes no options"
        );
    }

    #[test]
    fn repeated_option_is_refused() {
        assert_eq!(
            err("/request app:figma app:jira"),
            "option `app` is given twice; give it once"
        );
    }

    #[test]
    fn missing_required_options_are_all_named() {
        assert_eq!(
            err("/request reason:x"),
            "/request is missing the required option `app`; write it as name:value"
        );
        assert_eq!(
            err("/onboard email:lena@acme.test"),
            "/onboard is missing the required options `name` and `role`; write them as name:value"
        );
        assert_eq!(
            err("/onboard"),
            "/onboard is missing the required options `email`, `name` and `role`; write them as name:value"
        );
    }

    #[test]
    fn bad_user_handle_names_the_option() {
        assert_eq!(
            err("/offboard user:Alice"),
            "user: a handle \"Alice\" may hold only lowercase letters, digits, '-', '_' and '.'"
        );
        assert!(
            err("/onboard email:l@acme.test name:L role:engineer manager:Bob")
                .starts_with("manager: ")
        );
    }

    #[test]
    fn bad_duration_names_the_option() {
        assert_eq!(
            err("/request app:figma duration:soon"),
            "duration: \"soon\" is not a duration; write it like 90m, 8h or 7d"
        );
    }

    #[test]
    fn bad_date_names_the_option() {
        assert_eq!(
            err("/offboard user:alice when:2026-02-30"),
            "when: \"2026-02-30\" is not a date; write it as YYYY-MM-DD, like 2026-12-31"
        );
        assert!(err("/offboard user:alice when:tomorrow").starts_with("when: "));
    }

    #[test]
    fn a_word_for_a_date_is_told_the_date_format_not_a_length() {
        assert_eq!(
            err("/offboard user:alice when:tomorrow"),
            "when: \"tomorrow\" is not a date; write it as YYYY-MM-DD, like 2026-12-31"
        );
    }

    #[test]
    fn admin_commands_are_hidden_until_a_server_admin_grants_them() {
        let r = reg();
        for name in ["onboard", "offboard", "role"] {
            let v = serde_json::to_value(r.get(name).unwrap()).unwrap();
            assert_eq!(v["default_member_permissions"], "0", "/{name}");
        }
        for name in ["request", "access", "approvals", "revoke", "help"] {
            let v = serde_json::to_value(r.get(name).unwrap()).unwrap();
            assert!(v.get("default_member_permissions").is_none(), "/{name}");
        }
    }

    #[test]
    fn help_lists_every_command_and_explains_one() {
        let r = reg();
        let all = r.help(None).unwrap();
        for s in r.specs() {
            assert!(all.contains(&format!("\n/{} — ", s.name)), "{all}");
        }
        let one = r.help(Some("/offboard")).unwrap();
        assert!(one.starts_with("/offboard — IT: "), "{one}");
        assert!(
            one.contains("\n  user: Who is leaving. (a person, required)"),
            "{one}"
        );
        assert!(one.contains("\n  when: "), "{one}");
        assert!(one.ends_with("Example: /offboard user:…"), "{one}");
        assert!(r.help(Some("approvals")).unwrap().contains("no options"));
        assert_eq!(
            r.help(Some("requst")).unwrap_err().to_string(),
            "there is no command /requst — did you mean /request?"
        );
        assert_eq!(
            reg().parse_line("/help command:role").unwrap(),
            Intent::Help {
                command: Some("role".into())
            }
        );
    }

    #[test]
    fn other_typed_values_name_their_option() {
        assert_eq!(
            err("/onboard email:lena name:L role:engineer"),
            "email: \"lena\" is not an email address"
        );
        assert!(err("/role user:erin role:Designer").starts_with("role: "));
        assert!(
            err("/onboard email:l@acme.test name:L role:engineer handle:L.R")
                .starts_with("handle: ")
        );
    }

    #[test]
    fn max_length_is_enforced() {
        let long = "x".repeat(501);
        assert_eq!(
            err(&format!("/request app:figma reason:{long}")),
            "reason: 501 characters is too long; at most 500 are allowed"
        );
    }

    #[test]
    fn choices_are_enforced() {
        let r = Registry::from_json(&[r#"{"name":"pick","description":"p","options":[
            {"type":3,"name":"kind","description":"k","required":true,
             "choices":[{"name":"Read only","value":"ro"},{"name":"Read write","value":"rw"}]}]}"#])
        .unwrap();
        assert_eq!(
            r.validate("pick", vec![("kind".into(), "ro".into())])
                .unwrap()
                .get("kind"),
            Some("ro")
        );
        assert_eq!(
            r.validate("pick", vec![("kind".into(), "read write".into())])
                .unwrap()
                .get("kind"),
            Some("rw")
        );
        assert_eq!(
            r.validate("pick", vec![("kind".into(), "admin".into())])
                .unwrap_err()
                .to_string(),
            "kind: \"admin\" is not one of the choices: `ro` and `rw`"
        );
    }

    #[test]
    fn validate_serves_adapters_without_the_tokenizer() {
        let inv = reg()
            .validate(
                "request",
                vec![
                    ("app".into(), "  figma ".into()),
                    ("duration".into(), "8h".into()),
                ],
            )
            .unwrap();
        assert_eq!(inv.name, "request");
        assert_eq!(inv.get("app"), Some("figma"));
        assert_eq!(
            inv.span("duration").unwrap(),
            Some(Span::parse("8h").unwrap())
        );
        assert_eq!(inv.get("reason"), None);
    }

    #[test]
    fn from_invocation_refuses_a_hand_built_invocation_missing_options() {
        let inv = Invocation {
            name: "role".into(),
            options: BTreeMap::new(),
        };
        assert_eq!(
            Intent::from_invocation(inv).unwrap_err().to_string(),
            "/role is missing the required option `user`; write it as name:value"
        );
    }

    #[test]
    fn invocation_prints_as_a_console_line_that_parses_back() {
        let r = reg();
        let line = r#"/request app:figma reason:"say \"hi\"" duration:30d"#;
        let (name, raw) = tokenize(line).unwrap();
        let inv = r.validate(&name, raw).unwrap();
        let printed = inv.to_string();
        let (name2, raw2) = tokenize(&printed).unwrap();
        assert_eq!(r.validate(&name2, raw2).unwrap(), inv);
    }
}

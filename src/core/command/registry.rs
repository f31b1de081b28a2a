//! The known slash commands: validation every adapter runs a command through, and `/help`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use super::error::{and_list, closest, invalid};
use super::{CommandError, CommandSpec, Intent, Invocation, OptionSpec, OptionType, tokenize};
use crate::core::model::Handle;

const BUILTIN_FILES: [&str; 11] = [
    include_str!("../../../commands/request.json"),
    include_str!("../../../commands/access.json"),
    include_str!("../../../commands/approvals.json"),
    include_str!("../../../commands/revoke.json"),
    include_str!("../../../commands/onboard.json"),
    include_str!("../../../commands/role.json"),
    include_str!("../../../commands/offboard.json"),
    include_str!("../../../commands/help.json"),
    include_str!("../../../commands/mfa.json"),
    include_str!("../../../commands/drift.json"),
    include_str!("../../../commands/review.json"),
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
    /// values are trimmed and must not be empty; BOOLEAN values are `true` or `false` (or
    /// `yes`/`no`, any case), normalised to `true`/`false`.
    ///
    /// `name` is a command (`request`) or, for a command with subcommands, the command and
    /// the subcommand separated by one space (`mfa enroll`): then the subcommand's options are
    /// validated and the invocation is named `mfa enroll`.
    pub fn validate(
        &self,
        name: &str,
        raw: Vec<(String, String)>,
    ) -> Result<Invocation, CommandError> {
        let mut words = name.split(' ');
        let command = words.next().unwrap_or_default();
        let spec = self
            .get(command)
            .ok_or_else(|| CommandError::UnknownCommand {
                name: command.to_owned(),
                suggestion: closest(command, self.specs.iter().map(|s| s.name.as_str())),
                known: self.specs.iter().map(|s| s.name.clone()).collect(),
            })?;
        let (full, options) = Self::target(spec, words.next())?;
        if let Some(extra) = words.next() {
            return Err(CommandError::BareToken {
                token: extra.to_owned(),
            });
        }
        let options = Self::check_options(&full, options, raw)?;
        Ok(Invocation {
            name: full,
            options,
        })
    }

    /// The name an invocation of `spec` (and subcommand `sub`) carries and the options it
    /// takes; a command with subcommands needs one of them, one without takes none.
    fn target<'a>(
        spec: &'a CommandSpec,
        sub: Option<&str>,
    ) -> Result<(String, &'a [OptionSpec]), CommandError> {
        if !spec.has_subcommands() {
            return match sub {
                Some(word) => Err(CommandError::BareToken {
                    token: word.to_owned(),
                }),
                None => Ok((spec.name.clone(), &spec.options)),
            };
        }
        let subcommands = || spec.options.iter().map(|o| o.name.clone()).collect();
        let Some(word) = sub else {
            return Err(CommandError::MissingSubcommand {
                command: spec.name.clone(),
                subcommands: subcommands(),
            });
        };
        match spec.subcommand(word) {
            Some(o) => Ok((format!("{} {}", spec.name, o.name), &o.options)),
            None => Err(CommandError::UnknownSubcommand {
                command: spec.name.clone(),
                suggestion: closest(word, spec.options.iter().map(|o| o.name.as_str())),
                subcommand: word.to_owned(),
                subcommands: subcommands(),
            }),
        }
    }

    /// Checks raw option pairs against `specs`, the options of command `command`.
    fn check_options(
        command: &str,
        specs: &[OptionSpec],
        raw: Vec<(String, String)>,
    ) -> Result<BTreeMap<String, String>, CommandError> {
        let mut options = BTreeMap::new();
        for (key, value) in raw {
            let Some(opt) = specs.iter().find(|o| o.name == key) else {
                return Err(CommandError::UnknownOption {
                    command: command.to_owned(),
                    suggestion: closest(&key, specs.iter().map(|o| o.name.as_str())),
                    option: key,
                    options: specs.iter().map(|o| o.name.clone()).collect(),
                });
            };
            if options.contains_key(&key) {
                return Err(CommandError::RepeatedOption {
                    command: command.to_owned(),
                    option: key,
                });
            }
            let value = check_value(opt, &value)?;
            options.insert(key, value);
        }
        let missing: Vec<String> = specs
            .iter()
            .filter(|o| o.required && !options.contains_key(&o.name))
            .map(|o| o.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(CommandError::MissingOptions {
                command: command.to_owned(),
                options: missing,
            });
        }
        Ok(options)
    }

    /// `/help`'s text: every command with its description, or one command's options (`name`
    /// with or without `/`; `mfa enroll` explains `/mfa`), and its subcommands' options.
    pub fn help(&self, name: Option<&str>) -> Result<String, CommandError> {
        let Some(name) = name else {
            let mut out = String::from("Commands (type /help COMMAND for its options):");
            for s in &self.specs {
                out.push_str(&format!("\n/{} — {}", s.name, s.description));
            }
            return Ok(out);
        };
        let name = name.trim().trim_start_matches('/').to_lowercase();
        let name = name
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
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
        if !spec.has_subcommands() {
            out.push_str(&option_lines("  ", &spec.options));
            out.push_str(&format!(
                "\nExample: {}",
                example(&spec.name, &spec.options)
            ));
            return Ok(out);
        }
        for sub in &spec.options {
            let full = format!("{} {}", spec.name, sub.name);
            out.push_str(&format!("\n  /{full} — {}", sub.description));
            out.push_str(&option_lines("    ", &sub.options));
        }
        let examples: Vec<String> = spec
            .options
            .iter()
            .map(|sub| example(&format!("{} {}", spec.name, sub.name), &sub.options))
            .collect();
        out.push_str(&format!("\nExamples: {}", examples.join(", ")));
        Ok(out)
    }

    /// Tokenizes, validates and types a console line in one go.
    pub fn parse_line(&self, line: &str) -> Result<Intent, CommandError> {
        let (name, raw) = tokenize(line)?;
        Intent::from_invocation(self.validate(&name, raw)?)
    }
}

/// One line per option, `indent`ed: its name, description, kind and whether it is required.
fn option_lines(indent: &str, options: &[OptionSpec]) -> String {
    let mut out = String::new();
    for o in options {
        let kind = match o.kind {
            OptionType::String => "text",
            OptionType::User => "a person",
            OptionType::Boolean => "true or false",
            OptionType::SubCommand => "a subcommand",
        };
        let need = if o.required { "required" } else { "optional" };
        out.push_str(&format!(
            "\n{indent}{}: {} ({kind}, {need})",
            o.name, o.description
        ));
    }
    out
}

/// `/NAME opt:…` with the required options.
fn example(name: &str, options: &[OptionSpec]) -> String {
    let mut out = format!("/{name}");
    for o in options.iter().filter(|o| o.required) {
        out.push_str(&format!(" {}:…", o.name));
    }
    out
}

fn check_value(opt: &OptionSpec, value: &str) -> Result<String, CommandError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(CommandError::EmptyValue {
            option: opt.name.clone(),
        });
    }
    match opt.kind {
        OptionType::SubCommand => Err(invalid(
            &opt.name,
            "is a subcommand; write it after the command's name, not as name:value",
        )),
        OptionType::Boolean => match value.to_lowercase().as_str() {
            "true" | "yes" => Ok("true".to_owned()),
            "false" | "no" => Ok("false".to_owned()),
            _ => Err(invalid(
                &opt.name,
                format!(
                    "\"{value}\" is neither true nor false; write {}:true or {}:false",
                    opt.name, opt.name
                ),
            )),
        },
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

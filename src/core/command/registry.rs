//! The known slash commands: validation every adapter runs a command through, and `/help`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use super::error::{and_list, closest, invalid};
use super::{CommandError, CommandSpec, Intent, Invocation, OptionSpec, OptionType, tokenize};
use crate::core::model::Handle;

const BUILTIN_FILES: [&str; 8] = [
    include_str!("../../../commands/request.json"),
    include_str!("../../../commands/access.json"),
    include_str!("../../../commands/approvals.json"),
    include_str!("../../../commands/revoke.json"),
    include_str!("../../../commands/onboard.json"),
    include_str!("../../../commands/role.json"),
    include_str!("../../../commands/offboard.json"),
    include_str!("../../../commands/help.json"),
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

//! Why a command line or a command could not be understood, as sentences for the person.

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
    /// A command with subcommands, called without one.
    #[error("/{command} needs a subcommand: {}", subcommand_list(.command, .subcommands))]
    MissingSubcommand {
        /// The command.
        command: String,
        /// Its subcommands.
        subcommands: Vec<String>,
    },
    /// The command has no subcommand of that name.
    #[error("/{command} has no subcommand `{subcommand}`{}", unknown_subcommand_hint(.command, .suggestion, .subcommands))]
    UnknownSubcommand {
        /// The command.
        command: String,
        /// The subcommand as typed.
        subcommand: String,
        /// The closest subcommand, if one is close.
        suggestion: Option<String>,
        /// The command's subcommands.
        subcommands: Vec<String>,
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
pub(super) fn and_list(items: &[String]) -> String {
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

/// `/mfa enroll, /mfa confirm or /mfa status`.
fn subcommand_list(command: &str, subcommands: &[String]) -> String {
    let full: Vec<String> = subcommands
        .iter()
        .map(|s| format!("/{command} {s}"))
        .collect();
    match full.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

fn unknown_subcommand_hint(
    command: &str,
    suggestion: &Option<String>,
    subcommands: &[String],
) -> String {
    let list = subcommand_list(command, subcommands);
    match suggestion {
        Some(s) => format!(" — did you mean /{command} {s}? It has {list}"),
        None => format!("; write {list}"),
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

pub(super) fn invalid(option: &str, message: impl Into<String>) -> CommandError {
    CommandError::InvalidValue {
        option: option.to_owned(),
        message: message.into(),
    }
}

/// The candidate closest to `typed`, if it is close enough to be what was meant.
pub(super) fn closest<'a>(
    typed: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    crate::core::suggest::did_you_mean(typed, candidates).map(str::to_owned)
}

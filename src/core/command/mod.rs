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
//!
//! `spec` holds the files' schema and Discord's rules, `registry` the validation and `/help`,
//! `tokenize` the console line, `invocation` a validated command, `intent` its typed form and
//! `error` every refusal as a sentence.

mod error;
mod intent;
mod invocation;
mod registry;
mod spec;
mod tokenize;

pub use error::CommandError;
pub use intent::{Intent, MfaIntent, ReviewIntent};
pub use invocation::Invocation;
pub use registry::Registry;
pub use spec::{Choice, CommandSpec, OptionSpec, OptionType};
pub use tokenize::tokenize;

#[cfg(test)]
mod subcommand_tests;
#[cfg(test)]
mod tests;

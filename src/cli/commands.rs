//! `commands register`: the slash commands, registered with Discord.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use quartermaster::chat::discord;

use super::{LogFormat, fail, load_config, telemetry};

/// `commands …`: Discord application commands.
#[derive(Subcommand)]
pub enum CommandsVerb {
    /// Register commands/*.json with Discord by bulk overwrite (running it twice changes
    /// nothing): globally, or in one guild (instant, for testing).
    Register {
        /// Config file (its `[discord]` section).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Register in this guild only.
        #[arg(long)]
        guild: Option<String>,
    },
}

/// `commands VERB`.
pub async fn commands(verb: CommandsVerb) -> ExitCode {
    telemetry("warn", LogFormat::Text);
    match verb {
        CommandsVerb::Register { config, guild } => register_commands(config, guild).await,
    }
}

/// `commands register [--guild ID]`: a bulk overwrite, globally or in one guild.
async fn register_commands(config_path: Option<PathBuf>, guild: Option<String>) -> ExitCode {
    let config = match load_config(config_path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(dc) = &config.discord else {
        eprintln!("[discord] is not configured: set application_id and token_env first");
        return ExitCode::from(1);
    };
    let guild = match guild.as_deref().map(str::parse::<u64>) {
        None => None,
        Some(Ok(g)) if g != 0 => Some(serenity::model::id::GuildId::new(g)),
        Some(_) => {
            eprintln!("--guild: not a Discord guild id (digits only)");
            return ExitCode::from(2);
        }
    };
    let http = match discord::build_http(dc) {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let registry = quartermaster::core::command::Registry::builtin();
    match discord::register::register(&http, &registry, guild).await {
        Ok(names) => {
            println!(
                "registered {} commands {}: {}",
                names.len(),
                guild.map_or_else(|| "globally".to_owned(), |g| format!("in guild {g}")),
                names.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot register the commands: {e}");
            ExitCode::from(1)
        }
    }
}

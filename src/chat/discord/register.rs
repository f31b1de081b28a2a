//! `quartermaster commands register`: bulk-overwrites the application's commands with
//! `commands/*.json` (`PUT /applications/{id}/commands`, or the guild's), so running it twice
//! changes nothing.

use serenity::http::Http;
use serenity::model::id::GuildId;

use super::{DiscordError, with_retry};
use crate::core::command::Registry;

/// Registers every command of `registry`, globally or in one guild; returns the names Discord
/// now holds.
pub async fn register(
    http: &Http,
    registry: &Registry,
    guild: Option<GuildId>,
) -> Result<Vec<String>, DiscordError> {
    let specs = registry.specs();
    let cmds = match guild {
        Some(g) => with_retry(|| http.create_guild_commands(g, &specs)).await?,
        None => with_retry(|| http.create_global_commands(&specs)).await?,
    };
    Ok(cmds.into_iter().map(|c| c.name).collect())
}

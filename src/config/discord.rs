//! `[discord]`: how Discord reaches Quartermaster, the bot's token and where it answers.

use super::walker::Walker;
use super::{Cx, DiscordConfig, DiscordMode, Rec, keys, suggest};

impl Walker<'_, '_> {
    /// `[discord]`; `None` when absent (Discord is off) or wrong (reported).
    pub(super) fn discord(&mut self, root: &Rec) -> Option<DiscordConfig> {
        let cx = &mut *self.cx;
        let d = root.table(cx, "discord")?;
        d.check_keys(cx, &keys::keys("discord"));
        let mode = mode(cx, &d);
        let application_id = application_id(cx, &d);
        let mut key_ok = true;
        let public_key = d.string(cx, "public_key").and_then(|k| {
            if k.len() == 64 && k.chars().all(|c| c.is_ascii_hexdigit()) {
                Some(k.to_ascii_lowercase())
            } else {
                cx.err(
                    d.at("public_key"),
                    "expected the application's Ed25519 public key: 64 hex digits",
                );
                key_ok = false;
                None
            }
        });
        if mode == Some(DiscordMode::Interactions) && public_key.is_none() && key_ok {
            cx.err(
                d.at("public_key"),
                "required when mode = \"interactions\" (Discord's requests are checked with it)",
            );
            key_ok = false;
        }
        let token = d.secret(cx, "token_env");
        let (api_base, approvals_channel, guilds) = where_to_answer(cx, &d)?;
        if !key_ok {
            return None;
        }
        Some(DiscordConfig {
            mode: mode?,
            application_id: application_id?,
            public_key,
            token: token?,
            api_base,
            approvals_channel,
            guilds,
        })
    }
}

/// `mode` (default `gateway`).
fn mode(cx: &mut Cx, d: &Rec) -> Option<DiscordMode> {
    match d.string(cx, "mode") {
        None => Some(DiscordMode::Gateway),
        Some("gateway") => Some(DiscordMode::Gateway),
        Some("interactions") => Some(DiscordMode::Interactions),
        Some(m) => {
            cx.err(
                d.at("mode"),
                format!(
                    "unknown mode {m:?}: write \"gateway\" or \"interactions\"{}",
                    suggest(m, ["gateway", "interactions"])
                ),
            );
            None
        }
    }
}

/// `application_id` (required): digits.
fn application_id(cx: &mut Cx, d: &Rec) -> Option<String> {
    if !d.has("application_id") {
        cx.err(d.at("application_id"), "required key is missing");
        return None;
    }
    let s = d.id(cx, "application_id")?;
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
        Some(s)
    } else {
        cx.err(
            d.at("application_id"),
            format!("{s:?} is not a Discord application id (digits only)"),
        );
        None
    }
}

/// `api_base`, `approvals_channel` and `guilds`; `None` when any of them is wrong (reported).
fn where_to_answer(cx: &mut Cx, d: &Rec) -> Option<(Option<String>, Option<String>, Vec<u64>)> {
    let mut ok = true;
    let api_base = d.string(cx, "api_base").and_then(|u| {
        if u.starts_with("http://") || u.starts_with("https://") {
            Some(u.trim_end_matches('/').to_owned())
        } else {
            cx.err(
                d.at("api_base"),
                format!("{u:?} is not an http:// or https:// URL"),
            );
            ok = false;
            None
        }
    });
    let approvals_channel = d.id(cx, "approvals_channel").and_then(|c| {
        if c.trim().is_empty() {
            cx.err(d.at("approvals_channel"), "must not be empty");
            ok = false;
            None
        } else {
            Some(c)
        }
    });
    let mut guilds = Vec::new();
    for (at, g) in d.strings(cx, "guilds").unwrap_or_default() {
        match g.parse::<u64>() {
            Ok(id) if id != 0 && g.chars().all(|c| c.is_ascii_digit()) => guilds.push(id),
            _ => {
                cx.err(at, format!("{g:?} is not a Discord guild id (digits only)"));
                ok = false;
            }
        }
    }
    ok.then_some((api_base, approvals_channel, guilds))
}

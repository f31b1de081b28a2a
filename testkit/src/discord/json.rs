//! JSON the fake produces (users, members, messages, errors) and the payload rules it enforces.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{APP_ID, BOT_ID, Msg};

/// A complete user object.
pub fn user_json(id: &str, name: &str, bot: bool) -> Value {
    json!({
        "id": id, "username": name, "discriminator": "0", "global_name": name,
        "avatar": null, "bot": bot, "system": false, "public_flags": 0, "flags": 0,
        "banner": null, "accent_color": null,
    })
}

pub(super) fn member_json(user: &Value) -> Value {
    json!({
        "user": user, "nick": null, "avatar": null, "roles": [],
        "joined_at": "2026-01-05T09:00:00.000000+00:00", "premium_since": null,
        "deaf": false, "mute": false, "flags": 0, "pending": false,
        "permissions": "2248473465835073", "communication_disabled_until": null,
    })
}

pub(super) fn message_json(m: &Msg, flags: u64) -> Value {
    let v = json!({
        "id": m.id, "channel_id": m.channel_id, "author": user_json(BOT_ID, "Quartermaster", true),
        "content": m.content, "timestamp": "2026-11-25T09:00:00.000000+00:00",
        "edited_timestamp": if m.edits > 0 { json!("2026-11-25T09:01:00.000000+00:00") } else { Value::Null },
        "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
        "attachments": [], "embeds": [], "pinned": false, "type": 0, "flags": flags,
        "components": m.components, "application_id": APP_ID, "webhook_id": null,
    });
    if let Err(e) = serde_json::from_value::<serenity::all::Message>(v.clone()) {
        panic!("the fake built a message serenity cannot read: {e}\n{v:#}");
    }
    v
}

pub(super) fn error(status: StatusCode, code: u64, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({ "code": code, "message": message, "errors": {} }),
    )
}

pub(super) fn form_error(why: String) -> (StatusCode, Value) {
    (
        StatusCode::BAD_REQUEST,
        json!({ "code": 50035, "message": format!("Invalid Form Body: {why}"), "errors": {} }),
    )
}

/// Checks message components as Discord does.
pub(super) fn check_components(c: &Value) -> Result<(), String> {
    let Some(rows) = c.as_array() else {
        return if c.is_null() {
            Ok(())
        } else {
            Err("components must be an array".into())
        };
    };
    if rows.len() > 5 {
        return Err(format!("{} action rows (max 5)", rows.len()));
    }
    for row in rows {
        if row["type"] != 1 {
            return Err("a top-level component must be an action row".into());
        }
        let items = row["components"].as_array().cloned().unwrap_or_default();
        if items.is_empty() || items.len() > 5 {
            return Err(format!(
                "an action row holds {} components (1..=5)",
                items.len()
            ));
        }
        for b in items {
            let id = b["custom_id"].as_str().unwrap_or_default();
            if b["type"] == 2 || b["type"] == 4 {
                if id.is_empty() || id.chars().count() > 100 {
                    return Err(format!("custom_id {id:?} must be 1..=100 characters"));
                }
                if b["label"].as_str().is_some_and(|l| l.chars().count() > 80) {
                    return Err("label longer than 80".into());
                }
            }
            if b["type"] == 2 && !(1..=4).contains(&b["style"].as_u64().unwrap_or(0)) {
                return Err("a button with a custom_id needs style 1..=4".into());
            }
        }
    }
    Ok(())
}

pub(super) fn check_message(body: &Value) -> Result<(), String> {
    if body["content"]
        .as_str()
        .is_some_and(|c| c.chars().count() > 2000)
    {
        return Err("content longer than 2000".into());
    }
    check_components(&body["components"])
}

pub(super) fn check_callback(body: &Value) -> Result<(), String> {
    let t = body["type"].as_u64().unwrap_or(0);
    match t {
        1 | 4 | 5 | 6 | 7 => check_message(&body["data"]),
        8 => {
            let n = body["data"]["choices"].as_array().map_or(0, Vec::len);
            if n > 25 {
                return Err(format!("{n} choices (max 25)"));
            }
            Ok(())
        }
        9 => {
            let d = &body["data"];
            let id = d["custom_id"].as_str().unwrap_or_default();
            if id.is_empty() || id.chars().count() > 100 {
                return Err(format!("modal custom_id {id:?} must be 1..=100 characters"));
            }
            if d["title"]
                .as_str()
                .is_none_or(|t| t.is_empty() || t.chars().count() > 45)
            {
                return Err("modal title must be 1..=45 characters".into());
            }
            check_components(&d["components"])
        }
        _ => Err(format!("unknown callback type {t}")),
    }
}

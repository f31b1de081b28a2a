//! The REST API under `/api/v10`: every call recorded, rate limits and faults injected, and
//! messages, interactions and commands kept as Discord would.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::json::{check_callback, check_message, error, form_error, message_json, user_json};
use super::{APP_ID, APPROVALS, BOT_ID, Call, DEADLINE, FakeState, Fault, GENERAL, Msg, Shared};

pub(super) fn reply(status: StatusCode, v: Value) -> Response {
    if status == StatusCode::NO_CONTENT {
        return status.into_response();
    }
    (status, axum::Json(v)).into_response()
}

/// How the answer to a call is delivered, beyond its status and body.
#[derive(Default)]
struct Delivery {
    /// Cut the connection mid-answer.
    drop_answer: bool,
    /// Hold the answer this long (outside the lock).
    hang: Option<Duration>,
    /// The `Retry-After` of a 429 (0.05 s when not set).
    retry_after: Option<f64>,
}

/// Every REST call: answered (an injected fault or 429 first), recorded, then delivered.
pub(super) async fn rest(
    State(sh): State<Arc<Shared>>,
    method: Method,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, v, how, limit_headers) = {
        let mut s = sh.state.lock().unwrap();
        // Discord's limits first, when modelled: a call over one is refused as it arrives.
        let verdict = s
            .rates
            .as_mut()
            .map(|r| r.check(&method, &rest, Instant::now()));
        let (status, v, how, limit_headers) = match verdict {
            Some(super::limits::Verdict {
                headers,
                refused: Some(v),
            }) => (
                StatusCode::TOO_MANY_REQUESTS,
                v,
                Delivery::default(),
                headers,
            ),
            other => {
                let (status, v, how) = answer(&mut s, sh.addr, &method, &rest, &body);
                (status, v, how, other.map(|o| o.headers).unwrap_or_default())
            }
        };
        let code = if status.is_success() {
            None
        } else {
            v["code"].as_u64()
        };
        s.calls.push(Call {
            method: method.to_string(),
            path: format!("/{rest}"),
            body,
            status: status.as_u16(),
            code,
            auth,
            at: Instant::now(),
        });
        (status, v, how, limit_headers)
    };
    sh.changed.notify_waiters();
    if let Some(d) = how.hang {
        // Outside the lock: other calls go on meanwhile.
        tokio::time::sleep(d).await;
    }
    if how.drop_answer {
        // Headers, then a body that breaks: the connection is cut mid-answer.
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("content-length", "512")
            .body(axum::body::Body::new(Broken))
            .unwrap();
    }
    let mut r = reply(status, v);
    let limited = limit_headers.contains_key("retry-after");
    r.headers_mut().extend(limit_headers);
    if status == StatusCode::TOO_MANY_REQUESTS && !limited {
        let secs = how.retry_after.unwrap_or(0.05).to_string();
        r.headers_mut().insert(
            "retry-after",
            axum::http::HeaderValue::from_str(&secs).unwrap(),
        );
    }
    r
}

/// The answer to one call: the next injected fault for a message create, else an injected
/// 429, else what Discord would answer.
fn answer(
    s: &mut FakeState,
    addr: SocketAddr,
    method: &Method,
    rest: &str,
    body: &Value,
) -> (StatusCode, Value, Delivery) {
    let is_create =
        method == Method::POST && rest.starts_with("channels/") && rest.ends_with("/messages");
    let mut how = Delivery::default();
    let limited = s.rate_limit_next > 0 && !rest.starts_with("gateway");
    let fault = if is_create {
        s.faults.pop_front()
    } else {
        None
    };
    let (status, v) = if let Some(f) = fault {
        match f {
            Fault::Status(code) => (
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                json!({ "message": "Service unavailable", "code": 0 }),
            ),
            Fault::RateLimit(secs) => {
                how.retry_after = Some(secs);
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({ "message": "You are being rate limited.", "retry_after": secs, "global": false, "code": 0 }),
                )
            }
            Fault::DropBefore => {
                how.drop_answer = true;
                (StatusCode::OK, Value::Null)
            }
            Fault::DropAfterCreate => {
                how.drop_answer = true;
                route(s, addr, method, rest, body)
            }
            Fault::HangAfterCreate(d) => {
                how.hang = Some(d);
                route(s, addr, method, rest, body)
            }
        }
    } else if limited {
        s.rate_limit_next -= 1;
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!({ "message": "You are being rate limited.", "retry_after": 0.05, "global": false, "code": 0 }),
        )
    } else {
        route(s, addr, method, rest, body)
    };
    (status, v, how)
}

/// A response body that fails at once: hyper cuts the connection.
pub(super) struct Broken;

impl axum::body::HttpBody for Broken {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::other("connection dropped"))))
    }
}

/// What Discord answers a call, by method and path.
pub(super) fn route(
    s: &mut FakeState,
    addr: SocketAddr,
    method: &Method,
    rest: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let seg: Vec<&str> = rest.split('/').collect();
    match (method.as_str(), seg.as_slice()) {
        ("GET", ["gateway"]) => (
            StatusCode::OK,
            json!({ "url": s.gateway_url.clone().unwrap_or_else(|| format!("ws://{addr}/gateway")) }),
        ),
        ("GET", ["gateway", "bot"]) => (
            StatusCode::OK,
            json!({
                "url": s.gateway_url.clone().unwrap_or_else(|| format!("ws://{addr}/gateway")),
                "shards": 1,
                "session_start_limit": { "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1 },
            }),
        ),
        ("GET", ["users", "@me"]) => (StatusCode::OK, user_json(BOT_ID, "Quartermaster", true)),
        ("GET", ["applications", "@me"]) => (
            StatusCode::OK,
            json!({ "id": APP_ID, "name": "Quartermaster", "bot_public": false }),
        ),
        ("POST", ["users", "@me", "channels"]) => open_dm(s, body),
        ("POST", ["channels", ch, "messages"]) => create_message(s, ch, body),
        ("PATCH", ["channels", ch, "messages", mid]) => edit_message(s, ch, mid, body),
        ("POST", ["interactions", id, token, "callback"]) => callback(s, id, token, body),
        ("PATCH", ["webhooks", app, token, "messages", "@original"]) => {
            edit_original(s, app, token, body)
        }
        ("PUT", ["applications", app, "commands"]) => put_commands(s, app, None, body),
        ("PUT", ["applications", app, "guilds", g, "commands"]) => {
            put_commands(s, app, Some(g), body)
        }
        _ => error(StatusCode::NOT_FOUND, 0, "404: Not Found"),
    }
}

/// `POST /users/@me/channels`: the DM channel with `recipient_id`, made on first use.
fn open_dm(s: &mut FakeState, body: &Value) -> (StatusCode, Value) {
    let Some(user) = body["recipient_id"].as_str().map(str::to_owned) else {
        return form_error("recipient_id is required".into());
    };
    let ch = match s.dm_channels.get(&user) {
        Some(c) => c.clone(),
        None => {
            let c = s.snowflake().to_string();
            s.dm_channels.insert(user.clone(), c.clone());
            c
        }
    };
    (
        StatusCode::OK,
        json!({
            "id": ch, "type": 1, "last_message_id": null,
            "recipients": [user_json(&user, "someone", false)],
        }),
    )
}

/// `POST /channels/CH/messages`: checked, refused for closed or failing DMs (or a channel
/// told to fail), deduplicated by an enforced nonce.
fn create_message(s: &mut FakeState, ch: &str, body: &Value) -> (StatusCode, Value) {
    if let Err(e) = check_message(body) {
        return form_error(e);
    }
    let dm_user = s
        .dm_channels
        .iter()
        .find(|(_, c)| c.as_str() == ch)
        .map(|(u, _)| u.clone());
    if dm_user.is_none() && ch != GENERAL && ch != APPROVALS {
        return error(StatusCode::NOT_FOUND, 10003, "Unknown Channel");
    }
    if dm_user.as_ref().is_some_and(|u| s.closed_dms.contains(u)) {
        return error(
            StatusCode::FORBIDDEN,
            50007,
            "Cannot send messages to this user",
        );
    }
    if let Some(n) = s.failing_creates_in.get_mut(ch).filter(|n| **n > 0) {
        *n -= 1;
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            0,
            "500: Internal Server Error",
        );
    }
    if dm_user.as_ref().is_some_and(|u| s.failing_dms.contains(u)) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            0,
            "500: Internal Server Error",
        );
    }
    let nonce = match &body["nonce"] {
        Value::String(n) => Some(n.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if nonce.as_ref().is_some_and(|n| n.chars().count() > 25) {
        return form_error("nonce longer than 25".into());
    }
    let enforce = body["enforce_nonce"].as_bool().unwrap_or(false);
    if let (Some(n), true) = (&nonce, enforce)
        && let Some(id) = s.nonces.get(&(ch.to_owned(), n.clone()))
        && let Some(m) = s.messages.get(id)
    {
        return (StatusCode::OK, message_json(m, 0));
    }
    let id = s.snowflake();
    if let (Some(n), true) = (nonce, enforce) {
        s.nonces.insert((ch.to_owned(), n), id);
    }
    let m = Msg {
        id: id.to_string(),
        channel_id: ch.to_owned(),
        content: body["content"].as_str().unwrap_or_default().to_owned(),
        components: body.get("components").cloned().unwrap_or(json!([])),
        edits: 0,
    };
    let v = message_json(&m, 0);
    s.messages.insert(id, m);
    (StatusCode::OK, v)
}

/// `PATCH /channels/CH/messages/ID`: content and components replaced.
fn edit_message(s: &mut FakeState, ch: &str, mid: &str, body: &Value) -> (StatusCode, Value) {
    if let Err(e) = check_message(body) {
        return form_error(e);
    }
    let Some(m) = mid
        .parse::<u64>()
        .ok()
        .and_then(|id| s.messages.get_mut(&id))
        .filter(|m| m.channel_id == ch)
    else {
        return error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
    };
    if let Some(c) = body["content"].as_str() {
        m.content = c.to_owned();
    }
    if let Some(c) = body.get("components") {
        m.components = c.clone();
    }
    m.edits += 1;
    let v = message_json(m, 0);
    (StatusCode::OK, v)
}

/// `POST /interactions/ID/TOKEN/callback`: the one first response, within the deadline.
fn callback(s: &mut FakeState, id: &str, token: &str, body: &Value) -> (StatusCode, Value) {
    let Some(i) = s.interactions.get_mut(id).filter(|i| i.token == token) else {
        return error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
    };
    if i.ack.is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            40060,
            "Interaction has already been acknowledged.",
        );
    }
    if i.created.elapsed() > DEADLINE {
        return error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
    }
    if let Err(e) = check_callback(body) {
        return form_error(e);
    }
    i.ack = Some(body.clone());
    if matches!(body["type"].as_u64(), Some(4 | 5)) {
        i.original = Some(body["data"].clone());
    }
    (StatusCode::NO_CONTENT, Value::Null)
}

/// `PATCH /webhooks/APP/TOKEN/messages/@original`: the acknowledged response edited, while
/// its token has not expired.
fn edit_original(s: &mut FakeState, app: &str, token: &str, body: &Value) -> (StatusCode, Value) {
    if app != APP_ID {
        return error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
    }
    if let Err(e) = check_message(body) {
        return form_error(e);
    }
    let Some((iid, i)) = s
        .interactions
        .iter_mut()
        .find(|(_, i)| i.token == token)
        .map(|(k, i)| (k.clone(), i))
    else {
        return error(StatusCode::UNAUTHORIZED, 50027, "Invalid Webhook Token");
    };
    if i.expired {
        return error(StatusCode::UNAUTHORIZED, 50027, "Invalid Webhook Token");
    }
    if i.ack.is_none() {
        return error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
    }
    let mut orig = i.original.clone().unwrap_or(json!({}));
    for k in ["content", "components"] {
        if let Some(v) = body.get(k) {
            orig[k] = v.clone();
        }
    }
    i.original = Some(orig.clone());
    let m = Msg {
        id: iid,
        channel_id: i.channel_id.clone(),
        content: orig["content"].as_str().unwrap_or_default().to_owned(),
        components: orig.get("components").cloned().unwrap_or(json!([])),
        edits: 1,
    };
    (StatusCode::OK, message_json(&m, 64))
}

/// `PUT /applications/APP[/guilds/G]/commands`: a bulk overwrite, global or in guild `g`.
fn put_commands(
    s: &mut FakeState,
    app: &str,
    g: Option<&str>,
    body: &Value,
) -> (StatusCode, Value) {
    if app != APP_ID {
        return error(StatusCode::FORBIDDEN, 50001, "Missing Access");
    }
    let old = match g {
        None => s.global_commands.clone(),
        Some(g) => s.guild_commands.get(g).cloned().unwrap_or_default(),
    };
    match overwrite(s, &old, body, g) {
        Ok(v) => {
            match g {
                None => s.global_commands = v.clone(),
                Some(g) => {
                    s.guild_commands.insert(g.to_owned(), v.clone());
                }
            }
            (StatusCode::OK, Value::Array(v))
        }
        Err(e) => form_error(e),
    }
}

/// Bulk overwrite: commands keep their id (and version) when their name and content are
/// unchanged, as Discord does.
pub(super) fn overwrite(
    s: &mut FakeState,
    old: &[Value],
    body: &Value,
    guild: Option<&str>,
) -> Result<Vec<Value>, String> {
    let Some(cmds) = body.as_array() else {
        return Err("the body must be an array of commands".into());
    };
    let mut out = Vec::new();
    for c in cmds {
        let name = c["name"].as_str().unwrap_or_default();
        if name.is_empty() || name.len() > 32 || name.to_lowercase() != name {
            return Err(format!("bad command name {name:?}"));
        }
        let desc = c["description"].as_str().unwrap_or_default();
        if desc.is_empty() || desc.chars().count() > 100 {
            return Err(format!("/{name}: description must be 1..=100 characters"));
        }
        let prev = old.iter().find(|o| o["name"] == name);
        let same = prev
            .is_some_and(|p| p["options"] == c["options"] && p["description"] == c["description"]);
        let (id, version) = match prev {
            Some(p) if same => (p["id"].clone(), p["version"].clone()),
            Some(p) => (p["id"].clone(), json!(s.snowflake().to_string())),
            None => (
                json!(s.snowflake().to_string()),
                json!(s.snowflake().to_string()),
            ),
        };
        let mut v = c.clone();
        v["id"] = id;
        v["version"] = version;
        v["application_id"] = json!(APP_ID);
        v["type"] = c.get("type").cloned().unwrap_or(json!(1));
        v["guild_id"] = guild.map_or(Value::Null, |g| json!(g));
        v["options"] = c.get("options").cloned().unwrap_or(json!([]));
        // Kept as sent (a permission bit set as a string; "0": admins only), else null.
        v["default_member_permissions"] = c
            .get("default_member_permissions")
            .cloned()
            .unwrap_or(Value::Null);
        v["nsfw"] = json!(false);
        if let Err(e) = serde_json::from_value::<serenity::all::Command>(v.clone()) {
            return Err(format!("/{name}: {e}"));
        }
        out.push(v);
    }
    Ok(out)
}

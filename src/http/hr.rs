//! `POST /hr/events`: the HR feed (CONTRACTS §5). The signature and timestamp are checked
//! before the body is parsed; the event is decoded into the core's [`HrEvent`] and handed to
//! [`Service::hr_event`], which holds every rule (and the dedupe by event id).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use crate::core::model::{Email, Handle, Person, PersonStatus, RoleName};
use crate::core::service::{HrError, HrEvent, HrKind, HrOutcome, Service};

/// How far the sender's clock may be from ours.
pub const WINDOW_SECS: i64 = 300;

/// The largest event body: one person record within the core's field limits
/// ([`crate::core::validate`]) takes under 2 KiB of JSON; 16 KiB leaves room for extra keys.
pub const MAX_BODY: usize = 16 * 1024;

struct HrState {
    service: Arc<Service>,
    secret: SecretString,
}

/// The HR feed's routes: `POST /hr/events`, checked against `secret` (`[hr] secret_env`) and
/// the service's clock.
pub fn router(service: Arc<Service>, secret: SecretString) -> Router {
    Router::new()
        .route("/hr/events", post(events))
        .with_state(Arc::new(HrState { service, secret }))
        .layer(axum::middleware::from_fn(|r, n| {
            super::bounded_body(MAX_BODY, super::BODY_TIMEOUT, r, n)
        }))
}

#[derive(Deserialize)]
struct WireEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    #[allow(dead_code)]
    occurred_at: Option<String>,
    person: WirePerson,
}

#[derive(Deserialize)]
struct WirePerson {
    handle: String,
    name: String,
    email: String,
    #[serde(default)]
    department: Option<String>,
    role: String,
    #[serde(default)]
    manager: Option<String>,
    #[serde(default)]
    discord_id: Option<String>,
    /// An IANA name; absent or empty keeps the person's stored zone.
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    start_date: Option<String>,
    #[serde(default)]
    last_day: Option<String>,
    #[serde(default)]
    effective_at: Option<String>,
}

fn answer(code: StatusCode, body: serde_json::Value) -> Response {
    (code, axum::Json(body)).into_response()
}

fn unauthorized(why: &str) -> Response {
    answer(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({ "error": why }),
    )
}

/// Checks `X-QM-Timestamp` (±5 min of `now`) and `X-QM-Signature: sha256=HEX` over
/// `timestamp + "." + body`, in constant time.
fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secret: &SecretString,
    now: i64,
) -> Result<(), &'static str> {
    let ts = headers
        .get("x-qm-timestamp")
        .and_then(|v| v.to_str().ok())
        .ok_or("missing X-QM-Timestamp")?;
    let t: i64 = ts.trim().parse().map_err(|_| "bad X-QM-Timestamp")?;
    // Checked: the timestamp is the sender's, and `i64::MIN` must not overflow.
    if now
        .checked_sub(t)
        .and_then(i64::checked_abs)
        .is_none_or(|d| d > WINDOW_SECS)
    {
        return Err("timestamp outside the 5 minute window");
    }
    let sig = headers
        .get("x-qm-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("sha256="))
        .ok_or("missing X-QM-Signature")?;
    let sig = hex::decode(sig).map_err(|_| "bad X-QM-Signature")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .map_err(|_| "bad secret")?;
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sig).map_err(|_| "bad signature")
}

fn decode(w: WireEvent) -> Result<HrEvent, String> {
    let kind = HrKind::parse(&w.kind).ok_or_else(|| {
        format!(
            "type: unknown event type \"{}\"; expected hire, change or leave",
            w.kind
        )
    })?;
    let p = w.person;
    let field = |k: &str, e: String| format!("person.{k}: {e}");
    let date = |k: &str, v: Option<String>| {
        v.filter(|s| !s.is_empty())
            .map(|s| chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d"))
            .transpose()
            .map_err(|e| field(k, format!("not a YYYY-MM-DD date: {e}")))
    };
    let person = Person {
        handle: Handle::parse(&p.handle).map_err(|e| field("handle", e.to_string()))?,
        name: p.name,
        email: Email::parse(&p.email).map_err(|e| field("email", e.to_string()))?,
        department: p.department.unwrap_or_default(),
        role: RoleName::parse(&p.role).map_err(|e| field("role", e.to_string()))?,
        manager: p
            .manager
            .filter(|m| !m.is_empty())
            .map(|m| Handle::parse(&m))
            .transpose()
            .map_err(|e| field("manager", e.to_string()))?,
        discord_id: p.discord_id.filter(|d| !d.is_empty()),
        status: PersonStatus::Active,
        timezone: p
            .timezone
            .filter(|z| !z.trim().is_empty())
            .map(|z| crate::core::validate::timezone(&z))
            .transpose()
            .map_err(|e| field("timezone", e.message))?,
    };
    let effective_at = p
        .effective_at
        .filter(|s| !s.is_empty())
        .map(|s| chrono::DateTime::parse_from_rfc3339(&s))
        .transpose()
        .map_err(|e| field("effective_at", format!("not an RFC 3339 moment: {e}")))?
        .map(|t| t.with_timezone(&chrono::Utc));
    Ok(HrEvent {
        id: w.id,
        kind,
        person,
        last_day: date("last_day", p.last_day)?,
        effective_at,
    })
}

#[tracing::instrument(skip_all)]
async fn events(State(st): State<Arc<HrState>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = st.service.clock().now().timestamp();
    if let Err(why) = verify(&headers, &body, &st.secret, now) {
        tracing::warn!(why, "HR event refused");
        return unauthorized(why);
    }
    let wire: WireEvent = match serde_json::from_slice(&body) {
        Ok(w) => w,
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "error": format!("bad JSON: {e}") }),
            );
        }
    };
    if wire.id.trim().is_empty() {
        return answer(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": "id must not be empty" }),
        );
    }
    let ev = match decode(wire) {
        Ok(ev) => ev,
        Err(e) => {
            return answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                serde_json::json!({ "error": e }),
            );
        }
    };
    let id = ev.id.clone();
    match st.service.hr_event(ev).await {
        Ok(HrOutcome::Accepted(detail)) => answer(
            StatusCode::ACCEPTED,
            serde_json::json!({ "id": id, "status": "accepted", "detail": detail }),
        ),
        Ok(HrOutcome::Duplicate) => answer(
            StatusCode::OK,
            serde_json::json!({ "id": id, "status": "duplicate" }),
        ),
        Err(HrError::Unprocessable(e)) => answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({ "id": id, "error": e.to_string() }),
        ),
        Err(HrError::Service(e)) => {
            tracing::error!(error = %e, event_id = %id, "HR event failed");
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({ "id": id, "error": "internal error; retry later" }),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_timestamp_outside_the_window_is_refused_without_overflow() {
        let secret = SecretString::from("k".to_owned());
        for t in [i64::MIN, i64::MAX, -1, 1_000 - WINDOW_SECS - 1] {
            let mut h = HeaderMap::new();
            h.insert("x-qm-timestamp", t.to_string().parse().unwrap());
            assert_eq!(
                verify(&h, b"{}", &secret, 1_000),
                Err("timestamp outside the 5 minute window"),
                "{t}"
            );
        }
    }
}

//! `POST /discord/interactions`: Discord's interactions endpoint. The Ed25519 signature over
//! `X-Signature-Timestamp` ++ body is checked with serenity's `Verifier` before the body is
//! read (401 on failure); a timestamp more than 5 minutes off is refused (401); PING gets PONG;
//! an interaction id seen before gets 200 and is not acted on twice. The HTTP response body is
//! the interaction callback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use serenity::all::Interaction;
use serenity::interactions_endpoint::Verifier;
use tracing::warn;

use crate::chat::discord::handler::{EPHEMERAL, InteractionHandler, NotHandled};

/// How far a request's timestamp may be from now.
pub const MAX_SKEW_SECS: i64 = 300;

/// The largest interaction body. Discord documents no cap on the payload, but bounds what
/// it carries: a component click echoes its message (2,000 characters of content, embeds of
/// 6,000 characters in all, 5 rows of components) and a modal submits at most 5 inputs of
/// 4,000 characters; at 4 bytes a character plus the JSON around it, 128 KiB holds either.
pub const MAX_BODY: usize = 128 * 1024;

/// A malformed public key.
#[derive(Debug, thiserror::Error)]
#[error("[discord] public_key is not a 64-character hex Ed25519 public key")]
pub struct BadPublicKey;

/// The verifier for the application's hex public key.
pub fn verifier(public_key_hex: &str) -> Result<Verifier, BadPublicKey> {
    let bytes = hex::decode(public_key_hex.trim()).map_err(|_| BadPublicKey)?;
    let arr: [u8; 32] = bytes.try_into().map_err(|_| BadPublicKey)?;
    Verifier::try_new(arr).map_err(|_| BadPublicKey)
}

/// What the route needs.
#[derive(Clone)]
pub struct InteractionsState {
    /// The interaction handler shared with gateway mode.
    pub interactions: Arc<InteractionHandler>,
    /// The application's public key.
    pub verifier: Arc<Verifier>,
}

/// `POST /discord/interactions`.
/// Every response's latency, from arrival to response, goes to [`crate::metrics::Metrics::endpoint`].
pub fn router(state: InteractionsState) -> Router {
    let metrics = state.interactions.metrics().clone();
    Router::new()
        .route("/discord/interactions", post(interaction))
        .with_state(state)
        .layer(middleware::from_fn(|r, n| {
            super::bounded_body(MAX_BODY, super::BODY_TIMEOUT, r, n)
        }))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let metrics = metrics.clone();
            async move {
                let started = Instant::now();
                let response = next.run(req).await;
                metrics.endpoint(started.elapsed());
                response
            }
        }))
}

fn unauthorized(why: &'static str) -> Response {
    (StatusCode::UNAUTHORIZED, why).into_response()
}

async fn interaction(
    State(s): State<InteractionsState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (Some(sig), Some(ts)) = (
        header("x-signature-ed25519"),
        header("x-signature-timestamp"),
    ) else {
        return unauthorized("missing signature");
    };
    let Ok(t) = ts.parse::<i64>() else {
        return unauthorized("bad timestamp");
    };
    if (chrono::Utc::now().timestamp() - t).abs() > MAX_SKEW_SECS {
        return unauthorized("timestamp too far from now");
    }
    if s.verifier.verify(sig, ts, &body).is_err() {
        return unauthorized("invalid request signature");
    }
    let raw: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return (StatusCode::BAD_REQUEST, "not JSON").into_response(),
    };
    if raw.get("type").and_then(Value::as_u64) == Some(1) {
        s.interactions
            .metrics()
            .interaction("ping", "pong", started.elapsed());
        return Json(json!({ "type": 1 })).into_response();
    }
    let i: Interaction = match serde_json::from_value(raw) {
        Ok(i) => i,
        Err(e) => {
            warn!(error = %e, "an interaction could not be decoded");
            return (StatusCode::BAD_REQUEST, "not an interaction").into_response();
        }
    };
    let (body, pending) = match s.interactions.handle(i).await {
        Ok(handled) => handled,
        Err(NotHandled::Replay) => {
            return Json(json!({
                "type": 4,
                "data": { "content": "This interaction was already handled.", "flags": EPHEMERAL }
            }))
            .into_response();
        }
        Err(NotHandled::Unavailable) => {
            return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
        }
    };
    if let Some(p) = pending {
        tokio::spawn(async move {
            // Let the deferral reach Discord before the edit of the original response.
            tokio::time::sleep(Duration::from_millis(50)).await;
            p.finish().await;
        });
    }
    Json(body).into_response()
}

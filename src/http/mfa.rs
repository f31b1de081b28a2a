//! `GET /mfa/enroll/{token}`: the one-time enrolment page `/mfa enroll` links to (with
//! `[http] public_url`): a QR code and the secret, shown once, within 10 minutes. Nothing is
//! cached, and the page is never logged.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::ExposeSecret;

use crate::core::service::Service;

/// The enrolment page route.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/mfa/enroll/{token}", get(page))
        .with_state(service)
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn page(State(service): State<Arc<Service>>, Path(token): Path<String>) -> Response {
    let (status, body) = match service.enrol_page(&token).await {
        Ok(Some(p)) => (
            StatusCode::OK,
            format!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Quartermaster step-up \
                 enrolment</title></head><body style=\"font-family:sans-serif;max-width:36em;\
                 margin:2em auto\"><h1>Step-up for {name}</h1><p>Scan this code with your \
                 authenticator app (this page works once):</p>{qr}<p>Or type this secret: \
                 <code>{secret}</code></p><p>Then type <code>/mfa confirm code:123456</code> in \
                 Discord with the code your app shows.</p></body></html>",
                name = esc(&p.name),
                qr = p.qr_svg,
                secret = esc(p.secret.expose_secret()),
            ),
        ),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            "<!doctype html><html><body><p>This enrolment link is not valid: it works once, \
             for 10 minutes. Run /mfa enroll again for a new one.</p></body></html>"
                .to_owned(),
        ),
        Err(e) => {
            tracing::error!(error = %e, "enrolment page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><html><body><p>Something went wrong on our side.</p></body></html>"
                    .to_owned(),
            )
        }
    };
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
    );
    r
}

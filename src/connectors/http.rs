//! What the HTTP connectors (SCIM, webhook) share: a client with timeouts, the mapping of an
//! HTTP status to a [`ConnectorError`], and the rate-limit headers (`Retry-After` in seconds
//! or as an HTTP date, Okta's `X-Rate-Limit-Reset` in epoch seconds).

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::core::ports::ConnectorError;

/// Longest error detail quoted from a peer.
const DETAIL_MAX: usize = 300;

/// A client whose every call ends within `timeout` (connecting within at most 10 s).
pub fn client(timeout: Duration) -> Result<reqwest::Client, ConnectorError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| ConnectorError::Permanent(format!("cannot build an HTTP client: {e}")))
}

/// How long a `Retry-After` value asks us to wait: delta-seconds or an HTTP date
/// (RFC 9110 §10.2.3); a date in the past means now.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let at = SystemTime::from(at.with_timezone(&chrono::Utc));
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// How long until an Okta-style `X-Rate-Limit-Reset` (epoch seconds) comes.
pub fn parse_reset(value: &str, now: SystemTime) -> Option<Duration> {
    let epoch: u64 = value.trim().parse().ok()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(epoch);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The wait a response advises: `Retry-After` first, then `X-Rate-Limit-Reset`.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    get("retry-after")
        .and_then(|v| parse_retry_after(v, now))
        .or_else(|| get("x-rate-limit-reset").and_then(|v| parse_reset(v, now)))
}

/// The human part of an error body: the SCIM error schema's `detail` (with `scimType` and
/// `status`, which peers send as a string or a number), else a JSON `message`/`error`, else
/// the start of the text.
pub fn error_detail(body: &str) -> String {
    let text = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => {
            let s = |k: &str| match v.get(k) {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            let detail = s("detail").or_else(|| s("message")).or_else(|| s("error"));
            match (detail, s("scimType")) {
                (Some(d), Some(t)) => format!("{d} ({t})"),
                (Some(d), None) => d,
                (None, Some(t)) => t,
                (None, None) => body.trim().to_owned(),
            }
        }
        Err(_) => body.trim().to_owned(),
    };
    let mut out: String = text.chars().take(DETAIL_MAX).collect();
    if text.chars().count() > DETAIL_MAX {
        out.push('…');
    }
    out
}

/// The SCIM `scimType` of an error body, if any.
pub fn scim_type(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("scimType")?.as_str().map(str::to_owned)
}

/// Maps a failed response to a [`ConnectorError`]: 429 (and a 503 that says when to come
/// back) → rate limited; 408, other 5xx → transient; 401/403 → unauthorised; 404 → not
/// found; 409/412 → conflict; any other status → permanent. `what` names the call.
pub fn status_error(
    what: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    now: SystemTime,
) -> ConnectorError {
    let detail = error_detail(body);
    let msg = if detail.is_empty() {
        format!("{what}: HTTP {}", status.as_u16())
    } else {
        format!("{what}: HTTP {}: {detail}", status.as_u16())
    };
    let wait = retry_after(headers, now);
    match status.as_u16() {
        429 => ConnectorError::RateLimited { retry_after: wait },
        503 if wait.is_some() => ConnectorError::RateLimited { retry_after: wait },
        408 | 500..=599 => ConnectorError::Transient(msg),
        401 | 403 => ConnectorError::Unauthorized(msg),
        404 => ConnectorError::NotFound(msg),
        409 | 412 => ConnectorError::Conflict(msg),
        _ => ConnectorError::Permanent(msg),
    }
}

/// Maps a transport failure (no response): timeouts and connection failures are transient.
/// The text names the call but never the request's headers (where tokens travel).
pub fn transport_error(what: &str, e: &reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::Transient(format!("{what}: timed out (the outcome is unknown)"))
    } else if e.is_connect() {
        ConnectorError::Transient(format!("{what}: cannot connect"))
    } else if e.is_builder() {
        ConnectorError::Permanent(format!("{what}: bad request: {}", strip_url(e)))
    } else {
        ConnectorError::Transient(format!("{what}: {}", strip_url(e)))
    }
}

fn strip_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<url>");
    }
    s
}

/// Removes every occurrence of `secret` from `text` (peers sometimes echo what they got).
pub fn redact(text: String, secret: &str) -> String {
    if secret.len() < 4 || !text.contains(secret) {
        text
    } else {
        text.replace(secret, "[redacted]")
    }
}

/// Applies [`redact`] inside a [`ConnectorError`].
pub fn redact_error(e: ConnectorError, secret: &str) -> ConnectorError {
    use ConnectorError::*;
    match e {
        Transient(m) => Transient(redact(m, secret)),
        Conflict(m) => Conflict(redact(m, secret)),
        NotFound(m) => NotFound(redact(m, secret)),
        Unauthorized(m) => Unauthorized(redact(m, secret)),
        Permanent(m) => Permanent(redact(m, secret)),
        r @ RateLimited { .. } => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn at(epoch: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(epoch)
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = at(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_reset("1445412500", now),
            Some(Duration::from_secs(20))
        );
        assert_eq!(parse_reset("1", now), Some(Duration::ZERO));
    }

    #[test]
    fn statuses_map_to_errors() {
        let now = at(1_000);
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(
            status_error("x", StatusCode::TOO_MANY_REQUESTS, &h, "", now),
            ConnectorError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        let mut okta = HeaderMap::new();
        okta.insert("x-rate-limit-reset", HeaderValue::from_static("1060"));
        assert_eq!(
            status_error("x", StatusCode::TOO_MANY_REQUESTS, &okta, "", now),
            ConnectorError::RateLimited {
                retry_after: Some(Duration::from_secs(60))
            }
        );
        let none = HeaderMap::new();
        assert!(matches!(
            status_error("x", StatusCode::SERVICE_UNAVAILABLE, &none, "", now),
            ConnectorError::Transient(_)
        ));
        assert!(matches!(
            status_error("x", StatusCode::SERVICE_UNAVAILABLE, &h, "", now),
            ConnectorError::RateLimited { .. }
        ));
        assert!(matches!(
            status_error("x", StatusCode::UNAUTHORIZED, &none, "", now),
            ConnectorError::Unauthorized(_)
        ));
        assert!(matches!(
            status_error("x", StatusCode::BAD_REQUEST, &none, "", now),
            ConnectorError::Permanent(_)
        ));
        let scim = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":409,"scimType":"uniqueness","detail":"taken"}"#;
        assert_eq!(
            status_error("create", StatusCode::CONFLICT, &none, scim, now),
            ConnectorError::Conflict("create: HTTP 409: taken (uniqueness)".into())
        );
        assert_eq!(scim_type(scim).as_deref(), Some("uniqueness"));
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("token s3cr3t-x echoed".into(), "s3cr3t-x"),
            "token [redacted] echoed"
        );
    }
}

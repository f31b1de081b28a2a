//! What the HTTP connectors (SCIM, webhook) share: a client with timeouts, the mapping of an
//! HTTP status to a [`ConnectorError`], and the rate-limit headers (`Retry-After` in seconds
//! or as an HTTP date, Okta's `X-Rate-Limit-Reset` in epoch seconds).

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::core::ports::ConnectorError;

/// Longest error detail quoted from a peer.
const DETAIL_MAX: usize = 300;

/// Most of an error body that is read and looked at; the rest is dropped unread.
pub const BODY_MAX: usize = 64 * 1024;

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
    truncate(error_text(body))
}

/// The first [`DETAIL_MAX`] characters of `text`, with `…` when cut.
fn truncate(text: String) -> String {
    if text.chars().count() <= DETAIL_MAX {
        return text;
    }
    let mut out: String = text.chars().take(DETAIL_MAX).collect();
    out.push('…');
    out
}

/// [`error_detail`] before truncation.
fn error_text(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
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
    }
}

/// The SCIM `scimType` of an error body, if any.
pub fn scim_type(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("scimType")?.as_str().map(str::to_owned)
}

/// Maps a failed response to a [`ConnectorError`]: 429 (and a 503 that says when to come
/// back) → rate limited; 408, other 5xx → transient, except 501 (Not Implemented: the request
/// form will never work, RFC 9110 §15.6.2) → permanent; 401/403 → unauthorised; 404 → not
/// found; 409/412 → conflict; any other status → permanent. `what` names the call.
///
/// `secret` (the credential the call carried) is removed from the body, in the encodings
/// [`redact`] knows, before and after the detail is taken out of it and before it is cut to
/// length, so no part of it survives; only the first [`BODY_MAX`] bytes are looked at.
pub fn status_error(
    what: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    now: SystemTime,
    secret: &str,
) -> ConnectorError {
    let mut cut = body.len().min(BODY_MAX);
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    let body = redact(body[..cut].to_owned(), secret);
    let detail = truncate(redact(error_text(&body), secret));
    let msg = if detail.is_empty() {
        format!("{what}: HTTP {}", status.as_u16())
    } else {
        format!("{what}: HTTP {}: {detail}", status.as_u16())
    };
    let wait = retry_after(headers, now);
    match status.as_u16() {
        429 => ConnectorError::RateLimited { retry_after: wait },
        503 if wait.is_some() => ConnectorError::RateLimited { retry_after: wait },
        501 => ConnectorError::Permanent(msg),
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
    // Where it went: scheme, host and port only (paths and queries may carry names or tokens).
    let to = e
        .url()
        .and_then(|u| {
            let host = u.host_str()?;
            Some(match u.port_or_known_default() {
                Some(p) => format!(" ({}://{host}:{p})", u.scheme()),
                None => format!(" ({}://{host})", u.scheme()),
            })
        })
        .unwrap_or_default();
    let what = format!("{what}{to}");
    let what = what.as_str();
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

/// Removes every occurrence of `secret` from `text` (peers sometimes echo what they got):
/// as is, percent-encoded (either case, `+` for spaces), JSON-escaped, hex, and base64
/// (standard and URL-safe, padded or not, and inside a longer base64 text such as the
/// `Basic` credentials `user:secret`, whatever its alignment).
pub fn redact(mut text: String, secret: &str) -> String {
    if secret.len() < 4 {
        return text;
    }
    for form in secret_forms(secret) {
        if text.contains(&form) {
            text = text.replace(&form, "[redacted]");
        }
    }
    text
}

/// The texts `secret` may travel as, longest first.
fn secret_forms(secret: &str) -> Vec<String> {
    let b = secret.as_bytes();
    let mut forms = vec![secret.to_owned()];
    let pct = |upper: bool, plus: bool| -> String {
        let mut out = String::new();
        for &c in b {
            if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
                out.push(char::from(c));
            } else if plus && c == b' ' {
                out.push('+');
            } else if upper {
                out.push_str(&format!("%{c:02X}"));
            } else {
                out.push_str(&format!("%{c:02x}"));
            }
        }
        out
    };
    for (upper, plus) in [(true, false), (false, false), (true, true), (false, true)] {
        forms.push(pct(upper, plus));
    }
    if let Ok(json) = serde_json::to_string(secret) {
        forms.push(json[1..json.len() - 1].to_owned());
    }
    forms.push(hex::encode(b));
    forms.push(hex::encode_upper(b));
    // Base64: the characters that depend on the secret's bytes only, for each of the three
    // positions it can start at within a 3-byte group.
    for alphabet in [B64_STD, B64_URL] {
        for lead in 0..3usize {
            let mut bytes = vec![0u8; lead];
            bytes.extend_from_slice(b);
            let enc = base64(&bytes, alphabet);
            let first = (8 * lead).div_ceil(6);
            let end = (8 * (lead + b.len())) / 6;
            if end > first && end - first >= 8 {
                forms.push(enc[first..end].to_owned());
            }
        }
    }
    forms.retain(|f| f.len() >= 4);
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    forms
}

const B64_STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64 of `bytes` in `alphabet`.
fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | u32::from(c) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

/// Reads at most [`BODY_MAX`] bytes of a response's body, as text (lossily).
pub async fn body_text(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = BODY_MAX - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= BODY_MAX {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
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
        Unverifiable(m) => Unverifiable(redact(m, secret)),
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
            status_error("x", StatusCode::TOO_MANY_REQUESTS, &h, "", now, ""),
            ConnectorError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        let mut okta = HeaderMap::new();
        okta.insert("x-rate-limit-reset", HeaderValue::from_static("1060"));
        assert_eq!(
            status_error("x", StatusCode::TOO_MANY_REQUESTS, &okta, "", now, ""),
            ConnectorError::RateLimited {
                retry_after: Some(Duration::from_secs(60))
            }
        );
        let none = HeaderMap::new();
        assert!(matches!(
            status_error("x", StatusCode::SERVICE_UNAVAILABLE, &none, "", now, ""),
            ConnectorError::Transient(_)
        ));
        assert!(matches!(
            status_error("x", StatusCode::SERVICE_UNAVAILABLE, &h, "", now, ""),
            ConnectorError::RateLimited { .. }
        ));
        // 501: the form is not implemented; trying it again cannot help.
        assert!(matches!(
            status_error("x", StatusCode::NOT_IMPLEMENTED, &none, "", now, ""),
            ConnectorError::Permanent(_)
        ));
        assert!(matches!(
            status_error("x", StatusCode::UNAUTHORIZED, &none, "", now, ""),
            ConnectorError::Unauthorized(_)
        ));
        assert!(matches!(
            status_error("x", StatusCode::BAD_REQUEST, &none, "", now, ""),
            ConnectorError::Permanent(_)
        ));
        let scim = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":409,"scimType":"uniqueness","detail":"taken"}"#;
        assert_eq!(
            status_error("create", StatusCode::CONFLICT, &none, scim, now, ""),
            ConnectorError::Conflict("create: HTTP 409: taken (uniqueness)".into())
        );
        assert_eq!(scim_type(scim).as_deref(), Some("uniqueness"));
    }

    /// A peer echoing the token encoded (base64 in `Basic` credentials, URL-encoded, JSON
    /// escaped, hex) or at the cut-off point of the quoted detail leaks none of it.
    #[test]
    fn echoed_secrets_are_redacted_in_any_common_encoding() {
        let secret = "s3cr3t/T0ken+with=chars & more?";
        let b64 = |s: &str, a| base64(s.as_bytes(), a);
        let pct = |upper: bool| -> String {
            secret
                .bytes()
                .map(|c| match c {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => char::from(c).to_string(),
                    _ if upper => format!("%{c:02X}"),
                    _ => format!("%{c:02x}"),
                })
                .collect()
        };
        let bodies = [
            format!(
                "bad credentials: Basic {}",
                b64(&format!("svc:{secret}"), B64_STD)
            ),
            format!(
                "bad credentials: Basic {}",
                b64(&format!("sv:{secret}"), B64_STD)
            ),
            format!("token={}", b64(secret, B64_URL)),
            format!("{{\"detail\": \"invalid token {}\"}}", pct(true)),
            format!("rejected access_token={}&x=1", pct(false)),
            format!(
                "{{\"message\": \"token {}\"}}",
                serde_json::to_string(secret).unwrap()
            ),
            format!("token hex {}", hex::encode(secret)),
            // The secret straddles the end of the quoted detail.
            format!("{} {secret} tail", "x".repeat(DETAIL_MAX - 10)),
            // And in JSON with \u escapes the literal only appears once parsed.
            format!(
                "{{\"detail\": \"{}{}\"}}",
                "y".repeat(DETAIL_MAX - 12),
                secret.replace('/', "\\u002f")
            ),
        ];
        let now = at(1_000);
        let none = HeaderMap::new();
        for body in &bodies {
            let e = status_error(
                "create user",
                StatusCode::BAD_REQUEST,
                &none,
                body,
                now,
                secret,
            );
            let ConnectorError::Permanent(msg) = &e else {
                panic!("{e:?}")
            };
            // No 8-character run of the secret, nor of any of its encodings, survives.
            for form in secret_forms(secret) {
                for w in form.as_bytes().windows(8) {
                    let w = String::from_utf8_lossy(w);
                    assert!(
                        !msg.contains(&*w),
                        "{body:?} → {msg:?} leaks {w:?} of {form:?}"
                    );
                }
            }
        }
        // Text that merely resembles it stays.
        assert_eq!(redact("s3cr3t-other".into(), secret), "s3cr3t-other");
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("token s3cr3t-x echoed".into(), "s3cr3t-x"),
            "token [redacted] echoed"
        );
    }
}

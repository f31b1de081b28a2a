//! The `webhook` connector: every action is one signed HTTP call to a receiver that does the
//! work. The URL and the JSON body are templates with the placeholders `{op}`, `{handle}`,
//! `{email}`, `{name}` and `{entitlement}`; the call carries `X-QM-Timestamp` (unix seconds)
//! and `X-QM-Signature: sha256=HEX`, HEX being the lowercase hex HMAC-SHA256 of
//! `timestamp + "." + body` under the shared secret (the same scheme as the HR feed).
//!
//! Nothing can be looked up through a webhook, so a call may be repeated after a crash or a
//! timeout: receivers must treat each call as "make it so" (adding a present member is done).

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use tracing::debug;

use super::outbound;
use crate::core::model::ActionOp;
use crate::core::ports::{
    Account, CANNOT_LIST, Connector, ConnectorError, Effect, Listed, Subject,
};

/// The placeholders templates may use.
pub const PLACEHOLDERS: &[&str] = &["op", "handle", "email", "name", "entitlement"];

/// The body sent when no `body` template is configured.
pub const DEFAULT_BODY: &str = r#"{"op":"{op}","handle":"{handle}","email":"{email}","name":"{name}","entitlement":"{entitlement}"}"#;

/// Replaces each `{placeholder}` in `template` with `value(placeholder)` passed through `esc`.
fn fill(template: &str, value: &dyn Fn(&str) -> String, esc: &dyn Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if PLACEHOLDERS.contains(&&after[..close]) => {
                out.push_str(&esc(&value(&after[..close])));
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `{word}`s of `template` (a word: ASCII letters, digits and `_`) that are not
/// [`PLACEHOLDERS`], in order: they would be sent as written, never filled in.
pub fn unknown_placeholders(template: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        if let Some(close) = after.find('}') {
            let word = &after[..close];
            if !word.is_empty()
                && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !PLACEHOLDERS.contains(&word)
            {
                found.push(word);
            }
        }
        rest = after;
    }
    found
}

/// Fills a JSON body template: values are escaped as the inside of a JSON string.
pub fn fill_json(template: &str, value: &dyn Fn(&str) -> String) -> String {
    fill(template, value, &|v| {
        let q = serde_json::Value::String(v.to_owned()).to_string();
        q[1..q.len() - 1].to_owned()
    })
}

/// Fills a URL template: values are percent-encoded ('/' too), so a value stays inside the
/// path segment it is put in. A value made only of dots is refused: `.` and `..` (encoded or
/// not) are dot-segments that URL parsers resolve, so `/users/{handle}/grant` would become
/// `/grant` for the handle `..`.
pub fn fill_url(template: &str, value: &dyn Fn(&str) -> String) -> Result<String, String> {
    let refused = std::cell::RefCell::new(None);
    let url = fill(template, value, &|v| {
        if !v.is_empty() && v.chars().all(|c| c == '.') {
            refused.borrow_mut().get_or_insert_with(|| v.to_owned());
        }
        let mut s = String::new();
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                s.push(b as char);
            } else {
                s.push_str(&format!("%{b:02X}"));
            }
        }
        s
    });
    match refused.into_inner() {
        Some(v) => Err(format!("the value \"{v}\" cannot be put in a URL")),
        None => Ok(url),
    }
}

/// `sha256=HEX` of HMAC-SHA256(secret, timestamp + "." + body).
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A webhook target.
pub struct Webhook {
    name: String,
    url: String,
    method: Method,
    body: String,
    success: Vec<u16>,
    secret: SecretString,
    http: reqwest::Client,
    list_url: Option<String>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// How a webhook is configured (the `[[connector]]` keys of kind `webhook`).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// URL template.
    pub url: String,
    /// HTTP method (`POST` by default).
    pub method: String,
    /// JSON body template; [`DEFAULT_BODY`] when `None`.
    pub body: Option<String>,
    /// Statuses that mean success; empty means any 2xx.
    pub success: Vec<u16>,
    /// Signing secret.
    pub secret: SecretString,
    /// Longest a call may take.
    pub timeout: Duration,
    /// Where the members of an entitlement are listed (drift), if anywhere.
    pub list_url: Option<String>,
}

impl Webhook {
    /// A webhook connector named `name`.
    pub fn new(name: impl Into<String>, s: WebhookSettings) -> Result<Self, ConnectorError> {
        let method = Method::from_bytes(s.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| ConnectorError::Permanent(format!("bad method {:?}", s.method)))?;
        Ok(Self {
            name: name.into(),
            url: s.url,
            method,
            body: s.body.unwrap_or_else(|| DEFAULT_BODY.to_owned()),
            success: s.success,
            secret: s.secret,
            http: outbound::client(s.timeout)?,
            list_url: s.list_url,
        })
    }

    fn ok(&self, status: StatusCode) -> bool {
        if self.success.is_empty() {
            status.is_success()
        } else {
            self.success.contains(&status.as_u16())
        }
    }

    /// Every member of `entitlement` from `list_url`, page after page (`next`); any failed
    /// or malformed page fails the whole listing.
    async fn listed(
        &self,
        template: &str,
        entitlement: &str,
    ) -> Result<Vec<Listed>, ConnectorError> {
        let what = "webhook list";
        let mut url = fill_url(template, &|k| {
            if k == "entitlement" {
                entitlement.to_owned()
            } else {
                String::new()
            }
        })
        .map_err(|e| ConnectorError::Permanent(format!("{what}: {e}")))?;
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let ts = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
                .to_string();
            let sig = signature(self.secret.expose_secret().as_bytes(), &ts, b"");
            let resp = self
                .http
                .get(&url)
                .header("X-QM-Timestamp", &ts)
                .header("X-QM-Signature", sig)
                .send()
                .await
                .map_err(|e| outbound::transport_error(what, &e))?;
            let status = resp.status();
            if !status.is_success() {
                let headers = resp.headers().clone();
                let text = outbound::body_text(resp).await;
                let e = outbound::status_error(
                    what,
                    status,
                    &headers,
                    &text,
                    SystemTime::now(),
                    self.secret.expose_secret(),
                );
                return Err(outbound::redact_error(e, self.secret.expose_secret()));
            }
            let page: ListPage = resp.json().await.map_err(|e| {
                ConnectorError::Unverifiable(format!("{what}: not a member list: {e}"))
            })?;
            out.extend(page.members.into_iter().map(|m| Listed {
                id: m.id,
                login: m.login,
                emails: m.emails,
                active: m.active,
            }));
            match page.next {
                Some(n) if !n.is_empty() => url = n,
                _ => return Ok(out),
            }
        }
        Err(ConnectorError::Unverifiable(format!(
            "{what}: more than 10,000 pages"
        )))
    }

    /// One signed call for `op`.
    async fn call(
        &self,
        op: &str,
        who: &Subject,
        entitlement: Option<&str>,
    ) -> Result<Effect, ConnectorError> {
        let value = |k: &str| -> String {
            match k {
                "op" => op.to_owned(),
                "handle" => who.handle.to_string(),
                "email" => who.email.to_string(),
                "name" => who.name.clone(),
                "entitlement" => entitlement.unwrap_or_default().to_owned(),
                _ => String::new(),
            }
        };
        let url = fill_url(&self.url, &value)
            .map_err(|e| ConnectorError::Permanent(format!("webhook {op}: {e}")))?;
        let body = if self.method == Method::GET {
            String::new()
        } else {
            fill_json(&self.body, &value)
        };
        let ts = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .to_string();
        let sig = signature(self.secret.expose_secret().as_bytes(), &ts, body.as_bytes());
        let what = format!("webhook {op}");
        let mut rq = self
            .http
            .request(self.method.clone(), &url)
            .header("X-QM-Timestamp", &ts)
            .header("X-QM-Signature", sig);
        if !body.is_empty() {
            rq = rq
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let resp = rq
            .send()
            .await
            .map_err(|e| outbound::transport_error(&what, &e))?;
        let status = resp.status();
        debug!(connector = %self.name, op, status = status.as_u16(), "webhook call");
        if self.ok(status) {
            return Ok(Effect::Applied);
        }
        let headers = resp.headers().clone();
        let text = outbound::body_text(resp).await;
        let e = if status.is_success() {
            ConnectorError::Permanent(format!(
                "{what}: HTTP {} is not a configured success status",
                status.as_u16()
            ))
        } else {
            outbound::status_error(
                &what,
                status,
                &headers,
                &text,
                SystemTime::now(),
                self.secret.expose_secret(),
            )
        };
        Err(outbound::redact_error(e, self.secret.expose_secret()))
    }
}

/// One page of a `list_url` answer.
#[derive(serde::Deserialize)]
struct ListPage {
    members: Vec<ListMember>,
    #[serde(default)]
    next: Option<String>,
}

/// One member as a `list_url` answers it.
#[derive(serde::Deserialize)]
struct ListMember {
    id: String,
    #[serde(default)]
    login: Option<String>,
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    active: Option<bool>,
}

#[async_trait]
impl Connector for Webhook {
    async fn list_members(&self, entitlement: &str) -> Result<Vec<Listed>, ConnectorError> {
        match &self.list_url {
            Some(t) => self.listed(t, entitlement).await,
            None => Err(ConnectorError::Unverifiable(CANNOT_LIST.into())),
        }
    }

    /// A webhook cannot be asked; nothing is known.
    async fn find_account(&self, _who: &Subject) -> Result<Option<Account>, ConnectorError> {
        Ok(None)
    }
    async fn create_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.call("create", who, None).await
    }
    async fn disable_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.call("disable", who, None).await
    }
    async fn enable_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.call("enable", who, None).await
    }
    async fn delete_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.call("delete", who, None).await
    }
    async fn grant(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError> {
        self.call("grant", who, Some(entitlement)).await
    }
    async fn revoke(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError> {
        self.call("revoke", who, Some(entitlement)).await
    }
    async fn list_grants(&self, _who: &Subject) -> Result<Vec<String>, ConnectorError> {
        Ok(Vec::new())
    }
    async fn test_connection(&self) -> Result<(), ConnectorError> {
        let url = fill_url(&self.url, &|_| "x".into()).map_err(ConnectorError::Permanent)?;
        reqwest::Url::parse(&url)
            .map(|_| ())
            .map_err(|e| ConnectorError::Permanent(format!("bad webhook URL: {e}")))
    }
    /// One call per action: `grant`, `revoke` or `disable`. An offboarding's re-read
    /// (`verify`) makes no call: a webhook cannot be asked what a person holds, so it answers
    /// "cannot be re-read" (as the manual connector does), and the report says so instead of
    /// claiming a check that never happened.
    async fn apply(
        &self,
        op: ActionOp,
        who: &Subject,
        entitlement: Option<&str>,
    ) -> Result<Effect, ConnectorError> {
        match op {
            ActionOp::Verify => Ok(Effect::AlreadyInState),
            _ => self.call(op.as_str(), who, entitlement).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_never_forms_a_path_segment_of_its_own() {
        let t = "https://h/hooks/users/{name}/{op}";
        for dots in [".", "..", "..."] {
            let v = |k: &str| {
                if k == "name" {
                    dots.to_owned()
                } else {
                    "grant".to_owned()
                }
            };
            let e = fill_url(t, &v).unwrap_err();
            assert!(e.contains("cannot be put in a URL"), "{e}");
        }
        // A slash is encoded: the value stays one segment.
        let v = |k: &str| {
            if k == "name" {
                "../x".to_owned()
            } else {
                "grant".to_owned()
            }
        };
        let url = fill_url(t, &v).unwrap();
        assert_eq!(url, "https://h/hooks/users/..%2Fx/grant");
        assert_eq!(
            reqwest::Url::parse(&url).unwrap().path(),
            "/hooks/users/..%2Fx/grant"
        );
        // Dots inside a value are fine.
        let v = |k: &str| {
            if k == "name" {
                "a.b".to_owned()
            } else {
                "grant".to_owned()
            }
        };
        assert_eq!(fill_url(t, &v).unwrap(), "https://h/hooks/users/a.b/grant");
    }

    #[test]
    fn templates_escape_their_values() {
        let v = |k: &str| match k {
            "email" => "a b@x.test".to_owned(),
            "name" => "Al \"Q\"".to_owned(),
            _ => k.to_uppercase(),
        };
        assert_eq!(
            fill_url("https://h/u/{email}/{op}?x={nope}", &v).unwrap(),
            "https://h/u/a%20b@x.test/OP?x={nope}"
        );
        let body = fill_json(r#"{"n":"{name}","o":"{op}"}"#, &v);
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["n"], "Al \"Q\"");
        // The HR feed's example: key "k", timestamp "1", body "{}".
        assert_eq!(
            signature(b"k", "1", b"{}"),
            format!("sha256={}", {
                let mut m = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
                m.update(b"1.{}");
                hex::encode(m.finalize().into_bytes())
            })
        );
    }
}

//! The webhook connector against a receiver written here (axum): signed calls built from the
//! URL and body templates, the success rule, and the error mapping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use hmac::{Hmac, Mac};
use quartermaster::connectors::webhook::{Webhook, WebhookSettings};
use quartermaster::core::model::{ActionOp, Email, Handle};
use quartermaster::core::ports::{Connector, ConnectorError, Effect, Subject};
use secrecy::SecretString;
use sha2::Sha256;

const SECRET: &str = "hook-secret-for-tests";

#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    body: String,
    signature_ok: bool,
}

async fn receiver(status_for: fn(&str) -> u16) -> (u16, Arc<Mutex<Vec<Call>>>) {
    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    let c2 = calls.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: String| {
            let calls = c2.clone();
            async move {
                let ts = headers
                    .get("x-qm-timestamp")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let sig = headers
                    .get("x-qm-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
                mac.update(format!("{ts}.{body}").as_bytes());
                let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                let fresh = ts
                    .parse::<i64>()
                    .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
                let path = uri.to_string();
                calls.lock().unwrap().push(Call {
                    method: method.to_string(),
                    path: path.clone(),
                    body,
                    signature_ok: sig == want && fresh,
                });
                let code = status_for(&path);
                let mut h = HeaderMap::new();
                if code == 429 {
                    h.insert("retry-after", "12".parse().unwrap());
                }
                (
                    StatusCode::from_u16(code).unwrap(),
                    h,
                    "{\"error\":\"nope\"}",
                )
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, calls)
}

fn alice() -> Subject {
    Subject {
        handle: Handle::parse("alice").unwrap(),
        name: "Alice \"Al\" Kim".into(),
        email: Email::parse("alice+x@acme.test").unwrap(),
    }
}

fn hook(url: String, body: Option<&str>, success: Vec<u16>) -> Webhook {
    Webhook::new(
        "wiki",
        WebhookSettings {
            url,
            method: "PUT".into(),
            body: body.map(str::to_owned),
            success,
            secret: SecretString::from(SECRET.to_owned()),
            timeout: Duration::from_secs(2),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn each_action_is_one_signed_call_built_from_the_templates() {
    let (port, calls) = receiver(|_| 204).await;
    let h = hook(
        format!("http://127.0.0.1:{port}/access/{{op}}/{{email}}?group={{entitlement}}"),
        Some(r#"{"user":"{handle}","name":"{name}","group":"{entitlement}","action":"{op}"}"#),
        vec![],
    );
    h.test_connection().await.unwrap();
    assert_eq!(
        h.apply(ActionOp::Grant, &alice(), Some("Wiki Editors"))
            .await
            .unwrap(),
        Effect::Applied
    );
    assert_eq!(
        h.apply(ActionOp::Revoke, &alice(), Some("Wiki Editors"))
            .await
            .unwrap(),
        Effect::Applied
    );
    assert_eq!(
        h.apply(ActionOp::Disable, &alice(), None).await.unwrap(),
        Effect::Applied
    );
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "one call per action: {calls:?}");
    assert!(calls.iter().all(|c| c.signature_ok && c.method == "PUT"));
    assert_eq!(
        calls[0].path,
        "/access/grant/alice%2Bx@acme.test?group=Wiki%20Editors"
    );
    let body: serde_json::Value = serde_json::from_str(&calls[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"user":"alice","name":"Alice \"Al\" Kim","group":"Wiki Editors","action":"grant"})
    );
    assert_eq!(calls[2].path, "/access/disable/alice%2Bx@acme.test?group=");
}

#[tokio::test]
async fn the_success_rule_and_errors() {
    let (port, calls) = receiver(|p| {
        if p.starts_with("/accepted") {
            202
        } else if p.starts_with("/busy") {
            429
        } else if p.starts_with("/auth") {
            401
        } else if p.starts_with("/down") {
            502
        } else {
            400
        }
    })
    .await;
    let who = alice();
    // Default rule: any 2xx; the default body carries every field.
    let h = hook(format!("http://127.0.0.1:{port}/accepted"), None, vec![]);
    assert_eq!(h.grant(&who, "g").await.unwrap(), Effect::Applied);
    let body: serde_json::Value = serde_json::from_str(&calls.lock().unwrap()[0].body).unwrap();
    assert_eq!(body["op"], "grant");
    assert_eq!(body["email"], "alice+x@acme.test");
    assert_eq!(body["entitlement"], "g");
    // A 202 that is not in the configured list is not success.
    let strict = hook(
        format!("http://127.0.0.1:{port}/accepted"),
        None,
        vec![200, 204],
    );
    assert!(matches!(
        strict.grant(&who, "g").await,
        Err(ConnectorError::Permanent(_))
    ));
    let busy = hook(format!("http://127.0.0.1:{port}/busy"), None, vec![]);
    assert_eq!(
        busy.grant(&who, "g").await,
        Err(ConnectorError::RateLimited {
            retry_after: Some(Duration::from_secs(12))
        })
    );
    let auth = hook(format!("http://127.0.0.1:{port}/auth"), None, vec![]);
    assert!(matches!(
        auth.grant(&who, "g").await,
        Err(ConnectorError::Unauthorized(_))
    ));
    let down = hook(format!("http://127.0.0.1:{port}/down"), None, vec![]);
    assert!(matches!(
        down.grant(&who, "g").await,
        Err(ConnectorError::Transient(_))
    ));
    let bad = hook(format!("http://127.0.0.1:{port}/bad"), None, vec![]);
    match bad.grant(&who, "g").await {
        Err(ConnectorError::Permanent(m)) => assert!(m.contains("HTTP 400: nope"), "{m}"),
        other => panic!("{other:?}"),
    }
    let gone = hook("http://127.0.0.1:1/x".into(), None, vec![]);
    assert!(matches!(
        gone.grant(&who, "g").await,
        Err(ConnectorError::Transient(_))
    ));
}

#[test]
fn config_reads_the_webhook_keys() {
    let text = r#"
[organization]
name = "W"
it_admins = ["ivy"]
[[person]]
handle = "ivy"
name = "Ivy"
email = "ivy@w.test"
role = "staff"
[[role]]
name = "staff"
apps = []
[[connector]]
name = "wiki"
kind = "webhook"
url = "https://wiki.w.test/hooks/{op}/{handle}"
secret_env = "WIKI_SECRET"
method = "put"
body = '{"who":"{email}","group":"{entitlement}"}'
success = [200, 204]
max_concurrency = 2
rate_per_second = 0.5
timeout = "5s"
"#;
    let c = quartermaster::config::parse(text, std::path::Path::new("."), &|k| {
        (k == "WIKI_SECRET").then(|| "s".to_owned())
    })
    .unwrap();
    let conn = &c.connectors[0];
    assert_eq!(conn.limits.max_concurrency, 2);
    assert_eq!(conn.limits.rate_per_second, Some(0.5));
    assert_eq!(conn.limits.timeout, Duration::from_secs(5));
    let quartermaster::config::ConnectorKind::Webhook {
        method,
        body,
        success,
        ..
    } = &conn.kind
    else {
        panic!()
    };
    assert_eq!(method, "PUT");
    assert_eq!(
        body.as_deref(),
        Some(r#"{"who":"{email}","group":"{entitlement}"}"#)
    );
    assert_eq!(success, &vec![200, 204]);
    let bad = text
        .replace(
            r#"'{"who":"{email}","group":"{entitlement}"}'"#,
            "'{not json'",
        )
        .replace("success = [200, 204]", "success = [99]")
        .replace("max_concurrency = 2", "max_concurrency = 0");
    let e = quartermaster::config::parse(&bad, std::path::Path::new("."), &|k| {
        (k == "WIKI_SECRET").then(|| "s".to_owned())
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("connector.wiki.body: is not JSON"), "{e}");
    assert!(e.contains("connector.wiki.success[0]"), "{e}");
    assert!(e.contains("connector.wiki.max_concurrency"), "{e}");
}

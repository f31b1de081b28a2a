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
            list_url: None,
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
    // An offboarding's re-read makes no call: a webhook cannot be asked, so it answers
    // "cannot be re-read" (AlreadyInState) instead of a "verify" call the report would show
    // as "nothing left ✔".
    assert_eq!(
        h.apply(ActionOp::Verify, &alice(), None).await.unwrap(),
        Effect::AlreadyInState
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

mod engine {
    //! The engine against this receiver: per-connector concurrency cap and rate limit, and a
    //! permanent failure that fails the request, tells people, and is retried by IT from chat.
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Instant;

    use quartermaster::chat::console::ConsoleChat;
    use quartermaster::core::ports::ManualClock;
    use quartermaster::core::service::Service;
    use quartermaster::wiring;
    use testkit::testdb::{Backend, TestDb};

    /// A receiver that answers after `delay`, counting calls in flight and their start times.
    struct Slow {
        port: u16,
        max_in_flight: Arc<AtomicUsize>,
        starts: Arc<Mutex<Vec<Instant>>>,
        fail: Arc<AtomicBool>,
    }

    async fn slow_receiver(delay: Duration) -> Slow {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let fail = Arc::new(AtomicBool::new(false));
        let (i, m, s, f) = (
            in_flight.clone(),
            max_in_flight.clone(),
            starts.clone(),
            fail.clone(),
        );
        let app = axum::Router::new().fallback(move || {
            let (i, m, s, f) = (i.clone(), m.clone(), s.clone(), f.clone());
            async move {
                s.lock().unwrap().push(Instant::now());
                let now = i.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                i.fetch_sub(1, Ordering::SeqCst);
                if f.load(Ordering::SeqCst) {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::OK
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Slow {
            port,
            max_in_flight,
            starts,
            fail,
        }
    }

    fn config(port: u16, people: usize, limits: &str) -> quartermaster::config::Config {
        config_with(port, people, limits, "")
    }

    /// [`config`] with more TOML (apps, say) after it.
    fn config_with(
        port: u16,
        people: usize,
        limits: &str,
        more: &str,
    ) -> quartermaster::config::Config {
        let mut text = format!(
            r#"
[organization]
name = "Hookco"
it_admins = ["ivy"]

[[person]]
handle = "ivy"
name = "Ivy Admin"
email = "ivy@hookco.test"
role = "staff"

[[role]]
name = "staff"
apps = []

[[app]]
name = "wiki"
display = "Wiki"
connector = "hook"
approvals = []

[[connector]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{port}/access/{{op}}/{{handle}}"
secret_env = "HOOK_SECRET"
{limits}
"#
        );
        for i in 0..people {
            text.push_str(&format!(
                "\n[[person]]\nhandle = \"p{i}\"\nname = \"P {i}\"\nemail = \"p{i}@hookco.test\"\nrole = \"staff\"\nmanager = \"ivy\"\n"
            ));
        }
        text.push_str(more);
        quartermaster::config::parse(&text, std::path::Path::new("."), &|k| {
            (k == "HOOK_SECRET").then(|| SECRET.to_owned())
        })
        .unwrap()
    }

    async fn bot(
        cfg: &quartermaster::config::Config,
    ) -> (
        TestDb,
        Arc<Service>,
        quartermaster::engine::Engine,
        Arc<ConsoleChat>,
    ) {
        let db = TestDb::create(Backend::from_env()).await;
        let store = wiring::open_store(cfg, &db.url).await.unwrap();
        let chat = Arc::new(ConsoleChat::silent());
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let (service, engine) = wiring::assemble(cfg, store, chat.clone(), clock).unwrap();
        (db, service, engine, chat)
    }

    /// Enqueues one grant per person, then runs the engine's workers until the queue is empty;
    /// returns how long that took.
    async fn run_all(
        service: &Arc<Service>,
        engine: quartermaster::engine::Engine,
        n: usize,
    ) -> Duration {
        for i in 0..n {
            let who = service
                .caller_by_handle(&Handle::parse(&format!("p{i}")).unwrap())
                .await
                .unwrap()
                .unwrap();
            service.command_line(&who, "/request app:wiki").await;
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let t = Instant::now();
        let workers = tokio::spawn(async move { engine.run(stop_rx).await });
        while service.store().queue_depth().await.unwrap() > 0 {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "the queue never drained"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = t.elapsed();
        stop_tx.send(true).unwrap();
        workers.await.unwrap();
        took
    }

    /// A receiver that answers after `delay`, recording each call's op (the URL's first
    /// segment after `/access/`), start and end.
    async fn recording_receiver(
        delay: Duration,
    ) -> (u16, Arc<Mutex<Vec<(String, Instant, Instant)>>>) {
        let calls: Arc<Mutex<Vec<(String, Instant, Instant)>>> = Arc::default();
        let c = calls.clone();
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let c = c.clone();
            async move {
                let start = Instant::now();
                tokio::time::sleep(delay).await;
                let op = uri.path().split('/').nth(2).unwrap_or("").to_owned();
                c.lock().unwrap().push((op, start, Instant::now()));
                StatusCode::OK
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (port, calls)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_offboardings_removals_on_one_target_go_at_once_and_the_disable_waits_for_them() {
        let (port, calls) = recording_receiver(Duration::from_millis(150)).await;
        let mut tools = String::new();
        for i in 0..4 {
            tools.push_str(&format!(
                "\n[[app]]\nname = \"tool{i}\"\ndisplay = \"Tool {i}\"\nconnector = \"hook\"\nentitlement = \"e{i}\"\napprovals = []\n"
            ));
        }
        let cfg = config_with(port, 1, "max_concurrency = 4", &tools);
        let (_d, service, engine, _chat) = bot(&cfg).await;
        let caller = |h: &str| {
            let service = service.clone();
            let h = Handle::parse(h).unwrap();
            async move { service.caller_by_handle(&h).await.unwrap().unwrap() }
        };
        let p0 = caller("p0").await;
        for i in 0..4 {
            service
                .command_line(&p0, &format!("/request app:tool{i}"))
                .await;
        }
        engine.drain().await.unwrap();
        let ivy = caller("ivy").await;
        let plan = service.command_line(&ivy, "/offboard user:p0").await;
        let confirm = plan
            .buttons
            .iter()
            .find(|b| b.label == quartermaster::core::ports::ButtonLabel::Confirm)
            .map(|b| b.target.to_string())
            .unwrap_or_else(|| panic!("the plan asks IT to confirm: {}", plan.text));
        calls.lock().unwrap().clear();
        service.click(&ivy, &confirm, None).await;
        engine.drain().await.unwrap();
        let calls = calls.lock().unwrap().clone();
        let revokes: Vec<_> = calls.iter().filter(|c| c.0 == "revoke").collect();
        let disables: Vec<_> = calls.iter().filter(|c| c.0 == "disable").collect();
        assert_eq!(revokes.len(), 4, "{calls:?}");
        assert_eq!(disables.len(), 1, "{calls:?}");
        // The four removals overlapped: the last started before the first ended.
        let last_start = revokes.iter().map(|c| c.1).max().unwrap();
        let first_end = revokes.iter().map(|c| c.2).min().unwrap();
        assert!(last_start < first_end, "the removals ran one after another");
        // The disable started only once every removal had ended.
        let last_end = revokes.iter().map(|c| c.2).max().unwrap();
        assert!(disables[0].1 >= last_end, "the disable overtook a removal");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn each_connector_keeps_to_its_concurrency_cap_and_rate() {
        // Reference: a generous cap, no rate limit.
        let free = slow_receiver(Duration::from_millis(150)).await;
        let cfg = config(free.port, 12, "max_concurrency = 8");
        let (_d, service, engine, _) = bot(&cfg).await;
        let unthrottled = run_all(&service, engine, 12).await;
        assert!(
            free.max_in_flight.load(Ordering::SeqCst) > 2,
            "the reference runs in parallel"
        );

        // Capped at 2 at once.
        let capped = slow_receiver(Duration::from_millis(150)).await;
        let cfg = config(capped.port, 12, "max_concurrency = 2");
        let (_d, service, engine, _) = bot(&cfg).await;
        let took = run_all(&service, engine, 12).await;
        assert_eq!(capped.max_in_flight.load(Ordering::SeqCst), 2);
        assert!(took > unthrottled, "{took:?} vs {unthrottled:?}");

        // At most 5 starts a second.
        let rated = slow_receiver(Duration::from_millis(10)).await;
        let cfg = config(rated.port, 12, "max_concurrency = 8\nrate_per_second = 5");
        let (_d, service, engine, _) = bot(&cfg).await;
        let took = run_all(&service, engine, 12).await;
        let starts = rated.starts.lock().unwrap().clone();
        assert_eq!(starts.len() % 12, 0, "one or more calls per action");
        let first = starts.iter().min().unwrap();
        let last = starts.iter().max().unwrap();
        // 12 actions at 5/s: the last starts at least 11 × 200 ms after the first.
        assert!(
            *last - *first >= Duration::from_millis(2000),
            "{:?}",
            *last - *first
        );
        assert!(took >= Duration::from_millis(2000), "{took:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_permanent_failure_fails_the_request_tells_people_and_it_can_retry() {
        let peer = slow_receiver(Duration::from_millis(1)).await;
        peer.fail.store(true, Ordering::SeqCst);
        let cfg = config(peer.port, 1, "");
        let (_d, service, engine, chat) = bot(&cfg).await;
        let p0 = service
            .caller_by_handle(&Handle::parse("p0").unwrap())
            .await
            .unwrap()
            .unwrap();
        service.command_line(&p0, "/request app:wiki").await;
        engine.drain().await.unwrap();
        let r = service
            .store()
            .request(quartermaster::core::model::RequestId(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.state.name(), "failed");
        let log = chat.transcript();
        assert!(log.iter().any(|m| m.to.as_deref() == Some("p0")
            && m.text.contains("Setting up Wiki failed; IT has been told")));
        let to_it = log
            .iter()
            .rev()
            .find(|m| m.to.as_deref() == Some("ivy"))
            .unwrap();
        assert_eq!(to_it.buttons, ["Retry"]);
        assert!(to_it.text.contains("failed for good"), "{}", to_it.text);
        // Only IT may retry; the peer is fixed; IT's Retry provisions.
        let retry_id = chat
            .find_button(&Handle::parse("ivy").unwrap(), "Retry", None)
            .unwrap();
        let refused = service.click(&p0, &retry_id, None).await;
        assert!(format!("{refused:?}").contains("Only IT admins can retry"));
        peer.fail.store(false, Ordering::SeqCst);
        let ivy = service
            .caller_by_handle(&Handle::parse("ivy").unwrap())
            .await
            .unwrap()
            .unwrap();
        let answer = service.click(&ivy, &retry_id, None).await;
        assert!(format!("{answer:?}").contains("queued again"), "{answer:?}");
        engine.drain().await.unwrap();
        let r = service
            .store()
            .request(quartermaster::core::model::RequestId(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.state.name(), "granted");
        assert!(
            chat.transcript().iter().any(
                |m| m.to.as_deref() == Some("p0") && m.text.starts_with("✅ You now have Wiki")
            )
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_target_down_for_good_is_reported_with_attempts_and_the_last_cause() {
        // Nobody listens on this port: every call fails in a way that may pass.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = dead.local_addr().unwrap().port();
        drop(dead);
        let cfg = config(port, 1, "");
        let db = TestDb::create(Backend::from_env()).await;
        let store = wiring::open_store(&cfg, &db.url).await.unwrap();
        let chat = Arc::new(ConsoleChat::silent());
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let (service, engine) = wiring::assemble(&cfg, store, chat.clone(), clock.clone()).unwrap();
        let p0 = service
            .caller_by_handle(&Handle::parse("p0").unwrap())
            .await
            .unwrap()
            .unwrap();
        service.command_line(&p0, "/request app:wiki").await;
        for _ in 0..12 {
            engine.drain().await.unwrap();
            clock.advance(quartermaster::core::model::Span::from_std(
                Duration::from_secs(3600),
            ));
        }
        let to_it = chat
            .transcript()
            .into_iter()
            .rev()
            .find(|m| m.to.as_deref() == Some("ivy") && m.text.contains("failed for good"))
            .expect("IT is told");
        assert!(!to_it.text.contains("temporary failure"), "{}", to_it.text);
        assert!(
            to_it
                .text
                .contains("gave up after 6 attempt(s); last cause: "),
            "{}",
            to_it.text
        );
        assert!(
            to_it.text.contains(&format!("127.0.0.1:{port}")),
            "{}",
            to_it.text
        );
    }
}

/// Drift: `list_url` pages are followed to the end, each call signed; a page that fails fails
/// the listing (never a partial list); without `list_url` the webhook cannot be read.
#[tokio::test]
async fn list_url_pages_are_read_in_full_and_a_failed_page_fails_the_listing() {
    use quartermaster::core::ports::Connector;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let signed: Arc<Mutex<Vec<bool>>> = Arc::default();
    let seen = signed.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let ts = headers["x-qm-timestamp"].to_str().unwrap().to_owned();
            let sig = headers["x-qm-signature"].to_str().unwrap().to_owned();
            seen.lock().unwrap().push(sig == quartermaster::connectors::webhook::signature(SECRET.as_bytes(), &ts, b""));
            let body = match (uri.path(), uri.query()) {
                ("/members/wiki-editors", None) => serde_json::json!({
                    "members": [{"id": "u1", "login": "alice", "emails": ["alice@acme.test"], "active": true}],
                    "next": format!("http://127.0.0.1:{port}/members/wiki-editors?page=2"),
                }),
                ("/members/wiki-editors", Some("page=2")) => serde_json::json!({
                    "members": [{"id": "u2", "login": "bob"}], "next": null,
                }),
                ("/members/broken", None) => serde_json::json!({
                    "members": [{"id": "u1"}],
                    "next": format!("http://127.0.0.1:{port}/members/broken?page=2"),
                }),
                _ => return (StatusCode::SERVICE_UNAVAILABLE, "down".to_owned()),
            };
            (StatusCode::OK, body.to_string())
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let h = Webhook::new(
        "wiki",
        WebhookSettings {
            url: format!("http://127.0.0.1:{port}/access/{{op}}"),
            method: "POST".into(),
            body: None,
            success: Vec::new(),
            secret: SecretString::from(SECRET.to_owned()),
            timeout: Duration::from_secs(2),
            list_url: Some(format!("http://127.0.0.1:{port}/members/{{entitlement}}")),
        },
    )
    .unwrap();
    let m = h.list_members("wiki-editors").await.unwrap();
    let ids: Vec<&str> = m.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, ["u1", "u2"]);
    assert_eq!(m[0].login.as_deref(), Some("alice"));
    assert_eq!(m[0].emails, ["alice@acme.test"]);
    assert!(
        signed.lock().unwrap().iter().all(|ok| *ok),
        "every page call is signed"
    );
    let e = h.list_members("broken").await.unwrap_err();
    assert!(
        !format!("{e}").is_empty(),
        "a failed second page fails the listing: {e}"
    );
    assert_eq!(h.list_accounts().await.unwrap(), None);
    let plain = hook(format!("http://127.0.0.1:{port}/access"), None, Vec::new());
    let e = plain.list_members("wiki-editors").await.unwrap_err();
    assert!(format!("{e}").contains("cannot list"), "{e}");
}

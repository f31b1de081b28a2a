//! Crash safety, outages and secrets, proven against the real scim2-server and a real slapd:
//! `serve` killed with SIGKILL at random moments (20 trials) and stopped with SIGTERM; the peer frozen
//! mid-run; canary secrets looked for everywhere they must not be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use quartermaster::chat::console::ConsoleChat;
use quartermaster::core::model::{ActionState, Handle};
use quartermaster::core::ports::{ActionQueue, Grants, ManualClock};
use quartermaster::wiring;
use support::ldap::{ADMIN_DN, GROUPS_DN, PEOPLE_DN, Slapd};
use support::proxy::Proxy;
use support::scim::{Peer, ScimServer, TOKEN};
use testkit::testdb::{Backend, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_quartermaster");

/// An organisation whose app `miro` (auto-approved) and `figma` (manager approves) live in a
/// SCIM target at `base`, with `people` extra people p0…pN.
fn org(base: &str, people: usize, connector_extra: &str) -> String {
    let mut s = format!(
        r#"
[organization]
name = "Crashco"
it_admins = ["ivy"]

[http]
# Several serve processes run at once in this suite: each takes a free port.
listen = "127.0.0.1:0"

[[person]]
handle = "ivy"
name = "Ivy Admin"
email = "ivy@crashco.test"
role = "staff"

[[person]]
handle = "bob"
name = "Bob Boss"
email = "bob@crashco.test"
role = "staff"

[[role]]
name = "staff"
apps = []

[[app]]
name = "miro"
connector = "design"
approvals = []

[[app]]
name = "wiki"
connector = "hook"
approvals = []

[[connector]]
name = "design"
kind = "scim"
base_url = "{base}"
token_env = "QM_TEST_SCIM_TOKEN"
{connector_extra}

[[connector]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:1/never"
secret_env = "QM_TEST_HOOK_SECRET"
lease = "2s"
"#
    );
    for i in 0..people {
        s.push_str(&format!(
            "\n[[person]]\nhandle = \"p{i}\"\nname = \"Person {i}\"\nemail = \"p{i}@crashco.test\"\nrole = \"staff\"\nmanager = \"bob\"\n"
        ));
    }
    s
}

fn env_of(token: &str, hook_secret: &str) -> impl Fn(&str) -> Option<String> + use<> {
    let (t, h) = (token.to_owned(), hook_secret.to_owned());
    move |k| match k {
        "QM_TEST_SCIM_TOKEN" => Some(t.clone()),
        "QM_TEST_HOOK_SECRET" => Some(h.clone()),
        _ => None,
    }
}

/// Submits `/request app:APP` for each handle, without running any action.
async fn seed(cfg: &quartermaster::config::Config, url: &str, app_name: &str, who: &[String]) {
    let store = wiring::open_store(cfg, url).await.unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let (service, _engine) =
        wiring::assemble(cfg, store, Arc::new(ConsoleChat::silent()), clock).unwrap();
    for h in who {
        let caller = service
            .caller_by_handle(&Handle::parse(h).unwrap())
            .await
            .unwrap()
            .unwrap();
        let reply = service
            .command_line(&caller, &format!("/request app:{app_name} reason:\"work\""))
            .await;
        assert!(!format!("{reply:?}").contains("rror"), "{reply:?}");
    }
}

/// A `serve` child that is killed if the test ends early (a failed assertion).
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl std::ops::Deref for Serve {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Serve {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

fn serve(cfg: &Path, url: &str, log: &Path) -> Serve {
    serve_with(cfg, url, log, &[])
}

/// `serve` with more environment (secrets of further connectors).
fn serve_with(cfg: &Path, url: &str, log: &Path, env: &[(&str, &str)]) -> Serve {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(BIN)
        .args(["serve", "--config"])
        .arg(cfg)
        .args(["--db", url])
        .env("QM_TEST_SCIM_TOKEN", TOKEN)
        .env("QM_TEST_HOOK_SECRET", "hook-secret")
        .env("RUST_LOG", "debug")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(Serve)
        .unwrap()
}

/// A pseudo-random number in 0..n (no rand crate: the clock's nanoseconds, mixed).
fn random(n: u64) -> u64 {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    (t.wrapping_mul(6364136223846793005).rotate_left(17)) % n
}

async fn actions_states(
    store: &quartermaster::store::SqlStore,
    who: &[String],
) -> Vec<ActionState> {
    let mut out = Vec::new();
    for h in who {
        for a in store.actions_of(&Handle::parse(h).unwrap()).await.unwrap() {
            out.push(a.state);
        }
    }
    out
}

async fn wait_all_done(
    store: &quartermaster::store::SqlStore,
    who: &[String],
    within: Duration,
    log: &Path,
) {
    let deadline = Instant::now() + within;
    loop {
        let states = actions_states(store, who).await;
        if !states.is_empty() && states.iter().all(|s| *s == ActionState::Done) {
            return;
        }
        if Instant::now() >= deadline {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(80).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "not every action finished: {states:?}\n--- serve log tail ---\n{}",
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sigterm(child: &Serve) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn audit_verify(cfg: &Path, url: &str) {
    audit_verify_with(cfg, url, &[]);
}

fn audit_verify_with(cfg: &Path, url: &str, env: &[(&str, &str)]) {
    let out = Command::new(BIN)
        .args(["audit", "verify", "--config"])
        .arg(cfg)
        .args(["--db", url])
        .env("QM_TEST_SCIM_TOKEN", TOKEN)
        .env("QM_TEST_HOOK_SECRET", "hook-secret")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_at_random_moments_loses_nothing_and_creates_nothing_twice() {
    const TRIALS: usize = 20;
    const PER_TRIAL: usize = 3;
    let server = ScimServer::shared();
    let path = server.tenant_path("crash");
    let proxy = Proxy::start(server.port).await;
    // Answers arrive late, so kills land while requests are in flight.
    proxy.set_delay(Duration::from_millis(60));
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("qm.toml");
    // The same runs also provision into a real slapd: app `vpn` on connector `corp-ldap`.
    let slapd = Slapd::start().await;
    let mut text = org(
        &proxy.url(&path),
        TRIALS * PER_TRIAL,
        "timeout = \"2s\"\nlease = \"2s\"\nmax_concurrency = 3",
    );
    text.push_str(&format!(
        "\n[[app]]\nname = \"vpn\"\nconnector = \"corp-ldap\"\napprovals = []\n\n[[connector]]\nname = \"corp-ldap\"\nkind = \"ldap\"\nurl = \"{}\"\nbind_dn = \"{ADMIN_DN}\"\npassword_env = \"QM_TEST_LDAP_PASSWORD\"\npeople_dn = \"{PEOPLE_DN}\"\ngroups_dn = \"{GROUPS_DN}\"\ncreate_groups = true\nplaceholder_member = \"{ADMIN_DN}\"\nlease = \"2s\"\nmax_concurrency = 2\n",
        slapd.url
    ));
    std::fs::write(&cfg_path, &text).unwrap();
    let env = env_of(TOKEN, "hook-secret");
    let ldap_password = slapd.admin_password.clone();
    let child_env = [("QM_TEST_LDAP_PASSWORD", slapd.admin_password.as_str())];
    let env = move |k: &str| {
        if k == "QM_TEST_LDAP_PASSWORD" {
            Some(ldap_password.clone())
        } else {
            env(k)
        }
    };
    let cfg = quartermaster::config::parse(&text, dir.path(), &env).unwrap();
    let test_db = TestDb::create(Backend::from_env()).await;
    let url = test_db.url.clone();
    let log = dir.path().join("serve.log");
    let mut everyone = Vec::new();
    let mut kills = Vec::new();
    let started = Instant::now();
    for t in 0..TRIALS {
        let batch: Vec<String> = (0..PER_TRIAL)
            .map(|k| format!("p{}", t * PER_TRIAL + k))
            .collect();
        seed(&cfg, &url, "miro", &batch).await;
        seed(&cfg, &url, "vpn", &batch).await;
        everyone.extend(batch);
        let mut child = serve_with(&cfg_path, &url, &log, &child_env);
        tokio::time::sleep(Duration::from_millis(100 + random(600))).await;
        kills.push((Instant::now(), proxy.in_flight()));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let in_flight_kills = kills.iter().filter(|(_, n)| *n > 0).count();
    assert!(
        in_flight_kills >= 3,
        "too few kills landed while requests were in flight: {kills:?}"
    );
    eprintln!("{TRIALS} kills in {:?}", started.elapsed());
    // A last run: everything still queued completes, then SIGTERM stops it cleanly.
    let mut child = serve_with(&cfg_path, &url, &log, &child_env);
    let store = wiring::open_store(&cfg, &url).await.unwrap();
    wait_all_done(&store, &everyone, Duration::from_secs(60), &log).await;
    sigterm(&child);
    assert!(child.wait().unwrap().success());
    assert!(
        started.elapsed() < Duration::from_secs(100),
        "{:?}",
        started.elapsed()
    );

    // Each person exists once, and is a member once.
    let peer = Peer {
        port: server.port,
        path,
    };
    let users = peer.users();
    assert_eq!(users.len(), everyone.len(), "one user per person");
    let mut ids = HashSet::new();
    for h in &everyone {
        let u = peer.users_named(&format!("{h}@crashco.test"));
        assert_eq!(u.len(), 1, "{h}");
        ids.insert(u[0]["id"].as_str().unwrap().to_owned());
    }
    let members = peer.members("miro");
    assert_eq!(
        members.len(),
        everyone.len(),
        "no membership twice, none missing"
    );
    assert_eq!(members.into_iter().collect::<HashSet<_>>(), ids);
    // In LDAP too: every entry exists, and the group holds each person once.
    let vpn = slapd.members(&format!("cn=vpn,{GROUPS_DN}")).await;
    for h in &everyone {
        let dn = format!("uid={h},{PEOPLE_DN}");
        assert!(slapd.entry(&dn).await.is_some(), "{h} has no LDAP entry");
        assert_eq!(
            vpn.iter().filter(|m| m.eq_ignore_ascii_case(&dn)).count(),
            1,
            "{h} in the vpn group"
        );
    }

    // No create was sent twice, unless a kill left the first one's answer undelivered.
    let mut creates: HashMap<String, Vec<support::proxy::Seen>> = HashMap::new();
    for s in proxy.seen() {
        if s.method == "POST" && s.path.ends_with("/Users") {
            let body: serde_json::Value = serde_json::from_str(&s.body).unwrap();
            creates
                .entry(body["userName"].as_str().unwrap().to_owned())
                .or_default()
                .push(s);
        }
    }
    for (who, posts) in &creates {
        for first in &posts[..posts.len() - 1] {
            let end = first.answered.unwrap_or_else(Instant::now) + Duration::from_millis(50);
            assert!(
                kills.iter().any(|(k, _)| *k >= first.at && *k <= end),
                "{who}: create sent again though the first one's outcome was known"
            );
        }
    }
    assert_eq!(creates.len(), everyone.len());
    audit_verify_with(&cfg_path, &url, &child_env);
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("quartermaster serving"));
    assert!(
        !logs.contains(TOKEN) && !logs.contains("hook-secret"),
        "a secret in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_work_finish_or_releases_it() {
    let server = ScimServer::shared();
    let path = server.tenant_path("term");
    let proxy = Proxy::start(server.port).await;
    // Every answer takes 3 s, so an action (4–6 calls: user look-up and create, group
    // look-up and create, group read and PATCH) outlives the 10 s grace.
    proxy.set_delay(Duration::from_millis(3000));
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("qm.toml");
    let text = org(
        &proxy.url(&path),
        2,
        "timeout = \"5s\"\nmax_concurrency = 2",
    );
    std::fs::write(&cfg_path, &text).unwrap();
    let cfg =
        quartermaster::config::parse(&text, dir.path(), &env_of(TOKEN, "hook-secret")).unwrap();
    let test_db = TestDb::create(Backend::from_env()).await;
    let url = test_db.url.clone();
    let log = dir.path().join("serve.log");
    let who = vec!["p0".to_owned(), "p1".to_owned()];
    seed(&cfg, &url, "miro", &who).await;
    let mut child = serve(&cfg_path, &url, &log);
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.in_flight() == 0 {
        assert!(Instant::now() < deadline, "serve never called the peer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = Instant::now();
    sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(20),
        "{took:?}"
    );
    let store = wiring::open_store(&cfg, &url).await.unwrap();
    let states = actions_states(&store, &who).await;
    assert!(
        states
            .iter()
            .all(|s| *s == ActionState::Pending || *s == ActionState::Done),
        "no action is left running with a lease: {states:?}"
    );
    assert!(states.contains(&ActionState::Pending), "{states:?}");
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("released at shutdown"), "{logs}");
    // The next start picks the released work up at once (no lease to wait out).
    proxy.set_delay(Duration::ZERO);
    let mut child = serve(&cfg_path, &url, &log);
    wait_all_done(&store, &who, Duration::from_secs(15), &log).await;
    sigterm(&child);
    assert!(child.wait().unwrap().success());
    let peer = Peer {
        port: server.port,
        path,
    };
    assert_eq!(peer.members("miro").len(), 2);
    audit_verify(&cfg_path, &url);
}

#[tokio::test]
async fn a_peer_outage_backs_off_and_everything_completes_when_it_returns() {
    let server = ScimServer::start(); // our own: it is frozen mid-run
    let base = server.tenant("outage");
    let text = org(&base, 3, "timeout = \"1s\"");
    let cfg = quartermaster::config::parse(&text, Path::new("."), &env_of(TOKEN, "x")).unwrap();
    let mut bot = support::Bot::with_config(cfg).await;
    // Move the bot's clock to now, so it and the peer agree.
    let peer = Peer::of(&base);
    bot.run("p0: /request app:miro reason:\"before\"").await;
    assert_eq!(peer.members("miro").len(), 1);

    server.signal("STOP");
    bot.run("p1: /request app:miro reason:\"during\"\np2: /request app:miro reason:\"during\"")
        .await;
    let store = bot.store.clone();
    let during = vec!["p1".to_owned(), "p2".to_owned()];
    let states = actions_states(&store, &during).await;
    assert_eq!(
        states,
        vec![ActionState::Pending, ActionState::Pending],
        "waiting to retry"
    );
    let audit = bot.audit().await;
    let retrying: Vec<_> = audit
        .iter()
        .filter(|r| r.action == "action.retrying")
        .collect();
    assert_eq!(retrying.len(), 2, "one backoff each");
    assert!(
        retrying.iter().all(|r| r.detail.contains("timed out")),
        "{retrying:?}"
    );
    // Time passes while the peer is still down: another attempt, a longer wait.
    bot.run(":advance 5s").await;
    let retrying = bot
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "action.retrying")
        .count();
    assert!(retrying >= 3, "{retrying}");
    assert!(
        actions_states(&store, &during)
            .await
            .iter()
            .all(|s| *s == ActionState::Pending)
    );

    server.signal("CONT");
    bot.run(":advance 2m").await;
    assert_eq!(
        actions_states(&store, &during).await,
        vec![ActionState::Done, ActionState::Done]
    );
    assert_eq!(peer.members("miro").len(), 3, "nothing lost");
    for h in ["p0", "p1", "p2"] {
        assert_eq!(
            peer.users_named(&format!("{h}@crashco.test")).len(),
            1,
            "{h} once"
        );
    }
    assert!(
        !bot.audit_actions()
            .await
            .contains(&"grant.failed".to_owned())
    );
}

/// A writer that keeps everything the log says.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn canary_secrets_appear_in_no_log_audit_row_or_message() {
    const SCIM_CANARY: &str = "CANARY-scim-7f3a9c";
    const HOOK_CANARY: &str = "CANARY-hook-5be21d";
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // A receiver that answers 401 and echoes the secret it was told about.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            format!("{{\"error\":\"bad signature for secret {HOOK_CANARY}\"}}"),
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await });

    let base = ScimServer::shared().tenant("canary");
    let text = org(&base, 1, "").replace(
        "http://127.0.0.1:1/never",
        &format!("http://127.0.0.1:{hook_port}/hook"),
    );
    let cfg =
        quartermaster::config::parse(&text, Path::new("."), &env_of(SCIM_CANARY, HOOK_CANARY))
            .unwrap();
    let dbg = format!("{cfg:?}");
    assert!(
        !dbg.contains(SCIM_CANARY) && !dbg.contains(HOOK_CANARY),
        "secret in Debug"
    );
    let mut bot = support::Bot::with_config(cfg).await;
    // The peer refuses the token (401): the action fails for good, people are told.
    bot.run("p0: /request app:miro reason:\"x\"\np0: /request app:wiki reason:\"y\"")
        .await;
    let audit = bot.audit().await;
    assert!(
        audit.iter().filter(|r| r.action == "grant.failed").count() >= 2,
        "{:?}",
        audit.iter().map(|r| &r.action).collect::<Vec<_>>()
    );
    let transcript = bot.transcript();
    assert!(
        transcript
            .iter()
            .any(|m| m.to.as_deref() == Some("ivy") && m.text.contains("401")),
        "IT hears of the 401: {transcript:?}"
    );
    let everything = format!(
        "{}\n{:?}\n{}",
        String::from_utf8_lossy(&logs.0.lock().unwrap()),
        audit,
        serde_json::to_string(&transcript).unwrap()
    );
    assert!(everything.contains("HTTP 401"), "the error path ran");
    assert!(
        everything.contains("[redacted]"),
        "the echoed secret was caught"
    );
    for canary in [SCIM_CANARY, HOOK_CANARY] {
        assert!(!everything.contains(canary), "{canary} leaked");
    }
    let mut jsonl = Vec::new();
    quartermaster::store::write_jsonl(&audit, &mut jsonl).unwrap();
    let jsonl = String::from_utf8(jsonl).unwrap();
    assert!(!jsonl.contains(SCIM_CANARY) && !jsonl.contains(HOOK_CANARY));
    let _ = bot.store.queue_depth().await.unwrap();
}

/// Issue 23 item 3: a birthright grant still pending (peer down) when the person moves to a
/// role without that app is revoked by the mover's plan, so it never lands when the peer
/// returns.
#[tokio::test]
async fn a_move_while_a_birthright_is_pending_leaves_no_access_when_the_peer_returns() {
    let server = ScimServer::start(); // our own: it is frozen mid-run
    let base = server.tenant("mover");
    let text = org(&base, 1, "timeout = \"1s\"").replace(
        "[[role]]\nname = \"staff\"\napps = []\n",
        "[[role]]\nname = \"staff\"\napps = []\n\n[[role]]\nname = \"designer\"\napps = [\"miro\"]\n",
    );
    let cfg = quartermaster::config::parse(&text, Path::new("."), &env_of(TOKEN, "x")).unwrap();
    let mut bot = support::Bot::with_config(cfg).await;
    let peer = Peer::of(&base);

    server.signal("STOP");
    bot.run("ivy: /role user:p0 role:designer\nivy: :click Confirm")
        .await;
    let p0 = Handle::parse("p0").unwrap();
    let grants = bot.store.grants_of(&p0).await.unwrap();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(
        grants[0].state,
        quartermaster::core::model::GrantState::Pending,
        "the peer is down"
    );
    bot.run("ivy: /role user:p0 role:staff").await;
    let plan = bot.last_to("ivy");
    assert!(plan.text.contains("- revoke: miro"), "{}", plan.text);
    bot.run("ivy: :click Confirm").await;

    server.signal("CONT");
    bot.run(":advance 2m").await;
    bot.run(":advance 2m").await;
    assert!(
        actions_states(&bot.store, &["p0".to_owned()])
            .await
            .iter()
            .all(|s| matches!(s, ActionState::Done | ActionState::Failed)),
        "everything settled"
    );
    assert!(
        peer.members("miro").is_empty(),
        "the old birthright landed: {:?}",
        peer.members("miro")
    );
    assert!(
        bot.store
            .grants_of(&p0)
            .await
            .unwrap()
            .iter()
            .all(|g| !g.state.is_live()),
        "no live grant remains"
    );
}

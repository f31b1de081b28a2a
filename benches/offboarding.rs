//! Figure 3: offboarding a person who holds 20 grants across 4 connectors — SCIM (the real
//! scim2-server), LDAP (a real OpenLDAP slapd), a webhook (a signed-call receiver written here,
//! as tests/it/webhook.rs does) and the built-in directory, 5 apps each — from Confirm to the
//! verified evidence report. Goal: ≤ 1 s.
//!
//! - Set-up (untimed): a role `leaver` whose 20 birthright apps are spread over the four
//!   connectors; 2×N people are hired through the HR path (`Service::hr_event`) and the engine
//!   (running as `serve` runs it, SystemClock) provisions every grant in the peers.
//! - Timed, N trials one after the other: `/offboard user:X` (plan, untimed), then the Confirm
//!   click; the clock stops when the evidence report reaches the confirmer (our chat port sees
//!   it), i.e. every revoke and disable done, every connector re-read (Verify), report sent.
//!   The click's own answer time is printed too.
//! - Reference, same run: for N other people, the same removals done directly against the
//!   same peers — SCIM PATCH (remove member ×5, active=false), ldap3 modify on a bound
//!   connection (delete member ×5, lock), the 6 signed webhook POSTs, the directory's own
//!   table writes — up to 4 at once per peer, the 4 peers in parallel, each followed by one
//!   re-read (SCIM groups-of-user and user; LDAP groups-of-user and entry; directory rows).
//! - Canaries: the SCIM token, the LDAP bind password, the webhook secret and the audit key
//!   are canary strings; every log line (captured in-process: `info` while timed, as `serve`
//!   logs, `debug` during set-up and for QM_CANARY_TRIALS extra offboardings), every chat
//!   message and edit, and every audit row are searched; the count is printed.
//!
//! Run: `cargo bench --bench offboarding` (QM_TRIALS = N, default 20; QM_CANARY_TRIALS,
//! default 3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use testkit::scim;

use testkit::ldap;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use quartermaster::config;
use quartermaster::core::model::{ActionOp, ActionState, Handle};
use quartermaster::core::ports::{
    ActionQueue, Button, ButtonLabel, Chat, ChatError, Message, MessageKey, Recipient, SystemClock,
};
use quartermaster::core::service::{ClickReply, HrEvent, HrKind, Service};
use quartermaster::engine::{Engine, Limits};
use quartermaster::store::SqlStore;
use quartermaster::wiring;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Semaphore;

use common::{Seen, Watcher, ms, stats};

const SCIM_CANARY: &str = "CANARY-scim-4b7e1d9a2f";
const LDAP_CANARY: &str = "CANARY-ldap-8c3f0a6e1b";
const HOOK_CANARY: &str = "CANARY-hook-5e2a7c9d4f";
const AUDIT_CANARY: &str = "CANARY-audit-1f6b3e8a0d";
const CANARIES: [&str; 4] = [SCIM_CANARY, LDAP_CANARY, HOOK_CANARY, AUDIT_CANARY];

/// Apps per connector (4 connectors: 20 grants).
const PER: usize = 5;
const CONNECTORS: [(&str, &str); 4] = [("scim", "s"), ("ldap", "l"), ("hook", "w"), ("dir", "d")];

// ------------------------------------------------------------------ chat port

/// Records every message and edit; wakes the waiter when an offboarding report arrives.
#[derive(Default)]
struct BenchChat {
    log: Mutex<Vec<String>>,
    reports: Mutex<Vec<(Instant, String, String)>>,
    arrived: tokio::sync::Notify,
}

#[async_trait]
impl Chat for BenchChat {
    async fn send(&self, msg: Message) -> Result<(), ChatError> {
        let at = Instant::now();
        let to = match &msg.to {
            Recipient::Person(h) => h.to_string(),
            Recipient::Channel(c) => format!("#{c}"),
        };
        if msg.text.starts_with("Offboarding report for ") {
            self.reports
                .lock()
                .unwrap()
                .push((at, to.clone(), msg.text.clone()));
            self.arrived.notify_waiters();
        }
        let buttons: Vec<String> = msg.buttons.iter().map(|b| b.target.to_string()).collect();
        self.log
            .lock()
            .unwrap()
            .push(format!("[{to}] {} {buttons:?}", msg.text));
        Ok(())
    }
    async fn edit(&self, key: &MessageKey, text: &str, _: &[Button]) -> Result<(), ChatError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("edit {}: {text}", key));
        Ok(())
    }
}

impl BenchChat {
    /// Waits for the report on `name` sent to `to`; its arrival moment and text.
    async fn report(&self, to: &str, name: &str, limit: Duration) -> Option<(Instant, String)> {
        let prefix = format!("Offboarding report for {name} ");
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let wait = self.arrived.notified();
            tokio::pin!(wait);
            wait.as_mut().enable();
            if let Some((at, _, text)) = self
                .reports
                .lock()
                .unwrap()
                .iter()
                .find(|(_, t, x)| t == to && x.starts_with(&prefix))
            {
                return Some((*at, text.clone()));
            }
            if tokio::time::timeout_at(deadline, wait).await.is_err() {
                return None;
            }
        }
    }
}

// ------------------------------------------------------------------ webhook receiver

/// A receiver that checks each call's signature under the canary secret and answers 204.
async fn receiver() -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (good, bad) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (g, b) = (good.clone(), bad.clone());
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
        let (g, b) = (g.clone(), b.clone());
        async move {
            let h = |k: &str| {
                headers
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            if h("x-qm-signature") == sign(&h("x-qm-timestamp"), &body) {
                g.fetch_add(1, Ordering::SeqCst);
                StatusCode::NO_CONTENT
            } else {
                b.fetch_add(1, Ordering::SeqCst);
                StatusCode::UNAUTHORIZED
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, good, bad)
}

fn sign(ts: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_CANARY.as_bytes()).unwrap();
    mac.update(format!("{ts}.{body}").as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

// ------------------------------------------------------------------ the organisation

fn org_toml(scim_base: &str, ldap_url: &str, hook_port: u16) -> String {
    let mut apps = Vec::new();
    let mut text = String::from(
        r#"
[organization]
name = "Offco"
it_admins = ["ivy"]

[[person]]
handle = "ivy"
name = "Ivy Admin"
email = "ivy@acme.test"
role = "staff"
discord_id = "100000000000000001"

[[person]]
handle = "erin"
name = "Erin Boss"
email = "erin@acme.test"
role = "staff"
discord_id = "100000000000000002"

[[role]]
name = "staff"
apps = []
"#,
    );
    for (conn, p) in CONNECTORS {
        for k in 0..PER {
            let name = format!("{p}{k}");
            text.push_str(&format!(
                "\n[[app]]\nname = \"{name}\"\ndisplay = \"App {name}\"\nconnector = \"{conn}\"\n\
                 entitlement = \"{conn}-g{k}\"\nowners = [\"ivy\"]\napprovals = []\n"
            ));
            apps.push(format!("\"{name}\""));
        }
    }
    text.push_str(&format!(
        "\n[[role]]\nname = \"leaver\"\napps = [{}]\n",
        apps.join(", ")
    ));
    text.push_str(&format!(
        r#"
[[connector]]
name = "scim"
kind = "scim"
base_url = "{scim_base}"
token_env = "QM_BENCH_SCIM_TOKEN"

[[connector]]
name = "ldap"
kind = "ldap"
url = "{ldap_url}"
bind_dn = "{admin}"
password_env = "QM_BENCH_LDAP_PASSWORD"
people_dn = "{people}"
groups_dn = "{groups}"
create_groups = true
placeholder_member = "{admin}"

[[connector]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{hook_port}/access/{{op}}/{{handle}}"
secret_env = "QM_BENCH_HOOK_SECRET"

[[connector]]
name = "dir"
kind = "directory"

[audit]
key_env = "QM_BENCH_AUDIT_KEY"
"#,
        admin = ldap::ADMIN_DN,
        people = ldap::PEOPLE_DN,
        groups = ldap::GROUPS_DN,
    ));
    text
}

fn env(k: &str) -> Option<String> {
    match k {
        "QM_BENCH_SCIM_TOKEN" => Some(SCIM_CANARY.into()),
        "QM_BENCH_LDAP_PASSWORD" => Some(LDAP_CANARY.into()),
        "QM_BENCH_HOOK_SECRET" => Some(HOOK_CANARY.into()),
        "QM_BENCH_AUDIT_KEY" => Some(AUDIT_CANARY.into()),
        _ => None,
    }
}

fn handle(i: usize) -> String {
    format!("b{i:05}")
}

fn email(i: usize) -> String {
    format!("b{i:05}@acme.test")
}

// ------------------------------------------------------------------ reference

/// What the reference needs to know of one person in the peers (looked up untimed).
struct RefTarget {
    i: usize,
    scim_user: String,
    scim_groups: Vec<String>,
}

struct Peers {
    http: reqwest::Client,
    scim_base: String,
    ldap: ldap3::Ldap,
    hook_port: u16,
    store: SqlStore,
}

async fn scim_get(p: &Peers, rel: &str) -> Value {
    let r = p
        .http
        .get(format!("{}/{rel}", p.scim_base))
        .bearer_auth(SCIM_CANARY)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "GET {rel}: {}", r.status());
    r.json().await.unwrap()
}

async fn scim_patch(p: &Peers, rel: &str, ops: Value) {
    let body =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let r = p
        .http
        .patch(format!("{}/{rel}", p.scim_base))
        .bearer_auth(SCIM_CANARY)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "PATCH {rel}: {}", r.status());
}

fn filter(f: &str) -> String {
    scim::enc(f)
}

async fn ref_target(p: &Peers, i: usize) -> RefTarget {
    let users = scim_get(
        p,
        &format!(
            "Users?filter={}",
            filter(&format!("userName eq \"{}\"", email(i)))
        ),
    )
    .await;
    let scim_user = users["Resources"][0]["id"].as_str().unwrap().to_owned();
    let mut scim_groups = Vec::new();
    for k in 0..PER {
        let g = scim_get(
            p,
            &format!(
                "Groups?filter={}",
                filter(&format!("displayName eq \"scim-g{k}\""))
            ),
        )
        .await;
        scim_groups.push(g["Resources"][0]["id"].as_str().unwrap().to_owned());
    }
    RefTarget {
        i,
        scim_user,
        scim_groups,
    }
}

/// Runs `jobs` with at most 4 at once (the connectors' default cap), waiting for all.
async fn capped<F>(jobs: Vec<F>)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let sem = Arc::new(Semaphore::new(4));
    let mut set = tokio::task::JoinSet::new();
    for j in jobs {
        let s = sem.clone();
        set.spawn(async move {
            let _p = s.acquire_owned().await.unwrap();
            j.await;
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

/// The same removals done directly, the four peers in parallel; returns the wall time.
async fn reference(p: Arc<Peers>, t: RefTarget) -> Duration {
    let start = Instant::now();
    let t = Arc::new(t);
    let scim = {
        let (p, t) = (p.clone(), t.clone());
        async move {
            let mut jobs: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> =
                Vec::new();
            for g in t.scim_groups.clone() {
                let (p, t) = (p.clone(), t.clone());
                jobs.push(Box::pin(async move {
                    let path = format!("members[value eq \"{}\"]", t.scim_user);
                    scim_patch(
                        &p,
                        &format!("Groups/{g}"),
                        json!([{"op": "remove", "path": path}]),
                    )
                    .await;
                }));
            }
            {
                let (p, t) = (p.clone(), t.clone());
                jobs.push(Box::pin(async move {
                    scim_patch(
                        &p,
                        &format!("Users/{}", t.scim_user),
                        json!([{"op": "replace", "path": "active", "value": false}]),
                    )
                    .await;
                }));
            }
            capped(jobs).await;
            let left = scim_get(
                &p,
                &format!(
                    "Groups?filter={}",
                    filter(&format!("members.value eq \"{}\"", t.scim_user))
                ),
            )
            .await;
            assert_eq!(left["totalResults"], 0, "SCIM reference left {left}");
            let u = scim_get(&p, &format!("Users/{}", t.scim_user)).await;
            assert_eq!(u["active"], false);
        }
    };
    let ldap = {
        let (p, t) = (p.clone(), t.clone());
        async move {
            let dn = format!("uid={},{}", handle(t.i), ldap::PEOPLE_DN);
            let mut jobs: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> =
                Vec::new();
            for k in 0..PER {
                let (mut l, dn) = (p.ldap.clone(), dn.clone());
                jobs.push(Box::pin(async move {
                    let g = format!("cn=ldap-g{k},{}", ldap::GROUPS_DN);
                    l.modify(
                        &g,
                        vec![ldap3::Mod::Delete("member", HashSet::from([dn.as_str()]))],
                    )
                    .await
                    .unwrap()
                    .success()
                    .unwrap();
                }));
            }
            {
                let (mut l, dn) = (p.ldap.clone(), dn.clone());
                jobs.push(Box::pin(async move {
                    l.modify(
                        &dn,
                        vec![ldap3::Mod::Add(
                            "pwdAccountLockedTime",
                            HashSet::from(["000001010000Z"]),
                        )],
                    )
                    .await
                    .unwrap()
                    .success()
                    .unwrap();
                }));
            }
            capped(jobs).await;
            let mut l = p.ldap.clone();
            let (groups, _) = l
                .search(
                    ldap::GROUPS_DN,
                    ldap3::Scope::OneLevel,
                    &format!("(member={dn})"),
                    vec!["1.1"],
                )
                .await
                .unwrap()
                .success()
                .unwrap();
            assert!(groups.is_empty(), "LDAP reference left groups");
            let (e, _) = l
                .search(
                    &dn,
                    ldap3::Scope::Base,
                    "(objectClass=*)",
                    vec!["pwdAccountLockedTime"],
                )
                .await
                .unwrap()
                .success()
                .unwrap();
            assert_eq!(e.len(), 1);
        }
    };
    let hook = {
        let (p, t) = (p.clone(), t.clone());
        async move {
            let mut jobs: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> =
                Vec::new();
            for k in 0..=PER {
                let (p, i) = (p.clone(), t.i);
                let h = handle(i);
                jobs.push(Box::pin(async move {
                    let (op, ent) = if k < PER {
                        ("revoke", format!("hook-g{k}"))
                    } else {
                        ("disable", String::new())
                    };
                    let body = json!({"op": op, "handle": h, "email": email(i), "name": "x", "entitlement": ent}).to_string();
                    let ts = chrono::Utc::now().timestamp().to_string();
                    let r = p
                        .http
                        .post(format!("http://127.0.0.1:{}/access/{op}/{h}", p.hook_port))
                        .header("X-QM-Timestamp", &ts)
                        .header("X-QM-Signature", sign(&ts, &body))
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success());
                }));
            }
            capped(jobs).await;
        }
    };
    let dir = {
        let (p, t) = (p.clone(), t.clone());
        async move {
            let h = handle(t.i);
            let mut jobs: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> =
                Vec::new();
            for k in 0..PER {
                let (s, h) = (p.store.clone(), h.clone());
                jobs.push(Box::pin(async move {
                    assert!(
                        s.dir_remove_member("dir", &h, &format!("dir-g{k}"))
                            .await
                            .unwrap()
                    );
                }));
            }
            {
                let (s, h) = (p.store.clone(), h.clone());
                jobs.push(Box::pin(async move {
                    assert!(s.dir_set_active("dir", &h, false).await.unwrap());
                }));
            }
            capped(jobs).await;
            assert!(p.store.dir_memberships("dir", &h).await.unwrap().is_empty());
            assert_eq!(
                p.store.dir_account("dir", &h).await.unwrap().map(|a| a.1),
                Some(false)
            );
        }
    };
    tokio::join!(scim, ldap, hook, dir);
    start.elapsed()
}

// ------------------------------------------------------------------ connector timing

/// One connector operation as the engine ran it: person, op, connector, start, end.
type Mark = (String, ActionOp, String, Instant, Instant);
type Marks = Arc<Mutex<Vec<Mark>>>;

// ------------------------------------------------------------------ ours

async fn hire(service: &Service, i: usize) {
    let person = common::person(i, "leaver", "erin");
    assert_eq!(person.email.to_string(), email(i));
    service
        .hr_event(HrEvent {
            id: format!("bench-hire-{i}"),
            kind: HrKind::Hire,
            person,
            last_day: None,
            effective_at: None,
        })
        .await
        .unwrap();
}

struct Trial {
    ack: Duration,
    report: Duration,
    t0: Instant,
}

/// `/offboard` (untimed), then Confirm → the report reaches ivy.
async fn offboard(service: &Service, chat: &BenchChat, i: usize) -> Trial {
    let ivy = service
        .caller_by_handle(&Handle::parse("ivy").unwrap())
        .await
        .unwrap()
        .unwrap();
    let plan = service
        .command_line(&ivy, &format!("/offboard user:{}", handle(i)))
        .await;
    let confirm = plan
        .buttons
        .iter()
        .find(|b| b.label == ButtonLabel::Confirm)
        .unwrap_or_else(|| panic!("no Confirm on the plan: {}", plan.text))
        .target
        .to_string();
    assert_eq!(
        plan.text.matches("(connector ").count(),
        4 * PER,
        "{}",
        plan.text
    );
    let t0 = Instant::now();
    let answer = service.click(&ivy, &confirm, None).await;
    let ack = t0.elapsed();
    match &answer {
        ClickReply::Reply(r) => assert!(r.text.starts_with("Offboarding "), "{}", r.text),
        other => panic!("{other:?}"),
    }
    let name = format!("Bench Person {i}");
    let (at, text) = chat
        .report("ivy", &name, Duration::from_secs(60))
        .await
        .unwrap_or_else(|| panic!("no report for {name} within 60 s"));
    let report = at - t0;
    assert_eq!(text.matches(": removed ✔").count(), 4 * PER, "{text}");
    assert_eq!(text.matches("account: disabled ✔").count(), 4, "{text}");
    assert!(text.contains("Everything is removed"), "{text}");
    Trial { ack, report, t0 }
}

/// Where one offboarding's time went, from its Confirm click (`t0`), by the connector marks.
#[derive(Default)]
struct Phases {
    first_start: Vec<Duration>,
    removals_done: Vec<Duration>,
    verify_start: Vec<Duration>,
    verify_done: Vec<Duration>,
    /// Per connector: when its last revoke/disable ended.
    per_connector: std::collections::BTreeMap<String, Vec<Duration>>,
    /// Per connector: the sum of its revoke/disable calls' durations.
    busy: std::collections::BTreeMap<String, Vec<Duration>>,
}

impl Phases {
    fn add(&mut self, marks: &[Mark], who: &str, t0: Instant) {
        let mine: Vec<&Mark> = marks.iter().filter(|m| m.0 == who && m.3 >= t0).collect();
        let since = |t: Instant| t - t0;
        let removal = |m: &&&Mark| matches!(m.1, ActionOp::Revoke | ActionOp::Disable);
        let verify = |m: &&&Mark| m.1 == ActionOp::Verify;
        if let Some(t) = mine.iter().map(|m| m.3).min() {
            self.first_start.push(since(t));
        }
        if let Some(t) = mine.iter().filter(removal).map(|m| m.4).max() {
            self.removals_done.push(since(t));
        }
        if let Some(t) = mine.iter().filter(verify).map(|m| m.3).min() {
            self.verify_start.push(since(t));
        }
        if let Some(t) = mine.iter().filter(verify).map(|m| m.4).max() {
            self.verify_done.push(since(t));
        }
        for (conn, _) in CONNECTORS {
            let on = |m: &&&Mark| m.2 == conn;
            if let Some(t) = mine.iter().filter(removal).filter(on).map(|m| m.4).max() {
                self.per_connector
                    .entry(conn.to_owned())
                    .or_default()
                    .push(since(t));
            }
            let busy: Duration = mine
                .iter()
                .filter(removal)
                .filter(on)
                .map(|m| m.4 - m.3)
                .sum();
            self.busy.entry(conn.to_owned()).or_default().push(busy);
        }
    }
}

#[tokio::main]
async fn main() {
    if !common::under_cargo_bench() {
        return;
    }
    let trials: usize = std::env::var("QM_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let canary_trials: usize = std::env::var("QM_CANARY_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    println!("figure 3: offboarding, 20 grants over 4 connectors (SCIM, LDAP, webhook, directory)");
    println!("{}", common::machine());

    // Logs, captured in memory; debug during set-up.
    let (logs, set_filter) = common::capture_logs("debug");

    let t = Instant::now();
    let scim_server = scim::ScimServer::start_with_token(scim::free_port(), SCIM_CANARY);
    let scim_base = scim_server.tenant("off");
    let slapd = ldap::Slapd::start_with_password(LDAP_CANARY).await;
    let (hook_port, hook_ok, hook_bad) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config::parse(
        &org_toml(&scim_base, &slapd.url, hook_port),
        dir.path(),
        &env,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let db = format!("sqlite://{}", dir.path().join("qm.db").display());
    let store = wiring::open_store(&config, &db).await.unwrap();
    let chat = Arc::new(BenchChat::default());
    let (service, _) =
        wiring::assemble(&config, store.clone(), chat.clone(), Arc::new(SystemClock)).unwrap();
    // The engine as `wiring::assemble` builds it, each connector wrapped to note its timings.
    let marks: Marks = Arc::default();
    let noted = marks.clone();
    let watch: Watcher = Arc::new(move |name, seen| {
        if let Seen::Finished { op, who, started } = seen {
            noted.lock().unwrap().push((
                who.handle.to_string(),
                op,
                name.to_owned(),
                started,
                Instant::now(),
            ));
        }
    });
    let conns = common::watched(wiring::connectors(&config, &store).unwrap(), &watch);
    let limits = config
        .connectors
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                Limits {
                    max_concurrency: c.limits.max_concurrency,
                    rate_per_second: c.limits.rate_per_second,
                    lease: c.limits.lease,
                },
            )
        })
        .collect();
    let engine = Engine::with_limits(service.clone(), conns, limits);

    println!("engine workers: {}", engine.workers());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(async move { engine.run(stop_rx).await });

    // Set-up: hire everyone, wait until every grant is provisioned.
    let people = 2 * trials + canary_trials;
    for i in 0..people {
        hire(&service, i).await;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while store.queue_depth().await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "provisioning did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..people {
        let acts = store
            .actions_of(&Handle::parse(&handle(i)).unwrap())
            .await
            .unwrap();
        assert_eq!(acts.len(), 4 * PER);
        assert!(
            acts.iter().all(|a| a.state == ActionState::Done),
            "{:?}",
            acts.iter()
                .filter(|a| a.state != ActionState::Done)
                .map(|a| (&a.connector, a.state, &a.last_error))
                .collect::<Vec<_>>()
        );
    }
    println!(
        "set-up: peers started, {people} people hired and {} grants provisioned in {:.1} s",
        people * 4 * PER,
        t.elapsed().as_secs_f64()
    );

    // Timed: ours, at the log level `serve` runs with.
    set_filter("info");
    let mut acks = Vec::new();
    let mut reports = Vec::new();
    let mut phases = Phases::default();
    for i in 0..trials {
        let r = offboard(&service, &chat, i).await;
        acks.push(r.ack);
        reports.push(r.report);
        phases.add(&marks.lock().unwrap(), &handle(i), r.t0);
    }

    // Reference: other people, the same removals done directly.
    let (conn, ldap_conn) = ldap3::LdapConnAsync::new(&slapd.url).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.drive().await;
    });
    let mut lc = ldap_conn.clone();
    lc.simple_bind(ldap::ADMIN_DN, LDAP_CANARY)
        .await
        .unwrap()
        .success()
        .unwrap();
    let peers = Arc::new(Peers {
        http: reqwest::Client::new(),
        scim_base: scim_base.clone(),
        ldap: ldap_conn,
        hook_port,
        store: store.clone(),
    });
    let mut refs = Vec::new();
    for i in trials..2 * trials {
        let target = ref_target(&peers, i).await;
        refs.push(reference(peers.clone(), target).await);
    }

    let (a, o, r) = (stats(acks), stats(reports), stats(refs));
    println!("\nConfirm click answered (plan carried out, actions queued): {a}");
    println!("ours, Confirm → verified report: {o}");
    println!("reference, same removals + re-read directly, 4 peers in parallel: {r}");
    println!(
        "ratio ours/reference: p50 {:.1}, p95 {:.1}, max {:.1}",
        o.p50.as_secs_f64() / r.p50.as_secs_f64(),
        o.p95.as_secs_f64() / r.p95.as_secs_f64(),
        o.max.as_secs_f64() / r.max.as_secs_f64()
    );
    println!(
        "goal <= 1 s (p95 {} ms, max {} ms): {}",
        ms(o.p95),
        ms(o.max),
        if o.max <= Duration::from_secs(1) {
            "MET"
        } else if o.p95 <= Duration::from_secs(1) {
            "MET at p95, MISSED at max"
        } else {
            "MISSED"
        }
    );

    println!("\nwhere the time goes, from the Confirm click (connector marks):");
    println!(
        "  first connector call starts:   {}",
        stats(phases.first_start)
    );
    println!(
        "  last revoke/disable ends:      {}",
        stats(phases.removals_done)
    );
    println!(
        "  first re-read (Verify) starts: {}",
        stats(phases.verify_start)
    );
    println!(
        "  last re-read ends:             {}",
        stats(phases.verify_done)
    );
    for (conn, v) in phases.per_connector {
        println!("  {conn}: its last revoke/disable ends {}", stats(v));
    }
    for (conn, v) in phases.busy {
        println!("  {conn}: sum of its 6 revoke/disable calls {}", stats(v));
    }

    // Canary offboardings at debug level.
    set_filter("debug");
    for i in 2 * trials..people {
        offboard(&service, &chat, i).await;
    }
    let _ = stop_tx.send(true);
    worker.await.unwrap();
    let sample = chat
        .reports
        .lock()
        .unwrap()
        .first()
        .map(|x| x.2.clone())
        .unwrap_or_default();
    println!("\nfirst report, as sent:\n{sample}");
    // Each report re-reads every connector once.
    let (sent, repeated) = {
        let reports = chat.reports.lock().unwrap();
        let repeated = reports
            .iter()
            .filter(|r| {
                CONNECTORS
                    .iter()
                    .any(|(c, _)| r.2.matches(&format!("re-read of connector {c}:")).count() != 1)
            })
            .count();
        (reports.len(), repeated)
    };
    println!("reports sent: {sent}; with a connector re-read other than once: {repeated}");

    // Canaries: logs, chat, audit rows.
    let audit = store.audit_rows(None).await.unwrap();
    let log_text = logs.text();
    let chat_text = chat.log.lock().unwrap().join("\n");
    let found = common::CanariesFound::search(&CANARIES, &log_text, &chat_text, &audit);
    println!(
        "\ncanaries (SCIM token, LDAP bind password, webhook secret, audit key) searched in {} log lines ({:.1} MB, debug during set-up and {canary_trials} offboardings, info while timed), {} chat messages and edits, {} audit rows",
        log_text.lines().count(),
        log_text.len() as f64 / 1e6,
        chat.log.lock().unwrap().len(),
        audit.len()
    );
    println!(
        "canaries found: {}; goal never: {}",
        found.summary(),
        if found.total() == 0 { "MET" } else { "MISSED" }
    );
    println!(
        "control: the capture holds {} DEBUG lines naming a connector call (webhook, ldap, scim)",
        log_text
            .lines()
            .filter(|l| l.contains("DEBUG")
                && (l.contains("webhook call") || l.contains("ldap") || l.contains("scim")))
            .count()
    );
    println!(
        "webhook calls with a good signature: {}, bad: {}",
        hook_ok.load(Ordering::SeqCst),
        hook_bad.load(Ordering::SeqCst)
    );
    // Keep the canary honest: the secrets were really used (a log line of the peer would be
    // the proof for SCIM; here the calls succeeding with the canary as token/password is).
    drop(slapd);
    drop(scim_server);
}

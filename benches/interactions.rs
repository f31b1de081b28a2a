//! Figure 1: acknowledgement latency of `POST /discord/interactions` (signed `/request`
//! commands, each creating a request and DMing the approver through the fake Discord's REST
//! API), at 50/s sustained and in 200/s bursts; server-side (arrival → response, recorded by
//! the route's middleware) and from the client (reqwest, keep-alive). The reference: a bare
//! axum route that does nothing, under the same load from the same client, in the same run.
//! Logs are captured in memory (at `info` while timed, as `serve` logs; `QM_LOG_TIMED` sets
//! another filter, e.g. `off`).
//!
//! Figure 8's Discord canary: the bot token is a canary string; after the timed phases, 100
//! more commands run with every log at `debug`, then the logs, every REST call the fake
//! received and every interaction response, and the audit rows are searched for it (the fake's
//! record of each call's `Authorization` shows the token was really used).
//!
//! Step-up (issue 22): 200 approvers, each enrolled with their own TOTP secret, approve one
//! request each on an app with `step_up = "totp"`: the Approve click answered with the code
//! form (a modal), then the form submitted with the code and the decision committed; both
//! timed server-side as above, at 50/s.
//!
//! Run: `cargo bench --bench interactions`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit::discord as fake;

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::routing::post;
use ed25519_dalek::{Signer, SigningKey};
use quartermaster::config::{self, DiscordConfig, DiscordMode};
use quartermaster::core::ports::{People, Requests, SystemClock};
use quartermaster::server;
use quartermaster::wiring;
use serde_json::{Value, json};

use common::{ms, stats};

const APPS: [&str; 4] = ["figma", "crm", "zoho", "adobe"];
/// The `[mfa]` key of the step-up phase.
const MFA_KEY: &str = "5e1f0a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7";
/// Approvers in the step-up phase (each approves one request: a code counts once).
const STEP_UP_APPROVALS: usize = 200;
/// The bot token: a canary string, searched for at the end (figure 8).
const TOKEN_CANARY: &str = "qm-canary-discord-bot-token-5b1e0d7c";

/// One load phase: `rate` requests per second, in bursts of `burst` seconds separated by
/// `pause` (a pause of zero is a sustained load), `total` requests.
#[derive(Clone, Copy)]
struct Phase {
    name: &'static str,
    rate: u32,
    total: usize,
    burst: Duration,
    pause: Duration,
}

const PHASES: [Phase; 2] = [
    Phase {
        name: "sustained 50/s for 20 s",
        rate: 50,
        total: 1000,
        burst: Duration::from_secs(20),
        pause: Duration::ZERO,
    },
    Phase {
        name: "bursts of 200/s (1 s on, 1 s off, x5)",
        rate: 200,
        total: 1000,
        burst: Duration::from_secs(1),
        pause: Duration::from_secs(1),
    },
];

/// When request `i` of a phase is due, from the phase's start.
fn due(p: Phase, i: usize) -> Duration {
    let per_burst = (p.rate as f64 * p.burst.as_secs_f64()) as usize;
    let burst = i / per_burst;
    let within = i % per_burst;
    (p.burst + p.pause) * burst as u32 + Duration::from_secs_f64(within as f64 / p.rate as f64)
}

struct Signed {
    body: Vec<u8>,
    sig: String,
    ts: String,
}

fn sign(key: &SigningKey, payload: &Value) -> Signed {
    let body = serde_json::to_vec(payload).unwrap();
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut msg = ts.as_bytes().to_vec();
    msg.extend_from_slice(&body);
    Signed {
        sig: hex::encode(key.sign(&msg).to_bytes()),
        ts,
        body,
    }
}

/// Runs a phase against `url`; returns client-side latencies and the responses.
async fn load(
    client: &reqwest::Client,
    url: &str,
    phase: Phase,
    payloads: Vec<Signed>,
) -> (Vec<Duration>, Vec<Value>) {
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(payloads.len());
    for (i, s) in payloads.into_iter().enumerate() {
        tokio::time::sleep_until(start + due(phase, i)).await;
        let client = client.clone();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-signature-ed25519", s.sig)
                .header("x-signature-timestamp", s.ts)
                .body(s.body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let v: Value = r.json().await.unwrap();
            let took = t.elapsed();
            assert!(status.is_success(), "{status}: {v}");
            (took, v)
        }));
    }
    let mut lat = Vec::new();
    let mut answers = Vec::new();
    for t in tasks {
        let (d, v) = t.await.unwrap();
        lat.push(d);
        answers.push(v);
    }
    (lat, answers)
}

#[tokio::main]
async fn main() {
    if !common::under_cargo_bench() {
        return;
    }
    // The directory's size: every interaction reads all people today (see BENCHMARKS.md).
    let people: usize = std::env::var("QM_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    // Logs in memory: debug during set-up, info (as `serve` runs) while timed.
    let (logs, set_filter) = common::capture_logs("debug");
    println!("figure 1: interaction acknowledgement ({people} bench people + the example org)");
    println!("{}", common::machine());
    let fake = fake::FakeDiscord::start().await;
    let key = SigningKey::from_bytes(&fake::SEED);

    // Ours: serve with the interactions endpoint, SQLite in a temporary folder.
    let mut config = config::load(None).unwrap();
    // Step-up on figma (its first step is the requester's manager), and the key it needs.
    config.mfa_key = Some(quartermaster::core::totp::MfaKey::parse(&MFA_KEY.into()).unwrap());
    for a in config
        .org
        .apps
        .iter_mut()
        .filter(|a| a.name.as_str() == "figma")
    {
        a.step_up = true;
    }
    config.discord = Some(DiscordConfig {
        mode: DiscordMode::Interactions,
        application_id: fake::APP_ID.into(),
        public_key: Some(fake.public_key_hex()),
        token: TOKEN_CANARY.into(),
        api_base: Some(fake.base_url()),
        approvals_channel: None,
        guilds: Vec::new(),
    });
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("qm.db").display());
    let store = wiring::open_store(&config, &db).await.unwrap();
    store
        .seed_people(&common::people(people, "copywriter", "erin"))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let srv = server::start(&config, store.clone(), Arc::new(SystemClock), listener)
        .await
        .unwrap();
    let ours = format!("http://{}/discord/interactions", srv.addr);
    fake.set_endpoint(ours.clone());
    let metrics = srv.interactions.as_ref().unwrap().metrics().clone();

    // Reference: a bare axum route, timed by the same kind of middleware.
    let ref_samples: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let rs = ref_samples.clone();
    let reference = Router::new()
        .route("/ref", post(|| async { axum::Json(json!({ "type": 1 })) }))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let rs = rs.clone();
            async move {
                let t = Instant::now();
                let r = next.run(req).await;
                rs.lock().unwrap().push(t.elapsed());
                r
            }
        }));
    let rl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ref_url = format!("http://{}/ref", rl.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(rl, reference).await.unwrap() });

    let client = reqwest::Client::new();
    let mut next_person = 0usize;
    let mut payloads = |n: usize| -> Vec<Signed> {
        (0..n)
            .map(|_| {
                let i = next_person;
                next_person += 1;
                let app = APPS[(i / people) % APPS.len()];
                let id = common::discord_id(i % people);
                let handle = format!("b{:05}", i % people);
                let p = fake.command(
                    (&id, &handle),
                    "request",
                    json!([
                        { "name": "app", "type": 3, "value": app },
                        { "name": "reason", "type": 3, "value": "benchmark" },
                    ]),
                );
                sign(&key, &p)
            })
            .collect()
    };
    // Warm-up (not counted): connections, SQLite page cache, DM channels.
    let warm = Phase {
        name: "warm-up",
        rate: 50,
        total: 50,
        burst: Duration::from_secs(1),
        pause: Duration::ZERO,
    };
    load(&client, &ours, warm, payloads(warm.total)).await;
    let _ = load(&client, &ref_url, warm, payloads(warm.total)).await;

    set_filter(&std::env::var("QM_LOG_TIMED").unwrap_or_else(|_| "info".into()));
    for phase in PHASES {
        println!("\n== {} ({} requests)", phase.name, phase.total);
        ref_samples.lock().unwrap().clear();
        let (ref_client, _) = load(&client, &ref_url, phase, payloads(phase.total)).await;
        let ref_server = std::mem::take(&mut *ref_samples.lock().unwrap());

        let before = metrics.recent_latencies().len();
        let (our_client, answers) = load(&client, &ours, phase, payloads(phase.total)).await;
        let kinds: Vec<u64> = answers
            .iter()
            .map(|v| v["type"].as_u64().unwrap_or(0))
            .collect();
        let our_server: Vec<Duration> = metrics.recent_latencies().split_off(before);
        let replied = kinds.iter().filter(|k| **k == 4).count();
        let deferred = kinds.iter().filter(|k| **k == 5).count();

        let (rs, rc) = (stats(ref_server), stats(ref_client.clone()));
        let (os, oc) = (stats(our_server), stats(our_client));
        println!("reference server-side: {rs}");
        println!("reference client-side: {rc}");
        println!("ours      server-side: {os}");
        println!("ours      client-side: {oc}");
        println!("ours: {replied} replied (type 4), {deferred} deferred (type 5)");
        println!(
            "client-side ratio ours/reference: p50 {:.2}x p99 {:.2}x p99.9 {:.2}x",
            oc.p50.as_secs_f64() / rc.p50.as_secs_f64(),
            oc.p99.as_secs_f64() / rc.p99.as_secs_f64(),
            oc.p999.as_secs_f64() / rc.p999.as_secs_f64()
        );
        println!(
            "goal server-side p99 <= 10 ms: {} (p99 {} ms)",
            if os.p99 <= Duration::from_millis(10) {
                "MET"
            } else {
                "MISSED"
            },
            ms(os.p99)
        );
    }
    step_up_phase(&client, &ours, &fake, &key, &store, &metrics).await;
    let requests = store.open_requests().await.unwrap().len();
    println!("\nrequests created and open at the end: {requests}");

    // Figure 8, canary: the bot token. More commands with every log at debug; then the logs,
    // everything we sent to Discord (REST bodies, interaction responses) and the audit rows
    // are searched for it.
    set_filter("debug");
    let canary = Phase {
        name: "canary",
        rate: 50,
        total: 100,
        burst: Duration::from_secs(2),
        pause: Duration::ZERO,
    };
    let (_, answers) = load(&client, &ours, canary, payloads(canary.total)).await;
    srv.stop().await;
    let calls = fake.calls();
    let bearer = format!("Bot {TOKEN_CANARY}");
    let with_token = calls
        .iter()
        .filter(|c| c.auth.as_deref() == Some(bearer.as_str()))
        .count();
    let other_auth = calls
        .iter()
        .filter(|c| c.auth.is_some() && c.auth.as_deref() != Some(bearer.as_str()))
        .count();
    let sent: String = calls
        .iter()
        .map(|c| format!("{} {} {}\n", c.method, c.path, c.body))
        .chain(answers.iter().map(|v| format!("{v}\n")))
        .collect();
    let audit = store.audit_rows(None).await.unwrap();
    let log_text = logs.text();
    let found = common::CanariesFound::search(&[TOKEN_CANARY], &log_text, &sent, &audit);
    println!(
        "\ncanary (the Discord bot token): {} REST calls to the fake carried it as `Bot <token>` \
         ({other_auth} with another Authorization); searched {} log lines ({} at DEBUG; debug \
         during set-up and {} canary commands, info while timed), {} REST calls and {} \
         interaction responses, {} audit rows",
        with_token,
        log_text.lines().count(),
        log_text.lines().filter(|l| l.contains("DEBUG")).count(),
        canary.total,
        calls.len(),
        answers.len(),
        audit.len()
    );
    println!(
        "canary found: {}; goal never: {}",
        found.summary(),
        if found.total() == 0 && with_token > 0 {
            "MET"
        } else {
            "MISSED"
        }
    );
}

/// The step-up phase: approvers enrolled with their own secrets, one request each, then the
/// Approve clicks (answered with the code form) and the forms submitted with the code (the
/// decision), each at 50/s, timed server-side and from the client.
async fn step_up_phase(
    client: &reqwest::Client,
    ours: &str,
    fake: &fake::FakeDiscord,
    key: &SigningKey,
    store: &quartermaster::store::SqlStore,
    metrics: &Arc<quartermaster::metrics::Metrics>,
) {
    use quartermaster::core::model::{Handle, Person};
    use quartermaster::core::ports::{Change, MfaWrite, UnitOfWork};
    use quartermaster::core::totp::{MfaKey, TotpSecret};
    let n = STEP_UP_APPROVALS;
    let mfa_key = MfaKey::parse(&MFA_KEY.into()).unwrap();
    let approver = |i: usize| (format!("3{i:017}"), format!("s{i:05}"));
    let requester = |i: usize| (format!("4{i:017}"), format!("t{i:05}"));
    let mut people: Vec<Person> = Vec::new();
    let mut secrets = Vec::new();
    let mut enrol = Change::default();
    for i in 0..n {
        let (aid, ah) = approver(i);
        let (rid, rh) = requester(i);
        let mut a = common::person(0, "copywriter", "erin");
        a.handle = Handle::parse(&ah).unwrap();
        a.email = quartermaster::core::model::Email::parse(&format!("{ah}@acme.test")).unwrap();
        a.discord_id = Some(aid);
        let mut r = common::person(0, "copywriter", &ah);
        r.handle = Handle::parse(&rh).unwrap();
        r.email = quartermaster::core::model::Email::parse(&format!("{rh}@acme.test")).unwrap();
        r.discord_id = Some(rid);
        people.extend([a, r]);
        let s = TotpSecret::generate();
        let h = Handle::parse(&ah).unwrap();
        enrol.mfa.push(MfaWrite::Enrol {
            person: h.clone(),
            sealed: mfa_key.seal(&ah, &s),
        });
        enrol.mfa.push(MfaWrite::Confirm {
            person: h,
            step: 0,
            at: chrono::Utc::now(),
        });
        secrets.push(s);
    }
    store.seed_people(&people).await.unwrap();
    store.commit(enrol).await.unwrap();
    let asks: Vec<Signed> = (0..n)
        .map(|i| {
            let (rid, rh) = requester(i);
            let p = fake.command(
                (&rid, &rh),
                "request",
                json!([{ "name": "app", "type": 3, "value": "figma" },
                       { "name": "reason", "type": 3, "value": "benchmark" }]),
            );
            sign(key, &p)
        })
        .collect();
    let at50 = |total| Phase {
        name: "step-up",
        rate: 50,
        total,
        burst: Duration::from_secs(3600),
        pause: Duration::ZERO,
    };
    load(client, ours, at50(n), asks).await;
    // Every approver's prompt, as the fake received it.
    let mut prompts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..n {
        let (aid, _) = approver(i);
        loop {
            if let Some(m) = fake
                .dms(&aid)
                .into_iter()
                .find(|m| m.buttons() == ["Approve", "Deny"])
            {
                prompts.push(m);
                break;
            }
            assert!(Instant::now() < deadline, "no prompt reached {aid}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    println!("\n== step-up approvals ({n} approvers, each enrolled; 50/s)");
    let clicks: Vec<Signed> = (0..n)
        .map(|i| {
            let (aid, ah) = approver(i);
            sign(key, &fake.click((&aid, &ah), &prompts[i], "Approve"))
        })
        .collect();
    let before = metrics.recent_latencies().len();
    let (click_client, answers) = load(client, ours, at50(n), clicks).await;
    let click_server = metrics.recent_latencies().split_off(before);
    let forms = answers.iter().filter(|v| v["type"] == 9).count();
    let now = chrono::Utc::now().timestamp();
    let submits: Vec<Signed> = (0..n)
        .map(|i| {
            let (aid, ah) = approver(i);
            let m = &prompts[i];
            let code = secrets[i].code_at(now);
            let p = fake.modal_submit((&aid, &ah), m, &m.custom_id("Approve"), &[("code", &code)]);
            sign(key, &p)
        })
        .collect();
    let before = metrics.recent_latencies().len();
    let (submit_client, answers) = load(client, ours, at50(n), submits).await;
    let submit_server = metrics.recent_latencies().split_off(before);
    let decided = answers
        .iter()
        .filter(|v| {
            v["type"] == 4
                && v["data"]["content"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("You approved"))
        })
        .count();
    let round: Vec<Duration> = click_client
        .iter()
        .zip(&submit_client)
        .map(|(a, b)| *a + *b)
        .collect();
    let (cs, ss, rt) = (stats(click_server), stats(submit_server), stats(round));
    println!("Approve → code form, server-side: {cs} ({forms} of {n} answered with the form)");
    println!("code → decision, server-side:     {ss} ({decided} of {n} decided)");
    println!("form round trip (both answers), client-side: {rt}");
    println!(
        "goal decision p99 <= 10 ms server-side: {} (p99 {} ms); round trip within Discord's 3 s: {}",
        if ss.p99 <= Duration::from_millis(10) && decided == n {
            "MET"
        } else {
            "MISSED"
        },
        ms(ss.p99),
        if rt.max <= Duration::from_secs(3) {
            "MET"
        } else {
            "MISSED"
        }
    );
}

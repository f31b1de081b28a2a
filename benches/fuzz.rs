//! Figure 8 (fuzzing): a seeded mutation fuzzer with a fixed budget over the four decoders
//! that read untrusted input. Seeds are valid inputs; each iteration applies 1–8 random
//! mutations (byte flips, insertions, deletions, splices of the input with itself, and
//! insertions of tokens that matter to the format). A panic anywhere (a hook counts them,
//! in server tasks too) or a 5xx response fails the goal.
//!
//! - command parser: `Registry::parse_line` (the console and the shared parser);
//! - interaction decoder: JSON → serenity `Interaction` → `ClickTarget::parse`, in process,
//!   and the whole `POST /discord/interactions` route with validly signed mutated bodies;
//! - config loader: `config::parse` over mutations of `examples/acme.toml`;
//! - HR event decoder: the whole `POST /hr/events` route with validly signed mutated bodies.
//!
//! Run: `cargo bench --bench fuzz` (QM_FUZZ_SEED and QM_FUZZ_SCALE override seed and budget).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/discord.rs"]
mod fake;

mod common;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use quartermaster::app;
use quartermaster::config::{self, DiscordConfig, DiscordMode, HrConfig};
use quartermaster::core::command::Registry;
use quartermaster::core::customid::ClickTarget;
use quartermaster::core::ports::{Store, SystemClock};
use quartermaster::server;
use serde_json::{Value, json};
use sha2::Sha256;

static PANICS: AtomicUsize = AtomicUsize::new(0);

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seed: &[u8], dict: &[&str]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = rng.below(16).min(v.len() - i);
                v.drain(i..i + n);
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = rng.below(32).min(v.len() - i);
                let piece = v[i..i + n].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, piece);
            }
            _ => {
                let t = dict[rng.below(dict.len())].as_bytes();
                v.splice(at..at, t.iter().copied());
            }
        }
    }
    v
}

fn lossy(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

fn report(name: &str, n: usize, started: Instant, before: usize, extra: &str) {
    let p = PANICS.load(Ordering::SeqCst) - before;
    println!(
        "{name}: {n} inputs in {:.1} s, {p} panics{extra}: {}",
        started.elapsed().as_secs_f64(),
        if p == 0 && extra.is_empty() {
            "no panic"
        } else {
            "FAILED"
        }
    );
}

#[tokio::main]
async fn main() {
    if !common::under_cargo_bench() {
        return;
    }
    println!("figure 8: fuzzing with a fixed budget");
    println!("{}", common::machine());
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        eprintln!("PANIC: {info}");
    }));
    let seed: u64 = std::env::var("QM_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_0001);
    let scale: usize = std::env::var("QM_FUZZ_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    println!("seed {seed}, scale {scale}");
    let mut rng = Rng(seed);

    // Command parser.
    let reg = Registry::builtin();
    let lines = [
        "/request app:figma reason:\"landing page mock-ups\" duration:30d",
        "/request app:zoho reason:\"expense reports\"",
        "/offboard user:alice when:2026-12-01",
        "/onboard user:frank role:engineer",
        "/role user:frank role:designer",
        "/revoke user:alice app:figma reason:\"left the project\"",
        "/access user:bob",
        "/approvals",
    ];
    let dict = [
        ":",
        "\"",
        " ",
        "/",
        "app:",
        "user:",
        "duration:",
        "\\",
        "\"\"",
        "é",
        "\u{0}",
        "99999999999d",
        "-1h",
        "reason:\"",
        "role:",
        "when:",
        "\u{202e}",
    ];
    let (t, b) = (Instant::now(), PANICS.load(Ordering::SeqCst));
    let n = 200_000 * scale;
    for _ in 0..n {
        let s = lines[rng.below(lines.len())];
        let line = lossy(&mutate(&mut rng, s.as_bytes(), &dict));
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| reg.parse_line(&line)));
    }
    report("command parser (Registry::parse_line)", n, t, b, "");

    // Interaction decoder, in process.
    let f = fake::FakeDiscord::start().await;
    let alice = ("100000000000000004", "alice");
    let mut payloads = vec![
        f.command(
            alice,
            "request",
            json!([{ "name": "app", "type": 3, "value": "figma" }]),
        ),
        f.autocomplete(alice, "fig"),
        f.command_with_user(
            ("100000000000000002", "dana"),
            "offboard",
            json!([{ "name": "user", "type": 6, "value": "100000000000000004" }]),
            alice,
        ),
    ];
    let mut click = f.command(alice, "request", json!([]));
    click["type"] = json!(3);
    click["data"] = json!({ "custom_id": "v1:req:42:s0:approve", "component_type": 2 });
    click["message"] = json!({
        "id": "1", "channel_id": "1", "author": fake::user_json(fake::BOT_ID, "qm", true),
        "content": "", "timestamp": "2026-11-25T09:00:00.000000+00:00", "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
        "embeds": [], "pinned": false, "type": 0
    });
    payloads.push(click);
    payloads.push(
        json!({ "type": 1, "id": "1", "application_id": fake::APP_ID, "token": "t", "version": 1 }),
    );
    let seeds: Vec<Vec<u8>> = payloads
        .iter()
        .map(|p| serde_json::to_vec(p).unwrap())
        .collect();
    let jdict = [
        "\"",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "null",
        "true",
        "-1",
        "1e999",
        "\"type\":",
        "\\u0000",
        "\"custom_id\":\"v1:req:",
        ":s99999999999:",
        ":approve",
        "18446744073709551616",
    ];
    let (t, b) = (Instant::now(), PANICS.load(Ordering::SeqCst));
    let n = 100_000 * scale;
    let mut decoded = 0usize;
    for _ in 0..n {
        let s = &seeds[rng.below(seeds.len())];
        let body = mutate(&mut rng, s, &jdict);
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
            if let Ok(v) = serde_json::from_slice::<Value>(&body)
                && let Ok(i) = serde_json::from_value::<serenity::all::Interaction>(v)
            {
                decoded += 1;
                if let serenity::all::Interaction::Component(c) = i {
                    let _ = ClickTarget::parse(&c.data.custom_id);
                }
            }
        }));
    }
    report(
        &format!("interaction decoder in process ({decoded} decoded as interactions)"),
        n,
        t,
        b,
        "",
    );
    for _ in 0..20_000 * scale {
        let s = [
            "v1:req:42:s0:approve",
            "v1:plan:7:confirm",
            "v1:grant:9:extend",
        ][rng.below(3)]
        .as_bytes();
        let id = lossy(&mutate(
            &mut rng,
            s,
            &[":", "s", "-", "v1", "99999999999999999999"],
        ));
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| ClickTarget::parse(&id)));
    }

    // Config loader.
    let acme = include_str!("../examples/acme.toml");
    let tdict = [
        "[[app]]\n",
        "[[person]]\n",
        "=",
        "\"",
        "[",
        "]",
        "\n",
        "approvals = [\"nobody\"]\n",
        "max_duration = \"0s\"\n",
        "manager = \"ken\"\n",
        "token_env = \"X\"\n",
        "#",
        "[discord]\nmode = \"interactions\"\n",
        "99999999999999999999",
    ];
    let (t, b) = (Instant::now(), PANICS.load(Ordering::SeqCst));
    let n = 3_000 * scale;
    let mut ok = 0;
    for _ in 0..n {
        let text = lossy(&mutate(&mut rng, acme.as_bytes(), &tdict));
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            config::parse(&text, std::path::Path::new("."), &|_| Some("x".into())).is_ok()
        }));
        ok += usize::from(r.unwrap_or(false));
    }
    report(
        &format!("config loader (config::parse; {ok} still valid)"),
        n,
        t,
        b,
        "",
    );

    // The two routes, through a running server.
    let mut cfg = config::load(None).unwrap();
    cfg.discord = Some(DiscordConfig {
        mode: DiscordMode::Interactions,
        application_id: fake::APP_ID.into(),
        public_key: Some(f.public_key_hex()),
        token: "fake-bot-token".into(),
        api_base: Some(f.base_url()),
        approvals_channel: None,
    });
    let hr_secret = "fuzz-hr-secret";
    cfg.hr = Some(HrConfig {
        secret: hr_secret.to_owned().into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("qm.db").display());
    let store = app::open_store(&cfg, &db).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let srv = server::start(&cfg, store.clone(), Arc::new(SystemClock), listener)
        .await
        .unwrap();
    let base = format!("http://{}", srv.addr);
    let client = reqwest::Client::new();
    let key = SigningKey::from_bytes(&fake::SEED);

    let (t, b) = (Instant::now(), PANICS.load(Ordering::SeqCst));
    let n = 1_500 * scale;
    let mut status: std::collections::BTreeMap<u16, usize> = Default::default();
    for _ in 0..n {
        let s = &seeds[rng.below(seeds.len())];
        let body = mutate(&mut rng, s, &jdict);
        let ts = chrono::Utc::now().timestamp().to_string();
        let mut msg = ts.as_bytes().to_vec();
        msg.extend_from_slice(&body);
        let sig = hex::encode(key.sign(&msg).to_bytes());
        let r = client
            .post(format!("{base}/discord/interactions"))
            .header("x-signature-ed25519", sig)
            .header("x-signature-timestamp", ts)
            .body(body)
            .send()
            .await
            .unwrap();
        *status.entry(r.status().as_u16()).or_default() += 1;
    }
    let five = status
        .iter()
        .filter(|(s, _)| **s >= 500)
        .map(|(_, n)| n)
        .sum::<usize>();
    report(
        &format!("POST /discord/interactions, signed (statuses {status:?})"),
        n,
        t,
        b,
        if five > 0 { ", 5xx answers" } else { "" },
    );

    let hire = json!({
        "id": "ev-1", "type": "hire", "occurred_at": "2026-11-25T09:00:00Z",
        "person": { "handle": "zoe", "name": "Zoe Park", "email": "zoe@acme.test",
                    "department": "Engineering", "role": "engineer", "manager": "bob",
                    "discord_id": "100000000000000099", "start_date": "2026-12-01" }
    });
    let leave = json!({
        "id": "ev-2", "type": "leave",
        "person": { "handle": "alice", "name": "Alice Kim", "email": "alice@acme.test",
                    "role": "designer", "last_day": "2026-12-31",
                    "effective_at": "2026-12-31T18:00:00Z" }
    });
    let hseeds: Vec<Vec<u8>> = [hire, leave]
        .iter()
        .map(|p| serde_json::to_vec(p).unwrap())
        .collect();
    let hdict = [
        "\"",
        "{",
        "}",
        ",",
        "null",
        "\"hire\"",
        "\"leave\"",
        "\"change\"",
        "2026-02-30",
        "9999-12-31T23:59:60Z",
        "\"manager\":\"",
        "\"handle\":\"",
        "\"id\":\"ev-",
    ];
    let (t, b) = (Instant::now(), PANICS.load(Ordering::SeqCst));
    let n = 1_500 * scale;
    let mut status: std::collections::BTreeMap<u16, usize> = Default::default();
    for k in 0..n {
        let s = &hseeds[rng.below(hseeds.len())];
        let mut body = mutate(&mut rng, s, &hdict);
        // Most events get a fresh id so the dedupe does not swallow them.
        if k % 2 == 0 {
            body = lossy(&body)
                .replace("ev-1", &format!("ev-{k}"))
                .into_bytes();
        }
        let ts = chrono::Utc::now().timestamp().to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(hr_secret.as_bytes()).unwrap();
        mac.update(ts.as_bytes());
        mac.update(b".");
        mac.update(&body);
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let r = client
            .post(format!("{base}/hr/events"))
            .header("content-type", "application/json")
            .header("x-qm-timestamp", ts)
            .header("x-qm-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        *status.entry(r.status().as_u16()).or_default() += 1;
    }
    let five = status
        .iter()
        .filter(|(s, _)| **s >= 500)
        .map(|(_, n)| n)
        .sum::<usize>();
    report(
        &format!("POST /hr/events, signed (statuses {status:?})"),
        n,
        t,
        b,
        if five > 0 { ", 5xx answers" } else { "" },
    );
    let people = store.people().await.unwrap().len();
    println!("people after the HR fuzz: {people}");
    println!(
        "total panics: {}; goal no panic: {}",
        PANICS.load(Ordering::SeqCst),
        if PANICS.load(Ordering::SeqCst) == 0 {
            "MET"
        } else {
            "MISSED"
        }
    );
    srv.stop().await;
}

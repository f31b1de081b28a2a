//! Figure 10: access reviews.
//!
//! 1. Launch: 20,000 people × 5 directory apps = 100,000 active grants (and as many
//!    memberships in the directory connector), SQLite. Timed from `/review start
//!    scope:connector:directory` (the service's command, as IT types it) until the review is
//!    `open` with every page in the outbox: the engine's snapshot included (the directory
//!    re-read, the items, the digest, one page per holder). Goal ≤ 5 s.
//! 2. Clicks on that campaign (its 20,000 pages with one reviewer), through `serve`'s signed
//!    `POST /discord/interactions`, at 50/s: Keep (a decision), Revoke (answered with the
//!    reason form), and the form submitted (the decision, a removal queued). Server-side
//!    latency (arrival → response, the route's middleware), as figure 1. Goal p99 ≤ 10 ms.
//!    `serve`'s outbox sender is delivering the campaign's pages meanwhile.
//! 3. DMs: a 2,000-item campaign (400 people × 5 apps, 50 managers reviewing 8 people each;
//!    a page holds 4 accesses, so 2 pages per person, 16 per manager) launched on `serve` against the fake Discord enforcing Discord's rate limits (global 50
//!    requests/s; message creation 5 per 5 s per channel; DM channel creation, assumed 5 per
//!    second): every page delivered once, the send rate, the 429s the bot got and the calls
//!    that went over a limit (goal: none).
//!
//! Run: `cargo bench --bench reviews` (`QM_PEOPLE` for part 1, default 20,000).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use quartermaster::config::{self, Config, DiscordConfig, DiscordMode};
use quartermaster::core::model::{AppName, GrantState, Handle, Person, ReviewId, ReviewState};
use quartermaster::core::ports::{
    Change, Grants, NewGrant, NewGrantSource, Outbox, People, ReviewRecords, SystemClock,
    UnitOfWork,
};
use quartermaster::core::service::Caller;
use quartermaster::server::{self, LogChat};
use quartermaster::store::SqlStore;
use quartermaster::wiring;
use serde_json::{Value, json};
use testkit::discord as fake;

use common::{ms, stats};

/// Erin, the bench people's manager (their reviewer in parts 1 and 2).
const ERIN: (&str, &str) = ("100000000000000001", "erin");
/// Erin's DM channel on the fake.
const ERIN_DM: &str = "700000000000000001";

#[tokio::main]
async fn main() {
    if !common::under_cargo_bench() {
        return;
    }
    println!("figure 10: access reviews");
    println!("{}", common::machine());
    let people = env_num("QM_PEOPLE", 20_000);
    let fake = fake::FakeDiscord::start().await;
    let config = discord_config(&fake);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("qm.db").display());
    let store = wiring::open_store(&config, &db).await.unwrap();
    let review = launch(&config, &store, people).await;
    clicks(&config, &store, &fake, review).await;
    dms().await;
}

fn env_num(k: &str, default: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn verdict(met: bool) -> &'static str {
    if met { "MET" } else { "MISSED" }
}

/// The example organisation talking to `fake` through the interactions endpoint.
fn discord_config(fake: &fake::FakeDiscord) -> Config {
    let mut config = config::load(None).unwrap();
    config.discord = Some(DiscordConfig {
        mode: DiscordMode::Interactions,
        application_id: fake::APP_ID.into(),
        public_key: Some(fake.public_key_hex()),
        token: "bench-bot-token".into(),
        api_base: Some(fake.base_url()),
        approvals_channel: None,
        guilds: Vec::new(),
    });
    config
}

/// The first five directory apps whose entitlement is their name.
fn directory_apps(config: &Config) -> Vec<AppName> {
    let apps: Vec<AppName> = config
        .org
        .apps
        .iter()
        .filter(|a| a.connector.as_str() == "directory" && a.entitlement == a.name.as_str())
        .map(|a| a.name.clone())
        .take(5)
        .collect();
    assert_eq!(apps.len(), 5, "the example has five directory apps to use");
    apps
}

/// `people` hold every app of `apps`: active grants, and the directory's memberships.
async fn seed_access(store: &SqlStore, people: &[Person], apps: &[AppName]) {
    store.seed_people(people).await.unwrap();
    let accounts: Vec<(String, String, String)> = people
        .iter()
        .map(|p| (p.handle.to_string(), p.email.to_string(), p.name.clone()))
        .collect();
    let acc: Vec<(&str, &str, &str)> = accounts
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    let mut members: Vec<(&str, &str)> = Vec::new();
    let mut grants = Vec::new();
    for p in people {
        for a in apps {
            members.push((p.handle.as_str(), a.as_str()));
            grants.push(NewGrant {
                person: p.handle.clone(),
                app: a.clone(),
                source: NewGrantSource::Birthright,
                state: GrantState::Active,
                granted_at: Some(chrono::Utc::now()),
                expires_at: None,
            });
        }
    }
    store
        .dir_grant_many("directory", &acc, &members)
        .await
        .unwrap();
    for chunk in grants.chunks(10_000) {
        store
            .commit(Change {
                new_grants: chunk.to_vec(),
                ..Change::default()
            })
            .await
            .unwrap();
    }
}

async fn it_admin(store: &SqlStore) -> Caller {
    let dana = store
        .person(&Handle::parse("dana").unwrap())
        .await
        .unwrap()
        .unwrap();
    Caller {
        person: dana,
        chat_id: None,
    }
}

/// Part 1: the launch over 100,000 grants; the review's id.
async fn launch(config: &Config, store: &SqlStore, n: usize) -> ReviewId {
    let apps = directory_apps(config);
    let people = common::people(n, "copywriter", "erin");
    let t = Instant::now();
    seed_access(store, &people, &apps).await;
    println!(
        "\n== launch: {} active grants ({n} people × 5 directory apps) and as many memberships, seeded in {:.1} s",
        n * 5,
        t.elapsed().as_secs_f64()
    );
    let (service, engine) = wiring::assemble(
        config,
        store.clone(),
        Arc::new(LogChat),
        Arc::new(SystemClock),
    )
    .unwrap();
    // As `serve`: the outbox's sender delivers later; the launch only writes the pages.
    service.deliver_in_background();
    let dana = it_admin(store).await;
    let before = store.outbox_counts().await.unwrap();
    let t = Instant::now();
    let answer = service
        .command_line(
            &dana,
            "/review start scope:connector:directory reviewer:manager due:14d",
        )
        .await;
    let asked = t.elapsed();
    let snapshots = engine.snapshot_reviews().await;
    let took = t.elapsed();
    let r = store.reviews_in(&[ReviewState::Open]).await.unwrap();
    assert_eq!((snapshots, r.len()), (1, 1), "{}", answer.text);
    let r = &r[0];
    let items = store.review_items(r.id).await.unwrap();
    let mut pages: Vec<_> = items.iter().map(|i| i.page).collect();
    pages.dedup();
    let after = store.outbox_counts().await.unwrap();
    println!(
        "/review start answered in {} ms: {}",
        ms(asked),
        answer.text
    );
    println!(
        "launch → open: {:.2} s ({} items, {} pages, {} messages written to the outbox; snapshot: {} grants, {} unrecorded, reads {:?})",
        took.as_secs_f64(),
        items.len(),
        pages.len(),
        after.pending - before.pending,
        r.snapshot.as_ref().map_or(0, |s| s.grants),
        r.snapshot.as_ref().map_or(0, |s| s.unrecorded),
        r.snapshot
            .as_ref()
            .map(|s| s.reads.clone())
            .unwrap_or_default()
    );
    println!(
        "goal launch over 100,000 grants <= 5 s: {}",
        verdict(took <= Duration::from_secs(5) && items.len() >= n * 5)
    );
    // Where the time goes: the reads a launch (and each timer tick) makes, alone.
    let handles: Vec<Handle> = people.iter().map(|p| p.handle.clone()).collect();
    let t = Instant::now();
    let _ = store.people().await.unwrap();
    let read_people = t.elapsed();
    let t = Instant::now();
    let _ = store.grants_of_people(&handles).await.unwrap();
    let read_grants = t.elapsed();
    let t = Instant::now();
    let _ = store.review_items(r.id).await.unwrap();
    let read_items = t.elapsed();
    let t = Instant::now();
    let _ = store.live_review_items().await.unwrap();
    let read_live = t.elapsed();
    println!(
        "reads alone: every person {} ms, their grants {} ms, the review's items {} ms, every live item {} ms",
        ms(read_people),
        ms(read_grants),
        ms(read_items),
        ms(read_live)
    );
    r.id
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

/// Posts `payloads` at `rate` per second; each answer.
async fn at_rate(
    client: &reqwest::Client,
    url: &str,
    rate: u32,
    payloads: Vec<Signed>,
) -> Vec<Value> {
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for (i, s) in payloads.into_iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / f64::from(rate))).await;
        let (client, url) = (client.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-signature-ed25519", s.sig)
                .header("x-signature-timestamp", s.ts)
                .body(s.body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.json::<Value>().await.unwrap()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// A review page in Erin's DMs, as the fake would hold it, with a Keep and a Revoke button
/// for `item`.
fn page_msg(item: i64) -> fake::Msg {
    fake::Msg {
        id: format!("{}", 600_000_000_000_000_000u64 + item as u64),
        channel_id: ERIN_DM.into(),
        content: format!("Access review page with item {item}"),
        components: json!([{ "type": 1, "components": [
            { "type": 2, "style": 3, "label": "Keep", "custom_id": format!("v1:rev:{item}:keep") },
            { "type": 2, "style": 4, "label": "Revoke", "custom_id": format!("v1:rev:{item}:revoke") },
        ]}]),
        edits: 0,
    }
}

/// Part 2: Keep, Revoke → form, form → decision, on the 100,000-item campaign.
async fn clicks(config: &Config, store: &SqlStore, fake: &fake::FakeDiscord, review: ReviewId) {
    const KEEPS: usize = 1000;
    const REVOKES: usize = 500;
    fake.with(|s| {
        s.dm_channels.insert(ERIN.0.into(), ERIN_DM.into());
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let srv = server::start(config, store.clone(), Arc::new(SystemClock), listener)
        .await
        .unwrap();
    let url = format!("http://{}/discord/interactions", srv.addr);
    fake.set_endpoint(url.clone());
    let metrics = srv.interactions.as_ref().unwrap().metrics().clone();
    let key = SigningKey::from_bytes(&fake::SEED);
    let client = reqwest::Client::new();
    let items = store.review_items(review).await.unwrap();
    // Keep: the first item of pages 0.., Revoke: the second item of other pages.
    let firsts: Vec<i64> = items
        .iter()
        .filter(|i| i.id == i.page)
        .map(|i| i.id.0)
        .collect();
    let seconds: Vec<i64> = items
        .iter()
        .filter(|i| i.id.0 == i.page.0 + 1)
        .map(|i| i.id.0)
        .collect();
    let keep: Vec<i64> = firsts.iter().copied().take(KEEPS).collect();
    let revoke: Vec<i64> = seconds.iter().copied().skip(KEEPS).take(REVOKES).collect();
    let sign_click = |item: i64, label: &str| sign(&key, &fake.click(ERIN, &page_msg(item), label));
    // Warm-up: 20 Keeps on pages not used after.
    let warm: Vec<Signed> = firsts[KEEPS + REVOKES..KEEPS + REVOKES + 20]
        .iter()
        .map(|i| sign_click(*i, "Keep"))
        .collect();
    at_rate(&client, &url, 50, warm).await;

    println!(
        "\n== clicks on the {}-item campaign ({} pages, one reviewer), 50/s, serve's outbox sending its pages meanwhile",
        items.len(),
        firsts.len()
    );
    let before = metrics.recent_latencies().len();
    let keeps: Vec<Signed> = keep.iter().map(|i| sign_click(*i, "Keep")).collect();
    let answers = at_rate(&client, &url, 50, keeps).await;
    let keep_lat = metrics.recent_latencies().split_off(before);
    let kept_answers = answers
        .iter()
        .filter(|v| v["type"] == 4 || v["type"] == 7)
        .count();

    let before = metrics.recent_latencies().len();
    let revokes: Vec<Signed> = revoke.iter().map(|i| sign_click(*i, "Revoke")).collect();
    let answers = at_rate(&client, &url, 50, revokes).await;
    let form_lat = metrics.recent_latencies().split_off(before);
    let forms: Vec<String> = answers
        .iter()
        .filter(|v| v["type"] == 9)
        .map(|v| v["data"]["custom_id"].as_str().unwrap().to_owned())
        .collect();
    let n_forms = forms.len();
    let submits: Vec<Signed> = revoke
        .iter()
        .zip(&forms)
        .map(|(i, cid)| {
            sign(
                &key,
                &fake.modal_submit(ERIN, &page_msg(*i), cid, &[("reason", "left the team")]),
            )
        })
        .collect();
    let before = metrics.recent_latencies().len();
    at_rate(&client, &url, 50, submits).await;
    let submit_lat = metrics.recent_latencies().split_off(before);
    let after: Vec<_> = store.review_items(review).await.unwrap();
    let decided = |ids: &[i64], state: &str| {
        after
            .iter()
            .filter(|i| ids.contains(&i.id.0) && i.state.as_str() == state)
            .count()
    };
    for (name, lat) in [
        ("Keep", &keep_lat),
        ("Revoke", &form_lat),
        ("form", &submit_lat),
    ] {
        println!("{name}: slowest {}", slowest(lat));
    }
    let (ks, fs, ss) = (stats(keep_lat), stats(form_lat), stats(submit_lat));
    println!(
        "Keep → decision, server-side:      {ks} ({} answered, {} kept)",
        kept_answers,
        decided(&keep, "kept")
    );
    println!(
        "Revoke → reason form, server-side: {fs} ({n_forms} of {REVOKES} answered with the form)"
    );
    println!(
        "form → decision, server-side:      {ss} ({} of {REVOKES} decided: revoking or revoked)",
        decided(&revoke, "revoking") + decided(&revoke, "revoked") + decided(&revoke, "unverified")
    );
    let worst = ks.p99.max(fs.p99).max(ss.p99);
    println!(
        "goal click ack p99 <= 10 ms server-side: {} (worst p99 {} ms)",
        verdict(worst <= Duration::from_millis(10)),
        ms(worst)
    );
    srv.stop().await;
}

/// The ten slowest of `lat` (in arrival order, one every 20 ms) with when they arrived, to
/// tell a steady tail from a few stalls.
fn slowest(lat: &[Duration]) -> String {
    let mut at: Vec<(usize, Duration)> = lat.iter().copied().enumerate().collect();
    at.sort_by_key(|(_, d)| std::cmp::Reverse(*d));
    at.iter()
        .take(10)
        .map(|(i, d)| format!("{} ms at {:.2} s", ms(*d), *i as f64 / 50.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Part 3: a 2,000-item campaign's DMs through the fake enforcing Discord's limits.
async fn dms() {
    const HOLDERS: usize = 400;
    const MANAGERS: usize = 50;
    let fake = fake::FakeDiscord::start().await;
    let config = discord_config(&fake);
    let apps = directory_apps(&config);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("qm.db").display());
    let store = wiring::open_store(&config, &db).await.unwrap();
    let managers: Vec<Person> = (0..MANAGERS)
        .map(|j| common::person(100_000 + j, "copywriter", "erin"))
        .collect();
    let mut people: Vec<Person> = (0..HOLDERS)
        .map(|i| {
            let m = managers[i % MANAGERS].handle.to_string();
            common::person(i, "copywriter", &m)
        })
        .collect();
    store.seed_people(&managers).await.unwrap();
    seed_access(&store, &people, &apps).await;
    people.extend(managers.iter().cloned());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let srv = server::start(&config, store.clone(), Arc::new(SystemClock), listener)
        .await
        .unwrap();
    fake.set_endpoint(format!("http://{}/discord/interactions", srv.addr));
    let limits = fake::Limits::default();
    fake.enforce_rate_limits(limits);
    let calls_before = fake.calls().len();
    println!(
        "\n== DMs: {} items ({HOLDERS} people × 5 apps, {MANAGERS} managers reviewing {} each), fake Discord enforcing: global {}/s, message creates {} per {:?} per channel, DM channel opens {} per {:?}",
        HOLDERS * 5,
        HOLDERS / MANAGERS,
        limits.global_per_sec,
        limits.messages.0,
        limits.messages.1,
        limits.dm_channels.0,
        limits.dm_channels.1
    );
    let dana = it_admin(&store).await;
    let t = Instant::now();
    let answer = srv
        .service
        .command_line(
            &dana,
            "/review start scope:connector:directory reviewer:manager due:14d",
        )
        .await;
    let mut opened = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if opened.is_none()
            && !store
                .reviews_in(&[ReviewState::Open])
                .await
                .unwrap()
                .is_empty()
        {
            opened = Some(t.elapsed());
        }
        let c = store.outbox_counts().await.unwrap();
        if opened.is_some() && c.pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered within 10 minutes: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = t.elapsed();
    let opened = opened.unwrap();
    let calls: Vec<fake::Call> = fake.calls().split_off(calls_before);
    let creates: Vec<&fake::Call> = calls
        .iter()
        .filter(|c| c.method == "POST" && c.path.ends_with("/messages"))
        .collect();
    let made = creates.iter().filter(|c| c.status == 200).count();
    let got_429 = calls.iter().filter(|c| c.status == 429).count();
    let first = creates.iter().map(|c| c.at).min().unwrap();
    let last = creates
        .iter()
        .filter(|c| c.status == 200)
        .map(|c| c.at)
        .max()
        .unwrap();
    let sending = last - first;
    // Every page reached its reviewer, once.
    let review = store.reviews_in(&[ReviewState::Open]).await.unwrap();
    let items = store.review_items(review[0].id).await.unwrap();
    let mut all_pages: Vec<_> = items
        .iter()
        .map(|i| (i.of_record.clone(), i.page))
        .collect();
    all_pages.dedup();
    let mut pages_ok = true;
    let mut pages = 0;
    for m in &managers {
        let id = m.discord_id.clone().unwrap();
        let got: Vec<String> = fake.dms(&id).into_iter().map(|m| m.content).collect();
        let mut unique = got.clone();
        unique.sort();
        unique.dedup();
        pages += got.len();
        let expected = all_pages.iter().filter(|(h, _)| *h == m.handle).count();
        pages_ok &= got.len() == expected && unique.len() == got.len();
    }
    let counts = store.outbox_counts().await.unwrap();
    let v = fake.rate_violations();
    println!("/review start: {}", answer.text);
    println!(
        "launch → open {:.2} s; open → every page delivered {:.2} s; first to last message {:.2} s",
        opened.as_secs_f64(),
        (total - opened).as_secs_f64(),
        sending.as_secs_f64()
    );
    println!(
        "messages sent: {made} ({pages} pages in the reviewers' DMs, each once: {pages_ok}); {} REST calls; send rate {:.1} messages/s ({:.1} calls/s)",
        calls.len(),
        made as f64 / sending.as_secs_f64(),
        calls.len() as f64 / (total - opened).as_secs_f64()
    );
    println!(
        "429s received: {got_429}; calls over a limit: {} (global {}, per-route {}); outbox: {} sent, {} failed, {} retried (each time a message is held back for its bucket counts as a retry; a round puts its held-back rows back in one write)",
        v.total(),
        v.global,
        v.route,
        counts.sent,
        counts.failed,
        counts.retried
    );
    println!(
        "goal DMs within Discord's limits (no call over a limit, every page once): {}",
        verdict(v.total() == 0 && pages_ok && pages == all_pages.len())
    );
    srv.stop().await;
}

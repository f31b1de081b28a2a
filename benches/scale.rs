//! Figure 9: scale. An organisation of `QM_PEOPLE` people (default 50,000), `QM_APPS` apps
//! (500) and `QM_GRANTS` grants (1,000,000) on SQLite. The catalog is generated config TOML;
//! people, grants and the requests behind the time-bound grants are bulk SQL (recursive
//! CTEs, one transaction). A tenth of the grants are time-bound (`QM_TIMED`): `QM_EXPIRING`
//! of them (10,000) end within one hour of the expiry tick's clock, the rest in 2 to 90 days.
//!
//! Phases, each printed with its goal:
//! 1. `serve`, the real binary (as figure 4): start to `/healthz` answering, then its RSS
//!    (sampled every 50 ms, and the kernel's peak `VmHWM`) at rest and while it answers
//!    signed `/request`, `/access` and `/offboard` interactions at a steady rate.
//! 2. In process (as figure 1, `server::start`): acknowledgement of signed `/request`
//!    commands through the fake Discord at 50/s, server-side (the route's own recording);
//!    then `/access` (each person their own) and `/offboard` (an IT admin, up to the
//!    Confirm prompt), one at a time, server-side. Then the store reads the core makes on
//!    these paths, each timed alone, to say where the time goes.
//! 3. The expiry tick (`Service::tick` on a clock moved past the 10,000 ends), and a second
//!    tick with nothing due (the cost every scheduler round pays); then the rows it wrote,
//!    written again with plain statements as a reference. `QM_DROP_EXPIRY_INDEX=1` drops
//!    the index `grants_by_expiry` first (diagnosis: the grant updates then go by id).
//! 4. `quartermaster import people` (the real binary) of `QM_IMPORT_PEOPLE` people (default
//!    `QM_PEOPLE`) into a fresh database while `serve` runs on it (its workers carry out the
//!    birthrights); the `-wal` file's size is sampled every 50 ms. `QM_IMPORT_ALONE=1` also
//!    runs the import with no `serve`; `QM_IMPORT_TRUNCATE_MS=N` also runs it alone while
//!    another connection runs `PRAGMA wal_checkpoint(TRUNCATE)` every N ms.
//!
//! `QM_PHASES` picks phases (default `1234`); `QM_KEEP=1` keeps the temporary folder.
//!
//! Run: `cargo bench --bench scale` (about 15 minutes at full size); a quick look:
//! `QM_PEOPLE=2000 QM_GRANTS=40000 QM_EXPIRING=1000 cargo bench --bench scale`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit::discord as fake;

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use quartermaster::config;
use quartermaster::core::model::Handle;
use quartermaster::core::ports::{
    ActionQueue, Grants, ManualClock, People, Plans, Requests, SystemClock,
};
use quartermaster::server::{self, LogChat};
use quartermaster::wiring;
use serde_json::{Value, json};
use sqlx::Connection;

use common::{Stats, ms, stats};

const BIN: &str = env!("CARGO_BIN_EXE_quartermaster");
const TOKEN: &str = "qm-bench-scale-discord-token";
const TOKEN_ENV: &str = "QM_SCALE_DISCORD_TOKEN";
/// The IT admin who offboards (Discord id, handle).
const IVY: (&str, &str) = ("300000000000000001", "ivy");
const ROLES: usize = 10;
const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;

fn env_usize(k: &str, default: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The organisation's size.
#[derive(Clone, Copy)]
struct Sizes {
    people: usize,
    apps: usize,
    grants: usize,
    /// Time-bound grants (each with the granted request behind it).
    timed: usize,
    /// Time-bound grants ending within the hour before the expiry tick.
    expiring: usize,
}

impl Sizes {
    fn from_env() -> Self {
        let people = env_usize("QM_PEOPLE", 50_000).max(10);
        let apps = env_usize("QM_APPS", 500).max(2 * ROLES);
        let grants = env_usize("QM_GRANTS", 1_000_000);
        let timed = env_usize("QM_TIMED", grants / 10).min(grants);
        let expiring = env_usize("QM_EXPIRING", 10_000).min(timed);
        let s = Self {
            people,
            apps,
            grants,
            timed,
            expiring,
        };
        assert!(
            s.slots() < apps,
            "QM_GRANTS / QM_PEOPLE must stay below QM_APPS (one live grant per person and app)"
        );
        s
    }

    /// Grants per person (rounded up): grant `g` goes to person `g % people`, app
    /// `(person + g / people) % apps`.
    fn slots(&self) -> usize {
        self.grants.div_ceil(self.people)
    }
}

fn handle(i: usize) -> String {
    format!("b{i:05}")
}

// ------------------------------------------------------------------------------ set-up

/// The catalog and the few people the config names; `[discord]` when `discord` gives the
/// fake's (public key, base URL).
fn config_toml(s: &Sizes, listen: u16, discord: Option<(&str, &str)>) -> String {
    let mut t = format!(
        r#"
[organization]
name = "Scaleco"
it_admins = ["ivy"]

[[person]]
handle = "erin"
name = "Erin Boss"
email = "erin@scale.test"
department = "Executive"
role = "r0"
discord_id = "300000000000000002"

[[person]]
handle = "ivy"
name = "Ivy Admin"
email = "ivy@scale.test"
department = "IT"
role = "r0"
manager = "erin"
discord_id = "{ivy}"

[[connector]]
name = "directory"
kind = "directory"

[http]
listen = "127.0.0.1:{listen}"
"#,
        ivy = IVY.0
    );
    if let Some((key, base)) = discord {
        t.push_str(&format!(
            r#"
[discord]
mode = "interactions"
application_id = "{app}"
public_key = "{key}"
token_env = "{TOKEN_ENV}"
api_base = "{base}"
"#,
            app = fake::APP_ID
        ));
    }
    for r in 0..ROLES {
        t.push_str(&format!(
            "\n[[role]]\nname = \"r{r}\"\napps = [\"app{:03}\", \"app{:03}\"]\n",
            2 * r,
            2 * r + 1
        ));
    }
    for j in 0..s.apps {
        t.push_str(&format!(
            "\n[[app]]\nname = \"app{j:03}\"\ndisplay = \"App {j}\"\nconnector = \"directory\"\n\
             owners = [\"ivy\"]\napprovals = [\"manager\"]\nmax_duration = \"90d\"\n"
        ));
    }
    t
}

fn parse_config(text: &str, dir: &Path) -> config::Config {
    config::parse(text, dir, &|k| (k == TOKEN_ENV).then(|| TOKEN.to_owned()))
        .unwrap_or_else(|e| panic!("bench config is invalid:\n{e}"))
}

const SEED_PEOPLE: &str = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n \
     WHERE i + 1 < ?1) \
     INSERT INTO people (handle, name, email, department, role, manager, discord_id, status, \
     timezone) \
     SELECT printf('b%05d', i), 'Bench Person ' || i, printf('b%05d@scale.test', i), 'Bench', \
     'r' || (i % ?2), CASE WHEN i = 0 THEN 'erin' ELSE printf('b%05d', (i - 1) / 10) END, \
     printf('2%017d', i), 'active', NULL FROM n";

/// Binds: timed, people, apps, t0, day.
const SEED_REQUESTS: &str = "WITH RECURSIVE n(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM n \
     WHERE g + 1 < ?1) \
     INSERT INTO requests (id, requester, app, reason, duration_secs, kind, extends_grant, \
     state, current_step, grant_id, created_at, updated_at, version, prompted_step) \
     SELECT g + 1, printf('b%05d', g % ?2), printf('app%03d', (g % ?2 + g / ?2) % ?3), \
     'bench', NULL, 'new', NULL, 'granted', NULL, g + 1, ?4 - 30 * ?5, ?4 - 30 * ?5, 1, NULL \
     FROM n";

/// Binds: grants, people, apps, t0, timed, expiring, hour, day. The expiring ones end in
/// `[t0 + 3 h, t0 + 4 h)`, granted an hour before (so their warning window, the last quarter,
/// opens after `t0 + 2 h 45`); the other time-bound ones end in `[t0 + 2 d, t0 + 90 d)`.
const SEED_GRANTS: &str = "WITH RECURSIVE n(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM n \
     WHERE g + 1 < ?1) \
     INSERT INTO grants (id, person, app, source, request_id, state, granted_at, expires_at, \
     warned) \
     SELECT g + 1, printf('b%05d', g % ?2), printf('app%03d', (g % ?2 + g / ?2) % ?3), \
     CASE WHEN g < ?5 THEN 'request' ELSE 'birthright' END, \
     CASE WHEN g < ?5 THEN g + 1 END, 'active', \
     CASE WHEN g < ?6 THEN ?4 + 2 * ?7 + g * ?7 / ?6 ELSE ?4 - 30 * ?8 END, \
     CASE WHEN g < ?6 THEN ?4 + 3 * ?7 + g * ?7 / ?6 \
          WHEN g < ?5 THEN ?4 + 2 * ?8 + (g - ?6) * (88 * ?8 / max(?5 - ?6, 1)) END, \
     0 FROM n";

/// Fills the database (already migrated, config people seeded) in one transaction.
async fn seed(url: &str, s: &Sizes, t0_us: i64) {
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    let mut tx = c.begin().await.unwrap();
    let t = Instant::now();
    sqlx::query(SEED_PEOPLE)
        .bind(s.people as i64)
        .bind(ROLES as i64)
        .execute(&mut *tx)
        .await
        .unwrap();
    let people = t.elapsed();
    sqlx::query(SEED_REQUESTS)
        .bind(s.timed as i64)
        .bind(s.people as i64)
        .bind(s.apps as i64)
        .bind(t0_us)
        .bind(DAY_US)
        .execute(&mut *tx)
        .await
        .unwrap();
    let requests = t.elapsed();
    if s.grants > 0 {
        sqlx::query(SEED_GRANTS)
            .bind(s.grants as i64)
            .bind(s.people as i64)
            .bind(s.apps as i64)
            .bind(t0_us)
            .bind(s.timed as i64)
            .bind(s.expiring.max(1) as i64)
            .bind(HOUR_US)
            .bind(DAY_US)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    println!(
        "seeded in {:.1} s (people {:.1} s, requests {:.1} s, grants {:.1} s)",
        t.elapsed().as_secs_f64(),
        people.as_secs_f64(),
        (requests - people).as_secs_f64(),
        (t.elapsed() - requests).as_secs_f64()
    );
}

fn file_mb(p: &Path) -> f64 {
    std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 / 1e6)
}

// ------------------------------------------------------------------------------ load

fn sign(key: &SigningKey, payload: &Value) -> (Vec<u8>, String, String) {
    let body = serde_json::to_vec(payload).unwrap();
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut msg = ts.as_bytes().to_vec();
    msg.extend_from_slice(&body);
    (body, hex::encode(key.sign(&msg).to_bytes()), ts)
}

/// Posts one signed interaction; the client-side time and the answer.
async fn post(
    client: &reqwest::Client,
    url: &str,
    key: &SigningKey,
    p: &Value,
) -> (Duration, Value) {
    let (body, sig, ts) = sign(key, p);
    let t = Instant::now();
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-signature-ed25519", sig)
        .header("x-signature-timestamp", ts)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{status}: {v}");
    (t.elapsed(), v)
}

/// Posts `payloads` at `rate` per second (each in a task of its own, so a slow answer does not
/// hold the next back), or one after the other when `rate` is `None`.
async fn paced(
    client: &reqwest::Client,
    url: &str,
    key: &SigningKey,
    payloads: Vec<Value>,
    rate: Option<f64>,
) -> Vec<(Duration, Value)> {
    let Some(rate) = rate else {
        let mut out = Vec::new();
        for p in &payloads {
            out.push(post(client, url, key, p).await);
        }
        return out;
    };
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for (i, p) in payloads.into_iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        let (client, url, key) = (client.clone(), url.to_owned(), key.clone());
        tasks.push(tokio::spawn(
            async move { post(&client, &url, &key, &p).await },
        ));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// The seconds of a paced phase with the most answers slower than `over` (client-side):
/// slow answers bunched in a few seconds point at something periodic (a scheduler round, a
/// checkpoint); spread evenly, at the request's own path.
fn slow_seconds(a: &[(Duration, Value)], rate: f64, over: Duration) {
    let mut by: std::collections::BTreeMap<usize, (usize, Duration)> = Default::default();
    for (i, (d, _)) in a.iter().enumerate() {
        if *d > over {
            let e = by.entry((i as f64 / rate) as usize).or_default();
            e.0 += 1;
            e.1 = e.1.max(*d);
        }
    }
    let total: usize = by.values().map(|v| v.0).sum();
    let mut worst: Vec<_> = by.into_iter().collect();
    worst.sort_by_key(|w| std::cmp::Reverse(w.1.0));
    let shown: Vec<String> = worst
        .iter()
        .take(8)
        .map(|(s, (n, m))| format!("s{s}: {n} (max {} ms)", ms(*m)))
        .collect();
    println!(
        "  {total} answers over {} ms, in {} seconds of the phase; the worst: {}",
        over.as_millis(),
        worst.len(),
        shown.join(", ")
    );
}

/// `/request` of an app person `i` holds no grant of.
fn request_cmd(f: &fake::FakeDiscord, s: &Sizes, i: usize) -> Value {
    let i = i % s.people;
    let app = format!("app{:03}", (i + s.slots()) % s.apps);
    f.command(
        (&common::discord_id(i), &handle(i)),
        "request",
        json!([
            { "name": "app", "type": 3, "value": app },
            { "name": "reason", "type": 3, "value": "benchmark" },
        ]),
    )
}

/// `/access` by person `i`, of their own access.
fn access_cmd(f: &fake::FakeDiscord, s: &Sizes, i: usize) -> Value {
    let i = i % s.people;
    f.command((&common::discord_id(i), &handle(i)), "access", json!([]))
}

/// `/offboard user:<person i>` by the IT admin.
fn offboard_cmd(f: &fake::FakeDiscord, s: &Sizes, i: usize) -> Value {
    let i = i % s.people;
    let id = common::discord_id(i);
    f.command_with_user(
        IVY,
        "offboard",
        json!([{ "name": "user", "type": 6, "value": id }]),
        (&id, &handle(i)),
    )
}

fn kinds(answers: &[(Duration, Value)]) -> String {
    let replied = answers.iter().filter(|(_, v)| v["type"] == 4).count();
    let deferred = answers.iter().filter(|(_, v)| v["type"] == 5).count();
    format!("{replied} replied (type 4), {deferred} deferred (type 5)")
}

fn verdict(met: bool) -> &'static str {
    if met { "MET" } else { "MISSED" }
}

// ------------------------------------------------------------------------------ phase 1

fn sigterm(c: &Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(c.id().to_string())
        .status();
}

/// Polls `/healthz` every 5 ms; the time from `since` to the first 200.
async fn healthy(listen: u16, since: Instant, child: &mut Child) -> Duration {
    let http = reqwest::Client::new();
    loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{listen}/healthz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            && r.status() == 200
        {
            return since.elapsed();
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!("serve exited before it was healthy: {st}");
        }
        assert!(
            since.elapsed() < Duration::from_secs(300),
            "serve did not answer /healthz"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Samples a process's RSS every 50 ms into the maximum, until stopped.
struct RssSampler {
    max_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let max_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (max_kib.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some((rss, _)) = common::rss_kib(pid) {
                    m.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self { max_kib, stop }
    }
    fn max_mb(&self) -> f64 {
        self.max_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn rss_now(pid: u32) -> String {
    common::rss_kib(pid).map_or("?".into(), |(r, h)| {
        format!(
            "RSS {:.1} MB (peak {:.1} MB)",
            r as f64 / 1024.0,
            h as f64 / 1024.0
        )
    })
}

async fn phase_serve(dir: &Path, url: &str, s: &Sizes, f: &fake::FakeDiscord, key: &SigningKey) {
    let n_req = env_usize("QM_SERVE_REQUESTS", 200);
    let n_acc = env_usize("QM_SERVE_ACCESS", 100);
    let n_off = env_usize("QM_SERVE_OFFBOARD", 20);
    println!("\n== 1. serve (the real binary): start to healthy, RSS ==");
    let listen = testkit::scim::free_port();
    let cfg = dir.join("serve.toml");
    std::fs::write(
        &cfg,
        config_toml(s, listen, Some((&f.public_key_hex(), &f.base_url()))),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let t = Instant::now();
    let mut child = Command::new(PathBuf::from(BIN))
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .arg("--db")
        .arg(url)
        .env(TOKEN_ENV, TOKEN)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let pid = child.id();
    let rss = RssSampler::start(pid);
    let took = healthy(listen, t, &mut child).await;
    println!(
        "start to healthy: {:.3} s; {}",
        took.as_secs_f64(),
        rss_now(pid)
    );
    println!(
        "goal start to healthy <= 3 s: {} ({:.3} s)",
        verdict(took <= Duration::from_secs(3)),
        took.as_secs_f64()
    );
    // The scheduler's first round runs at start, in the background.
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!(
        "5 s after healthy (first scheduler round done): {}",
        rss_now(pid)
    );
    let at_rest = rss.max_mb();

    let ours = format!("http://127.0.0.1:{listen}/discord/interactions");
    let client = reqwest::Client::new();
    let base = s.people / 2;
    let reqs: Vec<Value> = (0..n_req).map(|k| request_cmd(f, s, base + k)).collect();
    let a = paced(&client, &ours, key, reqs, Some(20.0)).await;
    let st = stats(a.iter().map(|x| x.0).collect());
    println!(
        "/request at 20/s, client-side: {st}; {}; {}",
        kinds(&a),
        rss_now(pid)
    );
    let acc: Vec<Value> = (0..n_acc).map(|k| access_cmd(f, s, base + 7 * k)).collect();
    let a = paced(&client, &ours, key, acc, Some(10.0)).await;
    let st = stats(a.iter().map(|x| x.0).collect());
    println!(
        "/access at 10/s, client-side: {st}; {}; {}",
        kinds(&a),
        rss_now(pid)
    );
    let off: Vec<Value> = (0..n_off)
        .map(|k| offboard_cmd(f, s, base + 11 * k + 3))
        .collect();
    let a = paced(&client, &ours, key, off, Some(2.0)).await;
    let st = stats(a.iter().map(|x| x.0).collect());
    println!(
        "/offboard at 2/s, client-side: {st}; {}; {}",
        kinds(&a),
        rss_now(pid)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (now_kib, hwm_kib) = common::rss_kib(pid).unwrap();
    let peak = (hwm_kib as f64 / 1024.0).max(rss.max_mb());
    println!(
        "serve RSS: at rest (start + first round) max {at_rest:.1} MB; after the load {:.1} MB; \
         peak (VmHWM) {peak:.1} MB",
        now_kib as f64 / 1024.0
    );
    println!(
        "goal serve RSS <= 150 MB: {} (peak {peak:.1} MB)",
        verdict(peak <= 150.0)
    );
    sigterm(&child);
    let _ = child.wait();
    drop(rss);
}

// ------------------------------------------------------------------------------ phase 2

/// Times `f` `n` times; the median.
async fn timed<T, F, Fut>(n: usize, mut f: F) -> (Duration, T)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut v = Vec::new();
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        last = Some(f().await);
        v.push(t.elapsed());
    }
    (stats(v).p50, last.unwrap())
}

/// The store reads on the paths measured, each alone.
async fn store_reads(
    store: &quartermaster::store::SqlStore,
    s: &Sizes,
    tick_at: chrono::DateTime<chrono::Utc>,
) {
    let who = Handle::parse(&handle(s.people / 3)).unwrap();
    let who = &who;
    println!("store reads (median of 5, alone):");
    let (d, n) = timed(5, || async move { store.people().await.unwrap().len() }).await;
    println!("  people() [Service::directory]: {} ms, {n} rows", ms(d));
    let (d, n) = timed(5, || async move {
        store
            .unwarned_expiring_grants(chrono::Utc::now() + chrono::TimeDelta::hours(24))
            .await
            .unwrap()
            .len()
    })
    .await;
    println!(
        "  unwarned_expiring_grants() [tick: warn_expiring]: {} ms, {n} rows",
        ms(d)
    );
    let (d, n) = timed(5, || async move {
        store.grants_ending_by(tick_at).await.unwrap().len()
    })
    .await;
    println!(
        "  grants_ending_by(tick clock) [tick]: {} ms, {n} rows",
        ms(d)
    );
    let (d, n) = timed(
        5,
        || async move { store.open_requests().await.unwrap().len() },
    )
    .await;
    println!(
        "  open_requests() [tick, /approvals]: {} ms, {n} rows",
        ms(d)
    );
    let (d, n) = timed(
        5,
        || async move { store.grants_of(who).await.unwrap().len() },
    )
    .await;
    println!("  grants_of(one person): {} ms, {n} rows", ms(d));
    let (d, n) = timed(
        5,
        || async move { store.requests_by(who).await.unwrap().len() },
    )
    .await;
    println!("  requests_by(one person): {} ms, {n} rows", ms(d));
    let (d, n) = timed(
        5,
        || async move { store.actions_of(who).await.unwrap().len() },
    )
    .await;
    println!("  actions_of(one person): {} ms, {n} rows", ms(d));
    let (d, n) = timed(
        5,
        || async move { store.plans_of(who).await.unwrap().len() },
    )
    .await;
    println!("  plans_of(one person): {} ms, {n} rows", ms(d));
    let (d, _) = timed(5, || async move { store.person(who).await.unwrap() }).await;
    println!("  person(one handle): {} ms", ms(d));
}

fn server_side(metrics: &quartermaster::http::ops::Metrics, before: usize) -> Stats {
    stats(metrics.recent_latencies().split_off(before))
}

async fn phase_in_process(
    dir: &Path,
    url: &str,
    s: &Sizes,
    f: &fake::FakeDiscord,
    key: &SigningKey,
    tick_at: chrono::DateTime<chrono::Utc>,
) {
    let n_ack = env_usize("QM_ACKS", 1000);
    let n_views = env_usize("QM_VIEWS", 200);
    println!(
        "\n== 2. in process (server::start, as figure 1): acknowledgement, /access, /offboard =="
    );
    let cfg = parse_config(
        &config_toml(s, 0, Some((&f.public_key_hex(), &f.base_url()))),
        dir,
    );
    let store = wiring::open_store(&cfg, url).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let srv = server::start(&cfg, store.clone(), Arc::new(SystemClock), listener)
        .await
        .unwrap();
    let ours = format!("http://{}/discord/interactions", srv.addr);
    f.set_endpoint(ours.clone());
    let metrics = srv.interactions.as_ref().unwrap().metrics().clone();
    let client = reqwest::Client::new();

    // Warm-up (not counted), after the scheduler's first round.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let warm: Vec<Value> = (0..50).map(|k| request_cmd(f, s, k)).collect();
    paced(&client, &ours, key, warm, Some(50.0)).await;

    let before = metrics.recent_latencies().len();
    let reqs: Vec<Value> = (0..n_ack).map(|k| request_cmd(f, s, 100 + k)).collect();
    let a = paced(&client, &ours, key, reqs, Some(50.0)).await;
    let st = server_side(&metrics, before);
    println!(
        "/request at 50/s ({n_ack}), server-side: {st}; {}",
        kinds(&a)
    );
    println!("  client-side: {}", stats(a.iter().map(|x| x.0).collect()));
    slow_seconds(&a, 50.0, Duration::from_millis(10));
    println!(
        "goal acknowledgement p99 <= 10 ms server-side: {} (p99 {} ms)",
        verdict(st.p99 <= Duration::from_millis(10)),
        ms(st.p99)
    );

    let before = metrics.recent_latencies().len();
    let acc: Vec<Value> = (0..n_views).map(|k| access_cmd(f, s, 13 * k + 5)).collect();
    let a = paced(&client, &ours, key, acc, None).await;
    let st = server_side(&metrics, before);
    println!(
        "/access one at a time ({n_views}), server-side: {st}; {}",
        kinds(&a)
    );
    println!(
        "goal /access p99 <= 20 ms: {} (p99 {} ms)",
        verdict(st.p99 <= Duration::from_millis(20)),
        ms(st.p99)
    );

    let before = metrics.recent_latencies().len();
    let off: Vec<Value> = (0..n_views)
        .map(|k| offboard_cmd(f, s, 17 * k + 1))
        .collect();
    let a = paced(&client, &ours, key, off, None).await;
    let st = server_side(&metrics, before);
    let prompts = a
        .iter()
        .filter(|(_, v)| v.to_string().contains("Confirm"))
        .count();
    println!(
        "/offboard one at a time ({n_views}), server-side: {st}; {}; {prompts} with the Confirm \
         prompt",
        kinds(&a)
    );
    println!(
        "goal offboarding plan p99 <= 20 ms: {} (p99 {} ms)",
        verdict(st.p99 <= Duration::from_millis(20)),
        ms(st.p99)
    );
    srv.stop().await;
    store_reads(&store, s, tick_at).await;
    store.close().await;
}

// ------------------------------------------------------------------------------ phase 3

async fn phase_tick(dir: &Path, url: &str, s: &Sizes, tick_at: chrono::DateTime<chrono::Utc>) {
    println!(
        "\n== 3. the expiry tick: {} grants ended in the hour before the clock ==",
        s.expiring
    );
    if env_usize("QM_DROP_EXPIRY_INDEX", 0) == 1 {
        // Diagnosis: without `grants_by_expiry`, SQLite finds the grant an update names by
        // its id (with it, `... WHERE id IN (...) AND state = ?` walks every grant in that
        // state); the expiry queries then scan the table once per tick instead.
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query("DROP INDEX grants_by_expiry")
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        println!("(grants_by_expiry dropped for this run: QM_DROP_EXPIRY_INDEX=1)");
    }
    let cfg = parse_config(&config_toml(s, 0, None), dir);
    let store = wiring::open_store(&cfg, url).await.unwrap();
    let due = store.grants_ending_by(tick_at).await.unwrap().len();
    let clock = Arc::new(ManualClock::new(tick_at));
    let (service, _engine) =
        wiring::assemble(&cfg, store.clone(), Arc::new(LogChat), clock.clone()).unwrap();
    // As in `serve`: messages leave through the outbox sender, not the tick.
    service.deliver_in_background();
    let queued = store.queue_depth().await.unwrap();
    let t = Instant::now();
    let done = service.tick().await.unwrap();
    let took = t.elapsed();
    let queued = store.queue_depth().await.unwrap() - queued;
    let t = Instant::now();
    let idle = service.tick().await.unwrap();
    let fixed = t.elapsed();
    println!(
        "tick: {due} grants due, {done} things done, {queued} revocations queued, in {:.3} s \
         ({:.0} µs per grant after the fixed cost)",
        took.as_secs_f64(),
        (took.saturating_sub(fixed)).as_secs_f64() * 1e6 / done.max(1) as f64
    );
    println!(
        "second tick (nothing due, {idle} done): {:.3} s: the fixed cost of every scheduler round",
        fixed.as_secs_f64()
    );
    println!(
        "goal expiry tick over {} grants <= 1 s: {} ({:.3} s)",
        s.expiring,
        verdict(took <= Duration::from_secs(1)),
        took.as_secs_f64()
    );
    store.close().await;
    tick_reference(url, s.expiring).await;
}

/// The rows the tick writes per expired grant (grant and request updated; an action, an
/// outbox message and two audit rows inserted), written with plain statements for `n` of the
/// grants it revoked: once in one transaction for all, once in a transaction per grant. The
/// floor of a batched tick, and what one transaction per grant costs by itself.
async fn tick_reference(url: &str, n: usize) {
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .unwrap()
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    let rows: Vec<(i64, String, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, person, app, request_id FROM grants WHERE state = 'revoking' ORDER BY id \
         LIMIT ?",
    )
    .bind(n as i64)
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let half = rows.len() / 2;
    let t = Instant::now();
    let mut tx = c.begin().await.unwrap();
    for g in &rows[..half] {
        seq += 2;
        reference_rows(&mut tx, g, seq).await;
    }
    tx.commit().await.unwrap();
    let batched = t.elapsed();
    let t = Instant::now();
    for g in &rows[half..] {
        seq += 2;
        let mut tx = c.begin().await.unwrap();
        reference_rows(&mut tx, g, seq).await;
        tx.commit().await.unwrap();
    }
    let each = t.elapsed();
    let per = |d: Duration, k: usize| d.as_secs_f64() * 1e6 / k.max(1) as f64;
    println!(
        "reference, the same rows with plain statements: {half} grants in one transaction \
         {:.3} s ({:.0} µs per grant); {} grants in a transaction each {:.3} s ({:.0} µs per \
         grant)",
        batched.as_secs_f64(),
        per(batched, half),
        rows.len() - half,
        each.as_secs_f64(),
        per(each, rows.len() - half)
    );
    c.close().await.unwrap();
}

// ------------------------------------------------------------------------------ phase 4

fn people_csv(n: usize) -> String {
    let mut t = String::from("handle,name,email,department,role,manager\n");
    for i in 0..n {
        let manager = if i == 0 {
            "erin".to_owned()
        } else {
            format!("i{:05}", (i - 1) / 10)
        };
        t.push_str(&format!(
            "i{i:05},Import Person {i},i{i:05}@scale.test,Imported,r{},{manager}\n",
            i % ROLES
        ));
    }
    t
}

/// Runs `quartermaster import people` into `url` while sampling `wal`; the import's time,
/// its exit status, the WAL's largest size.
async fn import_sampled(
    cfg: &Path,
    csv: &Path,
    url: &str,
    wal: &Path,
    truncate_every: Option<Duration>,
) -> (Duration, bool, f64) {
    let t = Instant::now();
    let mut child = Command::new(PathBuf::from(BIN))
        .arg("import")
        .arg("people")
        .arg(csv)
        .arg("--config")
        .arg(cfg)
        .arg("--db")
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let checkpoints = truncate_every.map(|every| {
        let (stop, url, db) = (stop.clone(), url.to_owned(), wal.with_extension("db"));
        tokio::spawn(async move { truncating(&url, &db, every, &stop).await })
    });
    let mut max = 0.0f64;
    let mut last_print = Instant::now();
    let status = loop {
        max = max.max(file_mb(wal));
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if last_print.elapsed() > Duration::from_secs(30) {
            println!(
                "  {:.0} s: WAL {:.1} MB (max {max:.1} MB)",
                t.elapsed().as_secs_f64(),
                file_mb(wal)
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.store(true, Ordering::Relaxed);
    if let Some(c) = checkpoints {
        let (ran, reset) = c.await.unwrap();
        println!("  {ran} TRUNCATE checkpoints from another connection, {reset} of them complete");
    }
    (t.elapsed(), status.success(), max)
}

/// One expired grant's rows for [`tick_reference`]; audit rows `seq - 1` and `seq`.
async fn reference_rows(
    c: &mut sqlx::SqliteConnection,
    g: &(i64, String, String, Option<i64>),
    seq: i64,
) {
    let (id, person, app, req) = g;
    sqlx::query("UPDATE grants SET warned = 1 WHERE id = ?")
        .bind(id)
        .execute(&mut *c)
        .await
        .unwrap();
    sqlx::query("UPDATE requests SET version = version + 1 WHERE id = ?")
        .bind(req)
        .execute(&mut *c)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO actions (connector, op, person, app, entitlement, grant_id, request_id, \
         state, attempts, not_before, created_at, updated_at) VALUES ('directory', 'revoke', \
         ?, ?, ?, ?, ?, 'done', 0, 0, 0, 0)",
    )
    .bind(person)
    .bind(app)
    .bind(app)
    .bind(id)
    .bind(req)
    .execute(&mut *c)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO outbox (kind, recipient, text, buttons, next_try, state, created_at) \
         VALUES ('send', ?, 'Your time-bound access has ended.', '[]', 0, 'sent', 0)",
    )
    .bind(format!("person:{person}"))
    .execute(&mut *c)
    .await
    .unwrap();
    for k in [seq - 1, seq] {
        sqlx::query(
            "INSERT INTO audit (seq, at, actor, action, subject, app, outcome, detail, \
             prev_hash, hash) VALUES (?, 0, 'system', 'grant.expired', ?, ?, 'ok', \
             'reference', 'x', 'y')",
        )
        .bind(k)
        .bind(person)
        .bind(app)
        .execute(&mut *c)
        .await
        .unwrap();
    }
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` every `every` from a connection of its own (waiting for
/// the writer in the busy handler), until `stop`; how many ran and how many completed.
async fn truncating(url: &str, db: &Path, every: Duration, stop: &AtomicBool) -> (usize, usize) {
    while !db.exists() && !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .unwrap()
        .busy_timeout(Duration::from_secs(5));
    let Ok(mut c) = sqlx::SqliteConnection::connect_with(&opts).await else {
        return (0, 0);
    };
    let (mut ran, mut reset) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(every).await;
        if let Ok((busy, _, _)) =
            sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut c)
                .await
        {
            ran += 1;
            reset += usize::from(busy == 0);
        }
    }
    let _ = c.close().await;
    (ran, reset)
}

async fn phase_import(dir: &Path, s: &Sizes) {
    let n = env_usize("QM_IMPORT_PEOPLE", s.people);
    println!("\n== 4. the SQLite WAL through `quartermaster import people` of {n} people ==");
    let csv = dir.join("people.csv");
    std::fs::write(&csv, people_csv(n)).unwrap();
    let listen = testkit::scim::free_port();
    let cfg = dir.join("import.toml");
    std::fs::write(&cfg, config_toml(s, listen, None)).unwrap();

    if env_usize("QM_IMPORT_ALONE", 0) == 1 {
        let db = dir.join("alone.db");
        let url = format!("sqlite://{}", db.display());
        let wal = dir.join("alone.db-wal");
        let (took, ok, max) = import_sampled(&cfg, &csv, &url, &wal, None).await;
        println!(
            "import alone (no serve): {:.1} s (ok: {ok}); WAL max {max:.1} MB, at the end \
             {:.1} MB; database {:.1} MB",
            took.as_secs_f64(),
            file_mb(&wal),
            file_mb(&db)
        );
    }
    if let Some(ms) = std::env::var("QM_IMPORT_TRUNCATE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        // The remedy tried from outside: a checkpoint that waits for the writer and resets
        // the log, while the import runs alone.
        let db = dir.join("truncated.db");
        let url = format!("sqlite://{}", db.display());
        let wal = dir.join("truncated.db-wal");
        let every = Duration::from_millis(ms);
        let (took, ok, max) = import_sampled(&cfg, &csv, &url, &wal, Some(every)).await;
        println!(
            "import alone with TRUNCATE every {ms} ms: {:.1} s (ok: {ok}); WAL max {max:.1} MB",
            took.as_secs_f64()
        );
    }

    let db = dir.join("import.db");
    let url = format!("sqlite://{}", db.display());
    let wal = dir.join("import.db-wal");
    let log = std::fs::File::create(dir.join("import-serve.log")).unwrap();
    let t = Instant::now();
    let mut serve = Command::new(PathBuf::from(BIN))
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .arg("--db")
        .arg(&url)
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    healthy(listen, t, &mut serve).await;
    let (took, ok, max) = import_sampled(&cfg, &csv, &url, &wal, None).await;
    println!(
        "import with serve running: {:.1} s (ok: {ok}); WAL max {max:.1} MB during it",
        took.as_secs_f64()
    );
    // serve goes on with the birthrights it was given; the WAL while it catches up.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("{url}?mode=ro"))
        .await
        .unwrap();
    let mut after = max;
    let until = Instant::now() + Duration::from_secs(env_usize("QM_IMPORT_DRAIN_S", 600) as u64);
    loop {
        after = after.max(file_mb(&wal));
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM actions WHERE state IN ('pending', 'running')",
        )
        .fetch_one(&pool)
        .await
        .unwrap_or(-1);
        if left == 0 || Instant::now() > until {
            println!(
                "serve's queue {}: {:.1} s after the import's start",
                if left == 0 {
                    "empty"
                } else {
                    "not empty (gave up)"
                },
                t.elapsed().as_secs_f64()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pool.close().await;
    sigterm(&serve);
    let _ = serve.wait();
    println!(
        "WAL max {after:.1} MB (import and catching up); at the end {:.1} MB; database {:.1} MB",
        file_mb(&wal),
        file_mb(&db)
    );
    println!(
        "goal WAL < 64 MB through the import: {} (max {after:.1} MB)",
        verdict(after < 64.0)
    );
}

#[tokio::main]
async fn main() {
    if !common::under_cargo_bench() {
        return;
    }
    let s = Sizes::from_env();
    println!(
        "figure 9: scale, {} people, {} apps, {} grants ({} time-bound, {} ending within the \
         hour before the tick), SQLite",
        s.people, s.apps, s.grants, s.timed, s.expiring
    );
    println!("{}", common::machine());
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", l.trim());
    }
    let filter = std::env::var("QM_LOG").unwrap_or_else(|_| "warn".into());
    let (_logs, _set) = common::capture_logs(&filter);
    let only = std::env::var("QM_PHASES").unwrap_or_else(|_| "1234".into());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("qm.db");
    let url = format!("sqlite://{}", db.display());
    let f = fake::FakeDiscord::start().await;
    let key = SigningKey::from_bytes(&fake::SEED);
    let t0 = chrono::Utc::now();
    let tick_at = t0 + chrono::TimeDelta::hours(4);

    if only.contains(['1', '2', '3']) {
        // Migrated, with the config's people, then filled.
        let cfg = parse_config(&config_toml(&s, 0, None), dir.path());
        let store = wiring::open_store(&cfg, &url).await.unwrap();
        store.close().await;
        seed(&url, &s, t0.timestamp_micros()).await;
        println!("database {:.1} MB", file_mb(&db));
    }
    if only.contains('1') {
        phase_serve(dir.path(), &url, &s, &f, &key).await;
    }
    if only.contains('2') {
        phase_in_process(dir.path(), &url, &s, &f, &key, tick_at).await;
    }
    if only.contains('3') {
        phase_tick(dir.path(), &url, &s, tick_at).await;
    }
    if only.contains('4') {
        phase_import(dir.path(), &s).await;
    }
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        println!("\nload average at the end: {}", l.trim());
    }
    if std::env::var("QM_KEEP").is_ok() {
        let kept = dir.keep();
        println!("kept {}", kept.display());
    }
}

//! Figure 12: inbound SCIM (`/scim/v2/`) with `QM_USERS` users (default 50,000) on SQLite,
//! side by side with scim2-server (the Python reference server) serving the same workload in
//! the same run.
//!
//! Both servers first hold the same users (ours: bulk SQL into `people` and `scim_resources`,
//! as the identity provider would have left them; scim2-server: its `/Bulk`, 1,000 users a
//! request). Then each gets, over HTTP with keep-alive from `QM_CONCURRENCY` clients (8; each
//! the least a client must do, see `scim_service/wire.rs`):
//! 1. writes, the same sequence for both: a fifth POSTs of new users (each a joiner: in
//!    `joiner = "plan"` mode a stored onboarding plan and IT's prompt), two fifths PATCHes of
//!    `title` with a path, a fifth value-only PATCHes of `nickName` (Okta's form), a fifth PUTs
//!    of the whole user; `QM_WRITES` (5,000) for us, the same sequence time-boxed to
//!    `QM_REF_SECONDS` (30) for the reference;
//! 2. filtered reads, one at a time: `GET /Users?filter=userName eq "…"` of random users,
//!    `QM_GETS` (2,000) for us, `QM_REF_GETS` (500) for the reference; p50/p99 client-side.
//!
//! Goals: ≥ 1,000 writes/s, filtered GET p99 ≤ 5 ms, ≥ 10× scim2-server's write throughput.
//! Run: `QM_SCIM2_SERVER=… cargo bench --bench scim_service`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "scim_service/wire.rs"]
mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{machine, ms, stats};
use quartermaster::core::ports::SystemClock;
use quartermaster::{config, server, wiring};
use serde_json::{Value, json};
use sqlx::Connection;
use testkit::scim::ScimServer;

const TOKEN: &str = "qm-bench-scim-service-token";
const REF_TOKEN: &str = "qm-bench-scim2-server-token";

fn env(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// A server under test: its base URL (and its address and path, for the load generator's
/// [`wire`] client), token, and the ids of the seeded users (by index).
struct Target {
    base: String,
    addr: std::net::SocketAddr,
    path: String,
    token: String,
    ids: Vec<String>,
    client: reqwest::Client,
}

fn org(db: &str) -> String {
    format!(
        r#"
[organization]
name = "Bench"
it_admins = ["dana"]

[[person]]
handle = "dana"
name = "Dana Ortiz"
email = "dana@bench.test"
role = "staff"

[[role]]
name = "staff"
apps = []

[[app]]
name = "wiki"
connector = "desk"
approvals = ["it-admin"]

[[connector]]
name = "desk"
kind = "manual"

[database]
url = "{db}"

[scim_server]
token_env = "QM_BENCH_SCIM_TOKEN"
default_role = "staff"
"#
    )
}

fn user_body(i: usize, extra: Value) -> Value {
    let mut v = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("user-{i}@acme.test"),
        "displayName": format!("User {i}"),
        "active": true,
        "emails": [{"value": format!("user-{i}@acme.test"), "type": "work", "primary": true}],
    });
    for (k, x) in extra.as_object().into_iter().flatten() {
        v[k] = x.clone();
    }
    v
}

/// Seeds `n` users into our database as the identity provider would have left them.
async fn seed_ours(path: &std::path::Path, n: usize) {
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_micros();
    let cte = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1) ";
    let people = format!(
        "{cte}INSERT INTO people (handle, name, email, department, role, manager, discord_id, \
         status, timezone) SELECT 'user-' || i, 'User ' || i, 'user-' || i || '@acme.test', '', \
         'staff', NULL, NULL, 'active', NULL FROM n"
    );
    let resources = format!(
        "{cte}INSERT INTO scim_resources (id, kind, name, name_key, external_id, handle, active, \
         version, created_at, updated_at, body) SELECT printf('00000000-0000-4000-8000-%012d', i), \
         'User', 'user-' || i || '@acme.test', 'user-' || i || '@acme.test', 'ext-' || i, \
         'user-' || i, 1, 1, ? + i, ? + i, json_object('schemas', \
         json_array('urn:ietf:params:scim:schemas:core:2.0:User'), 'userName', \
         'user-' || i || '@acme.test', 'externalId', 'ext-' || i, 'displayName', 'User ' || i, \
         'active', json('true'), \
         'emails', json_array(json_object('value', 'user-' || i || '@acme.test', 'type', 'work', \
         'primary', json('true')))) FROM n"
    );
    let mut tx = c.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(people))
        .bind(n as i64)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(resources))
        .bind(n as i64)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Quartermaster's `serve`, in process, on a loopback port.
async fn start_ours(dir: &std::path::Path, n: usize) -> (server::Server, Target) {
    let db = dir.join("qm.db");
    let text = org(&format!("sqlite://{}", db.display()));
    let cfg = config::parse(&text, dir, &|k| {
        (k == "QM_BENCH_SCIM_TOKEN").then(|| TOKEN.to_owned())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let url = cfg.database_url.clone().unwrap();
    let store = wiring::open_store(&cfg, &url).await.unwrap();
    let t = Instant::now();
    seed_ours(&db, n).await;
    println!(
        "  ours: {n} users seeded by SQL in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let srv = server::start(&cfg, store, Arc::new(SystemClock), listener)
        .await
        .unwrap();
    let base = format!("http://{}/scim/v2", srv.addr);
    let ids = (0..n)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect();
    (srv, target(base, TOKEN, ids))
}

fn target(base: String, token: &str, ids: Vec<String>) -> Target {
    let rest = base.strip_prefix("http://").expect("an http:// base URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)
        .unwrap()
        .next()
        .unwrap();
    Target {
        addr,
        path: path.to_owned(),
        base,
        token: token.into(),
        ids,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap(),
    }
}

/// scim2-server, seeded through `/Bulk`.
async fn start_reference(n: usize) -> (ScimServer, Target) {
    let srv = ScimServer::start_with_token(testkit::scim::free_port(), REF_TOKEN);
    let base = srv.tenant("bench");
    let mut t = target(base, REF_TOKEN, vec![String::new(); n]);
    let start = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|i| {
                json!({"method": "POST", "path": "/Users", "bulkId": i.to_string(),
                       "data": user_body(*i, json!({"externalId": format!("ext-{i}")}))})
            })
            .collect();
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                          "Operations": ops});
        let (code, out) = send(&t, "POST", "/Bulk", Some(body)).await;
        assert_eq!(code, 200, "scim2-server's /Bulk: {out}");
        for op in out["Operations"].as_array().unwrap() {
            let i: usize = op["bulkId"].as_str().unwrap().parse().unwrap();
            let loc = op["location"].as_str().unwrap();
            t.ids[i] = loc.rsplit('/').next().unwrap().to_owned();
        }
    }
    println!(
        "  scim2-server: {n} users seeded through /Bulk in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    (srv, t)
}

/// An untimed request (the reference's seeding) through reqwest.
async fn send(t: &Target, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = t
        .client
        .request(m, format!("{}{path}", t.base))
        .header("authorization", format!("Bearer {}", t.token))
        .header("content-type", "application/scim+json");
    if let Some(b) = body {
        r = r.body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A request of the write sequence, made before the clock starts: the load generator's own
/// work (building and serialising JSON, the request's bytes) is not in the figures of either
/// server.
struct Op {
    what: String,
    bytes: Vec<u8>,
}

/// Write `i` of the sequence.
fn write_op(t: &Target, i: usize) -> (&'static str, String, Value) {
    let n = t.ids.len();
    let k = (i * 7919 + 13) % n;
    let id = &t.ids[k];
    let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    match i % 5 {
        0 => ("POST", "/Users".into(), user_body(n + i, json!({}))),
        1 | 2 => (
            "PATCH",
            format!("/Users/{id}"),
            patch(json!([{"op": "replace", "path": "title", "value": format!("Title {i}")}])),
        ),
        3 => (
            "PATCH",
            format!("/Users/{id}"),
            patch(json!([{"op": "replace", "value": {"nickName": format!("nick {i}")}}])),
        ),
        _ => (
            "PUT",
            format!("/Users/{id}"),
            user_body(
                k,
                json!({"nickName": format!("put {i}"), "externalId": format!("ext-{k}")}),
            ),
        ),
    }
}

/// Runs the write sequence with `conc` clients until `total` writes or `budget`; writes done,
/// elapsed, latencies, failures.
async fn writes(
    t: Arc<Target>,
    total: usize,
    conc: usize,
    budget: Duration,
) -> (usize, Duration, Vec<Duration>, usize) {
    let ops: Arc<Vec<Op>> = Arc::new(
        (0..total)
            .map(|i| {
                let (m, path, body) = write_op(&t, i);
                let path = format!("{}{path}", t.path);
                Op {
                    bytes: wire::request(m, t.addr, &path, &t.token, &body.to_string()),
                    what: format!("{m} {path}"),
                }
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (t, ops, next, failed) = (t.clone(), ops.clone(), next.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut conn = wire::Wire::new(t.addr);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || start.elapsed() > budget {
                    return lat;
                }
                let op = &ops[i];
                let s = Instant::now();
                let out = conn.send(&op.bytes).await;
                lat.push(s.elapsed());
                let code = out.status;
                if !(200..300).contains(&code) && failed.fetch_add(1, Ordering::Relaxed) < 3 {
                    let out = String::from_utf8_lossy(&out.body);
                    eprintln!("  write {i} ({}) failed: {code} {out}", op.what);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for h in tasks {
        all.extend(h.await.unwrap());
    }
    (
        all.len(),
        start.elapsed(),
        all,
        failed.load(Ordering::Relaxed),
    )
}

/// `gets` filtered reads, one at a time; their latencies.
async fn reads(t: &Target, gets: usize) -> Vec<Duration> {
    let n = t.ids.len();
    let mut lat = Vec::with_capacity(gets);
    let mut conn = wire::Wire::new(t.addr);
    for j in 0..gets {
        let k = (j * 104_729 + 7) % n;
        let f = format!("userName eq \"user-{k}@acme.test\"");
        let path = format!("{}/Users?filter={}", t.path, testkit::scim::enc(&f));
        let req = wire::request("GET", t.addr, &path, &t.token, "");
        let s = Instant::now();
        let out = conn.send(&req).await;
        lat.push(s.elapsed());
        let (code, out) = (
            out.status,
            serde_json::from_slice::<Value>(&out.body).unwrap_or(Value::Null),
        );
        assert_eq!(
            (code, out["totalResults"].as_u64()),
            (200, Some(1)),
            "{out}"
        );
    }
    lat
}

struct Figures {
    rate: f64,
    write_p50: Duration,
    write_p99: Duration,
    get_p50: Duration,
    get_p99: Duration,
    done: usize,
    failed: usize,
    /// This process's CPU time per write (server and clients for ours, clients only for the
    /// reference).
    cpu_per_write: Duration,
}

async fn run(t: Target, total: usize, conc: usize, budget: Duration, gets: usize) -> Figures {
    let t = Arc::new(t);
    // A short warm-up of reads (connections, caches), not counted.
    reads(&t, 20).await;
    let cpu = common::cpu_time();
    let (done, took, lat, failed) = writes(t.clone(), total, conc, budget).await;
    let cpu = common::cpu_time() - cpu;
    let w = stats(lat);
    let g = stats(reads(&t, gets).await);
    Figures {
        rate: done as f64 / took.as_secs_f64(),
        write_p50: w.p50,
        write_p99: w.p99,
        get_p50: g.p50,
        get_p99: g.p99,
        done,
        failed,
        cpu_per_write: cpu / done.max(1) as u32,
    }
}

fn show(who: &str, f: &Figures) {
    println!(
        "  {who}: {} writes at {:.0} writes/s (p50 {}, p99 {}), {} failed, this process's CPU \
         {} µs a write; filtered GET p50 {}, p99 {}",
        f.done,
        f.rate,
        ms(f.write_p50),
        ms(f.write_p99),
        f.failed,
        f.cpu_per_write.as_micros(),
        ms(f.get_p50),
        ms(f.get_p99)
    );
}

#[tokio::main]
async fn main() {
    let users = env("QM_USERS", 50_000);
    let total = env("QM_WRITES", 5_000);
    let gets = env("QM_GETS", 2_000);
    let conc = env("QM_CONCURRENCY", 8);
    let ref_budget = Duration::from_secs(env("QM_REF_SECONDS", 30) as u64);
    let ref_gets = env("QM_REF_GETS", 500);
    println!("figure 12: inbound SCIM service, {users} users on SQLite");
    println!("{}", machine());
    let dir = tempfile::tempdir().unwrap();
    let (srv, ours) = start_ours(dir.path(), users).await;
    let f_ours = run(ours, total, conc, Duration::from_secs(3600), gets).await;
    show("Quartermaster", &f_ours);
    srv.stop().await;
    let (_ref_srv, reference) = start_reference(users).await;
    let f_ref = run(reference, total, conc, ref_budget, ref_gets).await;
    show("scim2-server", &f_ref);
    let ratio = f_ours.rate / f_ref.rate;
    println!(
        "result: {:.0} writes/s (goal ≥ 1,000: {}), filtered GET p99 {} (goal ≤ 5 ms: {}), \
         {ratio:.1}× scim2-server's {:.0} writes/s (goal ≥ 10×: {})",
        f_ours.rate,
        if f_ours.rate >= 1000.0 {
            "met"
        } else {
            "NOT met"
        },
        ms(f_ours.get_p99),
        if f_ours.get_p99 <= Duration::from_millis(5) {
            "met"
        } else {
            "NOT met"
        },
        f_ref.rate,
        if ratio >= 10.0 { "met" } else { "NOT met" },
    );
    assert_eq!(f_ours.failed, 0, "every write of ours must succeed");
}

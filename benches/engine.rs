//! Figure 5: engine throughput with the directory connector, and enqueue-to-start latency, on
//! SQLite (default) or PostgreSQL (`QM_TEST_DB=postgres`, server at `QM_TEST_PG_URL`, a scratch
//! database created and dropped). Work comes in as HR hires (role `engineer`: four birthright
//! groups, the first creating the account: four actions each), exactly as `POST /hr/events`
//! would enqueue it.
//!
//! - Throughput: H hires are enqueued (`QM_HIRES`, default 400), then the queue is emptied
//!   twice over fresh batches: once by `Engine::drain` (one action at a time, as the console
//!   runs it) and once by `Engine::run` (its workers, as `serve` runs it);
//!   actions/s = actions run / time to empty the queue.
//! - Enqueue-to-start: the engine runs while hires arrive at a steady rate; for each action,
//!   the moment its connector call starts minus its `created_at`.
//! - Reference, same database: a plain loop of three write transactions per item (INSERT,
//!   UPDATE, UPDATE), the claim/effect/finish cycle stripped of everything else; once on one
//!   connection, once on as many connections as the engine has workers.
//!
//! Run: `cargo bench --bench engine`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quartermaster::config;
use quartermaster::core::model::{ActionState, Handle};
use quartermaster::core::ports::SystemClock;
use quartermaster::core::service::{HrEvent, HrKind};
use quartermaster::engine::Engine;
use quartermaster::server::LogChat;
use quartermaster::wiring;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use testkit::testdb::{Backend, TestDb};

use common::{Seen, Watcher, ms, stats};

type Starts = Arc<Mutex<HashMap<(String, String, String), chrono::DateTime<chrono::Utc>>>>;

struct Rig {
    service: Arc<quartermaster::core::service::Service>,
    engine: Arc<Engine>,
    starts: Starts,
    db: TestDb,
}

async fn rig() -> Rig {
    let config = config::load(None).unwrap();
    let db = TestDb::create(Backend::from_env()).await;
    let store = wiring::open_store(&config, &db.url).await.unwrap();
    let (service, _) = wiring::assemble(
        &config,
        store.clone(),
        Arc::new(LogChat),
        Arc::new(SystemClock),
    )
    .unwrap();
    let starts: Starts = Arc::default();
    let noted = starts.clone();
    let watch: Watcher = Arc::new(move |_, seen| {
        if let Seen::Started {
            op,
            who,
            entitlement,
        } = seen
        {
            let key = (
                who.handle.to_string(),
                format!("{op:?}"),
                entitlement.unwrap_or("").to_owned(),
            );
            noted
                .lock()
                .unwrap()
                .entry(key)
                .or_insert_with(chrono::Utc::now);
        }
    });
    let conns = common::watched(wiring::connectors(&config, &store).unwrap(), &watch);
    let engine = Arc::new(Engine::new(service.clone(), conns));
    Rig {
        service,
        engine,
        starts,
        db,
    }
}

async fn hire(r: &Rig, i: usize) {
    let ev = HrEvent {
        id: format!("bench-hire-{i}"),
        kind: HrKind::Hire,
        person: common::person(i, "engineer", "erin"),
        last_day: None,
        effective_at: None,
    };
    r.service.hr_event(ev).await.unwrap();
}

async fn done_actions(r: &Rig, from: usize, to: usize) -> Vec<quartermaster::core::model::Action> {
    let mut out = Vec::new();
    for i in from..to {
        let h = Handle::parse(&format!("b{i:05}")).unwrap();
        out.extend(r.service.store().actions_of(&h).await.unwrap());
    }
    out
}

/// The reference's cycle, written once for both pools: per item, an INSERT, then two
/// UPDATEs, each in its own write transaction (`$begin` opens one), on `$conc` connections at
/// once (each taking every `$conc`-th item); items per second.
macro_rules! three_transactions {
    ($pool:expr, $begin:ident $(($how:expr))?, $insert:expr, $update:expr, $n:expr, $conc:expr) => {{
        let pool = $pool;
        let t = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for w in 0..$conc {
            let pool = pool.clone();
            set.spawn(async move {
                for i in (w..$n).step_by($conc) {
                    let mut tx = pool.$begin($($how)?).await.unwrap();
                    let id: i64 = sqlx::query_scalar($insert)
                        .bind(format!("b{i:05}"))
                        .bind(i as i64)
                        .fetch_one(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                    for state in ["running", "done"] {
                        let mut tx = pool.$begin($($how)?).await.unwrap();
                        sqlx::query($update)
                            .bind(state)
                            .bind(id)
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                        tx.commit().await.unwrap();
                    }
                }
            });
        }
        while let Some(done) = set.join_next().await {
            done.unwrap();
        }
        let per_s = $n as f64 / t.elapsed().as_secs_f64();
        pool.close().await;
        per_s
    }};
}

/// Three write transactions per item on the same database (the store's pragmas, and its pool
/// without a ping before each use).
async fn reference(url: &str, n: usize, conc: usize) -> f64 {
    if url.starts_with("postgres") {
        return reference_pg(url, n, conc).await;
    }
    let opts = SqliteConnectOptions::from_str(url)
        .unwrap()
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .test_before_acquire(false)
        .connect_with(opts)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_ref (id INTEGER PRIMARY KEY, person TEXT NOT NULL, \
         state TEXT NOT NULL, created_at INTEGER NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    three_transactions!(
        pool,
        begin_with("BEGIN IMMEDIATE"),
        "INSERT INTO bench_ref (person, state, created_at) VALUES (?, 'pending', ?) RETURNING id",
        "UPDATE bench_ref SET state = ? WHERE id = ?",
        n,
        conc
    )
}

/// The PostgreSQL form of [`reference`].
async fn reference_pg(url: &str, n: usize, conc: usize) -> f64 {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .test_before_acquire(false)
        .connect(url)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_ref (id BIGSERIAL PRIMARY KEY, person TEXT NOT NULL, \
         state TEXT NOT NULL, created_at BIGINT NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    three_transactions!(
        pool,
        begin,
        "INSERT INTO bench_ref (person, state, created_at) VALUES ($1, 'pending', $2) \
         RETURNING id",
        "UPDATE bench_ref SET state = $1 WHERE id = $2",
        n,
        conc
    )
}

/// Enqueues hires `from..from + n`; returns the queue depth after.
async fn enqueue(r: &Rig, from: usize, n: usize) -> i64 {
    let t = Instant::now();
    for i in from..from + n {
        hire(r, i).await;
    }
    let queued = r.service.store().queue_depth().await.unwrap();
    println!(
        "enqueued {n} hires = {queued} actions in {:.3} s",
        t.elapsed().as_secs_f64()
    );
    queued as i64
}

/// Checks that every action of hires `from..to` is done; returns how many there are.
async fn all_done(r: &Rig, from: usize, to: usize) -> usize {
    let actions = done_actions(r, from, to).await;
    let ok = actions
        .iter()
        .filter(|a| a.state == ActionState::Done)
        .count();
    assert_eq!(ok, actions.len(), "every action should be done");
    ok
}

#[tokio::main]
async fn main() {
    if !common::under_cargo_bench() {
        return;
    }
    let backend = Backend::from_env();
    println!("figure 5 ({backend:?}): engine throughput with the directory connector");
    println!("{}", common::machine());
    let hires: usize = std::env::var("QM_HIRES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let r = rig().await;
    let goal = match backend {
        Backend::Sqlite => 1000.0,
        Backend::Postgres => 2000.0,
    };

    // Throughput, one action at a time (`drain`, as the console runs it).
    enqueue(&r, 0, hires).await;
    let t = Instant::now();
    let cpu = common::cpu_time();
    let ran = r.engine.drain().await.unwrap();
    let took = t.elapsed();
    let cpu = common::cpu_time() - cpu;
    let serial = ran as f64 / took.as_secs_f64();
    let ok = all_done(&r, 0, hires).await;
    println!(
        "drain (one at a time): {ran} actions in {:.3} s = {serial:.0} actions/s ({ok} done), \
         CPU {:.3} s ({:.0} µs per action)",
        took.as_secs_f64(),
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / ran.max(1) as f64
    );

    // Throughput with the engine's workers (`run`, as `serve` runs it).
    enqueue(&r, hires, hires).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = r.engine.clone();
    let t = Instant::now();
    let cpu = common::cpu_time();
    let worker = tokio::spawn(async move { engine.run(stop_rx).await });
    while r.service.store().queue_depth().await.unwrap() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = t.elapsed();
    let cpu = common::cpu_time() - cpu;
    let _ = stop_tx.send(true);
    worker.await.unwrap();
    let ok = all_done(&r, hires, 2 * hires).await;
    let ours = ok as f64 / took.as_secs_f64();
    println!(
        "run ({} workers): {ok} actions in {:.3} s = {ours:.0} actions/s, CPU {:.3} s \
         ({:.0} µs per action)",
        r.engine.workers(),
        took.as_secs_f64(),
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / ok.max(1) as f64
    );

    let refs = reference(&r.db.url, 2000, 1).await;
    println!("reference (3 write transactions per item, one at a time): {refs:.0} items/s");
    println!("ratio ours (workers)/reference: {:.2}", ours / refs);
    let workers = r.engine.workers();
    let refs_n = reference(&r.db.url, 4000, workers).await;
    println!(
        "reference on {workers} connections (as many as the engine's workers): {refs_n:.0} \
         items/s; ratio ours (workers)/it: {:.2}",
        ours / refs_n
    );
    println!(
        "goal >= {goal} actions/s: {}",
        if ours >= goal { "MET" } else { "MISSED" }
    );

    // Enqueue-to-start under a steady arrival rate, the engine running as in `serve`.
    const RATE: f64 = 40.0; // hires/s = 160 actions/s
    const STEADY: usize = 400;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine = r.engine.clone();
    let worker = tokio::spawn(async move { engine.run(stop_rx).await });
    let start = tokio::time::Instant::now();
    for k in 0..STEADY {
        tokio::time::sleep_until(start + Duration::from_secs_f64(k as f64 / RATE)).await;
        hire(&r, 2 * hires + k).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while r.service.store().queue_depth().await.unwrap() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    worker.await.unwrap();
    let starts = r.starts.lock().unwrap().clone();
    let mut lat = Vec::new();
    for a in done_actions(&r, 2 * hires, 2 * hires + STEADY).await {
        let key = (
            a.person.to_string(),
            format!("{:?}", a.op),
            a.entitlement.clone().unwrap_or_default(),
        );
        if let Some(s) = starts.get(&key) {
            lat.push((*s - a.created_at).to_std().unwrap_or_default());
        }
    }
    let s = stats(lat);
    println!(
        "\nenqueue-to-start at {RATE} hires/s ({} actions/s offered): {s}",
        RATE * 4.0
    );
    println!("enqueue-to-start p99: {} ms", ms(s.p99));
}

//! Figure 6: the audit chain. Append cost (one event per transaction, as a click writes it,
//! with the HMAC seal), against a plain one-row INSERT transaction on the same file; then
//! `audit verify` over 1,000,000 rows, against its two raw parts in the same run: reading the
//! same rows with a plain paged SELECT, and SHA-256 over the same canonical bytes.
//!
//! Run: `cargo bench --bench audit` (about a minute; the database holds ~1M rows).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::str::FromStr;
use std::time::{Duration, Instant};

use quartermaster::core::model::{Actor, AuditEvent, Handle};
use quartermaster::core::ports::{Change, ReqRef, Store};
use quartermaster::store::{self, AuditRecord, VerifyReport};
use secrecy::SecretSlice;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

const ROWS: usize = 1_000_000;
const BATCH: usize = 1000;
const SINGLE: usize = 2000;

fn event(i: usize) -> AuditEvent {
    AuditEvent {
        at: chrono::Utc::now(),
        actor: Actor::System,
        actor_chat_id: None,
        action: "grant.applied".into(),
        subject: Some(Handle::parse(&format!("b{:05}", i % 100_000)).unwrap()),
        app: None,
        request: ReqRef::None,
        connector_action: Some(quartermaster::core::model::ActionId(i as i64 + 1)),
        outcome: "ok".into(),
        detail: format!("added to group figma-editors (benchmark row {i})"),
    }
}

#[tokio::main]
async fn main() {
    if !common::under_cargo_bench() {
        return;
    }
    println!("figure 6: audit chain");
    println!("{}", common::machine());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qm.db");
    let url = format!("sqlite://{}", path.display());
    let key = SecretSlice::from(b"benchmark audit key, 32 bytes!!".to_vec());
    let st = store::connect(&url, Some(key)).await.unwrap();

    // Append cost: one event per transaction.
    let t = Instant::now();
    for i in 0..SINGLE {
        st.commit(Change {
            audit: vec![event(i)],
            ..Change::default()
        })
        .await
        .unwrap();
    }
    let ours = t.elapsed() / SINGLE as u32;

    let opts = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(opts)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE bench_plain (id INTEGER PRIMARY KEY, actor TEXT, action TEXT, subject TEXT, connector_action INTEGER, outcome TEXT, detail TEXT, at INTEGER)")
        .execute(&pool)
        .await
        .unwrap();
    let t = Instant::now();
    for i in 0..SINGLE {
        let e = event(i);
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO bench_plain (actor, action, subject, connector_action, outcome, detail, at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind("system")
            .bind(&e.action)
            .bind(e.subject.as_ref().map(|h| h.to_string()))
            .bind(i as i64)
            .bind(&e.outcome)
            .bind(&e.detail)
            .bind(e.at.timestamp_micros())
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let plain = t.elapsed() / SINGLE as u32;
    println!(
        "append, one event per transaction (sealed chain): {:.1} us; plain one-row INSERT \
         transaction: {:.1} us; ratio {:.2}",
        ours.as_secs_f64() * 1e6,
        plain.as_secs_f64() * 1e6,
        ours.as_secs_f64() / plain.as_secs_f64()
    );

    // Fill to 1,000,000 rows in transactions of 1,000 events.
    let t = Instant::now();
    let mut n = SINGLE;
    while n < ROWS {
        let k = BATCH.min(ROWS - n);
        st.commit(Change {
            audit: (n..n + k).map(event).collect(),
            ..Change::default()
        })
        .await
        .unwrap();
        n += k;
    }
    let fill = t.elapsed();
    println!(
        "append in transactions of {BATCH}: {:.2} us per row ({} rows in {:.1} s)",
        fill.as_secs_f64() * 1e6 / (ROWS - SINGLE) as f64,
        ROWS - SINGLE,
        fill.as_secs_f64()
    );

    // Verify.
    let t = Instant::now();
    let report = st.verify_audit().await.unwrap();
    let verify = t.elapsed();
    assert!(
        matches!(report, VerifyReport::Ok { rows, sealed: true } if rows == ROWS as u64),
        "{report}"
    );
    println!(
        "audit verify over {ROWS} rows: {:.3} s ({report})",
        verify.as_secs_f64()
    );

    // Reference 1: the same rows through a plain paged SELECT, every column read.
    let t = Instant::now();
    let mut after = 0i64;
    let mut recs: Vec<AuditRecord> = Vec::with_capacity(ROWS);
    loop {
        let page = sqlx::query(
            "SELECT seq, at, actor, actor_chat_id, action, subject, app, request_id, \
             connector_action, outcome, detail, prev_hash, hash FROM audit WHERE seq > ? \
             ORDER BY seq LIMIT 1000",
        )
        .bind(after)
        .fetch_all(&pool)
        .await
        .unwrap();
        for r in &page {
            after = r.get::<i64, _>(0);
            recs.push(AuditRecord {
                seq: after,
                at: r.get::<i64, _>(1).to_string(),
                actor: r.get(2),
                actor_chat_id: r.get(3),
                action: r.get(4),
                subject: r.get(5),
                app: r.get(6),
                request: r.get(7),
                connector_action: r.get(8),
                outcome: r.get(9),
                detail: r.get(10),
                prev_hash: r.get(11),
                hash: r.get(12),
            });
        }
        if page.len() < 1000 {
            break;
        }
    }
    let read = t.elapsed();
    // Reference 2: SHA-256 over the same canonical bytes (serialised beforehand, not timed).
    let bytes: Vec<Vec<u8>> = recs
        .iter()
        .map(|r| {
            serde_json::to_vec(&(
                r.seq,
                &r.at,
                &r.actor,
                &r.actor_chat_id,
                &r.action,
                &r.subject,
                &r.app,
                r.request,
                r.connector_action,
                &r.outcome,
                &r.detail,
                &r.prev_hash,
            ))
            .unwrap()
        })
        .collect();
    let total: usize = bytes.iter().map(Vec::len).sum();
    let t = Instant::now();
    let mut acc = 0u8;
    for b in &bytes {
        acc ^= Sha256::digest(b)[0];
    }
    let hash = t.elapsed();
    println!(
        "reference: plain paged SELECT of the same rows {:.3} s; raw SHA-256 over the same \
         {total} bytes {:.3} s (digest byte {acc}); sum {:.3} s",
        read.as_secs_f64(),
        hash.as_secs_f64(),
        (read + hash).as_secs_f64()
    );
    println!(
        "ratio verify/(select + sha256): {:.2}",
        verify.as_secs_f64() / (read + hash).as_secs_f64()
    );
    println!(
        "goal audit verify over 1,000,000 rows <= 2 s: {}",
        if verify <= Duration::from_secs(2) {
            "MET"
        } else {
            "MISSED"
        }
    );
    println!(
        "database size: {} MB",
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) / 1_000_000
    );
}

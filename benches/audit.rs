//! Figure 6: the audit chain. Append cost (one event per transaction, as a click writes it,
//! with the HMAC seal), against a plain one-row INSERT transaction on the same database; then
//! `audit verify` over 1,000,000 rows, against the row-by-row reading it replaced and its raw
//! parts, all in the same run: reading the same rows with a plain paged SELECT, the database
//! packing the same pages into JSON (verify's own query, without the checking), and SHA-256
//! over the same canonical bytes.
//!
//! Run: `cargo bench --bench audit` (a few minutes; the SQLite file holds ~1M rows, 276 MB).
//! Environment:
//! - `QM_AUDIT_DB`: `sqlite` (default: a fresh file in a temporary directory), `postgres` (a
//!   scratch database on the server of `QM_TEST_PG_URL`, default
//!   `postgres://postgres@127.0.0.1:5432/postgres`, dropped at the end), or
//!   `sqlite:///PATH` (a file that is kept, and filled only when it does not hold the chain
//!   yet: repeated runs skip the minute of appends);
//! - `QM_AUDIT_ROWS`: the chain's length (default 1,000,000);
//! - `QM_AUDIT_PAGES`: more packed page sizes to time verify with, e.g. `5000,50000`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::str::FromStr;
use std::time::{Duration, Instant};

use quartermaster::core::audit::{AuditAction, AuditEvent};
use quartermaster::core::model::Handle;
use quartermaster::core::ports::{Change, UnitOfWork};
use quartermaster::store::{self, AuditRecord, VerifyReport};
use secrecy::SecretSlice;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use testkit::testdb::{Backend, TestDb};

const BATCH: usize = 1000;
const SINGLE: usize = 2000;

fn event(i: usize) -> AuditEvent {
    AuditEvent::new(chrono::Utc::now(), AuditAction::GrantProvisioned)
        .subject(&Handle::parse(&format!("b{:05}", i % 100_000)).unwrap())
        .connector_action(quartermaster::core::model::ActionId(i as i64 + 1))
        .detail(format!("added to group figma-editors (benchmark row {i})"))
}

/// The same database, reached with the plain driver for the references.
enum Raw {
    Lite(SqlitePool),
    Pg(PgPool),
}

const SELECT_PAGE: &str = "SELECT seq, at, actor, actor_chat_id, action, subject, app, \
     request_id, connector_action, outcome, detail, prev_hash, hash FROM audit WHERE seq > ? \
     ORDER BY seq LIMIT 1000";
// verify's own packed queries (src/store/audit.rs), run here without the checking.
const PACKED_LITE: &str = "SELECT count(*), max(seq), json_group_array(json_array(seq, at, \
     actor, actor_chat_id, action, subject, app, request_id, connector_action, outcome, \
     detail, prev_hash, hash)) FROM (SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?)";
const PACKED_PG: &str = "SELECT count(*), max(seq), json_agg(json_build_array(seq, at, \
     actor, actor_chat_id, action, subject, app, request_id, connector_action, outcome, \
     detail, prev_hash, hash) ORDER BY seq)::text FROM (SELECT * FROM audit WHERE seq > $1 \
     ORDER BY seq LIMIT $2) AS page";

impl Raw {
    async fn connect(url: &str) -> Self {
        if url.starts_with("postgres") {
            return Self::Pg(
                PgPoolOptions::new()
                    .max_connections(2)
                    .connect(url)
                    .await
                    .unwrap(),
            );
        }
        let opts = SqliteConnectOptions::from_str(url)
            .unwrap()
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        Self::Lite(
            SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(opts)
                .await
                .unwrap(),
        )
    }

    /// A plain one-row INSERT transaction, `n` times; the mean.
    async fn plain_inserts(&self, n: usize) -> Duration {
        let create = "CREATE TABLE IF NOT EXISTS bench_plain (id BIGINT PRIMARY KEY, actor \
                      TEXT, action TEXT, subject TEXT, connector_action BIGINT, outcome TEXT, \
                      detail TEXT, at BIGINT)";
        let insert = "INSERT INTO bench_plain (id, actor, action, subject, connector_action, \
                      outcome, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let base = chrono::Utc::now().timestamp_micros();
        let t = Instant::now();
        match self {
            Self::Lite(p) => {
                sqlx::query(create).execute(p).await.unwrap();
                for i in 0..n {
                    let e = event(i);
                    let mut tx = p.begin_with("BEGIN IMMEDIATE").await.unwrap();
                    sqlx::query(insert)
                        .bind(base + i as i64)
                        .bind("system")
                        .bind(e.action.as_str())
                        .bind(e.subject.as_ref().map(|h| h.to_string()))
                        .bind(i as i64)
                        .bind(e.outcome.as_str())
                        .bind(&e.detail)
                        .bind(e.at.timestamp_micros())
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                }
            }
            Self::Pg(p) => {
                sqlx::query(create).execute(p).await.unwrap();
                for i in 0..n {
                    let e = event(i);
                    let mut tx = p.begin().await.unwrap();
                    sqlx::query(insert)
                        .bind(base + i as i64)
                        .bind("system")
                        .bind(e.action.as_str())
                        .bind(e.subject.as_ref().map(|h| h.to_string()))
                        .bind(i as i64)
                        .bind(e.outcome.as_str())
                        .bind(&e.detail)
                        .bind(e.at.timestamp_micros())
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                }
            }
        }
        t.elapsed() / n as u32
    }

    /// Every audit row through a plain paged SELECT of 1,000 rows, every column read.
    async fn select_all(&self) -> Vec<AuditRecord> {
        let mut after = 0i64;
        let mut recs: Vec<AuditRecord> = Vec::new();
        macro_rules! page {
            ($pool:expr, $sql:expr) => {{
                let page = sqlx::query(sqlx::AssertSqlSafe($sql))
                    .bind(after)
                    .fetch_all($pool)
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
                page.len()
            }};
        }
        loop {
            let n = match self {
                Self::Lite(p) => page!(p, SELECT_PAGE.to_owned()),
                Self::Pg(p) => page!(p, SELECT_PAGE.replace('?', "$1")),
            };
            if n < 1000 {
                break;
            }
        }
        recs
    }

    /// verify's packed query over every page, without parsing or hashing: rows, JSON bytes.
    async fn packed_all(&self, page_rows: i64) -> (i64, usize) {
        let (mut after, mut rows, mut bytes) = (i64::MIN, 0i64, 0usize);
        loop {
            let (count, last, json): (i64, Option<i64>, Option<String>) = match self {
                Self::Lite(p) => sqlx::query_as(PACKED_LITE)
                    .bind(after)
                    .bind(page_rows)
                    .fetch_one(p)
                    .await
                    .unwrap(),
                Self::Pg(p) => sqlx::query_as(PACKED_PG)
                    .bind(after)
                    .bind(page_rows)
                    .fetch_one(p)
                    .await
                    .unwrap(),
            };
            rows += count;
            bytes += json.map_or(0, |j| j.len());
            if count < page_rows {
                return (rows, bytes);
            }
            after = last.unwrap();
        }
    }

    /// Rows in the audit table.
    async fn count(&self) -> usize {
        let sql = "SELECT count(*) FROM audit";
        let n: i64 = match self {
            Self::Lite(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
            Self::Pg(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        };
        n as usize
    }

    async fn close(&self) {
        match self {
            Self::Lite(p) => p.close().await,
            Self::Pg(p) => p.close().await,
        }
    }
}

async fn timed_verify(st: &store::SqlStore, page: Option<i64>, rows: usize) -> Duration {
    let t = Instant::now();
    let report = st.verify_audit_with(page).await.unwrap();
    let took = t.elapsed();
    assert!(
        matches!(report, VerifyReport::Ok { rows: r, sealed: true } if r == rows as u64),
        "{report}"
    );
    took
}

#[tokio::main]
async fn main() {
    if !common::under_cargo_bench() {
        return;
    }
    println!("figure 6: audit chain");
    println!("{}", common::machine());
    let rows: usize = std::env::var("QM_AUDIT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let which = std::env::var("QM_AUDIT_DB").unwrap_or_else(|_| "sqlite".into());
    let dir = tempfile::tempdir().unwrap();
    let mut _scratch = None;
    let (url, file) = match which.as_str() {
        "sqlite" => {
            let path = dir.path().join("qm.db");
            (format!("sqlite://{}", path.display()), Some(path))
        }
        "postgres" => {
            let db = TestDb::create(Backend::Postgres).await;
            let url = db.url.clone();
            _scratch = Some(db);
            (url, None)
        }
        other => {
            let path = other
                .strip_prefix("sqlite://")
                .expect("QM_AUDIT_DB: sqlite, postgres or sqlite:///PATH");
            (format!("sqlite://{path}"), Some(path.into()))
        }
    };
    let backend = if url.starts_with("postgres") {
        "PostgreSQL (scratch database)"
    } else {
        "SQLite (WAL, synchronous = NORMAL)"
    };
    println!("backend: {backend}; chain of {rows} rows");
    let key = SecretSlice::from(b"benchmark audit key, 32 bytes!!".to_vec());
    let st = store::connect(&url, Some(key)).await.unwrap();
    let raw = Raw::connect(&url).await;

    let have = raw.count().await;
    if have == 0 {
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
        let plain = raw.plain_inserts(SINGLE).await;
        println!(
            "append, one event per transaction (sealed chain): {:.1} us; plain one-row INSERT \
             transaction: {:.1} us; ratio {:.2}",
            ours.as_secs_f64() * 1e6,
            plain.as_secs_f64() * 1e6,
            ours.as_secs_f64() / plain.as_secs_f64()
        );

        // Fill in transactions of 1,000 events.
        let t = Instant::now();
        let mut n = SINGLE;
        while n < rows {
            let k = BATCH.min(rows - n);
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
            fill.as_secs_f64() * 1e6 / (rows - SINGLE.min(rows)).max(1) as f64,
            rows - SINGLE.min(rows),
            fill.as_secs_f64()
        );
    } else {
        assert_eq!(have, rows, "QM_AUDIT_DB holds another chain length");
        println!("reusing the {have} rows already in {which}");
    }

    // Verify, as `audit verify` runs it; then the row-by-row reading it replaced.
    let t = Instant::now();
    let report = st.verify_audit().await.unwrap();
    let verify = t.elapsed();
    assert!(
        matches!(report, VerifyReport::Ok { rows: r, sealed: true } if r == rows as u64),
        "{report}"
    );
    println!(
        "audit verify over {rows} rows: {:.3} s ({report})",
        verify.as_secs_f64()
    );
    let row_by_row = timed_verify(&st, None, rows).await;
    println!(
        "before: row-by-row reading (pages of 1000 rows through the driver): {:.3} s; ratio \
         {:.2}",
        row_by_row.as_secs_f64(),
        row_by_row.as_secs_f64() / verify.as_secs_f64()
    );
    if let Ok(pages) = std::env::var("QM_AUDIT_PAGES") {
        for p in pages
            .split(',')
            .filter_map(|p| p.trim().parse::<i64>().ok())
        {
            let d = timed_verify(&st, Some(p), rows).await;
            println!(
                "audit verify, packed pages of {p}: {:.3} s",
                d.as_secs_f64()
            );
        }
    }

    // Reference 1: the database packing the same pages (verify's query, nothing checked).
    let t = Instant::now();
    let (packed_rows, packed_bytes) = raw.packed_all(20_000).await;
    let packed = t.elapsed();
    assert_eq!(packed_rows, rows as i64);
    println!(
        "reference: the packed query alone (pages of 20000, {packed_bytes} JSON bytes): {:.3} s",
        packed.as_secs_f64()
    );
    // Reference 2: the same rows through a plain paged SELECT, every column read.
    let t = Instant::now();
    let recs = raw.select_all().await;
    let read = t.elapsed();
    assert_eq!(recs.len(), rows);
    // Reference 3: SHA-256 over the same canonical bytes (serialised beforehand, not timed).
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
    drop(recs);
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
        "ratio verify/(select + sha256): {:.2}; verify/(packed query + sha256): {:.2}",
        verify.as_secs_f64() / (read + hash).as_secs_f64(),
        verify.as_secs_f64() / (packed + hash).as_secs_f64()
    );
    println!(
        "goal audit verify over 1,000,000 rows <= 2 s: {}",
        if rows < 1_000_000 {
            "not measured (fewer rows)"
        } else if verify <= Duration::from_secs(2) {
            "MET"
        } else {
            "MISSED"
        }
    );
    if let Some(f) = file {
        println!(
            "database size: {} MB",
            std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0) / 1_000_000
        );
    }
    raw.close().await;
}

//! Opening the database, and the housekeeping tables beside the domain ones (interaction
//! ids seen, SQLite's write-ahead log).

use super::*;

#[tokio::test]
async fn an_unreachable_postgres_fails_clearly_and_without_the_password() {
    // Port 1: nothing listens there.
    let e = connect("postgres://qm:hunter2@127.0.0.1:1/qm", None)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("cannot open the database"), "{text}");
    assert!(text.contains("postgres://qm:***@127.0.0.1:1/qm"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let e = connect("mysql://u@h/db", None).await.unwrap_err();
    assert!(e.to_string().contains("unsupported database URL"), "{e}");
    assert_eq!(
        redact_url("postgres://u:p@h:5432/db?x=1"),
        "postgres://u:***@h:5432/db?x=1"
    );
    assert_eq!(redact_url("sqlite://a/b.db"), "sqlite://a/b.db");
}

both!(opening_twice_reuses_the_file_and_pings);
async fn opening_twice_reuses_the_file_and_pings(b: Backend) {
    let f = fresh(b).await;
    assert!(f.store.ping().await);
    if b == Backend::Sqlite {
        let mode: String = q("PRAGMA journal_mode")
            .fetch_one(&f.store.pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(mode, "wal");
    }
    f.store
        .seed_people(&[person("alice", "Alice")])
        .await
        .unwrap();
    let url = f.db.url.clone();
    let again = connect(&url, None).await.unwrap();
    assert!(again.person(&h("alice")).await.unwrap().is_some());
}

both!(interactions_are_seen_once);
async fn interactions_are_seen_once(b: Backend) {
    let f = fresh(b).await;
    assert!(f.store.record_interaction("i-1", t0()).await.unwrap());
    assert!(!f.store.record_interaction("i-1", t0()).await.unwrap());
    assert!(f.store.record_interaction("i-2", t0()).await.unwrap());
}

both!(seen_ids_are_pruned_past_the_window);
async fn seen_ids_are_pruned_past_the_window(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let old = t0() - TimeDelta::minutes(20);
    assert!(s.record_interaction("i-old", old).await.unwrap());
    assert!(s.record_interaction("i-new", t0()).await.unwrap());
    assert!(s.mark_hr_event("e-old", old, vec![]).await.unwrap());
    assert!(s.mark_hr_event("e-new", t0(), vec![]).await.unwrap());
    let cut = t0() - TimeDelta::minutes(10);
    assert_eq!(s.prune_seen(cut, cut).await.unwrap(), (1, 1));
    let count = |t: &'static str| q(t).fetch_i64(&s.pool);
    assert_eq!(
        count("SELECT COUNT(*) FROM interactions_seen")
            .await
            .unwrap(),
        1
    );
    assert_eq!(count("SELECT COUNT(*) FROM hr_events").await.unwrap(), 1);
    // What is left still deduplicates; what went is new again.
    assert!(!s.record_interaction("i-new", t0()).await.unwrap());
    assert!(!s.mark_hr_event("e-new", t0(), vec![]).await.unwrap());
    assert!(s.record_interaction("i-old", t0()).await.unwrap());
    assert_eq!(s.prune_seen(cut, cut).await.unwrap(), (0, 0));
}

both!(stored_rows_carry_microsecond_timestamps);
async fn stored_rows_carry_microsecond_timestamps(b: Backend) {
    let f = fresh(b).await;
    submit(&f.store).await;
    let row = q("SELECT created_at FROM requests")
        .fetch_one(&f.store.pool)
        .await
        .unwrap();
    assert_eq!(
        row.try_get::<i64, _>("created_at").unwrap(),
        t0().timestamp_micros()
    );
}

both!(
    an_interaction_delivered_to_two_instances_is_acted_on_once,
    multi
);
async fn an_interaction_delivered_to_two_instances_is_acted_on_once(b: Backend) {
    // Two stores on one database stand for two instances behind a load balancer.
    let f = fresh(b).await;
    let other = connect(&f.db.url, None).await.unwrap();
    for round in 0..20 {
        let id = format!("ix-{round}");
        let (x, y) = tokio::join!(
            f.store.record_interaction(&id, t0()),
            other.record_interaction(&id, t0())
        );
        let firsts = [x.unwrap(), y.unwrap()].iter().filter(|s| **s).count();
        assert_eq!(firsts, 1, "interaction {id} was taken {firsts} times");
    }
}

#[tokio::test]
async fn sqlite_copies_its_write_ahead_log_into_the_file_in_the_background() {
    let f = fresh(Backend::Sqlite).await;
    let path = f.db.url.trim_start_matches("sqlite://").to_owned();
    let size = || std::fs::metadata(&path).unwrap().len();
    let before = size();
    // About 1 MB: a quarter of what SQLite's own automatic checkpoint would wait for (1,000
    // pages), so only the store's checkpoint task copies it into the file.
    for i in 0..100 {
        f.store
            .commit(Change {
                audit: vec![event(
                    AuditAction::GrantProvisioned,
                    &format!("{i}{}", "d".repeat(10_000)),
                    t0(),
                    ReqRef::None,
                )],
                ..Change::default()
            })
            .await
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while size() < before + 900_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the database file stayed at {} bytes (from {before}): no checkpoint ran",
            size()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(audit_count(&f.store).await, 100);
}

#[tokio::test]
async fn sqlite_writes_on_one_connection_with_the_larger_page_cache() {
    let f = fresh(Backend::Sqlite).await;
    let mut w = f.store.begin_write().await.unwrap();
    assert_eq!(
        cache_size(&mut w).await,
        -crate::store::db::WRITER_CACHE_KIB
    );
    w.commit().await.unwrap();
    // The next write transaction runs on the same (kept) connection, still enlarged.
    let mut w = f.store.begin_write().await.unwrap();
    assert_eq!(
        cache_size(&mut w).await,
        -crate::store::db::WRITER_CACHE_KIB
    );
    // Committed, so the writer keeps its connection (a dropped transaction would give it
    // back to the pool, where the reader below could take it).
    w.commit().await.unwrap();
    // A reader keeps SQLite's default (2 MiB, written as -2000).
    let mut r = f.store.pool.begin_read().await.unwrap();
    assert_eq!(cache_size(&mut r).await, -2000);
}

#[tokio::test]
async fn sqlite_a_failed_commit_is_rolled_back_and_frees_the_write_lock() {
    let f = fresh(Backend::Sqlite).await;
    let mut w = f.store.begin_write().await.unwrap();
    // A foreign key checked only at COMMIT: the COMMIT fails and SQLite keeps the
    // transaction open.
    q("PRAGMA defer_foreign_keys = ON")
        .execute(&mut w)
        .await
        .unwrap();
    q(
        "INSERT INTO steps (request_id, idx, rule, approvers, decided, reminded, escalated) \
       VALUES (999999, 0, 'it-admin', '[]', 0, 0, 0)",
    )
    .execute(&mut w)
    .await
    .unwrap();
    let e = w.commit().await.unwrap_err();
    assert!(e.to_string().contains("FOREIGN KEY"), "{e}");
    // The next writer is not held behind the failed transaction's lock (the busy timeout is
    // 10 s), and nothing of it landed.
    let next = tokio::time::timeout(Duration::from_secs(5), async {
        let mut w = f.store.begin_write().await?;
        q("INSERT INTO leases (name, holder, until) VALUES ('t', 'me', 1)")
            .execute(&mut w)
            .await?;
        w.commit().await
    })
    .await
    .expect("the next write waited on the failed transaction's lock");
    next.unwrap();
    let steps = q("SELECT COUNT(*) FROM steps")
        .fetch_i64(&f.store.pool)
        .await
        .unwrap();
    assert_eq!(steps, 0);
}

async fn cache_size(tx: &mut Tx) -> i64 {
    q("PRAGMA cache_size").fetch_i64(tx).await.unwrap()
}

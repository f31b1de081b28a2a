//! Deferred writes (`Tx::defer`) on both backends: one that changed what it had to stands
//! with its transaction and is seen by the transaction's next read; one that changed
//! otherwise (the stored state moved) or failed fails the transaction, and nothing written
//! before it lands; a transaction dropped before its commit leaves nothing. On SQLite they
//! wait for the next statement or the commit (as does the transaction's `BEGIN`); on
//! PostgreSQL they run at once.

use super::*;
use crate::store::db::{Expect, Tx};

fn event_row(id: &str) -> db::Q {
    q("INSERT INTO hr_events (id, at) VALUES (?, ?)")
        .bind(id)
        .bind(1_i64)
}

async fn count(tx: &mut Tx) -> Result<i64, sqlx::Error> {
    q("SELECT COUNT(*) FROM hr_events").fetch_i64(tx).await
}

async fn committed(f: &Fixture) -> i64 {
    q("SELECT COUNT(*) FROM hr_events")
        .fetch_i64(&f.store.pool)
        .await
        .unwrap()
}

async fn deferred_writes(b: Backend) {
    let f = fresh(b).await;

    // Two writes that changed what they had to: the next read sees them, the commit keeps
    // them.
    let mut w = f.store.begin_write().await.unwrap();
    w.defer(event_row("a"), Expect::Rows(1)).await.unwrap();
    w.defer(event_row("b"), Expect::Any).await.unwrap();
    assert_eq!(count(&mut w).await.unwrap(), 2);
    w.defer(event_row("c"), Expect::Rows(1)).await.unwrap();
    w.commit().await.unwrap();
    assert_eq!(committed(&f).await, 3);

    // A conditional write that finds the state moved (no row left to change) fails the
    // statement it goes with, as a conflict; the write before it does not land.
    let mut w = f.store.begin_write().await.unwrap();
    let failed = async {
        w.defer(event_row("d"), Expect::Rows(1)).await?;
        let moved = q("UPDATE hr_events SET at = 2 WHERE id = 'nobody'");
        w.defer(moved, Expect::Rows(1)).await?;
        count(&mut w).await
    }
    .await
    .unwrap_err();
    assert!(matches!(store_err(failed), StoreError::Conflict));
    drop(w);
    assert_eq!(committed(&f).await, 3);

    // The same when the commit is the next statement: the commit fails and rolls back.
    let mut w = f.store.begin_write().await.unwrap();
    let failed = async {
        w.defer(event_row("e"), Expect::Any).await?;
        let moved = q("UPDATE hr_events SET at = 2 WHERE id = 'nobody'");
        w.defer(moved, Expect::Rows(1)).await?;
        w.commit().await
    }
    .await
    .unwrap_err();
    assert!(matches!(store_err(failed), StoreError::Conflict));
    assert_eq!(committed(&f).await, 3);

    // A write the database refuses (a key taken) answers the database's own error.
    let mut w = f.store.begin_write().await.unwrap();
    let failed = async {
        w.defer(event_row("f"), Expect::Rows(1)).await?;
        w.defer(event_row("a"), Expect::Rows(1)).await?;
        count(&mut w).await
    }
    .await
    .unwrap_err();
    assert!(
        matches!(store_err(failed), StoreError::Duplicate(_)),
        "a taken key is a duplicate"
    );
    drop(w);
    assert_eq!(committed(&f).await, 3);

    // A transaction dropped after a write ran is rolled back before the next writer goes.
    let mut w = f.store.begin_write().await.unwrap();
    event_row("h").execute(&mut w).await.unwrap();
    assert_eq!(count(&mut w).await.unwrap(), 4);
    drop(w);

    // The writer is free again: the next transaction writes, and sees none of the above.
    let mut w = f.store.begin_write().await.unwrap();
    assert_eq!(count(&mut w).await.unwrap(), 3);
    w.defer(event_row("g"), Expect::Rows(1)).await.unwrap();
    w.commit().await.unwrap();
    assert_eq!(committed(&f).await, 4);
    // A transaction that wrote nothing commits nothing.
    let w = f.store.begin_write().await.unwrap();
    w.commit().await.unwrap();
    assert_eq!(committed(&f).await, 4);
}
both!(deferred_writes);

//! The genesis record and the anchor file.

use super::*;

both!(an_emptied_audit_table_is_caught_by_the_genesis_record);
/// Deleting every audit row and the seal does not pass for a fresh database (issue 17, 1).
async fn an_emptied_audit_table_is_caught_by_the_genesis_record(b: Backend) {
    // A fresh database verifies, with no rows.
    let f = fresh_with(b, Some(b"audit-secret")).await;
    assert_eq!(
        f.store.verify_audit().await.unwrap(),
        VerifyReport::Ok {
            rows: 0,
            sealed: true
        }
    );
    chain_of(&f.store, 5).await;
    exec(&f.store, "DELETE FROM audit").await;
    exec(&f.store, "DELETE FROM audit_seal").await;
    let r = f.store.verify_audit().await.unwrap();
    assert!(r.to_string().contains("the chain is empty"), "{r}");
    assert_eq!(broken_at(r), 1);

    // A new chain started on the emptied table is not the one the database began with.
    other_rows(&f.store, 2).await;
    let r = f.store.verify_audit().await.unwrap();
    assert!(r.to_string().contains("replaced"), "{r}");
    assert_eq!(broken_at(r), 1);

    // Without a key too; and the genesis record itself cannot go.
    let f = fresh(b).await;
    chain_of(&f.store, 3).await;
    exec(&f.store, "DELETE FROM audit").await;
    assert_eq!(broken_at(f.store.verify_audit().await.unwrap()), 1);
    exec(&f.store, "DELETE FROM audit_genesis").await;
    let r = f.store.verify_audit().await.unwrap();
    assert!(r.to_string().contains("genesis record"), "{r}");
    assert_eq!(broken_at(r), 0);
}

/// `n` rows unlike those of [`chain_of`].
async fn other_rows(store: &SqlStore, n: i64) {
    for i in 0..n {
        let at = t0() + TimeDelta::minutes(30 + i);
        let e = event(
            AuditAction::StepDenied,
            &format!("forged {i}"),
            at,
            ReqRef::None,
        );
        store
            .commit(Change {
                audit: vec![e],
                ..Change::default()
            })
            .await
            .unwrap();
    }
}

/// The store with its audit chain anchored to a file in a temporary folder.
async fn anchored(f: &Fixture) -> (SqlStore, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("anchors.log");
    let store = f.store.clone().anchor_to(&path).await.unwrap();
    (store, dir, path)
}

async fn seal_row(store: &SqlStore) -> (i64, String, String) {
    let r = q("SELECT seq, hash, mac FROM audit_seal WHERE id = 1")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    (
        r.try_get("seq").unwrap(),
        r.try_get("hash").unwrap(),
        r.try_get("mac").unwrap(),
    )
}

/// Rolls the chain back to the seal `old`: deletes the newer rows and puts the old seal
/// back, as someone who can write the database but has no key can.
async fn roll_back(store: &SqlStore, old: &(i64, String, String)) {
    q("DELETE FROM audit WHERE seq > ?")
        .bind(old.0)
        .execute(&store.pool)
        .await
        .unwrap();
    q("UPDATE audit_seal SET seq = ?, hash = ?, mac = ? WHERE id = 1")
        .bind(old.0)
        .bind(&old.1)
        .bind(&old.2)
        .execute(&store.pool)
        .await
        .unwrap();
}

both!(a_rollback_to_an_old_seal_is_caught_by_the_anchor_file);
/// Issue 17, item 1: with the key set, a kept copy of the seal lets someone cut the newest rows
/// off undetected by the seal; the anchor file catches it, naming the row.
async fn a_rollback_to_an_old_seal_is_caught_by_the_anchor_file(b: Backend) {
    let f = fresh_with(b, Some(b"audit-secret")).await;
    let (store, _dir, path) = anchored(&f).await;
    // Row 1 is the `audit.anchored` record; every commit adds a line.
    chain_of(&store, 5).await;
    let kept = seal_row(&store).await;
    assert_eq!(kept.0, 6);
    chain_of(&store, 5).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines = parse_anchors(&text).unwrap();
    assert!(matches!(lines[0].1, AnchorLine::Genesis { .. }), "{text}");
    assert_eq!(lines.len(), 12, "{text}");
    let (ok, summary) = store.verify_audit_anchored(&text).await.unwrap();
    assert_eq!(
        ok,
        VerifyReport::Ok {
            rows: 11,
            sealed: true
        }
    );
    assert_eq!((summary.seals, summary.highest), (11, 11));
    let rows = store.audit_rows(None).await.unwrap();
    assert_eq!(rows[0].action, "audit.anchored");

    roll_back(&f.store, &kept).await;
    // The seal alone cannot tell.
    assert!(f.store.verify_audit().await.unwrap().is_ok());
    let (r, _) = f.store.verify_audit_anchored(&text).await.unwrap();
    assert!(r.to_string().contains("truncation"), "{r}");
    assert_eq!(broken_at(r), 11);

    // Rows appended after the rollback: another head at the anchored rows.
    other_rows(&f.store, 6).await;
    assert!(f.store.verify_audit().await.unwrap().is_ok());
    let (r, _) = f.store.verify_audit_anchored(&text).await.unwrap();
    assert!(r.to_string().contains("differs"), "{r}");
    assert_eq!(broken_at(r), 7);
}

both!(a_wiped_or_replaced_database_is_caught_by_the_anchor_file);
/// An emptied audit table whose genesis record was reset too, and a database swapped for a
/// fresh one, are caught by the anchor file.
async fn a_wiped_or_replaced_database_is_caught_by_the_anchor_file(b: Backend) {
    let f = fresh_with(b, Some(b"audit-secret")).await;
    let (store, _dir, path) = anchored(&f).await;
    chain_of(&store, 3).await;
    let text = std::fs::read_to_string(&path).unwrap();
    exec(&f.store, "DELETE FROM audit").await;
    exec(&f.store, "DELETE FROM audit_seal").await;
    exec(&f.store, "UPDATE audit_genesis SET first_hash = NULL").await;
    assert!(f.store.verify_audit().await.unwrap().is_ok());
    let (r, _) = f.store.verify_audit_anchored(&text).await.unwrap();
    assert_eq!(broken_at(r), 4);

    let other = fresh_with(b, Some(b"audit-secret")).await;
    let (r, _) = other.store.verify_audit_anchored(&text).await.unwrap();
    assert!(r.to_string().contains("replaced or re-created"), "{r}");
    assert_eq!(broken_at(r), 0);

    // A line added by someone without the key is named as such.
    let f = fresh_with(b, Some(b"audit-secret")).await;
    let (store, _dir, path) = anchored(&f).await;
    chain_of(&store, 2).await;
    let rows = store.audit_rows(None).await.unwrap();
    let forged = format!(
        "{}seal 2 {} {} 2025-01-01T00:00:00.000000Z\n",
        std::fs::read_to_string(&path).unwrap(),
        rows[1].hash,
        "00".repeat(32)
    );
    let (r, _) = store.verify_audit_anchored(&forged).await.unwrap();
    assert!(r.to_string().contains("MAC"), "{r}");
    assert_eq!(broken_at(r), 2);
    // An unreadable line is an error naming it.
    let e = store
        .verify_audit_anchored("genesis 2025-01-01T00:00:00Z\nnonsense\n")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
}

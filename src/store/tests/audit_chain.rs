//! The audit hash chain: tampering found, and what the seal adds.

use super::*;

both!(a_fresh_chain_of_fifty_rows_verifies);
async fn a_fresh_chain_of_fifty_rows_verifies(b: Backend) {
    let f = fresh(b).await;
    assert_eq!(
        f.store.verify_audit().await.unwrap(),
        VerifyReport::Ok {
            rows: 0,
            sealed: false
        }
    );
    chain_of(&f.store, 50).await;
    let report = f.store.verify_audit().await.unwrap();
    assert_eq!(
        report,
        VerifyReport::Ok {
            rows: 50,
            sealed: false
        }
    );
    assert!(report.to_string().contains("not detectable"), "{report}");
    let rows = f.store.audit_rows(None).await.unwrap();
    assert_eq!(rows[0].prev_hash, audit::GENESIS);
    assert_eq!(rows[1].prev_hash, rows[0].hash);
    assert!(rows.iter().all(|r| {
        r.hash.len() == 64
            && r.hash
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    }));
}

both!(a_changed_detail_breaks_the_chain_at_that_row);
async fn a_changed_detail_breaks_the_chain_at_that_row(b: Backend) {
    let f = fresh(b).await;
    chain_of(&f.store, 50).await;
    exec(
        &f.store,
        "UPDATE audit SET detail = 'nothing happened' WHERE seq = 17",
    )
    .await;
    let r = f.store.verify_audit().await.unwrap();
    assert!(r.to_string().contains("changed"), "{r}");
    assert_eq!(broken_at(r), 17);
}

both!(a_deleted_middle_row_breaks_the_chain);
async fn a_deleted_middle_row_breaks_the_chain(b: Backend) {
    let f = fresh(b).await;
    chain_of(&f.store, 50).await;
    exec(&f.store, "DELETE FROM audit WHERE seq = 20").await;
    let r = f.store.verify_audit().await.unwrap();
    assert!(r.to_string().contains("missing"), "{r}");
    assert_eq!(broken_at(r), 21);
}

both!(a_deleted_and_renumbered_row_breaks_the_chain);
async fn a_deleted_and_renumbered_row_breaks_the_chain(b: Backend) {
    let f = fresh(b).await;
    chain_of(&f.store, 10).await;
    exec(&f.store, "DELETE FROM audit WHERE seq = 5").await;
    exec(&f.store, "UPDATE audit SET seq = seq - 1 WHERE seq > 5").await;
    assert_eq!(broken_at(f.store.verify_audit().await.unwrap()), 5);
}

both!(swapped_rows_break_the_chain);
async fn swapped_rows_break_the_chain(b: Backend) {
    let f = fresh(b).await;
    chain_of(&f.store, 50).await;
    // Swap every column but seq between rows 10 and 11 (hashes travel with their rows).
    exec(&f.store, "UPDATE audit SET seq = -10 WHERE seq = 10").await;
    exec(&f.store, "UPDATE audit SET seq = 10 WHERE seq = 11").await;
    exec(&f.store, "UPDATE audit SET seq = 11 WHERE seq = -10").await;
    assert_eq!(broken_at(f.store.verify_audit().await.unwrap()), 10);
}

both!(without_a_key_truncation_is_not_detectable);
async fn without_a_key_truncation_is_not_detectable(b: Backend) {
    let f = fresh(b).await;
    chain_of(&f.store, 10).await;
    exec(&f.store, "DELETE FROM audit WHERE seq > 7").await;
    let r = f.store.verify_audit().await.unwrap();
    assert_eq!(
        r,
        VerifyReport::Ok {
            rows: 7,
            sealed: false
        }
    );
}

both!(with_a_key_truncation_is_caught_by_the_seal);
async fn with_a_key_truncation_is_caught_by_the_seal(b: Backend) {
    let f = fresh_with(b, Some(b"audit-secret")).await;
    chain_of(&f.store, 50).await;
    assert_eq!(
        f.store.verify_audit().await.unwrap(),
        VerifyReport::Ok {
            rows: 50,
            sealed: true
        }
    );
    exec(&f.store, "DELETE FROM audit WHERE seq > 47").await;
    let r = f.store.verify_audit().await.unwrap();
    assert!(r.to_string().contains("truncation"), "{r}");
    assert_eq!(broken_at(r), 48);
}

both!(with_a_key_a_missing_seal_is_caught);
async fn with_a_key_a_missing_seal_is_caught(b: Backend) {
    let f = fresh_with(b, Some(b"audit-secret")).await;
    chain_of(&f.store, 5).await;
    exec(&f.store, "DELETE FROM audit_seal").await;
    assert_eq!(broken_at(f.store.verify_audit().await.unwrap()), 5);
}

both!(with_a_key_a_wrong_key_is_caught);
async fn with_a_key_a_wrong_key_is_caught(b: Backend) {
    let f = fresh_with(b, Some(b"audit-secret")).await;
    chain_of(&f.store, 5).await;
    let url = f.db.url.clone();
    let other = connect(&url, Some(SecretSlice::from(b"another".to_vec())))
        .await
        .unwrap();
    let r = other.verify_audit().await.unwrap();
    assert!(r.to_string().contains("HMAC"), "{r}");
}

/// Rewrites the chain from row 1 with SQL-level access only: hashes are recomputed, and the
/// seal's seq and hash follow, but its MAC cannot be redone without the key.
async fn recompute_chain(store: &SqlStore, also_fix_seal: bool) {
    let rows = store.audit_rows(None).await.unwrap();
    let mut prev = audit::GENESIS.to_owned();
    for mut r in rows {
        r.prev_hash = prev;
        r.hash = r.compute_hash();
        q("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?")
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .bind(r.seq)
            .execute(&store.pool)
            .await
            .unwrap();
        prev = r.hash;
    }
    if also_fix_seal {
        q("UPDATE audit_seal SET hash = ?")
            .bind(&prev)
            .execute(&store.pool)
            .await
            .unwrap();
    }
}

both!(with_a_key_a_recomputed_chain_is_caught_by_the_seal);
async fn with_a_key_a_recomputed_chain_is_caught_by_the_seal(b: Backend) {
    for fix_seal in [false, true] {
        let f = fresh_with(b, Some(b"audit-secret")).await;
        chain_of(&f.store, 50).await;
        exec(&f.store, "UPDATE audit SET detail = 'forged' WHERE seq = 3").await;
        assert_eq!(broken_at(f.store.verify_audit().await.unwrap()), 3);
        recompute_chain(&f.store, fix_seal).await;
        let r = f.store.verify_audit().await.unwrap();
        assert!(!r.is_ok(), "fix_seal={fix_seal}: {r}");
        assert_eq!(broken_at(r), 50, "fix_seal={fix_seal}");

        // The same forgery is invisible without a key: that is what the seal is for.
        let url = f.db.url.clone();
        let unkeyed = connect(&url, None).await.unwrap();
        assert!(unkeyed.verify_audit().await.unwrap().is_ok());
    }
}

both!(a_row_slipped_in_before_the_chain_breaks_it);
async fn a_row_slipped_in_before_the_chain_breaks_it(b: Backend) {
    let f = fresh(b).await;
    chain_of(&f.store, 3).await;
    exec(
        &f.store,
        "INSERT INTO audit SELECT 0, at, actor, actor_chat_id, action, subject, app, request_id, \
         connector_action, outcome, detail, prev_hash, hash FROM audit WHERE seq = 1",
    )
    .await;
    assert_eq!(broken_at(f.store.verify_audit().await.unwrap()), 0);
}

both!(two_processes_appending_in_turn_keep_one_chain);
/// Each store (as each process) keeps the head its last commit left and appends after it
/// without reading it; when the other appended meanwhile, or rows went, the append chains
/// after the head as it stands, so the file holds one chain.
async fn two_processes_appending_in_turn_keep_one_chain(b: Backend) {
    let f = fresh(b).await;
    let other = connect(&f.db.url, None).await.unwrap();
    for round in 0..3 {
        chain_of(&f.store, 2).await;
        chain_of(&other, 1 + round).await;
    }
    chain_of(&f.store, 1).await;
    assert_eq!(
        f.store.verify_audit().await.unwrap(),
        VerifyReport::Ok {
            rows: 13,
            sealed: false
        }
    );
    // The newest rows cut off behind this store's back: its next row follows the head as it
    // now stands (row 11), not the one it kept (row 13).
    exec(&f.store, "DELETE FROM audit WHERE seq > 11").await;
    chain_of(&f.store, 1).await;
    let rows = f.store.audit_rows(None).await.unwrap();
    assert_eq!(rows.len(), 12);
    assert!(f.store.verify_audit().await.unwrap().is_ok());
    // A group commit appends every change's rows after one another.
    let changes = (0..3)
        .map(|i| Change {
            audit: vec![event(
                AuditAction::StepApproved,
                &format!("g{i}"),
                t0(),
                ReqRef::None,
            )],
            ..Change::default()
        })
        .collect();
    f.store.commit_group(changes).await.unwrap();
    chain_of(&other, 1).await;
    assert_eq!(
        f.store.verify_audit().await.unwrap(),
        VerifyReport::Ok {
            rows: 16,
            sealed: false
        }
    );
}

both!(a_group_commit_after_another_process_appended_lands_whole_or_not_at_all);
/// A group commit sends its audit rows with its COMMIT, chained after the head this store
/// kept (SQLite). When another process appended meanwhile, it fails as a conflict and
/// nothing of it lands (its caller commits each change again on its own, which chains after
/// the head as it stands); PostgreSQL reads the head under its lock, so the group lands.
/// Sealed with a key throughout: the seal goes with the COMMIT too.
async fn a_group_commit_after_another_process_appended_lands_whole_or_not_at_all(b: Backend) {
    let f = fresh_with(b, Some(b"audit-secret")).await;
    let other = connect(&f.db.url, Some(SecretSlice::from(b"audit-secret".to_vec())))
        .await
        .unwrap();
    let group = |tag: &str| -> Vec<Change> {
        (0..3)
            .map(|i| Change {
                audit: vec![event(
                    AuditAction::StepApproved,
                    &format!("{tag}{i}"),
                    t0(),
                    ReqRef::None,
                )],
                ..Change::default()
            })
            .collect()
    };
    let sealed = |rows| VerifyReport::Ok { rows, sealed: true };
    f.store.commit_group(group("a")).await.unwrap();
    assert_eq!(f.store.verify_audit().await.unwrap(), sealed(3));
    chain_of(&other, 2).await;
    let out = f.store.commit_group(group("b")).await;
    let rows = match (b, out) {
        (Backend::Sqlite, Err(StoreError::Conflict)) => 5,
        (Backend::Postgres, Ok(_)) => 8,
        (b, out) => panic!("{b:?}: {out:?}"),
    };
    assert_eq!(f.store.verify_audit().await.unwrap(), sealed(rows));
    // What the group's caller does after a failure: each change on its own.
    for change in group("c") {
        f.store.commit(change).await.unwrap();
    }
    f.store.commit_group(group("d")).await.unwrap();
    assert_eq!(f.store.verify_audit().await.unwrap(), sealed(rows + 6));
}

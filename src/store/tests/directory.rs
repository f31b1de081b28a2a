//! The built-in `directory` connector's tables.

use super::*;

both!(the_directory_tables_report_what_changed);
async fn the_directory_tables_report_what_changed(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    assert_eq!(s.dir_account("dir", "alice").await.unwrap(), None);
    assert!(
        s.dir_create_account("dir", "alice", "alice@acme.test", "Alice")
            .await
            .unwrap()
    );
    assert!(
        !s.dir_create_account("dir", "alice", "alice@acme.test", "Alice")
            .await
            .unwrap()
    );
    let (id, active) = s.dir_account("dir", "alice").await.unwrap().unwrap();
    assert!(active);
    assert!(!id.is_empty());
    assert_eq!(s.dir_account("other", "alice").await.unwrap(), None);

    assert!(s.dir_set_active("dir", "alice", false).await.unwrap());
    assert!(!s.dir_set_active("dir", "alice", false).await.unwrap());
    assert_eq!(
        s.dir_account("dir", "alice").await.unwrap(),
        Some((id.clone(), false))
    );
    assert!(s.dir_set_active("dir", "alice", true).await.unwrap());
    assert!(!s.dir_set_active("dir", "nobody", true).await.unwrap());

    assert!(
        s.dir_add_member("dir", "alice", "figma-editors")
            .await
            .unwrap()
    );
    assert!(
        !s.dir_add_member("dir", "alice", "figma-editors")
            .await
            .unwrap()
    );
    assert!(s.dir_add_member("dir", "alice", "admins").await.unwrap());
    assert_eq!(
        s.dir_memberships("dir", "alice").await.unwrap(),
        ["admins", "figma-editors"]
    );
    assert!(s.dir_remove_member("dir", "alice", "admins").await.unwrap());
    assert!(!s.dir_remove_member("dir", "alice", "admins").await.unwrap());
    assert_eq!(
        s.dir_memberships("dir", "alice").await.unwrap(),
        ["figma-editors"]
    );

    assert!(s.dir_delete_account("dir", "alice").await.unwrap());
    assert!(!s.dir_delete_account("dir", "alice").await.unwrap());
    assert!(s.dir_memberships("dir", "alice").await.unwrap().is_empty());
}

both!(directory_grants_in_bulk_report_what_changed);
async fn directory_grants_in_bulk_report_what_changed(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    assert!(
        s.dir_create_account("dir", "bob", "bob@acme.test", "Bob")
            .await
            .unwrap()
    );
    assert!(s.dir_set_active("dir", "bob", false).await.unwrap());
    assert!(
        s.dir_create_account("dir", "carol", "carol@acme.test", "Carol")
            .await
            .unwrap()
    );
    assert!(s.dir_add_member("dir", "carol", "wiki").await.unwrap());
    let (mut changed, mut added) = s
        .dir_grant_many(
            "dir",
            &[
                ("alice", "alice@acme.test", "Alice"),
                ("bob", "bob@acme.test", "Bob"),
                ("carol", "carol@acme.test", "Carol"),
            ],
            &[
                ("alice", "figma"),
                ("bob", "figma"),
                ("carol", "wiki"),
                ("carol", "figma"),
            ],
        )
        .await
        .unwrap();
    changed.sort();
    added.sort();
    // alice's account was created, bob's enabled; carol's was there and active.
    assert_eq!(changed, ["alice", "bob"]);
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        added,
        [
            pair("alice", "figma"),
            pair("bob", "figma"),
            pair("carol", "figma")
        ]
    );
    assert_eq!(
        s.dir_account("dir", "bob").await.unwrap().map(|a| a.1),
        Some(true)
    );
    assert_eq!(
        s.dir_account("dir", "alice").await.unwrap().map(|a| a.0),
        Some("dir:alice".to_owned())
    );
    // The same again changes nothing.
    let (changed, added) = s
        .dir_grant_many(
            "dir",
            &[("alice", "alice@acme.test", "Alice")],
            &[("alice", "figma")],
        )
        .await
        .unwrap();
    assert!(changed.is_empty() && added.is_empty());
    // The one-statement grant needs an active account.
    assert!(
        !s.dir_add_member_if_active("dir", "dave", "figma")
            .await
            .unwrap()
    );
    assert!(
        s.dir_add_member_if_active("dir", "alice", "wiki")
            .await
            .unwrap()
    );
    assert!(
        !s.dir_add_member_if_active("dir", "alice", "wiki")
            .await
            .unwrap()
    );
    assert!(s.dir_set_active("dir", "alice", false).await.unwrap());
    assert!(
        !s.dir_add_member_if_active("dir", "alice", "notion")
            .await
            .unwrap()
    );
}

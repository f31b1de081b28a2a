//! Grants: one live grant of an app per person, grants ending by a time.

use super::*;

both!(a_second_live_grant_of_one_app_is_a_duplicate);
async fn a_second_live_grant_of_one_app_is_a_duplicate(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let first = s
        .commit(Change {
            new_grants: vec![new_grant("alice", "figma")],
            ..Change::default()
        })
        .await
        .unwrap()
        .grants[0];
    let dup = Change {
        new_grants: vec![NewGrant {
            state: GrantState::Pending,
            ..new_grant("alice", "figma")
        }],
        audit: vec![event(AuditAction::RequestSubmitted, "", t0(), ReqRef::None)],
        ..Change::default()
    };
    assert!(matches!(
        s.commit(dup.clone()).await,
        Err(StoreError::Duplicate(_))
    ));
    assert_eq!(audit_count(s).await, 0);
    // Another person, or another app, is fine.
    s.commit(Change {
        new_grants: vec![new_grant("bob", "figma"), new_grant("alice", "slack")],
        ..Change::default()
    })
    .await
    .unwrap();
    // Revoking is still live; revoked is not.
    let set = |from, state| Change {
        grant_updates: vec![GrantUpdate {
            id: first,
            from,
            state,
            granted_at: Some(t0()),
            expires_at: None,
            warned: false,
        }],
        ..Change::default()
    };
    s.commit(set(GrantState::Active, GrantState::Revoking))
        .await
        .unwrap();
    assert!(matches!(
        s.commit(dup.clone()).await,
        Err(StoreError::Duplicate(_))
    ));
    s.commit(set(GrantState::Revoking, GrantState::Revoked))
        .await
        .unwrap();
    let again = s.commit(dup).await.unwrap().grants[0];
    // Bringing the old grant back to life would make two.
    assert!(matches!(
        s.commit(set(GrantState::Revoked, GrantState::Active)).await,
        Err(StoreError::Duplicate(_))
    ));
    let live: Vec<GrantId> = s
        .grants_of(&h("alice"))
        .await
        .unwrap()
        .iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(live.len(), 2);
    assert!(live.contains(&again));
}

both!(grants_ending_by_lists_active_grants_with_an_end);
async fn grants_ending_by_lists_active_grants_with_an_end(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let c = s
        .commit(Change {
            new_grants: vec![
                NewGrant {
                    expires_at: Some(t0() + TimeDelta::hours(1)),
                    ..new_grant("alice", "figma")
                },
                NewGrant {
                    expires_at: Some(t0() + TimeDelta::hours(3)),
                    ..new_grant("alice", "slack")
                },
                NewGrant {
                    state: GrantState::Pending,
                    expires_at: Some(t0()),
                    ..new_grant("bob", "figma")
                },
                new_grant("bob", "slack"),
            ],
            ..Change::default()
        })
        .await
        .unwrap();
    let ids = |v: Vec<Grant>| v.into_iter().map(|g| g.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s
            .grants_ending_by(t0() + TimeDelta::hours(1))
            .await
            .unwrap()),
        vec![c.grants[0]]
    );
    assert_eq!(
        ids(s
            .grants_ending_by(t0() + TimeDelta::hours(5))
            .await
            .unwrap()),
        vec![c.grants[0], c.grants[1]]
    );
}

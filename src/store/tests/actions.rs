//! The action queue: claims, leases, releases, grouped updates, conditional state changes.

use super::*;

both!(claimed_actions_are_leased_and_not_before_is_respected);
async fn claimed_actions_are_leased_and_not_before_is_respected(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let action = |at| NewAction {
        app: Some(app("figma")),
        entitlement: Some("editors".into()),
        at,
        ..queued("design", ActionOp::Grant)
    };
    let c = s
        .commit(Change {
            new_actions: vec![action(t0()), action(t0() + TimeDelta::hours(1))],
            ..Change::default()
        })
        .await
        .unwrap();
    let (a, b) = (c.actions[0], c.actions[1]);
    let lease = Duration::from_secs(60);

    let got = s.claim_action(t0(), lease).await.unwrap().unwrap();
    assert_eq!(
        (got.id, got.state, got.attempts),
        (a, ActionState::Running, 1)
    );
    // Leased: nobody else gets it; b is not due yet.
    assert!(s.claim_action(t0(), lease).await.unwrap().is_none());
    assert!(
        s.claim_action(t0() + TimeDelta::seconds(59), lease)
            .await
            .unwrap()
            .is_none()
    );
    // The lease ended (the worker died): it is claimed again, counting the attempt.
    let again = s
        .claim_action(t0() + TimeDelta::seconds(61), lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.id, again.attempts), (a, 2));
    assert_eq!(s.queue_depth().await.unwrap(), 2);

    // Finished: never claimed again.
    s.commit(Change {
        action_updates: vec![ActionUpdate {
            id: a,
            from: ActionState::Running,
            state: ActionState::Done,
            last_error: None,
            not_before: t0() + TimeDelta::seconds(61),
            reset_attempts: false,
        }],
        ..Change::default()
    })
    .await
    .unwrap();
    assert!(
        s.claim_action(t0() + TimeDelta::minutes(30), lease)
            .await
            .unwrap()
            .is_none()
    );
    let got = s
        .claim_action(t0() + TimeDelta::hours(1), lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.id, b);

    // A retry with backoff waits for its not_before.
    s.commit(Change {
        action_updates: vec![ActionUpdate {
            id: b,
            from: ActionState::Running,
            state: ActionState::Pending,
            last_error: Some("timeout".into()),
            not_before: t0() + TimeDelta::hours(2),
            reset_attempts: false,
        }],
        ..Change::default()
    })
    .await
    .unwrap();
    assert!(
        s.claim_action(t0() + TimeDelta::minutes(90), lease)
            .await
            .unwrap()
            .is_none()
    );
    let retried = s
        .claim_action(t0() + TimeDelta::hours(2), lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((retried.id, retried.attempts), (b, 2));
    assert_eq!(retried.last_error.as_deref(), Some("timeout"));
    assert_eq!(s.queue_depth().await.unwrap(), 1);
}

both!(claims_can_skip_connectors_at_their_cap);
async fn claims_can_skip_connectors_at_their_cap(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let action = |conn: &str| NewAction {
        app: Some(app("figma")),
        entitlement: Some("editors".into()),
        ..queued(conn, ActionOp::Grant)
    };
    s.commit(Change {
        new_actions: vec![action("design"), action("design-2"), action("wiki")],
        ..Change::default()
    })
    .await
    .unwrap();
    let lease = Duration::from_secs(60);
    let skip = [
        ConnectorName::parse("design").unwrap(),
        ConnectorName::parse("wiki").unwrap(),
    ];
    // "design-2" is not "design": names are matched whole.
    let got = s
        .claim_action_except(t0(), lease, &skip)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.connector.as_str(), "design-2");
    assert!(
        s.claim_action_except(t0(), lease, &skip)
            .await
            .unwrap()
            .is_none()
    );
    let got = s
        .claim_action_except(t0(), lease, &skip[1..])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.connector.as_str(), "design");
    let got = s
        .claim_action_except(t0(), lease, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.connector.as_str(), "wiki");
}

both!(a_batch_claim_takes_the_oldest_due_actions_skipping_connectors);
async fn a_batch_claim_takes_the_oldest_due_actions_skipping_connectors(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let mut actions = Vec::new();
    for conn in ["design", "wiki", "design", "design", "wiki"] {
        actions.push(queued(conn, ActionOp::Disable));
    }
    // Not due yet.
    actions.push(NewAction {
        at: t0() + TimeDelta::minutes(5),
        ..queued("design", ActionOp::Disable)
    });
    let ids = s
        .commit(Change {
            new_actions: actions,
            ..Change::default()
        })
        .await
        .unwrap()
        .actions;
    let lease = Duration::from_secs(60);
    let wiki = [ConnectorName::parse("wiki").unwrap()];
    let got = s.claim_actions(t0(), lease, &wiki, 2).await.unwrap();
    assert_eq!(
        got.iter().map(|a| a.id).collect::<Vec<_>>(),
        [ids[0], ids[2]]
    );
    assert!(got.iter().all(|a| a.state == ActionState::Running));
    assert!(got.iter().all(|a| a.attempts == 1));
    let got = s.claim_actions(t0(), lease, &[], 10).await.unwrap();
    assert_eq!(
        got.iter().map(|a| a.id).collect::<Vec<_>>(),
        [ids[1], ids[3], ids[4]]
    );
    assert!(
        s.claim_actions(t0(), lease, &[], 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A renewed lease holds past the first one's end; a lapsed one is claimed again.
    let later = t0() + TimeDelta::seconds(90);
    assert_eq!(
        s.extend_leases(&[ids[0], ids[5]], t0() + TimeDelta::seconds(120))
            .await
            .unwrap(),
        1,
        "only the running action is renewed"
    );
    let got = s.claim_actions(later, lease, &[], 10).await.unwrap();
    assert_eq!(
        got.iter().map(|a| a.id).collect::<Vec<_>>(),
        [ids[1], ids[2], ids[3], ids[4]]
    );
    assert!(got.iter().all(|a| a.attempts == 2));
}

both!(a_release_puts_back_only_a_running_action);
async fn a_release_puts_back_only_a_running_action(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let ids = s
        .commit(Change {
            new_actions: vec![queued("design", ActionOp::Disable); 2],
            ..Change::default()
        })
        .await
        .unwrap()
        .actions;
    let lease = Duration::from_secs(60);
    assert_eq!(s.claim_actions(t0(), lease, &[], 2).await.unwrap().len(), 2);
    s.commit(Change {
        action_updates: vec![ActionUpdate {
            id: ids[1],
            from: ActionState::Running,
            state: ActionState::Done,
            last_error: None,
            not_before: t0(),
            reset_attempts: false,
        }],
        ..Change::default()
    })
    .await
    .unwrap();
    assert!(s.release_action(ids[0], t0(), "stopping").await.unwrap());
    assert!(!s.release_action(ids[1], t0(), "stopping").await.unwrap());
    let a = s.action(ids[0]).await.unwrap().unwrap();
    assert_eq!(a.state, ActionState::Pending);
    assert_eq!(a.last_error.as_deref(), Some("stopping"));
    assert_eq!(
        s.action(ids[1]).await.unwrap().unwrap().state,
        ActionState::Done
    );
}

both!(updates_setting_the_same_values_are_written_together);
async fn updates_setting_the_same_values_are_written_together(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let c = s
        .commit(Change {
            new_grants: vec![new_grant("alice", "figma"), new_grant("alice", "notion")],
            new_actions: vec![queued("design", ActionOp::Disable); 3],
            ..Change::default()
        })
        .await
        .unwrap();
    let done = |id, from, state, err: Option<&str>| ActionUpdate {
        id,
        from,
        state,
        last_error: err.map(str::to_owned),
        not_before: t0(),
        reset_attempts: false,
    };
    s.commit(Change {
        action_updates: vec![
            done(c.actions[0], ActionState::Pending, ActionState::Done, None),
            done(
                c.actions[1],
                ActionState::Pending,
                ActionState::Failed,
                Some("no"),
            ),
            done(c.actions[2], ActionState::Pending, ActionState::Done, None),
        ],
        grant_updates: c
            .grants
            .iter()
            .map(|&id| GrantUpdate {
                id,
                from: GrantState::Active,
                state: GrantState::Revoked,
                granted_at: Some(t0()),
                expires_at: None,
                warned: false,
            })
            .collect(),
        ..Change::default()
    })
    .await
    .unwrap();
    let states: Vec<_> = {
        let mut v = Vec::new();
        for id in &c.actions {
            let a = s.action(*id).await.unwrap().unwrap();
            v.push((a.state, a.last_error));
        }
        v
    };
    assert_eq!(
        states,
        [
            (ActionState::Done, None),
            (ActionState::Failed, Some("no".into())),
            (ActionState::Done, None)
        ]
    );
    let grants = s.grants_by_id(&c.grants).await.unwrap();
    assert_eq!(grants.len(), 2);
    assert!(grants.iter().all(|g| g.state == GrantState::Revoked));
    // An update of a row that does not exist fails the whole change.
    let e = s
        .commit(Change {
            action_updates: vec![
                done(c.actions[0], ActionState::Done, ActionState::Pending, None),
                done(
                    ActionId(999_999),
                    ActionState::Done,
                    ActionState::Pending,
                    None,
                ),
            ],
            ..Change::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Backend(_)), "{e}");
    assert_eq!(
        s.action(c.actions[0]).await.unwrap().unwrap().state,
        ActionState::Done
    );
}

both!(concurrent_claims_hand_each_action_to_one_worker, multi);
async fn concurrent_claims_hand_each_action_to_one_worker(b: Backend) {
    let f = fresh(b).await;
    let action = queued("design", ActionOp::Disable);
    f.store
        .commit(Change {
            new_actions: vec![action; 5],
            ..Change::default()
        })
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let s = f.store.clone();
        tasks.push(tokio::spawn(async move {
            s.claim_action(t0(), Duration::from_secs(60)).await
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        if let Some(a) = t.await.unwrap().unwrap() {
            ids.push(a.id);
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5);
}

both!(state_changes_are_conditional_on_the_state_they_leave, multi);
async fn state_changes_are_conditional_on_the_state_they_leave(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let c = s
        .commit(Change {
            new_grants: vec![new_grant("alice", "figma")],
            new_actions: vec![queued("design", ActionOp::Grant)],
            ..Change::default()
        })
        .await
        .unwrap();
    let (g, a) = (c.grants[0], c.actions[0]);
    let grant_to = |from, state| GrantUpdate {
        id: g,
        from,
        state,
        granted_at: Some(t0()),
        expires_at: None,
        warned: false,
    };
    // Thirty simultaneous moves of one grant from active, each with its audit row: one wins,
    // the others fail whole (no row of theirs is written).
    let before = audit_count(s).await;
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let s = s.clone();
        let ch = Change {
            grant_updates: vec![grant_to(GrantState::Active, GrantState::Revoking)],
            audit: vec![event(AuditAction::GrantExpired, "", t0(), ReqRef::None)],
            ..Change::default()
        };
        tasks.push(tokio::spawn(async move { s.commit(ch).await }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(audit_count(s).await, before + 1);
    assert_eq!(
        s.grants_by_id(&[g]).await.unwrap()[0].state,
        GrantState::Revoking
    );

    // The same for an action: thirty moves from waiting to done.
    s.commit(Change {
        action_updates: vec![ActionUpdate {
            id: a,
            from: ActionState::Pending,
            state: ActionState::Waiting,
            last_error: None,
            not_before: t0(),
            reset_attempts: false,
        }],
        ..Change::default()
    })
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let s = s.clone();
        let ch = Change {
            action_updates: vec![ActionUpdate::done(a, ActionState::Waiting, t0())],
            audit: vec![event(AuditAction::GrantProvisioned, "", t0(), ReqRef::None)],
            ..Change::default()
        };
        tasks.push(tokio::spawn(async move { s.commit(ch).await }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(audit_count(s).await, before + 2);
    assert_eq!(s.action(a).await.unwrap().unwrap().state, ActionState::Done);
    // A stale state is a conflict; a row that does not exist is still an error of its own.
    let stale = s
        .commit(Change {
            grant_updates: vec![grant_to(GrantState::Active, GrantState::Revoked)],
            ..Change::default()
        })
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
}

//! Requests: round trips, optimistic updates, racing commits and their audit rows.

use super::*;

both!(a_request_round_trips_with_its_steps_grant_and_actions);
async fn a_request_round_trips_with_its_steps_grant_and_actions(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let c = s
        .commit(Change {
            new_request: Some(NewRequest {
                grant: Some(GrantRef::New(0)),
                ..new_request()
            }),
            new_grants: vec![NewGrant {
                source: NewGrantSource::Request(ReqRef::New),
                state: GrantState::Pending,
                expires_at: Some(t0() + TimeDelta::hours(8)),
                ..new_grant("alice", "figma")
            }],
            new_actions: vec![NewAction {
                app: Some(app("figma")),
                entitlement: Some("figma-editors".into()),
                grant: Some(GrantRef::New(0)),
                request: ReqRef::New,
                ..queued("design", ActionOp::Grant)
            }],
            audit: vec![event(AuditAction::RequestSubmitted, "", t0(), ReqRef::New)],
            ..Change::default()
        })
        .await
        .unwrap();
    let id = c.request.unwrap();
    let r = s.request(id).await.unwrap().unwrap();
    assert_eq!(r.requester, h("alice"));
    assert_eq!(r.app, app("figma"));
    assert_eq!(r.reason.as_deref(), Some("INC-1, design review"));
    assert_eq!(r.duration, Some(Span::parse("8h").unwrap()));
    assert_eq!(r.kind, RequestKind::New);
    assert_eq!(r.state, RequestState::Awaiting(1));
    assert_eq!(r.steps, steps());
    assert_eq!(r.grant, Some(c.grants[0]));
    assert_eq!(r.created_at, t0());
    assert_eq!(r.version, 1);
    assert_eq!(r.current_step().unwrap().index, 1);

    let g = s.grant(c.grants[0]).await.unwrap().unwrap();
    assert_eq!(g.source, GrantSource::Request(id));
    assert_eq!(g.state, GrantState::Pending);
    assert_eq!(s.grants_of(&h("alice")).await.unwrap(), vec![g.clone()]);

    let a = s.action(c.actions[0]).await.unwrap().unwrap();
    assert_eq!(a.state, ActionState::Pending);
    assert_eq!(a.attempts, 0);
    assert_eq!(a.not_before, t0());
    assert_eq!(a.request, Some(id));
    assert_eq!(a.grant, Some(g.id));
    assert_eq!(s.actions_for_grant(g.id).await.unwrap(), vec![a]);
    assert_eq!(s.queue_depth().await.unwrap(), 1);

    assert_eq!(
        s.open_request(&h("alice"), &app("figma")).await.unwrap(),
        Some(r.clone())
    );
    assert_eq!(s.open_requests().await.unwrap(), vec![r.clone()]);
    assert_eq!(s.requests_by(&h("alice")).await.unwrap(), vec![r]);
    assert!(
        s.open_request(&h("bob"), &app("figma"))
            .await
            .unwrap()
            .is_none()
    );

    let rows = s.audit_rows(None).await.unwrap();
    assert_eq!(rows[0].request, Some(id.0));

    // An extension request keeps the grant it extends.
    let ext = s
        .commit(Change {
            new_request: Some(NewRequest {
                kind: RequestKind::Extend(g.id),
                state: RequestState::Submitted,
                steps: vec![],
                ..new_request()
            }),
            ..Change::default()
        })
        .await
        .unwrap();
    let ext = s.request(ext.request.unwrap()).await.unwrap().unwrap();
    assert_eq!(ext.kind, RequestKind::Extend(g.id));
    assert!(ext.steps.is_empty());
}

both!(an_update_replaces_steps_and_a_stale_version_conflicts_without_audit);
async fn an_update_replaces_steps_and_a_stale_version_conflicts_without_audit(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let id = submit(s).await;
    let mut new_steps = steps();
    new_steps[1].decision = Some(Decision {
        approved: false,
        by: h("olga"),
        at: t0() + TimeDelta::hours(1),
        reason: Some("no".into()),
    });
    let update = |version| Change {
        request_updates: vec![RequestUpdate {
            id,
            expected_version: version,
            state: RequestState::Denied,
            steps: new_steps.clone(),
            grant: None,
            updated_at: t0() + TimeDelta::hours(1),
        }],
        audit: vec![event(
            AuditAction::StepDenied,
            "",
            t0() + TimeDelta::hours(1),
            id.into(),
        )],
        ..Change::default()
    };
    s.commit(update(1)).await.unwrap();
    let r = s.request(id).await.unwrap().unwrap();
    assert_eq!(r.version, 2);
    assert_eq!(r.state, RequestState::Denied);
    assert_eq!(r.steps, new_steps);
    assert_eq!(r.updated_at, t0() + TimeDelta::hours(1));
    assert!(
        s.open_request(&h("alice"), &app("figma"))
            .await
            .unwrap()
            .is_none()
    );

    let before = audit_count(s).await;
    let mut stale = update(1);
    stale.new_grants.push(new_grant("alice", "slack"));
    assert!(matches!(s.commit(stale).await, Err(StoreError::Conflict)));
    assert_eq!(audit_count(s).await, before);
    assert!(s.grants_of(&h("alice")).await.unwrap().is_empty());
    assert_eq!(s.request(id).await.unwrap().unwrap().version, 2);
}

both!(
    ten_concurrent_commits_on_one_version_let_exactly_one_through,
    multi
);
async fn ten_concurrent_commits_on_one_version_let_exactly_one_through(b: Backend) {
    let f = fresh(b).await;
    let id = submit(&f.store).await;
    let before = audit_count(&f.store).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = f.store.clone();
        tasks.push(tokio::spawn(async move {
            s.commit(Change {
                request_updates: vec![RequestUpdate {
                    id,
                    expected_version: 1,
                    state: RequestState::Cancelled,
                    steps: steps(),
                    grant: None,
                    updated_at: t0() + TimeDelta::minutes(i),
                }],
                audit: vec![event(
                    AuditAction::RequestCancelled,
                    &format!("writer {i}"),
                    t0() + TimeDelta::minutes(i),
                    id.into(),
                )],
                ..Change::default()
            })
            .await
        }));
    }
    let (ok, conflict) = successes_and_conflicts(tasks).await;
    assert_eq!((ok, conflict), (1, 9));
    assert_eq!(audit_count(&f.store).await, before + 1);
    assert_eq!(f.store.request(id).await.unwrap().unwrap().version, 2);
    assert!(f.store.verify_audit().await.unwrap().is_ok());
}

both!(concurrent_audit_appends_form_one_chain, multi);
async fn concurrent_audit_appends_form_one_chain(b: Backend) {
    let f = fresh_with(b, Some(b"k")).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = f.store.clone();
        tasks.push(tokio::spawn(async move {
            s.commit(Change {
                audit: vec![
                    event(
                        AuditAction::StepApproved,
                        &format!("{i}"),
                        t0(),
                        ReqRef::None,
                    ),
                    event(AuditAction::StepDenied, &format!("{i}"), t0(), ReqRef::None),
                ],
                ..Change::default()
            })
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        f.store.verify_audit().await.unwrap(),
        VerifyReport::Ok {
            rows: 40,
            sealed: true
        }
    );
}

//! Plans: settled onboardings, an offboarding's re-reads, open reports.

use super::*;

both!(settled_onboardings_are_read_and_marked_by_lists);
async fn settled_onboardings_are_read_and_marked_by_lists(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let onboard = |who: &str| crate::core::ports::NewPlan {
        kind: crate::core::ports::PlanKind::Onboard,
        subject: h(who),
        created_by: h("ivy"),
        confirmers: vec![],
        detail: "{}".into(),
        created_at: t0(),
        due_at: None,
        preconfirmed: true,
    };
    let grant_of = |who: &str| NewAction {
        person: h(who),
        ..queued("directory", ActionOp::Grant)
    };
    // alice: an old plan and a newer one whose grant is done; bob: his grant is still
    // pending; carol: no plan at all.
    let _old = s.create_plan(onboard("alice"), vec![]).await.unwrap();
    let alice = s.create_plan(onboard("alice"), vec![]).await.unwrap();
    let bob = s.create_plan(onboard("bob"), vec![]).await.unwrap();
    // Each plan's first action is recorded by the commit that enqueues it, and kept.
    let enqueue = async |who: &str, plan: Option<PlanId>| {
        s.commit(Change {
            new_actions: vec![grant_of(who)],
            first_action_of: plan,
            ..Change::default()
        })
        .await
        .unwrap()
        .actions[0]
    };
    let first_alice = enqueue("alice", Some(alice)).await;
    let first_bob = enqueue("bob", Some(bob)).await;
    enqueue("carol", None).await;
    // A later commit naming a plan that has its first action keeps it.
    enqueue("carol", Some(alice)).await;
    let first_of = async |id: PlanId| s.plan(id).await.unwrap().unwrap().first_action;
    assert_eq!(first_of(alice).await, Some(first_alice));
    assert_eq!(first_of(bob).await, Some(first_bob));
    assert_eq!(first_of(_old).await, None);
    s.commit(Change {
        new_grants: vec![new_grant("alice", "figma"), new_grant("bob", "crm")],
        ..Change::default()
    })
    .await
    .unwrap();
    s.commit(Change {
        action_updates: vec![ActionUpdate::done(first_alice, ActionState::Pending, t0())],
        ..Change::default()
    })
    .await
    .unwrap();
    let who = [h("alice"), h("bob"), h("carol")];
    let settled = s.onboarding_plans_settled(&who).await.unwrap();
    assert_eq!(settled.iter().map(|p| p.id).collect::<Vec<_>>(), [alice]);
    assert!(s.onboarding_plans_settled(&[]).await.unwrap().is_empty());
    let actions = s.actions_of_people(&who[..2]).await.unwrap();
    assert_eq!(
        actions.iter().map(|a| a.id).collect::<Vec<_>>(),
        [first_alice, first_bob]
    );
    let grants = s.grants_of_people(&who).await.unwrap();
    let mut holders: Vec<&str> = grants.iter().map(|g| g.person.as_str()).collect();
    holders.sort_unstable();
    assert_eq!(holders, ["alice", "bob"]);
    // Reports are marked with their audit rows, once: a second change reporting one of the
    // same plans (another worker's) fails as a whole and writes none of its audit rows.
    let report = |plans: Vec<PlanId>, detail: &str| Change {
        audit: vec![event(
            AuditAction::OnboardingReported,
            detail,
            t0(),
            ReqRef::None,
        )],
        report_plans: plans,
        ..Change::default()
    };
    s.commit(report(vec![bob, alice, alice], "first"))
        .await
        .unwrap();
    assert!(matches!(
        s.commit(report(vec![alice, PlanId(999_999)], "second"))
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        s.commit(report(vec![PlanId(999_999)], "third")).await,
        Err(StoreError::Conflict)
    ));
    let details: Vec<String> = s
        .audit_rows(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "onboarding.reported")
        .map(|r| r.detail)
        .collect();
    assert_eq!(details, ["first"]);
    assert!(s.onboarding_plans_settled(&who).await.unwrap().is_empty());
}

both!(an_offboardings_re_reads_are_enqueued_once, multi);
async fn an_offboardings_re_reads_are_enqueued_once(b: Backend) {
    let f = fresh(b).await;
    let plan = f
        .store
        .create_plan(
            crate::core::ports::NewPlan {
                kind: crate::core::ports::PlanKind::Offboard,
                subject: h("alice"),
                created_by: h("ivy"),
                confirmers: vec![h("ivy")],
                detail: "{}".into(),
                created_at: t0(),
                due_at: None,
                preconfirmed: true,
            },
            vec![],
        )
        .await
        .unwrap();
    let verify = |conn: &str| queued(conn, ActionOp::Verify);
    // Two completions race to enqueue the re-reads of the same plan: one set goes in.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = f.store.clone();
        let change = Change {
            new_actions: vec![verify("design"), verify("directory")],
            audit: vec![event(
                AuditAction::OffboardingVerifying,
                "re-reading",
                t0(),
                ReqRef::None,
            )],
            verify_plan: Some(plan),
            ..Change::default()
        };
        tasks.push(tokio::spawn(async move { s.commit(change).await }));
    }
    let (ok, conflict) = successes_and_conflicts(tasks).await;
    assert_eq!((ok, conflict), (1, 3));
    let verifies = f
        .store
        .actions_of(&h("alice"))
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.op == ActionOp::Verify)
        .count();
    assert_eq!(verifies, 2);
    assert_eq!(audit_count(&f.store).await, 1);
}

both!(an_open_report_is_marked_with_its_report_and_closed_once);
async fn an_open_report_is_marked_with_its_report_and_closed_once(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let plan = s
        .create_plan(
            crate::core::ports::NewPlan {
                kind: crate::core::ports::PlanKind::Offboard,
                subject: h("alice"),
                created_by: h("ivy"),
                confirmers: vec![],
                detail: "{}".into(),
                created_at: t0(),
                due_at: None,
                preconfirmed: true,
            },
            vec![],
        )
        .await
        .unwrap();
    let close = |detail: &str| Change {
        audit: vec![event(
            AuditAction::OffboardingReported,
            detail,
            t0(),
            ReqRef::None,
        )],
        close_report: Some(plan),
        ..Change::default()
    };
    // Nothing open yet: closing is a conflict and writes nothing.
    assert!(matches!(
        s.commit(close("too early")).await,
        Err(StoreError::Conflict)
    ));
    s.commit(Change {
        audit: vec![event(
            AuditAction::OffboardingReported,
            "open",
            t0(),
            ReqRef::None,
        )],
        report_plans: vec![plan],
        open_reports: vec![plan],
        ..Change::default()
    })
    .await
    .unwrap();
    let p = s.plan(plan).await.unwrap().unwrap();
    assert!(p.reported && p.report_open);
    // Two settling actions race to send the final report: one closes it.
    s.commit(close("final")).await.unwrap();
    assert!(matches!(
        s.commit(close("again")).await,
        Err(StoreError::Conflict)
    ));
    let p = s.plan(plan).await.unwrap().unwrap();
    assert!(p.reported && !p.report_open);
    let details: Vec<String> = s
        .audit_rows(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "offboarding.reported")
        .map(|r| r.detail)
        .collect();
    assert_eq!(details, ["open", "final"]);
}

//! Store tests. Each runs twice, as `NAME::sqlite` (a fresh SQLite file) and `NAME::postgres`
//! (a fresh database on the test PostgreSQL server, dropped afterwards; the test fails with
//! how to start PostgreSQL when it is not running).

use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
use secrecy::SecretSlice;

use super::db::q;
use super::testdb::{Backend, TestDb};
use super::*;
use crate::core::audit::{AuditAction, AuditOutcome};
use crate::core::ports::{
    ActionUpdate, GrantUpdate, NewAction, NewGrant, NewRequest, RequestUpdate,
};
use crate::core::workflow::RequestState;

/// Runs the test function `$name(backend)` on both backends, as `$name::sqlite` and
/// `$name::postgres` (a module and a function may share a name).
macro_rules! both {
    ($name:ident) => {
        both!($name, #[tokio::test]);
    };
    ($name:ident, multi) => {
        both!($name, #[tokio::test(flavor = "multi_thread", worker_threads = 4)]);
    };
    ($name:ident, #[$attr:meta]) => {
        mod $name {
            #[$attr]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await
            }
            #[$attr]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await
            }
        }
    };
}

struct Fixture {
    store: SqlStore,
    db: TestDb,
}

async fn fresh_with(b: Backend, key: Option<&[u8]>) -> Fixture {
    let db = TestDb::create(b).await;
    let key = key.map(|k| SecretSlice::from(k.to_vec()));
    let store = connect(&db.url, key).await.unwrap();
    Fixture { store, db }
}

async fn fresh(b: Backend) -> Fixture {
    fresh_with(b, None).await
}

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap() + TimeDelta::microseconds(123_456)
}

fn h(s: &str) -> Handle {
    Handle::parse(s).unwrap()
}

fn app(s: &str) -> AppName {
    AppName::parse(s).unwrap()
}

fn person(handle: &str, name: &str) -> Person {
    Person {
        handle: h(handle),
        name: name.into(),
        email: Email::parse(&format!("{handle}@acme.test")).unwrap(),
        department: "eng".into(),
        role: RoleName::parse("engineer").unwrap(),
        manager: Some(h("mona")),
        discord_id: Some(format!("100{}", handle.len())),
        status: PersonStatus::Active,
        timezone: None,
    }
}

fn event(action: AuditAction, detail: &str, at: Timestamp, request: ReqRef) -> AuditEvent {
    AuditEvent {
        at,
        actor: Actor::Person(h("alice")),
        actor_chat_id: Some("4242".into()),
        action,
        subject: Some(h("alice")),
        app: Some(app("figma")),
        request,
        connector_action: None,
        outcome: AuditOutcome::Ok,
        detail: detail.into(),
    }
}

fn steps() -> Vec<Step> {
    vec![
        Step {
            index: 0,
            rule: ApprovalRule::Manager,
            approvers: vec![h("mona")],
            started_at: Some(t0()),
            decision: Some(Decision {
                approved: true,
                by: h("mona"),
                at: t0() + TimeDelta::minutes(5),
                reason: Some("ok, go".into()),
            }),
            reminded: true,
            escalated: false,
        },
        Step {
            index: 1,
            rule: ApprovalRule::Person(h("olga")),
            approvers: vec![h("olga"), h("ivan")],
            started_at: Some(t0() + TimeDelta::minutes(5)),
            decision: None,
            reminded: false,
            escalated: true,
        },
    ]
}

fn new_request() -> NewRequest {
    NewRequest {
        requester: h("alice"),
        app: app("figma"),
        reason: Some("INC-1, design review".into()),
        duration: Some(Span::parse("8h").unwrap()),
        kind: RequestKind::New,
        state: RequestState::Awaiting(1),
        steps: steps(),
        grant: None,
        created_at: t0(),
    }
}

/// Inserts a request and returns its id.
async fn submit(store: &SqlStore) -> RequestId {
    let c = store
        .commit(Change {
            new_request: Some(new_request()),
            audit: vec![event(AuditAction::RequestSubmitted, "", t0(), ReqRef::New)],
            ..Change::default()
        })
        .await
        .unwrap();
    c.request.unwrap()
}

async fn audit_count(store: &SqlStore) -> i64 {
    q("SELECT COUNT(*) FROM audit")
        .fetch_i64(&store.pool)
        .await
        .unwrap()
}

fn new_grant(person: &str, app_name: &str) -> NewGrant {
    NewGrant {
        person: h(person),
        app: app(app_name),
        source: NewGrantSource::Birthright,
        state: GrantState::Active,
        granted_at: Some(t0()),
        expires_at: None,
    }
}

/// An action of alice's on `connector`, due at `t0()`, tied to no app, grant or request.
fn queued(connector: &str, op: ActionOp) -> NewAction {
    NewAction {
        connector: ConnectorName::parse(connector).unwrap(),
        op,
        person: h("alice"),
        app: None,
        entitlement: None,
        grant: None,
        request: ReqRef::None,
        at: t0(),
    }
}

// ----------------------------------------------------------------------------- connect

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

// ----------------------------------------------------------------------------- people

both!(seeding_people_inserts_only_those_absent);
async fn seeding_people_inserts_only_those_absent(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    s.seed_people(&[person("alice", "Alice"), person("bob", "Bob")])
        .await
        .unwrap();
    let mut changed = person("alice", "Alice Changed");
    changed.discord_id = Some("777".into());
    s.upsert_person(
        &changed,
        vec![event(
            AuditAction::PersonRoleChanged,
            "name",
            t0(),
            ReqRef::None,
        )],
    )
    .await
    .unwrap();
    // The config seeds again at the next start: the database wins.
    s.seed_people(&[person("alice", "Alice"), person("carol", "Carol")])
        .await
        .unwrap();
    let all = s.people().await.unwrap();
    let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Alice Changed", "Bob", "Carol"]);
    assert_eq!(s.person(&h("alice")).await.unwrap().unwrap(), changed);
    assert_eq!(
        s.person_by_discord_id("777").await.unwrap().unwrap().handle,
        h("alice")
    );
    assert!(s.person(&h("zed")).await.unwrap().is_none());
    assert_eq!(audit_count(s).await, 1);
}

both!(a_persons_time_zone_is_stored_and_read_back);
async fn a_persons_time_zone_is_stored_and_read_back(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let la = Zone::parse("America/Los_Angeles").unwrap();
    let mut seeded = person("alice", "Alice");
    seeded.timezone = Some(la);
    s.seed_people(&[seeded.clone(), person("bob", "Bob")])
        .await
        .unwrap();
    assert_eq!(s.person(&h("alice")).await.unwrap().unwrap(), seeded);
    assert_eq!(s.person(&h("bob")).await.unwrap().unwrap().timezone, None);
    let mut moved = person("bob", "Bob");
    moved.timezone = Some(Zone::parse("Europe/Berlin").unwrap());
    s.upsert_person(&moved, vec![]).await.unwrap();
    let bob = s.person(&h("bob")).await.unwrap().unwrap();
    assert_eq!(bob.timezone.map(|z| z.name()), Some("Europe/Berlin"));
}

// ----------------------------------------------------------------------------- requests

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

/// How many racing commits went through and how many met a conflict (anything else fails).
async fn successes_and_conflicts(
    tasks: Vec<tokio::task::JoinHandle<Result<Committed, StoreError>>>,
) -> (usize, usize) {
    let (mut ok, mut conflict) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict) => conflict += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    (ok, conflict)
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

// ----------------------------------------------------------------------------- grants

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

// ----------------------------------------------------------------------------- actions

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

both!(people_and_grants_are_read_by_lists);
async fn people_and_grants_are_read_by_lists(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    s.seed_people(&[
        person("alice", "Alice"),
        person("bob", "Bob"),
        person("dave", "Dave"),
    ])
    .await
    .unwrap();
    let mut got: Vec<String> = s
        .people_by_handle(&[h("dave"), h("alice"), h("nobody")])
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    got.sort();
    assert_eq!(got, ["Alice", "Dave"]);
    assert!(s.people_by_handle(&[]).await.unwrap().is_empty());
    let c = s
        .commit(Change {
            new_grants: vec![new_grant("alice", "figma"), new_grant("bob", "figma")],
            ..Change::default()
        })
        .await
        .unwrap();
    let got = s
        .grants_by_id(&[c.grants[1], GrantId(999_999)])
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].person, h("bob"));
}

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
    let enqueue = async |who: &str, plan: Option<i64>| {
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
    let first_of = async |id: i64| s.plan(id).await.unwrap().unwrap().first_action;
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
    let report = |plans: Vec<i64>, detail: &str| Change {
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
        s.commit(report(vec![alice, 999_999], "second")).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        s.commit(report(vec![999_999], "third")).await,
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

// ----------------------------------------------------------------------------- audit

async fn chain_of(store: &SqlStore, n: i64) {
    for i in 0..n {
        store
            .commit(Change {
                audit: vec![event(
                    AuditAction::StepApproved,
                    &format!("row {}", i + 1),
                    t0() + TimeDelta::seconds(i),
                    ReqRef::None,
                )],
                ..Change::default()
            })
            .await
            .unwrap();
    }
}

async fn exec(store: &SqlStore, sql: &'static str) {
    q(sql).execute(&store.pool).await.unwrap();
}

fn broken_at(r: VerifyReport) -> i64 {
    match r {
        VerifyReport::Broken { seq, .. } => seq,
        ok => panic!("expected a broken chain, got {ok}"),
    }
}

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

// ----------------------------------------------------------------------------- genesis, anchors

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

// ----------------------------------------------------------------------------- export

both!(export_writes_jsonl_and_quoted_csv);
async fn export_writes_jsonl_and_quoted_csv(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let id = submit(s).await;
    s.commit(Change {
        audit: vec![
            AuditEvent {
                actor: Actor::System,
                actor_chat_id: None,
                subject: None,
                app: None,
                connector_action: Some(ActionId(9)),
                ..event(
                    AuditAction::GrantProvisioned,
                    "said \"hi\", then left",
                    t0() + TimeDelta::hours(2),
                    id.into(),
                )
            },
            AuditEvent {
                actor: Actor::Hr,
                ..event(
                    AuditAction::AccountDisabled,
                    "line1\nline2",
                    t0() + TimeDelta::hours(3),
                    ReqRef::None,
                )
            },
        ],
        ..Change::default()
    })
    .await
    .unwrap();

    let all = s.audit_rows(None).await.unwrap();
    assert_eq!(all.len(), 3);
    let since = s
        .audit_rows(Some(t0() + TimeDelta::hours(2)))
        .await
        .unwrap();
    assert_eq!(since.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);

    let mut out = Vec::new();
    write_jsonl(&all, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let keys: Vec<&str> = lines[1]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for k in [
        "seq",
        "at",
        "actor",
        "actor_chat_id",
        "action",
        "subject",
        "app",
        "request",
        "connector_action",
        "outcome",
        "detail",
        "hash",
        "prev_hash",
    ] {
        assert!(keys.contains(&k), "missing {k} in {keys:?}");
    }
    assert_eq!(keys.len(), 13);
    assert_eq!(lines[0]["at"], "2025-03-01T09:00:00.123456Z");
    assert_eq!(lines[0]["actor"], "alice");
    assert_eq!(lines[0]["request"], id.0);
    assert_eq!(lines[1]["actor"], "system");
    assert!(lines[1]["app"].is_null());
    assert!(lines[1]["subject"].is_null());
    assert_eq!(lines[1]["connector_action"], 9);
    assert_eq!(lines[2]["actor"], "hr");
    assert_eq!(lines[0]["prev_hash"], audit::GENESIS);

    let mut out = Vec::new();
    write_csv(&all, &mut out).unwrap();
    let csv = String::from_utf8(out).unwrap();
    assert!(csv.starts_with(
        "seq,at,actor,actor_chat_id,action,subject,app,request,connector_action,outcome,detail,\
         hash,prev_hash\r\n"
    ));
    assert!(csv.contains(",ok,\"said \"\"hi\"\", then left\","), "{csv}");
    assert!(csv.contains(",\"line1\nline2\","), "{csv}");
    assert!(
        csv.contains(&format!(
            "2,2025-03-01T11:00:00.123456Z,system,,grant.provisioned,,,{},9,",
            id.0
        )),
        "{csv}"
    );
}

// ----------------------------------------------------------------------------- other

both!(interactions_are_seen_once);
async fn interactions_are_seen_once(b: Backend) {
    let f = fresh(b).await;
    assert!(f.store.mark_interaction_seen("i-1", t0()).await.unwrap());
    assert!(!f.store.mark_interaction_seen("i-1", t0()).await.unwrap());
    assert!(f.store.mark_interaction_seen("i-2", t0()).await.unwrap());
}

both!(seen_ids_are_pruned_past_the_window);
async fn seen_ids_are_pruned_past_the_window(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let old = t0() - TimeDelta::minutes(20);
    assert!(s.mark_interaction_seen("i-old", old).await.unwrap());
    assert!(s.mark_interaction_seen("i-new", t0()).await.unwrap());
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
    assert!(!s.mark_interaction_seen("i-new", t0()).await.unwrap());
    assert!(!s.mark_hr_event("e-new", t0(), vec![]).await.unwrap());
    assert!(s.mark_interaction_seen("i-old", t0()).await.unwrap());
    assert_eq!(s.prune_seen(cut, cut).await.unwrap(), (0, 0));
}

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
            f.store.mark_interaction_seen(&id, t0()),
            other.mark_interaction_seen(&id, t0())
        );
        let firsts = [x.unwrap(), y.unwrap()].iter().filter(|s| **s).count();
        assert_eq!(firsts, 1, "interaction {id} was taken {firsts} times");
    }
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

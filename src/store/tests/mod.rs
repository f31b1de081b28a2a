//! Store tests, by capability. Each runs twice, as `NAME::sqlite` (a fresh SQLite file)
//! and `NAME::postgres` (a fresh database on the test PostgreSQL server, dropped afterwards;
//! the test fails with how to start PostgreSQL when it is not running).

use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
use secrecy::SecretSlice;
use testkit::testdb::{Backend, TestDb};

use super::db::q;
use super::*;
use crate::core::audit::{AuditAction, AuditOutcome};
use crate::core::model::*;
use crate::core::ports::*;
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

mod actions;
mod anchors;
mod audit_chain;
mod connect;
mod deferred;
mod directory;
mod export;
mod grants;
mod outbox;
mod people;
mod plans;
mod requests;

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

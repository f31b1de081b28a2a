//! Nothing acknowledged is lost at the edges: every intake (an HR hire, change and leave, a
//! people import row, `/onboard`, `/request`, an approval click, a plan's Confirm) is
//! stopped right after each of its commits in turn (testkit/src/crash.rs: the task doing
//! the work dies there, as in a SIGKILL), the service is restarted on the same database and
//! the sender retries (the same HR event id, the same command, the same click): the work is
//! then complete exactly once, the prompts it owes went out once, and the audit chain
//! verifies. On SQLite, or PostgreSQL with `QM_TEST_DB=postgres`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as support;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use quartermaster::chat::console::ConsoleChat;
use quartermaster::config::{self, Config};
use quartermaster::core::command::Registry;
use quartermaster::core::model::{
    ActionOp, AppName, ConnectorName, Handle, Person, PersonStatus, RoleName,
};
use quartermaster::core::ports::{
    Account, ActionQueue, Change, Connector, ConnectorError, Effect, Grants, ManualClock,
    NewAction, People, PlanKind, Plans, ReqRef, Requests, Subject, SystemClock, UnitOfWork,
};
use quartermaster::core::service::{HrEvent, HrKind, RecordSource, Service};
use quartermaster::engine::{Connectors, Engine, Limits};
use quartermaster::store::SqlStore;
use quartermaster::wiring;
use support::crash::CrashStore;
use testkit::testdb::{Backend, TestDb};

type Fut = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The example organisation on a fresh database.
struct Rig {
    store: SqlStore,
    config: Config,
    chat: Arc<ConsoleChat>,
    clock: Arc<ManualClock>,
    _db: TestDb,
}

impl Rig {
    async fn new() -> Self {
        let config = config::load(None).unwrap();
        let db = TestDb::create(Backend::from_env()).await;
        let store = wiring::open_store(&config, &db.url).await.unwrap();
        Self {
            store,
            config,
            chat: Arc::new(ConsoleChat::silent()),
            clock: Arc::new(ManualClock::new(support::t0())),
            _db: db,
        }
    }

    /// A service (a process) on the rig's database that dies after its `crash_after`-th
    /// committed write (0: never).
    fn service(&self, crash_after: i64) -> Arc<Service> {
        let store = CrashStore::new(Arc::new(self.store.clone()), crash_after);
        Arc::new(Service::new(
            Arc::new(self.config.org.clone()),
            Arc::new(store),
            self.chat.clone(),
            self.clock.clone(),
            Registry::builtin(),
        ))
    }

    async fn audit_ok(&self) {
        let report = self.store.verify_audit().await.unwrap();
        assert!(report.is_ok(), "the audit chain verifies: {report:?}");
    }

    /// Prompts (new messages with buttons) to `who` for step `step` (from 1) of request `id`.
    fn prompts_to(&self, who: &str, id: i64, step: u32) -> usize {
        let head = format!("Access request #{id}:");
        let at = format!("\nStep {step} of ");
        self.chat
            .transcript()
            .iter()
            .filter(|m| m.kind == "new" && m.to.as_deref() == Some(who))
            .filter(|m| !m.buttons.is_empty() && m.text.starts_with(&head) && m.text.contains(&at))
            .count()
    }
}

/// Runs `op` on a service that crashes after its k-th commit, for k = 1, 2, … until `op`
/// finishes without reaching the crash; after each crash a restarted service retries `op`
/// and `check` must hold.
async fn every_boundary(
    name: &str,
    setup: impl Fn(Arc<Service>) -> Fut,
    op: impl Fn(Arc<Service>) -> Fut,
    check: impl for<'a> Fn(&'a Rig) -> Pin<Box<dyn Future<Output = ()> + 'a>>,
) {
    for k in 1..=40 {
        let rig = Rig::new().await;
        setup(rig.service(0)).await;
        let crashed = tokio::spawn(op(rig.service(k)))
            .await
            .is_err_and(|e| e.is_panic());
        // Restart on the same database; the sender, who heard nothing (or an error), retries.
        op(rig.service(0)).await;
        eprintln!("{name}: crash after commit {k}: crashed={crashed}");
        check(&rig).await;
        rig.audit_ok().await;
        if !crashed {
            assert!(k > 1, "{name}: the intake commits something");
            return;
        }
    }
    panic!("{name}: more than 40 commits");
}

fn zoe() -> Person {
    Person {
        handle: Handle::parse("zoe").unwrap(),
        name: "Zoe Quinn".into(),
        email: quartermaster::core::model::Email::parse("zoe@acme.test").unwrap(),
        department: "Engineering".into(),
        role: RoleName::parse("engineer").unwrap(),
        manager: Some(Handle::parse("bob").unwrap()),
        discord_id: None,
        status: PersonStatus::Active,
        timezone: None,
    }
}

fn hr(id: &str, kind: HrKind, person: Person) -> HrEvent {
    HrEvent {
        id: id.into(),
        kind,
        person,
        last_day: None,
        effective_at: None,
    }
}

/// The person holds every birthright of their role exactly once, each with exactly one grant
/// action, from exactly one onboarding plan.
async fn hired_once(rig: &Rig, who: &str) {
    hired(rig, who, true).await;
}

/// [`hired_once`]; a retried `/onboard` of someone already onboarded is an update of its own
/// (a second, empty onboarding plan), so `one_plan` is false for it.
async fn hired(rig: &Rig, who: &str, one_plan: bool) {
    let h = Handle::parse(who).unwrap();
    let p = rig
        .store
        .person(&h)
        .await
        .unwrap()
        .expect("the joiner is stored");
    assert_eq!(p.status, PersonStatus::Active);
    let grants = rig.store.grants_of(&h).await.unwrap();
    let actions = rig.store.actions_of(&h).await.unwrap();
    let apps = rig.config.org.birthrights(&p.role, &p.department);
    assert!(!apps.is_empty());
    for a in &apps {
        let n = grants.iter().filter(|g| &g.app == a).count();
        assert_eq!(n, 1, "{who} holds {a} once: {grants:?}");
        let n = actions
            .iter()
            .filter(|x| x.op == ActionOp::Grant && x.app.as_ref() == Some(a))
            .count();
        assert_eq!(n, 1, "{who}'s {a} is provisioned once: {actions:?}");
    }
    let plans = rig.store.plans_of(&h).await.unwrap();
    let onboard: Vec<_> = plans
        .iter()
        .filter(|p| p.kind == PlanKind::Onboard)
        .collect();
    if one_plan {
        assert_eq!(onboard.len(), 1, "one onboarding plan: {plans:?}");
    }
    assert!(onboard.iter().all(|p| p.started), "{plans:?}");
}

async fn audit_count(rig: &Rig, action: &str) -> usize {
    rig.store
        .audit_rows(None)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.action == action)
        .count()
}

fn nothing(_: Arc<Service>) -> Fut {
    Box::pin(async {})
}

#[tokio::test]
async fn an_hr_hire_survives_a_crash_after_each_commit() {
    every_boundary(
        "hr hire",
        nothing,
        |s| {
            Box::pin(async move {
                s.hr_event(hr("evt-hire-1", HrKind::Hire, zoe()))
                    .await
                    .unwrap();
            })
        },
        |rig| {
            Box::pin(async move {
                hired_once(rig, "zoe").await;
                assert_eq!(audit_count(rig, "hr.event_received").await, 1);
                assert_eq!(audit_count(rig, "person.onboarded").await, 1);
            })
        },
    )
    .await;
}

#[tokio::test]
async fn an_hr_move_survives_a_crash_after_each_commit() {
    every_boundary(
        "hr change",
        |s| {
            Box::pin(async move {
                s.hr_event(hr("evt-hire-1", HrKind::Hire, zoe()))
                    .await
                    .unwrap();
            })
        },
        |s| {
            Box::pin(async move {
                let moved = Person {
                    role: RoleName::parse("designer").unwrap(),
                    department: "Design".into(),
                    manager: Some(Handle::parse("grace").unwrap()),
                    ..zoe()
                };
                s.hr_event(hr("evt-move-1", HrKind::Change, moved))
                    .await
                    .unwrap();
            })
        },
        |rig| {
            Box::pin(async move {
                let h = Handle::parse("zoe").unwrap();
                let p = rig.store.person(&h).await.unwrap().unwrap();
                assert_eq!(p.role.as_str(), "designer");
                let actions = rig.store.actions_of(&h).await.unwrap();
                for app in ["figma", "adobe"] {
                    let n = actions
                        .iter()
                        .filter(|a| {
                            a.op == ActionOp::Grant
                                && a.app.as_ref().map(|x| x.as_str()) == Some(app)
                        })
                        .count();
                    assert_eq!(n, 1, "{app} granted once: {actions:?}");
                }
                let grants = rig.store.grants_of(&h).await.unwrap();
                for app in ["figma", "adobe"] {
                    let n = grants.iter().filter(|g| g.app.as_str() == app).count();
                    assert_eq!(n, 1, "{app} held once: {grants:?}");
                }
                assert_eq!(audit_count(rig, "person.role_changed").await, 1);
            })
        },
    )
    .await;
}

#[tokio::test]
async fn an_hr_leave_survives_a_crash_after_each_commit() {
    every_boundary(
        "hr leave",
        |s| {
            Box::pin(async move {
                s.hr_event(hr("evt-hire-1", HrKind::Hire, zoe()))
                    .await
                    .unwrap();
            })
        },
        |s| {
            Box::pin(async move {
                s.hr_event(hr("evt-leave-1", HrKind::Leave, zoe()))
                    .await
                    .unwrap();
            })
        },
        |rig| {
            Box::pin(async move {
                let h = Handle::parse("zoe").unwrap();
                let p = rig.store.person(&h).await.unwrap().unwrap();
                assert_eq!(p.status, PersonStatus::Offboarded);
                let plans = rig.store.plans_of(&h).await.unwrap();
                let off: Vec<_> = plans
                    .iter()
                    .filter(|p| p.kind == PlanKind::Offboard)
                    .collect();
                assert_eq!(off.len(), 1, "one offboarding plan: {plans:?}");
                assert!(off[0].started);
                let actions = rig.store.actions_of(&h).await.unwrap();
                let disables = actions.iter().filter(|a| a.op == ActionOp::Disable).count();
                assert_eq!(disables, 1, "the account is disabled once: {actions:?}");
                let revokes = actions.iter().filter(|a| a.op == ActionOp::Revoke).count();
                assert_eq!(revokes, 4, "each grant revoked once: {actions:?}");
                assert_eq!(audit_count(rig, "person.offboarded").await, 1);
            })
        },
    )
    .await;
}

#[tokio::test]
async fn an_imported_joiner_survives_a_crash_after_each_commit() {
    every_boundary(
        "import",
        nothing,
        |s| {
            Box::pin(async move {
                s.person_record(RecordSource::Import, zoe()).await.unwrap();
            })
        },
        |rig| Box::pin(hired_once(rig, "zoe")),
    )
    .await;
}

async fn line(s: &Service, who: &str, text: &str) -> String {
    let c = s
        .caller_by_handle(&Handle::parse(who).unwrap())
        .await
        .unwrap()
        .unwrap();
    s.command_line(&c, text).await.text
}

async fn click(s: &Service, who: &str, custom_id: &str) -> String {
    let c = s
        .caller_by_handle(&Handle::parse(who).unwrap())
        .await
        .unwrap()
        .unwrap();
    match s.click(&c, custom_id, None).await {
        quartermaster::core::service::ClickReply::Reply(r) => r.text,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_onboard_command_survives_a_crash_after_each_commit() {
    every_boundary(
        "/onboard",
        nothing,
        |s| {
            Box::pin(async move {
                line(
                    &s,
                    "dana",
                    r#"/onboard email:zoe@acme.test name:"Zoe Quinn" role:engineer manager:bob"#,
                )
                .await;
            })
        },
        |rig| Box::pin(hired(rig, "zoe", false)),
    )
    .await;
}

const PROD_DB: &str = r#"/request app:prod-db reason:"INC-7 outage" duration:1h"#;

#[tokio::test]
async fn a_request_survives_a_crash_after_each_commit() {
    every_boundary(
        "/request",
        nothing,
        |s| {
            Box::pin(async move {
                line(&s, "alice", PROD_DB).await;
            })
        },
        |rig| {
            Box::pin(async move {
                let h = Handle::parse("alice").unwrap();
                let reqs = rig.store.requests_by(&h).await.unwrap();
                assert_eq!(reqs.len(), 1, "one request: {reqs:?}");
                let id = reqs[0].id;
                // Her manager is prompted for step 1, once.
                assert_eq!(rig.prompts_to("bob", id.0, 1), 1);
            })
        },
    )
    .await;
}

#[tokio::test]
async fn an_approval_survives_a_crash_after_each_commit() {
    every_boundary(
        "approve",
        |s| {
            Box::pin(async move {
                line(&s, "alice", PROD_DB).await;
            })
        },
        |s| {
            Box::pin(async move {
                click(&s, "bob", "v1:req:1:s0:approve").await;
            })
        },
        |rig| {
            Box::pin(async move {
                let r = rig
                    .store
                    .request(quartermaster::core::model::RequestId(1))
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(r.state.step(), Some(1), "step 2 awaits: {:?}", r.state);
                assert_eq!(audit_count(rig, "step.approved").await, 1);
                // Every IT approver of step 2 is prompted, once.
                for a in &r.steps[1].approvers {
                    assert_eq!(
                        rig.prompts_to(a.as_str(), 1, 2),
                        1,
                        "{a} is prompted for step 2 once"
                    );
                }
                assert!(!r.steps[1].approvers.is_empty());
            })
        },
    )
    .await;
}

#[tokio::test]
async fn a_confirmed_role_plan_survives_a_crash_after_each_commit() {
    every_boundary(
        "plan confirm",
        |s| {
            Box::pin(async move {
                line(&s, "dana", "/role user:alice role:designer").await;
            })
        },
        |s| {
            Box::pin(async move {
                click(&s, "dana", "v1:plan:1:confirm").await;
            })
        },
        |rig| {
            Box::pin(async move {
                let h = Handle::parse("alice").unwrap();
                let p = rig.store.person(&h).await.unwrap().unwrap();
                assert_eq!(p.role.as_str(), "designer");
                let plan = rig
                    .store
                    .plan(quartermaster::core::model::PlanId(1))
                    .await
                    .unwrap()
                    .unwrap();
                assert!(plan.started);
                let actions = rig.store.actions_of(&h).await.unwrap();
                for app in ["figma", "adobe", "email"] {
                    let n = actions
                        .iter()
                        .filter(|a| {
                            a.op == ActionOp::Grant
                                && a.app.as_ref().map(|x| x.as_str()) == Some(app)
                        })
                        .count();
                    assert_eq!(n, 1, "{app} granted once: {actions:?}");
                }
                assert_eq!(audit_count(rig, "person.role_changed").await, 1);
            })
        },
    )
    .await;
}

impl Rig {
    /// New messages to `who` whose text contains `part`.
    fn dms_to(&self, who: &str, part: &str) -> Vec<quartermaster::chat::console::Shown> {
        self.chat
            .transcript()
            .into_iter()
            .filter(|m| m.kind == "new" && m.to.as_deref() == Some(who) && m.text.contains(part))
            .collect()
    }

    /// Edits shown to `who` whose text contains `part`.
    fn edits_to(&self, who: &str, part: &str) -> usize {
        self.chat
            .transcript()
            .iter()
            .filter(|m| m.kind == "edit" && m.to.as_deref() == Some(who) && m.text.contains(part))
            .count()
    }
}

/// A crash right after the commit that created a manager's role plan: its prompts to the
/// IT admins were written with it, and the restarted service sends them, once, with the
/// plan's own Confirm and Cancel (before, they were enqueued after, and lost).
#[tokio::test]
async fn a_role_plan_prompt_survives_a_crash_right_after_the_plan_commit() {
    let rig = Rig::new().await;
    let s = rig.service(1);
    let crashed = tokio::spawn(async move {
        line(&s, "bob", "/role user:alice role:designer").await;
    })
    .await
    .is_err_and(|e| e.is_panic());
    assert!(crashed, "the proposal commits something");
    let plans = rig
        .store
        .plans_of(&Handle::parse("alice").unwrap())
        .await
        .unwrap();
    assert_eq!(plans.len(), 1, "{plans:?}");
    // The restarted service delivers what the dead one committed.
    rig.service(0).tick().await.unwrap();
    for a in ["dana", "mia"] {
        let got = rig.dms_to(a, "Bob Chen asks for this role change");
        assert_eq!(got.len(), 1, "{a}: {:#?}", rig.chat.transcript());
        assert_eq!(got[0].buttons, ["Confirm", "Cancel"]);
    }
    // Its buttons are the plan's: Confirm carries it out.
    let r = click(
        &rig.service(0),
        "dana",
        &format!("v1:plan:{}:confirm", plans[0].id),
    )
    .await;
    assert!(r.starts_with("Done: Alice Kim is now designer"), "{r}");
    rig.audit_ok().await;
}

/// Confirming a manager's role plan, stopped after each commit and the click retried: the
/// prompts lose their buttons once, and Alice and Bob are told once (before, the edit and
/// the move's messages were enqueued after the commits that caused them, and lost).
#[tokio::test]
async fn a_role_plan_confirm_tells_everyone_once_whatever_crash() {
    every_boundary(
        "plan confirm messages",
        |s| {
            Box::pin(async move {
                line(&s, "bob", "/role user:alice role:designer").await;
            })
        },
        |s| {
            Box::pin(async move {
                click(&s, "dana", "v1:plan:1:confirm").await;
            })
        },
        |rig| {
            Box::pin(async move {
                let p = rig
                    .store
                    .person(&Handle::parse("alice").unwrap())
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(p.role.as_str(), "designer");
                let t = rig.chat.transcript();
                for a in ["dana", "mia"] {
                    assert_eq!(rig.edits_to(a, "Confirmed by Dana"), 1, "{a}: {t:#?}");
                }
                assert_eq!(
                    rig.dms_to("alice", "Your role changed to designer").len(),
                    1,
                    "{t:#?}"
                );
                assert_eq!(
                    rig.dms_to("bob", "Your role change for Alice Kim was confirmed")
                        .len(),
                    1,
                    "{t:#?}"
                );
            })
        },
    )
    .await;
}

/// A crash right after the commit of an HR leave scheduled for a later day: IT's note (with
/// the plan's id) was written with the plan and goes out after the restart, once.
#[tokio::test]
async fn an_hr_scheduled_leave_note_survives_a_crash_right_after_its_commit() {
    let rig = Rig::new().await;
    rig.service(0)
        .hr_event(hr("evt-hire-1", HrKind::Hire, zoe()))
        .await
        .unwrap();
    let s = rig.service(1);
    let crashed = tokio::spawn(async move {
        let mut ev = hr("evt-leave-1", HrKind::Leave, zoe());
        ev.last_day = Some((support::t0() + chrono::Duration::days(10)).date_naive());
        let _ = s.hr_event(ev).await;
    })
    .await
    .is_err_and(|e| e.is_panic());
    assert!(crashed);
    let plan = rig
        .store
        .plans_of(&Handle::parse("zoe").unwrap())
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.kind == PlanKind::Offboard)
        .expect("the leave's plan is stored");
    rig.service(0).tick().await.unwrap();
    for a in ["dana", "mia"] {
        let got = rig.dms_to(a, "HR scheduled the offboarding of Zoe Quinn (zoe)");
        assert_eq!(got.len(), 1, "{a}: {:#?}", rig.chat.transcript());
        assert!(
            got[0].text.contains(&format!("(plan #{});", plan.id)),
            "{}",
            got[0].text
        );
    }
    rig.audit_ok().await;
}

/// A scheduled offboarding run by the tick, stopped after each commit and the tick run again:
/// the IT admin who confirmed it is told "Scheduled plan #1 is running now" once (before, the
/// note was enqueued after the plan's commit, and a crash there lost it).
#[tokio::test]
async fn a_scheduled_plan_tells_its_confirmer_once_whatever_crash() {
    for k in 1..=40 {
        let rig = Rig::new().await;
        let s = rig.service(0);
        line(&s, "dana", "/offboard user:frank when:2026-11-27").await;
        let r = click(&s, "dana", "v1:plan:1:confirm").await;
        assert!(r.contains("runs by itself"), "{r}");
        rig.clock
            .advance(quartermaster::core::model::Span::parse("3d").unwrap());
        let s = rig.service(k);
        let crashed = tokio::spawn(async move {
            s.tick().await.unwrap();
        })
        .await
        .is_err_and(|e| e.is_panic());
        rig.service(0).tick().await.unwrap();
        eprintln!("scheduled plan: crash after commit {k}: crashed={crashed}");
        let p = rig
            .store
            .person(&Handle::parse("frank").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.status, PersonStatus::Offboarded);
        let t = rig.chat.transcript();
        assert_eq!(
            rig.dms_to("dana", "Scheduled plan #1 is running now").len(),
            1,
            "crash after commit {k}: {t:#?}"
        );
        rig.audit_ok().await;
        if !crashed {
            return;
        }
    }
    panic!("more than 40 commits");
}

/// Retry on a failed action, stopped after each commit and clicked again: IT's "failed"
/// message loses its Retry button once (before, the edit was enqueued after the retry's
/// commit, and a crash there left the button on).
#[tokio::test]
async fn a_retry_removes_the_retry_button_whatever_crash() {
    use quartermaster::core::model::ActionState;
    use quartermaster::core::ports::{ActionUpdate, Button, ButtonLabel, MessageKey, Outgoing};
    for k in 1..=40 {
        let rig = Rig::new().await;
        let frank = Handle::parse("frank").unwrap();
        let id = rig
            .store
            .commit(Change {
                new_actions: vec![NewAction {
                    connector: ConnectorName::parse("directory").unwrap(),
                    op: ActionOp::Disable,
                    person: frank.clone(),
                    app: None,
                    entitlement: None,
                    grant: None,
                    request: ReqRef::None,
                    at: support::t0(),
                }],
                ..Change::default()
            })
            .await
            .unwrap()
            .actions[0];
        let failed = Outgoing::to_person(
            &Handle::parse("dana").unwrap(),
            format!("Action #{id} failed for good."),
            vec![Button {
                item: None,
                label: ButtonLabel::Retry,
                target: quartermaster::core::customid::ClickTarget::Retry(id),
            }],
            Some(MessageKey::Action(id)),
        );
        rig.store
            .commit(Change {
                action_updates: vec![ActionUpdate {
                    id,
                    from: ActionState::Pending,
                    state: ActionState::Failed,
                    last_error: Some("down".into()),
                    not_before: support::t0(),
                    reset_attempts: false,
                }],
                messages: vec![failed],
                ..Change::default()
            })
            .await
            .unwrap();
        rig.service(0).tick().await.unwrap();
        let s = rig.service(k);
        let custom = format!("v1:act:{id}:retry");
        let c2 = custom.clone();
        let crashed = tokio::spawn(async move {
            click(&s, "dana", &c2).await;
        })
        .await
        .is_err_and(|e| e.is_panic());
        click(&rig.service(0), "dana", &custom).await;
        eprintln!("retry: crash after commit {k}: crashed={crashed}");
        let t = rig.chat.transcript();
        assert_eq!(
            rig.edits_to("dana", &format!("Action #{id} was retried by Dana")),
            1,
            "crash after commit {k}: {t:#?}"
        );
        let a = rig.store.action(id).await.unwrap().unwrap();
        assert_eq!(a.state, ActionState::Pending);
        rig.audit_ok().await;
        if !crashed {
            return;
        }
    }
    panic!("more than 40 commits");
}

/// "Unchanged" never hides missing birthrights: a person stored without them (as a crash
/// in an older version left them) is repaired by the next record of them.
#[tokio::test]
async fn an_unchanged_record_repairs_missing_birthrights() {
    let rig = Rig::new().await;
    let s = rig.service(0);
    rig.store.upsert_person(&zoe(), vec![]).await.unwrap();
    let out = s
        .hr_event(hr("evt-same-1", HrKind::Hire, zoe()))
        .await
        .unwrap();
    assert!(
        format!("{out:?}").contains("missing birthrights queued"),
        "{out:?}"
    );
    hired_once(&rig, "zoe").await;
    // Nothing missing: the next one changes nothing.
    let out = s
        .hr_event(hr("evt-same-2", HrKind::Hire, zoe()))
        .await
        .unwrap();
    assert!(format!("{out:?}").contains("zoe unchanged\""), "{out:?}");
    hired_once(&rig, "zoe").await;
}

/// A prompt cut short by a crash goes out on the next tick, once.
#[tokio::test]
async fn a_tick_sends_a_prompt_a_crash_cut_short() {
    let rig = Rig::new().await;
    line(&rig.service(0), "alice", PROD_DB).await;
    // The approval's commit is the first write; the crash comes before any prompt.
    let crashed = tokio::spawn({
        let s = rig.service(1);
        async move {
            click(&s, "bob", "v1:req:1:s0:approve").await;
        }
    })
    .await
    .is_err_and(|e| e.is_panic());
    assert!(crashed);
    let s = rig.service(0);
    assert_eq!(rig.prompts_to("dana", 1, 2), 0);
    rig.clock
        .advance(quartermaster::core::model::Span::parse("11s").unwrap());
    s.tick().await.unwrap();
    assert_eq!(rig.prompts_to("dana", 1, 2), 1);
    s.tick().await.unwrap();
    assert_eq!(rig.prompts_to("dana", 1, 2), 1);
}

/// A connector whose every call takes `SLOW` and counts how many run at once.
#[derive(Default)]
struct Slow {
    now: std::sync::atomic::AtomicUsize,
    max: std::sync::atomic::AtomicUsize,
    calls: std::sync::atomic::AtomicUsize,
}

const SLOW: std::time::Duration = std::time::Duration::from_millis(1500);

#[async_trait::async_trait]
impl Connector for Slow {
    async fn find_account(&self, _: &Subject) -> Result<Option<Account>, ConnectorError> {
        Ok(None)
    }
    async fn create_account(&self, _: &Subject) -> Result<Effect, ConnectorError> {
        Ok(Effect::Applied)
    }
    async fn disable_account(&self, _: &Subject) -> Result<Effect, ConnectorError> {
        Ok(Effect::Applied)
    }
    async fn enable_account(&self, _: &Subject) -> Result<Effect, ConnectorError> {
        Ok(Effect::Applied)
    }
    async fn delete_account(&self, _: &Subject) -> Result<Effect, ConnectorError> {
        Ok(Effect::Applied)
    }
    async fn grant(&self, _: &Subject, _: &str) -> Result<Effect, ConnectorError> {
        Ok(Effect::Applied)
    }
    async fn revoke(&self, _: &Subject, _: &str) -> Result<Effect, ConnectorError> {
        Ok(Effect::Applied)
    }
    async fn list_grants(&self, _: &Subject) -> Result<Vec<String>, ConnectorError> {
        Ok(Vec::new())
    }
    async fn test_connection(&self) -> Result<(), ConnectorError> {
        Ok(())
    }
    async fn apply(
        &self,
        _: ActionOp,
        _: &Subject,
        _: Option<&str>,
    ) -> Result<Effect, ConnectorError> {
        use std::sync::atomic::Ordering::SeqCst;
        let n = self.now.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(n, SeqCst);
        self.calls.fetch_add(1, SeqCst);
        tokio::time::sleep(SLOW).await;
        self.now.fetch_sub(1, SeqCst);
        Ok(Effect::Applied)
    }
}

/// A lease far shorter than a connector call is renewed while the call runs: neither a second
/// instance nor a second worker of the same one runs the action meanwhile, and it is done once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lease_is_renewed_through_a_long_connector_call() {
    let rig = Rig::new().await;
    let alice = Handle::parse("alice").unwrap();
    let committed = rig
        .store
        .commit(Change {
            new_actions: vec![NewAction {
                connector: ConnectorName::parse("directory").unwrap(),
                op: ActionOp::Grant,
                person: alice.clone(),
                app: Some(AppName::parse("jira").unwrap()),
                entitlement: Some("jira".into()),
                grant: None,
                request: ReqRef::None,
                at: support::t0(),
            }],
            ..Change::default()
        })
        .await
        .unwrap();
    let slow = Arc::new(Slow::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut instances = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let service = Arc::new(Service::new(
            Arc::new(rig.config.org.clone()),
            Arc::new(rig.store.clone()),
            rig.chat.clone(),
            Arc::new(SystemClock),
            Registry::builtin(),
        ));
        let mut connectors: Connectors = HashMap::new();
        let mut limits = HashMap::new();
        for name in ["directory", "manual"] {
            let name = ConnectorName::parse(name).unwrap();
            connectors.insert(name.clone(), slow.clone() as Arc<dyn Connector>);
            limits.insert(
                name,
                Limits {
                    max_concurrency: 4,
                    rate_per_second: None,
                    lease: std::time::Duration::from_millis(300),
                },
            );
        }
        let engine = Engine::with_limits(service, connectors, limits);
        let stopped = stopped.clone();
        instances.spawn(async move { engine.run(stopped).await });
    }
    tokio::time::sleep(SLOW * 2).await;
    stop.send(true).unwrap();
    while instances.join_next().await.is_some() {}
    use std::sync::atomic::Ordering::SeqCst;
    assert_eq!(slow.calls.load(SeqCst), 1, "the action ran once");
    assert_eq!(slow.max.load(SeqCst), 1);
    let a = rig
        .store
        .action(committed.actions[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.state, quartermaster::core::model::ActionState::Done);
    assert_eq!(a.attempts, 1, "claimed once: {a:?}");
}

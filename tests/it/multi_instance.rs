//! Several `quartermaster serve` processes on one PostgreSQL database share the work: queued
//! connector actions are each done once although one instance is SIGKILLed mid-run (its
//! claimed work is taken over when its lease ends), scheduled work (a grant expiry) runs once,
//! and the audit trail stays one valid chain. Always runs on PostgreSQL (whatever QM_TEST_DB
//! says); fails, saying how to start it, when PostgreSQL is not running.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use quartermaster::config;
use quartermaster::core::model::{
    ActionOp, ActionState, AppName, ConnectorName, GrantState, Handle,
};
use quartermaster::core::ports::{
    ActionQueue, Change, Grants, NewAction, NewGrant, NewGrantSource, People, ReqRef, UnitOfWork,
};
use quartermaster::wiring;
use testkit::testdb::{Backend, TestDb};

const ENTITLEMENTS: usize = 20;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `serve` process, SIGKILLed and reaped when dropped (also when the test fails).
struct Instance(Child);

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path, name: &str, db: &str) -> Instance {
    let cfg = dir.join(format!("{name}.toml"));
    // A short action lease, so the killed instance's claimed action is taken over soon.
    let example = config::EXAMPLE_TOML.replace(
        "kind = \"directory\"",
        "kind = \"directory\"\nlease = \"3s\"",
    );
    assert_ne!(example, config::EXAMPLE_TOML);
    let text = format!(
        "{example}\n[http]\nlisten = \"127.0.0.1:{}\"\n",
        free_port()
    );
    std::fs::write(&cfg, text).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_quartermaster"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .args(["--db", db])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Instance(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_queue_survive_a_sigkill_and_schedule_once() {
    let db = TestDb::create(Backend::Postgres).await;
    let config = config::load(None).unwrap();
    let store = wiring::open_store(&config, &db.url).await.unwrap();
    let now = chrono::Utc::now();
    let people: Vec<Handle> = store
        .people()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.handle)
        .collect();
    let directory = ConnectorName::parse("directory").unwrap();

    // The queue: every person into 20 groups of the directory connector.
    let mut change = Change::default();
    for p in &people {
        for e in 0..ENTITLEMENTS {
            change.new_actions.push(NewAction {
                connector: directory.clone(),
                op: ActionOp::Grant,
                person: p.clone(),
                app: None,
                entitlement: Some(format!("team-{e}")),
                grant: None,
                request: ReqRef::None,
                at: now,
            });
        }
    }
    // Scheduled work: a time-bound grant that ended an hour ago.
    let expiring = people[0].clone();
    change.new_grants.push(NewGrant {
        person: expiring.clone(),
        app: AppName::parse("jira").unwrap(),
        source: NewGrantSource::Birthright,
        state: GrantState::Active,
        granted_at: Some(now - TimeDelta::days(2)),
        expires_at: Some(now - TimeDelta::hours(1)),
    });
    let queued = store.commit(change).await.unwrap();
    let total = queued.actions.len();
    assert_eq!(total, people.len() * ENTITLEMENTS);
    let grant_id = queued.grants[0];

    // A worker that claimed an action and died before finishing it (its lease runs 2 s).
    let orphan = store
        .claim_action(now, Duration::from_secs(2))
        .await
        .unwrap()
        .expect("an action to claim");

    let dir = tempfile::tempdir().unwrap();
    let mut a = start(dir.path(), "a", &db.url);
    let mut b = start(dir.path(), "b", &db.url);

    // Kill A with SIGKILL while the queue is being worked.
    let deadline = Instant::now() + Duration::from_secs(60);
    let done_count = |acts: &[quartermaster::core::model::Action]| {
        acts.iter().filter(|x| x.state == ActionState::Done).count()
    };
    let at_kill = loop {
        let mut done = 0;
        for id in &queued.actions {
            if store.action(*id).await.unwrap().unwrap().state == ActionState::Done {
                done += 1;
            }
        }
        if done >= 10 {
            a.0.kill().unwrap(); // SIGKILL
            a.0.wait().unwrap();
            break done;
        }
        assert!(
            Instant::now() < deadline,
            "no progress: see {:?}",
            dir.path()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("A SIGKILLed with {at_kill} of {total} actions done");
    assert!(
        at_kill < total,
        "A was killed mid-run ({at_kill} of {total} done)"
    );

    // B finishes everything, including what A and the dead worker had claimed.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut all = Vec::new();
        for id in &queued.actions {
            all.push(store.action(*id).await.unwrap().unwrap());
        }
        let revokes = store.actions_for_grant(grant_id).await.unwrap();
        if done_count(&all) == total
            && !revokes.is_empty()
            && revokes.iter().all(|x| x.state == ActionState::Done)
        {
            break;
        }
        if Instant::now() > deadline {
            b.0.kill().unwrap();
            let log = std::fs::read_to_string(dir.path().join("b.log")).unwrap_or_default();
            panic!(
                "not finished: {} of {total} done, revokes {revokes:?}\nB's log:\n{log}",
                done_count(&all)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.0.kill().unwrap();
    b.0.wait().unwrap();

    // Every action done exactly once: one completion row in the audit trail each.
    let rows = store.audit_rows(None).await.unwrap();
    let mut per_action: HashMap<i64, usize> = HashMap::new();
    for r in &rows {
        if let Some(id) = r.connector_action {
            *per_action.entry(id).or_default() += 1;
        }
    }
    for id in &queued.actions {
        assert_eq!(
            per_action.get(&id.0),
            Some(&1),
            "action {id} has not exactly one completion row"
        );
    }
    // The orphan was taken over once its lease ended: claimed twice, done once.
    let orphan_now = store.action(orphan.id).await.unwrap().unwrap();
    assert_eq!(orphan_now.state, ActionState::Done);
    assert!(orphan_now.attempts >= 2, "{orphan_now:?}");
    // And the target holds every membership.
    for p in &people {
        let groups = store
            .dir_memberships("directory", p.as_str())
            .await
            .unwrap();
        for e in 0..ENTITLEMENTS {
            assert!(groups.contains(&format!("team-{e}")), "{p}: {groups:?}");
        }
    }

    // The expiry ran once across both instances.
    let expired = rows.iter().filter(|r| r.action == "grant.expired").count();
    assert_eq!(expired, 1, "grant.expired rows: {expired}");
    let g = store.grant(grant_id).await.unwrap().unwrap();
    assert_ne!(g.state, GrantState::Active);

    // One valid chain, through the library and through the CLI.
    let report = store.verify_audit().await.unwrap();
    assert!(report.is_ok(), "{report}");
    let out = Command::new(env!("CARGO_BIN_EXE_quartermaster"))
        .args(["audit", "verify", "--db", &db.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    store.close().await;
}

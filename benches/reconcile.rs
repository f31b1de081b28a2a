//! Figure 11: reconcile.
//!
//! - SCIM: 10,000 users in a scim2-server tenant (all of them people of ours, none in the
//!   catalog's group: no drift). A plain client lists every user page by page (`count` = the
//!   connector's page size), then Quartermaster reconciles the connector (every user, the
//!   group's members, the comparison, the findings and the digest); twice each, alternating,
//!   in one run. Rate = accounts per second; goal ours ≥ 0.8 × the plain client's.
//! - Directory: 20,000 people × 5 apps = 100,000 memberships, every one recorded as a grant,
//!   plus 10 added behind Quartermaster's back: one reconcile of the directory connector,
//!   timed; goal ≤ 5 s, and the 10 found.
//!
//! Run: `QM_SCIM2_SERVER=… cargo bench --bench reconcile` (`QM_ACCOUNTS`, `QM_MEMBERS`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use quartermaster::config;
use quartermaster::core::model::{AppName, ConnectorName, GrantState, Handle, PersonStatus};
use quartermaster::core::ports::{
    Change, ManualClock, NewGrant, NewGrantSource, People, UnitOfWork,
};
use quartermaster::engine::reconcile::RunOutcome;
use quartermaster::server::LogChat;
use quartermaster::wiring;
use serde_json::{Value, json};
use testkit::scim::{ScimServer, TOKEN};

#[tokio::main]
async fn main() {
    if !common::under_cargo_bench() {
        return;
    }
    println!("figure 11: reconcile");
    println!("{}", common::machine());
    directory().await;
    scim().await;
}

fn env_num(k: &str, default: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// 100,000 recorded memberships (and 10 unrecorded) on the directory connector.
async fn directory() {
    let total = env_num("QM_MEMBERS", 100_000);
    let config = config::load(None).unwrap();
    let apps: Vec<AppName> = config
        .org
        .apps
        .iter()
        .filter(|a| a.connector.as_str() == "directory" && a.entitlement == a.name.as_str())
        .map(|a| a.name.clone())
        .take(6)
        .collect();
    assert_eq!(apps.len(), 6, "the example has six directory apps to use");
    let people_n = total / 5;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("qm.db").display());
    let store = wiring::open_store(&config, &db).await.unwrap();
    let people = common::people(people_n, "copywriter", "erin");
    store.seed_people(&people).await.unwrap();
    let t = Instant::now();
    let accounts: Vec<(String, String, String)> = people
        .iter()
        .map(|p| (p.handle.to_string(), p.email.to_string(), p.name.clone()))
        .collect();
    let acc: Vec<(&str, &str, &str)> = accounts
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    let mut members: Vec<(&str, &str)> = Vec::with_capacity(total + 10);
    let mut grants = Vec::with_capacity(total);
    for p in &people {
        for a in &apps[..5] {
            members.push((p.handle.as_str(), a.as_str()));
            grants.push(NewGrant {
                person: p.handle.clone(),
                app: a.clone(),
                source: NewGrantSource::Birthright,
                state: GrantState::Active,
                granted_at: Some(common_now()),
                expires_at: None,
            });
        }
    }
    // Ten added behind our back: the sixth app, which nobody was granted.
    for p in people.iter().take(10) {
        members.push((p.handle.as_str(), apps[5].as_str()));
    }
    store
        .dir_grant_many("directory", &acc, &members)
        .await
        .unwrap();
    for chunk in grants.chunks(10_000) {
        store
            .commit(Change {
                new_grants: chunk.to_vec(),
                ..Change::default()
            })
            .await
            .unwrap();
    }
    println!(
        "\n== directory: {} memberships ({people_n} people × 5 apps, + 10 unrecorded), seeded in {:.1} s",
        members.len(),
        t.elapsed().as_secs_f64()
    );
    let clock = Arc::new(ManualClock::new(common_now()));
    let (_service, engine) =
        wiring::assemble(&config, store.clone(), Arc::new(LogChat), clock).unwrap();
    let name = ConnectorName::parse("directory").unwrap();
    for run in 1..=2 {
        let t = Instant::now();
        let r = engine.reconcile(Some(&name)).await;
        let took = t.elapsed();
        let found = match &r[0].1 {
            RunOutcome::Ran(rep) => rep.open.len(),
            other => panic!("{other:?}"),
        };
        println!(
            "run {run}: {:.2} s, {found} open findings (10 expected); goal <= 5 s: {}",
            took.as_secs_f64(),
            if took <= Duration::from_secs(5) && found == 10 {
                "MET"
            } else {
                "MISSED"
            }
        );
    }
}

fn common_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// 10,000 users in scim2-server: a plain client's listing against our reconcile.
async fn scim() {
    let n = env_num("QM_ACCOUNTS", 10_000);
    let server = ScimServer::start();
    let base = server.tenant("fig11");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let t = Instant::now();
    post(&http, &base, "Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Bench Group"})).await;
    let mut tasks = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(16));
    for i in 0..n {
        let (http, base, sem) = (http.clone(), base.clone(), sem.clone());
        tasks.spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let email = format!("b{i:05}@acme.test");
            post(
                &http,
                &base,
                "Users",
                json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": email,
                    "emails": [{"value": email, "primary": true}],
                    "active": true,
                }),
            )
            .await;
        });
    }
    while tasks.join_next().await.is_some() {}
    println!(
        "\n== SCIM (scim2-server): {n} users created in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let text = format!(
        "[organization]\nname = \"Benchco\"\nit_admins = [\"ivy\"]\n\n[[person]]\nhandle = \"ivy\"\nname = \"Ivy\"\nemail = \"ivy@bench.test\"\nrole = \"staff\"\n\n\
         [[role]]\nname = \"staff\"\napps = []\n\n[[app]]\nname = \"bench\"\nconnector = \"peer\"\nentitlement = \"Bench Group\"\napprovals = []\n\n\
         [[connector]]\nname = \"peer\"\nkind = \"scim\"\nbase_url = \"{base}\"\ntoken_env = \"QM_BENCH_SCIM_TOKEN\"\ntimeout = \"60s\"\n"
    );
    let config = config::parse(&text, std::path::Path::new("."), &|k| {
        (k == "QM_BENCH_SCIM_TOKEN").then(|| TOKEN.to_owned())
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("qm.db").display());
    let store = wiring::open_store(&config, &db).await.unwrap();
    let mut people = common::people(n, "staff", "ivy");
    for p in &mut people {
        p.status = PersonStatus::Active;
    }
    store.seed_people(&people).await.unwrap();
    let clock = Arc::new(ManualClock::new(common_now()));
    let (_service, engine) =
        wiring::assemble(&config, store.clone(), Arc::new(LogChat), clock).unwrap();
    let name = ConnectorName::parse("peer").unwrap();
    let mut ratios = Vec::new();
    for round in 1..=2 {
        let t = Instant::now();
        let listed = plain_listing(&http, &base, 100).await;
        let plain = t.elapsed();
        let t = Instant::now();
        let r = engine.reconcile(Some(&name)).await;
        let ours = t.elapsed();
        let open = match &r[0].1 {
            RunOutcome::Ran(rep) => {
                assert!(rep.unread.is_empty(), "{:?}", rep.unread);
                rep.open.len()
            }
            other => panic!("{other:?}"),
        };
        let (pr, or) = (
            listed as f64 / plain.as_secs_f64(),
            n as f64 / ours.as_secs_f64(),
        );
        ratios.push(or / pr);
        println!(
            "round {round}: plain client {listed} users in {:.2} s ({pr:.0}/s); ours {n} accounts reconciled in {:.2} s ({or:.0}/s, {open} findings); ratio {:.2}",
            plain.as_secs_f64(),
            ours.as_secs_f64(),
            or / pr
        );
    }
    let worst = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "goal ratio >= 0.8: {} (worst {worst:.2})",
        if worst >= 0.8 { "MET" } else { "MISSED" }
    );
    let _ = Handle::parse("ivy");
    drop(server);
}

async fn post(http: &reqwest::Client, base: &str, what: &str, body: Value) {
    let r = http
        .post(format!("{base}/{what}"))
        .bearer_auth(TOKEN)
        .header("Content-Type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

/// Every user, page by page, as a plain client lists them; how many.
async fn plain_listing(http: &reqwest::Client, base: &str, count: usize) -> usize {
    let mut start = 1;
    let mut n = 0;
    loop {
        let r: Value = http
            .get(format!("{base}/Users"))
            .bearer_auth(TOKEN)
            .header("Accept", "application/scim+json")
            .query(&[
                ("startIndex", start.to_string()),
                ("count", count.to_string()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page = r["Resources"].as_array().map_or(0, Vec::len);
        let total = r["totalResults"].as_u64().unwrap_or(0) as usize;
        n += page;
        if page == 0 || n >= total {
            return n;
        }
        start += page;
    }
}

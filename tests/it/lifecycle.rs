//! Joiners, movers and leavers end to end: /onboard, /role, /offboard (with the verification
//! re-read and `when:` scheduling), time-bound grants (warning, Extend, expiry), the HR feed
//! over real HTTP, and `quartermaster import people` as a process.

#![allow(clippy::unwrap_used)]

use testkit as support;

use std::sync::Arc;

use hmac::{Hmac, Mac};
use quartermaster::core::model::Handle;
use quartermaster::core::model::PersonStatus;
use quartermaster::core::ports::{ActionQueue, Grants, People};
use secrecy::SecretString;
use serde_json::json;
use sha2::Sha256;
use support::{Bot, t0};

async fn memberships(bot: &Bot, who: &str) -> Vec<String> {
    bot.store.dir_memberships("directory", who).await.unwrap()
}

async fn person(bot: &Bot, h: &str) -> quartermaster::core::model::Person {
    bot.store
        .person(&Handle::parse(h).unwrap())
        .await
        .unwrap()
        .unwrap()
}

fn any_to(bot: &Bot, who: &str, needle: &str) -> bool {
    bot.texts_to(who).iter().any(|t| t.contains(needle))
}

#[tokio::test]
async fn onboarding_grants_birthrights_and_welcomes_once_everything_settled() {
    let mut bot = Bot::example().await;
    bot.run(r#"dana: /onboard email:lena@acme.test name:"Lena Roy" role:designer manager:grace"#)
        .await;
    let reply = bot
        .transcript()
        .into_iter()
        .find(|m| m.to.as_deref() == Some("dana") && m.place == "reply")
        .unwrap();
    assert!(
        reply.text.contains("Lena Roy (lena) created as designer"),
        "{}",
        reply.text
    );
    // Directory apps are provisioned; Adobe (manual connector) waits for IT.
    assert_eq!(memberships(&bot, "lena").await, ["email", "figma"]);
    let welcome = bot
        .texts_to("lena")
        .into_iter()
        .find(|t| t.starts_with("Welcome to Acme, Lena Roy!"))
        .expect("a welcome summary");
    assert!(welcome.contains("ready now: Email, Figma"), "{welcome}");
    assert!(
        welcome.contains("waiting for a manual step by IT: Adobe Creative Cloud (task #"),
        "{welcome}"
    );
    assert_eq!(
        bot.texts_to("lena")
            .iter()
            .filter(|t| t.starts_with("Welcome"))
            .count(),
        1,
        "sent once"
    );
    assert!(any_to(
        &bot,
        "grace",
        "Lena Roy (lena) has joined as designer"
    ));
    assert!(any_to(&bot, "grace", "ready now: Email, Figma"));
    assert_eq!(bot.last_to("mia").buttons, ["Done"]);
    let actions = bot.audit_actions().await;
    assert!(actions.contains(&"person.onboarded".to_owned()));
    assert!(actions.contains(&"onboarding.reported".to_owned()));
}

#[tokio::test]
async fn role_change_grants_revokes_keeps_and_flags_requested_apps() {
    let mut bot = Bot::example().await;
    bot.run(
        r#"dana: /onboard email:lena@acme.test name:"Lena Roy" role:engineer manager:bob
lena: /request app:notion reason:"team notes""#,
    )
    .await;
    assert_eq!(
        memberships(&bot, "lena").await,
        ["email", "github", "jira", "notion", "postman"]
    );
    bot.run("dana: /role user:lena role:designer").await;
    let plan = bot.last_to("dana");
    assert_eq!(plan.buttons, ["Confirm", "Cancel"]);
    assert!(plan.text.contains("engineer → designer"), "{}", plan.text);
    assert!(
        plan.text.contains("- grant: Figma, Adobe Creative Cloud"),
        "{}",
        plan.text
    );
    assert!(
        plan.text.contains("- revoke: GitHub, Jira, Postman"),
        "{}",
        plan.text
    );
    assert!(plan.text.contains("- keep: Email"), "{}", plan.text);
    assert!(
        plan.text
            .contains("separately requested, flagged for review (kept): Notion"),
        "{}",
        plan.text
    );
    // Nothing happens before Confirm.
    assert_eq!(person(&bot, "lena").await.role.as_str(), "engineer");
    bot.run("dana: :click Confirm").await;
    assert_eq!(person(&bot, "lena").await.role.as_str(), "designer");
    assert_eq!(
        memberships(&bot, "lena").await,
        ["email", "figma", "notion"]
    );
    assert!(any_to(&bot, "lena", "Your role changed to designer"));
    assert!(any_to(&bot, "bob", "Lena Roy's role changed to designer"));
    assert!(any_to(&bot, "mia", "For IT: Lena Roy moved to designer"));
    let audit = bot.audit().await;
    assert!(audit.iter().any(|r| r.action == "grant.flagged_for_review"
        && r.app.as_deref() == Some("notion")
        && r.outcome == "review"));
}

#[tokio::test]
async fn offboarding_reverifies_every_connector_and_removes_unrecorded_memberships() {
    let mut bot = Bot::example().await;
    bot.run(
        r#"dana: /onboard email:owen@acme.test name:"Owen Hart" role:engineer manager:bob
alice: /request app:figma reason:"mock-ups" duration:30d
owen: /request app:crm reason:"pipeline""#,
    )
    .await;
    // A membership Quartermaster never granted (someone added it by hand in the target).
    bot.store
        .dir_add_member("directory", "owen", "zoho")
        .await
        .unwrap();
    // Bob leaves while Alice's request waits on him.
    bot.run("dana: /offboard user:bob reason:\"left the company\"")
        .await;
    bot.run("dana: :click Confirm").await;
    assert!(!any_to(
        &bot,
        "alice",
        "Your request #1 for Figma was cancelled"
    ));
    // Bob's step goes to the IT admins (Alice's manager is gone).
    assert!(any_to(&bot, "dana", "Offboarding report for Bob Chen"));
    assert!(
        bot.transcript()
            .iter()
            .any(|m| m.to.as_deref() == Some("mia")
                && m.buttons == ["Approve", "Deny"]
                && m.text.contains("Alice Kim asks for Figma")),
        "the step waiting on Bob was re-routed"
    );

    bot.run("dana: /offboard user:owen").await;
    let plan = bot.last_to("dana").text;
    assert!(plan.contains("Jira (connector directory"), "{plan}");
    assert!(plan.contains("Accounts to disable: directory"), "{plan}");
    assert!(
        plan.contains("Pending requests to cancel: #2 CRM"),
        "{plan}"
    );
    bot.run("dana: :click Confirm").await;
    assert!(memberships(&bot, "owen").await.is_empty());
    assert_eq!(
        bot.store
            .dir_account("directory", "owen")
            .await
            .unwrap()
            .map(|a| a.1),
        Some(false)
    );
    let report = bot.last_to("dana").text;
    assert!(
        report.starts_with("Offboarding report for Owen Hart"),
        "{report}"
    );
    assert!(
        report.contains("- Jira (connector directory, entitlement jira): removed ✔"),
        "{report}"
    );
    assert!(
        report.contains("- directory account: disabled ✔"),
        "{report}"
    );
    assert!(
        report.contains("re-read of connector directory: 1 leftover item(s), removed below"),
        "{report}"
    );
    assert!(
        report.contains("UNRECORDED membership zoho in connector directory found on re-reading (Zoho Books): removed ✔"),
        "{report}"
    );
    assert!(
        report.contains("re-read of connector manual: cannot be re-read"),
        "{report}"
    );
    // Flagged items go to every IT admin.
    assert!(any_to(&bot, "mia", "UNRECORDED membership zoho"));
    // Frank's own request was cancelled; he can no longer request.
    assert!(any_to(
        &bot,
        "owen",
        "Your request #2 for CRM was cancelled"
    ));
    bot.run("owen: /request app:figma reason:x").await;
    assert!(bot.last_to("owen").text.contains("offboarded"));
    let audit = bot.audit().await;
    for a in [
        "person.offboarded",
        "grant.revoked",
        "account.disabled",
        "offboarding.verifying",
        "offboarding.verified",
        "grant.unrecorded",
        "offboarding.reported",
        "step.rerouted",
        "request.cancelled",
    ] {
        assert!(audit.iter().any(|r| r.action == a), "no {a} in the audit");
    }
    assert!(
        audit
            .iter()
            .any(|r| r.action == "grant.unrecorded" && r.app.as_deref() == Some("zoho"))
    );
}

#[tokio::test]
async fn scheduled_offboarding_runs_on_the_last_day_with_nobody_present() {
    let mut bot = Bot::example().await;
    bot.run(
        r#"dana: /onboard email:owen@acme.test name:"Owen Hart" role:engineer manager:bob
dana: /offboard user:owen when:2026-11-27"#,
    )
    .await;
    let plan = bot.last_to("dana");
    assert!(
        plan.text
            .contains("Scheduled: runs by itself at 2026-11-27 23:59 UTC"),
        "{}",
        plan.text
    );
    bot.run("dana: :click Confirm").await;
    assert!(
        bot.last_to("dana")
            .text
            .contains("the offboarding of Owen Hart runs by itself at 2026-11-27 23:59 UTC"),
        "{}",
        bot.last_to("dana").text
    );
    bot.run(":advance 2d").await;
    assert_eq!(person(&bot, "owen").await.status, PersonStatus::Active);
    assert_eq!(memberships(&bot, "owen").await.len(), 4);
    bot.run(":advance 1d").await;
    assert_eq!(person(&bot, "owen").await.status, PersonStatus::Offboarded);
    assert!(memberships(&bot, "owen").await.is_empty());
    let report = bot.last_to("dana").text;
    assert!(
        report.starts_with("Offboarding report for Owen Hart"),
        "{report}"
    );
    assert!(report.contains("Everything is removed"), "{report}");
    assert!(
        bot.audit()
            .await
            .iter()
            .any(|r| r.action == "person.offboarded" && r.actor == "system")
    );
}

#[tokio::test]
async fn time_bound_grants_warn_offer_extend_and_end_by_themselves() {
    let mut bot = Bot::example().await;
    bot.run(
        r#"alice: /request app:figma reason:"mock-ups" duration:30d
bob: :click Approve
carol: :click Approve"#,
    )
    .await;
    assert_eq!(memberships(&bot, "alice").await, ["figma"]);
    bot.run(":advance 28d").await;
    assert!(!any_to(&bot, "alice", "Click Extend"), "too early to warn");
    bot.run(":advance 1d").await;
    let warn = bot.last_to("alice");
    assert_eq!(warn.buttons, ["Extend"]);
    assert!(
        warn.text
            .contains("Your Figma access ends at 2026-12-25 09:00 UTC"),
        "{}",
        warn.text
    );
    bot.run("alice: :click Extend").await;
    assert_eq!(bot.last_to("bob").buttons, ["Approve", "Deny"]);
    bot.run("bob: :click Approve\ncarol: :click Approve").await;
    let g = bot
        .store
        .grants_of(&Handle::parse("alice").unwrap())
        .await
        .unwrap();
    assert_eq!(
        g[0].expires_at.unwrap().to_rfc3339(),
        "2027-01-24T09:00:00+00:00",
        "extended by the original 30 days"
    );
    assert!(!g[0].warned, "a new warning is due before the new end");

    // A short grant is warned a quarter of its duration before the end, then ends.
    bot.run(
        r#"frank: /request app:prod-db reason:"INC-42 outage" duration:8h
bob: :click Approve
dana: :click Approve"#,
    )
    .await;
    assert_eq!(memberships(&bot, "frank").await, ["prod-db"]);
    bot.run(":advance 5h").await;
    assert!(!any_to(&bot, "frank", "Click Extend"));
    bot.run(":advance 1h").await;
    assert_eq!(bot.last_to("frank").buttons, ["Extend"]);
    bot.run(":advance 2h").await;
    assert!(memberships(&bot, "frank").await.is_empty());
    assert!(any_to(
        &bot,
        "frank",
        "Your time-bound Production database access has ended"
    ));
    let actions = bot.audit_actions().await;
    assert!(actions.contains(&"grant.expiry_warned".to_owned()));
    assert!(actions.contains(&"grant.extended".to_owned()));
    assert!(actions.contains(&"grant.expired".to_owned()));
}

// ------------------------------------------------------------------------------- HR feed

const SECRET: &str = "hr-test-secret";

fn sign(ts: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.{body}").as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn start_hr(bot: &Bot) -> String {
    let app = quartermaster::http::hr::router(
        Arc::clone(&bot.service),
        SecretString::from(SECRET.to_owned()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hr/events")
}

async fn post(url: &str, ts: i64, sig: &str, body: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("X-QM-Timestamp", ts.to_string())
        .header("X-QM-Signature", sig)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn signed(url: &str, body: &str) -> (u16, String) {
    let ts = t0().timestamp();
    post(url, ts, &sign(ts, body), body).await
}

fn event(id: &str, kind: &str, role: &str, manager: &str, last_day: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"{kind}","occurred_at":"2026-11-25T09:00:00Z",
 "person":{{"handle":"lena","name":"Lena Roy","email":"lena@acme.test","department":"Engineering",
 "role":"{role}","manager":"{manager}","discord_id":"100000000000000011",
 "start_date":"2026-12-01","last_day":{last_day}}}}}"#
    )
}

#[tokio::test]
async fn hr_feed_is_signed_fresh_deduplicated_and_drives_the_plans() {
    let mut bot = Bot::example().await;
    let url = start_hr(&bot).await;
    let hire = event("evt-1", "hire", "engineer", "bob", "null");
    let now = t0().timestamp();

    // Refused before anything is parsed or stored.
    let (code, _) = post(&url, now, "sha256=00", &hire).await;
    assert_eq!(code, 401, "bad signature");
    let (code, _) = post(&url, now, &sign(now, "{}"), &hire).await;
    assert_eq!(code, 401, "signature over another body");
    let stale = now - 301;
    let (code, _) = post(&url, stale, &sign(stale, &hire), &hire).await;
    assert_eq!(code, 401, "stale timestamp");
    let (code, _) = post(&url, now + 301, &sign(now + 301, &hire), &hire).await;
    assert_eq!(code, 401, "timestamp from the future");
    let (code, _) = signed(&url, "{not json").await;
    assert_eq!(code, 400);
    let (code, body) = signed(&url, &event("evt-x", "promote", "engineer", "bob", "null")).await;
    assert_eq!(code, 422, "{body}");
    let (code, body) = signed(
        &url,
        &event("evt-y", "change", "engineer", "bob", "null").replace("\"lena\"", "\"nobody\""),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("nobody"), "{body}");
    assert!(
        bot.store
            .person(&Handle::parse("lena").unwrap())
            .await
            .unwrap()
            .is_none()
    );

    // A hire: provisioned at once, no confirmation.
    let (code, body) = signed(&url, &hire).await;
    assert_eq!(code, 202, "{body}");
    bot.run(":advance 1m").await;
    assert_eq!(
        memberships(&bot, "lena").await,
        ["email", "github", "jira", "postman"]
    );
    assert!(any_to(&bot, "lena", "Welcome to Acme, Lena Roy!"));
    assert!(any_to(
        &bot,
        "bob",
        "Lena Roy (lena) has joined as engineer"
    ));
    // The same event again changes nothing.
    let n = bot.audit().await.len();
    let (code, body) = signed(&url, &hire).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(bot.audit().await.len(), n, "a replay writes nothing");

    // A change: new role and a new manager; old and new manager are told.
    let (code, body) = signed(&url, &event("evt-2", "change", "designer", "grace", "null")).await;
    assert_eq!(code, 202, "{body}");
    bot.run(":advance 1m").await;
    let lena = person(&bot, "lena").await;
    assert_eq!(
        (
            lena.role.as_str(),
            lena.manager.as_ref().map(|m| m.as_str())
        ),
        ("designer", Some("grace"))
    );
    assert_eq!(memberships(&bot, "lena").await, ["email", "figma"]);
    assert!(any_to(&bot, "bob", "Lena Roy's role changed to designer"));
    assert!(any_to(&bot, "grace", "Lena Roy's role changed to designer"));
    assert!(any_to(&bot, "grace", "manager bob → grace"));

    // A leave with a last day: scheduled, no confirmation, runs on time.
    let (code, body) = signed(
        &url,
        &event("evt-3", "leave", "designer", "grace", "\"2026-11-30\""),
    )
    .await;
    assert_eq!(code, 202, "{body}");
    assert!(any_to(
        &bot,
        "dana",
        "HR scheduled the offboarding of Lena Roy"
    ));
    bot.run(":advance 4d").await;
    assert_eq!(person(&bot, "lena").await.status, PersonStatus::Active);
    bot.run(":advance 2d").await;
    assert_eq!(person(&bot, "lena").await.status, PersonStatus::Offboarded);
    assert!(memberships(&bot, "lena").await.is_empty());
    let report = bot.last_to("mia").text;
    assert!(
        report.contains("Offboarding report for Lena Roy") && report.contains("the HR feed"),
        "{report}"
    );
    let audit = bot.audit().await;
    assert!(
        audit
            .iter()
            .filter(|r| r.action == "hr.event_received")
            .count()
            == 3
    );
    assert!(
        audit
            .iter()
            .any(|r| r.action == "person.offboarded" && r.actor == "hr")
    );
}

/// An HR hire for `handle` with the given overrides of the person's fields.
fn hire(id: &str, handle: &str, manager: &str, person: serde_json::Value) -> String {
    let mut p = serde_json::json!({
        "handle": handle, "name": "Some One", "email": format!("{handle}@acme.test"),
        "department": "Engineering", "role": "engineer", "manager": manager,
    });
    for (k, v) in person.as_object().unwrap() {
        p[k] = v.clone();
    }
    serde_json::json!({ "id": id, "type": "hire", "person": p }).to_string()
}

#[tokio::test]
async fn hr_feed_refuses_long_fields_bad_ids_control_characters_and_cycles_naming_the_field() {
    let bot = Bot::example().await;
    let url = start_hr(&bot).await;
    let refused: Vec<(String, &str)> = vec![
        (
            hire("e1", "lena", "bob", json!({ "name": "n".repeat(201) })),
            "person.name",
        ),
        (
            hire(
                "e2",
                "lena",
                "bob",
                json!({ "department": "d".repeat(101) }),
            ),
            "person.department",
        ),
        (hire(&"i".repeat(129), "lena", "bob", json!({})), "id"),
        (hire("e\0", "lena", "bob", json!({})), "id"),
        (
            hire("e4", "lena", "bob", json!({ "discord_id": "12ab" })),
            "person.discord_id",
        ),
        (
            hire("e5", "lena", "bob", json!({ "discord_id": "42" })),
            "person.discord_id",
        ),
        (
            hire("e6", "lena", "bob", json!({ "email": "le\0na@acme.test" })),
            "person.email",
        ),
        (
            hire("e7", "lena", "bob", json!({ "name": "Lena\nRoy" })),
            "person.name",
        ),
    ];
    for (body, field) in &refused {
        let (code, answer) = signed(&url, body).await;
        assert_eq!(code, 422, "{field}: {answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        let error = answer["error"].as_str().unwrap();
        assert!(error.starts_with(&format!("{field}: ")), "{field}: {error}");
        assert!(
            error.len() < 200,
            "the answer does not echo the value: {error}"
        );
    }
    // A body over the cap is refused before it is parsed (the 1.5 MB name of the review).
    let (code, _) = signed(
        &url,
        &hire(
            "e8",
            "lena",
            "bob",
            json!({ "name": "n".repeat(1_500_000) }),
        ),
    )
    .await;
    assert_eq!(code, 413);
    assert!(
        bot.store
            .person(&Handle::parse("lena").unwrap())
            .await
            .unwrap()
            .is_none(),
        "nothing refused was stored"
    );
    assert!(
        !bot.audit()
            .await
            .iter()
            .any(|r| r.action == "hr.event_received"),
        "nothing refused was audited"
    );

    // Limits are inclusive: 200 characters of name are fine.
    let ok = hire("e9", "lena", "bob", json!({ "name": "n".repeat(200) }));
    let (code, answer) = signed(&url, &ok).await;
    assert_eq!(code, 202, "{answer}");
    // kim reports to lena; lena reporting to kim would close a cycle.
    let (code, answer) = signed(&url, &hire("e10", "kim", "lena", json!({}))).await;
    assert_eq!(code, 202, "{answer}");
    let cycle = hire("e11", "lena", "kim", json!({ "name": "n".repeat(200) }))
        .replace("\"hire\"", "\"change\"");
    let (code, answer) = signed(&url, &cycle).await;
    assert_eq!(code, 422, "{answer}");
    assert!(
        answer.contains("manager: would make a manager cycle: lena → kim → lena"),
        "{answer}"
    );
    assert_eq!(person(&bot, "lena").await.manager.unwrap().as_str(), "bob");
}

#[tokio::test]
async fn hr_feed_answers_a_stalled_body_with_408_and_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bot = Bot::example().await;
    let url = start_hr(&bot).await;
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/hr/events");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // 100 of the 4,000 bytes announced, then nothing.
    s.write_all(
        format!(
            "POST /hr/events HTTP/1.1\r\nHost: qm\r\nContent-Length: 4000\r\n\r\n{}",
            "x".repeat(100)
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(15), s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "still waiting after 15 s");
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(9));
}

#[tokio::test]
async fn onboard_refuses_control_characters_bad_ids_and_cycles() {
    let mut bot = Bot::example().await;
    // (The command's own option limits cap the name at 100 characters.)
    bot.run(
        "dana: /onboard email:lena@acme.test name:\"Lena\u{1}Roy\" role:designer manager:grace",
    )
    .await;
    assert_eq!(
        bot.last_to("dana").text,
        "Could not onboard: name: must not contain control characters."
    );
    bot.run(
        r#"dana: /onboard email:lena@acme.test name:"Lena" role:designer manager:grace user:12ab"#,
    )
    .await;
    assert_eq!(
        bot.last_to("dana").text,
        "Could not onboard: discord_id: not a Discord user id (a number of 17 to 20 digits)."
    );
    // A new hire cannot be anyone's manager yet, so the only cycle `/onboard` can close is a
    // hire named as their own manager (an existing person is never changed by `/onboard`).
    bot.run(r#"dana: /onboard email:zoe@acme.test name:"Zoe Park" role:designer manager:zoe handle:zoe"#)
        .await;
    let said = bot.last_to("dana").text;
    assert!(
        said.contains("manager"),
        "a hire managed by themselves is refused, naming the manager: {said}"
    );
    assert!(
        bot.store
            .person(&Handle::parse("zoe").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        bot.store
            .person(&Handle::parse("lena").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert!(person(&bot, "erin").await.manager.is_none());
}

// ------------------------------------------------------------------------------- import

#[tokio::test]
async fn import_people_takes_joiners_and_movers_and_reports_bad_rows_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("people.csv");
    std::fs::write(
        &csv,
        "handle,name,email,department,role,manager\n\
         lena,Lena Roy,lena@acme.test,Engineering,engineer,bob\n\
         oops,Oops,not-an-email,Engineering,engineer,bob\n\
         frank,Frank Li,frank@acme.test,Engineering,engineering-manager,erin\n\
         zed,Zed Park,zed@acme.test,Design,designer,yan\n\
         yan,Yan Wu,yan@acme.test,Design,design-manager,erin\n\
         max,Max Bell,max@acme.test,Design,astronaut,grace\n",
    )
    .unwrap();
    let test_db = testkit::testdb::TestDb::create(testkit::testdb::Backend::from_env()).await;
    let url = test_db.url.clone();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/acme.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quartermaster"))
        .args(["import", "people"])
        .arg(&csv)
        .args(["--config", config, "--db", &url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "bad rows: exit 1\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("3 joiner(s) created, 1 mover(s) updated, 0 unchanged, 2 bad row(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("people.csv:3: email:"), "{stdout}");
    assert!(
        stdout.contains("people.csv:7: role: there is no role \"astronaut\""),
        "{stdout}"
    );

    let store = quartermaster::store::connect(&url, None).await.unwrap();
    let get = |h: &str| {
        let store = store.clone();
        let h = Handle::parse(h).unwrap();
        async move { store.person(&h).await.unwrap() }
    };
    assert_eq!(get("lena").await.unwrap().role.as_str(), "engineer");
    assert_eq!(
        get("zed").await.unwrap().manager.unwrap().as_str(),
        "yan",
        "manager later in the file"
    );
    assert_eq!(
        get("frank").await.unwrap().role.as_str(),
        "engineering-manager"
    );
    assert!(get("oops").await.is_none() && get("max").await.is_none());
    // Birthrights are queued for the workers of `serve`.
    let lena_grants = store
        .grants_of(&Handle::parse("lena").unwrap())
        .await
        .unwrap();
    assert_eq!(lena_grants.len(), 4);
    let audit = store.audit_rows(None).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|r| r.action == "person.role_changed" && r.subject.as_deref() == Some("frank"))
    );
    assert!(matches!(
        store.verify_audit().await.unwrap(),
        quartermaster::store::VerifyReport::Ok { .. }
    ));
}

#[tokio::test]
async fn import_people_applies_the_same_field_rules_and_refuses_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("people.csv");
    std::fs::write(
        &csv,
        format!(
            "handle,name,email,department,role,manager,discord_id\n\
             lena,Lena Roy,lena@acme.test,Engineering,engineer,bob,\n\
             long,{},long@acme.test,Engineering,engineer,bob,\n\
             snow,Snow,snow@acme.test,Engineering,engineer,bob,42\n\
             bob,Bob Chen,bob@acme.test,Engineering,engineering-manager,lena,\n",
            "n".repeat(201)
        ),
    )
    .unwrap();
    let test_db = testkit::testdb::TestDb::create(testkit::testdb::Backend::from_env()).await;
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/acme.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quartermaster"))
        .args(["import", "people"])
        .arg(&csv)
        .args(["--config", config, "--db", &test_db.url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("1 joiner(s) created, 0 mover(s) updated, 0 unchanged, 3 bad row(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("people.csv:3: name: longer than 200 characters"),
        "{stdout}"
    );
    assert!(
        stdout.contains("people.csv:4: discord_id: not a Discord user id"),
        "{stdout}"
    );
    assert!(
        stdout.contains("people.csv:5: manager: would make a manager cycle: bob → lena → bob"),
        "{stdout}"
    );
}

/// The engine's workers (as `serve` runs them) take hires in batches: a batch's birthright
/// grants reach the directory in one bulk call and are recorded in one transaction, yet every
/// action is done once, audited once, and every joiner is welcomed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_workers_provision_a_batch_of_hires_each_action_once() {
    let bot = Bot::example().await;
    let config = quartermaster::config::load(None).unwrap();
    let dana = bot.caller("dana").await;
    // One joiner's directory account exists already, disabled: the batch enables it.
    assert!(
        bot.store
            .dir_create_account("directory", "eng0", "eng0@acme.test", "Eng 0")
            .await
            .unwrap()
    );
    assert!(
        bot.store
            .dir_set_active("directory", "eng0", false)
            .await
            .unwrap()
    );
    const N: usize = 12;
    for i in 0..N {
        let reply = bot
            .service
            .command_line(
                &dana,
                &format!(
                    r#"/onboard email:eng{i}@acme.test name:"Eng {i}" role:engineer manager:grace"#
                ),
            )
            .await;
        assert!(reply.text.contains("created as engineer"), "{}", reply.text);
    }
    let queued = bot.store.queue_depth().await.unwrap();
    assert_eq!(queued, (N * 4) as i64, "four birthright grants each");

    let conns = quartermaster::wiring::connectors(&config, &bot.store).unwrap();
    let engine = quartermaster::engine::Engine::new(bot.service.clone(), conns);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(async move { engine.run(stop_rx).await });
    let t = std::time::Instant::now();
    while bot.store.queue_depth().await.unwrap() > 0 {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "the queue never drained"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop_tx.send(true).unwrap();
    workers.await.unwrap();

    let audit = bot.audit().await;
    for i in 0..N {
        let who = format!("eng{i}");
        let h = Handle::parse(&who).unwrap();
        assert_eq!(
            memberships(&bot, &who).await,
            ["email", "github", "jira", "postman"],
            "{who}"
        );
        assert_eq!(
            bot.store
                .dir_account("directory", &who)
                .await
                .unwrap()
                .map(|a| a.1),
            Some(true),
            "{who}'s account is active"
        );
        let actions = bot.store.actions_of(&h).await.unwrap();
        assert_eq!(actions.len(), 4);
        for a in &actions {
            assert_eq!(
                a.state,
                quartermaster::core::model::ActionState::Done,
                "{a:?}"
            );
            assert_eq!(a.attempts, 1, "run once: {a:?}");
            let rows: Vec<_> = audit
                .iter()
                .filter(|r| r.connector_action == Some(a.id.0))
                .collect();
            assert_eq!(rows.len(), 1, "one audit row for action {}", a.id);
            assert_eq!(rows[0].action, "grant.provisioned");
            assert_eq!(rows[0].outcome, "ok", "each grant changed the directory");
        }
        let grants = bot.store.grants_of(&h).await.unwrap();
        assert_eq!(grants.len(), 4);
        assert!(
            grants
                .iter()
                .all(|g| g.state == quartermaster::core::model::GrantState::Active),
            "{grants:?}"
        );
        let welcomes = bot
            .texts_to(&who)
            .into_iter()
            .filter(|t| t.starts_with("Welcome to Acme"))
            .count();
        assert_eq!(welcomes, 1, "{who} is welcomed once");
        assert!(any_to(&bot, &who, "You now have Postman"));
    }
    assert!(
        bot.store.verify_audit().await.unwrap().is_ok(),
        "the chain verifies"
    );
}

/// A plan whose stored detail no longer reads back (corrupt data) is an error, never run on
/// defaults: its Confirm moves nobody and queues nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_whose_stored_detail_is_corrupt_is_not_run_on_defaults() {
    let mut bot = Bot::example().await;
    bot.run(r#"dana: /onboard email:lena@acme.test name:"Lena Roy" role:engineer manager:bob"#)
        .await;
    let before = person(&bot, "lena").await;
    bot.run("dana: /role user:lena role:designer").await;
    testkit::testdb::execute(&bot.db.url, "UPDATE plans SET detail = 'not json'").await;
    bot.run("dana: :click Confirm").await;
    let after = person(&bot, "lena").await;
    assert_eq!(after.role, before.role, "the move did not run on defaults");
    assert!(
        memberships(&bot, "lena").await.iter().all(|m| m != "figma"),
        "no designer birthright was granted"
    );
    let last = bot.last_to("dana").text;
    assert!(last.contains("went wrong"), "{last}");
}

//! Time zones end to end: `/offboard when:` and HR's `last_day` end at 23:59:59 in the leaver's
//! zone (their own, else the organisation's), across DST changes; the times in messages are
//! written in the reader's zone with its abbreviation.

#![allow(clippy::unwrap_used)]

use testkit as support;

use std::sync::Arc;

use hmac::{Hmac, Mac};
use quartermaster::config::{self, EXAMPLE_TOML};
use quartermaster::core::model::{Handle, PersonStatus, Timestamp};
use quartermaster::core::ports::{Clock, People, Plans};
use secrecy::SecretString;
use sha2::Sha256;
use support::{Bot, t0};

fn at(s: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// The example organisation in `zone`, with `edit` applied to its TOML, its clock at `start`.
async fn acme_in(zone: &str, edit: impl Fn(String) -> String, start: Timestamp) -> Bot {
    let text = edit(EXAMPLE_TOML.replace(
        "name = \"Acme\"\n",
        &format!("name = \"Acme\"\ntimezone = \"{zone}\"\n"),
    ));
    let c = config::parse(&text, std::path::Path::new("."), &|_| None)
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"));
    assert_eq!(c.org.timezone.name(), zone);
    Bot::with_config_at(c, start).await
}

/// Gives `handle` (a person of the example) their own zone in the TOML.
fn own_zone(handle: &'static str, zone: &'static str) -> impl Fn(String) -> String {
    move |t| {
        t.replace(
            &format!("handle = \"{handle}\"\n"),
            &format!("handle = \"{handle}\"\ntimezone = \"{zone}\"\n"),
        )
    }
}

async fn status(bot: &Bot, h: &str) -> PersonStatus {
    bot.store
        .person(&Handle::parse(h).unwrap())
        .await
        .unwrap()
        .unwrap()
        .status
}

/// The due time of `h`'s newest plan.
async fn due_of(bot: &Bot, h: &str) -> Option<Timestamp> {
    let plans = bot
        .store
        .plans_of(&Handle::parse(h).unwrap())
        .await
        .unwrap();
    plans.iter().max_by_key(|p| p.id).and_then(|p| p.due_at)
}

fn reply_to(bot: &Bot, who: &str) -> String {
    bot.transcript()
        .into_iter()
        .rev()
        .find(|m| m.to.as_deref() == Some(who) && m.place == "reply")
        .unwrap_or_else(|| panic!("no reply to {who}"))
        .text
}

#[tokio::test]
async fn offboard_when_ends_the_last_day_at_23_59_in_the_org_zone_not_utc() {
    let mut bot = acme_in("America/Los_Angeles", |t| t, t0()).await;
    bot.run(
        r#"dana: /onboard email:owen@acme.test name:"Owen Hart" role:engineer manager:bob
dana: /offboard user:owen when:2026-12-31"#,
    )
    .await;
    let plan = reply_to(&bot, "dana");
    assert!(
        plan.contains(
            "Scheduled: runs by itself at 2026-12-31 23:59 PST (end of the last day) once confirmed"
        ),
        "{plan}"
    );
    // 23:59:59 in Los Angeles (PST, UTC-8) is 07:59:59 UTC the next day.
    assert_eq!(due_of(&bot, "owen").await, Some(at("2027-01-01T07:59:59Z")));
    bot.run("dana: :click Confirm").await;
    let confirmed = reply_to(&bot, "dana");
    assert!(
        confirmed.contains("the offboarding of Owen Hart runs by itself at 2026-12-31 23:59 PST"),
        "{confirmed}"
    );
    // At 2027-01-01 01:00 UTC it is still the afternoon of the last day in Los Angeles.
    bot.run(":advance 36d 16h").await;
    assert_eq!(bot.clock.now(), at("2027-01-01T01:00:00Z"));
    assert_eq!(status(&bot, "owen").await, PersonStatus::Active);
    bot.run(":advance 6h 59m").await;
    assert_eq!(status(&bot, "owen").await, PersonStatus::Active);
    bot.run(":advance 1m").await;
    assert_eq!(status(&bot, "owen").await, PersonStatus::Offboarded);
    // The report (seen by IT) shows when the plan was confirmed in the organisation's zone.
    let report = bot
        .texts_to("dana")
        .into_iter()
        .find(|t| t.starts_with("Offboarding report for Owen Hart"))
        .expect("a report");
    assert!(report.contains("2026-11-25 01:00 PST"), "{report}");
}

#[tokio::test]
async fn the_end_of_a_dst_day_is_read_with_that_evenings_offset() {
    // Los Angeles springs forward on 2026-03-08: the evening is PDT (UTC-7).
    let mut bot = acme_in("America/Los_Angeles", |t| t, at("2026-03-01T12:00:00Z")).await;
    bot.run("dana: /offboard user:frank when:2026-03-08").await;
    assert!(
        reply_to(&bot, "dana").contains("runs by itself at 2026-03-08 23:59 PDT"),
        "{}",
        reply_to(&bot, "dana")
    );
    assert_eq!(
        due_of(&bot, "frank").await,
        Some(at("2026-03-09T06:59:59Z"))
    );

    // …and falls back on 2026-11-01: the day before ends in PDT, that day in PST.
    let mut bot = acme_in("America/Los_Angeles", |t| t, at("2026-10-25T12:00:00Z")).await;
    bot.run("dana: /offboard user:frank when:2026-10-31").await;
    assert!(reply_to(&bot, "dana").contains("at 2026-10-31 23:59 PDT"));
    assert_eq!(
        due_of(&bot, "frank").await,
        Some(at("2026-11-01T06:59:59Z"))
    );
    bot.run("dana: :click Cancel\ndana: /offboard user:frank when:2026-11-01")
        .await;
    assert!(reply_to(&bot, "dana").contains("at 2026-11-01 23:59 PST"));
    assert_eq!(
        due_of(&bot, "frank").await,
        Some(at("2026-11-02T07:59:59Z"))
    );

    // Berlin moves to CEST (UTC+2) on 2026-03-29.
    let mut bot = acme_in("Europe/Berlin", |t| t, at("2026-03-20T12:00:00Z")).await;
    bot.run("dana: /offboard user:frank when:2026-03-29\ndana: :click Confirm")
        .await;
    assert!(
        reply_to(&bot, "dana").contains("runs by itself at 2026-03-29 23:59 CEST"),
        "{}",
        reply_to(&bot, "dana")
    );
    assert_eq!(
        due_of(&bot, "frank").await,
        Some(at("2026-03-29T21:59:59Z"))
    );
    bot.run(":advance 9d 9h 59m").await;
    assert_eq!(bot.clock.now(), at("2026-03-29T21:59:00Z"));
    assert_eq!(status(&bot, "frank").await, PersonStatus::Active);
    bot.run(":advance 1m").await;
    assert_eq!(status(&bot, "frank").await, PersonStatus::Offboarded);
}

#[tokio::test]
async fn a_persons_own_zone_overrides_the_organisations() {
    // The organisation is in Berlin; Owen, onboarded with his own zone, is in Los Angeles.
    let mut bot = acme_in("Europe/Berlin", |t| t, t0()).await;
    bot.run(
        r#"dana: /onboard email:owen@acme.test name:"Owen Hart" role:engineer manager:bob timezone:America/Los_Angeles
dana: /offboard user:owen when:2026-12-31"#,
    )
    .await;
    let owen = bot
        .store
        .person(&Handle::parse("owen").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owen.timezone.map(|z| z.name()), Some("America/Los_Angeles"));
    // His last day ends in his zone; Dana reads it in hers, and is told whose day it is.
    assert_eq!(due_of(&bot, "owen").await, Some(at("2027-01-01T07:59:59Z")));
    let plan = reply_to(&bot, "dana");
    assert!(
        plan.contains(
            "runs by itself at 2027-01-01 08:59 CET (end of 2026-12-31 for Owen Hart, America/Los_Angeles)"
        ),
        "{plan}"
    );
    // Someone without a zone of their own ends the day in the organisation's.
    bot.run("dana: :click Cancel\ndana: /offboard user:frank when:2026-12-31")
        .await;
    assert_eq!(
        due_of(&bot, "frank").await,
        Some(at("2026-12-31T22:59:59Z"))
    );
    assert!(reply_to(&bot, "dana").contains("at 2026-12-31 23:59 CET (end of the last day)"));

    // A bad zone names the option and changes nothing.
    bot.run(
        r#"dana: /onboard email:zed@acme.test name:"Zed Ray" role:engineer timezone:Mars/Olympus"#,
    )
    .await;
    let r = reply_to(&bot, "dana");
    assert!(
        r.contains("timezone: \"Mars/Olympus\" is not a time zone"),
        "{r}"
    );
    assert!(
        bot.store
            .person(&Handle::parse("zed").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn messages_show_times_in_the_readers_zone() {
    // Berlin organisation; Alice (TOML `timezone`) reads Los Angeles time.
    let mut bot = acme_in(
        "Europe/Berlin",
        own_zone("alice", "America/Los_Angeles"),
        t0(),
    )
    .await;
    bot.run(r#"alice: /request app:figma reason:"mock-ups" duration:30d"#)
        .await;
    // Bob's reminder (after a day) in Berlin time: submitted 2026-11-25 09:00 UTC.
    bot.run(":advance 24h").await;
    assert!(
        bot.texts_to("bob")
            .iter()
            .any(|t| t.starts_with("Reminder:")
                && t.contains("waiting for your decision since 2026-11-25 10:00 CET")),
        "{:?}",
        bot.texts_to("bob")
    );
    bot.run("bob: :click Approve\ncarol: :click Approve").await;
    // Granted 2026-11-26 09:00 UTC for 30 days: ends 2026-12-26 09:00 UTC = 01:00 PST.
    assert!(
        bot.texts_to("alice")
            .iter()
            .any(|t| t == "✅ You now have Figma until 2026-12-26 01:00 PST."),
        "{:?}",
        bot.texts_to("alice")
    );
    bot.run("alice: /access").await;
    assert!(
        reply_to(&bot, "alice").contains("Figma — request #1, until 2026-12-26 01:00 PST"),
        "{}",
        reply_to(&bot, "alice")
    );
    // Bob sees Alice's access in his own zone.
    bot.run("bob: /access user:alice").await;
    assert!(
        reply_to(&bot, "bob").contains("until 2026-12-26 10:00 CET"),
        "{}",
        reply_to(&bot, "bob")
    );
    bot.run(":advance 29d").await;
    let warn = bot.last_to("alice");
    assert!(
        warn.text
            .contains("Your Figma access ends at 2026-12-26 01:00 PST"),
        "{}",
        warn.text
    );
}

// ------------------------------------------------------------------------------- HR feed

const SECRET: &str = "hr-test-secret";

async fn hr_post(bot: &Bot, body: &str) -> (u16, String) {
    let app = quartermaster::http::hr::router(
        Arc::clone(&bot.service),
        SecretString::from(SECRET.to_owned()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let ts = bot.clock.now().timestamp();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.{body}").as_bytes());
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/hr/events"))
        .header("content-type", "application/json")
        .header("X-QM-Timestamp", ts.to_string())
        .header(
            "X-QM-Signature",
            format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        )
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn leave(id: &str, timezone: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"leave","person":{{"handle":"frank","name":"Frank Li",
 "email":"frank@acme.test","department":"Engineering","role":"engineer","manager":"bob",
 {timezone}"last_day":"2026-12-31"}}}}"#
    )
}

#[tokio::test]
async fn hr_last_day_ends_in_the_leavers_zone_and_a_bad_zone_is_refused() {
    let bot = acme_in("Europe/Berlin", |t| t, t0()).await;
    let (code, body) = hr_post(
        &bot,
        &leave("evt-bad", r#""timezone":"America/Los_Angles","#),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains(
            "person.timezone: \\\"America/Los_Angles\\\" is not a time zone of the IANA database — did you mean \\\"America/Los_Angeles\\\"?"
        ),
        "{body}"
    );
    assert!(due_of(&bot, "frank").await.is_none(), "nothing changed");

    // Without a zone in the event: the organisation's (Berlin, CET).
    let (code, body) = hr_post(&bot, &leave("evt-1", "")).await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(
        due_of(&bot, "frank").await,
        Some(at("2026-12-31T22:59:59Z"))
    );
    assert!(
        bot.texts_to("dana").iter().any(|t| t
            .contains("HR scheduled the offboarding of Frank Li (frank) at 2026-12-31 23:59 CET")),
        "{:?}",
        bot.texts_to("dana")
    );

    // With the leaver's own zone: the end of their day there.
    let bot = acme_in("Europe/Berlin", |t| t, t0()).await;
    let (code, body) = hr_post(
        &bot,
        &leave("evt-2", r#""timezone":"America/Los_Angeles","#),
    )
    .await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(
        due_of(&bot, "frank").await,
        Some(at("2027-01-01T07:59:59Z"))
    );
    assert!(
        bot.texts_to("dana")
            .iter()
            .any(|t| t.contains("at 2027-01-01 08:59 CET (plan #")),
        "{:?}",
        bot.texts_to("dana")
    );
}

// ------------------------------------------------------------------------------- the binary

const BIN: &str = env!("CARGO_BIN_EXE_quartermaster");

/// Writes the example organisation in `zone` to a temporary folder (its database beside it).
fn config_in(zone: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acme.toml");
    std::fs::write(
        &path,
        EXAMPLE_TOML.replace(
            "name = \"Acme\"\n",
            &format!("name = \"Acme\"\ntimezone = \"{zone}\"\n"),
        ),
    )
    .unwrap();
    (dir, path)
}

#[test]
fn check_refuses_an_unknown_zone_with_its_key_path() {
    let (_dir, path) = config_in("Mars/Olympus");
    let o = std::process::Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("organization.timezone: \"Mars/Olympus\" is not a time zone of the IANA database — write an IANA name such as \"Europe/Berlin\""),
        "{err}"
    );
    let (_dir, path) = config_in("America/Los_Angels");
    let o = std::process::Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("did you mean \"America/Los_Angeles\"?"),
        "{err}"
    );
}

#[test]
fn the_console_with_a_fixed_clock_reads_dates_in_the_org_zone() {
    use std::io::Write;
    let (_dir, path) = config_in("America/Los_Angeles");
    let mut child = std::process::Command::new(BIN)
        .args(["console", "--now", "2026-03-01T12:00:00Z", "--config"])
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"dana: /offboard user:frank when:2026-03-08\n:advance 1h\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("Scheduled: runs by itself at 2026-03-08 23:59 PDT (end of the last day)"),
        "{out}"
    );
    assert!(
        out.contains("The clock moved 1h to 2026-03-01 05:00 PST; nothing was due."),
        "{out}"
    );
}

#[test]
fn audit_dates_are_days_in_the_org_zone_and_its_story_is_told_there() {
    use std::io::Write;
    let (_dir, path) = config_in("America/Los_Angeles");
    // 07:30 UTC on 2 March is still the evening of 1 March in Los Angeles (PST).
    let mut child = std::process::Command::new(BIN)
        .args(["console", "--now", "2026-03-02T07:30:00Z", "--config"])
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"alice: /request app:figma reason:mock-ups\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let show = |flags: &[&str]| {
        let o = std::process::Command::new(BIN)
            .args(["audit", "show", "--config"])
            .arg(&path)
            .args(flags)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let day1 = show(&["--since", "2026-03-01", "--until", "2026-03-01"]);
    assert!(
        day1.contains("2026-03-01 23:30 PST") && day1.contains("alice requested figma"),
        "{day1}"
    );
    assert_eq!(
        show(&["--since", "2026-03-02"]).trim(),
        "nothing in the audit trail matches"
    );
}

#[tokio::test]
async fn hr_changing_only_the_time_zone_stores_it_and_moves_nothing() {
    let bot = acme_in("Europe/Berlin", |t| t, t0()).await;
    let change = |id: &str, zone: &str| {
        format!(
            r#"{{"id":"{id}","type":"change","person":{{"handle":"frank","name":"Frank Li",
 "email":"frank@acme.test","department":"Engineering","role":"engineer","manager":"bob"{zone}}}}}"#
        )
    };
    // Frank's birthrights first (the example starts everyone with none).
    let (code, body) = hr_post(&bot, &change("evt-0", "")).await;
    assert_eq!(code, 202, "{body}");
    let before = bot.transcript().len();
    let (code, body) = hr_post(&bot, &change("evt-tz", r#","timezone":"Asia/Tokyo""#)).await;
    assert_eq!(code, 202, "{body}");
    let frank = bot
        .store
        .person(&Handle::parse("frank").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frank.timezone.map(|z| z.name()), Some("Asia/Tokyo"));
    assert_eq!(
        bot.transcript().len(),
        before,
        "nobody is told of a role change"
    );
    assert!(bot.audit().await.iter().any(|r| r.action == "person.role_changed"
        && r.detail == "time zone none → Asia/Tokyo"));
    // A later record without a zone keeps it.
    let (code, body) = hr_post(&bot, &change("evt-none", "")).await;
    assert!(
        code == 202 && body.contains("frank unchanged"),
        "{code} {body}"
    );
    let frank = bot
        .store
        .person(&Handle::parse("frank").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frank.timezone.map(|z| z.name()), Some("Asia/Tokyo"));
}

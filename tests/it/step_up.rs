//! Step-up (TOTP) through the console on a real database: enrolment and its confirmation,
//! approvals with right, wrong, reused and stale codes, the lockout and its end, not enrolled,
//! IT's reset (itself under step-up), the one-time enrolment page over HTTP, IT's confirms
//! under `step_up_for`, and no secret or code in the audit trail, the chat or the logs after
//! enrolment. Codes are computed from the enrolled secret, as an authenticator app would.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use quartermaster::core::ports::Clock;
use quartermaster::core::totp::TotpSecret;
use secrecy::ExposeSecret;
use testkit::Bot;

/// The `[mfa]` key the tests seal secrets with.
pub const KEY: &str = "3f1c9a7e5b2d4f60a8c1e3b5d7f90213a4c6e8f0b2d4f6a8c0e2b4d6f8a0c2e4";

/// The example organisation with step-up on prod-db, break-glass on github and prod-db,
/// `[mfa]` configured, and `extra` appended (more tables, or `[workflow]` keys).
pub fn config(extra: &str) -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/acme.toml"))
        .unwrap();
    let text = text.replacen(
        "reason_hint = \"an incident or change ticket, e.g. INC-1234\"",
        "reason_hint = \"an incident or change ticket, e.g. INC-1234\"\nstep_up = \"totp\"\n\
         break_glass = { max = \"2h\", who = [\"role:engineer\"], reason_pattern = \"^INC-\" }",
        1,
    );
    let text = text.replacen(
        "name = \"github\"\ndisplay = \"GitHub\"",
        "name = \"github\"\ndisplay = \"GitHub\"\nbreak_glass = { max = \"4h\", who = [\"role:engineer\", \"carol\"], \
         reason_pattern = \"^INC-\", review_within = \"1h\", auto_revoke = true }",
        1,
    );
    assert!(text.contains("step_up = \"totp\"") && text.contains("auto_revoke = true"));
    format!("{text}\n[mfa]\nkey_env = \"QM_MFA_KEY\"\n{extra}")
}

/// A bot over [`config`].
pub async fn bot(extra: &str) -> Bot {
    Bot::from_toml_env(&config(extra), &|k| {
        (k == "QM_MFA_KEY").then(|| KEY.to_owned())
    })
    .await
}

/// Enrols `who` (answer with the secret, no public URL), confirms with a first code, moves
/// the clock on a step (that code is spent) and returns the secret.
pub async fn enrol(bot: &mut Bot, who: &str) -> TotpSecret {
    bot.run(&format!("{who}: /mfa enroll")).await;
    let text = bot.last_to(who).text;
    let secret = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("• secret: "))
        .unwrap_or_else(|| panic!("no secret in {text}"))
        .to_owned();
    let s = TotpSecret::from_base32(&secret).unwrap();
    bot.run(&format!("{who}: /mfa confirm code:{}", code(bot, &s, 0)))
        .await;
    assert!(
        bot.last_to(who).text.starts_with("Enrolled"),
        "{}",
        bot.last_to(who).text
    );
    bot.run(":advance 30s").await;
    s
}

/// The code `s` shows `steps` time steps from the bot's clock.
pub fn code(bot: &Bot, s: &TotpSecret, steps: i64) -> String {
    s.code_at(bot.clock.now().timestamp() + steps * 30)
}

async fn state_of(bot: &Bot, id: i64) -> String {
    use quartermaster::core::ports::Requests;
    let r = bot
        .store
        .request(quartermaster::core::model::RequestId(id))
        .await
        .unwrap()
        .unwrap();
    r.state.name().to_owned()
}

#[tokio::test]
async fn enrolment_is_confirmed_by_a_code_and_approvals_need_one() {
    let mut bot = bot("").await;
    bot.run("erin: /mfa status").await;
    assert!(bot.last_to("erin").text.contains("not enrolled"));
    // A confirm before enrolling, and a wrong first code, change nothing.
    bot.run("bob: /mfa confirm code:123456").await;
    assert!(bot.last_to("bob").text.contains("run /mfa enroll first"));
    let s = enrol(&mut bot, "bob").await;
    bot.run("bob: /mfa enroll").await;
    assert!(bot.last_to("bob").text.contains("enrolled already"));
    bot.run("bob: /mfa status").await;
    assert!(bot.last_to("bob").text.contains("You are enrolled"));

    bot.run("alice: /request app:prod-db reason:INC-7 duration:2h")
        .await;
    // Approve opens a form asking for the code; the step waits meanwhile.
    bot.run("bob: :click Approve").await;
    let form = bot.last_to("bob");
    assert_eq!(form.kind, "form", "{form:?}");
    let f = form.form.clone().unwrap();
    assert_eq!(
        f.fields.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
        ["code"]
    );
    assert_eq!(state_of(&bot, 1).await, "awaiting");
    // Wrong, then stale (two steps old), then right.
    bot.run("bob: :submit code:000000").await;
    assert!(
        bot.last_to("bob").text.contains("not right"),
        "{}",
        bot.last_to("bob").text
    );
    assert!(bot.last_to("bob").text.contains("4 tries left"));
    let stale = code(&bot, &s, -2);
    bot.run(&format!("bob: :click Approve code:{stale}")).await;
    assert!(bot.last_to("bob").text.contains("3 tries left"));
    assert_eq!(state_of(&bot, 1).await, "awaiting");
    let good = code(&bot, &s, 0);
    bot.run(&format!("bob: :click Approve code:{good}")).await;
    assert!(
        bot.texts_to("dana")
            .iter()
            .any(|t| t.contains("Step 2 of 2")),
        "{:?}",
        bot.texts_to("dana")
    );
    // The same code again, on another request, is refused: a code counts once.
    bot.run("frank: /request app:prod-db reason:INC-8 duration:1h")
        .await;
    bot.run(&format!("bob: :click Approve code:{good}")).await;
    assert!(
        bot.last_to("bob").text.contains("used already"),
        "{}",
        bot.last_to("bob").text
    );
    assert_eq!(state_of(&bot, 2).await, "awaiting");
    // The next step's code (one step of drift) works.
    let next = code(&bot, &s, 1);
    bot.run(&format!("bob: :click Approve code:{next}")).await;
    assert!(
        bot.texts_to("frank")
            .iter()
            .any(|t| t.contains("was approved by Bob Chen")),
        "{:?}",
        bot.texts_to("frank")
    );

    // The decision's audit row names the method, never the code.
    let rows = bot.audit().await;
    let approved: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "step.approved")
        .collect();
    assert_eq!(approved.len(), 2);
    assert!(
        approved.iter().all(|r| r.detail.contains("step-up: totp")),
        "{approved:?}"
    );
    let failed = rows.iter().filter(|r| r.action == "step_up.failed").count();
    assert_eq!(failed, 3, "two wrong codes and one reused");
    for r in &rows {
        for c in [&good, &stale, &next, &"000000".to_owned()] {
            assert!(
                !r.detail.contains(c.as_str()),
                "a code in the audit trail: {r:?}"
            );
        }
        assert!(!r.detail.contains(s.base32().expose_secret()), "{r:?}");
    }
    assert!(
        rows.iter()
            .any(|r| r.action == "mfa.enrolled" && r.outcome == "ok")
    );
}

#[tokio::test]
async fn five_wrong_codes_lock_step_up_for_15_minutes_and_tell_it() {
    let mut bot = bot("").await;
    let s = enrol(&mut bot, "bob").await;
    bot.run("alice: /request app:prod-db reason:INC-7 duration:2h")
        .await;
    for i in 0..5 {
        bot.run("bob: :click Approve code:111111").await;
        if i < 4 {
            assert!(bot.last_to("bob").text.contains("not right"));
        }
    }
    assert!(
        bot.last_to("bob").text.contains("locked until"),
        "{}",
        bot.last_to("bob").text
    );
    assert!(
        bot.texts_to("dana")
            .iter()
            .any(|t| t.contains("Step-up for Bob Chen locked")),
        "{:?}",
        bot.texts_to("dana")
    );
    // Even the right code is refused while locked.
    bot.run(&format!("bob: :click Approve code:{}", code(&bot, &s, 0)))
        .await;
    assert!(
        bot.last_to("bob").text.contains("locked"),
        "{}",
        bot.last_to("bob").text
    );
    assert_eq!(state_of(&bot, 1).await, "awaiting");
    bot.run("bob: /mfa status").await;
    assert!(bot.last_to("bob").text.contains("locked until"));
    bot.run(":advance 16m").await;
    bot.run(&format!("bob: :click Approve code:{}", code(&bot, &s, 0)))
        .await;
    assert!(
        bot.texts_to("dana")
            .iter()
            .any(|t| t.contains("Step 2 of 2"))
    );
}

#[tokio::test]
async fn not_enrolled_is_told_how_and_the_step_stays_pending() {
    let mut bot = bot("").await;
    bot.run("alice: /request app:prod-db reason:INC-7 duration:2h")
        .await;
    bot.run("bob: :click Approve").await;
    let t = bot.last_to("bob").text;
    assert!(t.contains("/mfa enroll"), "{t}");
    assert_eq!(state_of(&bot, 1).await, "awaiting");
    // Apps without step-up are unchanged: one click.
    bot.run("alice: /request app:jira").await;
    bot.run("bob: :click Approve").await;
    assert_ne!(state_of(&bot, 2).await, "awaiting");
    let rows = bot.audit().await;
    assert!(
        rows.iter()
            .any(|r| r.action == "step_up.failed" && r.detail.contains("not enrolled"))
    );
}

#[tokio::test]
async fn it_resets_an_enrolment_under_step_up_never_its_own() {
    let mut bot = bot("").await;
    let _bob = enrol(&mut bot, "bob").await;
    bot.run("dana: /mfa reset user:bob").await;
    // Dana is not enrolled herself: no reset.
    assert!(
        bot.last_to("dana").text.contains("/mfa enroll"),
        "{}",
        bot.last_to("dana").text
    );
    let dana = enrol(&mut bot, "dana").await;
    bot.run("dana: /mfa reset user:dana").await;
    assert!(bot.last_to("dana").text.contains("cannot reset your own"));
    bot.run("alice: /mfa reset user:bob").await;
    assert!(
        bot.last_to("alice").text.to_lowercase().contains("it"),
        "{}",
        bot.last_to("alice").text
    );
    bot.run("dana: /mfa reset user:bob").await;
    assert_eq!(bot.last_to("dana").kind, "form");
    bot.run(&format!("dana: :submit code:{}", code(&bot, &dana, 0)))
        .await;
    assert!(
        bot.last_to("dana").text.contains("removed"),
        "{}",
        bot.last_to("dana").text
    );
    assert!(bot.last_to("bob").text.contains("reset your step-up"));
    bot.run("bob: /mfa status").await;
    assert!(bot.last_to("bob").text.contains("not enrolled"));
    let rows = bot.audit().await;
    let reset = rows.iter().find(|r| r.action == "mfa.reset").unwrap();
    assert_eq!(reset.actor, "dana");
    assert!(reset.detail.contains("step-up: totp"), "{reset:?}");
}

#[tokio::test]
async fn the_enrolment_page_opens_once_within_ten_minutes() {
    let mut bot =
        bot("[http]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://qm.example.test\"\n").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = quartermaster::http::mfa::router(bot.service.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = reqwest::Client::new();

    bot.run("bob: /mfa enroll").await;
    let text = bot.last_to("bob").text;
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with("https://qm.example.test/mfa/enroll/"))
        .unwrap_or_else(|| panic!("no link in {text}"));
    assert!(
        !text.contains("secret:"),
        "the secret itself is only on the page: {text}"
    );
    let path = link.trim_start_matches("https://qm.example.test");
    let url = format!("http://{addr}{path}");
    let first = client.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "no-store");
    let page = first.text().await.unwrap();
    assert!(page.contains("<svg"), "a QR code");
    let secret = page
        .split("<code>")
        .nth(1)
        .unwrap()
        .split("</code>")
        .next()
        .unwrap();
    let s = TotpSecret::from_base32(secret).unwrap();
    // Used twice: the second time is refused.
    let second = client.get(&url).send().await.unwrap();
    assert_eq!(second.status(), 404);
    assert!(second.text().await.unwrap().contains("not valid"));
    // The secret from the page confirms the enrolment.
    bot.run(&format!("bob: /mfa confirm code:{}", code(&bot, &s, 0)))
        .await;
    assert!(bot.last_to("bob").text.starts_with("Enrolled"));

    // A fresh link expires after 10 minutes; a made-up token is refused alike.
    bot.run("carol: /mfa enroll").await;
    let text = bot.last_to("carol").text;
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/mfa/enroll/"))
        .unwrap();
    let url = format!(
        "http://{addr}{}",
        link.trim_start_matches("https://qm.example.test")
    );
    bot.run(":advance 11m").await;
    assert_eq!(client.get(&url).send().await.unwrap().status(), 404);
    let fake = format!("http://{addr}/mfa/enroll/{}", "ab".repeat(32));
    assert_eq!(client.get(&fake).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn it_confirms_named_in_step_up_for_need_a_code() {
    let text = config("").replacen("[workflow]", "[workflow]\nstep_up_for = [\"offboard\"]", 1);
    let mut bot = Bot::from_toml_env(&text, &|k| (k == "QM_MFA_KEY").then(|| KEY.to_owned())).await;
    let dana = enrol(&mut bot, "dana").await;
    bot.run("dana: /offboard user:frank reason:\"left\"").await;
    bot.run("dana: :click Confirm").await;
    assert_eq!(
        bot.last_to("dana").kind,
        "form",
        "{:?}",
        bot.last_to("dana")
    );
    bot.run("dana: :submit code:999999").await;
    assert!(bot.last_to("dana").text.contains("not right"));
    bot.run(&format!(
        "dana: :click Confirm code:{}",
        code(&bot, &dana, 0)
    ))
    .await;
    let rows = bot.audit().await;
    let confirmed = rows.iter().find(|r| r.action == "plan.confirmed").unwrap();
    assert!(confirmed.detail.contains("step-up: totp"), "{confirmed:?}");
    // Cancel and other plans' Confirm are untouched.
    bot.run("dana: /role user:alice role:engineering-manager")
        .await;
    bot.run("dana: :click Confirm").await;
    assert!(rows.len() < bot.audit().await.len());
    assert_ne!(bot.last_to("dana").kind, "form");
}

/// Captures every log line the service writes (all levels) while a test runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process-wide log capture (a thread-local subscriber misses events whose callsites
/// other tests' threads registered first): every test's logs land here, and only this test
/// reads them.
fn captured_logs() -> Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let w = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || w.clone())
            .with_ansi(false)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test installs a global subscriber");
        logs
    })
    .clone()
}

#[tokio::test]
async fn no_secret_or_code_in_the_logs_the_chat_or_the_audit_after_enrolment() {
    let logs = captured_logs();
    let mut bot = bot("").await;
    let s = enrol(&mut bot, "bob").await;
    let enrolled_at = bot.transcript().len();
    let secret = s.base32().expose_secret().to_owned();
    bot.run("alice: /request app:prod-db reason:INC-7 duration:2h")
        .await;
    let wrong = "424242";
    bot.run(&format!("bob: :click Approve code:{wrong}")).await;
    let good = code(&bot, &s, 0);
    bot.run(&format!("bob: :click Approve code:{good}")).await;
    bot.run("frank: /request app:prod-db reason:INC-8 duration:1h")
        .await;
    bot.run(&format!("bob: :click Approve code:{good}")).await;
    assert!(bot.last_to("bob").text.contains("used already"));
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("click"),
        "the capture works: {}",
        &logs[..logs.len().min(500)]
    );
    assert!(!logs.contains(&secret), "the secret is in the logs");
    for c in [good.as_str(), wrong] {
        assert!(
            !logs.contains(&format!("code:{c}")) && !logs.contains(&format!("\"{c}\"")),
            "a code is in the logs"
        );
    }
    for m in &bot.transcript()[enrolled_at..] {
        assert!(
            !m.text.contains(&secret) && !m.text.contains(&good),
            "{m:?}"
        );
    }
    for r in bot.audit().await {
        assert!(
            !r.detail.contains(&secret) && !r.detail.contains(&good),
            "{r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_simultaneous_submits_of_one_code_decide_once() {
    let mut bot = bot("").await;
    let s = enrol(&mut bot, "bob").await;
    bot.run("alice: /request app:prod-db reason:INC-100 duration:1h")
        .await;
    let open = {
        use quartermaster::core::ports::Requests;
        bot.store.open_requests().await.unwrap()
    };
    let r = open.last().unwrap().id;
    let code = code(&bot, &s, 0);
    let bob = bot.caller("bob").await;
    let id = format!("v1:req:{r}:s0:approve");
    let mut fields = std::collections::HashMap::new();
    fields.insert("code".to_owned(), code.clone());
    let clicks = (0..10).map(|_| {
        let (svc, bob, id, fields) = (bot.service.clone(), bob.clone(), id.clone(), fields.clone());
        tokio::spawn(async move { format!("{:?}", svc.click(&bob, &id, Some(&fields)).await) })
    });
    let answers: Vec<String> = futures_join(clicks).await;
    let approved = answers
        .iter()
        .filter(|a| a.contains("You approved"))
        .count();
    assert_eq!(approved, 1, "{answers:#?}");
    let rows = bot.audit().await;
    assert_eq!(
        rows.iter()
            .filter(|x| x.action == "step.approved" && x.request == Some(r.0))
            .count(),
        1
    );
}

async fn futures_join<T: Send + 'static>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

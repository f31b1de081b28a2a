//! Nothing acknowledged is lost when the whole process dies: the real `quartermaster`
//! binary (a debug build, where the failpoint `QM_ABORT_AFTER_COMMIT=N` aborts the process
//! right after its N-th committed transaction) takes an HR hire over the signed feed, or a
//! people import, and is aborted after each commit in turn. A new process on the same
//! database then gets the sender's retry (the same HR event id, the same CSV): the hire is
//! complete exactly once (person, onboarding plan, one grant and one done action per
//! birthright) and the audit chain verifies. SQLite, or PostgreSQL with `QM_TEST_DB=postgres`.
//! The same for a `/request` and its two approval clicks over the signed Discord interactions
//! endpoint (the fake Discord of testkit): after every abort the restarted `serve` gets
//! the retries (the command or click sent again as a new interaction), and in the end there
//! is one request, granted, and each approver was prompted exactly once.
//! tests/it/crash.rs covers every intake at every boundary inside one process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit::discord as fake;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quartermaster::config;
use quartermaster::core::model::{ActionOp, ActionState, GrantState, Handle, PersonStatus};
use quartermaster::core::ports::{ActionQueue, Grants, People, PlanKind, Plans, Requests};
use quartermaster::store::SqlStore;
use quartermaster::wiring;
use testkit::testdb::{Backend, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_quartermaster");
const HR_SECRET: &str = "crash-process-hr-secret";
/// More commits than any intake here makes: a run that gets this far without aborting
/// means every boundary was tried.
const MAX_BOUNDARIES: u64 = 40;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The example organisation with the HR feed on, listening on `port`.
fn write_config(dir: &Path, port: u16) -> std::path::PathBuf {
    let text = format!(
        "{}\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n[hr]\nsecret_env = \"QM_HR_SECRET\"\n",
        config::EXAMPLE_TOML
    );
    let p = dir.join("qm.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn load(path: &Path) -> config::Config {
    let text = std::fs::read_to_string(path).unwrap();
    let env = |k: &str| (k == "QM_HR_SECRET").then(|| HR_SECRET.to_owned());
    config::parse(&text, path.parent().unwrap(), &env).unwrap()
}

fn spawn(args: &[&str], cfg: &Path, db: &str, abort_after: Option<u64>, log: &Path) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut c = Command::new(BIN);
    c.args(args)
        .arg("--config")
        .arg(cfg)
        .args(["--db", db])
        .env("QM_HR_SECRET", HR_SECRET)
        .env("QM_TEST_DISCORD_TOKEN", "fake-bot-token")
        .env_remove("QM_ABORT_AFTER_COMMIT")
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(n) = abort_after {
        c.env("QM_ABORT_AFTER_COMMIT", n.to_string());
    }
    Proc(c.spawn().unwrap())
}

fn hire_body(id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": id,
        "type": "hire",
        "person": {
            "handle": "zoe",
            "name": "Zoe Quinn",
            "email": "zoe@acme.test",
            "department": "Engineering",
            "role": "engineer",
            "manager": "erin",
        }
    }))
    .unwrap()
}

/// One signed POST to the HR feed: true when answered 2xx.
async fn post_hr(port: u16, body: &[u8]) -> bool {
    use hmac::Mac;
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(HR_SECRET.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    let sig = hex::encode(mac.finalize().into_bytes());
    match reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/hr/events"))
        .header("content-type", "application/json")
        .header("x-qm-timestamp", ts)
        .header("x-qm-signature", format!("sha256={sig}"))
        .body(body.to_vec())
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

/// Posts until answered 2xx or the process has exited; true when answered.
async fn post_until_answered_or_dead(p: &mut Proc, port: u16, body: &[u8]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if post_hr(port, body).await {
            return true;
        }
        if p.0.try_wait().unwrap().is_some() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("serve neither answered the HR post nor exited within 30 s");
}

/// Waits for the process to exit (by the failpoint) within `within`; true when it did.
async fn exited_within(p: &mut Proc, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if p.0.try_wait().unwrap().is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// Zoe's hire is complete, and every effect of it happened once.
async fn hired_once(store: &SqlStore, cfg: &config::Config) -> Result<(), String> {
    let h = Handle::parse("zoe").unwrap();
    let Some(p) = store.person(&h).await.unwrap() else {
        return Err("zoe is not stored".into());
    };
    if p.status != PersonStatus::Active {
        return Err(format!("zoe is {:?}", p.status));
    }
    let grants = store.grants_of(&h).await.unwrap();
    let actions = store.actions_of(&h).await.unwrap();
    let apps = cfg.org.birthrights(&p.role, &p.department);
    assert!(!apps.is_empty(), "the engineer role gives birthrights");
    for a in &apps {
        let n = grants.iter().filter(|g| &g.app == a).count();
        if n != 1 {
            return Err(format!("zoe holds {a} {n} times: {grants:?}"));
        }
        let grant_actions: Vec<_> = actions
            .iter()
            .filter(|x| x.op == ActionOp::Grant && x.app.as_ref() == Some(a))
            .collect();
        if grant_actions.len() != 1 {
            return Err(format!("zoe's {a}: {grant_actions:?}"));
        }
        if grant_actions[0].state != ActionState::Done {
            return Err(format!(
                "zoe's {a} is not provisioned yet: {grant_actions:?}"
            ));
        }
    }
    let onboard = store
        .plans_of(&h)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.kind == PlanKind::Onboard)
        .count();
    if onboard != 1 {
        return Err(format!("{onboard} onboarding plans"));
    }
    Ok(())
}

async fn wait_hired_once(store: &SqlStore, cfg: &config::Config, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match hired_once(store, cfg).await {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => panic!(
                "{e}\n--- log ---\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hr_hire_survives_the_process_aborting_after_each_commit() {
    let mut acked_before_abort = 0;
    for n in 1..=MAX_BOUNDARIES {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let cfg_path = write_config(dir.path(), port);
        let cfg = load(&cfg_path);
        let db = TestDb::create(Backend::from_env()).await;
        let log = dir.path().join("serve.log");
        let body = hire_body("crash-process-hire-1");

        let mut first = spawn(&["serve"], &cfg_path, &db.url, Some(n), &log);
        let answered = post_until_answered_or_dead(&mut first, port, &body).await;
        if !exited_within(&mut first, Duration::from_secs(10)).await {
            // The N-th commit never came: the hire and its provisioning took fewer commits,
            // so every boundary has been tried. It must be complete, and answered.
            assert!(answered, "the hire was answered");
            let store = wiring::open_store(&cfg, &db.url).await.unwrap();
            wait_hired_once(&store, &cfg, &log).await;
            let aborted = n - 1;
            assert!(
                aborted >= 3,
                "the failpoint fired at only {aborted} boundaries"
            );
            println!(
                "{aborted} boundaries tried ({acked_before_abort} answered 2xx before the abort)"
            );
            return;
        }
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            log_text.contains(&format!("failpoint: aborting the process after commit {n}")),
            "serve exited for another reason:\n{log_text}"
        );
        acked_before_abort += usize::from(answered);

        // A new process; the HR system retries the same event until it is answered.
        let mut second = spawn(&["serve"], &cfg_path, &db.url, None, &log);
        assert!(
            post_until_answered_or_dead(&mut second, port, &body).await,
            "the restarted serve answers the retry"
        );
        let store = wiring::open_store(&cfg, &db.url).await.unwrap();
        wait_hired_once(&store, &cfg, &log).await;
        let report = store.verify_audit().await.unwrap();
        assert!(report.is_ok(), "after abort at commit {n}: {report:?}");
        store.close().await;
        drop(second);
    }
    panic!("the hire took more than {MAX_BOUNDARIES} commits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_people_import_survives_the_process_aborting_after_each_commit() {
    let csv = "handle,name,email,role,department,manager\n\
               zoe,Zoe Quinn,zoe@acme.test,engineer,Engineering,erin\n";
    for n in 1..=MAX_BOUNDARIES {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = write_config(dir.path(), free_port());
        let cfg = load(&cfg_path);
        let db = TestDb::create(Backend::from_env()).await;
        let log = dir.path().join("qm.log");
        let file = dir.path().join("people.csv");
        std::fs::write(&file, csv).unwrap();
        let file = file.to_str().unwrap();

        let mut import = spawn(
            &["import", "people", file],
            &cfg_path,
            &db.url,
            Some(n),
            &log,
        );
        assert!(exited_within(&mut import, Duration::from_secs(30)).await);
        let status = import.0.wait().unwrap();
        if status.success() {
            // Fewer commits than N: every boundary of the import was tried.
            let aborted = n - 1;
            assert!(
                aborted >= 2,
                "the failpoint fired at only {aborted} boundaries"
            );
            println!("{aborted} boundaries of the import tried");
            break;
        }
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            log_text.contains(&format!("failpoint: aborting the process after commit {n}")),
            "import failed for another reason:\n{log_text}"
        );
        // The operator runs the same import again; then serve provisions.
        let mut again = spawn(&["import", "people", file], &cfg_path, &db.url, None, &log);
        assert!(exited_within(&mut again, Duration::from_secs(30)).await);
        assert!(
            again.0.wait().unwrap().success(),
            "the re-run import succeeds"
        );
        let serve = spawn(&["serve"], &cfg_path, &db.url, None, &log);
        let store = wiring::open_store(&cfg, &db.url).await.unwrap();
        wait_hired_once(&store, &cfg, &log).await;
        let report = store.verify_audit().await.unwrap();
        assert!(report.is_ok(), "after abort at commit {n}: {report:?}");
        store.close().await;
        drop(serve);
        if n == MAX_BOUNDARIES {
            panic!("the import took more than {MAX_BOUNDARIES} commits");
        }
    }
}

const ALICE: (&str, &str) = ("100000000000000004", "alice");
const BOB: (&str, &str) = ("100000000000000003", "bob");
const CAROL: (&str, &str) = ("100000000000000007", "carol");
const DANA: (&str, &str) = ("100000000000000002", "dana");
const FRANK: (&str, &str) = ("100000000000000005", "frank");

/// Signs and POSTs an interaction to serve's endpoint, registering it with the fake Discord
/// (for the follow-up REST calls); the status and body, or None when serve was not there.
async fn post_interaction(
    fake: &fake::FakeDiscord,
    url: &str,
    payload: &serde_json::Value,
) -> Option<(u16, String)> {
    use ed25519_dalek::{Signer, SigningKey};
    fake.register_only(payload);
    let body = serde_json::to_vec(payload).unwrap();
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut msg = ts.as_bytes().to_vec();
    msg.extend_from_slice(&body);
    let sig = hex::encode(SigningKey::from_bytes(&fake::SEED).sign(&msg).to_bytes());
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-signature-ed25519", sig)
        .header("x-signature-timestamp", ts)
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

/// Approval prompts for request 1 the fake Discord holds for `user` (edited in place once
/// decided, so one per prompt sent).
fn prompts(fake: &fake::FakeDiscord, user: &str) -> Vec<fake::Msg> {
    fake.dms(user)
        .into_iter()
        .filter(|m| m.content.starts_with("Access request #1:"))
        .collect()
}

/// A click on `user`'s prompt while it still offers Approve.
fn approve(fake: &fake::FakeDiscord, user: (&str, &str)) -> Option<serde_json::Value> {
    prompts(fake, user.0)
        .into_iter()
        .find(|m| m.buttons().iter().any(|b| b == "Approve"))
        .map(|m| fake.click(user, &m, "Approve"))
}

/// The example organisation in interactions mode against a fake Discord, on a fresh
/// database.
struct DiscordRig {
    fake: fake::FakeDiscord,
    dir: tempfile::TempDir,
    port: u16,
    cfg: config::Config,
    db: TestDb,
    log: std::path::PathBuf,
    url: String,
}

impl DiscordRig {
    async fn new() -> Self {
        let fake = fake::FakeDiscord::start().await;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let text = format!(
            "{}\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n[discord]\nmode = \"interactions\"\n\
             application_id = \"{}\"\npublic_key = \"{}\"\ntoken_env = \"QM_TEST_DISCORD_TOKEN\"\n\
             api_base = \"{}\"\n",
            config::EXAMPLE_TOML,
            fake::APP_ID,
            fake.public_key_hex(),
            fake.base_url()
        );
        std::fs::write(dir.path().join("qm.toml"), &text).unwrap();
        let env = |k: &str| (k == "QM_TEST_DISCORD_TOKEN").then(|| "fake-bot-token".to_owned());
        let cfg = config::parse(&text, dir.path(), &env).unwrap();
        let db = TestDb::create(Backend::from_env()).await;
        let log = dir.path().join("serve.log");
        let url = format!("http://127.0.0.1:{port}/discord/interactions");
        Self {
            fake,
            dir,
            port,
            cfg,
            db,
            log,
            url,
        }
    }

    /// `serve`, started and listening (its schema migrated), or dead already.
    fn start(&self, abort: Option<u64>) -> Proc {
        let cfg_path = self.dir.path().join("qm.toml");
        let mut p = spawn(&["serve"], &cfg_path, &self.db.url, abort, &self.log);
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
            && p.0.try_wait().unwrap().is_none()
        {
            assert!(Instant::now() < until, "serve never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        p
    }

    /// Whether `p` exited; if so, checks it was the failpoint at `n` (once) and starts a new
    /// `serve` without it in its place.
    fn restart_if_aborted(&self, p: &mut Proc, n: u64, aborted: &mut bool) -> bool {
        if p.0.try_wait().unwrap().is_none() {
            return false;
        }
        let log_text = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(
            !*aborted
                && log_text.contains(&format!("failpoint: aborting the process after commit {n}")),
            "serve exited for another reason:\n{log_text}"
        );
        *aborted = true;
        *p = self.start(None);
        true
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The flow's senders: what to send next, given what has been seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Request,
    BobApproves,
    CarolApproves,
    Granted,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_and_its_approvals_survive_the_process_aborting_after_each_commit() {
    for n in 1..=MAX_BOUNDARIES {
        let rig = DiscordRig::new().await;
        let (fake, cfg, db, url) = (&rig.fake, &rig.cfg, &rig.db, &rig.url);
        let start = |abort| rig.start(abort);
        let mut proc = start(Some(n));
        let mut aborted = false;
        let mut stage = Stage::Request;
        let deadline = Instant::now() + Duration::from_secs(60);
        while stage != Stage::Granted {
            assert!(
                Instant::now() < deadline,
                "stuck at {stage:?} after abort at commit {n}\n--- log ---\n{}",
                rig.log_text()
            );
            if rig.restart_if_aborted(&mut proc, n, &mut aborted) {
                continue;
            }
            let payload = match stage {
                Stage::Request => Some(fake.command(
                    ALICE,
                    "request",
                    serde_json::json!([
                        { "name": "app", "type": 3, "value": "figma" },
                        { "name": "reason", "type": 3, "value": "mock-ups" }
                    ]),
                )),
                Stage::BobApproves => approve(fake, BOB),
                Stage::CarolApproves => approve(fake, CAROL),
                Stage::Granted => None,
            };
            let answered = match &payload {
                Some(p) => post_interaction(fake, url, p)
                    .await
                    .is_some_and(|(s, _)| s == 200),
                None => false,
            };
            let store = wiring::open_store(cfg, &db.url).await.unwrap();
            let reqs = store
                .requests_by(&Handle::parse("alice").unwrap())
                .await
                .unwrap();
            let granted = store
                .grants_of(&Handle::parse("alice").unwrap())
                .await
                .unwrap()
                .iter()
                .any(|g| g.app.as_str() == "figma" && g.state == GrantState::Active);
            store.close().await;
            stage = match stage {
                Stage::Request if answered || !reqs.is_empty() => Stage::BobApproves,
                Stage::BobApproves if !prompts(fake, CAROL.0).is_empty() || granted => {
                    Stage::CarolApproves
                }
                Stage::CarolApproves if granted => Stage::Granted,
                s => s,
            };
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Settled: nothing more may arrive (a doubled prompt would show now).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let store = wiring::open_store(cfg, &db.url).await.unwrap();
        let reqs = store
            .requests_by(&Handle::parse("alice").unwrap())
            .await
            .unwrap();
        assert_eq!(
            reqs.len(),
            1,
            "one request after abort at commit {n}: {reqs:?}"
        );
        assert_eq!(
            prompts(fake, BOB.0).len(),
            1,
            "Bob prompted once (abort at {n})"
        );
        assert_eq!(
            prompts(fake, CAROL.0).len(),
            1,
            "Carol prompted once (abort at {n})"
        );
        let report = store.verify_audit().await.unwrap();
        assert!(report.is_ok(), "after abort at commit {n}: {report:?}");
        store.close().await;
        if !aborted {
            assert!(n > 3, "the failpoint fired at only {} boundaries", n - 1);
            println!("{} boundaries of /request and two approvals tried", n - 1);
            return;
        }
    }
    panic!("the request took more than {MAX_BOUNDARIES} commits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offboarding_confirm_survives_the_process_aborting_after_each_commit() {
    let frank = Handle::parse("frank").unwrap();
    for n in 1..=MAX_BOUNDARIES {
        let rig = DiscordRig::new().await;
        let mut proc = rig.start(Some(n));
        let mut aborted = false;
        // The plan reply IT clicks Confirm on, once one was answered.
        let mut plan_msg: Option<fake::Msg> = None;
        let mut confirmed = false;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if Instant::now() >= deadline {
                let store = wiring::open_store(&rig.cfg, &rig.db.url).await.unwrap();
                eprintln!(
                    "plans: {:?}\nactions: {:?}",
                    store.plans_of(&frank).await.unwrap(),
                    store.actions_of(&frank).await.unwrap()
                );
            }
            assert!(
                Instant::now() < deadline,
                "stuck (plan shown: {}, confirmed: {confirmed}) after abort at commit {n}\n--- log ---\n{}",
                plan_msg.is_some(),
                rig.log_text()
            );
            if rig.restart_if_aborted(&mut proc, n, &mut aborted) {
                continue;
            }
            let store = wiring::open_store(&rig.cfg, &rig.db.url).await.unwrap();
            let plans = store.plans_of(&frank).await.unwrap();
            store.close().await;
            let offboard: Vec<_> = plans
                .iter()
                .filter(|p| p.kind == PlanKind::Offboard)
                .collect();
            if offboard.iter().any(|p| p.reported) {
                break;
            }
            if confirmed {
                // Confirmed and answered: the rest is serve's (and its restart's) to finish.
            } else if let Some(m) = &plan_msg {
                let click = rig.fake.click(DANA, m, "Confirm");
                if let Some((200, body)) = post_interaction(&rig.fake, &rig.url, &click).await {
                    confirmed = !body.contains("rror");
                }
            } else {
                let cmd = rig.fake.command_with_user(
                    DANA,
                    "offboard",
                    serde_json::json!([{ "name": "user", "type": 6, "value": FRANK.0 }]),
                    FRANK,
                );
                if let Some((200, body)) = post_interaction(&rig.fake, &rig.url, &cmd).await {
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                    let m = fake::Msg {
                        id: cmd["id"].as_str().unwrap().into(),
                        channel_id: fake::GENERAL.into(),
                        content: v["data"]["content"].as_str().unwrap_or_default().into(),
                        components: v["data"]["components"].clone(),
                        edits: 0,
                    };
                    if m.buttons().iter().any(|b| b == "Confirm") {
                        plan_msg = Some(m);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let store = wiring::open_store(&rig.cfg, &rig.db.url).await.unwrap();
        let p = store.person(&frank).await.unwrap().unwrap();
        assert_eq!(p.status, PersonStatus::Offboarded, "abort at {n}");
        let plans: Vec<_> = store
            .plans_of(&frank)
            .await
            .unwrap()
            .into_iter()
            .filter(|p| p.kind == PlanKind::Offboard)
            .collect();
        assert_eq!(
            plans.len(),
            1,
            "one offboarding plan (abort at {n}): {plans:?}"
        );
        // The report is in the outbox with the plan's mark; after a restart its delivery may
        // wait for the aborted process's lease on it.
        let reports = || {
            rig.fake
                .dms(DANA.0)
                .into_iter()
                .filter(|m| m.content.starts_with("Offboarding report for Frank Li"))
                .count()
        };
        let until = Instant::now() + Duration::from_secs(30);
        while reports() == 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(reports(), 1, "Dana gets the report once (abort at {n})");
        let report = store.verify_audit().await.unwrap();
        assert!(report.is_ok(), "after abort at commit {n}: {report:?}");
        store.close().await;
        if !aborted {
            assert!(n > 3, "the failpoint fired at only {} boundaries", n - 1);
            println!("{} boundaries of /offboard and its Confirm tried", n - 1);
            return;
        }
    }
    panic!("the offboarding took more than {MAX_BOUNDARIES} commits");
}

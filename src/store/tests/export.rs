//! Audit export: JSONL and CSV.

use super::*;

both!(export_writes_jsonl_and_quoted_csv);
async fn export_writes_jsonl_and_quoted_csv(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let id = submit(s).await;
    s.commit(Change {
        audit: vec![
            AuditEvent {
                actor: Actor::System,
                actor_chat_id: None,
                subject: None,
                app: None,
                connector_action: Some(ActionId(9)),
                ..event(
                    AuditAction::GrantProvisioned,
                    "said \"hi\", then left",
                    t0() + TimeDelta::hours(2),
                    id.into(),
                )
            },
            AuditEvent {
                actor: Actor::Hr,
                ..event(
                    AuditAction::AccountDisabled,
                    "line1\nline2",
                    t0() + TimeDelta::hours(3),
                    ReqRef::None,
                )
            },
        ],
        ..Change::default()
    })
    .await
    .unwrap();

    let all = s.audit_rows(None).await.unwrap();
    assert_eq!(all.len(), 3);
    let since = s
        .audit_rows(Some(t0() + TimeDelta::hours(2)))
        .await
        .unwrap();
    assert_eq!(since.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);

    let mut out = Vec::new();
    write_jsonl(&all, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let keys: Vec<&str> = lines[1]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for k in [
        "seq",
        "at",
        "actor",
        "actor_chat_id",
        "action",
        "subject",
        "app",
        "request",
        "connector_action",
        "outcome",
        "detail",
        "hash",
        "prev_hash",
    ] {
        assert!(keys.contains(&k), "missing {k} in {keys:?}");
    }
    assert_eq!(keys.len(), 13);
    assert_eq!(lines[0]["at"], "2025-03-01T09:00:00.123456Z");
    assert_eq!(lines[0]["actor"], "alice");
    assert_eq!(lines[0]["request"], id.0);
    assert_eq!(lines[1]["actor"], "system");
    assert!(lines[1]["app"].is_null());
    assert!(lines[1]["subject"].is_null());
    assert_eq!(lines[1]["connector_action"], 9);
    assert_eq!(lines[2]["actor"], "hr");
    assert_eq!(lines[0]["prev_hash"], audit::GENESIS);

    let mut out = Vec::new();
    write_csv(&all, &mut out).unwrap();
    let csv = String::from_utf8(out).unwrap();
    assert!(csv.starts_with(
        "seq,at,actor,actor_chat_id,action,subject,app,request,connector_action,outcome,detail,\
         hash,prev_hash\r\n"
    ));
    assert!(csv.contains(",ok,\"said \"\"hi\"\", then left\","), "{csv}");
    assert!(csv.contains(",\"line1\nline2\","), "{csv}");
    assert!(
        csv.contains(&format!(
            "2,2025-03-01T11:00:00.123456Z,system,,grant.provisioned,,,{},9,",
            id.0
        )),
        "{csv}"
    );
}

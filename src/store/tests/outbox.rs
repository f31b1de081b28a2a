//! The outbox table's rules on both backends: a dedupe key is written once, an edit is not
//! claimed while a send under its key is undelivered, a claimed row is not claimed again
//! while its lease lives, and a failure is audited once.

use std::time::Duration;

use super::*;
use crate::core::audit::AuditOutcome;
use crate::core::ports::{Change, MessageKey, OutKind, Outgoing};

async fn fresh(b: Backend) -> (SqlStore, TestDb) {
    let db = TestDb::create(b).await;
    let store = connect(&db.url, None).await.unwrap();
    (store, db)
}

fn h(s: &str) -> Handle {
    Handle::parse(s).unwrap()
}

async fn rules(b: Backend) {
    let (s, _db) = fresh(b).await;
    let key = MessageKey::Prompt {
        request: crate::core::model::RequestId(1),
        step: 0,
    };
    let prompt = Outgoing::to_person(&h("bob"), "prompt".into(), vec![], Some(key)).once("p1");
    let change = Change {
        messages: vec![
            prompt.clone(),
            Outgoing::edit(key, "decided".into(), vec![]),
            Outgoing::to_person(&h("alice"), "hello".into(), vec![], None),
        ],
        ..Change::default()
    };
    s.commit(change).await.unwrap();
    // The same prompt again (a re-announced step) is not written twice.
    s.commit(Change {
        messages: vec![prompt],
        ..Change::default()
    })
    .await
    .unwrap();
    assert_eq!(s.outbox_counts().await.unwrap().pending, 3);

    // The edit waits for the send under its key.
    let lease = Duration::from_secs(30);
    let first = s.claim_messages(lease, 10).await.unwrap();
    let texts: Vec<&str> = first.iter().map(|q| q.msg.text.as_str()).collect();
    assert_eq!(texts, ["prompt", "hello"]);
    assert!(matches!(first[0].msg.kind, OutKind::Send(_)));
    assert_eq!(first[0].attempts, 1);
    // Claimed rows are not claimed again while their lease lives.
    assert!(s.claim_messages(lease, 10).await.unwrap().is_empty());

    // A send put back for a retry still holds the edit back.
    s.messages_retry(&[(first[0].id, Duration::ZERO, "HTTP 500".into())])
        .await
        .unwrap();
    let again = s.claim_messages(lease, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].msg.text, "prompt");
    assert_eq!(again[0].attempts, 2);
    assert!(s.message_sent(again[0].id, None, vec![]).await.unwrap());
    assert!(s.message_sent(first[1].id, None, vec![]).await.unwrap());
    // A row marked sent is not marked again.
    assert!(!s.message_sent(again[0].id, None, vec![]).await.unwrap());

    // Now the edit goes.
    let edit = s.claim_messages(lease, 10).await.unwrap();
    assert_eq!(edit.len(), 1);
    assert_eq!(edit[0].msg.kind, OutKind::Edit);
    assert_eq!(edit[0].msg.key.as_ref(), Some(&key));
    let ev = AuditEvent::new(chrono::Utc::now(), AuditAction::MessageFailed)
        .outcome(AuditOutcome::Failed)
        .detail("edit of req:1:s0 not delivered");
    s.message_failed(edit[0].id, "gone", vec![ev.clone()])
        .await
        .unwrap();
    // Settled rows are audited once: a second report changes nothing.
    s.message_failed(edit[0].id, "gone", vec![ev])
        .await
        .unwrap();
    let failed = s
        .audit_rows(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "message.failed")
        .count();
    assert_eq!(failed, 1);
    let c = s.outbox_counts().await.unwrap();
    assert_eq!((c.pending, c.sent, c.failed, c.retried), (0, 2, 1, 1));
}

/// Rows held back together go back together, each due after its own wait; a row no longer
/// claimed is left as it is.
async fn held_back(b: Backend) {
    let (s, _db) = fresh(b).await;
    let msg = |t: &str| Outgoing::to_person(&h("bob"), t.into(), vec![], None);
    s.commit(Change {
        messages: vec![msg("one"), msg("two"), msg("three"), msg("four")],
        ..Change::default()
    })
    .await
    .unwrap();
    let lease = Duration::from_secs(30);
    let claimed = s.claim_messages(lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 4);
    assert!(s.message_sent(claimed[3].id, None, vec![]).await.unwrap());
    let why = |w: &str| w.to_owned();
    s.messages_retry(&[
        (
            claimed[0].id,
            Duration::from_secs(3600),
            why("held an hour"),
        ),
        (claimed[1].id, Duration::ZERO, why("held")),
        (claimed[2].id, Duration::ZERO, why("held")),
        (claimed[3].id, Duration::ZERO, why("already sent")),
    ])
    .await
    .unwrap();
    let again = s.claim_messages(lease, 10).await.unwrap();
    let texts: Vec<&str> = again.iter().map(|q| q.msg.text.as_str()).collect();
    assert_eq!(texts, ["two", "three"]);
    // Undelivered: the one held an hour and the two claimed again; "four" stays sent.
    let c = s.outbox_counts().await.unwrap();
    assert_eq!((c.pending, c.sent), (3, 1));
}

#[tokio::test]
async fn held_back_on_sqlite() {
    held_back(Backend::Sqlite).await;
}

#[tokio::test]
async fn held_back_on_postgres() {
    held_back(Backend::Postgres).await;
}

#[tokio::test]
async fn rules_on_sqlite() {
    rules(Backend::Sqlite).await;
}

#[tokio::test]
async fn rules_on_postgres() {
    rules(Backend::Postgres).await;
}

/// A copy waits for the sends under its key written before it, and learns whether they
/// reached their recipients as addressed.
async fn copies(b: Backend) {
    use crate::core::ports::Recipient;
    let (s, _db) = fresh(b).await;
    let key = |step| MessageKey::Prompt {
        request: crate::core::model::RequestId(1),
        step,
    };
    let copy = |step| Outgoing {
        kind: OutKind::Copy(Recipient::Channel("42".into())),
        text: format!("copy {step}"),
        buttons: vec![],
        key: Some(key(step)),
        dedupe: Some(format!("{}:channel", key(step))),
    };
    let dm =
        |to: &str, step| Outgoing::to_person(&h(to), format!("dm {step}"), vec![], Some(key(step)));
    s.commit(Change {
        messages: vec![dm("bob", 0), copy(0), dm("carol", 1), copy(1), copy(1)],
        ..Change::default()
    })
    .await
    .unwrap();
    assert_eq!(
        s.outbox_counts().await.unwrap().pending,
        4,
        "one copy per dedupe"
    );
    let lease = Duration::from_secs(30);
    let first = s.claim_messages(lease, 10).await.unwrap();
    let texts: Vec<&str> = first.iter().map(|q| q.msg.text.as_str()).collect();
    assert_eq!(texts, ["dm 0", "dm 1"], "the copies wait");
    // Bob's DM reached him; Carol's went to the fallback.
    assert!(s.message_sent(first[0].id, None, vec![]).await.unwrap());
    assert!(
        s.message_sent(first[1].id, Some("DM closed"), vec![])
            .await
            .unwrap()
    );
    let copies = s.claim_messages(lease, 10).await.unwrap();
    assert_eq!(copies.len(), 2);
    assert_eq!(copies[0].msg, copy(0));
    assert!(s.sends_reached(&key(0), copies[0].id).await.unwrap());
    assert!(!s.sends_reached(&key(1), copies[1].id).await.unwrap());
    // Only sends written before the copy count.
    assert!(s.sends_reached(&key(1), first[1].id).await.unwrap());
}

#[tokio::test]
async fn copies_on_sqlite() {
    copies(Backend::Sqlite).await;
}

#[tokio::test]
async fn copies_on_postgres() {
    copies(Backend::Postgres).await;
}

/// A round's deliveries are marked sent in one write; a row no longer claimed (settled by
/// another sender, or never claimed) is left as it is.
async fn sent_together(b: Backend) {
    let (s, _db) = fresh(b).await;
    let msgs = (0..3)
        .map(|i| Outgoing::to_person(&h("bob"), format!("dm {i}"), vec![], None))
        .collect();
    s.commit(Change {
        messages: msgs,
        ..Change::default()
    })
    .await
    .unwrap();
    let lease = Duration::from_secs(30);
    let claimed = s.claim_messages(lease, 2).await.unwrap();
    let ids: Vec<i64> = claimed.iter().map(|q| q.id).collect();
    let unclaimed = ids.iter().max().unwrap() + 1;
    let all = [ids.clone(), vec![unclaimed]].concat();
    assert_eq!(s.messages_sent(&all).await.unwrap(), 2);
    assert_eq!(s.messages_sent(&ids).await.unwrap(), 0, "marked once");
    let c = s.outbox_counts().await.unwrap();
    assert_eq!((c.pending, c.sent), (1, 2));
    let rest = s.claim_messages(lease, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].msg.text, "dm 2");
}

#[tokio::test]
async fn sent_together_on_sqlite() {
    sent_together(Backend::Sqlite).await;
}

#[tokio::test]
async fn sent_together_on_postgres() {
    sent_together(Backend::Postgres).await;
}

/// Messages about a new plan are written with it, completed with its id; without a plan to
/// create the change is refused and nothing is written.
async fn plan_messages(b: Backend) {
    use crate::core::ports::{NewPlan, PlanKind, PlanMessage};
    let (s, _db) = fresh(b).await;
    let note = PlanMessage {
        to: h("dana"),
        text: vec!["plan #".into(), " waits".into()],
        buttons: true,
    };
    let refused = s
        .commit(Change {
            plan_messages: vec![note.clone()],
            messages: vec![Outgoing::to_person(&h("bob"), "x".into(), vec![], None)],
            ..Change::default()
        })
        .await;
    assert!(
        matches!(refused, Err(StoreError::Backend(_))),
        "{refused:?}"
    );
    assert_eq!(s.outbox_counts().await.unwrap().pending, 0);
    let id = s
        .commit(Change {
            new_plan: Some(NewPlan {
                kind: PlanKind::Role,
                subject: h("alice"),
                created_by: h("bob"),
                confirmers: vec![h("dana")],
                detail: "{}".into(),
                created_at: chrono::Utc::now(),
                due_at: None,
                preconfirmed: false,
            }),
            plan_messages: vec![note],
            ..Change::default()
        })
        .await
        .unwrap()
        .plan
        .unwrap();
    let rows = s.claim_messages(Duration::from_secs(30), 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].msg.text, format!("plan #{id} waits"));
    assert_eq!(rows[0].msg.key, Some(MessageKey::Plan(id)));
    assert_eq!(
        rows[0].msg.buttons[0].target.to_string(),
        format!("v1:plan:{id}:confirm")
    );
}

#[tokio::test]
async fn plan_messages_on_sqlite() {
    plan_messages(Backend::Sqlite).await;
}

#[tokio::test]
async fn plan_messages_on_postgres() {
    plan_messages(Backend::Postgres).await;
}

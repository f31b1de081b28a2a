//! Audit rows told as sentences (`audit show`).

use quartermaster::core::audit::{AuditAction, AuditOutcome, UnknownName};
use quartermaster::core::model::Zone;
use quartermaster::store::AuditRecord;

/// One row as a sentence: when (in `zone`, the organisation's), who, what, about whom. A
/// row whose action or outcome is not in the vocabulary is an error (corrupt or foreign
/// data; `audit verify` still hashes the stored text as it is).
pub fn sentence(r: &AuditRecord, zone: Zone) -> Result<String, UnknownName> {
    use AuditAction as A;
    let action: AuditAction = r.action.parse()?;
    let outcome: AuditOutcome = r.outcome.parse()?;
    let at = chrono::DateTime::parse_from_rfc3339(&r.at)
        .map_or_else(|_| r.at.clone(), |t| zone.show(t.to_utc()));
    let who = r.subject.as_deref().unwrap_or("someone");
    let app = r.app.as_deref().unwrap_or("an app");
    let req = r
        .request
        .map_or_else(String::new, |n| format!(" (request #{n})"));
    let d = &r.detail;
    let text = match action {
        A::RequestSubmitted => format!("{} requested {app}{req}; {d}", r.actor),
        A::StepStarted => format!("waiting for {d}{req}"),
        A::StepApproved => format!("{} approved {who}'s {app}{req}, {d}", r.actor),
        A::StepDenied => format!("{} denied {who}'s {app}{req}, {d}", r.actor),
        A::RequestApproved => format!("{who}'s {app}{req} was approved: {d}"),
        A::RequestDenied => format!("{who}'s {app}{req} was denied: {d}"),
        A::GrantProvisioned => format!("{who} was granted {app}{req}: {d}"),
        A::GrantRevokeRequested => format!("revoking {app} from {who} was asked{req}: {d}"),
        A::GrantExpired => format!("{who}'s {app} expired: {d}"),
        A::GrantRevoked => format!("{app} was revoked from {who}{req}: {d}"),
        A::OffboardingVerified if outcome == AuditOutcome::Ok => {
            format!("verified gone for {who}: {d}")
        }
        A::OffboardingVerified => format!("not verified gone for {who} ({outcome}): {d}"),
        other => {
            let about = match (&r.subject, &r.app) {
                (Some(s), Some(a)) => format!(" {s} / {a}"),
                (Some(s), None) => format!(" {s}"),
                (None, Some(a)) => format!(" {a}"),
                (None, None) => String::new(),
            };
            format!("{} — {other}{about}{req} ({outcome}): {d}", r.actor)
        }
    };
    Ok(format!("#{} {at}  {text}", r.seq))
}

#[cfg(test)]
mod tests {
    use super::sentence;
    use quartermaster::core::model::Zone;
    use quartermaster::store::{AuditRecord, GENESIS};

    fn record(action: &str, outcome: &str) -> AuditRecord {
        AuditRecord {
            seq: 7,
            at: "2026-12-01T10:00:00.000000Z".into(),
            actor: "system".into(),
            actor_chat_id: None,
            action: action.into(),
            subject: Some("alice".into()),
            app: None,
            request: None,
            connector_action: None,
            outcome: outcome.into(),
            detail: "plan 3".into(),
            hash: "ab".into(),
            prev_hash: GENESIS.into(),
        }
    }

    #[test]
    fn the_story_reads_rows_through_the_vocabulary() {
        let utc = Zone::default();
        let told = sentence(&record("offboarding.verifying", "ok"), utc).unwrap();
        assert!(
            told.ends_with("system — offboarding.verifying alice (ok): plan 3"),
            "{told}"
        );
        let e = sentence(&record("grant.applied", "ok"), utc).unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"grant.applied\" is not a known audit action"
        );
        let e = sentence(&record("grant.revoked", "fine"), utc).unwrap_err();
        assert_eq!(e.to_string(), "\"fine\" is not a known audit outcome");
    }
}

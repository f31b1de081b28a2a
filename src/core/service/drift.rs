//! Drift: a connector's listing compared with the records (`core::drift`), the findings
//! stored across runs, one digest to IT per run, and — under `on_drift = "revoke"` — the
//! automatic removal of access two consecutive runs saw unrecorded.

use std::collections::{HashMap, HashSet};

use super::*;
use crate::core::customid::DriftAction;
use crate::core::drift::{Listing, Records, Seen, findings};
use crate::core::render::drift as words;

/// What one reconcile run came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftReport {
    /// Which connector.
    pub connector: ConnectorName,
    /// The findings open after the run (reported to IT).
    pub open: Vec<Finding>,
    /// How many were new this run.
    pub new: usize,
    /// How many were settled because the target no longer shows them.
    pub gone: usize,
    /// How many were revoked automatically.
    pub revoked: usize,
    /// What could not be read, with why.
    pub unread: Vec<String>,
}

/// How a connector's drift is handled (`on_drift`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDrift {
    /// Tell IT.
    #[default]
    Report,
    /// Also revoke what two consecutive runs saw unrecorded.
    Revoke,
}

impl Service {
    /// `/drift [connector]` (IT): a reconcile now, its digest to follow.
    pub(super) async fn drift_command(
        &self,
        c: &Caller,
        connector: Option<String>,
    ) -> Result<Reply> {
        if let Err(refused) = self.it_only(c, "/drift", None).await? {
            return Ok(refused);
        }
        let names: Vec<&ConnectorName> = self.org.apps.iter().map(|a| &a.connector).collect();
        let which = match connector.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => match names.iter().find(|n| n.as_str() == raw) {
                Some(n) => Some((*n).clone()),
                None => {
                    let hint =
                        crate::core::suggest::did_you_mean(raw, names.iter().map(|n| n.as_str()))
                            .map(|s| format!(" — did you mean `{s}`?"))
                            .unwrap_or_default();
                    return Ok(Reply::text(format!(
                        "No app is provisioned through a connector \"{raw}\"{hint}"
                    )));
                }
            },
        };
        let text = match &which {
            Some(n) => format!("Reconciling {n} now; the digest follows."),
            None => "Reconciling every connector now; a digest per connector follows.".to_owned(),
        };
        if let Ok(mut r) = self.reconcile_requests.lock() {
            r.push(which);
        }
        self.reconcile_wake.notify_one();
        Ok(Reply::text(text))
    }

    /// Records a reconcile of `listing`: findings stored (new, seen again, settled), the
    /// digest to IT, and automatic revocations under `policy`.
    pub async fn record_reconcile(
        &self,
        listing: &Listing,
        policy: OnDrift,
    ) -> Result<DriftReport> {
        let now = self.clock.now();
        let seen = self.seen_in(listing).await?;
        let live = self.store.live_findings(&listing.connector).await?;
        let mut change = Change::default();
        let mut report = DriftReport {
            connector: listing.connector.clone(),
            open: Vec::new(),
            new: 0,
            gone: 0,
            revoked: 0,
            unread: listing.unread(),
        };
        let by_key: HashMap<String, &Finding> = live.iter().map(|f| (f.key(), f)).collect();
        let mut keys = HashSet::new();
        for s in &seen {
            let key = finding_key(&listing.connector, s.class, &s.account, s.app.as_ref());
            keys.insert(key.clone());
            match by_key.get(&key) {
                Some(f) => change.finding_updates.push(again(f, s, now)),
                None => {
                    report.new += 1;
                    change.new_findings.push(fresh(&listing.connector, s, now));
                    change.audit.push(
                        self.audit(AuditAction::DriftFound)
                            .subject(s.person.as_ref())
                            .app(s.app.as_ref())
                            .outcome(AuditOutcome::Waiting)
                            .detail(format!(
                                "{}: {}: {}",
                                listing.connector,
                                s.class.as_str(),
                                s.detail
                            )),
                    );
                }
            }
        }
        // Only a complete listing proves that what it no longer shows is gone.
        if listing.complete() {
            for f in live
                .iter()
                .filter(|f| f.state == FindingState::Open && !keys.contains(&f.key()))
            {
                report.gone += 1;
                let mut g = f.clone();
                g.state = FindingState::Resolved;
                g.decided = Some(("system".into(), now, "no longer seen".into()));
                change.finding_updates.push(g);
            }
        }
        change.reconciled = Some(ReconcileRun {
            connector: listing.connector.clone(),
            last_run: now,
            last_ok: listing.complete().then_some(now),
            last_error: (!listing.complete()).then(|| report.unread.join("; ")),
        });
        self.commit(change).await?;
        let open: Vec<Finding> = self
            .store
            .live_findings(&listing.connector)
            .await?
            .into_iter()
            .filter(|f| f.state == FindingState::Open)
            .collect();
        let open = match policy {
            OnDrift::Revoke => self.revoke_twice_seen(open, &mut report).await?,
            OnDrift::Report => open,
        };
        report.open = open;
        self.send_digest(&report, now).await?;
        Ok(report)
    }

    /// What the listing shows against the records, in-flight work left out.
    async fn seen_in(&self, listing: &Listing) -> Result<Vec<Seen>> {
        let people = self.store.people().await?;
        let handles: Vec<Handle> = people.iter().map(|p| p.handle.clone()).collect();
        let grants = self.store.grants_of_people(&handles).await?;
        let actions = self.store.actions_of_people(&handles).await?;
        let in_flight: HashSet<(Handle, Option<AppName>)> = actions
            .iter()
            .filter(|a| {
                a.connector == listing.connector
                    && matches!(
                        a.state,
                        ActionState::Pending | ActionState::Running | ActionState::Waiting
                    )
            })
            .map(|a| {
                let app = match a.op {
                    ActionOp::Grant | ActionOp::Revoke => a.app.clone(),
                    _ => None,
                };
                (a.person.clone(), app)
            })
            .collect();
        let apps = self
            .org
            .apps
            .iter()
            .filter(|a| a.connector == listing.connector)
            .collect();
        let r = Records {
            apps,
            people: &people,
            grants: &grants,
            in_flight: &in_flight,
        };
        Ok(findings(listing, &r))
    }

    /// Under `on_drift = "revoke"`: access two consecutive runs saw unrecorded (or held by
    /// someone who left) is revoked — a removal verified by re-read like any — and its finding
    /// settled. Service accounts and ignored findings are never touched. The rest stay open.
    async fn revoke_twice_seen(
        &self,
        open: Vec<Finding>,
        report: &mut DriftReport,
    ) -> Result<Vec<Finding>> {
        let mut left = Vec::new();
        for f in open {
            let eligible = f.runs >= 2
                && matches!(f.class, DriftClass::Unrecorded | DriftClass::Orphan)
                && f.person.is_some()
                && f.app.is_some();
            if !eligible {
                left.push(f);
                continue;
            }
            let change = self.revoke_finding_change(
                &f,
                &Actor::System,
                None,
                "revoked automatically: seen by two runs in a row",
            )?;
            if self.commit_quietly(change).await? {
                report.revoked += 1;
            } else {
                left.push(f);
            }
        }
        Ok(left)
    }

    /// The removal of what a finding shows (a connector action, verified by re-read), and
    /// the finding settled, audited as `drift.resolved`.
    pub(super) fn revoke_finding_change(
        &self,
        f: &Finding,
        by: &Actor,
        chat: Option<&str>,
        why: &str,
    ) -> Result<Change> {
        let (Some(person), Some(app)) = (&f.person, &f.app) else {
            return Err(ServiceError::Inconsistent(format!(
                "finding {} has no person and app",
                f.id
            )));
        };
        let Some(a) = self.org.app(app) else {
            return Err(ServiceError::Inconsistent(format!(
                "finding {} names no catalog app",
                f.id
            )));
        };
        let now = self.clock.now();
        let mut settled = f.clone();
        settled.state = FindingState::Resolved;
        settled.decided = Some((by.to_string(), now, why.to_owned()));
        Ok(Change {
            new_actions: vec![NewAction {
                connector: f.connector.clone(),
                op: ActionOp::Revoke,
                person: person.clone(),
                app: Some(app.clone()),
                entitlement: Some(a.entitlement.clone()),
                grant: None,
                request: ReqRef::None,
                at: now,
            }],
            finding_updates: vec![settled],
            audit: vec![
                self.audit(AuditAction::DriftResolved)
                    .by(by.clone())
                    .chat(chat)
                    .subject(person)
                    .app(app)
                    .detail(format!("finding {} ({}): {why}", f.id, f.class.as_str())),
            ],
            messages: vec![Outgoing::edit(
                MessageKey::Finding(f.id),
                words::decided(f, &words::revoked(&by.to_string(), why)),
                Vec::new(),
            )],
            ..Change::default()
        })
    }

    /// One digest to IT (the approvals channel, else each IT admin): a summary, then each
    /// open finding with its buttons; none when there is nothing open, unread or settled.
    async fn send_digest(&self, report: &DriftReport, now: Timestamp) -> Result<()> {
        // A run with nothing to say says nothing (a reconcile every few hours is not news).
        if report.open.is_empty()
            && report.unread.is_empty()
            && report.revoked == 0
            && report.gone == 0
        {
            return Ok(());
        }
        let to = self.it_recipients();
        let mut messages = Vec::new();
        let head = words::digest_head(report, &self.org.timezone.show(now));
        for r in &to {
            messages.push(send(r, head.clone(), Vec::new(), None));
            for f in &report.open {
                messages.push(send(
                    r,
                    words::finding(f),
                    buttons(f),
                    Some(MessageKey::Finding(f.id)),
                ));
            }
        }
        self.commit(Change {
            messages,
            ..Change::default()
        })
        .await?;
        self.messages_committed().await;
        Ok(())
    }
}

fn send(to: &Recipient, text: String, buttons: Vec<Button>, key: Option<MessageKey>) -> Outgoing {
    Outgoing {
        kind: crate::core::outbox::OutKind::Send(to.clone()),
        text,
        buttons,
        key,
        dedupe: None,
    }
}

/// A finding's buttons, by class.
fn buttons(f: &Finding) -> Vec<Button> {
    let b = |label, a| Button {
        item: None,
        label,
        target: ClickTarget::Drift(f.id, a),
    };
    let has_person = f.person.is_some() && f.app.is_some();
    let mut out = Vec::new();
    match f.class {
        DriftClass::Unrecorded => {
            out.push(b(ButtonLabel::Adopt, DriftAction::Adopt));
            out.push(b(ButtonLabel::Revoke, DriftAction::Revoke));
        }
        DriftClass::Missing => out.push(b(ButtonLabel::Reprovision, DriftAction::Reprovision)),
        DriftClass::Orphan if has_person => out.push(b(ButtonLabel::Revoke, DriftAction::Revoke)),
        _ => {}
    }
    out.push(b(ButtonLabel::Ignore, DriftAction::Ignore));
    if f.class != DriftClass::Missing {
        out.push(b(ButtonLabel::ServiceAccount, DriftAction::Service));
    }
    out
}

/// A finding seen for the first time.
fn fresh(connector: &ConnectorName, s: &Seen, now: Timestamp) -> Finding {
    Finding {
        id: FindingId(0),
        connector: connector.clone(),
        class: s.class,
        account: s.account.clone(),
        person: s.person.clone(),
        app: s.app.clone(),
        detail: s.detail.clone(),
        first_seen: now,
        last_seen: now,
        runs: 1,
        state: FindingState::Open,
        until: None,
        owner: None,
        decided: None,
        version: 1,
    }
}

/// A finding seen again: one more run in a row; an ignored one whose time ran out, or a
/// settled one back, is open again; a service account stays exempt.
fn again(f: &Finding, s: &Seen, now: Timestamp) -> Finding {
    let mut g = f.clone();
    g.last_seen = now;
    g.detail = s.detail.clone();
    g.person = s.person.clone();
    match f.state {
        FindingState::Ignored if f.until.is_some_and(|u| u <= now) => {
            g.state = FindingState::Open;
            g.until = None;
            g.runs = 1;
        }
        FindingState::Open => g.runs = f.runs.saturating_add(1),
        _ => {}
    }
    g
}

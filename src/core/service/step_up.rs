//! Step-up: before a high-risk click takes effect (Approve on an app with `step_up`, IT's
//! confirms in `[workflow] step_up_for`), the clicker types a code from their authenticator
//! app. The code is checked against their sealed secret, counts once, and five wrong codes in
//! a row lock step-up for 15 minutes and tell IT. The decision's audit rows say the method,
//! never the code.

use super::*;
use crate::core::render::step_up::{self as words, MAX_FAILURES, StepUpRefusal};
use crate::core::totp::{CodeCheck, MfaKey};

/// How long step-up stays locked after [`MAX_FAILURES`] wrong codes.
const LOCK_FOR: std::time::Duration = std::time::Duration::from_secs(15 * 60);

tokio::task_local! {
    /// Who passed step-up for the click being handled in this task.
    static STEPPED_UP: Handle;
}

/// The step-up key and where the enrolment page is served.
#[derive(Debug, Clone, Default)]
pub struct StepUpSettings {
    /// `[mfa] key_env`.
    pub key: Option<MfaKey>,
    /// `[http] public_url`.
    pub public_url: Option<String>,
}

/// What the step-up check decided about a click.
pub(super) enum Gate {
    /// No code needed, or a good one given (and spent).
    Pass,
    /// Not yet: this is the answer (a form asking for the code, or a refusal).
    Answer(ClickReply),
}

impl Service {
    /// Step-up for `c` before the click `custom_id` takes effect: [`Gate::Pass`] when the
    /// submitted form (`fields`) holds a good code, which is spent in the same breath; else
    /// the form asking for it (titled `title`) or why not (audited as `step_up.failed`).
    pub(super) async fn step_up(
        &self,
        c: &Caller,
        custom_id: &str,
        title: String,
        fields: Option<&HashMap<String, String>>,
    ) -> Result<Gate> {
        let Some(key) = self.step_up.key.as_ref() else {
            return Ok(self.step_up_answer(StepUpRefusal::NotConfigured));
        };
        let me = &c.person.handle;
        let now = self.clock.now();
        let Some(rec) = self.store.mfa(me).await? else {
            return self
                .step_up_refused(
                    c,
                    "not enrolled",
                    StepUpRefusal::NotEnrolled { started: false },
                )
                .await;
        };
        if rec.confirmed_at.is_none() {
            return self
                .step_up_refused(
                    c,
                    "enrolment not confirmed",
                    StepUpRefusal::NotEnrolled { started: true },
                )
                .await;
        }
        if let Some(until) = rec.locked_until.filter(|u| *u > now) {
            let until = self.when_to(c, until);
            return self
                .step_up_refused(c, "locked", StepUpRefusal::Locked { until })
                .await;
        }
        let code = fields
            .and_then(|f| f.get("code"))
            .map(|s| s.trim())
            .filter(|s| !s.is_empty());
        let Some(code) = code else {
            return Ok(Gate::Answer(ClickReply::Form(Form {
                custom_id: custom_id.to_owned(),
                title,
                fields: vec![FormField::code()],
            })));
        };
        let secret = key
            .open(me.as_str(), &rec.sealed)
            .map_err(|e| ServiceError::Inconsistent(format!("step-up of {me}: {e}")))?;
        match secret.check(code, now.timestamp(), rec.last_step) {
            CodeCheck::Good(step) => {
                let spent = Change {
                    mfa: vec![MfaWrite::Used {
                        person: me.clone(),
                        step,
                    }],
                    ..Change::default()
                };
                match self.store.commit(spent).await {
                    Ok(_) => Ok(Gate::Pass),
                    // Another click spent this code (or a later one) first.
                    Err(StoreError::Conflict) => {
                        self.step_up_refused(c, "code already used", StepUpRefusal::Reused)
                            .await
                    }
                    Err(e) => Err(e.into()),
                }
            }
            CodeCheck::Reused => {
                self.step_up_refused(c, "code already used", StepUpRefusal::Reused)
                    .await
            }
            CodeCheck::Wrong => self.wrong_code(c).await,
        }
    }

    /// Runs `work` as `c` having passed step-up: the audit rows `c` writes in it say so.
    pub(super) async fn as_stepped_up<F: Future>(&self, c: &Caller, work: F) -> F::Output {
        STEPPED_UP.scope(c.person.handle.clone(), work).await
    }

    /// A refusal as a click's answer.
    fn step_up_answer(&self, r: StepUpRefusal) -> Gate {
        Gate::Answer(ClickReply::Reply(Reply::text(words::step_up_refusal(&r))))
    }

    /// Records `step_up.failed` (`why`, never the code) and answers `r`.
    async fn step_up_refused(&self, c: &Caller, why: &str, r: StepUpRefusal) -> Result<Gate> {
        let ev = self
            .audit(AuditAction::StepUpFailed)
            .by(Self::by(c))
            .chat(c.chat_id.as_deref())
            .subject(&c.person.handle)
            .outcome(AuditOutcome::Refused)
            .detail(format!("totp: {why}"));
        self.commit(Change {
            audit: vec![ev],
            ..Change::default()
        })
        .await?;
        Ok(self.step_up_answer(r))
    }

    /// A wrong code: counted (conditional on the count read); the fifth in a row locks
    /// step-up for [`LOCK_FOR`] and tells IT.
    async fn wrong_code(&self, c: &Caller) -> Result<Gate> {
        let me = &c.person.handle;
        self.retry_on_conflict(&format!("step-up of {me}"), || async {
            let Some(rec) = self.store.mfa(me).await? else {
                return Ok(Attempt::Done(
                    self.step_up_answer(StepUpRefusal::NotEnrolled { started: false }),
                ));
            };
            let now = self.clock.now();
            let n = rec.failures + 1;
            let lock = (n >= MAX_FAILURES).then(|| now + LOCK_FOR);
            let detail = match lock {
                Some(u) => format!("totp: wrong code ({n} in a row); locked until {}", when(u)),
                None => format!("totp: wrong code ({n} of {MAX_FAILURES})"),
            };
            let ev = self
                .audit(AuditAction::StepUpFailed)
                .by(Self::by(c))
                .chat(c.chat_id.as_deref())
                .subject(me)
                .outcome(AuditOutcome::Refused)
                .detail(detail);
            let mut change = Change {
                mfa: vec![MfaWrite::Failed {
                    person: me.clone(),
                    failures: rec.failures,
                    lock_until: lock,
                }],
                audit: vec![ev],
                ..Change::default()
            };
            if let Some(u) = lock {
                let text = words::locked_to_it(&c.person.name, &self.org.timezone.show(u));
                for a in &self.org.it_admins {
                    change
                        .messages
                        .push(self.out(a, text.clone(), vec![], None));
                }
            }
            match self.commit(change).await {
                Ok(_) => {}
                Err(StoreError::Conflict) => return Ok(Attempt::Conflict),
                Err(e) => return Err(e.into()),
            }
            if lock.is_some() {
                self.messages_committed().await;
            }
            let r = match lock {
                Some(u) => StepUpRefusal::NowLocked {
                    until: self.when_to(c, u),
                },
                None => StepUpRefusal::WrongCode {
                    left: MAX_FAILURES - n,
                },
            };
            Ok(Attempt::Done(self.step_up_answer(r)))
        })
        .await
    }
}

/// Says on the audit rows of the person who passed step-up in this task that they did
/// (the method, never the code).
pub(super) fn mark_stepped_up(audit: &mut [AuditEvent]) {
    let _ = STEPPED_UP.try_with(|h| {
        let me = Actor::Person(h.clone());
        for ev in audit.iter_mut().filter(|e| e.actor == me) {
            if ev.detail.is_empty() {
                ev.detail = "step-up: totp".into();
            } else {
                ev.detail.push_str("; step-up: totp");
            }
        }
    });
}

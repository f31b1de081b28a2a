//! `/mfa`: enrolling an authenticator app (a one-time page link, or the secret in an answer
//! only its owner sees), confirming it with a first code, its status, and IT's reset (itself
//! under step-up); and the enrolment page's content.

use secrecy::{ExposeSecret, SecretString};

use super::step_up::Gate;
use super::*;
use crate::core::command::MfaIntent;
use crate::core::render::step_up::{self as words, StepUpRefusal};
use crate::core::totp::{self, CodeCheck, TotpSecret};

/// How long an enrolment page link works.
const LINK_FOR: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// What the one-time enrolment page shows.
pub struct EnrolPage {
    /// Whose enrolment.
    pub name: String,
    /// The secret, base32.
    pub secret: SecretString,
    /// The `otpauth://` URI.
    pub uri: SecretString,
    /// The URI as an SVG QR code.
    pub qr_svg: String,
}

impl Service {
    /// `/mfa enroll | confirm | status | reset`.
    pub(super) async fn mfa(&self, c: &Caller, m: MfaIntent) -> Result<Reply> {
        if self.step_up.key.is_none() {
            return Ok(Reply::text(words::step_up_refusal(
                &StepUpRefusal::NotConfigured,
            )));
        }
        match m {
            MfaIntent::Enroll => self.mfa_enroll(c).await,
            MfaIntent::Confirm { code } => self.mfa_confirm(c, &code).await,
            MfaIntent::Status => self.mfa_status(c).await,
            MfaIntent::Reset { user } => self.mfa_reset(c, user, None).await,
        }
    }

    /// A new secret, sealed; the link to its page or the secret itself.
    async fn mfa_enroll(&self, c: &Caller) -> Result<Reply> {
        let Some(key) = self.step_up.key.as_ref() else {
            return Ok(Reply::text(words::step_up_refusal(
                &StepUpRefusal::NotConfigured,
            )));
        };
        let me = &c.person.handle;
        if let Some(since) = self.store.mfa(me).await?.and_then(|r| r.confirmed_at) {
            return Ok(Reply::text(words::step_up_refusal(
                &StepUpRefusal::AlreadyEnrolled {
                    since: self.when_to(c, since),
                },
            )));
        }
        let secret = TotpSecret::generate();
        let mut change = Change {
            mfa: vec![MfaWrite::Enrol {
                person: me.clone(),
                sealed: key.seal(me.as_str(), &secret),
            }],
            audit: vec![
                self.audit(AuditAction::MfaEnrolled)
                    .by(Self::by(c))
                    .chat(c.chat_id.as_deref())
                    .subject(me)
                    .outcome(AuditOutcome::Waiting)
                    .detail("totp: enrolment started; waiting for a first code"),
            ],
            ..Change::default()
        };
        let text = match &self.step_up.public_url {
            Some(base) => {
                let (token, hash) = totp::new_token();
                change.mfa.push(MfaWrite::Link {
                    token_hash: hash,
                    person: me.clone(),
                    expires_at: self.clock.now() + LINK_FOR,
                });
                words::enroll_link(&format!("{base}/mfa/enroll/{}", token.expose_secret()))
            }
            None => words::enroll_secret(
                secret.base32().expose_secret(),
                secret.uri(&self.org.name, me.as_str()).expose_secret(),
            ),
        };
        self.commit(change).await?;
        Ok(Reply::text(text))
    }

    /// The first code confirms the enrolment.
    async fn mfa_confirm(&self, c: &Caller, code: &str) -> Result<Reply> {
        let Some(key) = self.step_up.key.as_ref() else {
            return Ok(Reply::text(words::step_up_refusal(
                &StepUpRefusal::NotConfigured,
            )));
        };
        let me = &c.person.handle;
        let refusal = |r| Ok(Reply::text(words::step_up_refusal(&r)));
        let Some(rec) = self.store.mfa(me).await? else {
            return refusal(StepUpRefusal::NothingToConfirm);
        };
        if let Some(since) = rec.confirmed_at {
            return refusal(StepUpRefusal::AlreadyEnrolled {
                since: self.when_to(c, since),
            });
        }
        let secret = key
            .open(me.as_str(), &rec.sealed)
            .map_err(|e| ServiceError::Inconsistent(format!("enrolment of {me}: {e}")))?;
        let now = self.clock.now();
        let CodeCheck::Good(step) = secret.check(code, now.timestamp(), 0) else {
            return refusal(StepUpRefusal::ConfirmWrong);
        };
        let change = Change {
            mfa: vec![MfaWrite::Confirm {
                person: me.clone(),
                step,
                at: now,
            }],
            audit: vec![
                self.audit(AuditAction::MfaEnrolled)
                    .by(Self::by(c))
                    .chat(c.chat_id.as_deref())
                    .subject(me)
                    .detail("totp: enrolment confirmed by a first code"),
            ],
            ..Change::default()
        };
        match self.commit(change).await {
            Ok(_) => Ok(Reply::text(words::enrolled())),
            Err(StoreError::Conflict) => refusal(StepUpRefusal::AlreadyEnrolled {
                since: self.when_to(c, now),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the caller is enrolled, and whether step-up is locked.
    async fn mfa_status(&self, c: &Caller) -> Result<Reply> {
        let rec = self.store.mfa(&c.person.handle).await?;
        let now = self.clock.now();
        let since = rec
            .as_ref()
            .and_then(|r| r.confirmed_at)
            .map(|t| self.when_to(c, t));
        let locked = rec
            .as_ref()
            .and_then(|r| r.locked_until)
            .filter(|u| *u > now)
            .map(|u| self.when_to(c, u));
        Ok(Reply::text(words::status(
            since.as_deref(),
            rec.is_some(),
            locked.as_deref(),
        )))
    }

    /// IT's `/mfa reset user:U`: under step-up (the command answers with the code form, whose
    /// submission comes back here with `fields`); never one's own.
    pub(super) async fn mfa_reset(
        &self,
        c: &Caller,
        user: Handle,
        fields: Option<&HashMap<String, String>>,
    ) -> Result<Reply> {
        let admin = match self.it_only(c, "/mfa reset", Some(&user)).await? {
            Ok(a) => a,
            Err(refused) => return Ok(refused),
        };
        if user == c.person.handle {
            return self
                .refused(
                    c,
                    "/mfa reset",
                    Some(&user),
                    None,
                    ReqRef::None,
                    StepUpRefusal::OwnReset,
                )
                .await;
        }
        let Some(person) = self.store.person(&user).await? else {
            return Ok(Refusal::NoSuchPerson(user).into());
        };
        if self.store.mfa(&user).await?.is_none() {
            return Ok(Reply::text(words::step_up_refusal(
                &StepUpRefusal::NoEnrolment {
                    name: person.name.clone(),
                },
            )));
        }
        let target = ClickTarget::MfaReset(user.clone()).to_string();
        match self
            .step_up(c, &target, words::reset_title(&person.name), fields)
            .await?
        {
            Gate::Pass => {}
            Gate::Answer(ClickReply::Form(f)) => return Ok(Reply::form(f)),
            Gate::Answer(ClickReply::Reply(r)) => return Ok(r),
        }
        self.as_stepped_up(c, self.mfa_reset_now(c, &admin, &person))
            .await
    }

    /// Removes `person`'s enrolment, audited, and tells them.
    async fn mfa_reset_now(
        &self,
        c: &Caller,
        _admin: &policy::ItAdmin,
        person: &Person,
    ) -> Result<Reply> {
        let change = Change {
            mfa: vec![MfaWrite::Reset {
                person: person.handle.clone(),
            }],
            audit: vec![
                self.audit(AuditAction::MfaReset)
                    .by(Self::by(c))
                    .chat(c.chat_id.as_deref())
                    .subject(&person.handle)
                    .detail("totp enrolment removed"),
            ],
            messages: vec![self.out(
                &person.handle,
                words::reset_news(&c.person.name),
                vec![],
                None,
            )],
            ..Change::default()
        };
        match self.commit(change).await {
            Ok(_) => {
                self.messages_committed().await;
                Ok(Reply::text(words::reset_done(&person.name)))
            }
            Err(StoreError::Conflict) => Ok(Reply::text(words::step_up_refusal(
                &StepUpRefusal::NoEnrolment {
                    name: person.name.clone(),
                },
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The enrolment page for a link's token: once, within its 10 minutes, and only while
    /// the enrolment is unconfirmed; `None` otherwise (the page says the link is not valid).
    pub async fn enrol_page(&self, token: &str) -> Result<Option<EnrolPage>> {
        let Some(key) = self.step_up.key.as_ref() else {
            return Ok(None);
        };
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let hash = totp::token_hash(token);
        let Some(link) = self.store.mfa_link(&hash).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        if link.used_at.is_some() || link.expires_at <= now {
            return Ok(None);
        }
        let Some(rec) = self.store.mfa(&link.person).await? else {
            return Ok(None);
        };
        if rec.confirmed_at.is_some() {
            return Ok(None);
        }
        let used = Change {
            mfa: vec![MfaWrite::LinkUsed {
                token_hash: hash,
                at: now,
            }],
            ..Change::default()
        };
        match self.commit(used).await {
            Ok(_) => {}
            Err(StoreError::Conflict) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let secret = key.open(link.person.as_str(), &rec.sealed).map_err(|e| {
            ServiceError::Inconsistent(format!("enrolment of {}: {e}", link.person))
        })?;
        let uri = secret.uri(&self.org.name, link.person.as_str());
        let name = self
            .store
            .person(&link.person)
            .await?
            .map_or_else(|| link.person.to_string(), |p| p.name);
        Ok(Some(EnrolPage {
            name,
            secret: secret.base32(),
            qr_svg: totp::qr_svg(&uri).unwrap_or_default(),
            uri,
        }))
    }
}

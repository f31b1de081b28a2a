//! Break-glass: emergency access given at once to the people an app's `break_glass` names,
//! capped at its `max` and not extendable. Every approver it skipped, and the approvals
//! channel (else IT), get Ratify / Revoke now; someone other than the holder must ratify it
//! within `review_within`, or IT is told (and with `auto_revoke` the access goes). Until it is
//! ratified or IT settles it, its holder cannot use break-glass again.

use super::break_glass_grant::Emergency;
use super::step_up::Gate;
use super::*;
use crate::core::render::step_up::{self as words, BreakGlassRefusal};

impl Service {
    /// `/request app:X emergency:true`: the confirm form (the emergency, how long, the code
    /// where the app needs step-up), naming who will be told; or why not (audited). An open
    /// request for the app is escalated rather than asked again.
    pub(super) async fn emergency(
        &self,
        c: &Caller,
        raw_app: &str,
        reason: Option<String>,
        duration: Option<Span>,
    ) -> Result<Reply> {
        let app = match self.find_app(raw_app) {
            Ok(a) => a,
            Err(r) => return Ok(r.into()),
        };
        // A pending request for new access is escalated; an extension's grant is held already.
        let open = self
            .store
            .open_request(&c.person.handle, &app.name)
            .await?
            .filter(|r| r.kind == RequestKind::New);
        let terms = match self.may_break_glass(c, app, open.is_none()).await? {
            Ok(t) => t,
            Err(why) => return self.break_glass_refused(c, app, why).await,
        };
        if duration.is_some_and(|d| d > terms.max) {
            let why = BreakGlassRefusal::TooLong {
                app: app.display.clone(),
                max: terms.max.to_string(),
            };
            return self.break_glass_refused(c, app, why).await;
        }
        let target = match &open {
            Some(r) => ClickTarget::Escalate(r.id),
            None => ClickTarget::BreakGlass(app.name.clone()),
        };
        let reason = reason.or_else(|| open.as_ref().and_then(|r| r.reason.clone()));
        let form = self
            .emergency_form(c, app, terms, target, reason, duration)
            .await?;
        Ok(Reply::form(form))
    }

    /// Escalate on one's own pending request, or the break-glass form submitted.
    pub(super) async fn break_glass_click(
        &self,
        c: &Caller,
        target: ClickTarget,
        fields: Option<&HashMap<String, String>>,
    ) -> Result<Reply> {
        let (app, open) = match &target {
            ClickTarget::Escalate(id) => {
                let r = self
                    .store
                    .request(*id)
                    .await?
                    .filter(|r| r.requester == c.person.handle && r.state.is_open());
                let Some(r) = r else {
                    let why = BreakGlassRefusal::NotYourPending(*id);
                    return self
                        .refused(c, "escalate", None, None, ReqRef::None, why)
                        .await;
                };
                (r.app.clone(), Some(r))
            }
            ClickTarget::BreakGlass(a) => (a.clone(), None),
            _ => return Err(ServiceError::Inconsistent("not a break-glass click".into())),
        };
        let Some(app) = self.org.app(&app) else {
            return Ok(BreakGlassRefusal::NotOffered {
                app: app.to_string(),
            }
            .into());
        };
        let terms = match self.may_break_glass(c, app, open.is_none()).await? {
            Ok(t) => t,
            Err(why) => return self.break_glass_refused(c, app, why).await,
        };
        let code_missing =
            app.step_up && fields.is_none_or(|f| f.get("code").is_none_or(|v| v.trim().is_empty()));
        let (Some(fields), false) = (fields, code_missing) else {
            let reason = fields
                .and_then(|f| f.get("reason").cloned())
                .or_else(|| open.as_ref().and_then(|r| r.reason.clone()));
            let form = self
                .emergency_form(c, app, terms, target, reason, None)
                .await?;
            return Ok(Reply::form(form));
        };
        let e = match self.emergency_terms(app, terms, fields) {
            Ok(e) => e,
            Err(why) => return self.break_glass_refused(c, app, why).await,
        };
        if app.step_up {
            let title = words::break_glass_title(&app.display);
            match self
                .step_up(c, &target.to_string(), title, Some(fields))
                .await?
            {
                Gate::Pass => {}
                Gate::Answer(ClickReply::Reply(r)) => return Ok(r),
                Gate::Answer(ClickReply::Form(f)) => return Ok(Reply::form(f)),
            }
        }
        self.as_stepped_up(c, self.grant_break_glass(c, &e, open.as_ref()))
            .await
    }

    /// Whether `c` may use break-glass on `app` now: its terms, or why not.
    async fn may_break_glass<'a>(
        &self,
        c: &Caller,
        app: &'a App,
        new: bool,
    ) -> Result<std::result::Result<&'a BreakGlassPolicy, BreakGlassRefusal>> {
        let me = &c.person;
        let Some(terms) = app.break_glass.as_ref() else {
            return Ok(Err(BreakGlassRefusal::NotOffered {
                app: app.display.clone(),
            }));
        };
        if !eligible(me, &terms.who) {
            return Ok(Err(BreakGlassRefusal::NotEligible {
                app: app.display.clone(),
                who: who_words(&terms.who),
            }));
        }
        if let Some(b) = self.store.open_break_glass(&me.handle).await?.first() {
            return Ok(Err(BreakGlassRefusal::Unratified {
                id: b.id,
                app: self.app_display(&b.app),
            }));
        }
        let holds = self
            .store
            .grants_of(&me.handle)
            .await?
            .iter()
            .any(|g| g.app == app.name);
        if new && holds {
            return Ok(Err(BreakGlassRefusal::AlreadyHeld {
                app: app.display.clone(),
            }));
        }
        Ok(Ok(terms))
    }

    /// Records a break-glass refusal (audited) and answers it.
    async fn break_glass_refused(
        &self,
        c: &Caller,
        app: &App,
        why: BreakGlassRefusal,
    ) -> Result<Reply> {
        self.refused(
            c,
            "break-glass",
            Some(&c.person.handle),
            Some(&app.name),
            ReqRef::None,
            why,
        )
        .await
    }

    /// The submitted form's reason and length, checked against the app's terms.
    fn emergency_terms<'a>(
        &self,
        app: &'a App,
        terms: &'a BreakGlassPolicy,
        fields: &HashMap<String, String>,
    ) -> std::result::Result<Emergency<'a>, BreakGlassRefusal> {
        let reason = fields
            .get("reason")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        let bad_reason = || BreakGlassRefusal::Reason {
            app: app.display.clone(),
            pattern: terms.reason_pattern.as_ref().map(|p| p.as_str().to_owned()),
        };
        let reason = reason.ok_or_else(bad_reason)?;
        if terms
            .reason_pattern
            .as_ref()
            .is_some_and(|p| !p.is_match(&reason))
        {
            return Err(bad_reason());
        }
        let too_long = || BreakGlassRefusal::TooLong {
            app: app.display.clone(),
            max: terms.max.to_string(),
        };
        let span = match fields.get("duration").map(|s| s.trim()) {
            None | Some("") => terms.max,
            Some(d) => Span::parse(d).map_err(|_| too_long())?,
        };
        if span > terms.max {
            return Err(too_long());
        }
        Ok(Emergency {
            app,
            terms,
            reason,
            span,
        })
    }

    /// The confirm form: its title and the reason's hint name who will be told.
    async fn emergency_form(
        &self,
        c: &Caller,
        app: &App,
        terms: &BreakGlassPolicy,
        target: ClickTarget,
        reason: Option<String>,
        duration: Option<Span>,
    ) -> Result<Form> {
        let (skipped, dir) = self.skipped_approvers(&c.person, app, None).await?;
        let mut told = Self::name_list(&dir, &skipped);
        told.push(self.ratifiers_word());
        let told = crate::core::render::requests::all_of(&told);
        let mut fields = vec![
            FormField {
                id: "reason".into(),
                label: words::break_glass_reason_label(),
                value: reason,
                required: true,
                max_len: 500,
                long: false,
                hint: Some(words::break_glass_who(
                    &told,
                    &terms.review_within.to_string(),
                )),
            },
            FormField {
                id: "duration".into(),
                label: format!("For how long (at most {})", terms.max),
                value: Some(duration.unwrap_or(terms.max).to_string()),
                required: false,
                max_len: 16,
                long: false,
                hint: None,
            },
        ];
        if app.step_up {
            fields.push(FormField::code());
        }
        Ok(Form {
            custom_id: target.to_string(),
            title: words::break_glass_title(&app.display),
            fields,
        })
    }

    /// The approvers a break-glass skips (the people every step of `app` would ask, or
    /// those `open`'s steps asked), with a directory naming them.
    pub(super) async fn skipped_approvers(
        &self,
        me: &Person,
        app: &App,
        open: Option<&Request>,
    ) -> Result<(Vec<Handle>, PeopleByHandle)> {
        let steps = open.map(|r| r.steps.as_slice()).unwrap_or_default();
        let dir = self.request_directory(&me.handle, &app.name, steps).await?;
        let mut out: Vec<Handle> = Vec::new();
        let asked: Vec<Handle> = match open {
            Some(r) => r.steps.iter().flat_map(|s| s.approvers.clone()).collect(),
            None => app
                .approvals
                .iter()
                .flat_map(|rule| policy::approvers_for(&self.org, &dir, rule, me, app, &[]))
                .collect(),
        };
        for h in asked {
            if h != me.handle && !out.contains(&h) {
                out.push(h);
            }
        }
        Ok((out, dir))
    }
}

/// Whether `p` is among `who`.
pub(super) fn eligible(p: &Person, who: &[Eligible]) -> bool {
    who.iter().any(|w| match w {
        Eligible::Role(r) => &p.role == r,
        Eligible::Department(d) => &p.department == d,
        Eligible::Person(h) => &p.handle == h,
    })
}

/// `who`, in words.
fn who_words(who: &[Eligible]) -> String {
    let items: Vec<String> = who
        .iter()
        .map(|w| match w {
            Eligible::Role(r) => format!("the {r} role"),
            Eligible::Department(d) => format!("the {d} department"),
            Eligible::Person(h) => h.to_string(),
        })
        .collect();
    crate::core::render::requests::all_of(&items)
}

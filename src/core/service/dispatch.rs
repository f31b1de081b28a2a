//! The entry points every chat adapter calls: a typed or raw command, a click, an
//! autocomplete; each is checked against the caller and routed to its use case.

use super::*;
use crate::core::render::requests as render;

impl Service {
    /// Runs a console line (`/request app:figma …`) for `caller`.
    pub async fn command_line(&self, caller: &Caller, line: &str) -> Reply {
        match self.commands.parse_line(line) {
            Ok(intent) => self.run(caller, intent).await,
            Err(e) => Reply::text(e.to_string()),
        }
    }

    /// Runs a slash command given as raw option pairs (the Discord adapter's entry).
    pub async fn command(&self, caller: &Caller, name: &str, raw: Vec<(String, String)>) -> Reply {
        let intent = self
            .commands
            .validate(name, raw)
            .and_then(Intent::from_invocation);
        match intent {
            Ok(intent) => self.run(caller, intent).await,
            Err(e) => Reply::text(CommandError::to_string(&e)),
        }
    }

    /// Runs a parsed command; internal failures become a plain apology.
    pub async fn run(&self, caller: &Caller, intent: Intent) -> Reply {
        let span = info_span!("command", actor = %caller.person.handle);
        let r = self.dispatch(caller, intent).instrument(span).await;
        self.deliver_leftovers().await;
        match r {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "command failed");
                Reply::text(render::command_failed())
            }
        }
    }

    /// Routes a parsed command to its use case; an offboarded caller is refused.
    async fn dispatch(&self, c: &Caller, intent: Intent) -> Result<Reply> {
        if c.person.status != PersonStatus::Active {
            return self
                .refused(
                    c,
                    "command",
                    Some(&c.person.handle),
                    None,
                    ReqRef::None,
                    Refusal::Offboarded,
                )
                .await;
        }
        let reply = match intent {
            Intent::Request {
                duration: Some(d), ..
            } if d > self.org.workflow.max_duration => RequestRefusal::TooLong {
                asked: d,
                max: self.org.workflow.max_duration,
            }
            .into(),
            Intent::Request {
                app,
                reason,
                duration,
                emergency,
            } => self.request(c, &app, reason, duration, emergency).await?,
            Intent::Access { user } => self.access(c, user).await?,
            Intent::Approvals => self.approvals(c).await?,
            Intent::Revoke { app, user, reason } => self.revoke(c, &app, user, reason).await?,
            Intent::Onboard {
                email,
                name,
                role,
                manager,
                department,
                handle,
                user,
                timezone,
            } => match self.it_only(c, "/onboard", handle.as_ref()).await? {
                Ok(admin) => {
                    self.onboard(
                        &admin, c, email, name, role, manager, department, handle, user, timezone,
                    )
                    .await?
                }
                Err(refused) => refused,
            },
            Intent::Role { user, role } => self.role(c, user, role).await?,
            Intent::Offboard { user, reason, when } => {
                match self.it_only(c, "/offboard", Some(&user)).await? {
                    Ok(admin) => self.offboard(&admin, c, user, reason, when).await?,
                    Err(refused) => refused,
                }
            }
            Intent::Help { command } => Reply::text(
                self.commands
                    .help(command.as_deref())
                    .unwrap_or_else(|e| render::help_refused(&e)),
            ),
            Intent::Mfa(m) => Box::pin(self.mfa(c, m)).await?,
            Intent::Drift { connector } => Box::pin(self.drift_command(c, connector)).await?,
            Intent::Review(r) => Box::pin(self.review_command(c, r)).await?,
        };
        Ok(reply)
    }

    /// Handles a button click (or a submitted form: `fields` holds its values).
    pub async fn click(
        &self,
        caller: &Caller,
        custom_id: &str,
        fields: Option<&HashMap<String, String>>,
    ) -> ClickReply {
        let span = info_span!("click", actor = %caller.person.handle, custom_id);
        let r = async {
            if caller.person.status != PersonStatus::Active {
                return self
                    .refused(
                        caller,
                        "click",
                        None,
                        None,
                        ReqRef::None,
                        Refusal::Offboarded,
                    )
                    .await
                    .map(ClickReply::Reply);
            }
            let target = match ClickTarget::parse(custom_id) {
                Ok(t) => t,
                Err(e) => return Ok(ClickReply::Reply(Reply::text(e.to_string()))),
            };
            // Boxed: one future for every kind of click is large, and tests run on 2 MiB stacks.
            Box::pin(self.route_click(caller, custom_id, target, fields)).await
        }
        .instrument(span)
        .await;
        self.deliver_leftovers().await;
        r.unwrap_or_else(|e| {
            tracing::error!(error = %e, "click failed");
            ClickReply::Reply(Reply::text(render::click_failed()))
        })
    }

    /// Apps whose name or display name matches what was typed so far, best first (for
    /// Discord's autocomplete); forgives typos.
    pub fn complete_app(&self, typed: &str) -> Vec<(String, String)> {
        let t = typed.trim().to_lowercase();
        let mut scored: Vec<(f64, &App)> = self
            .org
            .apps
            .iter()
            .filter(|a| a.requestable)
            .map(|a| {
                let n = a.name.as_str();
                let d = a.display.to_lowercase();
                let s = if t.is_empty() || n.starts_with(&t) || d.starts_with(&t) {
                    2.0
                } else if n.contains(&t) || d.contains(&t) {
                    1.5
                } else {
                    strsim::jaro_winkler(&t, n).max(strsim::jaro_winkler(&t, &d))
                };
                (s, a)
            })
            .filter(|(s, _)| *s >= 0.7)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.name.cmp(&b.1.name)));
        scored
            .into_iter()
            .take(25)
            .map(|(_, a)| (a.name.to_string(), a.display.clone()))
            .collect()
    }

    /// Refuses an interaction from a place Quartermaster does not serve (a Discord guild
    /// outside `[discord] guilds`): audited as `command.refused`, answered politely.
    /// `why` is the adapter's words for the audit trail.
    pub async fn refuse_place(&self, chat_id: &str, why: &str) -> Reply {
        let actor = match self.caller_by_discord_id(chat_id).await {
            Ok(Some(c)) => Self::by(&c),
            _ => Actor::System,
        };
        let ev = self
            .audit(AuditAction::CommandRefused)
            .by(actor)
            .chat(Some(chat_id))
            .outcome(AuditOutcome::Refused)
            .detail(format!("interaction: {why}"));
        let change = Change {
            audit: vec![ev],
            ..Change::default()
        };
        if let Err(e) = self.commit(change).await {
            tracing::error!(error = %e, "cannot record a refused interaction");
        }
        Reply::text(render::not_served())
    }
}

//! One handler for every interaction, from the gateway or the HTTP endpoint: decode it,
//! identify the caller (`member.user` in a guild, `user` in a DM), call the service, and produce
//! the interaction response. Answers within Discord's 3 seconds: when the work is not done after
//! [`InteractionHandler::defer_after`], the response is a deferral (type 5, ephemeral) and the work
//! finishes in the background, then edits the original response.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use serenity::all::{
    ActionRowComponent, CommandDataOptionValue, CommandInteraction, ComponentInteraction, GuildId,
    Interaction, ModalInteraction, UserId,
};
use serenity::http::Http;
use tracing::{Instrument, info_span, warn};

use super::chat::DiscordChat;
use super::{components, content, with_retry};
use crate::core::service::{Caller, ClickReply, Reply, Service};
use crate::metrics::Metrics;

/// Ephemeral message flag.
pub const EPHEMERAL: u64 = 64;

/// The sentence an unknown Discord user sees.
pub const UNKNOWN_USER: &str = "Sorry, I don't know who you are: your Discord account is not linked to a person in Quartermaster. Please ask IT to add your Discord id.";

/// USER options that name a Discord account to link (a new hire, not yet a person), not a
/// person already known: the core gets the Discord id itself, as `(command, option)`.
const ACCOUNT_OPTIONS: &[(&str, &str)] = &[("onboard", "user")];

/// What the service answered, before it becomes Discord JSON.
enum Answer {
    Reply(Reply, Option<Caller>),
    Modal {
        custom_id: String,
        title: String,
        field: String,
        label: String,
    },
}

/// Why an interaction was not handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotHandled {
    /// Its id was seen before (a gateway redelivery, a second instance, a replayed POST): it
    /// was, or is being, handled once already.
    Replay,
    /// Whether it was seen before could not be recorded (the database did not answer), so it
    /// is not acted on.
    Unavailable,
}

/// Work still running after a deferral: finish it and edit the original response.
pub struct Pending {
    work: tokio::task::JoinHandle<Answer>,
    token: String,
    interactions: Arc<InteractionHandler>,
}

impl Pending {
    /// Waits for the work, then edits the deferred response with its result.
    pub async fn finish(self) {
        let answer = match self.work.await {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "deferred interaction work failed");
                Answer::Reply(
                    Reply::text("Something went wrong on our side. Please try again."),
                    None,
                )
            }
        };
        let (text, buttons, key, caller) = match answer {
            Answer::Reply(r, c) => (r.text, r.buttons, r.key, c),
            Answer::Modal { .. } => (
                "That took too long; please click again.".to_owned(),
                Vec::new(),
                None,
                None,
            ),
        };
        let body = json!({ "content": content(&text), "components": components(&buttons) });
        let d = &self.interactions;
        match with_retry(|| {
            d.http
                .edit_original_interaction_response(&self.token, &body, Vec::new())
        })
        .await
        {
            Ok(_) => {
                if let (Some(k), Some(c)) = (key, caller) {
                    d.chat.remember_reply(
                        k,
                        self.token.clone(),
                        c.person.handle.clone(),
                        d.service.clock().now(),
                    );
                }
            }
            Err(e) => warn!(error = %e, "cannot edit the deferred response"),
        }
    }
}

/// Turns interactions into service calls and responses.
pub struct InteractionHandler {
    service: Arc<Service>,
    chat: Arc<DiscordChat>,
    http: Arc<Http>,
    metrics: Arc<Metrics>,
    /// Defer when the work is not done after this many milliseconds (Discord allows 3 s).
    defer_after_ms: AtomicU64,
    /// `[discord] guilds`: where the bot answers (empty: anywhere).
    guilds: Vec<GuildId>,
}

pub(super) fn ephemeral(text: &str, buttons: &[crate::core::ports::Button]) -> Value {
    json!({
        "type": 4,
        "data": {
            "content": content(text),
            "flags": EPHEMERAL,
            "components": components(buttons),
            "allowed_mentions": { "parse": [] },
        }
    })
}

fn modal(custom_id: &str, title: &str, field: &str, label: &str) -> Value {
    json!({
        "type": 9,
        "data": {
            "custom_id": custom_id,
            "title": title.chars().take(45).collect::<String>(),
            "components": [{
                "type": 1,
                "components": [{
                    "type": 4,
                    "custom_id": field,
                    "label": label.chars().take(45).collect::<String>(),
                    "style": 2,
                    "required": true,
                    "max_length": 500,
                }]
            }]
        }
    })
}

/// The user who acted: `member.user` in a guild, `user` in a DM.
fn actor(member_user: Option<UserId>, user: UserId) -> UserId {
    member_user.unwrap_or(user)
}

impl InteractionHandler {
    /// A handler over the service and the Discord chat port.
    pub fn new(service: Arc<Service>, chat: Arc<DiscordChat>, metrics: Arc<Metrics>) -> Self {
        let http = chat.http().clone();
        Self {
            service,
            chat,
            http,
            metrics,
            defer_after_ms: AtomicU64::new(2000),
            guilds: Vec::new(),
        }
    }

    /// Answers only in these guilds (`[discord] guilds`; empty: any guild). DMs carry no
    /// guild and are always answered (the caller must still be a linked person).
    #[must_use]
    pub fn with_guilds(mut self, guilds: &[u64]) -> Self {
        self.guilds = guilds.iter().copied().map(GuildId::new).collect();
        self
    }

    /// The guild an interaction comes from and who acted, when the allowlist does not
    /// include that guild.
    fn foreign_guild(&self, i: &Interaction) -> Option<(GuildId, UserId)> {
        if self.guilds.is_empty() {
            return None;
        }
        let (g, who) = match i {
            Interaction::Command(c) | Interaction::Autocomplete(c) => (
                c.guild_id,
                actor(c.member.as_ref().map(|m| m.user.id), c.user.id),
            ),
            Interaction::Component(c) => (
                c.guild_id,
                actor(c.member.as_ref().map(|m| m.user.id), c.user.id),
            ),
            Interaction::Modal(m) => (
                m.guild_id,
                actor(m.member.as_ref().map(|m| m.user.id), m.user.id),
            ),
            _ => return None,
        };
        let g = g?;
        (!self.guilds.contains(&g)).then_some((g, who))
    }

    /// Changes how long the work may run before the response is a deferral (default 2 s).
    pub fn set_defer_after(&self, d: Duration) {
        self.defer_after_ms.store(
            d.as_millis().try_into().unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The service.
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// The REST client.
    pub fn http(&self) -> &Arc<Http> {
        &self.http
    }

    /// The in-process metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    async fn caller(&self, id: UserId) -> Option<Caller> {
        match self.service.caller_by_discord_id(&id.to_string()).await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "cannot look the caller up");
                None
            }
        }
    }

    /// Handles one interaction once (a replayed id is [`NotHandled::Replay`]); returns the
    /// initial response (the callback body) and, when the response is a deferral, the work
    /// still running: run [`Pending::finish`] once the response is acknowledged.
    pub async fn handle(
        self: &Arc<Self>,
        i: Interaction,
    ) -> Result<(Value, Option<Pending>), NotHandled> {
        let started = Instant::now();
        if matches!(
            i,
            Interaction::Command(_) | Interaction::Component(_) | Interaction::Modal(_)
        ) {
            match self
                .service
                .first_sight(&i.id().to_string(), chrono::Utc::now())
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    self.metrics
                        .interaction("replay", "ignored", started.elapsed());
                    return Err(NotHandled::Replay);
                }
                Err(e) => {
                    warn!(interaction = %i.id(), error = %e, "cannot record an interaction id");
                    return Err(NotHandled::Unavailable);
                }
            }
        }
        Ok(self.handle_new(i, started).await)
    }

    /// Handles an interaction seen for the first time.
    async fn handle_new(
        self: &Arc<Self>,
        i: Interaction,
        started: Instant,
    ) -> (Value, Option<Pending>) {
        let (kind, token) = match &i {
            Interaction::Ping(_) => ("ping", String::new()),
            Interaction::Command(c) => ("command", c.token.clone()),
            Interaction::Autocomplete(c) => ("autocomplete", c.token.clone()),
            Interaction::Component(c) => ("click", c.token.clone()),
            Interaction::Modal(m) => ("modal", m.token.clone()),
            _ => ("other", String::new()),
        };
        let span = info_span!("interaction", id = %i.id(), kind);
        if let Some((g, who)) = self.foreign_guild(&i) {
            let (body, outcome) = match &i {
                Interaction::Autocomplete(_) => {
                    (json!({ "type": 8, "data": { "choices": [] } }), "choices")
                }
                _ => {
                    let why = format!("guild {g} is not in [discord] guilds");
                    warn!(guild = %g, "refused an interaction from a guild outside the allowlist");
                    let r = self
                        .service
                        .refuse_place(&who.to_string(), &why)
                        .instrument(span)
                        .await;
                    (ephemeral(&r.text, &[]), "refused")
                }
            };
            self.metrics.interaction(kind, outcome, started.elapsed());
            return (body, None);
        }
        let (body, pending, outcome) = async {
            match i {
                Interaction::Ping(_) => (json!({ "type": 1 }), None, "pong"),
                Interaction::Autocomplete(c) => (self.autocomplete(&c), None, "choices"),
                Interaction::Command(c) => {
                    let me = self.clone();
                    self.run(token, async move { me.command(c).await }).await
                }
                Interaction::Component(c) => {
                    let me = self.clone();
                    self.run(token, async move { me.component(c).await }).await
                }
                Interaction::Modal(m) => {
                    let me = self.clone();
                    self.run(token, async move { me.modal(m).await }).await
                }
                _ => (
                    ephemeral("This kind of interaction is not supported.", &[]),
                    None,
                    "unsupported",
                ),
            }
        }
        .instrument(span)
        .await;
        self.metrics.interaction(kind, outcome, started.elapsed());
        (body, pending)
    }

    /// Runs the work; answers with its result if it is done within `defer_after`, else defers.
    async fn run<F>(
        self: &Arc<Self>,
        token: String,
        work: F,
    ) -> (Value, Option<Pending>, &'static str)
    where
        F: std::future::Future<Output = Answer> + Send + 'static,
    {
        let mut handle = tokio::spawn(work.in_current_span());
        tokio::select! {
            done = &mut handle => {
                let a = done.unwrap_or_else(|e| {
                    warn!(error = %e, "interaction work failed");
                    Answer::Reply(Reply::text("Something went wrong on our side. Please try again."), None)
                });
                match a {
                    Answer::Reply(r, c) => {
                        if let (Some(k), Some(c)) = (r.key, c) {
                            self.chat.remember_reply(k, token, c.person.handle.clone(), self.service.clock().now());
                        }
                        (ephemeral(&r.text, &r.buttons), None, "replied")
                    }
                    Answer::Modal { custom_id, title, field, label } => {
                        (modal(&custom_id, &title, &field, &label), None, "modal")
                    }
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(self.defer_after_ms.load(Ordering::Relaxed))) => {
                let p = Pending { work: handle, token, interactions: self.clone() };
                (json!({ "type": 5, "data": { "flags": EPHEMERAL } }), Some(p), "deferred")
            }
        }
    }

    fn autocomplete(&self, c: &CommandInteraction) -> Value {
        let typed = c
            .data
            .autocomplete()
            .filter(|o| o.name == "app")
            .map(|o| o.value.to_owned());
        let choices: Vec<Value> = match typed {
            Some(t) => self
                .service
                .complete_app(&t)
                .into_iter()
                .map(|(name, display)| {
                    let label = if display.eq_ignore_ascii_case(&name) {
                        display
                    } else {
                        format!("{display} ({name})")
                    };
                    json!({ "name": label.chars().take(100).collect::<String>(), "value": name })
                })
                .collect(),
            None => Vec::new(),
        };
        json!({ "type": 8, "data": { "choices": choices } })
    }

    async fn command(&self, c: CommandInteraction) -> Answer {
        let who = actor(c.member.as_ref().map(|m| m.user.id), c.user.id);
        let Some(caller) = self.caller(who).await else {
            return Answer::Reply(Reply::text(UNKNOWN_USER), None);
        };
        let mut raw = Vec::new();
        for o in &c.data.options {
            let v = match &o.value {
                CommandDataOptionValue::String(s) => s.clone(),
                CommandDataOptionValue::Integer(n) => n.to_string(),
                CommandDataOptionValue::Number(n) => n.to_string(),
                CommandDataOptionValue::Boolean(b) => b.to_string(),
                CommandDataOptionValue::Autocomplete { value, .. } => value.clone(),
                CommandDataOptionValue::User(u)
                    if ACCOUNT_OPTIONS.contains(&(c.data.name.as_str(), o.name.as_str())) =>
                {
                    u.to_string()
                }
                CommandDataOptionValue::User(u) => {
                    match self.service.caller_by_discord_id(&u.to_string()).await {
                        Ok(Some(p)) => p.person.handle.to_string(),
                        Ok(None) => {
                            return Answer::Reply(
                                Reply::text(format!(
                                    "<@{u}> is not linked to a person in Quartermaster (no one has that Discord id)."
                                )),
                                Some(caller),
                            );
                        }
                        Err(e) => {
                            warn!(error = %e, "cannot resolve a user option");
                            return Answer::Reply(
                                Reply::text("Something went wrong on our side. Please try again."),
                                Some(caller),
                            );
                        }
                    }
                }
                other => {
                    return Answer::Reply(
                        Reply::text(format!(
                            "The option `{}` has a type Quartermaster does not take ({:?}).",
                            o.name,
                            other.kind()
                        )),
                        Some(caller),
                    );
                }
            };
            raw.push((o.name.clone(), v));
        }
        let reply = self.service.command(&caller, &c.data.name, raw).await;
        Answer::Reply(reply, Some(caller))
    }

    async fn click(
        &self,
        who: UserId,
        custom_id: &str,
        fields: Option<HashMap<String, String>>,
    ) -> Answer {
        let Some(caller) = self.caller(who).await else {
            return Answer::Reply(Reply::text(UNKNOWN_USER), None);
        };
        match self
            .service
            .click(&caller, custom_id, fields.as_ref())
            .await
        {
            ClickReply::Reply(r) => Answer::Reply(r, Some(caller)),
            ClickReply::Modal {
                custom_id,
                title,
                field,
                label,
            } => Answer::Modal {
                custom_id,
                title,
                field,
                label,
            },
        }
    }

    async fn component(&self, c: ComponentInteraction) -> Answer {
        let who = actor(c.member.as_ref().map(|m| m.user.id), c.user.id);
        self.click(who, &c.data.custom_id, None).await
    }

    async fn modal(&self, m: ModalInteraction) -> Answer {
        let who = actor(m.member.as_ref().map(|m| m.user.id), m.user.id);
        let mut fields = HashMap::new();
        for row in &m.data.components {
            for comp in &row.components {
                if let ActionRowComponent::InputText(t) = comp {
                    fields.insert(t.custom_id.clone(), t.value.clone().unwrap_or_default());
                }
            }
        }
        self.click(who, &m.data.custom_id, Some(fields)).await
    }
}

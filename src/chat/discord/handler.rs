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
    ActionRowComponent, CommandDataOption, CommandDataOptionValue, CommandInteraction,
    ComponentInteraction, GuildId, Interaction, ModalInteraction, UserId,
};
use serenity::http::Http;
use tracing::{Instrument, info_span, warn};

use super::chat::DiscordChat;
use super::{components, content, with_retry};
use crate::core::service::{Caller, ClickReply, Form, Reply, Service};
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
    /// The reply, and who it answers (boxed: a person is large).
    Reply(Reply, Option<Box<Caller>>),
    Modal(Form),
}

impl Answer {
    /// A reply to `caller`, or the modal it is when it carries a form.
    fn of(r: Reply, caller: Option<Box<Caller>>) -> Self {
        match r.form {
            Some(f) => Self::Modal(f),
            None => Self::Reply(r, caller),
        }
    }
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
            Answer::Modal(_) => (
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

/// A form as a modal (response type 9): one action row per field, at most 5; title and
/// labels cut to Discord's 45 characters; style 1 one line, 2 a paragraph.
pub(super) fn modal(form: &Form) -> Value {
    let rows: Vec<Value> = form
        .fields
        .iter()
        .take(5)
        .map(|f| {
            let mut input = json!({
                "type": 4,
                "custom_id": f.id,
                "label": f.label.chars().take(45).collect::<String>(),
                "style": if f.long { 2 } else { 1 },
                "required": f.required,
                "max_length": f.max_len,
            });
            if let Some(v) = &f.value {
                input["value"] = json!(v);
            }
            if let Some(h) = &f.hint {
                input["placeholder"] = json!(h.chars().take(100).collect::<String>());
            }
            json!({ "type": 1, "components": [input] })
        })
        .collect();
    json!({
        "type": 9,
        "data": {
            "custom_id": form.custom_id,
            "title": form.title.chars().take(45).collect::<String>(),
            "components": rows,
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
                    Answer::Modal(form) => (modal(&form), None, "modal"),
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
        // A subcommand (`/mfa enroll`) is named "mfa enroll" and carries its own options.
        let (name, options) = match c.data.options.first().map(|o| (&o.name, &o.value)) {
            Some((sub, CommandDataOptionValue::SubCommand(opts))) => {
                (format!("{} {sub}", c.data.name), opts.as_slice())
            }
            _ => (c.data.name.clone(), c.data.options.as_slice()),
        };
        let mut raw = Vec::new();
        for o in options {
            match self.option_value(&c.data.name, o).await {
                Ok(v) => raw.push((o.name.clone(), v)),
                Err(text) => return Answer::Reply(Reply::text(text), Some(Box::new(caller))),
            }
        }
        let reply = self.service.command(&caller, &name, raw).await;
        Answer::of(reply, Some(Box::new(caller)))
    }

    /// An option's value as the service takes it (a USER option: the person's handle, or
    /// the Discord id for [`ACCOUNT_OPTIONS`]); else the sentence to answer with.
    async fn option_value(&self, command: &str, o: &CommandDataOption) -> Result<String, String> {
        Ok(match &o.value {
            CommandDataOptionValue::String(s) => s.clone(),
            CommandDataOptionValue::Integer(n) => n.to_string(),
            CommandDataOptionValue::Number(n) => n.to_string(),
            CommandDataOptionValue::Boolean(b) => b.to_string(),
            CommandDataOptionValue::Autocomplete { value, .. } => value.clone(),
            CommandDataOptionValue::User(u)
                if ACCOUNT_OPTIONS.contains(&(command, o.name.as_str())) =>
            {
                u.to_string()
            }
            CommandDataOptionValue::User(u) => {
                match self.service.caller_by_discord_id(&u.to_string()).await {
                    Ok(Some(p)) => p.person.handle.to_string(),
                    Ok(None) => {
                        return Err(format!(
                            "<@{u}> is not linked to a person in Quartermaster (no one has that Discord id)."
                        ));
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot resolve a user option");
                        return Err("Something went wrong on our side. Please try again.".into());
                    }
                }
            }
            other => {
                return Err(format!(
                    "The option `{}` has a type Quartermaster does not take ({:?}).",
                    o.name,
                    other.kind()
                ));
            }
        })
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
            ClickReply::Reply(r) => Answer::of(r, Some(Box::new(caller))),
            ClickReply::Form(f) => Answer::Modal(f),
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

#[cfg(test)]
mod tests {
    use super::modal;
    use crate::core::service::{Form, FormField};

    #[test]
    fn a_form_becomes_a_modal_with_one_row_per_field() {
        let mut f = Form::one(
            "v1:req:1:s0:deny",
            "x".repeat(60),
            FormField::reason("Why?"),
        );
        f.fields.push(FormField {
            value: Some("123456".into()),
            ..FormField::code()
        });
        let v = modal(&f);
        assert_eq!(v["type"], 9);
        assert_eq!(v["data"]["custom_id"], "v1:req:1:s0:deny");
        assert_eq!(v["data"]["title"].as_str().unwrap().chars().count(), 45);
        let rows = v["data"]["components"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        let reason = &rows[0]["components"][0];
        assert_eq!(
            (&reason["type"], &reason["custom_id"], &reason["style"]),
            (&4.into(), &"reason".into(), &2.into())
        );
        assert_eq!(
            (&reason["required"], &reason["max_length"]),
            (&true.into(), &500.into())
        );
        assert!(reason.get("value").is_none());
        let code = &rows[1]["components"][0];
        assert_eq!(
            (&code["style"], &code["max_length"]),
            (&1.into(), &8.into())
        );
        assert_eq!(code["value"], "123456");
        assert_eq!(code["label"], "Code from your authenticator app");
        // Discord takes at most 5 rows.
        f.fields = vec![FormField::code(); 7];
        assert_eq!(modal(&f)["data"]["components"].as_array().unwrap().len(), 5);
    }
}

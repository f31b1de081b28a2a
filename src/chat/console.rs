//! The console adapter: the bot in a terminal, interactive or from a script (CONTRACTS §2).
//! It is a second face of the same dispatcher as Discord — same commands, same buttons, same
//! authorisation — never a shortcut.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;

use crate::core::model::{Handle, Span};
use crate::core::ports::{
    Button, ButtonLabel, Chat, ChatError, ManualClock, Message, MessageKey, Recipient,
};
use crate::core::service::{Caller, ClickReply, Form, Reply, Service};
use crate::engine::Engine;

mod transcript;

pub use transcript::{Shown, print_human};

/// What the console does with each message as it is sent.
type Sink = Box<dyn Fn(&Shown) + Send + Sync>;

/// The console's chat port: keeps every message (so buttons can be clicked later) and prints
/// them as they come.
pub struct ConsoleChat {
    log: Mutex<Vec<Shown>>,
    sink: Sink,
}

impl ConsoleChat {
    /// A chat that hands each message to `sink`.
    pub fn new(sink: Sink) -> Self {
        Self {
            log: Mutex::new(Vec::new()),
            sink,
        }
    }

    /// Prints nothing; keeps the transcript (for tests).
    pub fn silent() -> Self {
        Self::new(Box::new(|_| {}))
    }

    /// Every message so far.
    pub fn transcript(&self) -> Vec<Shown> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Shown>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, mut m: Shown) {
        let shown = {
            let mut log = self.lock();
            m.seq = log.len() as u64 + 1;
            log.push(m.clone());
            m
        };
        (self.sink)(&shown);
    }

    fn record(
        &self,
        to: Option<&Handle>,
        place: String,
        text: String,
        buttons: Vec<Button>,
        key: Option<MessageKey>,
    ) {
        self.push(Shown {
            seq: 0,
            to: to.map(|h| h.to_string()),
            place,
            kind: "new",
            edits: None,
            text,
            buttons: buttons.iter().map(Button::text).collect(),
            form: None,
            clickable: buttons,
            key,
        });
    }

    /// Records a form `to` is asked to fill.
    pub fn form(&self, to: &Handle, form: Form) {
        self.push(Shown {
            seq: 0,
            to: Some(to.to_string()),
            place: "reply".into(),
            kind: "form",
            edits: None,
            text: String::new(),
            buttons: Vec::new(),
            form: Some(form),
            clickable: Vec::new(),
            key: None,
        });
    }

    /// Records a reply to the person who typed or clicked.
    pub fn reply(&self, to: &Handle, r: Reply) {
        self.record(Some(to), "reply".into(), r.text, r.buttons, r.key);
    }

    /// The button labelled `label` on message `seq`, or on the newest message `who` received
    /// that still shows one: its whole text (`Revoke · Figma`, any case), or a prefix of it
    /// that no other button on that message shares.
    pub fn find_button(&self, who: &Handle, label: &str, seq: Option<u64>) -> Option<String> {
        let log = self.lock();
        // A message's current buttons are those of its latest edit.
        let current = |m: &Shown| -> Vec<Button> {
            log.iter()
                .rev()
                .find(|e| e.edits == Some(m.seq))
                .map_or_else(|| m.clickable.clone(), |e| e.clickable.clone())
        };
        let wanted = label.trim().to_lowercase();
        let pick = |bs: Vec<Button>| -> Option<Button> {
            let texts: Vec<String> = bs.iter().map(|b| b.text().to_lowercase()).collect();
            if let Some(i) = texts.iter().position(|t| *t == wanted) {
                return bs.into_iter().nth(i);
            }
            let mut hits = texts
                .iter()
                .enumerate()
                .filter(|(_, t)| t.starts_with(&wanted));
            match (hits.next(), hits.next()) {
                (Some((i, _)), None) => bs.into_iter().nth(i),
                _ => None,
            }
        };
        log.iter()
            .rev()
            .filter(|m| m.kind == "new" && m.to.as_deref() == Some(who.as_str()))
            .filter(|m| seq.is_none_or(|s| m.seq == s))
            .find_map(|m| pick(current(m)))
            .map(|b| b.target.to_string())
    }
}

#[async_trait]
impl Chat for ConsoleChat {
    async fn send(&self, msg: Message) -> Result<(), ChatError> {
        let (to, place) = match &msg.to {
            Recipient::Person(h) => (Some(h), "dm".to_owned()),
            Recipient::Channel(c) => (None, format!("channel:{c}")),
        };
        self.record(to, place, msg.text, msg.buttons, msg.key);
        Ok(())
    }

    async fn edit(
        &self,
        key: &MessageKey,
        text: &str,
        buttons: &[Button],
    ) -> Result<(), ChatError> {
        let originals: Vec<Shown> = self
            .lock()
            .iter()
            .filter(|m| m.kind == "new" && m.key.as_ref() == Some(key))
            .cloned()
            .collect();
        for m in originals {
            self.push(Shown {
                seq: 0,
                to: m.to.clone(),
                place: m.place.clone(),
                kind: "edit",
                edits: Some(m.seq),
                text: text.to_owned(),
                buttons: buttons.iter().map(Button::text).collect(),
                form: None,
                clickable: buttons.to_vec(),
                key: m.key,
            });
        }
        Ok(())
    }
}

/// A console line the console itself could not carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// Not carried out; the script goes on.
    Soft(String),
    /// Malformed; a script stops with exit 2.
    Malformed(String),
}

/// The console session: who is typing, the service, the engine and the clock.
pub struct Console {
    service: Arc<Service>,
    engine: Engine,
    chat: Arc<ConsoleChat>,
    clock: Arc<ManualClock>,
    /// The person typing lines without a `handle:` prefix.
    pub current: Handle,
    /// When following real time: the instant the clock last caught up with it.
    real_time: Option<Instant>,
    /// What the console itself has to say (`:advance`, `:help`), not yet printed.
    notes: Vec<String>,
    /// Each person's form waiting for `:submit` (the newest one a click or command opened).
    forms: HashMap<Handle, Form>,
}

/// What `:help` says before the command list.
pub const CONSOLE_HELP: &str = "Type what a person would type into chat, one line at a time:
  /COMMAND option:value option:\"two words\"   a slash command (/help COMMAND shows its options)
  :click LABEL [#N] [field:value …]          press a button on your newest message showing it,
                                             or on message #N; quote labels with spaces
                                             (:click \"Revoke now\"); the fields fill the form
                                             it opens at once (:click Deny reason:\"…\")
  :submit field:value …                      submit the form a click or command showed you
  :advance 8h                                move the clock forward and run what became due
  :as HANDLE                                 type as someone else from now on
  HANDLE: LINE                               type one line as someone else
  :help [COMMAND]                            this help, or one command's options
Up and Down recall earlier lines; Ctrl-C clears the line; Ctrl-D quits.";

/// "a" or "an" before a word, by its first letter.
fn article(word: &str) -> &'static str {
    if word.starts_with(['A', 'E', 'I', 'O', 'U', 'a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// An error line as a sentence: capital first letter, final full stop.
pub fn sentence(e: &str) -> String {
    let mut chars = e.trim().chars();
    let mut out: String = match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '?', '!']) {
        out.push('.');
    }
    out
}

/// Splits `key:value` / `key:"quoted value"` fields of a `:click` line.
fn click_fields(words: &str) -> Result<(Option<u64>, HashMap<String, String>), String> {
    let mut seq = None;
    let mut fields = HashMap::new();
    let mut rest = words.trim();
    while !rest.is_empty() {
        if let Some(n) = rest.strip_prefix('#') {
            let end = n.find(char::is_whitespace).unwrap_or(n.len());
            seq = Some(
                n[..end]
                    .parse()
                    .map_err(|_| format!("\"#{}\" is not a message number", &n[..end]))?,
            );
            rest = n[end..].trim_start();
            continue;
        }
        let Some(colon) = rest.find(':') else {
            return Err(format!("\"{rest}\": write form fields as name:value"));
        };
        let key = rest[..colon].trim().to_owned();
        let after = &rest[colon + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => out.push(c),
                }
            }
            let end = end.ok_or_else(|| {
                format!("the value of `{key}` opens a quote that is never closed")
            })?;
            (out, &q[end..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        fields.insert(key, value);
        rest = next.trim_start();
    }
    Ok((seq, fields))
}

impl Console {
    /// A console over a service whose chat port is `chat` and whose clock is `clock`.
    pub fn new(
        service: Arc<Service>,
        engine: Engine,
        chat: Arc<ConsoleChat>,
        clock: Arc<ManualClock>,
        current: Handle,
    ) -> Self {
        Self {
            service,
            engine,
            chat,
            clock,
            current,
            real_time: None,
            notes: Vec::new(),
            forms: HashMap::new(),
        }
    }

    /// Makes the clock move with real time between lines (on top of `:advance`), as it does
    /// when no `--now` fixes it.
    pub fn follow_real_time(&mut self) {
        self.real_time = Some(Instant::now());
    }

    /// What the console itself said since the last call (`:advance`'s outcome, `:help`).
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// Whether `h` is a person the console can type as.
    pub async fn knows(&self, h: &Handle) -> Result<(), String> {
        self.caller(h).await.map(|_| ()).map_err(|e| match e {
            LineError::Soft(e) | LineError::Malformed(e) => e,
        })
    }

    /// The chat transcript.
    pub fn chat(&self) -> &ConsoleChat {
        &self.chat
    }

    async fn caller(&self, h: &Handle) -> Result<Caller, LineError> {
        match self.service.caller_by_handle(h).await {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err(LineError::Soft(format!(
                "there is nobody with the handle \"{h}\""
            ))),
            Err(e) => Err(LineError::Soft(format!("the database failed: {e}"))),
        }
    }

    /// Runs queued connector actions until none is due.
    async fn settle(&self) -> Result<(), LineError> {
        let drained = |r: Result<_, _>| {
            r.map(|_| ())
                .map_err(|e| LineError::Soft(format!("provisioning failed: {e}")))
        };
        drained(self.engine.drain().await)?;
        // A reconcile asked for (`/drift`) or due runs here, and so does what it queued.
        if self.engine.reconcile_pending().await > 0 {
            drained(self.engine.drain().await)?;
        }
        Ok(())
    }

    /// Carries out one line; its effects (connector actions included) finish before it returns.
    pub async fn line(&mut self, raw: &str) -> Result<(), LineError> {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        if let Some(since) = self.real_time.as_mut() {
            let now = Instant::now();
            self.clock
                .advance(Span::from_std(now.duration_since(*since)));
            *since = now;
        }
        if let Some(rest) = line.strip_prefix(":help") {
            return self.help(rest.trim());
        }
        if let Some(rest) = line.strip_prefix(":advance") {
            return self.advance(rest.trim()).await;
        }
        if let Some(rest) = line.strip_prefix(":as") {
            let h = Handle::parse(rest.trim())
                .map_err(|e| LineError::Malformed(format!(":as: {e}")))?;
            self.caller(&h).await?;
            self.current = h;
            return Ok(());
        }
        let (who, body) = match line.split_once(':') {
            Some((h, body))
                if !h.is_empty()
                    && !h.starts_with(['/', ':'])
                    && !h.contains(char::is_whitespace) =>
            {
                let h = Handle::parse(h).map_err(|e| LineError::Malformed(e.to_string()))?;
                (h, body.trim())
            }
            _ => (self.current.clone(), line),
        };
        let caller = self.caller(&who).await?;
        if body.starts_with('/') {
            return self.command(&who, &caller, body).await;
        }
        if let Some(rest) = body.strip_prefix(":click") {
            return self.click(&who, &caller, rest.trim()).await;
        }
        if let Some(rest) = body.strip_prefix(":submit") {
            return self.submit(&who, &caller, rest.trim()).await;
        }
        Err(LineError::Malformed(format!(
            "\"{line}\" is not a command: write `/command option:value`, `:click LABEL`, `:submit field:value`, `:advance 8h`, `:as HANDLE`, optionally after `handle:`"
        )))
    }

    /// `:help [COMMAND]`: the console's help and every command, or one command's options.
    fn help(&mut self, rest: &str) -> Result<(), LineError> {
        let text = if rest.is_empty() {
            let commands = self.service.commands().help(None);
            format!("{CONSOLE_HELP}\n{}", commands.unwrap_or_default())
        } else {
            self.service
                .commands()
                .help(Some(rest))
                .map_err(|e| LineError::Soft(e.to_string()))?
        };
        self.notes.push(text);
        Ok(())
    }

    /// `:advance SPAN`: moves the clock, then runs what came due until nothing more does.
    async fn advance(&mut self, rest: &str) -> Result<(), LineError> {
        let span = Span::parse(rest).map_err(|e| LineError::Malformed(format!(":advance: {e}")))?;
        self.clock.advance(span);
        let before = self.chat.lock().len();
        let mut due = 0;
        // Timers may enqueue work whose results start more timers: run until quiet.
        for _ in 0..100 {
            let did = self
                .service
                .tick()
                .await
                .map_err(|e| LineError::Soft(format!("timers failed: {e}")))?;
            self.settle().await?;
            due += did;
            if did == 0 {
                break;
            }
        }
        let sent = self.chat.lock().len() - before;
        let now = self.service.org().timezone.show(self.service.clock().now());
        self.notes.push(advance_note(span, &now, due, sent));
        Ok(())
    }

    /// A slash command typed by `who`; the reply goes to them.
    async fn command(
        &mut self,
        who: &Handle,
        caller: &Caller,
        body: &str,
    ) -> Result<(), LineError> {
        // `/help request` reads as `/help command:request`, the way people write it (and
        // `/help mfa confirm` as `/help command:"mfa confirm"`).
        let help_word = body
            .strip_prefix("/help ")
            .map(str::trim)
            .filter(|w| !w.is_empty() && !w.contains([':', '"', '\\']));
        let rewritten = help_word.map(|w| format!("/help command:\"{w}\""));
        let body = rewritten.as_deref().unwrap_or(body);
        let reply = self.service.command_line(caller, body).await;
        self.show(who, caller, ClickReply::Reply(reply), HashMap::new())
            .await
    }

    /// `:click LABEL [#N] [field:value …]`: presses a button on one of `who`'s messages,
    /// filling the form it opens with the fields given. LABEL may be quoted (`"Revoke now"`).
    async fn click(&mut self, who: &Handle, caller: &Caller, rest: &str) -> Result<(), LineError> {
        let (label, fields) = click_label(rest).map_err(LineError::Malformed)?;
        let head = label
            .split(" · ")
            .next()
            .unwrap_or_default()
            .trim()
            .to_lowercase();
        let known = ButtonLabel::ALL
            .iter()
            .any(|b| b.as_str().to_lowercase().starts_with(&head) && !head.is_empty());
        if !known {
            let all: Vec<&str> = ButtonLabel::ALL.iter().map(ButtonLabel::as_str).collect();
            return Err(LineError::Malformed(format!(
                "\"{label}\" is not a button; the buttons are {}",
                all.join(", ")
            )));
        }
        let (seq, fields) = click_fields(fields).map_err(LineError::Malformed)?;
        let Some(custom_id) = self.chat.find_button(who, &label, seq) else {
            return Err(LineError::Soft(format!(
                "{who} has no message with {} {label} button{}",
                article(&label),
                seq.map(|s| format!(" at #{s}")).unwrap_or_default()
            )));
        };
        let answer = self.service.click(caller, &custom_id, None).await;
        self.show(who, caller, answer, fields).await
    }

    /// `:submit field:value …`: submits `who`'s pending form; fields not given keep their
    /// prefilled values. A required field left empty keeps the form pending.
    async fn submit(&mut self, who: &Handle, caller: &Caller, rest: &str) -> Result<(), LineError> {
        let (seq, given) = click_fields(rest).map_err(LineError::Malformed)?;
        if seq.is_some() {
            return Err(LineError::Malformed(
                ":submit takes fields (name:value), not a message number".into(),
            ));
        }
        let Some(form) = self.forms.get(who).cloned() else {
            return Err(LineError::Soft(format!(
                "{who} has no form to submit; a click or a command that needs one shows it first"
            )));
        };
        unknown_field(&form, &given).map_or(Ok(()), |e| Err(LineError::Soft(e)))?;
        let values = form.fill(&given).map_err(|missing| {
            let fields: Vec<String> = missing.iter().map(|f| format!("`{f}`")).collect();
            let example: Vec<String> = missing.iter().map(|f| format!("{f}:\"…\"")).collect();
            LineError::Soft(format!(
                "the form \"{}\" needs {}: write :submit {}",
                form.title,
                fields.join(" and "),
                example.join(" ")
            ))
        })?;
        self.forms.remove(who);
        let answer = self
            .service
            .click(caller, &form.custom_id, Some(&values))
            .await;
        self.show(who, caller, answer, HashMap::new()).await
    }

    /// Shows `who` the answer to their line. A form is filled at once when the line gave
    /// fields (`given`) and every required one; else it is shown, with what was given
    /// filled in, and kept as `who`'s pending form for `:submit`.
    async fn show(
        &mut self,
        who: &Handle,
        caller: &Caller,
        mut answer: ClickReply,
        given: HashMap<String, String>,
    ) -> Result<(), LineError> {
        let mut given = Some(given);
        loop {
            let mut form = match answer {
                ClickReply::Reply(Reply { form: Some(f), .. }) | ClickReply::Form(f) => f,
                ClickReply::Reply(r) => {
                    self.chat.reply(who, r);
                    break;
                }
            };
            let given = given.take().unwrap_or_default();
            let unknown = unknown_field(&form, &given);
            match form.fill(&given) {
                Ok(values) if !given.is_empty() && unknown.is_none() => {
                    if self
                        .forms
                        .get(who)
                        .is_some_and(|f| f.custom_id == form.custom_id)
                    {
                        self.forms.remove(who);
                    }
                    answer = self
                        .service
                        .click(caller, &form.custom_id, Some(&values))
                        .await;
                }
                _ => {
                    for f in &mut form.fields {
                        if let Some(v) = given.get(&f.id).filter(|v| !v.trim().is_empty()) {
                            f.value = Some(v.trim().to_owned());
                        }
                    }
                    self.chat.form(who, form.clone());
                    self.forms.insert(who.clone(), form);
                    if let Some(e) = unknown {
                        return Err(LineError::Soft(e));
                    }
                    break;
                }
            }
        }
        self.settle().await
    }
}

/// The label a `:click` line starts with (quoted when it holds spaces), and the rest.
fn click_label(rest: &str) -> Result<(String, &str), String> {
    match rest.strip_prefix('"') {
        Some(q) => {
            let end = q.find('"').ok_or_else(|| {
                "the button's label opens a quote that is never closed".to_owned()
            })?;
            Ok((q[..end].to_owned(), &q[end + 1..]))
        }
        None => {
            let (label, fields) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            Ok((label.to_owned(), fields))
        }
    }
}

/// The error for a field `given` that `form` does not have, if any.
fn unknown_field(form: &Form, given: &HashMap<String, String>) -> Option<String> {
    let mut keys: Vec<&String> = given.keys().collect();
    keys.sort();
    let bad = keys
        .into_iter()
        .find(|k| !form.fields.iter().any(|f| &f.id == *k))?;
    let ids: Vec<String> = form.fields.iter().map(|f| format!("`{}`", f.id)).collect();
    Some(format!(
        "the form \"{}\" has no field `{bad}`; its fields are {}",
        form.title,
        ids.join(", ")
    ))
}

/// What `:advance` says it did (`at`: the new time, in the organisation's zone).
fn advance_note(span: Span, at: &str, due: usize, sent: usize) -> String {
    if due == 0 && sent == 0 {
        return format!("The clock moved {span} to {at}; nothing was due.");
    }
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    format!(
        "The clock moved {span} to {at}: {} came due and {} went out.",
        plural(due, "timer", "timers"),
        plural(sent, "message", "messages")
    )
}

#[cfg(test)]
mod tests {
    use super::{advance_note, article, click_fields, click_label, sentence};
    use crate::core::model::Span;

    #[test]
    fn advance_says_what_happened_or_that_nothing_was_due() {
        let d = Span::parse("31d").unwrap();
        assert_eq!(
            advance_note(d, "2026-12-26 09:00 UTC", 0, 0),
            "The clock moved 31d to 2026-12-26 09:00 UTC; nothing was due."
        );
        assert_eq!(
            advance_note(d, "2026-12-26 09:00 UTC", 1, 3),
            "The clock moved 31d to 2026-12-26 09:00 UTC: 1 timer came due and 3 messages went out."
        );
    }

    #[test]
    fn errors_read_as_sentences_with_the_right_article() {
        assert_eq!(
            sentence("there is nobody with the handle \"zed\""),
            "There is nobody with the handle \"zed\"."
        );
        assert_eq!(sentence("done."), "Done.");
        assert_eq!(article("Approve"), "an");
        assert_eq!(article("Deny"), "a");
    }

    #[test]
    fn click_fields_parse() {
        let (seq, f) = click_fields(r#"#7 reason:"not needed \"now\"" x:y"#).unwrap();
        assert_eq!(seq, Some(7));
        assert_eq!(f["reason"], "not needed \"now\"");
        assert_eq!(f["x"], "y");
        assert!(click_fields("reason:\"open").is_err());
        assert!(click_fields("bare").is_err());
    }

    #[test]
    fn click_labels_may_be_quoted() {
        assert_eq!(
            click_label(r#""Revoke now" reason:"x""#).unwrap(),
            ("Revoke now".to_owned(), r#" reason:"x""#)
        );
        assert_eq!(
            click_label("Deny reason:x").unwrap(),
            ("Deny".to_owned(), "reason:x")
        );
        assert_eq!(click_label("Approve").unwrap(), ("Approve".to_owned(), ""));
        assert!(click_label(r#""Revoke now"#).is_err());
    }
}

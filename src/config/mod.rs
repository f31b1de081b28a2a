//! Configuration: one TOML file (plus an optional people CSV), read into the core's types.
//!
//! The file is parsed into a [`toml::Table`] first and then walked by hand, so that every
//! problem — unknown keys, wrong types, dangling references, unset secrets — is reported with
//! its key path (`app.figma.owners[0]`), all of them at once, not just the first.
//!
//! Secrets never live in the file: a key ending in `_env` names the environment variable that
//! holds the secret, and `NAME_FILE` may point to a file holding it instead.

pub mod keys;
mod ldap;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use toml::{Table, Value};

use crate::core::model::{
    App, AppName, ApprovalRule, ConnectorName, Department, Email, Handle, Org, Person,
    PersonStatus, Role, RoleName, Span, WorkflowSettings, Zone,
};

/// The example organisation (`examples/acme.toml`), built into the binary.
pub const EXAMPLE_TOML: &str = include_str!("../../examples/acme.toml");

// ============================================================================= public types

/// A loaded, fully validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The organisation: IT admins, workflow timers, catalog, roles, departments.
    pub org: Org,
    /// People from `[[person]]` and, when set, from `people_file` (file first, then CSV).
    pub people: Vec<Person>,
    /// The `[[connector]]`s, in file order.
    pub connectors: Vec<ConnectorConfig>,
    /// `[database] url`, when given (callers apply the default and `--db`).
    pub database_url: Option<String>,
    /// `[discord]`; `None` means Discord is off.
    pub discord: Option<DiscordConfig>,
    /// `[http]`, when given.
    pub http: Option<HttpConfig>,
    /// `[hr]`, when given (the HR feed's shared secret).
    pub hr: Option<HrConfig>,
    /// `[audit] key_env`: the key that seals the audit chain's head, when configured.
    pub audit_key: Option<SecretString>,
    /// `[audit] anchor_file`, resolved against `base_dir`: where every seal is also appended,
    /// outside the database.
    pub audit_anchor_file: Option<PathBuf>,
    /// What is valid but unsafe (a `*_FILE` secret file that other users can read), with key
    /// paths; `check` and every verb print them.
    pub warnings: Vec<Problem>,
    /// `[organization] people_file`, resolved against `base_dir`.
    pub people_file: Option<PathBuf>,
    /// The folder relative paths are resolved against: the config file's folder, or the
    /// working folder for the built-in example.
    pub base_dir: PathBuf,
}

impl Config {
    /// The connector with that name.
    pub fn connector(&self, name: &ConnectorName) -> Option<&ConnectorConfig> {
        self.connectors.iter().find(|c| &c.name == name)
    }
    /// The person with that handle, among those configured in the file.
    pub fn person(&self, handle: &Handle) -> Option<&Person> {
        self.people.iter().find(|p| &p.handle == handle)
    }
}

/// One `[[connector]]`.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// Its name, which apps refer to.
    pub name: ConnectorName,
    /// Its kind and the kind's settings.
    pub kind: ConnectorKind,
    /// How hard the engine may drive it (keys common to every kind).
    pub limits: ConnectorLimits,
}

/// Keys every `[[connector]]` may carry: how the engine paces it, and how long a call may take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectorLimits {
    /// `max_concurrency` (default 4): actions run at once against this target.
    pub max_concurrency: usize,
    /// `rate_per_second` (optional): at most this many actions start per second.
    pub rate_per_second: Option<f64>,
    /// `timeout` (default `30s`): how long one HTTP call may take.
    pub timeout: std::time::Duration,
    /// `lease` (default `5s`): how long a worker holds an action before another may take it
    /// over (after a crash); renewed every third of it while the action runs.
    pub lease: std::time::Duration,
}

impl Default for ConnectorLimits {
    fn default() -> Self {
        Self {
            max_concurrency: 4,
            rate_per_second: None,
            timeout: std::time::Duration::from_secs(30),
            lease: crate::engine::LEASE,
        }
    }
}

/// A connector's kind with its settings (secrets already resolved from the environment).
#[derive(Debug, Clone)]
pub enum ConnectorKind {
    /// The built-in sandbox directory (accounts and groups in Quartermaster's own database).
    Directory,
    /// A task posted to the IT admins, completed with a Done button.
    Manual,
    /// A SCIM 2.0 service provider.
    Scim {
        /// Base URL, e.g. `http://127.0.0.1:18080/acme/v2`.
        base_url: String,
        /// Bearer token (from `token_env`).
        token: SecretString,
        /// `page_size` (default 100): the `count` asked for when listing.
        page_size: usize,
    },
    /// An LDAP directory (all its settings, preset defaults filled in).
    Ldap(Box<crate::connectors::ldap::LdapSettings>),
    /// An HTTP webhook, signed with a shared secret.
    Webhook {
        /// Where to send actions.
        url: String,
        /// Signing secret (from `secret_env`).
        secret: SecretString,
        /// HTTP method, upper case (default `POST`).
        method: String,
        /// `body`: JSON body template (default: every field of the action as JSON).
        body: Option<String>,
        /// `success`: the HTTP statuses that mean done (default: any 2xx).
        success: Vec<u16>,
    },
}

impl ConnectorKind {
    /// The kind as written in the file: `directory`, `manual`, `scim`, `ldap`, `webhook`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Directory => "directory",
            Self::Manual => "manual",
            Self::Scim { .. } => "scim",
            Self::Ldap { .. } => "ldap",
            Self::Webhook { .. } => "webhook",
        }
    }
}

/// How Discord reaches Quartermaster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscordMode {
    /// A gateway (websocket) connection.
    Gateway,
    /// Discord POSTs interactions to `/discord/interactions`.
    Interactions,
}

/// `[discord]`.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    /// Gateway or interactions endpoint.
    pub mode: DiscordMode,
    /// The application's id (a snowflake).
    pub application_id: String,
    /// Hex Ed25519 public key; present whenever `mode` is `Interactions`.
    pub public_key: Option<String>,
    /// The bot token (from `token_env`).
    pub token: SecretString,
    /// Send REST calls to this Discord API proxy instead of Discord.
    pub api_base: Option<String>,
    /// Also post approval prompts to this channel.
    pub approvals_channel: Option<String>,
    /// Guild ids where the bot answers (empty: any guild). DMs are always answered: the
    /// caller must still be a linked person.
    pub guilds: Vec<u64>,
}

/// `[http]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
}

/// `[hr]`.
#[derive(Debug, Clone)]
pub struct HrConfig {
    /// The HMAC secret the HR feed signs with (from `secret_env`).
    pub secret: SecretString,
}

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: a key path such as `app.figma.owners[0]`, `people.csv:4.email`, or
    /// `line 3, column 7` for a TOML syntax error.
    pub path: String,
    /// What is wrong, for people. Never holds a secret.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a configuration (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<Problem>);

impl fmt::Display for ConfigErrors {
    /// One line per problem: `path: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// One data row of a people CSV.
#[derive(Debug, Clone)]
pub struct PeopleRow {
    /// Line number in the file (1 is the header), where the row starts.
    pub line: usize,
    /// The person, or what is wrong with the row (references such as `manager` and `role`
    /// are not checked here).
    pub result: Result<Person, Vec<Problem>>,
}

// ============================================================================= entry points

/// Loads the configuration file at `path`, or the built-in example when `path` is `None`
/// (then `base_dir` is the working folder). Secrets come from the process environment.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
    let env = |k: &str| std::env::var(k).ok();
    match path {
        None => {
            let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            parse(EXAMPLE_TOML, &base, &env)
        }
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                ConfigErrors(vec![Problem {
                    path: p.display().to_string(),
                    message: format!("cannot read the configuration file: {e}"),
                }])
            })?;
            let base = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let base = std::path::absolute(&base).unwrap_or(base);
            parse(&text, &base, &env)
        }
    }
}

/// Parses and validates a configuration. `base_dir` resolves relative paths (`people_file`);
/// `env` looks up environment variables (secrets), so tests can inject them.
pub fn parse(
    text: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let root: Table = match text.parse() {
        Ok(t) => t,
        Err(e) => return Err(ConfigErrors(vec![syntax_problem(text, &e)])),
    };
    let mut cx = Cx {
        problems: Vec::new(),
        warnings: Vec::new(),
        refs: Vec::new(),
        env,
    };
    let out = Walker::new(&mut cx, base_dir).walk(&root);
    match out {
        Some(cfg) if cx.problems.is_empty() => Ok(cfg),
        _ => {
            if cx.problems.is_empty() {
                cx.err("", "the configuration is not valid");
            }
            Err(ConfigErrors(cx.problems))
        }
    }
}

/// The closest candidate to a misspelt `word`, if one is close enough to suggest
/// (small edit distance, or a high Jaro-Winkler similarity for longer words).
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let w = word.to_lowercase();
    let wlen = w.chars().count();
    let mut best: Option<(&'a str, usize, f64)> = None;
    for c in candidates {
        if c == word {
            continue;
        }
        let cl = c.to_lowercase();
        let d = strsim::osa_distance(&w, &cl);
        let jw = strsim::jaro_winkler(&w, &cl);
        let len = wlen.max(cl.chars().count());
        let allowed = if len <= 4 { 1 } else { 2 };
        let close = d <= allowed || (wlen >= 4 && jw >= 0.9);
        if !close {
            continue;
        }
        let better = match best {
            None => true,
            Some((_, bd, bjw)) => d < bd || (d == bd && jw > bjw),
        };
        if better {
            best = Some((c, d, jw));
        }
    }
    best.map(|(c, _, _)| c)
}

/// Reads a people CSV (header row of person keys: `handle,name,email,department,role,manager,
/// discord_id,timezone`; `handle`, `name`, `email` and `role` are required columns). `source` names the
/// file in problem paths (`people.csv:4.email`). A header problem fails the whole file; a bad
/// row fails only itself.
pub fn parse_people_csv(text: &str, source: &str) -> Result<Vec<PeopleRow>, ConfigErrors> {
    let records = csv_records(text).map_err(|(line, msg)| {
        ConfigErrors(vec![Problem {
            path: format!("{source}:{line}"),
            message: msg,
        }])
    })?;
    let mut it = records.into_iter();
    let Some((hline, header)) = it.next() else {
        return Err(ConfigErrors(vec![Problem {
            path: source.to_owned(),
            message: "the file is empty; it needs a header row naming its columns".into(),
        }]));
    };
    let mut problems = Vec::new();
    let person_keys = keys::keys("person");
    let mut columns: Vec<Option<&'static str>> = Vec::new();
    for h in &header {
        let h = h.trim();
        match person_keys.iter().find(|k| **k == h) {
            Some(k) => {
                if columns.contains(&Some(*k)) {
                    problems.push(Problem {
                        path: format!("{source}:{hline}"),
                        message: format!("column \"{h}\" appears twice"),
                    });
                }
                columns.push(Some(*k));
            }
            None => {
                problems.push(Problem {
                    path: format!("{source}:{hline}"),
                    message: format!("unknown column \"{h}\"{}", suggest_or_list(h, &person_keys)),
                });
                columns.push(None);
            }
        }
    }
    for req in ["handle", "name", "email", "role"] {
        if !columns.contains(&Some(req)) {
            problems.push(Problem {
                path: format!("{source}:{hline}"),
                message: format!("the header has no \"{req}\" column, which is required"),
            });
        }
    }
    if !problems.is_empty() {
        return Err(ConfigErrors(problems));
    }
    let mut rows = Vec::new();
    for (line, fields) in it {
        let prefix = format!("{source}:{line}");
        if fields.len() != columns.len() {
            rows.push(PeopleRow {
                line,
                result: Err(vec![Problem {
                    path: prefix,
                    message: format!(
                        "expected {} fields, as in the header, but found {}",
                        columns.len(),
                        fields.len()
                    ),
                }]),
            });
            continue;
        }
        let map: HashMap<&str, String> = columns
            .iter()
            .zip(fields)
            .filter_map(|(c, v)| c.map(|c| (c, v.trim().to_owned())))
            .collect();
        let mut cx = Cx {
            problems: Vec::new(),
            warnings: Vec::new(),
            refs: Vec::new(),
            env: &no_env,
        };
        let result = match person_from_fields(&mut cx, &prefix, &map) {
            Some(p) if cx.problems.is_empty() => Ok(p),
            _ => Err(cx.problems),
        };
        rows.push(PeopleRow { line, result });
    }
    Ok(rows)
}

// ============================================================================= internals

const CONNECTOR_KINDS: &[&str] = &["directory", "manual", "scim", "ldap", "webhook"];
/// Keys any `[[connector]]` may carry, read before the kind's own keys.
const COMMON_CONNECTOR_KEYS: &[&str] = &["max_concurrency", "rate_per_second", "timeout", "lease"];
const APPROVAL_KEYWORDS: &[&str] = &["manager", "owner", "it-admin"];
const WEBHOOK_METHODS: &[&str] = &["POST", "PUT", "PATCH", "GET", "DELETE"];

/// What a reference points at, checked once every record is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefKind {
    Person,
    App,
    Role,
    Connector,
    /// A handle in `approvals` (suggestions include the step keywords).
    Approver,
}

struct Ref {
    /// How many problems had been found when the reference was read, so that its problem
    /// is listed among its neighbours.
    at: usize,
    path: String,
    kind: RefKind,
    name: String,
}

struct Cx<'e> {
    problems: Vec<Problem>,
    /// Not errors, but worth fixing (a secret file others can read).
    warnings: Vec<Problem>,
    refs: Vec<Ref>,
    env: &'e dyn Fn(&str) -> Option<String>,
}

impl Cx<'_> {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }
    fn refer(&mut self, path: String, kind: RefKind, name: &str) {
        self.refs.push(Ref {
            at: self.problems.len(),
            path,
            kind,
            name: name.to_owned(),
        });
    }

    /// Resolves the secret whose environment variable `var` names (or `var_FILE`).
    fn secret(&mut self, path: &str, var: &str) -> Option<SecretString> {
        let set = |v: Option<String>| v.filter(|s| !s.is_empty());
        let file_var = format!("{var}_FILE");
        let direct = set((self.env)(var));
        let file = set((self.env)(&file_var));
        match (direct, file) {
            (Some(_), Some(_)) => {
                self.err(
                    path,
                    format!("both {var} and {file_var} are set; set only one of them"),
                );
                None
            }
            (Some(v), None) => Some(SecretString::from(v)),
            (None, Some(f)) => match std::fs::read_to_string(&f) {
                Ok(mut s) => {
                    #[cfg(unix)]
                    if let Ok(m) = std::fs::metadata(&f) {
                        use std::os::unix::fs::PermissionsExt;
                        let mode = m.permissions().mode() & 0o777;
                        if mode & 0o007 != 0 {
                            self.warnings.push(Problem {
                                path: path.to_owned(),
                                message: format!(
                                    "the secret file {file_var} points to ({f}) can be read by \
                                     other users (mode {mode:04o}): chmod o-rwx it (0600 or 0640)"
                                ),
                            });
                        }
                    }
                    if s.ends_with('\n') {
                        s.pop();
                        if s.ends_with('\r') {
                            s.pop();
                        }
                    }
                    if s.is_empty() {
                        self.err(
                            path,
                            format!("the file {file_var} points to ({f}) is empty"),
                        );
                        None
                    } else {
                        Some(SecretString::from(s))
                    }
                }
                Err(e) => {
                    self.err(
                        path,
                        format!("cannot read the file {file_var} points to ({f}): {e}"),
                    );
                    None
                }
            },
            (None, None) => {
                self.err(
                    path,
                    format!(
                        "environment variable {var} is not set (set it, or {file_var} to a file holding it)"
                    ),
                );
                None
            }
        }
    }
}

/// A key path segment: bare when TOML would allow it bare, quoted otherwise.
fn seg(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        seg(key)
    } else {
        format!("{path}.{}", seg(key))
    }
}

fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match did_you_mean(word, candidates) {
        Some(s) => format!(" — did you mean \"{s}\"?"),
        None => String::new(),
    }
}

fn suggest_or_list(word: &str, known: &[&str]) -> String {
    match did_you_mean(word, known.iter().copied()) {
        Some(s) => format!(" — did you mean \"{s}\"?"),
        None => format!(" (known: {})", known.join(", ")),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(x) => format!("the number {x}"),
        Value::Boolean(b) => format!("{b}"),
        Value::Datetime(_) => "a date-time".into(),
        Value::Array(_) => "an array".into(),
        Value::Table(_) => "a table".into(),
    }
}

fn expected(what: &str, v: &Value) -> String {
    format!("expected {what}, found {}", describe(v))
}

fn syntax_problem(text: &str, e: &toml::de::Error) -> Problem {
    let msg = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let path = match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {col}")
        }
        None => "toml".into(),
    };
    Problem {
        path,
        message: format!("TOML syntax error: {msg}"),
    }
}

/// An optional positive integer: `None` when absent, `Some(None)` when wrong (reported).
fn positive_int(cx: &mut Cx, rec: &Rec, key: &str) -> Option<Option<usize>> {
    match rec.t.get(key)? {
        Value::Integer(i) if *i > 0 => Some(usize::try_from(*i).ok()),
        v => {
            cx.err(rec.at(key), expected("a positive integer", v));
            Some(None)
        }
    }
}

/// `max_concurrency`, `rate_per_second` and `timeout` of a `[[connector]]`.
fn connector_limits(cx: &mut Cx, rec: &Rec) -> Option<ConnectorLimits> {
    let mut l = ConnectorLimits::default();
    let mut ok = true;
    match positive_int(cx, rec, "max_concurrency") {
        None => {}
        Some(Some(n)) => l.max_concurrency = n,
        Some(None) => ok = false,
    }
    match rec.t.get("rate_per_second") {
        None => {}
        Some(Value::Integer(i)) if *i > 0 => l.rate_per_second = Some(*i as f64),
        Some(Value::Float(x)) if *x > 0.0 && x.is_finite() => l.rate_per_second = Some(*x),
        Some(v) => {
            cx.err(rec.at("rate_per_second"), expected("a positive number", v));
            ok = false;
        }
    }
    if rec.has("timeout") {
        match rec.span(cx, "timeout") {
            Some(s) if s.secs() > 0 => l.timeout = s.as_std(),
            Some(_) => {
                cx.err(rec.at("timeout"), "must be at least 1s");
                ok = false;
            }
            None => ok = false,
        }
    }
    if rec.has("lease") {
        match rec.span(cx, "lease") {
            Some(s) if s.secs() > 0 => l.lease = s.as_std(),
            Some(_) => {
                cx.err(rec.at("lease"), "must be at least 1s");
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(l)
}

/// A webhook's `success` statuses (default: any 2xx, written as an empty list).
fn webhook_success(cx: &mut Cx, rec: &Rec) -> Option<Vec<u16>> {
    match rec.t.get("success") {
        None => Some(Vec::new()),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            let mut ok = true;
            for (i, v) in items.iter().enumerate() {
                match v {
                    Value::Integer(n) if (100..=599).contains(n) => out.push(*n as u16),
                    v => {
                        cx.err(
                            format!("{}[{i}]", rec.at("success")),
                            expected("an HTTP status (100–599)", v),
                        );
                        ok = false;
                    }
                }
            }
            ok.then_some(out)
        }
        Some(v) => {
            cx.err(rec.at("success"), expected("an array of HTTP statuses", v));
            None
        }
    }
}

/// The last line of a regex error (`error: unclosed group`), without its diagram.
fn regex_error(e: &regex::Error) -> String {
    let s = e.to_string();
    s.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.strip_prefix("error: ").unwrap_or(l).to_owned())
        .unwrap_or(s)
}

/// A table being read, with its key path.
struct Rec<'t> {
    t: &'t Table,
    path: String,
}

impl<'t> Rec<'t> {
    fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }
    fn check_keys(&self, cx: &mut Cx, known: &[&str]) {
        for k in self.t.keys() {
            if !known.contains(&k.as_str()) {
                let msg = match did_you_mean(k, known.iter().copied()) {
                    Some(s) => format!("unknown key — did you mean \"{s}\"?"),
                    None => format!("unknown key (known keys here: {})", known.join(", ")),
                };
                cx.err(self.at(k), msg);
            }
        }
    }
    fn has(&self, key: &str) -> bool {
        self.t.contains_key(key)
    }
    fn string(&self, cx: &mut Cx, key: &str) -> Option<&'t str> {
        match self.t.get(key)? {
            Value::String(s) => Some(s),
            v => {
                cx.err(self.at(key), expected("a string", v));
                None
            }
        }
    }
    fn req_string(&self, cx: &mut Cx, key: &str) -> Option<&'t str> {
        if !self.has(key) {
            cx.err(self.at(key), "required key is missing (a string)");
            return None;
        }
        self.string(cx, key)
    }
    /// A Discord-style id, written as a string or an integer.
    fn id(&self, cx: &mut Cx, key: &str) -> Option<String> {
        match self.t.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Integer(i) if *i >= 0 => Some(i.to_string()),
            v => {
                cx.err(self.at(key), expected("an id (a string of digits)", v));
                None
            }
        }
    }
    fn bool(&self, cx: &mut Cx, key: &str) -> Option<bool> {
        match self.t.get(key)? {
            Value::Boolean(b) => Some(*b),
            v => {
                cx.err(self.at(key), expected("true or false", v));
                None
            }
        }
    }
    /// An array of strings, with each element's path. Bad elements are reported and skipped;
    /// `None` when absent or not an array.
    fn strings(&self, cx: &mut Cx, key: &str) -> Option<Vec<(String, &'t str)>> {
        match self.t.get(key)? {
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    let p = format!("{}[{i}]", self.at(key));
                    match v {
                        Value::String(s) => out.push((p, s.as_str())),
                        v => cx.err(p, expected("a string", v)),
                    }
                }
                Some(out)
            }
            v => {
                cx.err(self.at(key), expected("an array of strings", v));
                None
            }
        }
    }
    fn span(&self, cx: &mut Cx, key: &str) -> Option<Span> {
        let s = self.string(cx, key)?;
        match Span::parse(s) {
            Ok(d) => Some(d),
            Err(e) => {
                cx.err(self.at(key), e.0);
                None
            }
        }
    }
    /// A sub-table `[key]`; `None` when absent (or not a table, which is reported).
    fn table(&self, cx: &mut Cx, key: &str) -> Option<Rec<'t>> {
        match self.t.get(key)? {
            Value::Table(t) => Some(Rec {
                t,
                path: self.at(key),
            }),
            v => {
                cx.err(self.at(key), expected(&format!("a table [{key}]"), v));
                None
            }
        }
    }
    /// The elements of an array of tables `[[key]]`, with their indexes.
    fn records(&self, cx: &mut Cx, key: &str) -> Vec<(usize, &'t Table)> {
        match self.t.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    match v {
                        Value::Table(t) => out.push((i, t)),
                        v => cx.err(
                            format!("{}[{i}]", self.at(key)),
                            expected(&format!("a table ([[{key}]])"), v),
                        ),
                    }
                }
                out
            }
            Some(Value::Table(_)) => {
                cx.err(
                    self.at(key),
                    format!("write [[{key}]] (one per record), not [{key}]"),
                );
                Vec::new()
            }
            Some(v) => {
                cx.err(
                    self.at(key),
                    expected(&format!("an array of tables ([[{key}]])"), v),
                );
                Vec::new()
            }
        }
    }
    /// A secret named by `key` (an `_env` key), resolved from the environment.
    fn secret(&self, cx: &mut Cx, key: &str) -> Option<SecretString> {
        let var = self.req_string(cx, key)?;
        // Never echoed when it may be the secret itself, pasted here by mistake.
        if looks_like_secret(var) {
            cx.err(
                self.at(key),
                format!(
                    "this looks like a secret, not a variable name (not shown): put the secret \
                     in an environment variable, or a file named by VARIABLE_FILE, and write the \
                     variable's name here (e.g. {key} = \"{}\"); if it was a real secret, \
                     rotate it",
                    env_example(&self.path)
                ),
            );
            return None;
        }
        if var.is_empty() || var.contains(['=', '\0']) || var.contains(char::is_whitespace) {
            cx.err(
                self.at(key),
                "this is not a usable environment variable name (it is empty, or holds a \
                 space, = or NUL)",
            );
            return None;
        }
        cx.secret(&self.at(key), var)
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// An example variable name for the section at `path` (`connector.figma` → `QM_FIGMA_SECRET`).
fn env_example(path: &str) -> String {
    let last = path.rsplit('.').next().unwrap_or(path).trim_matches('"');
    let word: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("QM_{word}_SECRET")
}

/// Whether an `*_env` value is more likely a pasted secret than a variable's name: names are
/// words of letters and digits joined by `_` (sometimes `-` or `.`); tokens and keys carry
/// other characters (`/ + = :` or spaces), mix cases and digits, or run long without a break.
fn looks_like_secret(v: &str) -> bool {
    let len = v.chars().count();
    let has = |f: fn(char) -> bool| v.chars().any(f);
    let foreign = has(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')));
    let long_run = v
        .split(['_', '-', '.'])
        .any(|w| w.len() >= 16 && w.chars().any(|c| c.is_ascii_digit()));
    (len >= 8 && foreign)
        || (len >= 16
            && has(|c| c.is_ascii_lowercase())
            && has(|c| c.is_ascii_uppercase())
            && has(|c| c.is_ascii_digit()))
        || long_run
        || (len >= 32 && !v.contains('_'))
}

/// Fields of one person (from the TOML file or a CSV row), by key, already strings.
fn person_from_fields(cx: &mut Cx, prefix: &str, fields: &HashMap<&str, String>) -> Option<Person> {
    let at = |k: &str| join(prefix, k);
    let get = |k: &str| fields.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    let required = |cx: &mut Cx, k: &str| {
        let v = get(k);
        if v.is_none() {
            cx.err(at(k), "required, but missing or empty");
        }
        v
    };
    let handle = required(cx, "handle").and_then(|s| match Handle::parse(s) {
        Ok(h) => Some(h),
        Err(e) => {
            cx.err(at("handle"), e.0);
            None
        }
    });
    let name = required(cx, "name").map(str::to_owned);
    let email = required(cx, "email").and_then(|s| match Email::parse(s) {
        Ok(e) => Some(e),
        Err(e) => {
            cx.err(at("email"), e.0);
            None
        }
    });
    let department = get("department").unwrap_or_default().to_owned();
    let role = required(cx, "role").and_then(|s| match RoleName::parse(s) {
        Ok(r) => {
            cx.refer(at("role"), RefKind::Role, s);
            Some(r)
        }
        Err(e) => {
            cx.err(at("role"), e.0);
            None
        }
    });
    let mut ok = true;
    let manager = match get("manager") {
        None => None,
        Some(s) => match Handle::parse(s) {
            Ok(h) => {
                cx.refer(at("manager"), RefKind::Person, s);
                Some(h)
            }
            Err(e) => {
                cx.err(at("manager"), e.0);
                ok = false;
                None
            }
        },
    };
    let discord_id = match get("discord_id") {
        None => None,
        Some(s) => match crate::core::validate::discord_id(s) {
            Ok(()) => Some(s.to_owned()),
            Err(e) => {
                cx.err(at("discord_id"), e.message);
                ok = false;
                None
            }
        },
    };
    let timezone = match get("timezone") {
        None => None,
        Some(s) => match crate::core::validate::timezone(s) {
            Ok(z) => Some(z),
            Err(e) => {
                cx.err(at("timezone"), e.message);
                ok = false;
                None
            }
        },
    };
    let p = Person {
        handle: handle?,
        name: name?,
        email: email?,
        department,
        role: role?,
        manager,
        discord_id,
        status: PersonStatus::Active,
        timezone,
    };
    // The same rules as the HR feed and /onboard.
    if let Err(e) = crate::core::validate::person(&p) {
        cx.err(at(e.field), e.message);
        ok = false;
    }
    Some(p).filter(|_| ok)
}

/// Walks the parsed TOML, collecting typed values and problems.
struct Walker<'c, 'e> {
    cx: &'c mut Cx<'e>,
    base_dir: &'c Path,
}

/// A record name seen so far, and where it was defined.
type Seen = HashMap<String, String>;

impl<'c, 'e> Walker<'c, 'e> {
    fn new(cx: &'c mut Cx<'e>, base_dir: &'c Path) -> Self {
        Self { cx, base_dir }
    }

    /// Reads a record's name key and picks its path prefix: `kind.NAME` when the name is valid
    /// and new, `kind[i]` otherwise (reporting what is wrong with the name).
    fn name_prefix(
        &mut self,
        kind: &str,
        i: usize,
        t: &Table,
        key: &str,
        check: impl Fn(&str) -> Result<(), String>,
        seen: &mut Seen,
    ) -> (String, Option<String>) {
        let index_path = format!("{kind}[{i}]");
        let rec = Rec {
            t,
            path: index_path.clone(),
        };
        let Some(name) = rec.req_string(self.cx, key) else {
            return (index_path, None);
        };
        if let Err(e) = check(name) {
            self.cx.err(rec.at(key), e);
            return (index_path, None);
        }
        if let Some(first) = seen.get(name) {
            self.cx.err(
                rec.at(key),
                format!("duplicate {key} {name:?}: already used by {first}"),
            );
            return (index_path, None);
        }
        let prefix = join(kind, name);
        seen.insert(name.to_owned(), prefix.clone());
        (prefix, Some(name.to_owned()))
    }

    fn walk(mut self, root: &Table) -> Option<Config> {
        let cx = &mut *self.cx;
        let root = Rec {
            t: root,
            path: String::new(),
        };
        root.check_keys(cx, &keys::top_keys());

        // [organization]
        let mut org_name = None;
        let mut it_admins = Vec::new();
        let mut people_file: Option<(String, PathBuf)> = None;
        let mut timezone = Zone::UTC;
        match root.table(cx, "organization") {
            None => {
                if !root.has("organization") {
                    cx.err(
                        "organization",
                        "required table [organization] is missing (it needs at least a name)",
                    );
                }
            }
            Some(o) => {
                o.check_keys(cx, &keys::keys("organization"));
                match o.req_string(cx, "name").map(str::trim) {
                    Some("") => cx.err(o.at("name"), "must not be empty"),
                    Some(n) => org_name = Some(n.to_owned()),
                    None => {}
                }
                for (p, s) in o.strings(cx, "it_admins").unwrap_or_default() {
                    match Handle::parse(s) {
                        Ok(h) => {
                            cx.refer(p, RefKind::Person, s);
                            it_admins.push(h);
                        }
                        Err(e) => cx.err(p, e.0),
                    }
                }
                if let Some(f) = o.string(cx, "people_file") {
                    if f.trim().is_empty() {
                        cx.err(o.at("people_file"), "must not be empty");
                    } else {
                        people_file = Some((f.to_owned(), self.base_dir.join(f)));
                    }
                }
                if let Some(tz) = o.string(cx, "timezone") {
                    match Zone::parse(tz) {
                        Ok(z) => timezone = z,
                        Err(e) => cx.err(o.at("timezone"), e.0),
                    }
                }
            }
        }

        // [workflow]
        let mut workflow = WorkflowSettings::default();
        if let Some(w) = root.table(cx, "workflow") {
            w.check_keys(cx, &keys::keys("workflow"));
            if let Some(s) = w.span(cx, "remind_after") {
                workflow.remind_after = s;
            }
            if let Some(s) = w.span(cx, "escalate_after") {
                workflow.escalate_after = s;
            }
            if let Some(s) = w.span(cx, "expire_after") {
                workflow.expire_after = s;
            }
            if let Some(s) = w.span(cx, "max_duration") {
                workflow.max_duration = s;
            }
        }

        // [database]
        let mut database_url = None;
        if let Some(d) = root.table(cx, "database") {
            d.check_keys(cx, &keys::keys("database"));
            if let Some(u) = d.string(cx, "url") {
                if u.starts_with("sqlite:")
                    || u.starts_with("postgres://")
                    || u.starts_with("postgresql://")
                {
                    database_url = Some(u.to_owned());
                } else {
                    cx.err(
                        d.at("url"),
                        format!("{u:?} is not a database URL; write sqlite://FILE or postgres://…"),
                    );
                }
            }
        }

        // [discord]
        let discord = root.table(cx, "discord").and_then(|d| {
            d.check_keys(cx, &keys::keys("discord"));
            let mode = match d.string(cx, "mode") {
                None => Some(DiscordMode::Gateway),
                Some("gateway") => Some(DiscordMode::Gateway),
                Some("interactions") => Some(DiscordMode::Interactions),
                Some(m) => {
                    cx.err(
                        d.at("mode"),
                        format!(
                            "unknown mode {m:?}: write \"gateway\" or \"interactions\"{}",
                            suggest(m, ["gateway", "interactions"])
                        ),
                    );
                    None
                }
            };
            let application_id = if d.has("application_id") {
                d.id(cx, "application_id").and_then(|s| {
                    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
                        Some(s)
                    } else {
                        cx.err(
                            d.at("application_id"),
                            format!("{s:?} is not a Discord application id (digits only)"),
                        );
                        None
                    }
                })
            } else {
                cx.err(d.at("application_id"), "required key is missing");
                None
            };
            let mut key_ok = true;
            let public_key = d.string(cx, "public_key").and_then(|k| {
                if k.len() == 64 && k.chars().all(|c| c.is_ascii_hexdigit()) {
                    Some(k.to_ascii_lowercase())
                } else {
                    cx.err(
                        d.at("public_key"),
                        "expected the application's Ed25519 public key: 64 hex digits",
                    );
                    key_ok = false;
                    None
                }
            });
            if mode == Some(DiscordMode::Interactions) && public_key.is_none() && key_ok {
                cx.err(
                    d.at("public_key"),
                    "required when mode = \"interactions\" (Discord's requests are checked with it)",
                );
                key_ok = false;
            }
            let token = d.secret(cx, "token_env");
            let mut urls_ok = true;
            let api_base = d.string(cx, "api_base").and_then(|u| {
                if u.starts_with("http://") || u.starts_with("https://") {
                    Some(u.trim_end_matches('/').to_owned())
                } else {
                    cx.err(
                        d.at("api_base"),
                        format!("{u:?} is not an http:// or https:// URL"),
                    );
                    urls_ok = false;
                    None
                }
            });
            let approvals_channel = d.id(cx, "approvals_channel").and_then(|c| {
                if c.trim().is_empty() {
                    cx.err(d.at("approvals_channel"), "must not be empty");
                    urls_ok = false;
                    None
                } else {
                    Some(c)
                }
            });
            let mut guilds = Vec::new();
            for (at, g) in d.strings(cx, "guilds").unwrap_or_default() {
                match g.parse::<u64>() {
                    Ok(id) if id != 0 && g.chars().all(|c| c.is_ascii_digit()) => guilds.push(id),
                    _ => {
                        cx.err(at, format!("{g:?} is not a Discord guild id (digits only)"));
                        urls_ok = false;
                    }
                }
            }
            if !(key_ok && urls_ok) {
                return None;
            }
            Some(DiscordConfig {
                mode: mode?,
                application_id: application_id?,
                public_key,
                token: token?,
                api_base,
                approvals_channel,
                guilds,
            })
        });

        // [http]
        let http = root.table(cx, "http").and_then(|h| {
            h.check_keys(cx, &keys::keys("http"));
            let l = h.req_string(cx, "listen")?;
            match l.parse::<SocketAddr>() {
                Ok(a) => Some(HttpConfig { listen: a }),
                Err(_) => {
                    cx.err(
                        h.at("listen"),
                        format!("{l:?} is not an address to listen on, such as 127.0.0.1:8080"),
                    );
                    None
                }
            }
        });

        // [hr]
        let hr = root.table(cx, "hr").and_then(|h| {
            h.check_keys(cx, &keys::keys("hr"));
            Some(HrConfig {
                secret: h.secret(cx, "secret_env")?,
            })
        });

        // [audit]
        let audit = root.table(cx, "audit");
        let audit_key = audit.as_ref().and_then(|a| {
            a.check_keys(cx, &keys::keys("audit"));
            // An [audit] with only an anchor file needs no key.
            if a.has("anchor_file") && !a.has("key_env") {
                return None;
            }
            a.secret(cx, "key_env")
        });
        let audit_anchor_file = audit.as_ref().and_then(|a| {
            if a.has("anchor_channel") {
                cx.err(
                    a.at("anchor_channel"),
                    "anchoring to a Discord channel is not available yet; use anchor_file",
                );
            }
            let f = a.string(cx, "anchor_file")?;
            if f.is_empty() {
                cx.err(a.at("anchor_file"), "must not be empty");
                return None;
            }
            Some(self.base_dir.join(f))
        });

        // [[connector]]
        let mut connectors = Vec::new();
        let mut seen_connectors = Seen::new();
        for (i, t) in root.records(self.cx, "connector") {
            let (prefix, name) = self.name_prefix(
                "connector",
                i,
                t,
                "name",
                |s| ConnectorName::parse(s).map(|_| ()).map_err(|e| e.0),
                &mut seen_connectors,
            );
            if let Some(c) = self.connector(Rec { t, path: prefix }, name) {
                connectors.push(c);
            }
        }
        let known_connectors: HashSet<String> = seen_connectors.into_keys().collect();

        // [[person]] and people_file
        let mut people: Vec<(String, Person)> = Vec::new();
        let mut seen_handles = Seen::new();
        for (i, t) in root.records(self.cx, "person") {
            let before = self.cx.problems.len();
            let (prefix, name) = self.name_prefix(
                "person",
                i,
                t,
                "handle",
                |s| Handle::parse(s).map(|_| ()).map_err(|e| e.0),
                &mut seen_handles,
            );
            let rec = Rec { t, path: prefix };
            rec.check_keys(self.cx, &keys::keys("person"));
            let mut fields = HashMap::new();
            for k in &keys::keys("person") {
                let v = if *k == "discord_id" {
                    rec.id(self.cx, k)
                } else {
                    rec.string(self.cx, k).map(str::to_owned)
                };
                if let Some(v) = v {
                    fields.insert(*k, v);
                }
            }
            let p = person_from_fields(self.cx, &rec.path, &fields);
            if let (Some(p), Some(_)) = (p, name)
                && self.cx.problems.len() == before
            {
                people.push((rec.path, p));
            }
        }
        if let Some((shown, path)) = &people_file {
            self.people_csv(shown, path, &mut people, &mut seen_handles);
        }
        let known_handles: HashSet<String> = seen_handles.into_keys().collect();

        // unique emails and discord ids
        let mut emails: HashMap<String, String> = HashMap::new();
        let mut discord_ids: HashMap<String, String> = HashMap::new();
        for (prefix, p) in &people {
            let e = p.email.as_str().to_lowercase();
            if let Some(first) = emails.get(&e) {
                self.cx.err(
                    join(prefix, "email"),
                    format!("email {:?} is already used by {first}", p.email.as_str()),
                );
            } else {
                emails.insert(e, prefix.clone());
            }
            if let Some(d) = &p.discord_id {
                if let Some(first) = discord_ids.get(d) {
                    self.cx.err(
                        join(prefix, "discord_id"),
                        format!("discord_id {d:?} is already used by {first}"),
                    );
                } else {
                    discord_ids.insert(d.clone(), prefix.clone());
                }
            }
        }
        manager_cycles(self.cx, &people);

        // [[role]]
        let mut roles = Vec::new();
        let mut seen_roles = Seen::new();
        for (i, t) in root.records(self.cx, "role") {
            let (prefix, name) = self.name_prefix(
                "role",
                i,
                t,
                "name",
                |s| RoleName::parse(s).map(|_| ()).map_err(|e| e.0),
                &mut seen_roles,
            );
            let rec = Rec { t, path: prefix };
            rec.check_keys(self.cx, &keys::keys("role"));
            let apps = self.app_list(&rec);
            if let (Some(name), Some(apps)) = (name, apps)
                && let Ok(name) = RoleName::parse(&name)
            {
                roles.push(Role { name, apps });
            }
        }
        let known_roles: HashSet<String> = seen_roles.into_keys().collect();

        // [[department]]
        let mut departments = Vec::new();
        let mut seen_departments = Seen::new();
        for (i, t) in root.records(self.cx, "department") {
            let (prefix, name) = self.name_prefix(
                "department",
                i,
                t,
                "name",
                |s| {
                    if s.trim().is_empty() {
                        Err("a department name must not be empty".into())
                    } else {
                        Ok(())
                    }
                },
                &mut seen_departments,
            );
            let rec = Rec { t, path: prefix };
            rec.check_keys(self.cx, &keys::keys("department"));
            let apps = self.app_list(&rec);
            if let (Some(name), Some(apps)) = (name, apps) {
                departments.push(Department { name, apps });
            }
        }

        // [[app]]
        let mut apps = Vec::new();
        let mut seen_apps = Seen::new();
        for (i, t) in root.records(self.cx, "app") {
            let (prefix, name) = self.name_prefix(
                "app",
                i,
                t,
                "name",
                |s| AppName::parse(s).map(|_| ()).map_err(|e| e.0),
                &mut seen_apps,
            );
            if let Some(a) = self.app(Rec { t, path: prefix }, name) {
                apps.push(a);
            }
        }
        let known_apps: HashSet<String> = seen_apps.into_keys().collect();

        // references, now that every name is known
        let refs = std::mem::take(&mut self.cx.refs);
        let mut dangling: Vec<(usize, Problem)> = Vec::new();
        for r in refs {
            let (set, what): (&HashSet<String>, &str) = match r.kind {
                RefKind::Person | RefKind::Approver => (&known_handles, "person with handle"),
                RefKind::App => (&known_apps, "app"),
                RefKind::Role => (&known_roles, "role"),
                RefKind::Connector => (&known_connectors, "connector"),
            };
            if set.contains(&r.name) {
                continue;
            }
            let mut candidates: Vec<&str> = set.iter().map(String::as_str).collect();
            candidates.sort_unstable();
            let extra = if r.kind == RefKind::Approver {
                candidates.extend(APPROVAL_KEYWORDS);
                " (a step is manager, owner, it-admin or a person's handle)"
            } else {
                ""
            };
            let message = format!(
                "no {what} {:?}{extra}{}",
                r.name,
                suggest(&r.name, candidates)
            );
            dangling.push((
                r.at,
                Problem {
                    path: r.path,
                    message,
                },
            ));
        }
        if !dangling.is_empty() {
            // Interleave, so problems read in the order their records were walked.
            let found = std::mem::take(&mut self.cx.problems);
            let mut dangling = dangling.into_iter().peekable();
            for (i, p) in found.into_iter().enumerate() {
                while let Some((_, d)) = dangling.next_if(|(at, _)| *at <= i) {
                    self.cx.problems.push(d);
                }
                self.cx.problems.push(p);
            }
            self.cx.problems.extend(dangling.map(|(_, d)| d));
        }

        if !self.cx.problems.is_empty() {
            return None;
        }
        Some(Config {
            org: Org {
                name: org_name?,
                it_admins,
                workflow,
                apps,
                roles,
                departments,
                timezone,
            },
            people: people.into_iter().map(|(_, p)| p).collect(),
            connectors,
            database_url,
            discord,
            http,
            hr,
            audit_key,
            audit_anchor_file,
            warnings: std::mem::take(&mut self.cx.warnings),
            people_file: people_file.map(|(_, p)| p),
            base_dir: self.base_dir.to_path_buf(),
        })
    }

    /// `apps = [...]` of a role or department (absent means none).
    fn app_list(&mut self, rec: &Rec) -> Option<Vec<AppName>> {
        let mut out = Vec::new();
        let mut ok = true;
        let Some(items) = rec.strings(self.cx, "apps") else {
            return (!rec.has("apps")).then_some(out);
        };
        for (p, s) in items {
            match AppName::parse(s) {
                Ok(a) => {
                    self.cx.refer(p, RefKind::App, s);
                    out.push(a);
                }
                Err(e) => {
                    self.cx.err(p, e.0);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn people_csv(
        &mut self,
        shown: &str,
        path: &Path,
        people: &mut Vec<(String, Person)>,
        seen: &mut Seen,
    ) {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                self.cx.err(
                    "organization.people_file",
                    format!("cannot read {}: {e}", path.display()),
                );
                return;
            }
        };
        let rows = match parse_people_csv(&text, shown) {
            Ok(r) => r,
            Err(ConfigErrors(ps)) => {
                self.cx.problems.extend(ps);
                return;
            }
        };
        for row in rows {
            let prefix = format!("{shown}:{}", row.line);
            match row.result {
                Err(ps) => self.cx.problems.extend(ps),
                Ok(p) => {
                    if let Some(first) = seen.get(p.handle.as_str()) {
                        self.cx.err(
                            join(&prefix, "handle"),
                            format!(
                                "duplicate handle {:?}: already used by {first}",
                                p.handle.as_str()
                            ),
                        );
                        continue;
                    }
                    seen.insert(p.handle.as_str().to_owned(), prefix.clone());
                    self.cx
                        .refer(join(&prefix, "role"), RefKind::Role, p.role.as_str());
                    if let Some(m) = &p.manager {
                        self.cx
                            .refer(join(&prefix, "manager"), RefKind::Person, m.as_str());
                    }
                    people.push((prefix, p));
                }
            }
        }
    }

    fn connector(&mut self, rec: Rec, name: Option<String>) -> Option<ConnectorConfig> {
        let cx = &mut *self.cx;
        let limits = connector_limits(cx, &rec);
        let stripped: Table = rec
            .t
            .iter()
            .filter(|(k, _)| !COMMON_CONNECTOR_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let rec = Rec {
            t: &stripped,
            path: rec.path.clone(),
        };
        let kind = match rec.req_string(cx, "kind") {
            None => {
                rec.check_keys(cx, &keys::all_connector_keys());
                return None;
            }
            Some(k) if CONNECTOR_KINDS.contains(&k) => k,
            Some(k) => {
                cx.err(
                    rec.at("kind"),
                    format!(
                        "unknown connector kind {k:?}{}",
                        suggest_or_list(k, CONNECTOR_KINDS)
                    ),
                );
                rec.check_keys(cx, &keys::all_connector_keys());
                return None;
            }
        };
        let http_url = |cx: &mut Cx, key: &str| {
            let u = rec.req_string(cx, key)?;
            if u.starts_with("http://") || u.starts_with("https://") {
                Some(u.to_owned())
            } else {
                cx.err(
                    rec.at(key),
                    format!("{u:?} is not an http:// or https:// URL"),
                );
                None
            }
        };
        let kind = match kind {
            "directory" => {
                rec.check_keys(cx, &keys::keys("connector"));
                Some(ConnectorKind::Directory)
            }
            "manual" => {
                rec.check_keys(cx, &keys::keys("connector"));
                Some(ConnectorKind::Manual)
            }
            "scim" => {
                rec.check_keys(cx, &keys::keys("connector.scim"));
                let base_url = http_url(cx, "base_url");
                let token = rec.secret(cx, "token_env");
                let page_size = positive_int(cx, &rec, "page_size").unwrap_or(Some(100));
                Some(ConnectorKind::Scim {
                    base_url: base_url?.trim_end_matches('/').to_owned(),
                    token: token?,
                    page_size: page_size?,
                })
            }
            "ldap" => {
                rec.check_keys(cx, &keys::keys("connector.ldap"));
                ldap::settings(cx, &rec, self.base_dir).map(|s| ConnectorKind::Ldap(Box::new(s)))
            }
            _ => {
                rec.check_keys(cx, &keys::keys("connector.webhook"));
                let url = http_url(cx, "url");
                let secret = rec.secret(cx, "secret_env");
                let method = match rec.string(cx, "method") {
                    None => Some("POST".to_owned()),
                    Some(m) if WEBHOOK_METHODS.contains(&m.to_ascii_uppercase().as_str()) => {
                        Some(m.to_ascii_uppercase())
                    }
                    Some(m) => {
                        cx.err(
                            rec.at("method"),
                            format!(
                                "unsupported method {m:?} (use one of {})",
                                WEBHOOK_METHODS.join(", ")
                            ),
                        );
                        None
                    }
                };
                let body = match rec.string(cx, "body") {
                    Some(b)
                        if serde_json::from_str::<serde_json::Value>(
                            &crate::connectors::webhook::fill_json(b, &|_| "x".into()),
                        )
                        .is_err() =>
                    {
                        cx.err(
                            rec.at("body"),
                            "is not JSON once its placeholders are filled in",
                        );
                        None
                    }
                    b => Some(b.map(str::to_owned)),
                };
                let success = webhook_success(cx, &rec);
                Some(ConnectorKind::Webhook {
                    url: url?,
                    secret: secret?,
                    method: method?,
                    body: body?,
                    success: success?,
                })
            }
        };
        Some(ConnectorConfig {
            name: ConnectorName::parse(&name?).ok()?,
            kind: kind?,
            limits: limits?,
        })
    }

    fn app(&mut self, rec: Rec, name: Option<String>) -> Option<App> {
        let cx = &mut *self.cx;
        rec.check_keys(cx, &keys::keys("app"));
        let before = cx.problems.len();
        let name = name.and_then(|n| AppName::parse(&n).ok());
        let display = match rec.string(cx, "display") {
            Some(d) if d.trim().is_empty() => {
                cx.err(rec.at("display"), "must not be empty");
                None
            }
            Some(d) => Some(d.to_owned()),
            None => None,
        };
        let connector =
            rec.req_string(cx, "connector")
                .and_then(|s| match ConnectorName::parse(s) {
                    Ok(c) => {
                        cx.refer(rec.at("connector"), RefKind::Connector, s);
                        Some(c)
                    }
                    Err(e) => {
                        cx.err(rec.at("connector"), e.0);
                        None
                    }
                });
        let entitlement = match rec.string(cx, "entitlement") {
            Some(e) if e.trim().is_empty() => {
                cx.err(rec.at("entitlement"), "must not be empty");
                None
            }
            Some(e) => Some(e.to_owned()),
            None => None,
        };
        let mut owners = Vec::new();
        for (p, s) in rec.strings(cx, "owners").unwrap_or_default() {
            match Handle::parse(s) {
                Ok(h) => {
                    cx.refer(p, RefKind::Person, s);
                    owners.push(h);
                }
                Err(e) => cx.err(p, e.0),
            }
        }
        let requestable = rec.bool(cx, "requestable").unwrap_or(true);
        let mut approvals = Vec::new();
        match rec.strings(cx, "approvals") {
            None if !rec.has("approvals") && requestable => cx.err(
                rec.at("approvals"),
                "required for a requestable app: list the approval steps \
                 (manager, owner, it-admin or a handle), or write [] for auto-approved",
            ),
            None => {}
            Some(items) => {
                for (p, s) in items {
                    match ApprovalRule::parse(s) {
                        Ok(ApprovalRule::Owner) if owners.is_empty() => {
                            // Owners given but unusable were reported already.
                            let reported = match rec.t.get("owners") {
                                None => false,
                                Some(Value::Array(a)) => !a.is_empty(),
                                Some(_) => true,
                            };
                            if !reported {
                                cx.err(p, "an \"owner\" step needs owners, and this app has none");
                            }
                        }
                        Ok(r) => {
                            if let ApprovalRule::Person(h) = &r {
                                cx.refer(p, RefKind::Approver, h.as_str());
                            }
                            approvals.push(r);
                        }
                        Err(e) => cx.err(
                            p,
                            format!(
                                "not an approval step (manager, owner, it-admin or a handle): {}{}",
                                e.0,
                                suggest(s, APPROVAL_KEYWORDS.iter().copied())
                            ),
                        ),
                    }
                }
            }
        }
        let max_duration = rec.span(cx, "max_duration");
        let default_duration = rec.span(cx, "default_duration");
        if let (Some(d), Some(m)) = (default_duration, max_duration)
            && d > m
        {
            cx.err(
                rec.at("default_duration"),
                format!("{d} is longer than max_duration ({m})"),
            );
        }
        let reason_pattern =
            rec.string(cx, "reason_pattern")
                .and_then(|s| match regex::Regex::new(s) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        cx.err(
                            rec.at("reason_pattern"),
                            format!("not a valid regular expression: {}", regex_error(&e)),
                        );
                        None
                    }
                });
        let reason_hint = rec.string(cx, "reason_hint").map(str::to_owned);
        if cx.problems.len() != before {
            return None;
        }
        let name = name?;
        Some(App {
            display: display.unwrap_or_else(|| name.as_str().to_owned()),
            entitlement: entitlement.unwrap_or_else(|| name.as_str().to_owned()),
            name,
            connector: connector?,
            owners,
            approvals,
            max_duration,
            default_duration,
            requestable,
            reason_pattern,
            reason_hint,
        })
    }
}

/// Reports every manager cycle once, at the `manager` key of its first member in file order.
fn manager_cycles(cx: &mut Cx, people: &[(String, Person)]) {
    let index: HashMap<&Handle, usize> = people
        .iter()
        .enumerate()
        .map(|(i, (_, p))| (&p.handle, i))
        .collect();
    for (start, (prefix, p)) in people.iter().enumerate() {
        let mut chain = vec![start];
        let mut cur = p;
        let mut seen = HashSet::from([start]);
        while let Some(m) = &cur.manager {
            let Some(&j) = index.get(m) else { break };
            if j == start {
                if chain.iter().all(|&k| k >= start) {
                    let mut names: Vec<&str> =
                        chain.iter().map(|&k| people[k].1.handle.as_str()).collect();
                    names.push(p.handle.as_str());
                    cx.err(
                        join(prefix, "manager"),
                        format!("manager cycle: {}", names.join(" → ")),
                    );
                }
                break;
            }
            if !seen.insert(j) {
                break;
            }
            chain.push(j);
            cur = &people[j].1;
        }
    }
}

/// A CSV record: the line it starts on, and its fields.
type CsvRecord = (usize, Vec<String>);

/// Splits CSV text into records (RFC 4180 quoting), each with the line it starts on. Blank
/// lines are skipped.
fn csv_records(text: &str) -> Result<Vec<CsvRecord>, (usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1;
    let mut row_line = 1;
    let mut it = text.chars().peekable();
    let finish = |row: &mut Vec<String>, field: &mut String, rows: &mut Vec<_>, at: usize| {
        row.push(std::mem::take(field));
        let r = std::mem::take(row);
        if !(r.len() == 1 && r[0].trim().is_empty()) {
            rows.push((at, r));
        }
    };
    while let Some(c) = it.next() {
        if in_quotes {
            match c {
                '"' if it.peek() == Some(&'"') => {
                    it.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if field.trim().is_empty() => {
                field.clear();
                in_quotes = true;
            }
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if it.peek() == Some(&'\n') => {}
            '\n' => {
                finish(&mut row, &mut field, &mut rows, row_line);
                line += 1;
                row_line = line;
            }
            c => field.push(c),
        }
    }
    if in_quotes {
        return Err((row_line, "a quoted field is never closed".into()));
    }
    if !row.is_empty() || !field.trim().is_empty() {
        finish(&mut row, &mut field, &mut rows, row_line);
    }
    Ok(rows)
}

// ============================================================================= tests

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn example() -> Config {
        match parse(EXAMPLE_TOML, Path::new("."), &no_env) {
            Ok(c) => c,
            Err(e) => panic!("the example does not load:\n{e}"),
        }
    }

    fn errors(text: &str) -> String {
        errors_env(text, &no_env)
    }

    fn errors_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
        match parse(text, Path::new("."), env) {
            Ok(_) => panic!("expected problems, but the config loaded"),
            Err(e) => e.to_string(),
        }
    }

    /// A small valid config to break in tests.
    const BASE: &str = r#"
[organization]
name = "T"
it_admins = ["dana"]

[[person]]
handle = "dana"
name = "Dana"
email = "dana@t.test"
role = "it-admin"

[[person]]
handle = "carol"
name = "Carol"
email = "carol@t.test"
role = "designer"
manager = "dana"

[[role]]
name = "it-admin"
apps = []

[[role]]
name = "designer"
apps = ["figma"]

[[app]]
name = "figma"
connector = "design"
owners = ["carol"]
approvals = ["manager", "owner"]

[[connector]]
name = "design"
kind = "directory"
"#;

    #[test]
    fn base_is_valid() {
        let c = parse(BASE, Path::new("."), &no_env).unwrap();
        let figma = &c.org.apps[0];
        assert_eq!(figma.display, "figma");
        assert_eq!(figma.entitlement, "figma");
        assert!(figma.requestable);
        assert_eq!(c.org.workflow, WorkflowSettings::default());
    }

    #[test]
    fn example_loads() {
        let c = example();
        assert_eq!(c.org.name, "Acme");
        assert_eq!(c.people.len(), 11);
        assert_eq!(c.org.apps.len(), 11);
        assert_eq!(c.org.roles.len(), 9);
        assert!(c.org.departments.is_empty());
        let admins: Vec<&str> = c.org.it_admins.iter().map(Handle::as_str).collect();
        assert_eq!(admins, ["dana", "mia"]);
        assert!(c.people.iter().all(|p| p.status == PersonStatus::Active));
        assert!(c.discord.is_none() && c.database_url.is_none() && c.http.is_none());
        assert_eq!(c.connectors.len(), 2);
        assert!(matches!(c.connectors[0].kind, ConnectorKind::Directory));
        assert!(matches!(c.connectors[1].kind, ConnectorKind::Manual));

        let app = |n: &str| c.org.app(&AppName::parse(n).unwrap()).unwrap();
        assert_eq!(
            app("figma").approvals,
            [ApprovalRule::Manager, ApprovalRule::Owner]
        );
        assert_eq!(app("figma").max_duration, Some(Span::parse("90d").unwrap()));
        let db = app("prod-db");
        assert_eq!(db.display, "Production database");
        assert_eq!(db.approvals, [ApprovalRule::Manager, ApprovalRule::ItAdmin]);
        assert_eq!(db.max_duration, Some(Span::parse("8h").unwrap()));
        assert_eq!(db.default_duration, Some(Span::parse("1h").unwrap()));
        let re = db.reason_pattern.as_ref().unwrap();
        assert!(re.is_match("INC-12"));
        assert!(re.is_match("CHG-7 rotate keys"));
        assert!(!re.is_match("because"));
        assert!(!app("email").requestable);
        assert!(app("jira").requestable);
        assert!(app("notion").approvals.is_empty());
        assert_eq!(app("adobe").connector.as_str(), "manual");
        assert_eq!(app("figma").owners[0].as_str(), "carol");

        // Catalog order (EXAMPLE-ORG.md lists email first).
        let engineer = RoleName::parse("engineer").unwrap();
        let b: Vec<String> = c
            .org
            .birthrights(&engineer, "Engineering")
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(b, ["email", "jira", "postman", "github"]);

        let alice = c.person(&Handle::parse("alice").unwrap()).unwrap();
        assert_eq!(alice.manager.as_ref().unwrap().as_str(), "bob");
        assert_eq!(alice.discord_id.as_deref(), Some("100000000000000004"));
        assert_eq!(alice.department, "Engineering");
        let erin = c.person(&Handle::parse("erin").unwrap()).unwrap();
        assert!(erin.manager.is_none());
    }

    #[test]
    fn load_none_is_the_example() {
        let c = load(None).unwrap();
        assert_eq!(c.people.len(), 11);
    }

    #[test]
    fn load_from_a_file_sets_base_dir() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("qm.toml");
        let csv = "handle,name,email,role,manager\nlena,Lena Roy,lena@t.test,designer,carol\n";
        std::fs::write(dir.path().join("people.csv"), csv).unwrap();
        let text = BASE.replace("name = \"T\"", "name = \"T\"\npeople_file = \"people.csv\"");
        std::fs::write(&cfg, text).unwrap();
        let c = load(Some(&cfg)).unwrap();
        assert_eq!(c.base_dir, std::path::absolute(dir.path()).unwrap());
        assert_eq!(c.people.len(), 3);
        assert_eq!(c.people[2].handle.as_str(), "lena");
        assert_eq!(
            c.people_file.as_deref(),
            Some(dir.path().join("people.csv").as_path())
        );
    }

    #[test]
    fn time_zones_are_iana_names_checked_with_a_suggestion() {
        let c = parse(BASE, Path::new("."), &no_env).unwrap();
        assert_eq!(c.org.timezone, Zone::UTC, "UTC when absent");
        assert!(c.people.iter().all(|p| p.timezone.is_none()));

        let text = BASE
            .replace("name = \"T\"", "name = \"T\"\ntimezone = \"Europe/Berlin\"")
            .replace(
                "handle = \"carol\"",
                "handle = \"carol\"\ntimezone = \"America/Los_Angeles\"",
            );
        let c = parse(&text, Path::new("."), &no_env).unwrap();
        assert_eq!(c.org.timezone.name(), "Europe/Berlin");
        let carol = c.person(&Handle::parse("carol").unwrap()).unwrap();
        assert_eq!(
            carol.timezone.map(|z| z.name()),
            Some("America/Los_Angeles")
        );

        let e = errors(&BASE.replace("name = \"T\"", "name = \"T\"\ntimezone = \"Mars/Olympus\""));
        assert_eq!(
            e,
            "organization.timezone: \"Mars/Olympus\" is not a time zone of the IANA database — \
             write an IANA name such as \"Europe/Berlin\", \"America/Los_Angeles\" or \"UTC\""
        );
        let e = errors(
            &BASE
                .replace("name = \"T\"", "name = \"T\"\ntimezone = \"europe/berlin\"")
                .replace(
                    "handle = \"carol\"",
                    "handle = \"carol\"\ntimezone = \"Amsterdam\"",
                ),
        );
        assert!(
            e.contains(
                "organization.timezone: \"europe/berlin\" is not a time zone of the IANA \
                 database — did you mean \"Europe/Berlin\"?"
            ),
            "{e}"
        );
        assert!(
            e.contains("person.carol.timezone: \"Amsterdam\" is not a time zone of the IANA database — did you mean \"Europe/Amsterdam\"?"),
            "{e}"
        );

        // The people CSV has the same column.
        let dir = tempfile::tempdir().unwrap();
        let csv = "handle,name,email,role,timezone\n\
                   lena,Lena Roy,lena@t.test,designer,Asia/Tokyo\n\
                   max,Max,max@t.test,designer,Tokio\n";
        std::fs::write(dir.path().join("people.csv"), csv).unwrap();
        let text = BASE.replace("name = \"T\"", "name = \"T\"\npeople_file = \"people.csv\"");
        let e = parse(&text, dir.path(), &no_env).unwrap_err().to_string();
        assert_eq!(
            e,
            "people.csv:3.timezone: \"Tokio\" is not a time zone of the IANA database — did you \
             mean \"Asia/Tokyo\"?"
        );
        let rows = parse_people_csv(csv, "p").unwrap();
        assert_eq!(
            rows[0].result.as_ref().unwrap().timezone.map(|z| z.name()),
            Some("Asia/Tokyo")
        );
    }

    #[test]
    fn people_file_problems_have_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "handle,name,email,role,manager\n\
                   lena,Lena Roy,lena@t.test,designr,carol\n\
                   \"max\",\"Max, Jr.\",max@t.test,designer,lena\n\
                   carol,Carol Two,c2@t.test,designer,\n";
        std::fs::write(dir.path().join("people.csv"), csv).unwrap();
        let text = BASE.replace("name = \"T\"", "name = \"T\"\npeople_file = \"people.csv\"");
        let e = parse(&text, dir.path(), &no_env).unwrap_err().to_string();
        assert!(
            e.contains("people.csv:2.role: no role \"designr\" — did you mean \"designer\"?"),
            "{e}"
        );
        assert!(
            e.contains(
                "people.csv:4.handle: duplicate handle \"carol\": already used by person.carol"
            ),
            "{e}"
        );
        assert!(!e.contains("people.csv:3"), "{e}");

        let rows = parse_people_csv(
            "handle,name,email,role\nx,\"A \"\"B\"\"\",x@t.test,r\n",
            "p",
        )
        .unwrap();
        assert_eq!(rows[0].result.as_ref().unwrap().name, "A \"B\"");
        let bad = parse_people_csv("handle,nmae,email,role\n", "p").unwrap_err();
        assert_eq!(
            bad.to_string(),
            "p:1: unknown column \"nmae\" — did you mean \"name\"?\n\
             p:1: the header has no \"name\" column, which is required"
        );
    }

    #[test]
    fn lists_every_problem_with_its_path() {
        let text = BASE
            .replace(
                "owners = [\"carol\"]",
                "owners = [\"carl\"]\nmax_duration = \"soon\"",
            )
            .replace("apps = [\"figma\"]", "apps = [\"figma\", \"figam\"]")
            .replace("manager = \"dana\"", "manager = \"dan\"")
            .replace("connector = \"design\"", "connector = \"desing\"")
            .replace("it_admins = [\"dana\"]", "it_admins = [\"dana\", \"dnaa\"]");
        let e = errors(&text);
        let lines: Vec<&str> = e.lines().collect();
        for want in [
            "app.figma.max_duration: \"soon\" is not a duration; write it like 90m, 8h or 7d",
            "app.figma.owners[0]: no person with handle \"carl\" — did you mean \"carol\"?",
            "role.designer.apps[1]: no app \"figam\" — did you mean \"figma\"?",
            "person.carol.manager: no person with handle \"dan\" — did you mean \"dana\"?",
            "app.figma.connector: no connector \"desing\" — did you mean \"design\"?",
            "organization.it_admins[1]: no person with handle \"dnaa\" — did you mean \"dana\"?",
        ] {
            assert!(lines.contains(&want), "missing {want:?} in:\n{e}");
        }
        assert_eq!(lines.len(), 6, "{e}");
    }

    #[test]
    fn misspelt_role_and_approver() {
        let text = BASE
            .replace("role = \"designer\"", "role = \"desginer\"")
            .replace(
                "approvals = [\"manager\", \"owner\"]",
                "approvals = [\"manger\", \"dnaa\"]",
            );
        let e = errors(&text);
        assert!(
            e.contains("person.carol.role: no role \"desginer\" — did you mean \"designer\"?"),
            "{e}"
        );
        assert!(
            e.contains("app.figma.approvals[0]: no person with handle \"manger\""),
            "{e}"
        );
        assert!(e.contains("did you mean \"manager\"?"), "{e}");
        assert!(
            e.contains("app.figma.approvals[1]: no person with handle \"dnaa\""),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_suggest() {
        let text = BASE
            .replace("owners = ", "ownres = ")
            .replace("[organization]", "[organisation]\n[organization]");
        let e = errors(&text);
        assert!(
            e.contains("app.figma.ownres: unknown key — did you mean \"owners\"?"),
            "{e}"
        );
        assert!(
            e.contains("organisation: unknown key — did you mean \"organization\"?"),
            "{e}"
        );
        // Without owners, the owner step cannot be resolved.
        assert!(
            e.contains("app.figma.approvals[1]: an \"owner\" step needs owners"),
            "{e}"
        );
    }

    #[test]
    fn records_without_a_valid_name_use_their_index() {
        let text = format!(
            "{BASE}\n[[app]]\nname = \"Bad App\"\nconnector = \"design\"\napprovals = []\n\
             [[app]]\nconnector = \"design\"\napprovals = []\n\
             [[app]]\nname = \"figma\"\nconnector = \"design\"\napprovals = []\n"
        );
        let e = errors(&text);
        assert!(
            e.contains("app[1].name: an app name \"Bad App\" may hold only"),
            "{e}"
        );
        assert!(e.contains("app[2].name: required key is missing"), "{e}");
        assert!(
            e.contains("app[3].name: duplicate name \"figma\": already used by app.figma"),
            "{e}"
        );
    }

    #[test]
    fn type_errors_name_the_key() {
        let text = BASE.replace("approvals = [", "requestable = \"no\"\napprovals = [");
        let text = text.replace("owners = [\"carol\"]", "owners = \"carol\"");
        let e = errors(&text);
        assert!(
            e.contains("app.figma.requestable: expected true or false, found the string \"no\""),
            "{e}"
        );
        assert!(
            e.contains(
                "app.figma.owners: expected an array of strings, found the string \"carol\""
            ),
            "{e}"
        );
    }

    #[test]
    fn syntax_error_is_one_problem_with_a_position() {
        let e = parse(
            "[organization]\nname = \"x\nit_admins = []\n",
            Path::new("."),
            &no_env,
        )
        .unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert!(e.0[0].path.starts_with("line 2, column "), "{e}");
    }

    #[test]
    fn duplicates_are_errors() {
        let text = format!(
            "{BASE}\n[[person]]\nhandle = \"erin\"\nname = \"E\"\nemail = \"DANA@t.test\"\nrole = \"it-admin\"\n\
             [[connector]]\nname = \"design\"\nkind = \"manual\"\n"
        );
        let e = errors(&text);
        assert!(
            e.contains("person.erin.email: email \"DANA@t.test\" is already used by person.dana"),
            "{e}"
        );
        assert!(
            e.contains("connector[1].name: duplicate name \"design\""),
            "{e}"
        );
    }

    #[test]
    fn bad_regex_and_durations() {
        let text = BASE.replace(
            "approvals = [",
            "reason_pattern = \"^(INC\"\nmax_duration = \"1h\"\ndefault_duration = \"2h\"\napprovals = [",
        );
        let e = errors(&text);
        assert!(
            e.contains("app.figma.reason_pattern: not a valid regular expression: unclosed group"),
            "{e}"
        );
        assert!(
            e.contains("app.figma.default_duration: 2h is longer than max_duration (1h)"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 2, "{e}");
    }

    #[test]
    fn manager_cycle_is_an_error() {
        let text = BASE.replace(
            "role = \"it-admin\"\n",
            "role = \"it-admin\"\nmanager = \"carol\"\n",
        );
        let e = errors(&text);
        assert_eq!(e, "person.dana.manager: manager cycle: dana → carol → dana");
        let own = BASE.replace("manager = \"dana\"", "manager = \"carol\"");
        assert_eq!(
            errors(&own),
            "person.carol.manager: manager cycle: carol → carol"
        );
    }

    #[test]
    fn sections_are_validated() {
        let text = format!(
            "{BASE}\n[discord]\nmode = \"interaction\"\napplication_id = \"x1\"\ntoken_env = \"DT\"\n\
             [http]\nlisten = \"localhost\"\n[database]\nurl = \"mysql://x\"\n"
        );
        let e = errors(&text);
        assert!(
            e.contains("discord.mode: unknown mode \"interaction\""),
            "{e}"
        );
        assert!(e.contains("did you mean \"interactions\"?"), "{e}");
        assert!(
            e.contains("discord.application_id: \"x1\" is not a Discord application id"),
            "{e}"
        );
        assert!(
            e.contains("discord.token_env: environment variable DT is not set"),
            "{e}"
        );
        assert!(
            e.contains("http.listen: \"localhost\" is not an address"),
            "{e}"
        );
        assert!(
            e.contains("database.url: \"mysql://x\" is not a database URL"),
            "{e}"
        );

        let needs_key = format!(
            "{BASE}\n[discord]\nmode = \"interactions\"\napplication_id = 1\ntoken_env = \"DT\"\n"
        );
        let env = |k: &str| (k == "DT").then(|| "tok".to_owned());
        let e = errors_env(&needs_key, &env);
        assert_eq!(
            e,
            "discord.public_key: required when mode = \"interactions\" (Discord's requests are checked with it)"
        );

        let ok = format!(
            "{BASE}\n[discord]\napplication_id = \"1\"\ntoken_env = \"DT\"\n[http]\nlisten = \"127.0.0.1:8080\"\n\
             [database]\nurl = \"postgres://db/qm\"\n"
        );
        let c = parse(&ok, Path::new("."), &env).unwrap();
        let d = c.discord.unwrap();
        assert_eq!(d.mode, DiscordMode::Gateway);
        assert_eq!(d.token.expose_secret(), "tok");
        assert_eq!(c.http.unwrap().listen.port(), 8080);
        assert_eq!(c.database_url.as_deref(), Some("postgres://db/qm"));
    }

    #[test]
    fn connectors_need_their_keys() {
        let text = format!(
            "{BASE}\n[[connector]]\nname = \"dir\"\nkind = \"ldap\"\nurl = \"ldap://x\"\n\
             [[connector]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"https://h\"\nsecret_env = \"S\"\nbase_url = \"x\"\n\
             [[connector]]\nname = \"other\"\nkind = \"scmi\"\n"
        );
        let e = errors(&text);
        for want in [
            "connector.dir.bind_dn: required key is missing (a string)",
            "connector.dir.password_env: required key is missing (a string)",
            "connector.dir.user_base: required key is missing (a string; the older name people_dn also works)",
            "connector.dir.group_base: required key is missing (a string; the older name groups_dn also works)",
            "connector.hook.base_url: unknown key",
            "connector.hook.secret_env: environment variable S is not set",
            "connector.other.kind: unknown connector kind \"scmi\" — did you mean \"scim\"?",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
    }

    const SCIM: &str = "\n[[connector]]\nname = \"figma-scim\"\nkind = \"scim\"\n\
        base_url = \"http://127.0.0.1:18080/acme/v2\"\ntoken_env = \"FIGMA_SCIM_TOKEN\"\n";

    #[test]
    fn unset_secret_names_the_variable() {
        let e = errors(&format!("{BASE}{SCIM}"));
        assert_eq!(
            e,
            "connector.figma-scim.token_env: environment variable FIGMA_SCIM_TOKEN is not set \
             (set it, or FIGMA_SCIM_TOKEN_FILE to a file holding it)"
        );
    }

    #[test]
    fn secrets_from_env_and_file() {
        let text = format!("{BASE}{SCIM}");
        let secret = "s3cr3t-V4lue";
        let env = |k: &str| (k == "FIGMA_SCIM_TOKEN").then(|| secret.to_owned());
        let c = parse(&text, Path::new("."), &env).unwrap();
        let ConnectorKind::Scim {
            token, base_url, ..
        } = &c.connectors[1].kind
        else {
            panic!("not scim")
        };
        assert_eq!(token.expose_secret(), secret);
        assert_eq!(base_url, "http://127.0.0.1:18080/acme/v2");
        assert!(!format!("{c:?}").contains(secret));

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, format!("{secret}\n")).unwrap();
        let fs = f.display().to_string();
        let env = |k: &str| (k == "FIGMA_SCIM_TOKEN_FILE").then(|| fs.clone());
        let c = parse(&text, Path::new("."), &env).unwrap();
        let ConnectorKind::Scim { token, .. } = &c.connectors[1].kind else {
            panic!("not scim")
        };
        assert_eq!(token.expose_secret(), secret);
        assert!(!format!("{c:?}").contains(secret));

        // Both set: an error, which shows neither value.
        let env = |k: &str| match k {
            "FIGMA_SCIM_TOKEN" => Some(secret.to_owned()),
            "FIGMA_SCIM_TOKEN_FILE" => Some(fs.clone()),
            _ => None,
        };
        let e = parse(&text, Path::new("."), &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "connector.figma-scim.token_env: both FIGMA_SCIM_TOKEN and FIGMA_SCIM_TOKEN_FILE are set; set only one of them"
        );
        assert!(!format!("{e:?}").contains(secret));

        // A missing file is named, its (absent) content is not.
        let env = |k: &str| (k == "FIGMA_SCIM_TOKEN_FILE").then(|| "/nonexistent/tok".to_owned());
        let e = errors_env(&text, &env);
        assert!(e.starts_with("connector.figma-scim.token_env: cannot read the file FIGMA_SCIM_TOKEN_FILE points to (/nonexistent/tok)"), "{e}");
    }

    /// A token pasted where the variable's name belongs is refused without being shown.
    #[test]
    fn a_secret_pasted_into_an_env_key_is_not_echoed() {
        for pasted in [
            "xoxb-2048-9F3kQ7vLm2Np8Rt5",
            "ghp_R4nd0mT0k3nV4lu3abcdefGHIJ",
            "3f9a0c6b1d2e4f5a6b7c8d9e0f1a2b3c",
            "dGhpcyBpcyBhIHNlY3JldA==",
            "Bearer abc123",
        ] {
            let text = format!("{BASE}\n[hr]\nsecret_env = \"{pasted}\"\n");
            let e = errors_env(&text, &no_env);
            assert!(
                e.contains("hr.secret_env: this looks like a secret, not a variable name"),
                "{e}"
            );
            for w in pasted.as_bytes().windows(6) {
                let w = String::from_utf8_lossy(w);
                assert!(!e.contains(&*w), "{pasted}: {e} shows {w:?}");
            }
        }
        // Names, even unusual ones, are still named when unset.
        for name in [
            "FIGMA_SCIM_TOKEN",
            "QM_HR_SECRET_2",
            "hr-secret",
            "qm.hr.key",
        ] {
            let text = format!("{BASE}\n[hr]\nsecret_env = \"{name}\"\n");
            let e = errors_env(&text, &no_env);
            assert!(
                e.contains(&format!("environment variable {name} is not set")),
                "{e}"
            );
        }
    }

    /// A `*_FILE` secret that other users can read loads, with a warning naming the key.
    #[cfg(unix)]
    #[test]
    fn a_secret_file_others_can_read_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("hr.key");
        std::fs::write(&f, "s3cr3t-V4lue\n").unwrap();
        let fs = f.display().to_string();
        let env = |k: &str| (k == "HR_FILE").then(|| fs.clone());
        let text = format!("{BASE}\n[hr]\nsecret_env = \"HR\"\n");
        for (mode, warned) in [(0o644, true), (0o604, true), (0o640, false), (0o600, false)] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
            let c = parse(&text, Path::new("."), &env).unwrap();
            let w: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
            if warned {
                assert_eq!(w.len(), 1, "{mode:o}: {w:?}");
                assert!(
                    w[0].starts_with(&format!(
                        "hr.secret_env: the secret file HR_FILE points to ({fs}) can be read by \
                         other users (mode {mode:04o})"
                    )),
                    "{w:?}"
                );
                assert!(!w[0].contains("s3cr3t"));
            } else {
                assert!(w.is_empty(), "{mode:o}: {w:?}");
            }
        }
    }

    #[test]
    fn secrets_stay_out_of_errors_and_debug() {
        let secret = "hunter2-very-secret";
        let text = format!(
            "{BASE}\n[hr]\nsecret_env = \"HR\"\n[audit]\nkey_env = \"AK\"\n[discord]\napplication_id = \"1\"\ntoken_env = \"DT\"\n\
             [[connector]]\nname = \"wiki\"\nkind = \"webhook\"\nurl = \"https://w\"\nsecret_env = \"W\"\nmethod = \"put\"\n"
        );
        let env = |k: &str| matches!(k, "HR" | "AK" | "DT" | "W").then(|| secret.to_owned());
        let c = parse(&text, Path::new("."), &env).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(secret), "{dbg}");
        assert_eq!(c.hr.as_ref().unwrap().secret.expose_secret(), secret);
        assert_eq!(c.audit_key.as_ref().unwrap().expose_secret(), secret);
        let ConnectorKind::Webhook { method, .. } = &c.connectors[1].kind else {
            panic!("not a webhook")
        };
        assert_eq!(method, "PUT");

        // With other problems around, the secrets still do not leak.
        let broken = text.replace("owners = [\"carol\"]", "owners = [\"carl\"]");
        let e = parse(&broken, Path::new("."), &env).unwrap_err();
        assert!(!e.to_string().contains(secret));
        assert!(!format!("{e:?}").contains(secret));
    }

    #[test]
    fn suggestions() {
        let names = ["carol", "bob", "dana", "mia"];
        assert_eq!(did_you_mean("carl", names), Some("carol"));
        assert_eq!(did_you_mean("Carol", names), Some("carol"));
        assert_eq!(did_you_mean("zed", names), None);
        assert_eq!(did_you_mean("jria", ["jira", "zoho"]), Some("jira"));
        assert_eq!(did_you_mean("joe", ["bob"]), None);
    }
}

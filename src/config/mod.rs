//! Configuration: one TOML file (plus an optional people CSV), read into the core's types.
//!
//! The file is parsed into a [`toml::Table`] first and then walked by hand, so that every
//! problem — unknown keys, wrong types, dangling references, unset secrets — is reported with
//! its key path (`app.figma.owners[0]`), all of them at once, not just the first.
//!
//! Secrets never live in the file: a key ending in `_env` names the environment variable that
//! holds the secret, and `NAME_FILE` may point to a file holding it instead.
//!
//! This file holds the public types and the entry points; the walk is split by TOML table:
//! `walker.rs` (the order of tables, references between records), `org.rs` (`[organization]`,
//! `[[person]]`), `people_csv.rs` (`people_file`), `roles.rs` (`[[role]]`, `[[department]]`),
//! `catalog.rs` (`[[app]]`), `connectors.rs` and `ldap.rs` (`[[connector]]`), `workflow.rs`,
//! `discord.rs`, `server.rs` (`[database]`, `[http]`, `[hr]`, `[audit]`); `read.rs` holds the
//! typed getters and `secret.rs` the `_env` secrets. `keys.rs` lists every key.

mod catalog;
mod connectors;
mod discord;
pub mod keys;
mod ldap;
mod org;
mod people_csv;
mod read;
mod reviews;
mod roles;
mod scim_server;
mod secret;
mod server;
mod step_up;
#[cfg(test)]
mod testing;
mod walker;
mod workflow;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use toml::Table;

use crate::core::model::{ConnectorName, Handle, Org, Person};

pub use crate::core::suggest::did_you_mean;
pub use people_csv::{PeopleRow, parse_people_csv};
use read::{
    Cx, Rec, Ref, RefKind, expected, join, no_env, positive_int, regex_error, suggest,
    suggest_or_list, syntax_problem,
};
pub use scim_server::ScimServerConfig;
use walker::Walker;

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
    /// `[scim_server]`, when given (inbound SCIM: its token and mapping).
    pub scim_server: Option<ScimServerConfig>,
    /// `[mfa] key_env`: the key that seals TOTP secrets at rest, when configured.
    pub mfa_key: Option<crate::core::totp::MfaKey>,
    /// `[http] public_url`: where people reach `serve` (the enrolment page's links).
    pub public_url: Option<String>,
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
    /// `reconcile_every` (optional): reconcile this often (drift).
    pub reconcile_every: Option<std::time::Duration>,
    /// `on_drift` (default `report`): `revoke` also removes what two runs saw unrecorded.
    pub on_drift_revoke: bool,
}

impl Default for ConnectorLimits {
    fn default() -> Self {
        Self {
            max_concurrency: 4,
            rate_per_second: None,
            timeout: std::time::Duration::from_secs(30),
            lease: crate::engine::LEASE,
            reconcile_every: None,
            on_drift_revoke: false,
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
        /// `list_url`: where the members of an entitlement are listed (drift), if anywhere.
        list_url: Option<String>,
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

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

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
}

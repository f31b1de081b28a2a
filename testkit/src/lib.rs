//! What the integration tests (`tests/it`) and the benches share, so that none of it is in
//! the library's public API and no bench reaches into `tests/` by `#[path]`: throw-away
//! databases ([`testdb`]); the peers' starters (scim2-server, SCIMMY, slapd, 389 DS, Samba);
//! the recording proxy; the tamper switch; the fake Discord; the crash store.
//!
//! At the root, the shared test harness: the example organisation (or a given config) on a
//! fresh database — a SQLite file, or with `QM_TEST_DB=postgres` a PostgreSQL database of its
//! own — driven through the console adapter with a manual clock.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod crash;
pub mod discord;
pub mod ds389;
pub mod ldap;
pub mod ldap_layouts;
pub mod samba;
pub mod tamper;
pub mod testdb;

use std::sync::Arc;

use quartermaster::chat::console::{Console, ConsoleChat, LineError, Shown};
use quartermaster::config::{self, Config};
use quartermaster::core::model::Handle;
use quartermaster::core::ports::ManualClock;
use quartermaster::core::service::{Caller, Service};
use quartermaster::store::SqlStore;
use quartermaster::wiring;
use testdb::{Backend, TestDb};

/// A running bot on a temporary database.
pub struct Bot {
    pub console: Console,
    pub service: Arc<Service>,
    pub store: SqlStore,
    pub chat: Arc<ConsoleChat>,
    pub clock: Arc<ManualClock>,
    /// The test's database (SQLite, or PostgreSQL with `QM_TEST_DB=postgres`); dropped with
    /// the bot.
    pub db: TestDb,
}

pub fn t0() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
}

impl Bot {
    /// The example organisation.
    pub async fn example() -> Self {
        Self::with_config(config::load(None).expect("example config loads")).await
    }

    /// A config given as TOML text.
    pub async fn from_toml(text: &str) -> Self {
        let c = config::parse(text, std::path::Path::new("."), &|_| None)
            .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"));
        Self::with_config(c).await
    }

    /// A config given as TOML text, with `*_env` secrets looked up through `env`.
    pub async fn from_toml_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let c = config::parse(text, std::path::Path::new("."), env)
            .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"));
        Self::with_config(c).await
    }

    pub async fn with_config(config: Config) -> Self {
        Self::with_config_at(config, t0()).await
    }

    /// A config whose clock starts at `start` (instead of [`t0`]).
    pub async fn with_config_at(config: Config, start: chrono::DateTime<chrono::Utc>) -> Self {
        let db = TestDb::create(Backend::from_env()).await;
        let store = wiring::open_store(&config, &db.url).await.unwrap();
        let chat = Arc::new(ConsoleChat::silent());
        let clock = Arc::new(ManualClock::new(start));
        let (service, engine) =
            wiring::assemble(&config, store.clone(), chat.clone(), clock.clone()).unwrap();
        let first = config.org.it_admins[0].clone();
        let console = Console::new(service.clone(), engine, chat.clone(), clock.clone(), first);
        Self {
            console,
            service,
            store,
            chat,
            clock,
            db,
        }
    }

    /// The example organisation, its `directory` connector behind a [`tamper::Switch`] that
    /// alters the answers of the operations a test names.
    pub async fn example_tampered() -> (Self, tamper::Switch) {
        let config = config::load(None).expect("example config loads");
        let db = TestDb::create(Backend::from_env()).await;
        let store = wiring::open_store(&config, &db.url).await.unwrap();
        let chat = Arc::new(ConsoleChat::silent());
        let clock = Arc::new(ManualClock::new(t0()));
        let switch = tamper::Switch::default();
        let mut conns = wiring::connectors(&config, &store).unwrap();
        let name = quartermaster::core::model::ConnectorName::parse("directory").unwrap();
        let real = conns
            .remove(&name)
            .expect("the example has a directory connector");
        conns.insert(
            name,
            Arc::new(tamper::Tamper {
                inner: real,
                switch: switch.clone(),
            }),
        );
        let service = Arc::new(Service::new(
            Arc::new(config.org.clone()),
            Arc::new(store.clone()),
            chat.clone(),
            clock.clone(),
            quartermaster::core::command::Registry::builtin(),
        ));
        let engine = quartermaster::engine::Engine::new(service.clone(), conns);
        let first = config.org.it_admins[0].clone();
        let console = Console::new(service.clone(), engine, chat.clone(), clock.clone(), first);
        let bot = Self {
            console,
            service,
            store,
            chat,
            clock,
            db,
        };
        (bot, switch)
    }

    /// Runs script lines; panics on a line the console cannot carry out.
    pub async fn run(&mut self, lines: &str) {
        for l in lines.lines() {
            if let Err(e) = self.console.line(l).await {
                panic!("line {l:?} failed: {e:?}");
            }
        }
    }

    /// Runs one line and returns the console's own error, if any.
    pub async fn try_line(&mut self, line: &str) -> Result<(), LineError> {
        self.console.line(line).await
    }

    pub fn transcript(&self) -> Vec<Shown> {
        self.chat.transcript()
    }

    /// The newest message (new or edit) to `who`.
    pub fn last_to(&self, who: &str) -> Shown {
        self.transcript()
            .into_iter()
            .rev()
            .find(|m| m.to.as_deref() == Some(who))
            .unwrap_or_else(|| panic!("{who} received nothing"))
    }

    /// Every message text `who` received, in order.
    pub fn texts_to(&self, who: &str) -> Vec<String> {
        self.transcript()
            .into_iter()
            .filter(|m| m.to.as_deref() == Some(who))
            .map(|m| m.text)
            .collect()
    }

    pub async fn caller(&self, h: &str) -> Caller {
        self.service
            .caller_by_handle(&Handle::parse(h).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    /// Audit rows as exported.
    pub async fn audit(&self) -> Vec<quartermaster::store::AuditRecord> {
        self.store.audit_rows(None).await.unwrap()
    }

    pub async fn audit_actions(&self) -> Vec<String> {
        self.audit().await.into_iter().map(|r| r.action).collect()
    }
}

pub mod proxy;
pub mod scim;
pub mod scimmy;

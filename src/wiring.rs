//! Wiring shared by the binary and the tests: config → store → connectors → service.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretSlice};

use crate::config::{Config, ConnectorKind};
use crate::connectors::manual::Manual;
use crate::core::command::Registry;
use crate::core::ports::{Chat, Clock, Connector, People, Store};
use crate::core::service::Service;
use crate::engine::{Connectors, Engine};
use crate::store::{self, DirectoryConnector, SqlStore};

/// A failure while starting up; each says what to set or fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened.
    #[error("cannot open the database: {0}")]
    Database(#[from] store::DbError),
    /// `[audit] anchor_file` could not be opened or written.
    #[error("audit.anchor_file: {0}")]
    Anchor(String),
    /// The people could not be read back.
    #[error("cannot read the people from the database: {0}")]
    People(crate::core::ports::StoreError),
    /// The directory could not be seeded.
    #[error("cannot seed the people of the config: {0}")]
    Seed(crate::core::ports::StoreError),
    /// A connector could not be set up (e.g. a URL scheme this build cannot speak).
    #[error("connector \"{name}\" cannot start: {reason}")]
    Connector {
        /// Connector name.
        name: String,
        /// What is wrong and what to change.
        reason: String,
    },
}

/// The database URL to use: `--db`, else `[database] url`, else `sqlite://quartermaster.db`;
/// a relative SQLite path is resolved against `base` (the config file's folder).
pub fn database_url(flag: Option<&str>, config: &Config, base: &Path) -> String {
    let url = flag
        .map(str::to_owned)
        .or_else(|| config.database_url.clone())
        .unwrap_or_else(|| "sqlite://quartermaster.db".into());
    let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return url;
    };
    let p = PathBuf::from(path);
    if p.is_absolute() || path.starts_with(':') {
        return url;
    }
    format!("sqlite://{}", base.join(p).display())
}

/// Opens the store with the config's audit key, anchors its audit chain to `[audit]
/// anchor_file` when set, and seeds the directory.
pub async fn open_store(config: &Config, url: &str) -> Result<SqlStore, StartError> {
    let mut store = open_store_unanchored(config, url).await?;
    if let Some(path) = &config.audit_anchor_file {
        store = store.anchor_to(path).await.map_err(|e| match e {
            store::DbError::Anchor(m) => StartError::Anchor(m),
            other => StartError::Database(other),
        })?;
    }
    store
        .seed_people(&config.people)
        .await
        .map_err(StartError::Seed)?;
    Ok(store)
}

/// Opens the store with the config's audit key, without anchoring (for reading the audit
/// trail: `audit verify` must not write to the anchor file it checks).
pub async fn open_store_unanchored(config: &Config, url: &str) -> Result<SqlStore, StartError> {
    let key = config
        .audit_key
        .as_ref()
        .map(|k| SecretSlice::from(k.expose_secret().as_bytes().to_vec()));
    Ok(store::connect(url, key).await?)
}

/// Builds the configured connectors.
pub fn connectors(config: &Config, store: &SqlStore) -> Result<Connectors, StartError> {
    let mut out = Connectors::new();
    for c in &config.connectors {
        let conn: Arc<dyn Connector> = match &c.kind {
            ConnectorKind::Directory => {
                Arc::new(DirectoryConnector::new(c.name.clone(), store.clone()))
            }
            ConnectorKind::Manual => Arc::new(Manual {
                target: c.name.to_string(),
            }),
            ConnectorKind::Ldap(settings) => Arc::new(
                crate::connectors::ldap::LdapConnector::new(c.name.clone(), (**settings).clone())
                    .map_err(|e| StartError::Connector {
                    name: c.name.to_string(),
                    reason: e.to_string(),
                })?,
            ),
            ConnectorKind::Scim {
                base_url,
                token,
                page_size,
            } => Arc::new(
                crate::connectors::scim::Scim::new(
                    c.name.to_string(),
                    base_url,
                    token.clone(),
                    *page_size,
                    c.limits.timeout,
                )
                .map_err(|e| StartError::Connector {
                    name: c.name.to_string(),
                    reason: e.to_string(),
                })?,
            ),
            ConnectorKind::Webhook {
                url,
                secret,
                method,
                body,
                success,
                list_url,
            } => Arc::new(
                crate::connectors::webhook::Webhook::new(
                    c.name.to_string(),
                    crate::connectors::webhook::WebhookSettings {
                        url: url.clone(),
                        method: method.clone(),
                        body: body.clone(),
                        success: success.clone(),
                        secret: secret.clone(),
                        timeout: c.limits.timeout,
                        list_url: list_url.clone(),
                    },
                )
                .map_err(|e| StartError::Connector {
                    name: c.name.to_string(),
                    reason: e.to_string(),
                })?,
            ),
        };
        out.insert(c.name.clone(), conn);
    }
    Ok(out)
}

/// The service and its engine over an open store, a chat port and a clock.
pub fn assemble(
    config: &Config,
    store: SqlStore,
    chat: Arc<dyn Chat>,
    clock: Arc<dyn Clock>,
) -> Result<(Arc<Service>, Engine), StartError> {
    let conns = connectors(config, &store)?;
    let service = Arc::new(
        Service::new(
            Arc::new(config.org.clone()),
            Arc::new(store) as Arc<dyn Store>,
            chat,
            clock,
            Registry::builtin(),
        )
        .with_step_up(crate::core::service::StepUpSettings {
            key: config.mfa_key.clone(),
            public_url: config.public_url.clone(),
        })
        .with_scim(
            config
                .scim_server
                .as_ref()
                .map(|s| s.settings.clone())
                .unwrap_or_default(),
        ),
    );
    let limits = config
        .connectors
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                crate::engine::Limits {
                    max_concurrency: c.limits.max_concurrency,
                    rate_per_second: c.limits.rate_per_second,
                    lease: c.limits.lease,
                },
            )
        })
        .collect();
    let drift = config
        .connectors
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                crate::engine::reconcile::DriftSettings {
                    every: c.limits.reconcile_every,
                    on_drift: if c.limits.on_drift_revoke {
                        crate::core::service::OnDrift::Revoke
                    } else {
                        crate::core::service::OnDrift::Report
                    },
                },
            )
        })
        .collect();
    let engine = Engine::with_limits(service.clone(), conns, limits).with_drift(drift);
    Ok((service, engine))
}

/// A `[[person]]` field whose TOML value differs from the database's. The TOML only seeds
/// people the database lacks (the first run), so such an edit is not applied by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnappliedEdit {
    /// Whose record.
    pub handle: crate::core::model::Handle,
    /// The TOML key.
    pub field: &'static str,
    /// The TOML's value.
    pub toml: String,
    /// The database's value.
    pub db: String,
    /// The command that applies it.
    pub apply: String,
}

impl std::fmt::Display for UnappliedEdit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: TOML \"{}\", database \"{}\" — apply with {}",
            self.handle, self.field, self.toml, self.db, self.apply
        )
    }
}

/// Every field of the TOML's people that differs from the database's record of an active
/// person, in TOML order. A role edit is applied with `/role` (a role plan, confirmed by IT);
/// other fields with `quartermaster import people` (a CSV row carrying the TOML's record).
pub fn unapplied_edits(
    toml: &[crate::core::model::Person],
    db: &[crate::core::model::Person],
    config_arg: &str,
) -> Vec<UnappliedEdit> {
    use crate::core::model::PersonStatus;
    let opt = |h: &Option<String>| h.clone().unwrap_or_else(|| "none".into());
    let mut out = Vec::new();
    for t in toml {
        let Some(d) = db
            .iter()
            .find(|d| d.handle == t.handle && d.status == PersonStatus::Active)
        else {
            continue;
        };
        let import = format!(
            "quartermaster import people FILE.csv{config_arg} (a row with {}'s TOML record)",
            t.handle
        );
        let zone = |z: &Option<crate::core::model::Zone>| {
            z.map_or_else(|| "none".to_owned(), |z| z.name().to_owned())
        };
        let fields: [(&'static str, String, String); 7] = [
            ("name", t.name.clone(), d.name.clone()),
            ("email", t.email.to_string(), d.email.to_string()),
            ("department", t.department.clone(), d.department.clone()),
            ("role", t.role.to_string(), d.role.to_string()),
            (
                "manager",
                opt(&t.manager.as_ref().map(ToString::to_string)),
                opt(&d.manager.as_ref().map(ToString::to_string)),
            ),
            ("discord_id", opt(&t.discord_id), opt(&d.discord_id)),
            ("timezone", zone(&t.timezone), zone(&d.timezone)),
        ];
        for (field, tv, dv) in fields {
            // A record without a zone keeps the stored one (as an import does).
            if tv == dv || (field == "timezone" && t.timezone.is_none()) {
                continue;
            }
            let apply = if field == "role" {
                format!("/role user:{} role:{tv}", t.handle)
            } else {
                import.clone()
            };
            out.push(UnappliedEdit {
                handle: t.handle.clone(),
                field,
                toml: tv,
                db: dv,
                apply,
            });
        }
    }
    out
}

/// Compares the TOML's people with an existing database, without changing it. `None` when
/// there is no database yet (a SQLite file that does not exist): the first run takes them in.
pub async fn unapplied_person_edits(
    config: &Config,
    url: &str,
    config_arg: &str,
) -> Result<Option<Vec<UnappliedEdit>>, StartError> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        && !path.starts_with(':')
        && !Path::new(path.split('?').next().unwrap_or(path)).exists()
    {
        return Ok(None);
    }
    let store = open_store_unanchored(config, url).await?;
    let db = store.people().await.map_err(StartError::People)?;
    store.close().await;
    Ok(Some(unapplied_edits(&config.people, &db, config_arg)))
}

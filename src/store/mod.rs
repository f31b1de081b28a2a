//! Storage: the sqlx implementation of [`crate::core::ports::Store`], the audit hash chain and
//! the tables of the built-in `directory` connector.
//!
//! Two backends: SQLite (`sqlite://FILE`, one process) and PostgreSQL (`postgres://…`, one or
//! several instances sharing the database), each with its own migration folder. The SQL is
//! written once (INTEGER / TEXT columns, `RETURNING`, `ON CONFLICT`; see `db.rs` for how it
//! runs on both); timestamps are stored as integer unix microseconds (UTC), booleans as 0/1.
//!
//! On SQLite every write runs in a `BEGIN IMMEDIATE` transaction: SQLite's default deferred
//! `BEGIN` takes the write lock late, and a race then ends in "database is locked" (or a busy
//! snapshot that the busy timeout does not retry) instead of a short wait. On PostgreSQL writes
//! run READ COMMITTED: optimistic version checks and conditional updates decide races, actions
//! are claimed with `FOR UPDATE SKIP LOCKED`, and audit appends are serialised by a
//! transaction-level advisory lock so concurrent writers form one chain.
//!
//! One file per capability of the port: `people.rs`, `requests.rs`, `grants.rs`, `actions.rs`
//! (the action queue), `outbox.rs`, `plans.rs`, `hr.rs` (the HR inbox) and `commit.rs` (the
//! unit of work). Beside them: `connect.rs` opens the database, `housekeeping.rs` keeps seen
//! ids and leases, `audit/` the chain, `rows.rs` the SQL texts and row mapping, `db.rs` the
//! seam between the two backends.

mod actions;
mod anchor;
mod audit;
mod commit;
mod connect;
mod db;
mod directory;
mod directory_connector;
mod discord;
mod drift;
mod grants;
mod housekeeping;
mod hr;
mod outbox;
mod people;
mod plans;
mod requests;
mod reviews;
mod rows;
mod scim;
mod step_up;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use secrecy::SecretSlice;

use db::{DbRow, Pool, Tx, q};

use crate::core::model::*;
use crate::core::ports::{GrantRef, ReqRef, StoreError};

pub use anchor::{AnchorLine, parse_anchors};
pub use audit::{AnchorSummary, AuditRecord, GENESIS, VerifyReport, write_csv, write_jsonl};
pub use connect::connect;
pub use directory_connector::DirectoryConnector;
pub use discord::{OpsCounts, SentMessage};

/// A failure of the storage layer itself (connecting, migrating, querying, verifying).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A `postgres://` URL was given, but this binary was built without the `postgres`
    /// feature.
    #[error(
        "this build has no PostgreSQL support (database URL {0}); rebuild with the default \
         features (or --features postgres), or use a sqlite:// URL"
    )]
    PostgresNotBuilt(String),
    /// The URL names no backend Quartermaster knows.
    #[error("unsupported database URL {0}: use sqlite://PATH or postgres://USER@HOST/DATABASE")]
    UnsupportedUrl(String),
    /// The database could not be opened. The URL is shown without any password.
    #[error("cannot open the database {url}: {source}")]
    Connect {
        /// The URL, password removed.
        url: String,
        /// The driver's reason.
        #[source]
        source: sqlx::Error,
    },
    /// The schema migrations failed.
    #[error("cannot migrate the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// A stored value could not be read back.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The audit anchor file could not be written or read (the message names it).
    #[error("{0}")]
    Anchor(String),
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Corrupt(s) => StoreError::Corrupt(s),
            other => StoreError::Backend(other.to_string()),
        }
    }
}

impl SqlStore {
    /// Runs `query` on the pool and reads every row it returns with `read`.
    pub(super) async fn read_all<T>(
        &self,
        query: db::Q,
        read: fn(&DbRow) -> Result<T, DbError>,
    ) -> Result<Vec<T>, StoreError> {
        let rows = query.fetch_all(&self.pool).await.map_err(store_err)?;
        Ok(rows.iter().map(read).collect::<Result<_, DbError>>()?)
    }
}

/// Maps a driver error to the core's error: a deferred conditional write that found the
/// stored state moved ([`db::Moved`]) becomes [`StoreError::Conflict`], unique violations
/// [`StoreError::Duplicate`], the rest [`StoreError::Backend`].
fn store_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.try_downcast_ref::<db::Moved>().is_some() {
            return StoreError::Conflict;
        }
        if d.is_unique_violation() {
            return StoreError::Duplicate(d.message().to_owned());
        }
    }
    StoreError::Backend(e.to_string())
}

/// Replaces the password of `scheme://user:password@host/…` with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// The SQL store. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct SqlStore {
    pool: Pool,
    audit_key: Option<Arc<SecretSlice<u8>>>,
    /// `[audit] anchor_file`: where each commit's new audit head is also appended.
    anchor: Option<Arc<anchor::AnchorWriter>>,
    /// SQLite: stops the checkpoint task when the last clone is dropped.
    _checkpoints: Option<Arc<tokio::sync::oneshot::Sender<()>>>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("sealed", &self.audit_key.is_some())
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// The rows of a query whose one bind is a JSON array of `items` (`sql` for SQLite, `pg`
    /// for PostgreSQL), each read by `read`; an empty list asks nothing.
    async fn read_list<T, I: serde::Serialize>(
        &self,
        (sql, pg): (&'static str, &'static str),
        items: impl Iterator<Item = I>,
        read: fn(&DbRow) -> Result<T, DbError>,
    ) -> Result<Vec<T>, StoreError> {
        let items: Vec<I> = items.collect();
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let rows = q(sql)
            .pg(pg)
            .bind(json_list(items.into_iter()))
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows.iter().map(read).collect::<Result<_, DbError>>()?)
    }

    /// Starts a write transaction that holds SQLite's write lock from its first statement.
    async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        self.pool.begin_write().await
    }
}

/// Resolves a [`ReqRef`] against the request a change inserts.
fn resolve_req(r: ReqRef, new_request: Option<RequestId>) -> Result<Option<i64>, StoreError> {
    match r {
        ReqRef::None => Ok(None),
        ReqRef::Id(id) => Ok(Some(id.0)),
        ReqRef::New => new_request.map(|id| Some(id.0)).ok_or_else(|| {
            StoreError::Backend("the change refers to a new request but inserts none".into())
        }),
    }
}

/// Resolves a [`GrantRef`] against the grants a change inserts.
fn resolve_grant(g: GrantRef, new_grants: &[GrantId]) -> Result<i64, StoreError> {
    match g {
        GrantRef::Id(id) => Ok(id.0),
        GrantRef::New(n) => new_grants.get(n).map(|g| g.0).ok_or_else(|| {
            StoreError::Backend(format!(
                "the change refers to new grant #{n} but inserts only {}",
                new_grants.len()
            ))
        }),
    }
}

/// A JSON array of the values: one bind for an `IN` list on both backends.
fn json_list<T: serde::Serialize>(items: impl Iterator<Item = T>) -> String {
    serde_json::to_string(&items.collect::<Vec<T>>()).unwrap_or_else(|_| "[]".into())
}

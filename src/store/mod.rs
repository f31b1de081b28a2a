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

mod anchor;
mod audit;
mod db;
mod directory;
mod directory_connector;
mod discord;
mod outbox;
#[cfg(test)]
mod outbox_tests;
mod rows;
#[cfg(test)]
mod testdb;
#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretSlice;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use db::{DbRow, Pool, Tx, q};

use crate::core::audit::AuditAction;
use crate::core::model::*;
use crate::core::ports::{
    Change, Committed, GrantRef, NewGrantSource, NewPlan, OutboxCounts, Outgoing, Plan, PlanState,
    Queued, ReqRef, Store, StoreError,
};

pub use anchor::{AnchorLine, parse_anchors};
pub use audit::{AnchorSummary, AuditRecord, GENESIS, VerifyReport, write_csv, write_jsonl};
pub use directory_connector::DirectoryConnector;
pub use discord::{OpsCounts, SentMessage};

use rows::{
    ACTION_COLS, GRANT_COLS, ONBOARDING_PLANS_SETTLED, ONBOARDING_PLANS_SETTLED_PG, PERSON_COLS,
    PLAN_BY_ID, PLANS_DUE, PLANS_OF, PLANS_UNREPORTED_OFFBOARD, REQUEST_COLS, action_from_row,
    grant_from_row, micros, person_from_row, plan_from_row, request_from_row, step_from_row,
};

/// How long a writer waits for SQLite's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Maps a driver error to the core's error: unique violations become
/// [`StoreError::Duplicate`], the rest [`StoreError::Backend`].
fn store_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e
        && d.is_unique_violation()
    {
        return StoreError::Duplicate(d.message().to_owned());
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

/// Opens the database at `url`, creating a missing SQLite file, and runs the migrations.
///
/// With `audit_key`, the head of the audit chain is sealed with HMAC-SHA256 on every append,
/// so [`SqlStore::verify_audit`] can detect truncation and a recomputed chain.
pub async fn connect(url: &str, audit_key: Option<SecretSlice<u8>>) -> Result<SqlStore, DbError> {
    let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        connect_pg(url).await?
    } else if url.starts_with("sqlite:") {
        connect_sqlite(url).await?
    } else {
        return Err(DbError::UnsupportedUrl(redact_url(url)));
    };
    let checkpoints = match &pool {
        Pool::Sqlite(p, _) => Some(Arc::new(spawn_checkpoints(p.clone()))),
        #[cfg(feature = "postgres")]
        Pool::Pg(_) => None,
    };
    Ok(SqlStore {
        pool,
        audit_key: audit_key.map(Arc::new),
        anchor: None,
        _checkpoints: checkpoints,
    })
}

impl SqlStore {
    /// From now on, appends every commit's new audit head to the anchor file at `path`
    /// (created with mode 0600; a new file starts with the database's genesis line, and the
    /// start is recorded in the chain as `audit.anchored`); a file started for another database
    /// is refused. The format and the cost are described in `src/store/anchor.rs`.
    pub async fn anchor_to(mut self, path: &std::path::Path) -> Result<Self, DbError> {
        let created_at: i64 = q("SELECT created_at FROM audit_genesis WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| {
                DbError::Anchor(
                    "the database has no audit genesis record (it was deleted): run `audit \
                     verify`"
                        .into(),
                )
            })?
            .try_get("created_at")?;
        let created = audit::rfc3339(rows::from_micros(created_at)?);
        let (writer, fresh) = anchor::AnchorWriter::open(path, &created)?;
        self.anchor = Some(Arc::new(writer));
        if fresh {
            let event =
                AuditEvent::new(chrono::Utc::now(), AuditAction::AuditAnchored).detail(format!(
                    "every audit seal from here on is also appended to {}",
                    path.display()
                ));
            self.commit(Change {
                audit: vec![event],
                ..Change::default()
            })
            .await
            .map_err(|e| DbError::Anchor(format!("cannot record audit.anchored: {e}")))?;
        }
        Ok(self)
    }

    /// Anchors `head` (from a committed append) when an anchor file is configured.
    async fn anchored(&self, head: Option<anchor::Head>) {
        if let (Some(a), Some(h)) = (&self.anchor, head) {
            a.anchor(h).await;
        }
    }

    /// The anchor file, when one is configured.
    pub fn anchor_file(&self) -> Option<&std::path::Path> {
        self.anchor.as_deref().map(anchor::AnchorWriter::path)
    }
}

/// How often the SQLite write-ahead log is copied into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Checkpoints the SQLite WAL every [`CHECKPOINT_EVERY`] from a task of its own, until the
/// returned sender (held by the store's clones) is dropped. SQLite's automatic checkpoint
/// (turned off in [`connect_sqlite`]) runs inside the commit that takes the log past 1,000
/// pages: a few milliseconds of file copying and `fsync` in whichever request commits then,
/// often enough (every 100 or so interactions) to set their p99. `PASSIVE` waits for no reader
/// or writer.
fn spawn_checkpoints(pool: sqlx::SqlitePool) -> tokio::sync::oneshot::Sender<()> {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = tick.tick() => {}
            }
            if pool.is_closed() {
                break;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::debug!(error = %e, "WAL checkpoint failed; trying again later");
            }
        }
    });
    stop
}

async fn connect_sqlite(url: &str) -> Result<Pool, DbError> {
    let connect_err = |source| DbError::Connect {
        url: redact_url(url),
        source,
    };
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(connect_err)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        // Checkpoints run off the request path (`spawn_checkpoints`).
        .pragma("wal_autocheckpoint", "0");
    // No ping before each use (sqlx's default): a connection to a local file does not go
    // stale, and the ping was one more round trip to the connection's thread per statement
    // in the caller's path (sqlx still tests each connection on release, in a task).
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(false)
        .connect_with(opts)
        .await
        .map_err(connect_err)?;
    sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    Ok(Pool::sqlite(pool))
}

/// A pooled PostgreSQL connection idle this long is pinged before it is used again.
#[cfg(feature = "postgres")]
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

/// Opens a PostgreSQL database (which must exist) and migrates it. Several instances may do
/// this at once: sqlx serialises the migrations with an advisory lock.
#[cfg(feature = "postgres")]
async fn connect_pg(url: &str) -> Result<Pool, DbError> {
    let connect_err = |source| DbError::Connect {
        url: redact_url(url),
        source,
    };
    let opts = sqlx::postgres::PgConnectOptions::from_str(url).map_err(connect_err)?;
    // sqlx pings a pooled connection before every use by default: one more round trip per
    // statement run on the pool, in the caller's path. Only a connection idle for a while is
    // pinged here (one the server may have dropped, e.g. across a restart). A connection that
    // broke in use fails its statement and is discarded when returned: sqlx tests every
    // connection on release (in a task of its own, not configurable in sqlx 0.9).
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IF_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_with(opts)
        .await
        .map_err(connect_err)?;
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    Ok(Pool::Pg(pool))
}

#[cfg(not(feature = "postgres"))]
async fn connect_pg(url: &str) -> Result<Pool, DbError> {
    Err(DbError::PostgresNotBuilt(redact_url(url)))
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

    /// Whether the database answers a trivial query (for health checks).
    pub async fn ping(&self) -> bool {
        q("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Records an interaction id; true the first time it is seen, false on a replay.
    pub async fn mark_interaction_seen(&self, id: &str, at: Timestamp) -> Result<bool, DbError> {
        let _turn = self.pool.write_turn().await;
        let r =
            q("INSERT INTO interactions_seen (id, at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING")
                .bind(id)
                .bind(micros(at))
                .execute(&self.pool)
                .await?;
        Ok(r == 1)
    }

    /// Forgets the interaction ids recorded before `interactions_before` and the HR event ids
    /// recorded before `hr_before` (replays that old are refused by their timestamps anyway);
    /// returns how many of each were removed.
    pub async fn prune_seen(
        &self,
        interactions_before: Timestamp,
        hr_before: Timestamp,
    ) -> Result<(u64, u64), DbError> {
        let _turn = self.pool.write_turn().await;
        let i = q("DELETE FROM interactions_seen WHERE at < ?")
            .bind(micros(interactions_before))
            .execute(&self.pool)
            .await?;
        let h = q("DELETE FROM hr_events WHERE at < ?")
            .bind(micros(hr_before))
            .execute(&self.pool)
            .await?;
        Ok((i, h))
    }

    /// Takes or renews the named lease for `holder` until `now + ttl`; false while another
    /// holder's lease has not ended. Instances sharing a database use the `scheduler` lease so
    /// scheduled work runs in one of them at a time.
    pub async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool, DbError> {
        let now_us = micros(now);
        let until = now_us.saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX));
        let _turn = self.pool.write_turn().await;
        let n = q("INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE leases.holder = excluded.holder OR leases.until < ?")
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now_us)
        .execute(&self.pool)
        .await?;
        Ok(n == 1)
    }

    /// Starts a write transaction that holds SQLite's write lock from its first statement.
    async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        self.pool.begin_write().await
    }

    async fn load_steps(&self, r: &mut Request) -> Result<(), StoreError> {
        let rows = q(
            "SELECT idx, rule, approvers, started_at, decided, approved, decided_by, decided_at, \
             reason, reminded, escalated FROM steps WHERE request_id = ? ORDER BY idx",
        )
        .bind(r.id.0)
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?;
        r.steps = rows
            .iter()
            .map(step_from_row)
            .collect::<Result<_, DbError>>()?;
        Ok(())
    }

    async fn requests_where(
        &self,
        sql: &'static str,
        binds: &[&str],
    ) -> Result<Vec<Request>, StoreError> {
        let mut query = q(sql);
        for b in binds {
            query = query.bind(*b);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(store_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut r = request_from_row(row)?;
            self.load_steps(&mut r).await?;
            out.push(r);
        }
        Ok(out)
    }
}

/// Replaces the step rows of a request.
async fn write_steps(tx: &mut Tx, request: i64, steps: &[Step]) -> Result<(), StoreError> {
    q("DELETE FROM steps WHERE request_id = ?")
        .bind(request)
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
    for s in steps {
        let approvers: Vec<&str> = s.approvers.iter().map(Handle::as_str).collect();
        let approvers = serde_json::to_string(&approvers)
            .map_err(|e| StoreError::Backend(format!("cannot encode approvers: {e}")))?;
        let d = s.decision.as_ref();
        q(
            "INSERT INTO steps (request_id, idx, rule, approvers, started_at, decided, approved, \
             decided_by, decided_at, reason, reminded, escalated) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(request)
        .bind(i64::from(s.index))
        .bind(s.rule.to_string())
        .bind(approvers)
        .bind(s.started_at.map(micros))
        .bind(d.is_some())
        .bind(d.map(|d| d.approved))
        .bind(d.map(|d| d.by.as_str().to_owned()))
        .bind(d.map(|d| micros(d.at)))
        .bind(d.and_then(|d| d.reason.clone()))
        .bind(s.reminded)
        .bind(s.escalated)
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
    }
    Ok(())
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

/// The latest moment a change mentions: the bookkeeping `updated_at` of rows that carry no
/// time of their own (action updates), so time keeps coming from the core's clock.
/// The items grouped by `key` (groups in order of first appearance). Items that share an id
/// must be written in order, so ids are expected to be distinct; a repeated item starts a
/// group of its own.
fn groups<T, K: PartialEq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<Vec<&T>>
where
    T: HasId,
{
    let mut out: Vec<(K, Vec<&T>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for it in items {
        let k = key(it);
        let fresh = seen.insert(it.id());
        match out.iter_mut().find(|(gk, _)| *gk == k) {
            Some((_, g)) if fresh => g.push(it),
            _ => out.push((k, vec![it])),
        }
    }
    out.into_iter().map(|(_, g)| g).collect()
}

/// An update's row id, for [`groups`].
trait HasId {
    fn id(&self) -> i64;
}

impl HasId for crate::core::ports::GrantUpdate {
    fn id(&self) -> i64 {
        self.id.0
    }
}

impl HasId for crate::core::ports::ActionUpdate {
    fn id(&self) -> i64 {
        self.id.0
    }
}

/// `now` and the end of a lease taken now, in stored microseconds.
fn lease_window(now: Timestamp, lease: Duration) -> (i64, i64) {
    let now_us = micros(now);
    let lease_us = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
    (now_us, now_us.saturating_add(lease_us))
}

/// Connectors to skip as `,a,b,` (one bind). Names are slugs (no commas), so the list is
/// unambiguous.
fn skip_list(skip: &[ConnectorName]) -> String {
    format!(
        ",{},",
        skip.iter()
            .map(ConnectorName::as_str)
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// A JSON array of the values: one bind for an `IN` list on both backends.
fn json_list<T: serde::Serialize>(items: impl Iterator<Item = T>) -> String {
    serde_json::to_string(&items.collect::<Vec<T>>()).unwrap_or_else(|_| "[]".into())
}

fn change_time(c: &Change) -> Timestamp {
    let mut times: Vec<Timestamp> = Vec::new();
    times.extend(c.new_request.as_ref().map(|r| r.created_at));
    times.extend(c.request_updates.iter().map(|r| r.updated_at));
    times.extend(c.new_actions.iter().map(|a| a.at));
    times.extend(c.audit.iter().map(|a| a.at));
    times.into_iter().max().unwrap_or_else(chrono::Utc::now)
}

/// Inserts or replaces a person inside a write transaction.
async fn write_person(tx: &mut Tx, p: &Person) -> Result<(), StoreError> {
    q(
        "INSERT INTO people (handle, name, email, department, role, manager, discord_id, \
         status, timezone) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (handle) DO UPDATE \
         SET name = excluded.name, email = excluded.email, department = excluded.department, \
         role = excluded.role, manager = excluded.manager, discord_id = excluded.discord_id, \
         status = excluded.status, timezone = excluded.timezone",
    )
    .bind(p.handle.as_str())
    .bind(p.name.as_str())
    .bind(p.email.as_str())
    .bind(p.department.as_str())
    .bind(p.role.as_str())
    .bind(p.manager.as_ref().map(|m| m.as_str().to_owned()))
    .bind(p.discord_id.clone())
    .bind(p.status.as_str())
    .bind(p.timezone.map(|z| z.name()))
    .execute(tx)
    .await
    .map_err(store_err)?;
    Ok(())
}

/// Inserts a plan inside a write transaction (already started when `started`); its id.
async fn insert_plan(tx: &mut Tx, plan: NewPlan, started: bool) -> Result<i64, StoreError> {
    let confirmers: Vec<&str> = plan.confirmers.iter().map(Handle::as_str).collect();
    let confirmers =
        serde_json::to_string(&confirmers).map_err(|e| StoreError::Backend(e.to_string()))?;
    let (state, decided_at) = if plan.preconfirmed {
        (PlanState::Confirmed, Some(micros(plan.created_at)))
    } else {
        (PlanState::Open, None)
    };
    q(
        "INSERT INTO plans (kind, subject, created_by, confirmers, detail, state, \
         decided_by, decided_at, reported, created_at, due_at, started) \
         VALUES (?, ?, ?, ?, ?, ?, NULL, ?, 0, ?, ?, ?) RETURNING id",
    )
    .bind(plan.kind.as_str())
    .bind(plan.subject.as_str())
    .bind(plan.created_by.as_str())
    .bind(confirmers)
    .bind(plan.detail)
    .bind(state.as_str())
    .bind(decided_at)
    .bind(micros(plan.created_at))
    .bind(plan.due_at.map(micros))
    .bind(i64::from(started))
    .fetch_i64(tx)
    .await
    .map_err(store_err)
}

fn kind_parts(k: RequestKind) -> (&'static str, Option<i64>) {
    match k {
        RequestKind::New => ("new", None),
        RequestKind::Extend(g) => ("extend", Some(g.0)),
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn seed_people(&self, people: &[Person]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await.map_err(store_err)?;
        for p in people {
            q(
                "INSERT INTO people (handle, name, email, department, role, manager, discord_id, \
                 status, timezone) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (handle) DO NOTHING",
            )
            .bind(p.handle.as_str())
            .bind(p.name.as_str())
            .bind(p.email.as_str())
            .bind(p.department.as_str())
            .bind(p.role.as_str())
            .bind(p.manager.as_ref().map(|m| m.as_str().to_owned()))
            .bind(p.discord_id.clone())
            .bind(p.status.as_str())
            .bind(p.timezone.map(|z| z.name()))
            .execute(&mut tx)
            .await
            .map_err(store_err)?;
        }
        tx.commit().await.map_err(store_err)
    }

    async fn upsert_person(&self, p: &Person, audit: Vec<AuditEvent>) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await.map_err(store_err)?;
        write_person(&mut tx, p).await?;
        let head = audit::append(&mut tx, &audit, None, self.audit_key.as_deref()).await?;
        tx.commit().await.map_err(store_err)?;
        self.anchored(head).await;
        Ok(())
    }

    async fn person(&self, h: &Handle) -> Result<Option<Person>, StoreError> {
        let row = q(PERSON_COLS.by_handle)
            .bind(h.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(person_from_row).transpose()?)
    }

    async fn people_by_handle(&self, handles: &[Handle]) -> Result<Vec<Person>, StoreError> {
        self.read_list(
            (PERSON_COLS.in_list, PERSON_COLS.in_list_pg),
            handles.iter().map(Handle::as_str),
            person_from_row,
        )
        .await
    }

    async fn person_by_discord_id(&self, id: &str) -> Result<Option<Person>, StoreError> {
        let row = q(PERSON_COLS.by_discord_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(person_from_row).transpose()?)
    }

    async fn person_by_email(&self, email: &Email) -> Result<Option<Person>, StoreError> {
        let row = q(PERSON_COLS.by_email)
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(person_from_row).transpose()?)
    }

    async fn people(&self) -> Result<Vec<Person>, StoreError> {
        let rows = q(PERSON_COLS.all)
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(person_from_row)
            .collect::<Result<_, DbError>>()?)
    }

    async fn request(&self, id: RequestId) -> Result<Option<Request>, StoreError> {
        let row = q(REQUEST_COLS.by_id)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        let Some(row) = row else { return Ok(None) };
        let mut r = request_from_row(&row)?;
        self.load_steps(&mut r).await?;
        Ok(Some(r))
    }

    async fn open_request(&self, p: &Handle, app: &AppName) -> Result<Option<Request>, StoreError> {
        let mut v = self
            .requests_where(REQUEST_COLS.open_of, &[p.as_str(), app.as_str()])
            .await?;
        Ok(v.pop())
    }

    async fn open_requests(&self) -> Result<Vec<Request>, StoreError> {
        self.requests_where(REQUEST_COLS.open, &[]).await
    }

    async fn requests_by(&self, p: &Handle) -> Result<Vec<Request>, StoreError> {
        self.requests_where(REQUEST_COLS.by_requester, &[p.as_str()])
            .await
    }

    async fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        let row = q(GRANT_COLS.by_id)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(grant_from_row).transpose()?)
    }

    async fn grants_by_id(&self, ids: &[GrantId]) -> Result<Vec<Grant>, StoreError> {
        self.read_list(
            (GRANT_COLS.in_list, GRANT_COLS.in_list_pg),
            ids.iter().map(|g| g.0),
            grant_from_row,
        )
        .await
    }

    async fn grants_of(&self, p: &Handle) -> Result<Vec<Grant>, StoreError> {
        let rows = q(GRANT_COLS.live_of)
            .bind(p.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(grant_from_row)
            .collect::<Result<_, DbError>>()?)
    }

    async fn grants_of_people(&self, people: &[Handle]) -> Result<Vec<Grant>, StoreError> {
        self.read_list(
            (GRANT_COLS.live_of_list, GRANT_COLS.live_of_list_pg),
            people.iter().map(Handle::as_str),
            grant_from_row,
        )
        .await
    }

    async fn grants_ending_by(&self, t: Timestamp) -> Result<Vec<Grant>, StoreError> {
        let rows = q(GRANT_COLS.ending_by)
            .bind(micros(t))
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(grant_from_row)
            .collect::<Result<_, DbError>>()?)
    }

    async fn action(&self, id: ActionId) -> Result<Option<Action>, StoreError> {
        let row = q(ACTION_COLS.by_id)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(action_from_row).transpose()?)
    }

    async fn actions_for_grant(&self, g: GrantId) -> Result<Vec<Action>, StoreError> {
        let rows = q(ACTION_COLS.for_grant)
            .bind(g.0)
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(action_from_row)
            .collect::<Result<_, DbError>>()?)
    }

    async fn claim_action(
        &self,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<Action>, StoreError> {
        let (now_us, until) = lease_window(now, lease);
        // One statement, atomic on its own: no explicit transaction needed.
        let _turn = self.pool.write_turn().await;
        let row = q(ACTION_COLS.claim)
            .pg(ACTION_COLS.claim_pg)
            .bind(until)
            .bind(now_us)
            .bind(now_us)
            .bind(now_us)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(action_from_row).transpose()?)
    }

    async fn claim_action_except(
        &self,
        now: Timestamp,
        lease: Duration,
        skip: &[ConnectorName],
    ) -> Result<Option<Action>, StoreError> {
        if skip.is_empty() {
            return self.claim_action(now, lease).await;
        }
        let (now_us, until) = lease_window(now, lease);
        let skipped = skip_list(skip);
        let _turn = self.pool.write_turn().await;
        let row = q(ACTION_COLS.claim_except)
            .pg(ACTION_COLS.claim_except_pg)
            .bind(until)
            .bind(now_us)
            .bind(now_us)
            .bind(skipped.clone())
            .bind(now_us)
            .bind(skipped)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(action_from_row).transpose()?)
    }

    async fn release_action(
        &self,
        id: ActionId,
        now: Timestamp,
        why: &str,
    ) -> Result<bool, StoreError> {
        let _turn = self.pool.write_turn().await;
        let n = q(
            "UPDATE actions SET state = 'pending', lease_until = NULL, last_error = ?, \
             not_before = ?, updated_at = ? WHERE id = ? AND state = 'running'",
        )
        .bind(why)
        .bind(micros(now))
        .bind(micros(now))
        .bind(id.0)
        .execute(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(n == 1)
    }

    async fn extend_leases(&self, ids: &[ActionId], until: Timestamp) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let _turn = self.pool.write_turn().await;
        q("UPDATE actions SET lease_until = ? \
           WHERE id IN (SELECT value FROM json_each(?)) AND state = 'running'")
        .pg("UPDATE actions SET lease_until = $1 \
             WHERE id = ANY(ARRAY(SELECT json_array_elements_text($2::json)::bigint)) \
             AND state = 'running'")
        .bind(micros(until))
        .bind(json_list(ids.iter().map(|a| a.0)))
        .execute(&self.pool)
        .await
        .map_err(store_err)
    }

    async fn claim_actions(
        &self,
        now: Timestamp,
        lease: Duration,
        skip: &[ConnectorName],
        limit: usize,
    ) -> Result<Vec<Action>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (now_us, until) = lease_window(now, lease);
        let skipped = skip_list(skip);
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        if self.pool.is_sqlite() {
            // Look before queuing for SQLite's one writer: an empty claim (an idle poll, a
            // wake-up after a command that queued nothing) is then a read beside the
            // writers instead of a write transaction in front of the next one.
            let due: bool = q(ACTION_COLS.any_due)
                .bind(now_us)
                .bind(skipped.clone())
                .bind(now_us)
                .bind(skipped.clone())
                .fetch_one(&self.pool)
                .await
                .map_err(store_err)?
                .try_get("due")
                .map_err(store_err)?;
            if !due {
                return Ok(Vec::new());
            }
        }
        let _turn = self.pool.write_turn().await;
        let rows = q(ACTION_COLS.claim_many)
            .pg(ACTION_COLS.claim_many_pg)
            .bind(until)
            .bind(now_us)
            .bind(now_us)
            .bind(skipped.clone())
            .bind(n)
            .bind(now_us)
            .bind(skipped)
            .bind(n)
            .bind(n)
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        let mut out = rows
            .iter()
            .map(action_from_row)
            .collect::<Result<Vec<_>, DbError>>()?;
        out.sort_by_key(|a| a.id);
        Ok(out)
    }

    async fn actions_of(&self, p: &Handle) -> Result<Vec<Action>, StoreError> {
        let rows = q(ACTION_COLS.for_person)
            .bind(p.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(action_from_row)
            .collect::<Result<_, DbError>>()?)
    }

    async fn actions_of_people(&self, people: &[Handle]) -> Result<Vec<Action>, StoreError> {
        self.read_list(
            (ACTION_COLS.for_people, ACTION_COLS.for_people_pg),
            people.iter().map(Handle::as_str),
            action_from_row,
        )
        .await
    }

    async fn create_plan(&self, plan: NewPlan, audit: Vec<AuditEvent>) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await.map_err(store_err)?;
        let id = insert_plan(&mut tx, plan, false).await?;
        let head = audit::append(&mut tx, &audit, None, self.audit_key.as_deref()).await?;
        tx.commit().await.map_err(store_err)?;
        self.anchored(head).await;
        Ok(id)
    }

    async fn plan(&self, id: i64) -> Result<Option<Plan>, StoreError> {
        let row = q(PLAN_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(plan_from_row).transpose()?)
    }

    async fn plans_of(&self, subject: &Handle) -> Result<Vec<Plan>, StoreError> {
        let rows = q(PLANS_OF)
            .bind(subject.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(plan_from_row)
            .collect::<Result<_, DbError>>()?)
    }

    async fn onboarding_plans_settled(&self, people: &[Handle]) -> Result<Vec<Plan>, StoreError> {
        self.read_list(
            (ONBOARDING_PLANS_SETTLED, ONBOARDING_PLANS_SETTLED_PG),
            people.iter().map(Handle::as_str),
            plan_from_row,
        )
        .await
    }

    async fn mark_plan_reported(&self, id: i64) -> Result<bool, StoreError> {
        let _turn = self.pool.write_turn().await;
        let n = q("UPDATE plans SET reported = 1 WHERE id = ? AND reported = 0")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(n == 1)
    }

    async fn close_plan(
        &self,
        id: i64,
        state: PlanState,
        by: &Handle,
        at: Timestamp,
        audit: Vec<AuditEvent>,
        messages: Vec<Outgoing>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await.map_err(store_err)?;
        let n = q(
            "UPDATE plans SET state = ?, decided_by = ?, decided_at = ? \
             WHERE id = ? AND state = 'open'",
        )
        .bind(state.as_str())
        .bind(by.as_str())
        .bind(micros(at))
        .bind(id)
        .execute(&mut tx)
        .await
        .map_err(store_err)?;
        if n == 0 {
            return Ok(false);
        }
        outbox::insert(&mut tx, &messages).await?;
        let head = audit::append(&mut tx, &audit, None, self.audit_key.as_deref()).await?;
        tx.commit().await.map_err(store_err)?;
        self.anchored(head).await;
        Ok(true)
    }

    async fn due_plans(&self, now: Timestamp) -> Result<Vec<Plan>, StoreError> {
        let rows = q(PLANS_DUE)
            .bind(micros(now))
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(plan_from_row)
            .collect::<Result<_, DbError>>()?)
    }

    async fn unreported_offboardings(&self) -> Result<Vec<Plan>, StoreError> {
        let rows = q(PLANS_UNREPORTED_OFFBOARD)
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(plan_from_row)
            .collect::<Result<_, DbError>>()?)
    }

    async fn start_plan(&self, id: i64) -> Result<bool, StoreError> {
        let _turn = self.pool.write_turn().await;
        let n = q("UPDATE plans SET started = 1 WHERE id = ? AND started = 0")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(n == 1)
    }

    async fn unwarned_expiring_grants(&self) -> Result<Vec<Grant>, StoreError> {
        let rows = q(GRANT_COLS.unwarned)
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(rows
            .iter()
            .map(grant_from_row)
            .collect::<Result<_, DbError>>()?)
    }

    async fn mark_hr_event(
        &self,
        id: &str,
        at: Timestamp,
        audit: Vec<AuditEvent>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await.map_err(store_err)?;
        let n = q("INSERT INTO hr_events (id, at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING")
            .bind(id)
            .bind(micros(at))
            .execute(&mut tx)
            .await
            .map_err(store_err)?;
        if n == 0 {
            return Ok(false);
        }
        let head = audit::append(&mut tx, &audit, None, self.audit_key.as_deref()).await?;
        tx.commit().await.map_err(store_err)?;
        self.anchored(head).await;
        Ok(true)
    }

    async fn mark_prompted(&self, id: RequestId, step: u32) -> Result<(), StoreError> {
        let _turn = self.pool.write_turn().await;
        q("UPDATE requests SET prompted_step = ? WHERE id = ? AND current_step = ?")
            .bind(i64::from(step))
            .bind(id.0)
            .bind(i64::from(step))
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn unprompted_requests(&self, before: Timestamp) -> Result<Vec<RequestId>, StoreError> {
        let ids: Vec<i64> = q(
            "SELECT id FROM requests WHERE state IN ('awaiting', 'no_approver') \
             AND current_step IS NOT NULL \
             AND (prompted_step IS NULL OR prompted_step <> current_step) \
             AND updated_at <= ? ORDER BY id",
        )
        .bind(micros(before))
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?
        .iter()
        .map(|r| r.try_get::<i64, _>("id"))
        .collect::<Result<_, _>>()
        .map_err(store_err)?;
        Ok(ids.into_iter().map(RequestId).collect())
    }

    async fn hr_event_seen(&self, id: &str) -> Result<bool, StoreError> {
        let n = q("SELECT COUNT(*) FROM hr_events WHERE id = ?")
            .bind(id)
            .fetch_i64(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(n > 0)
    }

    async fn unmark_hr_event(&self, id: &str) -> Result<(), StoreError> {
        let _turn = self.pool.write_turn().await;
        q("DELETE FROM hr_events WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn record_interaction(&self, id: &str, at: Timestamp) -> Result<bool, StoreError> {
        Ok(self.mark_interaction_seen(id, at).await?)
    }

    async fn queue_depth(&self) -> Result<i64, StoreError> {
        q("SELECT COUNT(*) FROM actions WHERE state IN ('pending', 'running')")
            .fetch_i64(&self.pool)
            .await
            .map_err(store_err)
    }

    async fn claim_messages(
        &self,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Queued>, StoreError> {
        self.outbox_claim(lease, limit).await
    }

    async fn message_sent(
        &self,
        id: i64,
        note: Option<&str>,
        audit: Vec<AuditEvent>,
    ) -> Result<bool, StoreError> {
        self.outbox_sent(id, note, audit).await
    }

    async fn message_retry(&self, id: i64, after: Duration, error: &str) -> Result<(), StoreError> {
        self.outbox_retry(id, after, error).await
    }

    async fn message_failed(
        &self,
        id: i64,
        error: &str,
        audit: Vec<AuditEvent>,
    ) -> Result<(), StoreError> {
        self.outbox_failed(id, error, audit).await
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        self.outbox_counts_of().await
    }

    async fn commit(&self, change: Change) -> Result<Committed, StoreError> {
        let mut out = Committed::default();
        if change.is_empty() {
            return Ok(out);
        }
        let now = micros(change_time(&change));
        let mut tx = self.begin_write().await.map_err(store_err)?;

        // 0. The HR event this change answers is recorded with it (once), the person it is
        //    about written, the plan it carries out created or claimed.
        if let Some((id, at)) = &change.hr_event {
            let n = q("INSERT INTO hr_events (id, at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING")
                .bind(id.as_str())
                .bind(micros(*at))
                .execute(&mut tx)
                .await
                .map_err(store_err)?;
            if n == 0 {
                return Err(StoreError::Conflict);
            }
        }
        if let Some(p) = &change.person {
            write_person(&mut tx, p).await?;
        }
        if let Some(plan) = &change.new_plan {
            out.plan = Some(insert_plan(&mut tx, plan.clone(), change.start_new_plan).await?);
        }
        if let Some(plan) = change.start_plan {
            let n = q("UPDATE plans SET started = 1 WHERE id = ? AND started = 0")
                .bind(plan)
                .execute(&mut tx)
                .await
                .map_err(store_err)?;
            if n == 0 {
                return Err(StoreError::Conflict);
            }
        }

        // 1. The new request (its grant is patched in after the grants exist).
        if let Some(r) = &change.new_request {
            let (kind, extends) = kind_parts(r.kind);
            let id: i64 = q(
                "INSERT INTO requests (requester, app, reason, duration_secs, kind, \
                 extends_grant, state, current_step, grant_id, created_at, updated_at, version) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, 1) RETURNING id",
            )
            .bind(r.requester.as_str())
            .bind(r.app.as_str())
            .bind(r.reason.clone())
            .bind(
                r.duration
                    .map(|d| i64::try_from(d.secs()).unwrap_or(i64::MAX)),
            )
            .bind(kind)
            .bind(extends)
            .bind(r.state.name())
            .bind(r.state.step().map(i64::from))
            .bind(micros(r.created_at))
            .bind(micros(r.created_at))
            .fetch_i64(&mut tx)
            .await
            .map_err(store_err)?;
            write_steps(&mut tx, id, &r.steps).await?;
            out.request = Some(RequestId(id));
        }

        // 2. The optimistic update: nothing else is written if somebody changed it first.
        for u in &change.request_updates {
            let n = q(
                "UPDATE requests SET state = ?, current_step = ?, updated_at = ?, \
                 version = version + 1 WHERE id = ? AND version = ?",
            )
            .bind(u.state.name())
            .bind(u.state.step().map(i64::from))
            .bind(micros(u.updated_at))
            .bind(u.id.0)
            .bind(u.expected_version)
            .execute(&mut tx)
            .await
            .map_err(store_err)?;
            if n == 0 {
                // Dropping the transaction rolls it back.
                return Err(StoreError::Conflict);
            }
            write_steps(&mut tx, u.id.0, &u.steps).await?;
        }

        // 2b. An offboarding's re-reads are enqueued once.
        if let Some(plan) = change.verify_plan {
            let n = q("UPDATE plans SET verifying = 1 WHERE id = ? AND verifying = 0")
                .bind(plan)
                .execute(&mut tx)
                .await
                .map_err(store_err)?;
            if n == 0 {
                return Err(StoreError::Conflict);
            }
        }

        // 2c. Reports are audited once: their plans are marked with their audit rows.
        if !change.report_plans.is_empty() {
            let mut ids = change.report_plans.clone();
            ids.sort_unstable();
            ids.dedup();
            let n = q(
                "UPDATE plans SET reported = 1 WHERE id IN (SELECT value FROM json_each(?)) \
                 AND reported = 0",
            )
            .pg("UPDATE plans SET reported = 1 WHERE id = ANY(ARRAY(\
                 SELECT json_array_elements_text($1::json)::bigint)) AND reported = 0")
            .bind(json_list(ids.iter()))
            .execute(&mut tx)
            .await
            .map_err(store_err)?;
            if n != ids.len() as u64 {
                return Err(StoreError::Conflict);
            }
        }
        for plan in &change.open_reports {
            q("UPDATE plans SET report_open = 1 WHERE id = ?")
                .bind(*plan)
                .execute(&mut tx)
                .await
                .map_err(store_err)?;
        }
        // 2d. An open report is closed (its final report sent and audited) once.
        if let Some(plan) = change.close_report {
            let n = q("UPDATE plans SET report_open = 0 WHERE id = ? AND report_open = 1")
                .bind(plan)
                .execute(&mut tx)
                .await
                .map_err(store_err)?;
            if n == 0 {
                return Err(StoreError::Conflict);
            }
        }

        // 3. Grants.
        for g in &change.new_grants {
            let (source, req) = match g.source {
                NewGrantSource::Birthright => ("birthright", None),
                NewGrantSource::Request(r) => ("request", resolve_req(r, out.request)?),
            };
            let id: i64 = q(
                "INSERT INTO grants (person, app, source, request_id, state, granted_at, \
                 expires_at, warned) VALUES (?, ?, ?, ?, ?, ?, ?, 0) RETURNING id",
            )
            .bind(g.person.as_str())
            .bind(g.app.as_str())
            .bind(source)
            .bind(req)
            .bind(g.state.as_str())
            .bind(g.granted_at.map(micros))
            .bind(g.expires_at.map(micros))
            .fetch_i64(&mut tx)
            .await
            .map_err(|e| match store_err(e) {
                StoreError::Duplicate(_) => StoreError::Duplicate(format!(
                    "{} already holds a live grant of {}",
                    g.person, g.app
                )),
                other => other,
            })?;
            out.grants.push(GrantId(id));
        }

        // 4. The grant a request produced (None keeps what is stored: a request never loses
        //    the grant it produced).
        let mut patches = vec![(
            change.new_request.as_ref().and_then(|r| r.grant),
            out.request.map(|r| r.0),
        )];
        patches.extend(
            change
                .request_updates
                .iter()
                .map(|u| (u.grant, Some(u.id.0))),
        );
        for (grant, req) in patches {
            if let (Some(g), Some(req)) = (grant, req) {
                let g = resolve_grant(g, &out.grants)?;
                q("UPDATE requests SET grant_id = ? WHERE id = ?")
                    .bind(g)
                    .bind(req)
                    .execute(&mut tx)
                    .await
                    .map_err(store_err)?;
            }
        }

        // Updates that set the same values are written by one statement (a finished batch
        // of the engine's actions sets the same state on all of them). Each is conditional
        // on the state it leaves: a grant another instance or click moved meanwhile fails
        // the whole change, so one expiry or revocation is done (and audited) once.
        for same in groups(&change.grant_updates, |g| {
            (g.from, g.state, g.granted_at, g.expires_at, g.warned)
        }) {
            let g = same[0];
            let ids = json_list(same.iter().map(|g| g.id.0));
            let n = q(
                "UPDATE grants SET state = ?, granted_at = ?, expires_at = ?, warned = ? \
                 WHERE id IN (SELECT value FROM json_each(?)) AND state = ?",
            )
            .pg(
                "UPDATE grants SET state = $1, granted_at = $2, expires_at = $3, warned = $4 \
                 WHERE id = ANY(ARRAY(SELECT json_array_elements_text($5::json)::bigint)) \
                 AND state = $6",
            )
            .bind(g.state.as_str())
            .bind(g.granted_at.map(micros))
            .bind(g.expires_at.map(micros))
            .bind(g.warned)
            .bind(ids.clone())
            .bind(g.from.as_str())
            .execute(&mut tx)
            .await
            .map_err(store_err)?;
            if n != same.len() as u64 {
                let found =
                    q("SELECT count(*) FROM grants WHERE id IN (SELECT value FROM json_each(?))")
                        .pg("SELECT count(*) FROM grants \
                         WHERE id = ANY(ARRAY(SELECT json_array_elements_text($1::json)::bigint))")
                        .bind(ids.clone())
                        .fetch_i64(&mut tx)
                        .await
                        .map_err(store_err)?;
                return Err(if found == same.len() as i64 {
                    StoreError::Conflict
                } else {
                    StoreError::Backend(format!("a grant of {ids} does not exist"))
                });
            }
        }

        // 5. Actions.
        for a in &change.new_actions {
            let grant = a.grant.map(|g| resolve_grant(g, &out.grants)).transpose()?;
            let req = resolve_req(a.request, out.request)?;
            let id: i64 = q(
                "INSERT INTO actions (connector, op, person, app, entitlement, grant_id, \
                 request_id, state, attempts, last_error, not_before, lease_until, created_at, \
                 updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, NULL, ?, NULL, ?, ?) \
                 RETURNING id",
            )
            .bind(a.connector.as_str())
            .bind(a.op.as_str())
            .bind(a.person.as_str())
            .bind(a.app.as_ref().map(|x| x.as_str().to_owned()))
            .bind(a.entitlement.clone())
            .bind(grant)
            .bind(req)
            .bind(micros(a.at))
            .bind(micros(a.at))
            .bind(micros(a.at))
            .fetch_i64(&mut tx)
            .await
            .map_err(store_err)?;
            out.actions.push(ActionId(id));
        }
        if let (Some(plan), Some(first)) =
            (change.first_action_of.or(out.plan), out.actions.first())
        {
            q("UPDATE plans SET first_action = ? WHERE id = ? AND first_action IS NULL")
                .bind(first.0)
                .bind(plan)
                .execute(&mut tx)
                .await
                .map_err(store_err)?;
        }

        // Each conditional on the state it leaves: two Done clicks, or a worker and a click,
        // cannot both move one action (the loser's whole change fails).
        for same in groups(&change.action_updates, |a| {
            (
                a.from,
                a.state,
                a.last_error.clone(),
                a.not_before,
                a.reset_attempts,
            )
        }) {
            let a = same[0];
            let ids = json_list(same.iter().map(|a| a.id.0));
            let n = q(
                "UPDATE actions SET state = ?, last_error = ?, not_before = ?, \
                 lease_until = NULL, updated_at = ?, \
                 attempts = CASE WHEN ? = 1 THEN 0 ELSE attempts END \
                 WHERE id IN (SELECT value FROM json_each(?)) AND state = ?",
            )
            .pg(
                "UPDATE actions SET state = $1, last_error = $2, not_before = $3, \
                 lease_until = NULL, updated_at = $4, \
                 attempts = CASE WHEN $5 = 1 THEN 0 ELSE attempts END \
                 WHERE id = ANY(ARRAY(SELECT json_array_elements_text($6::json)::bigint)) \
                 AND state = $7",
            )
            .bind(a.state.as_str())
            .bind(a.last_error.clone())
            .bind(micros(a.not_before))
            .bind(now)
            .bind(a.reset_attempts)
            .bind(ids.clone())
            .bind(a.from.as_str())
            .execute(&mut tx)
            .await
            .map_err(store_err)?;
            if n != same.len() as u64 {
                let found =
                    q("SELECT count(*) FROM actions WHERE id IN (SELECT value FROM json_each(?))")
                        .pg("SELECT count(*) FROM actions \
                         WHERE id = ANY(ARRAY(SELECT json_array_elements_text($1::json)::bigint))")
                        .bind(ids.clone())
                        .fetch_i64(&mut tx)
                        .await
                        .map_err(store_err)?;
                return Err(if found == same.len() as i64 {
                    StoreError::Conflict
                } else {
                    StoreError::Backend(format!("an action of {ids} does not exist"))
                });
            }
        }

        // 5b. The messages this decision causes, in the outbox with it, and the steps whose
        //     prompts they are.
        outbox::insert(&mut tx, &change.messages).await?;
        if !change.plan_messages.is_empty() {
            let Some(plan) = out.plan else {
                return Err(StoreError::Backend(
                    "messages about a new plan, but the change creates none".into(),
                ));
            };
            let rows: Vec<_> = change
                .plan_messages
                .iter()
                .map(|m| m.complete(plan))
                .collect();
            outbox::insert(&mut tx, &rows).await?;
        }
        for (id, step) in &change.prompted {
            q("UPDATE requests SET prompted_step = ? WHERE id = ? AND current_step = ?")
                .bind(i64::from(*step))
                .bind(id.0)
                .bind(i64::from(*step))
                .execute(&mut tx)
                .await
                .map_err(store_err)?;
        }

        // 6. The audit rows, chained under the same write lock.
        let head = audit::append(
            &mut tx,
            &change.audit,
            out.request,
            self.audit_key.as_deref(),
        )
        .await?;

        tx.commit().await.map_err(store_err)?;
        self.anchored(head).await;
        Ok(out)
    }
}

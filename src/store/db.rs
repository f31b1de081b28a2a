//! The two backends behind one small interface: a pool, a transaction, a query with its binds
//! and a row, each an enum over the native SQLite and PostgreSQL drivers.
//!
//! Queries are written once, in the SQLite form with `?` placeholders; for PostgreSQL the
//! placeholders become `$1, $2…`, and a query whose text must differ carries a PostgreSQL
//! text of its own ([`Q::pg`]). Binds are only integers and text (booleans are stored as
//! 0/1 integers on both backends), so one value type serves both drivers, and the row
//! mapping in `rows.rs` is shared.

use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{ColumnIndex, Decode, Row, Sqlite, Transaction, Type};
use tokio::sync::{Mutex, OwnedMutexGuard};

#[cfg(feature = "postgres")]
use sqlx::postgres::{PgPool, PgRow, Postgres};

mod later;
mod writing;
pub(crate) use later::{Expect, Moved};

/// A connection pool of either backend.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    /// A SQLite file, with this process's writer gate (see [`Pool::begin_write`]) and the
    /// connections kept out of sqlx's pool for statements run on their own ([`Held`]).
    Sqlite(SqlitePool, Arc<Mutex<Writer>>, Arc<Held>),
    /// A PostgreSQL database.
    #[cfg(feature = "postgres")]
    Pg(PgPool),
}

/// What this process's SQLite writers keep behind their gate: their connection, and the
/// audit chain's head as the last of them committed it (`seq`, hash).
///
/// One connection for every write transaction keeps its page cache warm (SQLite drops a
/// connection's cache when another connection wrote since its last transaction), and is
/// not sent back through sqlx's pool after each transaction (which pings it: one more round
/// trip to its thread). The kept head spares an append reading it (a round trip per write
/// transaction): the append's insert is conditional on it still being the head, and when
/// another process appended (or rows went) the head is read and the rows chained after it
/// (`audit::append`).
#[derive(Debug, Default)]
pub(crate) struct Writer {
    conn: Option<PoolConnection<Sqlite>>,
    head: Option<(i64, String)>,
}

/// An open SQLite write transaction: the gate, the writer connection (taken from it while
/// the transaction is open), the audit head this transaction appended, its deferred writes
/// ([`Tx::defer`]) and whether its `BEGIN` was sent.
///
/// The transaction is this module's, not sqlx's: `BEGIN IMMEDIATE` is not sent on its own
/// but at the head of the first statement's text ([`Writing::run_later`]) (one round trip fewer a transaction: sqlx's
/// own `BEGIN` is a command of its own; figure 12), and `COMMIT` and `ROLLBACK` are plain
/// statements. A transaction dropped without its commit is rolled back here (see `Drop`).
pub(crate) struct Writing {
    /// The gate, held until the transaction ends (None only once its drop gave it to the
    /// rollback).
    turn: Option<OwnedMutexGuard<Writer>>,
    conn: Option<PoolConnection<Sqlite>>,
    appended: Option<(i64, String)>,
    later: Vec<(Q, Expect)>,
    /// Whether the `BEGIN` went (with the first statement); until then every statement goes
    /// through [`Writing::run_later`], which sends it first.
    begun: bool,
}

/// SQLite's page cache of the writer connection, in KiB (SQLite's default is 2 MiB). With
/// 50,000 people the writer read index and table pages from the file on most writes
/// (figure 12: 12 % more writes/s with this and the group-sized statements kept prepared,
/// [`KEEP_ROWS`], alternated runs on one host). Only the writer's: SQLite drops a
/// connection's whole cache when another connection has written since its last transaction,
/// so the readers' would not stay warm (and twelve of them would hold that much memory
/// each). Taken only as pages are read; a writer connection that leaves the gate (its commit
/// failed, or its transaction was dropped and its rollback failed) keeps its size, and the
/// next writer connection is enlarged again.
pub(crate) const WRITER_CACHE_KIB: i64 = 32 * 1024;

/// A connection from the pool made the writer connection (its page cache enlarged).
async fn writer_conn(p: &SqlitePool) -> Result<PoolConnection<Sqlite>, sqlx::Error> {
    let mut c = p.acquire().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA cache_size = -{WRITER_CACHE_KIB}"
    )))
    .execute(&mut *c)
    .await?;
    Ok(c)
}

/// An open transaction of either backend.
pub(crate) enum Tx {
    /// A SQLite read transaction.
    Sqlite(Transaction<'static, Sqlite>),
    /// A SQLite write transaction, on the writer connection behind the gate.
    SqliteWrite(Writing),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Pg(Transaction<'static, Postgres>),
}

/// How many SQLite connections [`Held`] keeps.
pub(crate) const HELD: usize = 4;

/// SQLite connections taken from sqlx's pool and kept, for statements run on their own
/// (outside a transaction). sqlx tests every connection it takes back with a ping, one more
/// round trip to the connection's thread per statement (in sqlx 0.9, not configurable);
/// SQLite's connection needs none: its thread runs each statement to its end and resets it,
/// and rolls back a transaction whose `BEGIN` or `Transaction` was dropped, before the next
/// command. A connection whose statement failed goes back to sqlx's pool (and its test).
#[derive(Debug, Default)]
pub(crate) struct Held(std::sync::Mutex<Vec<PoolConnection<Sqlite>>>);

impl Held {
    /// A kept connection, else one from the pool.
    async fn get(&self, pool: &SqlitePool) -> Result<PoolConnection<Sqlite>, sqlx::Error> {
        let kept = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match kept {
            Some(c) => Ok(c),
            None => pool.acquire().await,
        }
    }

    /// Keeps `c` after a statement that succeeded (up to [`HELD`]); otherwise it goes back
    /// to the pool.
    fn keep(&self, c: PoolConnection<Sqlite>, ok: bool) {
        let mut held = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if ok && held.len() < HELD {
            held.push(c);
        }
    }

    /// Gives every kept connection back to the pool.
    fn release(&self) {
        let all = std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        drop(all);
    }
}

impl Pool {
    /// A SQLite pool whose writers this process serialises.
    pub(crate) fn sqlite(pool: SqlitePool) -> Self {
        Self::Sqlite(pool, Arc::default(), Arc::default())
    }

    /// A write transaction. SQLite takes its write lock with the transaction's first
    /// statement (`BEGIN IMMEDIATE` goes with it, see [`Writing`]: a deferred `BEGIN` ends a
    /// race in "database is locked"); PostgreSQL runs READ COMMITTED and relies on row
    /// locks, version checks and the audit advisory lock.
    ///
    /// SQLite has one writer at a time. Writers of this process first queue on an async gate
    /// (FIFO, woken the moment the previous writer ends); without it they would all issue
    /// `BEGIN IMMEDIATE` and wait in SQLite's busy handler, which sleeps 1, 2, 5, 10… ms
    /// between tries, so a short burst of writers turned into tens of milliseconds of sleep.
    /// Another process on the same file still meets the busy timeout.
    pub(crate) async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        match self {
            Self::Sqlite(p, gate, _) => {
                let mut turn = gate.clone().lock_owned().await;
                let conn = match turn.conn.take() {
                    Some(c) => c,
                    None => writer_conn(p).await?,
                };
                // `BEGIN IMMEDIATE` goes with the first statement (see [`Writing`]).
                Ok(Tx::SqliteWrite(Writing {
                    turn: Some(turn),
                    conn: Some(conn),
                    appended: None,
                    later: Vec::new(),
                    begun: false,
                }))
            }
            #[cfg(feature = "postgres")]
            Self::Pg(p) => Ok(Tx::Pg(p.begin().await?)),
        }
    }

    /// This process's turn to write, for one write statement run on its own (in its own
    /// implicit transaction: one round trip instead of BEGIN, statement, COMMIT). On SQLite
    /// it is the writer gate of [`Pool::begin_write`], held until dropped; PostgreSQL needs
    /// none.
    pub(crate) async fn write_turn(&self) -> Option<OwnedMutexGuard<Writer>> {
        match self {
            Self::Sqlite(_, gate, _) => Some(gate.clone().lock_owned().await),
            #[cfg(feature = "postgres")]
            Self::Pg(_) => None,
        }
    }

    /// Whether this is SQLite (one writer at a time: see [`Pool::begin_write`]).
    pub(crate) fn is_sqlite(&self) -> bool {
        matches!(self, Self::Sqlite(..))
    }

    /// A read transaction that sees one snapshot throughout.
    pub(crate) async fn begin_read(&self) -> Result<Tx, sqlx::Error> {
        match self {
            Self::Sqlite(p, ..) => Ok(Tx::Sqlite(p.begin().await?)),
            #[cfg(feature = "postgres")]
            Self::Pg(p) => Ok(Tx::Pg(
                p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            )),
        }
    }

    /// Closes every connection.
    pub(crate) async fn close(&self) {
        match self {
            Self::Sqlite(p, gate, held) => {
                held.release();
                drop(gate.lock().await.conn.take());
                p.close().await;
            }
            #[cfg(feature = "postgres")]
            Self::Pg(p) => p.close().await,
        }
    }
}

impl Tx {
    /// Whether this is PostgreSQL.
    pub(crate) fn is_pg(&self) -> bool {
        !matches!(self, Self::Sqlite(..) | Self::SqliteWrite(..))
    }

    /// The audit head this transaction appended, else the one this process's writers last
    /// committed (SQLite write transactions only; None: read it).
    pub(crate) fn known_head(&self) -> Option<(i64, String)> {
        match self {
            Self::SqliteWrite(w) => w
                .appended
                .clone()
                .or_else(|| w.turn.as_ref().and_then(|t| t.head.clone())),
            _ => None,
        }
    }

    /// Records the audit head this transaction's append left, to keep once it commits.
    pub(crate) fn appended(&mut self, seq: i64, hash: &str) {
        if let Self::SqliteWrite(w) = self {
            w.appended = Some((seq, hash.to_owned()));
        }
    }

    /// Forgets the kept audit head (another process appended after it).
    pub(crate) fn forget_head(&mut self) {
        if let Self::SqliteWrite(w) = self {
            if let Some(t) = w.writer() {
                t.head = None;
            }
            w.appended = None;
        }
    }

    /// Commits; a SQLite writer keeps the audit head it appended behind the gate.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        let done = match self {
            Self::Sqlite(t) => t.commit().await,
            Self::SqliteWrite(w) => w.commit().await,
            #[cfg(feature = "postgres")]
            Self::Pg(t) => t.commit().await,
        };
        if done.is_ok() {
            failpoint_after_commit();
        }
        done
    }
}

/// Where a query runs: on the pool (its own implicit transaction) or inside a transaction.
pub(crate) enum Ex<'e> {
    /// Any pooled connection.
    Pool(&'e Pool),
    /// The given transaction.
    Tx(&'e mut Tx),
}

impl<'e> From<&'e Pool> for Ex<'e> {
    fn from(p: &'e Pool) -> Self {
        Self::Pool(p)
    }
}

impl<'e> From<&'e mut Tx> for Ex<'e> {
    fn from(t: &'e mut Tx) -> Self {
        Self::Tx(t)
    }
}

/// A bound value: the store binds only integers and text (booleans as 0/1).
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// An integer or NULL.
    Int(Option<i64>),
    /// A text or NULL.
    Text(Option<String>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Self::Int(Some(v))
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Self::Int(v)
    }
}
impl From<crate::core::model::PlanId> for Val {
    fn from(v: crate::core::model::PlanId) -> Self {
        Self::Int(Some(v.0))
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Self::Int(Some(i64::from(v)))
    }
}
impl From<Option<bool>> for Val {
    fn from(v: Option<bool>) -> Self {
        Self::Int(v.map(i64::from))
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Self::Text(Some(v.to_owned()))
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Self::Text(Some(v))
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Self::Text(Some(v.clone()))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Self::Text(v)
    }
}
impl From<&Option<String>> for Val {
    fn from(v: &Option<String>) -> Self {
        Self::Text(v.clone())
    }
}
impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Self {
        Self::Text(v.map(str::to_owned))
    }
}

/// A query with its binds, not yet run.
#[derive(Debug, Clone)]
pub(crate) struct Q {
    sql: std::borrow::Cow<'static, str>,
    pg: Option<std::borrow::Cow<'static, str>>,
    binds: Vec<Val>,
    /// Kept prepared in the connection's statement cache (every fixed text is; a built one
    /// only for the few row counts that recur, see [`KEEP_ROWS`]).
    keep: bool,
    /// How many rows of values it carries ([`values`]; 1 for any other).
    rows: usize,
}

/// A query in the SQLite form (`?` placeholders), run on either backend.
pub(crate) fn q(sql: &'static str) -> Q {
    Q {
        sql: sql.into(),
        pg: None,
        binds: Vec::new(),
        keep: true,
        rows: 1,
    }
}

/// Built `VALUES` statements of at most this many rows stay prepared: most changes write one
/// to a few rows of a kind, and a group commit of concurrent writes (inbound SCIM) a dozen
/// or so, so those texts recur (preparing the audit row's insert again on every commit made a
/// single-event append 400 µs instead of 269, figure 6; with the writer's page cache,
/// [`WRITER_CACHE_KIB`], keeping a group's made figure 12 12 % faster); larger batches are
/// prepared once and dropped, so they do not crowd the cache (room for these in
/// `connect::connect_sqlite`).
const KEEP_ROWS: usize = 16;

/// The most values one statement binds (SQLite allows 32,766, PostgreSQL 65,535).
const MAX_BINDS: usize = 30_000;

/// `head` followed by `VALUES (?, …), (?, …)…` for `rows` (each as many values as the
/// first) and `tail`, as statements of at most [`MAX_BINDS`] values each, in the rows' order;
/// the same text on both backends. Built at run time (not kept as prepared statements): one
/// statement writes a batch of rows where a statement per row, or a JSON array of rows, cost
/// ten times as much per row.
pub(crate) fn values(head: &str, rows: Vec<Vec<Val>>, tail: &str) -> Vec<Q> {
    values_pg(head, tail, None, rows)
}

/// [`values`], with PostgreSQL's own `head` and `tail` where the dialects differ.
pub(crate) fn values_pg(
    head: &str,
    tail: &str,
    pg: Option<(&str, &str)>,
    rows: Vec<Vec<Val>>,
) -> Vec<Q> {
    let cols = rows.first().map_or(1, Vec::len).max(1);
    let per = (MAX_BINDS / cols).max(1);
    let mut out = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let batch: Vec<Vec<Val>> = rows.by_ref().take(per).collect();
        let one = format!("({})", vec!["?"; cols].join(", "));
        let list = vec![one.as_str(); batch.len()].join(", ");
        out.push(Q {
            sql: format!("{head} VALUES {list} {tail}").into(),
            pg: pg.map(|(h, t)| format!("{h} VALUES {list} {t}").into()),
            keep: batch.len() <= KEEP_ROWS,
            rows: batch.len(),
            binds: batch.into_iter().flatten().collect(),
        });
    }
    out
}

/// `?` placeholders as PostgreSQL's `$1, $2…` (a `?` inside a quoted literal stays).
pub(crate) fn dollars(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut quoted = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

impl Q {
    /// The PostgreSQL text of this query, where the dialects differ (also with `?`
    /// placeholders, in the same order as the SQLite text).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn pg(mut self, sql: &'static str) -> Self {
        self.pg = Some(sql.into());
        self
    }

    /// How many rows of values it carries (a [`values`] statement's batch; else 1).
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Binds the next placeholder.
    pub(crate) fn bind(mut self, v: impl Into<Val>) -> Self {
        self.binds.push(v.into());
        self
    }

    fn sqlite(self) -> sqlx::query::Query<'static, Sqlite, <Sqlite as sqlx::Database>::Arguments> {
        let mut query = match self.sql {
            std::borrow::Cow::Borrowed(sql) => sqlx::query::<Sqlite>(sql),
            std::borrow::Cow::Owned(sql) => {
                sqlx::query::<Sqlite>(sqlx::AssertSqlSafe(sql)).persistent(self.keep)
            }
        };
        for v in self.binds {
            query = match v {
                Val::Int(i) => query.bind(i),
                Val::Text(s) => query.bind(s),
            };
        }
        query
    }

    #[cfg(feature = "postgres")]
    fn postgres(
        self,
    ) -> sqlx::query::Query<'static, Postgres, <Postgres as sqlx::Database>::Arguments> {
        let persistent = self.keep;
        let text = dollars(self.pg.as_deref().unwrap_or(&self.sql));
        let mut query = sqlx::query::<Postgres>(sqlx::AssertSqlSafe(text)).persistent(persistent);
        for v in self.binds {
            query = match v {
                Val::Int(i) => query.bind(i),
                Val::Text(s) => query.bind(s),
            };
        }
        query
    }

    /// Runs it; the number of rows it changed.
    pub(crate) async fn execute<'e>(self, ex: impl Into<Ex<'e>>) -> Result<u64, sqlx::Error> {
        let ex = ex.into();
        // A statement on the pool commits on its own: a commit boundary too.
        let autocommit = matches!(ex, Ex::Pool(_));
        let n = match ex {
            Ex::Pool(Pool::Sqlite(p, _, held)) => {
                let mut c = held.get(p).await?;
                let done = self.sqlite().execute(&mut *c).await;
                held.keep(c, done.is_ok());
                done?.rows_affected()
            }
            Ex::Tx(Tx::Sqlite(t)) => self.sqlite().execute(&mut **t).await?.rows_affected(),
            Ex::Tx(Tx::SqliteWrite(w)) if w.has_later() => w.run_later(Some(self), false).await?.1,
            Ex::Tx(Tx::SqliteWrite(w)) => self.sqlite().execute(w.conn()?).await?.rows_affected(),
            #[cfg(feature = "postgres")]
            Ex::Pool(Pool::Pg(p)) => self.postgres().execute(p).await?.rows_affected(),
            #[cfg(feature = "postgres")]
            Ex::Tx(Tx::Pg(t)) => self.postgres().execute(&mut **t).await?.rows_affected(),
        };
        if autocommit && n > 0 {
            failpoint_after_commit();
        }
        Ok(n)
    }

    /// Every row it returns.
    pub(crate) async fn fetch_all<'e>(
        self,
        ex: impl Into<Ex<'e>>,
    ) -> Result<Vec<DbRow>, sqlx::Error> {
        Ok(match ex.into() {
            Ex::Pool(Pool::Sqlite(p, _, held)) => {
                let mut c = held.get(p).await?;
                let rows = self.sqlite().fetch_all(&mut *c).await;
                held.keep(c, rows.is_ok());
                wrap(rows?, DbRow::Sqlite)
            }
            Ex::Tx(Tx::Sqlite(t)) => wrap(self.sqlite().fetch_all(&mut **t).await?, DbRow::Sqlite),
            Ex::Tx(Tx::SqliteWrite(w)) if w.has_later() => {
                wrap(w.run_later(Some(self), false).await?.0, DbRow::Sqlite)
            }
            Ex::Tx(Tx::SqliteWrite(w)) => {
                wrap(self.sqlite().fetch_all(w.conn()?).await?, DbRow::Sqlite)
            }
            #[cfg(feature = "postgres")]
            Ex::Pool(Pool::Pg(p)) => wrap(self.postgres().fetch_all(p).await?, DbRow::Pg),
            #[cfg(feature = "postgres")]
            Ex::Tx(Tx::Pg(t)) => wrap(self.postgres().fetch_all(&mut **t).await?, DbRow::Pg),
        })
    }

    /// The first row, if any.
    pub(crate) async fn fetch_optional<'e>(
        self,
        ex: impl Into<Ex<'e>>,
    ) -> Result<Option<DbRow>, sqlx::Error> {
        Ok(match ex.into() {
            Ex::Pool(Pool::Sqlite(p, _, held)) => {
                let mut c = held.get(p).await?;
                let row = self.sqlite().fetch_optional(&mut *c).await;
                held.keep(c, row.is_ok());
                row?.map(DbRow::Sqlite)
            }
            Ex::Tx(Tx::Sqlite(t)) => self
                .sqlite()
                .fetch_optional(&mut **t)
                .await?
                .map(DbRow::Sqlite),
            Ex::Tx(Tx::SqliteWrite(w)) if w.has_later() => w
                .run_later(Some(self), false)
                .await?
                .0
                .into_iter()
                .next()
                .map(DbRow::Sqlite),
            Ex::Tx(Tx::SqliteWrite(w)) => self
                .sqlite()
                .fetch_optional(w.conn()?)
                .await?
                .map(DbRow::Sqlite),
            #[cfg(feature = "postgres")]
            Ex::Pool(Pool::Pg(p)) => self.postgres().fetch_optional(p).await?.map(DbRow::Pg),
            #[cfg(feature = "postgres")]
            Ex::Tx(Tx::Pg(t)) => self
                .postgres()
                .fetch_optional(&mut **t)
                .await?
                .map(DbRow::Pg),
        })
    }

    /// The first row; an error when there is none.
    pub(crate) async fn fetch_one<'e>(self, ex: impl Into<Ex<'e>>) -> Result<DbRow, sqlx::Error> {
        self.fetch_optional(ex)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// The first column of the first row, as an integer (`COUNT(*)`, `RETURNING id`).
    pub(crate) async fn fetch_i64<'e>(self, ex: impl Into<Ex<'e>>) -> Result<i64, sqlx::Error> {
        self.fetch_one(ex).await?.try_get::<i64, _>(0)
    }
}

fn wrap<R>(rows: Vec<R>, f: impl Fn(R) -> DbRow) -> Vec<DbRow> {
    rows.into_iter().map(f).collect()
}

/// A row of either backend.
#[derive(Debug)]
pub(crate) enum DbRow {
    /// SQLite.
    Sqlite(SqliteRow),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Pg(PgRow),
}

/// The types a row column decodes to on both backends.
#[cfg(feature = "postgres")]
pub(crate) trait Col<'r>:
    Decode<'r, Sqlite> + Type<Sqlite> + Decode<'r, Postgres> + Type<Postgres>
{
}
#[cfg(feature = "postgres")]
impl<'r, T> Col<'r> for T where
    T: Decode<'r, Sqlite> + Type<Sqlite> + Decode<'r, Postgres> + Type<Postgres>
{
}
/// The types a row column decodes to.
#[cfg(not(feature = "postgres"))]
pub(crate) trait Col<'r>: Decode<'r, Sqlite> + Type<Sqlite> {}
#[cfg(not(feature = "postgres"))]
impl<'r, T> Col<'r> for T where T: Decode<'r, Sqlite> + Type<Sqlite> {}

/// A column index valid for both backends' rows (a name or a position).
#[cfg(feature = "postgres")]
pub(crate) trait Idx: ColumnIndex<SqliteRow> + ColumnIndex<PgRow> {}
#[cfg(feature = "postgres")]
impl<I> Idx for I where I: ColumnIndex<SqliteRow> + ColumnIndex<PgRow> {}
/// A column index (a name or a position).
#[cfg(not(feature = "postgres"))]
pub(crate) trait Idx: ColumnIndex<SqliteRow> {}
#[cfg(not(feature = "postgres"))]
impl<I> Idx for I where I: ColumnIndex<SqliteRow> {}

impl DbRow {
    /// One column. Booleans are stored as integers: read them with [`DbRow::flag`].
    pub(crate) fn try_get<'r, T: Col<'r>, I: Idx>(&'r self, i: I) -> Result<T, sqlx::Error> {
        match self {
            Self::Sqlite(r) => r.try_get(i),
            #[cfg(feature = "postgres")]
            Self::Pg(r) => r.try_get(i),
        }
    }

    /// A 0/1 integer column as a boolean.
    pub(crate) fn flag<I: Idx>(&self, i: I) -> Result<bool, sqlx::Error> {
        Ok(self.try_get::<i64, I>(i)? != 0)
    }

    /// A nullable 0/1 integer column as a boolean.
    pub(crate) fn opt_flag<I: Idx>(&self, i: I) -> Result<Option<bool>, sqlx::Error> {
        Ok(self.try_get::<Option<i64>, I>(i)?.map(|v| v != 0))
    }
}

/// The crash tests' failpoint: in a debug (test) build, `QM_ABORT_AFTER_COMMIT=N` in the
/// environment aborts the whole process right after its N-th committed transaction (or statement
/// that changed rows outside one), as a
/// SIGKILL at that boundary would. Release builds compile it out.
#[cfg(debug_assertions)]
fn failpoint_after_commit() {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    static COMMITS: AtomicU64 = AtomicU64::new(0);
    let at = *AT.get_or_init(|| {
        std::env::var("QM_ABORT_AFTER_COMMIT")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(at) = at
        && COMMITS.fetch_add(1, Ordering::SeqCst) + 1 == at
    {
        eprintln!("failpoint: aborting the process after commit {at}");
        std::process::abort();
    }
}

#[cfg(not(debug_assertions))]
fn failpoint_after_commit() {}

#[cfg(test)]
mod tests {
    use super::{MAX_BINDS, Val, dollars, values};

    #[test]
    fn placeholders_become_numbered_outside_literals() {
        assert_eq!(
            dollars("SELECT a FROM t WHERE b = ? AND c = '?' AND d IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND d IN ($2, $3)"
        );
    }

    #[test]
    fn rows_are_split_into_statements_of_at_most_max_binds_in_order() {
        let cols = 7;
        let per = MAX_BINDS / cols;
        let n = per * 2 + 3;
        let rows: Vec<Vec<Val>> = (0..n)
            .map(|i| {
                (0..cols)
                    .map(|c| Val::from((i * cols + c) as i64))
                    .collect()
            })
            .collect();
        let qs = values("INSERT INTO t (a, b, c, d, e, f, g)", rows, "RETURNING id");
        assert_eq!(qs.len(), 3);
        assert_eq!(
            qs.iter().map(|q| q.binds.len()).collect::<Vec<_>>(),
            vec![per * cols, per * cols, 3 * cols]
        );
        // Every value once, in the rows' order, across the statements.
        let all: Vec<i64> = qs
            .iter()
            .flat_map(|q| q.binds.iter())
            .map(|v| match v {
                Val::Int(Some(i)) => *i,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(all, (0..(n * cols) as i64).collect::<Vec<_>>());
        let last = &qs[2].sql;
        assert!(
            last.starts_with("INSERT INTO t (a, b, c, d, e, f, g) VALUES (?, ?, ?, ?, ?, ?, ?), ")
        );
        assert!(last.ends_with("(?, ?, ?, ?, ?, ?, ?) RETURNING id"));
        assert_eq!(last.matches('?').count(), 3 * cols);
        assert!(values("INSERT INTO t (a)", Vec::new(), "").is_empty());
    }
}

//! Opening the database: the SQLite and PostgreSQL pools, their migrations, SQLite's
//! background checkpoints, and the audit anchor file a store appends its heads to.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretSlice;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::db::{Pool, q};
use super::{DbError, SqlStore, anchor, audit, redact_url, rows};
use crate::core::audit::AuditAction;
use crate::core::model::AuditEvent;
use crate::core::ports::{Change, UnitOfWork};

/// How long a writer waits for SQLite's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

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
        Pool::Sqlite(p, gate, _) => Some(Arc::new(spawn_checkpoints(
            p.clone(),
            gate.clone(),
            wal_file(url),
        ))),
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
    pub(super) async fn anchored(&self, head: Option<anchor::Head>) {
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

/// How often the size of the log file is looked at (a `stat`, no lock, no SQLite call).
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// How often it is looked at while the file grows past [`WATCH_CLOSELY_FROM`] bytes: an import
/// writing beside `serve` grows the log by about 120 MB a second, 12 MB between two looks
/// 100 ms apart, so it went that far past [`TRUNCATE_AT_BYTES`] before anything was done.
const WATCH_CLOSELY: Duration = Duration::from_millis(20);

/// See [`WATCH_CLOSELY`]; the size of [`RESTART_AT_FRAMES`] 4 KiB frames, from which the log
/// is copied to its end under the gate anyway.
const WATCH_CLOSELY_FROM: u64 = 16 << 20;

/// A log of at least this many frames (4 KiB pages: 16 MiB) is copied to its end under the
/// write gate, so the next writer starts it over; a log file of at least
/// [`TRUNCATE_AT_BYTES`] is truncated there.
const RESTART_AT_FRAMES: i64 = 4096;

/// At most this many passive checkpoints in a row before the gate is taken.
const PASSES: usize = 5;

/// Passive checkpoints repeat while writers appended more than this many frames during the
/// last one: what is left for the gate is small.
const LEFT_FOR_THE_GATE: i64 = 256;

/// See [`RESTART_AT_FRAMES`]. The file keeps its size when the log starts over, so a busy
/// hour of interactions also reaches it: each truncation holds writers for tens of
/// milliseconds, and from 16 MiB it raised figure 1's burst p99 from 5.7 to 30.6 ms (figure
/// 1's file now stays under 40 MiB). From 40 MiB, watched every [`WATCH_CLOSELY`], a
/// 50,000-person import beside `serve` peaks at 51-58 MB (figure 9's bound is 64 MB); from
/// 48 MiB watched every 100 ms it reached 70-76 MB once the import ran faster.
const TRUNCATE_AT_BYTES: u64 = 40 << 20;

/// The write-ahead log file of the SQLite database at `url` (`None` in memory).
fn wal_file(url: &str) -> Option<std::path::PathBuf> {
    let opts = SqliteConnectOptions::from_str(url).ok()?;
    let db = opts.get_filename();
    let name = db.to_str()?;
    if name.is_empty() || name == ":memory:" || url.contains("mode=memory") {
        return None;
    }
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    Some(wal.into())
}

/// Checkpoints the SQLite WAL from a task of its own until the returned sender (held by the
/// store's clones) is dropped. SQLite's automatic checkpoint (turned off in
/// [`connect_sqlite`]) runs inside the commit that takes the log past 1,000 pages: a few
/// milliseconds of file copying and `fsync` in whichever request commits then, often enough
/// (every 100 or so interactions) to set their p99. So every [`CHECKPOINT_EVERY`] a
/// `PASSIVE` checkpoint runs here, waiting for no reader or writer. Under a steady stream of
/// writers (an import, a burst of expiries, another process) it never catches up, and the log
/// only grows (a 2 GB WAL beside a 25 MB database was seen): so once the log holds
/// [`RESTART_AT_FRAMES`], or its file [`TRUNCATE_AT_BYTES`] (looked at every
/// [`WATCH_EVERY`], or [`WATCH_CLOSELY`] while it grows big, which costs the writers nothing),
/// passive checkpoints repeat until little was appended during the last, then the task
/// takes this process's write `gate` (writers wait a moment) and copies the rest: the next
/// writer starts the log over (SQLite cuts the file back to `journal_size_limit` then); a
/// file that big is emptied (`TRUNCATE`). Figure 12 (SCIM writes at ~3,000/s, a log of
/// 10,000-25,000 frames a second) measured the gate held 75-285 ms a second by `TRUNCATE`
/// straight after one passive checkpoint, ~35 ms by the last pass (mostly its two
/// `fsync`s). (Running the checkpoint itself every 250 ms tripled the p99 of interactions
/// arriving in bursts of 200/s: hence the size is watched, and the log checkpointed only
/// every second or when it is big.)
fn spawn_checkpoints(
    pool: sqlx::SqlitePool,
    gate: Arc<tokio::sync::Mutex<super::db::Writer>>,
    wal: Option<std::path::PathBuf>,
) -> tokio::sync::oneshot::Sender<()> {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut since = Duration::ZERO;
        let (mut every, mut last) = (WATCH_EVERY, 0);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                () = tokio::time::sleep(every) => {}
            }
            if pool.is_closed() {
                break;
            }
            since += every;
            let size = wal
                .as_deref()
                .and_then(|w| std::fs::metadata(w).ok())
                .map_or(0, |m| m.len());
            every = next_look(size, last);
            last = size;
            let big = size >= TRUNCATE_AT_BYTES;
            if !big && since < CHECKPOINT_EVERY {
                continue;
            }
            since = Duration::ZERO;
            // Copies without holding writers, again while writers appended much meanwhile.
            let mut frames = 0;
            for pass in 0..PASSES {
                match checkpoint(&pool, Checkpoint::Passive).await {
                    Ok(Frames { log, copied }) => {
                        let grew = log - frames;
                        frames = log;
                        // A short log, or little appended while the last pass copied.
                        if log < RESTART_AT_FRAMES
                            || (pass > 0 && copied == log && grew <= LEFT_FOR_THE_GATE)
                        {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "WAL checkpoint failed; trying again later");
                        break;
                    }
                }
            }
            let how = if big {
                Checkpoint::Truncate
            } else if frames >= RESTART_AT_FRAMES {
                Checkpoint::Passive
            } else {
                continue;
            };
            let _writers_wait = gate.lock().await;
            if let Err(e) = checkpoint(&pool, how).await {
                tracing::debug!(error = %e, "WAL checkpoint failed; trying again later");
            }
        }
    });
    stop
}

/// When to look at the log file again, from its size now and at the last look: soon while a
/// big file grows. A file that stays big (the log started over inside it) is looked at as
/// usual, so an idle server does not wake every [`WATCH_CLOSELY`].
fn next_look(size: u64, last: u64) -> Duration {
    if size >= WATCH_CLOSELY_FROM && size > last {
        WATCH_CLOSELY
    } else {
        WATCH_EVERY
    }
}

/// A checkpoint's mode (SQLite's names).
#[derive(Debug, Clone, Copy)]
enum Checkpoint {
    /// Copies what it can, waiting for nobody.
    Passive,
    /// Copies everything, waits for readers, and empties the file.
    Truncate,
}

/// How many frames a checkpoint found in the log, and how many of them are in the database.
struct Frames {
    log: i64,
    copied: i64,
}

/// Runs `PRAGMA wal_checkpoint(…)`.
async fn checkpoint(pool: &sqlx::SqlitePool, how: Checkpoint) -> Result<Frames, sqlx::Error> {
    use sqlx::Row;
    let sql = match how {
        Checkpoint::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
        Checkpoint::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    let row = sqlx::query(sql).fetch_one(pool).await?;
    Ok(Frames {
        log: row.try_get::<i64, _>(1)?,
        copied: row.try_get::<i64, _>(2)?,
    })
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
        .pragma("wal_autocheckpoint", "0")
        // After a checkpoint, a WAL file larger than this is cut back to it.
        .pragma("journal_size_limit", "67108864")
        // Room for the built multi-row statements kept prepared (`db::KEEP_ROWS`).
        .statement_cache_capacity(400);
    // No ping before each use (sqlx's default): a connection to a local file does not go
    // stale, and the ping was one more round trip to the connection's thread per statement
    // in the caller's path (sqlx still tests each connection on release, in a task).
    // Eight for transactions, plus the four that statements run on their own keep out of
    // the pool (`db::Held`).
    let pool = SqlitePoolOptions::new()
        .max_connections(8 + super::db::HELD as u32)
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

#[cfg(test)]
mod tests {
    use super::{WATCH_CLOSELY, WATCH_CLOSELY_FROM, WATCH_EVERY, next_look};

    #[test]
    fn the_log_is_watched_closely_only_while_a_big_file_grows() {
        let big = WATCH_CLOSELY_FROM;
        // Growing past the mark: looked at again soon.
        assert_eq!(next_look(big + 4096, big), WATCH_CLOSELY);
        assert_eq!(next_look(big, 0), WATCH_CLOSELY);
        // Small, or big but not growing (idle, or the log started over inside the file).
        assert_eq!(next_look(big - 1, 0), WATCH_EVERY);
        assert_eq!(next_look(big * 3, big * 3), WATCH_EVERY);
        assert_eq!(next_look(big * 2, big * 3), WATCH_EVERY);
    }
}

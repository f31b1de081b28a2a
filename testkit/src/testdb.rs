//! Throw-away databases for tests: a fresh SQLite file or a fresh PostgreSQL database, chosen
//! per test or by the `QM_TEST_DB` environment variable (`sqlite`, the default, or
//! `postgres`). A PostgreSQL test database is named `qm_test_<pid>_<n>_<nanos>`, created on
//! the server at `QM_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) and
//! dropped (`WITH (FORCE)`) when the [`TestDb`] is dropped.

use std::sync::atomic::{AtomicU64, Ordering};

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend `QM_TEST_DB` names (`sqlite` when unset); panics on anything else, so a
    /// typo never silently runs the wrong backend.
    pub fn from_env() -> Self {
        match std::env::var("QM_TEST_DB").as_deref() {
            Err(_) | Ok("") | Ok("sqlite") => Self::Sqlite,
            Ok("postgres") | Ok("postgresql") | Ok("pg") => Self::Postgres,
            Ok(other) => panic!("QM_TEST_DB={other:?}: use sqlite or postgres"),
        }
    }
}

/// The server tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("QM_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// What to do when the test server cannot be reached.
const HOW_TO_START: &str = "start PostgreSQL (on Debian: `pg_ctlcluster --skip-systemctl-redirect \
     $(ls /etc/postgresql) main start`; it must accept `postgres` without a password on \
     127.0.0.1:5432), or point QM_TEST_PG_URL at a server where this user may CREATE DATABASE";

/// A database for one test; dropped with it.
#[derive(Debug)]
pub struct TestDb {
    /// The URL to pass to `connect` / `--db`.
    pub url: String,
    /// The PostgreSQL database to drop, if any.
    pg_name: Option<String>,
    /// The directory holding a SQLite file.
    _dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestDb {
    /// A fresh, empty database of `backend`. Panics (with how to start PostgreSQL) when the
    /// PostgreSQL server cannot be reached: a test never silently skips.
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("qm.db").display());
                Self {
                    url,
                    pg_name: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => Self::create_pg().await,
        }
    }

    #[cfg(feature = "postgres")]
    async fn create_pg() -> Self {
        use sqlx::Connection;
        let admin = admin_url();
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) => panic!(
                "cannot reach the test PostgreSQL at {}: {e}. {HOW_TO_START}",
                quartermaster::store::redact_url(&admin)
            ),
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "qm_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let create = format!("CREATE DATABASE {name}");
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&mut conn)
            .await
        {
            panic!("cannot create the test database {name}: {e}. {HOW_TO_START}");
        }
        let _ = conn.close().await;
        // Replace the database part of the admin URL.
        let (base, query) = match admin.split_once('?') {
            Some((b, q)) => (b.to_owned(), format!("?{q}")),
            None => (admin.clone(), String::new()),
        };
        let root = match base.rfind('/') {
            Some(i) if i > base.find("://").map_or(0, |j| j + 2) => base[..i].to_owned(),
            _ => base.clone(),
        };
        Self {
            url: format!("{root}/{name}{query}"),
            pg_name: Some(name),
            _dir: None,
        }
    }

    #[cfg(not(feature = "postgres"))]
    async fn create_pg() -> Self {
        panic!("this build has no PostgreSQL support: build with --features postgres")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        #[cfg(feature = "postgres")]
        if let Some(name) = self.pg_name.take() {
            // Drop runs inside (or outside) a runtime: do the async work on a thread of its own.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    use sqlx::Connection;
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url()).await {
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
                        let _ = c.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Runs one SQL statement on the database at `url` behind the product's back, as someone
/// with SQL access would (tampering with the audit trail, corrupting a stored row).
pub async fn execute(url: &str, sql: &'static str) {
    use sqlx::Connection;
    #[cfg(feature = "postgres")]
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
        return;
    }
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    sqlx::query(sql).execute(&mut c).await.unwrap();
}

//! Deferred writes: a SQLite write transaction's writes that answer nothing but how many rows
//! they changed wait, and go with the transaction's next statement (or its commit) as one
//! text, in one round trip to the connection's thread instead of one each.
//!
//! A group commit of inbound SCIM writes (figure 12) spent most of its time in those round
//! trips, not in SQLite: a command to the connection's thread and its answer back, each a
//! thread wake-up. A deferred write is checked against what it had to change when its
//! answer comes; one that changed otherwise, or failed, fails the statement it went with,
//! and so the transaction (its caller drops it, which rolls it back). At the commit, the
//! `COMMIT` goes in the same text, after a guard statement for each conditional write that
//! fails (and so ends the text) when the write missed: one round trip for the transaction's
//! last writes and its commit.
//!
//! sqlx's SQLite driver runs a text of several statements, binding the values to each in
//! turn and answering each statement's changes; sqlx calls that behaviour deprecated (the
//! other drivers do not have it), so this is the only place that relies on it. Its loss
//! would show in `store::tests::deferred` and in every test that writes on SQLite (a write
//! transaction's `BEGIN` goes with its first statement through here).
//!
//! The joined texts are kept prepared like any other when every part is (see `KEEP_ROWS`):
//! their number is that of the sequences of deferred writes a change makes, and of the
//! statements a write transaction starts with, a few dozen.

use std::borrow::Cow;

use futures_util::TryStreamExt;
use sqlx::sqlite::SqliteRow;
use sqlx::{Either, Executor};

use super::{Q, Tx, Writing};

/// What a deferred write ([`Tx::defer`]) must change for its transaction to go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Exactly this many rows: a conditional write (a version, a state) that changed fewer
    /// found the stored state moved.
    Rows(u64),
    /// Any number (an insert that skips what is already there).
    Any,
}

impl Expect {
    /// `Ok` when `changed` rows is what was expected, else the [`Moved`] error.
    pub(crate) fn check(self, changed: u64) -> Result<(), sqlx::Error> {
        match self {
            Self::Rows(want) if want != changed => Err(sqlx::Error::Database(Box::new(Moved {
                want,
                got: changed,
            }))),
            _ => Ok(()),
        }
    }
}

/// A conditional write changed other than it was expected to: the stored state moved since
/// it was read (the store answers `StoreError::Conflict`).
#[derive(Debug, thiserror::Error)]
#[error("a conditional write changed {got} rows where {want} were expected")]
pub(crate) struct Moved {
    want: u64,
    got: u64,
}

impl sqlx::error::DatabaseError for Moved {
    fn message(&self) -> &str {
        "the stored state moved"
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

impl Tx {
    /// Runs a write whose only answer is how many rows it changed, checked against `expect`
    /// ([`Moved`] when it changed otherwise). In a SQLite write transaction it waits and goes
    /// with the transaction's next statement or its commit (see the module's comment), which
    /// then fails in its stead; elsewhere it runs now.
    pub(crate) async fn defer(&mut self, q: Q, expect: Expect) -> Result<(), sqlx::Error> {
        if let Self::SqliteWrite(w) = self {
            w.later.push((q, expect));
            return Ok(());
        }
        let n = q.execute(&mut *self).await?;
        expect.check(n)
    }
}

impl Writing {
    /// Whether anything waits to go with the next statement: deferred writes, or the
    /// transaction's `BEGIN` (not sent yet).
    pub(super) fn has_later(&self) -> bool {
        !self.begun || !self.later.is_empty()
    }

    /// Runs the deferred writes, then `last` (when given), as one text: the rows `last`
    /// returned and the rows it changed. The first deferred write that fails or changes
    /// other than expected ends it with that error (what followed it is not looked at: the
    /// transaction is to be rolled back).
    ///
    /// With `guarded`, a conditional write ([`Expect::Rows`]) is followed in the text by a
    /// statement that fails when it changed otherwise ([`guard`]): the thread running the
    /// text runs ahead of this reader, so a `last` that must not run after a miss (the
    /// `COMMIT`) needs SQLite itself to stop before it.
    pub(super) async fn run_later(
        &mut self,
        last: Option<Q>,
        guarded: bool,
    ) -> Result<(Vec<SqliteRow>, u64), sqlx::Error> {
        // The statements before `last`, each with what it must change (a guard: any, its
        // answer is its success). The first text of a transaction starts with its `BEGIN`
        // (see [`Writing`]).
        let mut parts: Vec<(Q, Expect)> = Vec::new();
        if !std::mem::replace(&mut self.begun, true) {
            parts.push((super::q("BEGIN IMMEDIATE"), Expect::Any));
        }
        for (q, expect) in std::mem::take(&mut self.later) {
            parts.push((q, expect));
            if let (true, Expect::Rows(n)) = (guarded, expect) {
                parts.push((guard(n), Expect::Any));
            }
        }
        let stated = parts.len();
        parts.extend(last.map(|q| (q, Expect::Any)));
        let mut expects = Vec::with_capacity(parts.len());
        let (mut sql, mut binds, mut keep) = (String::new(), Vec::new(), true);
        for (q, expect) in parts {
            if !sql.is_empty() {
                sql.push_str(";\n");
            }
            sql.push_str(&q.sql);
            binds.extend(q.binds);
            keep &= q.keep;
            expects.push(expect);
        }
        let all = Q {
            sql: Cow::Owned(sql),
            pg: None,
            binds,
            keep,
            rows: 0,
        };
        let conn = self.conn()?;
        let mut steps = conn.fetch_many(all.sqlite());
        let (mut rows, mut changed, mut done) = (Vec::new(), 0, 0);
        while let Some(step) = steps.try_next().await? {
            match step {
                Either::Left(result) if done < stated => {
                    expects[done].check(result.rows_affected())?;
                    done += 1;
                }
                Either::Left(result) => {
                    changed = result.rows_affected();
                    done += 1;
                }
                Either::Right(row) if done >= stated => rows.push(row),
                Either::Right(_) => {}
            }
        }
        Ok((rows, changed))
    }
}

/// A statement that fails unless the statement before it changed `n` rows: `json()` of a text
/// that is not JSON is an error, which ends a text of several statements there.
fn guard(n: u64) -> Q {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    super::q("SELECT json(CASE WHEN changes() = ? THEN '0' ELSE 'moved' END)").bind(n)
}

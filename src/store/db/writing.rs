//! A SQLite write transaction's end: its commit, and the rollback of one dropped before it.

use super::{Writer, Writing, q};

impl Writing {
    /// What the writers keep behind the gate.
    pub(super) fn writer(&mut self) -> Option<&mut Writer> {
        self.turn.as_deref_mut()
    }

    pub(super) fn conn(&mut self) -> Result<&mut sqlx::SqliteConnection, sqlx::Error> {
        self.conn.as_deref_mut().ok_or(sqlx::Error::PoolClosed)
    }

    pub(super) async fn commit(mut self) -> Result<(), sqlx::Error> {
        if !self.begun && self.later.is_empty() {
            // Nothing was sent, nothing waits: nothing to commit.
            let conn = self.conn.take();
            if let Some(w) = self.writer() {
                w.conn = conn;
            }
            return Ok(());
        }
        // The deferred writes go with the COMMIT, in one text that stops before it when one
        // of them fails or misses (guarded, see [`Writing::run_later`]).
        let done = if self.has_later() {
            self.run_later(Some(q("COMMIT")), true).await.map(|_| ())
        } else {
            q("COMMIT").sqlite().execute(self.conn()?).await.map(|_| ())
        };
        let mut conn = self.conn.take().ok_or(sqlx::Error::PoolClosed)?;
        match (&done, self.appended.take()) {
            (Ok(()), head) => {
                if let Some(w) = self.writer() {
                    w.conn = Some(conn);
                    if head.is_some() {
                        w.head = head;
                    }
                }
            }
            // Whether it landed is unknown: the head is read again. A failed COMMIT, or a
            // deferred write that stopped the text before it, leaves the transaction open
            // (as may a deferred constraint, a busy database): it is rolled back before the
            // connection goes back behind the gate, still holding the write lock; one that
            // cannot be rolled back is closed (SQLite rolls back).
            (Err(_), _) => {
                let back = q("ROLLBACK").sqlite().execute(&mut *conn).await.is_ok();
                if !back {
                    conn.close_on_drop();
                }
                if let Some(w) = self.writer() {
                    w.head = None;
                    if back {
                        w.conn = Some(conn);
                    }
                }
            }
        }
        done
    }
}

impl Drop for Writing {
    /// A transaction dropped before its commit is rolled back on a task of its own (a drop
    /// cannot wait), which holds the gate until then and puts the connection back behind
    /// it. The connection is marked to be closed, not pooled, when it is dropped: so a
    /// rollback that fails, or never runs (no runtime, or one shutting down), ends in SQLite
    /// rolling back the closed connection's transaction. A connection whose `BEGIN` was
    /// never sent goes back behind the gate as it is.
    fn drop(&mut self) {
        let Some(mut c) = self.conn.take() else {
            return;
        };
        if !self.begun {
            if let Some(w) = self.writer() {
                w.conn = Some(c);
            }
            return;
        }
        // Whatever becomes of it (the rollback fails, the task never runs because the runtime
        // is shutting down, or it is dropped later on), it is never given back to the pool.
        c.close_on_drop();
        let turn = self.turn.take();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if q("ROLLBACK").sqlite().execute(&mut *c).await.is_ok()
                    && let Some(mut w) = turn
                {
                    // Back behind the gate, which opens now.
                    w.conn = Some(c);
                }
            });
        }
    }
}

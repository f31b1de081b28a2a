//! How the service writes: every [`Change`] goes through [`Service::commit`], which wakes a
//! worker when the change queued connector work; a read-decide-commit that can lose a version
//! race runs under [`Service::retry_on_conflict`].

use super::*;

/// How many times a read-decide-commit is tried before a version conflict is given up on.
pub(super) const CONFLICT_TRIES: usize = 8;

/// What one read-decide-commit attempt came to.
pub(super) enum Attempt<T> {
    /// Finished: committed, or found there was nothing (left) to do.
    Done(T),
    /// Lost a version race: read again and decide again.
    Conflict,
}

impl Service {
    /// Applies `change` in one transaction. When it queued connector work (new actions, or
    /// one put back in the queue due now) a worker is woken at once, before the caller goes
    /// on to deliver its chat messages (round trips that must not delay the work).
    pub(super) async fn commit(&self, change: Change) -> Result<Committed, StoreError> {
        let (change, wake) = self.prepared(change).await;
        let committed = self.store.commit(change).await?;
        if wake {
            self.wake_worker();
        }
        Ok(committed)
    }

    /// A change as [`Service::commit`] writes it (step-up marks, the fallback channel's copies
    /// of prompts), and whether it queued connector work (a worker is to be woken once it is
    /// committed).
    pub(super) async fn prepared(&self, mut change: Change) -> (Change, bool) {
        super::step_up::mark_stepped_up(&mut change.audit);
        let wake = queues_work(&change, self.clock.now());
        (self.with_channel_copies(change).await, wake)
    }

    /// Runs `attempt` (read, decide, commit) again each time it reports a lost version race,
    /// up to [`CONFLICT_TRIES`] times; then fails with [`ServiceError::KeptConflicting`]
    /// naming `what`.
    pub(super) async fn retry_on_conflict<T, E, F, Fut>(
        &self,
        what: &str,
        mut attempt: F,
    ) -> Result<T, E>
    where
        E: From<ServiceError>,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Attempt<T>, E>>,
    {
        for _ in 0..CONFLICT_TRIES {
            if let Attempt::Done(t) = attempt().await? {
                return Ok(t);
            }
        }
        Err(ServiceError::KeptConflicting(what.to_owned()).into())
    }

    /// Commits (with the messages the change writes, then delivered); a conflict (another
    /// instance or click got there first) is not an error.
    pub(super) async fn commit_quietly(&self, change: Change) -> Result<bool> {
        let messages = !change.messages.is_empty();
        match self.commit(change).await {
            Ok(_) => {
                if messages {
                    self.messages_committed().await;
                }
                Ok(true)
            }
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Resolves when a worker is woken by [`Service::wake_worker`] (new connector work was
    /// enqueued). A wake-up given while no worker waits is kept for the next to wait, so a
    /// worker may create this future *before* looking for work and miss nothing meanwhile.
    pub fn work_enqueued(&self) -> tokio::sync::futures::Notified<'_> {
        self.work.notified()
    }

    /// Wakes one waiting worker, or the next one to wait if none is waiting. One is enough:
    /// a worker claims a whole batch, and wakes the next itself when its batch came back
    /// full. Waking them all made every command (even one that queued nothing) cost one
    /// claim per worker, each a write that waits for SQLite's writer turn. The service
    /// wakes one only from [`Service::commit`], when the change queued work.
    pub fn wake_worker(&self) {
        self.work.notify_one();
    }
}

/// Whether `change` gives the workers something to run now: new actions, or an action put
/// back to pending and due by `now` (IT's Retry; not a retry waiting out its backoff).
fn queues_work(change: &Change, now: Timestamp) -> bool {
    !change.new_actions.is_empty()
        || change
            .action_updates
            .iter()
            .any(|u| u.state == ActionState::Pending && u.not_before <= now)
}

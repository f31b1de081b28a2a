//! Group commit and grouped reads for inbound SCIM's writes. An identity provider pushing
//! changes from many connections would otherwise cost one transaction and one read per write,
//! each a round trip to the database (figure 12):
//! - a write's intake (the resource, its audit rows, and what it causes: a joiner's plan and
//!   IT's prompt) waits for the commit already running, then goes with every other intake
//!   that arrived meanwhile in one transaction. Plain writes (a resource and its audit row
//!   only) are merged into one change, so their resources go in one statement. If the
//!   group's commit fails (one write lost a version race, a name was taken, another process
//!   appended to the audit trail), each intake is committed on its own and gets its own
//!   answer, as before;
//! - the read of the resource a write changes waits for the read already running, then goes
//!   with every other such read that arrived meanwhile in one statement.

use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::core::scim::{ScimKind, ScimResource};

/// The most writes one group commit (or reads one grouped read) carries.
const MAX_GROUP: usize = 256;

/// One intake waiting for its group: the change, whether it is plain, where the answer goes.
struct Pending {
    change: Change,
    plain: bool,
    done: oneshot::Sender<std::result::Result<Committed, StoreError>>,
}

/// One read waiting for its group.
struct ReadWait {
    kind: ScimKind,
    id: String,
    done: oneshot::Sender<std::result::Result<Option<ScimResource>, StoreError>>,
}

/// The queues to the group committer and the grouped reader (each started on first use, on
/// the runtime of that use).
#[derive(Default)]
pub(super) struct ScimBatcher {
    tx: std::sync::OnceLock<mpsc::UnboundedSender<Pending>>,
    reads: std::sync::OnceLock<mpsc::UnboundedSender<ReadWait>>,
}

fn stopped() -> StoreError {
    StoreError::Backend("the SCIM group committer stopped".into())
}

impl Service {
    /// Commits a SCIM write's intake with the other intakes arriving meanwhile (see the
    /// module's comment); a change that queued connector work wakes a worker after.
    pub(super) async fn commit_scim(&self, mut change: Change) -> Result<Committed, StoreError> {
        let scim = std::mem::take(&mut change.scim);
        let audit = std::mem::take(&mut change.audit);
        let plain = change.is_empty();
        change.scim = scim;
        change.audit = audit;
        let (change, wake) = if plain {
            (change, false)
        } else {
            self.prepared(change).await
        };
        let tx = self.scim_batch.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(group_committer(self.store.clone(), rx));
            tx
        });
        let (done, answer) = oneshot::channel();
        tx.send(Pending {
            change,
            plain,
            done,
        })
        .map_err(|_| stopped())?;
        let committed = answer.await.unwrap_or_else(|_| Err(stopped()))?;
        if wake {
            self.wake_worker();
        }
        Ok(committed)
    }

    /// A resource by id, read with the other reads of writes arriving meanwhile.
    pub(super) async fn scim_read(
        &self,
        kind: ScimKind,
        id: &str,
    ) -> Result<Option<ScimResource>, StoreError> {
        let tx = self.scim_batch.reads.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(grouped_reader(self.store.clone(), rx));
            tx
        });
        let (done, answer) = oneshot::channel();
        tx.send(ReadWait {
            kind,
            id: id.to_owned(),
            done,
        })
        .map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// What is waiting on `rx` after `first`, up to [`MAX_GROUP`] in all.
fn take_waiting<T>(first: T, rx: &mut mpsc::UnboundedReceiver<T>) -> Vec<T> {
    let mut group = vec![first];
    while group.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(p) => group.push(p),
            Err(_) => break,
        }
    }
    group
}

/// Takes what is waiting, commits it as one transaction (the plain intakes merged into one
/// change), answers each; on a failure, commits each alone. Runs until every sender is gone.
async fn group_committer(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = rx.recv().await {
        // A group of one too: `commit_group` sends its audit rows with its COMMIT.
        let group = take_waiting(first, &mut rx);
        let (plain, other): (Vec<Pending>, Vec<Pending>) = group.into_iter().partition(|p| p.plain);
        let mut changes = vec![Change {
            scim: plain.iter().flat_map(|p| p.change.scim.clone()).collect(),
            audit: plain.iter().flat_map(|p| p.change.audit.clone()).collect(),
            ..Change::default()
        }];
        changes.extend(other.iter().map(|p| p.change.clone()));
        match store.commit_group(changes).await {
            Ok(outs) => {
                for p in plain {
                    let _ = p.done.send(Ok(Committed::default()));
                }
                for (p, out) in other.into_iter().zip(outs.into_iter().skip(1)) {
                    let _ = p.done.send(Ok(out));
                }
            }
            Err(_) => {
                for p in plain.into_iter().chain(other) {
                    let _ = p.done.send(store.commit(p.change).await);
                }
            }
        }
    }
}

/// Takes the reads waiting, reads each kind's resources with one statement, answers each.
/// Runs until every sender is gone.
async fn grouped_reader(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<ReadWait>) {
    while let Some(first) = rx.recv().await {
        let mut group = take_waiting(first, &mut rx);
        if group.len() == 1 {
            let w = group.remove(0);
            let _ = w.done.send(store.scim_resource(w.kind, &w.id).await);
            continue;
        }
        for kind in [ScimKind::User, ScimKind::Group] {
            let (mine, rest): (Vec<ReadWait>, Vec<ReadWait>) =
                group.into_iter().partition(|w| w.kind == kind);
            group = rest;
            if mine.is_empty() {
                continue;
            }
            let mut ids: Vec<String> = mine.iter().map(|w| w.id.clone()).collect();
            ids.sort_unstable();
            ids.dedup();
            match store.scim_resources(kind, &ids).await {
                Ok(found) => {
                    for w in mine {
                        let r = found.iter().find(|r| r.id == w.id).cloned();
                        let _ = w.done.send(Ok(r));
                    }
                }
                Err(_) => {
                    // Each read alone: one unreadable row fails only its own.
                    for w in mine {
                        let _ = w.done.send(store.scim_resource(kind, &w.id).await);
                    }
                }
            }
        }
    }
}

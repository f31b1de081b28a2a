//! Group commit for inbound SCIM's plain writes: a write that only stores a resource (and its
//! audit row) — nothing a person holds changed — waits for the writes already committing and
//! then goes with every other such write that arrived meanwhile, in one transaction. An
//! identity provider pushing profile changes from many connections costs one commit per
//! group instead of one per write (figure 12). If the group's commit fails (one write lost a
//! version race), each write is committed on its own and gets its own answer, as before.

use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::core::scim::ScimWrite;

/// The most writes one group commit carries.
const MAX_GROUP: usize = 256;

/// One plain write waiting for its group: the resource writes, their audit rows, where the
/// answer goes.
struct Pending {
    scim: Vec<ScimWrite>,
    audit: Vec<AuditEvent>,
    done: oneshot::Sender<std::result::Result<(), StoreError>>,
}

/// The queue to the group committer (started on first use, on the runtime of that use).
#[derive(Default)]
pub(super) struct ScimBatcher {
    tx: std::sync::OnceLock<mpsc::UnboundedSender<Pending>>,
}

impl Service {
    /// Commits a SCIM write's intake: a plain one (resource writes and audit rows only) with
    /// the other plain writes arriving meanwhile; anything else on its own.
    pub(super) async fn commit_scim(&self, mut change: Change) -> Result<(), StoreError> {
        let scim = std::mem::take(&mut change.scim);
        let audit = std::mem::take(&mut change.audit);
        if !change.is_empty() {
            change.scim = scim;
            change.audit = audit;
            self.commit(change).await?;
            return Ok(());
        }
        let tx = self.scim_batch.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(group_committer(self.store.clone(), rx));
            tx
        });
        let (done, answer) = oneshot::channel();
        if tx.send(Pending { scim, audit, done }).is_err() {
            return Err(StoreError::Backend(
                "the SCIM group committer stopped".into(),
            ));
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Backend(
                "the SCIM group committer stopped".into(),
            ))
        })
    }
}

/// Takes what is waiting (up to [`MAX_GROUP`]), commits it as one change, answers each; on a
/// failure, commits each alone. Runs until every sender is gone.
async fn group_committer(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        if group.len() == 1 {
            let p = group.remove(0);
            let r = store
                .commit(Change {
                    scim: p.scim,
                    audit: p.audit,
                    ..Change::default()
                })
                .await
                .map(|_| ());
            let _ = p.done.send(r);
            continue;
        }
        let merged = Change {
            scim: group.iter().flat_map(|p| p.scim.clone()).collect(),
            audit: group.iter().flat_map(|p| p.audit.clone()).collect(),
            ..Change::default()
        };
        if store.commit(merged).await.is_ok() {
            for p in group {
                let _ = p.done.send(Ok(()));
            }
            continue;
        }
        for p in group {
            let r = store
                .commit(Change {
                    scim: p.scim,
                    audit: p.audit,
                    ..Change::default()
                })
                .await
                .map(|_| ());
            let _ = p.done.send(r);
        }
    }
}

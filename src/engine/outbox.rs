//! The outbox sender of `serve`: delivers the chat messages the core committed (see
//! `core::service::outbox`). It wakes after every commit that wrote messages (its round
//! [`GATHER`] later), and polls
//! every [`POLL`] for retries that fell due and rows whose sender died (their lease ended),
//! so several instances may share one database: each row is claimed by one of them at a time.
//! On a graceful stop it finishes the round in flight (a woken round still waiting goes out
//! at once); rows it had not sent yet stay queued for the next start.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::core::service::{DELIVERY_BATCH, Service};

/// How often an idle sender looks for rows that fell due on their own.
pub const POLL: Duration = Duration::from_millis(250);

/// How long a woken sender waits before its round. The commit that wrote the messages has
/// usually queued connector work too, and woken a worker at the same moment: the worker's
/// claim and its requests to the peer go first instead of sharing SQLite's writer and the
/// CPUs with the round, and messages committed meanwhile go out in the same round. On
/// 2 CPUs a round at once cost the worker ~0.4 ms before its first request, and one 10 ms
/// later still landed inside the peer's answers to a grant (figure 2). A chat platform
/// answers in 50 ms or more, so nobody sees the wait.
pub const GATHER: Duration = Duration::from_millis(50);

/// Delivers messages until `stop` turns true.
pub async fn run(service: Arc<Service>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            break;
        }
        // Created before looking, so a commit made meanwhile is not missed.
        let woken = service.messages_enqueued();
        let n = match service.deliver_due(DELIVERY_BATCH).await {
            Ok(n) => n,
            Err(e) => {
                warn!(error = %e, "outbox delivery round failed");
                0
            }
        };
        if n >= DELIVERY_BATCH {
            // A full round: more may be due now.
            continue;
        }
        if n > 0 {
            // What was committed during the round, and the edits and copies that waited on
            // what it sent, go in the next round, a gather later: under a steady trickle of
            // messages (an identity provider's joiners) a round at once took SQLite's writer
            // twice for every two or three messages, beside the writes that made them.
            tokio::select! {
                () = tokio::time::sleep(GATHER) => {}
                _ = stop.changed() => last_round(&service).await,
            }
            continue;
        }
        tokio::select! {
            _ = woken => {
                tokio::select! {
                    _ = tokio::time::sleep(GATHER) => {}
                    // Stopping: the round it was woken for still goes out.
                    _ = stop.changed() => last_round(&service).await,
                }
            }
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => {}
        }
    }
    info!("outbox sender stopped");
}

/// The round a stopping sender still sends (what it was waiting to gather).
async fn last_round(service: &Service) {
    if let Err(e) = service.deliver_due(DELIVERY_BATCH).await {
        warn!(error = %e, "outbox delivery round failed");
    }
}

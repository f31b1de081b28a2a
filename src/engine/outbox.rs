//! The outbox sender of `serve`: delivers the chat messages the core committed (see
//! `core::service::outbox`). It wakes after every commit that wrote messages, and polls
//! every [`POLL`] for retries that fell due and rows whose sender died (their lease ended),
//! so several instances may share one database: each row is claimed by one of them at a time.
//! On a graceful stop it finishes the round in flight; rows it had not sent yet stay
//! queued for the next start.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::core::service::{DELIVERY_BATCH, Service};

/// How often an idle sender looks for rows that fell due on their own.
pub const POLL: Duration = Duration::from_millis(250);

/// How long a woken sender waits before its round. The commit that wrote the messages has
/// usually queued connector work too, and woken a worker at the same moment: the worker's
/// claim and its first request to the peer go first instead of sharing SQLite's writer and
/// the CPUs with the round (on 2 CPUs that race cost the first request ~0.4 ms, figure 2),
/// and messages committed meanwhile go out in the same round. A chat platform answers in
/// tens of milliseconds, so nobody sees the wait.
pub const GATHER: Duration = Duration::from_millis(10);

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
        if n > 0 {
            continue;
        }
        tokio::select! {
            _ = woken => {
                tokio::select! {
                    _ = tokio::time::sleep(GATHER) => {}
                    _ = stop.changed() => {}
                }
            }
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => {}
        }
    }
    info!("outbox sender stopped");
}

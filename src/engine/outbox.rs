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
            _ = woken => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => {}
        }
    }
    info!("outbox sender stopped");
}

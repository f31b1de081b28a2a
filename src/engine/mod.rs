//! The provisioning engine: claims queued connector actions from the database (with a lease,
//! so a crashed worker's action is taken over), runs them through their connector, and hands
//! the outcome to the core. Execution is at-least-once; connectors look before they act.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::{Instrument, info_span, warn};

use crate::core::model::{Action, ConnectorName};
use crate::core::ports::{Connector, ConnectorError, Subject};
use crate::core::service::{Service, ServiceError};

/// How long a claimed action is ours before another worker may take it over, unless the
/// environment variable `QM_ACTION_LEASE` (e.g. `90s`, `5m`) says otherwise.
pub const LEASE: Duration = Duration::from_secs(60);

/// The lease: `QM_ACTION_LEASE` when set to a valid duration, else [`LEASE`].
pub fn lease_from_env() -> Duration {
    std::env::var("QM_ACTION_LEASE")
        .ok()
        .and_then(|v| humantime::parse_duration(v.trim()).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(LEASE)
}

/// Connectors by configured name.
pub type Connectors = HashMap<ConnectorName, Arc<dyn Connector>>;

/// Runs queued actions.
pub struct Engine {
    service: Arc<Service>,
    connectors: Connectors,
    lease: Duration,
}

impl Engine {
    /// An engine over the service and its connectors.
    pub fn new(service: Arc<Service>, connectors: Connectors) -> Self {
        Self {
            service,
            connectors,
            lease: lease_from_env(),
        }
    }

    /// Claims and runs one due action; false when none is due.
    pub async fn run_one(&self) -> Result<bool, ServiceError> {
        let now = self.service.clock().now();
        let Some(action) = self.service.store().claim_action(now, self.lease).await? else {
            return Ok(false);
        };
        let span = info_span!("engine", action_id = %action.id, connector = %action.connector);
        async {
            let result = self.execute(&action).await;
            if let Err(e) = &result {
                warn!(error = %e, attempt = action.attempts, "connector action failed");
            }
            self.service.action_finished(&action, result).await
        }
        .instrument(span)
        .await?;
        Ok(true)
    }

    async fn execute(&self, action: &Action) -> Result<crate::core::ports::Effect, ConnectorError> {
        let Some(conn) = self.connectors.get(&action.connector) else {
            return Err(ConnectorError::Permanent(format!(
                "no connector named \"{}\" is configured",
                action.connector
            )));
        };
        let person = self
            .service
            .store()
            .person(&action.person)
            .await
            .map_err(|e| ConnectorError::Transient(e.to_string()))?
            .ok_or_else(|| ConnectorError::Permanent(format!("no person {}", action.person)))?;
        let who = Subject {
            handle: person.handle,
            name: person.name,
            email: person.email,
        };
        conn.apply(action.op, &who, action.entitlement.as_deref())
            .await
    }

    /// Runs every action that is due now, including those its own results enqueue; returns
    /// how many ran. The console calls this after each line so a transcript is deterministic.
    pub async fn drain(&self) -> Result<usize, ServiceError> {
        let mut n = 0;
        while self.run_one().await? {
            n += 1;
        }
        Ok(n)
    }

    /// Works until `stop` resolves: runs due actions, then sleeps until new work is enqueued
    /// or a second passes (for retries that become due).
    pub async fn run(&self, stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            match self.run_one().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => warn!(error = %e, "engine step failed"),
            }
            let mut stop2 = stop.clone();
            tokio::select! {
                _ = self.service.work_enqueued() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop2.changed() => {}
            }
        }
    }
}

//! The provisioning engine: claims queued connector actions from the database (with a lease,
//! so a crashed worker's action is taken over), runs them through their connector, and hands
//! the outcome to the core. Execution is at-least-once; connectors look before they act.
//!
//! Each connector has a concurrency cap and an optional rate (actions started per second);
//! a worker never claims an action of a connector at its cap. On a graceful stop the workers
//! stop claiming, in-flight actions get a grace period to finish, and those still running
//! after it are released (back to pending, lease cleared) for the next start.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::{Instrument, info, info_span, warn};

use crate::core::model::{Action, ActionState, ConnectorName};
use crate::core::ports::{ActionUpdate, Change, Connector, ConnectorError, Effect, Subject};
use crate::core::service::{Service, ServiceError};

/// How long a claimed action is ours before another worker may take it over, by default
/// (the engine uses the longest `lease` of its connectors).
pub const LEASE: Duration = Duration::from_secs(60);

/// How long in-flight actions may run on after a graceful stop is asked for.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Connectors by configured name.
pub type Connectors = HashMap<ConnectorName, Arc<dyn Connector>>;

/// How hard one connector may be driven.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Actions at once.
    pub max_concurrency: usize,
    /// Actions started per second, if limited.
    pub rate_per_second: Option<f64>,
    /// How long a claimed action is held before another worker may take it over.
    pub lease: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrency: 4,
            rate_per_second: None,
            lease: LEASE,
        }
    }
}

/// A connector's gate: a semaphore for the cap and the next moment a start is allowed.
struct Gate {
    permits: Arc<Semaphore>,
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Gate {
    fn new(l: Limits) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(l.max_concurrency.max(1))),
            interval: l
                .rate_per_second
                .filter(|r| *r > 0.0 && r.is_finite())
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for a slot under the cap, then for the rate's next start.
    async fn enter(&self) -> Option<OwnedSemaphorePermit> {
        let permit = self.permits.clone().acquire_owned().await.ok()?;
        if let Some(iv) = self.interval {
            let at = {
                let mut next = self.next.lock().await;
                let at = (*next).max(Instant::now());
                *next = at + iv;
                at
            };
            tokio::time::sleep_until(at).await;
        }
        Some(permit)
    }

    fn full(&self) -> bool {
        self.permits.available_permits() == 0
    }
}

/// Runs queued actions.
#[derive(Clone)]
pub struct Engine {
    service: Arc<Service>,
    connectors: Arc<Connectors>,
    gates: Arc<HashMap<ConnectorName, Gate>>,
    workers: usize,
    grace: Duration,
    lease: Duration,
}

impl Engine {
    /// An engine over the service and its connectors, each with the default limits.
    pub fn new(service: Arc<Service>, connectors: Connectors) -> Self {
        Self::with_limits(service, connectors, HashMap::new())
    }

    /// An engine whose connectors have the given limits (missing ones get the defaults).
    pub fn with_limits(
        service: Arc<Service>,
        connectors: Connectors,
        limits: HashMap<ConnectorName, Limits>,
    ) -> Self {
        let gates: HashMap<ConnectorName, Gate> = connectors
            .keys()
            .map(|n| {
                (
                    n.clone(),
                    Gate::new(limits.get(n).copied().unwrap_or_default()),
                )
            })
            .collect();
        let cap: usize = connectors
            .keys()
            .map(|n| limits.get(n).copied().unwrap_or_default().max_concurrency)
            .sum();
        let lease = connectors
            .keys()
            .map(|n| limits.get(n).copied().unwrap_or_default().lease)
            .max()
            .unwrap_or(LEASE);
        Self {
            service,
            connectors: Arc::new(connectors),
            gates: Arc::new(gates),
            workers: cap.clamp(1, 32),
            grace: STOP_GRACE,
            lease,
        }
    }

    /// Sets how long in-flight actions may finish after a stop (default [`STOP_GRACE`]).
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The number of workers [`Engine::run`] starts (the sum of the connectors' caps, 1–32).
    pub fn workers(&self) -> usize {
        self.workers
    }

    fn saturated(&self) -> Vec<ConnectorName> {
        self.gates
            .iter()
            .filter(|(_, g)| g.full())
            .map(|(n, _)| n.clone())
            .collect()
    }

    async fn claim(&self) -> Result<Option<Action>, ServiceError> {
        let now = self.service.clock().now();
        let skip = self.saturated();
        Ok(self
            .service
            .store()
            .claim_action_except(now, self.lease, &skip)
            .await?)
    }

    /// Claims and runs one due action; false when none is due.
    pub async fn run_one(&self) -> Result<bool, ServiceError> {
        let Some(action) = self.claim().await? else {
            return Ok(false);
        };
        self.process(action).await?;
        Ok(true)
    }

    async fn process(&self, action: Action) -> Result<(), ServiceError> {
        let span = info_span!("engine", action_id = %action.id, connector = %action.connector);
        async {
            let _permit = match self.gates.get(&action.connector) {
                Some(g) => g.enter().await,
                None => None,
            };
            let result = self.execute(&action).await;
            if let Err(e) = &result {
                warn!(error = %e, attempt = action.attempts, "connector action failed");
            }
            self.service.action_finished(&action, result).await
        }
        .instrument(span)
        .await
    }

    async fn execute(&self, action: &Action) -> Result<Effect, ConnectorError> {
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

    /// Puts a claimed action back in the queue (pending, lease cleared, due now), so the
    /// next start runs it again. Used when a stop interrupts it.
    async fn release(&self, action: &Action) {
        let now = self.service.clock().now();
        let change = Change {
            action_updates: vec![ActionUpdate {
                id: action.id,
                state: ActionState::Pending,
                last_error: Some("interrupted by a shutdown; will run again".into()),
                not_before: now,
                reset_attempts: false,
            }],
            ..Change::default()
        };
        match self.service.store().commit(change).await {
            Ok(_) => info!(action_id = %action.id, "released at shutdown"),
            Err(e) => {
                warn!(action_id = %action.id, error = %e, "cannot release; its lease will lapse")
            }
        }
    }

    /// One worker: claims and runs actions until `stop`; an action still running when the
    /// grace period after `stop` ends is abandoned and released.
    async fn worker(&self, id: usize, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            // Created before the claim, so work enqueued while the claim finds nothing still
            // wakes this worker at once (instead of at the next poll).
            let wake = self.service.work_enqueued();
            let claimed = match self.claim().await {
                Ok(a) => a,
                Err(e) => {
                    warn!(worker = id, error = %e, "cannot claim an action");
                    None
                }
            };
            match claimed {
                Some(action) => {
                    let work = self.process(action.clone());
                    tokio::pin!(work);
                    let done = tokio::select! {
                        r = &mut work => Some(r),
                        _ = stop.wait_for(|s| *s) => None,
                    };
                    let result = match done {
                        Some(r) => r,
                        None => match tokio::time::timeout(self.grace, &mut work).await {
                            Ok(r) => r,
                            Err(_) => {
                                self.release(&action).await;
                                return;
                            }
                        },
                    };
                    if let Err(e) = result {
                        warn!(worker = id, error = %e, "engine step failed");
                    }
                }
                None => {
                    tokio::select! {
                        _ = wake => {}
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        }
    }

    /// Works until `stop` turns true, with [`Engine::workers`] workers; then lets in-flight
    /// actions finish within the grace period and releases the rest. Returns when every
    /// worker has stopped.
    pub async fn run(&self, stop: tokio::sync::watch::Receiver<bool>) {
        let mut set = tokio::task::JoinSet::new();
        for id in 0..self.workers {
            let me = self.clone();
            let stop = stop.clone();
            set.spawn(async move { me.worker(id, stop).await });
        }
        while set.join_next().await.is_some() {}
        info!("engine stopped");
    }
}

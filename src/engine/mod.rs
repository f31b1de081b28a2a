//! The provisioning engine: claims queued connector actions from the database (with a lease,
//! so a crashed worker's action is taken over), runs them through their connector, and hands
//! the outcome to the core. Execution is at-least-once; connectors look before they act.
//!
//! Workers claim due actions in batches (up to [`BATCH`], one statement): a batch's people
//! are read at once, its actions run concurrently (in order per person and connector, but
//! a run of removals of different entitlements goes at once; a bulk-capable connector such
//! as `directory` gets its share in one call), and their
//! outcomes are recorded together, the successes in one transaction. While a batch runs its
//! leases are renewed. The console's [`Engine::drain`] takes the same path, one batch at a time.
//! Idle workers wait for a wake-up ([`Service::wake_worker`]: one worker per commit that
//! queued work; a worker whose batch came back full wakes the next) or poll every
//! 500 ms for work that fell due on its own (retries, lapsed leases).
//!
//! Each connector has a concurrency cap and an optional rate (actions started per second);
//! batches stop claiming a connector's actions while enough of them already wait for it. On
//! a graceful stop the workers stop claiming, in-flight actions get a grace period to finish,
//! and those still running after it are released (back to pending, lease cleared) for the
//! next start.

pub mod outbox;
pub mod reconcile;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::{Instrument, info, info_span, warn};

use crate::core::model::{Action, ActionId, ActionOp, ConnectorName, Handle};
use crate::core::ports::{BulkOp, Connector, ConnectorError, Effect, Subject};
use crate::core::service::{Service, ServiceError};

/// How long a claimed action is ours before another worker may take it over, by default
/// (the engine uses the longest `lease` of its connectors). Short, and renewed every third
/// of it while the action's batch runs however long its connector calls take: after a
/// crash, the restarted instance (or another one) resumes the work within seconds.
pub const LEASE: Duration = Duration::from_secs(5);

/// How long in-flight actions may run on after a graceful stop is asked for.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The most actions a worker claims at once. A batch is claimed in one statement, its people
/// read in one, and its successes written in one transaction with one audit append: the
/// database work per action, which bounds throughput, shrinks with the batch.
pub const BATCH: usize = 64;

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
    /// Actions of this connector claimed in batches and not yet run.
    held: Arc<AtomicUsize>,
    /// How many may be held before batches stop claiming this connector's actions.
    backlog: usize,
}

/// The ids of the actions this engine is running (a claim that returns one of them, its
/// lease having lapsed under a slow renewal, is not run a second time at once).
type InFlight = Arc<std::sync::Mutex<HashSet<ActionId>>>;

/// A claimed action, numbered in claim order, with its in-flight mark.
type Numbered = (usize, Action, Option<Held>);

/// One claimed action, counted in its connector's [`Gate::held`] and in the engine's
/// [`InFlight`] set until dropped.
struct Held {
    count: Option<Arc<AtomicUsize>>,
    in_flight: InFlight,
    id: ActionId,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(c) = &self.count {
            c.fetch_sub(1, Ordering::Relaxed);
        }
        if let Ok(mut set) = self.in_flight.lock() {
            set.remove(&self.id);
        }
    }
}

impl Gate {
    fn new(l: Limits) -> Self {
        Self {
            held: Arc::default(),
            backlog: l.max_concurrency.max(1) + BATCH,
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

    fn backlogged(&self) -> bool {
        self.held.load(Ordering::Relaxed) >= self.backlog
    }

    fn hold(&self) -> Arc<AtomicUsize> {
        self.held.fetch_add(1, Ordering::Relaxed);
        self.held.clone()
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
    in_flight: InFlight,
    /// Each connector's drift settings.
    drift: Arc<HashMap<ConnectorName, reconcile::DriftSettings>>,
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
            in_flight: InFlight::default(),
            drift: Arc::default(),
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

    /// Claims up to [`BATCH`] due actions, skipping connectors whose claimed actions already
    /// queue deep enough behind their cap (a batch's actions may wait for their
    /// connector's turn: [`Engine::process_batch`] keeps their leases).
    async fn claim_batch(&self) -> Result<Vec<(Action, Option<Held>)>, ServiceError> {
        let now = self.service.clock().now();
        let skip: Vec<ConnectorName> = self
            .gates
            .iter()
            .filter(|(_, g)| g.backlogged())
            .map(|(n, _)| n.clone())
            .collect();
        // Claims are bounded by what can start soon: each connector's cap plus one batch
        // (a bulk connector takes its share in one call), less what is already held.
        let room: usize = self
            .gates
            .values()
            .filter(|g| !g.backlogged())
            .map(|g| g.backlog.saturating_sub(g.held.load(Ordering::Relaxed)))
            .sum();
        let limit = if self.gates.is_empty() {
            BATCH
        } else {
            room.min(BATCH)
        };
        let claimed = self
            .service
            .store()
            .claim_actions(now, self.lease, &skip, limit)
            .await?;
        let Ok(mut running) = self.in_flight.lock() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(claimed.len());
        for a in claimed {
            if !running.insert(a.id) {
                warn!(action_id = %a.id, "claimed again while still running here (its lease lapsed); left to the running call");
                continue;
            }
            let held = Held {
                count: self.gates.get(&a.connector).map(Gate::hold),
                in_flight: self.in_flight.clone(),
                id: a.id,
            };
            out.push((a, Some(held)));
        }
        Ok(out)
    }

    /// Runs a claimed batch (see [`Engine::run_batch`]), renewing the batch's leases every
    /// third of a lease while it runs: actions queued behind a connector's cap or rate are
    /// not taken over by another worker meanwhile.
    async fn process_batch(
        &self,
        actions: Vec<(Action, Option<Held>)>,
    ) -> Result<(), ServiceError> {
        let ids: Vec<ActionId> = actions.iter().map(|(a, _)| a.id).collect();
        let every = (self.lease / 3).max(Duration::from_millis(10));
        // A task of its own: renewing must not wait on the batch's work (which may hold
        // SQLite's writer turn), nor the work on it. Dropping the set stops it.
        let mut beat = tokio::task::JoinSet::new();
        let me = self.clone();
        beat.spawn(async move {
            let mut tick = tokio::time::interval_at(Instant::now() + every, every);
            loop {
                tick.tick().await;
                let until = me.service.clock().now()
                    + chrono::TimeDelta::from_std(me.lease).unwrap_or_default();
                if let Err(e) = me.service.store().extend_leases(&ids, until).await {
                    warn!(error = %e, "cannot renew the batch's leases");
                }
            }
        });
        let r = self.run_batch(actions).await;
        beat.abort_all();
        r
    }

    /// Runs a claimed batch: its people read at once, its actions through their connectors
    /// concurrently (each under its connector's cap and rate), their outcomes handed to the
    /// core together.
    async fn run_batch(&self, actions: Vec<(Action, Option<Held>)>) -> Result<(), ServiceError> {
        let people = Arc::new(self.batch_people(&actions).await);
        let (bulk, by_person) = self.group_batch(actions, &people);
        let mut set = tokio::task::JoinSet::new();
        for group in bulk {
            let me = self.clone();
            let people = people.clone();
            set.spawn(async move { me.execute_bulk(group, &people).await });
        }
        for group in by_person {
            let me = self.clone();
            let people = people.clone();
            set.spawn(async move { me.execute_in_waves(group, people).await });
        }
        let mut outcomes = Vec::new();
        while let Some(done) = set.join_next().await {
            match done {
                Ok(o) => outcomes.extend(o),
                // A panicking connector call: its action's lease lapses and it runs again.
                Err(e) => warn!(error = %e, "connector task ended abnormally"),
            }
        }
        outcomes.sort_by_key(|(i, _, _)| *i);
        self.service
            .actions_finished(outcomes.into_iter().map(|(_, a, r)| (a, r)).collect())
            .await
    }

    /// The people a batch's actions are for, read at once; none when the read fails (each
    /// action then fails as a transient error and is retried).
    async fn batch_people(&self, actions: &[(Action, Option<Held>)]) -> HashMap<Handle, Subject> {
        let mut handles: Vec<Handle> = actions.iter().map(|(a, _)| a.person.clone()).collect();
        handles.sort();
        handles.dedup();
        match self.service.store().people_by_handle(&handles).await {
            Ok(people) => people
                .into_iter()
                .map(|p| {
                    (
                        p.handle.clone(),
                        Subject {
                            handle: p.handle,
                            name: p.name,
                            email: p.email,
                        },
                    )
                })
                .collect(),
            Err(e) => {
                warn!(error = %e, "cannot read the batch's people");
                HashMap::new()
            }
        }
    }

    /// Groups a batch, each action numbered in claim order: one group per bulk connector,
    /// and one per person and connector for the rest. A person-and-connector group runs in
    /// claim (id) order: on one target an account is created before its groups are added, a
    /// removal lands before a disable ([`Engine::execute_in_waves`]); different targets are
    /// worked in parallel.
    fn group_batch(
        &self,
        actions: Vec<(Action, Option<Held>)>,
        people: &HashMap<Handle, Subject>,
    ) -> (Vec<Vec<Numbered>>, Vec<Vec<Numbered>>) {
        let mut by_person: Vec<Vec<Numbered>> = Vec::new();
        let mut bulk: Vec<Vec<Numbered>> = Vec::new();
        for (i, (action, held)) in actions.into_iter().enumerate() {
            let in_bulk = people.contains_key(&action.person)
                && self
                    .connectors
                    .get(&action.connector)
                    .is_some_and(|c| c.bulk());
            if in_bulk {
                match bulk
                    .iter_mut()
                    .find(|g| g[0].1.connector == action.connector)
                {
                    Some(g) => g.push((i, action, held)),
                    None => bulk.push(vec![(i, action, held)]),
                }
                continue;
            }
            match by_person
                .iter_mut()
                .find(|g| g[0].1.person == action.person && g[0].1.connector == action.connector)
            {
                Some(g) => g.push((i, action, held)),
                None => by_person.push(vec![(i, action, held)]),
            }
        }
        (bulk, by_person)
    }

    /// Runs a batch's actions of one bulk connector in one call, under one of its slots.
    async fn execute_bulk(
        &self,
        group: Vec<Numbered>,
        people: &HashMap<Handle, Subject>,
    ) -> Vec<(usize, Action, Result<Effect, ConnectorError>)> {
        let Some(conn) = self.connectors.get(&group[0].1.connector) else {
            return Vec::new();
        };
        let span = info_span!(
            "engine_bulk",
            connector = %group[0].1.connector,
            actions = group.len()
        );
        async {
            let _permit = match self.gates.get(&group[0].1.connector) {
                Some(g) => g.enter().await,
                None => None,
            };
            let ops: Vec<BulkOp> = group
                .iter()
                .filter_map(|(_, a, _)| {
                    Some(BulkOp {
                        op: a.op,
                        who: people.get(&a.person)?.clone(),
                        entitlement: a.entitlement.clone(),
                    })
                })
                .collect();
            let results = conn.apply_many(&ops).await;
            let mut results = results.into_iter();
            group
                .into_iter()
                .map(|(i, action, held)| {
                    drop(held);
                    let r = results.next().unwrap_or_else(|| {
                        Err(ConnectorError::Transient(
                            "the connector's bulk call answered too few operations".into(),
                        ))
                    });
                    if let Err(e) = &r {
                        warn!(
                            action_id = %action.id,
                            connector = %action.connector,
                            person = %action.person,
                            app = action.app.as_ref().map(|a| a.as_str()),
                            request = action.request.map(|r| r.0),
                            error = %e,
                            attempt = action.attempts,
                            "connector action failed"
                        );
                    }
                    (i, action, r)
                })
                .collect()
        }
        .instrument(span)
        .await
    }

    /// Runs a person-and-connector group in claim order, except that a run of removals of
    /// different entitlements goes at once (each under the connector's cap and rate): they
    /// touch different groups, and what follows them (a disable, a grant, a re-read) still
    /// waits for all of them. An offboarding's removals on one target no longer queue
    /// behind each other (figure 3 measured LDAP's sooner done; a SCIM peer that confirms
    /// each removal by a re-read gained nothing).
    async fn execute_in_waves(
        &self,
        group: Vec<Numbered>,
        people: Arc<HashMap<Handle, Subject>>,
    ) -> Vec<(usize, Action, Result<Effect, ConnectorError>)> {
        let mut out = Vec::with_capacity(group.len());
        let mut rest = group.into_iter().peekable();
        while let Some(first) = rest.next() {
            let mut wave = vec![first];
            while wave[0].1.op == ActionOp::Revoke
                && let Some(next) = rest.next_if(|n| {
                    n.1.op == ActionOp::Revoke
                        && wave.iter().all(|w| w.1.entitlement != n.1.entitlement)
                })
            {
                wave.push(next);
            }
            if wave.len() == 1 {
                let (i, action, held) = wave.remove(0);
                let result = self.execute_one(&action, &people).await;
                drop(held);
                out.push((i, action, result));
                continue;
            }
            let mut set = tokio::task::JoinSet::new();
            for (i, action, held) in wave {
                let me = self.clone();
                let people = people.clone();
                set.spawn(async move {
                    let result = me.execute_one(&action, &people).await;
                    drop(held);
                    (i, action, result)
                });
            }
            while let Some(done) = set.join_next().await {
                match done {
                    Ok(o) => out.push(o),
                    // A panicking connector call: its action's lease lapses and it runs again.
                    Err(e) => warn!(error = %e, "connector task ended abnormally"),
                }
            }
        }
        out
    }

    /// One action of a batch, in its span.
    async fn execute_one(
        &self,
        action: &Action,
        people: &HashMap<Handle, Subject>,
    ) -> Result<Effect, ConnectorError> {
        let span = info_span!(
            "engine",
            action_id = %action.id,
            connector = %action.connector
        );
        self.execute_gated(action, people).instrument(span).await
    }

    /// Runs one action of a batch under its connector's cap and rate.
    async fn execute_gated(
        &self,
        action: &Action,
        people: &HashMap<Handle, Subject>,
    ) -> Result<Effect, ConnectorError> {
        let _permit = match self.gates.get(&action.connector) {
            Some(g) => g.enter().await,
            None => None,
        };
        let result = match people.get(&action.person) {
            Some(who) => self.execute_for(action, who).await,
            None => Err(self.missing_person(action).await),
        };
        if let Err(e) = &result {
            warn!(
                action_id = %action.id,
                connector = %action.connector,
                person = %action.person,
                app = action.app.as_ref().map(|a| a.as_str()),
                request = action.request.map(|r| r.0),
                error = %e,
                attempt = action.attempts,
                "connector action failed"
            );
        }
        result
    }

    /// Why an action's person could not be read (transient unless the person is gone).
    async fn missing_person(&self, action: &Action) -> ConnectorError {
        match self.service.store().person(&action.person).await {
            Ok(None) => ConnectorError::Permanent(format!("no person {}", action.person)),
            Ok(Some(_)) => ConnectorError::Transient("person not read with the batch".into()),
            Err(e) => ConnectorError::Transient(e.to_string()),
        }
    }

    async fn execute_for(&self, action: &Action, who: &Subject) -> Result<Effect, ConnectorError> {
        let Some(conn) = self.connectors.get(&action.connector) else {
            return Err(self.no_connector(action));
        };
        conn.apply(action.op, who, action.entitlement.as_deref())
            .await
    }

    fn no_connector(&self, action: &Action) -> ConnectorError {
        ConnectorError::Permanent(format!(
            "no connector named \"{}\" is configured",
            action.connector
        ))
    }

    /// Runs every action that is due now, including those their results enqueue, batch by
    /// batch through the workers' path; returns how many ran. The console calls this after
    /// each line: one batch at a time, outcomes recorded in action id order, so a transcript
    /// is deterministic.
    pub async fn drain(&self) -> Result<usize, ServiceError> {
        let mut ran = 0;
        loop {
            let claimed = self.claim_batch().await?;
            if claimed.is_empty() {
                return Ok(ran);
            }
            ran += claimed.len();
            self.process_batch(claimed).await?;
        }
    }

    /// Puts a claimed action back in the queue (pending, lease cleared, due now) unless it
    /// has finished, so the next start runs it again. Used when a stop interrupts it.
    async fn release(&self, action: &Action) {
        let now = self.service.clock().now();
        match self
            .service
            .store()
            .release_action(action.id, now, "interrupted by a shutdown; will run again")
            .await
        {
            Ok(true) => info!(action_id = %action.id, "released at shutdown"),
            Ok(false) => {}
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
            let claimed = match self.claim_batch().await {
                Ok(a) => a,
                Err(e) => {
                    warn!(worker = id, error = %e, "cannot claim actions");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                tokio::select! {
                    _ = wake => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            if claimed.len() == BATCH {
                // There may be more: the next worker looks at once.
                self.service.wake_worker();
            }
            let batch: Vec<Action> = claimed.iter().map(|(a, _)| a.clone()).collect();
            let mut work = Box::pin(self.process_batch(claimed));
            let done = tokio::select! {
                r = &mut work => Some(r),
                _ = stop.wait_for(|s| *s) => None,
            };
            let result = match done {
                Some(r) => r,
                None => match tokio::time::timeout(self.grace, &mut work).await {
                    Ok(r) => r,
                    Err(_) => {
                        // Nothing of the batch is recorded once its work is dropped (its
                        // connector calls are aborted); what it already recorded stays.
                        drop(work);
                        for action in &batch {
                            self.release(action).await;
                        }
                        return;
                    }
                },
            };
            if let Err(e) = result {
                warn!(worker = id, error = %e, "engine step failed");
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

//! Reconciles: each connector lists what it holds (every member of each entitlement the
//! catalog names on it, and every account where it can), and the service compares that with
//! the records. One run at a time per connector across instances (a named lease); a run
//! asked for by `/drift`, one due by `reconcile_every`, or `quartermaster reconcile`.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tracing::{Instrument, info_span, warn};

use super::Engine;
use crate::core::drift::Listing;
use crate::core::model::ConnectorName;
use crate::core::service::{DriftReport, OnDrift};

/// How long a reconcile's lease lasts (a run that outlives it may be joined by another).
const RECONCILE_LEASE: Duration = Duration::from_secs(15 * 60);

/// A connector's drift settings (`reconcile_every`, `on_drift`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriftSettings {
    /// Reconcile this often (None: only when asked).
    pub every: Option<Duration>,
    /// Report, or also revoke what two runs saw.
    pub on_drift: OnDrift,
}

/// What a reconcile of one connector came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// It ran.
    Ran(DriftReport),
    /// Another instance is reconciling it.
    Busy,
    /// It failed (the database).
    Failed(String),
}

impl Engine {
    /// The service it works for.
    pub fn service(&self) -> &std::sync::Arc<crate::core::service::Service> {
        &self.service
    }

    /// With each connector's drift settings.
    #[must_use]
    pub fn with_drift(mut self, drift: HashMap<ConnectorName, DriftSettings>) -> Self {
        self.drift = std::sync::Arc::new(drift);
        self
    }

    /// Reconciles `only`, or every connector the catalog provisions through.
    pub async fn reconcile(
        &self,
        only: Option<&ConnectorName>,
    ) -> Vec<(ConnectorName, RunOutcome)> {
        let names: BTreeSet<ConnectorName> = self
            .service
            .org()
            .apps
            .iter()
            .map(|a| a.connector.clone())
            .filter(|c| only.is_none_or(|o| o == c) && self.connectors.contains_key(c))
            .collect();
        let mut out = Vec::new();
        for name in names {
            let span = info_span!("reconcile", connector = %name);
            let outcome = self.reconcile_one(&name, false).instrument(span).await;
            out.push((name, outcome));
        }
        out
    }

    /// Takes the snapshots of the reviews waiting for one (each connector in their scope
    /// re-read), then runs what `/drift` asked for, and the connectors whose
    /// `reconcile_every` has come.
    pub async fn reconcile_pending(&self) -> usize {
        let mut done = self.snapshot_reviews().await;
        for a in self.service.take_reconcile_requests() {
            done += self.reconcile(a.as_ref()).await.len();
        }
        for name in self.due().await {
            let span = info_span!("reconcile", connector = %name, scheduled = true);
            if let RunOutcome::Ran(_) = self.reconcile_one(&name, true).instrument(span).await {
                done += 1;
            }
        }
        done
    }

    /// The connectors whose `reconcile_every` has come.
    async fn due(&self) -> Vec<ConnectorName> {
        // Most setups schedule nothing: then every console line and engine round asks no query.
        if self.drift.values().all(|d| d.every.is_none()) {
            return Vec::new();
        }
        let now = self.service.clock().now();
        let runs = self
            .service
            .store()
            .reconcile_runs()
            .await
            .unwrap_or_default();
        self.drift
            .iter()
            .filter_map(|(name, s)| {
                let every = chrono::TimeDelta::from_std(s.every?).unwrap_or(chrono::TimeDelta::MAX);
                let last = runs
                    .iter()
                    .find(|r| &r.connector == name)
                    .map(|r| r.last_run);
                last.is_none_or(|t| t + every <= now).then(|| name.clone())
            })
            .collect()
    }

    /// One run of `name` under its lease; a `scheduled` one only if it is still due once the
    /// lease is held (another instance may have just run it).
    async fn reconcile_one(&self, name: &ConnectorName, scheduled: bool) -> RunOutcome {
        let store = self.service.store();
        let holder = format!("{}:{:p}", std::process::id(), std::ptr::from_ref(self));
        let lease = format!("reconcile:{name}");
        let now = self.service.clock().now();
        match store
            .take_lease(&lease, &holder, now, RECONCILE_LEASE)
            .await
        {
            Ok(true) => {}
            Ok(false) => return RunOutcome::Busy,
            Err(e) => return RunOutcome::Failed(e.to_string()),
        }
        if scheduled && !self.due().await.contains(name) {
            let _ = store.drop_lease(&lease, &holder).await;
            return RunOutcome::Busy;
        }
        let listing = self.listing(name).await;
        let policy = self.drift.get(name).map(|d| d.on_drift).unwrap_or_default();
        let r = self.service.record_reconcile(&listing, policy).await;
        if let Err(e) = store.drop_lease(&lease, &holder).await {
            warn!(error = %e, "cannot give the reconcile lease up");
        }
        // A revoke queued by the run goes to the workers now.
        self.service.wake_worker();
        match r {
            Ok(report) => RunOutcome::Ran(report),
            Err(e) => RunOutcome::Failed(e.to_string()),
        }
    }

    /// Takes each waiting review's snapshot: the connectors in its scope re-read, then the
    /// service records the items and sends the pages; how many.
    pub async fn snapshot_reviews(&self) -> usize {
        let todo = match self.service.reviews_to_snapshot().await {
            Ok(t) => t,
            Err(e) => {
                warn!(error = %e, "cannot read the reviews waiting for a snapshot");
                return 0;
            }
        };
        let mut done = 0;
        for (id, names) in todo {
            let span = info_span!("review_snapshot", review = %id);
            async {
                let mut listings = Vec::new();
                for n in &names {
                    listings.push(self.listing(n).await);
                }
                match self.service.snapshot_review(id, &listings).await {
                    Ok(()) => done += 1,
                    Err(e) => warn!(error = %e, "review snapshot failed; tried again later"),
                }
            }
            .instrument(span)
            .await;
        }
        done
    }

    /// What connector `name` holds: every account where it can list them, and the members
    /// of each entitlement the catalog names on it.
    pub async fn listing(&self, name: &ConnectorName) -> Listing {
        let Some(conn) = self.connectors.get(name) else {
            return Listing {
                connector: name.clone(),
                accounts: Ok(None),
                members: Vec::new(),
            };
        };
        let entitlements: BTreeSet<String> = self
            .service
            .org()
            .apps
            .iter()
            .filter(|a| &a.connector == name)
            .map(|a| a.entitlement.clone())
            .collect();
        let accounts = conn.list_accounts().await;
        let mut members = Vec::new();
        for e in entitlements {
            let m = conn.list_members(&e).await;
            members.push((e, m));
        }
        Listing {
            connector: name.clone(),
            accounts,
            members,
        }
    }
}

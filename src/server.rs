//! `serve` assembled: the service with its chat (Discord, or a log when `[discord]` is absent),
//! the provisioning workers, the scheduler, the HTTP server (interactions endpoint, `/healthz`,
//! `/metrics`) and, in gateway mode, the Discord gateway client. Shared by the binary and the
//! tests, which start it on port 0 with a manual clock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::chat::discord::chat::DiscordChat;
use crate::chat::discord::handler::InteractionHandler;
use crate::chat::discord::{self, DiscordError, gateway};
use crate::config::{Config, DiscordMode};
use crate::core::ports::{Button, Chat, ChatError, Clock, Message, MessageKey};
use crate::core::service::Service;
use crate::engine::Engine;
use crate::http::interactions::{self, BadPublicKey, InteractionsState};
use crate::http::ops::{self, Metrics, OpsState};
use crate::store::SqlStore;
use crate::wiring::{self, StartError};

/// How long the `scheduler` lease lasts; renewed every [`SCHEDULER_BEAT`], so another instance
/// (or a restarted one) takes the scheduled work over within this long after the holder dies.
const SCHEDULER_LEASE: Duration = Duration::from_secs(15);

/// How often the `scheduler` lease is renewed.
const SCHEDULER_BEAT: Duration = Duration::from_secs(5);

/// How often the scheduled work runs (at once, too, when an instance takes the lease).
const SCHEDULER_ROUND: Duration = Duration::from_secs(30);

/// How often seen interaction and HR event ids are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// How long an interaction id is kept: a replay is refused by its timestamp once it is
/// [`interactions::MAX_SKEW_SECS`] old, and its timestamp may have been that far ahead.
const INTERACTION_IDS_KEPT: chrono::TimeDelta =
    chrono::TimeDelta::seconds(2 * interactions::MAX_SKEW_SECS);

/// How long an HR event id is kept: past the 5 minute signature window a captured request
/// cannot be replayed, but a sender retrying with a fresh signature reuses the id, so a day.
const HR_EVENT_IDS_KEPT: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// Why `serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The core could not be assembled.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The Discord settings are unusable.
    #[error(transparent)]
    Discord(#[from] DiscordError),
    /// `[discord] public_key` is malformed.
    #[error(transparent)]
    PublicKey(#[from] BadPublicKey),
    /// `mode = "interactions"` without a public key.
    #[error("[discord] public_key is required when mode = \"interactions\"")]
    NoPublicKey,
}

/// A chat that only logs, for `serve` without `[discord]`.
pub struct LogChat;

#[async_trait]
impl Chat for LogChat {
    async fn send(&self, msg: Message) -> Result<(), ChatError> {
        tracing::info!(to = ?msg.to, buttons = msg.buttons.len(), "message: {}", msg.text);
        Ok(())
    }
    async fn edit(&self, key: &MessageKey, text: &str, _: &[Button]) -> Result<(), ChatError> {
        tracing::info!(key = %key, "edit: {text}");
        Ok(())
    }
}

/// A running server.
pub struct Server {
    /// The service.
    pub service: Arc<Service>,
    /// Where the HTTP server listens.
    pub addr: SocketAddr,
    /// The Discord interaction handler, when `[discord]` is configured.
    pub interactions: Option<Arc<InteractionHandler>>,
    /// True while the gateway connection is READY (gateway mode only).
    pub gateway_ready: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Stops everything gracefully: the HTTP server, the gateway, the scheduler, and the workers
    /// after their in-flight action.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts everything on `listener`.
pub async fn start(
    config: &Config,
    store: SqlStore,
    clock: Arc<dyn Clock>,
    listener: TcpListener,
) -> Result<Server, ServeError> {
    let metrics = Arc::new(Metrics::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, ready_rx) = watch::channel(false);
    let mut w = Wiring {
        router: ops_routes(config, &store, &metrics, &ready_rx),
        tasks: Vec::new(),
        stop: stop_rx,
    };
    let (service, engine, interactions) = match &config.discord {
        None => {
            let (s, e) = wiring::assemble(config, store.clone(), Arc::new(LogChat), clock)?;
            (s, e, None)
        }
        Some(dc) => {
            let (s, e, d) = with_discord(config, dc, &store, clock, metrics, ready_tx, &mut w)?;
            (s, e, Some(d))
        }
    };
    if config.mfa_key.is_some() {
        w.router = std::mem::take(&mut w.router).merge(crate::http::mfa::router(service.clone()));
    }
    if let Some(hr) = &config.hr {
        w.router = w
            .router
            .merge(crate::http::hr::router(service.clone(), hr.secret.clone()));
        tracing::info!("HR feed on POST /hr/events");
    }
    if let Some(sc) = &config.scim_server {
        w.router = w.router.merge(crate::http::scim::router(
            service.clone(),
            &sc.token,
            config.public_url.clone(),
        ));
        tracing::info!("inbound SCIM on /scim/v2/");
    }
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let Wiring {
        router,
        mut tasks,
        stop: stop_rx,
    } = w;
    tasks.push(spawn_http(listener, router, stop_rx.clone()));
    let stop = stop_rx.clone();
    tasks.push(spawn_reconciler(engine.clone(), stop_rx.clone()));
    tasks.push(tokio::spawn(async move { engine.run(stop).await }));
    // Messages go out from the durable outbox through this sender, not from the task that
    // committed them.
    service.deliver_in_background();
    let outbox = crate::engine::outbox::run(service.clone(), stop_rx.clone());
    tasks.push(tokio::spawn(outbox));
    let holder = format!("pid{}-{}", std::process::id(), addr);
    tasks.push(spawn_scheduler(
        service.clone(),
        store.clone(),
        holder,
        stop_rx.clone(),
    ));
    tasks.push(spawn_pruner(
        service.clone(),
        store.clone(),
        stop_rx.clone(),
    ));
    Ok(Server {
        service,
        addr,
        interactions,
        gateway_ready: ready_rx,
        stop: stop_tx,
        tasks,
    })
}

/// `/healthz` and `/metrics`; in gateway mode health includes the gateway's readiness.
fn ops_routes(
    config: &Config,
    store: &SqlStore,
    metrics: &Arc<Metrics>,
    ready: &watch::Receiver<bool>,
) -> Router {
    let gateway = config
        .discord
        .as_ref()
        .is_some_and(|d| matches!(d.mode, DiscordMode::Gateway));
    ops::router(OpsState {
        store: Arc::new(store.clone()),
        metrics: metrics.clone(),
        gateway_ready: gateway.then(|| ready.clone()),
    })
}

/// The HTTP server on `listener`, until `stop`.
fn spawn_http(
    listener: TcpListener,
    router: Router,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = crate::http::serve(listener, router, stop).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    })
}

/// What [`start`] builds up before the HTTP server starts: its routes, the background tasks
/// and the stop signal they watch.
struct Wiring {
    router: Router,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Receiver<bool>,
}

/// The service with Discord as its chat, and its interaction handler: on the interactions endpoint
/// (its routes added to `w`), or fed by a gateway client (a task added to `w`).
fn with_discord(
    config: &Config,
    dc: &crate::config::DiscordConfig,
    store: &SqlStore,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    ready_tx: watch::Sender<bool>,
    w: &mut Wiring,
) -> Result<(Arc<Service>, Engine, Arc<InteractionHandler>), ServeError> {
    let http = Arc::new(discord::build_http(dc)?);
    let chat = Arc::new(
        DiscordChat::new(
            http,
            Arc::new(store.clone()),
            clock.clone(),
            dc.approvals_channel.as_deref(),
        )
        .with_api_base(dc.api_base.clone()),
    );
    let (s, e) = wiring::assemble(config, store.clone(), chat.clone(), clock)?;
    let d = Arc::new(InteractionHandler::new(s.clone(), chat, metrics).with_guilds(&dc.guilds));
    match dc.mode {
        DiscordMode::Interactions => {
            let key = dc.public_key.as_deref().ok_or(ServeError::NoPublicKey)?;
            let v = interactions::verifier(key)?;
            let routes = interactions::router(InteractionsState {
                interactions: d.clone(),
                verifier: Arc::new(v),
            });
            w.router = std::mem::take(&mut w.router).merge(routes);
        }
        DiscordMode::Gateway => {
            let dc = dc.clone();
            let d = d.clone();
            let stop = w.stop.clone();
            w.tasks.push(tokio::spawn(async move {
                if let Err(e) = gateway::run(&dc, d, ready_tx, stop).await {
                    tracing::error!(error = %e, "the Discord gateway stopped");
                }
            }));
        }
    }
    Ok((s, e, d))
}

/// The scheduled work. Instances sharing a database take turns: only the holder of the
/// `scheduler` lease runs scheduled work, renewing it every round; when it dies, another
/// takes over once the lease ends.
fn spawn_scheduler(
    service: Arc<Service>,
    store: SqlStore,
    holder: String,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // When this instance last ran the scheduled work (None: not since it took the lease).
        let mut last: Option<tokio::time::Instant> = None;
        loop {
            let now = service.clock().now();
            match store
                .try_lease("scheduler", &holder, now, SCHEDULER_LEASE)
                .await
            {
                Ok(true) => {
                    if last.is_none_or(|t| t.elapsed() >= SCHEDULER_ROUND) {
                        last = Some(tokio::time::Instant::now());
                        if let Err(e) = service.tick().await {
                            tracing::warn!(error = %e, "scheduler step failed");
                        }
                    }
                }
                Ok(false) => {
                    last = None;
                    tracing::debug!("another instance holds the scheduler lease");
                }
                Err(e) => tracing::warn!(error = %e, "cannot take the scheduler lease"),
            }
            tokio::select! {
                _ = tokio::time::sleep(SCHEDULER_BEAT) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

/// Runs reconciles: those `/drift` asks for at once, and those due by `reconcile_every`
/// (checked every minute); one run per connector at a time across instances (their leases).
fn spawn_reconciler(engine: Engine, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let service = engine.service().clone();
            let asked = service.reconcile_asked();
            engine.reconcile_pending().await;
            tokio::select! {
                () = asked => {}
                () = tokio::time::sleep(Duration::from_secs(60)) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

/// Prunes seen interaction and HR event ids: they only matter while a replay could pass the
/// timestamp check.
fn spawn_pruner(
    service: Arc<Service>,
    store: SqlStore,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let interactions_before = chrono::Utc::now() - INTERACTION_IDS_KEPT;
            let hr_before = service.clock().now() - HR_EVENT_IDS_KEPT;
            match store.prune_seen(interactions_before, hr_before).await {
                Ok((i, h)) if i + h > 0 => {
                    tracing::debug!(interactions = i, hr_events = h, "pruned seen ids")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot prune seen ids"),
            }
            tokio::select! {
                _ = tokio::time::sleep(PRUNE_EVERY) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

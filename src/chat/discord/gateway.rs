//! Gateway mode: serenity's `Client` with a plain `EventHandler` that hands every interaction to
//! the [`InteractionHandler`] and posts the response through REST
//! (`POST /interactions/{id}/{token}/callback`).

use std::sync::Arc;
use std::time::Duration;

use serenity::all::{
    ConnectionStage, Context, EventHandler, GatewayIntents, Interaction, Ready,
    ShardStageUpdateEvent,
};
use serenity::async_trait;
use serenity::client::ClientBuilder;
use tracing::{info, warn};

use super::handler::{InteractionHandler, NotHandled};
use super::{DiscordError, build_http, with_retry};
use crate::config::DiscordConfig;

/// How long the shards get to close the connection after a stop; past it they are dropped
/// (a shard stuck connecting to an unreachable gateway never closes by itself).
const CLOSE_WAIT: Duration = Duration::from_secs(2);

struct Handler {
    interactions: Arc<InteractionHandler>,
    ready: tokio::sync::watch::Sender<bool>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _: Context, r: Ready) {
        info!(user = %r.user.name, session = %r.session_id, "connected to the Discord gateway");
        let _ = self.ready.send(true);
    }

    async fn shard_stage_update(&self, _: Context, e: ShardStageUpdateEvent) {
        if e.new != ConnectionStage::Connected {
            info!(stage = %e.new, "the Discord gateway connection is not ready");
            let _ = self.ready.send(false);
        }
    }

    async fn interaction_create(&self, _: Context, i: Interaction) {
        let (id, token) = match &i {
            Interaction::Command(c) | Interaction::Autocomplete(c) => (c.id, c.token.clone()),
            Interaction::Component(c) => (c.id, c.token.clone()),
            Interaction::Modal(m) => (m.id, m.token.clone()),
            _ => return,
        };
        let (body, pending) = match self.interactions.handle(i).await {
            Ok(handled) => handled,
            // Answered by whoever saw it first (an interaction is acknowledged once).
            Err(NotHandled::Replay) => {
                info!(interaction = %id, "a redelivered interaction was not acted on again");
                return;
            }
            Err(NotHandled::Unavailable) => (
                super::handler::ephemeral(
                    "Something went wrong on our side. Please try again.",
                    &[],
                ),
                None,
            ),
        };
        let http = self.interactions.http().clone();
        match with_retry(|| http.create_interaction_response(id, &token, &body, Vec::new())).await {
            Ok(()) => {
                if let Some(p) = pending {
                    tokio::spawn(p.finish());
                }
            }
            Err(e) => warn!(interaction = %id, error = %e, "cannot answer an interaction"),
        }
    }
}

/// Connects to the gateway and dispatches interactions until `stop` turns true. `ready` is
/// true while the gateway connection is READY. Returns promptly on `stop`, even while
/// serenity is still trying to (re)connect.
pub async fn run(
    cfg: &DiscordConfig,
    interactions: Arc<InteractionHandler>,
    ready: tokio::sync::watch::Sender<bool>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), DiscordError> {
    let http = build_http(cfg)?;
    let mut client = ClientBuilder::new_with_http(http, GatewayIntents::GUILDS)
        .event_handler(Handler {
            interactions,
            ready,
        })
        .await
        .map_err(DiscordError::from)?;
    let shards = client.shard_manager.clone();
    let stopped = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        r = client.start() => r.map_err(DiscordError::from),
        () = stopped => {
            if tokio::time::timeout(CLOSE_WAIT, shards.shutdown_all()).await.is_err() {
                warn!("the Discord gateway did not close in time; dropping it");
            }
            Ok(())
        }
    }
}

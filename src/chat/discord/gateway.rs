//! Gateway mode: serenity's `Client` with a plain `EventHandler` that hands every interaction to
//! the [`Dispatcher`] and posts the response through REST
//! (`POST /interactions/{id}/{token}/callback`).

use std::sync::Arc;

use serenity::all::{Context, EventHandler, GatewayIntents, Interaction, Ready};
use serenity::async_trait;
use serenity::client::ClientBuilder;
use tracing::{info, warn};

use super::dispatch::Dispatcher;
use super::{DiscordError, build_http, with_retry};
use crate::config::DiscordConfig;

struct Handler {
    dispatcher: Arc<Dispatcher>,
    ready: tokio::sync::watch::Sender<bool>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _: Context, r: Ready) {
        info!(user = %r.user.name, session = %r.session_id, "connected to the Discord gateway");
        let _ = self.ready.send(true);
    }

    async fn interaction_create(&self, _: Context, i: Interaction) {
        let (id, token) = match &i {
            Interaction::Command(c) | Interaction::Autocomplete(c) => (c.id, c.token.clone()),
            Interaction::Component(c) => (c.id, c.token.clone()),
            Interaction::Modal(m) => (m.id, m.token.clone()),
            _ => return,
        };
        let (body, pending) = self.dispatcher.handle(i).await;
        let http = self.dispatcher.http().clone();
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

/// Connects to the gateway and dispatches interactions until `stop` turns true. `ready` turns
/// true once the gateway said READY.
pub async fn run(
    cfg: &DiscordConfig,
    dispatcher: Arc<Dispatcher>,
    ready: tokio::sync::watch::Sender<bool>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), DiscordError> {
    let http = build_http(cfg)?;
    let mut client = ClientBuilder::new_with_http(http, GatewayIntents::GUILDS)
        .event_handler(Handler { dispatcher, ready })
        .await
        .map_err(DiscordError::from)?;
    let shards = client.shard_manager.clone();
    tokio::spawn(async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
        shards.shutdown_all().await;
    });
    client.start().await.map_err(DiscordError::from)
}

//! The websocket gateway: HELLO → IDENTIFY → READY, heartbeats, and dispatched events.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{Message as Ws, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::json::user_json;
use super::{APP_ID, BOT_ID, GUILD_ID, Shared};

pub(super) async fn gateway(State(sh): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| session(sh, socket))
}

pub(super) async fn session(sh: Arc<Shared>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let hello = json!({ "op": 10, "d": { "heartbeat_interval": 41250 }, "s": null, "t": null });
    if socket
        .send(Ws::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(frame) = out else { return };
                if socket.send(Ws::Text(frame.into())).await.is_err() {
                    return;
                }
            }
            inc = socket.recv() => {
                let Some(Ok(msg)) = inc else { return };
                let text = match msg {
                    Ws::Text(t) => t.to_string(),
                    Ws::Close(_) => return,
                    _ => continue,
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                match v["op"].as_u64() {
                    Some(2) => {
                        let ready = {
                            let mut s = sh.state.lock().unwrap();
                            s.identifies.push(v["d"].clone());
                            s.gateway = Some(tx.clone());
                            s.seq += 1;
                            json!({
                                "op": 0, "t": "READY", "s": s.seq,
                                "d": {
                                    "v": 10,
                                    "user": user_json(BOT_ID, "Quartermaster", true),
                                    "guilds": [{ "id": GUILD_ID, "unavailable": true }],
                                    "session_id": "fake-session-1",
                                    "resume_gateway_url": format!("ws://{}/gateway", sh.addr),
                                    "shard": [0, 1],
                                    "application": { "id": APP_ID, "flags": 0 },
                                }
                            })
                        };
                        sh.changed.notify_waiters();
                        if socket.send(Ws::Text(ready.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                    Some(1) => {
                        sh.state.lock().unwrap().heartbeats += 1;
                        let ack = json!({ "op": 11, "d": null, "s": null, "t": null });
                        if socket.send(Ws::Text(ack.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

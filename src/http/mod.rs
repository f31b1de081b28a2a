//! The HTTP server (axum): each route module returns an `axum::Router`, and [`serve`] merges
//! them on `[http] listen`. Routes verify, decode and call the core; no business rules here.

pub mod hr;
pub mod interactions;
pub mod ops;

use axum::Router;
use tokio::net::TcpListener;

/// The default address when `[http] listen` is not given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Serves `router` on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
}

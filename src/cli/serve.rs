//! `serve`: production, the workers, the scheduler and the HTTP server until a signal.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use quartermaster::config::Config;
use quartermaster::core::ports::{Clock, SystemClock};
use quartermaster::wiring;

use super::{LogFormat, base_dir, config_arg, fail, load_config, telemetry};

/// `serve --config F [--db URL]`: runs until SIGINT/SIGTERM, then finishes in-flight work.
/// Without `--config` it refuses (exit 2): the built-in example is `console`'s.
pub async fn serve(
    config_path: Option<PathBuf>,
    db: Option<String>,
    log_format: LogFormat,
) -> ExitCode {
    if config_path.is_none() {
        eprintln!(
            "serve needs --config FILE (write a starter with `quartermaster init`); \
             the built-in example organisation is for `quartermaster console`"
        );
        return ExitCode::from(2);
    }
    telemetry("info", log_format);
    let stop_signal = shutdown_signal();
    let config = match load_config(config_path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let url = wiring::database_url(db.as_deref(), &config, &base_dir(config_path.as_deref()));
    let store = match wiring::open_store(&config, &url).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let listen = listen_address(&config);
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {listen} ([http] listen): {e}");
            return ExitCode::from(1);
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let server = match quartermaster::server::start(&config, store, clock, listener).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    tracing::info!(database = %url, listen = %server.addr, discord = ?config.discord.as_ref().map(|d| d.mode), "quartermaster serving");
    warn_unapplied(&config, &url, config_path.as_deref()).await;
    stop_signal.await;
    tracing::info!("stopping: finishing in-flight work");
    server.stop().await;
    ExitCode::SUCCESS
}

/// `[http] listen`, or the default address.
fn listen_address(config: &Config) -> std::net::SocketAddr {
    config.http.map_or_else(
        || {
            quartermaster::http::DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 8080)))
        },
        |h| h.listen,
    )
}

/// Logs each `[[person]]` edit the database does not have.
async fn warn_unapplied(config: &Config, url: &str, config_path: Option<&std::path::Path>) {
    match wiring::unapplied_person_edits(config, url, &config_arg(config_path)).await {
        Ok(Some(edits)) => {
            for e in &edits {
                tracing::warn!("[[person]] edit not applied: {e}");
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot compare the [[person]] entries with the database")
        }
    }
}

/// Installs the SIGTERM / Ctrl-C handlers now and returns the future that waits for
/// either. Installing them before any work starts means a signal that arrives while
/// the server is starting is handled (graceful stop), never the default kill.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate())
            .and_then(|t| signal(SignalKind::interrupt()).map(|i| (t, i)))
            .ok()
    };
    async move {
        #[cfg(unix)]
        if let Some((mut term, mut int)) = handlers {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

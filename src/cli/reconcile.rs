//! `reconcile [--connector NAME]`: one drift run now; prints the findings (the digest goes to
//! the outbox as `serve` would send it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use quartermaster::core::ports::{Clock, SystemClock};
use quartermaster::engine::reconcile::RunOutcome;
use quartermaster::wiring;

use super::{LogFormat, base_dir, fail, load_config, telemetry};

/// `reconcile`: lists what each connector holds, compares it with the records, prints the
/// findings. Exit 1 when a connector that can list failed to be read in full, or a run failed.
pub async fn reconcile(
    config_path: Option<PathBuf>,
    db: Option<String>,
    connector: Option<String>,
) -> ExitCode {
    telemetry("warn", LogFormat::Text);
    let config = match load_config(config_path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let url = wiring::database_url(db.as_deref(), &config, &base_dir(config_path.as_deref()));
    let only = match connector
        .as_deref()
        .map(quartermaster::core::model::ConnectorName::parse)
    {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            eprintln!("--connector: {e}");
            return ExitCode::from(2);
        }
    };
    let store = match wiring::open_store(&config, &url).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let chat = Arc::new(quartermaster::server::LogChat);
    let (_service, engine) = match wiring::assemble(&config, store, chat, clock) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let runs = engine.reconcile(only.as_ref()).await;
    if let Some(c) = &only
        && runs.is_empty()
    {
        eprintln!("no app is provisioned through a connector \"{c}\"");
        return ExitCode::from(2);
    }
    let mut ok = true;
    for (name, outcome) in runs {
        match outcome {
            RunOutcome::Ran(r) => {
                println!(
                    "{name}: {} open finding(s), {} new, {} no longer seen, {} revoked",
                    r.open.len(),
                    r.new,
                    r.gone,
                    r.revoked
                );
                for f in &r.open {
                    println!("  #{} {}: {}", f.id, f.class.as_str(), f.detail);
                }
                for u in &r.unread {
                    // A connector that cannot list by nature (manual) is said, not a failure.
                    ok &= u.contains(quartermaster::core::ports::CANNOT_LIST);
                    println!("  cannot be read: {u}");
                }
            }
            RunOutcome::Busy => println!("{name}: another instance is reconciling it"),
            RunOutcome::Failed(e) => {
                ok = false;
                println!("{name}: failed: {e}");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

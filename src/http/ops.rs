//! Operations endpoints: `GET /healthz` (200 when the database answers and, in gateway mode,
//! the Discord gateway is READY; 503 with the reason otherwise)
//! and `GET /metrics` (Prometheus text: interactions by kind and outcome with their latency,
//! requests by state, decisions, connector actions by state, queue depth).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::core::ports::Health;
pub use crate::metrics::{Metrics, RECENT};

/// What the operations routes need.
#[derive(Clone)]
pub struct OpsState {
    /// The database's health and counts.
    pub store: Arc<dyn Health>,
    /// In-process counters.
    pub metrics: Arc<Metrics>,
    /// In gateway mode: true while the Discord gateway connection is READY.
    pub gateway_ready: Option<tokio::sync::watch::Receiver<bool>>,
}

/// `GET /healthz` and `GET /metrics`.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz(State(s): State<OpsState>) -> impl IntoResponse {
    let ok = tokio::time::timeout(Duration::from_secs(2), s.store.ping())
        .await
        .unwrap_or(false);
    if !ok {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n");
    }
    if s.gateway_ready.as_ref().is_some_and(|r| !*r.borrow()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Discord gateway not connected (connecting or reconnecting; see the log)\n",
        );
    }
    (StatusCode::OK, "ok\n")
}

/// Open drift findings by connector and class, and each connector's last reconcile.
fn drift_metrics(out: &mut String, c: &crate::core::ports::OpsCounts) {
    out.push_str(
        "# HELP quartermaster_drift_findings Open drift findings by connector and class.\n",
    );
    out.push_str("# TYPE quartermaster_drift_findings gauge\n");
    for (conn, class, n) in &c.drift {
        let _ = writeln!(
            out,
            "quartermaster_drift_findings{{connector=\"{conn}\",class=\"{class}\"}} {n}"
        );
    }
    out.push_str("# HELP quartermaster_reconcile_last_success_seconds When each connector was last reconciled in full (unix time).\n");
    out.push_str("# TYPE quartermaster_reconcile_last_success_seconds gauge\n");
    for r in &c.reconciles {
        if let Some(t) = r.last_ok {
            let _ = writeln!(
                out,
                "quartermaster_reconcile_last_success_seconds{{connector=\"{}\"}} {}",
                r.connector,
                t.timestamp()
            );
        }
    }
    out.push_str("# HELP quartermaster_reconcile_failing Whether a connector's last reconcile could not read everything.\n");
    out.push_str("# TYPE quartermaster_reconcile_failing gauge\n");
    for r in &c.reconciles {
        let _ = writeln!(
            out,
            "quartermaster_reconcile_failing{{connector=\"{}\"}} {}",
            r.connector,
            u8::from(r.last_error.is_some())
        );
    }
}

async fn metrics(State(s): State<OpsState>) -> impl IntoResponse {
    let mut out = String::new();
    s.metrics.render(&mut out);
    let counts = tokio::time::timeout(Duration::from_secs(2), s.store.ops_counts()).await;
    let up = match counts {
        Ok(Ok(c)) => {
            out.push_str("# HELP quartermaster_requests Access requests by state.\n");
            out.push_str("# TYPE quartermaster_requests gauge\n");
            for (state, n) in &c.requests {
                let _ = writeln!(out, "quartermaster_requests{{state=\"{state}\"}} {n}");
            }
            out.push_str("# HELP quartermaster_decisions_total Approval steps decided.\n");
            out.push_str("# TYPE quartermaster_decisions_total counter\n");
            let _ = writeln!(
                out,
                "quartermaster_decisions_total{{decision=\"approved\"}} {}",
                c.decisions.0
            );
            let _ = writeln!(
                out,
                "quartermaster_decisions_total{{decision=\"denied\"}} {}",
                c.decisions.1
            );
            out.push_str("# HELP quartermaster_actions Connector actions by state (outcome).\n");
            out.push_str("# TYPE quartermaster_actions gauge\n");
            for (state, n) in &c.actions {
                let _ = writeln!(out, "quartermaster_actions{{state=\"{state}\"}} {n}");
            }
            out.push_str(
                "# HELP quartermaster_queue_depth Connector actions pending or running.\n",
            );
            out.push_str("# TYPE quartermaster_queue_depth gauge\n");
            let _ = writeln!(out, "quartermaster_queue_depth {}", c.queue_depth);
            let o = &c.outbox;
            out.push_str(
                "# HELP quartermaster_messages_pending Chat messages in the outbox not delivered yet.\n",
            );
            out.push_str("# TYPE quartermaster_messages_pending gauge\n");
            let _ = writeln!(out, "quartermaster_messages_pending {}", o.pending);
            out.push_str("# HELP quartermaster_messages_sent_total Chat messages delivered (to their recipient or a fallback).\n");
            out.push_str("# TYPE quartermaster_messages_sent_total counter\n");
            let _ = writeln!(out, "quartermaster_messages_sent_total {}", o.sent);
            out.push_str("# HELP quartermaster_messages_retried_total Chat delivery attempts beyond the first.\n");
            out.push_str("# TYPE quartermaster_messages_retried_total counter\n");
            let _ = writeln!(out, "quartermaster_messages_retried_total {}", o.retried);
            out.push_str("# HELP quartermaster_messages_failed_total Chat messages given up (audited as message.failed).\n");
            out.push_str("# TYPE quartermaster_messages_failed_total counter\n");
            let _ = writeln!(out, "quartermaster_messages_failed_total {}", o.failed);
            drift_metrics(&mut out, &c);
            1
        }
        _ => 0,
    };
    out.push_str("# HELP quartermaster_database_up Whether the database answered.\n");
    out.push_str("# TYPE quartermaster_database_up gauge\n");
    let _ = writeln!(out, "quartermaster_database_up {up}");
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}

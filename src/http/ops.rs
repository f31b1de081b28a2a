//! Operations endpoints: `GET /healthz` (200 when the database answers and, in gateway mode,
//! the Discord gateway is READY; 503 with the reason otherwise)
//! and `GET /metrics` (Prometheus text: interactions by kind and outcome with their latency,
//! requests by state, decisions, connector actions by state, queue depth).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::store::SqlStore;

/// Latency histogram bucket bounds, in seconds (3 s is Discord's deadline).
const BUCKETS: [f64; 8] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0];

/// How many of the latest interaction latencies are kept for [`Metrics::recent_latencies`].
pub const RECENT: usize = 65_536;

#[derive(Default)]
struct Inner {
    interactions: BTreeMap<(String, String), u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
    recent: VecDeque<Duration>,
}

/// In-process counters (the rest of `/metrics` is read from the database).
#[derive(Default)]
pub struct Metrics(Mutex<Inner>);

impl Metrics {
    /// Counts one handled interaction of `kind` (command, click, modal, autocomplete, ping)
    /// with its `outcome` (replied, deferred, modal, refused, replayed…) and how long the first
    /// response took.
    pub fn interaction(&self, kind: &str, outcome: &str, took: Duration) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *m.interactions
            .entry((kind.to_owned(), outcome.to_owned()))
            .or_default() += 1;
        let s = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                m.buckets[i] += 1;
            }
        }
        m.count += 1;
        m.sum += s;
    }

    /// Records how long `POST /discord/interactions` took, from the request's arrival (its
    /// headers parsed) to its response, signature check and replay record included.
    pub fn endpoint(&self, took: Duration) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.recent.len() == RECENT {
            m.recent.pop_front();
        }
        m.recent.push_back(took);
    }

    /// The latest (at most [`RECENT`]) endpoint latencies recorded by [`Metrics::endpoint`],
    /// oldest first: exact quantiles for benchmarks and diagnosis, where the histogram only
    /// has coarse buckets.
    pub fn recent_latencies(&self) -> Vec<Duration> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.recent.iter().copied().collect()
    }

    fn render(&self, out: &mut String) {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        out.push_str("# HELP quartermaster_interactions_total Discord interactions handled, by kind and outcome.\n");
        out.push_str("# TYPE quartermaster_interactions_total counter\n");
        for ((k, o), n) in &m.interactions {
            let _ = writeln!(
                out,
                "quartermaster_interactions_total{{kind=\"{k}\",outcome=\"{o}\"}} {n}"
            );
        }
        out.push_str("# HELP quartermaster_interaction_seconds Time to the first response to an interaction.\n");
        out.push_str("# TYPE quartermaster_interaction_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "quartermaster_interaction_seconds_bucket{{le=\"{b}\"}} {}",
                m.buckets[i]
            );
        }
        let _ = writeln!(
            out,
            "quartermaster_interaction_seconds_bucket{{le=\"+Inf\"}} {}",
            m.count
        );
        let _ = writeln!(out, "quartermaster_interaction_seconds_sum {}", m.sum);
        let _ = writeln!(out, "quartermaster_interaction_seconds_count {}", m.count);
    }
}

/// What the operations routes need.
#[derive(Clone)]
pub struct OpsState {
    /// The database.
    pub store: SqlStore,
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

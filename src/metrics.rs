//! In-process counters of the chat adapters (interactions by kind and outcome, with their
//! latency), shared by the Discord dispatcher and the HTTP routes, rendered by `/metrics`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

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

    /// Appends the counters to `out` in Prometheus text format.
    pub fn render(&self, out: &mut String) {
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

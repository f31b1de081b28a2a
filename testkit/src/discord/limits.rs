//! Discord's rate limits, modelled when a test turns them on ([`FakeDiscord::enforce_rate_limits`]):
//! the global limit (50 requests per second per bot, interaction callbacks excepted) and
//! per-route buckets keyed by their top-level resource — message creation per channel (5 per
//! 5 s, the commonly observed value) and DM channel creation (per bot; Discord publishes no
//! figure, [`Limits::default`] assumes 5 per second). Every answer on a limited route carries
//! Discord's headers (`X-RateLimit-Limit`, `-Remaining`, `-Reset`, `-Reset-After`, `-Bucket`);
//! a call over a limit is answered 429 with `retry_after` and `global` in the body,
//! `Retry-After`, `X-RateLimit-Scope` (and `X-RateLimit-Global` for the global limit), and is
//! counted as a violation: a client that reads the headers never sees one.
//!
//! [`FakeDiscord::enforce_rate_limits`]: super::FakeDiscord::enforce_rate_limits

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, Method};
use serde_json::{Value, json};

/// The limits the fake enforces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Requests per second over every route (interaction callbacks excepted).
    pub global_per_sec: u32,
    /// Message creates per channel per window.
    pub messages: (u32, Duration),
    /// DM channel creations per window.
    pub dm_channels: (u32, Duration),
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            global_per_sec: 50,
            messages: (5, Duration::from_secs(5)),
            dm_channels: (5, Duration::from_secs(1)),
        }
    }
}

/// Calls the limits refused, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Violations {
    /// Over the global limit.
    pub global: u32,
    /// Over a per-route bucket.
    pub route: u32,
}

impl Violations {
    /// Both kinds.
    pub fn total(&self) -> u32 {
        self.global + self.route
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    remaining: u32,
    reset_at: Instant,
}

/// The limiter's state: the last second's calls and each bucket's window.
#[derive(Debug)]
pub struct RateState {
    pub(super) limits: Limits,
    recent: VecDeque<Instant>,
    buckets: HashMap<String, Bucket>,
    /// What was refused.
    pub violations: Violations,
}

/// What the limiter says about one call: headers to add, or a 429 to answer instead.
pub(super) struct Verdict {
    pub headers: HeaderMap,
    pub refused: Option<Value>,
}

impl RateState {
    pub(super) fn new(limits: Limits) -> Self {
        Self {
            limits,
            recent: VecDeque::new(),
            buckets: HashMap::new(),
            violations: Violations::default(),
        }
    }

    /// The route bucket a call falls in: (bucket hash, key with its top-level resource,
    /// limit, window).
    fn route(&self, method: &Method, rest: &str) -> Option<(&'static str, String, u32, Duration)> {
        let seg: Vec<&str> = rest.split('/').collect();
        match (method.as_str(), seg.as_slice()) {
            ("POST", ["channels", ch, "messages"]) => {
                let (n, w) = self.limits.messages;
                Some((
                    "80c17d2f203122d936070c88c8d10f33",
                    format!("msg:{ch}"),
                    n,
                    w,
                ))
            }
            ("POST", ["users", "@me", "channels"]) => {
                let (n, w) = self.limits.dm_channels;
                Some(("4f2a1b6c9e0d7a3b5c8e1f0a2b4d6c8e", "dm".to_owned(), n, w))
            }
            _ => None,
        }
    }

    /// Counts the call against the global limit and its bucket.
    pub(super) fn check(&mut self, method: &Method, rest: &str, now: Instant) -> Verdict {
        let mut headers = HeaderMap::new();
        let exempt = rest.starts_with("interactions/") || rest.starts_with("webhooks/");
        if !exempt {
            while self
                .recent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                self.recent.pop_front();
            }
            if self.recent.len() >= self.limits.global_per_sec as usize {
                self.violations.global += 1;
                let wait = self.recent.front().map_or(Duration::ZERO, |t| {
                    Duration::from_secs(1).saturating_sub(now.duration_since(*t))
                });
                let secs = round(wait);
                set(&mut headers, "retry-after", &secs.to_string());
                set(&mut headers, "x-ratelimit-global", "true");
                set(&mut headers, "x-ratelimit-scope", "global");
                return Verdict {
                    headers,
                    refused: Some(refusal(secs, true)),
                };
            }
            self.recent.push_back(now);
        }
        let Some((hash, key, limit, window)) = self.route(method, rest) else {
            return Verdict {
                headers,
                refused: None,
            };
        };
        let b = self.buckets.entry(key).or_insert(Bucket {
            remaining: limit,
            reset_at: now + window,
        });
        if now >= b.reset_at {
            *b = Bucket {
                remaining: limit,
                reset_at: now + window,
            };
        }
        let reset_after = b.reset_at.duration_since(now);
        let refused = if b.remaining == 0 {
            self.violations.route += 1;
            set(&mut headers, "retry-after", &round(reset_after).to_string());
            set(&mut headers, "x-ratelimit-scope", "user");
            Some(refusal(round(reset_after), false))
        } else {
            b.remaining -= 1;
            None
        };
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            + reset_after;
        set(&mut headers, "x-ratelimit-limit", &limit.to_string());
        set(
            &mut headers,
            "x-ratelimit-remaining",
            &b.remaining.to_string(),
        );
        set(
            &mut headers,
            "x-ratelimit-reset",
            &format!("{:.3}", epoch.as_secs_f64()),
        );
        set(
            &mut headers,
            "x-ratelimit-reset-after",
            &round(reset_after).to_string(),
        );
        set(&mut headers, "x-ratelimit-bucket", hash);
        Verdict { headers, refused }
    }
}

/// Seconds, to the millisecond (rounded up, so waiting that long is enough).
fn round(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).ceil() / 1000.0
}

fn refusal(secs: f64, global: bool) -> Value {
    json!({ "message": "You are being rate limited.", "retry_after": secs, "global": global, "code": 0 })
}

fn set(h: &mut HeaderMap, k: &'static str, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        h.insert(k, v);
    }
}

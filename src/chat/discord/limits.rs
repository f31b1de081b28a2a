//! Discord's rate limits, for the REST calls our own client makes (message creates and DM
//! channel opens: serenity's limiter never sees them, on Discord as behind a proxy).
//!
//! - The global limit (50 requests per second per bot): calls are paced to it, with a small
//!   margin, and after a global 429 every call waits out its `retry_after`.
//! - Per-route buckets, as Discord's headers describe them (`X-RateLimit-Remaining`,
//!   `-Reset-After`): once a bucket is spent, a call on it is not made until the bucket
//!   resets; [`RateLimiter::acquire`] says how long instead, and the outbox retries the
//!   message then while it sends others. A 429 on a route spends its bucket for
//!   `retry_after`.
//!
//! Nothing here is hard-coded per route: a bucket is known only from the headers Discord sent.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Discord's global limit, requests per second.
pub const GLOBAL_PER_SEC: usize = 50;

/// The window the global pace counts in: a second and a margin, so requests that reach
/// Discord closer together than they left never count 51 in a second.
const GLOBAL_WINDOW: Duration = Duration::from_millis(1050);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    remaining: u32,
    reset_at: Instant,
}

#[derive(Debug, Default)]
struct State {
    recent: VecDeque<Instant>,
    global_until: Option<Instant>,
    buckets: HashMap<String, Bucket>,
}

/// What an answer said about the limits.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Seen {
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<u32>,
    /// `X-RateLimit-Reset-After`, seconds.
    pub reset_after: Option<f64>,
    /// A 429's wait (body `retry_after`, else `Retry-After`), seconds.
    pub retry_after: Option<f64>,
    /// A 429 of the global limit (`global` in the body, or `X-RateLimit-Global`).
    pub global: bool,
}

impl Seen {
    /// The limits an answer's headers (and a 429's body) describe.
    pub fn of(status: u16, headers: &reqwest::header::HeaderMap, body: &serde_json::Value) -> Self {
        let h = |k: &str| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
        };
        let num = |k: &str| h(k).and_then(|v| v.parse::<f64>().ok());
        let limited = status == 429;
        Self {
            remaining: h("x-ratelimit-remaining").and_then(|v| v.parse().ok()),
            reset_after: num("x-ratelimit-reset-after"),
            retry_after: if limited {
                body["retry_after"].as_f64().or_else(|| num("retry-after"))
            } else {
                None
            },
            global: limited
                && (body["global"].as_bool() == Some(true)
                    || h("x-ratelimit-global").as_deref() == Some("true")
                    || h("x-ratelimit-scope").as_deref() == Some("global")),
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(if s.is_finite() {
        s.clamp(0.0, 3600.0)
    } else {
        0.0
    })
}

/// The limiter of one bot's REST calls.
#[derive(Debug, Default)]
pub struct RateLimiter {
    state: Mutex<State>,
}

impl RateLimiter {
    /// Before a call on `route` (method and path, its top-level resource included): waits
    /// for the global limit; then, when `route`'s bucket is spent, how long until it resets
    /// (the call must not be made before).
    pub async fn acquire(&self, route: &str) -> Result<(), Duration> {
        loop {
            let wait = {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                match s.global_until.filter(|t| *t > now) {
                    Some(t) => t - now,
                    None => {
                        while s
                            .recent
                            .front()
                            .is_some_and(|t| now.duration_since(*t) >= GLOBAL_WINDOW)
                        {
                            s.recent.pop_front();
                        }
                        match s.recent.front() {
                            Some(first) if s.recent.len() >= GLOBAL_PER_SEC => {
                                GLOBAL_WINDOW.saturating_sub(now.duration_since(*first))
                            }
                            _ => {
                                if let Some(b) = s.buckets.get_mut(route)
                                    && b.reset_at > now
                                {
                                    if b.remaining == 0 {
                                        return Err(b.reset_at - now);
                                    }
                                    // Held for this call until its answer says more.
                                    b.remaining -= 1;
                                }
                                s.recent.push_back(now);
                                return Ok(());
                            }
                        }
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// After a call on `route`: what its answer said.
    pub fn observe(&self, route: &str, seen: Seen) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if seen.global {
            let until = now + secs(seen.retry_after.unwrap_or(1.0));
            s.global_until = Some(s.global_until.map_or(until, |t| t.max(until)));
            return;
        }
        let bucket = match (seen.retry_after, seen.remaining, seen.reset_after) {
            (Some(wait), _, _) => Bucket {
                remaining: 0,
                reset_at: now + secs(wait),
            },
            (None, Some(remaining), Some(after)) => Bucket {
                remaining,
                reset_at: now + secs(after),
            },
            _ => return,
        };
        s.buckets.insert(route.to_owned(), bucket);
        // Buckets long reset are forgotten (one per DM channel adds up).
        if s.buckets.len() > 10_000 {
            s.buckets.retain(|_, b| b.reset_at > now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spent_bucket_says_how_long_until_it_resets() {
        let l = RateLimiter::default();
        let r = "POST channels/1/messages";
        assert!(l.acquire(r).await.is_ok(), "an unknown bucket is free");
        l.observe(
            r,
            Seen {
                remaining: Some(0),
                reset_after: Some(2.0),
                ..Seen::default()
            },
        );
        let wait = l.acquire(r).await.unwrap_err();
        assert!(wait > Duration::from_millis(1900) && wait <= Duration::from_secs(2));
        assert!(l.acquire("POST channels/2/messages").await.is_ok());
    }

    #[tokio::test]
    async fn a_bucket_with_calls_left_is_held_per_call() {
        let l = RateLimiter::default();
        let r = "POST channels/1/messages";
        l.observe(
            r,
            Seen {
                remaining: Some(2),
                reset_after: Some(5.0),
                ..Seen::default()
            },
        );
        assert!(l.acquire(r).await.is_ok());
        assert!(l.acquire(r).await.is_ok());
        assert!(l.acquire(r).await.is_err());
    }

    #[tokio::test]
    async fn a_global_429_makes_every_call_wait_and_calls_are_paced() {
        let l = RateLimiter::default();
        l.observe(
            "x",
            Seen {
                retry_after: Some(0.2),
                global: true,
                ..Seen::default()
            },
        );
        let t = tokio::time::Instant::now();
        l.acquire("POST channels/9/messages").await.unwrap();
        assert!(t.elapsed() >= Duration::from_millis(190));
        // The pace: 50 in a window, the 51st after it.
        let l = RateLimiter::default();
        let t = tokio::time::Instant::now();
        for _ in 0..GLOBAL_PER_SEC {
            l.acquire("GET y").await.unwrap();
        }
        assert!(t.elapsed() < Duration::from_millis(200));
        l.acquire("GET y").await.unwrap();
        assert!(t.elapsed() >= GLOBAL_WINDOW - Duration::from_millis(200));
    }
}

//! Where time comes from.

use std::sync::Mutex;

use crate::core::model::{Span, Timestamp};

/// Where time comes from, so expiries and reminders can be tested by moving a clock.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// A clock that starts at a given moment and moves only when told (`:advance`).
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Mutex::new(start))
    }
    /// Moves the clock forward.
    pub fn advance(&self, by: Span) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t = by.after(*t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

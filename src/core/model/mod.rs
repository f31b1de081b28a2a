//! Newtypes and entities of the domain. Parse, don't validate: every identifier is checked once,
//! when it is built, and carried as its own type from then on.
//!
//! By topic: `ids` (checked identifiers), `span`, `people`, `catalog` (the organisation),
//! `requests` (requests, steps, grants), `actions` (connector actions) and `step_up`
//! (TOTP enrolments, break-glass grants).

mod actions;
mod catalog;
mod drift;
mod ids;
mod people;
mod requests;
mod review;
mod span;
mod step_up;

use chrono::{DateTime, Utc};

pub use super::audit::AuditEvent;
pub use super::zone::Zone;
pub use actions::*;
pub use catalog::*;
pub use drift::*;
pub use ids::*;
pub use people::*;
pub use requests::*;
pub use review::*;
pub use span::*;
pub use step_up::*;

/// A moment in time, always UTC.
pub type Timestamp = DateTime<Utc>;

//! The connector action queue: claims with leases, releases and lease renewals.

use std::time::Duration;

use super::rows::micros;
use crate::core::model::{ConnectorName, Timestamp};

/// `now` and the end of a lease taken now, in stored microseconds.
pub(super) fn lease_window(now: Timestamp, lease: Duration) -> (i64, i64) {
    let now_us = micros(now);
    let lease_us = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
    (now_us, now_us.saturating_add(lease_us))
}

/// Connectors to skip as `,a,b,` (one bind). Names are slugs (no commas), so the list is
/// unambiguous.
pub(super) fn skip_list(skip: &[ConnectorName]) -> String {
    format!(
        ",{},",
        skip.iter()
            .map(ConnectorName::as_str)
            .collect::<Vec<_>>()
            .join(",")
    )
}

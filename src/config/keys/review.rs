//! The keys of access reviews: `[[app]] privileged` and `[[review]]`.

use super::{KeySpec, REQ, k};

/// The keys.
pub const REVIEW_KEYS: &[KeySpec] = &[
    k(
        "app",
        "privileged",
        "boolean",
        Some("false"),
        "true",
        "Access reviews ask for a reason on Keep too (Revoke always asks why).",
    ),
    k(
        "review",
        "scope",
        "string",
        REQ,
        "\"app:figma\"",
        "What it reviews: `app:NAME`, `role:NAME`, `department:NAME`, `connector:NAME` or `all`.",
    ),
    k(
        "review",
        "reviewer",
        "string",
        Some("\"manager\""),
        "\"owner\"",
        "Who decides each access: the holder's `manager`, the app's `owner`s, or a handle; \
         never the holder (then other IT admins, then the manager).",
    ),
    k(
        "review",
        "due",
        "duration",
        Some("\"14d\""),
        "\"14d\"",
        "How long reviewers have; then `default` applies.",
    ),
    k(
        "review",
        "escalate_after",
        "duration",
        Some("half of `due`"),
        "\"7d\"",
        "When the reviewer's manager gets the undecided items too.",
    ),
    k(
        "review",
        "default",
        "string",
        Some("\"escalate\""),
        "\"revoke\"",
        "What happens at `due` to what nobody decided: `keep`, `revoke`, or `escalate` (IT \
         gets the items).",
    ),
    k(
        "review",
        "every",
        "duration",
        REQ,
        "\"90d\"",
        "How often the campaign runs.",
    ),
    k(
        "review",
        "starts",
        "date",
        REQ,
        "\"2027-01-05\"",
        "Its first run (UTC midnight); absent: at once.",
    ),
];

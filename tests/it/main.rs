//! The integration tests: one binary (linking serenity, sqlx and ldap3 once instead of once
//! per file), a module per area. The shared support (the harness `Bot`, throw-away databases,
//! the fake Discord, the peers' starters) is the `testkit` crate, which the benches use too.
//!
//! One process now runs what used to be separate ones, so a test must not change
//! process-wide state: no `std::env::set_var` (environment for a child goes on its
//! `Command`, as the crash failpoint `QM_ABORT_AFTER_COMMIT` does), no global tracing
//! subscriber (`tracing::subscriber::set_default` is per thread), no fixed port outside
//! `testkit` (Samba's 389 is taken one test at a time). Shared peers
//! (`ScimServer::shared`, `Scimmy::shared`) give each test a tenant of its own.
//! `cargo test --test it MODULE::` runs one module.

mod break_glass;
mod cli;
mod crash;
mod crash_process;
mod discord;
mod drift;
mod drift_peers;
mod drift_peers_ldap;
mod http_limits;
mod ldap;
mod ldap_directories;
mod ldap_listing;
mod ldap_reads;
mod lifecycle;
mod multi_instance;
mod outbox;
mod probe;
mod properties;
mod resilience;
mod reviews;
mod reviews_peers;
mod scim;
mod scim_peers;
mod scim_server;
mod scim_server_peers;
mod security;
mod step_up;
mod timezones;
mod unverified;
mod webhook;
mod workflow;

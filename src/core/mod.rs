//! The pure core: domain types, workflow, policy and use cases. It imports no adapter crate
//! (serenity, sqlx, reqwest, axum): `.ci/run` checks that.

pub mod command;
pub mod model;
pub mod ports;
pub mod workflow;

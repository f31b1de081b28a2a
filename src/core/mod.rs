//! The pure core: domain types, workflow, policy and use cases. It imports no adapter crate
//! (serenity, sqlx, reqwest, axum): `.ci/run` checks that.

pub mod audit;
pub mod command;
pub mod customid;
pub mod drift;
pub mod model;
pub mod outbox;
pub mod plan;
pub mod policy;
pub mod ports;
pub mod render;
pub mod review;
pub mod scim;
pub mod service;
pub mod suggest;
pub mod totp;
pub mod validate;
pub mod workflow;
pub mod zone;

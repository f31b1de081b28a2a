//! Quartermaster: a chat-ops access provisioning bot.
#![warn(missing_docs)]

pub mod chat;
pub mod config;
pub mod connectors;
pub mod core;
pub mod engine;
pub mod http;
pub mod metrics;
pub mod probe;
pub mod server;
pub mod store;
pub mod wiring;

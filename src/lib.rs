//! Quartermaster: a chat-ops access provisioning bot.
#![warn(missing_docs)]

pub mod core;
pub mod store;

//! Chat adapters: each translates its platform to the core's dispatcher and back.

pub mod console;
pub mod discord;

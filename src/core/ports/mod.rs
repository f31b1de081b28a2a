//! The ports the core talks through: storage, connectors, chat and the clock. Adapters
//! implement them; the core never names an adapter.
//!
//! One file per capability: the clock (`clock.rs`); storage, split into one trait per
//! capability with [`Store`] as all of them (`store.rs`), and the [`Change`] a decision
//! commits (`change.rs`); target systems (`connector.rs`); the chat platform (`chat.rs`) and
//! its adapter's memory of sent messages (`chat_memory.rs`); what `/healthz` and `/metrics`
//! read (`health.rs`).

mod change;
mod chat;
mod chat_memory;
mod clock;
mod connector;
mod health;
mod store;

pub use super::outbox::{DeliveryPolicy, OutKind, OutboxCounts, Outgoing, PlanMessage, Queued};
pub use super::plan::{NewPlan, Plan, PlanKind, PlanState};
pub use change::*;
pub use chat::*;
pub use chat_memory::{SentMessage, SentMessages};
pub use clock::*;
pub use connector::*;
pub use health::{Health, OpsCounts};
pub use store::*;

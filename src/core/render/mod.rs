//! Every sentence a person reads: replies to commands and clicks, direct messages, approval
//! prompts, plan summaries and reports. The use cases decide and return typed outcomes and
//! refusals; the functions here turn them into words. Nothing here reads storage or decides.
//!
//! - [`requests`]: asking for access, the approval steps and their prompts, decisions,
//!   revokes, expiries, reminders, views (`/access`, `/approvals`), the engine's outcomes and
//!   IT's tasks;
//! - [`lifecycle`]: joiners, movers and leavers — `/onboard`, `/role`, `/offboard`, plans and
//!   their Confirm/Cancel, the HR feed, the onboarding and offboarding reports.

pub mod drift;
pub mod lifecycle;
pub mod requests;
pub mod review;
pub mod review_report;
pub mod step_up;

//! HTTP adapters (axum): they verify, decode and call the core; no business rules here.

pub mod hr;

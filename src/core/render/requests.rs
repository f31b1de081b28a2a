//! The words of requests, approvals, revokes, expiries, views and the engine's outcomes.

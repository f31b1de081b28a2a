//! Connectors: one module per kind, each implementing [`crate::core::ports::Connector`].

pub mod ldap;
pub mod manual;
pub mod outbound;
pub mod scim;
pub mod webhook;

//! Connectors: one module per kind, each implementing [`crate::core::ports::Connector`].

pub mod directory;
pub mod ldap;
pub mod manual;

//! The `manual` connector, for apps with no API: every effect becomes a task for the IT admins,
//! who click Done when they have carried it out.

use async_trait::async_trait;

use crate::core::model::ActionOp;
use crate::core::ports::{Account, Connector, ConnectorError, Effect, Subject};

/// Hands every change to a person.
#[derive(Debug, Clone)]
pub struct Manual {
    /// What the target is called in task texts (the connector's name).
    pub target: String,
}

impl Manual {
    /// The task in words. The connector's name is configuration, not something IT reads,
    /// so it is left out unless it was given a name of its own.
    fn task(&self, what: String) -> Result<Effect, ConnectorError> {
        if self.target == "manual" {
            Ok(Effect::Manual(what))
        } else {
            Ok(Effect::Manual(format!("{what} (in {})", self.target)))
        }
    }
}

#[async_trait]
impl Connector for Manual {
    async fn find_account(&self, _who: &Subject) -> Result<Option<Account>, ConnectorError> {
        Ok(None)
    }
    async fn create_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.task(format!(
            "create an account for {} <{}>",
            who.name, who.email
        ))
    }
    async fn disable_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.task(format!(
            "disable the account of {} <{}>",
            who.name, who.email
        ))
    }
    async fn enable_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.task(format!(
            "enable the account of {} <{}>",
            who.name, who.email
        ))
    }
    async fn delete_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        self.task(format!(
            "delete the account of {} <{}>",
            who.name, who.email
        ))
    }
    async fn grant(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError> {
        self.task(format!(
            "give {} <{}> access to {entitlement}",
            who.name, who.email
        ))
    }
    async fn revoke(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError> {
        self.task(format!(
            "remove {} <{}> from {entitlement}",
            who.name, who.email
        ))
    }
    async fn list_grants(&self, _who: &Subject) -> Result<Vec<String>, ConnectorError> {
        Ok(Vec::new())
    }
    async fn test_connection(&self) -> Result<(), ConnectorError> {
        Ok(())
    }
    /// One task per action: nothing can be looked up, so a person does all of it.
    async fn apply(
        &self,
        op: ActionOp,
        who: &Subject,
        entitlement: Option<&str>,
    ) -> Result<Effect, ConnectorError> {
        match (op, entitlement) {
            (ActionOp::Grant, Some(e)) => self.grant(who, e).await,
            (ActionOp::Revoke, Some(e)) => self.revoke(who, e).await,
            (ActionOp::Disable, _) => self.disable_account(who).await,
            // Nothing can be re-read here: IT's Done on each task is the evidence.
            (ActionOp::Verify, _) => Ok(Effect::AlreadyInState),
            (_, None) => Ok(Effect::AlreadyInState),
        }
    }
}

//! The `directory` connector: a built-in sandbox that keeps accounts and group memberships in
//! Quartermaster's own database, so the example organisation works with nothing else running.

use async_trait::async_trait;

use crate::core::model::ConnectorName;
use crate::core::ports::{Account, Connector, ConnectorError, Effect, Subject};
use crate::store::SqlStore;

/// Accounts and memberships in our own tables, under this connector's name.
#[derive(Clone)]
pub struct Directory {
    name: ConnectorName,
    store: SqlStore,
}

impl Directory {
    /// A directory connector named `name` over the store.
    pub fn new(name: ConnectorName, store: SqlStore) -> Self {
        Self { name, store }
    }
}

fn db(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Transient(format!("directory database: {e}"))
}

fn effect(changed: bool) -> Effect {
    if changed {
        Effect::Applied
    } else {
        Effect::AlreadyInState
    }
}

#[async_trait]
impl Connector for Directory {
    async fn find_account(&self, who: &Subject) -> Result<Option<Account>, ConnectorError> {
        let found = self
            .store
            .dir_account(self.name.as_str(), who.handle.as_str())
            .await
            .map_err(db)?;
        Ok(found.map(|(id, active)| Account { id, active }))
    }
    async fn create_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        let made = self
            .store
            .dir_create_account(
                self.name.as_str(),
                who.handle.as_str(),
                who.email.as_str(),
                &who.name,
            )
            .await
            .map_err(db)?;
        Ok(effect(made))
    }
    async fn disable_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        let changed = self
            .store
            .dir_set_active(self.name.as_str(), who.handle.as_str(), false)
            .await
            .map_err(db)?;
        Ok(effect(changed))
    }
    async fn enable_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        let changed = self
            .store
            .dir_set_active(self.name.as_str(), who.handle.as_str(), true)
            .await
            .map_err(db)?;
        Ok(effect(changed))
    }
    async fn delete_account(&self, who: &Subject) -> Result<Effect, ConnectorError> {
        let gone = self
            .store
            .dir_delete_account(self.name.as_str(), who.handle.as_str())
            .await
            .map_err(db)?;
        Ok(effect(gone))
    }
    async fn grant(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError> {
        let added = self
            .store
            .dir_add_member(self.name.as_str(), who.handle.as_str(), entitlement)
            .await
            .map_err(db)?;
        Ok(effect(added))
    }
    async fn revoke(&self, who: &Subject, entitlement: &str) -> Result<Effect, ConnectorError> {
        let removed = self
            .store
            .dir_remove_member(self.name.as_str(), who.handle.as_str(), entitlement)
            .await
            .map_err(db)?;
        Ok(effect(removed))
    }
    async fn list_grants(&self, who: &Subject) -> Result<Vec<String>, ConnectorError> {
        self.store
            .dir_memberships(self.name.as_str(), who.handle.as_str())
            .await
            .map_err(db)
    }
    async fn test_connection(&self) -> Result<(), ConnectorError> {
        if self.store.ping().await {
            Ok(())
        } else {
            Err(ConnectorError::Transient("database does not answer".into()))
        }
    }
}

//! The `directory` connector: a built-in sandbox that keeps accounts and group memberships in
//! Quartermaster's own database, so the example organisation works with nothing else running.
//! It lives in the storage adapter because its peer is the database itself.

use async_trait::async_trait;

use super::SqlStore;
use crate::core::model::{ActionOp, ConnectorName, Handle};
use crate::core::ports::{
    Account, BulkOp, Connector, ConnectorError, Effect, Health, Listed, Subject, apply_steps,
};

/// Accounts and memberships in our own tables, under this connector's name.
#[derive(Clone)]
pub struct DirectoryConnector {
    name: ConnectorName,
    store: SqlStore,
}

impl DirectoryConnector {
    /// A directory connector named `name` over the store.
    pub fn new(name: ConnectorName, store: SqlStore) -> Self {
        Self { name, store }
    }
}

fn db(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Transient(format!("directory database: {e}"))
}

/// Removes the first item matching `f`; whether there was one.
fn take<T>(items: &mut Vec<T>, f: impl Fn(&T) -> bool) -> bool {
    match items.iter().position(f) {
        Some(i) => {
            items.swap_remove(i);
            true
        }
        None => false,
    }
}

fn effect(changed: bool) -> Effect {
    if changed {
        Effect::Applied
    } else {
        Effect::AlreadyInState
    }
}

#[async_trait]
impl Connector for DirectoryConnector {
    /// A grant to a person whose account is already active is one statement (the usual
    /// case); anything else takes the looking steps of [`apply_steps`].
    async fn apply(
        &self,
        op: ActionOp,
        who: &Subject,
        entitlement: Option<&str>,
    ) -> Result<Effect, ConnectorError> {
        if let (ActionOp::Grant, Some(e)) = (op, entitlement)
            && self
                .store
                .dir_add_member_if_active(self.name.as_str(), who.handle.as_str(), e)
                .await
                .map_err(db)?
        {
            return Ok(Effect::Applied);
        }
        apply_steps(self, op, who, entitlement).await
    }

    fn bulk(&self) -> bool {
        true
    }

    /// The grants of people with nothing but grants here are written together (accounts,
    /// then memberships: one transaction of three statements); every other operation runs
    /// through [`Connector::apply`], each person's in order.
    async fn apply_many(&self, ops: &[BulkOp]) -> Vec<Result<Effect, ConnectorError>> {
        let grant_only = |h: &Handle| {
            ops.iter()
                .filter(|o| &o.who.handle == h)
                .all(|o| o.op == ActionOp::Grant && o.entitlement.is_some())
        };
        let bulk: Vec<usize> = (0..ops.len())
            .filter(|&i| grant_only(&ops[i].who.handle))
            .collect();
        let mut out: Vec<Option<Result<Effect, ConnectorError>>> = vec![None; ops.len()];
        if !bulk.is_empty() {
            let mut people: Vec<(&str, &str, &str)> = Vec::new();
            for &i in &bulk {
                let w = &ops[i].who;
                if !people.iter().any(|p| p.0 == w.handle.as_str()) {
                    people.push((w.handle.as_str(), w.email.as_str(), &w.name));
                }
            }
            let members: Vec<(&str, &str)> = bulk
                .iter()
                .map(|&i| {
                    (
                        ops[i].who.handle.as_str(),
                        ops[i].entitlement.as_deref().unwrap_or_default(),
                    )
                })
                .collect();
            match self
                .store
                .dir_grant_many(self.name.as_str(), &people, &members)
                .await
            {
                Ok((mut made, mut added)) => {
                    for &i in &bulk {
                        let h = ops[i].who.handle.as_str();
                        let e = ops[i].entitlement.as_deref().unwrap_or_default();
                        // Each change is reported once: to the person's first operation for
                        // the account, to the first asking for a membership for it.
                        let account = take(&mut made, |m| m == h);
                        let member = take(&mut added, |(mh, me)| mh == h && me == e);
                        out[i] = Some(Ok(effect(account || member)));
                    }
                }
                Err(e) => {
                    let err = db(e);
                    for &i in &bulk {
                        out[i] = Some(Err(err.clone()));
                    }
                }
            }
        }
        for (i, o) in ops.iter().enumerate() {
            if out[i].is_none() {
                out[i] = Some(self.apply(o.op, &o.who, o.entitlement.as_deref()).await);
            }
        }
        out.into_iter().flatten().collect()
    }

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
    async fn list_members(&self, entitlement: &str) -> Result<Vec<Listed>, ConnectorError> {
        let rows = self
            .store
            .dir_members(self.name.as_str(), entitlement)
            .await
            .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(handle, email, active)| Listed {
                id: handle.clone(),
                login: Some(handle),
                emails: email.into_iter().collect(),
                active,
            })
            .collect())
    }

    async fn list_accounts(&self) -> Result<Option<Vec<Listed>>, ConnectorError> {
        let rows = self
            .store
            .dir_accounts(self.name.as_str())
            .await
            .map_err(db)?;
        Ok(Some(
            rows.into_iter()
                .map(|(handle, email, active)| Listed {
                    id: handle.clone(),
                    login: Some(handle),
                    emails: vec![email],
                    active: Some(active),
                })
                .collect(),
        ))
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        if self.store.ping().await {
            Ok(())
        } else {
            Err(ConnectorError::Transient("database does not answer".into()))
        }
    }
}

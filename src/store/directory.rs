//! Tables of the built-in `directory` connector: a target system that lives in our own
//! database (accounts and group memberships), keyed by connector name and handle.
//!
//! Every write reports whether it changed anything, so the connector can answer
//! `Applied` or `AlreadyInState`. A write of one statement runs on its own (its implicit
//! transaction), in this process's writer turn.

use super::db::q;
use super::{DbError, SqlStore};

impl SqlStore {
    /// The account of `handle` in `connector`: its id and whether it is active.
    pub async fn dir_account(
        &self,
        connector: &str,
        handle: &str,
    ) -> Result<Option<(String, bool)>, DbError> {
        let row = q("SELECT id, active FROM directory_accounts WHERE connector = ? AND handle = ?")
            .bind(connector)
            .bind(handle)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("id")?, r.flag("active")?)))
            .transpose()
    }

    /// Creates an active account (id `connector:handle`); false if one already exists.
    pub async fn dir_create_account(
        &self,
        connector: &str,
        handle: &str,
        email: &str,
        name: &str,
    ) -> Result<bool, DbError> {
        let _turn = self.pool.write_turn().await;
        let n = q(
            "INSERT INTO directory_accounts (connector, handle, id, email, name, active) \
             VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (connector, handle) DO NOTHING",
        )
        .bind(connector)
        .bind(handle)
        .bind(format!("{connector}:{handle}"))
        .bind(email)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(n == 1)
    }

    /// Enables or disables an account; false if it was already so or does not exist.
    pub async fn dir_set_active(
        &self,
        connector: &str,
        handle: &str,
        active: bool,
    ) -> Result<bool, DbError> {
        let _turn = self.pool.write_turn().await;
        let n = q("UPDATE directory_accounts SET active = ? \
             WHERE connector = ? AND handle = ? AND active <> ?")
        .bind(active)
        .bind(connector)
        .bind(handle)
        .bind(active)
        .execute(&self.pool)
        .await?;
        Ok(n == 1)
    }

    /// Deletes an account and its memberships; false if there was none.
    pub async fn dir_delete_account(&self, connector: &str, handle: &str) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        q("DELETE FROM directory_memberships WHERE connector = ? AND handle = ?")
            .bind(connector)
            .bind(handle)
            .execute(&mut tx)
            .await?;
        let n = q("DELETE FROM directory_accounts WHERE connector = ? AND handle = ?")
            .bind(connector)
            .bind(handle)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Adds `handle` to `entitlement`; false if already a member.
    pub async fn dir_add_member(
        &self,
        connector: &str,
        handle: &str,
        entitlement: &str,
    ) -> Result<bool, DbError> {
        let _turn = self.pool.write_turn().await;
        let n = q(
            "INSERT INTO directory_memberships (connector, handle, entitlement) VALUES (?, ?, ?) \
             ON CONFLICT (connector, handle, entitlement) DO NOTHING",
        )
        .bind(connector)
        .bind(handle)
        .bind(entitlement)
        .execute(&self.pool)
        .await?;
        Ok(n == 1)
    }

    /// Removes `handle` from `entitlement`; false if not a member.
    pub async fn dir_remove_member(
        &self,
        connector: &str,
        handle: &str,
        entitlement: &str,
    ) -> Result<bool, DbError> {
        let _turn = self.pool.write_turn().await;
        let n = q("DELETE FROM directory_memberships \
             WHERE connector = ? AND handle = ? AND entitlement = ?")
        .bind(connector)
        .bind(handle)
        .bind(entitlement)
        .execute(&self.pool)
        .await?;
        Ok(n == 1)
    }

    /// The entitlements `handle` holds in `connector`, sorted.
    pub async fn dir_memberships(
        &self,
        connector: &str,
        handle: &str,
    ) -> Result<Vec<String>, DbError> {
        let rows = q("SELECT entitlement FROM directory_memberships \
             WHERE connector = ? AND handle = ? ORDER BY entitlement")
        .bind(connector)
        .bind(handle)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>(0)?))
            .collect()
    }
}

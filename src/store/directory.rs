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

    /// Adds `handle` to `entitlement` if `handle` has an active account, in one statement;
    /// false if not added (already a member, or no active account: look closer).
    pub async fn dir_add_member_if_active(
        &self,
        connector: &str,
        handle: &str,
        entitlement: &str,
    ) -> Result<bool, DbError> {
        let _turn = self.pool.write_turn().await;
        let n = q(
            "INSERT INTO directory_memberships (connector, handle, entitlement) \
             SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM directory_accounts \
             WHERE connector = ? AND handle = ? AND active = 1) \
             ON CONFLICT (connector, handle, entitlement) DO NOTHING",
        )
        .bind(connector)
        .bind(handle)
        .bind(entitlement)
        .bind(connector)
        .bind(handle)
        .execute(&self.pool)
        .await?;
        Ok(n == 1)
    }

    /// Grants in bulk, in one transaction: the accounts of `people` (handle, email, name)
    /// are created where missing and enabled where disabled, then the memberships
    /// (handle, entitlement) added where missing. Returns the handles whose account was
    /// created or enabled and the memberships added.
    pub async fn dir_grant_many(
        &self,
        connector: &str,
        people: &[(&str, &str, &str)],
        memberships: &[(&str, &str)],
    ) -> Result<(Vec<String>, Vec<(String, String)>), DbError> {
        let (accounts, handles, members) = grant_many_binds(people, memberships);
        let mut tx = self.begin_write().await?;
        let made = q(
            "INSERT INTO directory_accounts (connector, handle, id, email, name, active) \
             SELECT ?1, json_extract(value, '$.handle'), \
             ?1 || ':' || json_extract(value, '$.handle'), json_extract(value, '$.email'), \
             json_extract(value, '$.name'), 1 FROM json_each(?2) WHERE true \
             ON CONFLICT (connector, handle) DO NOTHING RETURNING handle",
        )
        .pg(
            "INSERT INTO directory_accounts (connector, handle, id, email, name, active) \
             SELECT $1, r.handle, $1 || ':' || r.handle, r.email, r.name, 1 \
             FROM json_to_recordset($2::json) AS r(handle text, email text, name text) \
             ON CONFLICT (connector, handle) DO NOTHING RETURNING handle",
        )
        .bind(connector)
        .bind(accounts)
        .fetch_all(&mut tx)
        .await?;
        let enabled = q(
            "UPDATE directory_accounts SET active = 1 WHERE connector = ? \
               AND handle IN (SELECT value FROM json_each(?)) AND active = 0 RETURNING handle",
        )
        .pg(
            "UPDATE directory_accounts SET active = 1 WHERE connector = $1 \
             AND handle = ANY(ARRAY(SELECT json_array_elements_text($2::json))) AND active = 0 \
             RETURNING handle",
        )
        .bind(connector)
        .bind(handles)
        .fetch_all(&mut tx)
        .await?;
        let added = q(
            "INSERT INTO directory_memberships (connector, handle, entitlement) \
             SELECT ?, json_extract(value, '$.handle'), json_extract(value, '$.entitlement') \
             FROM json_each(?) WHERE true \
             ON CONFLICT (connector, handle, entitlement) DO NOTHING \
             RETURNING handle, entitlement",
        )
        .pg(
            "INSERT INTO directory_memberships (connector, handle, entitlement) \
             SELECT $1, r.handle, r.entitlement \
             FROM json_to_recordset($2::json) AS r(handle text, entitlement text) \
             ON CONFLICT (connector, handle, entitlement) DO NOTHING \
             RETURNING handle, entitlement",
        )
        .bind(connector)
        .bind(members)
        .fetch_all(&mut tx)
        .await?;
        tx.commit().await?;
        let mut changed = Vec::with_capacity(made.len() + enabled.len());
        for r in made.iter().chain(&enabled) {
            changed.push(r.try_get::<String, _>(0)?);
        }
        let added = added
            .iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
            .collect::<Result<Vec<_>, DbError>>()?;
        Ok((changed, added))
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

impl SqlStore {
    /// Every member of `entitlement` in `connector`: (handle, email, active), by handle. A
    /// member with no account row (written by hand) has no email and no state.
    pub async fn dir_members(
        &self,
        connector: &str,
        entitlement: &str,
    ) -> Result<Vec<(String, Option<String>, Option<bool>)>, DbError> {
        let rows = q(
            "SELECT m.handle, a.email, a.active FROM directory_memberships m \
             LEFT JOIN directory_accounts a ON a.connector = m.connector AND a.handle = m.handle \
             WHERE m.connector = ? AND m.entitlement = ? ORDER BY m.handle",
        )
        .bind(connector)
        .bind(entitlement)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>(0)?,
                    r.try_get::<Option<String>, _>(1)?,
                    r.opt_flag(2)?,
                ))
            })
            .collect()
    }

    /// Every account of `connector`: (handle, email, active), by handle.
    pub async fn dir_accounts(
        &self,
        connector: &str,
    ) -> Result<Vec<(String, String, bool)>, DbError> {
        let rows = q("SELECT handle, email, active FROM directory_accounts \
             WHERE connector = ? ORDER BY handle")
        .bind(connector)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>(0)?,
                    r.try_get::<String, _>(1)?,
                    r.flag(2)?,
                ))
            })
            .collect()
    }
}

/// The binds of [`SqlStore::dir_grant_many`], each a JSON array: the accounts (handle, email,
/// name), their handles, and the memberships (handle, entitlement).
fn grant_many_binds(
    people: &[(&str, &str, &str)],
    memberships: &[(&str, &str)],
) -> (String, String, String) {
    let accounts = serde_json::to_string(
        &people
            .iter()
            .map(|(h, e, n)| serde_json::json!({"handle": h, "email": e, "name": n}))
            .collect::<Vec<_>>(),
    )
    .unwrap_or_else(|_| "[]".into());
    let handles = serde_json::to_string(&people.iter().map(|p| p.0).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into());
    let members = serde_json::to_string(
        &memberships
            .iter()
            .map(|(h, e)| serde_json::json!({"handle": h, "entitlement": e}))
            .collect::<Vec<_>>(),
    )
    .unwrap_or_else(|_| "[]".into());
    (accounts, handles, members)
}

//! Inbound SCIM's resources and group memberships: reads, and the writes a [`Change`]
//! carries (each conditional on the version read).

use async_trait::async_trait;

use super::commit::changed_one;
use super::db::{DbRow, Tx, q};
use super::rows::{corrupt, from_micros, get, handle, micros};
use super::{DbError, SqlStore, store_err};
use crate::core::model::Handle;
use crate::core::ports::{Change, ScimRecords, StoreError};
use crate::core::scim::resource::GroupRef;
use crate::core::scim::{ScimKind, ScimResource, ScimWrite};

/// The columns of a resource, in `SELECT` order.
macro_rules! cols {
    () => {
        "SELECT id, kind, name, external_id, handle, active, version, created_at, updated_at, \
         body FROM scim_resources"
    };
}

fn from_row(row: &DbRow) -> Result<ScimResource, DbError> {
    let body: String = get(row, "body")?;
    Ok(ScimResource {
        id: get(row, "id")?,
        kind: ScimKind::parse(&get::<String>(row, "kind")?)
            .ok_or_else(|| corrupt("kind", "unknown"))?,
        name: get(row, "name")?,
        external_id: get(row, "external_id")?,
        handle: get::<Option<String>>(row, "handle")?
            .as_deref()
            .map(handle)
            .transpose()?,
        active: row.flag("active").map_err(DbError::from)?,
        version: get(row, "version")?,
        created: from_micros(get(row, "created_at")?)?,
        modified: from_micros(get(row, "updated_at")?)?,
        body: serde_json::from_str(&body).map_err(|e| corrupt("body", e))?,
    })
}

#[async_trait]
impl ScimRecords for SqlStore {
    async fn scim_resource(
        &self,
        kind: ScimKind,
        id: &str,
    ) -> Result<Option<ScimResource>, StoreError> {
        let row = q(concat!(cols!(), " WHERE id = ? AND kind = ?"))
            .bind(id)
            .bind(kind.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    async fn scim_by_name(
        &self,
        kind: ScimKind,
        name: &str,
    ) -> Result<Vec<ScimResource>, StoreError> {
        self.read_all(
            q(concat!(
                cols!(),
                " WHERE name_key = ? AND kind = ? ORDER BY created_at, id"
            ))
            .bind(name.to_lowercase())
            .bind(kind.as_str()),
            from_row,
        )
        .await
    }

    async fn scim_by_external_id(
        &self,
        kind: ScimKind,
        external_id: &str,
    ) -> Result<Vec<ScimResource>, StoreError> {
        self.read_all(
            q(concat!(
                cols!(),
                " WHERE kind = ? AND external_id = ? ORDER BY created_at, id"
            ))
            .bind(kind.as_str())
            .bind(external_id),
            from_row,
        )
        .await
    }

    async fn scim_by_handle(&self, h: &Handle) -> Result<Option<ScimResource>, StoreError> {
        let row = q(concat!(cols!(), " WHERE handle = ? AND kind = 'User'"))
            .bind(h.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    async fn scim_all(&self, kind: ScimKind) -> Result<Vec<ScimResource>, StoreError> {
        self.read_all(
            q(concat!(cols!(), " WHERE kind = ? ORDER BY created_at, id")).bind(kind.as_str()),
            from_row,
        )
        .await
    }

    async fn scim_page(
        &self,
        kind: ScimKind,
        offset: usize,
        limit: usize,
    ) -> Result<(usize, Vec<ScimResource>), StoreError> {
        let total = q("SELECT COUNT(*) FROM scim_resources WHERE kind = ?")
            .bind(kind.as_str())
            .fetch_i64(&self.pool)
            .await
            .map_err(store_err)?;
        let page = self
            .read_all(
                q(concat!(
                    cols!(),
                    " WHERE kind = ? ORDER BY created_at, id LIMIT ? OFFSET ?"
                ))
                .bind(kind.as_str())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .bind(i64::try_from(offset).unwrap_or(i64::MAX)),
                from_row,
            )
            .await?;
        Ok((usize::try_from(total).unwrap_or(0), page))
    }

    async fn scim_groups_of(&self, user_id: &str) -> Result<Vec<GroupRef>, StoreError> {
        self.read_all(
            q(
                "SELECT r.id, r.name FROM scim_members m JOIN scim_resources r \
               ON r.id = m.group_id WHERE m.member_id = ? ORDER BY r.name, r.id",
            )
            .bind(user_id),
            |row| {
                Ok(GroupRef {
                    id: get(row, "id")?,
                    display: get(row, "name")?,
                })
            },
        )
        .await
    }
}

/// Writes a change's SCIM resources (and a group's members), each conditional on the version
/// read: a write that finds it moved fails the whole change.
pub(super) async fn write_scim(tx: &mut Tx, change: &Change) -> Result<(), StoreError> {
    for w in &change.scim {
        match w {
            ScimWrite::Put { resource, expected } => put(tx, resource, *expected).await?,
            ScimWrite::Delete { kind, id, expected } => {
                let n = q("DELETE FROM scim_resources WHERE id = ? AND kind = ? AND version = ?")
                    .bind(id.as_str())
                    .bind(kind.as_str())
                    .bind(*expected)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_err)?;
                changed_one(n)?;
                q("DELETE FROM scim_members WHERE group_id = ? OR member_id = ?")
                    .bind(id.as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(store_err)?;
            }
        }
    }
    Ok(())
}

async fn put(tx: &mut Tx, r: &ScimResource, expected: Option<i64>) -> Result<(), StoreError> {
    let body = r.body.to_string();
    let n = match expected {
        None => q(
            "INSERT INTO scim_resources (id, kind, name, name_key, external_id, handle, \
                   active, version, created_at, updated_at, body) \
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(r.id.as_str())
        .bind(r.kind.as_str())
        .bind(r.name.as_str())
        .bind(r.name.to_lowercase())
        .bind(r.external_id.clone())
        .bind(r.handle.as_ref().map(|h| h.as_str().to_owned()))
        .bind(i64::from(r.active))
        .bind(r.version)
        .bind(micros(r.created))
        .bind(micros(r.modified))
        .bind(body),
        Some(v) => q(
            "UPDATE scim_resources SET name = ?, name_key = ?, external_id = ?, \
                      handle = ?, active = ?, version = ?, updated_at = ?, body = ? \
                      WHERE id = ? AND kind = ? AND version = ?",
        )
        .bind(r.name.as_str())
        .bind(r.name.to_lowercase())
        .bind(r.external_id.clone())
        .bind(r.handle.as_ref().map(|h| h.as_str().to_owned()))
        .bind(i64::from(r.active))
        .bind(r.version)
        .bind(micros(r.modified))
        .bind(body)
        .bind(r.id.as_str())
        .bind(r.kind.as_str())
        .bind(v),
    }
    .execute(&mut *tx)
    .await
    .map_err(store_err)?;
    changed_one(n)?;
    if r.kind == ScimKind::Group {
        q("DELETE FROM scim_members WHERE group_id = ?")
            .bind(r.id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
        let rows: Vec<Vec<super::db::Val>> = r
            .member_ids()
            .into_iter()
            .map(|m| vec![r.id.clone().into(), m.into()])
            .collect();
        if !rows.is_empty() {
            for stmt in super::db::values(
                "INSERT INTO scim_members (group_id, member_id)",
                rows,
                "ON CONFLICT DO NOTHING",
            ) {
                stmt.execute(&mut *tx).await.map_err(store_err)?;
            }
        }
    }
    Ok(())
}

//! Inbound SCIM's resources and group memberships: reads, and the writes a [`Change`]
//! carries (each conditional on the version read).

use async_trait::async_trait;

use super::db::{DbRow, Expect, Tx, Val, q, values_pg};
use super::rows::{corrupt, from_micros, get, handle, micros};
use super::{DbError, SqlStore, json_list, store_err};
use crate::core::model::Handle;
use crate::core::ports::{Change, ScimRecords, StoreError};
use crate::core::scim::resource::GroupRef;
use crate::core::scim::{ScimKind, ScimResource, ScimWrite};

/// The columns of a resource, in `SELECT` order, with a user's groups (id, unit separator,
/// displayName; record separator between groups) read in the same statement.
macro_rules! cols {
    () => {
        "SELECT r.id, r.kind, r.name, r.external_id, r.handle, r.active, r.version, \
         r.created_at, r.updated_at, r.body, (SELECT group_concat(g.id || char(31) || g.name, \
         char(30)) FROM scim_members m JOIN scim_resources g ON g.id = m.group_id \
         WHERE m.member_id = r.id) AS groups FROM scim_resources r"
    };
}

/// [`cols`] in PostgreSQL's words.
macro_rules! cols_pg {
    () => {
        "SELECT r.id, r.kind, r.name, r.external_id, r.handle, r.active, r.version, \
         r.created_at, r.updated_at, r.body, (SELECT string_agg(g.id || chr(31) || g.name, \
         chr(30)) FROM scim_members m JOIN scim_resources g ON g.id = m.group_id \
         WHERE m.member_id = r.id) AS groups FROM scim_resources r"
    };
}

/// `$head` and `$tail` around the kind as a literal: with `kind = ?`, SQLite reads the bound
/// kind to see whether the partial indexes on users apply, and then prepares the statement
/// again each time it is bound (`sqlite3Reprepare`, 5 % of figure 12's profile).
macro_rules! of_kind {
    ($kind:expr, $head:expr, $tail:expr) => {
        match $kind {
            ScimKind::User => concat!($head, "'User'", $tail),
            ScimKind::Group => concat!($head, "'Group'", $tail),
        }
    };
}

/// A user's groups as [`cols`] reads them.
fn groups_of(joined: Option<String>) -> Vec<GroupRef> {
    let mut out: Vec<GroupRef> = joined
        .unwrap_or_default()
        .split('\u{1e}')
        .filter_map(|g| g.split_once('\u{1f}'))
        .map(|(id, name)| GroupRef {
            id: id.to_owned(),
            display: name.to_owned(),
        })
        .collect();
    out.sort_by(|a, b| (&a.display, &a.id).cmp(&(&b.display, &b.id)));
    out
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
        groups: groups_of(get(row, "groups")?),
    })
}

#[async_trait]
impl ScimRecords for SqlStore {
    async fn scim_resource(
        &self,
        kind: ScimKind,
        id: &str,
    ) -> Result<Option<ScimResource>, StoreError> {
        let row = q(of_kind!(
            kind,
            concat!(cols!(), " WHERE r.id = ? AND r.kind = "),
            ""
        ))
        .pg(of_kind!(
            kind,
            concat!(cols_pg!(), " WHERE r.id = ? AND r.kind = "),
            ""
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_err)?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    async fn scim_resources(
        &self,
        kind: ScimKind,
        ids: &[String],
    ) -> Result<Vec<ScimResource>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // `+kind`: SQLite must find each resource by its id; without statistics it walked
        // the kind's index over every user (figure 12 fell from 2,231 to 533 writes/s).
        self.read_all(
            q(of_kind!(
                kind,
                concat!(
                    cols!(),
                    " WHERE r.id IN (SELECT value FROM json_each(?)) AND +r.kind = "
                ),
                ""
            ))
            .pg(of_kind!(
                kind,
                concat!(
                    cols_pg!(),
                    " WHERE r.id = ANY(ARRAY(SELECT json_array_elements_text(?::json))) \
                     AND r.kind = "
                ),
                ""
            ))
            .bind(json_list(ids.iter())),
            from_row,
        )
        .await
    }

    async fn scim_by_name(
        &self,
        kind: ScimKind,
        name: &str,
    ) -> Result<Vec<ScimResource>, StoreError> {
        self.read_all(
            q(of_kind!(
                kind,
                concat!(cols!(), " WHERE r.name_key = ? AND r.kind = "),
                " ORDER BY r.created_at, r.id"
            ))
            .pg(of_kind!(
                kind,
                concat!(cols_pg!(), " WHERE r.name_key = ? AND r.kind = "),
                " ORDER BY r.created_at, r.id"
            ))
            .bind(name.to_lowercase()),
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
            q(of_kind!(
                kind,
                concat!(cols!(), " WHERE r.kind = "),
                " AND r.external_id = ? ORDER BY r.created_at, r.id"
            ))
            .pg(of_kind!(
                kind,
                concat!(cols_pg!(), " WHERE r.kind = "),
                " AND r.external_id = ? ORDER BY r.created_at, r.id"
            ))
            .bind(external_id),
            from_row,
        )
        .await
    }

    async fn scim_users_holding(
        &self,
        name: Option<&str>,
        handle: Option<&Handle>,
    ) -> Result<Vec<ScimResource>, StoreError> {
        // Two index look-ups (an `OR` walked every user without statistics).
        self.read_all(
            q(concat!(
                cols!(),
                " WHERE r.name_key = ? AND r.kind = 'User' UNION ALL ",
                cols!(),
                " WHERE r.handle = ? AND r.kind = 'User'"
            ))
            .pg(concat!(
                cols_pg!(),
                " WHERE r.name_key = ? AND r.kind = 'User' UNION ALL ",
                cols_pg!(),
                " WHERE r.handle = ? AND r.kind = 'User'"
            ))
            .bind(name.map(str::to_lowercase))
            .bind(handle.map(Handle::as_str)),
            from_row,
        )
        .await
    }

    async fn scim_by_handle(&self, h: &Handle) -> Result<Option<ScimResource>, StoreError> {
        let row = q(concat!(cols!(), " WHERE r.handle = ? AND r.kind = 'User'"))
            .pg(concat!(
                cols_pg!(),
                " WHERE r.handle = ? AND r.kind = 'User'"
            ))
            .bind(h.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    async fn scim_all(&self, kind: ScimKind) -> Result<Vec<ScimResource>, StoreError> {
        self.read_all(
            q(concat!(
                cols!(),
                " WHERE r.kind = ? ORDER BY r.created_at, r.id"
            ))
            .pg(concat!(
                cols_pg!(),
                " WHERE r.kind = ? ORDER BY r.created_at, r.id"
            ))
            .bind(kind.as_str()),
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
                    " WHERE r.kind = ? ORDER BY r.created_at, r.id LIMIT ? OFFSET ?"
                ))
                .pg(concat!(
                    cols_pg!(),
                    " WHERE r.kind = ? ORDER BY r.created_at, r.id LIMIT ? OFFSET ?"
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
/// read and deferred ([`Tx::defer`]): a write that finds it moved fails the whole change.
/// Updates of distinct users (a group commit's) go in one statement (two when some change
/// their keys).
pub(super) async fn write_scim(tx: &mut Tx, change: &Change) -> Result<(), StoreError> {
    if let Some(users) = user_updates(&change.scim) {
        return update_users(tx, &users).await;
    }
    for w in &change.scim {
        match w {
            ScimWrite::Put {
                resource, expected, ..
            } => put(tx, resource, *expected).await?,
            ScimWrite::Delete { kind, id, expected } => {
                let gone =
                    q("DELETE FROM scim_resources WHERE id = ? AND kind = ? AND version = ?")
                        .bind(id.as_str())
                        .bind(kind.as_str())
                        .bind(*expected);
                tx.defer(gone, Expect::Rows(1)).await.map_err(store_err)?;
                let members = q("DELETE FROM scim_members WHERE group_id = ? OR member_id = ?")
                    .bind(id.as_str())
                    .bind(id.as_str());
                tx.defer(members, Expect::Any).await.map_err(store_err)?;
            }
        }
    }
    Ok(())
}

/// The writes when they are all updates of distinct users: each user with the version it
/// expects and whether its keys stay ([`ScimWrite::Put`]'s `same_keys`).
fn user_updates(writes: &[ScimWrite]) -> Option<Vec<(&ScimResource, i64, bool)>> {
    let mut seen = std::collections::HashSet::new();
    let users: Vec<(&ScimResource, i64, bool)> = writes
        .iter()
        .map_while(|w| match w {
            ScimWrite::Put {
                resource,
                expected: Some(v),
                same_keys,
            } if resource.kind == ScimKind::User && seen.insert(resource.id.as_str()) => {
                Some((resource, *v, *same_keys))
            }
            _ => None,
        })
        .collect();
    (users.len() == writes.len() && !users.is_empty()).then_some(users)
}

/// Updates users, each conditional on its version, with one multi-row statement ([`values`]
/// batches) for those whose keys stay (body, version and time only) and one for the others,
/// deferred ([`Tx::defer`]): a user that moved meanwhile fails the whole change.
async fn update_users(tx: &mut Tx, users: &[(&ScimResource, i64, bool)]) -> Result<(), StoreError> {
    let (same, moved): (Vec<_>, Vec<_>) = users.iter().partition(|u| u.2);
    let row = |(r, v, _): &&(&ScimResource, i64, bool)| {
        vec![
            Val::from(r.id.as_str()),
            Val::from(*v),
            Val::from(r.version),
            Val::from(micros(r.modified)),
            Val::from(r.body.to_string()),
        ]
    };
    if !same.is_empty() {
        let head = "UPDATE scim_resources SET version = v.column3, updated_at = v.column4, \
             body = v.column5 FROM (";
        run_update(tx, head, same.iter().map(row).collect()).await?;
    }
    if !moved.is_empty() {
        let rows = moved
            .iter()
            .map(|u| {
                let mut r = row(u);
                r.extend([
                    Val::from(u.0.name.as_str()),
                    Val::from(u.0.name.to_lowercase()),
                    Val::from(u.0.external_id.clone()),
                    Val::from(u.0.handle.as_ref().map(|h| h.as_str())),
                    Val::from(u.0.active),
                ]);
                r
            })
            .collect();
        let head = "UPDATE scim_resources SET version = v.column3, updated_at = v.column4, \
             body = v.column5, name = v.column6, name_key = v.column7, external_id = v.column8, \
             handle = v.column9, active = v.column10 FROM (";
        run_update(tx, head, rows).await?;
    }
    Ok(())
}

/// Defers `head` over `rows` (id and expected version first) as [`values_pg`] statements,
/// each to change as many users as it has rows.
async fn run_update(tx: &mut Tx, head: &str, rows: Vec<Vec<Val>>) -> Result<(), StoreError> {
    for query in values_pg(
        head,
        ") AS v WHERE scim_resources.id = v.column1 AND scim_resources.kind = 'User' \
         AND scim_resources.version = v.column2",
        // The id column's collation is "C" on PostgreSQL; the values' is the default.
        Some((
            head,
            ") AS v WHERE scim_resources.id = v.column1 COLLATE \"C\" \
             AND scim_resources.kind = 'User' AND scim_resources.version = v.column2",
        )),
        rows,
    ) {
        let n = query.rows() as u64;
        tx.defer(query, Expect::Rows(n)).await.map_err(store_err)?;
    }
    Ok(())
}

/// Writes a resource (inserted, or updated if still at version `expected`) and a group's
/// members, deferred ([`Tx::defer`]).
async fn put(tx: &mut Tx, r: &ScimResource, expected: Option<i64>) -> Result<(), StoreError> {
    let body = r.body.to_string();
    let query = match expected {
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
    };
    tx.defer(query, Expect::Rows(1)).await.map_err(store_err)?;
    if r.kind == ScimKind::Group {
        let query = q("DELETE FROM scim_members WHERE group_id = ?").bind(r.id.as_str());
        tx.defer(query, Expect::Any).await.map_err(store_err)?;
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
                tx.defer(stmt, Expect::Any).await.map_err(store_err)?;
            }
        }
    }
    Ok(())
}

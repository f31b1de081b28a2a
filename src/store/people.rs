//! People: the directory of persons the workflows are about.

use super::db::{Tx, q};
use super::store_err;
use crate::core::model::Person;
use crate::core::ports::StoreError;

/// Inserts or replaces a person inside a write transaction.
pub(super) async fn write_person(tx: &mut Tx, p: &Person) -> Result<(), StoreError> {
    q(
        "INSERT INTO people (handle, name, email, department, role, manager, discord_id, \
         status, timezone) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (handle) DO UPDATE \
         SET name = excluded.name, email = excluded.email, department = excluded.department, \
         role = excluded.role, manager = excluded.manager, discord_id = excluded.discord_id, \
         status = excluded.status, timezone = excluded.timezone",
    )
    .bind(p.handle.as_str())
    .bind(p.name.as_str())
    .bind(p.email.as_str())
    .bind(p.department.as_str())
    .bind(p.role.as_str())
    .bind(p.manager.as_ref().map(|m| m.as_str().to_owned()))
    .bind(p.discord_id.clone())
    .bind(p.status.as_str())
    .bind(p.timezone.map(|z| z.name()))
    .execute(tx)
    .await
    .map_err(store_err)?;
    Ok(())
}

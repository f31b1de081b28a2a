//! People: the directory of persons the workflows are about.

use async_trait::async_trait;

use super::db::{Tx, q};
use super::rows::{PERSON_COLS, get, person_from_row};
use super::{SqlStore, audit, store_err};
use crate::core::model::{AuditEvent, Email, Handle, Person};
use crate::core::ports::{People, StoreError};

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

#[async_trait]
impl People for SqlStore {
    async fn seed_people(&self, people: &[Person]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await.map_err(store_err)?;
        for p in people {
            q(
                "INSERT INTO people (handle, name, email, department, role, manager, discord_id, \
                 status, timezone) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (handle) DO NOTHING",
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
            .execute(&mut tx)
            .await
            .map_err(store_err)?;
        }
        tx.commit().await.map_err(store_err)
    }

    async fn upsert_person(&self, p: &Person, audit: Vec<AuditEvent>) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await.map_err(store_err)?;
        write_person(&mut tx, p).await?;
        let head = audit::append(&mut tx, &audit, None, self.audit_key.as_deref()).await?;
        tx.commit().await.map_err(store_err)?;
        self.anchored(head).await;
        Ok(())
    }

    async fn person(&self, h: &Handle) -> Result<Option<Person>, StoreError> {
        let row = q(PERSON_COLS.by_handle)
            .bind(h.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(person_from_row).transpose()?)
    }

    async fn people_by_handle(&self, handles: &[Handle]) -> Result<Vec<Person>, StoreError> {
        self.read_list(
            (PERSON_COLS.in_list, PERSON_COLS.in_list_pg),
            handles.iter().map(Handle::as_str),
            person_from_row,
        )
        .await
    }

    async fn person_by_discord_id(&self, id: &str) -> Result<Option<Person>, StoreError> {
        let row = q(PERSON_COLS.by_discord_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(person_from_row).transpose()?)
    }

    async fn person_by_email(&self, email: &Email) -> Result<Option<Person>, StoreError> {
        let row = q(PERSON_COLS.by_email)
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(person_from_row).transpose()?)
    }

    async fn person_and_email_holder(
        &self,
        h: &Handle,
        email: Option<&Email>,
    ) -> Result<(Option<Person>, Option<Person>), StoreError> {
        let rows = q(PERSON_COLS.by_handle_or_email)
            .bind(h.as_str())
            .bind(email.map(Email::as_str))
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        let (mut by_handle, mut by_email) = (None, None);
        for row in &rows {
            let p = Some(person_from_row(row)?);
            if get::<i64>(row, "which")? == 0 {
                by_handle = p;
            } else {
                by_email = p;
            }
        }
        Ok((by_handle, by_email))
    }

    async fn people(&self) -> Result<Vec<Person>, StoreError> {
        self.read_all(q(PERSON_COLS.all), person_from_row).await
    }
}

//! Drift findings and reconcile runs: reads, the writes a [`Change`] carries (updates
//! conditional on the version read), and the named leases of reconciles.

use std::time::Duration;

use async_trait::async_trait;

use super::commit::changed_one;
use super::db::{DbRow, Tx, q};
use super::rows::{app, corrupt, decided, from_micros, get, handle, micros, opt_ts};
use super::{DbError, SqlStore, store_err};
use crate::core::model::*;
use crate::core::ports::{Change, DriftRecords, ReconcileRun, StoreError};

/// The columns of a finding, in `SELECT` order.
macro_rules! finding_cols {
    () => {
        "SELECT id, connector, class, account, person, app, detail, first_seen, last_seen, runs, \
         state, until, owner, decided_by, decided_at, reason, version FROM drift_findings"
    };
}

fn finding_from_row(row: &DbRow) -> Result<Finding, DbError> {
    let opt_handle = |s: Option<String>| s.as_deref().map(handle).transpose();
    let decided = decided(row)?;
    Ok(Finding {
        id: FindingId(get(row, "id")?),
        connector: ConnectorName::parse(&get::<String>(row, "connector")?)
            .map_err(|e| corrupt("connector", e))?,
        class: DriftClass::parse(&get::<String>(row, "class")?)
            .ok_or_else(|| corrupt("class", "unknown"))?,
        account: get(row, "account")?,
        person: opt_handle(get(row, "person")?)?,
        app: get::<Option<String>>(row, "app")?
            .as_deref()
            .map(app)
            .transpose()?,
        detail: get(row, "detail")?,
        first_seen: from_micros(get(row, "first_seen")?)?,
        last_seen: from_micros(get(row, "last_seen")?)?,
        runs: u32::try_from(get::<i64>(row, "runs")?).unwrap_or(u32::MAX),
        state: FindingState::parse(&get::<String>(row, "state")?)
            .ok_or_else(|| corrupt("state", "unknown"))?,
        until: opt_ts(row, "until")?,
        owner: opt_handle(get(row, "owner")?)?,
        decided,
        version: get(row, "version")?,
    })
}

#[async_trait]
impl DriftRecords for SqlStore {
    async fn live_findings(&self, connector: &ConnectorName) -> Result<Vec<Finding>, StoreError> {
        let sql = concat!(
            finding_cols!(),
            " WHERE connector = ? AND state <> 'resolved' ORDER BY id"
        );
        self.read_all(q(sql).bind(connector.as_str()), finding_from_row)
            .await
    }

    async fn finding(&self, id: FindingId) -> Result<Option<Finding>, StoreError> {
        let row = q(concat!(finding_cols!(), " WHERE id = ?"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(finding_from_row).transpose()?)
    }

    async fn open_finding_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = q("SELECT connector, class, count(*) FROM drift_findings \
                      WHERE state = 'open' GROUP BY connector, class ORDER BY connector, class")
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>(0).map_err(store_err)?,
                    r.try_get::<String, _>(1).map_err(store_err)?,
                    r.try_get::<i64, _>(2).map_err(store_err)?,
                ))
            })
            .collect()
    }

    async fn reconcile_runs(&self) -> Result<Vec<ReconcileRun>, StoreError> {
        let rows = q(
            "SELECT connector, last_run, last_ok, last_error FROM reconcile_runs \
                      ORDER BY connector",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(store_err)?;
        let read = |r: &DbRow| -> Result<ReconcileRun, DbError> {
            Ok(ReconcileRun {
                connector: ConnectorName::parse(&get::<String>(r, "connector")?)
                    .map_err(|e| corrupt("connector", e))?,
                last_run: from_micros(get(r, "last_run")?)?,
                last_ok: opt_ts(r, "last_ok")?,
                last_error: get(r, "last_error")?,
            })
        };
        Ok(rows.iter().map(read).collect::<Result<_, DbError>>()?)
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.try_lease(name, holder, now, ttl)
            .await
            .map_err(StoreError::from)
    }

    async fn drop_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let _turn = self.pool.write_turn().await;
        q("DELETE FROM leases WHERE name = ? AND holder = ?")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(())
    }
}

/// Writes a change's findings and reconcile run.
pub(super) async fn write_drift(tx: &mut Tx, change: &Change) -> Result<(), StoreError> {
    for f in &change.new_findings {
        q(
            "INSERT INTO drift_findings (fkey, connector, class, account, person, app, detail, \
           first_seen, last_seen, runs, state, until, owner, version) \
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) \
           ON CONFLICT (fkey) DO UPDATE SET person = excluded.person, detail = excluded.detail, \
           first_seen = excluded.first_seen, last_seen = excluded.last_seen, runs = excluded.runs, \
           state = excluded.state, until = NULL, owner = NULL, decided_by = NULL, \
           decided_at = NULL, reason = NULL, version = drift_findings.version + 1",
        )
        .bind(f.key())
        .bind(f.connector.as_str())
        .bind(f.class.as_str())
        .bind(f.account.as_str())
        .bind(f.person.as_ref().map(|h| h.as_str().to_owned()))
        .bind(f.app.as_ref().map(|a| a.as_str().to_owned()))
        .bind(f.detail.as_str())
        .bind(micros(f.first_seen))
        .bind(micros(f.last_seen))
        .bind(i64::from(f.runs))
        .bind(f.state.as_str())
        .bind(f.until.map(micros))
        .bind(f.owner.as_ref().map(|h| h.as_str().to_owned()))
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
    }
    for f in &change.finding_updates {
        let n = q(
            "UPDATE drift_findings SET person = ?, detail = ?, last_seen = ?, runs = ?, \
                   state = ?, until = ?, owner = ?, decided_by = ?, decided_at = ?, reason = ?, \
                   version = version + 1 WHERE id = ? AND version = ?",
        )
        .bind(f.person.as_ref().map(|h| h.as_str().to_owned()))
        .bind(f.detail.as_str())
        .bind(micros(f.last_seen))
        .bind(i64::from(f.runs))
        .bind(f.state.as_str())
        .bind(f.until.map(micros))
        .bind(f.owner.as_ref().map(|h| h.as_str().to_owned()))
        .bind(f.decided.as_ref().map(|d| d.0.clone()))
        .bind(f.decided.as_ref().map(|d| micros(d.1)))
        .bind(f.decided.as_ref().map(|d| d.2.clone()))
        .bind(f.id.0)
        .bind(f.version)
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
        changed_one(n)?;
    }
    if let Some(r) = &change.reconciled {
        q(
            "INSERT INTO reconcile_runs (connector, last_run, last_ok, last_error) \
           VALUES (?, ?, ?, ?) ON CONFLICT (connector) DO UPDATE SET last_run = excluded.last_run, \
           last_ok = COALESCE(excluded.last_ok, reconcile_runs.last_ok), \
           last_error = excluded.last_error",
        )
        .bind(r.connector.as_str())
        .bind(micros(r.last_run))
        .bind(r.last_ok.map(micros))
        .bind(r.last_error.clone())
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
    }
    Ok(())
}

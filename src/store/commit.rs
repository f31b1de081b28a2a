//! The unit of work: a [`Change`] written in one transaction with its audit rows, step by
//! step (the person and plan it is about, requests, plan marks, grants, actions, outbox
//! messages, audit), each conditional write failing the whole change when the stored state
//! moved.

use async_trait::async_trait;

use super::db::{Tx, Val, q, values, values_pg};
use super::people::write_person;
use super::plans::insert_plan;
use super::requests::{kind_parts, replace_steps, write_steps};
use super::rows::micros;
use super::{SqlStore, audit, json_list, outbox, resolve_grant, resolve_req, store_err};
use crate::core::model::*;
use crate::core::ports::{
    ActionUpdate, Change, Committed, GrantUpdate, NewGrant, NewGrantSource, NewRequest, ReqRef,
    RequestUpdate, StoreError, UnitOfWork,
};

/// Each step below writes one part of a change; a step that finds the stored state moved
/// fails the whole change (dropping the transaction rolls it back).
#[async_trait]
impl UnitOfWork for SqlStore {
    async fn commit(&self, change: Change) -> Result<Committed, StoreError> {
        if change.is_empty() {
            return Ok(Committed::default());
        }
        let mut tx = self.begin_write().await.map_err(store_err)?;
        let out = apply(&mut tx, &change).await?;
        // The audit rows last, chained under the same write lock.
        let key = self.audit_key.as_deref();
        let head = audit::append(&mut tx, &change.audit, out.request, key).await?;
        tx.commit().await.map_err(store_err)?;
        self.anchored(head).await;
        Ok(out)
    }

    async fn commit_group(&self, changes: Vec<Change>) -> Result<Vec<Committed>, StoreError> {
        let mut outs = Vec::with_capacity(changes.len());
        if changes.iter().all(Change::is_empty) {
            outs.resize_with(changes.len(), Committed::default);
            return Ok(outs);
        }
        let mut tx = self.begin_write().await.map_err(store_err)?;
        // Every change's audit rows go in last, with one append (one statement).
        let mut events = Vec::new();
        for change in &changes {
            if change.is_empty() {
                outs.push(Committed::default());
                continue;
            }
            let out = apply(&mut tx, change).await?;
            for e in &change.audit {
                let request = resolve_req(e.request, out.request)?;
                events.push(AuditEvent {
                    request: request.map_or(ReqRef::None, |id| ReqRef::Id(RequestId(id))),
                    ..e.clone()
                });
            }
            outs.push(out);
        }
        // Deferred: the rows go with the COMMIT (see `append_deferred` for what that costs).
        let key = self.audit_key.as_deref();
        let head = audit::append_deferred(&mut tx, &events, key).await?;
        tx.commit().await.map_err(store_err)?;
        self.anchored(head).await;
        Ok(outs)
    }
}

/// Writes one change inside `tx`, all but its audit rows (the caller appends them, last);
/// what it created.
async fn apply(tx: &mut Tx, change: &Change) -> Result<Committed, StoreError> {
    let mut out = Committed::default();
    let now = micros(change_time(change));
    // 0. The HR event this change answers is recorded with it (once), the person it is
    //    about written, the plan it carries out created or claimed.
    out.plan = begin(tx, change).await?;
    // 1. The new request (its grant is patched in after the grants exist).
    if let Some(r) = &change.new_request {
        out.request = Some(insert_request(tx, r).await?);
    }
    // 2. The optimistic update: nothing else is written if somebody changed it first.
    update_requests(tx, &change.request_updates).await?;
    // 2b-2d. Plans whose re-reads or reports this change covers.
    mark_plans(tx, change).await?;
    // 3. Grants.
    out.grants = insert_grants(tx, &change.new_grants, out.request).await?;
    // 4. The grant a request produced.
    patch_request_grants(tx, change, &out).await?;
    update_grants(tx, &change.grant_updates).await?;
    // 5. Actions.
    out.actions = insert_actions(tx, change, &out).await?;
    update_actions(tx, &change.action_updates, now).await?;
    // 5b. The messages this decision causes, in the outbox with it, and the steps whose
    //     prompts they are.
    write_messages(tx, change, out.plan).await?;
    // 5c. Step-up enrolments and break-glass records.
    super::step_up::write_step_up(tx, change, out.request).await?;
    // 5d. Drift findings and the reconcile run.
    super::drift::write_drift(tx, change).await?;
    // 5e. Reviews and their items.
    out.review = super::reviews::write_reviews(tx, change).await?;
    // 5f. Inbound SCIM resources.
    super::scim::write_scim(tx, change).await?;
    Ok(out)
}

/// Whether no id repeats: updates of distinct rows can go in one statement; a row updated
/// twice must be written in order, one update at a time.
fn distinct(ids: impl Iterator<Item = i64>) -> bool {
    let mut seen = std::collections::HashSet::new();
    ids.into_iter().all(|id| seen.insert(id))
}

/// Fails the change with [`StoreError::Conflict`] when a conditional write touched no row.
pub(super) fn changed_one(n: u64) -> Result<(), StoreError> {
    if n == 0 {
        Err(StoreError::Conflict)
    } else {
        Ok(())
    }
}

/// Step 0: records the HR event (once), writes the person, creates the new plan (its id) and
/// claims the plan carried out (once).
async fn begin(tx: &mut Tx, change: &Change) -> Result<Option<PlanId>, StoreError> {
    if let Some((id, at)) = &change.hr_event {
        let n = q("INSERT INTO hr_events (id, at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING")
            .bind(id.as_str())
            .bind(micros(*at))
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
        changed_one(n)?;
    }
    if let Some(p) = &change.person {
        write_person(tx, p).await?;
    }
    let mut plan_id = None;
    if let Some(plan) = &change.new_plan {
        plan_id = Some(insert_plan(tx, plan.clone(), change.start_new_plan).await?);
    }
    if let Some(plan) = change.start_plan {
        let n = q("UPDATE plans SET started = 1 WHERE id = ? AND started = 0")
            .bind(plan)
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
        changed_one(n)?;
    }
    Ok(plan_id)
}

/// Step 1: inserts the new request with its steps; its id.
async fn insert_request(tx: &mut Tx, r: &NewRequest) -> Result<RequestId, StoreError> {
    let (kind, extends) = kind_parts(r.kind);
    let id: i64 = q(
        "INSERT INTO requests (requester, app, reason, duration_secs, kind, \
         extends_grant, state, current_step, grant_id, created_at, updated_at, version) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, 1) RETURNING id",
    )
    .bind(r.requester.as_str())
    .bind(r.app.as_str())
    .bind(r.reason.clone())
    .bind(
        r.duration
            .map(|d| i64::try_from(d.secs()).unwrap_or(i64::MAX)),
    )
    .bind(kind)
    .bind(extends)
    .bind(r.state.name())
    .bind(r.state.step().map(i64::from))
    .bind(micros(r.created_at))
    .bind(micros(r.created_at))
    .fetch_i64(&mut *tx)
    .await
    .map_err(store_err)?;
    write_steps(tx, id, &r.steps).await?;
    Ok(RequestId(id))
}

/// Step 2: the optimistic request updates, each conditional on the version read, written
/// with one multi-row statement ([`values`]) and their steps with two: an expiry tick moves
/// hundreds of requests in one change. Two updates of one request go one by one.
async fn update_requests(tx: &mut Tx, updates: &[RequestUpdate]) -> Result<(), StoreError> {
    if updates.is_empty() {
        return Ok(());
    }
    if !distinct(updates.iter().map(|u| u.id.0)) {
        for u in updates {
            update_requests_at_once(tx, std::slice::from_ref(u)).await?;
        }
        return Ok(());
    }
    update_requests_at_once(tx, updates).await
}

/// [`update_requests`] for updates of distinct requests.
async fn update_requests_at_once(tx: &mut Tx, updates: &[RequestUpdate]) -> Result<(), StoreError> {
    let rows: Vec<Vec<Val>> = updates
        .iter()
        .map(|u| {
            vec![
                Val::from(u.id.0),
                Val::from(u.expected_version),
                Val::from(u.state.name()),
                Val::from(u.state.step().map(i64::from)),
                Val::from(micros(u.updated_at)),
            ]
        })
        .collect();
    let mut n = 0;
    for query in values(
        "UPDATE requests SET state = v.column3, current_step = v.column4, \
         updated_at = v.column5, version = requests.version + 1 FROM (",
        rows,
        ") AS v WHERE requests.id = v.column1 AND requests.version = v.column2",
    ) {
        n += query.execute(&mut *tx).await.map_err(store_err)?;
    }
    // Dropping the transaction rolls it back.
    if n != updates.len() as u64 {
        return Err(StoreError::Conflict);
    }
    replace_steps(tx, updates).await
}

/// Steps 2b to 2d: an offboarding's re-reads are enqueued once; reports are audited once
/// (their plans marked with their audit rows); an open report is closed once.
async fn mark_plans(tx: &mut Tx, change: &Change) -> Result<(), StoreError> {
    if let Some(plan) = change.verify_plan {
        let n = q("UPDATE plans SET verifying = 1 WHERE id = ? AND verifying = 0")
            .bind(plan)
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
        changed_one(n)?;
    }
    if !change.report_plans.is_empty() {
        let mut ids = change.report_plans.clone();
        ids.sort_unstable();
        ids.dedup();
        let n = q(
            "UPDATE plans SET reported = 1 WHERE id IN (SELECT value FROM json_each(?)) \
             AND reported = 0",
        )
        .pg("UPDATE plans SET reported = 1 WHERE id = ANY(ARRAY(\
             SELECT json_array_elements_text($1::json)::bigint)) AND reported = 0")
        .bind(json_list(ids.iter()))
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
        if n != ids.len() as u64 {
            return Err(StoreError::Conflict);
        }
    }
    for plan in &change.open_reports {
        q("UPDATE plans SET report_open = 1 WHERE id = ?")
            .bind(*plan)
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
    }
    if let Some(plan) = change.close_report {
        let n = q("UPDATE plans SET report_open = 0 WHERE id = ? AND report_open = 1")
            .bind(plan)
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
        changed_one(n)?;
    }
    Ok(())
}

/// Step 3: inserts the new grants; their ids, in order. A second live grant of one app to
/// one person is a [`StoreError::Duplicate`] that names them.
async fn insert_grants(
    tx: &mut Tx,
    grants: &[NewGrant],
    new_request: Option<RequestId>,
) -> Result<Vec<GrantId>, StoreError> {
    let mut ids = Vec::with_capacity(grants.len());
    for g in grants {
        let (source, req) = match g.source {
            NewGrantSource::Birthright => ("birthright", None),
            NewGrantSource::Request(r) => ("request", resolve_req(r, new_request)?),
        };
        let id: i64 = q(
            "INSERT INTO grants (person, app, source, request_id, state, granted_at, \
             expires_at, warned) VALUES (?, ?, ?, ?, ?, ?, ?, 0) RETURNING id",
        )
        .bind(g.person.as_str())
        .bind(g.app.as_str())
        .bind(source)
        .bind(req)
        .bind(g.state.as_str())
        .bind(g.granted_at.map(micros))
        .bind(g.expires_at.map(micros))
        .fetch_i64(&mut *tx)
        .await
        .map_err(|e| match store_err(e) {
            StoreError::Duplicate(_) => StoreError::Duplicate(format!(
                "{} already holds a live grant of {}",
                g.person, g.app
            )),
            other => other,
        })?;
        ids.push(GrantId(id));
    }
    Ok(ids)
}

/// Step 4: the grant a request produced (None keeps what is stored: a request never loses
/// the grant it produced).
async fn patch_request_grants(
    tx: &mut Tx,
    change: &Change,
    out: &Committed,
) -> Result<(), StoreError> {
    let mut patches = vec![(
        change.new_request.as_ref().and_then(|r| r.grant),
        out.request.map(|r| r.0),
    )];
    patches.extend(
        change
            .request_updates
            .iter()
            .map(|u| (u.grant, Some(u.id.0))),
    );
    let mut rows = Vec::new();
    for (grant, req) in patches {
        if let (Some(g), Some(req)) = (grant, req) {
            rows.push(vec![
                Val::from(resolve_grant(g, &out.grants)?),
                Val::from(req),
            ]);
        }
    }
    // One statement for all (an expiry chunk carries hundreds).
    for query in values(
        "UPDATE requests SET grant_id = v.column1 FROM (",
        rows,
        ") AS v WHERE requests.id = v.column2",
    ) {
        query.execute(&mut *tx).await.map_err(store_err)?;
    }
    Ok(())
}

/// After a conditional update of `ids` in `table` moved fewer rows than `expected`: a
/// [`StoreError::Conflict`] when they all exist (one moved meanwhile), else a
/// [`StoreError::Backend`] naming the missing `what`.
async fn conflict_or_missing(
    tx: &mut Tx,
    count: (&'static str, &'static str),
    ids: &str,
    expected: usize,
    what: &str,
) -> StoreError {
    let found = q(count.0)
        .pg(count.1)
        .bind(ids.to_owned())
        .fetch_i64(&mut *tx)
        .await
        .map_err(store_err);
    match found {
        Err(e) => e,
        Ok(found) if found == expected as i64 => StoreError::Conflict,
        Ok(_) => StoreError::Backend(format!("{what} of {ids} does not exist")),
    }
}

/// The grant updates, written with one multi-row statement ([`values_pg`]): a batch of the
/// engine's actions, or an expiry tick, moves hundreds of grants. Each is conditional
/// on the state it leaves: a grant another instance or click moved meanwhile fails the whole
/// change, so one expiry or revocation is done (and audited) once. Two updates of one grant
/// go one by one, in order.
async fn update_grants(tx: &mut Tx, updates: &[GrantUpdate]) -> Result<(), StoreError> {
    if updates.is_empty() {
        return Ok(());
    }
    if !distinct(updates.iter().map(|g| g.id.0)) {
        for u in updates {
            update_grants_at_once(tx, std::slice::from_ref(u)).await?;
        }
        return Ok(());
    }
    update_grants_at_once(tx, updates).await
}

/// [`update_grants`] for updates of distinct grants.
async fn update_grants_at_once(tx: &mut Tx, updates: &[GrantUpdate]) -> Result<(), StoreError> {
    let rows: Vec<Vec<Val>> = updates
        .iter()
        .map(|g| {
            vec![
                Val::from(g.id.0),
                Val::from(g.from.as_str()),
                Val::from(g.state.as_str()),
                Val::from(g.granted_at.map(micros)),
                Val::from(g.expires_at.map(micros)),
                Val::from(g.warned),
            ]
        })
        .collect();
    let mut n = 0;
    for query in values_pg(
        "UPDATE grants SET state = v.column3, granted_at = v.column4, expires_at = v.column5, \
         warned = v.column6 FROM (",
        // `+state`: SQLite must find each grant by its id, not walk the (state, expires_at)
        // index over every grant in that state (75 ms against 0.26 ms per update with a
        // million grants).
        ") AS v WHERE grants.id = v.column1 AND +grants.state = v.column2",
        Some((
            "UPDATE grants SET state = v.column3, granted_at = v.column4, \
             expires_at = v.column5, warned = v.column6 FROM (",
            ") AS v WHERE grants.id = v.column1 AND grants.state = v.column2",
        )),
        rows,
    ) {
        n += query.execute(&mut *tx).await.map_err(store_err)?;
    }
    if n != updates.len() as u64 {
        let ids = json_list(updates.iter().map(|g| g.id.0));
        let count = (
            "SELECT count(*) FROM grants WHERE id IN (SELECT value FROM json_each(?))",
            "SELECT count(*) FROM grants \
             WHERE id = ANY(ARRAY(SELECT json_array_elements_text($1::json)::bigint))",
        );
        return Err(conflict_or_missing(tx, count, &ids, updates.len(), "a grant").await);
    }
    Ok(())
}

/// Step 5: enqueues the new actions (their ids, in order) and records the first of them as
/// the first action of the plan whose report covers them, unless it has one.
async fn insert_actions(
    tx: &mut Tx,
    change: &Change,
    out: &Committed,
) -> Result<Vec<ActionId>, StoreError> {
    let mut rows = Vec::with_capacity(change.new_actions.len());
    for (a, n) in change.new_actions.iter().zip(0i64..) {
        let at = micros(a.at);
        rows.push(vec![
            Val::from(a.connector.as_str()),
            Val::from(a.op.as_str()),
            Val::from(a.person.as_str()),
            Val::from(a.app.as_ref().map(|x| x.as_str())),
            Val::from(&a.entitlement),
            Val::from(a.grant.map(|g| resolve_grant(g, &out.grants)).transpose()?),
            Val::from(resolve_req(a.request, out.request)?),
            Val::from(at),
            Val::from(at),
            Val::from(at),
            Val::from(n),
        ]);
    }
    let ids = if rows.is_empty() {
        Vec::new()
    } else {
        insert_action_rows(tx, rows).await?
    };
    if let (Some(plan), Some(first)) = (change.first_action_of.or(out.plan), ids.first()) {
        q("UPDATE plans SET first_action = ? WHERE id = ? AND first_action IS NULL")
            .bind(first.0)
            .bind(plan)
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
    }
    Ok(ids)
}

/// Inserts the actions, one statement per [`values`] batch; their ids, in the rows' order.
/// The rows go in in that order under the write lock, so their ids rise in it (a rowid, or a
/// sequence, only grows): sorting what `RETURNING` gives back, in no promised order,
/// restores it.
async fn insert_action_rows(tx: &mut Tx, rows: Vec<Vec<Val>>) -> Result<Vec<ActionId>, StoreError> {
    let n = rows.len();
    let mut ids = Vec::with_capacity(n);
    for query in values(
        "INSERT INTO actions (connector, op, person, app, entitlement, grant_id, request_id, \
         not_before, created_at, updated_at, state, attempts, last_error, lease_until) \
         SELECT column1, column2, column3, column4, column5, column6, column7, column8, \
         column9, column10, 'pending', 0, NULL, NULL FROM (",
        rows,
        ") AS v ORDER BY column11 RETURNING id",
    ) {
        for r in query.fetch_all(&mut *tx).await.map_err(store_err)? {
            ids.push(ActionId(r.try_get::<i64, _>("id").map_err(store_err)?));
        }
    }
    if ids.len() != n {
        return Err(StoreError::Backend(format!(
            "{n} actions inserted, {} ids returned",
            ids.len()
        )));
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Action updates, grouped as [`update_grants`] groups grants. Each is conditional on the
/// state it leaves: two Done clicks, or a worker and a click, cannot both move one action
/// (the loser's whole change fails).
async fn update_actions(tx: &mut Tx, updates: &[ActionUpdate], now: i64) -> Result<(), StoreError> {
    for same in groups(updates, |a| {
        (
            a.from,
            a.state,
            a.last_error.clone(),
            a.not_before,
            a.reset_attempts,
        )
    }) {
        let a = same[0];
        let ids = json_list(same.iter().map(|a| a.id.0));
        let n = q(
            "UPDATE actions SET state = ?, last_error = ?, not_before = ?, \
             lease_until = NULL, updated_at = ?, \
             attempts = CASE WHEN ? = 1 THEN 0 ELSE attempts END \
             WHERE id IN (SELECT value FROM json_each(?)) AND state = ?",
        )
        .pg(
            "UPDATE actions SET state = $1, last_error = $2, not_before = $3, \
             lease_until = NULL, updated_at = $4, \
             attempts = CASE WHEN $5 = 1 THEN 0 ELSE attempts END \
             WHERE id = ANY(ARRAY(SELECT json_array_elements_text($6::json)::bigint)) \
             AND state = $7",
        )
        .bind(a.state.as_str())
        .bind(a.last_error.clone())
        .bind(micros(a.not_before))
        .bind(now)
        .bind(a.reset_attempts)
        .bind(ids.clone())
        .bind(a.from.as_str())
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
        if n != same.len() as u64 {
            let count = (
                "SELECT count(*) FROM actions WHERE id IN (SELECT value FROM json_each(?))",
                "SELECT count(*) FROM actions \
                 WHERE id = ANY(ARRAY(SELECT json_array_elements_text($1::json)::bigint))",
            );
            return Err(conflict_or_missing(tx, count, &ids, same.len(), "an action").await);
        }
    }
    Ok(())
}

/// Step 5b: the change's messages and those about the plan it creates (completed with its
/// id) go to the outbox, and the steps whose prompts they are are recorded as prompted.
async fn write_messages(
    tx: &mut Tx,
    change: &Change,
    new_plan: Option<PlanId>,
) -> Result<(), StoreError> {
    outbox::insert(tx, &change.messages).await?;
    if !change.plan_messages.is_empty() {
        let Some(plan) = new_plan else {
            return Err(StoreError::Backend(
                "messages about a new plan, but the change creates none".into(),
            ));
        };
        let rows: Vec<_> = change
            .plan_messages
            .iter()
            .map(|m| m.complete(plan))
            .collect();
        outbox::insert(tx, &rows).await?;
    }
    for (id, step) in &change.prompted {
        q("UPDATE requests SET prompted_step = ? WHERE id = ? AND current_step = ?")
            .bind(i64::from(*step))
            .bind(id.0)
            .bind(i64::from(*step))
            .execute(&mut *tx)
            .await
            .map_err(store_err)?;
    }
    Ok(())
}

/// The items grouped by `key` (groups in order of first appearance). Items that share an id
/// must be written in order, so ids are expected to be distinct; a repeated item starts a
/// group of its own.
fn groups<T, K: PartialEq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<Vec<&T>>
where
    T: HasId,
{
    let mut out: Vec<(K, Vec<&T>)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for it in items {
        let k = key(it);
        let fresh = seen.insert(it.id());
        match out.iter_mut().find(|(gk, _)| *gk == k) {
            Some((_, g)) if fresh => g.push(it),
            _ => out.push((k, vec![it])),
        }
    }
    out.into_iter().map(|(_, g)| g).collect()
}

/// An update's row id, for [`groups`].
trait HasId {
    fn id(&self) -> i64;
}

impl HasId for crate::core::ports::ActionUpdate {
    fn id(&self) -> i64 {
        self.id.0
    }
}

/// The latest moment a change mentions: the bookkeeping `updated_at` of rows that carry no
/// time of their own (action updates), so time keeps coming from the core's clock.
fn change_time(c: &Change) -> Timestamp {
    let mut times: Vec<Timestamp> = Vec::new();
    times.extend(c.new_request.as_ref().map(|r| r.created_at));
    times.extend(c.request_updates.iter().map(|r| r.updated_at));
    times.extend(c.new_actions.iter().map(|a| a.at));
    times.extend(c.audit.iter().map(|a| a.at));
    times.into_iter().max().unwrap_or_else(chrono::Utc::now)
}

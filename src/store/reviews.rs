//! Access reviews and their items: reads, and the writes a [`Change`] carries (updates
//! conditional on the version read; a snapshot's items numbered in one statement per batch).

use async_trait::async_trait;

use super::commit::changed_one;
use super::db::{DbRow, Tx, Val, q, values};
use super::rows::{app, corrupt, decided, from_micros, get, handle, micros, opt_ts};
use super::{DbError, SqlStore, store_err};
use crate::core::model::*;
use crate::core::ports::{Change, ReviewRecords, StoreError};

/// The columns of a review, in `SELECT` order.
macro_rules! review_cols {
    () => {
        "SELECT id, scope, reviewer, due_span, escalate_span, dflt, state, launched_by, \
         launched_at, due_at, campaign, snapshot, closed_at, version FROM reviews"
    };
}

/// The columns of an item, in `SELECT` order (aliased `i`).
macro_rules! item_cols {
    () => {
        "SELECT i.id, i.review_id, i.person, i.app, i.grant_id, i.account, i.expires_at, i.seen, \
         i.reviewers, i.of_record, i.page, i.state, i.decided_by, i.decided_at, i.reason, \
         i.action_id, i.proof, i.escalated, i.reminded_at, i.version FROM review_items i"
    };
}

fn span(secs: i64) -> Span {
    Span::from_std(std::time::Duration::from_secs(
        u64::try_from(secs).unwrap_or(0),
    ))
}

fn snapshot_text(s: &Snapshot) -> String {
    serde_json::json!({
        "digest": s.digest,
        "grants": s.grants,
        "unrecorded": s.unrecorded,
        "reads": s.reads.iter().map(|(c, r)| [c.as_str(), r.as_str()]).collect::<Vec<_>>(),
    })
    .to_string()
}

fn snapshot_of(s: &str) -> Result<Snapshot, DbError> {
    let v: serde_json::Value = serde_json::from_str(s).map_err(|e| corrupt("snapshot", e))?;
    let reads = v["reads"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| {
                    let c = ConnectorName::parse(r[0].as_str()?).ok()?;
                    Some((c, r[1].as_str()?.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Snapshot {
        digest: v["digest"].as_str().unwrap_or_default().to_owned(),
        grants: v["grants"].as_u64().unwrap_or_default(),
        unrecorded: v["unrecorded"].as_u64().unwrap_or_default(),
        reads,
    })
}

fn review_from_row(row: &DbRow) -> Result<Review, DbError> {
    let scope: String = get(row, "scope")?;
    let reviewer: String = get(row, "reviewer")?;
    let dflt: String = get(row, "dflt")?;
    Ok(Review {
        id: ReviewId(get(row, "id")?),
        terms: ReviewTerms {
            scope: ReviewScope::parse(&scope).map_err(|e| corrupt("scope", e))?,
            reviewer: ReviewerRule::parse(&reviewer).map_err(|e| corrupt("reviewer", e))?,
            due: span(get(row, "due_span")?),
            escalate_after: span(get(row, "escalate_span")?),
            default: ReviewDefault::parse(&dflt).ok_or_else(|| corrupt("dflt", &dflt))?,
        },
        state: ReviewState::parse(&get::<String>(row, "state")?)
            .ok_or_else(|| corrupt("state", "unknown"))?,
        launched_by: get(row, "launched_by")?,
        launched_at: from_micros(get(row, "launched_at")?)?,
        due_at: from_micros(get(row, "due_at")?)?,
        campaign: get(row, "campaign")?,
        snapshot: get::<Option<String>>(row, "snapshot")?
            .as_deref()
            .map(snapshot_of)
            .transpose()?,
        closed_at: opt_ts(row, "closed_at")?,
        version: get(row, "version")?,
    })
}

fn item_from_row(row: &DbRow) -> Result<ReviewItem, DbError> {
    let reviewers: String = get(row, "reviewers")?;
    let decided = decided(row)?;
    let removal = match get::<Option<i64>>(row, "action_id")? {
        Some(a) => Some((
            ActionId(a),
            get::<Option<String>>(row, "proof")?.unwrap_or_default(),
        )),
        None => None,
    };
    Ok(ReviewItem {
        id: ReviewItemId(get(row, "id")?),
        review: ReviewId(get(row, "review_id")?),
        person: handle(&get::<String>(row, "person")?)?,
        app: app(&get::<String>(row, "app")?)?,
        grant: get::<Option<i64>>(row, "grant_id")?.map(GrantId),
        account: get(row, "account")?,
        expires_at: opt_ts(row, "expires_at")?,
        seen: get(row, "seen")?,
        reviewers: reviewers
            .split(',')
            .filter(|s| !s.is_empty())
            .map(handle)
            .collect::<Result<_, _>>()?,
        of_record: handle(&get::<String>(row, "of_record")?)?,
        page: ReviewItemId(get(row, "page")?),
        state: ItemState::parse(&get::<String>(row, "state")?)
            .ok_or_else(|| corrupt("state", "unknown"))?,
        decided,
        removal,
        escalated: get::<i64>(row, "escalated")? != 0,
        reminded_at: opt_ts(row, "reminded_at")?,
        version: get(row, "version")?,
    })
}

fn reviewers_text(item: &ReviewItem) -> String {
    item.reviewers
        .iter()
        .map(Handle::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

#[async_trait]
impl ReviewRecords for SqlStore {
    async fn review(&self, id: ReviewId) -> Result<Option<Review>, StoreError> {
        let row = q(concat!(review_cols!(), " WHERE id = ?"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(review_from_row).transpose()?)
    }

    async fn reviews_in(&self, states: &[ReviewState]) -> Result<Vec<Review>, StoreError> {
        let Some(first) = states.first() else {
            return Ok(Vec::new());
        };
        // Four places, the states given padded with the first (there are four states).
        let mut query = q(concat!(
            review_cols!(),
            " WHERE state IN (?, ?, ?, ?) ORDER BY id"
        ));
        for i in 0..4 {
            query = query.bind(states.get(i).unwrap_or(first).as_str());
        }
        self.read_all(query, review_from_row).await
    }

    async fn review_items(&self, id: ReviewId) -> Result<Vec<ReviewItem>, StoreError> {
        let sql = concat!(
            item_cols!(),
            " JOIN review_links l ON l.item_id = i.id WHERE l.review_id = ? ORDER BY i.id"
        );
        self.read_all(q(sql).bind(id.0), item_from_row).await
    }

    async fn review_item(&self, id: ReviewItemId) -> Result<Option<ReviewItem>, StoreError> {
        let row = q(concat!(item_cols!(), " WHERE i.id = ?"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        Ok(row.as_ref().map(item_from_row).transpose()?)
    }

    async fn page_items(&self, page: ReviewItemId) -> Result<Vec<ReviewItem>, StoreError> {
        let sql = concat!(item_cols!(), " WHERE i.page = ? ORDER BY i.id");
        self.read_all(q(sql).bind(page.0), item_from_row).await
    }

    async fn live_review_items(&self) -> Result<Vec<ReviewItem>, StoreError> {
        let sql = concat!(
            item_cols!(),
            " WHERE i.state IN ('open', 'revoking', 'unverified') ORDER BY i.id"
        );
        self.read_all(q(sql), item_from_row).await
    }

    async fn review_items_to_settle(&self) -> Result<Vec<ReviewItem>, StoreError> {
        let sql = concat!(
            item_cols!(),
            " LEFT JOIN grants g ON g.id = i.grant_id \
             WHERE i.state IN ('revoking', 'unverified') \
                OR (i.state = 'open' AND i.grant_id IS NOT NULL \
                    AND (g.id IS NULL OR g.state <> 'active' \
                         OR COALESCE(g.expires_at, -1) <> COALESCE(i.expires_at, -1))) \
             ORDER BY i.id"
        );
        self.read_all(q(sql), item_from_row).await
    }

    async fn open_review_items(
        &self,
        id: ReviewId,
        unescalated: bool,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        let sql = concat!(
            item_cols!(),
            " WHERE i.review_id = ? AND i.state = 'open' AND (? = 0 OR i.escalated = 0) \
             ORDER BY i.id"
        );
        self.read_all(q(sql).bind(id.0).bind(unescalated), item_from_row)
            .await
    }

    async fn review_items_of_leavers(&self) -> Result<Vec<ReviewItem>, StoreError> {
        let sql = concat!(
            item_cols!(),
            " JOIN people p ON p.handle = i.of_record \
             WHERE i.state = 'open' AND p.status <> 'active' ORDER BY i.id"
        );
        self.read_all(q(sql), item_from_row).await
    }

    async fn review_items_to_remind(
        &self,
        launched: Timestamp,
        since: Timestamp,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        let sql = concat!(
            item_cols!(),
            " JOIN reviews r ON r.id = i.review_id \
             WHERE i.state = 'open' AND r.state = 'open' AND r.launched_at <= ? \
               AND (i.reminded_at IS NULL OR i.reminded_at <= ?) ORDER BY i.id"
        );
        self.read_all(
            q(sql).bind(micros(launched)).bind(micros(since)),
            item_from_row,
        )
        .await
    }

    async fn unsettled_review_items(&self, id: ReviewId) -> Result<i64, StoreError> {
        q(
            "SELECT count(*) FROM review_links l JOIN review_items i ON i.id = l.item_id \
           WHERE l.review_id = ? AND i.state IN ('open', 'revoking', 'unverified')",
        )
        .bind(id.0)
        .fetch_i64(&self.pool)
        .await
        .map_err(store_err)
    }

    async fn item_reviews(&self, item: ReviewItemId) -> Result<Vec<ReviewId>, StoreError> {
        let rows = q("SELECT review_id FROM review_links WHERE item_id = ? ORDER BY review_id")
            .bind(item.0)
            .fetch_all(&self.pool)
            .await
            .map_err(store_err)?;
        rows.iter()
            .map(|r| Ok(ReviewId(get(r, "review_id")?)))
            .collect::<Result<_, DbError>>()
            .map_err(StoreError::from)
    }

    async fn last_campaign_launch(&self, name: &str) -> Result<Option<Timestamp>, StoreError> {
        let row = q("SELECT max(launched_at) AS at FROM reviews WHERE campaign = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_err)?;
        match row {
            Some(r) => Ok(opt_ts(&r, "at")?),
            None => Ok(None),
        }
    }
}

/// Writes a change's review, its snapshot and the updates of reviews and items; returns the
/// new review's id.
pub(super) async fn write_reviews(
    tx: &mut Tx,
    change: &Change,
) -> Result<Option<ReviewId>, StoreError> {
    let mut created = None;
    if let Some(r) = &change.new_review {
        let id = q(
            "INSERT INTO reviews (scope, reviewer, due_span, escalate_span, dflt, state, \
                    launched_by, launched_at, due_at, campaign, snapshot, closed_at, version) \
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, 1) RETURNING id",
        )
        .bind(r.terms.scope.to_string())
        .bind(r.terms.reviewer.to_string())
        .bind(i64::try_from(r.terms.due.secs()).unwrap_or(i64::MAX))
        .bind(i64::try_from(r.terms.escalate_after.secs()).unwrap_or(i64::MAX))
        .bind(r.terms.default.as_str())
        .bind(r.state.as_str())
        .bind(r.launched_by.as_str())
        .bind(micros(r.launched_at))
        .bind(micros(r.due_at))
        .bind(r.campaign.clone())
        .fetch_i64(&mut *tx)
        .await
        .map_err(store_err)?;
        created = Some(ReviewId(id));
    }
    for r in &change.review_updates {
        let n = q(
            "UPDATE reviews SET state = ?, snapshot = ?, closed_at = ?, \
                   version = version + 1 WHERE id = ? AND version = ?",
        )
        .bind(r.state.as_str())
        .bind(r.snapshot.as_ref().map(snapshot_text))
        .bind(r.closed_at.map(micros))
        .bind(r.id.0)
        .bind(r.version)
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
        changed_one(n)?;
    }
    if let Some(s) = &change.review_snapshot {
        insert_snapshot(tx, s).await?;
    }
    for i in &change.item_updates {
        let n = q(
            "UPDATE review_items SET reviewers = ?, state = ?, decided_by = ?, \
                   decided_at = ?, reason = ?, action_id = ?, proof = ?, escalated = ?, \
                   reminded_at = ?, version = version + 1 WHERE id = ? AND version = ?",
        )
        .bind(reviewers_text(i))
        .bind(i.state.as_str())
        .bind(i.decided.as_ref().map(|d| d.0.clone()))
        .bind(i.decided.as_ref().map(|d| micros(d.1)))
        .bind(i.decided.as_ref().map(|d| d.2.clone()))
        .bind(i.removal.as_ref().map(|r| r.0.0))
        .bind(i.removal.as_ref().map(|r| r.1.clone()))
        .bind(i.escalated)
        .bind(i.reminded_at.map(micros))
        .bind(i.id.0)
        .bind(i.version)
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
        changed_one(n)?;
    }
    Ok(created)
}

/// A snapshot's items, numbered after the highest id (the table locked on PostgreSQL, the
/// writer's lock held on SQLite), each `page` turned from an index into its first item's id;
/// and the links of the review to its own and its shared items.
async fn insert_snapshot(
    tx: &mut Tx,
    s: &crate::core::ports::ReviewSnapshot,
) -> Result<(), StoreError> {
    q("SELECT 1")
        .pg("LOCK TABLE review_items IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
    let base = q("SELECT COALESCE(max(id), 0) FROM review_items")
        .fetch_i64(&mut *tx)
        .await
        .map_err(store_err)?;
    let id_of = |n: usize| base + 1 + i64::try_from(n).unwrap_or(i64::MAX - base - 1);
    let rows: Vec<Vec<Val>> = s
        .items
        .iter()
        .enumerate()
        .map(|(n, i)| {
            let page = usize::try_from(i.page.0).unwrap_or(n);
            vec![
                Val::from(id_of(n)),
                Val::from(s.review.0),
                Val::from(i.person.as_str()),
                Val::from(i.app.as_str()),
                Val::from(i.grant.map(|g| g.0)),
                Val::from(i.account.clone()),
                Val::from(i.expires_at.map(micros)),
                Val::from(i.seen.as_str()),
                Val::from(reviewers_text(i)),
                Val::from(i.of_record.as_str()),
                Val::from(id_of(page)),
                Val::from(i.state.as_str()),
                Val::from(i.escalated),
            ]
        })
        .collect();
    for stmt in values(
        "INSERT INTO review_items (id, review_id, person, app, grant_id, account, expires_at, \
         seen, reviewers, of_record, page, state, escalated, version)",
        rows.into_iter()
            .map(|mut r| {
                r.push(Val::from(1));
                r
            })
            .collect(),
        "",
    ) {
        stmt.execute(&mut *tx).await.map_err(store_err)?;
    }
    let links: Vec<Vec<Val>> = (0..s.items.len())
        .map(id_of)
        .chain(s.shared.iter().map(|i| i.0))
        .map(|item| vec![Val::from(s.review.0), Val::from(item)])
        .collect();
    for stmt in values(
        "INSERT INTO review_links (review_id, item_id)",
        links,
        "ON CONFLICT DO NOTHING",
    ) {
        stmt.execute(&mut *tx).await.map_err(store_err)?;
    }
    Ok(())
}

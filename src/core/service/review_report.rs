//! A review's evidence (`quartermaster review report`): its scope and snapshot, every
//! decision (reviewer of record against who decided), removals with their proof, who never
//! answered, and each access as it stands now. Producing it is audited.

use super::*;

/// One access in a review's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportItem {
    /// The item.
    pub item: ReviewItem,
    /// The holder's name.
    pub holder: String,
    /// The app's name as people read it.
    pub app: String,
    /// The access as it stands now (`active`, `revoking`, `revoked`, `none`…).
    pub now: String,
}

/// A review's evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewReport {
    /// The review.
    pub review: Review,
    /// Every item it references, by id.
    pub items: Vec<ReportItem>,
    /// Reviewers of record with an item they never decided (nobody did, or the default or
    /// someone else did), each with how many.
    pub never_answered: Vec<(Handle, usize)>,
    /// When the report was produced.
    pub at: Timestamp,
}

impl Service {
    /// Review `id`'s report, audited as produced by `by` (None: no such review).
    pub async fn review_report(&self, id: ReviewId, by: &str) -> Result<Option<ReviewReport>> {
        let Some(review) = self.store.review(id).await? else {
            return Ok(None);
        };
        let items = self.store.review_items(id).await?;
        let dir = self.directory().await?;
        let ids: Vec<GrantId> = items.iter().filter_map(|i| i.grant).collect();
        let grants = self.store.grants_by_id(&ids).await?;
        let mut out = Vec::with_capacity(items.len());
        let mut never: std::collections::BTreeMap<Handle, usize> = Default::default();
        for i in items {
            let now = match i.grant {
                Some(g) => grants
                    .iter()
                    .find(|x| x.id == g)
                    .map_or("none", |x| x.state.as_str())
                    .to_owned(),
                None => match i.state {
                    ItemState::Kept => "recorded (adopted)".to_owned(),
                    ItemState::Revoked => "none".to_owned(),
                    _ => "unrecorded".to_owned(),
                },
            };
            let answered = i
                .decided
                .as_ref()
                .is_some_and(|(who, _, _)| who == i.of_record.as_str());
            if !answered && i.state != ItemState::Closed {
                *never.entry(i.of_record.clone()).or_default() += 1;
            }
            out.push(ReportItem {
                holder: dir
                    .get(&i.person)
                    .map_or_else(|| i.person.to_string(), |p| p.name.clone()),
                app: self.app_display(&i.app),
                now,
                item: i,
            });
        }
        let by = Handle::parse(by).map_or(Actor::System, Actor::Person);
        self.commit(Change {
            audit: vec![
                self.audit(AuditAction::ReviewReported)
                    .by(by)
                    .detail(format!("review {id}: report of {} item(s)", out.len())),
            ],
            ..Change::default()
        })
        .await?;
        Ok(Some(ReviewReport {
            review,
            items: out,
            never_answered: never.into_iter().collect(),
            at: self.clock.now(),
        }))
    }
}

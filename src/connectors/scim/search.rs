//! Searching the groups a user is in (`filter=members.value eq "…"`) instead of listing every
//! group. A search is believed only after it was seen to agree with a complete listing on a
//! non-empty answer, on this connector; a search that disagrees once is not used again (a peer
//! that ignores filters answers 200 with nothing, or with everything).

use std::sync::atomic::Ordering;

use serde_json::Value;
use tracing::{debug, warn};

use super::caps::Caps;
use super::{Scim, is_member, quote};
use crate::core::ports::ConnectorError;

/// Group ids in a fixed order, so that two reads' answers compare as sets.
pub(super) fn sorted_ids<'a>(ids: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = ids.collect();
    v.sort_unstable();
    v
}

/// What is known of the member search on this connector.
pub(super) const UNTRIED: u8 = 0;
const TRUSTED: u8 = 1;
const DISTRUSTED: u8 = 2;

impl Scim {
    /// Whether the member search may stand in for the complete listing.
    pub(super) async fn member_search_trusted(&self) -> Result<bool, ConnectorError> {
        Ok(self.member_search.load(Ordering::Relaxed) == TRUSTED
            && self.filter_usable(false).await?)
    }

    /// The groups (id, display name) a member search for `uid` finds, each hit showing `uid`
    /// among its members; `None` when the search is refused or a hit does not show the
    /// member (the peer ignored the filter).
    pub(super) async fn groups_by_search(
        &self,
        uid: &str,
    ) -> Result<Option<Vec<(String, String)>>, ConnectorError> {
        let filter = format!("members.value eq {}", quote(uid));
        let hits = match self.list("Groups", Some(filter), None).await {
            Ok(hits) => hits,
            Err(ConnectorError::Permanent(m)) => {
                debug!(connector = %self.name, error = %m, "member search refused");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let mut out = Vec::with_capacity(hits.len());
        for g in &hits {
            let (Some(id), Some(name)) = (
                g.get("id").and_then(Value::as_str),
                g.get("displayName").and_then(Value::as_str),
            ) else {
                return Ok(None);
            };
            if !is_member(g, uid) {
                return Ok(None);
            }
            out.push((id.to_owned(), name.to_owned()));
        }
        Ok(Some(out))
    }

    /// Tries the member search against a complete listing of `groups` (every one showing
    /// its members), for `uid` or, when `uid` is in no group, for someone who is: trusted
    /// when both name the same groups, distrusted when they differ, untried otherwise.
    pub(super) async fn try_member_search(&self, caps: &Caps, groups: &[Value], uid: &str) {
        if self.member_search.load(Ordering::Relaxed) != UNTRIED
            || caps.filter == Some(false)
            || !groups
                .iter()
                .all(|g| matches!(g.get("members"), Some(Value::Array(_))))
        {
            return;
        }
        let someone = if groups.iter().any(|g| is_member(g, uid)) {
            Some(uid.to_owned())
        } else {
            groups.iter().find_map(|g| {
                g.get("members")?
                    .as_array()?
                    .first()?
                    .get("value")?
                    .as_str()
                    .map(str::to_owned)
            })
        };
        let Some(someone) = someone else { return };
        let truth = sorted_ids(
            groups
                .iter()
                .filter(|g| is_member(g, &someone))
                .filter_map(|g| g.get("id")?.as_str()),
        );
        let verdict = match self.groups_by_search(&someone).await {
            Ok(Some(hits)) => sorted_ids(hits.iter().map(|(id, _)| id.as_str())) == truth,
            Ok(None) => false,
            Err(e) => {
                debug!(connector = %self.name, error = %e, "member search not tried");
                return;
            }
        };
        if verdict {
            debug!(connector = %self.name, "the member search agrees with the listing; used from now on");
            self.member_search.store(TRUSTED, Ordering::Relaxed);
        } else {
            self.distrust_member_search();
        }
    }

    /// The member search was refused or missed what a listing shows: not used again.
    pub(super) fn distrust_member_search(&self) {
        warn!(connector = %self.name, "the member search disagrees with the listing; listing from now on");
        self.member_search.store(DISTRUSTED, Ordering::Relaxed);
    }
}

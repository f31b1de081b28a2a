//! Listing what the provider holds, for drift: every user and every member of a group, read
//! page by page (`startIndex`/`count`) and believed only when the pages add up to the total
//! the provider announced — a partial list is never evidence of absence.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::Value;

use super::{MAX_PAGES, Scim};
use crate::core::ports::{ConnectorError, Listed};

impl Scim {
    /// Every resource of `resource`, complete: an error unless the distinct resources read
    /// add up to the `totalResults` the provider announced (a listing that changed under us,
    /// or pages that stopped early, prove nothing).
    pub(super) async fn list_complete(&self, resource: &str) -> Result<Vec<Value>, ConnectorError> {
        let mut out: Vec<Value> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut start = 1usize;
        let mut total: Option<usize> = None;
        for _ in 0..MAX_PAGES {
            let (page, announced) = self.page(resource, start, None, None).await?;
            total = total.or(announced);
            let n = page.len();
            for r in page {
                let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
                if !id.is_empty() && seen.insert(id.to_owned()) {
                    out.push(r);
                }
            }
            match total {
                Some(t) if out.len() >= t => return Ok(out),
                None if n < self.page_size => return Ok(out),
                _ if n == 0 => break,
                _ => start += n,
            }
        }
        Err(ConnectorError::Unverifiable(format!(
            "the {resource} listing stopped at {} of {} announced",
            out.len(),
            total.map_or_else(|| "an unknown number".to_owned(), |t| t.to_string())
        )))
    }

    /// Every user, as listed.
    pub(super) async fn listed_accounts(&self) -> Result<Vec<Listed>, ConnectorError> {
        Ok(self
            .list_complete("Users")
            .await?
            .iter()
            .map(listed_user)
            .collect())
    }

    /// Every member of the group named `entitlement` (its id is the user's SCIM id), read
    /// from the group itself.
    pub(super) async fn listed_members(
        &self,
        entitlement: &str,
    ) -> Result<Vec<Listed>, ConnectorError> {
        let Some(g) = self.find_group(entitlement).await? else {
            return Err(ConnectorError::NotFound(format!("group {entitlement}")));
        };
        let path = format!("Groups/{}", g.id);
        let reply = self
            .call(
                "read a group's members",
                Method::GET,
                &path,
                &[],
                None,
                None,
            )
            .await?;
        let body = reply.body.unwrap_or(Value::Null);
        // An attribute with no value is left out (RFC 7643 §2.5): no `members`, no member.
        let members = body
            .get("members")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(members
            .iter()
            .filter_map(|m| m.get("value").and_then(Value::as_str))
            .map(|id| Listed {
                id: id.to_owned(),
                ..Listed::default()
            })
            .collect())
    }
}

/// A user resource as listed: its id, `userName`, e-mail addresses and `active`.
fn listed_user(u: &Value) -> Listed {
    let login = u.get("userName").and_then(Value::as_str).map(str::to_owned);
    let mut emails: Vec<String> = u
        .get("emails")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.get("value").and_then(Value::as_str))
                .map(str::to_lowercase)
                .collect()
        })
        .unwrap_or_default();
    if let Some(l) = login.as_deref().filter(|l| l.contains('@')) {
        let l = l.to_lowercase();
        if !emails.contains(&l) {
            emails.push(l);
        }
    }
    Listed {
        id: u
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        login,
        emails,
        active: u.get("active").and_then(|a| {
            a.as_bool()
                .or_else(|| a.as_str().and_then(|s| s.to_lowercase().parse().ok()))
        }),
    }
}

//! Reads: what the provider can do, and finding users and groups by name so that a miss is
//! only believed when a read that shows everything shows nothing.

use std::sync::atomic::Ordering;

use reqwest::Method;
use serde_json::Value;
use tracing::{debug, warn};

use super::caps::Caps;
use super::{Found, Guard, Lookup, MAX_PAGES, Scim, display_name_is, found, quote, user_name_is};
use crate::core::ports::ConnectorError;

impl Scim {
    /// Reads what the provider says it can do: `/ServiceProviderConfig`, then `/ResourceTypes`
    /// and `/Schemas` where served. A config that is not served (404, 501…) gives unknown
    /// capabilities; a refused token, rate limit or outage is an error.
    pub async fn discover(&self) -> Result<Caps, ConnectorError> {
        let what = "read ServiceProviderConfig";
        let (reply, headers, text) = self
            .send(what, Method::GET, "ServiceProviderConfig", &[], None, None)
            .await?;
        let mut caps = match reply.status.as_u16() {
            200..=299 => Caps::from_config(reply.body.as_ref().unwrap_or(&Value::Null)),
            400 | 404 | 405 | 501 => Caps::default(),
            _ => return Err(self.failure(what, &reply, &headers, &text)),
        };
        if let Ok((r, _, _)) = self
            .send(
                "read ResourceTypes",
                Method::GET,
                "ResourceTypes",
                &[],
                None,
                None,
            )
            .await
            && r.status.is_success()
            && let Some(b) = &r.body
        {
            caps.with_resource_types(b);
        }
        if let Ok((r, _, _)) = self
            .send("read Schemas", Method::GET, "Schemas", &[], None, None)
            .await
            && r.status.is_success()
            && let Some(b) = &r.body
        {
            caps.with_schemas(b);
        }
        debug!(connector = %self.name, caps = %caps.summary(), "SCIM capabilities");
        Ok(caps)
    }

    /// The capabilities, discovered on first use and kept until restart.
    pub(super) async fn caps(&self) -> Result<&Caps, ConnectorError> {
        self.caps.get_or_try_init(|| self.discover()).await
    }

    /// Whether to look `Users` (or `Groups`) up by filter: not when the provider says filters
    /// are unsupported, nor once a filter was seen to miss what a listing showed.
    pub(super) async fn filter_usable(&self, users: bool) -> Result<bool, ConnectorError> {
        let lies = if users {
            &self.user_filter_lies
        } else {
            &self.group_filter_lies
        };
        Ok(self.caps().await?.filter != Some(false) && !lies.load(Ordering::Relaxed))
    }

    /// The ETag to send as `If-Match` under `guard`: only where `etag.supported` is true.
    pub(super) async fn if_match<'a>(
        &self,
        guard: Guard,
        etag: Option<&'a str>,
    ) -> Result<Option<&'a str>, ConnectorError> {
        Ok(match guard {
            Guard::IfMatch if self.caps().await?.etag == Some(true) => etag,
            _ => None,
        })
    }

    /// One page of a listing from `start` (`startIndex`/`count`): its resources and the
    /// `totalResults` the provider announced, if it did.
    pub(super) async fn page(
        &self,
        resource: &str,
        start: usize,
        filter: Option<&str>,
        attributes: Option<&str>,
    ) -> Result<(Vec<Value>, Option<usize>), ConnectorError> {
        let mut q = vec![
            ("startIndex", start.to_string()),
            ("count", self.page_size.to_string()),
        ];
        if let Some(f) = filter {
            q.push(("filter", f.to_owned()));
        }
        if let Some(a) = attributes {
            q.push(("attributes", a.to_owned()));
        }
        let what = format!("list {resource}");
        let reply = self
            .call(&what, Method::GET, resource, &q, None, None)
            .await?;
        let body = reply.body.unwrap_or(Value::Null);
        let page = body
            .get("Resources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let total = body
            .get("totalResults")
            .and_then(Value::as_u64)
            .map(|t| t as usize);
        Ok((page, total))
    }

    /// Every resource of a listing, page by page (`startIndex`/`count`).
    pub(super) async fn list(
        &self,
        resource: &str,
        filter: Option<String>,
        attributes: Option<&str>,
    ) -> Result<Vec<Value>, ConnectorError> {
        let mut out = Vec::new();
        let mut start = 1usize;
        for _ in 0..MAX_PAGES {
            let (page, total) = self
                .page(resource, start, filter.as_deref(), attributes)
                .await?;
            let total = total.unwrap_or(usize::MAX);
            let n = page.len();
            out.extend(page);
            if n == 0 || out.len() >= total {
                break;
            }
            start += n;
        }
        Ok(out)
    }

    /// Looks a resource up by name: by filter where usable (hits checked here with `keep`; no
    /// hit proves nothing), else — or when the peer refuses the filter — by the complete
    /// listing, matched here.
    pub(super) async fn lookup(
        &self,
        resource: &str,
        filter: String,
        keep: impl Fn(&Value) -> bool,
    ) -> Result<Lookup, ConnectorError> {
        let users = resource == "Users";
        if self.filter_usable(users).await? {
            match self.list(resource, Some(filter), None).await {
                Ok(hits) => {
                    return Ok(
                        match hits
                            .into_iter()
                            .find(|v| keep(v))
                            .and_then(|b| found(b, None))
                        {
                            Some(f) => Lookup::Found(f),
                            None => Lookup::NotShown,
                        },
                    );
                }
                Err(ConnectorError::Permanent(m)) => {
                    debug!(connector = %self.name, error = %m, "filter refused; listing everything");
                }
                Err(e) => return Err(e),
            }
        }
        self.listed(resource, keep).await
    }

    /// The resource `keep` picks from the complete listing: what it shows is authoritative.
    pub(super) async fn listed(
        &self,
        resource: &str,
        keep: impl Fn(&Value) -> bool,
    ) -> Result<Lookup, ConnectorError> {
        let all = self.list(resource, None, None).await?;
        Ok(
            match all
                .into_iter()
                .find(|v| keep(v))
                .and_then(|b| found(b, None))
            {
                Some(f) => Lookup::Found(f),
                None => Lookup::Absent,
            },
        )
    }

    /// A lookup whose "none" must be proven: a filter's empty answer is checked against the
    /// complete listing. A filter that missed an exact match is not used again.
    pub(super) async fn proven(
        &self,
        resource: &str,
        first: Lookup,
        keep: impl Fn(&Value) -> bool,
        exact: impl Fn(&Value) -> bool,
    ) -> Result<Option<Found>, ConnectorError> {
        match first {
            Lookup::Found(f) => Ok(Some(f)),
            Lookup::Absent => Ok(None),
            Lookup::NotShown => match self.listed(resource, keep).await? {
                Lookup::Found(f) => {
                    if exact(&f.body) {
                        warn!(connector = %self.name, resource,
                            "the peer's filter missed what its listing shows; listing from now on");
                        let lies = if resource == "Users" {
                            &self.user_filter_lies
                        } else {
                            &self.group_filter_lies
                        };
                        lies.store(true, Ordering::Relaxed);
                    }
                    Ok(Some(f))
                }
                _ => Ok(None),
            },
        }
    }

    /// Reads one resource with its ETag; `None` when it is gone.
    pub(super) async fn get(
        &self,
        resource: &str,
        id: &str,
    ) -> Result<Option<Found>, ConnectorError> {
        let what = format!("read {resource}");
        match self
            .call(
                &what,
                Method::GET,
                &format!("{resource}/{id}"),
                &[],
                None,
                None,
            )
            .await
        {
            Ok(r) => Ok(r.body.and_then(|b| found(b, r.etag))),
            Err(ConnectorError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The user whose `userName` is this email, case-insensitively; a miss may be the
    /// filter's (use [`Scim::find_user`] where absence matters).
    pub(super) async fn lookup_user(&self, email: &str) -> Result<Lookup, ConnectorError> {
        self.lookup("Users", format!("userName eq {}", quote(email)), |u| {
            user_name_is(u, email)
        })
        .await
    }

    /// The user whose `userName` is this email, case-insensitively; `None` only when a read
    /// that shows every user shows none.
    pub(super) async fn find_user(&self, email: &str) -> Result<Option<Found>, ConnectorError> {
        let first = self.lookup_user(email).await?;
        self.proven(
            "Users",
            first,
            |u| user_name_is(u, email),
            |u| u.get("userName").and_then(Value::as_str) == Some(email),
        )
        .await
    }

    /// The group whose `displayName` is exactly `name`; a miss may be the filter's.
    pub(super) async fn lookup_group(&self, name: &str) -> Result<Lookup, ConnectorError> {
        self.lookup("Groups", format!("displayName eq {}", quote(name)), |g| {
            display_name_is(g, name)
        })
        .await
    }

    /// The group `name`; `None` only when a read that shows every group shows none.
    pub(super) async fn find_group(&self, name: &str) -> Result<Option<Found>, ConnectorError> {
        let first = self.lookup_group(name).await?;
        self.proven(
            "Groups",
            first,
            |g| display_name_is(g, name),
            |g| display_name_is(g, name),
        )
        .await
    }
}

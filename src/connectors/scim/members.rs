//! Group memberships: adding and removing a member in whichever request form the provider
//! takes, confirming a removal by reading again, and reading the groups a user is in from
//! every source the provider serves.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use reqwest::Method;
use serde_json::{Value, json};
use tracing::{debug, warn};

use super::caps::Caps;
use super::{Found, Guard, Scim, is_member};
use crate::core::ports::{ConnectorError, Effect};

/// The ways of removing one member, in the order tried (RFC 7644 §3.5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Removal {
    /// `{"op": "remove", "path": "members[value eq \"…\"]"}`.
    PathFilter = 0,
    /// `{"op": "remove", "path": "members", "value": [{"value": "…"}]}` (Entra's form).
    MembersValue = 1,
    /// PUT of the whole group without the member.
    Put = 2,
}

const REMOVALS: [Removal; 3] = [Removal::PathFilter, Removal::MembersValue, Removal::Put];

/// Which forms the provider took or refused, per connector (until restart).
#[derive(Debug, Default)]
pub(super) struct Forms {
    /// The first removal form still worth trying (index into [`REMOVALS`]).
    removal: AtomicU8,
    /// PATCH was refused (501, 405…): updates go by PUT.
    no_patch: AtomicBool,
}

impl Forms {
    /// Whether updates must go by PUT: the provider says it has no PATCH, or refused one.
    pub(super) fn patch_refused(&self, caps: &Caps) -> bool {
        caps.patch == Some(false) || self.no_patch.load(Ordering::Relaxed)
    }

    pub(super) fn refuse_patch(&self) {
        self.no_patch.store(true, Ordering::Relaxed);
    }

    fn first_removal(&self, caps: &Caps) -> usize {
        if self.patch_refused(caps) {
            return Removal::Put as usize;
        }
        usize::from(self.removal.load(Ordering::Relaxed)).min(REMOVALS.len() - 1)
    }

    fn removal_worked(&self, i: usize) {
        self.removal.store(i as u8, Ordering::Relaxed);
    }
}

/// What one read says about a membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Member,
    NotMember,
    /// The read does not show it (no `members` the schema promises, no `groups`).
    Unknown,
}

/// What a group as read says about `uid`: its `members` are authoritative; a group read
/// without them shows "none" only where `/Schemas` says members are returned by default.
fn group_says(caps: &Caps, group: &Value, uid: &str) -> Seen {
    match group.get("members") {
        Some(Value::Array(_)) if is_member(group, uid) => Seen::Member,
        Some(Value::Array(_)) => Seen::NotMember,
        None | Some(Value::Null) if caps.members_returned == Some(true) => Seen::NotMember,
        _ => Seen::Unknown,
    }
}

/// A user's own `groups`: each group's id and, when given, its display name.
type UserGroups = Vec<(String, Option<String>)>;

/// The user's `groups` (id, display name), when the peer serves the attribute.
fn user_groups(user: &Value) -> Option<UserGroups> {
    let gs = user.get("groups")?.as_array()?;
    Some(
        gs.iter()
            .filter_map(|g| {
                let id = g.get("value")?.as_str()?.to_owned();
                let name = g.get("display").and_then(Value::as_str).map(str::to_owned);
                Some((id, name))
            })
            .collect(),
    )
}

/// What the user as read says about group `gid`.
fn user_says(user: &Value, gid: &str) -> Seen {
    match user_groups(user) {
        Some(gs) if gs.iter().any(|(id, _)| id == gid) => Seen::Member,
        Some(_) => Seen::NotMember,
        None => Seen::Unknown,
    }
}

impl Scim {
    /// Adds `uid` to group `name` (created when missing), looking the group up again when a
    /// remembered id turns out to be gone: by PATCH `add`, or PUT where PATCH is absent.
    pub(super) async fn add_to_group(
        &self,
        name: &str,
        uid: &str,
    ) -> Result<Effect, ConnectorError> {
        loop {
            let Some((gid, remembered)) = self.group_id(name, true).await? else {
                return Err(ConnectorError::Transient(format!(
                    "group {name:?} not visible yet"
                )));
            };
            let result = self.add_member(&gid, uid).await;
            match result {
                Err(ConnectorError::NotFound(_)) if remembered => {
                    debug!(connector = %self.name, group = name, "remembered group is gone");
                    self.forget_group(name);
                }
                other => return other,
            }
        }
    }

    async fn add_member(&self, gid: &str, uid: &str) -> Result<Effect, ConnectorError> {
        let caps = self.caps().await?;
        if !self.forms.patch_refused(caps) {
            let ops = json!([{ "op": "add", "path": "members", "value": [{ "value": uid }] }]);
            let done = |g: &Value| is_member(g, uid);
            match self
                .patch(
                    "add group member",
                    ("Groups", gid),
                    ops,
                    Guard::None,
                    done,
                    None,
                )
                .await?
            {
                Some(e) => return Ok(e),
                None => self.forms.refuse_patch(),
            }
        }
        let already = AtomicBool::new(false);
        self.put("add group member", "Groups", gid, |g| {
            let mut members = self.members_for_put(caps, g)?;
            if members
                .iter()
                .any(|m| m.get("value").and_then(Value::as_str) == Some(uid))
            {
                already.store(true, Ordering::Relaxed);
            } else {
                members.push(json!({ "value": uid }));
            }
            g["members"] = Value::Array(members);
            Ok(())
        })
        .await?;
        Ok(if already.into_inner() {
            Effect::AlreadyInState
        } else {
            Effect::Applied
        })
    }

    /// The members a PUT must carry: the group's as read, or none where the schema says an
    /// absent `members` means none; otherwise a PUT would drop members it cannot see.
    fn members_for_put(&self, caps: &Caps, g: &Value) -> Result<Vec<Value>, ConnectorError> {
        match g.get("members") {
            Some(Value::Array(m)) => Ok(m.clone()),
            None | Some(Value::Null) if caps.members_returned == Some(true) => Ok(Vec::new()),
            _ => Err(ConnectorError::Unverifiable(
                "the peer has no PATCH and does not show the group's members, so a PUT of the \
                 group would drop members it cannot see"
                    .to_owned(),
            )),
        }
    }

    /// Removes user `u` from group `name`. "Already" only when the group is not in the
    /// complete listing (nor in the user's `groups`), or a read of the group (and the user's
    /// `groups`, where served) shows the user out of it; after a removal the same reads must
    /// show it gone, else "could not verify".
    pub(super) async fn remove_from_group(
        &self,
        name: &str,
        u: &Found,
    ) -> Result<Effect, ConnectorError> {
        loop {
            let (gid, remembered) = match self.group_id(name, false).await? {
                Some(g) => g,
                None => {
                    // No group of that name in the listing: the user's own `groups` may
                    // still name one (a listing that hides it).
                    let named = user_groups(&u.body).and_then(|gs| {
                        gs.into_iter()
                            .find(|(_, d)| d.as_deref() == Some(name))
                            .map(|(id, _)| id)
                    });
                    match named {
                        Some(id) => (id, false),
                        None => return Ok(Effect::AlreadyInState),
                    }
                }
            };
            match self.remove_member(name, &gid, u).await {
                Err(ConnectorError::NotFound(_)) if remembered => {
                    debug!(connector = %self.name, group = name, "remembered group is gone");
                    self.forget_group(name);
                }
                other => return other,
            }
        }
    }

    /// What the reads of group `gid` and (where it serves `groups`) of the user say now:
    /// `None` when the group is gone.
    async fn membership_now(
        &self,
        gid: &str,
        u: &Found,
        user_serves_groups: bool,
        answered: Option<&Value>,
    ) -> Result<Option<(Seen, Seen)>, ConnectorError> {
        let caps = self.caps().await?;
        // Both reads at once: the confirmation costs one round trip, not two.
        let user_read = async {
            if user_serves_groups {
                self.get("Users", &u.id).await.map(|now| match now {
                    Some(now) => user_says(&now.body, gid),
                    None => Seen::NotMember,
                })
            } else {
                Ok(Seen::Unknown)
            }
        };
        // The group as the PATCH answered it (RFC 7644 §3.5.2: the whole resource after the
        // change) is the provider's own read; without one, the group is read again.
        let from_answer = answered
            .filter(|g| g.get("id").and_then(Value::as_str) == Some(gid))
            .map(|g| group_says(caps, g, &u.id))
            .filter(|s| *s != Seen::Unknown);
        let group_read = async {
            match from_answer {
                Some(seen) => Ok(Some(seen)),
                None => Ok::<_, ConnectorError>(
                    self.get("Groups", gid)
                        .await?
                        .map(|g| group_says(caps, &g.body, &u.id)),
                ),
            }
        };
        let (by_group, by_user) = tokio::try_join!(group_read, user_read)?;
        Ok(by_group.map(|g| (g, by_user)))
    }

    async fn remove_member(
        &self,
        name: &str,
        gid: &str,
        u: &Found,
    ) -> Result<Effect, ConnectorError> {
        let uid = u.id.as_str();
        let caps = self.caps().await?;
        let serves_groups = user_groups(&u.body).is_some();
        // Where the user as just read lists the group, the membership is there to remove;
        // otherwise the group is read first, so that "already" rests on what it shows.
        if user_says(&u.body, gid) != Seen::Member {
            let Some(g) = self.get("Groups", gid).await? else {
                return Err(ConnectorError::NotFound(format!("group {name:?} is gone")));
            };
            let before = (group_says(caps, &g.body, uid), user_says(&u.body, gid));
            if matches!(
                before,
                (Seen::NotMember, Seen::NotMember | Seen::Unknown)
                    | (Seen::Unknown, Seen::NotMember)
            ) {
                return Ok(Effect::AlreadyInState);
            }
        }
        let mut i = self.forms.first_removal(caps);
        while i < REMOVALS.len() {
            let form = REMOVALS[i];
            let Some(answered) = self.send_removal(form, gid, uid).await? else {
                i += 1;
                continue;
            };
            match self
                .membership_now(gid, u, serves_groups, answered.as_ref())
                .await?
            {
                None | Some((Seen::NotMember, Seen::NotMember | Seen::Unknown)) => {
                    self.forms.removal_worked(i);
                    return Ok(Effect::Applied);
                }
                Some((Seen::Unknown, Seen::NotMember)) => {
                    self.forms.removal_worked(i);
                    return Ok(Effect::Applied);
                }
                Some((Seen::Unknown, Seen::Unknown)) => {
                    return Err(ConnectorError::Unverifiable(format!(
                        "the peer accepted the removal from group {name:?}, but shows neither \
                         the group's members nor the user's groups, so it cannot be confirmed"
                    )));
                }
                Some((Seen::NotMember, Seen::Member)) | Some((Seen::Member, Seen::NotMember)) => {
                    return Err(ConnectorError::Unverifiable(format!(
                        "after the removal from group {name:?} the peer's reads disagree: the \
                         group's members and the user's groups say different things"
                    )));
                }
                Some(_) => {
                    warn!(connector = %self.name, group = name, ?form,
                        "the peer accepted a member removal but still lists the member");
                    i += 1;
                }
            }
        }
        Err(ConnectorError::Unverifiable(format!(
            "the peer still lists the user in group {name:?} after every form of removal it \
             accepted"
        )))
    }

    /// Sends one form of removal: `None` when the peer refuses that form, else the group as
    /// the answer shows it (if it does).
    async fn send_removal(
        &self,
        form: Removal,
        gid: &str,
        uid: &str,
    ) -> Result<Option<Option<Value>>, ConnectorError> {
        let what = "remove group member";
        let ops = match form {
            Removal::PathFilter => {
                json!([{ "op": "remove", "path": format!("members[value eq {}]", super::quote(uid)) }])
            }
            Removal::MembersValue => {
                json!([{ "op": "remove", "path": "members", "value": [{ "value": uid }] }])
            }
            Removal::Put => {
                let caps = self.caps().await?;
                self.put(what, "Groups", gid, |g| {
                    let mut members = self.members_for_put(caps, g)?;
                    members.retain(|m| m.get("value").and_then(Value::as_str) != Some(uid));
                    g["members"] = Value::Array(members);
                    Ok(())
                })
                .await?;
                return Ok(Some(None));
            }
        };
        let body = json!({ "schemas": [super::PATCH_SCHEMA], "Operations": ops });
        let path = format!("Groups/{gid}");
        Ok(self
            .call_form(what, Method::PATCH, &path, Some(&body), None)
            .await?
            .map(|r| r.body))
    }

    /// The display names of the groups user `u` is in: what a trusted member search finds
    /// ([`super::search`]) where the user's `groups` (if served) name the same; else every
    /// group of the complete listing whose members include the user, and every group the
    /// user's `groups` name. "Could not verify" when neither shows memberships.
    pub(super) async fn groups_of(&self, u: &Found) -> Result<Vec<String>, ConnectorError> {
        let caps = self.caps().await?;
        let searching = self.member_search_trusted().await?;
        let (from_user, searched) = self.user_groups_and_search(u, searching).await?;
        if let Some(hits) = searched {
            if let Some(names) = believed_search(from_user.as_ref(), hits) {
                return Ok(names);
            }
            debug!(connector = %self.name, "the user's groups and the member search differ; listing every group");
        }
        let has_own = from_user.is_some();
        let (mut names, blind) = self.listed_groups(caps, searching, &u.id, has_own).await?;
        let unseen = self.read_blind(caps, &u.id, blind, &mut names).await?;
        match &from_user {
            Some(gs) => self.add_user_groups(gs, &mut names).await?,
            None if !unseen.is_empty() => {
                return Err(ConnectorError::Unverifiable(format!(
                    "the peer shows no members for {} group(s) ({}) and no groups on the user",
                    unseen.len(),
                    unseen.join(", ")
                )));
            }
            None => {}
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The user's `groups` (as just read in `u`, else from a fresh read unless the provider
    /// was seen not to serve them) and, when `searching`, what a member search finds; notes a
    /// provider that does not serve `groups` and a search that failed.
    async fn user_groups_and_search(
        &self,
        u: &Found,
        searching: bool,
    ) -> Result<(Option<UserGroups>, Option<Vec<(String, String)>>), ConnectorError> {
        let ask_user =
            user_groups(&u.body).is_none() && !self.user_groups_unserved.load(Ordering::Relaxed);
        let (user, searched) = tokio::try_join!(
            async {
                match ask_user {
                    true => self.get("Users", &u.id).await,
                    false => Ok(None),
                }
            },
            async {
                match searching {
                    true => self.groups_by_search(&u.id).await,
                    false => Ok(None),
                }
            }
        )?;
        let from_user = match &user {
            Some(now) => user_groups(&now.body),
            None => user_groups(&u.body),
        };
        if ask_user && user.is_some() && from_user.is_none() {
            self.user_groups_unserved.store(true, Ordering::Relaxed);
        }
        if searching && searched.is_none() {
            self.distrust_member_search();
        }
        Ok((from_user, searched))
    }

    /// The groups of the complete listing that show `uid` as a member, and those whose
    /// listing shows no members (id, name). When the listing fails, the user's own groups
    /// (`has_own`) stand; without them that is "could not verify".
    async fn listed_groups(
        &self,
        caps: &Caps,
        searching: bool,
        uid: &str,
        has_own: bool,
    ) -> Result<(Vec<String>, Vec<(Option<Value>, String)>), ConnectorError> {
        let mut names = Vec::new();
        let mut blind = Vec::new();
        match self.list("Groups", None, None).await {
            Ok(groups) => {
                if !searching {
                    self.try_member_search(caps, &groups, uid).await;
                }
                for g in &groups {
                    let name = g.get("displayName").and_then(Value::as_str).unwrap_or("?");
                    match group_says(caps, g, uid) {
                        Seen::Member => names.push(name.to_owned()),
                        Seen::NotMember => {}
                        Seen::Unknown => blind.push((g.get("id").cloned(), name.to_owned())),
                    }
                }
            }
            Err(e) if has_own => {
                debug!(connector = %self.name, error = %e, "cannot list groups; the user's groups stand");
            }
            Err(e) => {
                return Err(ConnectorError::Unverifiable(format!(
                    "cannot list the groups, and the user carries no groups: {e}"
                )));
            }
        }
        Ok((names, blind))
    }

    /// A listing may leave members out: reads each such group on its own, adding those that
    /// show `uid` to `names`; returns the names of those that still show no members.
    async fn read_blind(
        &self,
        caps: &Caps,
        uid: &str,
        blind: Vec<(Option<Value>, String)>,
        names: &mut Vec<String>,
    ) -> Result<Vec<String>, ConnectorError> {
        let mut unseen = Vec::new();
        for (id, name) in blind {
            let Some(id) = id.as_ref().and_then(Value::as_str) else {
                unseen.push(name);
                continue;
            };
            match self
                .get("Groups", id)
                .await?
                .map(|g| group_says(caps, &g.body, uid))
            {
                Some(Seen::Member) => names.push(name),
                Some(Seen::Unknown) => unseen.push(name),
                _ => {}
            }
        }
        Ok(unseen)
    }

    /// Adds the groups the user's own `groups` name to `names`, by display name (read from
    /// the group when the user's entry gives none; a group gone meanwhile is skipped).
    async fn add_user_groups(
        &self,
        gs: &UserGroups,
        names: &mut Vec<String>,
    ) -> Result<(), ConnectorError> {
        for (id, display) in gs {
            let name = match display {
                Some(d) => d.clone(),
                None => match self.get("Groups", id).await? {
                    Some(g) => g.body["displayName"].as_str().unwrap_or(id).to_owned(),
                    None => continue,
                },
            };
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(())
    }
}

/// A search seen to agree with a complete listing is believed (its group names, sorted),
/// unless the user's own `groups` say otherwise: then the complete listing decides (`None`).
fn believed_search(
    from_user: Option<&UserGroups>,
    hits: Vec<(String, String)>,
) -> Option<Vec<String>> {
    use super::search::sorted_ids;
    let agrees = from_user.is_none_or(|gs| {
        sorted_ids(gs.iter().map(|(id, _)| id.as_str()))
            == sorted_ids(hits.iter().map(|(id, _)| id.as_str()))
    });
    if !agrees {
        return None;
    }
    let mut names: Vec<String> = hits.into_iter().map(|(_, n)| n).collect();
    names.sort();
    names.dedup();
    Some(names)
}

//! Reconciliation, pure: what a connector's listing and the records disagree on. The engine
//! reads the listing; [`findings`] classifies it; the service stores, reports and acts.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::model::*;
use super::ports::{ConnectorError, Listed};

/// What a connector's listing came to.
#[derive(Debug, Clone)]
pub struct Listing {
    /// Which connector.
    pub connector: ConnectorName,
    /// Every account, when it can list them (`Ok(None)`: it lists members only).
    pub accounts: Result<Option<Vec<Listed>>, ConnectorError>,
    /// The members of each entitlement the catalog names on it.
    pub members: Vec<(String, Result<Vec<Listed>, ConnectorError>)>,
}

impl Listing {
    /// Whether every part was read in full.
    pub fn complete(&self) -> bool {
        self.accounts.is_ok() && self.members.iter().all(|(_, m)| m.is_ok())
    }

    /// The parts that could not be read, each with why.
    pub fn unread(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = &self.accounts {
            out.push(format!("accounts: {e}"));
        }
        for (ent, m) in &self.members {
            if let Err(e) = m {
                out.push(format!("members of {ent}: {e}"));
            }
        }
        out
    }
}

/// What a finding is about, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The class.
    pub class: DriftClass,
    /// The target's id of the account or member.
    pub account: String,
    /// The person, when one matched.
    pub person: Option<Handle>,
    /// The app, when any.
    pub app: Option<AppName>,
    /// In words.
    pub detail: String,
}

/// The records a listing is compared with.
pub struct Records<'a> {
    /// The catalog's apps on this connector.
    pub apps: Vec<&'a App>,
    /// Everyone.
    pub people: &'a [Person],
    /// Live grants (pending, active, revoking) of the people, any app.
    pub grants: &'a [Grant],
    /// (person, app) with a connector action queued or running (app None: an account action):
    /// never drift.
    pub in_flight: &'a HashSet<(Handle, Option<AppName>)>,
}

/// Who a listed account or member is, by login (a handle) or e-mail.
struct People<'a> {
    by_handle: HashMap<&'a str, &'a Person>,
    by_email: HashMap<String, &'a Person>,
}

impl<'a> People<'a> {
    fn new(people: &'a [Person]) -> Self {
        Self {
            by_handle: people.iter().map(|p| (p.handle.as_str(), p)).collect(),
            by_email: people
                .iter()
                .map(|p| (p.email.as_str().to_lowercase(), p))
                .collect(),
        }
    }

    fn of(&self, l: &Listed) -> Option<&'a Person> {
        let login = l.login.as_deref().map(str::to_lowercase);
        login
            .as_deref()
            .and_then(|x| self.by_handle.get(x).or_else(|| self.by_email.get(x)))
            .or_else(|| {
                l.emails
                    .iter()
                    .find_map(|e| self.by_email.get(&e.to_lowercase()))
            })
            .copied()
    }
}

/// Every disagreement between `listing` and `r`. A part that could not be read yields no
/// finding that its absence would prove (a partial list is never evidence of absence).
pub fn findings(listing: &Listing, r: &Records<'_>) -> Vec<Seen> {
    let people = People::new(r.people);
    let busy = |p: &Handle, a: Option<&AppName>| {
        r.in_flight.contains(&(p.clone(), None))
            || a.is_some_and(|a| r.in_flight.contains(&(p.clone(), Some(a.clone()))))
    };
    let mut out = Vec::new();
    let accounts: HashMap<&str, &Listed> = match &listing.accounts {
        Ok(Some(a)) => a.iter().map(|l| (l.id.as_str(), l)).collect(),
        _ => HashMap::new(),
    };
    if let Ok(Some(all)) = &listing.accounts {
        out.extend(account_findings(all, &people, &busy));
    }
    let held: HashSet<(&str, &str)> = r
        .grants
        .iter()
        .map(|g| (g.person.as_str(), g.app.as_str()))
        .collect();
    // Whether an account that could not be read may be who a bare member id is.
    let accounts_unread = listing.accounts.is_err();
    for (entitlement, members) in &listing.members {
        let Ok(members) = members else { continue };
        member_findings(
            entitlement,
            members,
            (&accounts, accounts_unread),
            &people,
            &held,
            r,
            &busy,
            &mut out,
        );
    }
    out.sort_by(|a, b| (a.class, &a.account, &a.app).cmp(&(b.class, &b.account, &b.app)));
    out.dedup_by(|a, b| a.class == b.class && a.account == b.account && a.app == b.app);
    out
}

/// Who a listing shows in each entitlement (by handle), or why that part tells nothing: it
/// could not be read, or a member known only by an id whose account could not be read may
/// be anyone.
pub fn members_by_entitlement(
    listing: &Listing,
    people: &[Person],
) -> HashMap<String, Result<HashSet<Handle>, String>> {
    let people = People::new(people);
    let accounts: HashMap<&str, &Listed> = match &listing.accounts {
        Ok(Some(a)) => a.iter().map(|l| (l.id.as_str(), l)).collect(),
        _ => HashMap::new(),
    };
    let mut out = HashMap::new();
    for (entitlement, members) in &listing.members {
        let seen = match members {
            Err(e) => Err(e.to_string()),
            Ok(members) => {
                let mut who = HashSet::new();
                let mut bare = false;
                for m in members {
                    let l = accounts.get(m.id.as_str()).copied().unwrap_or(m);
                    if listing.accounts.is_err() && l.login.is_none() && l.emails.is_empty() {
                        bare = true;
                    }
                    who.extend(people.of(l).map(|p| p.handle.clone()));
                }
                if bare {
                    Err(
                        "its members could not all be identified (the accounts were not read)"
                            .to_owned(),
                    )
                } else {
                    Ok(who)
                }
            }
        };
        out.insert(entitlement.clone(), seen);
    }
    out
}

/// The findings of one entitlement's members: orphans (nobody, or someone who left),
/// unrecorded memberships, and grants the members do not show (missing). A member known only
/// by an id whose account could not be read is neither an orphan nor proof of a missing one.
#[allow(clippy::too_many_arguments)]
fn member_findings(
    entitlement: &str,
    members: &[Listed],
    (accounts, accounts_unread): (&HashMap<&str, &Listed>, bool),
    people: &People<'_>,
    held: &HashSet<(&str, &str)>,
    r: &Records<'_>,
    busy: &dyn Fn(&Handle, Option<&AppName>) -> bool,
    out: &mut Vec<Seen>,
) {
    let apps: Vec<&&App> = r
        .apps
        .iter()
        .filter(|a| a.entitlement == entitlement)
        .collect();
    let Some(app) = apps.first() else { return };
    let mut present: HashSet<&str> = HashSet::new();
    let mut unknown = false;
    for m in members {
        // A member's identity comes from its account when the accounts were listed.
        let who = accounts.get(m.id.as_str()).copied().unwrap_or(m);
        if accounts_unread && who.login.is_none() && who.emails.is_empty() {
            // A bare id (SCIM) whose account could not be read: it may be anyone.
            unknown = true;
            continue;
        }
        let Some(p) = people.of(who) else {
            out.push(seen(
                DriftClass::Orphan,
                &m.id,
                None,
                Some(&app.name),
                format!("{} is in {entitlement} and matches nobody", label(who)),
            ));
            continue;
        };
        present.insert(p.handle.as_str());
        if busy(&p.handle, Some(&app.name)) {
            continue;
        }
        if p.status != PersonStatus::Active {
            out.push(seen(
                DriftClass::Orphan,
                &m.id,
                Some(&p.handle),
                Some(&app.name),
                format!(
                    "{} ({}, who has left) is still in {entitlement}",
                    p.name,
                    label(who)
                ),
            ));
        } else if !apps
            .iter()
            .any(|a| held.contains(&(p.handle.as_str(), a.name.as_str())))
        {
            out.push(seen(
                DriftClass::Unrecorded,
                &m.id,
                Some(&p.handle),
                Some(&app.name),
                format!(
                    "{} is in {entitlement} with no grant of {}",
                    p.name, app.display
                ),
            ));
        }
    }
    // An unknown member may be a holder: then nobody is proved missing.
    if !unknown {
        missing(entitlement, &apps, &present, r, busy, out);
    }
}

/// Active grants of the entitlement's apps whose holders the members do not show.
fn missing(
    entitlement: &str,
    apps: &[&&App],
    present: &HashSet<&str>,
    r: &Records<'_>,
    busy: &dyn Fn(&Handle, Option<&AppName>) -> bool,
    out: &mut Vec<Seen>,
) {
    let Some(app) = apps.first() else { return };
    for g in r
        .grants
        .iter()
        .filter(|g| g.state == GrantState::Active && apps.iter().any(|a| a.name == g.app))
    {
        if !present.contains(g.person.as_str()) && !busy(&g.person, Some(&g.app)) {
            out.push(seen(
                DriftClass::Missing,
                g.person.as_str(),
                Some(&g.person),
                Some(&g.app),
                format!(
                    "{} holds {} by the records, but is not in {entitlement}",
                    g.person, app.display
                ),
            ));
        }
    }
}

/// Orphan and ambiguous accounts, from the list of every account.
fn account_findings(
    all: &[Listed],
    people: &People<'_>,
    busy: &dyn Fn(&Handle, Option<&AppName>) -> bool,
) -> Vec<Seen> {
    let mut out = Vec::new();
    let mut by_person: BTreeMap<&str, Vec<&Listed>> = BTreeMap::new();
    for a in all {
        match people.of(a) {
            None if a.active != Some(false) => out.push(seen(
                DriftClass::Orphan,
                &a.id,
                None,
                None,
                format!("account {} matches nobody", label(a)),
            )),
            None => {}
            Some(p) => {
                by_person.entry(p.handle.as_str()).or_default().push(a);
                if p.status != PersonStatus::Active
                    && a.active != Some(false)
                    && !busy(&p.handle, None)
                {
                    out.push(seen(
                        DriftClass::Orphan,
                        &a.id,
                        Some(&p.handle),
                        None,
                        format!("{} has left, but account {} is enabled", p.name, label(a)),
                    ));
                }
            }
        }
    }
    for (h, accts) in by_person.into_iter().filter(|(_, a)| a.len() > 1) {
        let ids: Vec<&str> = accts.iter().map(|a| a.id.as_str()).collect();
        let handle = Handle::parse(h).ok();
        out.push(seen(
            DriftClass::Ambiguous,
            &ids.join(","),
            handle.as_ref(),
            None,
            format!("{h} matches {} accounts: {}", ids.len(), ids.join(", ")),
        ));
    }
    out
}

fn seen(
    class: DriftClass,
    account: &str,
    person: Option<&Handle>,
    app: Option<&AppName>,
    detail: String,
) -> Seen {
    Seen {
        class,
        account: account.to_owned(),
        person: person.cloned(),
        app: app.cloned(),
        detail,
    }
}

/// An account or member in words: its login, else an e-mail, else its id.
fn label(l: &Listed) -> String {
    l.login
        .clone()
        .or_else(|| l.emails.first().cloned())
        .unwrap_or_else(|| l.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(h: &str) -> Person {
        Person {
            handle: Handle::parse(h).unwrap(),
            name: h.to_uppercase(),
            email: Email::parse(&format!("{h}@acme.test")).unwrap(),
            department: "X".into(),
            role: RoleName::parse("r").unwrap(),
            manager: None,
            discord_id: None,
            status: PersonStatus::Active,
            timezone: None,
        }
    }

    fn app() -> App {
        App {
            name: AppName::parse("figma").unwrap(),
            display: "Figma".into(),
            connector: ConnectorName::parse("design").unwrap(),
            entitlement: "Figma Editors".into(),
            owners: vec![],
            approvals: vec![],
            max_duration: None,
            default_duration: None,
            requestable: true,
            reason_pattern: None,
            reason_hint: None,
            step_up: false,
            break_glass: None,
            privileged: false,
        }
    }

    fn id_only(id: &str) -> Listed {
        Listed {
            id: id.into(),
            ..Listed::default()
        }
    }

    fn account(id: &str, email: &str) -> Listed {
        Listed {
            id: id.into(),
            login: Some(email.into()),
            emails: vec![email.into()],
            active: Some(true),
        }
    }

    /// Alice holds figma; the group shows two bare ids (SCIM), hers ("u1") and another.
    fn classes(accounts: Result<Option<Vec<Listed>>, ConnectorError>) -> Vec<(DriftClass, String)> {
        let (people, a) = ([person("alice")], app());
        let grants = [Grant {
            id: GrantId(1),
            person: Handle::parse("alice").unwrap(),
            app: a.name.clone(),
            source: GrantSource::Birthright,
            state: GrantState::Active,
            granted_at: None,
            expires_at: None,
            warned: false,
        }];
        let in_flight = HashSet::new();
        let r = Records {
            apps: vec![&a],
            people: &people,
            grants: &grants,
            in_flight: &in_flight,
        };
        let listing = Listing {
            connector: a.connector.clone(),
            accounts,
            members: vec![(
                "Figma Editors".into(),
                Ok(vec![id_only("u1"), id_only("u9")]),
            )],
        };
        findings(&listing, &r)
            .into_iter()
            .map(|s| (s.class, s.account))
            .collect()
    }

    #[test]
    fn bare_member_ids_are_nobody_only_when_the_accounts_say_so() {
        // Read in full: u1 is alice (nothing to say), u9 nobody's (as an account and as a member).
        let all = Ok(Some(vec![
            account("u1", "alice@acme.test"),
            account("u9", "ghost@elsewhere.test"),
        ]));
        let orphan = (DriftClass::Orphan, "u9".to_owned());
        assert_eq!(classes(all), [orphan.clone(), orphan]);
        // The accounts could not be read: the ids may be anyone, alice among them, so neither
        // an orphan nor a missing grant follows.
        let unread = Err(ConnectorError::Unverifiable("stopped at 2 of 3".into()));
        assert_eq!(classes(unread), []);
        // A connector that lists no accounts at all (`Ok(None)`) names its members itself:
        // what they show is all there is, so the absence of alice is concluded as before.
        let mut r = classes(Ok(None));
        r.sort();
        assert!(
            r.contains(&(DriftClass::Missing, "alice".to_owned())),
            "{r:?}"
        );
    }

    fn listed_as(id: &str, login: &str, email: &str) -> Listed {
        Listed {
            id: id.into(),
            login: Some(login.into()),
            emails: vec![email.into()],
            active: Some(true),
        }
    }

    fn grant_of(who: &str) -> Grant {
        Grant {
            id: GrantId(1),
            person: Handle::parse(who).unwrap(),
            app: AppName::parse("figma").unwrap(),
            source: GrantSource::Birthright,
            state: GrantState::Active,
            granted_at: None,
            expires_at: None,
            warned: false,
        }
    }

    #[test]
    fn every_class_and_nothing_from_in_flight_or_unread_parts() {
        let people = vec![
            person("ann"),
            person("bo"),
            Person {
                status: PersonStatus::Offboarded,
                ..person("cy")
            },
            person("di"),
        ];
        let grants = vec![grant_of("bo"), grant_of("di")];
        let a = app();
        let mut busy = HashSet::new();
        let accounts = vec![
            listed_as("1", "ann", "ann@acme.test"),
            listed_as("2", "bo", "bo@acme.test"),
            listed_as("3", "cy", "cy@acme.test"),
            listed_as("4", "ghost", "ghost@else.test"),
            listed_as("5", "ann2", "ANN@acme.test"),
        ];
        let listing = Listing {
            connector: ConnectorName::parse("c").unwrap(),
            accounts: Ok(Some(accounts)),
            members: vec![(
                "Figma Editors".into(),
                Ok(vec![
                    Listed {
                        id: "1".into(),
                        ..Listed::default()
                    },
                    Listed {
                        id: "3".into(),
                        ..Listed::default()
                    },
                    Listed {
                        id: "4".into(),
                        ..Listed::default()
                    },
                ]),
            )],
        };
        let run = |busy: &HashSet<(Handle, Option<AppName>)>, l: &Listing| {
            let r = Records {
                apps: vec![&a],
                people: &people,
                grants: &grants,
                in_flight: busy,
            };
            findings(l, &r)
                .into_iter()
                .map(|s| {
                    format!(
                        "{} {} {}",
                        s.class.as_str(),
                        s.account,
                        s.person.map(|p| p.to_string()).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
        };
        let all = run(&busy, &listing);
        for want in [
            "unrecorded 1 ann",
            "missing bo bo",
            "missing di di",
            "ambiguous 1,5 ann",
            "orphan 3 cy",
            "orphan 4 ",
        ] {
            assert!(all.iter().any(|x| x == want), "{want} in {all:?}");
        }
        // In flight: ann's wiki grant being provisioned, bo's revoke running.
        busy.insert((
            Handle::parse("ann").unwrap(),
            Some(AppName::parse("figma").unwrap()),
        ));
        busy.insert((
            Handle::parse("bo").unwrap(),
            Some(AppName::parse("figma").unwrap()),
        ));
        let all = run(&busy, &listing);
        assert!(
            !all.iter()
                .any(|x| x.contains(" ann") && x.starts_with("unrecorded")),
            "{all:?}"
        );
        assert!(!all.iter().any(|x| x.starts_with("missing bo")), "{all:?}");
        // The members could not be read: no missing, no unrecorded; accounts still count.
        let partial = Listing {
            members: vec![(
                "Figma Editors".into(),
                Err(ConnectorError::Transient("cut".into())),
            )],
            ..listing.clone()
        };
        let all = run(&HashSet::new(), &partial);
        assert!(
            all.iter()
                .all(|x| !x.starts_with("missing") && !x.starts_with("unrecorded")),
            "{all:?}"
        );
        assert!(!partial.complete());
        assert_eq!(partial.unread().len(), 1);
    }
}

//! Who may do what: approvers of a step and their fallbacks, the self-approval ban, durations,
//! reason rules and IT-only commands. Pure functions over the catalog and the directory.

use std::collections::HashMap;

use super::model::*;

/// Everyone in the directory, by handle: what policy reads (named so it is not mistaken for
/// the `directory` connector).
pub type PeopleByHandle = HashMap<Handle, Person>;

/// Whether `h` may act as an approver at all: known and still employed.
fn active(dir: &PeopleByHandle, h: &Handle) -> bool {
    dir.get(h).is_some_and(|p| p.status == PersonStatus::Active)
}

/// The people who may decide a step under `rule`, after the rules of the example organisation:
/// never the requester, never someone who decided an earlier step; when the rule names nobody
/// left, the IT admins (other than those), then the requester's manager. Empty: nobody is
/// eligible ("no eligible approver").
pub fn approvers_for(
    org: &Org,
    dir: &PeopleByHandle,
    rule: &ApprovalRule,
    requester: &Person,
    app: &App,
    earlier_deciders: &[Handle],
) -> Vec<Handle> {
    let eligible =
        |h: &Handle| h != &requester.handle && !earlier_deciders.contains(h) && active(dir, h);
    let named: Vec<Handle> = match rule {
        ApprovalRule::Manager => requester.manager.iter().cloned().collect(),
        ApprovalRule::Owner => app.owners.clone(),
        ApprovalRule::ItAdmin => org.it_admins.clone(),
        ApprovalRule::Person(h) => vec![h.clone()],
    };
    let first: Vec<Handle> = named.into_iter().filter(|h| eligible(h)).collect();
    if !first.is_empty() {
        return first;
    }
    fallback(org, requester, &eligible)
}

/// Where a step goes when its own approvers cannot take it: the IT admins, then the
/// requester's manager.
fn fallback(org: &Org, requester: &Person, eligible: &dyn Fn(&Handle) -> bool) -> Vec<Handle> {
    let it: Vec<Handle> = org
        .it_admins
        .iter()
        .filter(|h| eligible(h))
        .cloned()
        .collect();
    if !it.is_empty() {
        return it;
    }
    requester
        .manager
        .iter()
        .filter(|h| eligible(h))
        .cloned()
        .collect()
}

/// Where an escalated step goes: the manager of (the first of) its current approvers, unless
/// that person is the requester or already decided; otherwise the IT admins, then the
/// requester's manager, as for any step without approver. Never the current approvers again.
pub fn escalation_targets(
    org: &Org,
    dir: &PeopleByHandle,
    current: &[Handle],
    requester: &Person,
    earlier_deciders: &[Handle],
) -> Vec<Handle> {
    let eligible = |h: &Handle| {
        h != &requester.handle
            && !earlier_deciders.contains(h)
            && !current.contains(h)
            && active(dir, h)
    };
    let managers: Vec<Handle> = current
        .iter()
        .filter_map(|h| dir.get(h).and_then(|p| p.manager.clone()))
        .filter(|h| eligible(h))
        .take(1)
        .collect();
    if !managers.is_empty() {
        return managers;
    }
    fallback(org, requester, &eligible)
}

/// A request's duration shortened to its app's cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortened {
    /// What was asked for (or the app's default).
    pub asked: Span,
    /// The app's cap, which the grant gets.
    pub max: Span,
}

/// The duration a request gets, and how it was shortened when the app's cap shortened it.
pub fn effective_duration(app: &App, asked: Option<Span>) -> (Option<Span>, Option<Shortened>) {
    let wanted = asked.or(app.default_duration);
    match (wanted, app.max_duration) {
        (Some(w), Some(max)) if w > max => (Some(max), Some(Shortened { asked: w, max })),
        (None, Some(max)) => (Some(max), None),
        (w, _) => (w, None),
    }
}

/// A reason that does not match the app's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonMismatch {
    /// The rule (a regular expression).
    pub pattern: String,
    /// The catalog's hint on what a reason looks like, if any.
    pub hint: Option<String>,
}

/// Checks the app's reason rule.
pub fn check_reason(app: &App, reason: Option<&str>) -> Result<(), ReasonMismatch> {
    let Some(pattern) = &app.reason_pattern else {
        return Ok(());
    };
    let reason = reason.unwrap_or("").trim();
    if pattern.is_match(reason) {
        return Ok(());
    }
    Err(ReasonMismatch {
        pattern: pattern.as_str().to_owned(),
        hint: app.reason_hint.clone(),
    })
}

/// A capability: proof that the holder is an IT admin. Only [`it_admin`] makes one, and the
/// admin use cases (`/onboard`, `/offboard`, Done, Retry) take one as an argument, so none of
/// them can be reached without the check (in the manner of lldap's admin handler).
#[derive(Debug, Clone)]
pub struct ItAdmin(Handle);

impl ItAdmin {
    /// The admin's handle.
    pub fn handle(&self) -> &Handle {
        &self.0
    }
}

/// Checks that `who` is an IT admin (from `[organization] it_admins` alone) and active.
pub fn it_admin(org: &Org, who: &Person) -> Option<ItAdmin> {
    (org.is_it_admin(&who.handle) && who.status == PersonStatus::Active)
        .then(|| ItAdmin(who.handle.clone()))
}

/// Whether `viewer` may see `subject`'s access: themselves, their manager, or IT.
pub fn may_view_access(org: &Org, viewer: &Person, subject: &Person) -> bool {
    viewer.handle == subject.handle
        || subject.manager.as_ref() == Some(&viewer.handle)
        || it_admin(org, viewer).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(h: &str, manager: Option<&str>) -> Person {
        Person {
            handle: Handle::parse(h).unwrap(),
            name: h.to_uppercase(),
            email: Email::parse(&format!("{h}@acme.test")).unwrap(),
            department: "X".into(),
            role: RoleName::parse("r").unwrap(),
            manager: manager.map(|m| Handle::parse(m).unwrap()),
            discord_id: None,
            status: PersonStatus::Active,
            timezone: None,
        }
    }

    fn h(s: &str) -> Handle {
        Handle::parse(s).unwrap()
    }

    fn setup() -> (Org, PeopleByHandle, App) {
        let people = [
            person("erin", None),
            person("dana", Some("erin")),
            person("mia", Some("dana")),
            person("bob", Some("erin")),
            person("alice", Some("bob")),
            person("ivy", Some("erin")),
            person("henry", Some("ivy")),
        ];
        let dir: PeopleByHandle = people.into_iter().map(|p| (p.handle.clone(), p)).collect();
        let app = App {
            name: AppName::parse("wordpress").unwrap(),
            display: "WordPress".into(),
            connector: ConnectorName::parse("directory").unwrap(),
            entitlement: "wordpress".into(),
            owners: vec![h("ivy")],
            approvals: vec![ApprovalRule::Manager, ApprovalRule::Owner],
            max_duration: Some(Span::parse("8h").unwrap()),
            default_duration: None,
            requestable: true,
            reason_pattern: Some(regex::Regex::new("^(INC|CHG)-[0-9]+").unwrap()),
            reason_hint: Some("a ticket".into()),
            step_up: false,
            break_glass: None,
            privileged: false,
        };
        let org = Org {
            name: "Acme".into(),
            it_admins: vec![h("dana"), h("mia")],
            workflow: WorkflowSettings::default(),
            apps: vec![app.clone()],
            roles: vec![],
            departments: vec![],
            timezone: Zone::UTC,
            reviews: vec![],
        };
        (org, dir, app)
    }

    #[test]
    fn the_owner_asking_goes_to_it() {
        let (org, dir, app) = setup();
        let ivy = &dir[&h("ivy")];
        let owner = approvers_for(&org, &dir, &ApprovalRule::Owner, ivy, &app, &[h("erin")]);
        assert_eq!(owner, vec![h("dana"), h("mia")]);
    }

    #[test]
    fn no_manager_goes_to_it() {
        let (org, dir, app) = setup();
        let erin = &dir[&h("erin")];
        let step = approvers_for(&org, &dir, &ApprovalRule::Manager, erin, &app, &[]);
        assert_eq!(step, vec![h("dana"), h("mia")]);
    }

    #[test]
    fn an_it_admin_never_approves_their_own() {
        let (org, dir, app) = setup();
        let dana = &dir[&h("dana")];
        let step = approvers_for(&org, &dir, &ApprovalRule::ItAdmin, dana, &app, &[h("erin")]);
        assert_eq!(step, vec![h("mia")]);
    }

    #[test]
    fn last_resort_is_the_manager_then_nobody() {
        let (mut org, dir, app) = setup();
        let alice = &dir[&h("alice")];
        // IT has decided before: the manager is the last resort...
        let s = approvers_for(
            &org,
            &dir,
            &ApprovalRule::ItAdmin,
            alice,
            &app,
            &[h("dana"), h("mia")],
        );
        assert_eq!(s, vec![h("bob")]);
        // ...and when the manager decided too, nobody is left.
        let s = approvers_for(
            &org,
            &dir,
            &ApprovalRule::ItAdmin,
            alice,
            &app,
            &[h("dana"), h("mia"), h("bob")],
        );
        assert!(s.is_empty());
        org.it_admins.clear();
        let s = approvers_for(
            &org,
            &dir,
            &ApprovalRule::Owner,
            &dir[&h("ivy")],
            &app,
            &[h("erin")],
        );
        assert!(s.is_empty(), "ivy's manager erin already decided: {s:?}");
    }

    #[test]
    fn offboarded_people_do_not_approve() {
        let (org, mut dir, app) = setup();
        dir.get_mut(&h("bob")).unwrap().status = PersonStatus::Offboarded;
        let alice = dir[&h("alice")].clone();
        let s = approvers_for(&org, &dir, &ApprovalRule::Manager, &alice, &app, &[]);
        assert_eq!(s, vec![h("dana"), h("mia")]);
    }

    #[test]
    fn escalation_goes_up_then_to_it() {
        let (org, dir, _) = setup();
        let henry = &dir[&h("henry")];
        assert_eq!(
            escalation_targets(&org, &dir, &[h("ivy")], henry, &[]),
            vec![h("erin")]
        );
        let alice = &dir[&h("alice")];
        // bob's manager erin decided an earlier step: IT instead.
        assert_eq!(
            escalation_targets(&org, &dir, &[h("bob")], alice, &[h("erin")]),
            vec![h("dana"), h("mia")]
        );
    }

    #[test]
    fn durations_are_capped_with_a_note() {
        let (_, _, app) = setup();
        let (d, note) = effective_duration(&app, Some(Span::parse("2d").unwrap()));
        assert_eq!(d, Some(Span::parse("8h").unwrap()));
        assert_eq!(note.unwrap().max, Span::parse("8h").unwrap());
        let (d, note) = effective_duration(&app, Some(Span::parse("2h").unwrap()));
        assert_eq!(d, Some(Span::parse("2h").unwrap()));
        assert!(note.is_none());
    }

    #[test]
    fn reasons_follow_the_pattern() {
        let (_, _, app) = setup();
        assert!(check_reason(&app, Some("INC-42 outage")).is_ok());
        let e = check_reason(&app, Some("because")).unwrap_err();
        assert!(e.hint.unwrap().contains("a ticket"));
        assert!(check_reason(&app, None).is_err());
    }
}

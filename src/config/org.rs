//! `[organization]` and the people: `[[person]]` records and the rows of `people_file`, with
//! the checks across them (unique emails and Discord ids, no manager cycles).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use toml::Table;

use super::walker::{Seen, Walker};
use super::{ConfigErrors, Cx, Rec, RefKind, join, keys, parse_people_csv};
use crate::core::model::{Email, Handle, Person, PersonStatus, RoleName, Zone};

/// What `[organization]` holds besides the catalog.
pub(super) struct OrgHead {
    pub(super) name: Option<String>,
    pub(super) it_admins: Vec<Handle>,
    /// `people_file` as written (for problem paths), and resolved against the base folder.
    pub(super) people_file: Option<(String, PathBuf)>,
    pub(super) timezone: Zone,
}

impl Walker<'_, '_> {
    /// `[organization]`, which is required.
    pub(super) fn organization(&mut self, root: &Rec) -> OrgHead {
        let cx = &mut *self.cx;
        let mut head = OrgHead {
            name: None,
            it_admins: Vec::new(),
            people_file: None,
            timezone: Zone::UTC,
        };
        let Some(o) = root.table(cx, "organization") else {
            if !root.has("organization") {
                cx.err(
                    "organization",
                    "required table [organization] is missing (it needs at least a name)",
                );
            }
            return head;
        };
        o.check_keys(cx, &keys::keys("organization"));
        match o.req_string(cx, "name").map(str::trim) {
            Some("") => cx.err(o.at("name"), "must not be empty"),
            Some(n) => head.name = Some(n.to_owned()),
            None => {}
        }
        for (p, s) in o.strings(cx, "it_admins").unwrap_or_default() {
            match Handle::parse(s) {
                Ok(h) => {
                    cx.refer(p, RefKind::Person, s);
                    head.it_admins.push(h);
                }
                Err(e) => cx.err(p, e.0),
            }
        }
        if let Some(f) = o.string(cx, "people_file") {
            if f.trim().is_empty() {
                cx.err(o.at("people_file"), "must not be empty");
            } else {
                head.people_file = Some((f.to_owned(), self.base_dir.join(f)));
            }
        }
        if let Some(tz) = o.string(cx, "timezone") {
            match Zone::parse(tz) {
                Ok(z) => head.timezone = z,
                Err(e) => cx.err(o.at("timezone"), e.0),
            }
        }
        head
    }

    /// `[[person]]` then the people file: each person with the path it is defined at, and
    /// every handle defined (also those of people with problems).
    pub(super) fn people(
        &mut self,
        root: &Rec,
        people_file: Option<&(String, PathBuf)>,
    ) -> (Vec<(String, Person)>, HashSet<String>) {
        let mut people: Vec<(String, Person)> = Vec::new();
        let mut seen_handles = Seen::new();
        for (i, t) in root.records(self.cx, "person") {
            if let Some(p) = self.person(i, t, &mut seen_handles) {
                people.push(p);
            }
        }
        if let Some((shown, path)) = people_file {
            self.people_csv(shown, path, &mut people, &mut seen_handles);
        }
        let known_handles: HashSet<String> = seen_handles.into_keys().collect();
        self.unique_contacts(&people);
        manager_cycles(self.cx, &people);
        (people, known_handles)
    }

    /// One `[[person]]`, with its path, when it has no problem.
    fn person(&mut self, i: usize, t: &Table, seen: &mut Seen) -> Option<(String, Person)> {
        let before = self.cx.problems.len();
        let (prefix, name) = self.name_prefix(
            "person",
            i,
            t,
            "handle",
            |s| Handle::parse(s).map(|_| ()).map_err(|e| e.0),
            seen,
        );
        let rec = Rec { t, path: prefix };
        rec.check_keys(self.cx, &keys::keys("person"));
        let mut fields = HashMap::new();
        for k in &keys::keys("person") {
            let v = if *k == "discord_id" {
                rec.id(self.cx, k)
            } else {
                rec.string(self.cx, k).map(str::to_owned)
            };
            if let Some(v) = v {
                fields.insert(*k, v);
            }
        }
        let p = person_from_fields(self.cx, &rec.path, &fields);
        match (p, name) {
            (Some(p), Some(_)) if self.cx.problems.len() == before => Some((rec.path, p)),
            _ => None,
        }
    }

    /// No two people share an email (in any letter case) or a Discord id.
    fn unique_contacts(&mut self, people: &[(String, Person)]) {
        let mut emails: HashMap<String, String> = HashMap::new();
        let mut discord_ids: HashMap<String, String> = HashMap::new();
        for (prefix, p) in people {
            let e = p.email.as_str().to_lowercase();
            if let Some(first) = emails.get(&e) {
                self.cx.err(
                    join(prefix, "email"),
                    format!("email {:?} is already used by {first}", p.email.as_str()),
                );
            } else {
                emails.insert(e, prefix.clone());
            }
            if let Some(d) = &p.discord_id {
                if let Some(first) = discord_ids.get(d) {
                    self.cx.err(
                        join(prefix, "discord_id"),
                        format!("discord_id {d:?} is already used by {first}"),
                    );
                } else {
                    discord_ids.insert(d.clone(), prefix.clone());
                }
            }
        }
    }

    /// The rows of `people_file` (`shown` as written in the file), after the `[[person]]`s.
    fn people_csv(
        &mut self,
        shown: &str,
        path: &Path,
        people: &mut Vec<(String, Person)>,
        seen: &mut Seen,
    ) {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                self.cx.err(
                    "organization.people_file",
                    format!("cannot read {}: {e}", path.display()),
                );
                return;
            }
        };
        let rows = match parse_people_csv(&text, shown) {
            Ok(r) => r,
            Err(ConfigErrors(ps)) => {
                self.cx.problems.extend(ps);
                return;
            }
        };
        for row in rows {
            let prefix = format!("{shown}:{}", row.line);
            match row.result {
                Err(ps) => self.cx.problems.extend(ps),
                Ok(p) => {
                    if let Some(first) = seen.get(p.handle.as_str()) {
                        self.cx.err(
                            join(&prefix, "handle"),
                            format!(
                                "duplicate handle {:?}: already used by {first}",
                                p.handle.as_str()
                            ),
                        );
                        continue;
                    }
                    seen.insert(p.handle.as_str().to_owned(), prefix.clone());
                    self.cx
                        .refer(join(&prefix, "role"), RefKind::Role, p.role.as_str());
                    if let Some(m) = &p.manager {
                        self.cx
                            .refer(join(&prefix, "manager"), RefKind::Person, m.as_str());
                    }
                    people.push((prefix, p));
                }
            }
        }
    }
}

/// Reports every manager cycle once, at the `manager` key of its first member in file order.
fn manager_cycles(cx: &mut Cx, people: &[(String, Person)]) {
    let index: HashMap<&Handle, usize> = people
        .iter()
        .enumerate()
        .map(|(i, (_, p))| (&p.handle, i))
        .collect();
    for (start, (prefix, p)) in people.iter().enumerate() {
        let mut chain = vec![start];
        let mut cur = p;
        let mut seen = HashSet::from([start]);
        while let Some(m) = &cur.manager {
            let Some(&j) = index.get(m) else { break };
            if j == start {
                if chain.iter().all(|&k| k >= start) {
                    let mut names: Vec<&str> =
                        chain.iter().map(|&k| people[k].1.handle.as_str()).collect();
                    names.push(p.handle.as_str());
                    cx.err(
                        join(prefix, "manager"),
                        format!("manager cycle: {}", names.join(" → ")),
                    );
                }
                break;
            }
            if !seen.insert(j) {
                break;
            }
            chain.push(j);
            cur = &people[j].1;
        }
    }
}

/// Fields of one person (from the TOML file or a CSV row), by key, already strings.
pub(super) fn person_from_fields(
    cx: &mut Cx,
    prefix: &str,
    fields: &HashMap<&str, String>,
) -> Option<Person> {
    let at = |k: &str| join(prefix, k);
    let get = |k: &str| fields.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    let required = |cx: &mut Cx, k: &str| {
        let v = get(k);
        if v.is_none() {
            cx.err(at(k), "required, but missing or empty");
        }
        v
    };
    let handle = required(cx, "handle")
        .and_then(|s| reported(cx, at("handle"), Handle::parse(s).map_err(|e| e.0)));
    let name = required(cx, "name").map(str::to_owned);
    let email = required(cx, "email")
        .and_then(|s| reported(cx, at("email"), Email::parse(s).map_err(|e| e.0)));
    let department = get("department").unwrap_or_default().to_owned();
    let role = required(cx, "role").and_then(|s| {
        let r = reported(cx, at("role"), RoleName::parse(s).map_err(|e| e.0))?;
        cx.refer(at("role"), RefKind::Role, s);
        Some(r)
    });
    let manager = optional(get("manager"), |s| {
        let h = reported(cx, at("manager"), Handle::parse(s).map_err(|e| e.0))?;
        cx.refer(at("manager"), RefKind::Person, s);
        Some(h)
    });
    let discord_id = optional(get("discord_id"), |s| {
        let checked = crate::core::validate::discord_id(s).map_err(|e| e.message);
        reported(cx, at("discord_id"), checked.map(|()| s.to_owned()))
    });
    let timezone = optional(get("timezone"), |s| {
        let checked = crate::core::validate::timezone(s).map_err(|e| e.message);
        reported(cx, at("timezone"), checked)
    });
    let mut ok = manager.is_ok() && discord_id.is_ok() && timezone.is_ok();
    let p = Person {
        handle: handle?,
        name: name?,
        email: email?,
        department,
        role: role?,
        manager: manager.unwrap_or_default(),
        discord_id: discord_id.unwrap_or_default(),
        status: PersonStatus::Active,
        timezone: timezone.unwrap_or_default(),
    };
    // The same rules as the HR feed and /onboard.
    if let Err(e) = crate::core::validate::person(&p) {
        cx.err(at(e.field), e.message);
        ok = false;
    }
    Some(p).filter(|_| ok)
}

/// The value, or `None` with its problem reported at `at`.
fn reported<T>(cx: &mut Cx, at: String, r: Result<T, String>) -> Option<T> {
    r.map_err(|m| cx.err(at, m)).ok()
}

/// An optional field: `Ok(None)` when absent or empty, `Err(())` when `read` found it wrong
/// (and reported it).
fn optional<T>(value: Option<&str>, read: impl FnOnce(&str) -> Option<T>) -> Result<Option<T>, ()> {
    match value {
        None => Ok(None),
        Some(s) => read(s).map(Some).ok_or(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn time_zones_are_iana_names_checked_with_a_suggestion() {
        let c = parse(BASE, Path::new("."), &no_env).unwrap();
        assert_eq!(c.org.timezone, Zone::UTC, "UTC when absent");
        assert!(c.people.iter().all(|p| p.timezone.is_none()));

        let text = BASE
            .replace("name = \"T\"", "name = \"T\"\ntimezone = \"Europe/Berlin\"")
            .replace(
                "handle = \"carol\"",
                "handle = \"carol\"\ntimezone = \"America/Los_Angeles\"",
            );
        let c = parse(&text, Path::new("."), &no_env).unwrap();
        assert_eq!(c.org.timezone.name(), "Europe/Berlin");
        let carol = c.person(&Handle::parse("carol").unwrap()).unwrap();
        assert_eq!(
            carol.timezone.map(|z| z.name()),
            Some("America/Los_Angeles")
        );

        let e = errors(&BASE.replace("name = \"T\"", "name = \"T\"\ntimezone = \"Mars/Olympus\""));
        assert_eq!(
            e,
            "organization.timezone: \"Mars/Olympus\" is not a time zone of the IANA database — \
             write an IANA name such as \"Europe/Berlin\", \"America/Los_Angeles\" or \"UTC\""
        );
        let e = errors(
            &BASE
                .replace("name = \"T\"", "name = \"T\"\ntimezone = \"europe/berlin\"")
                .replace(
                    "handle = \"carol\"",
                    "handle = \"carol\"\ntimezone = \"Amsterdam\"",
                ),
        );
        assert!(
            e.contains(
                "organization.timezone: \"europe/berlin\" is not a time zone of the IANA \
                 database — did you mean \"Europe/Berlin\"?"
            ),
            "{e}"
        );
        assert!(
            e.contains("person.carol.timezone: \"Amsterdam\" is not a time zone of the IANA database — did you mean \"Europe/Amsterdam\"?"),
            "{e}"
        );

        // The people CSV has the same column.
        let dir = tempfile::tempdir().unwrap();
        let csv = "handle,name,email,role,timezone\n\
                   lena,Lena Roy,lena@t.test,designer,Asia/Tokyo\n\
                   max,Max,max@t.test,designer,Tokio\n";
        std::fs::write(dir.path().join("people.csv"), csv).unwrap();
        let text = BASE.replace("name = \"T\"", "name = \"T\"\npeople_file = \"people.csv\"");
        let e = parse(&text, dir.path(), &no_env).unwrap_err().to_string();
        assert_eq!(
            e,
            "people.csv:3.timezone: \"Tokio\" is not a time zone of the IANA database — did you \
             mean \"Asia/Tokyo\"?"
        );
        let rows = parse_people_csv(csv, "p").unwrap();
        assert_eq!(
            rows[0].result.as_ref().unwrap().timezone.map(|z| z.name()),
            Some("Asia/Tokyo")
        );
    }

    #[test]
    fn duplicates_are_errors() {
        let text = format!(
            "{BASE}\n[[person]]\nhandle = \"erin\"\nname = \"E\"\nemail = \"DANA@t.test\"\nrole = \"it-admin\"\n\
             [[connector]]\nname = \"design\"\nkind = \"manual\"\n"
        );
        let e = errors(&text);
        assert!(
            e.contains("person.erin.email: email \"DANA@t.test\" is already used by person.dana"),
            "{e}"
        );
        assert!(
            e.contains("connector[1].name: duplicate name \"design\""),
            "{e}"
        );
    }

    #[test]
    fn manager_cycle_is_an_error() {
        let text = BASE.replace(
            "role = \"it-admin\"\n",
            "role = \"it-admin\"\nmanager = \"carol\"\n",
        );
        let e = errors(&text);
        assert_eq!(e, "person.dana.manager: manager cycle: dana → carol → dana");
        let own = BASE.replace("manager = \"dana\"", "manager = \"carol\"");
        assert_eq!(
            errors(&own),
            "person.carol.manager: manager cycle: carol → carol"
        );
    }
}

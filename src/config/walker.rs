//! The walk over the parsed TOML: one reader per table (each in its own file of this folder),
//! in file order, then the references between records, checked once every name is known.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use toml::Table;

use super::catalog::APPROVAL_KEYWORDS;
use super::{Config, Cx, Problem, Rec, Ref, RefKind, join, keys, suggest};
use crate::core::model::Org;

/// Walks the parsed TOML, collecting typed values and problems.
pub(super) struct Walker<'c, 'e> {
    pub(super) cx: &'c mut Cx<'e>,
    pub(super) base_dir: &'c Path,
}

/// A record name seen so far, and where it was defined.
pub(super) type Seen = HashMap<String, String>;

impl<'c, 'e> Walker<'c, 'e> {
    pub(super) fn new(cx: &'c mut Cx<'e>, base_dir: &'c Path) -> Self {
        Self { cx, base_dir }
    }

    /// Reads a record's name key and picks its path prefix: `kind.NAME` when the name is valid
    /// and new, `kind[i]` otherwise (reporting what is wrong with the name).
    pub(super) fn name_prefix(
        &mut self,
        kind: &str,
        i: usize,
        t: &Table,
        key: &str,
        check: impl Fn(&str) -> Result<(), String>,
        seen: &mut Seen,
    ) -> (String, Option<String>) {
        let index_path = format!("{kind}[{i}]");
        let rec = Rec {
            t,
            path: index_path.clone(),
        };
        let Some(name) = rec.req_string(self.cx, key) else {
            return (index_path, None);
        };
        if let Err(e) = check(name) {
            self.cx.err(rec.at(key), e);
            return (index_path, None);
        }
        if let Some(first) = seen.get(name) {
            self.cx.err(
                rec.at(key),
                format!("duplicate {key} {name:?}: already used by {first}"),
            );
            return (index_path, None);
        }
        let prefix = join(kind, name);
        seen.insert(name.to_owned(), prefix.clone());
        (prefix, Some(name.to_owned()))
    }

    /// Walks every table in turn (the order problems are listed in), then checks references.
    pub(super) fn walk(mut self, root: &Table) -> Option<Config> {
        let root = Rec {
            t: root,
            path: String::new(),
        };
        root.check_keys(self.cx, &keys::top_keys());
        let head = self.organization(&root);
        let workflow = self.workflow(&root);
        let database_url = self.database(&root);
        let discord = self.discord(&root);
        let http = self.http(&root);
        let hr = self.hr(&root);
        let scim_server = self.scim_server(&root);
        let (audit_key, audit_anchor_file) = self.audit(&root);
        let (connectors, known_connectors) = self.connectors(&root);
        let (people, known_handles) = self.people(&root, head.people_file.as_ref());
        let (roles, known_roles) = self.roles(&root);
        let departments = self.departments(&root);
        let (apps, known_apps) = self.apps(&root);
        let reviews = self.reviews(&root);
        let mfa_key = self.mfa(&root);
        let public_url = self.public_url(&root);
        self.step_up_needs_key(&apps, &workflow, mfa_key.is_some());
        self.check_references(&Known {
            handles: known_handles,
            apps: known_apps,
            roles: known_roles,
            connectors: known_connectors,
        });
        if !self.cx.problems.is_empty() {
            return None;
        }
        Some(Config {
            org: Org {
                name: head.name?,
                it_admins: head.it_admins,
                workflow,
                apps,
                roles,
                departments,
                timezone: head.timezone,
                reviews,
            },
            people: people.into_iter().map(|(_, p)| p).collect(),
            connectors,
            database_url,
            discord,
            http,
            hr,
            scim_server,
            mfa_key,
            public_url,
            audit_key,
            audit_anchor_file,
            warnings: std::mem::take(&mut self.cx.warnings),
            people_file: head.people_file.map(|(_, p)| p),
            base_dir: self.base_dir.to_path_buf(),
        })
    }

    /// Reports every reference to a name no record defines, each among the problems of the
    /// record it was read in.
    fn check_references(&mut self, known: &Known) {
        let refs = std::mem::take(&mut self.cx.refs);
        let dangling: Vec<(usize, Problem)> =
            refs.into_iter().filter_map(|r| known.dangling(r)).collect();
        if !dangling.is_empty() {
            // Interleave, so problems read in the order their records were walked.
            let found = std::mem::take(&mut self.cx.problems);
            let mut dangling = dangling.into_iter().peekable();
            for (i, p) in found.into_iter().enumerate() {
                while let Some((_, d)) = dangling.next_if(|(at, _)| *at <= i) {
                    self.cx.problems.push(d);
                }
                self.cx.problems.push(p);
            }
            self.cx.problems.extend(dangling.map(|(_, d)| d));
        }
    }
}

/// The names each kind of record defines, for checking references.
struct Known {
    handles: HashSet<String>,
    apps: HashSet<String>,
    roles: HashSet<String>,
    connectors: HashSet<String>,
}

impl Known {
    /// The problem with `r`, with where it goes, when it names nothing known.
    fn dangling(&self, r: Ref) -> Option<(usize, Problem)> {
        let (set, what): (&HashSet<String>, &str) = match r.kind {
            RefKind::Person | RefKind::Approver => (&self.handles, "person with handle"),
            RefKind::App => (&self.apps, "app"),
            RefKind::Role => (&self.roles, "role"),
            RefKind::Connector => (&self.connectors, "connector"),
        };
        if set.contains(&r.name) {
            return None;
        }
        let mut candidates: Vec<&str> = set.iter().map(String::as_str).collect();
        candidates.sort_unstable();
        let extra = if r.kind == RefKind::Approver {
            candidates.extend(APPROVAL_KEYWORDS);
            " (a step is manager, owner, it-admin or a person's handle)"
        } else {
            ""
        };
        let message = format!(
            "no {what} {:?}{extra}{}",
            r.name,
            suggest(&r.name, candidates)
        );
        Some((
            r.at,
            Problem {
                path: r.path,
                message,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn lists_every_problem_with_its_path() {
        let text = BASE
            .replace(
                "owners = [\"carol\"]",
                "owners = [\"carl\"]\nmax_duration = \"soon\"",
            )
            .replace("apps = [\"figma\"]", "apps = [\"figma\", \"figam\"]")
            .replace("manager = \"dana\"", "manager = \"dan\"")
            .replace("connector = \"design\"", "connector = \"desing\"")
            .replace("it_admins = [\"dana\"]", "it_admins = [\"dana\", \"dnaa\"]");
        let e = errors(&text);
        let lines: Vec<&str> = e.lines().collect();
        for want in [
            "app.figma.max_duration: \"soon\" is not a duration; write it like 90m, 8h or 7d",
            "app.figma.owners[0]: no person with handle \"carl\" — did you mean \"carol\"?",
            "role.designer.apps[1]: no app \"figam\" — did you mean \"figma\"?",
            "person.carol.manager: no person with handle \"dan\" — did you mean \"dana\"?",
            "app.figma.connector: no connector \"desing\" — did you mean \"design\"?",
            "organization.it_admins[1]: no person with handle \"dnaa\" — did you mean \"dana\"?",
        ] {
            assert!(lines.contains(&want), "missing {want:?} in:\n{e}");
        }
        assert_eq!(lines.len(), 6, "{e}");
    }

    #[test]
    fn records_without_a_valid_name_use_their_index() {
        let text = format!(
            "{BASE}\n[[app]]\nname = \"Bad App\"\nconnector = \"design\"\napprovals = []\n\
             [[app]]\nconnector = \"design\"\napprovals = []\n\
             [[app]]\nname = \"figma\"\nconnector = \"design\"\napprovals = []\n"
        );
        let e = errors(&text);
        assert!(
            e.contains("app[1].name: an app name \"Bad App\" may hold only"),
            "{e}"
        );
        assert!(e.contains("app[2].name: required key is missing"), "{e}");
        assert!(
            e.contains("app[3].name: duplicate name \"figma\": already used by app.figma"),
            "{e}"
        );
    }

    #[test]
    fn misspelt_role_and_approver() {
        let text = BASE
            .replace("role = \"designer\"", "role = \"desginer\"")
            .replace(
                "approvals = [\"manager\", \"owner\"]",
                "approvals = [\"manger\", \"dnaa\"]",
            );
        let e = errors(&text);
        assert!(
            e.contains("person.carol.role: no role \"desginer\" — did you mean \"designer\"?"),
            "{e}"
        );
        assert!(
            e.contains("app.figma.approvals[0]: no person with handle \"manger\""),
            "{e}"
        );
        assert!(e.contains("did you mean \"manager\"?"), "{e}");
        assert!(
            e.contains("app.figma.approvals[1]: no person with handle \"dnaa\""),
            "{e}"
        );
    }
}

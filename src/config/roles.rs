//! `[[role]]` and `[[department]]`: the apps each role and department is born with.

use std::collections::HashSet;

use super::walker::{Seen, Walker};
use super::{Rec, RefKind, keys};
use crate::core::model::{AppName, Department, Role, RoleName};

impl Walker<'_, '_> {
    /// `[[role]]`, and every role name defined.
    pub(super) fn roles(&mut self, root: &Rec) -> (Vec<Role>, HashSet<String>) {
        let mut roles = Vec::new();
        let mut seen_roles = Seen::new();
        for (i, t) in root.records(self.cx, "role") {
            let (prefix, name) = self.name_prefix(
                "role",
                i,
                t,
                "name",
                |s| RoleName::parse(s).map(|_| ()).map_err(|e| e.0),
                &mut seen_roles,
            );
            let rec = Rec { t, path: prefix };
            rec.check_keys(self.cx, &keys::keys("role"));
            let apps = self.app_list(&rec);
            if let (Some(name), Some(apps)) = (name, apps)
                && let Ok(name) = RoleName::parse(&name)
            {
                roles.push(Role { name, apps });
            }
        }
        (roles, seen_roles.into_keys().collect())
    }

    /// `[[department]]`.
    pub(super) fn departments(&mut self, root: &Rec) -> Vec<Department> {
        let mut departments = Vec::new();
        let mut seen_departments = Seen::new();
        for (i, t) in root.records(self.cx, "department") {
            let (prefix, name) = self.name_prefix(
                "department",
                i,
                t,
                "name",
                |s| {
                    if s.trim().is_empty() {
                        Err("a department name must not be empty".into())
                    } else {
                        Ok(())
                    }
                },
                &mut seen_departments,
            );
            let rec = Rec { t, path: prefix };
            rec.check_keys(self.cx, &keys::keys("department"));
            let apps = self.app_list(&rec);
            if let (Some(name), Some(apps)) = (name, apps) {
                departments.push(Department { name, apps });
            }
        }
        departments
    }

    /// `apps = [...]` of a role or department (absent means none).
    fn app_list(&mut self, rec: &Rec) -> Option<Vec<AppName>> {
        let mut out = Vec::new();
        let mut ok = true;
        let Some(items) = rec.strings(self.cx, "apps") else {
            return (!rec.has("apps")).then_some(out);
        };
        for (p, s) in items {
            match AppName::parse(s) {
                Ok(a) => {
                    self.cx.refer(p, RefKind::App, s);
                    out.push(a);
                }
                Err(e) => {
                    self.cx.err(p, e.0);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

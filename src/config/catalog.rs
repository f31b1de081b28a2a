//! `[[app]]`: the catalog, with each app's connector, owners, approval steps, durations and
//! reason rule.

use std::collections::HashSet;

use toml::Value;

use super::walker::{Seen, Walker};
use super::{Cx, Rec, RefKind, keys, regex_error, suggest};
use crate::core::model::{App, AppName, ApprovalRule, ConnectorName, Handle, Span};

/// The approval steps that are not a person's handle.
pub(super) const APPROVAL_KEYWORDS: &[&str] = &["manager", "owner", "it-admin"];

impl Walker<'_, '_> {
    /// `[[app]]`, and every app name defined.
    pub(super) fn apps(&mut self, root: &Rec) -> (Vec<App>, HashSet<String>) {
        let mut apps = Vec::new();
        let mut seen_apps = Seen::new();
        for (i, t) in root.records(self.cx, "app") {
            let (prefix, name) = self.name_prefix(
                "app",
                i,
                t,
                "name",
                |s| AppName::parse(s).map(|_| ()).map_err(|e| e.0),
                &mut seen_apps,
            );
            if let Some(a) = self.app(Rec { t, path: prefix }, name) {
                apps.push(a);
            }
        }
        (apps, seen_apps.into_keys().collect())
    }

    /// One `[[app]]`, when it has no problem.
    fn app(&mut self, rec: Rec, name: Option<String>) -> Option<App> {
        let cx = &mut *self.cx;
        rec.check_keys(cx, &keys::keys("app"));
        let before = cx.problems.len();
        let name = name.and_then(|n| AppName::parse(&n).ok());
        let display = not_empty(cx, &rec, "display");
        let connector =
            rec.req_string(cx, "connector")
                .and_then(|s| match ConnectorName::parse(s) {
                    Ok(c) => {
                        cx.refer(rec.at("connector"), RefKind::Connector, s);
                        Some(c)
                    }
                    Err(e) => {
                        cx.err(rec.at("connector"), e.0);
                        None
                    }
                });
        let entitlement = not_empty(cx, &rec, "entitlement");
        let owners = owners(cx, &rec);
        let requestable = rec.bool(cx, "requestable").unwrap_or(true);
        let approvals = approvals(cx, &rec, &owners, requestable);
        let (max_duration, default_duration) = durations(cx, &rec);
        let reason_pattern = reason_pattern(cx, &rec);
        let reason_hint = rec.string(cx, "reason_hint").map(str::to_owned);
        let (step_up, break_glass) = super::step_up::app_terms(cx, &rec);
        let privileged = super::reviews::privileged(cx, &rec);
        if cx.problems.len() != before {
            return None;
        }
        let name = name?;
        Some(App {
            display: display.unwrap_or_else(|| name.as_str().to_owned()),
            entitlement: entitlement.unwrap_or_else(|| name.as_str().to_owned()),
            name,
            connector: connector?,
            owners,
            approvals,
            max_duration,
            default_duration,
            requestable,
            reason_pattern,
            reason_hint,
            step_up,
            break_glass,
            privileged,
        })
    }
}

/// An optional string key that must not be blank when given.
fn not_empty(cx: &mut Cx, rec: &Rec, key: &str) -> Option<String> {
    match rec.string(cx, key) {
        Some(d) if d.trim().is_empty() => {
            cx.err(rec.at(key), "must not be empty");
            None
        }
        Some(d) => Some(d.to_owned()),
        None => None,
    }
}

/// `owners`: handles (references checked later).
fn owners(cx: &mut Cx, rec: &Rec) -> Vec<Handle> {
    let mut owners = Vec::new();
    for (p, s) in rec.strings(cx, "owners").unwrap_or_default() {
        match Handle::parse(s) {
            Ok(h) => {
                cx.refer(p, RefKind::Person, s);
                owners.push(h);
            }
            Err(e) => cx.err(p, e.0),
        }
    }
    owners
}

/// `approvals`: the steps, required for a requestable app (`[]` means auto-approved).
fn approvals(cx: &mut Cx, rec: &Rec, owners: &[Handle], requestable: bool) -> Vec<ApprovalRule> {
    let mut approvals = Vec::new();
    let items = match rec.strings(cx, "approvals") {
        None if !rec.has("approvals") && requestable => {
            cx.err(
                rec.at("approvals"),
                "required for a requestable app: list the approval steps \
                 (manager, owner, it-admin or a handle), or write [] for auto-approved",
            );
            return approvals;
        }
        None => return approvals,
        Some(items) => items,
    };
    for (p, s) in items {
        match ApprovalRule::parse(s) {
            Ok(ApprovalRule::Owner) if owners.is_empty() => {
                // Owners given but unusable were reported already.
                let reported = match rec.t.get("owners") {
                    None => false,
                    Some(Value::Array(a)) => !a.is_empty(),
                    Some(_) => true,
                };
                if !reported {
                    cx.err(p, "an \"owner\" step needs owners, and this app has none");
                }
            }
            Ok(r) => {
                if let ApprovalRule::Person(h) = &r {
                    cx.refer(p, RefKind::Approver, h.as_str());
                }
                approvals.push(r);
            }
            Err(e) => cx.err(
                p,
                format!(
                    "not an approval step (manager, owner, it-admin or a handle): {}{}",
                    e.0,
                    suggest(s, APPROVAL_KEYWORDS.iter().copied())
                ),
            ),
        }
    }
    approvals
}

/// `max_duration` and `default_duration`, the default no longer than the maximum.
fn durations(cx: &mut Cx, rec: &Rec) -> (Option<Span>, Option<Span>) {
    let max_duration = rec.span(cx, "max_duration");
    let default_duration = rec.span(cx, "default_duration");
    if let (Some(d), Some(m)) = (default_duration, max_duration)
        && d > m
    {
        cx.err(
            rec.at("default_duration"),
            format!("{d} is longer than max_duration ({m})"),
        );
    }
    (max_duration, default_duration)
}

/// `reason_pattern`: a regular expression the reason must match.
fn reason_pattern(cx: &mut Cx, rec: &Rec) -> Option<regex::Regex> {
    let s = rec.string(cx, "reason_pattern")?;
    match regex::Regex::new(s) {
        Ok(r) => Some(r),
        Err(e) => {
            cx.err(
                rec.at("reason_pattern"),
                format!("not a valid regular expression: {}", regex_error(&e)),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn bad_regex_and_durations() {
        let text = BASE.replace(
            "approvals = [",
            "reason_pattern = \"^(INC\"\nmax_duration = \"1h\"\ndefault_duration = \"2h\"\napprovals = [",
        );
        let e = errors(&text);
        assert!(
            e.contains("app.figma.reason_pattern: not a valid regular expression: unclosed group"),
            "{e}"
        );
        assert!(
            e.contains("app.figma.default_duration: 2h is longer than max_duration (1h)"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 2, "{e}");
    }
}

//! `[[connector]]`: the targets apps are provisioned on, each of a kind with its own keys
//! (the `ldap` kind's keys are read in `ldap.rs`), plus the limits every kind may carry.

use std::collections::HashSet;

use toml::{Table, Value};

use super::walker::{Seen, Walker};
use super::{
    ConnectorConfig, ConnectorKind, ConnectorLimits, Cx, Rec, expected, keys, ldap, positive_int,
    suggest_or_list,
};
use crate::core::model::ConnectorName;

const CONNECTOR_KINDS: &[&str] = &["directory", "manual", "scim", "ldap", "webhook"];
/// Keys any `[[connector]]` may carry, read before the kind's own keys.
const COMMON_CONNECTOR_KEYS: &[&str] = &[
    "max_concurrency",
    "rate_per_second",
    "timeout",
    "lease",
    "reconcile_every",
    "on_drift",
];
const WEBHOOK_METHODS: &[&str] = &["POST", "PUT", "PATCH", "GET", "DELETE"];

impl Walker<'_, '_> {
    /// `[[connector]]`, and every connector name defined.
    pub(super) fn connectors(&mut self, root: &Rec) -> (Vec<ConnectorConfig>, HashSet<String>) {
        let mut connectors = Vec::new();
        let mut seen_connectors = Seen::new();
        for (i, t) in root.records(self.cx, "connector") {
            let (prefix, name) = self.name_prefix(
                "connector",
                i,
                t,
                "name",
                |s| ConnectorName::parse(s).map(|_| ()).map_err(|e| e.0),
                &mut seen_connectors,
            );
            if let Some(c) = self.connector(Rec { t, path: prefix }, name) {
                connectors.push(c);
            }
        }
        (connectors, seen_connectors.into_keys().collect())
    }

    /// One `[[connector]]`, when it has no problem.
    fn connector(&mut self, rec: Rec, name: Option<String>) -> Option<ConnectorConfig> {
        let cx = &mut *self.cx;
        let limits = connector_limits(cx, &rec);
        let stripped: Table = rec
            .t
            .iter()
            .filter(|(k, _)| !COMMON_CONNECTOR_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let rec = Rec {
            t: &stripped,
            path: rec.path.clone(),
        };
        let kind = match rec.req_string(cx, "kind") {
            None => {
                rec.check_keys(cx, &keys::all_connector_keys());
                return None;
            }
            Some(k) if CONNECTOR_KINDS.contains(&k) => k,
            Some(k) => {
                cx.err(
                    rec.at("kind"),
                    format!(
                        "unknown connector kind {k:?}{}",
                        suggest_or_list(k, CONNECTOR_KINDS)
                    ),
                );
                rec.check_keys(cx, &keys::all_connector_keys());
                return None;
            }
        };
        let kind = match kind {
            "directory" => {
                rec.check_keys(cx, &keys::keys("connector"));
                Some(ConnectorKind::Directory)
            }
            "manual" => {
                rec.check_keys(cx, &keys::keys("connector"));
                Some(ConnectorKind::Manual)
            }
            "scim" => scim(cx, &rec),
            "ldap" => {
                rec.check_keys(cx, &keys::keys("connector.ldap"));
                ldap::settings(cx, &rec, self.base_dir).map(|s| ConnectorKind::Ldap(Box::new(s)))
            }
            _ => webhook(cx, &rec),
        };
        Some(ConnectorConfig {
            name: ConnectorName::parse(&name?).ok()?,
            kind: kind?,
            limits: limits?,
        })
    }
}

/// A required `http://` or `https://` URL.
fn http_url(cx: &mut Cx, rec: &Rec, key: &str) -> Option<String> {
    let u = rec.req_string(cx, key)?;
    if u.starts_with("http://") || u.starts_with("https://") {
        Some(u.to_owned())
    } else {
        cx.err(
            rec.at(key),
            format!("{u:?} is not an http:// or https:// URL"),
        );
        None
    }
}

/// The keys of kind `scim`.
fn scim(cx: &mut Cx, rec: &Rec) -> Option<ConnectorKind> {
    rec.check_keys(cx, &keys::keys("connector.scim"));
    let base_url = http_url(cx, rec, "base_url");
    let token = rec.secret(cx, "token_env");
    let page_size = positive_int(cx, rec, "page_size").unwrap_or(Some(100));
    Some(ConnectorKind::Scim {
        base_url: base_url?.trim_end_matches('/').to_owned(),
        token: token?,
        page_size: page_size?,
    })
}

/// The keys of kind `webhook`.
fn webhook(cx: &mut Cx, rec: &Rec) -> Option<ConnectorKind> {
    rec.check_keys(cx, &keys::keys("connector.webhook"));
    let url = http_url(cx, rec, "url");
    let secret = rec.secret(cx, "secret_env");
    let method = match rec.string(cx, "method") {
        None => Some("POST".to_owned()),
        Some(m) if WEBHOOK_METHODS.contains(&m.to_ascii_uppercase().as_str()) => {
            Some(m.to_ascii_uppercase())
        }
        Some(m) => {
            cx.err(
                rec.at("method"),
                format!(
                    "unsupported method {m:?} (use one of {})",
                    WEBHOOK_METHODS.join(", ")
                ),
            );
            None
        }
    };
    let body = match rec.string(cx, "body") {
        Some(b)
            if serde_json::from_str::<serde_json::Value>(
                &crate::connectors::webhook::fill_json(b, &|_| "x".into()),
            )
            .is_err() =>
        {
            cx.err(
                rec.at("body"),
                "is not JSON once its placeholders are filled in",
            );
            None
        }
        b => Some(b.map(str::to_owned)),
    };
    for key in ["url", "body"] {
        webhook_placeholders(cx, rec, key);
    }
    let success = webhook_success(cx, rec);
    let list_url = if rec.has("list_url") {
        webhook_placeholders(cx, rec, "list_url");
        Some(http_url(cx, rec, "list_url"))
    } else {
        None
    };
    Some(ConnectorKind::Webhook {
        url: url?,
        secret: secret?,
        method: method?,
        body: body?,
        success: success?,
        list_url: match list_url {
            None => None,
            Some(u) => Some(u?),
        },
    })
}

/// `max_concurrency`, `rate_per_second` and `timeout` of a `[[connector]]`.
fn connector_limits(cx: &mut Cx, rec: &Rec) -> Option<ConnectorLimits> {
    let mut l = ConnectorLimits::default();
    let mut ok = true;
    match positive_int(cx, rec, "max_concurrency") {
        None => {}
        Some(Some(n)) => l.max_concurrency = n,
        Some(None) => ok = false,
    }
    match rec.t.get("rate_per_second") {
        None => {}
        Some(Value::Integer(i)) if *i > 0 => l.rate_per_second = Some(*i as f64),
        Some(Value::Float(x)) if *x > 0.0 && x.is_finite() => l.rate_per_second = Some(*x),
        Some(v) => {
            cx.err(rec.at("rate_per_second"), expected("a positive number", v));
            ok = false;
        }
    }
    if rec.has("timeout") {
        match rec.span(cx, "timeout") {
            Some(s) if s.secs() > 0 => l.timeout = s.as_std(),
            Some(_) => {
                cx.err(rec.at("timeout"), "must be at least 1s");
                ok = false;
            }
            None => ok = false,
        }
    }
    if rec.has("lease") {
        match rec.span(cx, "lease") {
            Some(s) if s.secs() > 0 => l.lease = s.as_std(),
            Some(_) => {
                cx.err(rec.at("lease"), "must be at least 1s");
                ok = false;
            }
            None => ok = false,
        }
    }
    ok &= drift_settings(cx, rec, &mut l);
    ok.then_some(l)
}

/// `reconcile_every` (at least a minute) and `on_drift` (`report` or `revoke`).
fn drift_settings(cx: &mut Cx, rec: &Rec, l: &mut ConnectorLimits) -> bool {
    let mut ok = true;
    if rec.has("reconcile_every") {
        match rec.span(cx, "reconcile_every") {
            Some(s) if s.secs() >= 60 => l.reconcile_every = Some(s.as_std()),
            Some(_) => {
                cx.err(rec.at("reconcile_every"), "must be at least 1m");
                ok = false;
            }
            None => ok = false,
        }
    }
    match rec.string(cx, "on_drift") {
        None | Some("report") => {}
        Some("revoke") => l.on_drift_revoke = true,
        Some(other) => {
            cx.err(
                rec.at("on_drift"),
                format!(
                    "{other:?} is not report or revoke{}",
                    super::suggest(other, ["report", "revoke"])
                ),
            );
            ok = false;
        }
    }
    ok
}

/// Refuses `{word}`s in a webhook template that are not placeholders (they would be sent as
/// written).
fn webhook_placeholders(cx: &mut Cx, rec: &Rec, key: &str) {
    use crate::connectors::webhook::{PLACEHOLDERS, unknown_placeholders};
    // A value that is not a string was refused where it is read.
    let Some(template) = rec.t.get(key).and_then(toml::Value::as_str) else {
        return;
    };
    for word in unknown_placeholders(template) {
        let hint = super::did_you_mean(word, PLACEHOLDERS.iter().copied())
            .map(|m| format!(" (did you mean {{{m}}}?)"))
            .unwrap_or_default();
        let known: Vec<String> = PLACEHOLDERS.iter().map(|p| format!("{{{p}}}")).collect();
        cx.err(
            rec.at(key),
            format!(
                "unknown placeholder {{{word}}}{hint}; a template may use {}",
                known.join(", ")
            ),
        );
    }
}

/// A webhook's `success` statuses (default: any 2xx, written as an empty list).
fn webhook_success(cx: &mut Cx, rec: &Rec) -> Option<Vec<u16>> {
    match rec.t.get("success") {
        None => Some(Vec::new()),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            let mut ok = true;
            for (i, v) in items.iter().enumerate() {
                match v {
                    Value::Integer(n) if (100..=599).contains(n) => out.push(*n as u16),
                    v => {
                        cx.err(
                            format!("{}[{i}]", rec.at("success")),
                            expected("an HTTP status (100–599)", v),
                        );
                        ok = false;
                    }
                }
            }
            ok.then_some(out)
        }
        Some(v) => {
            cx.err(rec.at("success"), expected("an array of HTTP statuses", v));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn connectors_need_their_keys() {
        let text = format!(
            "{BASE}\n[[connector]]\nname = \"dir\"\nkind = \"ldap\"\nurl = \"ldap://x\"\n\
             [[connector]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"https://h\"\nsecret_env = \"S\"\nbase_url = \"x\"\n\
             [[connector]]\nname = \"other\"\nkind = \"scmi\"\n"
        );
        let e = errors(&text);
        for want in [
            "connector.dir.bind_dn: required key is missing (a string)",
            "connector.dir.password_env: required key is missing (a string)",
            "connector.dir.user_base: required key is missing (a string; the older name people_dn also works)",
            "connector.dir.group_base: required key is missing (a string; the older name groups_dn also works)",
            "connector.hook.base_url: unknown key",
            "connector.hook.secret_env: environment variable S is not set",
            "connector.other.kind: unknown connector kind \"scmi\" — did you mean \"scim\"?",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
    }

    #[test]
    fn webhook_templates_name_only_known_placeholders() {
        let text = format!(
            "{BASE}\n[[connector]]\nname = \"hook\"\nkind = \"webhook\"\n\
             url = \"https://h/users/{{handel}}\"\nsecret_env = \"S\"\n\
             body = '{{\"what\": \"{{action}}\", \"who\": \"{{email}}\"}}'\n"
        );
        let e = errors(&text);
        for want in [
            "connector.hook.url: unknown placeholder {handel} (did you mean {handle}?); a template may use {op}, {handle}, {email}, {name}, {entitlement}",
            "connector.hook.body: unknown placeholder {action}; a template may use {op}",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
        assert!(!e.contains("{email}; a"), "{e}");
    }
}

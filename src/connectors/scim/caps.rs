//! What a SCIM service provider says it can do (RFC 7643 §5–§7): its
//! `/ServiceProviderConfig`, and where served its `/ResourceTypes` and `/Schemas`. Read when a
//! connector first acts (kept until restart) and by `check --probe`.

use serde_json::Value;

/// A provider's capabilities as discovered; `None` where it said nothing (not served, or the
/// key is missing), which the connector treats as "try, and do not trust blindly".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caps {
    /// `/ServiceProviderConfig` was read.
    pub served: bool,
    /// `filter.supported`.
    pub filter: Option<bool>,
    /// `filter.maxResults`.
    pub filter_max: Option<u64>,
    /// `patch.supported`.
    pub patch: Option<bool>,
    /// `etag.supported`.
    pub etag: Option<bool>,
    /// `bulk.supported`.
    pub bulk: Option<bool>,
    /// `changePassword.supported`.
    pub change_password: Option<bool>,
    /// `sort.supported`.
    pub sort: Option<bool>,
    /// The endpoints `/ResourceTypes` names (`/Users`, `/Groups`), when served.
    pub resource_types: Option<Vec<String>>,
    /// Whether `/Schemas` declares the Group's `members` as returned by default (so a group
    /// read without `members` has none); `None` when `/Schemas` was not served or says
    /// nothing about it, and then a missing `members` proves nothing.
    pub members_returned: Option<bool>,
}

fn supported(spc: &Value, key: &str) -> Option<bool> {
    super::scim_bool(spc.get(key)?.get("supported"))
}

impl Caps {
    /// The capabilities a `/ServiceProviderConfig` body states.
    pub fn from_config(spc: &Value) -> Self {
        Self {
            served: true,
            filter: supported(spc, "filter"),
            filter_max: spc.pointer("/filter/maxResults").and_then(Value::as_u64),
            patch: supported(spc, "patch"),
            etag: supported(spc, "etag"),
            bulk: supported(spc, "bulk"),
            change_password: supported(spc, "changePassword"),
            sort: supported(spc, "sort"),
            resource_types: None,
            members_returned: None,
        }
    }

    /// Adds what a `/ResourceTypes` listing says.
    pub fn with_resource_types(&mut self, body: &Value) {
        let list = body.get("Resources").and_then(Value::as_array).map(|rs| {
            rs.iter()
                .filter_map(|r| r.get("endpoint")?.as_str().map(str::to_owned))
                .collect()
        });
        self.resource_types = list;
    }

    /// Adds what a `/Schemas` listing says about the Group's `members`.
    pub fn with_schemas(&mut self, body: &Value) {
        let schemas = body.get("Resources").and_then(Value::as_array);
        let group = schemas.and_then(|s| {
            s.iter()
                .find(|s| s.get("id").and_then(Value::as_str) == Some(super::GROUP_SCHEMA))
        });
        let members = group
            .and_then(|g| g.get("attributes")?.as_array())
            .and_then(|a| {
                a.iter()
                    .find(|a| a.get("name").and_then(Value::as_str) == Some("members"))
            });
        self.members_returned = members.map(|m| {
            m.get("returned").and_then(Value::as_str).is_none_or(|r| {
                r.eq_ignore_ascii_case("default") || r.eq_ignore_ascii_case("always")
            })
        });
    }

    /// One line for `check --probe`: every capability, `?` where the provider said nothing.
    pub fn summary(&self) -> String {
        if !self.served {
            return "no /ServiceProviderConfig (capabilities unknown: filters are not trusted \
                    to prove absence, PATCH is tried)"
                .to_owned();
        }
        let yn = |v: Option<bool>| match v {
            Some(true) => "yes",
            Some(false) => "no",
            None => "?",
        };
        let mut s = format!(
            "filter {}{}, patch {}, etag {}, bulk {}, changePassword {}, sort {}",
            yn(self.filter),
            self.filter_max
                .map(|m| format!(" (max {m})"))
                .unwrap_or_default(),
            yn(self.patch),
            yn(self.etag),
            yn(self.bulk),
            yn(self.change_password),
            yn(self.sort),
        );
        match &self.resource_types {
            Some(rt) => s.push_str(&format!("; resource types {}", rt.join(" "))),
            None => s.push_str("; /ResourceTypes not served"),
        }
        match self.members_returned {
            Some(true) => s.push_str("; /Schemas: Group members returned"),
            Some(false) => s.push_str("; /Schemas: Group members not returned by default"),
            None => {
                s.push_str("; /Schemas not served (a group read without members proves nothing)")
            }
        }
        s
    }

    /// Where what the provider says calls for care, or disagrees with what the connector needs.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if !self.served {
            return w;
        }
        if self.filter == Some(false) {
            w.push(
                "filter.supported is false: users and groups are found by paged listings \
                 (page_size sets the page), matched here"
                    .to_owned(),
            );
        }
        if self.patch == Some(false) {
            w.push(
                "patch.supported is false: group members change by PUT of the whole group"
                    .to_owned(),
            );
        }
        if let Some(rt) = &self.resource_types {
            for want in ["/Users", "/Groups"] {
                if !rt.iter().any(|e| e.eq_ignore_ascii_case(want)) {
                    w.push(format!("/ResourceTypes names no {want} endpoint"));
                }
            }
        }
        if self.members_returned == Some(false) {
            w.push(
                "Group members are not returned by default: removals cannot be confirmed and \
                 end in \"could not verify\""
                    .to_owned(),
            );
        }
        w
    }
}

/// Whether a refusal is about the form of the request rather than the resource (RFC 7644
/// §3.12): 501 Not Implemented, 405 Method Not Allowed, or 400 with `scimType` `invalidPath`,
/// `invalidFilter`, `invalidSyntax` or `noTarget`. Permanent for that form; the next form may
/// work.
pub fn form_refused(status: u16, body: &str) -> bool {
    match status {
        501 | 405 => true,
        400 => super::outbound::scim_type(body).is_some_and(|t| {
            ["invalidPath", "invalidFilter", "invalidSyntax", "noTarget"]
                .iter()
                .any(|k| t.eq_ignore_ascii_case(k))
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_resource_types_and_schemas_are_read() {
        let mut c = Caps::from_config(&json!({
            "patch": {"supported": true}, "filter": {"supported": false, "maxResults": 200},
            "etag": {"supported": "False"}, "bulk": {"supported": true},
            "changePassword": {"supported": false}, "sort": {"supported": true}
        }));
        assert_eq!(c.filter, Some(false));
        assert_eq!(c.etag, Some(false));
        assert_eq!(c.filter_max, Some(200));
        c.with_resource_types(&json!({"Resources": [{"endpoint": "/Users"}]}));
        c.with_schemas(
            &json!({"Resources": [{"id": crate::connectors::scim::GROUP_SCHEMA,
            "attributes": [{"name": "members", "returned": "default"}]}]}),
        );
        assert_eq!(c.members_returned, Some(true));
        let s = c.summary();
        assert!(
            s.contains("filter no (max 200), patch yes, etag no, bulk yes"),
            "{s}"
        );
        let w = c.warnings().join("\n");
        assert!(
            w.contains("no /Groups endpoint") && w.contains("paged listings"),
            "{w}"
        );
        assert!(form_refused(501, ""));
        assert!(form_refused(400, r#"{"scimType":"invalidPath"}"#));
        assert!(!form_refused(400, r#"{"scimType":"invalidValue"}"#));
        assert!(!form_refused(500, ""));
    }
}

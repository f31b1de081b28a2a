//! A resource's wire form: its stored attributes with `id`, `meta` (version as an ETag) and,
//! for a user, `groups`; and the `attributes` / `excludedAttributes` projection.

use serde_json::{Map, Value};

use super::filter::get_ci;
use super::path;
use super::schema::SCHEMAS;
use super::{ScimError, ScimKind, ScimResource, ScimType};

/// A group a user is a member of: its id and `displayName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    /// The group's id.
    pub id: String,
    /// Its `displayName`.
    pub display: String,
}

/// The full wire form of `r`; `base` is the service's URL (`https://host/scim/v2`), `groups`
/// the user's groups.
pub fn wire(r: &ScimResource, base: &str, groups: &[GroupRef]) -> Value {
    let mut v = r.body.clone();
    let Value::Object(o) = &mut v else {
        return v;
    };
    o.insert("id".into(), Value::String(r.id.clone()));
    let ts = |t: super::super::model::Timestamp| {
        Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    o.insert(
        "meta".into(),
        serde_json::json!({
            "resourceType": r.kind.as_str(),
            "created": ts(r.created),
            "lastModified": ts(r.modified),
            "version": r.etag(),
            "location": format!("{base}/{}/{}", r.kind.endpoint(), r.id),
        }),
    );
    if r.kind == ScimKind::User && !groups.is_empty() {
        let g: Vec<Value> = groups
            .iter()
            .map(|g| {
                serde_json::json!({
                    "value": g.id,
                    "display": g.display,
                    "$ref": format!("{base}/Groups/{}", g.id),
                    "type": "direct",
                })
            })
            .collect();
        o.insert("groups".into(), Value::Array(g));
    }
    v
}

/// The attribute names a list parameter (`attributes`, `excludedAttributes`) holds, each
/// resolved: (URN, attribute, sub-attribute).
pub type Names = Vec<(Option<&'static str>, String, Option<String>)>;

/// Parses `attributes` or `excludedAttributes` (comma-separated paths); names this server
/// does not know are dropped (they select nothing).
pub fn names(kind: ScimKind, list: Option<&str>) -> Result<Names, ScimError> {
    let mut out = Vec::new();
    for raw in list.unwrap_or_default().split(',').map(str::trim) {
        if raw.is_empty() {
            continue;
        }
        if raw.len() > 512 {
            return Err(ScimError::bad(
                ScimType::InvalidValue,
                "an attribute name is too long",
            ));
        }
        if let Ok(n) = path::resolve(kind, raw, ScimType::InvalidValue) {
            out.push(n);
        }
    }
    Ok(out)
}

fn returned(kind: ScimKind, urn: Option<&str>, name: &str) -> String {
    SCHEMAS
        .attr(kind, urn, name)
        .map(|a| a.returned.clone())
        .unwrap_or_default()
}

/// Projects a wire form: with `attrs`, only those (and what is always returned); else all but
/// `excluded` (and what is returned only on request).
pub fn project(kind: ScimKind, v: Value, attrs: &Names, excluded: &Names) -> Value {
    let Value::Object(o) = v else { return v };
    let mut out = Map::new();
    for (k, val) in o {
        let ext = SCHEMAS
            .schema(&k)
            .map(|s| s.id.as_str())
            .filter(|u| *u != kind.schema());
        if let Some(u) = ext {
            let Value::Object(inner) = val else { continue };
            let mut keep = Map::new();
            for (k2, v2) in inner {
                if let Some(x) = keep_attr(kind, Some(u), &k2, v2, attrs, excluded) {
                    keep.insert(k2, x);
                }
            }
            if !keep.is_empty() {
                out.insert(k, Value::Object(keep));
            }
            continue;
        }
        if let Some(x) = keep_attr(kind, None, &k, val, attrs, excluded) {
            out.insert(k, x);
        }
    }
    Value::Object(out)
}

fn keep_attr(
    kind: ScimKind,
    urn: Option<&str>,
    k: &str,
    v: Value,
    attrs: &Names,
    excluded: &Names,
) -> Option<Value> {
    let ret = returned(kind, urn, k);
    if ret == "always" || k == "schemas" {
        return Some(v);
    }
    if ret == "never" {
        return None;
    }
    let same = |n: &&(Option<&'static str>, String, Option<String>)| {
        n.0 == urn && n.1.eq_ignore_ascii_case(k)
    };
    if !attrs.is_empty() {
        let wanted: Vec<_> = attrs.iter().filter(same).collect();
        if wanted.is_empty() {
            return None;
        }
        if wanted.iter().any(|n| n.2.is_none()) {
            return Some(v);
        }
        let subs: Vec<&str> = wanted.iter().filter_map(|n| n.2.as_deref()).collect();
        return Some(only_subs(v, &subs));
    }
    if ret == "request" {
        return None;
    }
    let ex: Vec<_> = excluded.iter().filter(same).collect();
    if ex.iter().any(|n| n.2.is_none()) {
        return None;
    }
    Some(v)
}

fn only_subs(v: Value, subs: &[&str]) -> Value {
    let pick = |e: Value| match e {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| subs.iter().any(|s| s.eq_ignore_ascii_case(k)))
                .collect(),
        ),
        other => other,
    };
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(pick).collect()),
        other => pick(other),
    }
}

/// A string attribute of a wire form or body (a path such as `name.formatted` or
/// `urn:…:User:department`), when set.
pub fn string_at(kind: ScimKind, body: &Value, raw: &str) -> Option<String> {
    let (urn, attr, sub) = match path::resolve(kind, raw, ScimType::InvalidPath) {
        Ok(x) => x,
        Err(_) => {
            // An unknown extension: `urn:…:attr`, read as sent.
            let (urn, attr) = raw.rsplit_once(':')?;
            let v = get_ci(get_ci(body, urn)?, attr)?;
            return v.as_str().map(str::to_owned);
        }
    };
    let base = match urn {
        Some(u) => get_ci(body, u)?,
        None => body,
    };
    let mut v = get_ci(base, &attr)?;
    if let Value::Array(a) = v {
        v = a
            .iter()
            .find(|e| e.get("primary") == Some(&Value::Bool(true)))
            .or_else(|| a.first())?;
    }
    if let Some(s) = sub {
        v = get_ci(v, &s)?;
    }
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

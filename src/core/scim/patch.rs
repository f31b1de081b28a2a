//! Bodies and PATCH (RFC 7644 §3.3, §3.5.1, §3.5.2) on a resource's stored attributes: names
//! made canonical, values coerced to their schema types (Entra's `"False"` becomes `false`),
//! read-only attributes kept the server's. PATCH takes the RFC's forms and those Okta and
//! Entra send: capitalised ops, value-only replaces (`{"op":"Replace","value":{"active":
//! false}}`), paths behind the enterprise URN, member removal by `members[value eq "…"]` or by
//! a value list. Every operation applies to a copy: one that fails leaves the resource as it
//! was.

use serde_json::{Map, Value};

use super::filter::{Filter, get_ci};
use super::path::{self, AttrPath};
use super::schema::{Attr, SCHEMAS, Schemas, Ty};
use super::{MAX_PATCH_OPS, ScimError, ScimKind, ScimType};

fn invalid(m: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidValue, m)
}

/// A value coerced to an attribute's type (canonical sub-attribute names; unknown
/// sub-attributes dropped); `null` stays `null` (unassigned).
pub fn coerce(def: &Attr, v: &Value) -> Result<Value, ScimError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    if def.multi {
        let items: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            one => vec![one],
        };
        let mut out = Vec::with_capacity(items.len());
        for x in items {
            let c = coerce_one(def, x)?;
            if !c.is_null() && !out.contains(&c) {
                out.push(c);
            }
        }
        return Ok(Value::Array(out));
    }
    coerce_one(def, v)
}

fn coerce_one(def: &Attr, v: &Value) -> Result<Value, ScimError> {
    let wrong = || invalid(format!("{}: not a {:?} value", def.name, def.ty));
    Ok(match def.ty {
        Ty::Complex => {
            let o = match v {
                Value::Object(o) => o,
                // Entra sends a single-valued complex attribute as a one-element list
                // (`"path": "manager", "value": [{"value": "…"}]`).
                Value::Array(a) if a.len() == 1 && a[0].is_object() => {
                    return coerce_one(def, &a[0]);
                }
                // The enterprise manager given as its id alone.
                Value::String(id) if def.sub_attr("value").is_some() => {
                    return Ok(serde_json::json!({ "value": id }));
                }
                _ => return Err(wrong()),
            };
            let mut out = Map::new();
            for (k, x) in o {
                if let Some(sd) = def.sub_attr(k) {
                    let c = coerce(sd, x)?;
                    if !c.is_null() {
                        out.insert(sd.name.clone(), c);
                    }
                }
            }
            Value::Object(out)
        }
        Ty::Boolean => match v {
            Value::Bool(_) => v.clone(),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => return Err(wrong()),
        },
        Ty::Integer => match v {
            Value::Number(n) if n.is_i64() => v.clone(),
            Value::String(s) => s.trim().parse::<i64>().map_err(|_| wrong())?.into(),
            _ => return Err(wrong()),
        },
        Ty::Decimal => match v {
            Value::Number(_) => v.clone(),
            _ => return Err(wrong()),
        },
        Ty::String | Ty::DateTime => match v {
            Value::String(_) => v.clone(),
            Value::Number(n) => Value::String(n.to_string()),
            Value::Bool(b) => Value::String(b.to_string()),
            _ => return Err(wrong()),
        },
    })
}

/// A POST or PUT body as stored: canonical names, coerced values, no read-only attributes
/// (`id`, `meta`, `groups`), `schemas` recomputed. Unknown core attributes are ignored;
/// objects under an unknown URN are kept as sent (an attribute `discord_id_from` may name).
pub fn canonical_body(kind: ScimKind, input: &Value) -> Result<Value, ScimError> {
    let Value::Object(o) = input else {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
            "the body must be a JSON object",
        ));
    };
    let mut body = Value::Object(Map::new());
    for (k, v) in o {
        if k.eq_ignore_ascii_case("schemas") {
            continue;
        }
        set_key(kind, &mut body, k, v, true)?;
    }
    finish(kind, &mut body);
    Ok(body)
}

/// Sets `key` (an attribute, a dotted path, a URN-prefixed path or an extension URN holding
/// an object) to `v`; `replace_multi` replaces a multi-valued attribute (POST, PUT, replace)
/// rather than adding to it.
fn set_key(
    kind: ScimKind,
    body: &mut Value,
    key: &str,
    v: &Value,
    replace_multi: bool,
) -> Result<(), ScimError> {
    let (urn, rest) = SCHEMAS.split_urn(kind, key);
    if rest.is_empty() && urn.is_some_and(|u| u != kind.schema()) {
        let Value::Object(inner) = v else {
            return Err(invalid(format!("{key}: must be an object")));
        };
        for (k2, v2) in inner {
            set_key(kind, body, &format!("{key}:{k2}"), v2, replace_multi)?;
        }
        return Ok(());
    }
    if urn.is_none() && key.len() > 4 && key[..4].eq_ignore_ascii_case("urn:") {
        // An extension we do not describe: kept as sent.
        if let Value::Object(b) = body {
            b.insert(key.to_owned(), v.clone());
        }
        return Ok(());
    }
    let p = match path::parse(kind, key) {
        Ok(p) => p,
        // An unknown attribute in a body is ignored (RFC 7644 §3.3).
        Err(_) => return Ok(()),
    };
    let Some(def) = p.def(kind) else {
        return Ok(());
    };
    if def.read_only || def.name == "schemas" {
        return Ok(());
    }
    let op = if replace_multi {
        PatchOp::Replace
    } else {
        PatchOp::Add
    };
    apply_path(kind, body, &p, op, Some(v))
}

/// Sets `schemas` from what the body holds, and drops empty values.
pub fn finish(kind: ScimKind, body: &mut Value) {
    let Value::Object(o) = body else { return };
    o.retain(|_, v| match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(x) => !x.is_empty(),
        _ => true,
    });
    for ext in Schemas::extensions(kind) {
        if let Some(Value::Object(e)) = o.get_mut(*ext) {
            e.retain(|_, v| !v.is_null());
            if e.is_empty() {
                o.remove(*ext);
            }
        }
    }
    let mut schemas = vec![Value::String(kind.schema().into())];
    for ext in Schemas::extensions(kind) {
        if o.contains_key(*ext) {
            schemas.push(Value::String((*ext).into()));
        }
    }
    o.insert("schemas".into(), Value::Array(schemas));
}

/// A PATCH operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOp {
    /// add
    Add,
    /// remove
    Remove,
    /// replace
    Replace,
}

/// Applies a PatchOp message to `body` (a copy is changed; on error `body` is untouched).
pub fn apply(kind: ScimKind, body: &mut Value, msg: &Value) -> Result<(), ScimError> {
    let syntax = |m: &str| ScimError::bad(ScimType::InvalidSyntax, m.to_owned());
    let ops = get_ci(msg, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| syntax("a PATCH needs an Operations list"))?;
    if ops.len() > MAX_PATCH_OPS {
        return Err(ScimError::bad(ScimType::TooMany, "too many operations"));
    }
    let mut work = body.clone();
    for op in ops {
        let name = get_ci(op, "op")
            .and_then(Value::as_str)
            .ok_or_else(|| syntax("an operation needs \"op\""))?;
        let kind_op = match name.to_ascii_lowercase().as_str() {
            "add" => PatchOp::Add,
            "remove" => PatchOp::Remove,
            "replace" => PatchOp::Replace,
            _ => return Err(syntax("op must be add, remove or replace")),
        };
        let value = get_ci(op, "value");
        match get_ci(op, "path").and_then(Value::as_str) {
            Some(p) if !p.trim().is_empty() => {
                let ap = path::parse(kind, p)?;
                if let (Some(urn), true) = (ap.urn, ap.attr.is_empty()) {
                    // The whole extension: its attributes set, or all removed.
                    match (kind_op, value) {
                        (PatchOp::Remove, _) | (_, Some(Value::Null)) => {
                            if let Value::Object(o) = &mut work {
                                o.remove(urn);
                            }
                        }
                        (_, v) => set_key(
                            kind,
                            &mut work,
                            urn,
                            v.unwrap_or(&Value::Null),
                            kind_op == PatchOp::Replace,
                        )?,
                    }
                    continue;
                }
                if ap.def(kind).is_some_and(|d| d.read_only) {
                    return Err(ScimError::bad(
                        ScimType::Mutability,
                        format!("{p} is read-only"),
                    ));
                }
                if kind_op != PatchOp::Remove && value.is_none() {
                    return Err(invalid(format!("{name} {p}: a value is needed")));
                }
                apply_path(kind, &mut work, &ap, kind_op, value)?;
            }
            _ => {
                if kind_op == PatchOp::Remove {
                    return Err(ScimError::bad(ScimType::NoTarget, "remove needs a path"));
                }
                let Some(Value::Object(o)) = value else {
                    return Err(invalid("an operation without a path needs an object value"));
                };
                for (k, v) in o {
                    if ["schemas", "id", "meta"]
                        .iter()
                        .any(|x| k.eq_ignore_ascii_case(x))
                    {
                        continue;
                    }
                    set_key(kind, &mut work, k, v, kind_op == PatchOp::Replace)?;
                }
            }
        }
    }
    finish(kind, &mut work);
    *body = work;
    Ok(())
}

/// The object a path's attribute lives in (the extension's, created when `create`).
fn container<'b>(
    body: &'b mut Value,
    p: &AttrPath,
    create: bool,
) -> Option<&'b mut Map<String, Value>> {
    let root = body.as_object_mut()?;
    match p.urn {
        None => Some(root),
        Some(u) => {
            if !root.contains_key(u) {
                if !create {
                    return None;
                }
                root.insert(u.to_owned(), Value::Object(Map::new()));
            }
            root.get_mut(u)?.as_object_mut()
        }
    }
}

/// Applies one operation at a resolved path.
pub fn apply_path(
    kind: ScimKind,
    body: &mut Value,
    p: &AttrPath,
    op: PatchOp,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let def = p
        .def(kind)
        .ok_or_else(|| ScimError::bad(ScimType::InvalidPath, "unknown attribute"))?;
    if p.attr.is_empty() {
        return Err(ScimError::bad(
            ScimType::InvalidPath,
            "a path needs an attribute",
        ));
    }
    let removing = op == PatchOp::Remove || value.is_some_and(Value::is_null);
    let Some(obj) = container(body, p, !removing) else {
        return Ok(());
    };
    let key = obj
        .keys()
        .find(|k| k.eq_ignore_ascii_case(&p.attr))
        .cloned()
        .unwrap_or_else(|| def.name.clone());
    if let Some(f) = &p.filter {
        return apply_filtered(obj, &key, def, f, p.sub.as_deref(), op, value);
    }
    if let Some(sub) = &p.sub {
        return apply_sub(obj, &key, def, sub, op, value);
    }
    if op == PatchOp::Remove {
        match (value, def.multi) {
            // Entra: remove listed members ({"op":"Remove","path":"members","value":[…]}).
            (Some(v), true) if !v.is_null() => {
                let gone = coerce(def, v)?;
                let gone: Vec<&Value> = gone
                    .as_array()
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
                if let Some(Value::Array(a)) = obj.get_mut(&key) {
                    a.retain(|x| !gone.iter().any(|g| same_element(x, g)));
                }
            }
            _ => {
                obj.remove(&key);
            }
        }
        return Ok(());
    }
    let v = coerce(def, value.unwrap_or(&Value::Null))?;
    if v.is_null() {
        obj.remove(&key);
        return Ok(());
    }
    match (op, def.multi, obj.get_mut(&key)) {
        (PatchOp::Add, true, Some(Value::Array(have))) => {
            for x in v.as_array().into_iter().flatten() {
                if !have.iter().any(|h| same_element(h, x)) {
                    have.push(x.clone());
                }
            }
        }
        (PatchOp::Add | PatchOp::Replace, false, Some(Value::Object(have)))
            if def.ty == Ty::Complex =>
        {
            if let Value::Object(new) = v {
                have.extend(new);
            }
        }
        _ => {
            obj.insert(key, v);
        }
    }
    Ok(())
}

/// Two elements of a multi-valued attribute are the same when equal, or when both carry the
/// same `value` (members).
fn same_element(a: &Value, b: &Value) -> bool {
    a == b
        || match (a.get("value"), b.get("value")) {
            (Some(x), Some(y)) => {
                x == y
                    && (a.get("type") == b.get("type")
                        || a.get("type").is_none()
                        || b.get("type").is_none())
            }
            _ => false,
        }
}

/// `attr.sub`: on a single complex attribute, its sub-attribute; on a multi-valued one,
/// every element's (an empty list gets one element).
fn apply_sub(
    obj: &mut Map<String, Value>,
    key: &str,
    def: &Attr,
    sub: &str,
    op: PatchOp,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let sd = def
        .sub_attr(sub)
        .ok_or_else(|| ScimError::bad(ScimType::InvalidPath, "unknown sub-attribute"))?;
    let v = match (op, value) {
        (PatchOp::Remove, _) | (_, None) => Value::Null,
        (_, Some(v)) => coerce(sd, v)?,
    };
    let set = |e: &mut Value| {
        if let Value::Object(m) = e {
            if v.is_null() {
                m.remove(&sd.name);
            } else {
                m.insert(sd.name.clone(), v.clone());
            }
        }
    };
    match obj.get_mut(key) {
        Some(Value::Array(a)) if def.multi && !a.is_empty() => a.iter_mut().for_each(set),
        Some(e @ Value::Object(_)) if !def.multi => set(e),
        _ if v.is_null() => {}
        _ => {
            let mut m = Map::new();
            m.insert(sd.name.clone(), v.clone());
            let e = Value::Object(m);
            obj.insert(
                key.to_owned(),
                if def.multi { Value::Array(vec![e]) } else { e },
            );
        }
    }
    Ok(())
}

/// `attr[filter]` and `attr[filter].sub`.
fn apply_filtered(
    obj: &mut Map<String, Value>,
    key: &str,
    def: &Attr,
    f: &Filter,
    sub: Option<&str>,
    op: PatchOp,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let arr = obj
        .entry(key.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(items) = arr else {
        return Err(invalid(format!("{key} is not multi-valued")));
    };
    let hits = items.iter().filter(|e| f.matches(e)).count();
    if op == PatchOp::Remove {
        match sub.and_then(|s| def.sub_attr(s)) {
            None => items.retain(|e| !f.matches(e)),
            Some(sd) => items.iter_mut().filter(|e| f.matches(e)).for_each(|e| {
                if let Value::Object(m) = e {
                    m.remove(&sd.name);
                }
            }),
        }
        return Ok(());
    }
    let new = match sub.and_then(|s| def.sub_attr(s)) {
        Some(sd) => {
            let mut m = Map::new();
            m.insert(sd.name.clone(), coerce(sd, value.unwrap_or(&Value::Null))?);
            Value::Object(m)
        }
        None => {
            let mut one = def.clone();
            one.multi = false;
            coerce(&one, value.unwrap_or(&Value::Null))?
        }
    };
    let Value::Object(new) = new else {
        return Err(invalid(format!("{key}: expected an object")));
    };
    if hits == 0 {
        // Entra replaces `emails[type eq "work"].value` on a user with no work e-mail: the
        // element is created from the filter's equalities.
        let mut e = equalities(f).ok_or_else(|| {
            ScimError::bad(
                ScimType::NoTarget,
                format!("{key}: the filter matched nothing"),
            )
        })?;
        e.extend(new);
        items.push(Value::Object(e));
        return Ok(());
    }
    for e in items.iter_mut().filter(|e| f.matches(e)) {
        if let Value::Object(m) = e {
            m.extend(new.clone());
        }
    }
    Ok(())
}

/// The attribute values a filter of `eq`s joined by `and` pins, as an element.
fn equalities(f: &Filter) -> Option<Map<String, Value>> {
    match f {
        Filter::Cmp(o, super::filter::Op::Eq, v) => {
            let mut m = Map::new();
            m.insert(o.attr.clone(), v.clone());
            Some(m)
        }
        Filter::And(a, b) => {
            let mut m = equalities(a)?;
            m.extend(equalities(b)?);
            Some(m)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const ENT: &str = super::super::ENTERPRISE;

    fn user() -> Value {
        canonical_body(
            ScimKind::User,
            &json!({"userName": "a@x.test", "active": true,
                    "emails": [{"value": "a@x.test", "type": "work", "primary": true}]}),
        )
        .unwrap()
    }

    fn patch(b: &mut Value, ops: Value) -> Result<(), ScimError> {
        apply(
            ScimKind::User,
            b,
            &json!({"schemas": [super::super::PATCH_OP], "Operations": ops}),
        )
    }

    #[test]
    fn entra_and_okta_forms_apply() {
        let mut b = user();
        patch(
            &mut b,
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .unwrap();
        assert_eq!(b["active"], json!(false));
        patch(
            &mut b,
            json!([{"op": "replace", "value": {"active": true}}]),
        )
        .unwrap();
        assert_eq!(b["active"], json!(true));
        patch(
            &mut b,
            json!([{"op": "Add", "path": format!("{ENT}:department"), "value": "Sales"},
                   {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b@x.test"},
                   {"op": "Replace", "path": format!("{ENT}:manager"), "value": {"value": "m1"}},
                   {"op": "Replace", "value": {"name.givenName": "Bea"}}]),
        )
        .unwrap();
        assert_eq!(b[ENT]["department"], json!("Sales"));
        assert_eq!(b[ENT]["manager"]["value"], json!("m1"));
        assert_eq!(b["emails"][0]["value"], json!("b@x.test"));
        assert_eq!(b["name"]["givenName"], json!("Bea"));
        assert!(b["schemas"].as_array().unwrap().contains(&json!(ENT)));
    }

    #[test]
    fn a_failing_operation_changes_nothing() {
        let mut b = user();
        let before = b.clone();
        let e = patch(
            &mut b,
            json!([{"op": "replace", "path": "title", "value": "Boss"},
                   {"op": "replace", "path": "shoeSize", "value": 9}]),
        )
        .unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
        assert_eq!(b, before);
    }

    #[test]
    fn group_members_add_and_remove() {
        let mut g = canonical_body(ScimKind::Group, &json!({"displayName": "Eng"})).unwrap();
        let ops = |o: Value| json!({"Operations": o});
        apply(
            ScimKind::Group,
            &mut g,
            &ops(json!([{"op": "add", "path": "members",
            "value": [{"value": "u1"}, {"value": "u2"}]}])),
        )
        .unwrap();
        apply(
            ScimKind::Group,
            &mut g,
            &ops(json!([{"op": "add", "path": "members",
            "value": [{"value": "u1"}]}])),
        )
        .unwrap();
        assert_eq!(g["members"].as_array().unwrap().len(), 2);
        apply(
            ScimKind::Group,
            &mut g,
            &ops(json!([{"op": "remove",
            "path": "members[value eq \"u1\"]"}])),
        )
        .unwrap();
        apply(
            ScimKind::Group,
            &mut g,
            &ops(json!([{"op": "Remove", "path": "members",
            "value": [{"value": "u2"}]}])),
        )
        .unwrap();
        assert!(g.get("members").is_none());
    }
}

//! Attribute paths (RFC 7644 §3.10, §3.5.2): `userName`, `name.givenName`,
//! `emails[type eq "work"].value`, `members[value eq "id"]`, each optionally behind a schema
//! URN (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`). A path is
//! resolved against the schemas: an unknown attribute is an error.

use super::filter::{self, Filter};
use super::schema::{Attr, SCHEMAS};
use super::{ScimError, ScimKind, ScimType};

/// A resolved attribute path.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrPath {
    /// The extension URN the attribute lives under (None: the core schema or common).
    pub urn: Option<&'static str>,
    /// The top-level attribute (canonical name); empty when the path is only a URN.
    pub attr: String,
    /// A value filter on a multi-valued attribute (`emails[type eq "work"]`).
    pub filter: Option<Box<Filter>>,
    /// A sub-attribute (canonical name).
    pub sub: Option<String>,
}

impl AttrPath {
    /// The top-level attribute's definition.
    pub fn def(&self, kind: ScimKind) -> Option<&'static Attr> {
        SCHEMAS.attr(kind, self.urn, &self.attr)
    }

    /// The definition of what the path names (the sub-attribute when there is one).
    pub fn leaf(&self, kind: ScimKind) -> Option<&'static Attr> {
        let top = self.def(kind)?;
        match &self.sub {
            Some(s) => top.sub_attr(s),
            None => Some(top),
        }
    }

    /// Whether the path names `name` at the top (core schema).
    pub fn is(&self, name: &str) -> bool {
        self.urn.is_none() && self.attr.eq_ignore_ascii_case(name) && self.sub.is_none()
    }
}

/// Resolves `name` (and an optional sub-attribute) of `kind`; `err` is the scimType used
/// when it is unknown.
pub fn resolve(
    kind: ScimKind,
    raw: &str,
    err: ScimType,
) -> Result<(Option<&'static str>, String, Option<String>), ScimError> {
    let (urn, rest) = SCHEMAS.split_urn(kind, raw);
    if rest.is_empty() {
        return match urn {
            Some(u) if u != kind.schema() => Ok((Some(u), String::new(), None)),
            _ => Err(ScimError::bad(err, format!("\"{raw}\" names no attribute"))),
        };
    }
    let (top, sub) = match rest.split_once('.') {
        Some((t, s)) => (t, Some(s)),
        None => (rest, None),
    };
    let mut urn = urn.filter(|u| *u != kind.schema());
    let unknown = || ScimError::bad(err, format!("unknown attribute \"{raw}\""));
    // Entra names enterprise attributes without their URN (`"path": "manager"`): a core
    // name that no core attribute has is looked up in the extensions.
    if urn.is_none() && SCHEMAS.attr(kind, None, top).is_none() {
        urn = super::schema::Schemas::extensions(kind)
            .iter()
            .copied()
            .find(|e| SCHEMAS.attr(kind, Some(e), top).is_some());
    }
    let def = SCHEMAS.attr(kind, urn, top).ok_or_else(unknown)?;
    let sub = match sub {
        None => None,
        Some(s) => Some(def.sub_attr(s).ok_or_else(unknown)?.name.clone()),
    };
    Ok((urn, def.name.clone(), sub))
}

/// Parses a PATCH `path`.
pub fn parse(kind: ScimKind, raw: &str) -> Result<AttrPath, ScimError> {
    let raw = raw.trim();
    let bad = |m: &str| ScimError::bad(ScimType::InvalidPath, format!("path \"{raw}\": {m}"));
    if raw.is_empty() {
        return Err(bad("empty"));
    }
    let Some(open) = raw.find('[') else {
        let (urn, attr, sub) = resolve(kind, raw, ScimType::InvalidPath)?;
        return Ok(AttrPath {
            urn,
            attr,
            filter: None,
            sub,
        });
    };
    let close = raw.rfind(']').ok_or_else(|| bad("an unclosed ["))?;
    if close < open {
        return Err(bad("] before ["));
    }
    let (urn, attr, sub) = resolve(kind, &raw[..open], ScimType::InvalidPath)?;
    if sub.is_some() {
        return Err(bad("a filter must follow the attribute"));
    }
    let def = SCHEMAS
        .attr(kind, urn, &attr)
        .ok_or_else(|| bad("unknown attribute"))?;
    if !def.multi {
        return Err(bad("a filter needs a multi-valued attribute"));
    }
    let inner = filter::parse_within(kind, def, &raw[open + 1..close])
        .map_err(|e| ScimError::bad(ScimType::InvalidPath, e.detail))?;
    let tail = &raw[close + 1..];
    let sub = match tail.strip_prefix('.') {
        None if tail.is_empty() => None,
        None => return Err(bad("unexpected text after ]")),
        Some(s) => Some(
            def.sub_attr(s)
                .ok_or_else(|| bad("unknown sub-attribute"))?
                .name
                .clone(),
        ),
    };
    Ok(AttrPath {
        urn,
        attr,
        filter: Some(Box::new(inner)),
        sub,
    })
}

//! The schemas Quartermaster serves (`schemas.json`: RFC 7643's User, Group and enterprise
//! extension, less the attributes it has no use for — password, ims, photos, addresses,
//! entitlements, roles, x509Certificates — plus its own extension), read once into attribute
//! definitions that the filter, PATCH and projection code consult.

use std::sync::LazyLock;

use serde_json::Value;

use super::{ENTERPRISE, QM_EXTENSION, ScimKind};

/// The schemas, as served by `/Schemas` (without `meta`).
pub const SCHEMAS_JSON: &str = include_str!("schemas.json");

/// An attribute's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// A string (also `reference` and `binary`).
    String,
    /// A boolean.
    Boolean,
    /// A decimal.
    Decimal,
    /// An integer.
    Integer,
    /// An RFC 3339 moment.
    DateTime,
    /// A complex attribute (sub-attributes).
    Complex,
}

/// One attribute's definition.
#[derive(Debug, Clone)]
pub struct Attr {
    /// Its canonical name.
    pub name: String,
    /// Its type.
    pub ty: Ty,
    /// Multi-valued.
    pub multi: bool,
    /// Compared case-sensitively.
    pub case_exact: bool,
    /// Only the server sets it.
    pub read_only: bool,
    /// `returned`: `always`, `never`, `default` or `request`.
    pub returned: String,
    /// Sub-attributes (complex).
    pub sub: Vec<Attr>,
}

impl Attr {
    fn read(v: &Value) -> Self {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
        let ty = match s("type") {
            "boolean" => Ty::Boolean,
            "decimal" => Ty::Decimal,
            "integer" => Ty::Integer,
            "dateTime" => Ty::DateTime,
            "complex" => Ty::Complex,
            _ => Ty::String,
        };
        Self {
            name: s("name").to_owned(),
            ty,
            multi: v.get("multiValued").and_then(Value::as_bool) == Some(true),
            case_exact: v.get("caseExact").and_then(Value::as_bool) == Some(true),
            read_only: s("mutability") == "readOnly",
            returned: s("returned").to_owned(),
            sub: v
                .get("subAttributes")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(Self::read).collect())
                .unwrap_or_default(),
        }
    }

    fn simple(name: &str, ty: Ty, case_exact: bool, read_only: bool) -> Self {
        Self {
            name: name.into(),
            ty,
            multi: false,
            case_exact,
            read_only,
            returned: "default".into(),
            sub: Vec::new(),
        }
    }

    /// A sub-attribute by name (case-insensitive).
    pub fn sub_attr(&self, name: &str) -> Option<&Attr> {
        self.sub.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// One schema: its URN and attributes.
#[derive(Debug, Clone)]
pub struct Schema {
    /// The URN.
    pub id: String,
    /// Its attributes.
    pub attrs: Vec<Attr>,
}

impl Schema {
    /// An attribute by name (case-insensitive).
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// Every schema served, and the common attributes (`id`, `externalId`, `meta`).
#[derive(Debug)]
pub struct Schemas {
    /// The schemas, in `/Schemas` order.
    pub all: Vec<Schema>,
    /// `id`, `externalId`, `meta`, `schemas`.
    pub common: Vec<Attr>,
}

/// The schemas, read once.
pub static SCHEMAS: LazyLock<Schemas> = LazyLock::new(|| {
    let v: Value = serde_json::from_str(SCHEMAS_JSON).unwrap_or(Value::Null);
    let all = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| Schema {
                    id: s
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                    attrs: s
                        .get("attributes")
                        .and_then(Value::as_array)
                        .map(|x| x.iter().map(Attr::read).collect())
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut meta = Attr::simple("meta", Ty::Complex, false, true);
    meta.sub = vec![
        Attr::simple("resourceType", Ty::String, true, true),
        Attr::simple("created", Ty::DateTime, false, true),
        Attr::simple("lastModified", Ty::DateTime, false, true),
        Attr::simple("location", Ty::String, true, true),
        Attr::simple("version", Ty::String, true, true),
    ];
    let mut id = Attr::simple("id", Ty::String, true, true);
    id.returned = "always".into();
    let mut schemas = Attr::simple("schemas", Ty::String, true, false);
    schemas.multi = true;
    schemas.returned = "always".into();
    Schemas {
        all,
        common: vec![
            id,
            Attr::simple("externalId", Ty::String, true, false),
            meta,
            schemas,
        ],
    }
});

impl Schemas {
    /// A schema by URN (case-insensitive).
    pub fn schema(&self, urn: &str) -> Option<&Schema> {
        self.all.iter().find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// The extension URNs a kind may carry.
    pub fn extensions(kind: ScimKind) -> &'static [&'static str] {
        match kind {
            ScimKind::User => &[ENTERPRISE, QM_EXTENSION],
            ScimKind::Group => &[],
        }
    }

    /// The URNs a resource of `kind` may name: its core schema and extensions.
    pub fn urns(kind: ScimKind) -> Vec<&'static str> {
        let mut v = vec![kind.schema()];
        v.extend_from_slice(Self::extensions(kind));
        v
    }

    /// A top-level attribute of `kind`: common, core (when `urn` is None or the core URN) or
    /// an extension's (when `urn` names it).
    pub fn attr(&self, kind: ScimKind, urn: Option<&str>, name: &str) -> Option<&Attr> {
        match urn {
            None => self
                .common
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(name))
                .or_else(|| self.schema(kind.schema())?.attr(name)),
            Some(u) if u.eq_ignore_ascii_case(kind.schema()) => self
                .common
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(name))
                .or_else(|| self.schema(kind.schema())?.attr(name)),
            Some(u) => {
                if !Self::extensions(kind)
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(u))
                {
                    return None;
                }
                self.schema(u)?.attr(name)
            }
        }
    }

    /// Splits a schema URN off the front of `path` (`urn:…:User:manager.value` → the
    /// enterprise URN and `manager.value`); a path that is only a URN gives an empty rest.
    pub fn split_urn<'p>(&self, kind: ScimKind, path: &'p str) -> (Option<&'static str>, &'p str) {
        if path.len() < 4 || !path[..4].eq_ignore_ascii_case("urn:") {
            return (None, path);
        }
        for u in Self::urns(kind) {
            if path.len() >= u.len() && path[..u.len()].eq_ignore_ascii_case(u) {
                let rest = &path[u.len()..];
                if rest.is_empty() {
                    return (Some(u), "");
                }
                if let Some(r) = rest.strip_prefix(':') {
                    return (Some(u), r);
                }
            }
        }
        (None, path)
    }
}

/// The `/ResourceTypes` entries (without `meta`).
pub fn resource_type(kind: ScimKind) -> Value {
    let ext: Vec<Value> = Schemas::extensions(kind)
        .iter()
        .map(|e| serde_json::json!({"schema": e, "required": false}))
        .collect();
    let mut v = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": kind.as_str(),
        "name": kind.as_str(),
        "description": match kind {
            ScimKind::User => "A person (maps to a Quartermaster person)",
            ScimKind::Group => "A group (maps to a department or role by rules)",
        },
        "endpoint": format!("/{}", kind.endpoint()),
        "schema": kind.schema(),
    });
    if !ext.is_empty() {
        v["schemaExtensions"] = Value::Array(ext);
    }
    v
}

/// The `/ServiceProviderConfig` body (without `meta`).
pub fn service_provider_config() -> Value {
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": super::MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A static bearer token ([scim_server] token_env)",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "primary": true
        }]
    })
}

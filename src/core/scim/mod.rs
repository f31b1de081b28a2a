//! Inbound SCIM 2.0 (RFC 7643, RFC 7644): Quartermaster as the *service provider* an identity
//! provider (Okta, Entra ID…) pushes people to. Pure: the schemas (`schema`), attribute paths
//! (`path`), filters (`filter`), PATCH (`patch`), a resource's wire form (`resource`) and how a
//! user maps to a person (`mapping`). The use case is `core::service::scim`; the routes are
//! `http::scim`. Nothing here knows the SCIM *client* connector (`connectors::scim`).

pub mod filter;
pub mod mapping;
pub mod patch;
pub mod path;
pub mod resource;
pub mod schema;

use std::fmt;

use serde_json::Value;

use super::model::{Handle, Timestamp};

/// The core User schema.
pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema.
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The enterprise User extension (employeeNumber, department, manager…).
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Quartermaster's own User extension (`discordId`).
pub const QM_EXTENSION: &str = "urn:ietf:params:scim:schemas:extension:quartermaster:2.0:User";
/// A list response.
pub const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// A PATCH request.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// An error response.
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// A search request (`POST /.search`).
pub const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// The most resources one list answer holds (`count` is capped to it).
pub const MAX_RESULTS: usize = 1000;
/// The most operations one PATCH may carry.
pub const MAX_PATCH_OPS: usize = 1000;

/// Which resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScimKind {
    /// `/Users`.
    User,
    /// `/Groups`.
    Group,
}

impl ScimKind {
    /// The resource type's name (`User`, `Group`), stored and shown in `meta.resourceType`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
        }
    }
    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "User" => Some(Self::User),
            "Group" => Some(Self::Group),
            _ => None,
        }
    }
    /// The endpoint (`Users`, `Groups`).
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::User => "Users",
            Self::Group => "Groups",
        }
    }
    /// The core schema's URN.
    pub fn schema(self) -> &'static str {
        match self {
            Self::User => USER,
            Self::Group => GROUP,
        }
    }
}

/// The `scimType` of a 400 or 409 (RFC 7644 §3.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    /// The request body is not valid JSON or not a valid message.
    InvalidSyntax,
    /// The filter is malformed or names an unknown attribute.
    InvalidFilter,
    /// A value is missing, of the wrong type or not acceptable.
    InvalidValue,
    /// A PATCH path is malformed or names an unknown attribute.
    InvalidPath,
    /// A PATCH path with a filter matched nothing.
    NoTarget,
    /// An attempt to change a read-only attribute.
    Mutability,
    /// A unique value (userName) is someone else's.
    Uniqueness,
    /// Too many operations or results.
    TooMany,
}

impl ScimType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidSyntax => "invalidSyntax",
            Self::InvalidFilter => "invalidFilter",
            Self::InvalidValue => "invalidValue",
            Self::InvalidPath => "invalidPath",
            Self::NoTarget => "noTarget",
            Self::Mutability => "mutability",
            Self::Uniqueness => "uniqueness",
            Self::TooMany => "tooMany",
        }
    }
}

/// A SCIM protocol error: its HTTP status, `scimType` and `detail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    /// The HTTP status.
    pub status: u16,
    /// The `scimType`, for 400s and 409s.
    pub scim_type: Option<ScimType>,
    /// A sentence for the identity provider's log (never a secret, never database text).
    pub detail: String,
}

impl ScimError {
    /// A 400 of this type.
    pub fn bad(t: ScimType, detail: impl Into<String>) -> Self {
        Self {
            status: 400,
            scim_type: Some(t),
            detail: detail.into(),
        }
    }
    /// 404: no such resource.
    pub fn not_found(kind: ScimKind, id: &str) -> Self {
        Self {
            status: 404,
            scim_type: None,
            detail: format!("{} {id} not found", kind.as_str()),
        }
    }
    /// 409 uniqueness.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self {
            status: 409,
            scim_type: Some(ScimType::Uniqueness),
            detail: detail.into(),
        }
    }
    /// 412: `If-Match` names another version.
    pub fn precondition(version: i64) -> Self {
        Self {
            status: 412,
            scim_type: None,
            detail: format!("the resource is at version W/\"{version}\""),
        }
    }
    /// The error response body.
    pub fn body(&self) -> Value {
        let mut v = serde_json::json!({
            "schemas": [ERROR],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            v["scimType"] = Value::String(t.as_str().to_owned());
        }
        v
    }
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scim_type {
            Some(t) => write!(f, "{} {}: {}", self.status, t.as_str(), self.detail),
            None => write!(f, "{}: {}", self.status, self.detail),
        }
    }
}

impl std::error::Error for ScimError {}

/// A stored SCIM resource: the attributes the identity provider sent (canonical names,
/// without `id` and `meta`), with the columns it is looked up by.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimResource {
    /// Its `id`: given by us, never changed.
    pub id: String,
    /// User or Group.
    pub kind: ScimKind,
    /// `userName` (Users) or `displayName` (Groups), as sent.
    pub name: String,
    /// `externalId`, if any.
    pub external_id: Option<String>,
    /// The handle the user maps to, fixed when it was first mapped (Users only).
    pub handle: Option<Handle>,
    /// `active` (Groups: always true).
    pub active: bool,
    /// `meta.version`: 1 on creation, one more on each write.
    pub version: i64,
    /// `meta.created`.
    pub created: Timestamp,
    /// `meta.lastModified`.
    pub modified: Timestamp,
    /// Every attribute (a JSON object), `schemas` included.
    pub body: Value,
    /// The groups a user is a member of, as read with it (not written: membership is the
    /// groups' own).
    pub groups: Vec<resource::GroupRef>,
}

// A JSON value holds no NaN (serde_json refuses it), so equality is total.
impl Eq for ScimResource {}

impl ScimResource {
    /// The ETag of its version (weak: RFC 7644 §3.14).
    pub fn etag(&self) -> String {
        etag(self.version)
    }
    /// Members' ids (Groups).
    pub fn member_ids(&self) -> Vec<String> {
        self.body
            .get("members")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.get("value").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The ETag of version `v`.
pub fn etag(v: i64) -> String {
    format!("W/\"{v}\"")
}

/// Whether an `If-Match` header value admits version `v` (`*`, or a list holding its ETag,
/// weak or strong).
pub fn if_match_admits(header: &str, v: i64) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/").trim_matches('"') == v.to_string().as_str())
}

/// A resource write, committed with the lifecycle change it causes (one transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScimWrite {
    /// Insert (`expected` None) or replace the stored version `expected` (fails with a
    /// conflict when it moved).
    Put {
        /// The resource as it now stands (its `version` already the new one).
        resource: ScimResource,
        /// The version read, when replacing.
        expected: Option<i64>,
        /// When replacing: whether its name, `externalId`, handle and `active` are those of
        /// the version read, so only its body, version and time are written (the indexed
        /// columns are left as they are, a tenth of the cost of an update that sets them).
        same_keys: bool,
    },
    /// Delete, if still at the version read.
    Delete {
        /// Its kind.
        kind: ScimKind,
        /// Its id.
        id: String,
        /// The version read.
        expected: i64,
    },
}

/// How a joiner or leaver the identity provider sends is acted on (`[scim_server] joiner`,
/// `leaver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// A plan IT confirms (the default).
    #[default]
    Plan,
    /// At once (`joiner = "auto"`, `leaver = "immediate"`).
    Now,
}

/// A mapping rule (`[[scim_server.rule]]`): when every matcher given holds, the rule gives a
/// role and/or a department. The first rule that gives a role wins, likewise a department.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// `when_title`: the user's `title` equals this (case-insensitive).
    pub title: Option<String>,
    /// `when_department`: the enterprise `department` equals this (case-insensitive).
    pub department: Option<String>,
    /// `when_group`: the user is a member of a group with this `displayName`.
    pub group: Option<String>,
    /// `role`: the role it gives.
    pub role: Option<super::model::RoleName>,
    /// `department`: the department it gives.
    pub set_department: Option<String>,
}

/// `[scim_server]`'s mapping and modes, as the core uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimSettings {
    /// `joiner`.
    pub joiner: Mode,
    /// `leaver`.
    pub leaver: Mode,
    /// `handle_from`: the attribute path the handle comes from (its local part when it holds
    /// an `@`); default `userName`.
    pub handle_from: String,
    /// `discord_id_from`: the attribute path holding a Discord user id, if any.
    pub discord_id_from: Option<String>,
    /// `default_role`: the role of a user no rule gives one.
    pub default_role: Option<super::model::RoleName>,
    /// `[[scim_server.rule]]`, in file order.
    pub rules: Vec<Rule>,
}

impl Default for ScimSettings {
    /// The defaults: plans for joiners and leavers, the handle from `userName`, the Discord id
    /// from Quartermaster's extension, no default role, no rules.
    fn default() -> Self {
        Self {
            joiner: Mode::Plan,
            leaver: Mode::Plan,
            handle_from: "userName".into(),
            discord_id_from: Some(format!("{QM_EXTENSION}:discordId")),
            default_role: None,
            rules: Vec::new(),
        }
    }
}

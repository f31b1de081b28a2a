//! How a SCIM user maps to a person (`[scim_server]`): the handle from `handle_from` (its
//! local part when it holds an `@`), the role and department from the first rules that give
//! them (matching `title`, the enterprise `department` or group membership), else
//! `default_role` and the enterprise `department`; the manager from the enterprise
//! `manager.value`; the Discord id from `discord_id_from`; the time zone from `timezone`.

use serde_json::Value;

use super::resource::string_at;
use super::{ENTERPRISE, ScimError, ScimKind, ScimSettings, ScimType};
use crate::core::model::{Email, Handle, Person, PersonStatus, RoleName};
use crate::core::validate;

fn invalid(m: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidValue, m)
}

/// The handle a new user maps to.
pub fn handle_of(s: &ScimSettings, body: &Value) -> Result<Handle, ScimError> {
    let raw = string_at(ScimKind::User, body, &s.handle_from).ok_or_else(|| {
        invalid(format!(
            "{} is empty: it gives the person's handle ([scim_server] handle_from)",
            s.handle_from
        ))
    })?;
    let local = raw.split('@').next().unwrap_or_default().to_lowercase();
    let slug: String = local
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    Handle::parse(slug.trim_matches('-')).map_err(|e| invalid(format!("{}: {e}", s.handle_from)))
}

/// The enterprise `manager.value` (a user's id), when set.
pub fn manager_id(body: &Value) -> Option<String> {
    string_at(ScimKind::User, body, &format!("{ENTERPRISE}:manager.value"))
}

/// Whether the user is active (absent means active).
pub fn active(body: &Value) -> bool {
    !matches!(
        super::filter::get_ci(body, "active"),
        Some(Value::Bool(false))
    )
}

/// The role and department the rules give (role: else `default_role`; department: else the
/// enterprise `department`).
pub fn role_and_department(
    s: &ScimSettings,
    body: &Value,
    groups: &[String],
) -> Result<(RoleName, String), ScimError> {
    let at = |p: &str| string_at(ScimKind::User, body, p);
    let title = at("title");
    let dept = at(&format!("{ENTERPRISE}:department"));
    let eq = |want: &Option<String>, have: &Option<String>| match want {
        None => true,
        Some(w) => have.as_ref().is_some_and(|h| h.eq_ignore_ascii_case(w)),
    };
    let matching = s.rules.iter().filter(|r| {
        eq(&r.title, &title)
            && eq(&r.department, &dept)
            && r.group
                .as_ref()
                .is_none_or(|g| groups.iter().any(|x| x.eq_ignore_ascii_case(g)))
    });
    let mut role = None;
    let mut department = None;
    for r in matching {
        role = role.or(r.role.clone());
        department = department.or(r.set_department.clone());
    }
    let role = role.or(s.default_role.clone()).ok_or_else(|| {
        invalid(
            "no [[scim_server.rule]] gives this user a role, and [scim_server] has no \
             default_role",
        )
    })?;
    Ok((role, department.or(dept).unwrap_or_default()))
}

/// The e-mail address a user's person has: the primary of `emails`, else the userName when
/// it is an address.
pub fn email_of(body: &Value) -> Option<Email> {
    let at = |p: &str| string_at(ScimKind::User, body, p);
    at("emails.value")
        .and_then(|e| Email::parse(&e).ok())
        .or_else(|| at("userName").and_then(|u| Email::parse(&u).ok()))
}

/// The person an active user maps to (`manager` already resolved to a handle); None while
/// the user has no e-mail address (in `emails`, or as the userName): a person's e-mail is
/// their account name in most targets, so such a user is kept as a resource only, and
/// becomes a person when an address arrives.
pub fn person(
    s: &ScimSettings,
    handle: &Handle,
    body: &Value,
    groups: &[String],
    manager: Option<Handle>,
) -> Result<Option<Person>, ScimError> {
    let at = |p: &str| string_at(ScimKind::User, body, p);
    let Some(email) = email_of(body) else {
        return Ok(None);
    };
    let name = at("displayName")
        .or_else(|| at("name.formatted"))
        .or_else(|| {
            let n = [at("name.givenName"), at("name.familyName")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (!n.is_empty()).then_some(n)
        })
        .or_else(|| at("userName"))
        .unwrap_or_else(|| handle.to_string());
    let (role, department) = role_and_department(s, body, groups)?;
    // A value that is not a Discord id (or an IANA zone) is left out, not refused: the
    // identity provider holds many people who never use Discord.
    let discord_id = s
        .discord_id_from
        .as_deref()
        .and_then(at)
        .filter(|d| validate::discord_id(d).is_ok());
    let timezone = at("timezone").and_then(|z| validate::timezone(&z).ok());
    let p = Person {
        handle: handle.clone(),
        name: name.chars().take(validate::MAX_NAME_CHARS).collect(),
        email,
        department: department
            .chars()
            .take(validate::MAX_DEPARTMENT_CHARS)
            .collect(),
        role,
        manager: manager.filter(|m| m != handle),
        discord_id,
        status: PersonStatus::Active,
        timezone,
    };
    validate::person(&p).map_err(|e| invalid(e.to_string()))?;
    Ok(Some(p))
}

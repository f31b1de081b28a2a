//! The one set of rules on person records and HR event ids, shared by the HR feed,
//! `import people` and `/onboard`: length limits, no control characters, Discord ids as
//! snowflakes, and no manager cycles. Handles, roles and managers are already checked by
//! their newtypes (at most 64 characters of `[a-z0-9._-]`). Every refusal names its field.

use std::fmt;

use super::model::{Handle, Person, Zone};

/// The longest full name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The longest department name, in characters.
pub const MAX_DEPARTMENT_CHARS: usize = 100;
/// The longest email address, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;
/// The longest HR event id, in bytes.
pub const MAX_EVENT_ID_BYTES: usize = 128;
/// A Discord user id is a snowflake: a 64-bit number, written with 17 to 20 digits.
pub const DISCORD_ID_DIGITS: std::ops::RangeInclusive<usize> = 17..=20;
/// How many managers up a chain is followed before it counts as a cycle.
pub const MAX_MANAGER_CHAIN: usize = 256;

/// A refused field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field's name as the record writes it (`name`, `email`, `discord_id`…).
    pub field: &'static str,
    /// What is wrong, without repeating the (possibly huge) value.
    pub message: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for Invalid {}

fn bad(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        message: message.into(),
    }
}

/// Refuses control characters (NUL, newlines, DEL, C1…) and text over `max` characters.
fn text(field: &'static str, s: &str, max: usize) -> Result<(), Invalid> {
    if s.chars().nth(max).is_some() {
        return Err(bad(field, format!("longer than {max} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(bad(field, "must not contain control characters"));
    }
    Ok(())
}

/// Checks an HR event id: 1 to 128 bytes, no control characters.
pub fn event_id(id: &str) -> Result<(), Invalid> {
    if id.trim().is_empty() {
        return Err(bad("id", "must not be empty"));
    }
    if id.len() > MAX_EVENT_ID_BYTES {
        return Err(bad("id", format!("longer than {MAX_EVENT_ID_BYTES} bytes")));
    }
    text("id", id, MAX_EVENT_ID_BYTES)
}

/// Checks a Discord user id: 17 to 20 ASCII digits that fit in 64 bits.
pub fn discord_id(id: &str) -> Result<(), Invalid> {
    let digits = id.len();
    if !DISCORD_ID_DIGITS.contains(&digits)
        || !id.bytes().all(|b| b.is_ascii_digit())
        || id.parse::<u64>().is_err()
    {
        return Err(bad(
            "discord_id",
            "not a Discord user id (a number of 17 to 20 digits)",
        ));
    }
    Ok(())
}

/// Reads a person's `timezone`: an IANA name (a typo gets a "did you mean").
pub fn timezone(s: &str) -> Result<Zone, Invalid> {
    Zone::parse(s).map_err(|e| bad("timezone", e.0))
}

/// Checks a person record's free-text fields and Discord id.
pub fn person(p: &Person) -> Result<(), Invalid> {
    text("name", &p.name, MAX_NAME_CHARS)?;
    if p.name.trim().is_empty() {
        return Err(bad("name", "must not be empty"));
    }
    if p.email.as_str().len() > MAX_EMAIL_BYTES {
        return Err(bad("email", format!("longer than {MAX_EMAIL_BYTES} bytes")));
    }
    text("email", p.email.as_str(), MAX_EMAIL_BYTES)?;
    text("department", &p.department, MAX_DEPARTMENT_CHARS)?;
    if let Some(d) = &p.discord_id {
        discord_id(d)?;
    }
    Ok(())
}

/// Refuses a manager that would close a cycle: following `manager_of` up from `manager` must
/// not lead back to `subject` (nor loop, nor run longer than [`MAX_MANAGER_CHAIN`]).
/// `manager_of` answers a person's current manager (None: none, or unknown).
pub fn manager_cycle(
    subject: &Handle,
    manager: Option<&Handle>,
    mut manager_of: impl FnMut(&Handle) -> Option<Handle>,
) -> Result<(), Invalid> {
    let Some(first) = manager else {
        return Ok(());
    };
    let mut chain = vec![subject.clone()];
    let mut cur = first.clone();
    loop {
        if chain.contains(&cur) {
            chain.push(cur);
            let shown: Vec<&str> = chain.iter().map(Handle::as_str).collect();
            return Err(bad(
                "manager",
                format!("would make a manager cycle: {}", shown.join(" → ")),
            ));
        }
        if chain.len() > MAX_MANAGER_CHAIN {
            return Err(bad(
                "manager",
                format!("the manager chain is longer than {MAX_MANAGER_CHAIN}"),
            ));
        }
        let next = manager_of(&cur);
        chain.push(cur);
        match next {
            Some(n) => cur = n,
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use super::*;
    use crate::core::model::{Email, PersonStatus, RoleName};

    fn h(s: &str) -> Handle {
        Handle::parse(s).unwrap()
    }

    fn lena() -> Person {
        Person {
            handle: h("lena"),
            name: "Lena Roy".into(),
            email: Email::parse("lena@acme.test").unwrap(),
            department: "Design".into(),
            role: RoleName::parse("designer").unwrap(),
            manager: Some(h("grace")),
            discord_id: Some("100000000000000011".into()),
            status: PersonStatus::Active,
            timezone: None,
        }
    }

    #[test]
    fn a_plain_record_passes() {
        assert_eq!(person(&lena()), Ok(()));
        assert_eq!(event_id("evt-1"), Ok(()));
    }

    #[test]
    fn every_field_has_a_limit_and_is_named() {
        let mut p = lena();
        p.name = "x".repeat(MAX_NAME_CHARS);
        assert_eq!(person(&p), Ok(()));
        p.name.push('x');
        assert_eq!(person(&p).unwrap_err().field, "name");
        let mut p = lena();
        p.department = "d".repeat(MAX_DEPARTMENT_CHARS + 1);
        assert_eq!(person(&p).unwrap_err().field, "department");
        let mut p = lena();
        p.email = Email::parse(&format!("{}@acme.test", "a".repeat(250))).unwrap();
        assert_eq!(person(&p).unwrap_err().field, "email");
        assert_eq!(event_id(&"e".repeat(129)).unwrap_err().field, "id");
        assert_eq!(event_id(&"e".repeat(128)), Ok(()));
        // The message does not echo the value.
        assert!(
            event_id(&"e".repeat(100_000))
                .unwrap_err()
                .to_string()
                .len()
                < 60
        );
    }

    #[test]
    fn control_characters_are_refused() {
        let mut p = lena();
        p.email = Email::parse("le\0na@acme.test").unwrap();
        assert_eq!(
            person(&p).unwrap_err().to_string(),
            "email: must not contain control characters"
        );
        let mut p = lena();
        p.name = "Lena\nRoy".into();
        assert_eq!(person(&p).unwrap_err().field, "name");
        let mut p = lena();
        p.department = "De\u{7f}sign".into();
        assert_eq!(person(&p).unwrap_err().field, "department");
        assert_eq!(event_id("a\0b").unwrap_err().field, "id");
    }

    #[test]
    fn discord_ids_are_snowflakes() {
        for bad in [
            "",
            "42",
            "abc",
            "1000000000000000a1",
            "100000000000000000000000",
            "99999999999999999999",
        ] {
            let mut p = lena();
            p.discord_id = Some(bad.into());
            assert_eq!(person(&p).unwrap_err().field, "discord_id", "{bad}");
        }
        assert_eq!(discord_id("18446744073709551615"), Ok(()));
    }

    #[test]
    fn manager_cycles_are_refused() {
        let dir: HashMap<Handle, Handle> = [(h("grace"), h("bob")), (h("bob"), h("mona"))]
            .into_iter()
            .collect();
        let up = |x: &Handle| dir.get(x).cloned();
        assert_eq!(manager_cycle(&h("lena"), Some(&h("grace")), up), Ok(()));
        assert_eq!(manager_cycle(&h("lena"), None, up), Ok(()));
        let e = manager_cycle(&h("mona"), Some(&h("grace")), up).unwrap_err();
        assert_eq!(
            e.to_string(),
            "manager: would make a manager cycle: mona → grace → bob → mona"
        );
        assert_eq!(
            manager_cycle(&h("mona"), Some(&h("mona")), up)
                .unwrap_err()
                .field,
            "manager"
        );
        // A loop above the subject (already in the data) is refused, not followed forever.
        let looped: HashMap<Handle, Handle> =
            [(h("a"), h("b")), (h("b"), h("a"))].into_iter().collect();
        let e = manager_cycle(&h("z"), Some(&h("a")), |x| looped.get(x).cloned()).unwrap_err();
        assert_eq!(e.field, "manager");
    }
}

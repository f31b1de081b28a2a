//! The command files, the tokenizer, validation and intents, tested together.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::intent::INTENT_NAMES;
use super::*;
use crate::core::model::{Email, Handle, RoleName, Span};

fn reg() -> Registry {
    Registry::builtin()
}

fn err(line: &str) -> String {
    reg().parse_line(line).unwrap_err().to_string()
}

fn h(s: &str) -> Handle {
    Handle::parse(s).unwrap()
}

// ------------------------------------------------------------------ command files

#[test]
fn every_command_file_parses_and_follows_discord_rules() {
    let r = reg();
    let names: Vec<&str> = r.specs().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, INTENT_NAMES);
    let name_ok = |n: &str| {
        (1..=32).contains(&n.len())
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    };
    for s in r.specs() {
        assert_eq!(s.kind, 1, "/{} must be CHAT_INPUT", s.name);
        assert!(name_ok(&s.name), "/{}", s.name);
        assert!(
            (1..=100).contains(&s.description.chars().count()),
            "/{}",
            s.name
        );
        let first_optional = s
            .options
            .iter()
            .position(|o| !o.required)
            .unwrap_or(s.options.len());
        assert!(
            s.options[first_optional..].iter().all(|o| !o.required),
            "/{}: required options must come first",
            s.name
        );
        for o in &s.options {
            assert!(name_ok(&o.name), "/{} {}", s.name, o.name);
            assert!(
                (1..=100).contains(&o.description.chars().count()),
                "/{} {}",
                s.name,
                o.name
            );
        }
        s.check().unwrap();
    }
}

#[test]
fn command_files_match_the_contract() {
    let r = reg();
    let shape = |cmd: &str| -> Vec<(String, OptionType, bool)> {
        r.get(cmd)
            .unwrap()
            .options
            .iter()
            .map(|o| (o.name.clone(), o.kind, o.required))
            .collect()
    };
    use OptionType::{Boolean as B, String as S, SubCommand as Sub, User as U};
    let o = |n: &str, t, req| (n.to_owned(), t, req);
    assert_eq!(
        shape("request"),
        [
            o("app", S, true),
            o("reason", S, false),
            o("duration", S, false),
            o("emergency", B, false)
        ]
    );
    assert_eq!(
        shape("mfa"),
        [
            o("enroll", Sub, false),
            o("confirm", Sub, false),
            o("status", Sub, false),
            o("reset", Sub, false)
        ]
    );
    assert_eq!(shape("access"), [o("user", U, false)]);
    assert_eq!(shape("approvals"), []);
    assert_eq!(
        shape("revoke"),
        [
            o("app", S, true),
            o("user", U, false),
            o("reason", S, false)
        ]
    );
    assert_eq!(
        shape("onboard"),
        [
            o("email", S, true),
            o("name", S, true),
            o("role", S, true),
            o("manager", U, false),
            o("department", S, false),
            o("handle", S, false),
            o("user", U, false),
            o("timezone", S, false),
        ]
    );
    assert_eq!(shape("role"), [o("user", U, true), o("role", S, true)]);
    assert_eq!(
        shape("offboard"),
        [
            o("user", U, true),
            o("reason", S, false),
            o("when", S, false)
        ]
    );
    assert!(
        r.get("request")
            .unwrap()
            .option("app")
            .unwrap()
            .autocomplete
    );
    assert!(r.get("revoke").unwrap().option("app").unwrap().autocomplete);
}

#[test]
fn specs_serialize_back_to_discord_json() {
    let r = reg();
    let v = serde_json::to_value(r.get("request").unwrap()).unwrap();
    assert_eq!(v["type"], 1);
    assert_eq!(v["contexts"], serde_json::json!([0, 1]));
    assert_eq!(v["options"][0]["type"], 3);
    assert_eq!(v["options"][0]["autocomplete"], true);
    assert_eq!(v["options"][0]["required"], true);
    let again: CommandSpec = serde_json::from_value(v).unwrap();
    assert_eq!(&again, r.get("request").unwrap());
}

#[test]
fn bad_command_files_are_refused() {
    let bad = |json: &str| Registry::from_json(&[json]).unwrap_err().to_string();
    assert!(bad(r#"{"name":"Request","description":"x"}"#).contains("lowercase"));
    assert!(bad(r#"{"name":"request","description":""}"#).contains("1 to 100"));
    let late_required = r#"{"name":"x","description":"x","options":[
        {"type":3,"name":"a","description":"a"},
        {"type":3,"name":"b","description":"b","required":true}]}"#;
    assert!(bad(late_required).contains("required options go first"));
    assert!(
        bad(
            r#"{"name":"x","description":"x","options":[{"type":4,"name":"n","description":"n"}]}"#
        )
        .contains("not supported")
    );
    let one = r#"{"name":"x","description":"x"}"#;
    assert!(
        Registry::from_json(&[one, one])
            .unwrap_err()
            .to_string()
            .contains("twice")
    );
}

// ------------------------------------------------------------------ README lines

#[test]
fn readme_request_line() {
    assert_eq!(
        reg()
            .parse_line(r#"/request app:figma reason:"landing page mock-ups" duration:30d"#)
            .unwrap(),
        Intent::Request {
            app: "figma".into(),
            reason: Some("landing page mock-ups".into()),
            duration: Some(Span::parse("30d").unwrap()),
            emergency: false,
        }
    );
}

#[test]
fn readme_offboard_line() {
    assert_eq!(
        reg().parse_line("/offboard user:alice").unwrap(),
        Intent::Offboard {
            user: h("alice"),
            reason: None,
            when: None
        }
    );
}

#[test]
fn readme_break_glass_line() {
    let i = reg()
        .parse_line(r#"/request app:prod-db reason:"INC-1234 hotfix" duration:2h"#)
        .unwrap();
    assert_eq!(
        i,
        Intent::Request {
            app: "prod-db".into(),
            reason: Some("INC-1234 hotfix".into()),
            duration: Some(Span::parse("2h").unwrap()),
            emergency: false,
        }
    );
    assert_eq!(i.name(), "request");
}

#[test]
fn readme_onboard_line() {
    assert_eq!(
        reg()
            .parse_line(
                r#"/onboard email:lena@acme.test name:"Lena Roy" role:engineer manager:bob"#
            )
            .unwrap(),
        Intent::Onboard {
            email: Email::parse("lena@acme.test").unwrap(),
            name: "Lena Roy".into(),
            role: RoleName::parse("engineer").unwrap(),
            manager: Some(h("bob")),
            department: None,
            handle: None,
            user: None,
            timezone: None,
        }
    );
    assert_eq!(
        err("/onboard email:l@acme.test name:L role:engineer timezone:Mars/Olympus"),
        "timezone: \"Mars/Olympus\" is not a time zone of the IANA database — write an \
         IANA name such as \"Europe/Berlin\", \"America/Los_Angeles\" or \"UTC\""
    );
}

#[test]
fn every_other_command_types() {
    let r = reg();
    assert_eq!(r.parse_line("/approvals").unwrap(), Intent::Approvals);
    assert_eq!(
        r.parse_line("/access").unwrap(),
        Intent::Access { user: None }
    );
    assert_eq!(
        r.parse_line("/access user:@carol").unwrap(),
        Intent::Access {
            user: Some(h("carol"))
        }
    );
    assert_eq!(
        r.parse_line("/revoke app:figma user:alice reason:left")
            .unwrap(),
        Intent::Revoke {
            app: "figma".into(),
            user: Some(h("alice")),
            reason: Some("left".into())
        }
    );
    assert_eq!(
        r.parse_line("/role role:designer user:erin").unwrap(),
        Intent::Role {
            user: h("erin"),
            role: RoleName::parse("designer").unwrap()
        }
    );
    assert_eq!(
        r.parse_line(r#"/offboard user:alice when:2026-12-31 reason:"last day""#)
            .unwrap(),
        Intent::Offboard {
            user: h("alice"),
            reason: Some("last day".into()),
            when: NaiveDate::from_ymd_opt(2026, 12, 31),
        }
    );
    let Intent::Onboard { handle, department, user, .. } = r
        .parse_line("/onboard email:l@acme.test name:L role:engineer department:Engineering handle:lena user:100000000000000011")
        .unwrap()
    else {
        panic!("not an onboard");
    };
    assert_eq!(handle, Some(h("lena")));
    assert_eq!(department.as_deref(), Some("Engineering"));
    assert_eq!(user.as_deref(), Some("100000000000000011"));
}

// ------------------------------------------------------------------ tokenizer

#[test]
fn tokenizer_reads_bare_and_quoted_values() {
    let (name, pairs) =
        tokenize(r#"  /request   app:figma	reason:"say \"hi\" to C:\\temp"  duration:7d "#)
            .unwrap();
    assert_eq!(name, "request");
    assert_eq!(
        pairs,
        [
            ("app".to_owned(), "figma".to_owned()),
            ("reason".to_owned(), r#"say "hi" to C:\temp"#.to_owned()),
            ("duration".to_owned(), "7d".to_owned()),
        ]
    );
    // A colon inside a bare value belongs to the value; other backslashes stay as typed.
    let (_, pairs) = tokenize(r#"/request app:a:b reason:"a\nb""#).unwrap();
    assert_eq!(pairs[0].1, "a:b");
    assert_eq!(pairs[1].1, r"a\nb");
}

#[test]
fn escaped_quotes_survive_to_the_intent() {
    let Intent::Request { reason, .. } = reg()
        .parse_line(r#"/request app:figma reason:"the \"new\" brand""#)
        .unwrap()
    else {
        panic!("not a request");
    };
    assert_eq!(reason.as_deref(), Some(r#"the "new" brand"#));
}

#[test]
fn unterminated_quote_names_the_option() {
    assert_eq!(
        err(r#"/request app:figma reason:"landing page"#),
        "the value of `reason` opens a quote (\") that is never closed"
    );
    // An escaped quote does not close it either.
    assert!(err(r#"/request app:figma reason:"a\""#).contains("`reason`"));
}

#[test]
fn empty_value_is_refused() {
    assert_eq!(
        err("/request app: reason:x"),
        "option `app` has no value; write app:value, or leave it out"
    );
    assert_eq!(
        err("/request app:figma reason:"),
        "option `reason` has no value; write reason:value, or leave it out"
    );
    assert_eq!(
        err(r#"/request app:figma reason:"  ""#),
        "option `reason` has no value; write reason:value, or leave it out"
    );
}

#[test]
fn bare_token_says_how_to_write_options() {
    assert_eq!(
        err("/request figma"),
        "\"figma\" is not an option; write options as name:value, like app:figma or reason:\"two words\""
    );
    assert!(err("/request :figma").contains("write options as name:value"));
}

#[test]
fn text_glued_to_a_closing_quote_is_refused() {
    assert!(err(r#"/request app:"figma"x"#).contains("put a space between options"));
}

#[test]
fn not_a_command() {
    assert_eq!(
        err("hello"),
        "\"hello\" is not a command; a command starts with /, like /request app:figma"
    );
    assert!(err("/").contains("is not a command"));
}

// ------------------------------------------------------------------ validation

#[test]
fn unknown_command_suggests() {
    assert_eq!(
        err("/reqest app:figma"),
        "there is no command /reqest — did you mean /request?"
    );
    assert_eq!(
        err("/offbaord user:alice"),
        "there is no command /offbaord — did you mean /offboard?"
    );
    assert_eq!(
        err("/frobnicate"),
        "there is no command /frobnicate; the commands are /request, /access, /approvals, /revoke, /onboard, /role, /offboard, /help, /mfa, /drift, /review"
    );
}

#[test]
fn unknown_option_suggests_and_lists() {
    assert_eq!(
        err("/request app:figma resaon:x"),
        "/request has no option `resaon` — did you mean `reason`? Its options are `app`, `reason`, `duration`, `emergency`"
    );
    assert_eq!(
        err("/request app:figma colour:red"),
        "/request has no option `colour`; its options are `app`, `reason`, `duration`, `emergency`"
    );
    assert_eq!(
        err("/approvals user:bob"),
        "/approvals has no option `user`; /approvals takes no options"
    );
}

#[test]
fn repeated_option_is_refused() {
    assert_eq!(
        err("/request app:figma app:jira"),
        "option `app` is given twice; give it once"
    );
}

#[test]
fn missing_required_options_are_all_named() {
    assert_eq!(
        err("/request reason:x"),
        "/request is missing the required option `app`; write it as name:value"
    );
    assert_eq!(
        err("/onboard email:lena@acme.test"),
        "/onboard is missing the required options `name` and `role`; write them as name:value"
    );
    assert_eq!(
        err("/onboard"),
        "/onboard is missing the required options `email`, `name` and `role`; write them as name:value"
    );
}

#[test]
fn bad_user_handle_names_the_option() {
    assert_eq!(
        err("/offboard user:Alice"),
        "user: a handle \"Alice\" may hold only lowercase letters, digits, '-', '_' and '.'"
    );
    assert!(
        err("/onboard email:l@acme.test name:L role:engineer manager:Bob").starts_with("manager: ")
    );
}

#[test]
fn bad_duration_names_the_option() {
    assert_eq!(
        err("/request app:figma duration:soon"),
        "duration: \"soon\" is not a duration; write it like 90m, 8h or 7d"
    );
}

#[test]
fn bad_date_names_the_option() {
    assert_eq!(
        err("/offboard user:alice when:2026-02-30"),
        "when: \"2026-02-30\" is not a date; write it as YYYY-MM-DD, like 2026-12-31"
    );
    assert!(err("/offboard user:alice when:tomorrow").starts_with("when: "));
}

#[test]
fn a_word_for_a_date_is_told_the_date_format_not_a_length() {
    assert_eq!(
        err("/offboard user:alice when:tomorrow"),
        "when: \"tomorrow\" is not a date; write it as YYYY-MM-DD, like 2026-12-31"
    );
}

#[test]
fn admin_commands_are_hidden_until_a_server_admin_grants_them() {
    let r = reg();
    for name in ["onboard", "offboard", "role"] {
        let v = serde_json::to_value(r.get(name).unwrap()).unwrap();
        assert_eq!(v["default_member_permissions"], "0", "/{name}");
    }
    for name in ["request", "access", "approvals", "revoke", "help"] {
        let v = serde_json::to_value(r.get(name).unwrap()).unwrap();
        assert!(v.get("default_member_permissions").is_none(), "/{name}");
    }
}

#[test]
fn help_lists_every_command_and_explains_one() {
    let r = reg();
    let all = r.help(None).unwrap();
    for s in r.specs() {
        assert!(all.contains(&format!("\n/{} — ", s.name)), "{all}");
    }
    let one = r.help(Some("/offboard")).unwrap();
    assert!(one.starts_with("/offboard — IT: "), "{one}");
    assert!(
        one.contains("\n  user: Who is leaving. (a person, required)"),
        "{one}"
    );
    assert!(one.contains("\n  when: "), "{one}");
    assert!(one.ends_with("Example: /offboard user:…"), "{one}");
    assert!(r.help(Some("approvals")).unwrap().contains("no options"));
    assert_eq!(
        r.help(Some("requst")).unwrap_err().to_string(),
        "there is no command /requst — did you mean /request?"
    );
    assert_eq!(
        reg().parse_line("/help command:role").unwrap(),
        Intent::Help {
            command: Some("role".into())
        }
    );
}

#[test]
fn other_typed_values_name_their_option() {
    assert_eq!(
        err("/onboard email:lena name:L role:engineer"),
        "email: \"lena\" is not an email address"
    );
    assert!(err("/role user:erin role:Designer").starts_with("role: "));
    assert!(
        err("/onboard email:l@acme.test name:L role:engineer handle:L.R").starts_with("handle: ")
    );
}

#[test]
fn max_length_is_enforced() {
    let long = "x".repeat(501);
    assert_eq!(
        err(&format!("/request app:figma reason:{long}")),
        "reason: 501 characters is too long; at most 500 are allowed"
    );
}

#[test]
fn choices_are_enforced() {
    let r = Registry::from_json(&[r#"{"name":"pick","description":"p","options":[
        {"type":3,"name":"kind","description":"k","required":true,
         "choices":[{"name":"Read only","value":"ro"},{"name":"Read write","value":"rw"}]}]}"#])
    .unwrap();
    assert_eq!(
        r.validate("pick", vec![("kind".into(), "ro".into())])
            .unwrap()
            .get("kind"),
        Some("ro")
    );
    assert_eq!(
        r.validate("pick", vec![("kind".into(), "read write".into())])
            .unwrap()
            .get("kind"),
        Some("rw")
    );
    assert_eq!(
        r.validate("pick", vec![("kind".into(), "admin".into())])
            .unwrap_err()
            .to_string(),
        "kind: \"admin\" is not one of the choices: `ro` and `rw`"
    );
}

#[test]
fn validate_serves_adapters_without_the_tokenizer() {
    let inv = reg()
        .validate(
            "request",
            vec![
                ("app".into(), "  figma ".into()),
                ("duration".into(), "8h".into()),
            ],
        )
        .unwrap();
    assert_eq!(inv.name, "request");
    assert_eq!(inv.get("app"), Some("figma"));
    assert_eq!(
        inv.span("duration").unwrap(),
        Some(Span::parse("8h").unwrap())
    );
    assert_eq!(inv.get("reason"), None);
}

#[test]
fn from_invocation_refuses_a_hand_built_invocation_missing_options() {
    let inv = Invocation {
        name: "role".into(),
        options: BTreeMap::new(),
    };
    assert_eq!(
        Intent::from_invocation(inv).unwrap_err().to_string(),
        "/role is missing the required option `user`; write it as name:value"
    );
}

#[test]
fn invocation_prints_as_a_console_line_that_parses_back() {
    let r = reg();
    let line = r#"/request app:figma reason:"say \"hi\"" duration:30d"#;
    let (name, raw) = tokenize(line).unwrap();
    let inv = r.validate(&name, raw).unwrap();
    let printed = inv.to_string();
    let (name2, raw2) = tokenize(&printed).unwrap();
    assert_eq!(r.validate(&name2, raw2).unwrap(), inv);
}

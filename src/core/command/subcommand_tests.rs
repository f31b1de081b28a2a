//! Subcommands (`/mfa enroll`), BOOLEAN options and their help, tested together.

use super::*;
use crate::core::model::Handle;

fn reg() -> Registry {
    Registry::builtin()
}

fn err(line: &str) -> String {
    reg().parse_line(line).unwrap_err().to_string()
}

fn h(s: &str) -> Handle {
    Handle::parse(s).unwrap()
}

// ------------------------------------------------------------------ subcommands and booleans

#[test]
fn subcommands_parse_with_their_own_options() {
    let r = reg();
    assert_eq!(
        r.parse_line("/mfa enroll").unwrap(),
        Intent::Mfa(MfaIntent::Enroll)
    );
    assert_eq!(
        r.parse_line("/mfa status").unwrap(),
        Intent::Mfa(MfaIntent::Status)
    );
    assert_eq!(
        r.parse_line("/mfa confirm code:123456").unwrap(),
        Intent::Mfa(MfaIntent::Confirm {
            code: "123456".into()
        })
    );
    assert_eq!(
        r.parse_line("/mfa reset user:@alice").unwrap(),
        Intent::Mfa(MfaIntent::Reset { user: h("alice") })
    );
    assert_eq!(Intent::Mfa(MfaIntent::Status).name(), "mfa");
    let inv = r
        .validate("mfa confirm", vec![("code".into(), " 654321 ".into())])
        .unwrap();
    assert_eq!(inv.name, "mfa confirm");
    assert_eq!(inv.get("code"), Some("654321"));
    // The tokenizer joins the bare words before the first option to the name.
    let (name, pairs) = tokenize("/mfa   confirm code:123456").unwrap();
    assert_eq!(name, "mfa confirm");
    assert_eq!(pairs, [("code".to_owned(), "123456".to_owned())]);
    assert_eq!(tokenize("/mfa enroll").unwrap().0, "mfa enroll");
    // A bare word after an option stays an error.
    assert!(err("/mfa confirm code:123456 now").contains("\"now\" is not an option"));
}

#[test]
fn a_subcommands_options_are_checked_under_its_full_name() {
    assert_eq!(
        err("/mfa confirm"),
        "/mfa confirm is missing the required option `code`; write it as name:value"
    );
    assert_eq!(
        err("/mfa confirm code:123"),
        "code: \"123\" is too short; at least 6 characters are needed"
    );
    assert_eq!(
        err("/mfa enroll code:123456"),
        "/mfa enroll has no option `code`; /mfa enroll takes no options"
    );
    assert_eq!(
        err("/mfa reset user:Alice"),
        "user: a handle \"Alice\" may hold only lowercase letters, digits, '-', '_' and '.'"
    );
    assert!(err("/mfa status extra").contains("\"extra\" is not an option"));
}

#[test]
fn a_missing_or_unknown_subcommand_lists_them_and_suggests() {
    assert_eq!(
        err("/mfa"),
        "/mfa needs a subcommand: /mfa enroll, /mfa confirm, /mfa status or /mfa reset"
    );
    assert_eq!(
        err("/mfa enrol"),
        "/mfa has no subcommand `enrol` — did you mean /mfa enroll? It has /mfa enroll, \
         /mfa confirm, /mfa status or /mfa reset"
    );
    assert_eq!(
        err("/mfa frobnicate"),
        "/mfa has no subcommand `frobnicate`; write /mfa enroll, /mfa confirm, /mfa status or /mfa reset"
    );
    // Discord's path: a command with subcommands given without one.
    assert!(matches!(
        reg().validate("mfa", Vec::new()),
        Err(CommandError::MissingSubcommand { .. })
    ));
    // A command without subcommands given a bare word: as before.
    assert!(err("/request figma").starts_with("\"figma\" is not an option"));
}

#[test]
fn booleans_take_true_false_yes_no_and_name_the_option_otherwise() {
    let r = reg();
    for (typed, want) in [
        ("true", true),
        ("TRUE", true),
        ("yes", true),
        ("Yes", true),
        ("false", false),
        ("False", false),
        ("no", false),
    ] {
        let inv = r
            .validate(
                "request",
                vec![
                    ("app".into(), "figma".into()),
                    ("emergency".into(), typed.into()),
                ],
            )
            .unwrap();
        assert_eq!(
            inv.get("emergency"),
            Some(if want { "true" } else { "false" })
        );
        let Intent::Request { emergency, .. } = Intent::from_invocation(inv).unwrap() else {
            panic!("not a request");
        };
        assert_eq!(emergency, want, "{typed}");
    }
    let Intent::Request { emergency, .. } = r.parse_line("/request app:figma").unwrap() else {
        panic!("not a request");
    };
    assert!(!emergency);
    assert_eq!(
        err("/request app:figma emergency:maybe"),
        "emergency: \"maybe\" is neither true nor false; write emergency:true or emergency:false"
    );
}

#[test]
fn subcommand_and_boolean_rules_are_checked() {
    let bad = |json: &str| Registry::from_json(&[json]).unwrap_err().to_string();
    let mixed = r#"{"name":"x","description":"x","options":[
        {"type":1,"name":"a","description":"a"},
        {"type":3,"name":"b","description":"b"}]}"#;
    assert!(
        bad(mixed).contains("either all subcommands or none"),
        "{}",
        bad(mixed)
    );
    let nested = r#"{"name":"x","description":"x","options":[
        {"type":1,"name":"a","description":"a","options":[
            {"type":1,"name":"b","description":"b"}]}]}"#;
    assert!(bad(nested).contains("may not be subcommands themselves"));
    let late = r#"{"name":"x","description":"x","options":[
        {"type":1,"name":"a","description":"a","options":[
            {"type":3,"name":"b","description":"b"},
            {"type":3,"name":"c","description":"c","required":true}]}]}"#;
    assert!(bad(late).contains("/x a option `c` is required but comes after"));
    let string_with_options = r#"{"name":"x","description":"x","options":[
        {"type":3,"name":"a","description":"a","options":[
            {"type":3,"name":"b","description":"b"}]}]}"#;
    assert!(bad(string_with_options).contains("only a subcommand has options"));
    let bool_choices = r#"{"name":"x","description":"x","options":[
        {"type":5,"name":"a","description":"a","choices":[{"name":"y","value":"y"}]}]}"#;
    assert!(bad(bool_choices).contains("only STRING options"));
    // Unknown fields pass through, subcommands' too, and serialize back as Discord's JSON.
    let ok = r#"{"name":"x","description":"x","options":[
        {"type":1,"name":"a","description":"a","name_localizations":{"de":"ah"},"options":[
            {"type":5,"name":"b","description":"b"}]}]}"#;
    let r = Registry::from_json(&[ok]).unwrap();
    let v = serde_json::to_value(r.get("x").unwrap()).unwrap();
    assert_eq!(v["options"][0]["type"], 1);
    assert_eq!(v["options"][0]["name_localizations"]["de"], "ah");
    assert_eq!(v["options"][0]["options"][0]["type"], 5);
    let mfa = serde_json::to_value(reg().get("mfa").unwrap()).unwrap();
    assert_eq!(mfa["options"][1]["options"][0]["min_length"], 6);
    assert!(mfa["options"][0].get("options").is_none());
}

#[test]
fn help_lists_a_commands_subcommands_with_their_options() {
    let r = reg();
    let all = r.help(None).unwrap();
    assert_eq!(all.matches("\n/mfa ").count(), 1, "{all}");
    assert!(!all.contains("/mfa enroll"), "{all}");
    let mfa = r.help(Some("mfa")).unwrap();
    assert!(mfa.starts_with("/mfa — Two-step verification"), "{mfa}");
    assert!(
        mfa.contains("\n  /mfa enroll — Set up an authenticator app."),
        "{mfa}"
    );
    assert!(
        mfa.contains("\n  /mfa confirm — ")
            && mfa.contains("\n    code: The 6-digit code your app shows now. (text, required)"),
        "{mfa}"
    );
    assert!(mfa.contains("\n    user: "), "{mfa}");
    assert!(
        mfa.ends_with("Examples: /mfa enroll, /mfa confirm code:…, /mfa status, /mfa reset user:…"),
        "{mfa}"
    );
    assert_eq!(r.help(Some("/mfa confirm")).unwrap(), mfa);
    let request = r.help(Some("request")).unwrap();
    assert!(
        request.contains("\n  emergency: Break-glass: ")
            && request.contains("(true or false, optional)"),
        "{request}"
    );
}

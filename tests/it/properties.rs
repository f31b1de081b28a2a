//! Property tests (proptest) over the decoders of untrusted input, with small case counts so
//! `cargo test` stays fast; `benches/fuzz.rs` runs the same kind of inputs with a large fixed
//! budget (figure 8).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use quartermaster::config;
use quartermaster::core::command::Registry;
use quartermaster::core::customid::ClickTarget;
use quartermaster::core::model::{ActionId, GrantId, PlanId, RequestId};

/// Known command names, option keys and awkward values, in any order.
fn command_line() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "/request",
            "/offboard",
            "/onboard",
            "/role",
            "/revoke",
            "/access",
            "/approvals",
            "/",
            "app:",
            "user:",
            "reason:",
            "duration:",
            "role:",
            "when:",
            "figma",
            "@alice",
            "30d",
            "-1h",
            "99999999999999999999d",
            "2026-02-30",
            "\"",
            "\"\"",
            "\\",
            "é",
            "\u{0}",
            "\u{202e}",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9:@\"._-]{0,10}",
        any::<String>(),
    ];
    prop::collection::vec((token, prop::sample::select(vec![" ", "", "\t"])), 0..8)
        .prop_map(|ts| ts.into_iter().map(|(t, s)| format!("{t}{s}")).collect())
}

fn click_target() -> impl Strategy<Value = ClickTarget> {
    prop_oneof![
        (any::<i64>(), any::<u32>()).prop_map(|(r, s)| ClickTarget::Approve(RequestId(r), s)),
        (any::<i64>(), any::<u32>()).prop_map(|(r, s)| ClickTarget::Deny(RequestId(r), s)),
        any::<i64>().prop_map(|a| ClickTarget::Done(ActionId(a))),
        any::<i64>().prop_map(|a| ClickTarget::Retry(ActionId(a))),
        any::<i64>().prop_map(|p| ClickTarget::Confirm(PlanId(p))),
        any::<i64>().prop_map(|p| ClickTarget::Cancel(PlanId(p))),
        any::<i64>().prop_map(|g| ClickTarget::Extend(GrantId(g))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_command_parser_never_panics(line in command_line()) {
        let _ = Registry::builtin().parse_line(&line);
    }

    #[test]
    fn the_command_parser_never_panics_on_any_text(line in any::<String>()) {
        let _ = Registry::builtin().parse_line(&line);
    }

    #[test]
    fn custom_ids_round_trip(t in click_target()) {
        let id = t.to_string();
        prop_assert!(id.len() <= 100, "{}", id);
        prop_assert_eq!(ClickTarget::parse(&id), Ok(t));
    }

    #[test]
    fn a_parsed_custom_id_prints_back_to_the_same_target(
        parts in prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec![
                    "v1", "req", "act", "plan", "grant", "approve", "deny", "done", "retry",
                    "confirm", "cancel", "extend", "s0", "s7", "s", "42", "-1", "+5", "007",
                ]).prop_map(str::to_owned),
                "[0-9s+-]{0,4}",
            ],
            0..7,
        )
    ) {
        if let Ok(t) = ClickTarget::parse(&parts.join(":")) {
            prop_assert_eq!(ClickTarget::parse(&t.to_string()), Ok(t));
        }
    }
}

proptest! {
    // The config loader is slower per case (a whole organisation): fewer cases.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_config_loader_never_panics_on_edited_examples(
        cut in any::<prop::sample::Index>(),
        insert in prop::sample::select(vec![
            "[[app]]\n", "[[person]]\n", "=", "\"", "[", "]", "\n", "approvals = [\"nobody\"]\n",
            "max_duration = \"0s\"\n", "manager = \"ken\"\n", "#", "99999999999999999999",
        ]),
        len in 0usize..64,
    ) {
        let acme = include_str!("../../examples/acme.toml");
        let at = cut.index(acme.len() + 1);
        let mut bytes = acme.as_bytes().to_vec();
        let end = (at + len).min(bytes.len());
        bytes.splice(at..end, insert.bytes());
        let text = String::from_utf8_lossy(&bytes);
        let _ = config::parse(&text, std::path::Path::new("."), &|_| Some("x".into()));
    }

    #[test]
    fn the_config_loader_never_panics_on_any_text(text in any::<String>()) {
        let _ = config::parse(&text, std::path::Path::new("."), &|_| Some("x".into()));
    }
}

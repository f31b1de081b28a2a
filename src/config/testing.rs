//! What the config tests share: a small valid configuration to break, and helpers that
//! load one and return its problems.

pub(super) use std::path::Path;

pub(super) use secrecy::ExposeSecret;

pub(super) use crate::config::*;
pub(super) use crate::core::model::*;

pub(super) fn no_env(_: &str) -> Option<String> {
    None
}

pub(super) fn example() -> Config {
    match parse(EXAMPLE_TOML, Path::new("."), &no_env) {
        Ok(c) => c,
        Err(e) => panic!("the example does not load:\n{e}"),
    }
}

pub(super) fn errors(text: &str) -> String {
    errors_env(text, &no_env)
}

pub(super) fn errors_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    match parse(text, Path::new("."), env) {
        Ok(_) => panic!("expected problems, but the config loaded"),
        Err(e) => e.to_string(),
    }
}

/// A small valid config to break in tests.
pub(super) const BASE: &str = r#"
[organization]
name = "T"
it_admins = ["dana"]

[[person]]
handle = "dana"
name = "Dana"
email = "dana@t.test"
role = "it-admin"

[[person]]
handle = "carol"
name = "Carol"
email = "carol@t.test"
role = "designer"
manager = "dana"

[[role]]
name = "it-admin"
apps = []

[[role]]
name = "designer"
apps = ["figma"]

[[app]]
name = "figma"
connector = "design"
owners = ["carol"]
approvals = ["manager", "owner"]

[[connector]]
name = "design"
kind = "directory"
"#;

/// A SCIM connector whose token comes from `FIGMA_SCIM_TOKEN`.
pub(super) const SCIM: &str = "\n[[connector]]\nname = \"figma-scim\"\nkind = \"scim\"\n\
    base_url = \"http://127.0.0.1:18080/acme/v2\"\ntoken_env = \"FIGMA_SCIM_TOKEN\"\n";

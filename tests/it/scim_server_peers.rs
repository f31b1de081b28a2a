//! Joiner, mover and leaver through inbound SCIM on real connector peers (scim2-server and
//! slapd), beside the same three through the HR feed: both end in the same onboarding and
//! offboarding reports, and the same state in the peers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as support;

use quartermaster::core::model::{Email, Handle, Person, PersonStatus, RoleName};
use quartermaster::core::service::{HrEvent, HrKind};
use serde_json::json;
use support::Bot;
use support::ldap::{ADMIN_DN, Slapd};
use support::scim::{Peer, ScimServer, TOKEN as PEER_TOKEN};

use crate::scim_server::{ENT, Idp, PATCH, TOKEN, person};

const PEOPLE_DN: &str = "ou=people,dc=acme,dc=test";

fn org(scim_base: &str, ldap_url: &str) -> String {
    format!(
        r#"
[organization]
name = "Acme"
it_admins = ["dana"]

[[person]]
handle = "dana"
name = "Dana Ortiz"
email = "dana@acme.test"
role = "it-admin"

[[person]]
handle = "bob"
name = "Bob Chen"
email = "bob@acme.test"
role = "it-admin"

[[role]]
name = "it-admin"
apps = []

[[role]]
name = "engineer"
apps = ["figma", "wiki"]

[[role]]
name = "designer"
apps = ["figma"]

[[app]]
name = "figma"
display = "Figma"
connector = "design"
entitlement = "Figma Editors"
approvals = ["manager"]

[[app]]
name = "wiki"
display = "Wiki"
connector = "corp-ldap"
entitlement = "wiki-editors"
approvals = ["manager"]

[[connector]]
name = "design"
kind = "scim"
base_url = "{scim_base}"
token_env = "QM_TEST_SCIM_TOKEN"

[[connector]]
name = "corp-ldap"
kind = "ldap"
url = "{ldap_url}"
bind_dn = "cn=admin,dc=acme,dc=test"
password_env = "LDAP_PASSWORD"
people_dn = "ou=people,dc=acme,dc=test"
groups_dn = "ou=groups,dc=acme,dc=test"
create_groups = true
placeholder_member = "cn=admin,dc=acme,dc=test"

[scim_server]
token_env = "QM_SCIM_TOKEN"
joiner = "auto"
leaver = "immediate"
default_role = "engineer"

[[scim_server.rule]]
when_title = "Designer"
role = "designer"
department = "Design"
"#
    )
}

/// A report with the person's name and handle, and who set it going, taken out.
fn neutral(text: &str, name: &str, handle: &str) -> String {
    let plan = regex::Regex::new(r"plan #\d+").unwrap();
    let text = plan.replace_all(text, "plan #N");
    text.replace(name, "NAME")
        .replace(handle, "HANDLE")
        .replace("the HR feed", "SOURCE")
        .replace("(by HR)", "(by SOURCE)")
        .replace("the identity provider", "SOURCE")
}

fn last_with(bot: &Bot, to: &str, needle: &str) -> String {
    bot.texts_to(to)
        .into_iter()
        .rev()
        .find(|t| t.contains(needle))
        .unwrap_or_else(|| panic!("no message to {to} containing {needle:?}"))
}

async fn hr(bot: &Bot, id: &str, kind: HrKind, p: &Person) {
    let ev = HrEvent {
        id: id.into(),
        kind,
        person: p.clone(),
        last_day: None,
        effective_at: None,
    };
    bot.service.hr_event(ev).await.unwrap();
}

#[tokio::test]
async fn joiner_mover_leaver_through_scim_end_as_through_the_hr_feed() {
    let slapd = Slapd::start().await;
    let scim_base = ScimServer::shared().tenant("jml-idp");
    let peer = Peer::of(&scim_base);
    let pw = slapd.admin_password.clone();
    let mut bot = Bot::from_toml_env(&org(&scim_base, &slapd.url), &move |k| match k {
        "LDAP_PASSWORD" => Some(pw.clone()),
        "QM_TEST_SCIM_TOKEN" => Some(PEER_TOKEN.to_owned()),
        "QM_SCIM_TOKEN" => Some(TOKEN.to_owned()),
        _ => None,
    })
    .await;
    let idp = Idp::start(&bot).await;

    // Joiners: Lena through HR, Omar through SCIM, both engineers under Bob.
    let lena = Person {
        handle: Handle::parse("lena").unwrap(),
        name: "Lena Roy".into(),
        email: Email::parse("lena@acme.test").unwrap(),
        department: "Engineering".into(),
        role: RoleName::parse("engineer").unwrap(),
        manager: Some(Handle::parse("bob").unwrap()),
        discord_id: None,
        status: PersonStatus::Active,
        timezone: None,
    };
    hr(&bot, "e1", HrKind::Hire, &lena).await;
    let (code, omar) = idp
        .call(
            "POST",
            "/Users",
            Some(json!({
            "userName": "omar@acme.test", "displayName": "Omar Said", "active": true,
            "emails": [{"value": "omar@acme.test", "type": "work", "primary": true}],
            ENT: {"department": "Engineering", "manager": {"value": "bob"}}})),
        )
        .await;
    assert_eq!(code, 201, "{omar}");
    let id = omar["id"].as_str().unwrap().to_owned();
    bot.run(":advance 1m").await;
    let welcome_hr = neutral(
        &last_with(&bot, "bob", "Lena Roy (lena) has joined"),
        "Lena Roy",
        "lena",
    );
    let welcome_idp = neutral(
        &last_with(&bot, "bob", "Omar Said (omar) has joined"),
        "Omar Said",
        "omar",
    );
    assert_eq!(welcome_idp, welcome_hr);
    assert!(
        peer.members("Figma Editors").len() == 2,
        "both in the SCIM peer"
    );
    let wiki = "cn=wiki-editors,ou=groups,dc=acme,dc=test".to_owned();
    let members = slapd.members(&wiki).await;
    assert!(
        members.contains(&format!("uid=omar,{PEOPLE_DN}")),
        "{members:?}"
    );
    assert!(
        members.contains(&format!("uid=lena,{PEOPLE_DN}")),
        "{members:?}"
    );

    // Movers: both become designers (Wiki removed, Figma kept).
    let mut lena2 = lena.clone();
    lena2.role = RoleName::parse("designer").unwrap();
    lena2.department = "Design".into();
    hr(&bot, "e2", HrKind::Change, &lena2).await;
    let (code, body) = idp
        .call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({"schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "title", "value": "Designer"}]})),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    bot.run(":advance 1m").await;
    let o = person(&bot, "omar").await.unwrap();
    assert_eq!(
        (o.role.as_str(), o.department.as_str()),
        ("designer", "Design")
    );
    let moved_hr = neutral(
        &last_with(&bot, "bob", "Lena Roy's role changed"),
        "Lena Roy",
        "lena",
    );
    let moved_idp = neutral(
        &last_with(&bot, "bob", "Omar Said's role changed"),
        "Omar Said",
        "omar",
    );
    assert_eq!(moved_idp, moved_hr);
    let members = slapd.members(&wiki).await;
    assert_eq!(members, [ADMIN_DN.to_owned()], "Wiki removed from both");

    // Leavers: HR's leave, the identity provider's deactivation.
    hr(&bot, "e3", HrKind::Leave, &lena2).await;
    let (code, _) = idp
        .call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({"schemas": [PATCH],
            "Operations": [{"op": "replace", "value": {"active": false}}]})),
        )
        .await;
    assert_eq!(code, 200);
    bot.run(":advance 1m").await;
    for h in ["lena", "omar"] {
        assert_eq!(
            person(&bot, h).await.unwrap().status,
            PersonStatus::Offboarded,
            "{h}"
        );
    }
    let report_hr = neutral(
        &last_with(&bot, "dana", "Offboarding report for Lena Roy"),
        "Lena Roy",
        "lena",
    );
    let report_idp = neutral(
        &last_with(&bot, "dana", "Offboarding report for Omar Said"),
        "Omar Said",
        "omar",
    );
    let strip = |r: &str| r.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(
        strip(&report_idp),
        strip(&report_hr),
        "\n{report_idp}\n---\n{report_hr}"
    );
    assert!(report_idp.contains("confirmed by SOURCE"), "{report_idp}");
    assert!(peer.members("Figma Editors").is_empty());
    let users = peer.users();
    assert!(
        users.iter().all(|u| u["active"] == json!(false)),
        "{users:?}"
    );
    let actors: Vec<String> = bot
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "person.offboarded")
        .map(|r| r.actor)
        .collect();
    assert_eq!(actors.len(), 2);
    assert!(actors.contains(&"hr".to_owned()) && actors.contains(&"idp".to_owned()));
}

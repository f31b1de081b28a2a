//! `check --probe` against real peers: the database, the fake Discord (GET the application),
//! scim2-server (/ServiceProviderConfig) and slapd (bind, root DSE, bases); and an unreachable
//! connector, named with its URL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit as support;
use testkit::discord as fake;

use std::process::Command;

use fake::{APP_ID, FakeDiscord};
use support::ldap::{ADMIN_DN, GROUPS_DN, PEOPLE_DN, Slapd};
use support::scim::{ScimServer, TOKEN, free_port};
use testkit::testdb::{Backend, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_quartermaster");

const ORG: &str = r#"
[organization]
name = "Probe Co"
it_admins = ["admin"]

[[person]]
handle = "admin"
name = "Ada Admin"
email = "admin@probe.test"
role = "it"

[[role]]
name = "it"
apps = []
"#;

/// Writes `text` as a config and runs `check --probe` on it with the secrets in the env.
fn probe(text: &str, db: &str, ldap_password: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qm.toml");
    std::fs::write(&path, text).unwrap();
    let o = Command::new(BIN)
        .args(["check", "--probe", "--db", db, "--config"])
        .arg(&path)
        .env("QM_T_DISCORD", "discord-token")
        .env("QM_T_SCIM", TOKEN)
        .env("QM_T_LDAP", ldap_password)
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), out)
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_reaches_the_database_discord_scim_and_ldap() {
    let db = TestDb::create(Backend::from_env()).await;
    let discord = FakeDiscord::start().await;
    let scim = ScimServer::shared().tenant("probe");
    let slapd = Slapd::start().await;
    let text = format!(
        "{ORG}\n[discord]\napplication_id = \"{APP_ID}\"\ntoken_env = \"QM_T_DISCORD\"\napi_base = \"{}\"\n\n\
         [[connector]]\nname = \"okta\"\nkind = \"scim\"\nbase_url = \"{scim}\"\ntoken_env = \"QM_T_SCIM\"\n\n\
         [[connector]]\nname = \"corp-ldap\"\nkind = \"ldap\"\nurl = \"{}\"\nbind_dn = \"{ADMIN_DN}\"\n\
         password_env = \"QM_T_LDAP\"\npeople_dn = \"{PEOPLE_DN}\"\ngroups_dn = \"{GROUPS_DN}\"\n\n\
         [[connector]]\nname = \"wrong-kind\"\nkind = \"ldap\"\npreset = \"389ds\"\nurl = \"{}\"\n\
         bind_dn = \"{ADMIN_DN}\"\npassword_env = \"QM_T_LDAP\"\nuser_base = \"{PEOPLE_DN}\"\n\
         group_base = \"{GROUPS_DN}\"\n",
        discord.base_url(),
        slapd.url,
        slapd.url
    );
    let password = slapd.admin_password.clone();
    let db_url = db.url.clone();
    let (ok, out) = tokio::task::spawn_blocking(move || probe(&text, &db_url, &password))
        .await
        .unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("OK   database: "), "{out}");
    assert!(
        out.contains("OK   discord (") && out.contains(&format!("application {APP_ID}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("OK   connector okta (scim {scim}): reachable")),
        "{out}"
    );
    assert!(
        out.contains("OK   connector corp-ldap (ldap ")
            && out.contains("root DSE: OpenLDAP; naming contexts dc=acme,dc=test")
            && out.contains(&format!("user_base \"{PEOPLE_DN}\" exists"))
            && out.contains(&format!("group_base \"{GROUPS_DN}\" exists"))
            && out.contains("the schema supports disable = ppolicy"),
        "{out}"
    );
    // A 389 DS preset pointed at OpenLDAP: it works, but the disagreement is warned about.
    assert!(
        out.contains("OK   connector wrong-kind (ldap ")
            && out.contains(
                "WARN the server is OpenLDAP, whose accounts are disabled by \"ppolicy\", but \
                 disable = \"nsaccountlock\""
            )
            && out.contains(
                "WARN disable = \"nsaccountlock\" writes nsAccountLock, which the \
                 server's schema does not define"
            ),
        "{out}"
    );
    assert!(out.contains("probe OK: 5 checked"), "{out}");
    assert!(
        !out.contains("discord-token") && !out.contains(TOKEN),
        "no secret is printed: {out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_names_what_fails_with_its_url() {
    let db = TestDb::create(Backend::from_env()).await;
    let slapd = Slapd::start().await;
    let dead = format!("http://127.0.0.1:{}/v2", free_port());
    let text = format!(
        "{ORG}\n[[connector]]\nname = \"gone\"\nkind = \"scim\"\nbase_url = \"{dead}\"\ntoken_env = \"QM_T_SCIM\"\n\n\
         [[connector]]\nname = \"corp-ldap\"\nkind = \"ldap\"\nurl = \"{}\"\nbind_dn = \"{ADMIN_DN}\"\n\
         password_env = \"QM_T_LDAP\"\npeople_dn = \"ou=nobody,dc=acme,dc=test\"\ngroups_dn = \"{GROUPS_DN}\"\n",
        slapd.url
    );
    let password = slapd.admin_password.clone();
    let db_url = db.url.clone();
    let (ok, out) = tokio::task::spawn_blocking(move || probe(&text, &db_url, &password))
        .await
        .unwrap();
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "FAIL connector gone (scim {dead}): GET {dead}/ServiceProviderConfig"
        )),
        "{out}"
    );
    assert!(
        out.contains("FAIL connector corp-ldap (ldap ")
            && out.contains("user_base \"ou=nobody,dc=acme,dc=test\" does not exist"),
        "{out}"
    );
    assert!(out.contains("probe: 2 of 3 do not work"), "{out}");
}

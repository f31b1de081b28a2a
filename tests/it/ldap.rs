//! The `ldap` connector against a real OpenLDAP slapd that each test starts on a loopback port
//! (see `testkit/src/ldap.rs`), and the whole bot provisioning through it.

#![allow(clippy::unwrap_used)]

use testkit as support;

use std::sync::Arc;

use quartermaster::connectors::ldap::{LOCKED_FOREVER, LdapConnector, LdapSettings, Preset};
use quartermaster::core::model::{ConnectorName, Email, Handle};
use quartermaster::core::ports::{Connector, ConnectorError, Effect, Subject};
use secrecy::SecretString;
use support::Bot;
use support::ldap::{ADMIN_DN, GROUPS_DN, PEOPLE_DN, Slapd};

/// OpenLDAP settings over the test tree, `edit`ed.
fn settings(url: &str, password: &str, edit: impl FnOnce(&mut LdapSettings)) -> LdapSettings {
    let mut st = LdapSettings::preset(
        Preset::OpenLdap,
        url,
        ADMIN_DN,
        SecretString::from(password.to_owned()),
        PEOPLE_DN,
        GROUPS_DN,
    );
    edit(&mut st);
    st
}

/// These tests let the connector create missing groups, with the bind DN as the placeholder
/// member `groupOfNames` needs (both off by default).
fn connector(s: &Slapd, password: &str) -> LdapConnector {
    let st = settings(&s.url, password, |st| {
        st.create_groups = true;
        st.placeholder_member = Some(ADMIN_DN.into());
    });
    LdapConnector::new(ConnectorName::parse("corp-ldap").unwrap(), st).unwrap()
}

fn subject(handle: &str, name: &str) -> Subject {
    Subject {
        handle: Handle::parse(handle).unwrap(),
        name: name.into(),
        email: Email::parse(&format!("{handle}@acme.test")).unwrap(),
    }
}

fn user_dn(h: &str) -> String {
    format!("uid={h},{PEOPLE_DN}")
}

fn group_dn(g: &str) -> String {
    format!("cn={g},{GROUPS_DN}")
}

fn first(e: &std::collections::HashMap<String, Vec<String>>, k: &str) -> Option<String> {
    e.get(k).and_then(|v| v.first().cloned())
}

#[tokio::test]
async fn account_lifecycle_create_disable_enable_delete() {
    let s = Slapd::start().await;
    let c = connector(&s, &s.admin_password);
    let alice = subject("alice", "Alice Kim");
    let dn = user_dn("alice");

    assert_eq!(c.find_account(&alice).await.unwrap(), None);
    assert_eq!(c.create_account(&alice).await.unwrap(), Effect::Applied);
    assert_eq!(
        c.create_account(&alice).await.unwrap(),
        Effect::AlreadyInState
    );
    let acct = c.find_account(&alice).await.unwrap().unwrap();
    assert!(acct.active);
    assert_eq!(acct.id, dn);

    let e = s.entry(&dn).await.expect("entry exists");
    let mut classes = e["objectclass"].clone();
    classes.sort();
    assert!(classes.contains(&"inetOrgPerson".to_owned()), "{classes:?}");
    assert_eq!(first(&e, "uid").as_deref(), Some("alice"));
    assert_eq!(first(&e, "cn").as_deref(), Some("Alice Kim"));
    assert_eq!(first(&e, "sn").as_deref(), Some("Kim"));
    assert_eq!(first(&e, "mail").as_deref(), Some("alice@acme.test"));

    // A password so that we can watch the lock bite on a real bind.
    s.set_password(&dn, "alice-pw").await;
    assert_eq!(s.bind_rc(&dn, "alice-pw").await, 0);

    assert_eq!(c.disable_account(&alice).await.unwrap(), Effect::Applied);
    let e = s.entry(&dn).await.unwrap();
    assert_eq!(
        first(&e, "pwdaccountlockedtime").as_deref(),
        Some(LOCKED_FOREVER)
    );
    assert_eq!(s.bind_rc(&dn, "alice-pw").await, 49, "locked account binds");
    assert_eq!(
        c.disable_account(&alice).await.unwrap(),
        Effect::AlreadyInState
    );
    assert!(!c.find_account(&alice).await.unwrap().unwrap().active);

    assert_eq!(c.enable_account(&alice).await.unwrap(), Effect::Applied);
    let e = s.entry(&dn).await.unwrap();
    assert_eq!(first(&e, "pwdaccountlockedtime"), None);
    assert_eq!(
        s.bind_rc(&dn, "alice-pw").await,
        0,
        "unlocked account binds"
    );
    assert_eq!(
        c.enable_account(&alice).await.unwrap(),
        Effect::AlreadyInState
    );
    assert!(c.find_account(&alice).await.unwrap().unwrap().active);

    assert_eq!(c.delete_account(&alice).await.unwrap(), Effect::Applied);
    assert!(s.entry(&dn).await.is_none());
    assert_eq!(
        c.delete_account(&alice).await.unwrap(),
        Effect::AlreadyInState
    );
    assert_eq!(c.find_account(&alice).await.unwrap(), None);

    // Disabling an absent account is already so; enabling one is a typed NotFound.
    assert_eq!(
        c.disable_account(&alice).await.unwrap(),
        Effect::AlreadyInState
    );
    assert!(matches!(
        c.enable_account(&alice).await,
        Err(ConnectorError::NotFound(_))
    ));
}

#[tokio::test]
async fn grant_revoke_and_list_keep_group_of_names_valid() {
    let s = Slapd::start().await;
    let c = connector(&s, &s.admin_password);
    let alice = subject("alice", "Alice Kim");
    let bob = subject("bob", "Bob Chen");
    c.create_account(&alice).await.unwrap();
    c.create_account(&bob).await.unwrap();
    let (a, b) = (user_dn("alice"), user_dn("bob"));

    assert_eq!(c.list_grants(&alice).await.unwrap(), Vec::<String>::new());

    // A missing group is created with the bind DN as its placeholder member.
    assert_eq!(c.grant(&alice, "wiki").await.unwrap(), Effect::Applied);
    assert_eq!(
        s.members(&group_dn("wiki")).await,
        [ADMIN_DN.to_owned(), a.clone()]
    );
    assert_eq!(
        c.grant(&alice, "wiki").await.unwrap(),
        Effect::AlreadyInState
    );
    assert_eq!(c.grant(&bob, "wiki").await.unwrap(), Effect::Applied);
    assert_eq!(c.grant(&alice, "figma").await.unwrap(), Effect::Applied);

    assert_eq!(c.list_grants(&alice).await.unwrap(), ["figma", "wiki"]);
    assert_eq!(c.list_grants(&bob).await.unwrap(), ["wiki"]);
    // The memberof overlay agrees: the membership is real in the directory.
    let mut member_of = s.entry(&a).await.unwrap()["memberof"].clone();
    member_of.sort();
    assert_eq!(member_of, [group_dn("figma"), group_dn("wiki")]);

    assert_eq!(c.revoke(&alice, "wiki").await.unwrap(), Effect::Applied);
    assert_eq!(
        s.members(&group_dn("wiki")).await,
        [ADMIN_DN.to_owned(), b.clone()]
    );
    assert_eq!(
        c.revoke(&alice, "wiki").await.unwrap(),
        Effect::AlreadyInState
    );
    // No group by that name: nothing shows she is out of it, so it is not claimed.
    assert!(matches!(
        c.revoke(&alice, "no-such-group").await,
        Err(ConnectorError::Unverifiable(_))
    ));
    assert_eq!(c.list_grants(&alice).await.unwrap(), ["figma"]);

    // The placeholder is never removed: revoking the last real member leaves it alone.
    assert_eq!(c.revoke(&bob, "wiki").await.unwrap(), Effect::Applied);
    assert_eq!(s.members(&group_dn("wiki")).await, [ADMIN_DN.to_owned()]);

    // A group made elsewhere with one member and no placeholder: revoking that member swaps
    // the placeholder in (the server refuses an empty groupOfNames with 65).
    {
        let mut l = s.admin().await;
        l.add(
            &group_dn("solo"),
            vec![
                ("objectClass", ["top", "groupOfNames"].into()),
                ("cn", ["solo"].into()),
                ("member", [b.as_str()].into()),
            ],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    }
    assert_eq!(c.list_grants(&bob).await.unwrap(), ["solo"]);
    assert_eq!(c.revoke(&bob, "solo").await.unwrap(), Effect::Applied);
    assert_eq!(s.members(&group_dn("solo")).await, [ADMIN_DN.to_owned()]);

    // Deleting an account takes it out of its groups first.
    assert_eq!(c.delete_account(&alice).await.unwrap(), Effect::Applied);
    assert_eq!(s.members(&group_dn("figma")).await, [ADMIN_DN.to_owned()]);
}

#[tokio::test]
async fn racing_repeats_count_once_and_the_rest_are_already_in_state() {
    // Concurrent repeats of one action: the look-up cannot see the others' writes in time, so
    // the server's 68 (entry exists), 20 (value exists) and 16 (no such value) answers are what
    // keeps them successes.
    let s = Slapd::start().await;
    let c = Arc::new(connector(&s, &s.admin_password));
    let carol = subject("carol", "Carol Diaz");

    async fn race<F, Fut>(n: usize, f: F) -> Vec<Effect>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Effect, ConnectorError>> + Send + 'static,
    {
        let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(f())).collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap().unwrap());
        }
        out
    }
    let applied = |v: &[Effect]| v.iter().filter(|e| **e == Effect::Applied).count();

    let v = race(8, || {
        let (c, w) = (c.clone(), carol.clone());
        async move { c.create_account(&w).await }
    })
    .await;
    assert_eq!(applied(&v), 1, "{v:?}");
    let v = race(8, || {
        let (c, w) = (c.clone(), carol.clone());
        async move { c.grant(&w, "ops").await }
    })
    .await;
    assert_eq!(applied(&v), 1, "{v:?}");
    assert_eq!(
        s.members(&group_dn("ops")).await,
        [ADMIN_DN.to_owned(), user_dn("carol")]
    );
    let v = race(8, || {
        let (c, w) = (c.clone(), carol.clone());
        async move { c.revoke(&w, "ops").await }
    })
    .await;
    assert_eq!(applied(&v), 1, "{v:?}");
    assert_eq!(s.members(&group_dn("ops")).await, [ADMIN_DN.to_owned()]);
    let v = race(8, || {
        let (c, w) = (c.clone(), carol.clone());
        async move { c.disable_account(&w).await }
    })
    .await;
    assert_eq!(applied(&v), 1, "{v:?}");
}

#[tokio::test]
async fn test_connection_accepts_the_right_password_and_never_shows_a_wrong_one() {
    let s = Slapd::start().await;
    connector(&s, &s.admin_password)
        .test_connection()
        .await
        .unwrap();

    let secret = "hunter2-wrong-Zq9";
    let bad = connector(&s, secret);
    assert!(!format!("{bad:?}").contains(secret));
    let err = bad.test_connection().await.unwrap_err();
    assert!(matches!(err, ConnectorError::Unauthorized(_)), "{err:?}");
    assert!(!err.is_retryable());
    let (shown, debug) = (err.to_string(), format!("{err:?}"));
    assert!(shown.contains("49"), "{shown}");
    assert!(
        !shown.contains(secret) && !debug.contains(secret),
        "{debug}"
    );
    // Every operation fails the same way.
    let e = bad.find_account(&subject("alice", "A")).await.unwrap_err();
    assert!(matches!(e, ConnectorError::Unauthorized(_)), "{e:?}");

    // A user_base that is not there is a typed NotFound naming the key.
    let wrong_tree = LdapConnector::new(
        ConnectorName::parse("corp-ldap").unwrap(),
        settings(&s.url, &s.admin_password, |st| {
            st.user_base = "ou=staff,dc=acme,dc=test".into()
        }),
    )
    .unwrap();
    let e = wrong_tree.test_connection().await.unwrap_err();
    assert!(
        matches!(&e, ConnectorError::NotFound(m) if m.contains("user_base")),
        "{e:?}"
    );

    // Nobody listening: transient, so the engine retries.
    let url = s.url.clone();
    drop(s);
    let gone = LdapConnector::new(
        ConnectorName::parse("corp-ldap").unwrap(),
        settings(&url, "x", |_| {}),
    )
    .unwrap();
    let e = gone.test_connection().await.unwrap_err();
    assert!(matches!(e, ConnectorError::Transient(_)), "{e:?}");
    assert!(e.is_retryable());
}

const E2E: &str = r#"
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
role = "engineer"

[[person]]
handle = "alice"
name = "Alice Kim"
email = "alice@acme.test"
role = "engineer"
manager = "bob"

[[role]]
name = "it-admin"
apps = []

[[role]]
name = "engineer"
apps = []

[[app]]
name = "wiki"
display = "Wiki"
connector = "corp-ldap"
entitlement = "wiki-editors"
owners = ["bob"]
approvals = ["manager"]

[[connector]]
name = "corp-ldap"
kind = "ldap"
url = "URL"
bind_dn = "cn=admin,dc=acme,dc=test"
password_env = "LDAP_PASSWORD"
people_dn = "ou=people,dc=acme,dc=test"
groups_dn = "ou=groups,dc=acme,dc=test"
create_groups = true
placeholder_member = "cn=admin,dc=acme,dc=test"
"#;

#[tokio::test]
async fn approved_request_lands_in_slapd_and_offboarding_removes_and_locks() {
    let s = Slapd::start().await;
    let text = E2E.replace("\"URL\"", &format!("\"{}\"", s.url));
    let pw = s.admin_password.clone();
    let mut bot =
        Bot::from_toml_env(&text, &move |k| (k == "LDAP_PASSWORD").then(|| pw.clone())).await;
    let (alice, group) = (user_dn("alice"), group_dn("wiki-editors"));

    bot.run(r#"alice: /request app:wiki reason:"edit the runbooks""#)
        .await;
    assert!(s.entry(&alice).await.is_none(), "nothing before approval");
    bot.run("bob: :click Approve").await;

    let e = s.entry(&alice).await.expect("alice's entry was created");
    assert_eq!(first(&e, "cn").as_deref(), Some("Alice Kim"));
    assert_eq!(first(&e, "mail").as_deref(), Some("alice@acme.test"));
    assert_eq!(first(&e, "pwdaccountlockedtime"), None);
    assert_eq!(
        s.members(&group).await,
        [ADMIN_DN.to_owned(), alice.clone()]
    );
    assert_eq!(bot.last_to("alice").text, "✅ You now have Wiki.");
    let audit = bot.audit_actions().await;
    assert!(audit.contains(&"grant.provisioned".to_owned()), "{audit:?}");

    bot.run("dana: /offboard user:alice").await;
    let plan = bot.last_to("dana");
    assert!(
        plan.text
            .contains("- Wiki (connector corp-ldap, entitlement wiki-editors)")
            && plan.text.contains("Accounts to disable: corp-ldap"),
        "{}",
        plan.text
    );
    bot.run("dana: :click Confirm").await;
    let report = bot.last_to("dana").text;
    assert!(
        report.contains("- Wiki (connector corp-ldap, entitlement wiki-editors): removed ✔")
            && report.contains("re-read of connector corp-ldap: nothing left ✔")
            && report.contains("- corp-ldap account: disabled ✔")
            && report.contains("Everything is removed"),
        "{report}"
    );

    assert_eq!(s.members(&group).await, [ADMIN_DN.to_owned()]);
    let e = s.entry(&alice).await.expect("the entry is kept, locked");
    assert_eq!(
        first(&e, "pwdaccountlockedtime").as_deref(),
        Some(LOCKED_FOREVER)
    );
    let audit = bot.audit_actions().await;
    for a in ["grant.revoked", "account.disabled", "person.offboarded"] {
        assert!(audit.contains(&a.to_owned()), "{a} missing in {audit:?}");
    }
}

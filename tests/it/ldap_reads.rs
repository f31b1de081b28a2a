//! The `ldap` connector's own answers on a real slapd, each checked by an independent read:
//! two entries matching one person, a missing group (before any account is made), the
//! re-read through every membership attribute, and "could not verify" where the group cannot
//! be read. (The layouts end to end are in `ldap_directories.rs`.)

#![allow(clippy::unwrap_used)]

use testkit as support;

use quartermaster::connectors::ldap::{LdapConnector, LdapSettings, Preset};
use quartermaster::core::model::{ActionOp, ConnectorName, Email, Handle};
use quartermaster::core::ports::{Connector, ConnectorError, Effect, Subject};
use secrecy::SecretString;
use support::ldap::{ADMIN_DN, Slapd};
use support::ldap_layouts::{ALICE, APPS, BOB, GROUPS, Peer, USERS, seed_people};

fn alice() -> Subject {
    Subject {
        handle: Handle::parse("alice").unwrap(),
        name: "Alice Kim".into(),
        email: Email::parse("alice@acme.test").unwrap(),
    }
}

fn connector(s: &Slapd, edit: impl FnOnce(&mut LdapSettings)) -> LdapConnector {
    let mut st = LdapSettings::preset(
        Preset::OpenLdap,
        s.url.clone(),
        ADMIN_DN,
        SecretString::from(s.admin_password.clone()),
        USERS,
        GROUPS,
    );
    edit(&mut st);
    LdapConnector::new(ConnectorName::parse("corp-ldap").unwrap(), st).unwrap()
}

async fn seed_inet(s: &Slapd) {
    let classes = ["top", "person", "organizationalPerson", "inetOrgPerson"];
    seed_people(&Peer::Slapd(s), &classes, &[]).await;
}

#[tokio::test]
async fn two_matching_entries_are_an_error_naming_both_and_nothing_changes() {
    let s = Slapd::start().await;
    seed_inet(&s).await;
    let p = Peer::Slapd(&s);
    // A stray second entry with Alice's mail.
    p.add(
        "uid=alice,ou=users,dc=acme,dc=test",
        &[
            (
                "objectClass",
                &["top", "person", "organizationalPerson", "inetOrgPerson"],
            ),
            ("uid", &["alice"]),
            ("cn", &["alice"]),
            ("sn", &["alice"]),
        ],
    )
    .await;
    let group = format!("cn=wiki-editors,{APPS}");
    p.add(
        &group,
        &[
            ("objectClass", &["top", "groupOfNames"]),
            ("cn", &["wiki-editors"]),
            ("member", &[BOB]),
        ],
    )
    .await;
    let c = connector(&s, |_| {});
    let e = c
        .apply(ActionOp::Grant, &alice(), Some("wiki-editors"))
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(
        matches!(e, ConnectorError::Permanent(_))
            && m.contains(ALICE)
            && m.contains("uid=alice,ou=users,dc=acme,dc=test"),
        "{m}"
    );
    assert_eq!(p.values(&group, "member").await, [BOB.to_owned()]);
}

#[tokio::test]
async fn a_missing_group_fails_before_any_account_is_created() {
    let s = Slapd::start().await;
    seed_inet(&s).await;
    let p = Peer::Slapd(&s);
    let newcomer = Subject {
        handle: Handle::parse("erin").unwrap(),
        name: "Erin Moss".into(),
        email: Email::parse("erin@acme.test").unwrap(),
    };
    let c = connector(&s, |_| {});
    let e = c
        .apply(ActionOp::Grant, &newcomer, Some("no-such-group"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ConnectorError::Permanent(m) if m.contains("create_groups is off")),
        "{e:?}"
    );
    assert!(
        p.search("(|(uid=erin)(mail=erin@acme.test))")
            .await
            .is_empty()
    );
    assert!(p.search("(cn=no-such-group)").await.is_empty());

    // With create_users off, a person the directory lacks is an error, not a create.
    let g = format!("cn=wiki-editors,{APPS}");
    p.add(
        &g,
        &[
            ("objectClass", &["top", "groupOfNames"]),
            ("cn", &["wiki-editors"]),
            ("member", &[BOB]),
        ],
    )
    .await;
    let hr_fed = connector(&s, |st| st.create_users = false);
    let e = hr_fed
        .apply(ActionOp::Grant, &newcomer, Some("wiki-editors"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ConnectorError::Permanent(m) if m.contains("create_users is off")),
        "{e:?}"
    );
    assert!(
        p.search("(|(uid=erin)(mail=erin@acme.test))")
            .await
            .is_empty()
    );
    assert_eq!(p.values(&g, "member").await, [BOB.to_owned()]);
}

#[tokio::test]
async fn the_re_read_finds_every_kind_of_membership_and_revoke_removes_it() {
    let s = Slapd::start().await;
    seed_inet(&s).await;
    let p = Peer::Slapd(&s);
    // Memberships the connector never made, in every form, some in a sub-OU.
    let gon = format!("cn=wiki-editors,{APPS}");
    let gun = format!("cn=vpn,{APPS}");
    let posix = format!("cn=shell,{GROUPS}");
    p.add(
        &gon,
        &[
            ("objectClass", &["top", "groupOfNames"]),
            ("cn", &["wiki-editors"]),
            ("member", &[BOB, ALICE]),
        ],
    )
    .await;
    p.add(
        &gun,
        &[
            ("objectClass", &["top", "groupOfUniqueNames"]),
            ("cn", &["vpn"]),
            ("uniqueMember", &[BOB, ALICE]),
        ],
    )
    .await;
    p.add(
        &posix,
        &[
            ("objectClass", &["top", "posixGroup"]),
            ("cn", &["shell"]),
            ("gidNumber", &["5002"]),
            ("memberUid", &["akim"]),
        ],
    )
    .await;
    let c = connector(&s, |_| {});
    let inv = c.apply(ActionOp::Verify, &alice(), None).await.unwrap();
    assert_eq!(
        inv,
        Effect::Inventory {
            entitlements: vec!["shell".into(), "vpn".into(), "wiki-editors".into()],
            active_account: true,
        }
    );
    // What the re-read reports, revoke can take away, whatever the attribute.
    for g in ["shell", "vpn", "wiki-editors"] {
        assert_eq!(c.revoke(&alice(), g).await.unwrap(), Effect::Applied, "{g}");
        assert_eq!(
            c.revoke(&alice(), g).await.unwrap(),
            Effect::AlreadyInState,
            "{g}"
        );
    }
    assert_eq!(p.values(&gon, "member").await, [BOB.to_owned()]);
    assert_eq!(p.values(&gun, "uniqueMember").await, [BOB.to_owned()]);
    assert!(p.values(&posix, "memberUid").await.is_empty());
    let inv = c.apply(ActionOp::Verify, &alice(), None).await.unwrap();
    assert_eq!(
        inv,
        Effect::Inventory {
            entitlements: vec![],
            active_account: true,
        }
    );

    // Her being a groupOfNames' last member: the schema refuses an empty group, and with no
    // placeholder_member the revoke fails saying so — the membership stays, and is not
    // reported gone.
    let solo = format!("cn=solo,{APPS}");
    p.add(
        &solo,
        &[
            ("objectClass", &["top", "groupOfNames"]),
            ("cn", &["solo"]),
            ("member", &[ALICE]),
        ],
    )
    .await;
    let e = c.revoke(&alice(), "solo").await.unwrap_err();
    assert!(
        matches!(&e, ConnectorError::Permanent(m) if m.contains("placeholder_member")),
        "{e:?}"
    );
    assert_eq!(p.values(&solo, "member").await, [ALICE.to_owned()]);
    let with_placeholder = connector(&s, |st| st.placeholder_member = Some(BOB.into()));
    assert_eq!(
        with_placeholder.revoke(&alice(), "solo").await.unwrap(),
        Effect::Applied
    );
    assert_eq!(p.values(&solo, "member").await, [BOB.to_owned()]);
}

#[tokio::test]
async fn revoke_says_could_not_verify_when_the_group_cannot_be_read() {
    let s = Slapd::start().await;
    seed_inet(&s).await;
    let p = Peer::Slapd(&s);
    // The group is not where the connector looks: nothing proves she is out of it.
    let elsewhere = "cn=wiki-editors,ou=users,dc=acme,dc=test";
    p.add(
        elsewhere,
        &[
            ("objectClass", &["top", "groupOfNames"]),
            ("cn", &["wiki-editors"]),
            ("member", &[ALICE]),
        ],
    )
    .await;
    let c = connector(&s, |_| {});
    let e = c.revoke(&alice(), "wiki-editors").await.unwrap_err();
    assert!(matches!(e, ConnectorError::Unverifiable(_)), "{e:?}");
    assert!(e.to_string().starts_with("could not verify"), "{e}");
    // A group named by DN that the server says does not exist: already out of it.
    assert_eq!(
        c.revoke(&alice(), &format!("cn=gone,{APPS}"))
            .await
            .unwrap(),
        Effect::AlreadyInState
    );
    assert_eq!(p.values(elsewhere, "member").await, [ALICE.to_owned()]);
}

#[tokio::test]
async fn tls_ldaps_and_starttls_verify_the_certificate() {
    let s = Slapd::start_tls().await;
    seed_inet(&s).await;
    let ldaps = s.ldaps_url.clone().unwrap();
    let ca = s.ca_file.clone().unwrap();
    // ldaps:// trusting the test CA: the connector reads through TLS.
    let over_ldaps = connector(&s, |st| {
        st.url = ldaps.clone();
        st.ca_file = Some(ca.clone());
    });
    over_ldaps.test_connection().await.unwrap();
    let acct = over_ldaps.find_account(&alice()).await.unwrap().unwrap();
    assert_eq!(acct.id, ALICE);
    // StartTLS on ldap://, trusting the test CA.
    let starttls = connector(&s, |st| {
        st.starttls = true;
        st.ca_file = Some(ca.clone());
    });
    starttls.test_connection().await.unwrap();
    // Verification is on by default: the system's roots do not know the test CA.
    for (what, c) in [
        ("ldaps", connector(&s, |st| st.url = ldaps.clone())),
        ("starttls", connector(&s, |st| st.starttls = true)),
    ] {
        let e = c.test_connection().await.unwrap_err();
        let m = e.to_string().to_lowercase();
        assert!(
            m.contains("certificate") || m.contains("unknownissuer"),
            "{what}: {e:?}"
        );
        assert!(matches!(e, ConnectorError::Permanent(_)), "{what}: {e:?}");
    }
}

//! The `ldap` connector against the directory layouts companies run, each on a real server
//! the test starts: OpenLDAP slapd with groupOfNames, groupOfUniqueNames and posixGroup groups
//! in a sub-OU and a person who already exists as `cn=Alice Kim` (found by `mail`), slapd
//! with Active Directory's `userAccountControl` loaded, 389 Directory Server with
//! `nsAccountLock`, and a real Active Directory (Samba AD DC). Every step — grant, revoke, grant again, offboard — is checked by an
//! independent read of the server (ldap3 bound as its administrator, not the connector), and
//! must agree with what Quartermaster reported.

#![allow(clippy::unwrap_used)]

use testkit as support;

use std::collections::HashSet;

use support::Bot;
use support::ds389::Ds389;
use support::ldap::{AD_SCHEMA, Slapd};
use support::ldap_layouts::{ALICE, ALICE_PW, APPS, BOB, GROUPS, Peer, USERS, seed_people};
use support::samba::Samba;

const ORG: &str = r#"
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
bind_dn = "BIND"
password_env = "LDAP_PASSWORD"
"#;

/// How one layout lists Alice in the wiki group, read independently.
struct Layout {
    group: String,
    attr: &'static str,
    alice_value: &'static str,
}

impl Layout {
    async fn has_alice(&self, p: &Peer<'_>) -> bool {
        p.values(&self.group, self.attr)
            .await
            .iter()
            .any(|v| v.eq_ignore_ascii_case(self.alice_value))
    }
}

async fn bot_for(p: &Peer<'_>, connector_keys: &str) -> Bot {
    let text = ORG
        .replace("\"URL\"", &format!("\"{}\"", p.url()))
        .replace("\"BIND\"", &format!("\"{}\"", p.admin_dn()))
        + connector_keys;
    let pw = p.password();
    Bot::from_toml_env(&text, &move |k| (k == "LDAP_PASSWORD").then(|| pw.clone())).await
}

/// Grant, revoke, grant again, offboard: each step's report agrees with an independent read.
async fn lifecycle(p: &Peer<'_>, bot: &mut Bot, layout: &Layout, disabled: impl AsyncCheck) {
    // No second account is ever made for Alice: she is the entry found by mail.
    let only_alice = |v: Vec<String>| {
        assert_eq!(
            v,
            [ALICE.to_ascii_lowercase()],
            "one entry for alice@acme.test, and it is hers"
        )
    };

    bot.run(r#"alice: /request app:wiki reason:"edit the runbooks""#)
        .await;
    bot.run("bob: :click Approve").await;
    assert_eq!(bot.last_to("alice").text, "✅ You now have Wiki.");
    assert!(layout.has_alice(p).await, "granted: the server lists her");
    only_alice(p.search("(|(mail=alice@acme.test)(uid=alice))").await);

    bot.run("alice: /revoke app:wiki").await;
    let said = bot.texts_to("alice").join("\n");
    assert!(said.contains("removed"), "{said}");
    assert!(
        !layout.has_alice(p).await,
        "revoked: the server no longer lists her"
    );

    bot.run(r#"alice: /request app:wiki reason:"back on the runbooks""#)
        .await;
    bot.run("bob: :click Approve").await;
    assert!(layout.has_alice(p).await, "granted again");
    only_alice(p.search("(|(mail=alice@acme.test)(uid=alice))").await);

    bot.run("dana: /offboard user:alice").await;
    bot.run("dana: :click Confirm").await;
    let report = bot.last_to("dana").text;
    assert!(
        report.contains("- Wiki (connector corp-ldap, entitlement wiki-editors): removed ✔")
            && report.contains("re-read of connector corp-ldap: nothing left ✔")
            && report.contains("- corp-ldap account: disabled ✔")
            && report.contains("Everything is removed"),
        "{report}"
    );
    assert!(!layout.has_alice(p).await, "offboarded: not a member");
    disabled.check(p).await;
    only_alice(p.search("(|(mail=alice@acme.test)(uid=alice))").await);
}

/// An independent check that Alice's account is disabled.
trait AsyncCheck {
    async fn check(&self, p: &Peer<'_>);
}

/// OpenLDAP ppolicy: the lock is set and her password no longer binds (49).
struct PpolicyLocked;
impl AsyncCheck for PpolicyLocked {
    async fn check(&self, p: &Peer<'_>) {
        assert_eq!(
            p.values(ALICE, "pwdAccountLockedTime").await,
            ["000001010000Z"]
        );
        assert_eq!(
            p.bind_rc(ALICE, ALICE_PW).await,
            49,
            "a locked account binds"
        );
    }
}

#[tokio::test]
async fn openldap_group_of_names_in_a_sub_ou_and_a_person_found_by_mail() {
    let s = Slapd::start().await;
    let p = Peer::Slapd(&s);
    seed_people(
        &p,
        &["top", "person", "organizationalPerson", "inetOrgPerson"],
        &[],
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
    // The keys every existing config has: the defaults must find her by mail and the group in
    // the sub-OU (the first connector made `uid=alice,ou=users` and a new group).
    let mut bot = bot_for(
        &p,
        &format!("people_dn = \"{USERS}\"\ngroups_dn = \"{GROUPS}\"\n"),
    )
    .await;
    let layout = Layout {
        group,
        attr: "member",
        alice_value: ALICE,
    };
    lifecycle(&p, &mut bot, &layout, PpolicyLocked).await;
    assert_eq!(
        p.search("(objectClass=groupOfNames)").await.len(),
        1,
        "no group was created"
    );
}

#[tokio::test]
async fn openldap_group_of_unique_names() {
    let s = Slapd::start().await;
    let p = Peer::Slapd(&s);
    seed_people(
        &p,
        &["top", "person", "organizationalPerson", "inetOrgPerson"],
        &[],
    )
    .await;
    let group = format!("cn=wiki-editors,{APPS}");
    p.add(
        &group,
        &[
            ("objectClass", &["top", "groupOfUniqueNames"]),
            ("cn", &["wiki-editors"]),
            ("uniqueMember", &[BOB]),
        ],
    )
    .await;
    let mut bot = bot_for(
        &p,
        &format!(
            "user_base = \"{USERS}\"\ngroup_base = \"{GROUPS}\"\n\
             group_object_class = \"groupOfUniqueNames\"\nmember_attribute = \"uniqueMember\"\n"
        ),
    )
    .await;
    let layout = Layout {
        group,
        attr: "uniqueMember",
        alice_value: ALICE,
    };
    lifecycle(&p, &mut bot, &layout, PpolicyLocked).await;
}

#[tokio::test]
async fn openldap_posix_group_with_member_uid() {
    let s = Slapd::start().await;
    let p = Peer::Slapd(&s);
    seed_people(
        &p,
        &["top", "person", "organizationalPerson", "inetOrgPerson"],
        &[],
    )
    .await;
    let group = format!("cn=wiki-editors,{APPS}");
    p.add(
        &group,
        &[
            ("objectClass", &["top", "posixGroup"]),
            ("cn", &["wiki-editors"]),
            ("gidNumber", &["5001"]),
        ],
    )
    .await;
    let mut bot = bot_for(
        &p,
        &format!(
            "user_base = \"{USERS}\"\ngroup_base = \"{GROUPS}\"\n\
             group_object_class = \"posixGroup\"\nmember_attribute = \"memberUid\"\n"
        ),
    )
    .await;
    // Listed by the uid her entry has (akim), not by the Quartermaster handle.
    let layout = Layout {
        group,
        attr: "memberUid",
        alice_value: "akim",
    };
    lifecycle(&p, &mut bot, &layout, PpolicyLocked).await;
}

/// Active Directory's `userAccountControl` (bit 2 = disabled), on slapd with AD's attributes.
struct UacDisabled;
impl AsyncCheck for UacDisabled {
    async fn check(&self, p: &Peer<'_>) {
        // 66048 = NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD; + ACCOUNTDISABLE (2), nothing else.
        assert_eq!(p.values(ALICE, "userAccountControl").await, ["66050"]);
        assert_eq!(p.values(BOB, "userAccountControl").await, ["66048"]);
    }
}

#[tokio::test]
async fn active_directory_preset_on_slapd_with_the_ad_schema() {
    let s = Slapd::start_with_schema(AD_SCHEMA).await;
    let p = Peer::Slapd(&s);
    seed_people(
        &p,
        &["top", "person", "organizationalPerson", "user"],
        &[("userAccountControl", &["66048"])],
    )
    .await;
    // AD finds people by sAMAccountName; Alice's is her handle.
    let mut l = s.admin().await;
    l.modify(
        ALICE,
        vec![ldap3::Mod::Add("sAMAccountName", HashSet::from(["alice"]))],
    )
    .await
    .unwrap()
    .success()
    .unwrap();
    let _ = l.unbind().await;
    let group = format!("cn=wiki-editors,{APPS}");
    p.add(
        &group,
        &[
            ("objectClass", &["top", "group"]),
            ("cn", &["wiki-editors"]),
            ("member", &[BOB]),
        ],
    )
    .await;
    let mut bot = bot_for(
        &p,
        &format!(
            "preset = \"active-directory\"\nuser_base = \"{USERS}\"\ngroup_base = \"{GROUPS}\"\n"
        ),
    )
    .await;
    let layout = Layout {
        group,
        attr: "member",
        alice_value: ALICE,
    };
    lifecycle(&p, &mut bot, &layout, UacDisabled).await;
}

/// 389 DS: `nsAccountLock: TRUE`, and the server refuses her bind (53, "Account inactivated").
struct NsLocked;
impl AsyncCheck for NsLocked {
    async fn check(&self, p: &Peer<'_>) {
        let v = p.values(ALICE, "nsAccountLock").await;
        assert!(v.len() == 1 && v[0].eq_ignore_ascii_case("true"), "{v:?}");
        assert_eq!(
            p.bind_rc(ALICE, ALICE_PW).await,
            53,
            "an inactivated account binds"
        );
    }
}

#[tokio::test]
async fn ds389_preset_with_nsaccountlock() {
    let d = Ds389::start().await;
    let p = Peer::Ds(&d);
    seed_people(
        &p,
        &["top", "person", "organizationalPerson", "inetOrgPerson"],
        &[],
    )
    .await;
    assert_eq!(p.bind_rc(ALICE, ALICE_PW).await, 0);
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
    let mut bot = bot_for(
        &p,
        &format!("preset = \"389ds\"\nuser_base = \"{USERS}\"\ngroup_base = \"{GROUPS}\"\n"),
    )
    .await;
    let layout = Layout {
        group,
        attr: "member",
        alice_value: ALICE,
    };
    lifecycle(&p, &mut bot, &layout, NsLocked).await;
}

/// A real Active Directory (Samba AD DC): `userAccountControl` bit 2 set, every other bit kept,
/// and the DC refuses her password (49).
struct AdDisabled;
impl AsyncCheck for AdDisabled {
    async fn check(&self, p: &Peer<'_>) {
        assert_eq!(p.values(ALICE, "userAccountControl").await, ["66050"]);
        assert_eq!(p.values(BOB, "userAccountControl").await, ["66048"]);
        assert_eq!(
            p.bind_rc(ALICE, ALICE_PW).await,
            49,
            "a disabled account binds"
        );
    }
}

#[tokio::test]
async fn samba_ad_dc_with_the_active_directory_preset() {
    let a = Samba::start().await;
    let p = Peer::Samba(&a);
    a.add(
        USERS,
        &[("objectClass", &["organizationalUnit"]), ("ou", &["users"])],
    )
    .await;
    a.add(
        GROUPS,
        &[
            ("objectClass", &["organizationalUnit"]),
            ("ou", &["groups"]),
        ],
    )
    .await;
    a.add(
        APPS,
        &[("objectClass", &["organizationalUnit"]), ("ou", &["apps"])],
    )
    .await;
    for (dn, cn, sam, mail) in [
        (ALICE, "Alice Kim", "alice", "alice@acme.test"),
        (BOB, "Bob Chen", "bchen", "bob@acme.test"),
    ] {
        a.add(
            dn,
            &[
                ("objectClass", &["user"]),
                ("cn", &[cn]),
                ("sAMAccountName", &[sam]),
                ("mail", &[mail]),
            ],
        )
        .await;
        a.set_password(sam, ALICE_PW);
        // NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD: enabled.
        a.replace(dn, "userAccountControl", &["66048"]).await;
    }
    assert_eq!(p.bind_rc(ALICE, ALICE_PW).await, 0);
    let group = format!("cn=wiki-editors,{APPS}");
    a.add(
        &group,
        &[
            ("objectClass", &["group"]),
            ("cn", &["wiki-editors"]),
            ("sAMAccountName", &["wiki-editors"]),
            ("member", &[BOB]),
        ],
    )
    .await;
    let mut bot = bot_for(
        &p,
        &format!(
            "preset = \"active-directory\"\nuser_base = \"{USERS}\"\ngroup_base = \"{GROUPS}\"\n"
        ),
    )
    .await;
    let layout = Layout {
        group,
        attr: "member",
        alice_value: ALICE,
    };
    lifecycle(&p, &mut bot, &layout, AdDisabled).await;
}

//! The `ldap` connector listing what it holds (drift, issue 20), on real slapd servers the
//! tests start: every account read with the paged-results control past a size limit that
//! cuts a plain search short, the members of a group in each layout (groupOfNames with
//! ppolicy and a placeholder member, posixGroup with memberUid, Active Directory's attributes
//! on slapd) with the login, mails and state each reveals, a peer that dies or stalls
//! mid-listing (an error, never a shorter list), and a missing group (not found).

#![allow(clippy::unwrap_used)]

use testkit as support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use quartermaster::connectors::ldap::{LdapConnector, LdapSettings, MemberAttribute, Preset};
use quartermaster::core::model::{ActionOp, ConnectorName, Email, Handle};
use quartermaster::core::ports::{Connector, ConnectorError, Listed, Subject};
use secrecy::SecretString;
use support::ldap::{
    AD_SCHEMA, ADMIN_DN, GROUPS_DN, PEOPLE_DN, READER_DN, READER_PW, Slapd, bind_at,
};
use support::ldap_layouts::{ALICE, APPS, BOB, GROUPS, Peer, USERS, seed_people};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const INET: [&str; 4] = ["top", "person", "organizationalPerson", "inetOrgPerson"];

fn subject(handle: &str, name: &str, email: &str) -> Subject {
    Subject {
        handle: Handle::parse(handle).unwrap(),
        name: name.into(),
        email: Email::parse(email).unwrap(),
    }
}

fn connector(
    preset: Preset,
    url: &str,
    bind: (&str, &str),
    bases: (&str, &str),
    edit: impl FnOnce(&mut LdapSettings),
) -> LdapConnector {
    let mut st = LdapSettings::preset(
        preset,
        url,
        bind.0,
        SecretString::from(bind.1.to_owned()),
        bases.0,
        bases.1,
    );
    edit(&mut st);
    LdapConnector::new(ConnectorName::parse("corp-ldap").unwrap(), st).unwrap()
}

fn admin_connector(
    s: &Slapd,
    preset: Preset,
    edit: impl FnOnce(&mut LdapSettings),
) -> LdapConnector {
    connector(
        preset,
        &s.url,
        (ADMIN_DN, &s.admin_password),
        (USERS, GROUPS),
        edit,
    )
}

fn by_id(mut v: Vec<Listed>) -> Vec<Listed> {
    v.sort_by_key(|l| l.id.to_ascii_lowercase());
    v
}

fn listed(id: &str, login: Option<&str>, emails: &[&str], active: Option<bool>) -> Listed {
    Listed {
        id: id.into(),
        login: login.map(str::to_owned),
        emails: emails.iter().map(|e| (*e).to_owned()).collect(),
        active,
    }
}

fn person_dn(i: usize) -> String {
    format!("uid=user{i:02},{PEOPLE_DN}")
}

/// `n` people `uid=userNN` under `ou=people` and a group `cn=big` listing them all.
async fn seed_many(s: &Slapd, n: usize) {
    let mut l = s.admin().await;
    for i in 0..n {
        let (uid, mail) = (format!("user{i:02}"), format!("user{i:02}@acme.test"));
        let attrs: Vec<(&str, HashSet<&str>)> = vec![
            ("objectClass", INET.into_iter().collect()),
            ("uid", HashSet::from([uid.as_str()])),
            ("cn", HashSet::from([uid.as_str()])),
            ("sn", HashSet::from(["Many"])),
            ("mail", HashSet::from([mail.as_str()])),
        ];
        l.add(&person_dn(i), attrs)
            .await
            .unwrap()
            .success()
            .unwrap();
    }
    let members: Vec<String> = (0..n).map(person_dn).collect();
    let attrs: Vec<(&str, HashSet<&str>)> = vec![
        ("objectClass", HashSet::from(["top", "groupOfNames"])),
        ("cn", HashSet::from(["big"])),
        ("member", members.iter().map(String::as_str).collect()),
    ];
    l.add(&format!("cn=big,{GROUPS_DN}"), attrs)
        .await
        .unwrap()
        .success()
        .unwrap();
    let _ = l.unbind().await;
}

fn reader_connector(url: &str) -> LdapConnector {
    connector(
        Preset::OpenLdap,
        url,
        (READER_DN, READER_PW),
        (PEOPLE_DN, GROUPS_DN),
        |_| {},
    )
}

fn expected_many(n: usize) -> Vec<Listed> {
    (0..n)
        .map(|i| {
            let (uid, mail) = (format!("user{i:02}"), format!("user{i:02}@acme.test"));
            listed(&person_dn(i), Some(&uid), &[&mail], Some(true))
        })
        .collect()
}

#[tokio::test]
async fn every_account_and_member_is_listed_past_the_servers_size_limit() {
    let s = Slapd::start_with_size_limit(10).await;
    seed_many(&s, 60).await;
    // The service account's plain search is cut short at 10: sizeLimitExceeded.
    let mut l = bind_at(&s.url, READER_DN, READER_PW).await.unwrap();
    let res = l
        .search(
            PEOPLE_DN,
            ldap3::Scope::Subtree,
            "(objectClass=inetOrgPerson)",
            vec!["uid"],
        )
        .await
        .unwrap();
    assert_eq!(res.1.rc, 4, "a plain search is limited");
    assert!(res.0.len() <= 10, "{}", res.0.len());
    let _ = l.unbind().await;

    let want = expected_many(60);
    let c = reader_connector(&s.url);
    let accounts = c
        .list_accounts()
        .await
        .unwrap()
        .expect("ldap lists accounts");
    assert_eq!(
        by_id(accounts),
        want,
        "all 60, through the default page size"
    );
    // Small pages: many round trips, the same list.
    let small = reader_connector(&s.url).with_page_size(7);
    let accounts = small.list_accounts().await.unwrap().unwrap();
    assert_eq!(by_id(accounts), want, "all 60, seven at a time");

    let members = by_id(c.list_members("big").await.unwrap());
    let want: Vec<Listed> = want
        .into_iter()
        .map(|l| Listed {
            emails: vec![],
            active: None,
            ..l
        })
        .collect();
    assert_eq!(
        members, want,
        "all 60 members, each with the uid of its RDN"
    );
    let by_dn = by_id(
        c.list_members(&format!("cn=big,{GROUPS_DN}"))
            .await
            .unwrap(),
    );
    assert_eq!(by_dn, want, "the group named by its DN");
}

#[tokio::test]
async fn group_of_names_with_ppolicy_and_a_placeholder_member() {
    let s = Slapd::start().await;
    let p = Peer::Slapd(&s);
    seed_people(&p, &INET, &[]).await;
    let placeholder = "cn=nobody,dc=acme,dc=test";
    let group = format!("cn=wiki-editors,{APPS}");
    p.add(
        &group,
        &[
            ("objectClass", &["top", "groupOfNames"]),
            ("cn", &["wiki-editors"]),
            ("member", &[ALICE, placeholder]),
        ],
    )
    .await;
    let c = admin_connector(&s, Preset::OpenLdap, |st| {
        st.placeholder_member = Some(placeholder.into());
    });
    // Carol is created by the connector (uid=carol), Alice is disabled through it.
    let carol = subject("carol", "Carol Diaz", "carol@acme.test");
    c.apply(ActionOp::Grant, &carol, Some("wiki-editors"))
        .await
        .unwrap();
    let alice = subject("alice", "Alice Kim", "alice@acme.test");
    c.disable_account(&alice).await.unwrap();
    let carol_dn = format!("uid=carol,{USERS}");

    let accounts = by_id(c.list_accounts().await.unwrap().unwrap());
    assert_eq!(
        accounts,
        vec![
            listed(ALICE, Some("akim"), &["alice@acme.test"], Some(false)),
            listed(BOB, Some("bchen"), &["bob@acme.test"], Some(true)),
            listed(&carol_dn, Some("carol"), &["carol@acme.test"], Some(true)),
        ]
    );
    let members = by_id(c.list_members("wiki-editors").await.unwrap());
    assert_eq!(
        members,
        vec![
            // `cn=Alice Kim`: her login is not in the DN, and no second read is made.
            listed(ALICE, None, &[], None),
            listed(&carol_dn, Some("carol"), &[], None),
        ],
        "the placeholder is no member"
    );
}

#[tokio::test]
async fn posix_group_with_member_uid() {
    let s = Slapd::start().await;
    let p = Peer::Slapd(&s);
    seed_people(&p, &INET, &[]).await;
    p.add(
        &format!("cn=wiki-editors,{APPS}"),
        &[
            ("objectClass", &["top", "posixGroup"]),
            ("cn", &["wiki-editors"]),
            ("gidNumber", &["5001"]),
            ("memberUid", &["akim", "bchen", "ghost"]),
        ],
    )
    .await;
    let c = admin_connector(&s, Preset::OpenLdap, |st| {
        st.group_object_class = "posixGroup".into();
        st.member_attribute = MemberAttribute::MemberUid;
    });
    let members = by_id(c.list_members("wiki-editors").await.unwrap());
    assert_eq!(
        members,
        vec![
            listed("akim", Some("akim"), &[], None),
            listed("bchen", Some("bchen"), &[], None),
            // A uid with no account is still listed: the group holds it.
            listed("ghost", Some("ghost"), &[], None),
        ]
    );
    let bob = subject("bob", "Bob Chen", "bob@acme.test");
    c.disable_account(&bob).await.unwrap();
    let accounts = by_id(c.list_accounts().await.unwrap().unwrap());
    assert_eq!(
        accounts,
        vec![
            listed(ALICE, Some("akim"), &["alice@acme.test"], Some(true)),
            listed(BOB, Some("bchen"), &["bob@acme.test"], Some(false)),
        ]
    );
    // With disable = "none" nothing is said about whether an account is enabled.
    let none = admin_connector(&s, Preset::OpenLdap, |st| {
        st.disable = quartermaster::connectors::ldap::DisableMethod::None;
    });
    let accounts = by_id(none.list_accounts().await.unwrap().unwrap());
    assert!(accounts.iter().all(|a| a.active.is_none()), "{accounts:?}");
}

#[tokio::test]
async fn active_directory_attributes_on_slapd() {
    let s = Slapd::start_with_schema(AD_SCHEMA).await;
    let p = Peer::Slapd(&s);
    seed_people(
        &p,
        &["top", "person", "organizationalPerson", "user"],
        &[("userAccountControl", &["66048"])],
    )
    .await;
    let mut l = s.admin().await;
    for (dn, sam) in [(ALICE, "alice"), (BOB, "bob")] {
        l.modify(
            dn,
            vec![ldap3::Mod::Add("sAMAccountName", HashSet::from([sam]))],
        )
        .await
        .unwrap()
        .success()
        .unwrap();
    }
    let _ = l.unbind().await;
    p.add(
        &format!("cn=wiki-editors,{APPS}"),
        &[
            ("objectClass", &["top", "group"]),
            ("cn", &["wiki-editors"]),
            ("member", &[ALICE, BOB]),
        ],
    )
    .await;
    let c = admin_connector(&s, Preset::ActiveDirectory, |_| {});
    c.disable_account(&subject("alice", "Alice Kim", "alice@acme.test"))
        .await
        .unwrap();
    let accounts = by_id(c.list_accounts().await.unwrap().unwrap());
    assert_eq!(
        accounts,
        vec![
            // The login is sAMAccountName, the attribute AD's filter finds {handle} in.
            listed(ALICE, Some("alice"), &["alice@acme.test"], Some(false)),
            listed(BOB, Some("bob"), &["bob@acme.test"], Some(true)),
        ]
    );
    let members = by_id(c.list_members("wiki-editors").await.unwrap());
    assert_eq!(
        members,
        vec![listed(ALICE, None, &[], None), listed(BOB, None, &[], None)]
    );
}

#[tokio::test]
async fn a_missing_group_is_not_found() {
    let s = Slapd::start().await;
    seed_people(&Peer::Slapd(&s), &INET, &[]).await;
    let c = admin_connector(&s, Preset::OpenLdap, |_| {});
    let e = c.list_members("no-such-group").await.unwrap_err();
    assert!(matches!(e, ConnectorError::NotFound(_)), "{e:?}");
    let e = c
        .list_members(&format!("cn=no-such-group,{APPS}"))
        .await
        .unwrap_err();
    assert!(matches!(e, ConnectorError::NotFound(_)), "{e:?}");
}

/// A relay in front of slapd that forwards everything until `cut` bytes of answers have
/// gone to the client, then forwards nothing more (the client waits, as for a peer that
/// stopped answering) until the server closes, then closes the client too. Counts the bytes
/// of answers it forwarded.
async fn relay(
    upstream: String,
    cut: usize,
) -> (String, Arc<AtomicUsize>, Arc<tokio::sync::Notify>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ldap://{}", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicUsize::new(0));
    let reached = Arc::new(tokio::sync::Notify::new());
    let (sent2, reached2) = (sent.clone(), reached.clone());
    let addr = upstream.trim_start_matches("ldap://").to_owned();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&addr).await else {
                continue;
            };
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut cr, &mut sw).await;
            });
            let (sent, reached) = (sent2.clone(), reached2.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut cut_off = false;
                while let Ok(n) = sr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if cut_off {
                        continue;
                    }
                    let total = sent.fetch_add(n, Ordering::SeqCst) + n;
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    if total >= cut {
                        cut_off = true;
                        reached.notify_one();
                    }
                }
                let _ = cw.shutdown().await;
            });
        }
    });
    (url, sent, reached)
}

#[tokio::test]
async fn a_peer_that_dies_or_stalls_mid_listing_gives_an_error_never_a_shorter_list() {
    let s = Slapd::start_with_size_limit(10).await;
    seed_many(&s, 60).await;
    // How many bytes a whole listing in pages of 7 takes.
    let (url, sent, _) = relay(s.url.clone(), usize::MAX).await;
    let full = reader_connector(&url).with_page_size(7);
    assert_eq!(full.list_accounts().await.unwrap().unwrap().len(), 60);
    let whole = sent.load(Ordering::SeqCst);

    // Stalls after about a third: the connector's time limit fails the listing.
    let (url, sent, _) = relay(s.url.clone(), whole / 3).await;
    let stalled = reader_connector(&url)
        .with_page_size(7)
        .with_timeout(Duration::from_secs(2));
    let e = stalled.list_accounts().await.unwrap_err();
    assert!(matches!(e, ConnectorError::Transient(_)), "{e:?}");
    let at = sent.load(Ordering::SeqCst);
    assert!(
        at >= whole / 3 && at < whole,
        "cut mid-listing: {at} of {whole}"
    );

    // Dies after about half: slapd is killed while the listing waits for the next page.
    let (url, sent, reached) = relay(s.url.clone(), whole / 2).await;
    let dying = reader_connector(&url).with_page_size(7);
    let listing = tokio::spawn(async move { dying.list_accounts().await });
    reached.notified().await;
    let dead = s.url.clone();
    drop(s);
    let r = listing.await.unwrap();
    assert!(r.is_err(), "a listing cut short is no list: {r:?}");
    let at = sent.load(Ordering::SeqCst);
    assert!(at < whole, "cut mid-listing: {at} of {whole}");

    // A peer already gone: an error too.
    let gone = reader_connector(&dead).with_timeout(Duration::from_secs(2));
    assert!(gone.list_accounts().await.is_err());
    assert!(gone.list_members("big").await.is_err());
}

/// A real Active Directory (Samba AD DC): paged listing (one entry a page too), the login is
/// sAMAccountName, a computer account (a kind of `user`) is no person's account, and the
/// state is `userAccountControl`'s bit 2.
#[tokio::test]
async fn samba_ad_dc_lists_people_not_computers() {
    let a = support::samba::Samba::start().await;
    for (dn, ou) in [(USERS, "users"), (GROUPS, "groups"), (APPS, "apps")] {
        a.add(
            dn,
            &[("objectClass", &["organizationalUnit"]), ("ou", &[ou])],
        )
        .await;
    }
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
        a.set_password(sam, support::ldap_layouts::ALICE_PW);
        a.replace(dn, "userAccountControl", &["66048"]).await;
    }
    a.add(
        &format!("CN=WS01,{USERS}"),
        &[
            ("objectClass", &["computer"]),
            ("cn", &["WS01"]),
            ("sAMAccountName", &["WS01$"]),
        ],
    )
    .await;
    a.add(
        &format!("cn=wiki-editors,{APPS}"),
        &[
            ("objectClass", &["group"]),
            ("cn", &["wiki-editors"]),
            ("sAMAccountName", &["wiki-editors"]),
            ("member", &[ALICE, BOB]),
        ],
    )
    .await;
    let c = connector(
        Preset::ActiveDirectory,
        &a.url,
        (support::samba::ADMIN_DN, &a.admin_password),
        (USERS, GROUPS),
        |_| {},
    );
    c.disable_account(&subject("alice", "Alice Kim", "alice@acme.test"))
        .await
        .unwrap();
    let lower = |v: Vec<Listed>| {
        by_id(
            v.into_iter()
                .map(|l| Listed {
                    id: l.id.to_ascii_lowercase(),
                    ..l
                })
                .collect(),
        )
    };
    let (alice, bob) = (ALICE.to_ascii_lowercase(), BOB.to_ascii_lowercase());
    let want = vec![
        listed(&alice, Some("alice"), &["alice@acme.test"], Some(false)),
        listed(&bob, Some("bchen"), &["bob@acme.test"], Some(true)),
    ];
    assert_eq!(lower(c.list_accounts().await.unwrap().unwrap()), want);
    let paged = c.clone().with_page_size(1);
    assert_eq!(lower(paged.list_accounts().await.unwrap().unwrap()), want);
    assert_eq!(
        lower(c.list_members("wiki-editors").await.unwrap()),
        vec![
            listed(&alice, None, &[], None),
            listed(&bob, None, &[], None)
        ]
    );
    let e = c.list_members("no-such-group").await.unwrap_err();
    assert!(matches!(e, ConnectorError::NotFound(_)), "{e:?}");
}

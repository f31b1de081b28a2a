//! People, and people and grants read by lists.

use super::*;

both!(seeding_people_inserts_only_those_absent);
async fn seeding_people_inserts_only_those_absent(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    s.seed_people(&[person("alice", "Alice"), person("bob", "Bob")])
        .await
        .unwrap();
    let mut changed = person("alice", "Alice Changed");
    changed.discord_id = Some("777".into());
    s.upsert_person(
        &changed,
        vec![event(
            AuditAction::PersonRoleChanged,
            "name",
            t0(),
            ReqRef::None,
        )],
    )
    .await
    .unwrap();
    // The config seeds again at the next start: the database wins.
    s.seed_people(&[person("alice", "Alice"), person("carol", "Carol")])
        .await
        .unwrap();
    let all = s.people().await.unwrap();
    let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Alice Changed", "Bob", "Carol"]);
    assert_eq!(s.person(&h("alice")).await.unwrap().unwrap(), changed);
    assert_eq!(
        s.person_by_discord_id("777").await.unwrap().unwrap().handle,
        h("alice")
    );
    assert!(s.person(&h("zed")).await.unwrap().is_none());
    assert_eq!(audit_count(s).await, 1);
}

both!(a_person_and_an_email_holder_are_read_together);
/// One read gives the person with a handle and the one with an e-mail address: the same
/// person, two people, or nobody.
async fn a_person_and_an_email_holder_are_read_together(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    s.seed_people(&[person("alice", "Alice"), person("bob", "Bob")])
        .await
        .unwrap();
    let email = |x: &str| Email::parse(&format!("{x}@acme.test")).unwrap();
    let read = |handle: &'static str, e: Option<Email>| async move {
        let (p, holder) = s
            .person_and_email_holder(&h(handle), e.as_ref())
            .await
            .unwrap();
        (p.map(|p| p.handle), holder.map(|p| p.handle))
    };
    assert_eq!(
        read("alice", Some(email("alice"))).await,
        (Some(h("alice")), Some(h("alice")))
    );
    assert_eq!(
        read("alice", Some(email("bob"))).await,
        (Some(h("alice")), Some(h("bob")))
    );
    assert_eq!(
        read("zed", Some(email("bob"))).await,
        (None, Some(h("bob")))
    );
    assert_eq!(read("bob", None).await, (Some(h("bob")), None));
    assert_eq!(read("zed", Some(email("zed"))).await, (None, None));
}

both!(a_persons_time_zone_is_stored_and_read_back);
async fn a_persons_time_zone_is_stored_and_read_back(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    let la = Zone::parse("America/Los_Angeles").unwrap();
    let mut seeded = person("alice", "Alice");
    seeded.timezone = Some(la);
    s.seed_people(&[seeded.clone(), person("bob", "Bob")])
        .await
        .unwrap();
    assert_eq!(s.person(&h("alice")).await.unwrap().unwrap(), seeded);
    assert_eq!(s.person(&h("bob")).await.unwrap().unwrap().timezone, None);
    let mut moved = person("bob", "Bob");
    moved.timezone = Some(Zone::parse("Europe/Berlin").unwrap());
    s.upsert_person(&moved, vec![]).await.unwrap();
    let bob = s.person(&h("bob")).await.unwrap().unwrap();
    assert_eq!(bob.timezone.map(|z| z.name()), Some("Europe/Berlin"));
}

both!(people_and_grants_are_read_by_lists);
async fn people_and_grants_are_read_by_lists(b: Backend) {
    let f = fresh(b).await;
    let s = &f.store;
    s.seed_people(&[
        person("alice", "Alice"),
        person("bob", "Bob"),
        person("dave", "Dave"),
    ])
    .await
    .unwrap();
    let mut got: Vec<String> = s
        .people_by_handle(&[h("dave"), h("alice"), h("nobody")])
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    got.sort();
    assert_eq!(got, ["Alice", "Dave"]);
    assert!(s.people_by_handle(&[]).await.unwrap().is_empty());
    let c = s
        .commit(Change {
            new_grants: vec![new_grant("alice", "figma"), new_grant("bob", "figma")],
            ..Change::default()
        })
        .await
        .unwrap();
    let got = s
        .grants_by_id(&[c.grants[1], GrantId(999_999)])
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].person, h("bob"));
}

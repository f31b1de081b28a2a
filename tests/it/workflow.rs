//! The core end to end through the console adapter, on a real SQLite database: the README
//! story, the approval rules, server-side authorisation, the concurrent-click race, revocation,
//! the manual connector, timers and the audit trail.
#![allow(clippy::unwrap_used)]

use testkit as support;

use std::collections::HashMap;

use quartermaster::core::ports::{Grants, People, Requests};
use quartermaster::core::service::{ClickReply, Reply};
use quartermaster::store::VerifyReport;
use support::Bot;

fn reply_text(r: ClickReply) -> String {
    match r {
        ClickReply::Reply(Reply { text, .. }) => text,
        ClickReply::Form(f) => panic!("unexpected form {f:?}"),
    }
}

async fn memberships(bot: &Bot, who: &str) -> Vec<String> {
    bot.store.dir_memberships("directory", who).await.unwrap()
}

#[tokio::test]
async fn the_readme_story_runs_end_to_end() {
    let mut bot = Bot::example().await;
    bot.run(r#"alice: /request app:figma reason:"landing page mock-ups" duration:30d"#)
        .await;
    let prompt = bot.last_to("bob");
    assert_eq!(prompt.buttons, ["Approve", "Deny"]);
    assert!(
        prompt.text.contains("Alice Kim asks for Figma"),
        "{}",
        prompt.text
    );
    assert!(prompt.text.contains("Step 1 of 2"), "{}", prompt.text);
    assert!(bot.last_to("alice").text.contains("waiting for Bob Chen"));

    bot.run("bob: :click Approve").await;
    let carol = bot.last_to("carol");
    assert_eq!(carol.buttons, ["Approve", "Deny"]);
    assert!(carol.text.contains("Step 2 of 2 (owner)"));
    bot.run("carol: :click Approve").await;

    assert_eq!(memberships(&bot, "alice").await, ["figma"]);
    let alice = bot.texts_to("alice");
    assert!(
        alice
            .iter()
            .any(|t| t.starts_with("✅ You now have Figma until 2026-12-25")),
        "{alice:?}"
    );
    assert!(
        bot.texts_to("bob")
            .iter()
            .any(|t| t.contains("Alice Kim now has Figma"))
    );
    assert!(
        bot.texts_to("carol")
            .iter()
            .any(|t| t.contains("Alice Kim now has Figma"))
    );
    // Every copy of every prompt now shows who decided, and has no buttons.
    let edits: Vec<_> = bot
        .transcript()
        .into_iter()
        .filter(|m| m.kind == "edit")
        .collect();
    assert!(edits.iter().any(|m| {
        m.to.as_deref() == Some("bob")
            && m.text
                .contains("Approved by Bob Chen at 2026-11-25 09:00 UTC")
            && m.buttons.is_empty()
    }));
    assert!(edits.iter().any(|m| m.to.as_deref() == Some("carol")
        && m.text.contains("Approved by Carol Diaz")
        && m.buttons.is_empty()));

    bot.run(
        r#"frank: /request app:zoho reason:"expense reports"
bob: :click Deny reason:"not needed for this quarter""#,
    )
    .await;
    assert!(
        bot.last_to("frank")
            .text
            .contains("denied by Bob Chen: not needed for this quarter")
    );
    assert!(memberships(&bot, "frank").await.is_empty());

    bot.run(":advance 31d").await;
    assert!(
        memberships(&bot, "alice").await.is_empty(),
        "the 30-day grant ended"
    );

    bot.run("dana: /offboard user:alice").await;
    let plan = bot.last_to("dana");
    assert_eq!(plan.buttons, ["Confirm", "Cancel"]);
    assert!(
        plan.text.contains("Accounts to disable: directory"),
        "{}",
        plan.text
    );
    bot.run("dana: :click Confirm").await;
    let report = bot.last_to("dana").text;
    assert!(
        report.starts_with("Offboarding report for Alice Kim"),
        "{report}"
    );
    assert!(report.contains("directory account: disabled ✔"), "{report}");
    assert!(report.contains("Everything is removed"), "{report}");
    assert_eq!(
        bot.store
            .dir_account("directory", "alice")
            .await
            .unwrap()
            .map(|a| a.1),
        Some(false)
    );

    // An offboarded person can no longer request.
    bot.run("alice: /request app:jira reason:x").await;
    assert!(bot.last_to("alice").text.contains("offboarded"));

    let actions = bot.audit_actions().await;
    for a in [
        "request.submitted",
        "step.approved",
        "request.approved",
        "grant.provisioned",
        "step.denied",
        "grant.expired",
        "grant.revoked",
        "plan.confirmed",
        "person.offboarded",
        "account.disabled",
        "offboarding.reported",
        "command.refused",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "no {a} in the audit trail: {actions:?}"
        );
    }
    assert!(matches!(
        bot.store.verify_audit().await.unwrap(),
        VerifyReport::Ok { .. }
    ));
}

#[tokio::test]
async fn it_sees_plans_waiting_for_its_confirm_in_approvals() {
    let mut bot = Bot::example().await;
    bot.run("dana: /approvals").await;
    assert_eq!(
        bot.last_to("dana").text,
        "Nothing is waiting for your decision."
    );
    bot.run("dana: /offboard user:alice").await;
    bot.run("dana: /approvals").await;
    let a = bot.last_to("dana");
    assert!(
        a.text.starts_with("Waiting for your decision (1):"),
        "{}",
        a.text
    );
    assert!(
        a.text
            .contains("- Plan #1: offboarding of Alice Kim, asked by Dana Ortiz at "),
        "{}",
        a.text
    );
    assert_eq!(a.buttons, ["Confirm", "Cancel"]);
    // Its Confirm is the plan's: once clicked, the plan is carried out and leaves the list.
    bot.run("dana: :click Confirm").await;
    bot.run("dana: /approvals").await;
    assert_eq!(
        bot.last_to("dana").text,
        "Nothing is waiting for your decision."
    );
    // Others never see IT's plans.
    bot.run("bob: /approvals").await;
    assert_eq!(
        bot.last_to("bob").text,
        "Nothing is waiting for your decision."
    );
}

#[tokio::test]
async fn help_lists_the_commands_and_explains_one() {
    let mut bot = Bot::example().await;
    bot.run("alice: /help").await;
    let all = bot.last_to("alice").text;
    assert!(
        all.starts_with("Commands (type /help COMMAND for its options):"),
        "{all}"
    );
    assert!(all.contains("\n/request — "), "{all}");
    bot.run("alice: /help command:request").await;
    let one = bot.last_to("alice").text;
    assert!(one.starts_with("/request — "), "{one}");
    assert!(one.contains("\n  app: "), "{one}");
    bot.run("alice: /help command:frobnicate").await;
    let t = bot.last_to("alice").text;
    assert!(t.starts_with("there is no command /frobnicate"), "{t}");
}

#[tokio::test]
async fn nobody_approves_their_own_request_or_someone_elses_step() {
    let mut bot = Bot::example().await;
    // Ivy owns WordPress: her owner step goes to IT (dana, mia), never to her.
    bot.run(r#"ivy: /request app:wordpress reason:"blog""#)
        .await;
    assert!(
        bot.last_to("ivy")
            .text
            .contains("waiting for Erin Walsh (step 1 of 2)")
    );
    let ivy = bot.caller("ivy").await;
    let own = reply_text(bot.service.click(&ivy, "v1:req:1:s0:approve", None).await);
    assert_eq!(own, "You cannot approve or deny your own request.");
    let frank = bot.caller("frank").await;
    let other = reply_text(bot.service.click(&frank, "v1:req:1:s0:approve", None).await);
    // Frank has no part in the request: he learns nothing about it.
    assert_eq!(other, "There is nothing for you to decide on request #1.");
    bot.run("erin: :click Approve").await;
    let dana = bot.last_to("dana");
    assert!(dana.text.contains("Step 2 of 2 (owner)") && dana.buttons == ["Approve", "Deny"]);
    assert!(bot.last_to("mia").text.contains("Step 2 of 2 (owner)"));
    assert!(bot.texts_to("ivy").iter().all(|t| !t.contains("Approve")));
    // A stale prompt for step 1 cannot decide step 2.
    let erin = bot.caller("erin").await;
    let again = reply_text(bot.service.click(&erin, "v1:req:1:s0:approve", None).await);
    assert!(
        again.starts_with("Already approved by Erin Walsh at 2026-11-25 09:00 UTC"),
        "{again}"
    );
    let step2 = reply_text(bot.service.click(&erin, "v1:req:1:s1:approve", None).await);
    assert_eq!(
        step2,
        "Only Dana Ortiz or Mia Torres can decide step 2 of request #1."
    );
    bot.run("mia: :click Approve").await;
    assert_eq!(memberships(&bot, "ivy").await, ["wordpress"]);
    // A click on a decided step changes nothing and says who decided.
    let late = reply_text(
        bot.service
            .click(&bot.caller("dana").await, "v1:req:1:s1:approve", None)
            .await,
    );
    assert!(
        late.starts_with("Already approved by Mia Torres at"),
        "{late}"
    );

    let refused: Vec<_> = bot
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "command.refused")
        .collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(
        refused
            .iter()
            .any(|r| r.actor == "ivy" && r.detail.contains("own request"))
    );
    assert!(
        refused
            .iter()
            .any(|r| r.actor == "frank" && r.outcome == "refused")
    );
}

#[tokio::test]
async fn fallbacks_route_steps_away_from_the_requester_and_earlier_deciders() {
    let mut bot = Bot::example().await;
    // Erin has no manager: IT decides.
    bot.run(r#"erin: /request app:crm reason:"board deck""#)
        .await;
    assert!(
        bot.last_to("erin")
            .text
            .contains("waiting for Dana Ortiz or Mia Torres")
    );
    // Dana asks for prod-db: manager erin, then IT other than dana: mia.
    bot.run(r#"dana: /request app:prod-db reason:"INC-7 outage" duration:2h"#)
        .await;
    bot.run("erin: :click Approve").await;
    let mia = bot.last_to("mia");
    assert!(
        mia.text.contains("Dana Ortiz asks for Production database")
            && mia.text.contains("Step 2 of 2 (it-admin)"),
        "{}",
        mia.text
    );
    assert!(
        !bot.texts_to("dana")
            .iter()
            .any(|t| t.contains("Step 2 of 2"))
    );
}

#[tokio::test]
async fn no_eligible_approver_tells_the_requester_and_it() {
    let toml = r#"
[organization]
name = "Tiny"
it_admins = ["ada"]

[[person]]
handle = "ada"
name = "Ada Admin"
email = "ada@tiny.test"
role = "admin"

[[role]]
name = "admin"
apps = []

[[app]]
name = "vault"
display = "Vault"
connector = "directory"
owners = ["ada"]
approvals = ["owner"]

[[connector]]
name = "directory"
kind = "directory"
"#;
    let mut bot = Bot::from_toml(toml).await;
    bot.run(r#"ada: /request app:vault reason:"keys""#).await;
    let texts = bot.texts_to("ada");
    assert!(
        texts
            .iter()
            .any(|t| t.contains("has nobody eligible to approve step 1 of 1")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("nobody is eligible to approve step 1 of 1; IT has been told")),
        "{texts:?}"
    );
    assert!(
        bot.audit_actions()
            .await
            .contains(&"step.no_approver".to_owned())
    );
}

#[tokio::test]
async fn ten_concurrent_clicks_record_exactly_one_decision() {
    let mut bot = Bot::example().await;
    bot.run(r#"alice: /request app:github reason:"repos""#)
        .await; // request #1, auto-approved
    bot.run(r#"henry: /request app:crm reason:"leads""#).await; // request #2, waits for ivy
    let before = bot.audit().await.len();
    let ivy = bot.caller("ivy").await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let service = bot.service.clone();
        let ivy = ivy.clone();
        tasks.push(tokio::spawn(async move {
            reply_text(service.click(&ivy, "v1:req:2:s0:approve", None).await)
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let won = answers
        .iter()
        .filter(|a| a.starts_with("You approved request #2"))
        .count();
    let lost = answers
        .iter()
        .filter(|a| a.starts_with("Already approved by Ivy Stone at"))
        .count();
    assert_eq!((won, lost), (1, 9), "{answers:#?}");
    let r = bot
        .store
        .request(quartermaster::core::model::RequestId(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.steps.iter().filter(|s| s.decision.is_some()).count(), 1);
    let rows = bot.audit().await;
    assert_eq!(
        rows[before..]
            .iter()
            .filter(|r| r.action == "step.approved")
            .count(),
        1
    );
    assert!(matches!(
        bot.store.verify_audit().await.unwrap(),
        VerifyReport::Ok { .. }
    ));
}

#[tokio::test]
async fn it_only_commands_are_refused_for_others_and_audited() {
    let mut bot = Bot::example().await;
    bot.run("alice: /offboard user:frank").await;
    assert_eq!(
        bot.last_to("alice").text,
        "/offboard is for IT admins only."
    );
    bot.run("alice: /onboard email:x@acme.test name:X role:engineer")
        .await;
    assert_eq!(bot.last_to("alice").text, "/onboard is for IT admins only.");
    bot.run("alice: /role user:frank role:designer").await;
    assert_eq!(
        bot.last_to("alice").text,
        "/role is for IT admins, or the person's manager."
    );
    bot.run("alice: /revoke app:jira user:frank").await;
    assert_eq!(
        bot.last_to("alice").text,
        "Only IT can revoke someone else's access."
    );
    bot.run("alice: /access user:frank").await;
    assert_eq!(
        bot.last_to("alice").text,
        "Only Frank Li's manager or IT can see their access."
    );
    let refused: Vec<_> = bot
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == "command.refused")
        .collect();
    assert_eq!(refused.len(), 5);
    assert!(
        refused
            .iter()
            .all(|r| r.actor == "alice" && r.outcome == "refused")
    );
    // The manager may look, and may propose a role change that IT confirms.
    bot.run("bob: /access user:frank").await;
    assert!(bot.last_to("bob").text.starts_with("Access of Frank Li:"));
    bot.run("bob: /role user:frank role:engineering-manager")
        .await;
    assert!(
        bot.last_to("bob")
            .text
            .contains("Sent to Dana Ortiz or Mia Torres to confirm.")
    );
    assert_eq!(bot.last_to("mia").buttons, ["Confirm", "Cancel"]);
    // Bob cannot confirm his own proposal.
    let bob = bot.caller("bob").await;
    let r = reply_text(bot.service.click(&bob, "v1:plan:1:confirm", None).await);
    assert_eq!(
        r,
        "Only Dana Ortiz or Mia Torres can confirm or cancel plan #1."
    );
    bot.run("mia: :click Confirm").await;
    let frank = bot
        .store
        .person(&quartermaster::core::model::Handle::parse("frank").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(frank.role.as_str(), "engineering-manager");
    assert_eq!(
        memberships(&bot, "frank").await.len(),
        3,
        "email, jira, github"
    );
}

#[tokio::test]
async fn requests_answer_with_what_exists_and_respect_the_catalog() {
    let mut bot = Bot::example().await;
    bot.run("alice: /request app:fgma").await;
    assert_eq!(
        bot.last_to("alice").text,
        "There is no app \"fgma\" in the catalog — did you mean `figma`?"
    );
    bot.run("alice: /request app:email").await;
    assert!(
        bot.texts_to("alice")
            .iter()
            .any(|t| t.contains("approved (it comes with your role)"))
    );
    assert_eq!(bot.last_to("alice").text, "✅ You now have Email.");
    bot.run("alice: /request app:jira").await;
    assert_eq!(bot.last_to("alice").text, "✅ You now have Jira.");
    bot.run("alice: /request app:jira").await;
    assert!(
        bot.last_to("alice")
            .text
            .starts_with("You already have Jira (since 2026-11-25")
    );
    // Pending: answers with the request.
    bot.run(r#"alice: /request app:crm reason:"x""#).await;
    bot.run(r#"alice: /request app:crm reason:"again""#).await;
    assert_eq!(
        bot.last_to("alice").text,
        "You already asked for CRM: request #3 is waiting for Bob Chen (step 1 of 1)."
    );
    // Reason pattern and duration cap.
    bot.run(r#"frank: /request app:prod-db reason:"because""#)
        .await;
    assert!(
        bot.last_to("frank")
            .text
            .contains("an incident or change ticket, e.g. INC-1234")
    );
    bot.run(r#"frank: /request app:prod-db reason:"INC-42 outage" duration:2d"#)
        .await;
    let t = bot.last_to("frank").text;
    assert!(
        t.contains("at most 8h; your request was shortened from 2d to 8h"),
        "{t}"
    );
    // Parser errors reach the person as sentences.
    bot.run("frank: /request app:figma duration:soon").await;
    assert_eq!(
        bot.last_to("frank").text,
        "duration: \"soon\" is not a duration; write it like 90m, 8h or 7d"
    );
    bot.run("frank: /request").await;
    assert!(
        bot.last_to("frank")
            .text
            .contains("missing the required option")
    );
    // A time-bound grant asked again becomes an extension.
    bot.run(r#"carol: /request app:prod-db reason:"CHG-1" duration:1h"#)
        .await;
    bot.run("grace: :click Approve").await;
    bot.run("dana: :click Approve").await;
    assert_eq!(memberships(&bot, "carol").await, ["prod-db"]);
    bot.run(r#"carol: /request app:prod-db reason:"CHG-1 more" duration:2h"#)
        .await;
    assert!(
        bot.last_to("carol")
            .text
            .contains("(an extension) is waiting for Grace Park")
    );
    bot.run("grace: :click Approve").await;
    bot.run("mia: :click Approve").await;
    let g = bot
        .store
        .grants_of(&quartermaster::core::model::Handle::parse("carol").unwrap())
        .await
        .unwrap();
    let until = g[0].expires_at.unwrap();
    assert_eq!(
        until,
        support::t0() + chrono::TimeDelta::hours(3),
        "1h + 2h from the original end"
    );
    bot.run(":advance 2h").await;
    assert_eq!(memberships(&bot, "carol").await, ["prod-db"], "extended");
    bot.run(":advance 1h").await;
    assert!(memberships(&bot, "carol").await.is_empty());
}

#[tokio::test]
async fn revoke_cancels_pending_requests_and_removes_access() {
    let mut bot = Bot::example().await;
    bot.run(r#"alice: /request app:figma reason:"x""#).await;
    bot.run("alice: /revoke app:figma").await;
    assert_eq!(
        bot.last_to("alice").text,
        "Request #1 for Figma is cancelled."
    );
    let bob = bot.last_to("bob");
    assert!(
        bob.kind == "edit" && bob.text.contains("Cancelled by Alice Kim") && bob.buttons.is_empty()
    );
    assert!(
        bot.try_line("bob: :click Approve").await.is_err(),
        "no button left"
    );
    bot.run("alice: /request app:github").await;
    assert_eq!(memberships(&bot, "alice").await, ["github"]);
    bot.run("dana: /revoke app:github user:alice reason:\"audit\"")
        .await;
    assert!(memberships(&bot, "alice").await.is_empty());
    assert_eq!(
        bot.last_to("alice").text,
        "Your GitHub access has been removed."
    );
    bot.run("alice: /access").await;
    assert!(bot.last_to("alice").text.contains("no apps yet"));
    bot.run("alice: /revoke app:github").await;
    assert_eq!(bot.last_to("alice").text, "You do not have GitHub.");
}

#[tokio::test]
async fn the_manual_connector_waits_for_it_to_click_done() {
    let mut bot = Bot::example().await;
    bot.run("carol: /request app:adobe").await;
    let task = bot.last_to("dana");
    assert!(
        task.text
            .contains("give Carol Diaz <carol@acme.test> access to adobe"),
        "{}",
        task.text
    );
    assert_eq!(task.buttons, ["Done"]);
    // Words for people: the app by name, no connector name, no audit vocabulary.
    assert_eq!(
        task.text,
        "Task #1 for IT (Adobe Creative Cloud): give Carol Diaz <carol@acme.test> access to adobe\nClick Done once it is done."
    );
    let carol = bot.caller("carol").await;
    let r = reply_text(bot.service.click(&carol, "v1:act:1:done", None).await);
    assert_eq!(r, "Only IT admins can mark a task done.");
    bot.run("mia: :click Done").await;
    assert!(
        bot.last_to("carol")
            .text
            .starts_with("✅ You now have Adobe Creative Cloud")
    );
    let done = bot.last_to("dana").text;
    assert!(
        done.starts_with(
            "Task #1: Adobe Creative Cloud given to Carol Diaz — done by Mia Torres at "
        ),
        "{done}"
    );
    let r = reply_text(
        bot.service
            .click(&bot.caller("dana").await, "v1:act:1:done", None)
            .await,
    );
    assert_eq!(r, "Task #1 is already done.");
}

#[tokio::test]
async fn undecided_requests_are_reminded_escalated_and_expire() {
    let mut bot = Bot::example().await;
    bot.run(r#"henry: /request app:crm reason:"leads""#).await;
    bot.run(":advance 25h").await;
    assert!(bot.last_to("ivy").text.starts_with("Reminder: request #1"));
    bot.run(":advance 48h").await;
    let erin = bot.last_to("erin");
    assert!(
        erin.text.starts_with("Escalated to you") && erin.buttons == ["Approve", "Deny"],
        "{}",
        erin.text
    );
    bot.run(":advance 5d").await;
    assert!(bot.last_to("henry").text.contains("expired"));
    let actions = bot.audit_actions().await;
    for a in ["step.reminded", "step.escalated", "request.expired"] {
        assert!(actions.contains(&a.to_owned()), "{a}");
    }
    // The escalated copy lost its buttons too.
    assert!(bot.last_to("erin").buttons.is_empty());
}

#[tokio::test]
async fn deny_opens_a_form_first() {
    let mut bot = Bot::example().await;
    bot.run(r#"alice: /request app:figma reason:"x""#).await;
    let bob = bot.caller("bob").await;
    match bot.service.click(&bob, "v1:req:1:s0:deny", None).await {
        ClickReply::Form(f) => {
            assert_eq!(f.custom_id, "v1:req:1:s0:deny");
            assert_eq!(f.fields.len(), 1);
            assert_eq!(f.fields[0].id, "reason");
            assert!(f.fields[0].required && f.fields[0].long);
        }
        other => panic!("{other:?}"),
    }
    let mut f = HashMap::new();
    f.insert("reason".to_owned(), "no budget".to_owned());
    let r = reply_text(bot.service.click(&bob, "v1:req:1:s0:deny", Some(&f)).await);
    assert_eq!(r, "You denied request #1 (Figma for Alice Kim).");
    let row = bot
        .audit()
        .await
        .into_iter()
        .find(|r| r.action == "step.denied")
        .unwrap();
    assert!(row.detail.contains("no budget") && row.actor == "bob");
}

#[tokio::test]
async fn deny_in_the_console_shows_the_form_and_submit_fills_it() {
    use quartermaster::chat::console::LineError;
    let mut bot = Bot::example().await;
    bot.run(r#"alice: /request app:figma reason:"x""#).await;
    // Nothing pending yet: :submit has nothing to submit.
    let e = bot.try_line("bob: :submit reason:x").await.unwrap_err();
    assert!(
        matches!(&e, LineError::Soft(t) if t.contains("has no form to submit")),
        "{e:?}"
    );
    // The click shows the form (and decides nothing).
    bot.run("bob: :click Deny").await;
    let form = bot.last_to("bob");
    assert_eq!(form.kind, "form");
    let f = form.form.clone().unwrap();
    assert_eq!(f.fields.len(), 1);
    assert_eq!(
        (f.fields[0].id.as_str(), f.fields[0].required),
        ("reason", true)
    );
    let json = serde_json::to_value(&form).unwrap();
    assert_eq!(json["kind"], "form");
    assert_eq!(json["to"], "bob");
    assert_eq!(json["title"], f.title.as_str());
    assert_eq!(json["fields"][0]["id"], "reason");
    assert_eq!(json["fields"][0]["required"], true);
    assert!(json["fields"][0]["value"].is_null());
    assert!(json.get("text").is_none() && json.get("buttons").is_none());
    assert!(
        !bot.texts_to("alice").iter().any(|t| t.contains("denied")),
        "nothing is decided before the form is submitted"
    );
    // A required field left out, or a field the form does not have: the form stays pending.
    let e = bot.try_line("bob: :submit").await.unwrap_err();
    assert!(
        matches!(&e, LineError::Soft(t) if t.contains("needs `reason`") && t.contains(":submit reason:")),
        "{e:?}"
    );
    let e = bot.try_line("bob: :submit resaon:x").await.unwrap_err();
    assert!(
        matches!(&e, LineError::Soft(t) if t.contains("has no field `resaon`")),
        "{e:?}"
    );
    // Another person's :submit does not reach bob's form.
    assert!(bot.try_line("carol: :submit reason:x").await.is_err());
    bot.run(r#"bob: :submit reason:"no budget this quarter""#)
        .await;
    assert_eq!(
        bot.last_to("bob").text,
        "You denied request #1 (Figma for Alice Kim)."
    );
    assert!(
        bot.texts_to("alice")
            .iter()
            .any(|t| t.contains("was denied") && t.contains("no budget this quarter")),
        "{:?}",
        bot.texts_to("alice")
    );
    // Submitted: nothing pending any more.
    assert!(bot.try_line("bob: :submit reason:again").await.is_err());
}

#[tokio::test]
async fn quoted_labels_and_subcommand_and_boolean_errors_in_the_console() {
    use quartermaster::chat::console::LineError;
    let mut bot = Bot::example().await;
    // A quoted label with a space is read whole; no such button on alice's messages.
    let e = bot
        .try_line(r#"alice: :click "Revoke now" reason:"x""#)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, LineError::Soft(t) if t == "alice has no message with a Revoke now button"),
        "{e:?}"
    );
    let e = bot.try_line("alice: :click Frobnicate").await.unwrap_err();
    assert!(
        matches!(&e, LineError::Malformed(t) if t.ends_with("Ratify, Revoke now, Escalate, Adopt, Revoke, Re-provision, Ignore, Service account, Keep, Keep all")),
        "{e:?}"
    );
    bot.run("alice: /mfa confirm").await;
    assert_eq!(
        bot.last_to("alice").text,
        "/mfa confirm is missing the required option `code`; write it as name:value"
    );
    bot.run("alice: /mfa").await;
    assert!(
        bot.last_to("alice")
            .text
            .starts_with("/mfa needs a subcommand: /mfa enroll, "),
        "{}",
        bot.last_to("alice").text
    );
    bot.run("alice: /mfa status").await;
    assert_eq!(
        bot.last_to("alice").text,
        "Step-up verification is not set up on this server (IT has to configure `[mfa] key_env`)."
    );
    bot.run("alice: /request app:figma emergency:maybe").await;
    assert_eq!(
        bot.last_to("alice").text,
        "emergency: \"maybe\" is neither true nor false; write emergency:true or emergency:false"
    );
    bot.run("alice: /help mfa").await;
    let help = bot.last_to("alice").text;
    assert!(help.contains("\n  /mfa confirm — "), "{help}");
    bot.run("alice: /help mfa confirm").await;
    assert_eq!(bot.last_to("alice").text, help);
}

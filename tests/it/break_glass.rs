//! Break-glass through the console on a real database: granted at once and capped, not
//! extendable, ratified by someone else, unratified past the window (IT told; auto-revoke),
//! blocked on a second use until IT settles it, refused for someone outside `who` or with a
//! reason that does not match, Escalate on one's own pending request, and step-up where the
//! app asks for it.
#![allow(clippy::unwrap_used)]

use quartermaster::core::model::{GrantState, Handle};
use quartermaster::core::ports::{Clock, Grants};
use testkit::Bot;

use super::step_up::{bot, code, enrol};

async fn grant_of(bot: &Bot, who: &str, app: &str) -> Option<quartermaster::core::model::Grant> {
    bot.store
        .grants_of(&Handle::parse(who).unwrap())
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.app.as_str() == app)
}

async fn memberships(bot: &Bot, who: &str) -> Vec<String> {
    bot.store.dir_memberships("directory", who).await.unwrap()
}

#[tokio::test]
async fn granted_at_once_capped_told_and_ratified_by_someone_else() {
    let mut bot = bot("").await;
    bot.run("carol: /request app:github emergency:true reason:INC-42")
        .await;
    let form = bot.last_to("carol");
    assert_eq!(form.kind, "form", "{form:?}");
    let f = form.form.unwrap();
    assert_eq!(f.title, "Break-glass: GitHub");
    let reason = f.fields.iter().find(|x| x.id == "reason").unwrap();
    assert_eq!(reason.value.as_deref(), Some("INC-42"));
    let hint = reason.hint.clone().unwrap();
    assert!(hint.contains("Grace Park") && hint.contains("IT"), "{hint}");
    // Nothing is granted before the form is submitted, nor beyond the cap.
    assert!(grant_of(&bot, "carol", "github").await.is_none());
    bot.run("carol: :submit duration:8h").await;
    assert!(
        bot.last_to("carol").text.contains("at most 4h"),
        "{}",
        bot.last_to("carol").text
    );
    assert!(grant_of(&bot, "carol", "github").await.is_none());
    bot.run("carol: /request app:github emergency:true reason:INC-42")
        .await;
    bot.run("carol: :submit").await;
    let told = bot.texts_to("carol");
    assert!(
        told.iter()
            .any(|t| t.contains("GitHub is being granted now")),
        "{told:?}"
    );
    assert_eq!(memberships(&bot, "carol").await, ["github"]);
    let g = grant_of(&bot, "carol", "github").await.unwrap();
    assert_eq!(g.state, GrantState::Active);
    let now = bot.clock.now();
    assert_eq!(
        g.expires_at.unwrap(),
        now + chrono::TimeDelta::hours(4),
        "capped at max"
    );
    // The skipped approver (her manager) and IT get Ratify / Revoke now.
    for who in ["grace", "dana", "mia"] {
        let m = bot.last_to(who);
        assert_eq!(m.buttons, ["Ratify", "Revoke now"], "{who}: {m:?}");
        assert!(
            m.text.contains("Carol Diaz took GitHub at once"),
            "{}",
            m.text
        );
    }
    // The holder cannot ratify her own; someone with no part cannot either.
    for who in ["carol", "bob"] {
        let r = bot
            .service
            .click(&bot.caller(who).await, "v1:bg:1:ratify", None)
            .await;
        assert!(format!("{r:?}").contains("ratify"), "{who}: {r:?}");
    }
    assert!(
        !bot.audit_actions()
            .await
            .contains(&"break_glass.ratified".to_owned())
    );
    bot.run("grace: :click Ratify").await;
    assert!(
        bot.last_to("grace").text.contains("ratified by Grace Park"),
        "{}",
        bot.last_to("grace").text
    );
    assert!(
        bot.texts_to("carol")
            .iter()
            .any(|t| t.contains("Grace Park ratified your break-glass"))
    );
    let dana = bot.last_to("dana");
    assert!(
        dana.buttons.is_empty() && dana.text.contains("ratified by Grace Park"),
        "{dana:?}"
    );
    let r = bot
        .service
        .click(&bot.caller("mia").await, "v1:bg:1:ratify", None)
        .await;
    assert!(
        format!("{r:?}").contains("is settled: ratified by grace"),
        "{r:?}"
    );
    let actions = bot.audit_actions().await;
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "break_glass.ratified")
            .count(),
        1
    );
    assert!(actions.contains(&"break_glass.granted".to_owned()));
    // Not extendable: no Extend on its warning, and Extend itself is refused.
    bot.run(":advance 3h30m").await;
    let warn = bot.last_to("carol");
    assert!(
        warn.text.contains("ends") && warn.buttons.is_empty(),
        "{warn:?}"
    );
    let r = bot
        .service
        .click(
            &bot.caller("carol").await,
            &format!("v1:grant:{}:extend", g.id),
            None,
        )
        .await;
    assert!(format!("{r:?}").contains("cannot be extended"), "{r:?}");
    // Ratified: she may use break-glass again once this access has ended.
    bot.run(":advance 1h").await;
    assert!(memberships(&bot, "carol").await.is_empty(), "ended at 4h");
    bot.run("carol: /request app:github emergency:true reason:INC-43")
        .await;
    assert_eq!(bot.last_to("carol").kind, "form");
}

#[tokio::test]
async fn unratified_in_time_tells_it_revokes_under_auto_revoke_and_blocks_a_second_use() {
    let mut bot = bot("").await;
    bot.run("carol: /request app:github emergency:true reason:INC-1 duration:3h")
        .await;
    bot.run("carol: :submit").await;
    assert_eq!(memberships(&bot, "carol").await, ["github"]);
    // A second break-glass (any app) is refused while the first is not ratified.
    bot.run("frank: /request app:prod-db emergency:true reason:INC-2")
        .await;
    assert_eq!(
        bot.last_to("frank").kind,
        "form",
        "frank is not blocked by carol's"
    );
    bot.run("carol: /request app:wordpress emergency:true reason:INC-2")
        .await;
    assert!(bot.last_to("carol").text.contains("no break-glass"));
    bot.run(":advance 59m").await;
    assert_eq!(memberships(&bot, "carol").await, ["github"]);
    assert!(
        !bot.audit_actions()
            .await
            .contains(&"break_glass.overdue".to_owned())
    );
    bot.run(":advance 2m").await;
    let actions = bot.audit_actions().await;
    assert!(
        actions.contains(&"break_glass.overdue".to_owned()),
        "{actions:?}"
    );
    assert!(
        memberships(&bot, "carol").await.is_empty(),
        "auto_revoke removed it"
    );
    let told = bot.last_to("dana");
    assert!(
        told.text.contains("nobody ratified") && told.text.contains("being revoked"),
        "{told:?}"
    );
    assert_eq!(told.buttons, ["Ratify", "Revoke now"]);
    // Revoked by the system: her manager can no longer ratify it; IT settles it.
    let r = bot
        .service
        .click(&bot.caller("grace").await, "v1:bg:1:ratify", None)
        .await;
    assert!(
        format!("{r:?}").contains("revoke requested by system"),
        "{r:?}"
    );
    bot.run("carol: /request app:github emergency:true reason:INC-3")
        .await;
    let t = bot.last_to("carol").text;
    assert!(
        t.contains("not ratified yet") && t.contains("IT clears it"),
        "{t}"
    );
    // IT settles it; then break-glass works again.
    bot.run("dana: :click Ratify").await;
    bot.run("carol: /request app:github emergency:true reason:INC-3")
        .await;
    assert_eq!(bot.last_to("carol").kind, "form");
}

#[tokio::test]
async fn revoke_now_removes_the_access_and_it_settles_it() {
    let mut bot = bot("").await;
    bot.run("carol: /request app:github emergency:true reason:INC-9")
        .await;
    bot.run("carol: :submit").await;
    assert_eq!(memberships(&bot, "carol").await, ["github"]);
    bot.run("grace: :click \"Revoke now\"").await;
    assert!(memberships(&bot, "carol").await.is_empty(), "revoked now");
    assert!(
        bot.texts_to("carol")
            .iter()
            .any(|t| t.contains("Grace Park revoked your break-glass"))
    );
    // Revoked by an approver: IT must still settle it.
    bot.run("carol: /request app:github emergency:true reason:INC-10")
        .await;
    assert!(bot.last_to("carol").text.contains("not ratified yet"));
    let it = bot.last_to("dana");
    assert!(
        it.text.contains("Grace Park asked to revoke") && it.buttons == ["Ratify", "Revoke now"],
        "{it:?}"
    );
    bot.run("dana: :click \"Revoke now\"").await;
    bot.run("carol: /request app:github emergency:true reason:INC-10")
        .await;
    assert_eq!(
        bot.last_to("carol").kind,
        "form",
        "{:?}",
        bot.last_to("carol")
    );
}

#[tokio::test]
async fn refused_outside_who_without_a_matching_reason_and_without_terms() {
    let mut bot = bot("").await;
    bot.run("ken: /request app:github emergency:true reason:INC-1")
        .await;
    assert!(
        bot.last_to("ken")
            .text
            .contains("only for the engineer role and carol"),
        "{}",
        bot.last_to("ken").text
    );
    bot.run("carol: /request app:figma emergency:true reason:INC-1")
        .await;
    assert!(
        bot.last_to("carol")
            .text
            .contains("Figma has no break-glass")
    );
    bot.run("carol: /request app:github emergency:true reason:\"just because\"")
        .await;
    bot.run("carol: :submit").await;
    assert!(
        bot.last_to("carol").text.contains("matches `^INC-`"),
        "{}",
        bot.last_to("carol").text
    );
    assert!(memberships(&bot, "carol").await.is_empty());
    bot.run("carol: /request app:github emergency:maybe").await;
    assert!(
        bot.last_to("carol").text.contains("emergency"),
        "{}",
        bot.last_to("carol").text
    );
    let rows = bot.audit().await;
    let refused: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "command.refused")
        .collect();
    assert!(
        refused
            .iter()
            .any(|r| r.actor == "ken" && r.detail.contains("break-glass")),
        "{refused:?}"
    );
    assert!(!rows.iter().any(|r| r.action == "break_glass.granted"));
}

#[tokio::test]
async fn escalate_turns_ones_own_pending_request_into_break_glass() {
    let mut bot = bot("").await;
    bot.run("carol: /request app:github reason:\"INC-5 hotfix\"")
        .await;
    let reply = bot.last_to("carol");
    assert_eq!(reply.buttons, ["Escalate"], "{reply:?}");
    // Only the requester can escalate.
    let r = bot
        .service
        .click(&bot.caller("grace").await, "v1:req:1:escalate", None)
        .await;
    assert!(format!("{r:?}").contains("Only the requester"), "{r:?}");
    bot.run("carol: :click Escalate").await;
    assert_eq!(bot.last_to("carol").kind, "form");
    bot.run("carol: :submit reason:INC-5").await;
    assert_eq!(memberships(&bot, "carol").await, ["github"]);
    // Grace's approval prompt lost its buttons and says why; she is asked to ratify instead.
    let edits: Vec<_> = bot
        .transcript()
        .into_iter()
        .filter(|m| m.to.as_deref() == Some("grace") && m.kind == "edit")
        .collect();
    assert!(
        edits
            .iter()
            .any(|m| m.text.contains("escalated this request to break-glass")
                && m.buttons.is_empty()),
        "{edits:?}"
    );
    assert_eq!(bot.last_to("grace").buttons, ["Ratify", "Revoke now"]);
    // Someone outside `who` gets no Escalate.
    bot.run("ken: /request app:github reason:x").await;
    assert!(bot.last_to("ken").buttons.is_empty());
}

#[tokio::test]
async fn break_glass_on_an_app_with_step_up_needs_a_code() {
    let mut bot = bot("").await;
    bot.run("frank: /request app:prod-db emergency:true reason:INC-77")
        .await;
    let f = bot.last_to("frank").form.unwrap();
    assert!(f.fields.iter().any(|x| x.id == "code"));
    bot.run("frank: :submit code:123456").await;
    assert!(
        bot.last_to("frank").text.contains("/mfa enroll"),
        "{}",
        bot.last_to("frank").text
    );
    let s = enrol(&mut bot, "frank").await;
    bot.run("frank: /request app:prod-db emergency:true reason:INC-77")
        .await;
    bot.run("frank: :submit code:000000").await;
    assert!(bot.last_to("frank").text.contains("not right"));
    assert!(memberships(&bot, "frank").await.is_empty());
    bot.run("frank: /request app:prod-db emergency:true reason:INC-77")
        .await;
    bot.run(&format!("frank: :submit code:{}", code(&bot, &s, 0)))
        .await;
    assert_eq!(memberships(&bot, "frank").await, ["prod-db"]);
    let g = grant_of(&bot, "frank", "prod-db").await.unwrap();
    assert_eq!(
        g.expires_at.unwrap(),
        bot.clock.now() + chrono::TimeDelta::hours(2)
    );
    let rows = bot.audit().await;
    let granted = rows
        .iter()
        .find(|r| r.action == "break_glass.granted")
        .unwrap();
    assert!(
        granted.detail.contains("step-up: totp") && granted.detail.contains("INC-77"),
        "{granted:?}"
    );
}

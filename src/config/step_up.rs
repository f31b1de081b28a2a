//! Step-up and break-glass settings: `[mfa] key_env`, `[http] public_url`, `[workflow]
//! step_up_for`, and each `[[app]]`'s `step_up` and `break_glass`.

use secrecy::SecretString;

use super::walker::Walker;
use super::{Cx, Rec, RefKind, keys, regex_error, suggest};
use crate::core::model::{
    BreakGlassPolicy, Confirmable, Eligible, Handle, RoleName, Span, StepUpFor,
};
use crate::core::totp::MfaKey;

/// The keys of an app's `break_glass` table.
const BREAK_GLASS_KEYS: &[&str] = &[
    "max",
    "who",
    "reason_pattern",
    "review_within",
    "auto_revoke",
];

impl Walker<'_, '_> {
    /// `[mfa]`: the key that seals TOTP secrets, when configured.
    pub(super) fn mfa(&mut self, root: &Rec) -> Option<MfaKey> {
        let cx = &mut *self.cx;
        let m = root.table(cx, "mfa")?;
        m.check_keys(cx, &keys::keys("mfa"));
        let secret: SecretString = m.secret(cx, "key_env")?;
        match MfaKey::parse(&secret) {
            Ok(k) => Some(k),
            Err(e) => {
                cx.err(
                    m.at("key_env"),
                    format!("the variable's value is not usable: {e}"),
                );
                None
            }
        }
    }

    /// Step-up anywhere (an app's `step_up`, `[workflow] step_up_for`) needs `[mfa] key_env`.
    pub(super) fn step_up_needs_key(
        &mut self,
        apps: &[crate::core::model::App],
        workflow: &crate::core::model::WorkflowSettings,
        has_key: bool,
    ) {
        if has_key {
            return;
        }
        let why = apps
            .iter()
            .find(|a| a.step_up)
            .map(|a| format!("app.{}.step_up", a.name))
            .or_else(|| {
                (workflow.step_up_for != StepUpFor::default())
                    .then(|| "workflow.step_up_for".to_owned())
            });
        if let Some(why) = why {
            self.cx.err(
                "mfa.key_env",
                format!(
                    "required: {why} asks for step-up, and TOTP secrets are sealed with this key \
                     (an environment variable holding 64 hex characters)"
                ),
            );
        }
    }

    /// `[http] public_url`: the address people reach `serve` at (links the bot sends).
    pub(super) fn public_url(&mut self, root: &Rec) -> Option<String> {
        let cx = &mut *self.cx;
        let h = root.t.get("http")?.as_table()?;
        let h = Rec {
            t: h,
            path: "http".into(),
        };
        let u = h.string(cx, "public_url")?;
        let ok = (u.starts_with("https://") || u.starts_with("http://"))
            && u.len() > "https://".len()
            && !u.contains(char::is_whitespace);
        if ok {
            Some(u.trim_end_matches('/').to_owned())
        } else {
            cx.err(
                h.at("public_url"),
                format!("{u:?} is not a URL such as https://qm.example.com"),
            );
            None
        }
    }
}

/// `[workflow] step_up_for`: IT's confirms that need step-up.
pub(super) fn step_up_for(cx: &mut Cx, w: &Rec) -> StepUpFor {
    let mut set = StepUpFor::default();
    for (p, s) in w.strings(cx, "step_up_for").unwrap_or_default() {
        match Confirmable::parse(s) {
            Some(c) => set = set.with(c),
            None => cx.err(
                p,
                format!(
                    "not a confirm that can need step-up (offboard, role, onboard, retry, done, \
                     review, drift){}",
                    suggest(s, Confirmable::ALL.iter().map(|c| c.as_str()))
                ),
            ),
        }
    }
    set
}

/// An app's `step_up` ("totp" or "none") and `break_glass` table.
pub(super) fn app_terms(cx: &mut Cx, rec: &Rec) -> (bool, Option<BreakGlassPolicy>) {
    let step_up = match rec.string(cx, "step_up") {
        None | Some("none") => false,
        Some("totp") => true,
        Some(other) => {
            cx.err(
                rec.at("step_up"),
                format!(
                    "{other:?} is not a step-up method; write \"totp\" (or \"none\"){}",
                    suggest(other, ["totp", "none"])
                ),
            );
            false
        }
    };
    let break_glass = rec
        .table(cx, "break_glass")
        .and_then(|b| break_glass(cx, &b));
    (step_up, break_glass)
}

/// One app's `break_glass = { max, who, reason_pattern, review_within, auto_revoke }`.
fn break_glass(cx: &mut Cx, b: &Rec) -> Option<BreakGlassPolicy> {
    let before = cx.problems.len();
    b.check_keys(cx, BREAK_GLASS_KEYS);
    let max = b.span(cx, "max");
    if !b.has("max") {
        cx.err(
            b.at("max"),
            "required key is missing (how long an emergency grant lasts, e.g. \"2h\")",
        );
    }
    let mut who = Vec::new();
    if b.has("who") {
        for (p, s) in b.strings(cx, "who").unwrap_or_default() {
            who.extend(eligible(cx, &p, s));
        }
    }
    if who.is_empty() && cx.problems.len() == before {
        cx.err(
            b.at("who"),
            "required: who may use break-glass, e.g. [\"role:sre\"] (also \"department:NAME\" \
             or a handle)",
        );
    }
    let reason_pattern = b.string(cx, "reason_pattern").and_then(|s| {
        regex::Regex::new(s)
            .map_err(|e| {
                cx.err(
                    b.at("reason_pattern"),
                    format!("not a valid regular expression: {}", regex_error(&e)),
                );
            })
            .ok()
    });
    let review_within = b
        .span(cx, "review_within")
        .unwrap_or_else(|| Span::from_std(std::time::Duration::from_secs(24 * 3600)));
    let auto_revoke = b.bool(cx, "auto_revoke").unwrap_or(false);
    if cx.problems.len() != before {
        return None;
    }
    Some(BreakGlassPolicy {
        max: max?,
        who,
        reason_pattern,
        review_within,
        auto_revoke,
    })
}

/// One entry of `who`: `role:NAME`, `department:NAME` or a handle.
fn eligible(cx: &mut Cx, path: &str, s: &str) -> Option<Eligible> {
    let r = if let Some(r) = s.strip_prefix("role:") {
        RoleName::parse(r).map(|n| {
            cx.refer(path.to_owned(), RefKind::Role, r);
            Eligible::Role(n)
        })
    } else if let Some(d) = s.strip_prefix("department:") {
        if d.trim().is_empty() {
            cx.err(path.to_owned(), "names no department");
            return None;
        }
        Ok(Eligible::Department(d.to_owned()))
    } else {
        Handle::parse(s.strip_prefix("user:").unwrap_or(s)).map(|h| {
            cx.refer(path.to_owned(), RefKind::Person, h.as_str());
            Eligible::Person(h)
        })
    };
    r.map_err(|e| {
        cx.err(
            path.to_owned(),
            format!("not role:NAME, department:NAME or a handle: {}", e.0),
        );
    })
    .ok()
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn with_app(extra: &str) -> String {
        BASE.replace(
            "approvals = [\"manager\", \"owner\"]",
            &format!("approvals = [\"manager\", \"owner\"]\n{extra}"),
        )
    }

    #[test]
    fn step_up_and_break_glass_are_read() {
        let text = format!(
            "{}\n[mfa]\nkey_env = \"K\"\n[workflow]\nstep_up_for = [\"offboard\", \"done\"]\n\
             [http]\nlisten = \"127.0.0.1:8080\"\npublic_url = \"https://qm.t.test/\"\n",
            with_app(
                "step_up = \"totp\"\nbreak_glass = { max = \"2h\", who = [\"role:designer\", \
                 \"department:Ops\", \"dana\"], reason_pattern = \"^INC-\" }"
            )
        );
        let c = parse(&text, Path::new("."), &|k| {
            (k == "K").then(|| KEY.to_owned())
        })
        .unwrap();
        let app = &c.org.apps[0];
        assert!(app.step_up);
        let bg = app.break_glass.as_ref().unwrap();
        assert_eq!(bg.max, Span::parse("2h").unwrap());
        assert_eq!(bg.review_within, Span::parse("24h").unwrap());
        assert!(!bg.auto_revoke);
        assert_eq!(bg.who.len(), 3);
        assert!(c.org.workflow.step_up_for.contains(Confirmable::Done));
        assert!(!c.org.workflow.step_up_for.contains(Confirmable::Role));
        assert!(c.mfa_key.is_some());
        assert_eq!(c.public_url.as_deref(), Some("https://qm.t.test"));
    }

    #[test]
    fn bad_step_up_settings_name_their_key() {
        let e = errors(&with_app(
            "step_up = \"otp\"\nbreak_glass = { who = [\"role:\"], reason_pattern = \"(\", \
             auto_revoke = \"yes\", maxx = \"1h\" }",
        ));
        assert!(
            e.contains("app.figma.step_up: \"otp\" is not a step-up method"),
            "{e}"
        );
        assert!(
            e.contains("did you mean \"totp\"") || e.contains("totp"),
            "{e}"
        );
        assert!(
            e.contains("app.figma.break_glass.maxx: unknown key — did you mean \"max\"?"),
            "{e}"
        );
        assert!(
            e.contains("app.figma.break_glass.max: required key is missing"),
            "{e}"
        );
        assert!(
            e.contains("app.figma.break_glass.who[0]: not role:NAME"),
            "{e}"
        );
        assert!(
            e.contains("app.figma.break_glass.reason_pattern: not a valid regular expression"),
            "{e}"
        );
        assert!(e.contains("app.figma.break_glass.auto_revoke"), "{e}");

        let e = errors(&format!(
            "{}\n[workflow]\nstep_up_for = [\"ofboard\"]\n",
            with_app("step_up = \"totp\"")
        ));
        assert!(e.contains("workflow.step_up_for[0]: not a confirm"), "{e}");
        assert!(
            e.contains("mfa.key_env: required: app.figma.step_up asks for step-up"),
            "{e}"
        );

        let e = errors_env(&format!("{BASE}\n[mfa]\nkey_env = \"K\"\n"), &|k| {
            (k == "K").then(|| "short".into())
        });
        assert!(
            e.contains(
                "mfa.key_env: the variable's value is not usable: the key must be 64 hexadecimal"
            ),
            "{e}"
        );
        assert!(!e.contains("short"), "the value is never echoed: {e}");

        let e = errors(&format!(
            "{BASE}\n[http]\nlisten = \"127.0.0.1:1\"\npublic_url = \"qm.t.test\"\n"
        ));
        assert!(
            e.contains("http.public_url: \"qm.t.test\" is not a URL"),
            "{e}"
        );
        let e = errors(&with_app(
            "break_glass = { max = \"1h\", who = [\"nobody\"] }",
        ));
        assert!(e.contains("app.figma.break_glass.who[0]"), "{e}");
    }
}

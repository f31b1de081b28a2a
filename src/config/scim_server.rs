//! `[scim_server]` and its `[[scim_server.rule]]`s: inbound SCIM at `/scim/v2/` (the token, the
//! joiner and leaver modes, and how a user maps to a person).

use secrecy::SecretString;

use super::walker::Walker;
use super::{Cx, Rec, RefKind, keys, suggest};
use crate::core::model::RoleName;
use crate::core::scim::{Mode, Rule, ScimSettings};

/// `[scim_server]`, read.
#[derive(Debug, Clone)]
pub struct ScimServerConfig {
    /// The bearer token the identity provider sends (from `token_env`).
    pub token: SecretString,
    /// The mapping and modes.
    pub settings: ScimSettings,
}

/// A `joiner` or `leaver` value: `plan`, or the word that means "at once".
fn mode(cx: &mut Cx, rec: &Rec, key: &str, now: &str) -> Mode {
    match rec.string(cx, key) {
        None | Some("plan") => Mode::Plan,
        Some(s) if s == now => Mode::Now,
        Some(other) => {
            cx.err(
                rec.at(key),
                format!(
                    "\"{other}\" is not a mode; use \"plan\" or \"{now}\"{}",
                    suggest(other, ["plan", now])
                ),
            );
            Mode::Plan
        }
    }
}

/// An attribute path key (`handle_from`, `discord_id_from`): it must name an attribute.
fn attr_path(cx: &mut Cx, rec: &Rec, key: &str) -> Option<String> {
    let s = rec.string(cx, key)?;
    let known = crate::core::scim::path::resolve(
        crate::core::scim::ScimKind::User,
        s,
        crate::core::scim::ScimType::InvalidPath,
    );
    // An attribute under a URN we do not describe is read as the identity provider sends it.
    if known.is_err() && !(s.starts_with("urn:") && s.rsplit_once(':').is_some()) {
        cx.err(
            rec.at(key),
            format!(
                "\"{s}\" is not a User attribute (such as userName, emails.value, externalId or \
                 urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber){}",
                suggest(s, ["userName", "emails.value", "externalId", "displayName"])
            ),
        );
        return None;
    }
    Some(s.to_owned())
}

impl Walker<'_, '_> {
    /// `[scim_server]`, when given.
    pub(super) fn scim_server(&mut self, root: &Rec) -> Option<ScimServerConfig> {
        let cx = &mut *self.cx;
        let s = root.table(cx, "scim_server")?;
        s.check_keys(cx, &keys::keys("scim_server"));
        let mut settings = ScimSettings {
            joiner: mode(cx, &s, "joiner", "auto"),
            leaver: mode(cx, &s, "leaver", "immediate"),
            ..ScimSettings::default()
        };
        if s.has("handle_from") {
            settings.handle_from = attr_path(cx, &s, "handle_from").unwrap_or_default();
        }
        if s.has("discord_id_from") {
            settings.discord_id_from = attr_path(cx, &s, "discord_id_from");
        }
        settings.default_role = role(cx, &s, "default_role");
        for (i, t) in s.records(cx, "rule") {
            let rec = Rec {
                t,
                path: format!("scim_server.rule[{i}]"),
            };
            rec.check_keys(cx, &keys::keys("scim_server.rule"));
            let text = |cx: &mut Cx, k: &str| rec.string(cx, k).map(str::to_owned);
            let rule = Rule {
                title: text(cx, "when_title"),
                department: text(cx, "when_department"),
                group: text(cx, "when_group"),
                role: role(cx, &rec, "role"),
                set_department: text(cx, "department"),
            };
            if rule.role.is_none() && rule.set_department.is_none() {
                cx.err(&rec.path, "a rule gives a role, a department or both");
            }
            settings.rules.push(rule);
        }
        let token = s.secret(cx, "token_env")?;
        Some(ScimServerConfig { token, settings })
    }
}

/// A role name key, checked against `[[role]]` with the other references.
fn role(cx: &mut Cx, rec: &Rec, key: &str) -> Option<RoleName> {
    let s = rec.string(cx, key)?;
    match RoleName::parse(s) {
        Ok(r) => {
            cx.refer(rec.at(key), RefKind::Role, s);
            Some(r)
        }
        Err(e) => {
            cx.err(rec.at(key), e.0);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    fn with(extra: &str) -> Result<Config, ConfigErrors> {
        let text = format!("{BASE}\n{extra}");
        parse(&text, Path::new("."), &|k| {
            (k == "QM_SCIM_TOKEN").then(|| "t0k3n".to_owned())
        })
    }

    #[test]
    fn a_scim_server_section_reads() {
        let c = with(
            "[scim_server]\ntoken_env = \"QM_SCIM_TOKEN\"\njoiner = \"auto\"\n\
             leaver = \"immediate\"\n\
             [[scim_server.rule]]\nwhen_group = \"Design\"\nrole = \"designer\"\n",
        )
        .unwrap();
        let s = c.scim_server.unwrap().settings;
        assert_eq!(s.joiner, crate::core::scim::Mode::Now);
        assert_eq!(s.leaver, crate::core::scim::Mode::Now);
        assert_eq!(s.rules[0].group.as_deref(), Some("Design"));
        assert_eq!(s.handle_from, "userName");
    }

    #[test]
    fn mistakes_name_their_key_paths_with_suggestions() {
        let e = with(
            "[scim_server]\ntoken_env = \"QM_SCIM_TOKEN\"\njoinr = \"plan\"\nleaver = \"imediate\"\n\
             handle_from = \"shoeSize\"\n\
             [[scim_server.rule]]\nwhen_group = \"Design\"\nrole = \"desiner\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("scim_server.joinr"), "{e}");
        assert!(e.contains("did you mean \"joiner\""), "{e}");
        assert!(e.contains("scim_server.leaver: \"imediate\""), "{e}");
        assert!(e.contains("scim_server.handle_from"), "{e}");
        assert!(e.contains("scim_server.rule[0].role"), "{e}");
        let e = with("[scim_server]\njoiner = \"plan\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("scim_server.token_env"), "{e}");
    }
}

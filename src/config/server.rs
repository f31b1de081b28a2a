//! The tables about running Quartermaster: `[database]`, `[http]`, `[hr]` and `[audit]`.

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;

use super::walker::Walker;
use super::{HrConfig, HttpConfig, Rec, keys};

impl Walker<'_, '_> {
    /// `[database] url`, when given.
    pub(super) fn database(&mut self, root: &Rec) -> Option<String> {
        let cx = &mut *self.cx;
        let d = root.table(cx, "database")?;
        d.check_keys(cx, &keys::keys("database"));
        let u = d.string(cx, "url")?;
        if u.starts_with("sqlite:")
            || u.starts_with("postgres://")
            || u.starts_with("postgresql://")
        {
            Some(u.to_owned())
        } else {
            cx.err(
                d.at("url"),
                format!("{u:?} is not a database URL; write sqlite://FILE or postgres://…"),
            );
            None
        }
    }

    /// `[http]`, when given.
    pub(super) fn http(&mut self, root: &Rec) -> Option<HttpConfig> {
        let cx = &mut *self.cx;
        let h = root.table(cx, "http")?;
        h.check_keys(cx, &keys::keys("http"));
        let l = h.req_string(cx, "listen")?;
        match l.parse::<SocketAddr>() {
            Ok(a) => Some(HttpConfig { listen: a }),
            Err(_) => {
                cx.err(
                    h.at("listen"),
                    format!("{l:?} is not an address to listen on, such as 127.0.0.1:8080"),
                );
                None
            }
        }
    }

    /// `[hr]`, when given.
    pub(super) fn hr(&mut self, root: &Rec) -> Option<HrConfig> {
        let cx = &mut *self.cx;
        let h = root.table(cx, "hr")?;
        h.check_keys(cx, &keys::keys("hr"));
        Some(HrConfig {
            secret: h.secret(cx, "secret_env")?,
        })
    }

    /// `[audit]`: the key that seals the chain's head, and the anchor file (resolved against
    /// the base folder).
    pub(super) fn audit(&mut self, root: &Rec) -> (Option<SecretString>, Option<PathBuf>) {
        let cx = &mut *self.cx;
        let Some(a) = root.table(cx, "audit") else {
            return (None, None);
        };
        a.check_keys(cx, &keys::keys("audit"));
        // An [audit] with only an anchor file needs no key.
        let key = if a.has("anchor_file") && !a.has("key_env") {
            None
        } else {
            a.secret(cx, "key_env")
        };
        if a.has("anchor_channel") {
            cx.err(
                a.at("anchor_channel"),
                "anchoring to a Discord channel is not available yet; use anchor_file",
            );
        }
        let anchor = match a.string(cx, "anchor_file") {
            Some("") => {
                cx.err(a.at("anchor_file"), "must not be empty");
                None
            }
            Some(f) => Some(self.base_dir.join(f)),
            None => None,
        };
        (key, anchor)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn sections_are_validated() {
        let text = format!(
            "{BASE}\n[discord]\nmode = \"interaction\"\napplication_id = \"x1\"\ntoken_env = \"DT\"\n\
             [http]\nlisten = \"localhost\"\n[database]\nurl = \"mysql://x\"\n"
        );
        let e = errors(&text);
        assert!(
            e.contains("discord.mode: unknown mode \"interaction\""),
            "{e}"
        );
        assert!(e.contains("did you mean \"interactions\"?"), "{e}");
        assert!(
            e.contains("discord.application_id: \"x1\" is not a Discord application id"),
            "{e}"
        );
        assert!(
            e.contains("discord.token_env: environment variable DT is not set"),
            "{e}"
        );
        assert!(
            e.contains("http.listen: \"localhost\" is not an address"),
            "{e}"
        );
        assert!(
            e.contains("database.url: \"mysql://x\" is not a database URL"),
            "{e}"
        );

        let needs_key = format!(
            "{BASE}\n[discord]\nmode = \"interactions\"\napplication_id = 1\ntoken_env = \"DT\"\n"
        );
        let env = |k: &str| (k == "DT").then(|| "tok".to_owned());
        let e = errors_env(&needs_key, &env);
        assert_eq!(
            e,
            "discord.public_key: required when mode = \"interactions\" (Discord's requests are checked with it)"
        );

        let ok = format!(
            "{BASE}\n[discord]\napplication_id = \"1\"\ntoken_env = \"DT\"\n[http]\nlisten = \"127.0.0.1:8080\"\n\
             [database]\nurl = \"postgres://db/qm\"\n"
        );
        let c = parse(&ok, Path::new("."), &env).unwrap();
        let d = c.discord.unwrap();
        assert_eq!(d.mode, DiscordMode::Gateway);
        assert_eq!(d.token.expose_secret(), "tok");
        assert_eq!(c.http.unwrap().listen.port(), 8080);
        assert_eq!(c.database_url.as_deref(), Some("postgres://db/qm"));
    }
}

//! Secrets: a key ending in `_env` names the environment variable that holds the secret, and
//! `NAME_FILE` may name a file holding it instead. A value that looks like a pasted secret is
//! refused without being echoed.

use secrecy::SecretString;

use super::{Cx, Problem, Rec};

impl Cx<'_> {
    /// Resolves the secret whose environment variable `var` names (or `var_FILE`).
    pub(super) fn secret(&mut self, path: &str, var: &str) -> Option<SecretString> {
        let set = |v: Option<String>| v.filter(|s| !s.is_empty());
        let file_var = format!("{var}_FILE");
        let direct = set((self.env)(var));
        let file = set((self.env)(&file_var));
        match (direct, file) {
            (Some(_), Some(_)) => {
                self.err(
                    path,
                    format!("both {var} and {file_var} are set; set only one of them"),
                );
                None
            }
            (Some(v), None) => Some(SecretString::from(v)),
            (None, Some(f)) => match std::fs::read_to_string(&f) {
                Ok(mut s) => {
                    #[cfg(unix)]
                    if let Ok(m) = std::fs::metadata(&f) {
                        use std::os::unix::fs::PermissionsExt;
                        let mode = m.permissions().mode() & 0o777;
                        if mode & 0o007 != 0 {
                            self.warnings.push(Problem {
                                path: path.to_owned(),
                                message: format!(
                                    "the secret file {file_var} points to ({f}) can be read by \
                                     other users (mode {mode:04o}): chmod o-rwx it (0600 or 0640)"
                                ),
                            });
                        }
                    }
                    if s.ends_with('\n') {
                        s.pop();
                        if s.ends_with('\r') {
                            s.pop();
                        }
                    }
                    if s.is_empty() {
                        self.err(
                            path,
                            format!("the file {file_var} points to ({f}) is empty"),
                        );
                        None
                    } else {
                        Some(SecretString::from(s))
                    }
                }
                Err(e) => {
                    self.err(
                        path,
                        format!("cannot read the file {file_var} points to ({f}): {e}"),
                    );
                    None
                }
            },
            (None, None) => {
                self.err(
                    path,
                    format!(
                        "environment variable {var} is not set (set it, or {file_var} to a file holding it)"
                    ),
                );
                None
            }
        }
    }
}

impl Rec<'_> {
    /// A secret named by `key` (an `_env` key), resolved from the environment.
    pub(super) fn secret(&self, cx: &mut Cx, key: &str) -> Option<SecretString> {
        let var = self.req_string(cx, key)?;
        // Never echoed when it may be the secret itself, pasted here by mistake.
        if looks_like_secret(var) {
            cx.err(
                self.at(key),
                format!(
                    "this looks like a secret, not a variable name (not shown): put the secret \
                     in an environment variable, or a file named by VARIABLE_FILE, and write the \
                     variable's name here (e.g. {key} = \"{}\"); if it was a real secret, \
                     rotate it",
                    env_example(&self.path)
                ),
            );
            return None;
        }
        if var.is_empty() || var.contains(['=', '\0']) || var.contains(char::is_whitespace) {
            cx.err(
                self.at(key),
                "this is not a usable environment variable name (it is empty, or holds a \
                 space, = or NUL)",
            );
            return None;
        }
        cx.secret(&self.at(key), var)
    }
}

/// An example variable name for the section at `path` (`connector.figma` → `QM_FIGMA_SECRET`).
fn env_example(path: &str) -> String {
    let last = path.rsplit('.').next().unwrap_or(path).trim_matches('"');
    let word: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("QM_{word}_SECRET")
}

/// Whether an `*_env` value is more likely a pasted secret than a variable's name: names are
/// words of letters and digits joined by `_` (sometimes `-` or `.`); tokens and keys carry
/// other characters (`/ + = :` or spaces), mix cases and digits, or run long without a break.
fn looks_like_secret(v: &str) -> bool {
    let len = v.chars().count();
    let has = |f: fn(char) -> bool| v.chars().any(f);
    let foreign = has(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')));
    let long_run = v
        .split(['_', '-', '.'])
        .any(|w| w.len() >= 16 && w.chars().any(|c| c.is_ascii_digit()));
    (len >= 8 && foreign)
        || (len >= 16
            && has(|c| c.is_ascii_lowercase())
            && has(|c| c.is_ascii_uppercase())
            && has(|c| c.is_ascii_digit()))
        || long_run
        || (len >= 32 && !v.contains('_'))
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn unset_secret_names_the_variable() {
        let e = errors(&format!("{BASE}{SCIM}"));
        assert_eq!(
            e,
            "connector.figma-scim.token_env: environment variable FIGMA_SCIM_TOKEN is not set \
             (set it, or FIGMA_SCIM_TOKEN_FILE to a file holding it)"
        );
    }

    #[test]
    fn secrets_from_env_and_file() {
        let text = format!("{BASE}{SCIM}");
        let secret = "s3cr3t-V4lue";
        let env = |k: &str| (k == "FIGMA_SCIM_TOKEN").then(|| secret.to_owned());
        let c = parse(&text, Path::new("."), &env).unwrap();
        let ConnectorKind::Scim {
            token, base_url, ..
        } = &c.connectors[1].kind
        else {
            panic!("not scim")
        };
        assert_eq!(token.expose_secret(), secret);
        assert_eq!(base_url, "http://127.0.0.1:18080/acme/v2");
        assert!(!format!("{c:?}").contains(secret));

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, format!("{secret}\n")).unwrap();
        let fs = f.display().to_string();
        let env = |k: &str| (k == "FIGMA_SCIM_TOKEN_FILE").then(|| fs.clone());
        let c = parse(&text, Path::new("."), &env).unwrap();
        let ConnectorKind::Scim { token, .. } = &c.connectors[1].kind else {
            panic!("not scim")
        };
        assert_eq!(token.expose_secret(), secret);
        assert!(!format!("{c:?}").contains(secret));

        // Both set: an error, which shows neither value.
        let env = |k: &str| match k {
            "FIGMA_SCIM_TOKEN" => Some(secret.to_owned()),
            "FIGMA_SCIM_TOKEN_FILE" => Some(fs.clone()),
            _ => None,
        };
        let e = parse(&text, Path::new("."), &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "connector.figma-scim.token_env: both FIGMA_SCIM_TOKEN and FIGMA_SCIM_TOKEN_FILE are set; set only one of them"
        );
        assert!(!format!("{e:?}").contains(secret));

        // A missing file is named, its (absent) content is not.
        let env = |k: &str| (k == "FIGMA_SCIM_TOKEN_FILE").then(|| "/nonexistent/tok".to_owned());
        let e = errors_env(&text, &env);
        assert!(e.starts_with("connector.figma-scim.token_env: cannot read the file FIGMA_SCIM_TOKEN_FILE points to (/nonexistent/tok)"), "{e}");
    }

    /// A token pasted where the variable's name belongs is refused without being shown.
    #[test]
    fn a_secret_pasted_into_an_env_key_is_not_echoed() {
        for pasted in [
            "xoxb-2048-9F3kQ7vLm2Np8Rt5",
            "ghp_R4nd0mT0k3nV4lu3abcdefGHIJ",
            "3f9a0c6b1d2e4f5a6b7c8d9e0f1a2b3c",
            "dGhpcyBpcyBhIHNlY3JldA==",
            "Bearer abc123",
        ] {
            let text = format!("{BASE}\n[hr]\nsecret_env = \"{pasted}\"\n");
            let e = errors_env(&text, &no_env);
            assert!(
                e.contains("hr.secret_env: this looks like a secret, not a variable name"),
                "{e}"
            );
            for w in pasted.as_bytes().windows(6) {
                let w = String::from_utf8_lossy(w);
                assert!(!e.contains(&*w), "{pasted}: {e} shows {w:?}");
            }
        }
        // Names, even unusual ones, are still named when unset.
        for name in [
            "FIGMA_SCIM_TOKEN",
            "QM_HR_SECRET_2",
            "hr-secret",
            "qm.hr.key",
        ] {
            let text = format!("{BASE}\n[hr]\nsecret_env = \"{name}\"\n");
            let e = errors_env(&text, &no_env);
            assert!(
                e.contains(&format!("environment variable {name} is not set")),
                "{e}"
            );
        }
    }

    /// A `*_FILE` secret that other users can read loads, with a warning naming the key.
    #[cfg(unix)]
    #[test]
    fn a_secret_file_others_can_read_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("hr.key");
        std::fs::write(&f, "s3cr3t-V4lue\n").unwrap();
        let fs = f.display().to_string();
        let env = |k: &str| (k == "HR_FILE").then(|| fs.clone());
        let text = format!("{BASE}\n[hr]\nsecret_env = \"HR\"\n");
        for (mode, warned) in [(0o644, true), (0o604, true), (0o640, false), (0o600, false)] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
            let c = parse(&text, Path::new("."), &env).unwrap();
            let w: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
            if warned {
                assert_eq!(w.len(), 1, "{mode:o}: {w:?}");
                assert!(
                    w[0].starts_with(&format!(
                        "hr.secret_env: the secret file HR_FILE points to ({fs}) can be read by \
                         other users (mode {mode:04o})"
                    )),
                    "{w:?}"
                );
                assert!(!w[0].contains("s3cr3t"));
            } else {
                assert!(w.is_empty(), "{mode:o}: {w:?}");
            }
        }
    }

    #[test]
    fn secrets_stay_out_of_errors_and_debug() {
        let secret = "hunter2-very-secret";
        let text = format!(
            "{BASE}\n[hr]\nsecret_env = \"HR\"\n[audit]\nkey_env = \"AK\"\n[discord]\napplication_id = \"1\"\ntoken_env = \"DT\"\n\
             [[connector]]\nname = \"wiki\"\nkind = \"webhook\"\nurl = \"https://w\"\nsecret_env = \"W\"\nmethod = \"put\"\n"
        );
        let env = |k: &str| matches!(k, "HR" | "AK" | "DT" | "W").then(|| secret.to_owned());
        let c = parse(&text, Path::new("."), &env).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(secret), "{dbg}");
        assert_eq!(c.hr.as_ref().unwrap().secret.expose_secret(), secret);
        assert_eq!(c.audit_key.as_ref().unwrap().expose_secret(), secret);
        let ConnectorKind::Webhook { method, .. } = &c.connectors[1].kind else {
            panic!("not a webhook")
        };
        assert_eq!(method, "PUT");

        // With other problems around, the secrets still do not leak.
        let broken = text.replace("owners = [\"carol\"]", "owners = [\"carl\"]");
        let e = parse(&broken, Path::new("."), &env).unwrap_err();
        assert!(!e.to_string().contains(secret));
        assert!(!format!("{e:?}").contains(secret));
    }
}

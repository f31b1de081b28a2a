//! Step-up codes: TOTP (RFC 6238; SHA-1, 6 digits, 30-second steps, as every authenticator
//! app reads an `otpauth://` URI), and the secrets sealed at rest with XChaCha20-Poly1305
//! under the `[mfa] key_env` key, bound to the person's handle (a sealed secret copied to
//! another person's row does not open).
//!
//! Pure computation: no I/O beyond the operating system's random numbers.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload, rand_core::RngCore};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per time step.
pub const PERIOD: u64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Bytes of a new secret (160 bits, RFC 4226's recommendation).
const SECRET_LEN: usize = 20;

/// Why the `[mfa]` key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the key must be 64 hexadecimal characters (32 random bytes, e.g. `openssl rand -hex 32`)")]
pub struct KeyError;

/// A sealed secret that does not open (another key, another person, or damaged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored step-up secret does not open with this key")]
pub struct SealError;

/// The key that seals TOTP secrets at rest.
pub struct MfaKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for MfaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaKey(***)")
    }
}

impl Clone for MfaKey {
    fn clone(&self) -> Self {
        Self(SecretBox::new(Box::new(*self.0.expose_secret())))
    }
}

impl MfaKey {
    /// Reads a key written as 64 hex characters.
    pub fn parse(text: &SecretString) -> Result<Self, KeyError> {
        let mut key = Box::new([0u8; 32]);
        hex::decode_to_slice(text.expose_secret().trim(), &mut key[..]).map_err(|_| KeyError)?;
        Ok(Self(SecretBox::new(key)))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.0.expose_secret().into())
    }

    /// Seals `secret` for `person`: hex of the nonce and the ciphertext.
    pub fn seal(&self, person: &str, secret: &TotpSecret) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: secret.0.expose_secret(),
            aad: person.as_bytes(),
        };
        // Encryption into a Vec cannot fail for a 20-byte message.
        let ct = self.cipher().encrypt(&nonce, payload).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        hex::encode(out)
    }

    /// Opens what [`MfaKey::seal`] sealed for `person`.
    pub fn open(&self, person: &str, sealed: &str) -> Result<TotpSecret, SealError> {
        let bytes = hex::decode(sealed).map_err(|_| SealError)?;
        if bytes.len() < 24 {
            return Err(SealError);
        }
        let (nonce, ct) = bytes.split_at(24);
        let msg = self
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: person.as_bytes(),
                },
            )
            .map_err(|_| SealError)?;
        Ok(TotpSecret(SecretBox::new(Box::new(msg))))
    }
}

/// What a typed code turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// Right, for this time step (record it: it counts once).
    Good(i64),
    /// Right, but a code of this step (or a later one) was accepted before.
    Reused,
    /// Wrong, or too old.
    Wrong,
}

/// A TOTP secret in the clear (only while a code is checked or the enrolment page shown).
pub struct TotpSecret(SecretBox<Vec<u8>>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(***)")
    }
}

impl TotpSecret {
    /// A new random secret.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_LEN];
        OsRng.fill_bytes(&mut bytes);
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// A secret from its base32 text (tests compute codes from the enrolled secret).
    pub fn from_base32(text: &str) -> Option<Self> {
        Secret::Encoded(text.trim().to_uppercase())
            .to_bytes()
            .ok()
            .filter(|b| b.len() >= 16)
            .map(|b| Self(SecretBox::new(Box::new(b))))
    }

    fn totp(&self) -> TOTP {
        TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            0,
            PERIOD,
            self.0.expose_secret().clone(),
        )
    }

    /// The secret as people type it into an app (base32, no padding).
    pub fn base32(&self) -> SecretString {
        let Secret::Encoded(s) = Secret::Raw(self.0.expose_secret().clone()).to_encoded() else {
            return SecretString::from(String::new());
        };
        SecretString::from(s.trim_end_matches('=').to_owned())
    }

    /// The `otpauth://` URI an authenticator app scans.
    pub fn uri(&self, issuer: &str, account: &str) -> SecretString {
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        char::from(b).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        SecretString::from(format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={PERIOD}",
            enc(issuer),
            enc(account),
            self.base32().expose_secret(),
            enc(issuer)
        ))
    }

    /// The code of time step `step`.
    pub fn code_at_step(&self, step: i64) -> String {
        self.totp()
            .generate(u64::try_from(step).unwrap_or(0) * PERIOD)
    }

    /// The code at unix time `t` (seconds).
    pub fn code_at(&self, t: i64) -> String {
        self.code_at_step(step_of(t))
    }

    /// Checks `code` at unix time `t` against the steps `t` falls in and its neighbours (±1
    /// step of clock drift), never accepting a step at or before `last_step`. Compared in
    /// constant time.
    pub fn check(&self, code: &str, t: i64, last_step: i64) -> CodeCheck {
        let code = code.trim();
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return CodeCheck::Wrong;
        }
        let now = step_of(t);
        let mut found = CodeCheck::Wrong;
        for step in [now - 1, now, now + 1] {
            if step < 0 {
                continue;
            }
            let expected = self.code_at_step(step);
            if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
                found = if step > last_step {
                    CodeCheck::Good(step)
                } else if found == CodeCheck::Wrong {
                    CodeCheck::Reused
                } else {
                    found
                };
            }
        }
        found
    }
}

/// The time step of unix time `t`.
pub fn step_of(t: i64) -> i64 {
    t.div_euclid(PERIOD as i64)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new one-time token (for the enrolment page's link) and its SHA-256, hex; only the
/// hash is stored.
pub fn new_token() -> (SecretString, String) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let hash = token_hash(&token);
    (SecretString::from(token), hash)
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The enrolment URI as an SVG QR code.
pub fn qr_svg(uri: &SecretString) -> Option<String> {
    let code = qrcode::QrCode::new(uri.expose_secret().as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(240, 240)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MfaKey {
        MfaKey::parse(&SecretString::from("11".repeat(32))).unwrap()
    }

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890", T = 59 s → 94287082
        // (8 digits); the 6-digit code is its last six.
        let s = TotpSecret(SecretBox::new(Box::new(b"12345678901234567890".to_vec())));
        assert_eq!(s.code_at(59), "287082");
        assert_eq!(s.code_at(1_111_111_109), "081804");
    }

    #[test]
    fn codes_count_once_and_drift_one_step() {
        let s = TotpSecret::generate();
        let t = 1_700_000_000;
        let now = step_of(t);
        assert_eq!(s.check(&s.code_at(t), t, 0), CodeCheck::Good(now));
        assert_eq!(s.check(&s.code_at(t - 30), t, 0), CodeCheck::Good(now - 1));
        assert_eq!(s.check(&s.code_at(t + 30), t, 0), CodeCheck::Good(now + 1));
        assert_eq!(s.check(&s.code_at(t - 90), t, 0), CodeCheck::Wrong);
        assert_eq!(s.check(&s.code_at(t), t, now), CodeCheck::Reused);
        assert_eq!(s.check("12345", t, 0), CodeCheck::Wrong);
        assert_eq!(s.check("abcdef", t, 0), CodeCheck::Wrong);
    }

    #[test]
    fn sealed_secrets_open_only_for_their_person_and_key() {
        let s = TotpSecret::generate();
        let sealed = key().seal("dana", &s);
        assert!(!sealed.contains(s.base32().expose_secret()));
        let back = key().open("dana", &sealed).unwrap();
        assert_eq!(back.code_at(1000), s.code_at(1000));
        assert_eq!(key().open("sam", &sealed).unwrap_err(), SealError);
        let other = MfaKey::parse(&SecretString::from("22".repeat(32))).unwrap();
        assert!(other.open("dana", &sealed).is_err());
        assert!(MfaKey::parse(&SecretString::from("xyz")).is_err());
    }

    #[test]
    fn base32_round_trips_and_the_uri_names_the_account() {
        let s = TotpSecret::generate();
        let b = s.base32();
        let back = TotpSecret::from_base32(b.expose_secret()).unwrap();
        assert_eq!(back.code_at(42), s.code_at(42));
        let uri = s.uri("Acme Quartermaster", "dana");
        assert!(
            uri.expose_secret()
                .starts_with("otpauth://totp/Acme%20Quartermaster:dana?secret=")
        );
        assert!(qr_svg(&uri).unwrap().starts_with("<?xml"));
    }
}

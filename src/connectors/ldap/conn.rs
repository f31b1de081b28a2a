//! Opening a connection: `ldap://` (with StartTLS when asked), `ldaps://`, certificates
//! verified against the system's roots or `ca_file`, then a simple bind.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::ExposeSecret;

use super::codes::{ldap_error, rc_error};
use super::settings::LdapSettings;
use crate::core::ports::ConnectorError;

/// The TLS client configuration trusting `ca_file` only; `None` = ldap3's default (the
/// system's roots). Verification is always on.
pub fn tls_config(s: &LdapSettings) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    let Some(path) = &s.ca_file else {
        return Ok(None);
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("ca_file {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "ca_file {}: no PEM certificate in it",
            path.display()
        ));
    }
    let mut roots = RootCertStore::empty();
    for c in certs {
        roots
            .add(c)
            .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(Arc::new(config)))
}

/// ldap3's connection settings for `s`.
pub fn conn_settings(s: &LdapSettings, timeout: Duration) -> Result<LdapConnSettings, String> {
    let mut cs = LdapConnSettings::new()
        .set_conn_timeout(timeout)
        .set_starttls(s.starttls && s.url.starts_with("ldap://"));
    if let Some(config) = tls_config(s)? {
        cs = cs.set_config(config);
    }
    Ok(cs)
}

/// Connects (TLS as configured) and binds as the configured DN.
pub async fn bind(s: &LdapSettings, timeout: Duration) -> Result<Ldap, ConnectorError> {
    let cs = conn_settings(s, timeout).map_err(ConnectorError::Permanent)?;
    let (driver, mut conn) = LdapConnAsync::with_settings(cs, &s.url)
        .await
        .map_err(|e| ldap_error("connect", e))?;
    tokio::spawn(async move {
        if let Err(e) = driver.drive().await {
            tracing::debug!(error = %e, "ldap connection ended with an error");
        }
    });
    let r = conn
        .simple_bind(&s.bind_dn, s.password.expose_secret())
        .await
        .map_err(|e| ldap_error("bind", e))?;
    if r.rc != 0 {
        return Err(rc_error("bind", &r));
    }
    Ok(conn)
}

//! `check --probe`: connects to what the config names — the database, Discord (GET the
//! application with the token), each connector (SCIM `/ServiceProviderConfig`; LDAP bind, root
//! DSE, both bases and the schema: see `connectors::ldap::probe`) — and says what works. It reads; it changes nothing out there.

use std::path::Path;
use std::time::Duration;

use secrecy::ExposeSecret;

use crate::config::{Config, ConnectorKind};

/// How long each probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// One thing tried.
#[derive(Debug, Clone)]
pub struct Probe {
    /// What was tried: `database`, `discord`, `connector okta (scim https://…)`.
    pub what: String,
    /// Whether it works.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.ok { "OK  " } else { "FAIL" };
        write!(f, "{verdict} {}: {}", self.what, self.detail)
    }
}

fn probe(what: impl Into<String>, r: Result<String, String>) -> Probe {
    let (ok, detail) = match r {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    Probe {
        what: what.into(),
        ok,
        detail,
    }
}

/// Tries everything the config names, in order: database, Discord, connectors.
pub async fn run(config: &Config, database_url: &str) -> Vec<Probe> {
    let mut out = vec![probe("database", database(config, database_url).await)];
    if let Some(dc) = &config.discord {
        let base = dc.api_base.as_deref().unwrap_or("https://discord.com");
        let url = format!("{}/api/v10/applications/@me", base.trim_end_matches('/'));
        out.push(probe(
            format!("discord ({url})"),
            discord(&url, dc.token.expose_secret(), &dc.application_id).await,
        ));
    }
    for c in &config.connectors {
        let (what, r) = match &c.kind {
            ConnectorKind::Directory | ConnectorKind::Manual => (
                format!("connector {} ({})", c.name, c.kind.as_str()),
                Ok("nothing to reach (built in)".to_owned()),
            ),
            ConnectorKind::Scim {
                base_url,
                token,
                page_size,
            } => (
                format!("connector {} (scim {base_url})", c.name),
                scim(base_url, token, *page_size).await,
            ),
            ConnectorKind::Ldap(settings) => (
                format!("connector {} (ldap {})", c.name, settings.url),
                crate::connectors::ldap::probe::probe(settings, PROBE_TIMEOUT).await,
            ),
            ConnectorKind::Webhook { url, .. } => (
                format!("connector {} (webhook {url})", c.name),
                Ok("not called (a call would act); check the endpoint yourself".to_owned()),
            ),
        };
        out.push(probe(what, r));
    }
    out
}

async fn database(config: &Config, url: &str) -> Result<String, String> {
    let shown = crate::store::redact_url(url);
    if let Some(file) = sqlite_file(url)
        && !file.exists()
    {
        return Ok(format!(
            "{shown}: the file does not exist yet (`serve` creates it)"
        ));
    }
    let store = tokio::time::timeout(
        PROBE_TIMEOUT,
        crate::wiring::open_store_unanchored(config, url),
    )
    .await
    .map_err(|_| format!("{shown}: no answer within {PROBE_TIMEOUT:?}"))?
    .map_err(|e| format!("{shown}: {e}"))?;
    store
        .audit_rows(Some(chrono::Utc::now()))
        .await
        .map_err(|e| format!("{shown}: connected, but cannot read the audit trail: {e}"))?;
    Ok(format!("{shown}: connected; the audit trail reads"))
}

/// The file a `sqlite:` URL names (`None` for other URLs and in-memory databases).
pub fn sqlite_file(url: &str) -> Option<&Path> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path.starts_with(':') || path.contains("mode=memory") {
        return None;
    }
    Some(Path::new(path))
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

async fn get_json(
    url: &str,
    auth: &str,
) -> Result<(reqwest::StatusCode, serde_json::Value), String> {
    let resp = client()?
        .get(url)
        .header("Authorization", auth)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
    let status = resp.status();
    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
    Ok((status, body))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

async fn discord(url: &str, token: &str, app_id: &str) -> Result<String, String> {
    let (status, body) = get_json(url, &format!("Bot {token}")).await?;
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err("the token was refused (401): check token_env".into());
    }
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let id = body["id"].as_str().unwrap_or("?");
    let name = body["name"].as_str().unwrap_or("?");
    if id != app_id {
        return Err(format!(
            "the token belongs to application {id} ({name}), but application_id is {app_id}"
        ));
    }
    Ok(format!("the token works: application {id} ({name})"))
}

/// Reads the provider's capabilities (`/ServiceProviderConfig`, `/ResourceTypes`,
/// `/Schemas`) as the connector does, and one page of users (which needs the token); says
/// what was found and warns where the config and the provider disagree.
async fn scim(
    base: &str,
    token: &secrecy::SecretString,
    page_size: usize,
) -> Result<String, String> {
    use crate::core::ports::{Connector, ConnectorError};
    let c =
        crate::connectors::scim::Scim::new("probe", base, token.clone(), page_size, PROBE_TIMEOUT)
            .map_err(|e| e.to_string())?;
    let spc = format!("{}/ServiceProviderConfig", base.trim_end_matches('/'));
    let caps = match c.discover().await {
        Ok(caps) => caps,
        Err(ConnectorError::Unauthorized(m)) => {
            return Err(format!("GET {spc}: the token was refused: {m}"));
        }
        Err(e) => return Err(format!("GET {spc}: {e}")),
    };
    c.test_connection().await.map_err(|e| e.to_string())?;
    let mut warnings = caps.warnings();
    if let Some(max) = caps.filter_max
        && page_size as u64 > max
    {
        warnings.push(format!(
            "page_size {page_size} is above the provider's filter.maxResults {max}: set \
             page_size = {max} or less"
        ));
    }
    let mut out = format!("reachable; {}", caps.summary());
    for w in warnings {
        out.push_str("; WARNING: ");
        out.push_str(&w);
    }
    Ok(out)
}

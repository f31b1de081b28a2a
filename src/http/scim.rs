//! `/scim/v2/`: inbound SCIM 2.0 (CONTRACTS §7). The bearer token is checked (in constant
//! time) before anything else, the body is bounded in size and time, requests are decoded
//! and handed to the core ([`Service::scim_write`], [`Service::scim_search`]), which holds
//! every rule; answers and errors are SCIM's (`application/scim+json`, the error schema with
//! `scimType`).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::core::scim::filter::{self, get_ci};
use crate::core::scim::resource::{self as wire_form, Names};
use crate::core::scim::schema::{self, SCHEMAS_JSON};
use crate::core::scim::{LIST, MAX_RESULTS, ScimError, ScimKind, ScimResource, ScimType};
use crate::core::service::{ScimChange, ScimFailure, ScimQuery, Service};

/// The largest request body: a group PATCH adding a thousand members fits in well under it.
pub const MAX_BODY: usize = 512 * 1024;
/// The longest one request may take once its body is in (then 503).
pub const HANDLER_TIMEOUT: Duration = Duration::from_secs(30);
/// Results per page when `count` is not given.
pub const DEFAULT_COUNT: usize = 100;
/// SCIM's media type.
const SCIM_JSON: &str = "application/scim+json";

struct ScimState {
    service: Arc<Service>,
    /// HMAC of the token under a fixed key: a given token is compared by its HMAC, in
    /// constant time, whatever its length.
    token_mac: Vec<u8>,
    /// The public URL, when configured (`meta.location`); else the request's `Host`.
    public_url: Option<String>,
}

fn mac_of(token: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(b"quartermaster scim bearer token")
        .expect("HMAC takes a key of any length");
    m.update(token);
    m
}

/// The SCIM routes under `/scim/v2`, checked against `token` (`[scim_server] token_env`).
pub fn router(service: Arc<Service>, token: &SecretString, public_url: Option<String>) -> Router {
    let st = Arc::new(ScimState {
        service,
        token_mac: mac_of(token.expose_secret().as_bytes())
            .finalize()
            .into_bytes()
            .to_vec(),
        public_url,
    });
    let inner = Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema_by_id))
        .route("/Users", get(list_users).post(create_user))
        .route("/Users/.search", post(search_users))
        .route(
            "/Users/{id}",
            get(get_user)
                .put(put_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/Groups", get(list_groups).post(create_group))
        .route("/Groups/.search", post(search_groups))
        .route(
            "/Groups/{id}",
            get(get_group)
                .put(put_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route("/.search", post(search_everything))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(|r, n| {
            super::bounded_body(MAX_BODY, super::BODY_TIMEOUT, r, n)
        }))
        .layer(axum::middleware::from_fn(scim_errors))
        .layer(axum::middleware::from_fn_with_state(st.clone(), auth))
        .with_state(st);
    Router::new().nest("/scim/v2", inner)
}

/// A SCIM answer.
fn scim(code: StatusCode, body: Value) -> Response {
    let mut r = (code, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    r
}

fn error(e: &ScimError) -> Response {
    scim(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        e.body(),
    )
}

fn failure(f: ScimFailure) -> Response {
    match f {
        ScimFailure::Protocol(e) => {
            tracing::info!(status = e.status, detail = %e.detail, "SCIM request refused");
            error(&e)
        }
        ScimFailure::Service(e) => {
            tracing::error!(error = %e, "SCIM request failed");
            error(&ScimError {
                status: 500,
                scim_type: None,
                detail: "internal error; retry later".into(),
            })
        }
    }
}

/// The bearer token, before anything else (the body is not read without it): 401 with no
/// detail otherwise. The token is never logged.
async fn auth(State(st): State<Arc<ScimState>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    let ok = given.is_some_and(|t| mac_of(t.as_bytes()).verify_slice(&st.token_mac).is_ok());
    if !ok {
        tracing::warn!("SCIM request without a valid bearer token");
        let mut r = scim(
            StatusCode::UNAUTHORIZED,
            json!({"schemas": [crate::core::scim::ERROR], "status": "401"}),
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    next.run(req).await
}

/// Bounds a request's time, and words the plain answers of the layers below (413, 408, 405)
/// in SCIM's error schema.
async fn scim_errors(req: Request, next: Next) -> Response {
    let r = match tokio::time::timeout(HANDLER_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!("a SCIM request took too long");
            return error(&ScimError {
                status: 503,
                scim_type: None,
                detail: "the request took too long; retry later".into(),
            });
        }
    };
    let scim_typed = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == SCIM_JSON.as_bytes());
    let status = r.status();
    if scim_typed || status.is_success() {
        return r;
    }
    let detail = match status {
        StatusCode::PAYLOAD_TOO_LARGE => format!("the body is over {MAX_BODY} bytes"),
        StatusCode::REQUEST_TIMEOUT => "the body did not arrive in time".into(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed here".into(),
        other => other.canonical_reason().unwrap_or("error").to_owned(),
    };
    error(&ScimError {
        status: status.as_u16(),
        scim_type: None,
        detail,
    })
}

async fn not_found() -> Response {
    error(&ScimError {
        status: 404,
        scim_type: None,
        detail: "no such endpoint".into(),
    })
}

/// The service's URL, for `meta.location`.
fn base(st: &ScimState, headers: &HeaderMap) -> String {
    match &st.public_url {
        Some(u) => format!("{u}/scim/v2"),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| h.len() < 256 && !h.contains(['/', ' ']))
                .unwrap_or("localhost");
            format!("http://{host}/scim/v2")
        }
    }
}

fn with_meta(mut v: Value, rt: &str, location: String) -> Value {
    v["meta"] = json!({"resourceType": rt, "location": location});
    v
}

async fn service_provider_config(State(st): State<Arc<ScimState>>, h: HeaderMap) -> Response {
    let b = base(&st, &h);
    scim(
        StatusCode::OK,
        with_meta(
            schema::service_provider_config(),
            "ServiceProviderConfig",
            format!("{b}/ServiceProviderConfig"),
        ),
    )
}

fn list(total: usize, start: usize, items: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

fn resource_type_json(kind: ScimKind, b: &str) -> Value {
    with_meta(
        schema::resource_type(kind),
        "ResourceType",
        format!("{b}/ResourceTypes/{}", kind.as_str()),
    )
}

async fn resource_types(State(st): State<Arc<ScimState>>, h: HeaderMap) -> Response {
    let b = base(&st, &h);
    let items: Vec<Value> = [ScimKind::User, ScimKind::Group]
        .into_iter()
        .map(|k| resource_type_json(k, &b))
        .collect();
    scim(StatusCode::OK, list(items.len(), 1, items))
}

async fn resource_type(
    State(st): State<Arc<ScimState>>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match ScimKind::parse(&id) {
        Some(k) => scim(StatusCode::OK, resource_type_json(k, &base(&st, &h))),
        None => not_found().await,
    }
}

fn schema_list(b: &str) -> Vec<Value> {
    let all: Vec<Value> = serde_json::from_str(SCHEMAS_JSON).unwrap_or_default();
    all.into_iter()
        .map(|s| {
            let id = s
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            with_meta(s, "Schema", format!("{b}/Schemas/{id}"))
        })
        .collect()
}

async fn schemas(State(st): State<Arc<ScimState>>, h: HeaderMap) -> Response {
    let items = schema_list(&base(&st, &h));
    scim(StatusCode::OK, list(items.len(), 1, items))
}

async fn schema_by_id(
    State(st): State<Arc<ScimState>>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let found = schema_list(&base(&st, &h))
        .into_iter()
        .find(|s| s.get("id").and_then(Value::as_str) == Some(id.as_str()));
    match found {
        Some(s) => scim(StatusCode::OK, s),
        None => not_found().await,
    }
}

/// The query parameters of a list or a read.
#[derive(Debug, Default, Deserialize)]
struct Params {
    filter: Option<String>,
    #[serde(rename = "startIndex")]
    start_index: Option<String>,
    count: Option<String>,
    attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    excluded_attributes: Option<String>,
}

/// The projection a request asks for.
struct Projection {
    attrs: Names,
    excluded: Names,
}

impl Projection {
    fn of(kind: ScimKind, p: &Params) -> Result<Self, ScimError> {
        Ok(Self {
            attrs: wire_form::names(kind, p.attributes.as_deref())?,
            excluded: wire_form::names(kind, p.excluded_attributes.as_deref())?,
        })
    }
    fn apply(&self, kind: ScimKind, v: Value) -> Value {
        wire_form::project(kind, v, &self.attrs, &self.excluded)
    }
}

fn number(s: Option<&str>, what: &str) -> Result<Option<i64>, ScimError> {
    s.map(|x| {
        x.trim().parse::<i64>().map_err(|_| {
            ScimError::bad(ScimType::InvalidValue, format!("{what} must be an integer"))
        })
    })
    .transpose()
}

async fn search(st: &ScimState, kind: ScimKind, p: &Params, h: &HeaderMap) -> Response {
    let run = async {
        let filter = p
            .filter
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .map(|f| filter::parse(kind, f))
            .transpose()?;
        let start = number(p.start_index.as_deref(), "startIndex")?
            .unwrap_or(1)
            .max(1);
        let count = number(p.count.as_deref(), "count")?.unwrap_or(DEFAULT_COUNT as i64);
        let count = usize::try_from(count.max(0)).unwrap_or(0).min(MAX_RESULTS);
        let start = usize::try_from(start).unwrap_or(1);
        let proj = Projection::of(kind, p)?;
        let q = ScimQuery {
            filter,
            start,
            count,
        };
        let (total, items) = st.service.scim_search(kind, &q, &base(st, h)).await?;
        let items: Vec<Value> = items.into_iter().map(|v| proj.apply(kind, v)).collect();
        Ok::<_, ScimFailure>(list(total, start, items))
    };
    match run.await {
        Ok(v) => scim(StatusCode::OK, v),
        Err(e) => failure(e),
    }
}

/// A single resource's answer: its ETag and (on creation) its Location.
fn one(
    code: StatusCode,
    kind: ScimKind,
    r: &ScimResource,
    v: Value,
    proj: &Projection,
) -> Response {
    let location = v
        .pointer("/meta/location")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut resp = scim(code, proj.apply(kind, v));
    if let Ok(e) = HeaderValue::from_str(&r.etag()) {
        resp.headers_mut().insert(header::ETAG, e);
    }
    if code == StatusCode::CREATED
        && let Some(l) = location.and_then(|l| HeaderValue::from_str(&l).ok())
    {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    resp
}

fn body_json(body: &Bytes) -> Result<Value, ScimError> {
    serde_json::from_slice(body).map_err(|e| {
        ScimError::bad(
            ScimType::InvalidSyntax,
            format!("the body is not valid JSON: {e}"),
        )
    })
}

fn if_match(h: &HeaderMap) -> Option<String> {
    h.get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn get_one(st: &ScimState, kind: ScimKind, id: &str, p: &Params, h: &HeaderMap) -> Response {
    let run = async {
        let proj = Projection::of(kind, p)?;
        let (r, v) = st.service.scim_get(kind, id, &base(st, h)).await?;
        Ok::<_, ScimFailure>((r, v, proj))
    };
    match run.await {
        Ok((r, v, proj)) => {
            // A client holding this version already needs no body.
            let fresh = h
                .get(header::IF_NONE_MATCH)
                .and_then(|x| x.to_str().ok())
                .is_some_and(|x| crate::core::scim::if_match_admits(x, r.version));
            if fresh {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            one(StatusCode::OK, kind, &r, v, &proj)
        }
        Err(e) => failure(e),
    }
}

async fn write(
    st: &ScimState,
    kind: ScimKind,
    id: Option<&str>,
    method: &str,
    p: &Params,
    h: &HeaderMap,
    body: &Bytes,
) -> Response {
    let run = async {
        let proj = Projection::of(kind, p)?;
        let json = if method == "DELETE" {
            Value::Null
        } else {
            body_json(body)?
        };
        let how = match method {
            "POST" => ScimChange::Create(&json),
            "PUT" => ScimChange::Replace(&json),
            "PATCH" => ScimChange::Patch(&json),
            _ => ScimChange::Delete,
        };
        let m = if_match(h);
        let done = st.service.scim_write(kind, id, how, m.as_deref()).await?;
        let out = match done {
            None => None,
            Some(r) => {
                let groups = st.service.scim_groups(&r).await?;
                let v = wire_form::wire(&r, &base(st, h), &groups);
                Some((r, v))
            }
        };
        Ok::<_, ScimFailure>((out, proj))
    };
    match run.await {
        Ok((None, _)) => StatusCode::NO_CONTENT.into_response(),
        Ok((Some((r, v)), proj)) => {
            let code = if method == "POST" {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            one(code, kind, &r, v, &proj)
        }
        Err(e) => failure(e),
    }
}

/// `POST …/.search`: a SearchRequest in the body, as the query parameters of a GET.
async fn search_body(st: &ScimState, kind: ScimKind, h: &HeaderMap, body: &Bytes) -> Response {
    let v = match body_json(body) {
        Ok(v) => v,
        Err(e) => return error(&e),
    };
    let s = |k: &str| {
        get_ci(&v, k).and_then(|x| match x {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Array(a) => Some(
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            _ => None,
        })
    };
    let p = Params {
        filter: s("filter"),
        start_index: s("startIndex"),
        count: s("count"),
        attributes: s("attributes"),
        excluded_attributes: s("excludedAttributes"),
    };
    search(st, kind, &p, h).await
}

macro_rules! kind_routes {
    ($kind:expr, $list:ident, $create:ident, $search:ident, $get:ident, $put:ident, $patch:ident, $delete:ident) => {
        async fn $list(
            State(st): State<Arc<ScimState>>,
            h: HeaderMap,
            Query(p): Query<Params>,
        ) -> Response {
            search(&st, $kind, &p, &h).await
        }
        async fn $create(
            State(st): State<Arc<ScimState>>,
            h: HeaderMap,
            Query(p): Query<Params>,
            body: Bytes,
        ) -> Response {
            write(&st, $kind, None, "POST", &p, &h, &body).await
        }
        async fn $search(State(st): State<Arc<ScimState>>, h: HeaderMap, body: Bytes) -> Response {
            search_body(&st, $kind, &h, &body).await
        }
        async fn $get(
            State(st): State<Arc<ScimState>>,
            h: HeaderMap,
            Path(id): Path<String>,
            Query(p): Query<Params>,
        ) -> Response {
            get_one(&st, $kind, &id, &p, &h).await
        }
        async fn $put(
            State(st): State<Arc<ScimState>>,
            h: HeaderMap,
            Path(id): Path<String>,
            Query(p): Query<Params>,
            body: Bytes,
        ) -> Response {
            write(&st, $kind, Some(&id), "PUT", &p, &h, &body).await
        }
        async fn $patch(
            State(st): State<Arc<ScimState>>,
            h: HeaderMap,
            Path(id): Path<String>,
            Query(p): Query<Params>,
            body: Bytes,
        ) -> Response {
            write(&st, $kind, Some(&id), "PATCH", &p, &h, &body).await
        }
        async fn $delete(
            State(st): State<Arc<ScimState>>,
            h: HeaderMap,
            Path(id): Path<String>,
        ) -> Response {
            write(
                &st,
                $kind,
                Some(&id),
                "DELETE",
                &Params::default(),
                &h,
                &Bytes::new(),
            )
            .await
        }
    };
}

kind_routes!(
    ScimKind::User,
    list_users,
    create_user,
    search_users,
    get_user,
    put_user,
    patch_user,
    delete_user
);
kind_routes!(
    ScimKind::Group,
    list_groups,
    create_group,
    search_groups,
    get_group,
    put_group,
    patch_group,
    delete_group
);

/// `POST /.search` across resource types: not offered (501, RFC 7644 §3.12).
async fn search_everything() -> Response {
    error(&ScimError {
        status: 501,
        scim_type: None,
        detail: "search across resource types is not supported; use /Users/.search".into(),
    })
}

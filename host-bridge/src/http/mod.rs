//! The octez-signer HTTP API.
//!
//! | route | answer |
//! |---|---|
//! | `GET /keys/{pkh}` | `{"public_key":"edpk…"}` |
//! | `POST /keys/{pkh}?version=&authentication=` (body: JSON string of hex) | `{"signature":"edsig…"}` |
//! | `GET /authorized_keys` | `{}` or `{"authorized_keys":["tz1…"]}` |
//! | `GET /known_keys` (if enabled) | `{"known_keys":["tz1…"]}` |
//! | `GET /bls_prove_possession/{pkh}?override_pk=` (if enabled) | `{"bls_prove_possession":"BLsig…"}` |
//!
//! Errors use Octez's shape with a precise status (see [`error::refusal_status`]).

pub mod error;
mod host_held;
mod hsm_relay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use pawl_core::keys::{PublicKey, PublicKeyHash, SigningVersion};
use pawl_core::protocol::Response as BoardResponse;
use serde::Deserialize;
use serde_json::json;

use crate::auth::Authorizer;
use crate::boards::Boards;
use crate::link::Link;
use crate::metrics::Metrics;
use crate::signer;
pub use error::ApiError;

/// HTTP switches (Octez launch options).
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Largest request body.
    pub body_limit: usize,
    /// Allowed client IPs (empty: any); replaced on SIGHUP.
    pub allowed_ips: crate::auth::AllowedIps,
    /// Serve `GET /known_keys`.
    pub allow_list_known_keys: bool,
    /// Serve `GET /bls_prove_possession/{pkh}`.
    pub allow_to_prove_possession: bool,
}

/// What the handlers share.
pub struct AppState {
    /// The boards, each with its link; requests are routed by pkh.
    pub boards: Boards,
    /// Who may ask.
    pub auth: Authorizer,
    /// Switches.
    pub settings: HttpSettings,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The key services of host-held keys ([`crate::keyring`]).
    pub keyrings: Arc<crate::keyring::Keyrings>,
    /// YubiHSM2 relay to the connector (`[yubihsm]` in pawl.toml).
    pub yubihsm: Option<Arc<crate::yubihsm::HsmRelay>>,
}

/// The signer API as a router (tests call it without a socket). Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` when an IP allow-list is set.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/keys/{pkh}", get(public_key).post(sign))
        .route("/authorized_keys", get(authorized_keys))
        .route("/known_keys", get(known_keys))
        .route("/bls_prove_possession/{pkh}", get(prove_possession))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(state.settings.body_limit))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), observe))
        .with_state(state)
}

/// The metrics listener as a router: `/metrics`, `/healthz`, `/readyz` ([`crate::health`]).
pub fn metrics_app(boards: Boards, metrics: Arc<Metrics>) -> Router {
    crate::health::router(boards, metrics)
}

/// IP allow-list, then latency and status by route.
async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    if !state.settings.allowed_ips.is_empty() {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if !peer.is_some_and(|ip| state.settings.allowed_ips.contains(&ip)) {
            let who = peer.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
            tracing::warn!(client = %who, "refused a client not in allowed_ips");
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "client_refused",
                format!("client `{who}' is not allowed"),
            )
            .into_response();
        }
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let response = next.run(request).await;
    state
        .metrics
        .http_request(&route, response.status().as_u16(), started.elapsed());
    response
}

fn parse_pkh(text: &str) -> Result<PublicKeyHash, ApiError> {
    PublicKeyHash::from_b58(text)
        .map_err(|e| ApiError::bad_request(format!("`{text}' is not a public key hash: {e}")))
}

async fn public_key(
    State(state): State<Arc<AppState>>,
    Path(pkh): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pkh = parse_pkh(&pkh)?;
    let pk = signer::public_key(&state, pkh).await?;
    Ok(Json(json!({"public_key": pk.to_b58().as_str()})))
}

/// `?version=&authentication=` of a sign request.
#[derive(Debug, Deserialize)]
struct SignQuery {
    version: Option<String>,
    authentication: Option<String>,
}

fn parse_body(body: Result<Bytes, BytesRejection>) -> Result<Vec<u8>, ApiError> {
    let body = body.map_err(|e| {
        let status = e.status();
        let msg = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "request body too large".to_string()
        } else {
            format!("cannot read the request body: {e}")
        };
        ApiError::new(status, "bad_request", msg)
    })?;
    let text: String = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("body must be a JSON string of hex bytes: {e}"))
    })?;
    let bytes = hex::decode(text.trim())
        .map_err(|e| ApiError::bad_request(format!("body is not valid hex: {e}")))?;
    Ok(bytes)
}

async fn sign(
    State(state): State<Arc<AppState>>,
    Path(pkh_text): Path<String>,
    query: Result<Query<SignQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let query = query.map_err(|e| ApiError::bad_request(e.body_text()));
    let request = sign_request(&pkh_text, query.as_ref().map(|q| &q.0), body);
    let sig = signer::sign(&state, &pkh_text, request).await?;
    Ok(Json(json!({"signature": sig.to_b58().as_str()})))
}

fn sign_request<'a>(
    pkh_text: &str,
    query: Result<&'a SignQuery, &ApiError>,
    body: Result<Bytes, BytesRejection>,
) -> Result<signer::SignRequest<'a>, ApiError> {
    let pkh = parse_pkh(pkh_text)?;
    let query = query.map_err(Clone::clone)?;
    let version = match query.version.as_deref() {
        None | Some("") => SigningVersion::LATEST,
        Some(v) => SigningVersion(v.parse().map_err(|_| {
            ApiError::bad_request(format!("version `{v}' is not a signature version (0 to 3)"))
        })?),
    };
    let payload = parse_body(body)?;
    let authentication = match query.authentication.as_deref() {
        Some(text) => signer::Authentication::B58(text),
        None => signer::Authentication::Absent,
    };
    Ok(signer::SignRequest {
        pkh,
        version,
        payload,
        authentication,
    })
}

async fn authorized_keys(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    match signer::authorized_keys(&state) {
        Some(keys) => {
            let list: Vec<String> = keys.iter().map(|k| k.to_b58().to_string()).collect();
            Json(json!({"authorized_keys": list}))
        }
        None => Json(json!({})),
    }
}

async fn known_keys(
    State(state): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let keys = signer::known_keys(&state).await?;
    let list: Vec<String> = keys.iter().map(|k| k.to_b58().to_string()).collect();
    Ok(Json(json!({"known_keys": list})))
}

/// `?override_pk=` (Octez calls it `bls_pk`; both are accepted).
#[derive(Debug, Deserialize)]
struct PossessionQuery {
    override_pk: Option<String>,
    bls_pk: Option<String>,
}

async fn prove_possession(
    State(state): State<Arc<AppState>>,
    Path(pkh): Path<String>,
    query: Result<Query<PossessionQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !state.settings.allow_to_prove_possession {
        return Err(ApiError::not_allowed(
            "Request to prove possession is not allowed.",
        ));
    }
    let pkh = parse_pkh(&pkh)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let override_pk = match query.override_pk.or(query.bls_pk) {
        None => None,
        Some(text) => Some(PublicKey::from_b58(&text).map_err(|e| {
            ApiError::bad_request(format!("override_pk `{text}' is not a public key: {e}"))
        })?),
    };
    let sig = signer::prove_possession(&state, pkh, override_pk).await?;
    Ok(Json(json!({"bls_prove_possession": sig.to_b58().as_str()})))
}

/// The second half of a host-held sign (`signer`): the key's keyring signs the approved
/// digest.
pub(crate) async fn host_held_finish(
    state: &AppState,
    link: &Link,
    keyring: Option<&dyn crate::keyring::HostKeyring>,
    pkh: PublicKeyHash,
    digest: [u8; 32],
) -> Result<BoardResponse, ApiError> {
    host_held::finish(state, link, keyring, pkh, digest).await
}

/// The relay of a YubiHSM2 sign (`signer`).
pub(crate) async fn hsm_relay_finish(
    state: &AppState,
    link: &Link,
    relay: Option<&crate::yubihsm::HsmRelay>,
    sealed: Vec<u8>,
) -> Result<BoardResponse, ApiError> {
    hsm_relay::finish(state, link, relay, sealed).await
}

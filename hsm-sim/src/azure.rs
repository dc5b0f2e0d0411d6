//! `pawl-sim azure`: an Azure Key Vault REST simulator, served over HTTPS with a generated
//! certificate, plus the managed-identity (App Service shape) and client-secret token
//! endpoints, so the bridge's real Azure client code runs against it unchanged.
//!
//! | route | what |
//! |---|---|
//! | `GET /keys/{name}/{version}` (version may be empty) | the key as JWK (`kty` `EC-HSM`, `crv` `P-256K`/`P-256`, `x`, `y`) |
//! | `POST /keys/{name}/{version}/sign` `{"alg","value"}` | raw `r ‖ s` over the 32-byte digest, base64url |
//! | `POST /keys/{name}/create` `{"kty","crv"}` | create a key (Key Vault's create) |
//! | `GET /msi/token?resource=` + `x-identity-header` | managed identity token (App Service form, `IDENTITY_ENDPOINT`) |
//! | `POST /{tenant}/oauth2/v2.0/token` | client-credentials token (any client id/secret) |
//! | `GET /admin/stats` | counters: sign requests (all, authorised, answered), get-key, tokens |
//! | `POST /admin/faults` | inject: `throttle` n × 429 with `retry_after` s, `server_errors` n × 503, `delay_ms`, `wrong_signatures` n, `high_s` `always`/`never`/`alternate` |
//! | `POST /admin/keys` `{"name","crv"}` | create a key without a token (tests) |
//!
//! Keys requests without a valid bearer token get Key Vault's 401 challenge. What it does
//! **not** model: RBAC/access policies, key versions beyond one per key, rotation, soft
//! delete, real throttling windows (faults are injected, not measured), HSM latency.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use k256::ecdsa::signature::hazmat::PrehashSigner;
use serde::Deserialize;
use serde_json::{Value, json};

/// `pawl-sim azure` options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory for the generated certificate (`cert.pem`, trusted by the bridge as its CA).
    #[arg(long)]
    pub cert_dir: PathBuf,
    /// Value the managed-identity endpoint expects in `x-identity-header`.
    #[arg(long, default_value = "pawl-sim-identity-header")]
    pub identity_header: String,
    /// Pre-create keys: `NAME:P-256K` or `NAME:P-256` (repeatable).
    #[arg(long = "key")]
    pub keys: Vec<String>,
    /// When secp256k1 signatures come out high-S: `always`, `never`, `alternate`.
    #[arg(long, default_value = "alternate")]
    pub high_s: String,
}

/// A simulated service key (shared with `pawl-sim gcp`).
pub(crate) enum KeyPair {
    Secp(k256::ecdsa::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Faults {
    #[serde(default)]
    throttle: u32,
    #[serde(default)]
    retry_after: u64,
    #[serde(default)]
    server_errors: u32,
    #[serde(default)]
    delay_ms: u64,
    #[serde(default)]
    wrong_signatures: u32,
    high_s: Option<String>,
}

#[derive(Default)]
struct Stats {
    sign_requests: u64,
    sign_authorised: u64,
    signatures: u64,
    get_key: u64,
    tokens: u64,
}

struct Sim {
    keys: HashMap<String, KeyPair>,
    faults: Faults,
    stats: Stats,
    tokens: Vec<String>,
    high_s_toggle: bool,
    base: String,
}

type Shared = Arc<Mutex<Sim>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Sim> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn random32() -> Result<[u8; 32], String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| format!("entropy: {e}"))?;
    Ok(b)
}

pub(crate) fn new_key(crv: &str) -> Result<KeyPair, String> {
    for _ in 0..8 {
        let b = random32()?;
        let k = match crv {
            "P-256K" | "SECP256K1" => k256::ecdsa::SigningKey::from_slice(&b)
                .ok()
                .map(KeyPair::Secp),
            "P-256" => p256::ecdsa::SigningKey::from_slice(&b)
                .ok()
                .map(KeyPair::P256),
            other => return Err(format!("unsupported curve `{other}` (P-256K or P-256)")),
        };
        if let Some(k) = k {
            return Ok(k);
        }
    }
    Err("could not make a key".into())
}

impl KeyPair {
    fn jwk(&self, kid: &str) -> Value {
        let (crv, point) = match self {
            KeyPair::Secp(k) => (
                "P-256K",
                k.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
            ),
            KeyPair::P256(k) => (
                "P-256",
                k.verifying_key().to_sec1_point(false).as_bytes().to_vec(),
            ),
        };
        json!({
            "key": {"kid": kid, "kty": "EC-HSM", "crv": crv, "key_ops": ["sign", "verify"],
                    "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])},
            "attributes": {"enabled": true, "exportable": false},
        })
    }

    fn sign(&self, alg: &str, digest: &[u8]) -> Result<[u8; 64], &'static str> {
        let bytes = match (self, alg) {
            (KeyPair::Secp(k), "ES256K") => {
                let s: k256::ecdsa::Signature = k.sign_prehash(digest).map_err(|_| "bad digest")?;
                s.to_bytes().to_vec()
            }
            (KeyPair::P256(k), "ES256") => {
                let s: p256::ecdsa::Signature = k.sign_prehash(digest).map_err(|_| "bad digest")?;
                s.to_bytes().to_vec()
            }
            _ => return Err("algorithm does not match the key's curve"),
        };
        bytes.try_into().map_err(|_| "signature length")
    }
}

/// secp256k1 group order, big-endian.
const SECP_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// `s → n − s`: the high-S twin of a low-S secp256k1 signature (what Key Vault may return).
pub(crate) fn flip_s(sig: &mut [u8; 64]) {
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(SECP_N[i]) - i16::from(sig[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        sig[32 + i] = d.rem_euclid(256) as u8;
    }
}

fn error(status: StatusCode, code: &str, msg: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": msg}})),
    )
        .into_response()
}

fn challenge() -> Response {
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "AKV10000: Request is missing a Bearer or PoP token.",
    );
    if let Ok(v) = "Bearer authorization=\"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47\", resource=\"https://vault.azure.net\"".parse() {
        r.headers_mut().insert("www-authenticate", v);
    }
    r
}

fn authorised(sim: &Sim, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| sim.tokens.iter().any(|k| k == t))
}

fn issue_token(sim: &mut Sim) -> Result<String, String> {
    let token = format!("sim-{}", hex32(&random32()?));
    sim.tokens.push(token.clone());
    sim.stats.tokens += 1;
    Ok(token)
}

fn hex32(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn expires_on() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 3600
}

async fn get_key(
    State(s): State<Shared>,
    Path(p): Path<Vec<String>>,
    headers: HeaderMap,
) -> Response {
    let mut sim = lock(&s);
    if !authorised(&sim, &headers) {
        return challenge();
    }
    sim.stats.get_key += 1;
    let name = p.first().cloned().unwrap_or_default();
    let kid = format!("{}keys/{name}/1", sim.base);
    match sim.keys.get(&name) {
        Some(k) => Json(k.jwk(&kid)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "KeyNotFound",
            "A key with (name/id) was not found in this key vault.",
        ),
    }
}

#[derive(Deserialize)]
struct SignBody {
    alg: String,
    value: String,
}

async fn sign(
    State(s): State<Shared>,
    Path(p): Path<Vec<String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let delay = {
        let mut sim = lock(&s);
        sim.stats.sign_requests += 1;
        if !authorised(&sim, &headers) {
            return challenge();
        }
        sim.stats.sign_authorised += 1;
        if sim.faults.throttle > 0 {
            sim.faults.throttle -= 1;
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Throttled",
                "Request was not processed because too many requests were received.",
            );
            if let Ok(v) = sim.faults.retry_after.to_string().parse() {
                r.headers_mut().insert("retry-after", v);
            }
            return r;
        }
        if sim.faults.server_errors > 0 {
            sim.faults.server_errors -= 1;
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "injected",
            );
        }
        sim.faults.delay_ms
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let mut sim = lock(&s);
    let name = p.first().cloned().unwrap_or_default();
    let Ok(body) = serde_json::from_slice::<SignBody>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "body is not {alg, value}",
        );
    };
    let Ok(digest) = B64.decode(body.value.trim_end_matches('=')) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "value is not base64url",
        );
    };
    if digest.len() != 32 {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "digest must be 32 bytes for ES256/ES256K",
        );
    }
    let high_s = match sim.faults.high_s.as_deref() {
        Some("always") => true,
        Some("never") => false,
        _ => {
            sim.high_s_toggle = !sim.high_s_toggle;
            sim.high_s_toggle
        }
    };
    let kid = format!("{}keys/{name}/1", sim.base);
    let Some(key) = sim.keys.get(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            "KeyNotFound",
            "A key with (name/id) was not found in this key vault.",
        );
    };
    let mut sig = match key.sign(&body.alg, &digest) {
        Ok(s) => s,
        Err(m) => return error(StatusCode::BAD_REQUEST, "BadParameter", m),
    };
    if high_s && matches!(key, KeyPair::Secp(_)) {
        flip_s(&mut sig);
    }
    if sim.faults.wrong_signatures > 0 {
        sim.faults.wrong_signatures -= 1;
        sig[10] ^= 0x55;
    }
    sim.stats.signatures += 1;
    Json(json!({"kid": kid, "value": B64.encode(sig)})).into_response()
}

#[derive(Deserialize)]
struct CreateBody {
    #[serde(default)]
    name: String,
    crv: String,
}

fn create(sim: &mut Sim, name: &str, crv: &str) -> Response {
    match new_key(crv) {
        Ok(k) => {
            let kid = format!("{}keys/{name}/1", sim.base);
            let jwk = k.jwk(&kid);
            sim.keys.insert(name.to_string(), k);
            Json(jwk).into_response()
        }
        Err(m) => error(StatusCode::BAD_REQUEST, "BadParameter", &m),
    }
}

async fn create_key(
    State(s): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Json<CreateBody>,
) -> Response {
    let mut sim = lock(&s);
    if !authorised(&sim, &headers) {
        return challenge();
    }
    create(&mut sim, &name, &body.crv)
}

async fn admin_key(State(s): State<Shared>, body: Json<CreateBody>) -> Response {
    create(&mut lock(&s), &body.name.clone(), &body.crv)
}

async fn admin_stats(State(s): State<Shared>) -> Json<Value> {
    let sim = lock(&s);
    let st = &sim.stats;
    Json(
        json!({"sign_requests": st.sign_requests, "sign_authorised": st.sign_authorised,
                "signatures": st.signatures, "get_key": st.get_key, "tokens": st.tokens}),
    )
}

async fn admin_faults(State(s): State<Shared>, body: Json<Faults>) -> StatusCode {
    lock(&s).faults = body.0;
    StatusCode::NO_CONTENT
}

async fn msi_token(State(s): State<Shared>, headers: HeaderMap, expected: Arc<String>) -> Response {
    let ok = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str());
    if !ok {
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "missing or wrong x-identity-header",
        );
    }
    let mut sim = lock(&s);
    match issue_token(&mut sim) {
        Ok(t) => Json(
            json!({"access_token": t, "expires_on": expires_on().to_string(),
                             "resource": "https://vault.azure.net", "token_type": "Bearer"}),
        )
        .into_response(),
        Err(m) => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal", &m),
    }
}

async fn aad_token(State(s): State<Shared>) -> Response {
    let mut sim = lock(&s);
    match issue_token(&mut sim) {
        Ok(t) => Json(json!({"access_token": t, "expires_in": 3599, "token_type": "Bearer"}))
            .into_response(),
        Err(m) => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal", &m),
    }
}

/// Run the simulator until SIGTERM/SIGINT or the parent's exit.
pub fn run(args: Args) -> Result<(), String> {
    crate::signals::run_http_simulator(serve(args))
}

async fn serve(args: Args) -> Result<(), String> {
    let https = crate::https::Https::bind(&args.cert_dir).await?;
    let base = https.base.clone();
    let mut sim = Sim {
        keys: HashMap::new(),
        faults: Faults::default(),
        stats: Stats::default(),
        tokens: Vec::new(),
        high_s_toggle: false,
        base: base.clone(),
    };
    sim.faults.high_s = Some(args.high_s.clone());
    for spec in &args.keys {
        let (name, crv) = spec
            .split_once(':')
            .ok_or(format!("--key {spec}: expected NAME:CURVE"))?;
        sim.keys.insert(name.to_string(), new_key(crv)?);
    }
    let shared: Shared = Arc::new(Mutex::new(sim));
    let header = Arc::new(args.identity_header.clone());
    let app = axum::Router::new()
        .route(
            "/keys/{name}/",
            get(|s, Path(n): Path<String>, h| get_key(s, Path(vec![n]), h)),
        )
        .route(
            "/keys/{name}/{version}",
            get(|s, Path((n, _v)): Path<(String, String)>, h| get_key(s, Path(vec![n]), h)),
        )
        .route(
            "/keys/{name}//sign",
            post(|s, Path(n): Path<String>, h, b| sign(s, Path(vec![n]), h, b)),
        )
        .route(
            "/keys/{name}/{version}/sign",
            post(|s, Path((n, _v)): Path<(String, String)>, h, b| sign(s, Path(vec![n]), h, b)),
        )
        .route("/keys/{name}/create", post(create_key))
        .route(
            "/msi/token",
            get(move |s, h| msi_token(s, h, Arc::clone(&header))),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(aad_token))
        .route("/admin/stats", get(admin_stats))
        .route("/admin/faults", post(admin_faults))
        .route("/admin/keys", post(admin_key))
        .with_state(shared);
    println!("url: {base}");
    println!("cert: {}", https.cert_path.display());
    println!("identity: {base}msi/token");
    https.serve(app).await
}

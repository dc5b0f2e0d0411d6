//! `pawl-sim gcp`: the part of the Google Cloud KMS REST API the bridge uses, over HTTPS with a
//! generated certificate, and an OAuth token endpoint for a service account whose JSON key file
//! it writes. Google has no emulator for asymmetric signing; this one lets the bridge's real
//! client code (token exchange, `getPublicKey`, `asymmetricSign`, retries) run unchanged.
//!
//! | route | what |
//! |---|---|
//! | `POST /token` (form: `grant_type=…jwt-bearer`, `assertion`) | checks the JWT's RS256 signature against the service account's key, `iss`, `aud`, `scope` and `exp`; a bearer token |
//! | `GET /computeMetadata/v1/instance/service-accounts/default/token` + `Metadata-Flavor: Google` | a bearer token, as a VM's metadata server gives it |
//! | `GET /v1/{key version}/publicKey` | `{"pem", "algorithm"}`: SubjectPublicKeyInfo PEM, `EC_SIGN_SECP256K1_SHA256` or `EC_SIGN_P256_SHA256` |
//! | `POST /v1/{key version}:asymmetricSign` `{"digest":{"sha256"}}` | DER ECDSA over the 32 bytes as given (no hashing), base64 |
//! | `GET /admin/stats` | counters: sign requests (all, authorised, answered), public keys, tokens issued and refused |
//! | `POST /admin/faults` | `throttle` n × 429, `retry_after` s, `server_errors` n × 503, `delay_ms`, `wrong_signatures` n, `high_s` `always`/`never`/`alternate`, `revoke_tokens` |
//!
//! Key versions are `projects/pawl-sim/locations/global/keyRings/pawl/cryptoKeys/NAME/cryptoKeyVersions/1`.
//! Not modelled: IAM, key rotation, CRC32C checksums, protection levels, quotas.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey,
};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use k256::ecdsa::signature::hazmat::PrehashSigner;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::azure::{KeyPair, flip_s, new_key, random32};

mod encode;
use encode::{der_signature, hex, pem, public_pem};

const PREFIX: &str = "projects/pawl-sim/locations/global/keyRings/pawl/cryptoKeys/";
const EMAIL: &str = "pawl-baker@pawl-sim.iam.gserviceaccount.com";
const SCOPE: &str = "https://www.googleapis.com/auth/cloudkms";

/// `pawl-sim gcp` options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory for `cert.pem` (the CA the bridge trusts) and `service-account.json`.
    #[arg(long)]
    pub dir: PathBuf,
    /// Pre-create keys: `NAME:SECP256K1` or `NAME:P256` (repeatable).
    #[arg(long = "key")]
    pub keys: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Faults {
    #[serde(default)]
    throttle: u32,
    retry_after: Option<u64>,
    #[serde(default)]
    server_errors: u32,
    #[serde(default)]
    delay_ms: u64,
    #[serde(default)]
    wrong_signatures: u32,
    high_s: Option<String>,
    #[serde(default)]
    revoke_tokens: bool,
}

#[derive(Default)]
struct Stats {
    sign_requests: u64,
    sign_authorised: u64,
    signatures: u64,
    public_keys: u64,
    tokens: u64,
    tokens_refused: u64,
    metadata_tokens: u64,
}

struct Sim {
    keys: HashMap<String, KeyPair>,
    faults: Faults,
    stats: Stats,
    tokens: Vec<String>,
    high_s_toggle: bool,
    /// The service account's RSA public key (PKCS#1 DER) and the token endpoint's URL.
    account_key: Vec<u8>,
    token_uri: String,
}

type Shared = Arc<Mutex<Sim>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Sim> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// Google's error shape.
fn error(status: StatusCode, state: &str, msg: &str) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "message": msg, "status": state}});
    (status, Json(body)).into_response()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Check a JWT-bearer assertion: RS256 by the account's key, for us, for Cloud KMS, current.
fn check_assertion(sim: &Sim, assertion: &str) -> Result<(), &'static str> {
    let mut parts = assertion.split('.');
    let (Some(h), Some(c), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWT");
    };
    let header: Value = B64URL
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("bad header")?;
    if header["alg"] != "RS256" {
        return Err("alg must be RS256");
    }
    let sig = B64URL.decode(sig).map_err(|_| "bad signature encoding")?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &sim.account_key)
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| "invalid JWT signature")?;
    let claims: Value = B64URL
        .decode(c)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("bad claims")?;
    if claims["iss"] != EMAIL {
        return Err("unknown issuer");
    }
    if claims["aud"] != sim.token_uri.as_str() {
        return Err("wrong audience");
    }
    if !claims["scope"]
        .as_str()
        .is_some_and(|s| s.split(' ').any(|s| s == SCOPE))
    {
        return Err("scope does not include cloudkms");
    }
    let (iat, exp) = (claims["iat"].as_u64(), claims["exp"].as_u64());
    match (iat, exp) {
        (Some(iat), Some(exp)) if iat <= now() + 60 && exp > now() && exp - iat <= 3600 => Ok(()),
        _ => Err("iat/exp not current (at most one hour)"),
    }
}

async fn token(State(s): State<Shared>, body: String) -> Response {
    let mut sim = lock(&s);
    let mut grant = None;
    let mut assertion = None;
    for pair in body.split('&') {
        match pair.split_once('=') {
            Some(("grant_type", v)) => grant = Some(v.replace("%3A", ":").replace("%3a", ":")),
            Some(("assertion", v)) => assertion = Some(v.to_string()),
            _ => {}
        }
    }
    if grant.as_deref() != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        sim.stats.tokens_refused += 1;
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if let Err(why) = check_assertion(&sim, assertion.as_deref().unwrap_or("")) {
        sim.stats.tokens_refused += 1;
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": why})),
        )
            .into_response();
    }
    let Ok(bytes) = random32() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "entropy");
    };
    let token = format!("ya29.sim-{}", hex(&bytes));
    sim.tokens.push(token.clone());
    sim.stats.tokens += 1;
    Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})).into_response()
}

async fn metadata_token(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let mut sim = lock(&s);
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        sim.stats.tokens_refused += 1;
        return (
            StatusCode::FORBIDDEN,
            "Missing Metadata-Flavor:Google header.",
        )
            .into_response();
    }
    let Ok(bytes) = random32() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "entropy");
    };
    let token = format!("ya29.sim-{}", hex(&bytes));
    sim.tokens.push(token.clone());
    sim.stats.metadata_tokens += 1;
    Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})).into_response()
}

fn authorised(sim: &Sim, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| sim.tokens.iter().any(|k| k == t))
}

fn unauthenticated() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials.",
    )
}

/// `NAME/cryptoKeyVersions/1` → `NAME`.
fn key_name(rest: &str) -> Option<&str> {
    rest.strip_suffix("/cryptoKeyVersions/1")
}

async fn get_version(
    State(s): State<Shared>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut sim = lock(&s);
    if !authorised(&sim, &headers) {
        return unauthenticated();
    }
    let Some(name) = rest.strip_suffix("/publicKey").and_then(key_name) else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such resource");
    };
    let Some(key) = sim.keys.get(name) else {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "CryptoKeyVersion not found",
        );
    };
    let (pem, algorithm) = public_pem(key);
    sim.stats.public_keys += 1;
    Json(
        json!({"pem": pem, "algorithm": algorithm, "name": format!("{PREFIX}{rest}"),
                "protectionLevel": "HSM"}),
    )
    .into_response()
}

#[derive(Deserialize)]
struct SignBody {
    digest: DigestBody,
}

#[derive(Deserialize)]
struct DigestBody {
    sha256: String,
}

async fn post_version(
    State(s): State<Shared>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(version) = rest.strip_suffix(":asymmetricSign") else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such method");
    };
    let delay = {
        let mut sim = lock(&s);
        sim.stats.sign_requests += 1;
        if !authorised(&sim, &headers) {
            return unauthenticated();
        }
        sim.stats.sign_authorised += 1;
        if sim.faults.throttle > 0 {
            sim.faults.throttle -= 1;
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Cryptographic requests'.",
            );
            if let Some(v) = sim
                .faults
                .retry_after
                .and_then(|s| s.to_string().parse().ok())
            {
                r.headers_mut().insert("retry-after", v);
            }
            return r;
        }
        if sim.faults.server_errors > 0 {
            sim.faults.server_errors -= 1;
            return error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "injected");
        }
        sim.faults.delay_ms
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let mut sim = lock(&s);
    let Ok(body) = serde_json::from_slice::<SignBody>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "body must be {\"digest\": {\"sha256\": …}}",
        );
    };
    let Ok(digest) = B64.decode(&body.digest.sha256) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "digest is not base64",
        );
    };
    if digest.len() != 32 {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "The provided digest has incorrect length for EC_SIGN_*_SHA256 (32 bytes)",
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
    let Some(key) = key_name(version).and_then(|n| sim.keys.get(n)) else {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "CryptoKeyVersion not found",
        );
    };
    let signed: Result<[u8; 64], ()> = match key {
        KeyPair::Secp(k) => k
            .sign_prehash(&digest)
            .map(|s: k256::ecdsa::Signature| s.to_bytes().into())
            .map_err(|_| ()),
        KeyPair::P256(k) => k
            .sign_prehash(&digest)
            .map(|s: p256::ecdsa::Signature| s.to_bytes().into())
            .map_err(|_| ()),
    };
    let Ok(mut sig) = signed else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "signing failed",
        );
    };
    if high_s && matches!(key, KeyPair::Secp(_)) {
        flip_s(&mut sig);
    }
    if sim.faults.wrong_signatures > 0 {
        sim.faults.wrong_signatures -= 1;
        sig[10] ^= 0x55;
    }
    sim.stats.signatures += 1;
    Json(json!({"signature": B64.encode(der_signature(&sig)),
                "name": format!("{PREFIX}{version}"), "protectionLevel": "HSM",
                "verifiedDigestCrc32c": false}))
    .into_response()
}

async fn admin_stats(State(s): State<Shared>) -> Json<Value> {
    let sim = lock(&s);
    let t = &sim.stats;
    Json(
        json!({"sign_requests": t.sign_requests, "sign_authorised": t.sign_authorised,
                "signatures": t.signatures, "public_keys": t.public_keys,
                "tokens": t.tokens, "tokens_refused": t.tokens_refused,
                "metadata_tokens": t.metadata_tokens}),
    )
}

async fn admin_faults(State(s): State<Shared>, Json(faults): Json<Faults>) -> StatusCode {
    let mut sim = lock(&s);
    if faults.revoke_tokens {
        sim.tokens.clear();
    }
    sim.faults = faults;
    StatusCode::NO_CONTENT
}

/// Run until SIGTERM/SIGINT.
pub fn run(args: Args) -> Result<(), String> {
    crate::signals::run_http_simulator(serve(args))
}

async fn serve(args: Args) -> Result<(), String> {
    let https = crate::https::Https::bind(&args.dir).await?;
    let base = https.base.clone();
    let token_uri = format!("{base}token");
    // The service account: an RSA key made now, its key file written for the bridge.
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| format!("RSA key: {e}"))?;
    let pkcs8 = rsa.as_der().map_err(|e| format!("RSA key: {e}"))?;
    let account_path = args.dir.join("service-account.json");
    let account = json!({
        "type": "service_account", "project_id": "pawl-sim",
        "private_key_id": hex(&random32()?[..8]),
        "private_key": pem("PRIVATE KEY", pkcs8.as_ref()),
        "client_email": EMAIL, "client_id": "100000000000000000001",
        "token_uri": token_uri,
    });
    std::fs::write(&account_path, account.to_string())
        .map_err(|e| format!("{}: {e}", account_path.display()))?;
    let mut sim = Sim {
        keys: HashMap::new(),
        faults: Faults::default(),
        stats: Stats::default(),
        tokens: Vec::new(),
        high_s_toggle: false,
        account_key: rsa.public_key().as_ref().to_vec(),
        token_uri,
    };
    for spec in &args.keys {
        let (name, crv) = spec.split_once(':').ok_or(format!(
            "--key {spec}: expected NAME:SECP256K1 or NAME:P256"
        ))?;
        let crv = match crv {
            "SECP256K1" => "SECP256K1",
            "P256" => "P-256",
            other => return Err(format!("--key {spec}: curve `{other}` (SECP256K1 or P256)")),
        };
        sim.keys.insert(name.to_string(), new_key(crv)?);
    }
    let shared: Shared = Arc::new(Mutex::new(sim));
    let app = axum::Router::new()
        .route("/token", post(token))
        .route(
            "/computeMetadata/v1/instance/service-accounts/default/token",
            get(metadata_token),
        )
        .route(
            "/v1/projects/pawl-sim/locations/global/keyRings/pawl/cryptoKeys/{*rest}",
            get(get_version).post(post_version),
        )
        .route("/admin/stats", get(admin_stats))
        .route("/admin/faults", post(admin_faults))
        .with_state(shared);
    println!("url: {base}");
    println!("cert: {}", https.cert_path.display());
    println!("service_account: {}", account_path.display());
    println!("key_prefix: {PREFIX}");
    https.serve(app).await
}

//! `pawl-sim yubihsm`: the yubihsm crate's MockHsm served over the yubihsm-connector HTTP
//! protocol, so the bridge relays the board's SCP03 messages to it exactly as to a
//! `yubihsm-connector` in front of a real YubiHSM2.
//!
//! | route | what |
//! |---|---|
//! | `POST /connector/api` | one raw command message in, the HSM's raw response out |
//! | `GET /connector/status` | `status=OK` … (the connector's status page) |
//! | `GET /admin/stats` | counters: messages, by command (create/authenticate session, session message, other), refused (mock panics), rebuilds |
//! | `GET /admin/messages` | the last 10,000 raw messages received and their answers, hex (what a host on the path saw) |
//! | `POST /admin/generate` `{"curve": "ed25519"\|"secp256k1"\|"p256", "key_id"?}` | a key made inside the mock: `{key_id, curve, public_key}` (Tezos base58) |
//! | `GET /admin/key/{id}` | what the HSM holds under asymmetric key `id`, read with the crate's own client: `{key_id, curve, public_key, capabilities, exportable, origin, label}` (404 if none) |
//! | `GET /admin/objects` | every object the HSM holds (List Objects through the crate's own client): `{objects: [{id, type, label}]}` |
//! | `POST /admin/replace` `{"key_id"}` | a new key of the same curve under the same id (the HSM now holds another key than a board registered): `{key_id, public_key}` |
//!
//! Failures are answered as a real YubiHSM2 answers them through its connector: HTTP 200 with a
//! device error message `7f 00 01 CODE` — an unknown session `INVALID_SESSION` (0x03), a message
//! the mock cannot parse `INVALID_COMMAND` (0x01). MockHsm *panics* on messages it refuses to
//! authenticate (a wrong host cryptogram, a bad C-MAC, an unknown key id), which poisons its
//! state: the simulator catches the panic, answers `AUTHENTICATION_FAILED` (0x04) /
//! `SESSION_FAILED` (0x06) / `OBJECT_NOT_FOUND` (0x0b), and rebuilds the mock from the key
//! material it keeps — keys put in through the simulator survive, **all sessions are lost** (a
//! real HSM would close only the failed one), and so are keys generated through a session
//! (`pawl keys generate --backend yubihsm`): their secrets never leave the mock, so the
//! simulator cannot carry them over (a real HSM keeps them). It never dies on its input. It does **not** model: the real HSM's timing,
//! session idle expiry, audit logs, or device resets other than the rebuild.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pawl_core::keys::{Curve, PublicKey};
use serde::Deserialize;
use serde_json::{Value, json};
use yubihsm::asymmetric::Algorithm;
use yubihsm::{Capability, Client, Connector, Credentials, Domain, object::Label};

/// `pawl-sim yubihsm` options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Object id of the authentication key the board will use (not 1: the simulator's own).
    #[arg(long, default_value_t = 2)]
    pub auth_key_id: u16,
    /// Its password (the key is derived as the YubiHSM2 does: PBKDF2, salt "Yubico").
    #[arg(long, default_value = "pawl-sim password")]
    pub auth_password: String,
    /// Pre-create keys: `ID:ed25519`, `ID:secp256k1` or `ID:p256` (repeatable; printed as
    /// `key: ID CURVE PUBLIC_KEY`).
    #[arg(long = "key")]
    pub keys: Vec<String>,
}

/// Key material the simulator keeps so it can rebuild the mock after a panic.
struct Material {
    auth_key_id: u16,
    auth_password: String,
    keys: Vec<(u16, Curve, [u8; 32])>,
}

#[derive(Default)]
struct Stats {
    messages: u64,
    create_session: u64,
    authenticate_session: u64,
    session_message: u64,
    other: u64,
    refused: u64,
    rebuilds: u64,
}

struct Sim {
    connector: Connector,
    material: Material,
    stats: Stats,
    log: std::collections::VecDeque<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Most messages `GET /admin/messages` keeps (the oldest are dropped).
const LOG_MAX: usize = 10_000;

impl Sim {
    fn record(&mut self, entry: (Vec<u8>, Option<Vec<u8>>)) {
        if self.log.len() == LOG_MAX {
            self.log.pop_front();
        }
        self.log.push_back(entry);
    }
}

type Shared = Arc<Mutex<Sim>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Sim> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn algorithm(curve: Curve) -> Algorithm {
    match curve {
        Curve::Ed25519 => Algorithm::Ed25519,
        Curve::Secp256k1 => Algorithm::EcK256,
        _ => Algorithm::EcP256,
    }
}

fn parse_curve(name: &str) -> Result<Curve, String> {
    match name.to_ascii_lowercase().as_str() {
        "ed25519" | "tz1" => Ok(Curve::Ed25519),
        "secp256k1" | "k256" | "tz2" => Ok(Curve::Secp256k1),
        "p256" | "p-256" | "secp256r1" | "tz3" => Ok(Curve::P256),
        other => Err(format!(
            "unsupported curve `{other}` (ed25519, secp256k1 or p256)"
        )),
    }
}

/// A fresh secret valid for `curve` (a scalar below the order for the ECDSA curves).
fn new_secret(curve: Curve) -> Result<[u8; 32], String> {
    for _ in 0..8 {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).map_err(|e| format!("entropy: {e}"))?;
        let ok = match curve {
            Curve::Secp256k1 => k256::SecretKey::from_slice(&b).is_ok(),
            Curve::P256 => p256::SecretKey::from_slice(&b).is_ok(),
            _ => true,
        };
        if ok {
            return Ok(b);
        }
    }
    Err("could not make a key".into())
}

fn admin_client(connector: &Connector) -> Result<Client, String> {
    Client::open(connector.clone(), Credentials::default(), false)
        .map_err(|e| format!("mock HSM: {e}"))
}

fn put_key(client: &Client, id: u16, curve: Curve, secret: &[u8; 32]) -> Result<(), String> {
    client
        .put_asymmetric_key(
            id,
            Label::from("pawl"),
            Domain::DOM1,
            Capability::SIGN_ECDSA | Capability::SIGN_EDDSA | Capability::EXPORTABLE_UNDER_WRAP,
            algorithm(curve),
            secret.to_vec(),
        )
        .map(|_| ())
        .map_err(|e| format!("put key {id}: {e}"))
}

/// A mock HSM holding `material`: the authentication key and every key.
fn build(material: &Material) -> Result<Connector, String> {
    let connector = Connector::mockhsm();
    let client = admin_client(&connector)?;
    // What the board's authentication key needs: sign, and generate keys that may only sign
    // (Get Public Key needs no capability), and delete them (`pawl device selftest
    // --yubihsm`'s throw-away keys).
    let caps = Capability::SIGN_ECDSA | Capability::SIGN_EDDSA;
    client
        .put_authentication_key(
            material.auth_key_id,
            Label::from("pawl-board"),
            Domain::DOM1,
            caps | Capability::GENERATE_ASYMMETRIC_KEY | Capability::DELETE_ASYMMETRIC_KEY,
            caps,
            yubihsm::authentication::Algorithm::YubicoAes,
            yubihsm::authentication::Key::derive_from_password(material.auth_password.as_bytes()),
        )
        .map_err(|e| format!("put authentication key: {e}"))?;
    for (id, curve, secret) in &material.keys {
        put_key(&client, *id, *curve, secret)?;
    }
    Ok(connector)
}

/// The Tezos public key of `id` as the mock reports it (x‖y → SEC1 compressed for ECDSA).
fn public_key(connector: &Connector, id: u16, curve: Curve) -> Result<PublicKey, String> {
    let raw = admin_client(connector)?
        .get_public_key(id)
        .map_err(|e| format!("get public key {id}: {e}"))?
        .into_vec();
    let bytes = match curve {
        Curve::Ed25519 => raw,
        _ if raw.len() == 64 => {
            let mut c = vec![0x02 | (raw[63] & 1)];
            c.extend_from_slice(&raw[..32]);
            c
        }
        _ => return Err(format!("key {id}: public key of {} bytes", raw.len())),
    };
    PublicKey::from_curve_bytes(curve, &bytes).map_err(|e| format!("key {id}: {e}"))
}

fn generate(sim: &mut Sim, id: Option<u16>, curve: Curve) -> Result<(u16, PublicKey), String> {
    let id = match id {
        Some(id) => id,
        None => (0x100u16..0xfff0)
            .find(|i| !sim.material.keys.iter().any(|k| k.0 == *i))
            .ok_or("no free key id")?,
    };
    if id == sim.material.auth_key_id || sim.material.keys.iter().any(|k| k.0 == id) {
        return Err(format!("key id {id} is taken"));
    }
    let secret = new_secret(curve)?;
    put_key(&admin_client(&sim.connector)?, id, curve, &secret)?;
    sim.material.keys.push((id, curve, secret));
    Ok((id, public_key(&sim.connector, id, curve)?))
}

fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({"error": msg}))).into_response()
}

async fn api(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let mut sim = lock(&s);
    sim.stats.messages += 1;
    match body.first() {
        Some(0x03) => sim.stats.create_session += 1,
        Some(0x04) => sim.stats.authenticate_session += 1,
        Some(0x05) => sim.stats.session_message += 1,
        _ => sim.stats.other += 1,
    }
    let connector = sim.connector.clone();
    let message = body.to_vec();
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        connector.send_message(uuid::Uuid::nil(), message.clone().into())
    }));
    match answer {
        Ok(Ok(reply)) => {
            let reply: Vec<u8> = reply.into();
            sim.record((message, Some(reply.clone())));
            (
                [("content-type", "application/octet-stream")],
                axum::body::Bytes::from(reply),
            )
                .into_response()
        }
        Ok(Err(e)) => {
            sim.record((message, None));
            // The device's error answer, as a real YubiHSM2 gives it through its connector.
            let code = if body.first() == Some(&0x05) {
                INVALID_SESSION
            } else {
                INVALID_COMMAND
            };
            eprintln!("pawl-sim yubihsm: error answer 0x{code:02x}: {e}");
            device_error(code)
        }
        Err(_) => {
            sim.record((message, None));
            sim.stats.refused += 1;
            match build(&sim.material) {
                Ok(fresh) => {
                    sim.connector = fresh;
                    sim.stats.rebuilds += 1;
                }
                Err(e) => eprintln!("pawl-sim yubihsm: rebuilding the mock failed: {e}"),
            }
            device_error(match body.first() {
                Some(0x03) => OBJECT_NOT_FOUND,
                Some(0x04) => AUTHENTICATION_FAILED,
                Some(0x05) => SESSION_FAILED,
                _ => INVALID_COMMAND,
            })
        }
    }
}

/// YubiHSM2 device error codes (Yubico's `YHR_DEVICE_*`).
const INVALID_COMMAND: u8 = 0x01;
const INVALID_SESSION: u8 = 0x03;
const AUTHENTICATION_FAILED: u8 = 0x04;
const SESSION_FAILED: u8 = 0x06;
const OBJECT_NOT_FOUND: u8 = 0x0b;

/// An error response (`0x7f`, length 1, code), HTTP 200 as the connector forwards it.
fn device_error(code: u8) -> Response {
    (
        [("content-type", "application/octet-stream")],
        axum::body::Bytes::from(vec![0x7f, 0x00, 0x01, code]),
    )
        .into_response()
}

async fn status() -> &'static str {
    "status=OK\nserial=*\nversion=2.4.0-pawl-sim\npid=0\naddress=127.0.0.1\nport=0"
}

async fn stats(State(s): State<Shared>) -> Json<Value> {
    let sim = lock(&s);
    let st = &sim.stats;
    Json(json!({
        "messages": st.messages, "create_session": st.create_session,
        "authenticate_session": st.authenticate_session, "session_message": st.session_message,
        "other": st.other, "refused": st.refused, "rebuilds": st.rebuilds,
    }))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn messages(State(s): State<Shared>) -> Json<Value> {
    let sim = lock(&s);
    let list: Vec<Value> = sim
        .log
        .iter()
        .map(|(m, r)| json!({"request": hex(m), "response": r.as_deref().map(hex)}))
        .collect();
    Json(json!({ "messages": list }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateBody {
    curve: String,
    key_id: Option<u16>,
}

async fn admin_generate(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<GenerateBody>(&body) else {
        return error(StatusCode::BAD_REQUEST, "body is not {curve, key_id?}");
    };
    let curve = match parse_curve(&body.curve) {
        Ok(c) => c,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let mut sim = lock(&s);
    match generate(&mut sim, body.key_id, curve) {
        Ok((id, pk)) => Json(json!({
            "key_id": id, "curve": body.curve, "public_key": pk.to_b58().as_str(),
            "pkh": pk.hash().to_b58().as_str(),
        }))
        .into_response(),
        Err(m) => error(StatusCode::BAD_REQUEST, &m),
    }
}

/// `GET /admin/key/{id}`: the asymmetric key `id` as the crate's own client reads it.
async fn admin_key(
    State(s): State<Shared>,
    axum::extract::Path(id): axum::extract::Path<u16>,
) -> Response {
    let sim = lock(&s);
    let info = match admin_client(&sim.connector).and_then(|c| {
        c.get_object_info(id, yubihsm::object::Type::AsymmetricKey)
            .map_err(|e| format!("key {id}: {e}"))
    }) {
        Ok(info) => info,
        Err(m) => return error(StatusCode::NOT_FOUND, &m),
    };
    let curve = match info.algorithm {
        yubihsm::Algorithm::Asymmetric(Algorithm::Ed25519) => Curve::Ed25519,
        yubihsm::Algorithm::Asymmetric(Algorithm::EcK256) => Curve::Secp256k1,
        yubihsm::Algorithm::Asymmetric(Algorithm::EcP256) => Curve::P256,
        other => return error(StatusCode::NOT_FOUND, &format!("key {id}: {other:?}")),
    };
    match public_key(&sim.connector, id, curve) {
        Ok(pk) => Json(json!({
            "key_id": id,
            "curve": format!("{curve:?}").to_ascii_lowercase(),
            "public_key": pk.to_b58().as_str(),
            "capabilities": info.capabilities.bits(),
            "exportable": info.capabilities.contains(Capability::EXPORTABLE_UNDER_WRAP),
            "origin": format!("{:?}", info.origin).to_ascii_lowercase(),
            "label": info.label.to_string(),
        }))
        .into_response(),
        Err(m) => error(StatusCode::NOT_FOUND, &m),
    }
}

/// `GET /admin/objects`: List Objects, as the crate's own client reads it.
async fn admin_objects(State(s): State<Shared>) -> Response {
    let sim = lock(&s);
    let client = match admin_client(&sim.connector) {
        Ok(c) => c,
        Err(m) => return error(StatusCode::INTERNAL_SERVER_ERROR, &m),
    };
    let listed = match client.list_objects(&[]) {
        Ok(l) => l,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &format!("list: {e}")),
    };
    let mut objects = Vec::new();
    for entry in listed {
        let label = client
            .get_object_info(entry.object_id, entry.object_type)
            .map(|i| i.label.to_string())
            .unwrap_or_default();
        objects.push(json!({
            "id": entry.object_id,
            "type": format!("{:?}", entry.object_type).to_ascii_lowercase(),
            "label": label,
        }));
    }
    Json(json!({ "objects": objects })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplaceBody {
    key_id: u16,
}

/// `POST /admin/replace`: another key of the same curve under `key_id`.
async fn admin_replace(State(s): State<Shared>, body: axum::body::Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<ReplaceBody>(&body) else {
        return error(StatusCode::BAD_REQUEST, "body is not {key_id}");
    };
    let mut sim = lock(&s);
    let Some(at) = sim.material.keys.iter().position(|k| k.0 == body.key_id) else {
        return error(
            StatusCode::NOT_FOUND,
            "no key the simulator put in under that id",
        );
    };
    let curve = sim.material.keys[at].1;
    let replaced = new_secret(curve).and_then(|secret| {
        let client = admin_client(&sim.connector)?;
        client
            .delete_object(body.key_id, yubihsm::object::Type::AsymmetricKey)
            .map_err(|e| format!("delete {}: {e}", body.key_id))?;
        put_key(&client, body.key_id, curve, &secret)?;
        Ok(secret)
    });
    match replaced {
        Ok(secret) => {
            sim.material.keys[at].2 = secret;
            match public_key(&sim.connector, body.key_id, curve) {
                Ok(pk) => Json(json!({"key_id": body.key_id, "public_key": pk.to_b58().as_str()}))
                    .into_response(),
                Err(m) => error(StatusCode::INTERNAL_SERVER_ERROR, &m),
            }
        }
        Err(m) => error(StatusCode::BAD_REQUEST, &m),
    }
}

/// Run the simulator until SIGTERM/SIGINT or the parent's exit.
pub fn run(args: Args) -> Result<(), String> {
    if args.auth_key_id == 1 {
        return Err(
            "--auth-key-id 1 is the simulator's own administration key; use another".into(),
        );
    }
    // The mock's refusals are panics, caught per message: one line, not a backtrace each.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("pawl-sim yubihsm: the mock HSM refused a message: {info}");
    }));
    crate::signals::run_http_simulator(serve(args))
}

async fn serve(args: Args) -> Result<(), String> {
    let material = Material {
        auth_key_id: args.auth_key_id,
        auth_password: args.auth_password.clone(),
        keys: Vec::new(),
    };
    let connector = build(&material)?;
    let mut sim = Sim {
        connector,
        material,
        stats: Stats::default(),
        log: std::collections::VecDeque::new(),
    };
    let mut created = Vec::new();
    for spec in &args.keys {
        let (id, curve) = spec
            .split_once(':')
            .ok_or(format!("--key {spec}: expected ID:CURVE"))?;
        let id: u16 = id.parse().map_err(|_| format!("--key {spec}: bad id"))?;
        let curve_v = parse_curve(curve)?;
        let (id, pk) = generate(&mut sim, Some(id), curve_v)?;
        created.push(format!("key: {id} {curve} {}", pk.to_b58().as_str()));
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("bind: {e}"))?;
    let addr: SocketAddr = listener.local_addr().map_err(|e| format!("bind: {e}"))?;
    let app = axum::Router::new()
        .route("/connector/api", post(api))
        .route("/connector/status", get(status))
        .route("/admin/stats", get(stats))
        .route("/admin/messages", get(messages))
        .route("/admin/generate", post(admin_generate))
        .route("/admin/key/{id}", get(admin_key))
        .route("/admin/objects", get(admin_objects))
        .route("/admin/replace", post(admin_replace))
        .with_state(Arc::new(Mutex::new(sim)));
    println!("url: http://127.0.0.1:{}", addr.port());
    for line in created {
        println!("{line}");
    }
    use std::io::Write;
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let handle = axum_server::Handle::new();
    crate::signals::stop_on_term(handle.clone());
    let mut server = axum_server::from_tcp(listener).map_err(|e| format!("listen: {e}"))?;
    // Header names as a yubihsm-connector (Go's net/http) writes them: the yubihsm crate's
    // client only recognises `Content-Length: ` in that case.
    server.http_builder().http1().title_case_headers(true);
    server
        .handle(handle)
        .serve(app.into_make_service())
        .await
        .map_err(|e| format!("serve: {e}"))
}
